//! The SynapseSub router: a sans-IO state machine.
//!
//! The runtime (or the simulator) feeds it [`Input`]s with the current time
//! and carries out the [`Output`]s it returns. It never reads a clock, never
//! draws platform randomness, and iterates only ordered maps, so the same
//! inputs always produce the same outputs, natively and in wasm32.
//!
//! `Input::Frame` carries one whole packet (reassembled by
//! `framing::Reassembler`); every `Output::Send` is one packet to pass
//! through `framing::split`. Heartbeat work (`mesh.rs`) runs on `Input::Tick`,
//! which the caller sends every `Config::heartbeat_ms`.

use super::cache::{MessageCache, SeenCache};
use super::config::{Config, Mode};
use super::message::{
    FLAG_REPLY, MAX_ANNOUNCE, MAX_BATCH, MAX_IDS, MAX_RANGE_LEN, MAX_RANGES, MAX_VV, Message, MsgId, Packet, SeqRange,
    VvEntry,
};
use super::rng::SplitMix64;
use super::score::PeerScore;
use super::store::{Inserted, Store};
use crate::identity::NodeId;
use std::collections::{BTreeMap, BTreeSet};

/// Version-vector entries remembered per peer (bounds a liar's memory use).
const MAX_KNOWN: usize = 4096;

/// What the app's validator says about a new message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    /// Deliver and forward.
    Accept,
    /// Invalid (bad signature, malformed op): dropped and the sender's P4 grows.
    Reject,
    /// Not for us (e.g. too far in the future): dropped without penalty.
    Ignore,
}

/// The app's validator. Called once per new message id, after dedup.
pub type Validator = Box<dyn FnMut(&Message) -> Validation>;

/// The app's linker: the id of the message that `msg` names as its
/// predecessor on its (topic, origin) (for signed ops, `prev`), or `None`
/// when the payload names none. Only read from payloads the validator
/// accepted, or restored from the app's own storage.
pub type Linker = Box<dyn Fn(&Message) -> Option<MsgId>>;

/// Fork probes remembered (bounds memory; see `probe`).
const MAX_PROBES: usize = 4096;
/// A fork probe for one seq is not repeated to one peer within this time.
const PROBE_REPEAT_MS: u64 = 30_000;
/// Most fork probes one version vector can trigger.
const MAX_PROBES_PER_VV: usize = 16;

/// Something that happened to the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A DataChannel to `peer` opened and its identity is proven.
    PeerConnected(NodeId),
    PeerDisconnected(NodeId),
    /// One whole packet from `peer`.
    Frame(NodeId, Vec<u8>),
    /// Publish `payload` on `topic` as this node's next seq there.
    Publish {
        topic: String,
        payload: Vec<u8>,
    },
    /// Publish with the app's own seq (e.g. the op log's per-channel
    /// counter). Seqs should be contiguous from 1 for catch-up to see them.
    PublishSeq {
        topic: String,
        seq: u64,
        payload: Vec<u8>,
    },
    /// A message this node already holds from before (its own storage,
    /// checked when it was first received): recorded in the store so that
    /// catch-up advertises it and peers do not send it again, but neither
    /// delivered, validated nor forwarded. Own messages are published instead.
    Restore {
        topic: String,
        origin: NodeId,
        seq: u64,
        payload: Vec<u8>,
    },
    /// Rule `final_floor`: `origin`'s seqs up to `seq` on `topic` are final
    /// (the app keeps their effect, not the messages): their bodies and
    /// index entries are dropped, catch-up counts them as held, and
    /// `head` (the message at `seq`) anchors the content commitment.
    Floor {
        topic: String,
        origin: NodeId,
        seq: u64,
        head: MsgId,
    },
    Subscribe(String),
    Unsubscribe(String),
    /// Rule `stem_before_fluff`: sends a message whose origin must stay
    /// hidden (an anonymous vote's carrier key) through the stem phase.
    /// Not stored, delivered or gossiped here until it comes back by
    /// gossip or its embargo runs out.
    Stem {
        topic: String,
        origin: NodeId,
        seq: u64,
        payload: Vec<u8>,
    },
    /// The app found a delivered message invalid after the fact: whoever
    /// delivered it first is penalised as for a rejected message.
    Invalid(MsgId),
    /// Heartbeat.
    Tick,
}

/// A message handed to the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: MsgId,
    pub msg: Message,
    /// The peer it came from.
    pub from: NodeId,
}

/// Notable events, for logs, counters and the immune system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Published {
        topic: String,
        seq: u64,
        id: MsgId,
    },
    /// Two different payloads claim the same (topic, origin, seq).
    Equivocation {
        topic: String,
        origin: NodeId,
        seq: u64,
        ids: Vec<MsgId>,
    },
    /// A packet from `peer` did not decode.
    Malformed {
        peer: NodeId,
    },
    /// The validator rejected a message first delivered by `peer`.
    InvalidMessage {
        peer: NodeId,
        id: MsgId,
    },
    /// `peer` fell below the graylist threshold.
    Graylisted {
        peer: NodeId,
    },
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Send(NodeId, Vec<u8>),
    Deliver(Delivery),
    Event(Event),
}

/// Counters for the UI and the simulator.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub published: u64,
    /// Messages recorded from this node's own storage (`Input::Restore`).
    pub restored: u64,
    pub delivered: u64,
    /// Messages received again after the first copy.
    pub duplicates: u64,
    pub invalid: u64,
    pub ignored: u64,
    pub malformed: u64,
    /// MESSAGEs for topics this node is not subscribed to.
    pub unsubscribed: u64,
    /// Packets dropped unread because the sender is graylisted.
    pub graylisted_dropped: u64,
    pub grafts_in_backoff: u64,
    pub unknown_wants: u64,
    pub broken_promises: u64,
    /// Control messages dropped over a per-heartbeat cap.
    pub capped: u64,
    pub equivocations: u64,
    /// Third and later payloads at one (topic, origin, seq): not kept.
    pub surplus: u64,
    /// Seqs asked of a peer because content differs at equal seqs (rules
    /// `hidden_fork_probe`, `fork_evidence_probe`, `broken_link_probe`).
    pub fork_probes: u64,
    pub pieces_served: u64,
    pub pieces_requested: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
    pub packets_in: u64,
    pub bytes_in: u64,
    /// Stem-phase messages accepted (from peers or this node's app).
    pub stem_in: u64,
    /// ... of which sent on to the stem relay.
    pub stem_relayed: u64,
    /// Messages this node moved from the stem phase to gossip.
    pub fluffed: u64,
    /// ... of which because their embargo ran out.
    pub stem_embargo_fluffs: u64,
}

/// Per-heartbeat counters for one peer (caps).
#[derive(Debug, Default, Clone)]
pub(super) struct HeartbeatCounters {
    pub control: u32,
    pub ihave: u32,
    pub served: u32,
    pub served_bytes: usize,
    pub requested: u32,
    pub vv_sent: u32,
    pub capped_penalised: bool,
}

#[derive(Debug, Default, Clone)]
pub(super) struct Peer {
    pub topics: BTreeSet<String>,
    /// What the peer's last version vectors claimed: (topic, origin) →
    /// contiguous seq. Forwarding skips messages the peer already has.
    pub known: BTreeMap<(String, NodeId), u64>,
    /// Topics on which the peer has told us where it stands: a digest equal
    /// to ours, or a version vector.
    pub summarised: BTreeSet<String>,
    pub hb: HeartbeatCounters,
}

/// The router. See the module docs.
pub struct Router {
    pub(super) me: NodeId,
    pub(super) cfg: Config,
    pub(super) rng: SplitMix64,
    pub(super) now: u64,
    pub(super) peers: BTreeMap<NodeId, Peer>,
    pub(super) subs: BTreeSet<String>,
    pub(super) mesh: BTreeMap<String, BTreeSet<NodeId>>,
    /// (topic, peer) → (time the backoff started, time it ends).
    pub(super) backoff: BTreeMap<(String, NodeId), (u64, u64)>,
    pub(super) seen: SeenCache,
    pub(super) mcache: MessageCache,
    pub(super) store: Store,
    pub(super) own_seq: BTreeMap<String, u64>,
    /// Ids asked for: id → (peer asked, deadline).
    pub(super) want_ids: BTreeMap<MsgId, (NodeId, u64)>,
    /// Seqs asked for: (topic, origin, seq) → (peer asked, deadline).
    pub(super) want_seqs: BTreeMap<(String, NodeId, u64), (NodeId, u64)>,
    /// How often each recently served id was served to each peer, and the
    /// heartbeat of the first time (entries expire after `mcache_len`).
    pub(super) retransmits: BTreeMap<(MsgId, NodeId), (u8, u64)>,
    pub(super) scores: BTreeMap<NodeId, PeerScore>,
    pub(super) heartbeats: u64,
    pub(super) graylisted: BTreeSet<NodeId>,
    validator: Option<Validator>,
    linker: Option<Linker>,
    /// Fork probes sent: (topic, origin, seq, peer) → when.
    probes: BTreeMap<(String, NodeId, u64, NodeId), u64>,
    pub(super) stats: Stats,
    pub(super) out: Vec<Output>,
    stem: super::stem::Stem,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").field("me", &self.me).field("peers", &self.peers.len()).finish_non_exhaustive()
    }
}

impl Router {
    /// A router for node `me`; `seed` drives its peer choices.
    pub fn new(me: NodeId, cfg: Config, seed: u64) -> Router {
        Router {
            me,
            rng: SplitMix64::new(seed),
            now: 0,
            peers: BTreeMap::new(),
            subs: BTreeSet::new(),
            mesh: BTreeMap::new(),
            backoff: BTreeMap::new(),
            seen: SeenCache::default(),
            mcache: MessageCache::new(cfg.mcache_len, cfg.mcache_gossip),
            store: Store::new(cfg.store_max_messages, cfg.store_max_bytes),
            own_seq: BTreeMap::new(),
            want_ids: BTreeMap::new(),
            want_seqs: BTreeMap::new(),
            retransmits: BTreeMap::new(),
            scores: BTreeMap::new(),
            heartbeats: 0,
            graylisted: BTreeSet::new(),
            validator: None,
            linker: None,
            probes: BTreeMap::new(),
            stats: Stats::default(),
            out: Vec::new(),
            stem: super::stem::Stem::default(),
            cfg,
        }
    }

    /// Installs the app's validator (default: accept everything).
    pub fn set_validator(&mut self, v: Validator) {
        self.validator = Some(v);
    }

    /// Installs the app's linker (default: none, and messages are compared
    /// by seq and head id only).
    pub fn set_linker(&mut self, l: Linker) {
        self.linker = Some(l);
    }

    pub fn node_id(&self) -> NodeId {
        self.me
    }

    /// What `peer`'s last version vector claimed for `origin` on `topic`
    /// (highest contiguous seq), if it sent one that named it.
    pub fn peer_claim(&self, topic: &str, peer: &NodeId, origin: &NodeId) -> Option<u64> {
        self.peers.get(peer)?.known.get(&(topic.to_owned(), *origin)).copied()
    }

    /// Whether `peer` has told us where it stands on `topic` (an equal
    /// digest or a version vector).
    pub fn peer_summarised(&self, topic: &str, peer: &NodeId) -> bool {
        self.peers.get(peer).is_some_and(|p| p.summarised.contains(topic))
    }

    /// Whether a catch-up request for `origin`'s seqs on `topic` is still
    /// waiting for its answer.
    pub fn awaiting(&self, topic: &str, origin: &NodeId) -> bool {
        self.want_seqs.keys().any(|(t, o, _)| t == topic && o == origin)
    }

    fn prev_of(&self, msg: &Message) -> Option<MsgId> {
        self.linker.as_ref().and_then(|l| l(msg))
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The message bodies this router holds on `topic`: what it delivered
    /// and may serve. The app re-reads them after replacing its state (a
    /// snapshot join), since the router never delivers a message twice.
    pub fn held_bodies(&self, topic: &str) -> Vec<Message> {
        self.store.bodies(topic).cloned().collect()
    }

    /// Payload bytes in the message store (rule `store_bounded_in_bytes`).
    pub fn store_bytes(&self) -> usize {
        self.store.bytes()
    }

    /// Index entries in the message store (seqs above the final floors).
    pub fn store_index_len(&self) -> usize {
        self.store.index_len()
    }

    /// Messages held in the stem phase here.
    pub fn stem_len(&self) -> usize {
        self.stem.len()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The mesh of `topic`, in id order.
    pub fn mesh_peers(&self, topic: &str) -> Vec<NodeId> {
        self.mesh.get(topic).map(|m| m.iter().copied().collect()).unwrap_or_default()
    }

    /// Connected peers, in id order.
    pub fn peers(&self) -> Vec<NodeId> {
        self.peers.keys().copied().collect()
    }

    pub fn is_subscribed(&self, topic: &str) -> bool {
        self.subs.contains(topic)
    }

    /// The peer's current score.
    pub fn score(&self, peer: &NodeId) -> f64 {
        self.scores.get(peer).map_or(0.0, |s| s.score(self.now, &self.cfg.score))
    }

    /// Whether a backoff keeps us from grafting `peer` on `topic`.
    pub fn in_backoff(&self, topic: &str, peer: &NodeId) -> bool {
        self.backoff.get(&(topic.to_owned(), *peer)).is_some_and(|&(_, end)| end > self.now)
    }

    /// Feeds one input at time `now_ms`; returns what to do.
    pub fn handle(&mut self, input: Input, now_ms: u64) -> Vec<Output> {
        self.now = self.now.max(now_ms);
        match input {
            Input::PeerConnected(peer) => self.on_connected(peer),
            Input::PeerDisconnected(peer) => self.on_disconnected(peer),
            Input::Frame(peer, bytes) => self.on_frame(peer, &bytes),
            Input::Publish { topic, payload } => self.publish(topic, None, payload),
            Input::PublishSeq { topic, seq, payload } => self.publish(topic, Some(seq), payload),
            Input::Restore { topic, origin, seq, payload } => self.restore(topic, origin, seq, payload),
            Input::Stem { topic, origin, seq, payload } => {
                if super::message::valid_topic(&topic) && payload.len() <= super::message::MAX_PAYLOAD && seq > 0 {
                    self.on_stem(None, Message { topic, origin, seq, hops: 0, payload });
                }
            }
            Input::Floor { topic, origin, seq, head } => self.store.set_floor(&topic, origin, seq, head),
            Input::Subscribe(topic) => self.subscribe(topic),
            Input::Unsubscribe(topic) => self.unsubscribe(topic),
            Input::Invalid(id) => {
                if let Some(peer) = self.seen.first_from(&id) {
                    self.penalise_invalid(peer, id);
                }
            }
            Input::Tick => self.heartbeat(),
        }
        std::mem::take(&mut self.out)
    }

    pub(super) fn send(&mut self, peer: NodeId, p: &Packet) {
        let bytes = p.encode();
        self.send_bytes(peer, bytes);
    }

    pub(super) fn send_bytes(&mut self, peer: NodeId, bytes: Vec<u8>) {
        self.stats.packets_out += 1;
        self.stats.bytes_out += bytes.len() as u64;
        self.out.push(Output::Send(peer, bytes));
    }

    pub(super) fn score_mut(&mut self, peer: NodeId) -> &mut PeerScore {
        self.scores.entry(peer).or_default()
    }

    pub(super) fn misbehaved(&mut self, peer: NodeId) {
        self.score_mut(peer).misbehaved();
        self.check_graylist(peer);
    }

    fn penalise_invalid(&mut self, peer: NodeId, id: MsgId) {
        self.stats.invalid += 1;
        self.score_mut(peer).invalid();
        self.out.push(Output::Event(Event::InvalidMessage { peer, id }));
        self.check_graylist(peer);
    }

    pub(super) fn check_graylist(&mut self, peer: NodeId) {
        let below = self.score(&peer) < self.cfg.score.graylist_threshold;
        if below && self.graylisted.insert(peer) {
            self.out.push(Output::Event(Event::Graylisted { peer }));
        } else if !below {
            self.graylisted.remove(&peer);
        }
    }

    fn on_connected(&mut self, peer: NodeId) {
        if peer == self.me || self.peers.contains_key(&peer) {
            return;
        }
        self.peers.insert(peer, Peer::default());
        let subs: Vec<(bool, String)> = self.subs.iter().map(|t| (true, t.clone())).collect();
        for chunk in subs.chunks(MAX_ANNOUNCE) {
            self.send(peer, &Packet::Announce(chunk.to_vec()));
        }
    }

    fn on_disconnected(&mut self, peer: NodeId) {
        if self.peers.remove(&peer).is_none() {
            return;
        }
        for (topic, m) in self.mesh.iter_mut() {
            if m.remove(&peer)
                && let Some(s) = self.scores.get_mut(&peer)
            {
                s.left_mesh(topic);
            }
        }
        // Promises made by a peer that left are void, not broken: ask others.
        self.want_ids.retain(|_, (p, _)| *p != peer);
        self.want_seqs.retain(|_, (p, _)| *p != peer);
    }

    fn subscribe(&mut self, topic: String) {
        if !super::message::valid_topic(&topic) || !self.subs.insert(topic.clone()) {
            return;
        }
        self.mesh.entry(topic.clone()).or_default();
        let peers: Vec<NodeId> = self.peers.keys().copied().collect();
        for p in peers {
            self.send(p, &Packet::Announce(vec![(true, topic.clone())]));
        }
        // Join the mesh now rather than at the next heartbeat.
        if self.cfg.mode == Mode::SynapseSub {
            self.maintain_mesh(&topic);
            self.send_digest(&topic, usize::MAX);
        }
    }

    fn unsubscribe(&mut self, topic: String) {
        if !self.subs.remove(&topic) {
            return;
        }
        let mesh = self.mesh.remove(&topic).unwrap_or_default();
        let backoff = self.cfg.prune_backoff_ms.min(u32::MAX as u64) as u32;
        for p in mesh {
            self.score_mut(p).left_mesh(&topic);
            self.send(p, &Packet::Prune { topic: topic.clone(), backoff_ms: backoff });
        }
        let peers: Vec<NodeId> = self.peers.keys().copied().collect();
        for p in peers {
            self.send(p, &Packet::Announce(vec![(false, topic.clone())]));
        }
    }

    fn publish(&mut self, topic: String, seq: Option<u64>, payload: Vec<u8>) {
        if !super::message::valid_topic(&topic) || payload.len() > super::message::MAX_PAYLOAD || seq == Some(0) {
            return;
        }
        let last = self.own_seq.get(&topic).copied().unwrap_or(0);
        let seq = seq.unwrap_or(last.saturating_add(1));
        let msg = Message { topic: topic.clone(), origin: self.me, seq, hops: 0, payload };
        let id = msg.id();
        if !self.seen.insert(id, None, self.now, self.cfg.seen_ttl_ms) {
            return; // The same payload again: one message, one seq.
        }
        self.own_seq.insert(topic.clone(), seq.max(last));
        self.stats.published += 1;
        let prev = self.prev_of(&msg);
        self.store.insert(id, msg.clone(), prev);
        self.mcache.put(&topic, id);
        self.out.push(Output::Event(Event::Published { topic: topic.clone(), seq, id }));
        self.flood(msg);
    }

    /// Peers on `topic` above the publish threshold.
    fn publish_targets(&self, topic: &str) -> Vec<NodeId> {
        self.peers
            .iter()
            .filter(|(p, st)| st.topics.contains(topic) && self.score(p) >= self.cfg.score.publish_threshold)
            .map(|(p, _)| *p)
            .collect()
    }

    /// Flood-publish: to every subscribed peer above the publish threshold,
    /// so that an eclipsed mesh cannot censor our own messages (or a stem
    /// this node fluffs).
    fn flood(&mut self, mut msg: Message) {
        msg.hops = 1;
        let targets = self.publish_targets(&msg.topic);
        let bytes = Packet::Message(vec![msg]).encode();
        for p in targets {
            self.send_bytes(p, bytes.clone());
        }
    }

    /// Rule `restore`: see [`Input::Restore`]. Malformed input is ignored.
    fn restore(&mut self, topic: String, origin: NodeId, seq: u64, payload: Vec<u8>) {
        if !super::message::valid_topic(&topic) || payload.len() > super::message::MAX_PAYLOAD || seq == 0 {
            return;
        }
        let msg = Message { topic, origin, seq, hops: 0, payload };
        let id = msg.id();
        if self.store.knows(&id, &msg) {
            return;
        }
        self.seen.insert(id, None, self.now, self.cfg.seen_ttl_ms);
        self.stats.restored += 1;
        let prev = self.prev_of(&msg);
        self.store.insert(id, msg, prev);
    }

    fn on_frame(&mut self, peer: NodeId, bytes: &[u8]) {
        if !self.peers.contains_key(&peer) {
            return;
        }
        self.stats.packets_in += 1;
        self.stats.bytes_in += bytes.len() as u64;
        if self.score(&peer) < self.cfg.score.graylist_threshold {
            self.stats.graylisted_dropped += 1;
            return;
        }
        let packet = match Packet::decode(bytes) {
            Ok(p) => p,
            Err(_) => {
                self.stats.malformed += 1;
                self.out.push(Output::Event(Event::Malformed { peer }));
                self.misbehaved(peer);
                return;
            }
        };
        if !matches!(packet, Packet::Message(_)) && !self.control_allowed(peer) {
            return;
        }
        match packet {
            Packet::Announce(subs) => self.on_announce(peer, subs),
            Packet::Message(msgs) => {
                for m in msgs {
                    self.on_message(peer, m);
                }
            }
            Packet::IHave { topic, flags, ids, vv, digest } => self.on_ihave(peer, topic, flags, ids, vv, digest),
            Packet::Want { ids, ranges } => self.on_want(peer, ids, ranges),
            Packet::Graft(topic) => self.on_graft(peer, topic),
            Packet::Prune { topic, backoff_ms } => self.on_prune(peer, topic, backoff_ms),
            Packet::Stem(msg) => self.on_stem(Some(peer), msg),
        }
    }

    /// Rules `stem_before_fluff`, `fluff_coin` and `stem_embargo` for a
    /// stem message from `from` (`None`: this node's app).
    fn on_stem(&mut self, from: Option<NodeId>, msg: Message) {
        if !self.subs.contains(&msg.topic) {
            self.stats.unsubscribed += 1;
            return;
        }
        let id = msg.id();
        if self.store.knows(&id, &msg) || self.seen.contains(&id) {
            self.stats.duplicates += 1;
            return;
        }
        // Rule `stem_loop`.
        match self.stem.held(&id) {
            Some(true) => {
                self.stats.duplicates += 1;
                return;
            }
            Some(false) => return self.fluff(msg),
            None => {}
        }
        if let Some(peer) = from {
            match self.validator.as_mut().map_or(Validation::Accept, |v| v(&msg)) {
                Validation::Accept => {}
                Validation::Reject => return self.penalise_invalid(peer, id),
                Validation::Ignore => {
                    self.stats.ignored += 1;
                    return;
                }
            }
        }
        self.stats.stem_in += 1;
        let peers = self.publish_targets(&msg.topic);
        let now = self.now;
        match self.stem.route(from, &peers, now, &mut self.rng) {
            super::stem::Step::Relay(p) if self.stem.hold(id, msg.clone(), from.is_none(), now, &mut self.rng) => {
                self.stats.stem_relayed += 1;
                self.send(p, &Packet::Stem(msg));
            }
            _ => self.fluff(msg),
        }
    }

    /// Ends the stem phase here: `msg` is validated (again, for the
    /// origin's own), stored, delivered and sent to every subscribed peer,
    /// as a publish is.
    fn fluff(&mut self, msg: Message) {
        let id = msg.id();
        self.stem.arrived(&id);
        if self.store.knows(&id, &msg) || self.seen.contains(&id) {
            return;
        }
        if self.validator.as_mut().map_or(Validation::Accept, |v| v(&msg)) != Validation::Accept {
            return;
        }
        self.seen.insert(id, None, self.now, self.cfg.seen_ttl_ms);
        self.stats.fluffed += 1;
        let topic = msg.topic.clone();
        let prev = self.prev_of(&msg);
        if let Inserted::Surplus = self.store.insert(id, msg.clone(), prev) {
            return;
        }
        self.mcache.put(&topic, id);
        self.stats.delivered += 1;
        self.out.push(Output::Deliver(Delivery { id, msg: msg.clone(), from: self.me }));
        self.flood(msg);
    }

    /// Rule `stem_embargo`: fluffs what no gossip brought back in time.
    pub(super) fn stem_timers(&mut self) {
        for msg in self.stem.due(self.now) {
            self.stats.stem_embargo_fluffs += 1;
            self.fluff(msg);
        }
    }

    /// Rule `control_cap`: at most `max_control_per_heartbeat` control
    /// packets per peer per heartbeat; the excess is dropped and the first
    /// excess of each heartbeat counts as misbehaviour.
    fn control_allowed(&mut self, peer: NodeId) -> bool {
        let cap = self.cfg.max_control_per_heartbeat;
        let Some(st) = self.peers.get_mut(&peer) else { return false };
        st.hb.control += 1;
        if st.hb.control <= cap {
            return true;
        }
        self.stats.capped += 1;
        if !st.hb.capped_penalised {
            st.hb.capped_penalised = true;
            self.misbehaved(peer);
        }
        false
    }

    fn on_announce(&mut self, peer: NodeId, subs: Vec<(bool, String)>) {
        let max = self.cfg.max_peer_topics;
        for (sub, topic) in subs {
            let Some(st) = self.peers.get_mut(&peer) else { return };
            if sub {
                if st.topics.len() >= max || !st.topics.insert(topic.clone()) {
                    continue;
                }
                // Catch-up on connect: tell the peer where we are.
                if self.subs.contains(&topic) && self.cfg.mode == Mode::SynapseSub {
                    self.send_digest_to(peer, &topic);
                }
            } else {
                st.topics.remove(&topic);
                if let Some(m) = self.mesh.get_mut(&topic)
                    && m.remove(&peer)
                {
                    self.score_mut(peer).left_mesh(&topic);
                }
            }
        }
    }

    fn on_message(&mut self, peer: NodeId, mut msg: Message) {
        // Rule `unsubscribed_not_forwarded`.
        if !self.subs.contains(&msg.topic) {
            self.stats.unsubscribed += 1;
            return;
        }
        let id = msg.id();
        // By gossip: a stem embargo on it is over.
        self.stem.arrived(&id);
        let in_mesh = self.mesh.get(&msg.topic).is_some_and(|m| m.contains(&peer));
        // Whatever its fate, a piece that arrived fulfils the promise for it.
        self.want_ids.remove(&id);
        self.want_seqs.remove(&(msg.topic.clone(), msg.origin, msg.seq));
        // Rule `dedup_before_validation`: a seen id is never validated,
        // delivered or forwarded again.
        if self.store.knows(&id, &msg) || !self.seen.insert(id, Some(peer), self.now, self.cfg.seen_ttl_ms) {
            self.stats.duplicates += 1;
            if in_mesh {
                self.score_mut(peer).mesh_delivered(&msg.topic);
            }
            return;
        }
        // Two payloads at one seq prove an equivocation; a third adds
        // nothing, so it is dropped before it costs a validation.
        if self.store.ids_at(&msg.topic, &msg.origin, msg.seq).len() >= super::store::MAX_PER_SEQ {
            self.stats.surplus += 1;
            return;
        }
        let verdict = match self.validator.as_mut() {
            Some(v) => v(&msg),
            None => Validation::Accept,
        };
        match verdict {
            Validation::Accept => {}
            Validation::Reject => return self.penalise_invalid(peer, id),
            Validation::Ignore => {
                self.stats.ignored += 1;
                return;
            }
        }
        let topic = msg.topic.clone();
        self.score_mut(peer).first_delivery();
        let mesh: Vec<NodeId> = self.mesh.get(&topic).map(|m| m.iter().copied().collect()).unwrap_or_default();
        for q in &mesh {
            self.score_mut(*q).mesh_expected(&topic);
        }
        if in_mesh {
            self.score_mut(peer).mesh_delivered(&topic);
        }
        let prev = self.prev_of(&msg);
        let mut evidence = false;
        match self.store.insert(id, msg.clone(), prev) {
            Inserted::Equivocation(ids) => {
                self.stats.equivocations += 1;
                evidence = true;
                let (origin, seq) = (msg.origin, msg.seq);
                self.out.push(Output::Event(Event::Equivocation { topic: topic.clone(), origin, seq, ids }));
            }
            Inserted::Surplus => {
                self.stats.surplus += 1;
                return;
            }
            Inserted::New | Inserted::AlreadyHad => {}
        }
        // Rule `broken_link_probe`: this message names a predecessor we do
        // not hold while we hold another one at that seq; the sender most
        // likely holds it.
        if let Some(s) = self.store.broken_link(&topic, &msg.origin) {
            self.probe(peer, &topic, msg.origin, s);
        }
        self.mcache.put(&topic, id);
        self.stats.delivered += 1;
        self.out.push(Output::Deliver(Delivery { id, msg: msg.clone(), from: peer }));
        // Forward: to the mesh (or, flooding, to every subscribed peer),
        // never back to the sender nor to the origin.
        msg.hops = msg.hops.saturating_add(1);
        let origin = msg.origin;
        let targets: Vec<NodeId> = match self.cfg.mode {
            Mode::SynapseSub => mesh,
            Mode::Flood => self.peers.iter().filter(|(_, st)| st.topics.contains(&topic)).map(|(p, _)| *p).collect(),
        };
        let seq = msg.seq;
        let key = (topic.clone(), origin);
        // Rule `skip_known_holders`, except for equivocation evidence: a peer
        // that holds *a* message at this seq may hold the other one, so the
        // second payload goes to the whole mesh (rule `forward_evidence`).
        let has =
            |q: &NodeId| !evidence && self.peers.get(q).and_then(|st| st.known.get(&key)).is_some_and(|&c| c >= seq);
        let targets: Vec<NodeId> = targets.into_iter().filter(|q| *q != peer && *q != origin && !has(q)).collect();
        if targets.is_empty() {
            return;
        }
        let bytes = Packet::Message(vec![msg]).encode();
        for q in targets {
            self.send_bytes(q, bytes.clone());
        }
    }

    fn on_ihave(
        &mut self,
        peer: NodeId,
        topic: String,
        flags: u8,
        ids: Vec<MsgId>,
        vv: Vec<VvEntry>,
        digest: Option<[u8; super::message::DIGEST_LEN]>,
    ) {
        if self.cfg.mode != Mode::SynapseSub || !self.subs.contains(&topic) {
            return;
        }
        if self.score(&peer) < self.cfg.score.gossip_threshold {
            return;
        }
        // Rule `ihave_cap`: gossip I_HAVEs (with ids) are capped per
        // heartbeat; version-vector chunks only by the control cap, so that
        // a large vector (many origins) is never cut short.
        let Some(st) = self.peers.get_mut(&peer) else { return };
        let mut ids = ids;
        if !ids.is_empty() {
            st.hb.ihave += 1;
            if st.hb.ihave > self.cfg.max_ihave_per_heartbeat {
                self.stats.capped += 1;
                ids.clear();
            }
        }
        let budget = self.cfg.max_requests_per_heartbeat.saturating_sub(st.hb.requested);
        let mut left = budget as u64;
        let deadline = self.now + self.cfg.want_followup_ms;
        let mut want_ids = Vec::new();
        for id in ids {
            if left == 0 {
                break;
            }
            if self.seen.contains(&id) || self.want_ids.contains_key(&id) || self.store.get(&id).is_some() {
                continue;
            }
            self.want_ids.insert(id, (peer, deadline));
            want_ids.push(id);
            left -= 1;
        }
        if let Some(st) = self.peers.get_mut(&peer) {
            if !vv.is_empty() || flags & FLAG_REPLY != 0 {
                st.summarised.insert(topic.clone());
            }
            for e in &vv {
                let key = (topic.clone(), e.origin);
                if st.known.len() >= MAX_KNOWN && !st.known.contains_key(&key) {
                    continue;
                }
                let k = st.known.entry(key).or_insert(0);
                *k = (*k).max(e.seq);
            }
        }
        self.compare_content(peer, &topic, &vv);
        let mut ranges = Vec::new();
        for VvEntry { origin, seq: their, .. } in vv {
            if left == 0 {
                break;
            }
            let upto = their.min(self.store.contiguous(&topic, &origin).saturating_add(MAX_RANGE_LEN));
            for (from, to) in self.store.missing(&topic, &origin, upto, left) {
                // Skip seqs already asked of someone; split around them.
                let mut run: Option<(u64, u64)> = None;
                for seq in from..=to {
                    let key = (topic.clone(), origin, seq);
                    if self.want_seqs.contains_key(&key) || left == 0 {
                        if let Some((a, b)) = run.take() {
                            ranges.push(SeqRange { topic: topic.clone(), origin, from: a, to: b });
                        }
                        continue;
                    }
                    self.want_seqs.insert(key, (peer, deadline));
                    left -= 1;
                    run = Some(match run {
                        Some((a, _)) => (a, seq),
                        None => (seq, seq),
                    });
                }
                if let Some((a, b)) = run {
                    ranges.push(SeqRange { topic: topic.clone(), origin, from: a, to: b });
                }
            }
        }
        let asked = (budget as u64 - left) as u32;
        if let Some(st) = self.peers.get_mut(&peer) {
            st.hb.requested += asked;
        }
        self.stats.pieces_requested += asked as u64;
        // Every registered promise is asked for: ranges beyond one packet's
        // cap go in further packets (ids ≤ the request cap < MAX_IDS).
        if !want_ids.is_empty() || !ranges.is_empty() {
            let mut chunks = ranges.chunks(MAX_RANGES);
            let first = chunks.next().map(|c| c.to_vec()).unwrap_or_default();
            self.send(peer, &Packet::Want { ids: want_ids, ranges: first });
            for c in chunks {
                self.send(peer, &Packet::Want { ids: vec![], ranges: c.to_vec() });
            }
        }
        // Digest exchange: if our summaries differ, send ours in full and
        // ask for theirs; a full summary with FLAG_REPLY gets ours back.
        // Rule `vv_reply_cap`: a full vector is long and the request for it
        // short, so at most `max_vv_per_heartbeat` go to one peer per
        // heartbeat (no amplification).
        let differs = digest.is_some_and(|d| d != self.store.digest(&topic));
        let wants_reply = differs || flags & FLAG_REPLY != 0;
        let Some(st) = self.peers.get_mut(&peer) else { return };
        if digest.is_some() && !differs {
            st.summarised.insert(topic.clone());
        }
        if wants_reply && st.hb.vv_sent >= self.cfg.max_vv_per_heartbeat {
            self.stats.capped += 1;
            return;
        }
        if wants_reply {
            st.hb.vv_sent += 1;
        }
        if differs {
            self.send_version_vector(peer, &topic, FLAG_REPLY);
        } else if flags & FLAG_REPLY != 0 {
            self.send_version_vector(peer, &topic, 0);
        }
    }

    /// Compares the content commitments of a peer's version vector with
    /// ours and asks the peer for the seqs where they differ:
    ///
    /// - `hidden_fork_probe`: the peer's linked head is not the message we
    ///   hold at that seq: it holds another branch; ask for its message
    ///   there (the two then prove the fork, and `broken_link_probe` walks
    ///   down to where the branches split);
    /// - `fork_evidence_probe`: the peer's linked prefix stops below a seq
    ///   we hold with a single message: it holds a fork or a broken link
    ///   there; ask for what it holds at that seq;
    /// - `broken_link_probe`: our own linked prefix stops at a message
    ///   naming a predecessor we lack, and the peer holds that seq: ask it.
    ///
    /// Probes register no promise (the peer may rightly hold nothing more)
    /// and are not repeated to one peer within `PROBE_REPEAT_MS`.
    fn compare_content(&mut self, peer: NodeId, topic: &str, vv: &[VvEntry]) {
        let mut probes: Vec<(NodeId, u64)> = Vec::new();
        for e in vv {
            if probes.len() >= MAX_PROBES_PER_VV {
                break;
            }
            // A zero head with a non-zero linked prefix makes no claim.
            if e.head == MsgId([0; 32]) && e.linked > 0 {
                continue;
            }
            let ours = self.store.entry(topic, &e.origin);
            if e.linked > 0 && e.linked <= ours.seq && !self.store.ids_at(topic, &e.origin, e.linked).contains(&e.head)
            {
                probes.push((e.origin, e.linked));
                continue;
            }
            // `linked < seq` so the addition cannot overflow.
            let at = e.linked.saturating_add(1);
            if e.linked < e.seq && at <= ours.seq && self.store.ids_at(topic, &e.origin, at).len() == 1 {
                probes.push((e.origin, at));
                continue;
            }
            if let Some(s) = self.store.broken_link(topic, &e.origin)
                && s <= e.seq
            {
                probes.push((e.origin, s));
            }
        }
        for (origin, seq) in probes {
            self.probe(peer, topic, origin, seq);
        }
    }

    /// Asks `peer` for every message it holds at (topic, origin, seq), with
    /// no promise attached. Not repeated within `PROBE_REPEAT_MS`.
    fn probe(&mut self, peer: NodeId, topic: &str, origin: NodeId, seq: u64) {
        let now = self.now;
        if self.probes.len() >= MAX_PROBES {
            self.probes.retain(|_, t| now < t.saturating_add(PROBE_REPEAT_MS));
            if self.probes.len() >= MAX_PROBES {
                return;
            }
        }
        let key = (topic.to_owned(), origin, seq, peer);
        if self.probes.get(&key).is_some_and(|t| now < t.saturating_add(PROBE_REPEAT_MS)) {
            return;
        }
        self.probes.insert(key, now);
        self.stats.fork_probes += 1;
        let range = SeqRange { topic: topic.to_owned(), origin, from: seq, to: seq };
        self.send(peer, &Packet::Want { ids: vec![], ranges: vec![range] });
    }

    fn on_want(&mut self, peer: NodeId, ids: Vec<MsgId>, ranges: Vec<SeqRange>) {
        if self.cfg.mode != Mode::SynapseSub || self.score(&peer) < self.cfg.score.gossip_threshold {
            return;
        }
        let mut reply: Vec<Message> = Vec::new();
        let mut unknown = 0u32;
        for id in ids {
            if !self.can_serve(peer) {
                break;
            }
            let Some(m) = self.store.get(&id) else {
                unknown += 1;
                continue;
            };
            let (n, _) = self.retransmits.entry((id, peer)).or_insert((0, self.heartbeats));
            if *n >= self.cfg.max_retransmit {
                continue;
            }
            *n += 1;
            let m = m.clone();
            self.count_served(peer, &m);
            reply.push(m);
        }
        // Rule `want_unknown_id`: asking for what we never had is ignored
        // and counted as misbehaviour (once per packet).
        if unknown > 0 {
            self.stats.unknown_wants += unknown as u64;
            self.misbehaved(peer);
        }
        for r in ranges {
            for m in self.store.range(&r.topic, &r.origin, r.from, r.to).into_iter().cloned().collect::<Vec<_>>() {
                if !self.can_serve(peer) {
                    break;
                }
                self.count_served(peer, &m);
                reply.push(m);
            }
        }
        self.send_batches(peer, reply);
    }

    /// Rule `serve_rate_limit`: pieces and bytes per peer per heartbeat.
    fn can_serve(&self, peer: NodeId) -> bool {
        self.peers.get(&peer).is_some_and(|st| {
            st.hb.served < self.cfg.max_served_per_heartbeat
                && st.hb.served_bytes < self.cfg.max_served_bytes_per_heartbeat
        })
    }

    fn count_served(&mut self, peer: NodeId, m: &Message) {
        self.stats.pieces_served += 1;
        if let Some(st) = self.peers.get_mut(&peer) {
            st.hb.served += 1;
            st.hb.served_bytes += m.encoded_len();
        }
    }

    /// Rule `chunked_replies`: at most `batch_max_messages` messages and
    /// about `batch_max_bytes` per MESSAGE packet, so that each reply is one
    /// 16 KiB frame unless a single message is itself larger.
    fn send_batches(&mut self, peer: NodeId, msgs: Vec<Message>) {
        let mut batch: Vec<Message> = Vec::new();
        let mut bytes = 0;
        for mut m in msgs {
            m.hops = m.hops.saturating_add(1);
            let len = m.encoded_len();
            let max_messages = self.cfg.batch_max_messages.clamp(1, MAX_BATCH);
            if !batch.is_empty() && (batch.len() >= max_messages || bytes + len > self.cfg.batch_max_bytes) {
                self.send(peer, &Packet::Message(std::mem::take(&mut batch)));
                bytes = 0;
            }
            bytes += len;
            batch.push(m);
        }
        if !batch.is_empty() {
            self.send(peer, &Packet::Message(batch));
        }
    }

    fn on_graft(&mut self, peer: NodeId, topic: String) {
        if self.cfg.mode != Mode::SynapseSub {
            return;
        }
        let subscribed = self.peers.get(&peer).is_some_and(|st| st.topics.contains(&topic));
        // Rule `graft_unknown_topic`: ignored.
        if !self.subs.contains(&topic) || !subscribed {
            return;
        }
        if self.mesh.get(&topic).is_some_and(|m| m.contains(&peer)) {
            return;
        }
        let backoff = self.cfg.prune_backoff_ms.min(u32::MAX as u64) as u32;
        // Rule `graft_during_backoff`: ignored, penalised, answered with a
        // PRUNE that restarts the backoff.
        if self.in_backoff(&topic, &peer) {
            // A GRAFT that crossed our PRUNE in flight is a race, not an
            // offence: ignored without penalty within the slack.
            let started = self.backoff.get(&(topic.clone(), peer)).map_or(0, |&(start, _)| start);
            if self.now < started.saturating_add(self.cfg.graft_slack_ms) {
                return;
            }
            self.stats.grafts_in_backoff += 1;
            self.misbehaved(peer);
            self.backoff.insert((topic.clone(), peer), (self.now, self.now + self.cfg.prune_backoff_ms));
            self.send(peer, &Packet::Prune { topic, backoff_ms: backoff });
            return;
        }
        let full = self.mesh.get(&topic).map_or(0, |m| m.len()) >= self.cfg.d_hi;
        if self.score(&peer) < 0.0 || full {
            self.backoff.insert((topic.clone(), peer), (self.now, self.now + self.cfg.prune_backoff_ms));
            self.send(peer, &Packet::Prune { topic, backoff_ms: backoff });
            return;
        }
        self.mesh.entry(topic.clone()).or_default().insert(peer);
        let now = self.now;
        self.score_mut(peer).joined_mesh(&topic, now);
    }

    fn on_prune(&mut self, peer: NodeId, topic: String, backoff_ms: u32) {
        // Backoffs are only kept for our topics: a peer cannot fill memory
        // with PRUNEs for made-up ones.
        if !self.subs.contains(&topic) {
            return;
        }
        if let Some(m) = self.mesh.get_mut(&topic)
            && m.remove(&peer)
        {
            self.score_mut(peer).left_mesh(&topic);
        }
        let ms = (backoff_ms as u64).clamp(1_000, self.cfg.max_backoff_ms);
        let end = self.now + ms;
        let now = self.now;
        let slot = self.backoff.entry((topic, peer)).or_insert((now, end));
        slot.1 = slot.1.max(end);
    }

    /// Sends our version-vector digest of `topic` to `peer`.
    pub(super) fn send_digest_to(&mut self, peer: NodeId, topic: &str) {
        let digest = Some(self.store.digest(topic));
        self.send(peer, &Packet::IHave { topic: topic.to_owned(), flags: 0, ids: vec![], vv: vec![], digest });
    }

    /// Sends our full version vector of `topic` (chunked by `MAX_VV`).
    pub(super) fn send_version_vector(&mut self, peer: NodeId, topic: &str, flags: u8) {
        let vv = self.store.version_vector(topic);
        if vv.is_empty() {
            self.send(peer, &Packet::IHave { topic: topic.to_owned(), flags, ids: vec![], vv, digest: None });
            return;
        }
        // Only the last chunk asks for a reply, so a long vector costs the
        // peer one reply, not one per chunk.
        let chunks = vv.chunks(MAX_VV).count();
        for (k, chunk) in vv.chunks(MAX_VV).enumerate() {
            let flags = if k + 1 == chunks { flags } else { flags & !FLAG_REPLY };
            let p = Packet::IHave { topic: topic.to_owned(), flags, ids: vec![], vv: chunk.to_vec(), digest: None };
            self.send(peer, &p);
        }
    }

    /// Sends I_HAVE of `ids` on `topic` to `peer` (the newest `MAX_IDS`).
    pub(super) fn send_ihave(&mut self, peer: NodeId, topic: &str, ids: &[MsgId]) {
        let ids = ids[ids.len().saturating_sub(MAX_IDS)..].to_vec();
        self.send(peer, &Packet::IHave { topic: topic.to_owned(), flags: 0, ids, vv: vec![], digest: None });
    }
}
