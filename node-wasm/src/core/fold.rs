//! The deterministic fold: ready ops in the total order
//! `(hlc, author, seq, id)`, applied one by one to [`State`].
//!
//! Applying is incremental: new ops that sort after the cursor are applied on
//! [`Fold::catch_up`]. An op that sorts before the cursor (a late arrival) or
//! one that must leave the fold (equivocation) rewinds the state to the last
//! checkpoint before it; the next `catch_up` re-applies from there. A
//! checkpoint (a copy of the state) is kept every `every` applied ops, or
//! every "state size" ops once the state is larger, so copying stays O(1)
//! amortised per op; old checkpoints are thinned so their number stays
//! bounded. Insert a batch and call
//! `catch_up` once to re-fold at most once per batch.

use crate::core::hlc::Hlc;
use crate::core::log::OpStore;
use crate::core::op::{OpId, SignedOp};
use crate::core::reject::Reject;
use crate::core::state::State;
use crate::core::upgrades::CompiledModules;
use crate::identity::NodeId;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

/// Default spacing of checkpoints, in applied ops.
pub const CHECKPOINT_EVERY: u64 = 1024;
/// At most this many checkpoints are kept; beyond it, older ones are thinned.
pub const MAX_CHECKPOINTS: usize = 32;

/// An op's position in the total order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct OrderKey {
    pub hlc: Hlc,
    pub author: NodeId,
    pub seq: u64,
    pub id: OpId,
}

impl OrderKey {
    pub fn of(op: &SignedOp) -> OrderKey {
        OrderKey { hlc: op.op().hlc, author: op.op().author, seq: op.op().seq, id: op.id() }
    }
}

/// What folding an op did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    Rejected(Reject),
}

#[derive(Clone)]
struct Checkpoint {
    after: OrderKey,
    count: u64,
    state: State,
}

/// Counters for benchmarks and diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FoldStats {
    /// Ops applied in total, re-applications included.
    pub applies: u64,
    /// Rewinds caused by late or excluded ops.
    pub rewinds: u64,
}

pub struct Fold {
    order: BTreeSet<OrderKey>,
    /// The state before any op (the network's genesis).
    origin: State,
    state: State,
    cursor: Option<OrderKey>,
    count: u64,
    checkpoints: Vec<Checkpoint>,
    /// Take the next checkpoint when `count` reaches this.
    next_checkpoint: u64,
    outcomes: BTreeMap<OpId, Outcome>,
    every: u64,
    stats: FoldStats,
    /// Compiled policy modules, shared by the state and every checkpoint
    /// (not part of any of them: see [`CompiledModules`]).
    modules: CompiledModules,
}

impl Default for Fold {
    fn default() -> Fold {
        Fold::new(CHECKPOINT_EVERY)
    }
}

impl Fold {
    pub fn new(every: u64) -> Fold {
        Fold::from_origin(State::genesis(), every)
    }

    /// A fold that starts from `origin` (a network's genesis state).
    pub fn from_origin(origin: State, every: u64) -> Fold {
        Fold {
            order: BTreeSet::new(),
            state: origin.clone(),
            origin,
            cursor: None,
            count: 0,
            checkpoints: Vec::new(),
            next_checkpoint: every.max(1),
            outcomes: BTreeMap::new(),
            every: every.max(1),
            stats: FoldStats::default(),
            modules: CompiledModules::default(),
        }
    }

    /// The state before every op in the order: the genesis, or the last
    /// final checkpoint's state once one was made final.
    pub fn origin(&self) -> &State {
        &self.origin
    }

    /// Forgets the outcomes of ops no longer held (pruned below a final
    /// checkpoint).
    pub fn forget(&mut self, ids: &[OpId]) {
        for id in ids {
            self.outcomes.remove(id);
        }
    }

    /// The state after every op applied so far (call `catch_up` first).
    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn outcome(&self, id: &OpId) -> Option<&Outcome> {
        self.outcomes.get(id)
    }

    pub fn outcomes(&self) -> &BTreeMap<OpId, Outcome> {
        &self.outcomes
    }

    /// The compiled-module cache this fold applies ops with.
    pub fn modules(&self) -> &CompiledModules {
        &self.modules
    }

    pub fn stats(&self) -> FoldStats {
        self.stats
    }

    /// Checkpoint spacing, in applied ops.
    pub fn every(&self) -> u64 {
        self.every
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// True if ops are waiting to be applied.
    pub fn behind(&self) -> bool {
        let start = self.cursor.map_or(Bound::Unbounded, Bound::Excluded);
        self.order.range((start, Bound::Unbounded)).next().is_some()
    }

    /// Adds a ready op to the order; rewinds if it sorts before the cursor.
    pub fn insert(&mut self, key: OrderKey) {
        if self.order.insert(key) && self.cursor.is_some_and(|c| key < c) {
            self.rewind(key);
        }
    }

    /// Takes an op out of the order; rewinds if it had been applied.
    pub fn remove(&mut self, key: OrderKey) {
        if self.order.remove(&key) {
            self.outcomes.remove(&key.id);
            if self.cursor.is_some_and(|c| key <= c) {
                self.rewind(key);
            }
        }
    }

    /// Restores the last checkpoint strictly before `key`.
    fn rewind(&mut self, key: OrderKey) {
        while self.checkpoints.last().is_some_and(|cp| cp.after >= key) {
            self.checkpoints.pop();
        }
        match self.checkpoints.last() {
            Some(cp) => {
                self.state = cp.state.clone();
                self.cursor = Some(cp.after);
                self.count = cp.count;
            }
            None => {
                self.state = self.origin.clone();
                self.cursor = None;
                self.count = 0;
            }
        }
        self.next_checkpoint = self.count + self.spacing();
        self.stats.rewinds += 1;
    }

    /// Applies every op after the cursor, in order.
    pub fn catch_up(&mut self, store: &OpStore) {
        loop {
            let start = self.cursor.map_or(Bound::Unbounded, Bound::Excluded);
            let Some(key) = self.order.range((start, Bound::Unbounded)).next().copied() else {
                return;
            };
            self.cursor = Some(key);
            let Some(op) = store.get(&key.id) else {
                continue;
            };
            let outcome = match self.state.apply(key.id, op.op(), &self.modules) {
                Ok(()) => Outcome::Applied,
                Err(r) => Outcome::Rejected(r),
            };
            self.outcomes.insert(key.id, outcome);
            self.count += 1;
            self.stats.applies += 1;
            if self.count >= self.next_checkpoint {
                self.checkpoints.push(Checkpoint { after: key, count: self.count, state: self.state.clone() });
                self.thin_checkpoints();
                self.next_checkpoint = self.count + self.spacing();
            }
        }
    }

    /// The ops in the order from `from` (inclusive) to `to` (exclusive).
    pub fn keys_between(&self, from: OrderKey, to: OrderKey) -> impl Iterator<Item = &OrderKey> {
        self.order.range(from..to)
    }

    /// The state after every op in the order before `bound` except those in
    /// `skip` (all of which sort before `bound`), computed aside: from the
    /// last checkpoint before the first op that differs, so it costs at most
    /// the ops after that checkpoint. The fold itself is not changed.
    pub fn state_at(&self, bound: OrderKey, skip: &BTreeSet<OrderKey>, store: &OpStore) -> State {
        let stop = skip.first().copied().map_or(bound, |k| k.min(bound));
        let (mut state, start) = match self.checkpoints.iter().rev().find(|cp| cp.after < stop) {
            Some(cp) => (cp.state.clone(), Bound::Excluded(cp.after)),
            None => (self.origin.clone(), Bound::Unbounded),
        };
        for key in self.order.range((start, Bound::Excluded(bound))) {
            if skip.contains(key) {
                continue;
            }
            if let Some(op) = store.get(&key.id) {
                let _ = state.apply(key.id, op.op(), &self.modules);
            }
        }
        state
    }

    /// Rule `final_is_final`: `state` (the state of every op before
    /// `bound`) becomes the origin; the ops before `bound` leave the order
    /// and are never folded again, and checkpoints before it are dropped.
    /// Their outcomes stay readable.
    pub fn finalize(&mut self, bound: OrderKey, state: State) {
        self.origin = state;
        self.order = self.order.split_off(&bound);
        self.checkpoints.retain(|cp| cp.after >= bound);
        if self.cursor.is_none_or(|c| c < bound) {
            // Behind the bound (a late op was just taken out): start again
            // from the new origin.
            self.state = self.origin.clone();
            self.cursor = None;
            self.count = 0;
            self.checkpoints.clear();
            self.next_checkpoint = self.spacing();
        }
    }

    /// Ops between checkpoints: at least `every`, and at least the number of
    /// entities in the state, so copying the state for a checkpoint costs
    /// O(1) amortised per applied op however large the state grows.
    fn spacing(&self) -> u64 {
        let s = &self.state;
        let size = s.tasks.len() + s.teams.len() + s.ledger.accounts.len() + s.ledger.channels.len();
        self.every.max(size as u64)
    }

    /// Keeps the newest half of the checkpoints and every other one of the
    /// older half, so spacing grows with age and the count stays bounded.
    fn thin_checkpoints(&mut self) {
        if self.checkpoints.len() <= MAX_CHECKPOINTS {
            return;
        }
        let half = self.checkpoints.len() / 2;
        let mut i = 0;
        self.checkpoints.retain(|_| {
            let keep = i >= half || i % 2 == 0;
            i += 1;
            keep
        });
    }
}
