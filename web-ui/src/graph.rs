//! A live SVG picture of this node's part of the mesh.
//!
//! Self sits in the middle; every peer connection is on a circle around it,
//! with an edge whose style says its state (proven: solid, still connecting:
//! dashed) and a thicker edge when the peer is in this node's SynapseSub
//! mesh for the op topic. Ids the rendezvous lists but that have no
//! connection are drawn faintly on an outer ring. Nothing here is stored:
//! it is recomputed from the node's peer table on every change.

use crate::ctx::ctx;
use leptos::prelude::*;
use node_wasm::identity::NodeId;
use node_wasm::runtime::PeerState;

#[derive(Clone, PartialEq)]
struct GraphNode {
    id: NodeId,
    x: f64,
    y: f64,
    /// `self`, `proven`, `connecting`, `handshaking` or `known`.
    kind: &'static str,
    mesh: bool,
}

const SIZE: f64 = 320.0;

fn ring(i: usize, n: usize, r: f64) -> (f64, f64) {
    let a = std::f64::consts::TAU * i as f64 / n.max(1) as f64 - std::f64::consts::FRAC_PI_2;
    (SIZE / 2.0 + r * a.cos(), SIZE / 2.0 + r * a.sin())
}

#[component]
pub fn MeshGraph() -> impl IntoView {
    let c = ctx();
    let nodes = Memo::new(move |_| {
        c.with_node(|n| {
            let mesh = n.mesh_peers(node_wasm::pubsub::GLOBAL_TOPIC);
            let peers = n.peer_infos();
            let directory = n.rendezvous_status().directory;
            let mut out = vec![GraphNode { id: n.id(), x: SIZE / 2.0, y: SIZE / 2.0, kind: "self", mesh: false }];
            for (i, p) in peers.iter().enumerate() {
                let (x, y) = ring(i, peers.len(), 100.0);
                let kind = match p.state {
                    PeerState::Proven => "proven",
                    PeerState::Handshaking => "handshaking",
                    PeerState::Connecting => "connecting",
                };
                out.push(GraphNode { id: p.id, x, y, kind, mesh: mesh.contains(&p.id) });
            }
            let known: Vec<NodeId> =
                directory.into_iter().filter(|d| *d != n.id() && !peers.iter().any(|p| p.id == *d)).take(24).collect();
            for (i, id) in known.iter().enumerate() {
                let (x, y) = ring(i, known.len(), 145.0);
                out.push(GraphNode { id: *id, x, y, kind: "known", mesh: false });
            }
            out
        })
    });
    view! {
        <svg id="mesh-graph" class="graph" viewBox=format!("0 0 {SIZE} {SIZE}") role="img"
            aria-label=move || format!("Mesh: this node and {} connected peers", nodes.with(|n| n.iter().filter(|g| g.kind == "proven").count()))>
            {move || {
                let ns = nodes.get();
                let (cx, cy) = (SIZE / 2.0, SIZE / 2.0);
                let edges = ns.iter().filter(|g| g.kind != "self" && g.kind != "known").map(|g| {
                    view! {
                        <line x1=cx y1=cy x2=g.x y2=g.y
                            class=format!("edge {}{}", g.kind, if g.mesh { " mesh" } else { "" }) />
                    }
                }).collect_view();
                let dots = ns.into_iter().map(|g| {
                    let r = if g.kind == "self" { 14.0 } else { 9.0 };
                    let label = g.id.short();
                    view! {
                        <g class=format!("vertex {}", g.kind)>
                            <circle cx=g.x cy=g.y r=r />
                            <text x=g.x y=g.y + r + 11.0 text-anchor="middle">{label}</text>
                        </g>
                    }
                }).collect_view();
                view! { <g>{edges}</g><g>{dots}</g> }
            }}
        </svg>
    }
}
