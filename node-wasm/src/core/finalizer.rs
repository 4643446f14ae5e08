//! The replica's finality sub-state: checkpoint votes seen, the last final
//! checkpoint, and the ops refused as late. It reads the op store and the
//! fold it is given and never imports the replica; the rules it applies are
//! described in [`crate::core::finality`] and `docs/PROTOCOL.md`
//! ("Finality").

use crate::core::finality::{
    Epochs, Final, FinalityView, Forks, Frontier, Head, apply_moved, finality_quorum, frontier_hash, moved,
};
use crate::core::fold::{Fold, OrderKey};
use crate::core::hlc::Hlc;
use crate::core::log::OpStore;
use crate::core::op::{CheckpointVote, OpBody, OpId, VerifiedOp};
use crate::core::rules::Rules;
use crate::core::snapshot;
use crate::identity::NodeId;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Epochs with votes remembered at most (older ones are forgotten first):
/// while finality stalls, votes cannot pile up without bound.
pub const MAX_VOTED_EPOCHS: usize = 64;

/// While the last final checkpoint is at most this many epochs old,
/// deadlines wait for finality (see [`Finalizer::settled_until`]).
pub const LIVE_EPOCHS: u64 = 10;

/// What to do with an op whose chain just became ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Fold it.
    Fold,
    /// Rule `late_op`: before the final checkpoint and not in it.
    Late,
    /// In the final checkpoint already (its effect is in the origin).
    Final,
}

/// One validator's vote for one epoch.
#[derive(Clone, Debug)]
struct Vote {
    op: OpId,
    frontier: [u8; 32],
    state: [u8; 32],
    base: Option<u64>,
    moved: Vec<crate::core::op::FrontierHead>,
}

/// The checkpoint this node signed last, with its state and snapshot bytes.
struct Signed {
    epoch: u64,
    frontier: [u8; 32],
    state: [u8; 32],
    value: crate::core::state::State,
    bytes: Arc<Vec<u8>>,
}

/// What a vote signs: (frontier hash, state hash).
type Digest = ([u8; 32], [u8; 32]);

/// A checkpoint ready to be made final.
struct Plan {
    epoch: u64,
    end_ms: u64,
    frontier: Frontier,
    forks: Forks,
    frontier_hash: [u8; 32],
    state_hash: [u8; 32],
    state: crate::core::state::State,
    /// The state's snapshot bytes (encoded once: checked, kept, served).
    snapshot: std::sync::Arc<Vec<u8>>,
    late: BTreeSet<OrderKey>,
    /// The final state's validators at its end: whom this node trusts next.
    validators: BTreeSet<NodeId>,
    signers: Vec<NodeId>,
    certificate: Vec<OpId>,
}

/// The lowest order key of op time `ms`: ops before it have an HLC below `ms`.
pub fn bound_key(ms: u64) -> OrderKey {
    OrderKey { hlc: Hlc::new(ms, 0), author: NodeId([0; 32]), seq: 0, id: OpId::ZERO }
}

const MIN_KEY: OrderKey = OrderKey { hlc: Hlc::ZERO, author: NodeId([0; 32]), seq: 0, id: OpId::ZERO };

#[derive(Default)]
pub struct Finalizer {
    epochs: Option<Epochs>,
    floor: u64,
    last: Option<Final>,
    /// The validators of `last`'s state at its end, computed once per final
    /// checkpoint (rule `catch_up_anchored`; [`Finalizer::lag`] runs every
    /// tick, and the set is a sort over every account).
    trusted: Option<BTreeSet<NodeId>>,
    /// The vote ops that made `last` final (its certificate).
    certificate: Vec<VerifiedOp>,
    /// `last`'s state snapshot bytes, when this node encoded them already.
    snapshot: Option<std::sync::Arc<Vec<u8>>>,
    /// The held ops refused as late. An id leaves with its op when a final
    /// frontier covers the author past it and the op is pruned
    /// ([`Finalizer::forget`]): a fresh key can sign late ops without end,
    /// and this set must not outlive the store that bounds them.
    late: BTreeSet<OpId>,
    /// Ops refused as late since this replica started (a counter, so the
    /// figure survives the pruning of the ops themselves).
    late_refused: u64,
    votes: BTreeMap<u64, BTreeMap<NodeId, Vote>>,
    /// Checkpoint votes in ops whose chain has a gap here (an earlier op of
    /// their author is missing): they never count towards finality, only as
    /// evidence of how far ahead the validators are ([`Finalizer::lag`]).
    /// A node away longer than its peers keep ops finds every new op of
    /// theirs behind such a gap (the ops in between were pruned), so
    /// without these it would never see itself lag and never fetch the
    /// checkpoint that fills the gap (rule `catch_up_from_checkpoint`).
    /// Bounded like `votes`, and each entry is an op the store holds.
    ahead: BTreeMap<u64, BTreeMap<NodeId, Digest>>,
    vote_ops: BTreeMap<OpId, (u64, NodeId)>,
    /// Set when ops or votes changed since the last finality attempt.
    dirty: bool,
    /// The epoch this node last found itself not a validator of.
    declined: Option<u64>,
    /// What this node signed last (see [`Signed`]).
    signed: Option<Signed>,
    double_votes: u64,
    state_mismatches: u64,
    waiting: Option<String>,
}

impl Finalizer {
    pub fn new(rules: &Rules) -> Finalizer {
        Finalizer { epochs: Epochs::of(rules), floor: rules.validator_floor, ..Finalizer::default() }
    }

    pub fn last(&self) -> Option<&Final> {
        self.last.as_ref()
    }

    /// The validators this node trusts (see the `trusted` field); `None`
    /// before any checkpoint is final here.
    pub fn trusted(&self) -> Option<&BTreeSet<NodeId>> {
        self.trusted.as_ref()
    }

    /// The vote ops that made the last checkpoint final.
    pub fn certificate(&self) -> &[VerifiedOp] {
        &self.certificate
    }

    /// The last checkpoint's snapshot bytes, if encoded already.
    pub fn snapshot(&self) -> Option<std::sync::Arc<Vec<u8>>> {
        self.snapshot.clone()
    }

    /// Starts from a verified final checkpoint (a reload or a snapshot
    /// join): ops before its end that it does not cover are late.
    pub fn restore(&mut self, f: Final, certificate: Vec<VerifiedOp>, trusted: BTreeSet<NodeId>) {
        self.trusted = (!trusted.is_empty()).then_some(trusted);
        self.votes = self.votes.split_off(&f.epoch.saturating_add(1));
        self.ahead = self.ahead.split_off(&f.epoch.saturating_add(1));
        self.vote_ops.retain(|_, (e, _)| *e > f.epoch);
        self.last = Some(f);
        self.certificate = certificate;
        self.snapshot = None;
        self.dirty = true;
    }

    pub fn is_late(&self, id: &OpId) -> bool {
        self.late.contains(id)
    }

    pub fn late_count(&self) -> usize {
        self.late.len()
    }

    /// Keeps `old`'s counters (late refusals, double votes, state
    /// mismatches) in a finalizer that replaces it when a node adopts a
    /// checkpoint: what the node saw before still happened. Called after
    /// the held ops were fed again, so a late op refused by both is counted
    /// once.
    pub fn carry_counters(&mut self, old: &Finalizer) {
        let again = old.late.iter().filter(|id| self.late.contains(id)).count() as u64;
        self.late_refused = self.late_refused.saturating_add(old.late_refused.saturating_sub(again));
        self.double_votes = self.double_votes.saturating_add(old.double_votes);
        self.state_mismatches = self.state_mismatches.saturating_add(old.state_mismatches);
    }

    /// Drops pruned ops from the late set (see the `late` field).
    pub fn forget(&mut self, pruned: &[OpId]) {
        for id in pruned {
            self.late.remove(id);
        }
    }

    /// Sorts an op whose chain just became ready (rules `late_op`,
    /// `final_is_final`), and records it if it is a checkpoint vote.
    pub fn admit(&mut self, op: &VerifiedOp) -> Admission {
        self.dirty = true;
        let o = op.op();
        if let Some(f) = &self.last
            && o.hlc.ms < f.end_ms
        {
            if f.covers(&o.author, o.seq) {
                return Admission::Final;
            }
            if self.late.insert(op.id()) {
                self.late_refused = self.late_refused.saturating_add(1);
            }
            return Admission::Late;
        }
        if let OpBody::Checkpoint(v) = &o.body {
            self.record_vote(op.id(), o.author, o.hlc.ms, v);
        }
        Admission::Fold
    }

    fn record_vote(&mut self, op: OpId, author: NodeId, hlc_ms: u64, v: &CheckpointVote) {
        let Some(ep) = self.epochs else { return };
        if !ep.vote_in_time(v.epoch, hlc_ms) || self.last.as_ref().is_some_and(|f| v.epoch <= f.epoch) {
            return;
        }
        let per = self.votes.entry(v.epoch).or_default();
        match per.get(&author) {
            Some(prev) if prev.frontier != v.frontier || prev.state != v.state => self.double_votes += 1,
            Some(_) => {}
            None => {
                per.insert(
                    author,
                    Vote { op, frontier: v.frontier, state: v.state, base: v.base, moved: v.moved.clone() },
                );
                self.vote_ops.insert(op, (v.epoch, author));
            }
        }
        while self.votes.len() > MAX_VOTED_EPOCHS {
            if let Some((_, per)) = self.votes.pop_first() {
                for v in per.values() {
                    self.vote_ops.remove(&v.op);
                }
            }
        }
    }

    /// Notes the checkpoint vote in an op stored behind a gap in its
    /// author's chain (see the `ahead` field); other ops are ignored.
    pub fn note_vote_ahead(&mut self, op: &VerifiedOp) {
        let o = op.op();
        let OpBody::Checkpoint(v) = &o.body else { return };
        let Some(ep) = self.epochs else { return };
        if !ep.vote_in_time(v.epoch, o.hlc.ms) || self.last.as_ref().is_some_and(|f| v.epoch <= f.epoch) {
            return;
        }
        self.ahead.entry(v.epoch).or_default().entry(o.author).or_insert((v.frontier, v.state));
        while self.ahead.len() > MAX_VOTED_EPOCHS {
            self.ahead.pop_first();
        }
    }

    /// An op left the fold (its author equivocated): its vote no longer counts.
    pub fn excluded(&mut self, id: &OpId) {
        self.dirty = true;
        if let Some((epoch, author)) = self.vote_ops.remove(id)
            && let Some(per) = self.votes.get_mut(&epoch)
        {
            per.remove(&author);
        }
    }

    /// The frontier at op time `end_ms`: each author's last folded op
    /// before it (the last final frontier for authors with none since).
    pub fn frontier_at(&self, fold: &Fold, end_ms: u64) -> Frontier {
        let mut f = self.last.as_ref().map(|l| l.frontier.clone()).unwrap_or_default();
        for k in fold.keys_between(MIN_KEY, bound_key(end_ms)) {
            let e = f.entry(k.author).or_insert(Head { seq: 0, id: OpId::ZERO, hlc: Hlc::ZERO });
            if k.seq > e.seq {
                *e = Head { seq: k.seq, id: k.id, hlc: k.hlc };
            }
        }
        f
    }

    /// Rule `checkpoint_vote`: the vote `me` should sign now, if it is a
    /// validator of the newest due epoch and has not voted for it (or a
    /// later one) yet.
    pub fn vote_due(&mut self, me: &NodeId, now_ms: u64, fold: &Fold, store: &OpStore) -> Option<CheckpointVote> {
        let ep = self.epochs?;
        let e = ep.due(now_ms)?;
        if self.last.as_ref().is_some_and(|f| f.epoch >= e)
            || self.declined == Some(e)
            || self.votes.range(e..).any(|(_, per)| per.contains_key(me))
        {
            return None;
        }
        // Cheap check first: most nodes are not validators.
        if !fold.state().compute_validators(now_ms).contains(me) {
            self.declined = Some(e);
            return None;
        }
        let end = ep.end_ms(e);
        let frontier = self.frontier_at(fold, end);
        let state = fold.state_at(bound_key(end), &BTreeSet::new(), store);
        if !state.compute_validators(end).contains(me) {
            self.declined = Some(e);
            return None;
        }
        let base = self.last.as_ref();
        let empty = Frontier::new();
        let fh = frontier_hash(&frontier, &store.forks());
        let bytes = snapshot::encode_state(&state);
        let digest = snapshot::digest(&bytes);
        // Kept for `plan`: when this vote's checkpoint becomes final, the
        // state is not computed and encoded a second time.
        self.signed = Some(Signed { epoch: e, frontier: fh, state: digest, value: state, bytes: Arc::new(bytes) });
        Some(CheckpointVote {
            epoch: e,
            base: base.map(|f| f.epoch),
            frontier: fh,
            state: digest,
            moved: moved(base.map_or(&empty, |f| &f.frontier), &frontier).unwrap_or_default(),
        })
    }

    /// Makes the newest epoch with a quorum of matching validator votes
    /// final, if this node holds exactly its ops (after refusing late ones)
    /// and computes the same state. Returns the epoch made final.
    pub fn try_finalize(&mut self, fold: &mut Fold, store: &mut OpStore) -> Option<u64> {
        if !std::mem::take(&mut self.dirty) {
            return None;
        }
        let ep = self.epochs?;
        let need = finality_quorum(0, self.floor);
        // Candidates newest first: (epoch, frontier hash, state hash, votes).
        let mut candidates = Vec::new();
        for (epoch, per) in self.votes.iter().rev() {
            let mut groups: BTreeMap<Digest, Vec<(NodeId, Vote)>> = BTreeMap::new();
            for (who, v) in per {
                groups.entry((v.frontier, v.state)).or_default().push((*who, v.clone()));
            }
            for ((fh, sh), votes) in groups.into_iter().rev() {
                candidates.push((*epoch, fh, sh, votes));
            }
        }
        let mut waiting = None;
        let mut found = None;
        for (epoch, fh, sh, votes) in candidates {
            if votes.len() < need {
                waiting.get_or_insert_with(|| {
                    format!("epoch {epoch}: {} matching validator signatures, at least {need} needed", votes.len())
                });
                continue;
            }
            match self.plan(ep, epoch, &fh, &sh, &votes, fold, store) {
                Ok(p) => {
                    found = Some(p);
                    break;
                }
                Err(why) => {
                    waiting.get_or_insert(why);
                }
            }
        }
        self.waiting = waiting;
        let p = found?;
        self.apply(p, fold, store);
        self.last.as_ref().map(|f| f.epoch)
    }

    #[allow(clippy::too_many_arguments)]
    fn plan(
        &mut self,
        ep: Epochs,
        epoch: u64,
        fh: &[u8; 32],
        sh: &[u8; 32],
        votes: &[(NodeId, Vote)],
        fold: &Fold,
        store: &OpStore,
    ) -> Result<Plan, String> {
        let end = ep.end_ms(epoch);
        let local = self.frontier_at(fold, end);
        let forks = store.forks();
        let base_epoch = self.last.as_ref().map(|f| f.epoch);
        let empty = Frontier::new();
        let base = self.last.as_ref().map_or(&empty, |f| &f.frontier);
        let target = if frontier_hash(&local, &forks) == *fh {
            local.clone()
        } else {
            votes
                .iter()
                .filter(|(_, v)| v.base == base_epoch && !v.moved.is_empty())
                .map(|(_, v)| apply_moved(base, &v.moved))
                .find(|t| frontier_hash(t, &forks) == *fh)
                .ok_or_else(|| {
                    format!("epoch {epoch}: the signed frontier differs from this node's ops (catching up)")
                })?
        };
        let mut late = BTreeSet::new();
        for (author, l) in &local {
            let (tseq, tid) = target.get(author).map_or((0, OpId::ZERO), |t| (t.seq, t.id));
            if l.seq < tseq {
                return Err(format!("epoch {epoch}: waiting for ops of {} (catching up)", author.short()));
            }
            if l.seq == tseq && l.id != tid {
                return Err(format!("epoch {epoch}: {} forked at seq {tseq}", author.short()));
            }
            let from = tseq.max(base.get(author).map_or(0, |b| b.seq)).saturating_add(1);
            for id in store.chain_ids(author, from, l.seq) {
                if let Some(op) = store.get(&id) {
                    late.insert(OrderKey::of(op));
                }
            }
        }
        if target.keys().any(|a| !local.contains_key(a)) {
            return Err(format!("epoch {epoch}: waiting for ops of authors this node has not seen (catching up)"));
        }
        let reuse = late.is_empty()
            && self.signed.as_ref().is_some_and(|c| c.epoch == epoch && c.frontier == *fh && c.state == *sh);
        let (state, bytes) = match self.signed.take().filter(|_| reuse) {
            Some(c) => (c.value, c.bytes),
            None => {
                let state = fold.state_at(bound_key(end), &late, store);
                let bytes = Arc::new(snapshot::encode_state(&state));
                (state, bytes)
            }
        };
        if snapshot::digest(&bytes) != *sh {
            self.state_mismatches += 1;
            return Err(format!("epoch {epoch}: signed state differs from this node's (not finalized)"));
        }
        let validators: BTreeSet<NodeId> = state.compute_validators(end).into_iter().collect();
        let signing: Vec<&(NodeId, Vote)> = votes.iter().filter(|(w, _)| validators.contains(w)).collect();
        let signers: Vec<NodeId> = signing.iter().map(|(w, _)| *w).collect();
        let certificate: Vec<OpId> = signing.iter().map(|(_, v)| v.op).collect();
        let quorum = finality_quorum(validators.len(), self.floor);
        if signers.len() < quorum {
            return Err(format!(
                "epoch {epoch}: {} of {} validators signed, {quorum} needed",
                signers.len(),
                validators.len()
            ));
        }
        Ok(Plan {
            epoch,
            end_ms: end,
            frontier: target,
            forks,
            frontier_hash: *fh,
            state_hash: *sh,
            state,
            snapshot: bytes,
            late,
            validators,
            signers,
            certificate,
        })
    }

    fn apply(&mut self, p: Plan, fold: &mut Fold, store: &mut OpStore) {
        for k in &p.late {
            fold.remove(*k);
            if self.late.insert(k.id) {
                self.late_refused = self.late_refused.saturating_add(1);
            }
            self.excluded(&k.id);
        }
        let bound = bound_key(p.end_ms);
        fold.finalize(bound, p.state);
        self.snapshot = Some(p.snapshot);
        store.set_final(p.frontier.iter().map(|(a, h)| (*a, (h.seq, h.id, h.hlc))));
        self.certificate = p.certificate.iter().filter_map(|id| store.get(id).cloned()).collect();
        self.votes = self.votes.split_off(&p.epoch.saturating_add(1));
        self.ahead = self.ahead.split_off(&p.epoch.saturating_add(1));
        self.vote_ops.retain(|_, (e, _)| *e > p.epoch);
        self.trusted = (!p.validators.is_empty()).then_some(p.validators);
        self.last = Some(Final {
            epoch: p.epoch,
            end_ms: p.end_ms,
            frontier: p.frontier,
            forks: p.forks,
            frontier_hash: p.frontier_hash,
            state_hash: p.state_hash,
            signers: p.signers,
        });
        self.waiting = None;
        self.dirty = true;
        fold.catch_up(store);
    }

    /// How many epochs the newest checkpoint that validators signed with
    /// enough matching votes is ahead of the last one final here. When it
    /// stays high, this node cannot get the ops it lacks (peers pruned
    /// them) or holds a state the others do not, and joins from a
    /// checkpoint instead (rule `catch_up_from_checkpoint`). It also fires
    /// while a node merely waits for signatures (one extra fetch, then the
    /// checkpoint is not newer and the fetch ends).
    ///
    /// Votes seen only in ops behind a gap count too (the `ahead` field):
    /// after a long absence they are all this node sees.
    ///
    /// With `trusted` (the validators of the last final state), only their
    /// votes count, a quorum of them (rule `catch_up_anchored`): votes of
    /// keys this node does not take as validators never start a fetch.
    pub fn lag(&self, trusted: Option<&BTreeSet<NodeId>>) -> u64 {
        let need = finality_quorum(trusted.map_or(0, |t| t.len()), self.floor);
        let epochs: BTreeSet<u64> = self.votes.keys().chain(self.ahead.keys()).copied().collect();
        let signed = epochs.iter().rev().find(|e| {
            // One digest per author: its folded vote, else one seen ahead.
            let mut by: BTreeMap<NodeId, Digest> = BTreeMap::new();
            for (who, d) in self.ahead.get(e).into_iter().flatten() {
                by.insert(*who, *d);
            }
            for (who, v) in self.votes.get(e).into_iter().flatten() {
                by.insert(*who, (v.frontier, v.state));
            }
            let mut n: BTreeMap<Digest, usize> = BTreeMap::new();
            by.iter().filter(|(who, _)| trusted.is_none_or(|t| t.contains(who))).any(|(_, d)| {
                let c = n.entry(*d).or_default();
                *c += 1;
                *c >= need
            })
        });
        let Some(newest) = signed else { return 0 };
        match &self.last {
            Some(f) => newest.saturating_sub(f.epoch),
            None => newest.saturating_sub(epochs.first().copied().unwrap_or(*newest)).saturating_add(1),
        }
    }

    /// Until when deadlines are settled: the end of the last final epoch
    /// while finality is live (the last final epoch at most
    /// [`LIVE_EPOCHS`] behind the one due at `now_ms`). `None` when
    /// finality is off or stalled: then deadlines act on time, unsettled.
    pub fn settled_until(&self, now_ms: u64) -> Option<u64> {
        let ep = self.epochs?;
        let f = self.last.as_ref()?;
        let due = ep.due(now_ms)?;
        (due.saturating_sub(f.epoch) <= LIVE_EPOCHS).then_some(f.end_ms)
    }

    pub fn view(&self, now_ms: u64) -> FinalityView {
        let Some(ep) = self.epochs else { return FinalityView::default() };
        FinalityView {
            enabled: true,
            epoch_seconds: ep.len_ms() / 1000,
            current_epoch: ep.due(now_ms),
            final_epoch: self.last.as_ref().map(|f| f.epoch),
            final_end_ms: self.last.as_ref().map(|f| f.end_ms),
            final_state_hash: self.last.as_ref().map(|f| hex::encode(f.state_hash)),
            final_signers: self.last.as_ref().map_or(0, |f| f.signers.len() as u64),
            late_ops: self.late_refused,
            double_votes: self.double_votes,
            state_mismatches: self.state_mismatches,
            waiting: self.waiting.clone(),
        }
    }
}
