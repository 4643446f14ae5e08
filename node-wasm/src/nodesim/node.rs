//! One whole simulated node above its peer manager: the SynapseSub router,
//! the replica (op log and fold), the deadline keeper and a [`Behaviour`].
//! The same glue as the browser driver (`runtime::transport` and
//! `runtime::ledger`), without IndexedDB: a node that goes offline keeps its
//! replica (durable storage) and restores it into a fresh router.

use super::behaviour::{Behaviour, Ctx};
use crate::core::genesis::Genesis;
use crate::core::op::{OpBody, OpId, SignedOp, VerifiedOp};
use crate::core::replica::{Received, Replica};
use crate::deadlines::DeadlineKeeper;
use crate::identity::{Identity, NodeId};
use crate::peers::net::App;
use crate::peers::{Event, PeerManager};
use crate::pubsub::{self, GLOBAL_TOPIC, Message, MsgId, Router, Validation};
use crate::snapshot_sync::{FetchOut, Served, SnapshotFetch, SnapshotServer};
use crate::wire::WireMsg;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

/// Wall-clock ms at simulated time 0 (HLC stamps need an epoch).
pub const EPOCH_MS: u64 = 1_700_000_000_000;
/// How often the replica releases held ops, the keeper looks for due
/// deadlines and the behaviour acts.
pub const APP_TICK_MS: u64 = 1_000;

/// When each op reached how many honest nodes (shared by all nodes).
#[derive(Debug, Default)]
pub struct Arrivals {
    /// op → (honest nodes that folded it, time of the last arrival).
    pub ops: BTreeMap<OpId, (u32, u64)>,
    /// Publish → fold latencies at other honest nodes, ms (capped sample).
    pub latencies: Vec<u64>,
    /// op → publish time, for latencies.
    pub published: BTreeMap<OpId, u64>,
    /// op → (author, seq), to count an op pruned under a final checkpoint
    /// as delivered.
    pub chain_pos: BTreeMap<OpId, (NodeId, u64)>,
}

const MAX_LATENCY_SAMPLES: usize = 2_000_000;

/// A whole node.
pub struct FullNode {
    identity: Identity,
    router: Router,
    pub replica: Replica,
    keeper: DeadlineKeeper,
    behaviour: Box<dyn Behaviour>,
    verified: Rc<RefCell<BTreeMap<MsgId, VerifiedOp>>>,
    next_router_tick: u64,
    next_app_tick: u64,
    arrivals: Rc<RefCell<Arrivals>>,
    /// Ops the validator rejected (bad signature, wrong origin or seq).
    pub invalid: u64,
    invalid_count: Rc<RefCell<u64>>,
    /// Wall time (ms) for the router's validator.
    wall: Rc<Cell<u64>>,
    /// Ops this node's deadline keeper published.
    pub deadline_ops: u64,
    /// Checkpoints this node signed as a validator.
    pub checkpoint_votes: u64,
    genesis: Genesis,
    /// Drop ops below each final checkpoint (rules `prune_final`,
    /// `final_floor`); otherwise keep the whole history (an archive).
    pub prune: bool,
    server: SnapshotServer,
    fetch: Option<SnapshotFetch>,
    /// When to catch up from a checkpoint (simulated nodes never join full).
    catch_up: crate::snapshot_sync::CatchUp,
    last_final: Option<u64>,
    /// Checkpoints adopted from peers (snapshot join, catch-up).
    pub snapshot_joins: u64,
}

impl FullNode {
    pub fn new(
        identity: Identity,
        genesis: &Genesis,
        behaviour: Box<dyn Behaviour>,
        arrivals: Rc<RefCell<Arrivals>>,
        seed: u64,
    ) -> FullNode {
        let me = identity.node_id();
        let verified = Rc::new(RefCell::new(BTreeMap::new()));
        let invalid_count = Rc::new(RefCell::new(0));
        let wall = Rc::new(Cell::new(EPOCH_MS));
        let router = Self::router(me, seed, &verified, &invalid_count, &wall, 0);
        FullNode {
            keeper: DeadlineKeeper::new(me),
            identity,
            router,
            replica: Replica::with_genesis(genesis),
            behaviour,
            verified,
            next_router_tick: 0,
            next_app_tick: APP_TICK_MS,
            arrivals,
            invalid: 0,
            invalid_count,
            wall,
            deadline_ops: 0,
            checkpoint_votes: 0,
            genesis: genesis.clone(),
            prune: false,
            server: SnapshotServer::default(),
            fetch: None,
            catch_up: crate::snapshot_sync::CatchUp::new(false),
            last_final: None,
            snapshot_joins: 0,
        }
    }

    /// A router subscribed to `global:ops` that validates ops as the
    /// browser's ledger does (decode, signature, origin and seq).
    fn router(
        me: NodeId,
        seed: u64,
        verified: &Rc<RefCell<BTreeMap<MsgId, VerifiedOp>>>,
        invalid: &Rc<RefCell<u64>>,
        wall: &Rc<Cell<u64>>,
        now: u64,
    ) -> Router {
        let mut router = Router::new(me, pubsub::Config::default(), seed);
        let (v, bad, wall) = (verified.clone(), invalid.clone(), wall.clone());
        router.set_validator(Box::new(move |m: &Message| {
            if m.topic != GLOBAL_TOPIC {
                return Validation::Ignore;
            }
            match SignedOp::decode(&m.payload).and_then(SignedOp::verify) {
                // Rule `future_not_forwarded`, as the browser's ledger.
                Ok(op) if op.op().hlc.too_far_ahead(wall.get()) => Validation::Ignore,
                Ok(op) if op.op().author == m.origin && op.op().seq == m.seq => {
                    let mut w = v.borrow_mut();
                    if w.len() >= 8192 {
                        w.clear();
                    }
                    w.insert(MsgId(op.id().0), op);
                    Validation::Accept
                }
                _ => {
                    *bad.borrow_mut() += 1;
                    Validation::Reject
                }
            }
        }));
        router.set_linker(Box::new(|m: &Message| SignedOp::decode(&m.payload).ok().map(|op| MsgId(op.op().prev.0))));
        let _ = router.handle(pubsub::Input::Subscribe(GLOBAL_TOPIC.to_string()), now);
        router
    }

    pub fn id(&self) -> NodeId {
        self.identity.node_id()
    }

    pub fn honest(&self) -> bool {
        self.behaviour.honest()
    }

    pub fn behaviour_name(&self) -> &'static str {
        self.behaviour.name()
    }

    /// The node reloads: a fresh router restored from the stored op log.
    pub fn restart(&mut self, seed: u64, now: u64) {
        self.router = Self::router(self.id(), seed, &self.verified, &self.invalid_count, &self.wall, now);
        let ops: Vec<(NodeId, u64, Vec<u8>)> =
            self.replica.store().iter().map(|(_, v, _)| (v.op().author, v.op().seq, v.bytes().to_vec())).collect();
        for (origin, seq, payload) in ops {
            let input = pubsub::Input::Restore { topic: GLOBAL_TOPIC.into(), origin, seq, payload };
            let _ = self.router.handle(input, now);
        }
        self.next_router_tick = now;
        self.next_app_tick = now + APP_TICK_MS;
    }

    /// Signs and publishes an op, as `synapse.*` actions do. Returns the op
    /// id, or the refusal (a refusal signs nothing).
    pub fn act(&mut self, peers: &mut PeerManager, channel: &str, body: OpBody, now: u64) -> Result<OpId, String> {
        let op = self.replica.act(&self.identity, channel, body, EPOCH_MS + now).map_err(|e| e.to_string())?;
        let id = op.id();
        {
            let mut a = self.arrivals.borrow_mut();
            a.published.insert(id, now);
            a.chain_pos.insert(id, (op.op().author, op.op().seq));
            if self.honest() {
                let e = a.ops.entry(id).or_insert((0, now));
                e.0 += 1;
            }
        }
        let input =
            pubsub::Input::PublishSeq { topic: GLOBAL_TOPIC.into(), seq: op.op().seq, payload: op.bytes().to_vec() };
        self.route(peers, input, now);
        Ok(id)
    }

    /// Feeds the router and carries out its outputs.
    fn route(&mut self, peers: &mut PeerManager, input: pubsub::Input, now: u64) {
        self.wall.set(EPOCH_MS + now);
        let outs = self.router.handle(input, now);
        for out in outs {
            match out {
                pubsub::Output::Send(peer, packet) => {
                    if let Some(p) = self.behaviour.outgoing(peer, packet) {
                        peers.send_raw(peer, &p);
                    }
                }
                pubsub::Output::Deliver(d) => {
                    let Some(v) = self.verified.borrow_mut().remove(&d.id) else { continue };
                    self.fold(v, now);
                }
                pubsub::Output::Event(_) => {}
            }
        }
        self.invalid = *self.invalid_count.borrow();
    }

    /// Snapshot join: fetch a peer's last final checkpoint before (or
    /// instead of) the whole history.
    pub fn join_from_snapshot(&mut self) {
        self.fetch = Some(SnapshotFetch::new(0));
    }

    /// After a new final checkpoint: prune, move the router's floors, and
    /// serve it.
    fn on_final(&mut self, peers: &mut PeerManager, now: u64) {
        let last = self.replica.last_final().map(|f| f.epoch);
        if last == self.last_final {
            return;
        }
        self.last_final = last;
        if self.prune {
            self.replica.prune();
            for (origin, seq, head) in self.replica.prune_floor() {
                let input = pubsub::Input::Floor { topic: GLOBAL_TOPIC.into(), origin, seq, head: MsgId(head.0) };
                self.route(peers, input, now);
            }
        }
        let served = self.replica.export_final().and_then(|(rec, snap)| Served::new(rec.epoch, &rec.encode(), snap));
        self.server.set(served);
    }

    fn snapshot_outs(&mut self, peers: &mut PeerManager, outs: Vec<FetchOut>, now: u64) {
        for o in outs {
            match o {
                FetchOut::Ask(p, m) => {
                    peers.send_snapshot(p, &m);
                }
                FetchOut::Done { from, record, snapshot } => {
                    match self.replica.adopt_checkpoint(&self.genesis, &record, &snapshot) {
                        Ok(_) => {
                            // As the browser's ledger: ops the router holds
                            // but the old replica could not keep.
                            let held = self.router.held_bodies(GLOBAL_TOPIC);
                            self.replica.refeed(held.iter().map(|m| m.payload.as_slice()), EPOCH_MS + now);
                            self.fetch = None;
                            self.snapshot_joins += 1;
                            self.on_final(peers, now);
                        }
                        Err(_) => {
                            let more = self.fetch.as_mut().map(|f| f.reject(from, &peers.peers(), now));
                            self.snapshot_outs(peers, more.unwrap_or_default(), now);
                        }
                    }
                }
                FetchOut::Exhausted => self.fetch = None,
            }
        }
    }

    fn fold(&mut self, v: VerifiedOp, now: u64) {
        let id = v.id();
        let r = self.replica.receive_batch(vec![v], EPOCH_MS + now);
        if self.honest() && matches!(r.first(), Some(Received::Stored)) {
            let mut a = self.arrivals.borrow_mut();
            let sent = a.published.get(&id).copied();
            let e = a.ops.entry(id).or_insert((0, now));
            e.0 += 1;
            e.1 = e.1.max(now);
            if let Some(t) = sent
                && a.latencies.len() < MAX_LATENCY_SAMPLES
            {
                a.latencies.push(now.saturating_sub(t));
            }
        }
    }
}

impl App for FullNode {
    fn on_event(&mut self, peers: &mut PeerManager, event: Event, now: u64) {
        let input = match event {
            Event::PeerUp(id) => {
                // A joining node asks its first peer for a checkpoint at once.
                if let Some(f) = self.fetch.as_mut() {
                    let outs = f.on_tick(&peers.peers(), now);
                    self.snapshot_outs(peers, outs, now);
                }
                pubsub::Input::PeerConnected(id)
            }
            Event::PeerDown(id) => pubsub::Input::PeerDisconnected(id),
            Event::Pubsub { from, packet } => pubsub::Input::Frame(from, packet),
            Event::Snapshot { from, msg: WireMsg::SnapAsk { epoch_min, index } } => {
                if let Some(reply) = self.server.on_ask(from, epoch_min, index, now) {
                    peers.send_snapshot(from, &reply);
                }
                return;
            }
            Event::Snapshot { from, msg: WireMsg::SnapPart(part) } => {
                let (replica, genesis) = (&self.replica, &self.genesis);
                let mut accept = |record: &[u8]| replica.check_record(genesis, record).is_ok();
                let outs = self.fetch.as_mut().map(|f| f.on_part(from, part, &peers.peers(), now, &mut accept));
                self.snapshot_outs(peers, outs.unwrap_or_default(), now);
                return;
            }
            Event::Snapshot { .. } | Event::Changed | Event::Log(_) => return,
        };
        self.route(peers, input, now);
    }

    fn poll_timeout(&self) -> Option<u64> {
        Some(self.next_router_tick.min(self.next_app_tick))
    }

    fn on_timeout(&mut self, peers: &mut PeerManager, now: u64) {
        if now >= self.next_router_tick {
            self.next_router_tick = now + self.router.config().heartbeat_ms;
            self.route(peers, pubsub::Input::Tick, now);
        }
        if now < self.next_app_tick {
            return;
        }
        self.next_app_tick = now + APP_TICK_MS;
        let wall = EPOCH_MS + now;
        self.replica.tick(wall);
        self.on_final(peers, now);
        // Rule `catch_up_from_checkpoint`.
        let due_epoch = self.replica.finality(wall).current_epoch;
        if self.catch_up.due(self.fetch.is_some(), self.replica.finality_lag(), self.last_final, due_epoch) {
            self.fetch = Some(SnapshotFetch::new(self.last_final.map_or(0, |e| e.saturating_add(1))));
        }
        if let Some(f) = self.fetch.as_mut() {
            let outs = f.on_tick(&peers.peers(), now);
            self.snapshot_outs(peers, outs, now);
        }
        if self.honest() {
            // As the browser's ledger does: publish this node's X25519 key
            // (which also gives it an account), then any due deadline ops.
            if self.keeper.key_publish_due(self.replica.state(), wall) {
                let x25519 = self.identity.x25519_public();
                let _ = self.act(peers, crate::core::op::GLOBAL_CHANNEL, OpBody::KeyPublish { x25519 }, now);
            }
            let settled = self.replica.settled_until(wall);
            let due = self.keeper.due(self.replica.state(), wall, settled);
            for d in due {
                if self.act(peers, &d.channel, d.body, now).is_ok() {
                    self.deadline_ops += 1;
                }
            }
            // Rule `checkpoint_vote`: validators sign each due epoch.
            if let Some(body) = self.replica.checkpoint_due(&self.id(), wall)
                && self.act(peers, crate::core::op::GLOBAL_CHANNEL, body, now).is_ok()
            {
                self.checkpoint_votes += 1;
            }
        }
        let me = self.id();
        let head = self.replica.store().head(&me).map_or((0, OpId::ZERO), |h| (h.0, h.1));
        let chain = self.replica.store().chain_ids(&me, 1, 8);
        let mut ctx = Ctx {
            identity: &self.identity,
            peers: peers.peers(),
            wall_ms: wall,
            head,
            chain,
            state: self.replica.state(),
            send: vec![],
            publish: vec![],
        };
        self.behaviour.tick(&mut ctx);
        let (send, publish) = (ctx.send, ctx.publish);
        for (peer, packet) in send {
            peers.send_raw(peer, &packet);
        }
        for op in publish {
            let input = pubsub::Input::PublishSeq {
                topic: GLOBAL_TOPIC.into(),
                seq: op.op().seq,
                payload: op.bytes().to_vec(),
            };
            self.route(peers, input, now);
        }
    }
}
