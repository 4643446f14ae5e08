//! The peer manager: every connection policy of the transport as one sans-IO
//! state machine (str0m / quinn-proto style). It owns no browser object and
//! reads no clock: the driver (`runtime::transport` in the browser, the
//! whole-node simulator natively) feeds it [`Input`]s with `now`, carries out
//! the [`Output`]s it polls, and arms one timer at [`PeerManager::poll_timeout`].
//!
//! Rules, each named where it is decided:
//! - `connection_budget`, `max_connections` ([`PeerManager::dial`]):
//!   Chromium allows only ~500 RTCPeerConnections per tab lifetime.
//! - `plan_description` ([`negotiation`]): perfect negotiation with the glare
//!   fix, and session ids that recognise a replaced connection.
//! - `stale_candidate` / `buffer_early_candidates` ([`PeerManager::on_candidate`]).
//! - `handshake_timeout`: an unproven peer is dropped after
//!   `handshake_timeout_ms`.
//! - `disconnect_grace`: `disconnected` is often transient; give ICE 5 s.
//! - `reconnect_backoff` ([`backoff`]) while the peer is still wanted.
//! - `join_fallback_dial`: a joiner dials its welcome list; if its offer does
//!   not arrive within 3 s we dial it ourselves.
//! - `dial_from_peer_records`: neighbours of our peers are dialled while we
//!   are under the target degree.
//! - `signal_route` / `relay_forward` / `relay_rate_limit` /
//!   `relay_replay_window` ([`relay`]): relayed signals carry a signed send
//!   time and nonce; old or repeated ones are refused, and each author may
//!   have at most 50 a second delivered to us.
//! - `stale_peer_record`: a record not newer than the last one is dropped.
//!
//! Against abuse (a stranger's keys are free, and every rendezvous client
//! may send us offers):
//! - `offer_must_parse`: an offer that would create a connection must carry
//!   a DTLS fingerprint and ICE credentials, checked before anything is
//!   spent on it.
//! - `pending_connection_timeout`: a connection not proven
//!   `pending_timeout_ms` after its creation is dropped, whether or not its
//!   channel ever opened.
//! - `max_pending_inbound`: at most `max_pending_inbound` connections made
//!   for strangers' offers may be unproven at once.
//! - `unproven_replacement_once`: a peer whose connection is not proven
//!   may replace it with a new session once (a reload, or glare between
//!   two dials); further offers are refused with a bye until it is proven
//!   or times out, so one stranger cannot spend the connection budget by
//!   re-offering.
//! - `budget_reserve_for_dials`: strangers' offers may not spend the last
//!   `dial_reserve` RTCPeerConnections of the lifetime budget.
//! - `bounded_directory_dials` / `refill_degree`: the directory is dialled
//!   up to `high_degree` connections, in random order; below
//!   `target_degree` a lost connection is replaced by another wanted peer.
//! - `dial_from_peer_records` dials at most `max_record_dials` per record.
//! - `degree_counts_proven_and_own_dials`: strangers' pending offers do
//!   not count toward the degree, so a flood of them cannot stop this node
//!   from dialling.
//! - `max_pending_dials` / `dial_queue_newest_first`: at most
//!   `max_pending_dials` own dials are unproven at once; other wanted
//!   peers wait in a bounded queue, newest joiner first (Sybils that
//!   joined before an honest peer cannot keep it waiting behind them), and
//!   are dialled as slots free up.
//! - `refuse_with_bye`: an offer refused by `max_pending_inbound` is
//!   answered with a bye, so the sender stops waiting, and the sender is
//!   queued for a dial of our own if it is a wanted peer.
//! - `refill_degree` prefers wanted peers with the fewest failed dials.
//! - `rotate_one_peer`: every two minutes a node at its high degree swaps
//!   one random proven peer for another wanted one.
//! - `max_degree`: offers from new peers are refused (with a bye) once
//!   this node holds `max_degree` connections: it dials up to
//!   `high_degree` and accepts a few more, never a full mesh.

pub mod backoff;
pub mod config;
pub mod fake;
pub mod fuzz;
pub mod negotiation;
pub mod net;
pub mod relay;
pub mod rendezvous_set;
pub mod rng;
pub mod view;

#[cfg(test)]
mod tests;

pub use config::NodeConfig;
pub use view::{ConnState, PeerInfo, PeerState, ReceivedHello, RendezvousServer, RendezvousStatus, Stats, Timings};

use crate::identity::{Identity, NodeId};
use crate::session::{Session, SessionEvent, sdp_fingerprint};
use crate::signaling::{PeerSignal, SdpType, SignalPayload};
use crate::wire::{PeerRecord, RelaySignal, SignedHello, WireMsg};
use negotiation::{ConnView, Plan, plan_description};
use relay::{RelayWindows, ReplayGuard};
use rendezvous_set::RendezvousSet;
use rng::Rng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Received hellos kept for display.
pub const MAX_HELLOS: usize = 500;
/// Candidates buffered per connection before its remote description.
pub const MAX_PENDING_CANDIDATES: usize = 64;
/// How long `disconnected` may last before the connection is dropped.
pub const DISCONNECT_GRACE_MS: u64 = 5_000;
/// How long to wait for a joiner's offer before dialling it ourselves.
pub const JOIN_FALLBACK_MS: u64 = 3_000;
/// How often a node at its high degree swaps one peer for another
/// (`rotate_one_peer`).
pub const ROTATE_MS: u64 = 120_000;
/// How often a node below its target degree asks each rendezvous for a
/// fresh sample of its directory (`ask_directory_when_starved`).
pub const STARVED_CHECK_MS: u64 = 15_000;
/// A node with fewer proven peers than this says so in its offers
/// (`make_room_for_the_starved`).
pub const STARVED_BELOW: usize = 2;
/// A full node evicts at most one inbound peer per this many ms to make
/// room for a starved one.
pub const EVICT_FOR_STARVED_MS: u64 = 30_000;
/// Wanted peers waiting for a dial slot, at most.
pub const MAX_DIAL_QUEUE: usize = 64;
/// How `admit_offer` starts the reason of a refusal for lack of room.
const BUSY: &str = "busy";
/// Outstanding pings remembered per peer.
const MAX_PINGS: usize = 16;

/// One trickled ICE candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub candidate: String,
    pub sdp_mid: Option<String>,
    pub sdp_m_line_index: Option<u16>,
}

/// What the driver tells the manager. `peer` + `session` name one
/// RTCPeerConnection; events of a connection that was since replaced are
/// ignored (`session` no longer matches).
#[derive(Debug, Clone)]
pub enum Input {
    /// Rendezvous server `rdv`'s live list (welcome or refresh): a sample
    /// of its directory. `rdv` is the driver's index of the server (at
    /// most [`rendezvous_set::MAX_RENDEZVOUS`]).
    Directory {
        rdv: usize,
        ids: Vec<NodeId>,
    },
    /// Server `rdv` answered an [`Output::AskDirectory`] with another
    /// random sample: merged into what it listed before, not a
    /// replacement.
    DirectorySample {
        rdv: usize,
        ids: Vec<NodeId>,
    },
    PeerJoined {
        rdv: usize,
        id: NodeId,
    },
    PeerLeft {
        rdv: usize,
        id: NodeId,
    },
    /// The connection to server `rdv` changed (`connecting`, `connected`,
    /// `disconnected`).
    Rendezvous {
        rdv: usize,
        state: String,
        url: String,
        error: Option<String>,
    },
    /// A signal delivered by rendezvous server `rdv`: authenticated
    /// sender, hostile content.
    Signal {
        rdv: usize,
        from: NodeId,
        payload: serde_json::Value,
    },
    /// Dial this peer.
    Connect(NodeId),
    /// `negotiationneeded` fired.
    NegotiationNeeded {
        peer: NodeId,
        session: u32,
    },
    /// `setLocalDescription()` completed with this description.
    LocalDescription {
        peer: NodeId,
        session: u32,
        sdp_type: SdpType,
        sdp: String,
    },
    /// `setLocalDescription()` failed.
    LocalDescriptionFailed {
        peer: NodeId,
        session: u32,
        error: String,
    },
    /// `setRemoteDescription()` completed (or failed).
    RemoteDescriptionSet {
        peer: NodeId,
        session: u32,
        result: Result<(), String>,
    },
    /// `icecandidate` fired with a candidate.
    IceCandidate {
        peer: NodeId,
        session: u32,
        candidate: Candidate,
    },
    /// `signalingstatechange`: whether the state is now `stable`.
    SignalingStable {
        peer: NodeId,
        session: u32,
        stable: bool,
    },
    /// `connectionstatechange`.
    ConnectionState {
        peer: NodeId,
        session: u32,
        state: ConnState,
    },
    /// The DataChannel opened; the SDPs carry the DTLS fingerprints the
    /// identity proof binds to.
    ChannelOpen {
        peer: NodeId,
        session: u32,
        local_sdp: Option<String>,
        remote_sdp: Option<String>,
    },
    /// The DataChannel closed.
    ChannelClosed {
        peer: NodeId,
        session: u32,
    },
    /// A DataChannel frame arrived (hostile).
    Frame {
        peer: NodeId,
        session: u32,
        bytes: Vec<u8>,
    },
    /// Sending on the DataChannel failed.
    SendFailed {
        peer: NodeId,
        session: u32,
        error: String,
    },
    /// Close every connection and stop redialling (page unload, tests).
    Shutdown,
}

/// What the manager asks the driver to do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Create an RTCPeerConnection with the pre-negotiated DataChannel
    /// (`negotiated: true, id: 0`, so both sides create it identically).
    Create { peer: NodeId, session: u32 },
    /// Detach the handlers and close the connection.
    Close { peer: NodeId, session: u32 },
    /// `setLocalDescription()` with no argument (offer or answer, as the
    /// signaling state requires); report [`Input::LocalDescription`]. An
    /// answer is asked for only after [`Input::RemoteDescriptionSet`].
    SetLocalDescription { peer: NodeId, session: u32 },
    /// `setRemoteDescription()`; report [`Input::RemoteDescriptionSet`].
    SetRemoteDescription { peer: NodeId, session: u32, sdp_type: SdpType, sdp: String },
    /// `addIceCandidate()`. `quiet`: an error is expected (the offer it
    /// belongs to was ignored) and not worth a log line.
    AddCandidate { peer: NodeId, session: u32, candidate: Candidate, quiet: bool },
    /// Send a signal through rendezvous server `via`.
    Signal { via: usize, to: NodeId, signal: PeerSignal },
    /// Ask rendezvous server `via` for another random sample of its
    /// directory (`{"type":"list"}`); the answer comes back as
    /// [`Input::DirectorySample`].
    AskDirectory { via: usize },
    /// Put a frame on the DataChannel (the driver queues under backpressure).
    Frame { peer: NodeId, session: u32, bytes: Vec<u8> },
    /// Something for the layers above.
    Event(Event),
}

/// Events for the layers above the transport.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A peer proved its identity: SynapseSub may use it.
    PeerUp(NodeId),
    /// A proven peer went away.
    PeerDown(NodeId),
    /// A SynapseSub packet from a proven peer.
    Pubsub { from: NodeId, packet: Vec<u8> },
    /// A snapshot request or part from a proven peer (`snapshot_sync`).
    Snapshot { from: NodeId, msg: crate::wire::WireMsg },
    /// Something shown to the user changed.
    Changed,
    /// A line for the console (rejections come with a counter too).
    Log(String),
}

/// Timers the manager arms; the driver only sees the earliest deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// `rotate_one_peer`.
    Rotate,
    /// `ask_directory_when_starved`.
    Starved,
    JoinFallback(NodeId),
    Pending(NodeId, u32),
    Handshake(NodeId, u32),
    Disconnected(NodeId, u32),
    Reconnect(NodeId),
}

/// One RTCPeerConnection as the manager knows it.
#[derive(Debug)]
struct Conn {
    session: u32,
    remote_session: Option<u32>,
    polite: bool,
    making_offer: bool,
    ignore_offer: bool,
    stable: bool,
    remote_bound: bool,
    /// A remote offer is being applied: answer once it is set.
    answer_pending: bool,
    /// Made for an offer from a peer we had no connection with (a
    /// stranger's, until proven).
    inbound: bool,
    connection: ConnState,
    handshake: Option<Session>,
    state: PeerState,
    rtt_ms: Option<f64>,
    pings: BTreeMap<u64, f64>,
    /// Candidates that arrived before the remote description they belong
    /// to; added once it is set (otherwise they would be lost after a glare
    /// rollback and the connection could stall).
    pending_candidates: Vec<(u32, Candidate)>,
    /// The rendezvous server this peer's last signal came through.
    heard_via: Option<usize>,
    /// Rule `unproven_replacement_once`: this connection replaced an
    /// unproven one of the same peer, so the peer may not replace it again
    /// before it is proven.
    replaced_unproven: bool,
}

impl Conn {
    fn view(&self) -> ConnView {
        ConnView {
            polite: self.polite,
            making_offer: self.making_offer,
            stable: self.stable,
            remote_bound: self.remote_bound,
            remote_session: self.remote_session,
        }
    }
}

/// The peer manager. See the module docs for its rules.
pub struct PeerManager {
    identity: Identity,
    config: NodeConfig,
    rng: Rng,
    /// Wall-clock ms at `now = 0`, for peer record timestamps (which must
    /// keep increasing across reloads).
    epoch_ms: f64,
    now: f64,
    conns: BTreeMap<NodeId, Conn>,
    /// Peers we want a connection with (the rendezvous directory and
    /// neighbours learned from peer records).
    wanted: BTreeSet<NodeId>,
    attempts: BTreeMap<NodeId, u32>,
    /// Wanted peers waiting for a dial slot (`dial_queue_newest_first`).
    dial_queue: VecDeque<NodeId>,
    records: BTreeMap<NodeId, PeerRecord>,
    last_record_ms: u64,
    relays: RelayWindows,
    /// Signals relayed to this node, per author (`relay_rate_limit`).
    relays_in: RelayWindows,
    replay: ReplayGuard,
    hellos: VecDeque<ReceivedHello>,
    timers: BTreeSet<(u64, Timer)>,
    stats: Stats,
    /// The last `same_genesis` refusal, for the status line.
    last_genesis_mismatch: Option<String>,
    /// Rule `make_room_for_the_starved`: no eviction before this time.
    next_evict_ms: u64,
    timings: Timings,
    rendezvous: RendezvousSet,
    out: VecDeque<Output>,
}

impl PeerManager {
    /// A manager at time `now`; `seed` is 32 bytes of platform randomness
    /// (session ids, handshake nonces, jitter); `epoch_ms` is the wall
    /// clock at `now = 0`.
    pub fn new(identity: Identity, config: NodeConfig, seed: [u8; 32], now: f64, epoch_ms: f64) -> PeerManager {
        let mut m = PeerManager {
            identity,
            config,
            rng: Rng::new(seed),
            epoch_ms,
            now,
            conns: BTreeMap::new(),
            wanted: BTreeSet::new(),
            attempts: BTreeMap::new(),
            dial_queue: VecDeque::new(),
            records: BTreeMap::new(),
            last_record_ms: 0,
            relays: RelayWindows::default(),
            relays_in: RelayWindows::default(),
            replay: ReplayGuard::default(),
            hellos: VecDeque::new(),
            timers: BTreeSet::new(),
            stats: Stats::default(),
            last_genesis_mismatch: None,
            next_evict_ms: 0,
            timings: Timings { node_started_ms: now, ..Default::default() },
            rendezvous: RendezvousSet::default(),
            out: VecDeque::new(),
        };
        m.arm(ROTATE_MS, Timer::Rotate);
        m.arm(STARVED_CHECK_MS, Timer::Starved);
        m
    }

    pub fn id(&self) -> NodeId {
        self.identity.node_id()
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The network's `net_target_degree` (a governance key): within 1 and
    /// the degree this node dials up to (`high_degree`).
    pub fn set_target_degree(&mut self, n: usize) {
        self.config.target_degree = n.clamp(1, self.config.high_degree.max(1));
    }

    /// The next output to carry out.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When the driver must call [`PeerManager::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: f64) {
        self.now = now;
        while let Some(&(at, t)) = self.timers.first() {
            if at as f64 > now {
                break;
            }
            self.timers.remove(&(at, t));
            self.on_timer(t);
        }
    }

    fn arm(&mut self, after_ms: u64, t: Timer) {
        let at = (self.now.max(0.0) as u64).saturating_add(after_ms);
        self.timers.insert((at, t));
    }

    fn emit(&mut self, o: Output) {
        self.out.push_back(o);
    }

    fn event(&mut self, e: Event) {
        self.out.push_back(Output::Event(e));
    }

    fn log(&mut self, line: String) {
        self.event(Event::Log(line));
    }

    fn changed(&mut self) {
        if self.out.back() != Some(&Output::Event(Event::Changed)) {
            self.event(Event::Changed);
        }
    }

    fn current(&mut self, peer: NodeId, session: u32) -> Option<&mut Conn> {
        self.conns.get_mut(&peer).filter(|c| c.session == session)
    }

    /// Feeds one input.
    pub fn handle(&mut self, input: Input, now: f64) {
        self.now = now;
        match input {
            Input::Directory { rdv, ids } => self.on_directory(rdv, ids, false),
            Input::DirectorySample { rdv, ids } => self.on_directory(rdv, ids, true),
            Input::PeerJoined { rdv, id } => self.on_peer_joined(rdv, id),
            Input::PeerLeft { rdv, id } => self.on_peer_left(rdv, id),
            Input::Rendezvous { rdv, state, url, error } => {
                self.rendezvous.set_state(rdv, state, url, error);
                self.changed();
            }
            Input::Signal { rdv, from, payload } => self.on_signal(Some(rdv), from, payload),
            Input::Connect(id) => self.connect(id),
            Input::NegotiationNeeded { peer, session } => {
                if let Some(c) = self.current(peer, session) {
                    c.making_offer = true;
                    self.emit(Output::SetLocalDescription { peer, session });
                }
            }
            Input::LocalDescription { peer, session, sdp_type, sdp } => {
                if let Some(c) = self.current(peer, session) {
                    c.making_offer = false;
                    self.send_signal(peer, session, SignalPayload::Description { sdp_type, sdp });
                }
            }
            Input::LocalDescriptionFailed { peer, session, error } => {
                if let Some(c) = self.current(peer, session) {
                    c.making_offer = false;
                    self.log(format!("local description for {} failed: {error}", peer.short()));
                }
            }
            Input::RemoteDescriptionSet { peer, session, result } => self.on_remote_set(peer, session, result),
            Input::IceCandidate { peer, session, candidate } => {
                if self.current(peer, session).is_some() {
                    let Candidate { candidate, sdp_mid, sdp_m_line_index } = candidate;
                    self.send_signal(peer, session, SignalPayload::Candidate { candidate, sdp_mid, sdp_m_line_index });
                }
            }
            Input::SignalingStable { peer, session, stable } => {
                if let Some(c) = self.current(peer, session) {
                    c.stable = stable;
                }
            }
            Input::ConnectionState { peer, session, state } => self.on_connection_state(peer, session, state),
            Input::ChannelOpen { peer, session, local_sdp, remote_sdp } => {
                self.on_open(peer, session, local_sdp, remote_sdp)
            }
            Input::ChannelClosed { peer, session } => {
                if self.current(peer, session).is_some() {
                    self.drop_peer(peer, "data channel closed", true);
                }
            }
            Input::Frame { peer, session, bytes } => self.on_frame(peer, session, &bytes),
            Input::SendFailed { peer, session, error } => {
                if self.current(peer, session).is_some() {
                    self.drop_peer(peer, &format!("send failed: {error}"), true);
                }
            }
            Input::Shutdown => {
                self.wanted.clear();
                self.timers.retain(|(_, t)| !matches!(t, Timer::Rotate | Timer::Starved));
                let ids: Vec<NodeId> = self.conns.keys().copied().collect();
                for id in ids {
                    self.drop_peer(id, "shutting down", false);
                }
            }
        }
    }

    // ----- directory -------------------------------------------------------

    /// Rule `bounded_directory_dials`: every listed peer is wanted, but only
    /// up to `high_degree` connections are dialled, in random order (so
    /// that pages listed together do not all pick the same peers).
    fn on_directory(&mut self, rdv: usize, ids: Vec<NodeId>, sample: bool) {
        let me = self.id();
        let mut ids = if sample {
            self.rendezvous.add_directory(rdv, me, ids)
        } else {
            self.rendezvous.set_directory(rdv, me, ids)
        };
        self.wanted.extend(ids.iter().copied());
        for i in (1..ids.len()).rev() {
            let j = (self.rng.next_u64() % (i as u64 + 1)) as usize;
            ids.swap(i, j);
        }
        for id in ids {
            if self.degree_used() >= self.config.high_degree {
                break;
            }
            self.want_dial(id, false);
        }
        self.changed();
    }

    /// Rule `rotate_one_peer`: every [`ROTATE_MS`], a node holding at least
    /// `high_degree` proven peers, with wanted peers it is not connected
    /// to, says bye to one proven peer chosen at random and dials one of
    /// those (fewest failures first). The neighbourhood keeps changing, so
    /// peers that got in first (say, a group of Sybils that raced for our
    /// slots) cannot hold them for ever, and the graph stays random.
    fn rotate_one_peer(&mut self) {
        let proven = self.proven_ids();
        let idle = self.wanted.iter().any(|id| !self.conns.contains_key(id));
        if proven.len() < self.config.high_degree || !idle {
            return;
        }
        let victim = proven[(self.rng.next_u64() % proven.len() as u64) as usize];
        if let Some(session) = self.conns.get(&victim).map(|c| c.session) {
            self.send_signal(victim, session, SignalPayload::Bye);
        }
        self.drop_peer(victim, "rotated out for another peer", false);
        self.stats.rotations += 1;
        let failures = |id: &NodeId| self.attempts.get(id).copied().unwrap_or(0);
        let idle: Vec<NodeId> =
            self.wanted.iter().filter(|id| !self.conns.contains_key(id) && **id != victim).copied().collect();
        let Some(fewest) = idle.iter().map(failures).min() else { return };
        let best: Vec<NodeId> = idle.into_iter().filter(|id| failures(id) == fewest).collect();
        let pick = best[(self.rng.next_u64() % best.len() as u64) as usize];
        self.connect(pick);
    }

    /// Rule `ask_directory_when_starved`: a node below its target degree
    /// asks every connected rendezvous for another random sample of its
    /// directory, and dials one more wanted peer. Without it, a joiner
    /// whose welcome sample happened to list only full nodes (all refuse
    /// with a bye) stayed alone for good: nobody else learns of it when
    /// directories are samples.
    fn ask_directory_when_starved(&mut self) {
        if self.degree_used() >= self.config.target_degree {
            return;
        }
        for via in self.rendezvous.connected() {
            self.stats.directory_asks += 1;
            self.emit(Output::AskDirectory { via });
        }
        self.refill();
    }

    /// Whether this node is starved: fewer than [`STARVED_BELOW`] proven
    /// peers (said in its offers, for `make_room_for_the_starved`).
    fn starved(&self) -> bool {
        self.conns.values().filter(|c| c.state == PeerState::Proven).count() < STARVED_BELOW
    }

    /// Rule `make_room_for_the_starved`: at `max_degree`, an offer from a
    /// peer that says it is starved evicts one proven peer that dialled
    /// us (never one of our own dials, which we chose from random samples,
    /// so Sybils cannot use this to replace them), at most one per
    /// [`EVICT_FOR_STARVED_MS`]. Returns whether room was made.
    fn make_room_for_the_starved(&mut self, from: NodeId) -> bool {
        if (self.now as u64) < self.next_evict_ms {
            return false;
        }
        let inbound: Vec<NodeId> = self
            .conns
            .iter()
            .filter(|(id, c)| **id != from && c.inbound && c.state == PeerState::Proven)
            .map(|(id, _)| *id)
            .collect();
        if inbound.is_empty() {
            return false;
        }
        let victim = inbound[(self.rng.next_u64() % inbound.len() as u64) as usize];
        if let Some(session) = self.conns.get(&victim).map(|c| c.session) {
            self.send_signal(victim, session, SignalPayload::Bye);
        }
        self.remove_conn(victim, "evicted to make room for a starved peer");
        self.stats.evictions_for_starved += 1;
        self.next_evict_ms = (self.now.max(0.0) as u64).saturating_add(EVICT_FOR_STARVED_MS);
        true
    }

    /// Rule `degree_counts_proven_and_own_dials`: proven peers plus this
    /// node's own unproven dials.
    fn degree_used(&self) -> usize {
        self.conns.values().filter(|c| c.state == PeerState::Proven || !c.inbound).count()
    }

    fn pending_dials(&self) -> usize {
        self.conns.values().filter(|c| c.state != PeerState::Proven && !c.inbound).count()
    }

    fn can_dial(&self) -> bool {
        self.degree_used() < self.config.high_degree
            && self.pending_dials() < self.config.max_pending_dials
            && self.conns.len() < self.config.max_degree
    }

    /// Dials `id` now if a slot is free, else queues it (at the front for
    /// joiners and peers that offered, at the back for directory entries
    /// and redials). The queue holds at most [`MAX_DIAL_QUEUE`] ids.
    fn want_dial(&mut self, id: NodeId, newest: bool) {
        if self.conns.contains_key(&id) || id == self.id() {
            return;
        }
        if self.can_dial() {
            self.connect(id);
            return;
        }
        if newest {
            self.dial_queue.retain(|q| *q != id);
            self.dial_queue.push_front(id);
            self.dial_queue.truncate(MAX_DIAL_QUEUE);
        } else if self.dial_queue.len() < MAX_DIAL_QUEUE && !self.dial_queue.contains(&id) {
            // One already queued keeps its place: a directory sample that
            // lists it again must not send a newest joiner to the back.
            self.dial_queue.push_back(id);
        }
    }

    /// Rule `dial_queue_newest_first`: fills free dial slots from the queue.
    fn pump_dial_queue(&mut self) {
        while self.can_dial() {
            let Some(id) = self.dial_queue.pop_front() else { break };
            if self.wanted.contains(&id) && !self.conns.contains_key(&id) {
                self.connect(id);
            }
        }
    }

    /// Rule `refill_degree`: below `target_degree` connections, dial one
    /// wanted peer we are not connected to (chosen at random).
    fn refill(&mut self) {
        self.pump_dial_queue();
        if self.degree_used() >= self.config.target_degree || !self.can_dial() {
            return;
        }
        let failures = |id: &NodeId| self.attempts.get(id).copied().unwrap_or(0);
        let idle: Vec<NodeId> = self.wanted.iter().filter(|id| !self.conns.contains_key(id)).copied().collect();
        let Some(fewest) = idle.iter().map(failures).min() else { return };
        let best: Vec<NodeId> = idle.into_iter().filter(|id| failures(id) == fewest).collect();
        let pick = best[(self.rng.next_u64() % best.len() as u64) as usize];
        self.connect(pick);
    }

    /// Rule `join_fallback_dial`: a joiner offers to its welcome list; if no
    /// offer arrives soon, we offer ourselves.
    fn on_peer_joined(&mut self, rdv: usize, id: NodeId) {
        if id == self.id() || !self.rendezvous.joined(rdv, id) {
            return;
        }
        self.wanted.insert(id);
        self.arm(JOIN_FALLBACK_MS, Timer::JoinFallback(id));
        self.changed();
    }

    /// A node left a rendezvous; rule `merge_directories`: it matters only
    /// once no server lists it. A proven connection stays (the network
    /// must outlive the rendezvous); a pending one is abandoned.
    fn on_peer_left(&mut self, rdv: usize, id: NodeId) {
        if !self.rendezvous.left(rdv, id) {
            self.changed();
            return;
        }
        self.wanted.remove(&id);
        if self.conns.get(&id).is_some_and(|c| c.state != PeerState::Proven) {
            self.drop_peer(id, "left the rendezvous before proving itself", false);
        }
        self.changed();
    }

    // ----- connections -----------------------------------------------------

    /// Dials `id` unless a connection exists.
    pub fn connect(&mut self, id: NodeId) {
        if id == self.id() {
            return;
        }
        let session = self.rng.next_u32();
        if let Err(e) = self.dial(id, session, None) {
            self.log(format!("connect {}: {e}", id.short()));
        }
    }

    /// Rules `max_connections` and `connection_budget`, then
    /// [`Output::Create`].
    fn dial(&mut self, id: NodeId, session: u32, remote_session: Option<u32>) -> Result<(), String> {
        if self.conns.contains_key(&id) {
            return Ok(());
        }
        if self.conns.len() >= self.config.max_connections {
            return Err(format!("at the limit of {} connections", self.config.max_connections));
        }
        if self.stats.connections_created >= self.config.connection_budget {
            self.stats.connections_refused_budget += 1;
            return Err(format!(
                "connection budget of {} RTCPeerConnections for this tab is spent",
                self.config.connection_budget
            ));
        }
        self.stats.connections_created += 1;
        let polite = self.id() > id;
        self.conns.insert(
            id,
            Conn {
                session,
                remote_session,
                polite,
                making_offer: false,
                ignore_offer: false,
                stable: true,
                remote_bound: false,
                answer_pending: false,
                inbound: remote_session.is_some(),
                connection: ConnState::New,
                handshake: None,
                state: PeerState::Connecting,
                rtt_ms: None,
                pings: BTreeMap::new(),
                pending_candidates: vec![],
                heard_via: None,
                replaced_unproven: false,
            },
        );
        self.emit(Output::Create { peer: id, session });
        self.arm(self.config.pending_timeout_ms as u64, Timer::Pending(id, session));
        self.changed();
        Ok(())
    }

    /// Rules `offer_must_parse`, `max_degree`, `max_pending_inbound` and
    /// `budget_reserve_for_dials`: whether a stranger's offer may have a
    /// connection made for it.
    fn admit_offer(&mut self, from: NodeId, sdp: &str, starved: bool) -> Result<(), String> {
        if sdp_fingerprint(sdp).is_none() || !sdp.lines().any(|l| l.trim().starts_with("a=ice-ufrag:")) {
            return Err("offer without a DTLS fingerprint or ICE credentials".into());
        }
        if let Some(c) = self.conns.get(&from) {
            if c.state == PeerState::Proven {
                return Ok(()); // a proven peer reconnecting (e.g. a reload)
            }
            // Rule `unproven_replacement_once`: each new session from a
            // peer whose connection is not proven would cost a fresh
            // RTCPeerConnection; without a limit one stranger could spend
            // the tab's whole lifetime budget by re-offering.
            if c.replaced_unproven {
                return Err(format!("{BUSY}: this peer already replaced its unproven connection once"));
            }
            return self.within_stranger_budget();
        }
        if self.conns.len() >= self.config.max_degree && !(starved && self.make_room_for_the_starved(from)) {
            return Err(format!("{BUSY}: {} connections, the most this node keeps", self.conns.len()));
        }
        let pending = self.conns.values().filter(|c| c.inbound && c.state != PeerState::Proven).count();
        if pending >= self.config.max_pending_inbound {
            return Err(format!("{BUSY}: {pending} offers from peers not yet proven are pending"));
        }
        self.within_stranger_budget()
    }

    /// Rule `budget_reserve_for_dials`.
    fn within_stranger_budget(&self) -> Result<(), String> {
        let budget = self.config.connection_budget.saturating_sub(self.config.dial_reserve);
        if self.stats.connections_created >= budget {
            return Err("the connection budget left is kept for peers this node dials".into());
        }
        Ok(())
    }

    /// Parses and size-checks a rendezvous signal, then applies it.
    /// `rdv`: the rendezvous server it came through (`None`: relayed).
    fn on_signal(&mut self, rdv: Option<usize>, from: NodeId, payload: serde_json::Value) {
        self.stats.signals_in += 1;
        let sig = match PeerSignal::from_json(payload) {
            Ok(s) => s,
            Err(e) => {
                self.stats.signals_rejected += 1;
                self.log(format!("rejected signal from {}: {e}", from.short()));
                return;
            }
        };
        if from == self.id() {
            return;
        }
        self.apply_signal(from, sig);
        if let (Some(c), Some(rdv)) = (self.conns.get_mut(&from), rdv) {
            c.heard_via = Some(rdv);
        }
    }

    fn apply_signal(&mut self, from: NodeId, sig: PeerSignal) {
        match sig.signal {
            SignalPayload::Description { sdp_type, sdp } => {
                self.on_description(from, sig.session, sdp_type, sdp, sig.starved)
            }
            SignalPayload::Candidate { candidate, sdp_mid, sdp_m_line_index } => {
                self.on_candidate(from, sig.session, Candidate { candidate, sdp_mid, sdp_m_line_index })
            }
            SignalPayload::Bye => {
                let Some(c) = self.conns.get(&from) else { return };
                if c.remote_session == Some(sig.session) {
                    self.drop_peer(from, "peer said bye", false);
                } else if c.remote_session.is_none() && c.session == sig.session && c.state != PeerState::Proven {
                    // `refuse_with_bye` from the other side: it will dial
                    // us when it has room; stop waiting for an answer.
                    self.drop_peer(from, "peer is busy and refused our offer", false);
                }
            }
        }
    }

    /// Perfect negotiation for one remote description (see [`negotiation`]).
    fn on_description(&mut self, from: NodeId, session: u32, sdp_type: SdpType, sdp: String, starved: bool) {
        let view = self.conns.get(&from).map(Conn::view);
        match plan_description(view, sdp_type, session) {
            Plan::Ignore => {
                // Remember an ignored colliding offer: its candidates will
                // fail to apply, which is expected.
                if let Some(c) = self.conns.get_mut(&from)
                    && sdp_type == SdpType::Offer
                    && !c.polite
                {
                    c.ignore_offer = true;
                }
                return;
            }
            Plan::Fresh => {
                if let Err(why) = self.admit_offer(from, &sdp, starved) {
                    self.stats.offers_refused += 1;
                    self.log(format!("refused an offer from {}: {why}", from.short()));
                    // Rule `refuse_with_bye`: only a well-formed offer is
                    // worth an answer (never amplify garbage).
                    if why.starts_with(BUSY) {
                        self.send_signal(from, session, SignalPayload::Bye);
                        if self.wanted.contains(&from) {
                            self.want_dial(from, true);
                        }
                    }
                    return;
                }
                // What the replaced connection was: a replaced own dial
                // stays one (glare between two dials), so it keeps
                // counting toward `max_pending_dials` and frees no slot.
                let replaced = self.conns.get(&from).map(|c| (c.state != PeerState::Proven, c.inbound));
                if replaced.is_some() {
                    self.remove_conn(from, "replaced by the peer's new connection");
                    self.changed();
                }
                let mine = self.rng.next_u32();
                if let Err(e) = self.dial(from, mine, Some(session)) {
                    self.log(format!("cannot accept {}: {e}", from.short()));
                    return;
                }
                if let (Some((unproven, inbound)), Some(c)) = (replaced, self.conns.get_mut(&from)) {
                    c.replaced_unproven = unproven;
                    c.inbound = inbound;
                }
            }
            Plan::Use => {}
        }
        let Some(c) = self.conns.get_mut(&from) else { return };
        c.ignore_offer = false;
        c.remote_session = Some(session);
        c.answer_pending = sdp_type == SdpType::Offer;
        let my = c.session;
        self.emit(Output::SetRemoteDescription { peer: from, session: my, sdp_type, sdp });
    }

    /// The remote description is applied: rule `buffer_early_candidates`
    /// releases the candidates of that session, then an offer is answered
    /// (the W3C pattern: answer only once the offer is set).
    fn on_remote_set(&mut self, peer: NodeId, session: u32, result: Result<(), String>) {
        let Some(c) = self.current(peer, session) else { return };
        match result {
            Ok(()) => {
                c.remote_bound = true;
                let remote = c.remote_session;
                let pending = std::mem::take(&mut c.pending_candidates);
                let answer = std::mem::take(&mut c.answer_pending);
                for (s, cand) in pending {
                    if Some(s) == remote {
                        self.emit(Output::AddCandidate { peer, session, candidate: cand, quiet: false });
                    }
                }
                if answer {
                    self.emit(Output::SetLocalDescription { peer, session });
                }
            }
            Err(e) => {
                c.answer_pending = false;
                self.log(format!("remote description from {}: {e}", peer.short()))
            }
        }
    }

    /// Rules `stale_candidate` (from a connection the peer has replaced) and
    /// `buffer_early_candidates` (before the remote description, at most
    /// [`MAX_PENDING_CANDIDATES`]).
    fn on_candidate(&mut self, from: NodeId, session: u32, cand: Candidate) {
        if cand.candidate.is_empty() {
            return; // end-of-candidates
        }
        let Some(c) = self.conns.get_mut(&from) else { return };
        if c.remote_bound && c.remote_session != Some(session) {
            return;
        }
        if !c.remote_bound {
            if c.pending_candidates.len() < MAX_PENDING_CANDIDATES {
                c.pending_candidates.push((session, cand));
            }
            return;
        }
        let (my, quiet) = (c.session, c.ignore_offer);
        self.emit(Output::AddCandidate { peer: from, session: my, candidate: cand, quiet });
    }

    /// Rule `disconnect_grace`.
    fn on_connection_state(&mut self, peer: NodeId, session: u32, state: ConnState) {
        let Some(c) = self.current(peer, session) else { return };
        c.connection = state;
        match state {
            ConnState::Failed => self.drop_peer(peer, "connection failed", true),
            ConnState::Closed => self.drop_peer(peer, "connection closed", true),
            ConnState::Disconnected => {
                self.arm(DISCONNECT_GRACE_MS, Timer::Disconnected(peer, session));
                self.changed();
            }
            _ => self.changed(),
        }
    }

    /// The channel is open: start the identity handshake bound to both DTLS
    /// fingerprints, with rule `handshake_timeout`.
    fn on_open(&mut self, peer: NodeId, session: u32, local_sdp: Option<String>, remote_sdp: Option<String>) {
        self.stats.channels_opened += 1;
        self.timings.first_channel_open_ms.get_or_insert(self.now);
        if self.current(peer, session).is_none() {
            return;
        }
        let local = local_sdp.as_deref().and_then(sdp_fingerprint);
        let remote = remote_sdp.as_deref().and_then(sdp_fingerprint);
        let (Some(l), Some(r)) = (local, remote) else {
            self.drop_peer(peer, "no DTLS fingerprint in the SDP", false);
            return;
        };
        let nonce = self.rng.bytes32();
        let (s, events) =
            Session::start(&self.identity, peer, nonce, l, r, self.config.proof_mode, self.config.genesis);
        if let Some(c) = self.current(peer, session) {
            c.handshake = Some(s);
            c.state = PeerState::Handshaking;
        }
        self.session_events(peer, session, events);
        self.arm(self.config.handshake_timeout_ms as u64, Timer::Handshake(peer, session));
        self.changed();
    }

    fn on_frame(&mut self, peer: NodeId, session: u32, frame: &[u8]) {
        self.stats.frames_in += 1;
        self.stats.bytes_in += frame.len() as u64;
        let PeerManager { identity, conns, .. } = self;
        let Some(c) = conns.get_mut(&peer).filter(|c| c.session == session) else { return };
        let Some(s) = c.handshake.as_mut() else { return };
        let events = s.on_frame(identity, frame);
        self.session_events(peer, session, events);
    }

    /// Carries out what the handshake/session asks.
    fn session_events(&mut self, peer: NodeId, session: u32, events: Vec<SessionEvent>) {
        for e in events {
            if self.current(peer, session).is_none() {
                return; // dropped by an earlier event
            }
            match e {
                SessionEvent::Send(bytes) => self.frame_out(peer, session, bytes),
                SessionEvent::Proven => {
                    if let Some(c) = self.current(peer, session) {
                        c.state = PeerState::Proven;
                    }
                    self.stats.peers_proven += 1;
                    self.timings.first_peer_proven_ms.get_or_insert(self.now);
                    self.attempts.remove(&peer);
                    self.pump_dial_queue();
                    self.changed();
                    self.announce_record();
                    self.event(Event::PeerUp(peer));
                }
                SessionEvent::Hello(h) => {
                    self.stats.hellos_received += 1;
                    if self.hellos.len() >= MAX_HELLOS {
                        self.hellos.pop_front();
                    }
                    self.hellos.push_back(ReceivedHello { from: h.author, text: h.text, via: peer, at_ms: self.now });
                    self.changed();
                }
                SessionEvent::Pong(pid) => {
                    let now = self.now;
                    if let Some(c) = self.current(peer, session)
                        && let Some(sent) = c.pings.remove(&pid)
                    {
                        c.rtt_ms = Some(now - sent);
                    }
                }
                SessionEvent::Blob(n) => self.stats.blob_bytes_in += n as u64,
                SessionEvent::PeerRecord(r) => self.on_peer_record(peer, r),
                SessionEvent::Relay(r) => self.on_relay(peer, r),
                SessionEvent::Pubsub(packet) => self.event(Event::Pubsub { from: peer, packet }),
                SessionEvent::Snapshot(msg) => self.event(Event::Snapshot { from: peer, msg }),
                SessionEvent::Violation(reason) => {
                    self.stats.protocol_violations += 1;
                    if reason.contains("identity proof") || reason.contains("claimed id") {
                        self.stats.proofs_rejected += 1;
                    }
                    if reason.starts_with(crate::session::GENESIS_MISMATCH) {
                        self.stats.genesis_mismatches += 1;
                        self.last_genesis_mismatch = Some(format!("{} {reason}", peer.short()));
                    }
                    self.drop_peer(peer, &reason, false);
                }
            }
        }
    }

    fn frame_out(&mut self, peer: NodeId, session: u32, bytes: Vec<u8>) {
        self.stats.frames_out += 1;
        self.stats.bytes_out += bytes.len() as u64;
        self.emit(Output::Frame { peer, session, bytes });
    }

    fn on_timer(&mut self, t: Timer) {
        match t {
            Timer::Rotate => {
                self.arm(ROTATE_MS, Timer::Rotate);
                self.rotate_one_peer();
            }
            Timer::Starved => {
                self.arm(STARVED_CHECK_MS, Timer::Starved);
                self.ask_directory_when_starved();
            }
            Timer::JoinFallback(id) => {
                if self.wanted.contains(&id) {
                    self.want_dial(id, true);
                }
            }
            Timer::Reconnect(id) => {
                if self.wanted.contains(&id) {
                    self.want_dial(id, false);
                }
            }
            Timer::Pending(id, session) => {
                if self.current(id, session).is_some_and(|c| c.state != PeerState::Proven) {
                    self.stats.pending_timeouts += 1;
                    self.drop_peer(id, "not proven in time after the connection was made", true);
                }
            }
            Timer::Handshake(id, session) => {
                if self.current(id, session).is_some_and(|c| c.state != PeerState::Proven) {
                    self.stats.handshake_timeouts += 1;
                    self.drop_peer(id, "identity handshake timed out", true);
                }
            }
            Timer::Disconnected(id, session) => {
                if self.current(id, session).is_some_and(|c| c.connection == ConnState::Disconnected) {
                    self.drop_peer(id, "disconnected for 5 s", true);
                }
            }
        }
    }

    /// Closes and forgets the connection to `id`; redials later (rule
    /// `reconnect_backoff`) if asked and the peer is still wanted.
    pub fn drop_peer(&mut self, id: NodeId, reason: &str, reconnect: bool) {
        let Some(c) = self.remove_conn(id, reason) else { return };
        if reconnect {
            self.send_signal(id, c.session, SignalPayload::Bye);
        }
        if reconnect && self.wanted.contains(&id) {
            self.stats.reconnects_scheduled += 1;
            let attempt = self.attempts.entry(id).or_insert(0);
            *attempt = attempt.saturating_add(1);
            let delay = backoff::backoff_delay(*attempt, self.rng.next_u64());
            self.arm(delay, Timer::Reconnect(id));
        }
        if reconnect {
            // Lost, not dropped on purpose (a replacement, a bye, a leave).
            self.refill();
        } else {
            self.pump_dial_queue();
        }
        self.changed();
    }

    /// Closes a connection without dialling anyone in its place (a
    /// replacement re-creates it at once).
    fn remove_conn(&mut self, id: NodeId, reason: &str) -> Option<Conn> {
        self.records.remove(&id);
        self.relays.forget(&id);
        let c = self.conns.remove(&id)?;
        self.log(format!("dropped {}: {reason}", id.short()));
        if c.state == PeerState::Proven {
            self.event(Event::PeerDown(id));
        }
        self.emit(Output::Close { peer: id, session: c.session });
        Some(c)
    }

    // ----- signals and relays ----------------------------------------------

    /// Rule `signal_route`: through a connected rendezvous known to reach
    /// `to` (it lists `to`, or `to`'s last signal came through it:
    /// [`RendezvousSet::route`]); else relayed through the proven peers
    /// whose records list `to` as a neighbour; else through any connected
    /// rendezvous (directories are samples); else relayed through every
    /// proven peer.
    fn send_signal(&mut self, to: NodeId, session: u32, signal: SignalPayload) {
        let starved = matches!(signal, SignalPayload::Description { sdp_type: SdpType::Offer, .. }) && self.starved();
        let sig = PeerSignal { session, signal, starved };
        self.stats.signals_out += 1;
        let heard_via = self.conns.get(&to).and_then(|c| c.heard_via);
        if let Some(via) = self.rendezvous.route(to, heard_via) {
            self.emit(Output::Signal { via, to, signal: sig });
            return;
        }
        let proven = |c: &Conn| c.state == PeerState::Proven;
        let listing: Vec<NodeId> = self
            .records
            .iter()
            .filter(|(id, r)| **id != to && self.conns.get(id).is_some_and(proven) && r.neighbors.contains(&to))
            .map(|(id, _)| *id)
            .collect();
        if listing.is_empty()
            && let Some(via) = self.rendezvous.first_connected()
        {
            self.emit(Output::Signal { via, to, signal: sig });
            return;
        }
        // The send time and a nonce go inside what we sign, for the
        // receiver's `relay_replay_window`.
        let Ok(serde_json::Value::Object(mut obj)) = serde_json::to_value(&sig) else { return };
        obj.insert("relay_ms".into(), self.wall_ms().into());
        obj.insert("relay_nonce".into(), self.rng.next_u64().into());
        let Ok(payload) = serde_json::to_vec(&obj) else { return };
        let relay = WireMsg::Relay(RelaySignal::sign(&self.identity, to, 1, payload));
        let via = if listing.is_empty() {
            self.conns.iter().filter(|(id, c)| **id != to && proven(c)).map(|(id, _)| *id).collect()
        } else {
            listing
        };
        if via.is_empty() {
            self.log(format!("no path for a signal to {}: rendezvous down and no peers", to.short()));
            return;
        }
        for v in via {
            if self.send_to(v, &relay) {
                self.stats.relays_sent += 1;
            }
        }
    }

    /// Rules `relay_forward` and `relay_rate_limit`: a verified relayed signal
    /// from peer `via` is either ours, or forwarded one hop to a proven
    /// target within the sender's rate.
    fn on_relay(&mut self, via: NodeId, r: RelaySignal) {
        if r.to == self.id() {
            self.stats.relays_received += 1;
            let v = match serde_json::from_slice::<serde_json::Value>(&r.payload) {
                Ok(v) => v,
                Err(e) => {
                    self.stats.signals_rejected += 1;
                    self.log(format!("unreadable relayed signal from {} via {}: {e}", r.from.short(), via.short()));
                    return;
                }
            };
            let sent = v.get("relay_ms").and_then(serde_json::Value::as_u64);
            let nonce = v.get("relay_nonce").and_then(serde_json::Value::as_u64);
            let (wall, now) = (self.wall_ms(), self.now);
            let verdict = match (sent, nonce) {
                (Some(sent), Some(nonce)) => match self.relays_in.admit(r.from, now) {
                    true => self.replay.admit(r.from, nonce, sent, wall),
                    false => Err("over the rate of relayed signals"),
                },
                _ => Err("no send time or nonce"),
            };
            match verdict {
                Ok(()) => self.on_signal(None, r.from, v),
                Err(why) => {
                    self.stats.signals_rejected += 1;
                    self.log(format!("refused a relayed signal from {} via {}: {why}", r.from.short(), via.short()));
                }
            }
            return;
        }
        let target_proven = self.conns.get(&r.to).is_some_and(|c| c.state == PeerState::Proven);
        let within_rate = self.relays.admit(via, self.now);
        if r.ttl == 0 || !target_proven || r.to == via || r.from == r.to || !within_rate {
            self.stats.relays_dropped += 1;
            return;
        }
        let to = r.to;
        let fwd = WireMsg::Relay(RelaySignal { ttl: r.ttl - 1, ..r });
        if self.send_to(to, &fwd) {
            self.stats.relays_forwarded += 1;
        }
    }

    /// Rules `stale_peer_record` and `dial_from_peer_records`.
    fn on_peer_record(&mut self, from: NodeId, r: PeerRecord) {
        self.stats.peer_records_in += 1;
        if self.records.get(&from).is_some_and(|old| old.issued_ms >= r.issued_ms) {
            return;
        }
        let me = self.id();
        let neighbors = r.neighbors.clone();
        self.records.insert(from, r);
        let proven = self.proven_ids().len();
        let room = self.config.target_degree.saturating_sub(proven).min(self.config.max_record_dials);
        let new: Vec<NodeId> =
            neighbors.into_iter().filter(|n| *n != me && !self.conns.contains_key(n)).take(room).collect();
        self.wanted.extend(new.iter().copied());
        for id in new {
            self.want_dial(id, false);
        }
    }

    /// Wall-clock ms now (peer record and relay timestamps).
    fn wall_ms(&self) -> u64 {
        (self.epoch_ms + self.now).max(0.0) as u64
    }

    /// Sends this node's signed neighbour list to every proven peer.
    pub fn announce_record(&mut self) {
        let ids = self.proven_ids();
        let issued = self.wall_ms().max(self.last_record_ms + 1);
        self.last_record_ms = issued;
        let msg = WireMsg::PeerRecord(PeerRecord::sign(&self.identity, issued, ids.clone()));
        for id in ids {
            self.send_to(id, &msg);
        }
    }

    // ----- application -----------------------------------------------------

    fn proven_ids(&self) -> Vec<NodeId> {
        self.conns.iter().filter(|(_, c)| c.state == PeerState::Proven).map(|(id, _)| *id).collect()
    }

    /// Sends `msg` to one proven peer. Returns false if it is not proven.
    pub fn send_to(&mut self, id: NodeId, msg: &WireMsg) -> bool {
        let Some(c) = self.conns.get(&id) else { return false };
        let Some(events) = c.handshake.as_ref().and_then(|s| s.send(msg)) else { return false };
        let session = c.session;
        self.session_events(id, session, events);
        true
    }

    /// Sends an encoded SynapseSub packet to one proven peer.
    pub fn send_raw(&mut self, id: NodeId, packet: &[u8]) -> bool {
        let Some(c) = self.conns.get(&id) else { return false };
        let Some(events) = c.handshake.as_ref().and_then(|s| s.send_raw(packet)) else { return false };
        let session = c.session;
        self.session_events(id, session, events);
        true
    }

    /// Sends a snapshot request or part to a proven peer.
    pub fn send_snapshot(&mut self, id: NodeId, msg: &WireMsg) -> bool {
        matches!(msg, WireMsg::SnapAsk { .. } | WireMsg::SnapPart(_)) && self.send_to(id, msg)
    }

    /// Signs `text` and sends it to every proven peer; returns how many.
    pub fn send_hello(&mut self, text: &str) -> Result<usize, String> {
        let hello = SignedHello::sign(&self.identity, text).map_err(|e| e.to_string())?;
        let msg = WireMsg::Hello(hello);
        Ok(self.proven_ids().into_iter().filter(|id| self.send_to(*id, &msg)).count())
    }

    /// Sends a ping to every proven peer at `now` (RTT shows in
    /// [`PeerInfo`]).
    pub fn ping_all(&mut self, now: f64) {
        self.now = now;
        for id in self.proven_ids() {
            let pid = self.rng.next_u64();
            let now = self.now;
            if let Some(c) = self.conns.get_mut(&id) {
                if c.pings.len() >= MAX_PINGS {
                    c.pings.clear();
                }
                c.pings.insert(pid, now);
            }
            self.send_to(id, &WireMsg::Ping(pid));
        }
    }

    // ----- reading ---------------------------------------------------------

    /// Ids of peers whose channel is open and identity proven.
    pub fn peers(&self) -> Vec<NodeId> {
        self.proven_ids()
    }

    /// The session of the current connection to `id`.
    pub fn session_of(&self, id: NodeId) -> Option<u32> {
        self.conns.get(&id).map(|c| c.session)
    }

    /// Every connection, in any state.
    pub fn peer_infos(&self) -> Vec<PeerInfo> {
        self.conns
            .iter()
            .map(|(id, c)| PeerInfo {
                id: *id,
                state: c.state,
                connection: c.connection.as_str().to_string(),
                polite: c.polite,
                rtt_ms: c.rtt_ms,
                candidate: None,
                remote_candidate: None,
            })
            .collect()
    }

    pub fn hellos(&self) -> Vec<ReceivedHello> {
        self.hellos.iter().cloned().collect()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The last peer refused for being on another network, with why.
    pub fn last_genesis_mismatch(&self) -> Option<&str> {
        self.last_genesis_mismatch.as_deref()
    }

    pub fn timings(&self) -> &Timings {
        &self.timings
    }

    pub fn rendezvous_status(&self) -> RendezvousStatus {
        self.rendezvous.status()
    }
}
