//! What a simulated node does besides running the protocol honestly. An
//! attack scenario is a [`Behaviour`]: override the one or two hooks it
//! needs. Each behaviour below is a few lines; add new ones the same way.

use crate::core::genesis::find_ticket;
use crate::core::governance::ProposalStatus;
use crate::core::hlc::Hlc;
use crate::core::op::{
    Command, ConfigValue, Funding, NewProposal, NewTask, OpBody, OpId, ProposalKind, SignedOp, TaskSchema, VerifiedOp,
};
use crate::core::state::{State, TaskStatus};
use crate::identity::{Identity, NodeId};
use crate::pubsub::{GLOBAL_TOPIC, Message, Packet};
use std::collections::BTreeSet;

/// What a behaviour can see and do once a second.
pub struct Ctx<'a> {
    pub identity: &'a Identity,
    /// This node's proven peers.
    pub peers: Vec<NodeId>,
    /// Wall time (ms) for HLC stamps.
    pub wall_ms: u64,
    /// This node's own chain head `(seq, id)`.
    pub head: (u64, OpId),
    /// The ids of this node's own ready chain, seq 1 first (at most 8).
    pub chain: Vec<OpId>,
    /// The state this node's replica holds.
    pub state: &'a State,
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

/// The ops a modified client signs itself, whatever the rules say (the
/// node's own replica never folds them, so the chain is kept here). The
/// first is its admission ticket, found by proof of work as any client
/// must.
#[derive(Default)]
pub struct OwnChain {
    seq: u64,
    prev: OpId,
    last_ms: u64,
    admitted: bool,
}

impl OwnChain {
    /// Signs `body` as the next op of this identity and publishes it.
    /// Returns its id.
    pub fn sign(&mut self, ctx: &mut Ctx, channel: &str, body: OpBody) -> Option<OpId> {
        if ctx.head.0 > self.seq {
            (self.seq, self.prev) = ctx.head;
        }
        let ms = ctx.wall_ms.max(self.last_ms + 1);
        let op = SignedOp::create(ctx.identity, self.seq + 1, self.prev, Hlc::new(ms, 0), channel, body).ok()?;
        (self.seq, self.prev, self.last_ms) = (self.seq + 1, op.id(), ms);
        let id = op.id();
        ctx.publish.push(op);
        Some(id)
    }

    /// `false` while this tick went to the admission op.
    pub fn admitted(&mut self, ctx: &mut Ctx) -> bool {
        if self.admitted {
            return true;
        }
        let me = ctx.identity.node_id();
        let (genesis, bits) = (ctx.state.genesis, ctx.state.params.rules.admission_bits);
        if bits > 0 && !ctx.state.ledger.accounts.contains_key(&me) {
            let Some(nonce) = find_ticket(&genesis, &me, bits, 0, 1 << (u32::from(bits) + 6).min(40)) else {
                return false;
            };
            self.sign(ctx, crate::core::op::GLOBAL_CHANNEL, OpBody::Admit { nonce });
        }
        self.admitted = true;
        false
    }
}

/// A fresh key flooding proposals with votes: admitted (it paid its
/// ticket), it votes no on every open proposal it has not voted on, one a
/// second. Not a member, so its votes are shown and never counted.
#[derive(Default)]
pub struct SybilVoter {
    chain: OwnChain,
    voted: BTreeSet<OpId>,
}

impl Behaviour for SybilVoter {
    fn name(&self) -> &'static str {
        "sybil_voter"
    }
    fn tick(&mut self, ctx: &mut Ctx) {
        if !self.chain.admitted(ctx) {
            return;
        }
        let next =
            ctx.state.gov.proposals.values().find(|p| p.status == ProposalStatus::Open && !self.voted.contains(&p.id));
        if let Some((id, channel)) = next.map(|p| (p.id, p.channel.clone())) {
            self.voted.insert(id);
            self.chain.sign(ctx, &channel, OpBody::Vote { proposal: id, yes: false });
        }
    }
}

/// The three-call takeover by one identity, as a modified client: it
/// proposes `validator_set_size = 1`, votes yes, then signs a close and a
/// ratification every second whether the rules allow them or not.
#[derive(Default)]
pub struct Takeover {
    chain: OwnChain,
    proposal: Option<OpId>,
    step: u64,
}

impl Behaviour for Takeover {
    fn name(&self) -> &'static str {
        "takeover"
    }
    fn tick(&mut self, ctx: &mut Ctx) {
        if !self.chain.admitted(ctx) {
            return;
        }
        let global = crate::core::op::GLOBAL_CHANNEL;
        let Some(p) = self.proposal else {
            let body = OpBody::ProposalCreate(NewProposal {
                kind: ProposalKind::ConfigChange,
                title: "one validator".into(),
                description: String::new(),
                tags: vec![],
                command: Some(Command::ConfigChange { key: "validator_set_size".into(), value: ConfigValue::Int(1) }),
            });
            self.proposal = self.chain.sign(ctx, global, body);
            return;
        };
        self.step += 1;
        let body = match self.step {
            1 => OpBody::Vote { proposal: p, yes: true },
            s if s % 2 == 0 => OpBody::ProposalClose { proposal: p },
            _ => OpBody::Ratify { proposal: p },
        };
        self.chain.sign(ctx, global, body);
    }
}

/// Colluding keys farming reputation: each creates tasks paying the
/// minimum reward that earns reputation, and claims, starts and completes
/// the tasks of other non-founders (its accomplices), one op a second.
#[derive(Default)]
pub struct TaskFarmer {
    chain: OwnChain,
    ticks: u64,
    /// The task it works on and the next step (0 claim, 1 start, 2 complete).
    working: Option<(OpId, u8)>,
    done: BTreeSet<OpId>,
}

impl Behaviour for TaskFarmer {
    fn name(&self) -> &'static str {
        "task_farmer"
    }
    fn tick(&mut self, ctx: &mut Ctx) {
        if !self.chain.admitted(ctx) {
            return;
        }
        self.ticks += 1;
        let me = ctx.identity.node_id();
        let channel = super::SIM_CHANNEL;
        if let Some((task, step)) = self.working {
            let body = match step {
                0 => OpBody::TaskClaim { task },
                1 => OpBody::TaskStart { task },
                _ => OpBody::TaskComplete { task },
            };
            self.working = (step < 2).then_some((task, step + 1));
            self.chain.sign(ctx, channel, body);
            return;
        }
        let accomplice = |owner: &crate::identity::NodeId| {
            *owner != me && ctx.state.ledger.accounts.get(owner).is_some_and(|a| !a.founder)
        };
        let open = ctx.state.tasks.values().find(|t| {
            t.status == TaskStatus::Open && accomplice(&t.owner) && !self.done.contains(&t.id) && t.auction.is_none()
        });
        if let Some(id) = open.map(|t| t.id)
            && !self.ticks.is_multiple_of(3)
        {
            self.done.insert(id);
            self.working = Some((id, 0));
            return;
        }
        if ctx.state.ledger.channels.contains_key(channel) {
            let body = OpBody::TaskCreate(NewTask {
                schema: TaskSchema::TaskV2,
                title: format!("farm {}", self.ticks),
                description: String::new(),
                reward: ctx.state.params.rules.min_paid_reward,
                tags: vec!["farm".into()],
                required_tools: vec![],
                funding: Funding::Creator,
                auction: None,
            });
            self.chain.sign(ctx, channel, body);
        }
    }
}

/// Builds a behaviour by name (the CLI's `--malicious-behaviour`).
/// Signs a chain of ops dated ten minutes ahead, one a second, and
/// publishes them: honest nodes must neither forward nor keep them (rule
/// `future_not_forwarded`).
#[derive(Default)]
pub struct TimeTraveller {
    chain: Option<(u64, OpId, u64)>,
}

impl Behaviour for TimeTraveller {
    fn name(&self) -> &'static str {
        "time_traveller"
    }
    fn tick(&mut self, ctx: &mut Ctx) {
        let (seq, prev, ms) = self.chain.unwrap_or((ctx.head.0, ctx.head.1, ctx.wall_ms + 600_000));
        let ms = ms.max(ctx.wall_ms + 600_000) + 1;
        let body = OpBody::SkillsSet { skills: vec![format!("from {ms}")] };
        let Ok(op) =
            SignedOp::create(ctx.identity, seq + 1, prev, Hlc::new(ms, 0), crate::core::op::GLOBAL_CHANNEL, body)
        else {
            return;
        };
        self.chain = Some((seq + 1, op.id(), ms));
        ctx.publish.push(op);
    }
}

/// Publishes an honest chain of ops for a while, then, when everyone holds
/// its op at seq 2, signs a twin of it and sends the twin to one peer only:
/// the late fork that catch-up must still carry to every node.
#[derive(Default)]
pub struct LateForker {
    ticks: u64,
    forked: bool,
}

impl Behaviour for LateForker {
    fn name(&self) -> &'static str {
        "late_forker"
    }
    fn tick(&mut self, ctx: &mut Ctx) {
        self.ticks += 1;
        let (seq, prev) = ctx.head;
        if seq < 4 {
            let body = OpBody::SkillsSet { skills: vec![format!("honest {seq}")] };
            let hlc = Hlc::new(ctx.wall_ms, 0);
            if let Ok(op) = SignedOp::create(ctx.identity, seq + 1, prev, hlc, crate::core::op::GLOBAL_CHANNEL, body) {
                ctx.publish.push(op);
            }
            return;
        }
        if self.forked || self.ticks < 8 {
            return;
        }
        // The twin of seq 2: same predecessor (seq 1), other content.
        let Some(one) = ctx.chain.first().copied() else { return };
        let body = OpBody::SkillsSet { skills: vec!["twin".into()] };
        let hlc = Hlc::new(ctx.wall_ms, 0);
        let Ok(twin) = SignedOp::create(ctx.identity, 2, one, hlc, crate::core::op::GLOBAL_CHANNEL, body) else {
            return;
        };
        if let Some(p) = ctx.peers.first() {
            let me = ctx.identity.node_id();
            let m = Message { topic: GLOBAL_TOPIC.into(), origin: me, seq: 2, hops: 0, payload: twin.bytes().to_vec() };
            ctx.send.push((*p, Packet::Message(vec![m]).encode()));
            self.forked = true;
        }
    }
}

pub fn by_name(name: &str) -> Option<Box<dyn Behaviour>> {
    match name {
        "honest" => Some(Box::new(Honest)),
        "silent" => Some(Box::new(Silent)),
        "garbage" => Some(Box::new(Garbage)),
        "equivocator" => Some(Box::new(Equivocator)),
        "sybil_voter" => Some(Box::new(SybilVoter::default())),
        "takeover" => Some(Box::new(Takeover::default())),
        "task_farmer" => Some(Box::new(TaskFarmer::default())),
        "time_traveller" => Some(Box::new(TimeTraveller::default())),
        "late_forker" => Some(Box::new(LateForker::default())),
        _ => None,
    }
}
