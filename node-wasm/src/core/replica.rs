//! A replica: the op store, the fold and the local clock, behind one
//! sans-IO interface. Bytes and the current time go in; state, outcomes and
//! ops to publish come out.

use crate::core::finality::{Final, FinalityView};
use crate::core::finalizer::{Admission, Finalizer};
use crate::core::fold::{CHECKPOINT_EVERY, Fold, FoldStats, OrderKey, Outcome};
use crate::core::genesis::Genesis;
use crate::core::hlc::{Clock, Hlc};
use crate::core::log::{ChainStatus, Equivocation, OpStore};
use crate::core::op::{OpBody, OpError, OpId, SignedOp, VerifiedOp};
use crate::core::reject::Reject;
use crate::core::state::State;
use crate::identity::{Identity, NodeId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// What happened to a received op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// Already held (nothing was verified).
    Duplicate,
    /// Too far in the future; kept aside until `tick` releases it.
    Held,
    /// Stored; the fold has taken it into account.
    Stored,
    /// Not stored (nothing changed; a peer may send it again later): too far
    /// in the future with the held-back queue full, too far beyond its
    /// author's chain head (`MAX_SEQ_AHEAD`), or an op of a known equivocator
    /// that could have no effect.
    Dropped,
}

/// Ops more than this many seqs beyond their author's ready head are not
/// stored (they could never be folded before the gap is filled, and storing
/// them would let a peer fill our memory); sync fetches them again later.
pub const MAX_SEQ_AHEAD: u64 = 4096;

/// Most ops kept aside for being too far in the future; beyond this they are
/// dropped so a peer with a broken clock cannot fill our memory.
pub const MAX_HELD: usize = 4096;

/// Where an op stands, for callers and the UI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpOutcome {
    Applied,
    Rejected(Reject),
    /// Waiting for an earlier op of the same author.
    Pending,
    /// Held back: its HLC is too far ahead of our clock.
    Held,
    /// Its author equivocated at or before it.
    Excluded {
        seq: u64,
    },
    /// Its HLC does not exceed its author's previous op.
    InvalidChain,
    /// Rule `late_op`: dated before the last final checkpoint but not in
    /// it; it has no effect (its author's later ops still count).
    Late,
}

/// Why a local action was not performed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionError {
    /// The op would break a rule; nothing was signed or published.
    Refused(Reject),
    /// A field is over its limit or malformed.
    Op(OpError),
    /// Our own chain is not contiguous here (ops beyond our head are held or
    /// pending, or we equivocated); signing now could equivocate.
    ChainNotReady,
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActionError::Refused(r) => write!(f, "{r}"),
            ActionError::Op(e) => write!(f, "{e}"),
            ActionError::ChainNotReady => {
                f.write_str("this node's own op chain is incomplete; wait for sync before acting")
            }
        }
    }
}

impl std::error::Error for ActionError {}

/// A rejected op, as the snapshot lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedOp {
    pub op: OpId,
    pub author: NodeId,
    pub seq: u64,
    pub hlc: Hlc,
    pub kind: String,
    pub code: String,
    pub reason: String,
}

/// Op counts by status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpCounts {
    pub stored: u64,
    pub applied: u64,
    pub rejected: u64,
    pub pending: u64,
    pub excluded: u64,
    pub invalid: u64,
    pub held: u64,
    /// Refused as late (rule `late_op`).
    pub late: u64,
}

/// A JSON-friendly picture of a replica for the UI and the JS API. Amounts
/// are integer SP; reputation is in milli-points.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Hex of [`Replica::state_hash`].
    pub state_hash: String,
    pub clock: Hlc,
    pub state: State,
    pub equivocators: Vec<Equivocation>,
    pub rejected: Vec<RejectedOp>,
    pub counts: OpCounts,
    /// Epochs, the last final checkpoint and why the next is not final yet.
    pub finality: FinalityView,
}

/// One node's replica of the shared state.
pub struct Replica {
    /// Tests only: sign ops the rules refuse, as a modified client would.
    unchecked: bool,
    store: OpStore,
    fold: Fold,
    clock: Clock,
    held: BTreeMap<(u64, OpId), VerifiedOp>,
    held_ids: BTreeSet<OpId>,
    finality: Finalizer,
}

impl Default for Replica {
    fn default() -> Replica {
        Replica::new()
    }
}

impl Replica {
    pub fn new() -> Replica {
        Replica::with_fold(Fold::default())
    }

    /// A replica with checkpoints every `every` ops (tests, benchmarks).
    pub fn with_checkpoint_every(every: u64) -> Replica {
        Replica::with_fold(Fold::new(every))
    }

    /// A replica of the network `genesis` names.
    pub fn with_genesis(genesis: &Genesis) -> Replica {
        Replica::with_fold(Fold::from_origin(State::from_genesis(genesis), CHECKPOINT_EVERY))
    }

    /// [`Replica::with_genesis`] with checkpoints every `every` ops.
    pub fn with_genesis_every(genesis: &Genesis, every: u64) -> Replica {
        Replica::with_fold(Fold::from_origin(State::from_genesis(genesis), every))
    }

    /// A replica of a network with every safeguard off
    /// ([`Genesis::open`]): tests of features other than governance.
    pub fn open() -> Replica {
        Replica::with_genesis(&Genesis::open("test"))
    }

    /// [`Replica::open`] with checkpoints every `every` ops.
    pub fn open_every(every: u64) -> Replica {
        Replica::with_genesis_every(&Genesis::open("test"), every)
    }

    fn with_fold(fold: Fold) -> Replica {
        let finality = Finalizer::new(&fold.state().params.rules);
        Replica {
            finality,
            unchecked: false,
            store: OpStore::new(),
            fold,
            clock: Clock::new(),
            held: BTreeMap::new(),
            held_ids: BTreeSet::new(),
        }
    }

    /// True if the op is held in any form (check before verifying).
    pub fn contains(&self, id: &OpId) -> bool {
        self.store.contains(id) || self.held_ids.contains(id)
    }

    /// Decodes, dedups, verifies and folds an op from a peer.
    pub fn receive(&mut self, bytes: &[u8], now_ms: u64) -> Result<Received, OpError> {
        let op = SignedOp::decode(bytes)?;
        if self.contains(&op.id()) {
            return Ok(Received::Duplicate);
        }
        let op = op.verify()?;
        Ok(self.receive_verified(op, now_ms))
    }

    /// Folds an op whose signature was already checked.
    pub fn receive_verified(&mut self, op: VerifiedOp, now_ms: u64) -> Received {
        let r = self.ingest(op, now_ms);
        self.fold.catch_up(&self.store);
        r
    }

    /// Folds many verified ops with at most one re-fold.
    ///
    /// The batch is ingested in (author, seq) order, whatever order it comes
    /// in (results are still in input order): a batch may hold a long chain
    /// in any order (an op log read back from IndexedDB is keyed by op id),
    /// and a seq more than `MAX_SEQ_AHEAD` past its author's head would
    /// otherwise be dropped before the ops below it arrive.
    pub fn receive_batch<I: IntoIterator<Item = VerifiedOp>>(&mut self, ops: I, now_ms: u64) -> Vec<Received> {
        let mut ops: Vec<(usize, VerifiedOp)> = ops.into_iter().enumerate().collect();
        ops.sort_by_key(|(_, op)| (op.op().author, op.op().seq));
        let mut out = vec![Received::Dropped; ops.len()];
        for (i, op) in ops {
            out[i] = self.ingest(op, now_ms);
        }
        self.fold.catch_up(&self.store);
        out
    }

    fn ingest(&mut self, op: VerifiedOp, now_ms: u64) -> Received {
        let id = op.id();
        if self.contains(&id) {
            return Received::Duplicate;
        }
        let hlc = op.op().hlc;
        let head = self.store.head(&op.op().author).map_or(0, |h| h.0);
        if op.op().seq > head.saturating_add(MAX_SEQ_AHEAD) {
            return Received::Dropped;
        }
        if self.clock.observe(hlc, now_ms).is_err() {
            if self.held.len() >= MAX_HELD {
                return Received::Dropped;
            }
            self.held_ids.insert(id);
            self.held.insert((hlc.ms, id), op);
            return Received::Held;
        }
        let Some(report) = self.store.insert(op) else {
            // Not a duplicate (checked above): an equivocator's useless op.
            return Received::Dropped;
        };
        for id in report.excluded {
            self.finality.excluded(&id);
            if let Some(op) = self.store.get(&id) {
                self.fold.remove(OrderKey::of(op));
            }
        }
        let mut ready_now = false;
        for rid in report.ready {
            ready_now |= rid == id;
            if let Some(op) = self.store.get(&rid)
                && self.finality.admit(op) == Admission::Fold
            {
                self.fold.insert(OrderKey::of(op));
            }
        }
        if !ready_now && let Some(op) = self.store.get(&id) {
            self.finality.note_vote_ahead(op);
        }
        Received::Stored
    }

    /// Advances time: releases held ops that are no longer too far ahead
    /// and makes the newest quorum-signed checkpoint final if it can
    /// ([`Replica::finalize`]). Returns how many ops were released.
    pub fn tick(&mut self, now_ms: u64) -> usize {
        let n = self.release(now_ms);
        self.finalize();
        n
    }

    /// Makes the newest epoch that a quorum of validators signed final
    /// here, if this node holds its ops and computes its state (rules in
    /// `core/finality.rs`). Returns the epoch made final.
    pub fn finalize(&mut self) -> Option<u64> {
        self.finality.try_finalize(&mut self.fold, &mut self.store)
    }

    /// Rule `checkpoint_vote`: the checkpoint `me` should sign now, if it is
    /// a validator of the newest due epoch and has not signed it yet. The
    /// caller signs it with [`Replica::act`].
    pub fn checkpoint_due(&mut self, me: &NodeId, now_ms: u64) -> Option<OpBody> {
        self.finality.vote_due(me, now_ms, &self.fold, &self.store).map(OpBody::Checkpoint)
    }

    /// Rule `catch_up_from_checkpoint`: epochs the validators signed that
    /// this node could not make final (see [`Finalizer::lag`]).
    pub fn finality_lag(&self) -> u64 {
        self.finality.lag(self.finality.trusted())
    }

    /// The validators of the last final state here, at `at_ms`: whose
    /// signatures this node takes as a quorum for a newer checkpoint (rule
    /// `catch_up_anchored`). `None` before any checkpoint is final here (a
    /// fresh node trusts the validators a snapshot names; see
    /// docs/PROTOCOL.md, "What a joining node trusts").
    fn trusted_validators(&self, at_ms: u64) -> Option<BTreeSet<NodeId>> {
        self.finality.last()?;
        let set: BTreeSet<NodeId> = self.fold.origin().compute_validators(at_ms).into_iter().collect();
        (!set.is_empty()).then_some(set)
    }

    /// Late ops still held (their ids stay in memory until pruned).
    pub fn late_held(&self) -> usize {
        self.finality.late_count()
    }

    /// The last final checkpoint, if any.
    pub fn last_final(&self) -> Option<&Final> {
        self.finality.last()
    }

    /// Finality for the UI and `status()`.
    pub fn finality(&self, now_ms: u64) -> FinalityView {
        self.finality.view(now_ms)
    }

    /// A replica that starts from a verified final checkpoint (a reload, or
    /// a snapshot join: see [`crate::core::snapshot::verify`]): its state is
    /// the fold's origin, its frontier the chain heads, and only ops after
    /// it are ever folded.
    pub fn from_checkpoint(f: Final, state: State, certificate: Vec<VerifiedOp>, every: u64) -> Replica {
        let heads = f.frontier.iter().map(|(a, h)| (*a, (h.seq, h.id, h.hlc))).collect();
        let mut r = Replica::with_fold(Fold::from_origin(state, every));
        r.store = OpStore::restore(heads, f.forks.clone());
        let end = f.end_ms;
        let trusted = r.fold.origin().compute_validators(end).into_iter().collect();
        r.finality.restore(f, certificate, trusted);
        // Our own clock starts past everything the checkpoint covers.
        let _ = r.clock.observe(Hlc::new(end, 0), end);
        r
    }

    /// What can be checked of a fetched checkpoint's record before its
    /// snapshot is fetched: it decodes, is newer than the last checkpoint
    /// final here, and (for a node with a final checkpoint) carries a
    /// quorum of the signatures of the validators this node trusts (rule
    /// `catch_up_anchored`).
    pub fn check_record(&self, genesis: &Genesis, record: &[u8]) -> Result<crate::core::snapshot::Record, String> {
        let rec = crate::core::snapshot::Record::decode(record)?;
        if self.finality.last().is_some_and(|f| f.epoch >= rec.epoch) {
            return Err(format!("checkpoint of epoch {} is not newer than ours", rec.epoch));
        }
        // Rule `catch_up_anchored`: a node with a final checkpoint already
        // trusts that checkpoint's validators, and a newer one must carry a
        // quorum of *their* signatures, not only of the validators its own
        // snapshot names (a fresh key can write a state where it alone is
        // one, and sign it).
        if let Some(trusted) = self.trusted_validators(rec.end_ms) {
            let need = crate::core::finality::finality_quorum(trusted.len(), genesis.rules.validator_floor);
            let signed: BTreeSet<NodeId> =
                rec.certificate.iter().map(|v| v.op().author).filter(|a| trusted.contains(a)).collect();
            if signed.len() < need {
                return Err(format!(
                    "checkpoint of epoch {}: {} of the {} validators this node trusts signed it, {need} needed (rule catch_up_anchored)",
                    rec.epoch,
                    signed.len(),
                    trusted.len()
                ));
            }
        }
        Ok(rec)
    }

    /// Rule `catch_up_from_checkpoint`: replaces this replica's past with a
    /// checkpoint fetched from a peer (record and snapshot bytes), verified
    /// against `genesis` and newer than the last one final here. Ops held
    /// after it are kept and folded again. Returns the checkpoint's epoch.
    pub fn adopt_checkpoint(&mut self, genesis: &Genesis, record: &[u8], snapshot: &[u8]) -> Result<u64, String> {
        let rec = self.check_record(genesis, record)?;
        let (f, state) = crate::core::snapshot::verify(genesis, &rec, snapshot)?;
        let epoch = f.epoch;
        let mut next = Replica::from_checkpoint(f, state, rec.certificate, self.fold.every());
        next.unchecked = self.unchecked;
        let held: Vec<VerifiedOp> = self.store.iter().map(|(_, op, _)| op.clone()).collect();
        let now = self.clock.last().ms;
        next.receive_batch(held, now);
        next.receive_batch(std::mem::take(&mut self.held).into_values(), now);
        next.finality.carry_counters(&self.finality);
        next.finalize();
        *self = next;
        Ok(epoch)
    }

    /// Folds ops a caller held elsewhere (the router's store) after a
    /// snapshot join: those the checkpoint covers are skipped before their
    /// signature is checked, the others verified and folded. Returns how
    /// many were stored and how many were still dropped (too far ahead of
    /// a chain whose gap is not filled yet: try again later).
    pub fn refeed<'a>(&mut self, ops: impl IntoIterator<Item = &'a [u8]>, now_ms: u64) -> (usize, usize) {
        let mut verified = Vec::new();
        for bytes in ops {
            let Ok(op) = SignedOp::decode(bytes) else { continue };
            if self.is_final(&op.op().author, op.op().seq) || self.contains(&op.id()) {
                continue;
            }
            if let Ok(v) = op.verify() {
                verified.push(v);
            }
        }
        let r = self.receive_batch(verified, now_ms);
        let dropped = r.iter().filter(|x| **x == Received::Dropped).count();
        (r.len() - dropped, dropped)
    }

    /// Each author's head in the final checkpoint before the last, `(author,
    /// seq, id)`: what [`Replica::prune`] drops up to, and the router's
    /// floors (rules `prune_margin`, `final_floor`).
    pub fn prune_floor(&self) -> Vec<(NodeId, u64, OpId)> {
        self.store.prune_heads().collect()
    }

    /// The last final checkpoint's record and state snapshot bytes: what a
    /// node persists to reload from, and serves to joining nodes.
    pub fn export_final(&self) -> Option<(crate::core::snapshot::Record, std::sync::Arc<Vec<u8>>)> {
        let f = self.finality.last()?;
        let rec = crate::core::snapshot::Record::of(f, self.finality.certificate().to_vec());
        let bytes = match self.finality.snapshot() {
            Some(b) => b,
            None => std::sync::Arc::new(crate::core::snapshot::encode_state(self.fold.origin())),
        };
        Some((rec, bytes))
    }

    /// Rule `prune_final`: drops the ops the last final checkpoint covers
    /// (its state holds their effect); returns their ids. Peers that need
    /// them join from the checkpoint instead.
    pub fn prune(&mut self) -> Vec<OpId> {
        let gone = self.store.prune_final();
        self.fold.forget(&gone);
        self.finality.forget(&gone);
        gone
    }

    /// True if `(author, seq)` is at or below the author's head in the last
    /// final checkpoint (such an op is never folded again: a reload skips
    /// it without verifying it).
    pub fn is_final(&self, author: &NodeId, seq: u64) -> bool {
        seq <= self.store.final_seq(author)
    }

    /// Until when (op-time ms) deadlines are settled by finality, while it
    /// is live; `None` when deadlines should act on time.
    pub fn settled_until(&self, now_ms: u64) -> Option<u64> {
        self.finality.settled_until(now_ms)
    }

    fn release(&mut self, now_ms: u64) -> usize {
        let limit = now_ms.saturating_add(crate::core::hlc::MAX_DRIFT_MS);
        let mut released = Vec::new();
        while let Some(entry) = self.held.first_entry() {
            if entry.key().0 > limit {
                break;
            }
            let op = entry.remove();
            self.held_ids.remove(&op.id());
            released.push(op);
        }
        let n = released.len();
        if n > 0 {
            self.receive_batch(released, now_ms);
        }
        n
    }

    /// Performs a local action: signs the next op of `identity`'s chain,
    /// checks it against the current state first (a refusal signs nothing),
    /// folds it and returns it for publishing.
    pub fn act(
        &mut self,
        identity: &Identity,
        channel: &str,
        body: OpBody,
        now_ms: u64,
    ) -> Result<VerifiedOp, ActionError> {
        let me = identity.node_id();
        let head = self.store.head(&me);
        let head_seq = head.map_or(0, |h| h.0);
        if self.store.max_seq(&me) != head_seq || self.store.is_equivocator(&me) {
            return Err(ActionError::ChainNotReady);
        }
        if self.held.values().any(|op| op.op().author == me) {
            return Err(ActionError::ChainNotReady);
        }
        let prev = head.map_or(OpId::ZERO, |h| h.1);
        let hlc = self.clock.tick(now_ms);
        let op = SignedOp::create(identity, head_seq + 1, prev, hlc, channel, body).map_err(ActionError::Op)?;
        if self.unchecked {
            self.receive_verified(op.clone(), now_ms);
            return Ok(op);
        }
        // The clock has observed every stored op, so this op sorts last:
        // folding it is applying it to the current state.
        if matches!(op.op().body, OpBody::Checkpoint(_)) || self.fold.behind() {
            // A vote also counts toward finality when stored, so it is
            // tried on a copy (once an epoch) instead of taken back.
            let mut probe = self.fold.state().clone();
            probe.apply(op.id(), op.op(), self.fold.modules()).map_err(ActionError::Refused)?;
            self.receive_verified(op.clone(), now_ms);
            return Ok(op);
        }
        self.receive_verified(op.clone(), now_ms);
        match self.fold.outcome(&op.id()).cloned() {
            Some(Outcome::Applied) => Ok(op),
            Some(Outcome::Rejected(r)) => {
                self.unsign(&op, head);
                Err(ActionError::Refused(r))
            }
            None => {
                // Not folded here: held, because this device's wall clock
                // is behind the HLC the node has observed (the op is dated
                // past `now_ms + MAX_DRIFT_MS`). It is published all the
                // same and folds here once the clock catches up, so it is
                // checked on a copy of the state, as every action once was.
                let mut probe = self.fold.state().clone();
                match probe.apply(op.id(), op.op(), self.fold.modules()) {
                    Ok(()) => Ok(op),
                    Err(r) => {
                        self.unsign(&op, head);
                        Err(ActionError::Refused(r))
                    }
                }
            }
        }
    }

    /// Rule `refused_action_signs_nothing`: takes back an own op that the
    /// fold refused right after [`Replica::act`] stored it, as if it had
    /// never been signed (it was never published). Folding in place and
    /// rewinding on refusal costs one apply per accepted action; trying
    /// each action on a copy of the state first cost O(state) every time
    /// (~3 ms at 30,000 tasks). A refusal rewinds to the fold's last
    /// checkpoint and re-applies the ops after it.
    fn unsign(&mut self, op: &VerifiedOp, prev_head: Option<(u64, OpId, Hlc)>) {
        let (author, id) = (op.op().author, op.id());
        self.fold.remove(OrderKey::of(op));
        self.store.unstore_head(author, id, prev_head);
        if self.held_ids.remove(&id) {
            self.held.retain(|_, o| o.id() != id);
        }
        self.fold.catch_up(&self.store);
    }

    /// Tests of what honest nodes do with a modified client's ops: from now
    /// on [`Replica::act`] signs an op even when the rules refuse it (the
    /// fold still rejects it, here and everywhere).
    pub fn sign_refused_ops_for_tests(&mut self) {
        self.unchecked = true;
    }

    /// Whether [`Replica::sign_refused_ops_for_tests`] is on.
    pub fn signs_refused_ops(&self) -> bool {
        self.unchecked
    }

    /// Per author, the last op of its complete chain here, `(seq, id)`:
    /// what a catch-up request sends so the peer can reply with exactly the
    /// ops we lack (`missing_from`). The id lets the peer notice a fork we
    /// have not seen.
    pub fn version_vector(&self) -> BTreeMap<NodeId, (u64, OpId)> {
        self.store.heads()
    }

    /// The ops a peer with version vector `have` lacks, at most `limit`.
    pub fn missing_from(&self, have: &BTreeMap<NodeId, (u64, OpId)>, limit: usize) -> Vec<&VerifiedOp> {
        self.store.missing_from(have, limit)
    }

    pub fn state(&self) -> &State {
        self.fold.state()
    }

    /// Ops held back for being too far in the future.
    pub fn held_len(&self) -> usize {
        self.held.len()
    }

    pub fn clock(&self) -> Hlc {
        self.clock.last()
    }

    pub fn store(&self) -> &OpStore {
        &self.store
    }

    pub fn fold_stats(&self) -> FoldStats {
        self.fold.stats()
    }

    pub fn equivocators(&self) -> Vec<Equivocation> {
        self.store.equivocations()
    }

    /// Rule `equivocation_evidence`: for each equivocator held here whose
    /// penalty the state has not applied yet, two of its ops at the fork
    /// seq that fit in an evidence op.
    pub fn equivocation_proofs(&self) -> Vec<(NodeId, VerifiedOp, VerifiedOp)> {
        let max = crate::core::op::MAX_EVIDENCE_OP_BYTES;
        self.store
            .equivocations()
            .into_iter()
            .filter(|e| self.state().ledger.accounts.get(&e.author).is_some_and(|a| a.slashed_at_seq.is_none()))
            .filter_map(|e| {
                let mut ops = e.ops.iter().filter_map(|id| self.store.get(id)).filter(|v| v.bytes().len() <= max);
                Some((e.author, ops.next()?.clone(), ops.next()?.clone()))
            })
            .collect()
    }

    /// Where op `id` stands.
    pub fn outcome(&self, id: &OpId) -> Option<OpOutcome> {
        if self.held_ids.contains(id) {
            return Some(OpOutcome::Held);
        }
        if self.finality.is_late(id) {
            return Some(OpOutcome::Late);
        }
        Some(match self.store.status(id)? {
            ChainStatus::Ready => match self.fold.outcome(id) {
                Some(Outcome::Applied) => OpOutcome::Applied,
                Some(Outcome::Rejected(r)) => OpOutcome::Rejected(r.clone()),
                None => OpOutcome::Pending,
            },
            ChainStatus::Pending => OpOutcome::Pending,
            ChainStatus::Excluded { seq } => OpOutcome::Excluded { seq },
            ChainStatus::InvalidChain => OpOutcome::InvalidChain,
        })
    }

    /// A stable hash of everything derived from the op set: the folded state
    /// and who equivocated at which seq. Replicas holding the same ops have the
    /// same hash, natively or in wasm.
    pub fn state_hash(&self) -> [u8; 32] {
        let mut h = Sha256::new().chain_update(b"synapse-ng/replica/v1").chain_update(self.fold.state().state_hash());
        for e in self.store.equivocations() {
            h.update(e.author.0);
            h.update(e.seq.to_be_bytes());
        }
        h.finalize().into()
    }

    /// The JSON-friendly view.
    pub fn snapshot(&self) -> Snapshot {
        let mut counts = OpCounts { held: self.held.len() as u64, ..OpCounts::default() };
        let mut rejected = Vec::new();
        for (id, op, status) in self.store.iter() {
            counts.stored += 1;
            match status {
                ChainStatus::Ready if self.finality.is_late(id) => counts.late += 1,
                ChainStatus::Ready => match self.fold.outcome(id) {
                    Some(Outcome::Applied) => counts.applied += 1,
                    Some(Outcome::Rejected(r)) => {
                        counts.rejected += 1;
                        let o = op.op();
                        rejected.push(RejectedOp {
                            op: *id,
                            author: o.author,
                            seq: o.seq,
                            hlc: o.hlc,
                            kind: o.body.kind().to_owned(),
                            code: r.code().to_owned(),
                            reason: r.to_string(),
                        });
                    }
                    None => counts.pending += 1,
                },
                ChainStatus::Pending => counts.pending += 1,
                ChainStatus::Excluded { .. } => counts.excluded += 1,
                ChainStatus::InvalidChain => counts.invalid += 1,
            }
        }
        rejected.sort_by_key(|r| (r.hlc, r.author, r.seq));
        Snapshot {
            state_hash: hex::encode(self.state_hash()),
            clock: self.clock.last(),
            state: self.fold.state().clone(),
            equivocators: self.store.equivocations(),
            rejected,
            counts,
            finality: self.finality.view(self.clock.last().ms),
        }
    }
}
