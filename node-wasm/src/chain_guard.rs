//! The own-chain guard: when this node may sign its next op.
//!
//! Signing two different ops at one sequence number is equivocation, and
//! the network answers it by ignoring every op of the author from that seq
//! on, for good. An honest node must therefore never sign at a seq that any
//! other node may already hold an op of its at. The runtime keeps three
//! promises (see `docs/PROTOCOL.md`, "Crash consistency"), and this module
//! holds the pure rules that decide, from what is stored and what peers
//! say, whether signing is safe now. It reads no clock: time comes in.
//!
//! Rules, by name:
//!
//! - **durable_before_visible** (runtime): an own op is committed to
//!   IndexedDB, in the same transaction as the [`OwnMark`] naming it, before
//!   it is published or its promise resolves. So the network never holds an
//!   own op that the local store lacks; a tab closed before the commit loses
//!   an op that nobody saw, and signing that seq again is safe.
//! - **one_writer_per_profile** (runtime): the save transaction first reads
//!   the mark; if another tab of the same profile already wrote this seq,
//!   nothing is written or published and this tab stops signing
//!   ([`GuardState::Conflict`]) until it is reloaded.
//! - **ready_when_mark_covered**: at start, the node may sign at once when
//!   its stored chain reaches its mark and any imported chain head (its
//!   floor). The mark is written with every own op, so a covered mark means
//!   every op it ever published is here.
//! - **wait_for_floor**: when the stored chain is shorter than the mark or an
//!   imported identity's head, ops of this node exist elsewhere: it waits,
//!   with no deadline, until they arrive from peers.
//! - **legacy_wait**: own ops stored but no mark (written by an older
//!   version, which published before saving): the node waits for one
//!   peer's view of its chain, at most [`LEGACY_WAIT_MS`]; a node with no
//!   peer by then was alone and proceeds.
//! - **peer_ahead**: a peer that claims more of this node's ops than it
//!   holds (the same identity running elsewhere) makes it wait while those
//!   ops are being fetched. A claim that the fetch does not back with the
//!   ops themselves (signed by this node, so they cannot be made up) is
//!   dropped when the fetch ends: a lying peer delays signing by one fetch
//!   at most, and its broken promise costs it its score.
//! - **self_fork**: once this node's own ops are proven to fork, it never
//!   signs again with this identity and says so.

use crate::core::op::OpId;
use crate::identity::NodeId;
use serde::Serialize;

/// How long a node whose stored chain has no mark (an older version's
/// data) waits for a peer's view before it assumes it was alone.
pub const LEGACY_WAIT_MS: u64 = 10_000;

/// The last own op this node committed: stored with it, atomically.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnMark {
    pub seq: u64,
    pub op: OpId,
}

/// The stored form of a mark: `"{node hex}:{seq}:{op hex}"`.
pub fn encode_mark(node: NodeId, mark: OwnMark) -> String {
    format!("{}:{}:{}", node.to_text(), mark.seq, mark.op.to_text())
}

/// Parses a stored mark; `None` when it is malformed or belongs to another
/// identity (a profile whose identity was replaced).
pub fn parse_mark(text: &str, node: NodeId) -> Option<OwnMark> {
    let mut parts = text.split(':');
    let (id, seq, op) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || NodeId::parse(id).ok()? != node {
        return None;
    }
    let seq = seq.parse::<u64>().ok().filter(|s| *s > 0)?;
    let op = OpId::parse(op)?;
    Some(OwnMark { seq, op })
}

/// What the guard waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "for", rename_all = "snake_case")]
pub enum Need {
    /// This node's ops up to `seq` exist elsewhere; they must arrive first.
    Ops { seq: u64 },
    /// One peer's view of this node's chain (stored ops, no mark).
    PeerView,
    /// Ops up to `seq` that a peer claims to hold and that are being fetched.
    PeerOps { seq: u64 },
}

/// Where the guard stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum GuardState {
    /// Signing is safe.
    Ready,
    /// Signing waits for `need`; after `deadline_ms` (if any) the node
    /// proceeds as if alone.
    Waiting { need: Need, deadline_ms: Option<u64> },
    /// Another tab of this profile signed `seq` first.
    Conflict { seq: u64 },
    /// This identity signed two ops at `seq`: it must not sign again.
    Forked { seq: u64 },
}

/// What a peer said about this node's chain, with what we hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerView {
    /// The peer's highest contiguous seq of our ops (0: none).
    pub claims: u64,
    /// Our own highest contiguous seq as the router holds it.
    pub holds: u64,
    /// Whether a catch-up request for our ops is still unanswered.
    pub awaiting: bool,
}

/// The guard. See the module docs for its rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainGuard {
    state: GuardState,
}

impl ChainGuard {
    /// The guard of a node starting with `own_head` (highest contiguous own
    /// seq in its store), its stored `mark`, the `import_floor` of an
    /// imported identity (0: none), and whether any own op is stored.
    pub fn at_start(mark: Option<OwnMark>, import_floor: u64, own_head: u64, now_ms: u64) -> ChainGuard {
        let floor = mark.map_or(0, |m| m.seq).max(import_floor);
        let state = if own_head < floor {
            // Rule `wait_for_floor`.
            GuardState::Waiting { need: Need::Ops { seq: floor }, deadline_ms: None }
        } else if mark.is_none() && own_head > import_floor {
            // Rule `legacy_wait`.
            GuardState::Waiting { need: Need::PeerView, deadline_ms: Some(now_ms.saturating_add(LEGACY_WAIT_MS)) }
        } else {
            // Rule `ready_when_mark_covered`.
            GuardState::Ready
        };
        ChainGuard { state }
    }

    /// A guard that is ready (a node with nothing stored).
    pub fn ready() -> ChainGuard {
        ChainGuard { state: GuardState::Ready }
    }

    pub fn state(&self) -> GuardState {
        self.state
    }

    /// The own chain's contiguous head here is now `own_head`.
    pub fn own_head(&mut self, own_head: u64) {
        if let GuardState::Waiting { need: Need::Ops { seq } | Need::PeerOps { seq }, .. } = self.state
            && own_head >= seq
        {
            self.state = GuardState::Ready;
        }
    }

    /// A peer told us where it stands on our chain.
    pub fn peer_view(&mut self, v: PeerView) {
        match self.state {
            GuardState::Conflict { .. } | GuardState::Forked { .. } => {}
            GuardState::Waiting { need: Need::Ops { .. }, .. } => {}
            // Rule `peer_ahead`: wait while the claimed ops are fetched.
            _ if v.claims > v.holds && v.awaiting => {
                let seq = match self.state {
                    GuardState::Waiting { need: Need::PeerOps { seq }, .. } => seq.max(v.claims),
                    _ => v.claims,
                };
                self.state = GuardState::Waiting { need: Need::PeerOps { seq }, deadline_ms: None };
            }
            // The fetch is over: what arrived is all that was backed.
            GuardState::Waiting { need: Need::PeerOps { .. }, .. } if !v.awaiting => self.state = GuardState::Ready,
            GuardState::Waiting { need: Need::PeerView, .. } if !v.awaiting => self.state = GuardState::Ready,
            _ => {}
        }
    }

    /// Time passes: a `legacy_wait` past its deadline ends.
    pub fn tick(&mut self, now_ms: u64) {
        if let GuardState::Waiting { deadline_ms: Some(d), .. } = self.state
            && now_ms >= d
        {
            self.state = GuardState::Ready;
        }
    }

    /// Rule `one_writer_per_profile`: another tab wrote `seq` first.
    pub fn conflict(&mut self, seq: u64) {
        if !matches!(self.state, GuardState::Forked { .. }) {
            self.state = GuardState::Conflict { seq };
        }
    }

    /// Rule `self_fork`: this identity's ops fork at `seq`.
    pub fn forked(&mut self, seq: u64) {
        self.state = GuardState::Forked { seq };
    }

    /// Whether signing is allowed now; if not, a sentence for the user.
    pub fn check(&self) -> Result<(), String> {
        match self.state {
            GuardState::Ready => Ok(()),
            GuardState::Waiting { need: Need::Ops { seq }, .. } => Err(format!(
                "waiting for this node's own ops up to #{seq} to arrive from peers before signing (they exist \
                 elsewhere; signing now would reuse a sequence number, which the network treats as equivocation)"
            )),
            GuardState::Waiting { need: Need::PeerOps { seq }, .. } => Err(format!(
                "a peer holds this node's own ops up to #{seq}, more than this tab has (the same identity ran \
                 elsewhere); fetching them before signing, so as not to reuse a sequence number"
            )),
            GuardState::Waiting { need: Need::PeerView, .. } => Err(
                "waiting for a peer to confirm this node's own op chain before signing (its stored ops were written \
                 by an older version; a node that meets no peer proceeds after 10 s)"
                    .to_string(),
            ),
            GuardState::Conflict { seq } => Err(format!(
                "this profile is open in another tab, which signed op #{seq} first; this tab cannot sign any more. \
                 Close it, or reload it to continue from the other tab's ops"
            )),
            GuardState::Forked { seq } => Err(format!(
                "this node's identity has signed two different ops at #{seq} (it ran in two places at once, or lost \
                 ops it had published); the network ignores its ops from #{seq} on, so it cannot sign any more. \
                 Start a new identity"
            )),
        }
    }

    /// One sentence for the UI about what the guard waits for, if anything.
    pub fn sentence(&self) -> Option<String> {
        self.check().err()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(seq: u64) -> Option<OwnMark> {
        Some(OwnMark { seq, op: OpId([seq as u8; 32]) })
    }

    #[test]
    fn marks_round_trip_and_belong_to_one_identity() {
        let me = NodeId([1; 32]);
        let m = OwnMark { seq: 7, op: OpId([9; 32]) };
        let text = encode_mark(me, m);
        assert_eq!(parse_mark(&text, me), Some(m));
        assert_eq!(parse_mark(&text, NodeId([2; 32])), None, "another identity's mark is ignored");
        for bad in ["", "x", &format!("{}:0:{}", me.to_text(), m.op.to_text()), &format!("{text}:extra")] {
            assert_eq!(parse_mark(bad, me), None, "{bad:?}");
        }
    }

    #[test]
    fn ready_when_mark_covered() {
        assert_eq!(ChainGuard::at_start(None, 0, 0, 0).state(), GuardState::Ready, "a fresh node");
        assert_eq!(ChainGuard::at_start(mark(5), 0, 5, 0).state(), GuardState::Ready);
        // A tab closed after signing #6 but before committing it: #6 was
        // never published, so #6 may be signed again.
        assert_eq!(ChainGuard::at_start(mark(5), 0, 5, 0).check(), Ok(()));
    }

    #[test]
    fn wait_for_floor() {
        let mut g = ChainGuard::at_start(mark(5), 0, 3, 0);
        assert_eq!(g.state(), GuardState::Waiting { need: Need::Ops { seq: 5 }, deadline_ms: None });
        assert!(g.check().unwrap_err().contains("#5"));
        g.tick(u64::MAX);
        assert!(g.check().is_err(), "no deadline: the ops exist elsewhere");
        g.own_head(4);
        assert!(g.check().is_err());
        g.own_head(5);
        assert_eq!(g.check(), Ok(()));
        // An imported identity's head works the same way.
        let g = ChainGuard::at_start(None, 9, 2, 0);
        assert_eq!(g.state(), GuardState::Waiting { need: Need::Ops { seq: 9 }, deadline_ms: None });
    }

    #[test]
    fn legacy_wait() {
        let mut g = ChainGuard::at_start(None, 0, 4, 1_000);
        assert!(matches!(g.state(), GuardState::Waiting { need: Need::PeerView, .. }));
        g.peer_view(PeerView { claims: 4, holds: 4, awaiting: true });
        assert!(g.check().is_err(), "still fetching");
        g.peer_view(PeerView { claims: 4, holds: 4, awaiting: false });
        assert_eq!(g.check(), Ok(()));
        // Alone: the deadline ends the wait.
        let mut g = ChainGuard::at_start(None, 0, 4, 1_000);
        g.tick(1_000 + LEGACY_WAIT_MS - 1);
        assert!(g.check().is_err());
        g.tick(1_000 + LEGACY_WAIT_MS);
        assert_eq!(g.check(), Ok(()));
    }

    #[test]
    fn peer_ahead() {
        let mut g = ChainGuard::at_start(mark(3), 0, 3, 0);
        g.peer_view(PeerView { claims: 6, holds: 3, awaiting: true });
        assert_eq!(g.state(), GuardState::Waiting { need: Need::PeerOps { seq: 6 }, deadline_ms: None });
        g.own_head(6);
        assert_eq!(g.check(), Ok(()));
        // A peer that holds less says nothing about us.
        g.peer_view(PeerView { claims: 1, holds: 6, awaiting: false });
        assert_eq!(g.check(), Ok(()));
    }

    /// A peer that claims ops of ours it cannot produce delays signing by
    /// one fetch, never for good.
    #[test]
    fn a_lying_peer_cannot_stop_a_node_from_signing() {
        let mut g = ChainGuard::at_start(mark(3), 0, 3, 0);
        g.peer_view(PeerView { claims: 1_000_000, holds: 3, awaiting: true });
        assert!(g.check().is_err(), "waits while fetching");
        g.peer_view(PeerView { claims: 1_000_000, holds: 3, awaiting: false });
        assert_eq!(g.check(), Ok(()), "nothing arrived: the claim is dropped");
        g.peer_view(PeerView { claims: 1_000_000, holds: 3, awaiting: false });
        assert_eq!(g.check(), Ok(()), "a stale claim does not block again");
    }

    #[test]
    fn conflict_and_fork_are_final() {
        let mut g = ChainGuard::ready();
        g.conflict(4);
        g.peer_view(PeerView { claims: 9, holds: 3, awaiting: false });
        g.own_head(100);
        g.tick(u64::MAX);
        assert!(g.check().unwrap_err().contains("another tab"));
        g.forked(2);
        g.conflict(5);
        assert!(g.check().unwrap_err().contains("two different ops at #2"));
    }
}
