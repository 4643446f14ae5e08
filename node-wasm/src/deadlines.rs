//! The deadline keeper: which ops passed deadlines call for, and when this
//! node should publish them. Pure policy, tested natively; the browser's
//! ledger calls [`DeadlineKeeper::due`] once a second with the wall clock.
//!
//! Deadlines are decided by ops, never by each node's clock: an auction
//! closes when an `AuctionClose` op is folded, not when a clock passes the
//! deadline. Any node may publish such an op; the fold refuses it before the
//! deadline (by the op's HLC time) and refuses a second one. So:
//! - rule `rank_by_distance`: the nodes the state knows (its accounts) are
//!   ranked by SHA-256(node id ‖ item); the node of rank r waits r seconds
//!   past the deadline (at most [`MAX_WAIT_SECS`]; a node without an
//!   account yet waits that long). One node acts first
//!   whatever the size of the network, and if it is gone the next one acts a
//!   second later. (A fixed 0-9 s stagger drew ~6 ops per auction at 1,000
//!   nodes in the whole-node simulator, and would draw more as it grows.)
//! - rule `retry_each_item_every_30_s`: an item is tried at most every 30 s
//!   (the first op may still be on its way, or have been refused);
//! - rule `deadline_after_finality`: while finality is live, an item is due
//!   only once a final checkpoint covers its deadline (`settled_until` is
//!   past it): then no op dated before the deadline can still arrive and
//!   change the outcome the close op computes. While finality is off or
//!   stalled (`settled_until` is `None`), deadlines act on time.
//! - rule `publish_missing_key`: this node's X25519 key is published while
//!   the state lacks it (tool secrets are sealed to it), at most every 30 s.
//! - rule `evidence_by_rank`: equivocation evidence (`core/immune.rs`) is
//!   published by the node ranked first for the offender, the next one a
//!   second later, and so on, counted from when this node found the fork:
//!   one evidence op per equivocation, not one per node.

use crate::core::governance::ProposalStatus;
use crate::core::op::OpBody;
use crate::core::state::{AuctionStatus, State, TaskStatus};
use crate::core::tools::ToolStatus;
use crate::identity::NodeId;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Minimum time between two tries of one item.
pub const RETRY_MS: u64 = 30_000;
/// The longest a node waits past a deadline (its rank is capped here).
pub const MAX_WAIT_SECS: u64 = 30;
/// Items remembered at most (old tries are forgotten first); bounds memory
/// whatever the state holds.
const MAX_TRIES: usize = 4096;

/// One op the keeper asks the node to sign and publish.
#[derive(Debug, Clone, PartialEq)]
pub struct DueOp {
    /// What it is for (`auction <id>`, `proposal <id>`, `tool <id>`), for
    /// logs and the retry limit.
    pub key: String,
    pub channel: String,
    pub body: OpBody,
}

/// The keeper of one node.
#[derive(Debug)]
pub struct DeadlineKeeper {
    me: NodeId,
    tries: BTreeMap<String, u64>,
    /// This node's wait per item and the number of accounts it was ranked
    /// among (ranking costs a hash per known node, so it is redone only
    /// when that number changes).
    waits: BTreeMap<Vec<u8>, (usize, u64)>,
}

impl DeadlineKeeper {
    pub fn new(me: NodeId) -> DeadlineKeeper {
        DeadlineKeeper { me, tries: BTreeMap::new(), waits: BTreeMap::new() }
    }

    fn distance(id: &NodeId, item: &[u8]) -> [u8; 32] {
        Sha256::new()
            .chain_update(b"synapse-ng/deadline-rank/v1")
            .chain_update(id.0)
            .chain_update(item)
            .finalize()
            .into()
    }

    /// Rule `rank_by_distance`: this node's wait (ms) past the deadline of
    /// `item`, given the nodes `state` knows.
    pub fn wait(&mut self, state: &State, item: &[u8]) -> u64 {
        let known = state.ledger.accounts.len();
        if let Some((n, w)) = self.waits.get(item)
            && *n == known
        {
            return *w;
        }
        let mine = Self::distance(&self.me, item);
        // A node the state does not know yet ranks last.
        let rank = if !state.ledger.accounts.contains_key(&self.me) {
            MAX_WAIT_SECS
        } else {
            state
                .ledger
                .accounts
                .keys()
                .filter(|id| **id != self.me && Self::distance(id, item) < mine)
                .take(MAX_WAIT_SECS as usize)
                .count() as u64
        };
        let w = rank * 1000;
        if self.waits.len() >= MAX_TRIES {
            self.waits.clear();
        }
        self.waits.insert(item.to_vec(), (known, w));
        w
    }

    /// Rule `retry_each_item_every_30_s`: records a try of `key` at `now`
    /// unless one was made less than [`RETRY_MS`] ago.
    fn try_now(&mut self, key: &str, now: u64) -> bool {
        if self.tries.get(key).is_some_and(|t| now < t.saturating_add(RETRY_MS)) {
            return false;
        }
        if self.tries.len() >= MAX_TRIES {
            self.tries.retain(|_, t| now < t.saturating_add(RETRY_MS));
        }
        if self.tries.len() < MAX_TRIES {
            self.tries.insert(key.to_string(), now);
        }
        true
    }

    /// The ops due at wall time `now` in `state`, each at most every 30 s;
    /// with `settled_until`, only deadlines a final checkpoint covers (rule
    /// `deadline_after_finality`).
    pub fn due(&mut self, state: &State, now: u64, settled_until: Option<u64>) -> Vec<DueOp> {
        let settled = |deadline: u64| settled_until.is_none_or(|s| deadline < s);
        let mut v = vec![];
        for t in state.tasks.values() {
            if let (TaskStatus::AuctionOpen, Some(a)) = (t.status, &t.auction)
                && matches!(a.status, AuctionStatus::Open)
                && settled(a.terms.deadline_ms)
                && now > a.terms.deadline_ms.saturating_add(self.wait(state, &t.id.0))
            {
                v.push(DueOp {
                    key: format!("auction {}", t.id),
                    channel: t.channel.clone(),
                    body: OpBody::AuctionClose { task: t.id },
                });
            }
        }
        for p in state.gov.proposals.values() {
            if p.status == ProposalStatus::Open
                && settled(p.deadline_ms)
                && now > p.deadline_ms.saturating_add(self.wait(state, &p.id.0))
            {
                v.push(DueOp {
                    key: format!("proposal {}", p.id),
                    channel: p.channel.clone(),
                    body: OpBody::ProposalExpire { proposal: p.id },
                });
            }
        }
        for tool in state.tools.tools.values() {
            if tool.status == ToolStatus::Active
                && settled(tool.paid_until_ms)
                && now > tool.paid_until_ms.saturating_add(self.wait(state, tool.tool_id.as_bytes()))
            {
                v.push(DueOp {
                    key: format!("tool {}", tool.tool_id),
                    channel: tool.channel.clone(),
                    body: OpBody::ToolUpkeep { tool_id: tool.tool_id.clone() },
                });
            }
        }
        v.retain(|d| self.try_now(&d.key, now));
        v
    }

    /// Rule `evidence_by_rank`: the evidence ops due at `now` for the
    /// equivocations `found` (offender, its two ops, when this node first
    /// saw the fork).
    pub fn evidence_due(&mut self, state: &State, found: &[(NodeId, Vec<u8>, Vec<u8>, u64)], now: u64) -> Vec<DueOp> {
        let mut v = vec![];
        for (offender, first, second, seen) in found {
            if now > seen.saturating_add(self.wait(state, &offender.0)) {
                v.push(DueOp {
                    key: format!("evidence {offender}"),
                    channel: crate::core::op::GLOBAL_CHANNEL.to_owned(),
                    body: OpBody::Evidence { first: first.clone(), second: second.clone() },
                });
            }
        }
        v.retain(|d| self.try_now(&d.key, now));
        v
    }

    /// Rule `publish_missing_key`: whether to publish this node's X25519 key
    /// now.
    pub fn key_publish_due(&mut self, state: &State, now: u64) -> bool {
        !state.tools.keys.contains_key(&self.me) && self.try_now("key_publish", now)
    }

    /// Rule `voting_key_publish`: whether to try publishing this node's
    /// voting key now (the caller checked that the state lacks it); at
    /// most every 30 s.
    pub fn voting_key_due(&mut self, now: u64) -> bool {
        self.try_now("voting_key_publish", now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::op::{AuctionTerms, Funding, NewTask, OpBody, TaskSchema};
    use crate::core::replica::Replica;
    use crate::identity::Identity;

    /// A state with one open auction whose deadline is `deadline`.
    fn with_auction(me: &Identity, deadline: u64) -> State {
        let mut r = Replica::open();
        let body = OpBody::TaskCreate(NewTask {
            schema: TaskSchema::TaskV2,
            title: "t".into(),
            description: String::new(),
            reward: 0,
            tags: vec![],
            required_tools: vec![],
            funding: Funding::Creator,
            auction: Some(AuctionTerms { max_reward: 10, deadline_ms: deadline }),
        });
        r.act(me, "dev", OpBody::ChannelCreate { description: "dev".into() }, 1_000).expect("channel");
        r.act(me, "dev", body, 1_001).expect("create");
        r.state().clone()
    }

    #[test]
    fn rank_by_distance_and_retry_each_item_every_30_s() {
        let me = Identity::from_seed([3; 32]);
        let st = with_auction(&me, 10_000);
        let mut k = DeadlineKeeper::new(me.node_id());
        let task = *st.tasks.keys().next().expect("task");
        let wait = k.wait(&st, &task.0);
        assert_eq!(wait, 0, "the only account ranks first");
        assert!(k.due(&st, 10_000 + wait, None).is_empty(), "not before the stagger");
        let due = k.due(&st, 10_001 + wait, None);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].body, OpBody::AuctionClose { task });
        assert!(k.due(&st, 10_001 + wait + RETRY_MS - 1, None).is_empty(), "retried only after 30 s");
        assert_eq!(k.due(&st, 10_001 + wait + RETRY_MS, None).len(), 1);
    }

    #[test]
    fn deadline_after_finality_waits_for_a_final_checkpoint_past_the_deadline() {
        let me = Identity::from_seed([3; 32]);
        let st = with_auction(&me, 10_000);
        let mut k = DeadlineKeeper::new(me.node_id());
        assert!(k.due(&st, 20_000, Some(10_000)).is_empty(), "final only up to the deadline: not yet");
        assert_eq!(k.due(&st, 20_000, Some(10_001)).len(), 1, "final past the deadline: close");
    }

    #[test]
    fn rank_by_distance_gives_one_node_each_second() {
        let item = [7u8; 32];
        let ids: Vec<NodeId> = (1..50u8).map(|s| Identity::from_seed([s; 32]).node_id()).collect();
        let mut st = State::open();
        for id in &ids {
            let account = crate::core::state::Account::new(0, Default::default());
            st.ledger.accounts.insert(*id, account);
        }
        let mut waits: Vec<u64> = ids.iter().map(|id| DeadlineKeeper::new(*id).wait(&st, &item)).collect();
        waits.sort_unstable();
        let first: Vec<u64> = waits.iter().copied().take(MAX_WAIT_SECS as usize).collect();
        let expect: Vec<u64> = (0..MAX_WAIT_SECS).map(|r| r * 1000).collect();
        assert_eq!(first, expect, "one node per second");
        assert!(waits.iter().all(|w| *w <= MAX_WAIT_SECS * 1000), "capped");
        let stranger = Identity::from_seed([99; 32]).node_id();
        assert_eq!(DeadlineKeeper::new(stranger).wait(&st, &item), MAX_WAIT_SECS * 1000, "unknown nodes wait longest");
    }

    #[test]
    fn evidence_by_rank_one_node_publishes_first_each_second_another() {
        let ids: Vec<NodeId> = (1..20u8).map(|s| Identity::from_seed([s; 32]).node_id()).collect();
        let mut st = State::open();
        for id in &ids {
            st.ledger.accounts.insert(*id, crate::core::state::Account::new(0, Default::default()));
        }
        let offender = ids[0];
        let found = vec![(offender, vec![1u8], vec![2u8], 1_000u64)];
        // Just after the fork was seen, exactly one node is due.
        let due_at = |now: u64| {
            ids.iter().filter(|id| !DeadlineKeeper::new(**id).evidence_due(&st, &found, now).is_empty()).count()
        };
        assert_eq!(due_at(1_001), 1);
        assert_eq!(due_at(2_001), 2);
        let mut k = DeadlineKeeper::new(ids[3]);
        let d = k.evidence_due(&st, &found, 1_000 + 31_000);
        assert_eq!(d.len(), 1);
        assert!(matches!(&d[0].body, OpBody::Evidence { first, second } if first == &[1] && second == &[2]));
        assert!(k.evidence_due(&st, &found, 1_000 + 31_001).is_empty(), "retried at most every 30 s");
    }

    #[test]
    fn publish_missing_key_at_most_every_30_s() {
        let me = Identity::from_seed([4; 32]);
        let st = State::open();
        let mut k = DeadlineKeeper::new(me.node_id());
        assert!(k.key_publish_due(&st, 0));
        assert!(!k.key_publish_due(&st, RETRY_MS - 1));
        assert!(k.key_publish_due(&st, RETRY_MS));
    }

    #[test]
    fn the_retry_memory_is_bounded() {
        let mut k = DeadlineKeeper::new(Identity::from_seed([4; 32]).node_id());
        for i in 0..(MAX_TRIES as u64 * 2) {
            k.try_now(&format!("item {i}"), i);
        }
        assert!(k.tries.len() <= MAX_TRIES);
    }
}
