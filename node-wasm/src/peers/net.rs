//! An in-memory network of [`PeerManager`]s on [`FakeBrowser`]s, driven
//! step by step in simulated time (quinn-proto's `tests/util.rs` pair,
//! grown to N nodes): a rendezvous that can go down or hand out only part of
//! its list, links with latency, jitter and loss (a lost SCTP packet is
//! retransmitted, so loss shows as delay and head-of-line blocking, never as
//! a missing frame), links that can be cut, and nodes that go offline and
//! come back.
//!
//! Above each manager sits an [`App`] (the peer manager's tests record
//! events; the whole-node simulator runs a router and a replica there).
//! Deterministic: one event queue ordered by `(time, seq)` and one seeded
//! generator; the managers' seeds come from the caller.

use super::fake::FakeBrowser;
use super::{Event, Input, NodeConfig, Output, PeerManager};
use crate::identity::{Identity, NodeId};
use crate::pubsub::rng::SplitMix64;
use std::collections::{BTreeMap, BTreeSet};

/// How long ICE tries before a connection over a cut link fails.
pub const ICE_FAIL_MS: u64 = 1_000;
/// Extra delay of a frame whose first transmission was lost (one SCTP
/// retransmission timeout).
pub const RETRANSMIT_MS: u64 = 200;

/// What runs above a node's peer manager.
pub trait App {
    /// An event the node's manager raised; the app may send through `peers`.
    fn on_event(&mut self, peers: &mut PeerManager, event: Event, now: u64);
    /// When the app's next timer is due.
    fn poll_timeout(&self) -> Option<u64> {
        None
    }
    /// The app's timer fired.
    fn on_timeout(&mut self, _peers: &mut PeerManager, _now: u64) {}
}

/// The app of the manager's own tests: remembers every event.
#[derive(Debug, Default)]
pub struct Recorder {
    pub events: Vec<Event>,
}

impl App for Recorder {
    fn on_event(&mut self, _: &mut PeerManager, event: Event, _: u64) {
        self.events.push(event);
    }
}

/// Something scheduled on the queue.
#[derive(Debug, Clone)]
enum Ev {
    /// An input for node `usize`.
    Input(usize, Input),
    /// A DataChannel frame from `from`'s connection `session` to node `to`.
    Frame { to: usize, from: NodeId, session: u32, bytes: Vec<u8> },
}

/// One simulated node: its manager, its browser and its app.
pub struct SimPeer<A> {
    pub manager: PeerManager,
    pub browser: FakeBrowser,
    pub app: A,
    /// Offline nodes receive nothing and run no timers.
    pub online: bool,
}

/// Link and rendezvous behaviour.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// One-way latency of every link and of the rendezvous.
    pub latency_ms: u64,
    /// Uniform extra delay per frame, `0..jitter_ms`.
    pub jitter_ms: u64,
    /// Probability that a frame's first transmission is lost.
    pub loss: f64,
    /// How many members the rendezvous lists to a joiner (all if `None`).
    pub welcome: Option<usize>,
    pub seed: u64,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig { latency_ms: 5, jitter_ms: 0, loss: 0.0, welcome: None, seed: 1 }
    }
}

/// The identity of simulated node `i` (seeded, so runs repeat).
pub fn sim_identity(i: usize) -> Identity {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
    Identity::from_seed(seed)
}

/// One simulated rendezvous server.
#[derive(Debug, Clone)]
struct SimRendezvous {
    /// Whether it relays signals.
    up: bool,
    /// Nodes logged in to it.
    members: BTreeSet<NodeId>,
}

/// The network.
pub struct Net<A = Recorder> {
    pub nodes: Vec<SimPeer<A>>,
    index: BTreeMap<NodeId, usize>,
    queue: BTreeMap<(u64, u64), Ev>,
    seq: u64,
    pub now: u64,
    pub config: NetConfig,
    peer_config: NodeConfig,
    rng: SplitMix64,
    /// The rendezvous servers (one unless a test adds more).
    rdvs: Vec<SimRendezvous>,
    /// Cut links: frames between these two nodes are lost.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// When the last frame on each directed link arrives (links are
    /// ordered: a frame never overtakes an earlier one).
    link_clock: BTreeMap<(usize, usize), u64>,
    /// Each online node's next timer, indexed both ways (so a step costs
    /// O(log n), not a scan of every node).
    wake: BTreeMap<usize, u64>,
    timers: BTreeSet<(u64, usize)>,
    /// Nodes whose connections changed since the last look for pairs to
    /// open.
    dirty: BTreeSet<usize>,
    /// Frames lost to cut links.
    pub frames_lost: u64,
    /// Frames delivered.
    pub frames: u64,
    /// Bytes delivered.
    pub bytes: u64,
}

impl Net<Recorder> {
    /// `n` nodes recording their events, with a fixed `latency_ms`.
    pub fn new(n: usize, config: NodeConfig, latency_ms: u64) -> Net<Recorder> {
        let net = NetConfig { latency_ms, ..Default::default() };
        Net::with_apps(config, net, (0..n).map(|_| Recorder::default()).collect())
    }
}

impl<A: App> Net<A> {
    /// One node per app, identities from [`sim_identity`].
    pub fn with_apps(peer_config: NodeConfig, config: NetConfig, apps: Vec<A>) -> Net<A> {
        let nodes: Vec<SimPeer<A>> = apps
            .into_iter()
            .enumerate()
            .map(|(i, app)| {
                let identity = sim_identity(i);
                let id = identity.node_id();
                SimPeer {
                    manager: Self::manager(identity, &peer_config, i, 0, config.seed),
                    browser: FakeBrowser::new(id),
                    app,
                    online: true,
                }
            })
            .collect();
        let index = nodes.iter().enumerate().map(|(i, n)| (n.manager.id(), i)).collect();
        Net {
            nodes,
            index,
            queue: BTreeMap::new(),
            seq: 0,
            now: 0,
            rng: SplitMix64::new(config.seed ^ 0x6e65_745f_7369_6d00),
            config,
            peer_config,
            rdvs: vec![SimRendezvous { up: true, members: BTreeSet::new() }],
            cut: BTreeSet::new(),
            link_clock: BTreeMap::new(),
            wake: BTreeMap::new(),
            timers: BTreeSet::new(),
            dirty: BTreeSet::new(),
            frames_lost: 0,
            frames: 0,
            bytes: 0,
        }
    }

    fn manager(identity: Identity, config: &NodeConfig, i: usize, now: u64, seed: u64) -> PeerManager {
        let mut rng_seed = [0u8; 32];
        rng_seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
        rng_seed[8..16].copy_from_slice(&now.to_le_bytes());
        rng_seed[16..24].copy_from_slice(&seed.to_le_bytes());
        PeerManager::new(identity, config.clone(), rng_seed, now as f64, 1_700_000_000_000.0)
    }

    pub fn id(&self, i: usize) -> NodeId {
        self.nodes[i].manager.id()
    }

    pub fn index_of(&self, id: &NodeId) -> Option<usize> {
        self.index.get(id).copied()
    }

    fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.insert((at, self.seq), ev);
    }

    /// Runs `f` on node `i`'s manager and app (an application action), then
    /// carries out what the manager was asked.
    pub fn with_node<T>(&mut self, i: usize, f: impl FnOnce(&mut PeerManager, &mut A) -> T) -> T {
        let SimPeer { manager, app, .. } = &mut self.nodes[i];
        let r = f(manager, app);
        self.drain(i);
        r
    }

    /// Feeds `input` to node `i` now.
    pub fn input(&mut self, i: usize, input: Input) {
        self.push(self.now, Ev::Input(i, input));
    }

    /// Node `i` registers with the rendezvous: it gets the welcome list (all
    /// members, or a random `welcome` of them), the others hear it joined.
    pub fn join(&mut self, i: usize) {
        self.join_at(i, 0);
    }

    /// Another rendezvous server, up; returns its index.
    pub fn add_rendezvous(&mut self) -> usize {
        self.rdvs.push(SimRendezvous { up: true, members: BTreeSet::new() });
        self.rdvs.len() - 1
    }

    fn rdv_url(r: usize) -> String {
        format!("ws://sim{r}/ws")
    }

    /// Like [`Net::join`], with rendezvous server `r` (which must be up).
    pub fn join_at(&mut self, i: usize, r: usize) {
        let id = self.id(i);
        let members = &self.rdvs[r].members;
        let mut list: Vec<NodeId> = members.iter().copied().collect();
        if let Some(k) = self.config.welcome {
            list = self.rng.choose(&list, k);
        }
        let others: Vec<usize> = members.iter().filter_map(|m| self.index.get(m).copied()).collect();
        self.rdvs[r].members.insert(id);
        let url = Self::rdv_url(r);
        self.input(i, Input::Rendezvous { rdv: r, state: "connected".into(), url, error: None });
        self.input(i, Input::Directory { rdv: r, ids: list });
        // With a partial welcome list, only the listed members hear of the
        // joiner (a directory of thousands is not broadcast).
        let hear: Vec<usize> = match self.config.welcome {
            Some(_) => vec![],
            None => others,
        };
        for o in hear {
            self.push(self.now + self.config.latency_ms, Ev::Input(o, Input::PeerJoined { rdv: r, id }));
        }
    }

    /// Node `i` registers but is welcomed with `list` only and nobody hears
    /// of it (for tests of dialling that does not come from the directory).
    pub fn join_quietly(&mut self, i: usize, list: Vec<NodeId>) {
        let id = self.id(i);
        self.rdvs[0].members.insert(id);
        let url = Self::rdv_url(0);
        self.input(i, Input::Rendezvous { rdv: 0, state: "connected".into(), url, error: None });
        self.input(i, Input::Directory { rdv: 0, ids: list });
    }

    /// Every rendezvous dies: every node sees them disconnected.
    pub fn rendezvous_down(&mut self) {
        for r in 0..self.rdvs.len() {
            self.rendezvous_down_at(r);
        }
    }

    /// Rendezvous server `r` dies: its members see it disconnected.
    pub fn rendezvous_down_at(&mut self, r: usize) {
        self.rdvs[r].up = false;
        let members = std::mem::take(&mut self.rdvs[r].members);
        for i in members.iter().filter_map(|m| self.index.get(m).copied()).collect::<Vec<_>>() {
            let (url, error) = (Self::rdv_url(r), Some("down".to_string()));
            self.input(i, Input::Rendezvous { rdv: r, state: "disconnected".into(), url, error });
        }
    }

    /// Whether rendezvous server `r` is up.
    pub fn rendezvous_is_up(&self, r: usize) -> bool {
        self.rdvs[r].up
    }

    /// Breaks every open connection between `x` and the node `peer`.
    fn break_links(&mut self, x: usize, peer: NodeId) {
        let sessions: Vec<u32> =
            self.nodes[x].browser.conns.keys().filter(|(p, _)| *p == peer).map(|(_, s)| *s).collect();
        for s in sessions {
            for inp in self.nodes[x].browser.break_link(peer, s) {
                self.input(x, inp);
            }
        }
    }

    /// Cuts the link between `a` and `b` and breaks their open connections.
    pub fn cut(&mut self, a: usize, b: usize) {
        let (ia, ib) = (self.id(a), self.id(b));
        self.cut.insert((ia, ib));
        self.cut.insert((ib, ia));
        self.break_links(a, ib);
        self.break_links(b, ia);
    }

    /// Heals a cut link (new connections may form).
    pub fn heal(&mut self, a: usize, b: usize) {
        let (ia, ib) = (self.id(a), self.id(b));
        self.cut.remove(&(ia, ib));
        self.cut.remove(&(ib, ia));
    }

    /// Node `i` goes away (tab closed, machine asleep): its connections
    /// break on the other side, the rendezvous forgets it.
    pub fn go_offline(&mut self, i: usize) {
        let id = self.id(i);
        self.nodes[i].online = false;
        let mut left: Vec<(usize, NodeId)> = vec![];
        for (r, rdv) in self.rdvs.iter_mut().enumerate() {
            if rdv.members.remove(&id) {
                left.extend(rdv.members.iter().map(|m| (r, *m)));
            }
        }
        let peers: Vec<NodeId> = self.nodes[i].browser.conns.keys().map(|(p, _)| *p).collect();
        for p in peers {
            if let Some(j) = self.index_of(&p) {
                self.break_links(j, id);
            }
        }
        self.nodes[i].browser = FakeBrowser::new(id);
        self.refresh(i);
        for (r, m) in left {
            if let Some(j) = self.index_of(&m) {
                self.push(self.now + self.config.latency_ms, Ev::Input(j, Input::PeerLeft { rdv: r, id }));
            }
        }
    }

    /// Node `i` stops answering anything but stays logged in to every
    /// rendezvous it joined: a Sybil that is listed but never completes a
    /// connection.
    pub fn go_silent(&mut self, i: usize) {
        self.nodes[i].online = false;
        self.refresh(i);
    }

    /// Node `i` comes back (a reload): a fresh peer manager with the same
    /// identity joins the rendezvous. The app keeps what it had stored.
    pub fn come_online(&mut self, i: usize) {
        let identity = sim_identity(i);
        self.nodes[i].manager = Self::manager(identity, &self.peer_config, i, self.now, self.config.seed);
        self.nodes[i].online = true;
        self.refresh(i);
        self.join(i);
    }

    /// Re-reads node `i`'s next timer into the index.
    fn refresh(&mut self, i: usize) {
        if let Some(t) = self.wake.remove(&i) {
            self.timers.remove(&(t, i));
        }
        let n = &self.nodes[i];
        if !n.online {
            return;
        }
        if let Some(t) = [n.manager.poll_timeout(), n.app.poll_timeout()].into_iter().flatten().min() {
            self.wake.insert(i, t);
            self.timers.insert((t, i));
        }
    }

    /// Runs until `until` (simulated ms) or until nothing is left to do.
    pub fn run_until(&mut self, until: u64) {
        loop {
            let ev = self.queue.keys().next().copied();
            let timer = self.timers.first().copied();
            let next = match (ev, timer) {
                (Some((te, _)), Some((tt, _))) => te.min(tt),
                (Some((te, _)), None) => te,
                (None, Some((tt, _))) => tt,
                (None, None) => break,
            };
            if next > until {
                break;
            }
            self.now = self.now.max(next);
            match (ev, timer) {
                (Some(key), t) if t.is_none_or(|(tt, _)| key.0 <= tt) => {
                    if let Some(e) = self.queue.remove(&key) {
                        self.deliver(e);
                    }
                }
                (_, Some((_, i))) => {
                    let now = self.now;
                    if self.nodes[i].manager.poll_timeout().is_some_and(|t| t <= now) {
                        self.nodes[i].manager.handle_timeout(now as f64);
                    }
                    if self.nodes[i].app.poll_timeout().is_some_and(|t| t <= now) {
                        let SimPeer { manager, app, .. } = &mut self.nodes[i];
                        app.on_timeout(manager, now);
                    }
                    self.drain(i);
                }
                _ => break,
            }
            self.open_negotiated();
        }
        self.now = self.now.max(until);
    }

    fn deliver(&mut self, ev: Ev) {
        match ev {
            Ev::Input(i, input) => {
                if !self.nodes[i].online {
                    return;
                }
                self.nodes[i].manager.handle(input, self.now as f64);
                self.drain(i);
            }
            Ev::Frame { to, from, session, bytes } => {
                if !self.nodes[to].online {
                    return;
                }
                // The receiving end of the link: our connection whose remote
                // description came from `from`'s connection `session`.
                let node = &self.nodes[to];
                let mine = node.browser.conns.iter().find_map(|((p, s), c)| {
                    (*p == from && c.open && node.browser.remote_session(*p, *s) == Some(session)).then_some(*s)
                });
                if let Some(s) = mine {
                    self.frames += 1;
                    self.bytes += bytes.len() as u64;
                    self.nodes[to].manager.handle(Input::Frame { peer: from, session: s, bytes }, self.now as f64);
                    self.drain(to);
                }
            }
        }
    }

    /// When a frame sent now from `a` to `b` arrives.
    fn arrival(&mut self, a: usize, b: usize) -> u64 {
        let mut at = self.now + self.config.latency_ms;
        if self.config.jitter_ms > 0 {
            at += self.rng.below(self.config.jitter_ms);
        }
        if self.config.loss > 0.0 && self.rng.chance(self.config.loss) {
            at += RETRANSMIT_MS;
        }
        let clock = self.link_clock.entry((a, b)).or_insert(0);
        at = at.max(*clock);
        *clock = at;
        at
    }

    /// Carries out everything node `i`'s manager asked for.
    fn drain(&mut self, i: usize) {
        self.drain_outputs(i);
        self.refresh(i);
    }

    fn drain_outputs(&mut self, i: usize) {
        while let Some(out) = self.nodes[i].manager.poll_output() {
            if matches!(out, Output::SetLocalDescription { .. } | Output::SetRemoteDescription { .. }) {
                self.dirty.insert(i);
            }
            let me = self.id(i);
            match out {
                Output::Signal { via, to, signal } => {
                    // A server relays only between two of its members.
                    if self.rdvs.get(via).is_some_and(|r| r.up && r.members.contains(&to) && r.members.contains(&me))
                        && let (Some(&j), Ok(payload)) = (self.index.get(&to), serde_json::to_value(&signal))
                    {
                        let input = Input::Signal { rdv: via, from: me, payload };
                        self.push(self.now + self.config.latency_ms, Ev::Input(j, input));
                    }
                }
                Output::AskDirectory { via } => {
                    // The server answers `list` with a random sample (the
                    // welcome's size) of its members.
                    if let Some(r) = self.rdvs.get(via).filter(|r| r.up && r.members.contains(&me)) {
                        let mut list: Vec<NodeId> = r.members.iter().filter(|m| **m != me).copied().collect();
                        if let Some(k) = self.config.welcome {
                            list = self.rng.choose(&list, k);
                        }
                        let input = Input::DirectorySample { rdv: via, ids: list };
                        self.push(self.now + 2 * self.config.latency_ms, Ev::Input(i, input));
                    }
                }
                Output::Event(e) => {
                    let now = self.now;
                    let SimPeer { manager, app, .. } = &mut self.nodes[i];
                    app.on_event(manager, e, now);
                }
                out => {
                    let fx = self.nodes[i].browser.run(&out);
                    for inp in fx.inputs {
                        self.nodes[i].manager.handle(inp, self.now as f64);
                    }
                    for (peer, session, bytes) in fx.frames {
                        if self.cut.contains(&(me, peer)) {
                            self.frames_lost += 1;
                            continue;
                        }
                        if let Some(&j) = self.index.get(&peer) {
                            let at = self.arrival(i, j);
                            self.push(at, Ev::Frame { to: j, from: me, session, bytes });
                        }
                    }
                }
            }
        }
    }

    /// Opens every pair of connections that negotiated with each other (as
    /// ICE and DTLS would, one latency later); over a cut link both ends
    /// fail after [`ICE_FAIL_MS`].
    fn open_negotiated(&mut self) {
        let mut pairs = vec![];
        for a in std::mem::take(&mut self.dirty) {
            let node = &self.nodes[a];
            if !node.online {
                continue;
            }
            for &(peer, sa) in node.browser.conns.keys() {
                if node.browser.negotiated(peer, sa).is_none() {
                    continue;
                }
                let Some(&b) = self.index.get(&peer) else { continue };
                if !self.nodes[b].online
                    || pairs.iter().any(|p: &(usize, NodeId, u32, usize, NodeId, u32)| p.3 == a && p.0 == b)
                {
                    continue;
                }
                let Some(sb) = node.browser.remote_session(peer, sa) else { continue };
                let me = node.manager.id();
                let other = &self.nodes[b].browser;
                if other.negotiated(me, sb).is_some() && other.remote_session(me, sb) == Some(sa) {
                    pairs.push((a, peer, sa, b, me, sb));
                }
            }
        }
        for (a, peer_b, sa, b, peer_a, sb) in pairs {
            if self.cut.contains(&(peer_a, peer_b)) {
                for (x, p, s) in [(a, peer_b, sa), (b, peer_a, sb)] {
                    if let Some(c) = self.nodes[x].browser.conns.get_mut(&(p, s)) {
                        c.closed = true;
                    }
                    let failed = Input::ConnectionState { peer: p, session: s, state: super::ConnState::Failed };
                    self.push(self.now + ICE_FAIL_MS, Ev::Input(x, failed));
                }
                continue;
            }
            let at = self.now + self.config.latency_ms;
            for inp in self.nodes[a].browser.open(peer_b, sa) {
                self.push(at, Ev::Input(a, inp));
            }
            for inp in self.nodes[b].browser.open(peer_a, sb) {
                self.push(at, Ev::Input(b, inp));
            }
        }
    }

    /// Proven peers of node `i`.
    pub fn proven(&self, i: usize) -> Vec<NodeId> {
        self.nodes[i].manager.peers()
    }

    /// Whether every node has proven every other.
    pub fn full_mesh(&self) -> bool {
        let n = self.nodes.len();
        (0..n).all(|i| self.proven(i).len() == n - 1)
    }
}
