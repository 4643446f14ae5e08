//! The handles every view shares: the node, its ledger, per-domain change
//! triggers and a clock.
//!
//! `Node` and `Ledger` are `Rc`-based and live in local (non-`Send`) storage;
//! views only hold `Copy` arena handles to them, which is what Leptos needs
//! for reactive closures. Views never copy the whole state: they read it
//! through [`Ctx::read`] inside memos that re-run only when the domain they
//! name changed (the same per-domain change sets as `synapse.on(domain)`),
//! and act through [`Ctx::run`], which runs a `node_wasm::service` command —
//! the one the JS API runs — and signs its op.

use leptos::prelude::*;
use node_wasm::core::op::OpId;
use node_wasm::core::state::State;
use node_wasm::identity::NodeId;
use node_wasm::runtime::Node;
use node_wasm::runtime::events::ChangeFeed;
use node_wasm::runtime::ledger::Ledger;
use node_wasm::service::{Domain, Intent, Signer};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

/// Change notifications are folded into one round of triggers per this
/// interval (about a frame), so a burst of ops (or 10,000 tasks arriving)
/// re-runs each memo once per frame, not once per op. It is also the floor
/// of the UI's update latency (docs/BENCHMARKS.md, "UI"): 60 ms measured
/// 63 ms op-to-DOM.
const COALESCE_MS: u64 = 16;

/// Shared application handles (all `Copy`).
#[derive(Clone, Copy)]
pub struct Ctx {
    pub node: StoredValue<Node, LocalStorage>,
    pub ledger: StoredValue<Ledger, LocalStorage>,
    /// One trigger per [`Domain`], notified (coalesced) when it changed.
    domains: [Trigger; Domain::ALL.len()],
    /// Notified (coalesced) after any change: only for what really changes
    /// with everything (traffic counters, the state hash, op totals).
    any: Trigger,
    /// Wall-clock ms, updated every second (countdowns, live tallies).
    pub now: RwSignal<u64>,
    pub me: NodeId,
}

impl Ctx {
    /// Wires the node's change notifications and the 1 s clock.
    pub fn new(node: Node, ledger: Ledger) -> Ctx {
        let domains: [Trigger; Domain::ALL.len()] = std::array::from_fn(|_| Trigger::new());
        let any = Trigger::new();
        let now = RwSignal::new(js_sys::Date::now() as u64);
        let scheduled = Rc::new(Cell::new(false));
        let feed = Rc::new(RefCell::new(ChangeFeed::new(&ledger)));
        node.subscribe(Rc::new(move || {
            if scheduled.replace(true) {
                return;
            }
            let (s, feed) = (scheduled.clone(), feed.clone());
            set_timeout(
                move || {
                    s.set(false);
                    for d in feed.borrow_mut().changed().iter() {
                        domains[d as usize].notify();
                    }
                    any.notify();
                },
                Duration::from_millis(COALESCE_MS),
            );
        }));
        set_interval(move || now.set(js_sys::Date::now() as u64), Duration::from_secs(1));
        let me = node.id();
        Ctx { node: StoredValue::new_local(node), ledger: StoredValue::new_local(ledger), domains, any, now, me }
    }

    /// Re-runs the current memo or effect when `domain` changes.
    pub fn track(&self, domain: Domain) {
        self.domains[domain as usize].track();
    }

    /// Re-runs the current memo or effect after any change.
    pub fn track_any(&self) {
        self.any.track();
    }

    /// Runs `f` on the replicated state, tracking `domain`.
    pub fn read<T>(&self, domain: Domain, f: impl FnOnce(&State) -> T) -> T {
        self.track(domain);
        self.peek_state(f)
    }

    /// Runs `f` on the state, tracking each of `domains`.
    pub fn read_all<T>(&self, domains: &[Domain], f: impl FnOnce(&State) -> T) -> T {
        domains.iter().for_each(|d| self.track(*d));
        self.peek_state(f)
    }

    /// Runs `f` on the state without tracking (inside event handlers).
    pub fn peek_state<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        self.ledger.with_value(|l| l.with_state(f))
    }

    /// Reads the node, tracking the network domain.
    pub fn with_node<T>(&self, f: impl FnOnce(&Node) -> T) -> T {
        self.track(Domain::Network);
        self.node.with_value(f)
    }

    /// Runs a service command on the current state and signs its op. The
    /// error is the service's or the core's sentence saying what to change.
    pub fn run(&self, command: impl FnOnce(&State) -> node_wasm::service::Result<Intent>) -> Result<OpId, String> {
        self.ledger.with_value(|l| l.run(command))
    }

    /// An anonymous vote (sent into the stem phase; folded when it comes
    /// back by gossip).
    pub fn vote_anonymously(&self, proposal: OpId, yes: bool) -> Result<OpId, String> {
        self.ledger.with_value(|l| l.vote_anonymously(proposal, yes))
    }

    /// [`Ctx::run`] for commands that also need this node's identity (a
    /// linked vote uses its voting key).
    pub fn run_as_me(
        &self,
        command: impl FnOnce(&State, &node_wasm::identity::Identity) -> node_wasm::service::Result<Intent>,
    ) -> Result<OpId, String> {
        self.ledger.with_value(|l| {
            let node = l.node().clone();
            l.run(|st| command(st, node.identity()))
        })
    }
}

/// The shared context (provided by the app shell once the node runs).
pub fn ctx() -> Ctx {
    expect_context::<Ctx>()
}
