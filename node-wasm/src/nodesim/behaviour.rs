//! What a simulated node does besides running the protocol honestly. An
//! attack scenario is a [`Behaviour`]: override the one or two hooks it
//! needs. Each behaviour below is a few lines; add new ones the same way.

use crate::core::op::{OpBody, OpId, SignedOp, VerifiedOp};
use crate::identity::{Identity, NodeId};
use crate::pubsub::{GLOBAL_TOPIC, Message, Packet};

/// What a behaviour can see and do once a second.
pub struct Ctx<'a> {
    pub identity: &'a Identity,
    /// This node's proven peers.
    pub peers: Vec<NodeId>,
    /// Wall time (ms) for HLC stamps.
    pub wall_ms: u64,
    /// This node's own chain head `(seq, id)`.
    pub head: (u64, OpId),
    /// Raw SynapseSub packets to send: `(peer, packet)`.
    pub send: Vec<(NodeId, Vec<u8>)>,
    /// Signed ops to publish through the router as the honest path would.
    pub publish: Vec<VerifiedOp>,
}

/// A node's conduct. The default is honest.
pub trait Behaviour {
    fn name(&self) -> &'static str;

    /// Whether the node counts as honest in the report (its state must
    /// match the others').
    fn honest(&self) -> bool {
        false
    }

    /// A router packet about to go to `peer`: pass it on, altered or not,
    /// or drop it (`None`).
    fn outgoing(&mut self, _peer: NodeId, packet: Vec<u8>) -> Option<Vec<u8>> {
        Some(packet)
    }

    /// Called once a second.
    fn tick(&mut self, _ctx: &mut Ctx) {}
}

/// Runs the protocol as written.
pub struct Honest;

impl Behaviour for Honest {
    fn name(&self) -> &'static str {
        "honest"
    }
    fn honest(&self) -> bool {
        true
    }
}

/// Joins meshes but forwards and serves nothing.
pub struct Silent;

impl Behaviour for Silent {
    fn name(&self) -> &'static str {
        "silent"
    }
    fn outgoing(&mut self, _: NodeId, _: Vec<u8>) -> Option<Vec<u8>> {
        None
    }
}

/// Sends every peer 20 undecodable SynapseSub packets a second.
pub struct Garbage;

impl Behaviour for Garbage {
    fn name(&self) -> &'static str {
        "garbage"
    }
    fn tick(&mut self, ctx: &mut Ctx) {
        for p in &ctx.peers {
            for i in 0..20u8 {
                ctx.send.push((*p, vec![crate::pubsub::message::PUBSUB_VERSION, 0x1f, i, 0xff, 0xff]));
            }
        }
    }
}

/// Signs two different ops at each new seq and sends one to each half of
/// its peers: the fork every honest node must detect (it then refuses the
/// author's later ops and the states still agree).
pub struct Equivocator;

impl Behaviour for Equivocator {
    fn name(&self) -> &'static str {
        "equivocator"
    }
    fn tick(&mut self, ctx: &mut Ctx) {
        let (seq, prev) = (ctx.head.0 + 1, ctx.head.1);
        let hlc = crate::core::hlc::Hlc { ms: ctx.wall_ms, logical: 0 };
        let body = |d: &str| OpBody::ChannelCreate { description: d.into() };
        let (Ok(a), Ok(b)) = (
            SignedOp::create(ctx.identity, seq, prev, hlc, &format!("fork-a-{seq}"), body("a")),
            SignedOp::create(ctx.identity, seq, prev, hlc, &format!("fork-b-{seq}"), body("b")),
        ) else {
            return;
        };
        let me = ctx.identity.node_id();
        for (i, p) in ctx.peers.iter().enumerate() {
            let op = if i % 2 == 0 { &a } else { &b };
            let m = Message { topic: GLOBAL_TOPIC.into(), origin: me, seq, hops: 0, payload: op.bytes().to_vec() };
            ctx.send.push((*p, Packet::Message(vec![m]).encode()));
        }
    }
}

/// Builds a behaviour by name (the CLI's `--malicious-behaviour`).
pub fn by_name(name: &str) -> Option<Box<dyn Behaviour>> {
    match name {
        "honest" => Some(Box::new(Honest)),
        "silent" => Some(Box::new(Silent)),
        "garbage" => Some(Box::new(Garbage)),
        "equivocator" => Some(Box::new(Equivocator)),
        _ => None,
    }
}
