//! An in-memory network of [`PeerManager`]s on [`FakeBrowser`]s, driven
//! step by step in simulated time (quinn-proto's `tests/util.rs` pair,
//! grown to N nodes): a rendezvous that can go down, links with a fixed
//! latency that can be cut, and every output carried out in order.
//!
//! Deterministic: one event queue ordered by `(time, seq)`, no clock, no
//! RNG of its own (the managers' seeds come from the caller). The
//! whole-node simulator builds on it; the manager's unit tests use it to
//! check each rule end to end.

use super::fake::FakeBrowser;
use super::{Event, Input, NodeConfig, Output, PeerManager};
use crate::identity::{Identity, NodeId};
use std::collections::{BTreeMap, BTreeSet};

/// How long ICE tries before a connection over a cut link fails.
pub const ICE_FAIL_MS: u64 = 1_000;

/// Something scheduled on the queue.
#[derive(Debug, Clone)]
enum Ev {
    /// An input for node `usize`.
    Input(usize, Input),
    /// A DataChannel frame from `from`'s connection `session` to node `to`.
    Frame { to: usize, from: NodeId, session: u32, bytes: Vec<u8> },
}

/// One simulated node: its manager and its browser.
pub struct SimPeer {
    pub manager: PeerManager,
    pub browser: FakeBrowser,
    /// Events the manager raised, in order (drained by the caller).
    pub events: Vec<Event>,
}

/// The network.
pub struct Net {
    pub nodes: Vec<SimPeer>,
    index: BTreeMap<NodeId, usize>,
    queue: BTreeMap<(u64, u64), Ev>,
    seq: u64,
    pub now: u64,
    /// One-way latency of every link and of the rendezvous.
    pub latency_ms: u64,
    /// Whether the rendezvous relays signals.
    pub rendezvous_up: bool,
    /// Nodes registered with the rendezvous.
    members: BTreeSet<NodeId>,
    /// Cut links: frames between these two nodes are lost.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Frames lost to cut links.
    pub frames_lost: u64,
}

impl Net {
    /// `n` nodes with identities from seeds `1..=n` and `config`.
    pub fn new(n: usize, config: NodeConfig, latency_ms: u64) -> Net {
        let nodes: Vec<SimPeer> = (0..n)
            .map(|i| {
                let mut seed = [0u8; 32];
                seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
                let identity = Identity::from_seed(seed);
                let id = identity.node_id();
                let mut rng_seed = seed;
                rng_seed[31] = 0xa5;
                SimPeer {
                    manager: PeerManager::new(identity, config.clone(), rng_seed, 0.0, 1_700_000_000_000.0),
                    browser: FakeBrowser::new(id),
                    events: vec![],
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
            latency_ms,
            rendezvous_up: true,
            members: BTreeSet::new(),
            cut: BTreeSet::new(),
            frames_lost: 0,
        }
    }

    pub fn id(&self, i: usize) -> NodeId {
        self.nodes[i].manager.id()
    }

    fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.insert((at, self.seq), ev);
    }

    /// Feeds `input` to node `i` now.
    pub fn input(&mut self, i: usize, input: Input) {
        self.push(self.now, Ev::Input(i, input));
    }

    /// Node `i` registers with the rendezvous: it gets the welcome list,
    /// the others hear that it joined.
    pub fn join(&mut self, i: usize) {
        let id = self.id(i);
        let list: Vec<NodeId> = self.members.iter().copied().collect();
        let others: Vec<usize> = list.iter().filter_map(|m| self.index.get(m).copied()).collect();
        self.members.insert(id);
        let url = "ws://sim/ws".to_string();
        self.input(i, Input::Rendezvous { state: "connected".into(), url, error: None });
        self.input(i, Input::Directory(list));
        for o in others {
            self.push(self.now + self.latency_ms, Ev::Input(o, Input::PeerJoined(id)));
        }
    }

    /// Node `i` registers but is welcomed with `list` only and nobody hears
    /// of it (for tests of dialling that does not come from the directory).
    pub fn join_quietly(&mut self, i: usize, list: Vec<NodeId>) {
        self.members.insert(self.id(i));
        let url = "ws://sim/ws".to_string();
        self.input(i, Input::Rendezvous { state: "connected".into(), url, error: None });
        self.input(i, Input::Directory(list));
    }

    /// The rendezvous dies: every node sees it disconnected.
    pub fn rendezvous_down(&mut self) {
        self.rendezvous_up = false;
        self.members.clear();
        for i in 0..self.nodes.len() {
            let url = "ws://sim/ws".to_string();
            self.input(i, Input::Rendezvous { state: "disconnected".into(), url, error: Some("down".into()) });
        }
    }

    /// Cuts the link between `a` and `b` and breaks their open connections.
    pub fn cut(&mut self, a: usize, b: usize) {
        let (ia, ib) = (self.id(a), self.id(b));
        self.cut.insert((ia, ib));
        self.cut.insert((ib, ia));
        for (x, y) in [(a, b), (b, a)] {
            let peer = self.id(y);
            let sessions: Vec<u32> =
                self.nodes[x].browser.conns.keys().filter(|(p, _)| *p == peer).map(|(_, s)| *s).collect();
            for s in sessions {
                for inp in self.nodes[x].browser.break_link(peer, s) {
                    self.input(x, inp);
                }
            }
        }
    }

    /// Heals a cut link (new connections may form).
    pub fn heal(&mut self, a: usize, b: usize) {
        let (ia, ib) = (self.id(a), self.id(b));
        self.cut.remove(&(ia, ib));
        self.cut.remove(&(ib, ia));
    }

    /// Runs until `until` (simulated ms) or until nothing is left to do.
    pub fn run_until(&mut self, until: u64) {
        loop {
            let next_ev = self.queue.keys().next().map(|(t, _)| *t);
            let next_timer = self.nodes.iter().filter_map(|n| n.manager.poll_timeout()).min();
            let next = match (next_ev, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => break,
            };
            if next > until {
                break;
            }
            self.now = self.now.max(next);
            if next_ev == Some(next) {
                let Some((&key, _)) = self.queue.iter().next() else { break };
                let Some(ev) = self.queue.remove(&key) else { break };
                self.deliver(ev);
            } else {
                let now = self.now;
                for i in 0..self.nodes.len() {
                    if self.nodes[i].manager.poll_timeout().is_some_and(|t| t <= now) {
                        self.nodes[i].manager.handle_timeout(now as f64);
                        self.drain(i);
                    }
                }
            }
            self.open_negotiated();
        }
        self.now = self.now.max(until);
    }

    fn deliver(&mut self, ev: Ev) {
        match ev {
            Ev::Input(i, input) => {
                self.nodes[i].manager.handle(input, self.now as f64);
                self.drain(i);
            }
            Ev::Frame { to, from, session, bytes } => {
                // The receiving end of the link: our connection whose remote
                // description came from `from`'s connection `session`.
                let node = &self.nodes[to];
                let mine = node.browser.conns.iter().find_map(|((p, s), c)| {
                    (*p == from && c.open && node.browser.remote_session(*p, *s) == Some(session)).then_some(*s)
                });
                if let Some(s) = mine {
                    self.nodes[to].manager.handle(Input::Frame { peer: from, session: s, bytes }, self.now as f64);
                    self.drain(to);
                }
            }
        }
    }

    /// Carries out everything node `i`'s manager asked for.
    fn drain(&mut self, i: usize) {
        while let Some(out) = self.nodes[i].manager.poll_output() {
            let me = self.id(i);
            match &out {
                Output::Signal { to, signal } => {
                    if self.rendezvous_up
                        && self.members.contains(to)
                        && let (Some(&j), Ok(payload)) = (self.index.get(to), serde_json::to_value(signal))
                    {
                        self.push(self.now + self.latency_ms, Ev::Input(j, Input::Signal { from: me, payload }));
                    }
                }
                Output::Event(e) => self.nodes[i].events.push(e.clone()),
                _ => {}
            }
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
                    self.push(self.now + self.latency_ms, Ev::Frame { to: j, from: me, session, bytes });
                }
            }
        }
    }

    /// Opens every pair of connections that negotiated with each other (as
    /// ICE and DTLS would, one latency later).
    fn open_negotiated(&mut self) {
        let mut pairs = vec![];
        for (a, node) in self.nodes.iter().enumerate() {
            for &(peer, sa) in node.browser.conns.keys() {
                if node.browser.negotiated(peer, sa).is_none() {
                    continue;
                }
                let Some(&b) = self.index.get(&peer) else { continue };
                if b < a {
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
                // ICE finds no path: both ends fail after a while.
                for (x, p, s) in [(a, peer_b, sa), (b, peer_a, sb)] {
                    if let Some(c) = self.nodes[x].browser.conns.get_mut(&(p, s)) {
                        c.closed = true;
                    }
                    let failed = Input::ConnectionState { peer: p, session: s, state: super::ConnState::Failed };
                    self.push(self.now + ICE_FAIL_MS, Ev::Input(x, failed));
                }
                continue;
            }
            for inp in self.nodes[a].browser.open(peer_b, sa) {
                self.push(self.now + self.latency_ms, Ev::Input(a, inp));
            }
            for inp in self.nodes[b].browser.open(peer_a, sb) {
                self.push(self.now + self.latency_ms, Ev::Input(b, inp));
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
