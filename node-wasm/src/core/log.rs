//! The op store: every verified op we hold, organised into per-author chains.
//!
//! An op becomes *ready* (eligible for the fold) only when its author's whole
//! chain up to it is present: `seq 1` has a zero `prev`, and each later op's
//! `prev` is the id of the author's ready op at `seq - 1` and its HLC is
//! strictly greater. Ops that arrive before their predecessors wait as
//! *pending*, so a gap in a chain is visible and nothing is folded out of
//! causal order within an author.
//!
//! **Equivocation.** Two different ops with the same `(author, seq)` are
//! self-proving evidence of a misbehaving author (both carry its signature).
//! Both are kept. The cost: from the lowest equivocated seq onwards none of
//! the author's ops have any effect (they are *excluded* from the fold, and
//! already-folded ones are taken back out, which re-folds); its earlier ops
//! stand. The author is listed in `equivocators`. All of this depends only on
//! the set of ops held, never on arrival order.
//!
//! An op whose HLC does not exceed its predecessor's is *invalid* (an honest
//! clock never does this); the author's chain stops there.

use crate::core::hlc::Hlc;
use crate::core::op::{OpId, VerifiedOp};
use crate::identity::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Where an op stands in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ChainStatus {
    /// Its chain is complete: the fold includes it.
    Ready,
    /// Waiting for an earlier op of its author.
    Pending,
    /// Its author equivocated at `seq` (at or before this op).
    Excluded { seq: u64 },
    /// Its HLC does not exceed its predecessor's.
    InvalidChain,
}

/// Evidence that an author signed several ops at one seq.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Equivocation {
    pub author: NodeId,
    /// The lowest seq with more than one op.
    pub seq: u64,
    /// The ops held at that seq, sorted (at least two; which ones a replica
    /// holds may differ, so only `author` and `seq` enter the state hash).
    pub ops: Vec<OpId>,
}

/// What inserting an op changed for the fold.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct InsertReport {
    /// Ops that just became ready, in chain order.
    pub ready: Vec<OpId>,
    /// Ready ops that must leave the fold (a new equivocation).
    pub excluded: Vec<OpId>,
}

struct Entry {
    op: VerifiedOp,
    status: ChainStatus,
}

/// All verified ops, by id and by `(author, seq)`.
#[derive(Default)]
pub struct OpStore {
    ops: BTreeMap<OpId, Entry>,
    slots: BTreeMap<(NodeId, u64), Vec<OpId>>,
    /// Last ready op per author: `(seq, id, hlc)`.
    heads: BTreeMap<NodeId, (u64, OpId, Hlc)>,
    /// Lowest equivocated seq per author.
    forks: BTreeMap<NodeId, u64>,
    /// Each author's head in the last final checkpoint `(seq, id, hlc)`:
    /// ops at or below it are final (rule `fork_after_final`).
    final_heads: BTreeMap<NodeId, (u64, OpId, Hlc)>,
    /// The final heads before the last ones: pruning stops here (rule
    /// `prune_margin`).
    prune_heads: BTreeMap<NodeId, (u64, OpId, Hlc)>,
}

impl OpStore {
    pub fn new() -> OpStore {
        OpStore::default()
    }

    pub fn contains(&self, id: &OpId) -> bool {
        self.ops.contains_key(id)
    }

    pub fn get(&self, id: &OpId) -> Option<&VerifiedOp> {
        self.ops.get(id).map(|e| &e.op)
    }

    pub fn status(&self, id: &OpId) -> Option<ChainStatus> {
        self.ops.get(id).map(|e| e.status)
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// All ops, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&OpId, &VerifiedOp, ChainStatus)> {
        self.ops.iter().map(|(id, e)| (id, &e.op, e.status))
    }

    /// The last ready `(seq, id)` of each author: a version vector for sync.
    pub fn heads(&self) -> BTreeMap<NodeId, (u64, OpId)> {
        self.heads.iter().map(|(n, (s, id, _))| (*n, (*s, *id))).collect()
    }

    /// The reply to a version-vector catch-up request. `have` is the peer's
    /// ready head per author (`heads()`; authors missing count as seq 0).
    /// For each author we send:
    /// - our ops at the peer's head seq if the peer's head op is not ours:
    ///   a hidden fork, and these are the evidence it lacks;
    /// - the evidence of a fork we know at or below the peer's head seq;
    /// - the ops we hold at consecutive seqs just above the peer's head,
    ///   stopping at our first gap (ops beyond a gap we cannot fill would not
    ///   help the peer, and resending them could starve other authors).
    ///
    /// At most `limit` ops, in `(author, seq)` order.
    pub fn missing_from(&self, have: &BTreeMap<NodeId, (u64, OpId)>, limit: usize) -> Vec<&VerifiedOp> {
        let mut out = Vec::new();
        let authors: BTreeSet<NodeId> = self.slots.keys().map(|(a, _)| *a).collect();
        for author in authors {
            if out.len() >= limit {
                break;
            }
            let (h, hid) = have.get(&author).copied().unwrap_or((0, OpId::ZERO));
            if h > 0
                && let Some(ids) = self.slots.get(&(author, h))
                && ids.iter().any(|id| *id != hid)
            {
                self.push_ids(&mut out, ids);
            }
            if let Some(f) = self.forks.get(&author).copied()
                && h > f
                && let Some(ids) = self.slots.get(&(author, f))
            {
                self.push_ids(&mut out, ids);
            }
            let mut s = h.saturating_add(1);
            while out.len() < limit && s < u64::MAX {
                let Some(ids) = self.slots.get(&(author, s)) else {
                    break;
                };
                self.push_ids(&mut out, ids);
                s += 1;
            }
        }
        out.truncate(limit);
        out
    }

    fn push_ids<'a>(&'a self, out: &mut Vec<&'a VerifiedOp>, ids: &[OpId]) {
        for id in ids {
            if let Some(e) = self.ops.get(id) {
                out.push(&e.op);
            }
        }
    }

    /// The highest seq held for `author` in any state (its ready head's
    /// when its ops were pruned).
    pub fn max_seq(&self, author: &NodeId) -> u64 {
        let held = self.slots.range((*author, 0)..=(*author, u64::MAX)).next_back().map_or(0, |((_, s), _)| *s);
        held.max(self.heads.get(author).map_or(0, |h| h.0))
    }

    /// The ready head of `author` as `(seq, id, hlc)`.
    pub fn head(&self, author: &NodeId) -> Option<(u64, OpId, Hlc)> {
        self.heads.get(author).copied()
    }

    /// Every equivocating author with its evidence.
    pub fn equivocations(&self) -> Vec<Equivocation> {
        self.forks
            .iter()
            .map(|(author, seq)| {
                let mut ops = self.slots.get(&(*author, *seq)).cloned().unwrap_or_default();
                ops.sort();
                Equivocation { author: *author, seq: *seq, ops }
            })
            .collect()
    }

    /// Every equivocating author and its lowest forked seq.
    pub fn forks(&self) -> BTreeMap<NodeId, u64> {
        self.forks.clone()
    }

    pub fn is_equivocator(&self, author: &NodeId) -> bool {
        self.forks.contains_key(author)
    }

    /// Rule `fork_after_final`: the first seq of `author` excluded by its
    /// equivocation: the fork seq, but never at or below the author's head
    /// in the last final checkpoint (what is final stays).
    fn cut(&self, author: &NodeId) -> Option<u64> {
        let f = *self.forks.get(author)?;
        Some(f.max(self.final_seq(author).saturating_add(1)))
    }

    /// The author's head seq in the last final checkpoint (0: none).
    pub fn final_seq(&self, author: &NodeId) -> u64 {
        self.final_heads.get(author).map_or(0, |h| h.0)
    }

    /// Records each author's final head `(seq, id, hlc)` (rule
    /// `fork_after_final`).
    pub fn set_final(&mut self, heads: impl IntoIterator<Item = (NodeId, (u64, OpId, Hlc))>) {
        let heads: BTreeMap<_, _> = heads.into_iter().collect();
        if heads != self.final_heads {
            self.prune_heads = std::mem::replace(&mut self.final_heads, heads);
        }
    }

    /// Rule `prune_margin`: each author's head in the final checkpoint
    /// before the last, `(seq, id)`: what pruning may drop, and the
    /// router's floors.
    pub fn prune_heads(&self) -> impl Iterator<Item = (NodeId, u64, OpId)> + '_ {
        self.prune_heads.iter().map(|(a, h)| (*a, h.0, h.1))
    }

    /// A store that starts at a final checkpoint (reload, snapshot join):
    /// each author's chain continues from its final head, and the known
    /// equivocators' later ops are cut.
    pub fn restore(heads: BTreeMap<NodeId, (u64, OpId, Hlc)>, forks: BTreeMap<NodeId, u64>) -> OpStore {
        OpStore { heads: heads.clone(), final_heads: heads.clone(), prune_heads: heads, forks, ..OpStore::default() }
    }

    /// Drops every op of an author's ready chain at or below its head in
    /// the final checkpoint before the last (rule `prune_margin`), and the
    /// ops of an equivocator past its fork (they can never have an
    /// effect): what a final checkpoint covers lives on in its state.
    /// Returns the ids dropped. Fork evidence is kept.
    ///
    /// Why one checkpoint of margin: a joining node fetches the last final
    /// checkpoint, which takes a few seconds for a large state; if the
    /// next one becomes final meanwhile and the ops between the two were
    /// already dropped everywhere, the joiner could never fold on from the
    /// one it fetched and had to download a whole checkpoint again.
    pub fn prune_final(&mut self) -> Vec<OpId> {
        let mut gone = Vec::new();
        for (author, (fseq, _, _)) in &self.prune_heads {
            let fork = self.forks.get(author).copied();
            let keys: Vec<(NodeId, u64)> = self.slots.range((*author, 1)..=(*author, *fseq)).map(|(k, _)| *k).collect();
            for k in keys {
                if Some(k.1) == fork {
                    continue;
                }
                if let Some(ids) = self.slots.remove(&k) {
                    for id in ids {
                        self.ops.remove(&id);
                        gone.push(id);
                    }
                }
            }
        }
        for (author, f) in &self.forks {
            let keys: Vec<(NodeId, u64)> =
                self.slots.range((*author, f.saturating_add(1))..=(*author, u64::MAX)).map(|(k, _)| *k).collect();
            for k in keys {
                if let Some(ids) = self.slots.remove(&k) {
                    for id in ids {
                        self.ops.remove(&id);
                        gone.push(id);
                    }
                }
            }
        }
        gone
    }

    /// The ids of `author`'s ready ops at seqs `from..=to` (the chain, in
    /// seq order).
    pub fn chain_ids(&self, author: &NodeId, from: u64, to: u64) -> Vec<OpId> {
        if from > to {
            return Vec::new();
        }
        self.slots
            .range((*author, from)..=(*author, to))
            .flat_map(|(_, ids)| ids.iter())
            .filter(|id| self.ops.get(id).is_some_and(|e| e.status == ChainStatus::Ready))
            .copied()
            .collect()
    }

    /// Stores a verified op. Returns `None` for a duplicate, and for an op of
    /// a known equivocator that adds nothing: beyond its fork seq, or a third
    /// op at it. Such ops could never have an effect and the evidence is
    /// already held, so one misbehaving author cannot fill our memory.
    pub fn insert(&mut self, op: VerifiedOp) -> Option<InsertReport> {
        let id = op.id();
        if self.ops.contains_key(&id) {
            return None;
        }
        let author = op.op().author;
        let seq = op.op().seq;
        // Rule `fork_after_final`: at or below the author's final head
        // nothing can change (a twin there is neither kept nor acted upon,
        // so a node that pruned those ops behaves as one that did not).
        if seq <= self.final_seq(&author) {
            return None;
        }
        if let Some(f) = self.forks.get(&author).copied() {
            let at_fork = self.slots.get(&(author, f)).map_or(0, Vec::len);
            if seq > f || (seq == f && at_fork >= 2) {
                return None;
            }
        }
        self.ops.insert(id, Entry { op, status: ChainStatus::Pending });
        let slot = self.slots.entry((author, seq)).or_default();
        slot.push(id);
        let mut report = InsertReport::default();
        if slot.len() > 1 && self.forks.get(&author).is_none_or(|f| seq < *f) {
            self.fork(author, seq, &mut report);
            // A second op at a seq below the cut (a final one) is evidence
            // only: it never joins the chain.
            if let Some(e) = self.ops.get_mut(&id)
                && e.status == ChainStatus::Pending
            {
                e.status = ChainStatus::Excluded { seq };
            }
            return Some(report);
        }
        if let Some(f) = self.forks.get(&author).copied()
            && seq >= f
        {
            if let Some(e) = self.ops.get_mut(&id) {
                e.status = ChainStatus::Excluded { seq: f };
            }
            return Some(report);
        }
        self.extend(author, &mut report);
        Some(report)
    }

    /// Takes back `id`, the op just stored as `author`'s new head (rule
    /// `refused_action_signs_nothing`): the head returns to `prev`, what
    /// it was before. Returns false, changing nothing, unless `id` is the
    /// head and alone at its seq.
    pub fn unstore_head(&mut self, author: NodeId, id: OpId, prev: Option<(u64, OpId, Hlc)>) -> bool {
        let Some(&(seq, head, _)) = self.heads.get(&author) else { return false };
        if head != id || self.slots.get(&(author, seq)).map(Vec::as_slice) != Some(&[id][..]) {
            return false;
        }
        self.slots.remove(&(author, seq));
        self.ops.remove(&id);
        match prev {
            Some(p) => self.heads.insert(author, p),
            None => self.heads.remove(&author),
        };
        true
    }

    /// Records an equivocation at `seq` and excludes the author's ops from
    /// there on, truncating its ready chain.
    fn fork(&mut self, author: NodeId, seq: u64, report: &mut InsertReport) {
        self.forks.insert(author, seq);
        let cut = self.cut(&author).unwrap_or(seq);
        let ids: Vec<OpId> =
            self.slots.range((author, cut)..=(author, u64::MAX)).flat_map(|(_, ids)| ids.iter().copied()).collect();
        for id in ids {
            if let Some(e) = self.ops.get_mut(&id) {
                if e.status == ChainStatus::Ready {
                    report.excluded.push(id);
                }
                e.status = ChainStatus::Excluded { seq };
            }
        }
        if self.heads.get(&author).is_some_and(|h| h.0 >= cut) {
            let below = cut - 1;
            let head = self
                .slots
                .get(&(author, below))
                .and_then(|ids| ids.first())
                .and_then(|id| self.ops.get(id).map(|e| (below, *id, e.op.op().hlc)))
                .or_else(|| self.final_heads.get(&author).copied().filter(|h| h.0 == below));
            match head {
                Some(h) if below > 0 => {
                    self.heads.insert(author, h);
                }
                _ => {
                    self.heads.remove(&author);
                }
            }
        }
    }

    /// Advances the author's ready chain as far as the held ops allow.
    fn extend(&mut self, author: NodeId, report: &mut InsertReport) {
        loop {
            let (hseq, hid, hhlc) = self.heads.get(&author).copied().unwrap_or((0, OpId::ZERO, Hlc::ZERO));
            let next = hseq + 1;
            if self.cut(&author).is_some_and(|c| c <= next) {
                return;
            }
            let Some(&[nid]) = self.slots.get(&(author, next)).map(Vec::as_slice) else {
                return;
            };
            let Some(e) = self.ops.get_mut(&nid) else {
                return;
            };
            if e.status != ChainStatus::Pending || e.op.op().prev != hid {
                return;
            }
            let hlc = e.op.op().hlc;
            if hseq > 0 && hlc <= hhlc {
                e.status = ChainStatus::InvalidChain;
                return;
            }
            e.status = ChainStatus::Ready;
            self.heads.insert(author, (next, nid, hlc));
            report.ready.push(nid);
        }
    }
}
