//! WebRTC transport: one RTCPeerConnection and one reliable ordered
//! DataChannel per peer, driven by the sans-IO [`Session`].
//!
//! - **Perfect negotiation** (W3C pattern): either side may offer at any
//!   time; on an offer collision the *polite* side (the greater node id) rolls
//!   back and answers, the impolite side ignores the colliding offer. The
//!   DataChannel is pre-negotiated (`negotiated: true, id: 0`), so both sides
//!   create it identically and there is no `ondatachannel` race.
//! - **Sessions**: every RTCPeerConnection has a random session id carried in
//!   its signals, so a peer that replaced its connection is recognised and a
//!   stale candidate never reaches a new connection.
//! - **Identity**: when the channel opens, the [`Session`] handshake binds the
//!   peer's Ed25519 id to both DTLS fingerprints; only then is the peer
//!   listed in [`Node::peers`]. An unproven peer is dropped after
//!   `handshake_timeout_ms`.
//! - **Reconnect** with exponential backoff (0.5 s doubling to 30 s, plus
//!   jitter) while the peer is still wanted (listed by the rendezvous).
//! - **Budget**: Chromium allows only ~500 RTCPeerConnections per tab
//!   lifetime, so creation is capped (`connection_budget`) as is the number of
//!   simultaneous connections (`max_connections`).
//! - **Backpressure**: frames wait in a queue while the channel's
//!   `bufferedAmount` is above 8 MiB and resume on `bufferedamountlow`.

use crate::console_log;
use crate::identity::{Identity, NodeId};
use crate::pubsub::{self, Delivery, Router};
use crate::runtime::util::{js_err, now_ms, random_bytes, random_u32, sleep_ms};
use crate::session::{ProofMode, Session, SessionEvent, sdp_fingerprint};
use crate::signaling::{PeerSignal, SdpType, SignalPayload};
use crate::wire::{PeerRecord, RelaySignal, SignedHello, WireMsg};
use serde::Serialize;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::{Rc, Weak};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{
    MessageEvent, RtcConfiguration, RtcDataChannel, RtcDataChannelInit, RtcDataChannelState, RtcDataChannelType,
    RtcIceCandidateInit, RtcIceServer, RtcPeerConnection, RtcPeerConnectionIceEvent, RtcPeerConnectionState,
    RtcSdpType, RtcSessionDescriptionInit, RtcSignalingState,
};

/// Calls a zero-argument JS method that web-sys does not bind.
fn call_method0(target: &JsValue, name: &str) -> Result<JsValue, JsValue> {
    js_sys::Reflect::get(target, &JsValue::from_str(name))?.dyn_into::<js_sys::Function>()?.call0(target)
}

/// `pc.setLocalDescription()` with no argument: the browser creates the
/// right offer or answer itself, which is what perfect negotiation needs
/// (web-sys only binds the one-argument form).
fn set_local_description_implicit(pc: &RtcPeerConnection) -> js_sys::Promise {
    let call = call_method0(pc, "setLocalDescription").and_then(|p| p.dyn_into::<js_sys::Promise>());
    call.unwrap_or_else(|e| js_sys::Promise::reject(&e))
}

/// Above this many buffered bytes, frames wait in our queue.
const HIGH_WATER: u32 = 8 * 1024 * 1024;
/// `bufferedamountlow` fires below this.
const LOW_WATER: u32 = 1024 * 1024;
/// Signals one peer may have this node forward per second (a negotiation
/// needs a handful; this only stops a peer from using us as an amplifier).
const MAX_RELAYS_PER_SEC: u32 = 50;
/// Received hellos kept for display.
const MAX_HELLOS: usize = 500;

/// Transport configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// ICE server URLs (`stun:`/`turn:`); none are needed on one machine.
    pub ice_servers: Vec<String>,
    /// Honest unless a test asks for a forged identity proof.
    pub proof_mode: ProofMode,
    /// Simultaneous peer connections.
    pub max_connections: usize,
    /// RTCPeerConnections this tab may ever create.
    pub connection_budget: u32,
    /// Time for a peer to prove its identity once the channel is open.
    pub handshake_timeout_ms: u32,
    /// Peers learned from peer records are dialled only while fewer than
    /// this many are proven.
    pub target_degree: usize,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            ice_servers: vec![],
            proof_mode: ProofMode::Honest,
            max_connections: 64,
            connection_budget: 400,
            handshake_timeout_ms: 10_000,
            target_degree: 8,
        }
    }
}

/// Where outgoing signals go (the rendezvous client, or a test loopback).
pub type SignalSink = Rc<dyn Fn(NodeId, PeerSignal)>;

/// A peer connection's life stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerState {
    /// Negotiating the RTCPeerConnection.
    Connecting,
    /// The DataChannel is open; the identity proof is pending.
    Handshaking,
    /// Identity proven; application messages flow.
    Proven,
}

/// A peer as shown to the UI and the JS API.
#[derive(Debug, Clone, Serialize)]
pub struct PeerInfo {
    pub id: NodeId,
    pub state: PeerState,
    /// The RTCPeerConnection's `connectionState`.
    pub connection: String,
    pub polite: bool,
    pub rtt_ms: Option<f64>,
}

/// A verified hello received from a peer.
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedHello {
    /// The verified author.
    pub from: NodeId,
    pub text: String,
    /// The peer that delivered it.
    pub via: NodeId,
    pub at_ms: f64,
}

/// Counters, for the UI, the JS API and the benchmarks.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub connections_created: u32,
    pub connections_refused_budget: u32,
    pub channels_opened: u32,
    pub peers_proven: u32,
    pub proofs_rejected: u32,
    pub protocol_violations: u32,
    pub handshake_timeouts: u32,
    pub signals_in: u64,
    pub signals_out: u64,
    pub signals_rejected: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub hellos_received: u64,
    pub blob_bytes_in: u64,
    pub reconnects_scheduled: u32,
    pub peer_records_in: u64,
    /// Signals this node sent through a peer (rendezvous unreachable).
    pub relays_sent: u64,
    /// Signals this node passed on between two of its peers.
    pub relays_forwarded: u64,
    /// Relayed signals addressed to this node.
    pub relays_received: u64,
    /// Relayed signals this node could not deliver.
    pub relays_dropped: u64,
}

/// Milestones since navigation start, for the page-load benchmark.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub node_started_ms: f64,
    pub first_channel_open_ms: Option<f64>,
    pub first_peer_proven_ms: Option<f64>,
}

/// The rendezvous connection as the UI shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RendezvousStatus {
    /// `connecting`, `connected` or `disconnected`.
    pub state: String,
    pub url: String,
    pub last_error: Option<String>,
    /// Ids the rendezvous lists as live.
    pub directory: Vec<NodeId>,
}

struct Peer {
    pc: RtcPeerConnection,
    dc: RtcDataChannel,
    polite: bool,
    making_offer: bool,
    ignore_offer: bool,
    my_session: u32,
    remote_session: Option<u32>,
    session: Option<Session>,
    state: PeerState,
    rtt_ms: Option<f64>,
    ping_sent: BTreeMap<u64, f64>,
    /// Candidates that arrived before the remote description they belong
    /// to; added once it is set (otherwise they would be lost after a
    /// glare rollback and the connection could stall).
    pending_candidates: Vec<(u32, RtcIceCandidateInit)>,
    outq: VecDeque<Vec<u8>>,
    /// Keeps the JS event handlers alive as long as the connection.
    _closures: Vec<Closure<dyn FnMut(JsValue)>>,
}

impl Peer {
    fn detach(&self) {
        self.pc.set_onnegotiationneeded(None);
        self.pc.set_onicecandidate(None);
        self.pc.set_onconnectionstatechange(None);
        self.dc.set_onopen(None);
        self.dc.set_onmessage(None);
        self.dc.set_onclose(None);
        self.dc.set_onbufferedamountlow(None);
        self.dc.close();
        self.pc.close();
    }
}

#[derive(Default)]
struct State {
    peers: BTreeMap<NodeId, Peer>,
    /// Peers we want a connection with (the rendezvous directory, later also
    /// peer exchange).
    wanted: BTreeSet<NodeId>,
    backoff: BTreeMap<NodeId, u32>,
    hellos: Vec<ReceivedHello>,
    /// The latest verified peer record of each connected peer.
    records: BTreeMap<NodeId, PeerRecord>,
    last_record_ms: u64,
    /// Relays forwarded per source peer in the current one-second window.
    relay_window: BTreeMap<NodeId, (f64, u32)>,
    stats: Stats,
    timings: Timings,
    rendezvous: RendezvousStatus,
}

/// Receives every message SynapseSub delivers (the op log plugs in here).
pub type DeliverHook = Box<dyn FnMut(&Node, Delivery)>;

struct Inner {
    identity: Identity,
    config: NodeConfig,
    /// SynapseSub over the proven DataChannels.
    router: RefCell<Router>,
    deliver: RefCell<Option<DeliverHook>>,
    sink: RefCell<Option<SignalSink>>,
    state: RefCell<State>,
    listeners: RefCell<Vec<Rc<dyn Fn()>>>,
}

/// A browser node's transport. Cheap to clone (shared handle).
#[derive(Clone)]
pub struct Node {
    inner: Rc<Inner>,
}

/// Things to do after the state borrow is released.
enum After {
    Drop { id: NodeId, reason: String, reconnect: bool },
    Notify,
    Announce,
    Record(NodeId, PeerRecord),
    Relay(NodeId, RelaySignal),
    Pubsub(NodeId, Vec<u8>),
    PeerUp(NodeId),
}

impl Node {
    /// A node with no signaling yet; call [`Node::set_signal_sink`]. Starts
    /// the SynapseSub heartbeat, subscribed to `global:ops`.
    pub fn new(identity: Identity, config: NodeConfig) -> Node {
        let state =
            State { timings: Timings { node_started_ms: now_ms(), ..Default::default() }, ..Default::default() };
        let seed = u64::from_le_bytes(random_bytes());
        let mut router = Router::new(identity.node_id(), pubsub::Config::default(), seed);
        let heartbeat = router.config().heartbeat_ms;
        let _ = router.handle(pubsub::Input::Subscribe(pubsub::GLOBAL_TOPIC.to_string()), now_ms() as u64);
        let node = Node {
            inner: Rc::new(Inner {
                identity,
                config,
                router: RefCell::new(router),
                deliver: RefCell::new(None),
                sink: RefCell::new(None),
                state: RefCell::new(state),
                listeners: RefCell::new(vec![]),
            }),
        };
        let w = node.weak();
        spawn_local(async move {
            loop {
                sleep_ms(heartbeat as u32).await;
                match Node::from_weak(&w) {
                    Some(n) => n.pubsub(pubsub::Input::Tick),
                    None => break,
                }
            }
        });
        node
    }

    /// Decides, before forwarding, whether a SynapseSub message is valid.
    pub fn set_validator(&self, v: pubsub::Validator) {
        self.inner.router.borrow_mut().set_validator(v);
    }

    /// How SynapseSub reads a message's predecessor (see `Router::set_linker`).
    pub fn set_linker(&self, l: pubsub::router::Linker) {
        self.inner.router.borrow_mut().set_linker(l);
    }

    /// Runs `f` on the SynapseSub router (read-only).
    pub fn with_router<T>(&self, f: impl FnOnce(&Router) -> T) -> T {
        f(&self.inner.router.borrow())
    }

    /// Tells the UI something changed (the ledger calls this).
    pub fn touch(&self) {
        self.notify();
    }

    /// Where SynapseSub deliveries go.
    pub fn set_deliver_hook(&self, hook: DeliverHook) {
        *self.inner.deliver.borrow_mut() = Some(hook);
    }

    /// Feeds the router and carries out what it asks.
    pub fn pubsub(&self, input: pubsub::Input) {
        let outs = self.inner.router.borrow_mut().handle(input, now_ms() as u64);
        for out in outs {
            match out {
                pubsub::Output::Send(peer, packet) => {
                    self.send_raw(peer, &packet);
                }
                pubsub::Output::Deliver(d) => {
                    let hook = self.inner.deliver.borrow_mut().take();
                    // Taken out while it runs, so it may call back into
                    // the node (publish, read state) without a double borrow.
                    if let Some(mut h) = hook {
                        h(self, d);
                        let mut slot = self.inner.deliver.borrow_mut();
                        if slot.is_none() {
                            *slot = Some(h);
                        }
                    }
                }
                pubsub::Output::Event(e) => match e {
                    pubsub::Event::Published { .. } => {}
                    other => console_log!("pubsub: {other:?}"),
                },
            }
        }
    }

    /// Publishes `payload` on `topic` with the app's own `seq` (an op's
    /// per-author seq on `global:ops`).
    pub fn publish(&self, topic: &str, seq: u64, payload: Vec<u8>) {
        self.pubsub(pubsub::Input::PublishSeq { topic: topic.to_string(), seq, payload });
    }

    /// Records a message this node held before (its stored op log) so that
    /// catch-up does not fetch it again (`pubsub::Input::Restore`).
    pub fn restore(&self, topic: &str, origin: NodeId, seq: u64, payload: Vec<u8>) {
        self.pubsub(pubsub::Input::Restore { topic: topic.to_string(), origin, seq, payload });
    }

    /// SynapseSub counters.
    pub fn pubsub_stats(&self) -> pubsub::Stats {
        self.inner.router.borrow().stats().clone()
    }

    /// Mesh peers on `topic`.
    pub fn mesh_peers(&self, topic: &str) -> Vec<NodeId> {
        self.inner.router.borrow().mesh_peers(topic)
    }

    fn from_weak(w: &Weak<Inner>) -> Option<Node> {
        w.upgrade().map(|inner| Node { inner })
    }

    fn weak(&self) -> Weak<Inner> {
        Rc::downgrade(&self.inner)
    }

    pub fn id(&self) -> NodeId {
        self.inner.identity.node_id()
    }

    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// Routes outgoing signals (set by the rendezvous client).
    pub fn set_signal_sink(&self, sink: SignalSink) {
        *self.inner.sink.borrow_mut() = Some(sink);
    }

    /// Registers a callback run after every visible change.
    pub fn subscribe(&self, f: Rc<dyn Fn()>) {
        self.inner.listeners.borrow_mut().push(f);
    }

    fn notify(&self) {
        let ls: Vec<_> = self.inner.listeners.borrow().clone();
        for l in ls {
            l();
        }
    }

    /// Sends a signal through the rendezvous when it is connected, otherwise
    /// through the peers that list `to` among their neighbours (any proven
    /// peer if none does); each relay forwards it at most one hop.
    fn send_signal(&self, to: NodeId, session: u32, signal: SignalPayload) {
        let sig = PeerSignal { session, signal };
        let sink = self.inner.sink.borrow().clone();
        let rendezvous_up = self.inner.state.borrow().rendezvous.state == "connected";
        self.inner.state.borrow_mut().stats.signals_out += 1;
        if let (Some(s), true) = (sink, rendezvous_up) {
            s(to, sig);
            return;
        }
        let Ok(payload) = serde_json::to_vec(&sig) else { return };
        let relay = WireMsg::Relay(RelaySignal::sign(&self.inner.identity, to, 1, payload));
        let via: Vec<NodeId> = {
            let st = self.inner.state.borrow();
            let proven = |id: &NodeId| *id != to && st.peers.get(id).is_some_and(|p| p.state == PeerState::Proven);
            let listing: Vec<NodeId> = st
                .records
                .iter()
                .filter(|(id, r)| proven(id) && r.neighbors.contains(&to))
                .map(|(id, _)| *id)
                .collect();
            if listing.is_empty() { st.peers.keys().filter(|id| proven(id)).copied().collect() } else { listing }
        };
        if via.is_empty() {
            console_log!("no path for a signal to {}: rendezvous down and no peers", to.short());
            return;
        }
        for v in via {
            if self.send_to(v, &relay) {
                self.inner.state.borrow_mut().stats.relays_sent += 1;
            }
        }
    }

    /// A verified relayed signal arrived from peer `via`.
    fn on_relay(&self, via: NodeId, r: RelaySignal) {
        if r.to == self.id() {
            self.inner.state.borrow_mut().stats.relays_received += 1;
            match serde_json::from_slice::<serde_json::Value>(&r.payload) {
                Ok(v) => self.handle_signal(r.from, v),
                Err(e) => {
                    self.inner.state.borrow_mut().stats.signals_rejected += 1;
                    console_log!("unreadable relayed signal from {} via {}: {e}", r.from.short(), via.short());
                }
            }
            return;
        }
        let target_proven = self.inner.state.borrow().peers.get(&r.to).is_some_and(|p| p.state == PeerState::Proven);
        let within_rate = {
            let mut st = self.inner.state.borrow_mut();
            let now = now_ms();
            let w = st.relay_window.entry(via).or_insert((now, 0));
            if now - w.0 >= 1000.0 {
                *w = (now, 0);
            }
            w.1 += 1;
            w.1 <= MAX_RELAYS_PER_SEC
        };
        if r.ttl == 0 || !target_proven || r.to == via || r.from == r.to || !within_rate {
            self.inner.state.borrow_mut().stats.relays_dropped += 1;
            return;
        }
        let fwd = WireMsg::Relay(RelaySignal { ttl: r.ttl - 1, ..r.clone() });
        if self.send_to(r.to, &fwd) {
            self.inner.state.borrow_mut().stats.relays_forwarded += 1;
        }
    }

    /// A peer's verified record of its neighbours: remember it (for routing
    /// relays) and dial neighbours we lack while under the target degree.
    fn on_peer_record(&self, from: NodeId, r: PeerRecord) {
        let me = self.id();
        let to_dial: Vec<NodeId> = {
            let mut st = self.inner.state.borrow_mut();
            st.stats.peer_records_in += 1;
            if st.records.get(&from).is_some_and(|old| old.issued_ms >= r.issued_ms) {
                return; // stale or replayed
            }
            let neighbors = r.neighbors.clone();
            st.records.insert(from, r);
            let proven = st.peers.values().filter(|p| p.state == PeerState::Proven).count();
            let room = self.inner.config.target_degree.saturating_sub(proven);
            let new: Vec<NodeId> =
                neighbors.into_iter().filter(|n| *n != me && !st.peers.contains_key(n)).take(room).collect();
            st.wanted.extend(new.iter().copied());
            new
        };
        for id in to_dial {
            self.connect(id);
        }
    }

    /// Sends this node's signed neighbour list to every proven peer.
    pub fn announce_record(&self) {
        let ids = self.proven_ids();
        let issued = {
            let mut st = self.inner.state.borrow_mut();
            let t = (js_sys::Date::now() as u64).max(st.last_record_ms + 1);
            st.last_record_ms = t;
            t
        };
        let msg = WireMsg::PeerRecord(PeerRecord::sign(&self.inner.identity, issued, ids.clone()));
        for id in ids {
            self.send_to(id, &msg);
        }
    }

    // ----- directory -------------------------------------------------------

    /// The rendezvous' live list (on welcome): connect to everyone in it.
    pub fn set_directory(&self, ids: Vec<NodeId>) {
        let me = self.id();
        let ids: Vec<NodeId> = ids.into_iter().filter(|i| *i != me).collect();
        {
            let mut st = self.inner.state.borrow_mut();
            st.rendezvous.directory = ids.clone();
            st.wanted.extend(ids.iter().copied());
        }
        for id in ids {
            self.connect(id);
        }
        self.notify();
    }

    /// A node joined: it will offer to us (it connects to its welcome list);
    /// if no offer arrives soon, we offer ourselves.
    pub fn peer_joined(&self, id: NodeId) {
        if id == self.id() {
            return;
        }
        {
            let mut st = self.inner.state.borrow_mut();
            st.wanted.insert(id);
            if !st.rendezvous.directory.contains(&id) {
                st.rendezvous.directory.push(id);
            }
        }
        let w = self.weak();
        spawn_local(async move {
            sleep_ms(3000).await;
            if let Some(n) = Node::from_weak(&w) {
                let missing = {
                    let st = n.inner.state.borrow();
                    st.wanted.contains(&id) && !st.peers.contains_key(&id)
                };
                if missing {
                    n.connect(id);
                }
            }
        });
        self.notify();
    }

    /// A node left the rendezvous. A proven connection stays (the network
    /// must outlive the rendezvous); a pending one is abandoned.
    pub fn peer_left(&self, id: NodeId) {
        let drop_it = {
            let mut st = self.inner.state.borrow_mut();
            st.wanted.remove(&id);
            st.rendezvous.directory.retain(|d| *d != id);
            st.peers.get(&id).is_some_and(|p| p.state != PeerState::Proven)
        };
        if drop_it {
            self.drop_peer(id, "left the rendezvous before proving itself", false);
        }
        self.notify();
    }

    /// Updates the rendezvous status shown to the user.
    pub fn set_rendezvous_status(&self, state: &str, url: &str, error: Option<String>) {
        {
            let mut st = self.inner.state.borrow_mut();
            st.rendezvous.state = state.to_string();
            st.rendezvous.url = url.to_string();
            if error.is_some() {
                st.rendezvous.last_error = error;
            }
        }
        self.notify();
    }

    // ----- connections -----------------------------------------------------

    /// Opens a connection to `id` unless one exists.
    pub fn connect(&self, id: NodeId) {
        if id == self.id() {
            return;
        }
        let session = random_u32();
        if let Err(e) = self.create_peer(id, session, None) {
            console_log!("connect {}: {e}", id.short());
        }
    }

    fn create_peer(&self, id: NodeId, my_session: u32, remote_session: Option<u32>) -> Result<(), String> {
        {
            let mut st = self.inner.state.borrow_mut();
            if st.peers.contains_key(&id) {
                return Ok(());
            }
            if st.peers.len() >= self.inner.config.max_connections {
                return Err(format!("at the limit of {} connections", self.inner.config.max_connections));
            }
            if st.stats.connections_created >= self.inner.config.connection_budget {
                st.stats.connections_refused_budget += 1;
                return Err(format!(
                    "connection budget of {} RTCPeerConnections for this tab is spent",
                    self.inner.config.connection_budget
                ));
            }
            st.stats.connections_created += 1;
        }
        let cfg = RtcConfiguration::new();
        let servers = js_sys::Array::new();
        for url in &self.inner.config.ice_servers {
            let s = RtcIceServer::new();
            s.set_urls_str(url);
            servers.push(&s);
        }
        cfg.set_ice_servers(&servers);
        let pc = RtcPeerConnection::new_with_configuration(&cfg).map_err(|e| js_err(&e))?;
        let init = RtcDataChannelInit::new();
        init.set_negotiated(true);
        init.set_id(0);
        init.set_ordered(true);
        let dc = pc.create_data_channel_with_data_channel_dict("synapse", &init);
        dc.set_binary_type(RtcDataChannelType::Arraybuffer);
        dc.set_buffered_amount_low_threshold(LOW_WATER);

        let w = self.weak();
        let mut closures: Vec<Closure<dyn FnMut(JsValue)>> = vec![];
        let mk = |f: Box<dyn FnMut(JsValue)>| Closure::wrap(f);

        let w1 = w.clone();
        let c = mk(Box::new(move |_| {
            if let Some(n) = Node::from_weak(&w1) {
                spawn_local(async move { n.negotiate(id, my_session).await });
            }
        }));
        pc.set_onnegotiationneeded(Some(c.as_ref().unchecked_ref()));
        closures.push(c);

        let w1 = w.clone();
        let c = mk(Box::new(move |ev: JsValue| {
            let Some(n) = Node::from_weak(&w1) else {
                return;
            };
            let Ok(ev) = ev.dyn_into::<RtcPeerConnectionIceEvent>() else {
                return;
            };
            if let Some(c) = ev.candidate() {
                if !n.is_current(id, my_session) {
                    return;
                }
                n.send_signal(
                    id,
                    my_session,
                    SignalPayload::Candidate {
                        candidate: c.candidate(),
                        sdp_mid: c.sdp_mid(),
                        sdp_m_line_index: c.sdp_m_line_index(),
                    },
                );
            }
        }));
        pc.set_onicecandidate(Some(c.as_ref().unchecked_ref()));
        closures.push(c);

        let w1 = w.clone();
        let c = mk(Box::new(move |_| {
            if let Some(n) = Node::from_weak(&w1) {
                n.on_connection_state(id, my_session);
            }
        }));
        pc.set_onconnectionstatechange(Some(c.as_ref().unchecked_ref()));
        closures.push(c);

        let w1 = w.clone();
        let c = mk(Box::new(move |_| {
            if let Some(n) = Node::from_weak(&w1) {
                n.on_open(id, my_session);
            }
        }));
        dc.set_onopen(Some(c.as_ref().unchecked_ref()));
        closures.push(c);

        let w1 = w.clone();
        let c = mk(Box::new(move |ev: JsValue| {
            let Some(n) = Node::from_weak(&w1) else {
                return;
            };
            let Ok(ev) = ev.dyn_into::<MessageEvent>() else {
                return;
            };
            let data = ev.data();
            let bytes = match data.dyn_into::<js_sys::ArrayBuffer>() {
                Ok(buf) => js_sys::Uint8Array::new(&buf).to_vec(),
                Err(other) => match other.as_string() {
                    Some(s) => s.into_bytes(),
                    None => return,
                },
            };
            n.on_frame(id, my_session, &bytes);
        }));
        dc.set_onmessage(Some(c.as_ref().unchecked_ref()));
        closures.push(c);

        let w1 = w.clone();
        let c = mk(Box::new(move |_| {
            if let Some(n) = Node::from_weak(&w1)
                && n.is_current(id, my_session)
            {
                n.drop_peer(id, "data channel closed", true);
            }
        }));
        dc.set_onclose(Some(c.as_ref().unchecked_ref()));
        closures.push(c);

        let w1 = w.clone();
        let c = mk(Box::new(move |_| {
            if let Some(n) = Node::from_weak(&w1) {
                n.flush(id, my_session);
            }
        }));
        dc.set_onbufferedamountlow(Some(c.as_ref().unchecked_ref()));
        closures.push(c);

        let polite = self.id() > id;
        self.inner.state.borrow_mut().peers.insert(
            id,
            Peer {
                pc,
                dc,
                polite,
                making_offer: false,
                ignore_offer: false,
                my_session,
                remote_session,
                session: None,
                state: PeerState::Connecting,
                rtt_ms: None,
                ping_sent: BTreeMap::new(),
                pending_candidates: vec![],
                outq: VecDeque::new(),
                _closures: closures,
            },
        );
        self.notify();
        Ok(())
    }

    fn is_current(&self, id: NodeId, session: u32) -> bool {
        self.inner.state.borrow().peers.get(&id).is_some_and(|p| p.my_session == session)
    }

    fn pc_of(&self, id: NodeId, session: u32) -> Option<RtcPeerConnection> {
        self.inner.state.borrow().peers.get(&id).filter(|p| p.my_session == session).map(|p| p.pc.clone())
    }

    async fn negotiate(&self, id: NodeId, session: u32) {
        let Some(pc) = self.pc_of(id, session) else {
            return;
        };
        if let Some(p) = self.inner.state.borrow_mut().peers.get_mut(&id) {
            p.making_offer = true;
        }
        let r = JsFuture::from(set_local_description_implicit(&pc)).await;
        if let Some(p) = self.inner.state.borrow_mut().peers.get_mut(&id).filter(|p| p.my_session == session) {
            p.making_offer = false;
        }
        match r {
            Ok(_) => self.send_local_description(id, session, &pc),
            Err(e) => console_log!("offer to {} failed: {}", id.short(), js_err(&e)),
        }
    }

    fn send_local_description(&self, id: NodeId, session: u32, pc: &RtcPeerConnection) {
        let Some(desc) = pc.local_description() else {
            return;
        };
        let sdp_type = match desc.type_() {
            RtcSdpType::Offer => SdpType::Offer,
            RtcSdpType::Answer => SdpType::Answer,
            _ => return,
        };
        self.send_signal(id, session, SignalPayload::Description { sdp_type, sdp: desc.sdp() });
    }

    /// A signal from `from` (already authenticated by the rendezvous, but
    /// its content is hostile until parsed and size-checked).
    pub fn handle_signal(&self, from: NodeId, payload: serde_json::Value) {
        self.inner.state.borrow_mut().stats.signals_in += 1;
        let sig = match PeerSignal::from_json(payload) {
            Ok(s) => s,
            Err(e) => {
                self.inner.state.borrow_mut().stats.signals_rejected += 1;
                console_log!("rejected signal from {}: {e}", from.short());
                return;
            }
        };
        if from == self.id() {
            return;
        }
        let n = self.clone();
        spawn_local(async move { n.apply_signal(from, sig).await });
    }

    async fn apply_signal(&self, from: NodeId, sig: PeerSignal) {
        match sig.signal {
            SignalPayload::Description { sdp_type, sdp } => {
                self.apply_description(from, sig.session, sdp_type, sdp).await
            }
            SignalPayload::Candidate { candidate, sdp_mid, sdp_m_line_index } => {
                if candidate.is_empty() {
                    return; // end-of-candidates
                }
                let init = RtcIceCandidateInit::new(&candidate);
                init.set_sdp_mid(sdp_mid.as_deref());
                init.set_sdp_m_line_index(sdp_m_line_index);
                let (pc, ignoring) = {
                    let mut st = self.inner.state.borrow_mut();
                    let Some(p) = st.peers.get_mut(&from) else {
                        return;
                    };
                    let bound = p.pc.remote_description().is_some();
                    if bound && p.remote_session != Some(sig.session) {
                        return; // from a connection the peer has since replaced
                    }
                    if !bound {
                        if p.pending_candidates.len() < 64 {
                            p.pending_candidates.push((sig.session, init));
                        }
                        return;
                    }
                    (p.pc.clone(), p.ignore_offer)
                };
                if let Err(e) = JsFuture::from(pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init))).await
                    && !ignoring
                {
                    console_log!("candidate from {}: {}", from.short(), js_err(&e));
                }
            }
            SignalPayload::Bye => {
                let matches =
                    self.inner.state.borrow().peers.get(&from).is_some_and(|p| p.remote_session == Some(sig.session));
                if matches {
                    self.drop_peer(from, "peer said bye", false);
                }
            }
        }
    }

    /// Perfect negotiation for one remote description.
    async fn apply_description(&self, from: NodeId, session: u32, sdp_type: SdpType, sdp: String) {
        /// What to do with our connection before applying the description.
        enum Plan {
            Use,
            Fresh,
            Ignore,
        }
        let plan = {
            let st = self.inner.state.borrow();
            match st.peers.get(&from) {
                None => Plan::Fresh,
                Some(p) => {
                    let bound = p.pc.remote_description().is_some();
                    let collision = sdp_type == SdpType::Offer
                        && (p.making_offer || p.pc.signaling_state() != RtcSignalingState::Stable);
                    if bound && p.remote_session != Some(session) {
                        // The peer replaced its connection (failure, reload):
                        // an offer starts afresh, an old answer is stale.
                        if sdp_type == SdpType::Offer { Plan::Fresh } else { Plan::Ignore }
                    } else if collision && p.polite && !bound {
                        // Glare on a connection that never completed a
                        // negotiation: the polite side answers with a fresh
                        // connection instead of rolling back, because
                        // Chromium gathers no ICE candidates for an answer
                        // made after rolling back the first offer.
                        Plan::Fresh
                    } else {
                        Plan::Use
                    }
                }
            }
        };
        match plan {
            Plan::Ignore => return,
            Plan::Fresh if sdp_type == SdpType::Answer => return,
            Plan::Fresh => {
                if self.inner.state.borrow().peers.contains_key(&from) {
                    self.drop_peer(from, "replaced by the peer's new connection", false);
                }
                if let Err(e) = self.create_peer(from, random_u32(), Some(session)) {
                    console_log!("cannot accept {}: {e}", from.short());
                    return;
                }
            }
            Plan::Use => {}
        }
        let (pc, my_session) = {
            let mut st = self.inner.state.borrow_mut();
            let Some(p) = st.peers.get_mut(&from) else {
                return;
            };
            let collision =
                sdp_type == SdpType::Offer && (p.making_offer || p.pc.signaling_state() != RtcSignalingState::Stable);
            p.ignore_offer = !p.polite && collision;
            if p.ignore_offer {
                return; // the impolite side keeps its own offer
            }
            p.remote_session = Some(session);
            (p.pc.clone(), p.my_session)
        };
        let init = RtcSessionDescriptionInit::new(match sdp_type {
            SdpType::Offer => RtcSdpType::Offer,
            SdpType::Answer => RtcSdpType::Answer,
        });
        init.set_sdp(&sdp);
        if let Err(e) = JsFuture::from(pc.set_remote_description(&init)).await {
            console_log!("remote description from {}: {}", from.short(), js_err(&e));
            return;
        }
        let pending: Vec<RtcIceCandidateInit> = self
            .inner
            .state
            .borrow_mut()
            .peers
            .get_mut(&from)
            .filter(|p| p.my_session == my_session)
            .map(|p| std::mem::take(&mut p.pending_candidates))
            .unwrap_or_default()
            .into_iter()
            .filter(|(s, _)| *s == session)
            .map(|(_, c)| c)
            .collect();
        for c in pending {
            if let Err(e) = JsFuture::from(pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&c))).await {
                console_log!("buffered candidate from {}: {}", from.short(), js_err(&e));
            }
        }
        if sdp_type == SdpType::Offer {
            match JsFuture::from(set_local_description_implicit(&pc)).await {
                Ok(_) => self.send_local_description(from, my_session, &pc),
                Err(e) => console_log!("answer to {}: {}", from.short(), js_err(&e)),
            }
        }
    }

    fn on_connection_state(&self, id: NodeId, session: u32) {
        let Some(pc) = self.pc_of(id, session) else {
            return;
        };
        match pc.connection_state() {
            RtcPeerConnectionState::Failed => self.drop_peer(id, "connection failed", true),
            RtcPeerConnectionState::Closed => self.drop_peer(id, "connection closed", true),
            RtcPeerConnectionState::Disconnected => {
                // Often transient; give ICE a few seconds to recover.
                let w = self.weak();
                spawn_local(async move {
                    sleep_ms(5000).await;
                    if let Some(n) = Node::from_weak(&w)
                        && n.pc_of(id, session)
                            .is_some_and(|pc| pc.connection_state() == RtcPeerConnectionState::Disconnected)
                    {
                        n.drop_peer(id, "disconnected for 5 s", true);
                    }
                });
                self.notify();
            }
            _ => self.notify(),
        }
    }

    fn on_open(&self, id: NodeId, session: u32) {
        let after = {
            let mut guard = self.inner.state.borrow_mut();
            let st = &mut *guard;
            let now = now_ms();
            st.stats.channels_opened += 1;
            st.timings.first_channel_open_ms.get_or_insert(now);
            let Some(p) = st.peers.get_mut(&id).filter(|p| p.my_session == session) else {
                return;
            };
            let local = p.pc.local_description().and_then(|d| sdp_fingerprint(&d.sdp()));
            let remote = p.pc.remote_description().and_then(|d| sdp_fingerprint(&d.sdp()));
            match (local, remote) {
                (Some(l), Some(r)) => {
                    let (s, events) =
                        Session::start(&self.inner.identity, id, random_bytes(), l, r, self.inner.config.proof_mode);
                    p.session = Some(s);
                    p.state = PeerState::Handshaking;
                    send_events(p, &mut st.stats, events)
                }
                _ => vec![After::Drop { id, reason: "no DTLS fingerprint in the SDP".into(), reconnect: false }],
            }
        };
        self.run(after);
        let w = self.weak();
        let timeout = self.inner.config.handshake_timeout_ms;
        spawn_local(async move {
            sleep_ms(timeout).await;
            if let Some(n) = Node::from_weak(&w) {
                let pending = n
                    .inner
                    .state
                    .borrow()
                    .peers
                    .get(&id)
                    .is_some_and(|p| p.my_session == session && p.state != PeerState::Proven);
                if pending {
                    n.inner.state.borrow_mut().stats.handshake_timeouts += 1;
                    n.drop_peer(id, "identity handshake timed out", true);
                }
            }
        });
        self.notify();
    }

    fn on_frame(&self, id: NodeId, session: u32, frame: &[u8]) {
        let after = {
            let mut guard = self.inner.state.borrow_mut();
            let st = &mut *guard;
            st.stats.frames_in += 1;
            st.stats.bytes_in += frame.len() as u64;
            let Some(p) = st.peers.get_mut(&id).filter(|p| p.my_session == session) else {
                return;
            };
            let Some(s) = p.session.as_mut() else { return };
            let events = s.on_frame(&self.inner.identity, frame);
            let mut after = vec![];
            let mut sends = vec![];
            for e in events {
                match e {
                    SessionEvent::Send(f) => sends.push(SessionEvent::Send(f)),
                    SessionEvent::Proven => {
                        p.state = PeerState::Proven;
                        st.stats.peers_proven += 1;
                        st.timings.first_peer_proven_ms.get_or_insert(now_ms());
                        st.backoff.remove(&id);
                        after.push(After::Notify);
                        after.push(After::Announce);
                        after.push(After::PeerUp(id));
                    }
                    SessionEvent::Hello(h) => {
                        st.stats.hellos_received += 1;
                        if st.hellos.len() >= MAX_HELLOS {
                            st.hellos.remove(0);
                        }
                        st.hellos.push(ReceivedHello { from: h.author, text: h.text, via: id, at_ms: now_ms() });
                        after.push(After::Notify);
                    }
                    SessionEvent::Pong(pid) => {
                        if let Some(sent) = p.ping_sent.remove(&pid) {
                            p.rtt_ms = Some(now_ms() - sent);
                        }
                    }
                    SessionEvent::Blob(n) => st.stats.blob_bytes_in += n as u64,
                    SessionEvent::PeerRecord(r) => after.push(After::Record(id, r)),
                    SessionEvent::Relay(r) => after.push(After::Relay(id, r)),
                    SessionEvent::Pubsub(packet) => after.push(After::Pubsub(id, packet)),
                    SessionEvent::Violation(reason) => {
                        st.stats.protocol_violations += 1;
                        if reason.contains("identity proof") || reason.contains("claimed id") {
                            st.stats.proofs_rejected += 1;
                        }
                        after.push(After::Drop { id, reason, reconnect: false });
                    }
                }
            }
            after.extend(send_events(p, &mut st.stats, sends));
            after
        };
        self.run(after);
    }

    fn run(&self, after: Vec<After>) {
        let mut notify = false;
        for a in after {
            match a {
                After::Drop { id, reason, reconnect } => self.drop_peer(id, &reason, reconnect),
                After::Notify => notify = true,
                After::Announce => self.announce_record(),
                After::Record(from, r) => self.on_peer_record(from, r),
                After::Relay(via, r) => self.on_relay(via, r),
                After::Pubsub(from, packet) => self.pubsub(pubsub::Input::Frame(from, packet)),
                After::PeerUp(id) => self.pubsub(pubsub::Input::PeerConnected(id)),
            }
        }
        if notify {
            self.notify();
        }
    }

    fn flush(&self, id: NodeId, session: u32) {
        let after = {
            let mut guard = self.inner.state.borrow_mut();
            let st = &mut *guard;
            let Some(p) = st.peers.get_mut(&id).filter(|p| p.my_session == session) else {
                return;
            };
            drain(p, &mut st.stats)
        };
        self.run(after);
    }

    /// Closes and forgets the connection to `id`; reconnects later if asked
    /// and the peer is still wanted.
    pub fn drop_peer(&self, id: NodeId, reason: &str, reconnect: bool) {
        let removed = {
            let mut st = self.inner.state.borrow_mut();
            st.records.remove(&id);
            st.relay_window.remove(&id);
            st.peers.remove(&id)
        };
        let Some(p) = removed else { return };
        console_log!("dropped {}: {reason}", id.short());
        if p.state == PeerState::Proven {
            self.pubsub(pubsub::Input::PeerDisconnected(id));
        }
        if reconnect {
            self.send_signal(id, p.my_session, SignalPayload::Bye);
        }
        p.detach();
        drop(p);
        if reconnect {
            self.schedule_reconnect(id);
        }
        self.notify();
    }

    /// Closes every connection and stops reconnecting (page unload, tests).
    pub fn shutdown(&self) {
        let ids: Vec<NodeId> = {
            let mut st = self.inner.state.borrow_mut();
            st.wanted.clear();
            st.peers.keys().copied().collect()
        };
        for id in ids {
            self.drop_peer(id, "shutting down", false);
        }
    }

    /// Closes the DataChannel to `id` as if the network broke it (tests and
    /// the UI use this to exercise reconnection).
    pub fn close_peer(&self, id: NodeId) -> bool {
        let dc = self.inner.state.borrow().peers.get(&id).map(|p| p.dc.clone());
        match dc {
            Some(dc) => {
                dc.close();
                true
            }
            None => false,
        }
    }

    fn schedule_reconnect(&self, id: NodeId) {
        let delay = {
            let mut st = self.inner.state.borrow_mut();
            if !st.wanted.contains(&id) {
                return;
            }
            st.stats.reconnects_scheduled += 1;
            let attempts = st.backoff.entry(id).or_insert(0);
            *attempts += 1;
            let base = 500u32.saturating_mul(1 << (*attempts - 1).min(6)).min(30_000);
            base + random_u32() % 250
        };
        let w = self.weak();
        spawn_local(async move {
            sleep_ms(delay).await;
            if let Some(n) = Node::from_weak(&w) {
                let go = {
                    let st = n.inner.state.borrow();
                    st.wanted.contains(&id) && !st.peers.contains_key(&id)
                };
                if go {
                    n.connect(id);
                }
            }
        });
    }

    // ----- application -----------------------------------------------------

    fn proven_ids(&self) -> Vec<NodeId> {
        self.inner
            .state
            .borrow()
            .peers
            .iter()
            .filter(|(_, p)| p.state == PeerState::Proven)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Sends `msg` to one proven peer. Returns false if it is not proven.
    pub fn send_to(&self, id: NodeId, msg: &WireMsg) -> bool {
        let after = {
            let mut guard = self.inner.state.borrow_mut();
            let st = &mut *guard;
            let Some(p) = st.peers.get_mut(&id) else {
                return false;
            };
            let Some(events) = p.session.as_ref().and_then(|s| s.send(msg)) else {
                return false;
            };
            send_events(p, &mut st.stats, events)
        };
        self.run(after);
        true
    }

    /// Sends an encoded SynapseSub packet to one proven peer.
    pub fn send_raw(&self, id: NodeId, packet: &[u8]) -> bool {
        let after = {
            let mut guard = self.inner.state.borrow_mut();
            let st = &mut *guard;
            let Some(p) = st.peers.get_mut(&id) else { return false };
            let Some(events) = p.session.as_ref().and_then(|s| s.send_raw(packet)) else { return false };
            send_events(p, &mut st.stats, events)
        };
        self.run(after);
        true
    }

    /// Signs `text` and sends it to every proven peer; returns how many.
    pub fn send_hello(&self, text: &str) -> Result<usize, String> {
        let hello = SignedHello::sign(&self.inner.identity, text).map_err(|e| e.to_string())?;
        let msg = WireMsg::Hello(hello);
        Ok(self.proven_ids().into_iter().filter(|id| self.send_to(*id, &msg)).count())
    }

    /// Sends a ping to every proven peer (RTT shows in [`PeerInfo`]).
    pub fn ping_all(&self) {
        for id in self.proven_ids() {
            let pid = random_u32() as u64;
            if let Some(p) = self.inner.state.borrow_mut().peers.get_mut(&id) {
                if p.ping_sent.len() > 16 {
                    p.ping_sent.clear();
                }
                p.ping_sent.insert(pid, now_ms());
            }
            self.send_to(id, &WireMsg::Ping(pid));
        }
    }

    // ----- reading ---------------------------------------------------------

    /// Ids of peers whose channel is open and identity proven.
    pub fn peers(&self) -> Vec<NodeId> {
        self.proven_ids()
    }

    /// Every connection, in any state.
    pub fn peer_infos(&self) -> Vec<PeerInfo> {
        self.inner
            .state
            .borrow()
            .peers
            .iter()
            .map(|(id, p)| PeerInfo {
                id: *id,
                state: p.state,
                connection: format!("{:?}", p.pc.connection_state()).to_lowercase(),
                polite: p.polite,
                rtt_ms: p.rtt_ms,
            })
            .collect()
    }

    pub fn hellos(&self) -> Vec<ReceivedHello> {
        self.inner.state.borrow().hellos.clone()
    }

    pub fn stats(&self) -> Stats {
        self.inner.state.borrow().stats.clone()
    }

    pub fn timings(&self) -> Timings {
        self.inner.state.borrow().timings.clone()
    }

    pub fn rendezvous_status(&self) -> RendezvousStatus {
        self.inner.state.borrow().rendezvous.clone()
    }
}

/// Sends the `Send` events' frames (queueing under backpressure); other
/// events are ignored here.
fn send_events(p: &mut Peer, stats: &mut Stats, events: Vec<SessionEvent>) -> Vec<After> {
    for e in events {
        if let SessionEvent::Send(f) = e {
            p.outq.push_back(f);
        }
    }
    drain(p, stats)
}

fn drain(p: &mut Peer, stats: &mut Stats) -> Vec<After> {
    if p.dc.ready_state() != RtcDataChannelState::Open {
        return vec![];
    }
    while let Some(f) = p.outq.front() {
        if p.dc.buffered_amount() > HIGH_WATER {
            break;
        }
        if let Err(e) = p.dc.send_with_u8_array(f) {
            let id = p.session.as_ref().map(|s| s.remote());
            p.outq.clear();
            return id
                .map(|id| vec![After::Drop { id, reason: format!("send failed: {}", js_err(&e)), reconnect: true }])
                .unwrap_or_default();
        }
        stats.frames_out += 1;
        stats.bytes_out += f.len() as u64;
        p.outq.pop_front();
    }
    vec![]
}
