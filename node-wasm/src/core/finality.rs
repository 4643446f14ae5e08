//! Finality: the pieces of the checkpoint protocol that need no op store.
//!
//! Time is cut into epochs of `rules.epoch_seconds` of op time (HLC ms).
//! Because the fold orders ops by HLC first, "every op with an HLC before
//! the end of epoch `e`" is a prefix of the total order, and its state is a
//! well-defined value every node can compute. One epoch after an epoch ends,
//! each validator signs that prefix (a `checkpoint` op: the frontier, i.e.
//! each author's last op in it, and the state hash after it). When a quorum
//! of the validators of that state signed the same frontier and state, the
//! epoch is final on every node that sees the votes:
//! - rule `final_is_final`: nothing at or below a final checkpoint is folded
//!   again; the state there becomes the fold's new origin;
//! - rule `late_op`: an op not in a final frontier whose HLC is before that
//!   checkpoint's end is refused as late (its author's chain goes on);
//! - rule `fork_after_final`: an equivocation found after finality cuts the
//!   author's ops only after its final head.
//!
//! The replica (`replica.rs`) applies these with its store and fold; this
//! module holds the epoch arithmetic, frontiers and the quorum.

use crate::core::hlc::Hlc;
use crate::core::op::{FrontierHead, MAX_FRONTIER_MOVED, OpId};
use crate::core::rules::Rules;
use crate::identity::NodeId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// One author's last op in a checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub id: OpId,
    pub hlc: Hlc,
}

/// Each author's last op in a checkpoint.
pub type Frontier = BTreeMap<NodeId, Head>;

/// Equivocating authors and their lowest forked seq.
pub type Forks = BTreeMap<NodeId, u64>;

/// The epoch clock of a network with finality (rule `epoch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Epochs {
    ms: u64,
}

impl Epochs {
    /// `None` when the network's rules turn finality off.
    pub fn of(rules: &Rules) -> Option<Epochs> {
        (rules.epoch_seconds > 0).then(|| Epochs { ms: rules.epoch_seconds.saturating_mul(1000) })
    }

    /// Epoch length in ms.
    pub fn len_ms(&self) -> u64 {
        self.ms
    }

    /// The end of epoch `e` (exclusive) in op-time ms: ops with an HLC
    /// below it belong to the checkpoint of `e`.
    pub fn end_ms(&self, e: u64) -> u64 {
        e.saturating_add(1).saturating_mul(self.ms)
    }

    /// Rule `checkpoint_vote` timing: the newest epoch a validator may sign
    /// at wall time `now_ms` — one that ended at least one epoch ago, so
    /// honest ops of that epoch had a whole epoch to reach everyone.
    pub fn due(&self, now_ms: u64) -> Option<u64> {
        (now_ms / self.ms).checked_sub(2)
    }

    /// A vote for `epoch` counts only if its op is dated at least one epoch
    /// after the epoch ended (no early votes, whatever a modified client
    /// signs).
    pub fn vote_in_time(&self, epoch: u64, vote_hlc_ms: u64) -> bool {
        vote_hlc_ms >= self.end_ms(epoch).saturating_add(self.ms)
    }
}

/// Rule `finality_quorum`: more than two thirds of `max(V, validator_floor)`
/// validators, so two conflicting final checkpoints need more than a third
/// of the validators to sign both, and a network with fewer validators than
/// the floor waits (ops go on; nothing becomes final).
pub fn finality_quorum(validators: usize, floor: u64) -> usize {
    let v = (validators as u64).max(floor);
    usize::try_from(v.saturating_mul(2) / 3 + 1).unwrap_or(usize::MAX)
}

/// The hash a checkpoint vote signs for a frontier and the equivocators
/// known with it (a node starting from the checkpoint must cut their ops).
pub fn frontier_hash(f: &Frontier, forks: &Forks) -> [u8; 32] {
    let mut h = Sha256::new().chain_update(b"synapse-ng/frontier/v1").chain_update((f.len() as u64).to_be_bytes());
    for (author, head) in f {
        h.update(author.0);
        h.update(head.seq.to_be_bytes());
        h.update(head.id.0);
        h.update(head.hlc.ms.to_be_bytes());
        h.update(head.hlc.logical.to_be_bytes());
    }
    h.update((forks.len() as u64).to_be_bytes());
    for (author, seq) in forks {
        h.update(author.0);
        h.update(seq.to_be_bytes());
    }
    h.finalize().into()
}

/// The heads of `next` that differ from `base`, or `None` when more than
/// [`MAX_FRONTIER_MOVED`] did.
pub fn moved(base: &Frontier, next: &Frontier) -> Option<Vec<FrontierHead>> {
    let out: Vec<FrontierHead> = next
        .iter()
        .filter(|(a, h)| base.get(a) != Some(h))
        .map(|(a, h)| FrontierHead { author: *a, seq: h.seq, id: h.id, hlc: h.hlc })
        .collect();
    (out.len() <= MAX_FRONTIER_MOVED).then_some(out)
}

/// `base` with the heads of `moved` applied.
pub fn apply_moved(base: &Frontier, moved: &[FrontierHead]) -> Frontier {
    let mut f = base.clone();
    for h in moved {
        f.insert(h.author, Head { seq: h.seq, id: h.id, hlc: h.hlc });
    }
    f
}

/// The last final checkpoint a replica holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Final {
    pub epoch: u64,
    /// End of the epoch (exclusive), op-time ms.
    pub end_ms: u64,
    pub frontier: Frontier,
    pub forks: Forks,
    pub frontier_hash: [u8; 32],
    /// SHA-256 of the state's snapshot bytes (`core/snapshot.rs`).
    pub state_hash: [u8; 32],
    /// The validators whose votes made it final.
    pub signers: Vec<NodeId>,
}

impl Final {
    /// True if `(author, seq)` is at or below the author's final head.
    pub fn covers(&self, author: &NodeId, seq: u64) -> bool {
        self.frontier.get(author).is_some_and(|h| seq <= h.seq)
    }

    /// The author's final head seq (0 when none).
    pub fn head_seq(&self, author: &NodeId) -> u64 {
        self.frontier.get(author).map_or(0, |h| h.seq)
    }
}

/// Finality as the snapshot shows it (`status().finality`, Network view).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalityView {
    /// False when the network's rules turn finality off.
    pub enabled: bool,
    pub epoch_seconds: u64,
    /// The epoch validators sign now (null before two epochs have passed).
    pub current_epoch: Option<u64>,
    /// The last final epoch, its end (op-time ms) and its signers.
    pub final_epoch: Option<u64>,
    pub final_end_ms: Option<u64>,
    pub final_state_hash: Option<String>,
    pub final_signers: u64,
    /// Ops refused as late (rule `late_op`) since this replica started: a
    /// count, kept when the ops themselves are pruned.
    pub late_ops: u64,
    /// Validators that signed two different checkpoints for one epoch.
    pub double_votes: u64,
    /// Quorum-signed checkpoints whose state this node computes otherwise
    /// (a determinism bug or a dishonest quorum; never finalized here).
    pub state_mismatches: u64,
    /// Why the newest voted epoch is not final here yet, as a sentence.
    pub waiting: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finality_quorum_is_more_than_two_thirds_of_at_least_the_floor() {
        assert_eq!(finality_quorum(1, 1), 1);
        assert_eq!(finality_quorum(3, 1), 3);
        assert_eq!(finality_quorum(4, 1), 3);
        assert_eq!(finality_quorum(7, 4), 5);
        // Two validators on a network whose floor is 4 can never finalize.
        assert_eq!(finality_quorum(2, 4), 3);
        assert_eq!(finality_quorum(0, 1), 1);
    }

    #[test]
    fn epochs_vote_one_epoch_after_the_end() {
        let e = Epochs::of(&Rules { epoch_seconds: 10, ..Rules::open() }).unwrap();
        assert_eq!(e.end_ms(0), 10_000);
        assert_eq!(e.due(19_999), None);
        assert_eq!(e.due(20_000), Some(0));
        assert!(!e.vote_in_time(0, 19_999));
        assert!(e.vote_in_time(0, 20_000));
        assert!(Epochs::of(&Rules::open()).is_none());
    }

    #[test]
    fn moved_lists_only_changed_heads_and_applies_back() {
        let a = NodeId([1; 32]);
        let b = NodeId([2; 32]);
        let head = |s: u8| Head { seq: u64::from(s), id: OpId([s; 32]), hlc: Hlc::new(u64::from(s), 0) };
        let base: Frontier = [(a, head(1))].into();
        let next: Frontier = [(a, head(1)), (b, head(3))].into();
        let m = moved(&base, &next).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(apply_moved(&base, &m), next);
        let none = Forks::new();
        assert_ne!(frontier_hash(&base, &none), frontier_hash(&next, &none));
        assert_ne!(frontier_hash(&next, &none), frontier_hash(&next, &[(a, 1)].into()));
    }
}
