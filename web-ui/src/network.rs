//! The Network view: this node, the rendezvous, peers, the mesh graph, and
//! SynapseSub/ledger counters.

use crate::action::{Action, Feedback, Submit};
use crate::ctx::ctx;
use crate::finality::FinalityCard;
use crate::graph::MeshGraph;
use crate::health::HealthCard;
use leptos::prelude::*;

#[component]
pub fn NetworkView() -> impl IntoView {
    let c = ctx();
    let id = c.me.to_text();
    let rdv = Memo::new(move |_| {
        c.with_node(|n| {
            let r = n.rendezvous_status();
            let servers: Vec<(String, String, Option<String>)> =
                r.servers.iter().map(|s| (s.state.clone(), s.url.clone(), s.last_error.clone())).collect();
            (r.state, r.url, r.last_error, r.directory.len(), servers)
        })
    });
    let peers = Memo::new(move |_| {
        c.with_node(|n| {
            n.peer_infos()
                .into_iter()
                .map(|p| {
                    let state = format!("{:?}", p.state).to_lowercase();
                    let rtt = p.rtt_ms.map(|r| format!("{r:.0} ms")).unwrap_or_else(|| "–".into());
                    (p.id, state, p.connection, rtt, route(p.candidate, p.remote_candidate))
                })
                .collect::<Vec<_>>()
        })
    });
    // Traffic counters move with every frame: any change re-reads them.
    let counters = Memo::new(move |_| {
        c.track_any();
        let s = c.node.with_value(|n| n.stats());
        let p = c.node.with_value(|n| n.pubsub_stats());
        let l = c.ledger.with_value(|l| l.stats());
        vec![
            ("connections made", s.connections_created as u64),
            ("peers proven", s.peers_proven as u64),
            ("proofs rejected", s.proofs_rejected as u64),
            ("frames in", s.frames_in),
            ("frames out", s.frames_out),
            ("bytes in", s.bytes_in),
            ("bytes out", s.bytes_out),
            ("messages published", p.published),
            ("messages delivered", p.delivered),
            ("duplicates", p.duplicates),
            ("invalid messages", p.invalid),
            ("packets in", p.packets_in),
            ("packets out", p.packets_out),
            ("ops created here", l.ops_created),
            ("ops received", l.ops_received),
            ("ops loaded from storage", l.ops_loaded),
            ("invalid ops", l.ops_invalid),
            ("storage errors", l.store_errors),
        ]
    });
    let ice = Memo::new(move |_| c.with_node(|n| n.ice_status()));
    let mesh = Memo::new(move |_| c.with_node(|n| n.mesh_peers(node_wasm::pubsub::GLOBAL_TOPIC).len()));
    let hash = Memo::new(move |_| {
        c.track_any();
        c.ledger.with_value(|l| l.state_hash())
    });

    let text = RwSignal::new(String::new());
    let hello = Action::new();
    let send = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let t = text.get_untracked();
        hello.run(move || {
            let n = c.node.with_value(|n| n.send_hello(&t))?;
            text.set(String::new());
            Ok(format!("Signed and sent to {n} peer(s)."))
        });
    };
    let hellos = Memo::new(move |_| {
        c.with_node(|n| n.hellos().into_iter().rev().take(20).map(|h| (h.from.short(), h.text)).collect::<Vec<_>>())
    });

    view! {
        <section class="card" aria-labelledby="h-node">
            <h2 id="h-node">"This node"</h2>
            <p>"Node id " <code id="node-id" class="id">{id}</code></p>
            <p>
                "Rendezvous "
                <span id="rendezvous-state" class=move || format!("badge {}", rdv.get().0)>{move || rdv.get().0}</span>
                " " <span class="muted">{move || rdv.get().1}</span>
                {move || rdv.get().2.map(|e| view! { <span class="error">" (" {e} ")"</span> })}
                <span class="muted">{move || format!(" · {} ids in its directory", rdv.get().3)}</span>
            </p>
            {move || {
                let servers = rdv.get().4;
                (servers.len() > 1).then(|| view! {
                    <ul id="rendezvous-servers" class="muted">
                        {servers.into_iter().map(|(state, url, err)| view! {
                            <li><span class=format!("badge {state}")>{state.clone()}</span>" " {url}
                                {err.map(|e| view! { <span class="error">" (" {e} ")"</span> })}</li>
                        }).collect_view()}
                    </ul>
                })
            }}
            <p>
                "ICE servers "
                <span id="ice-source" class="muted">{move || ice_summary(&ice.get())}</span>
                {move || ice.get().sentence.map(|e| view! { <span id="ice-sentence" class="error" role="alert">" " {e}</span> })}
            </p>
            <p class="muted">"state hash " <code id="state-hash">{move || hash.get().get(..16).unwrap_or("").to_string()}</code></p>
        </section>
        <div class="grid2">
            <section class="card" aria-labelledby="h-peers">
                <h2 id="h-peers">"Peers " <span class="count" id="peer-count">{move || peers.with(Vec::len)}</span></h2>
                {move || {
                    let ps = peers.get();
                    if ps.is_empty() {
                        view! { <p class="muted" id="no-peers">"No peers yet. Open this page in another browser profile (or with ?profile=other)."</p> }.into_any()
                    } else {
                        view! {
                            <div class="scroll-x"><table id="peers">
                                <thead><tr><th scope="col">"Node"</th><th scope="col">"State"</th><th scope="col">"Connection"</th><th scope="col">"RTT"</th><th scope="col" title="Candidate types in use: host (direct), srflx (through a NAT), relay (through TURN); this side → the peer's">"Route"</th></tr></thead>
                                <tbody>
                                    {ps.into_iter().map(|(id, state, conn, rtt, route)| view! {
                                        <tr>
                                            <td><code class="id" title=id.to_text()>{id.short()}</code></td>
                                            <td><span class=format!("badge {state}")>{state.clone()}</span></td>
                                            <td>{conn}</td>
                                            <td class="num">{rtt}</td>
                                            <td class="route">{route}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table></div>
                        }.into_any()
                    }
                }}
            </section>
            <section class="card" aria-labelledby="h-mesh">
                <h2 id="h-mesh">"Mesh"</h2>
                <MeshGraph />
                <p class="muted legend">
                    <span class="key proven">"proven"</span> <span class="key connecting">"connecting"</span>
                    <span class="key mesh">"in the op mesh"</span> <span class="key known">"known to the rendezvous"</span>
                    {move || format!(" · {} peer(s) in the op mesh", mesh.get())}
                </p>
            </section>
        </div>
        <FinalityCard />
        <HealthCard />
        <section class="card" aria-labelledby="h-stats">
            <h2 id="h-stats">"SynapseSub and op log"</h2>
            <dl class="stats" id="pubsub-stats">
                {move || counters.get().into_iter().map(|(k, v)| view! { <div><dt>{k}</dt><dd>{v}</dd></div> }).collect_view()}
            </dl>
        </section>
        <section class="card" aria-labelledby="h-hello">
            <h2 id="h-hello">"Signed hellos"</h2>
            <form on:submit=send id="hello-form" class="row">
                <label for="hello-text" class="sr-only">"Hello text"</label>
                <input id="hello-text" type="text" maxlength="1000" placeholder="Say hello to your peers"
                    prop:value=move || text.get() on:input=move |ev| text.set(event_target_value(&ev)) />
                <Submit action=hello label="Sign & send" />
            </form>
            <Feedback action=hello id="hello-feedback" />
            <ul id="hellos" class="plain">
                {move || hellos.get().into_iter().map(|(from, t)| view! {
                    <li><span class="badge verified" title="signature verified">"✔ verified"</span> " " <code class="id">{from}</code> ": " <span class="hello-text">{t}</span></li>
                }).collect_view()}
            </ul>
        </section>
        <crate::identity::IdentityCard />
    }
}

/// "relay → host": how this connection's packets travel, this side first.
fn route(local: Option<&str>, remote: Option<&str>) -> String {
    match (local, remote) {
        (None, None) => "–".into(),
        (l, r) => format!("{} → {}", l.unwrap_or("?"), r.unwrap_or("?")),
    }
}

/// "2 from the rendezvous · relay only", or "none (direct connections only)".
fn ice_summary(s: &node_wasm::ice_status::IceStatus) -> String {
    use node_wasm::ice_status::{IcePolicy, IceSource};
    let from = match s.source {
        IceSource::None => return "none (host candidates only: same machine or network)".into(),
        IceSource::Page => "set by this page",
        IceSource::Rendezvous => "from the rendezvous",
    };
    let relay = if s.policy == IcePolicy::Relay { " · relay only" } else { "" };
    format!("{} {from}{relay}", s.servers.len())
}
