//! The agent's guardrails. Every suggestion passes them when it is made and
//! again when it is approved (the state may have moved in between), and
//! they do not care where the suggestion came from: the rule-based policy
//! and a chat model's answer are checked alike, so no answer can talk its
//! way past them.
//!
//! - Rule `agent_allowed_kinds`: only the kinds the user allowed.
//! - Rule `agent_reserve`: an action never leaves the balance below the
//!   reserve (at least [`RESERVE_FLOOR_SP`]; the user may raise it).
//! - Rule `agent_bid_cap`: no bid above a share of the balance (at most
//!   [`BID_CAP_MAX_PERCENT`] %; the user may lower it). A bid escrows
//!   nothing, but winning commits the bidder to the work, so the agent's
//!   commitments stay in proportion to what the user holds.
//! - Rule `agent_live_target`: the task, auction or proposal exists and is
//!   open to this action now (a model that invents an id, or one that is no
//!   longer open, is refused here, before anything is signed).

use super::{Action, Kind};
use crate::core::governance::ProposalStatus;
use crate::core::state::{AuctionStatus, State, TaskStatus};
use crate::identity::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The least SP an agent action may leave in the balance.
pub const RESERVE_FLOOR_SP: u64 = 100;
/// The largest share of the balance one bid may ask, in percent.
pub const BID_CAP_MAX_PERCENT: u64 = 30;
/// The longest estimate a bid may give, in days.
pub const MAX_ESTIMATED_DAYS: u32 = 365;

/// The limits one agent works under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guardrails {
    pub allowed: BTreeSet<Kind>,
    pub reserve_sp: u64,
    pub max_bid_percent: u64,
}

impl Default for Guardrails {
    /// Claim, bid and vote; the floor reserve and the largest bid share.
    fn default() -> Guardrails {
        Guardrails {
            allowed: [Kind::Claim, Kind::Bid, Kind::Vote].into_iter().collect(),
            reserve_sp: RESERVE_FLOOR_SP,
            max_bid_percent: BID_CAP_MAX_PERCENT,
        }
    }
}

impl Guardrails {
    /// Refuses settings looser than the fixed limits.
    pub fn validate(&self) -> Result<(), String> {
        if self.reserve_sp < RESERVE_FLOOR_SP {
            return Err(format!("reserve_sp cannot be below {RESERVE_FLOOR_SP} SP"));
        }
        if self.max_bid_percent == 0 || self.max_bid_percent > BID_CAP_MAX_PERCENT {
            return Err(format!("max_bid_percent must be 1 to {BID_CAP_MAX_PERCENT}"));
        }
        Ok(())
    }

    /// The largest bid allowed with `balance` SP (rule `agent_bid_cap`).
    pub fn bid_cap(&self, balance: u64) -> u64 {
        let pct = self.max_bid_percent.min(BID_CAP_MAX_PERCENT);
        // balance · pct / 100 ≤ balance, so the narrowing is exact.
        u64::try_from(u128::from(balance) * u128::from(pct) / 100).unwrap_or(u64::MAX)
    }

    /// Whether `me` may take `action` on `st` at wall time `now_ms`; the
    /// refusal names the rule's reason in one sentence.
    pub fn check(&self, st: &State, me: &NodeId, now_ms: u64, action: &Action) -> Result<(), String> {
        let kind = action.kind();
        if !self.allowed.contains(&kind) {
            return Err(format!("{} is not a kind the agent is allowed", kind.name()));
        }
        let balance = st.ledger.accounts.get(me).map_or(0, |a| a.balance);
        let reserve = self.reserve_sp.max(RESERVE_FLOOR_SP);
        let left = balance.checked_sub(action.cost());
        if left.is_none_or(|l| l < reserve) {
            return Err(format!(
                "{} would take {} SP from a balance of {balance} SP, below the {reserve} SP reserve",
                kind.name(),
                action.cost()
            ));
        }
        if let Action::Bid { amount, .. } = action {
            let cap = self.bid_cap(balance);
            if *amount > cap {
                return Err(format!(
                    "a bid of {amount} SP is above {}% of the balance ({cap} of {balance} SP)",
                    self.max_bid_percent.min(BID_CAP_MAX_PERCENT)
                ));
            }
        }
        live_target(st, me, now_ms, action)
    }
}

/// Rule `agent_live_target`.
fn live_target(st: &State, me: &NodeId, now_ms: u64, action: &Action) -> Result<(), String> {
    match action {
        Action::Claim { task } => {
            let t = st.tasks.get(task).ok_or_else(|| format!("no task {} is known here", task.short()))?;
            if t.auction.as_ref().is_some_and(|a| a.status == AuctionStatus::Open) {
                return Err(format!("task {:?} is an auction: bid on it instead", t.title));
            }
            if t.status != TaskStatus::Open || t.assignee.is_some() {
                return Err(format!("task {:?} is not open", t.title));
            }
            if &t.owner == me {
                return Err(format!("task {:?} is your own", t.title));
            }
            Ok(())
        }
        Action::Bid { task, amount, estimated_days } => {
            let t = st.tasks.get(task).ok_or_else(|| format!("no task {} is known here", task.short()))?;
            let Some(a) = &t.auction else { return Err(format!("task {:?} is not an auction", t.title)) };
            if a.status != AuctionStatus::Open || t.status != TaskStatus::AuctionOpen {
                return Err(format!("the auction {:?} is closed", t.title));
            }
            if now_ms > a.terms.deadline_ms {
                return Err(format!("the auction {:?} is past its deadline", t.title));
            }
            if &t.owner == me {
                return Err(format!("the auction {:?} is your own", t.title));
            }
            if *amount == 0 || *amount > a.terms.max_reward {
                return Err(format!("a bid must be 1 to {} SP on {:?}", a.terms.max_reward, t.title));
            }
            if *estimated_days == 0 || *estimated_days > MAX_ESTIMATED_DAYS {
                return Err(format!("estimated_days must be 1 to {MAX_ESTIMATED_DAYS}"));
            }
            Ok(())
        }
        Action::Vote { proposal, .. } => {
            let p = st
                .gov
                .proposals
                .get(proposal)
                .ok_or_else(|| format!("no proposal {} is known here", proposal.short()))?;
            if p.status != ProposalStatus::Open || now_ms > p.deadline_ms {
                return Err(format!("proposal {:?} is not open for votes", p.title));
            }
            if p.votes.contains_key(me) {
                return Err(format!("you already voted on {:?}", p.title));
            }
            Ok(())
        }
        Action::CreateTask { channel, title, reward, .. } => {
            if !st.ledger.channels.contains_key(channel) {
                return Err(format!("no channel {channel:?} is known here"));
            }
            if title.trim().is_empty() || *reward == 0 {
                return Err("a task needs a title and a reward".into());
            }
            Ok(())
        }
    }
}
