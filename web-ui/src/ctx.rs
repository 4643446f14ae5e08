//! The handles every view shares: the node, its ledger, and two clocks.
//!
//! `Node` and `Ledger` are `Rc`-based and live in local (non-`Send`) storage;
//! views only hold `Copy` arena handles to them, which is what Leptos needs
//! for reactive closures. Views never copy the whole state: they read it
//! through [`Ctx::with_state`] inside memos that re-run on [`Ctx::tick`].

use leptos::prelude::*;
use node_wasm::core::op::{OpBody, OpId};
use node_wasm::core::state::State;
use node_wasm::identity::NodeId;
use node_wasm::runtime::Node;
use node_wasm::runtime::ledger::Ledger;
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

/// Change notifications are folded into one `tick` per this interval (about
/// a frame), so a burst of ops (or 10,000 tasks arriving) re-runs each memo
/// once per frame, not once per op. It is also the floor of the UI's update
/// latency (docs/BENCHMARKS.md, "UI"): 60 ms measured 63 ms op-to-DOM.
const COALESCE_MS: u64 = 16;

/// Shared application handles (all `Copy`).
#[derive(Clone, Copy)]
pub struct Ctx {
    pub node: StoredValue<Node, LocalStorage>,
    pub ledger: StoredValue<Ledger, LocalStorage>,
    /// Bumped (coalesced) whenever the node reports a change.
    pub tick: RwSignal<u64>,
    /// Wall-clock ms, updated every second (countdowns, live tallies).
    pub now: RwSignal<u64>,
    pub me: NodeId,
}

impl Ctx {
    /// Wires the node's change notifications and the 1 s clock.
    pub fn new(node: Node, ledger: Ledger) -> Ctx {
        let tick = RwSignal::new(0u64);
        let now = RwSignal::new(js_sys::Date::now() as u64);
        let scheduled = Rc::new(Cell::new(false));
        node.subscribe(Rc::new(move || {
            if scheduled.replace(true) {
                return;
            }
            let s = scheduled.clone();
            set_timeout(
                move || {
                    s.set(false);
                    tick.update(|t| *t += 1);
                },
                Duration::from_millis(COALESCE_MS),
            );
        }));
        set_interval(move || now.set(js_sys::Date::now() as u64), Duration::from_secs(1));
        let me = node.id();
        Ctx { node: StoredValue::new_local(node), ledger: StoredValue::new_local(ledger), tick, now, me }
    }

    /// Runs `f` on the replicated state, tracking [`Ctx::tick`].
    pub fn with_state<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        self.tick.track();
        self.ledger.with_value(|l| l.with_state(f))
    }

    /// Runs `f` on the state without tracking (inside event handlers).
    pub fn peek_state<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        self.ledger.with_value(|l| l.with_state(f))
    }

    /// Reads the node, tracking [`Ctx::tick`].
    pub fn with_node<T>(&self, f: impl FnOnce(&Node) -> T) -> T {
        self.tick.track();
        self.node.with_value(f)
    }

    /// Signs and publishes an op. The error is the core's sentence saying
    /// which rule the op would break.
    pub fn act(&self, channel: &str, body: OpBody) -> Result<OpId, String> {
        self.ledger.with_value(|l| l.act(channel, body))
    }

    /// An op on an existing task, in that task's channel.
    pub fn act_on_task(&self, task: OpId, body: OpBody) -> Result<OpId, String> {
        let ch = self.peek_state(|st| {
            st.tasks.get(&task).map(|t| t.channel.clone()).or_else(|| st.teams.get(&task).map(|t| t.channel.clone()))
        });
        match ch {
            Some(ch) => self.act(&ch, body),
            None => Err(format!("no task {} is known here", task.short())),
        }
    }

    /// An op on an existing proposal, in that proposal's channel.
    pub fn act_on_proposal(&self, proposal: OpId, body: OpBody) -> Result<OpId, String> {
        let ch = self.peek_state(|st| st.gov.proposals.get(&proposal).map(|p| p.channel.clone()));
        match ch {
            Some(ch) => self.act(&ch, body),
            None => Err(format!("no proposal {} is known here", proposal.short())),
        }
    }
}

/// The shared context (provided by the app shell once the node runs).
pub fn ctx() -> Ctx {
    expect_context::<Ctx>()
}
