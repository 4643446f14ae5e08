//! WebRTC driver: one RTCPeerConnection and one reliable ordered
//! DataChannel per peer, carrying out what the sans-IO
//! [`PeerManager`](crate::peers::PeerManager) asks and feeding it every
//! browser event. It decides nothing: perfect negotiation, session ids,
//! the identity handshake, backoff, the connection budget, relays and peer
//! records are the manager's rules (`node-wasm/src/peers/`, tested natively).
//!
//! What stays here is IO: creating and closing connections, the
//! `setLocalDescription`/`setRemoteDescription`/`addIceCandidate` promises,
//! the DataChannel's backpressure queue (frames wait while `bufferedAmount`
//! is above 8 MiB and resume on `bufferedamountlow`), the SynapseSub router
//! glue, and one timer armed at the earliest deadline of the manager and the
//! router's heartbeat.

use crate::console_log;
use crate::ice_status::{IcePolicy, IceSource, IceStatus, candidate_type};
use crate::identity::{Identity, NodeId};
use crate::peers::{Candidate, ConnState, Event, Input, Output, PeerManager};
use crate::pubsub::{self, Delivery, Router};
use crate::runtime::util::{js_err, now_ms, random_bytes};
use crate::signaling::{IceServer, PeerSignal, SdpType};
use crate::wire::WireMsg;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::{Rc, Weak};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{
    MessageEvent, RtcConfiguration, RtcDataChannel, RtcDataChannelInit, RtcDataChannelState, RtcDataChannelType,
    RtcIceCandidateInit, RtcIceServer, RtcIceTransportPolicy, RtcPeerConnection, RtcPeerConnectionIceErrorEvent,
    RtcPeerConnectionIceEvent, RtcPeerConnectionState, RtcSdpType, RtcSessionDescriptionInit, RtcSignalingState,
};

pub use crate::peers::{NodeConfig, PeerInfo, PeerState, ReceivedHello, RendezvousStatus, Stats, Timings};

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
/// `(local, remote)` candidate types of a connection's selected pair.
type CandidatePair = (Option<&'static str>, Option<&'static str>);

/// Where outgoing signals go (the rendezvous client, or a test loopback).
pub type SignalSink = Rc<dyn Fn(NodeId, PeerSignal)>;

/// Asks one rendezvous for another sample of its directory (`list`).
pub type DirectoryAsk = Rc<dyn Fn()>;

/// Receives every message SynapseSub delivers (the op log plugs in here).
pub type DeliverHook = Box<dyn FnMut(&Node, Delivery)>;
/// Where snapshot requests and parts from peers go (the ledger).
pub type SnapshotHook = Box<dyn FnMut(&Node, NodeId, crate::wire::WireMsg)>;

/// One RTCPeerConnection and its DataChannel.
struct Conn {
    session: u32,
    pc: RtcPeerConnection,
    dc: RtcDataChannel,
    /// Frames waiting for the channel's buffer to drain.
    outq: VecDeque<Vec<u8>>,
    /// Keeps the JS event handlers alive as long as the connection.
    _closures: Vec<Closure<dyn FnMut(JsValue)>>,
}

impl Conn {
    fn detach(&self) {
        let _ = js_sys::Reflect::set(&self.pc, &JsValue::from_str("onicecandidateerror"), &JsValue::NULL);
        self.pc.set_onnegotiationneeded(None);
        self.pc.set_onicecandidate(None);
        self.pc.set_onconnectionstatechange(None);
        self.pc.set_onsignalingstatechange(None);
        self.dc.set_onopen(None);
        self.dc.set_onmessage(None);
        self.dc.set_onclose(None);
        self.dc.set_onbufferedamountlow(None);
        self.dc.close();
        self.pc.close();
    }
}

struct Inner {
    identity: Identity,
    /// The ICE servers new connections use: the page's `?ice=` URLs or
    /// `setIceServers` if it gave any (they win), else what the rendezvous
    /// handed out.
    ice_servers: RefCell<Vec<IceServer>>,
    ice_from_page: Cell<bool>,
    /// `?relay=1`: `iceTransportPolicy: "relay"` (TURN relays only).
    relay_only: bool,
    /// Where the servers came from, and the browser's ICE errors.
    ice_status: RefCell<IceStatus>,
    /// Per peer: the session and the (local, remote) candidate types of
    /// its selected pair, read from `getStats()` once connected.
    candidates: RefCell<BTreeMap<NodeId, (u32, CandidatePair)>>,
    manager: RefCell<PeerManager>,
    /// SynapseSub over the proven DataChannels.
    router: RefCell<Router>,
    conns: RefCell<BTreeMap<NodeId, Conn>>,
    deliver: RefCell<Option<DeliverHook>>,
    snapshot: RefCell<Option<SnapshotHook>>,
    /// One per rendezvous server, by the manager's index of it.
    sinks: RefCell<Vec<Option<SignalSink>>>,
    /// Per rendezvous server: how to ask it for a directory sample.
    asks: RefCell<Vec<Option<DirectoryAsk>>>,
    listeners: RefCell<Vec<Rc<dyn Fn()>>>,
    /// The one timer: its deadline and handle.
    timer: RefCell<Option<(u64, gloo_timers::callback::Timeout)>>,
    /// When the router's next heartbeat is due.
    next_tick: Cell<u64>,
}

/// A browser node's transport. Cheap to clone (shared handle).
#[derive(Clone)]
pub struct Node {
    inner: Rc<Inner>,
}

fn now() -> u64 {
    now_ms().max(0.0) as u64
}

impl Node {
    /// A node with no signaling yet; call [`Node::set_signal_sink`]. Starts
    /// the SynapseSub heartbeat, subscribed to `global:ops`.
    pub fn new(identity: Identity, config: NodeConfig) -> Node {
        let t = now_ms();
        let copy = Identity::from_secret_bytes(&identity.to_secret_bytes());
        let manager = match copy {
            Ok(id) => PeerManager::new(id, config.clone(), random_bytes(), t, js_sys::Date::now() - t),
            // Cannot happen (the bytes come from a live identity); fall back
            // to a throwaway key so the node still starts and says so.
            Err(e) => {
                console_log!("identity copy failed: {e}");
                PeerManager::new(Identity::from_seed(random_bytes()), config.clone(), random_bytes(), t, 0.0)
            }
        };
        let seed = u64::from_le_bytes(random_bytes());
        let mut router = Router::new(identity.node_id(), pubsub::Config::default(), seed);
        let heartbeat = router.config().heartbeat_ms;
        let _ = router.handle(pubsub::Input::Subscribe(pubsub::GLOBAL_TOPIC.to_string()), now());
        let page_ice: Vec<IceServer> = config
            .ice_servers
            .iter()
            .map(|u| IceServer { urls: vec![u.clone()], username: None, credential: None })
            .collect();
        let policy = if config.relay_only { IcePolicy::Relay } else { IcePolicy::All };
        let node = Node {
            inner: Rc::new(Inner {
                identity,
                ice_from_page: Cell::new(!page_ice.is_empty()),
                ice_status: RefCell::new(IceStatus::new(IceSource::Page, policy, &page_ice)),
                ice_servers: RefCell::new(page_ice),
                relay_only: config.relay_only,
                candidates: RefCell::new(BTreeMap::new()),
                manager: RefCell::new(manager),
                router: RefCell::new(router),
                conns: RefCell::new(BTreeMap::new()),
                deliver: RefCell::new(None),
                snapshot: RefCell::new(None),
                sinks: RefCell::new(vec![]),
                asks: RefCell::new(vec![]),
                listeners: RefCell::new(vec![]),
                timer: RefCell::new(None),
                next_tick: Cell::new(now() + heartbeat),
            }),
        };
        node.rearm();
        node
    }

    fn from_weak(w: &Weak<Inner>) -> Option<Node> {
        w.upgrade().map(|inner| Node { inner })
    }

    fn weak(&self) -> Weak<Inner> {
        Rc::downgrade(&self.inner)
    }

    // ----- the driver loop -------------------------------------------------

    /// Feeds the manager one input and carries out what it asks.
    fn feed(&self, input: Input) {
        self.inner.manager.borrow_mut().handle(input, now_ms());
        self.pump();
    }

    /// Runs `f` on the manager (an application send), then its outputs.
    fn with_manager<T>(&self, f: impl FnOnce(&mut PeerManager) -> T) -> T {
        let r = f(&mut self.inner.manager.borrow_mut());
        self.pump();
        r
    }

    fn pump(&self) {
        loop {
            let out = self.inner.manager.borrow_mut().poll_output();
            match out {
                Some(o) => self.execute(o),
                None => break,
            }
        }
        self.rearm();
    }

    /// Arms the one timer at the earliest of the manager's deadline and the
    /// router's heartbeat.
    fn rearm(&self) {
        let tick = self.inner.next_tick.get();
        let due = self.inner.manager.borrow().poll_timeout().map_or(tick, |t| t.min(tick));
        if self.inner.timer.borrow().as_ref().is_some_and(|(at, _)| *at == due) {
            return;
        }
        let w = self.weak();
        let delay = due.saturating_sub(now()).min(u32::MAX as u64) as u32;
        let handle = gloo_timers::callback::Timeout::new(delay, move || {
            if let Some(n) = Node::from_weak(&w) {
                n.on_timer();
            }
        });
        *self.inner.timer.borrow_mut() = Some((due, handle));
    }

    fn on_timer(&self) {
        *self.inner.timer.borrow_mut() = None;
        let t = now();
        if t >= self.inner.next_tick.get() {
            let heartbeat = self.inner.router.borrow().config().heartbeat_ms;
            self.inner.next_tick.set(t + heartbeat);
            self.pubsub(pubsub::Input::Tick);
        }
        self.inner.manager.borrow_mut().handle_timeout(now_ms());
        self.pump();
    }

    fn execute(&self, out: Output) {
        match out {
            Output::Create { peer, session } => {
                if let Err(e) = self.create_conn(peer, session) {
                    console_log!("cannot create a connection to {}: {e}", peer.short());
                    self.feed(Input::ConnectionState { peer, session, state: ConnState::Failed });
                }
            }
            Output::Close { peer, session } => {
                let removed = {
                    let mut conns = self.inner.conns.borrow_mut();
                    if conns.get(&peer).is_some_and(|c| c.session == session) { conns.remove(&peer) } else { None }
                };
                if let Some(c) = removed {
                    c.detach();
                }
                let mut cands = self.inner.candidates.borrow_mut();
                if cands.get(&peer).is_some_and(|(s, _)| *s == session) {
                    cands.remove(&peer);
                }
            }
            Output::SetLocalDescription { peer, session } => {
                let Some(pc) = self.pc_of(peer, session) else { return };
                let n = self.clone();
                spawn_local(async move {
                    let r = JsFuture::from(set_local_description_implicit(&pc)).await;
                    let input = match (r, pc.local_description()) {
                        (Ok(_), Some(desc)) => match desc.type_() {
                            RtcSdpType::Offer => {
                                Input::LocalDescription { peer, session, sdp_type: SdpType::Offer, sdp: desc.sdp() }
                            }
                            RtcSdpType::Answer => {
                                Input::LocalDescription { peer, session, sdp_type: SdpType::Answer, sdp: desc.sdp() }
                            }
                            _ => {
                                Input::LocalDescriptionFailed { peer, session, error: "not an offer or answer".into() }
                            }
                        },
                        (Ok(_), None) => {
                            Input::LocalDescriptionFailed { peer, session, error: "no description".into() }
                        }
                        (Err(e), _) => Input::LocalDescriptionFailed { peer, session, error: js_err(&e) },
                    };
                    n.feed(input);
                });
            }
            Output::SetRemoteDescription { peer, session, sdp_type, sdp } => {
                let Some(pc) = self.pc_of(peer, session) else { return };
                let init = RtcSessionDescriptionInit::new(match sdp_type {
                    SdpType::Offer => RtcSdpType::Offer,
                    SdpType::Answer => RtcSdpType::Answer,
                });
                init.set_sdp(&sdp);
                let n = self.clone();
                spawn_local(async move {
                    let result =
                        JsFuture::from(pc.set_remote_description(&init)).await.map(|_| ()).map_err(|e| js_err(&e));
                    n.feed(Input::RemoteDescriptionSet { peer, session, result });
                });
            }
            Output::AddCandidate { peer, session, candidate, quiet } => {
                let Some(pc) = self.pc_of(peer, session) else { return };
                let init = RtcIceCandidateInit::new(&candidate.candidate);
                init.set_sdp_mid(candidate.sdp_mid.as_deref());
                init.set_sdp_m_line_index(candidate.sdp_m_line_index);
                spawn_local(async move {
                    if let Err(e) =
                        JsFuture::from(pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init))).await
                        && !quiet
                    {
                        console_log!("candidate from {}: {}", peer.short(), js_err(&e));
                    }
                });
            }
            Output::Signal { via, to, signal } => {
                let sink = self.inner.sinks.borrow().get(via).cloned().flatten();
                if let Some(s) = sink {
                    s(to, signal);
                }
            }
            Output::AskDirectory { via } => {
                let ask = self.inner.asks.borrow().get(via).cloned().flatten();
                if let Some(ask) = ask {
                    ask();
                }
            }
            Output::Frame { peer, session, bytes } => {
                let failed = {
                    let mut conns = self.inner.conns.borrow_mut();
                    match conns.get_mut(&peer).filter(|c| c.session == session) {
                        Some(c) => {
                            c.outq.push_back(bytes);
                            drain(c)
                        }
                        None => None,
                    }
                };
                if let Some(error) = failed {
                    self.feed(Input::SendFailed { peer, session, error });
                }
            }
            Output::Event(e) => match e {
                Event::PeerUp(id) => self.pubsub(pubsub::Input::PeerConnected(id)),
                Event::PeerDown(id) => self.pubsub(pubsub::Input::PeerDisconnected(id)),
                Event::Pubsub { from, packet } => self.pubsub(pubsub::Input::Frame(from, packet)),
                Event::Snapshot { from, msg } => {
                    // Taken out while it runs (it sends through the node).
                    let hook = self.inner.snapshot.borrow_mut().take();
                    if let Some(mut h) = hook {
                        h(self, from, msg);
                        let mut slot = self.inner.snapshot.borrow_mut();
                        if slot.is_none() {
                            *slot = Some(h);
                        }
                    }
                }
                Event::Changed => self.notify(),
                Event::Log(line) => console_log!("{line}"),
            },
        }
    }

    fn pc_of(&self, id: NodeId, session: u32) -> Option<RtcPeerConnection> {
        self.inner.conns.borrow().get(&id).filter(|c| c.session == session).map(|c| c.pc.clone())
    }

    /// Creates the RTCPeerConnection and its pre-negotiated DataChannel
    /// (`negotiated: true, id: 0`: both sides create it identically, so there
    /// is no `ondatachannel` race), wiring every event to an [`Input`].
    fn create_conn(&self, id: NodeId, session: u32) -> Result<(), String> {
        let cfg = RtcConfiguration::new();
        let servers = js_sys::Array::new();
        for server in self.inner.ice_servers.borrow().iter() {
            let s = RtcIceServer::new();
            let urls = js_sys::Array::new();
            for u in &server.urls {
                urls.push(&JsValue::from_str(u));
            }
            s.set_urls(&urls);
            if let Some(user) = &server.username {
                s.set_username(user);
            }
            if let Some(cred) = &server.credential {
                s.set_credential(cred);
            }
            servers.push(&s);
        }
        cfg.set_ice_servers(&servers);
        if self.inner.relay_only {
            cfg.set_ice_transport_policy(RtcIceTransportPolicy::Relay);
        }
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
        // Each handler feeds one input (built from the event) to the manager.
        let mut on = |f: Box<dyn Fn(JsValue) -> Option<Input>>| {
            let w1 = w.clone();
            let c = Closure::wrap(Box::new(move |ev: JsValue| {
                if let (Some(n), Some(input)) = (Node::from_weak(&w1), f(ev)) {
                    n.feed(input);
                }
            }) as Box<dyn FnMut(JsValue)>);
            let f: js_sys::Function = c.as_ref().unchecked_ref::<js_sys::Function>().clone();
            closures.push(c);
            f
        };

        pc.set_onnegotiationneeded(Some(&on(Box::new(move |_| Some(Input::NegotiationNeeded { peer: id, session })))));
        pc.set_onicecandidate(Some(&on(Box::new(move |ev| {
            let c = ev.dyn_into::<RtcPeerConnectionIceEvent>().ok()?.candidate()?;
            let candidate =
                Candidate { candidate: c.candidate(), sdp_mid: c.sdp_mid(), sdp_m_line_index: c.sdp_m_line_index() };
            Some(Input::IceCandidate { peer: id, session, candidate })
        }))));
        // Not a `set_on…` in web-sys: set as a property, cleared in `detach`.
        let w2 = w.clone();
        let on_ice_error = on(Box::new(move |ev| {
            let e = ev.dyn_into::<RtcPeerConnectionIceErrorEvent>().ok()?;
            if let Some(n) = Node::from_weak(&w2) {
                n.inner.ice_status.borrow_mut().record_error(&e.url(), e.error_code(), &e.error_text());
                n.notify();
            }
            None
        }));
        let _ = js_sys::Reflect::set(&pc, &JsValue::from_str("onicecandidateerror"), &on_ice_error);
        let pc1 = pc.clone();
        let w2 = w.clone();
        pc.set_onconnectionstatechange(Some(&on(Box::new(move |_| {
            if pc1.connection_state() == RtcPeerConnectionState::Connected
                && let Some(n) = Node::from_weak(&w2)
            {
                n.read_candidate_types(id, session, pc1.clone());
            }
            let state = match pc1.connection_state() {
                RtcPeerConnectionState::New => ConnState::New,
                RtcPeerConnectionState::Connecting => ConnState::Connecting,
                RtcPeerConnectionState::Connected => ConnState::Connected,
                RtcPeerConnectionState::Disconnected => ConnState::Disconnected,
                RtcPeerConnectionState::Failed => ConnState::Failed,
                _ => ConnState::Closed,
            };
            Some(Input::ConnectionState { peer: id, session, state })
        }))));
        let pc1 = pc.clone();
        pc.set_onsignalingstatechange(Some(&on(Box::new(move |_| {
            Some(Input::SignalingStable {
                peer: id,
                session,
                stable: pc1.signaling_state() == RtcSignalingState::Stable,
            })
        }))));
        let pc1 = pc.clone();
        dc.set_onopen(Some(&on(Box::new(move |_| {
            Some(Input::ChannelOpen {
                peer: id,
                session,
                local_sdp: pc1.local_description().map(|d| d.sdp()),
                remote_sdp: pc1.remote_description().map(|d| d.sdp()),
            })
        }))));
        dc.set_onmessage(Some(&on(Box::new(move |ev| {
            let data = ev.dyn_into::<MessageEvent>().ok()?.data();
            let bytes = match data.dyn_into::<js_sys::ArrayBuffer>() {
                Ok(buf) => js_sys::Uint8Array::new(&buf).to_vec(),
                Err(other) => other.as_string()?.into_bytes(),
            };
            Some(Input::Frame { peer: id, session, bytes })
        }))));
        dc.set_onclose(Some(&on(Box::new(move |_| Some(Input::ChannelClosed { peer: id, session })))));
        let w1 = w.clone();
        let c = Closure::wrap(Box::new(move |_: JsValue| {
            if let Some(n) = Node::from_weak(&w1) {
                n.flush(id, session);
            }
        }) as Box<dyn FnMut(JsValue)>);
        dc.set_onbufferedamountlow(Some(c.as_ref().unchecked_ref()));
        closures.push(c);

        let old = self
            .inner
            .conns
            .borrow_mut()
            .insert(id, Conn { session, pc, dc, outq: VecDeque::new(), _closures: closures });
        if let Some(old) = old {
            old.detach();
        }
        Ok(())
    }

    /// Reads which candidate pair the connection uses (`getStats()`: the
    /// transport's selected pair, else the nominated succeeded one), for
    /// the Network view: host, srflx (through a NAT) or relay (TURN).
    fn read_candidate_types(&self, id: NodeId, session: u32, pc: RtcPeerConnection) {
        let w = self.weak();
        spawn_local(async move {
            let Ok(report) = JsFuture::from(pc.get_stats()).await else { return };
            let pair = selected_candidate_types(&report);
            if let Some(n) = Node::from_weak(&w) {
                if n.pc_of(id, session).is_none() {
                    return;
                }
                n.inner.candidates.borrow_mut().insert(id, (session, pair));
                n.notify();
            }
        });
    }

    fn flush(&self, id: NodeId, session: u32) {
        let failed = {
            let mut conns = self.inner.conns.borrow_mut();
            conns.get_mut(&id).filter(|c| c.session == session).and_then(drain)
        };
        if let Some(error) = failed {
            self.feed(Input::SendFailed { peer: id, session, error });
        }
    }

    // ----- SynapseSub ------------------------------------------------------

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

    /// Where snapshot requests and parts go.
    pub fn set_snapshot_hook(&self, hook: SnapshotHook) {
        *self.inner.snapshot.borrow_mut() = Some(hook);
    }

    /// Sends a snapshot request or part to a proven peer.
    pub fn send_snapshot(&self, id: NodeId, msg: &crate::wire::WireMsg) -> bool {
        self.with_manager(|m| m.send_snapshot(id, msg))
    }

    /// Rule `final_floor`: `origin`'s seqs up to `seq` on `topic` are final.
    pub fn floor(&self, topic: &str, origin: NodeId, seq: u64, head: crate::pubsub::MsgId) {
        self.pubsub(pubsub::Input::Floor { topic: topic.to_string(), origin, seq, head });
    }

    /// Where SynapseSub deliveries go.
    pub fn set_deliver_hook(&self, hook: DeliverHook) {
        *self.inner.deliver.borrow_mut() = Some(hook);
    }

    /// Feeds the router and carries out what it asks.
    pub fn pubsub(&self, input: pubsub::Input) {
        let outs = self.inner.router.borrow_mut().handle(input, now());
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

    /// Sends a message whose origin must stay hidden through the stem phase
    /// (`pubsub::Input::Stem`, rule `stem_before_fluff`).
    pub fn stem(&self, topic: &str, origin: NodeId, seq: u64, payload: Vec<u8>) {
        self.pubsub(pubsub::Input::Stem { topic: topic.to_string(), origin, seq, payload });
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

    // ----- identity, signaling, listeners ----------------------------------

    pub fn id(&self) -> NodeId {
        self.inner.identity.node_id()
    }

    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// Routes outgoing signals (set by the rendezvous client): the sink of
    /// rendezvous server 0.
    pub fn set_signal_sink(&self, sink: SignalSink) {
        self.set_signal_sink_at(0, sink);
    }

    /// The sink of rendezvous server `rdv` (signals the manager routes
    /// through it).
    pub fn set_signal_sink_at(&self, rdv: usize, sink: SignalSink) {
        let mut sinks = self.inner.sinks.borrow_mut();
        if sinks.len() <= rdv {
            sinks.resize(rdv + 1, None);
        }
        sinks[rdv] = Some(sink);
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

    /// ICE servers (and TURN credentials) the rendezvous handed out; used by
    /// connections made from now on, unless the page set `?ice=`.
    pub fn set_rendezvous_ice(&self, servers: Vec<IceServer>) {
        if !self.inner.ice_from_page.get() {
            self.inner.ice_status.borrow_mut().set_servers(IceSource::Rendezvous, &servers);
            *self.inner.ice_servers.borrow_mut() = servers;
            self.notify();
        }
    }

    /// The page's own ICE servers (`setIceServers`, checked by the caller):
    /// they win over the rendezvous' from now on; an empty list gives the
    /// choice back to the rendezvous' next handout.
    pub fn set_page_ice(&self, servers: Vec<IceServer>) {
        self.inner.ice_from_page.set(!servers.is_empty());
        self.inner.ice_status.borrow_mut().set_servers(IceSource::Page, &servers);
        *self.inner.ice_servers.borrow_mut() = servers;
        self.notify();
    }

    /// `status().ice`: where the servers came from, the policy, the
    /// browser's ICE errors and the sentence they make.
    pub fn ice_status(&self) -> IceStatus {
        self.inner.ice_status.borrow().clone()
    }

    /// `(local, remote)` candidate types of the pair `id`'s connection
    /// uses, once known.
    pub fn candidate_types(&self, id: NodeId) -> CandidatePair {
        self.inner.candidates.borrow().get(&id).map_or((None, None), |(_, pair)| *pair)
    }

    /// The ICE servers new connections use (credentials included: they are
    /// this node's own, short-lived).
    pub fn ice_servers(&self) -> Vec<IceServer> {
        self.inner.ice_servers.borrow().clone()
    }

    /// A signal rendezvous server 0 delivered from `from`.
    pub fn handle_signal(&self, from: NodeId, payload: serde_json::Value) {
        self.handle_signal_at(0, from, payload);
    }

    /// A signal rendezvous server `rdv` delivered from `from`.
    pub fn handle_signal_at(&self, rdv: usize, from: NodeId, payload: serde_json::Value) {
        self.feed(Input::Signal { rdv, from, payload });
    }

    /// Server 0's live list (on welcome).
    pub fn set_directory(&self, ids: Vec<NodeId>) {
        self.set_directory_at(0, ids);
    }

    /// Server `rdv`'s live list (on welcome): a sample of its directory.
    pub fn set_directory_at(&self, rdv: usize, ids: Vec<NodeId>) {
        self.feed(Input::Directory { rdv, ids });
    }

    /// Rendezvous server `rdv` answered `list` with another sample.
    pub fn directory_sample_at(&self, rdv: usize, ids: Vec<NodeId>) {
        self.feed(Input::DirectorySample { rdv, ids });
    }

    /// How to ask rendezvous server `rdv` for a directory sample (set by
    /// the rendezvous client).
    pub fn set_directory_ask_at(&self, rdv: usize, ask: DirectoryAsk) {
        let mut asks = self.inner.asks.borrow_mut();
        if asks.len() <= rdv {
            asks.resize(rdv + 1, None);
        }
        asks[rdv] = Some(ask);
    }

    /// A node joined rendezvous server `rdv`.
    pub fn peer_joined_at(&self, rdv: usize, id: NodeId) {
        self.feed(Input::PeerJoined { rdv, id });
    }

    /// A node left rendezvous server `rdv`.
    pub fn peer_left_at(&self, rdv: usize, id: NodeId) {
        self.feed(Input::PeerLeft { rdv, id });
    }

    /// Updates the status of rendezvous server 0 shown to the user.
    pub fn set_rendezvous_status(&self, state: &str, url: &str, error: Option<String>) {
        self.set_rendezvous_status_at(0, state, url, error);
    }

    /// Updates the status of rendezvous server `rdv`.
    pub fn set_rendezvous_status_at(&self, rdv: usize, state: &str, url: &str, error: Option<String>) {
        self.feed(Input::Rendezvous { rdv, state: state.into(), url: url.into(), error });
    }

    /// Sends this node's signed neighbour list to every proven peer.
    pub fn announce_record(&self) {
        self.with_manager(|m| m.announce_record());
    }

    // ----- connections -----------------------------------------------------

    /// Opens a connection to `id` unless one exists.
    pub fn connect(&self, id: NodeId) {
        self.feed(Input::Connect(id));
    }

    /// Closes and forgets the connection to `id`; reconnects later if asked
    /// and the peer is still wanted.
    pub fn drop_peer(&self, id: NodeId, reason: &str, reconnect: bool) {
        self.with_manager(|m| m.drop_peer(id, reason, reconnect));
    }

    /// Closes every connection and stops reconnecting (page unload, tests).
    pub fn shutdown(&self) {
        self.feed(Input::Shutdown);
    }

    /// Closes the DataChannel to `id` as if the network broke it (tests and
    /// the UI use this to exercise reconnection).
    pub fn close_peer(&self, id: NodeId) -> bool {
        let dc = self.inner.conns.borrow().get(&id).map(|c| c.dc.clone());
        match dc {
            Some(dc) => {
                dc.close();
                true
            }
            None => false,
        }
    }

    // ----- application -----------------------------------------------------

    /// Sends `msg` to one proven peer. Returns false if it is not proven.
    pub fn send_to(&self, id: NodeId, msg: &WireMsg) -> bool {
        self.with_manager(|m| m.send_to(id, msg))
    }

    /// Sends an encoded SynapseSub packet to one proven peer.
    pub fn send_raw(&self, id: NodeId, packet: &[u8]) -> bool {
        self.with_manager(|m| m.send_raw(id, packet))
    }

    /// Signs `text` and sends it to every proven peer; returns how many.
    pub fn send_hello(&self, text: &str) -> Result<usize, String> {
        self.with_manager(|m| m.send_hello(text))
    }

    /// Sends a ping to every proven peer (RTT shows in [`PeerInfo`]).
    pub fn ping_all(&self) {
        self.with_manager(|m| m.ping_all(now_ms()));
    }

    // ----- reading ---------------------------------------------------------

    /// Applies the network's `net_target_degree` to the peer manager.
    pub fn set_target_degree(&self, n: usize) {
        self.with_manager(|m| m.set_target_degree(n));
    }

    /// Ids of peers whose channel is open and identity proven.
    pub fn peers(&self) -> Vec<NodeId> {
        self.inner.manager.borrow().peers()
    }

    /// Every connection, in any state.
    pub fn peer_infos(&self) -> Vec<PeerInfo> {
        let mut infos = self.inner.manager.borrow().peer_infos();
        for p in &mut infos {
            (p.candidate, p.remote_candidate) = self.candidate_types(p.id);
        }
        infos
    }

    pub fn hellos(&self) -> Vec<ReceivedHello> {
        self.inner.manager.borrow().hellos()
    }

    pub fn stats(&self) -> Stats {
        self.inner.manager.borrow().stats().clone()
    }

    /// The last peer refused for being on another network (`same_genesis`).
    pub fn last_genesis_mismatch(&self) -> Option<String> {
        self.inner.manager.borrow().last_genesis_mismatch().map(str::to_owned)
    }

    pub fn timings(&self) -> Timings {
        self.inner.manager.borrow().timings().clone()
    }

    pub fn rendezvous_status(&self) -> RendezvousStatus {
        self.inner.manager.borrow().rendezvous_status()
    }
}

/// `(local, remote)` candidate types of the selected pair in a stats
/// report. Every field is read defensively: the report is the browser's.
fn selected_candidate_types(report: &JsValue) -> CandidatePair {
    let get = |o: &JsValue, k: &str| js_sys::Reflect::get(o, &JsValue::from_str(k)).ok();
    let text = |o: &JsValue, k: &str| get(o, k).and_then(|v| v.as_string());
    let mut stats: BTreeMap<String, JsValue> = BTreeMap::new();
    let map: &js_sys::Map = report.unchecked_ref();
    map.for_each(&mut |value, key| {
        if let Some(k) = key.as_string()
            && stats.len() < 4096
        {
            stats.insert(k, value);
        }
    });
    let is = |v: &JsValue, t: &str| text(v, "type").as_deref() == Some(t);
    let selected = stats
        .values()
        .filter(|v| is(v, "transport"))
        .find_map(|t| text(t, "selectedCandidatePairId"))
        .and_then(|id| stats.get(&id).cloned())
        .or_else(|| {
            stats
                .values()
                .filter(|v| is(v, "candidate-pair"))
                .find(|p| {
                    get(p, "nominated").and_then(|v| v.as_bool()) == Some(true)
                        && text(p, "state").as_deref() == Some("succeeded")
                })
                .cloned()
        });
    let Some(pair) = selected else { return (None, None) };
    let kind = |k: &str| {
        text(&pair, k)
            .and_then(|id| stats.get(&id).cloned())
            .and_then(|c| text(&c, "candidateType"))
            .and_then(|t| candidate_type(&t))
    };
    (kind("localCandidateId"), kind("remoteCandidateId"))
}

/// Sends queued frames while the channel's buffer is below the high-water
/// mark. Returns the error if a send failed (the queue is then dropped).
fn drain(c: &mut Conn) -> Option<String> {
    if c.dc.ready_state() != RtcDataChannelState::Open {
        return None;
    }
    while let Some(f) = c.outq.front() {
        if c.dc.buffered_amount() > HIGH_WATER {
            break;
        }
        if let Err(e) = c.dc.send_with_u8_array(f) {
            c.outq.clear();
            return Some(js_err(&e));
        }
        c.outq.pop_front();
    }
    None
}
