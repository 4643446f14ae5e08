//! Auction rules: bid, close (award or reopen) and the winner's score.
//! Auctions live inside their tasks, so these are rules of [`Tasks`]; the
//! award escrows through the [`Ledger`] and scores through the active policy.
//!
//! Deadlines are op time, never wall time: a bid counts only if its HLC ms is
//! `<= deadline_ms`, and a close op by a non-owner counts only if its HLC ms is
//! `> deadline_ms`. Because the fold visits ops in HLC order, every bid that
//! can count sorts before every close that can count, so all replicas award
//! the same winner whatever order the ops arrived in. (A node cannot close
//! early by post-dating its op more than the HLC drift bound, 60 s.)
//!
//! Score, in fixed point with `S = 1_000_000` (all divisions floor):
//! ```text
//! cost  = (max_reward - amount) * S / max_reward          in [0, S)
//! rep   = rep_total * S / max_rep_total   (0 if max is 0)  in [0, S]
//! time  = min_days * S / estimated_days                    in (0, S]
//! score = 4*cost + 4*rep + 2*time      (= 10 × 0.4·cost + 0.4·rep + 0.2·time)
//! ```
//! `rep_total` is the bidder's `_total` reputation (milli-points) as it reads
//! at the close op's time. The highest score wins; ties go to the lowest
//! node id (byte order). The original's time term was `max_days / days`,
//! which lies in `[1, max_days]` rather than `[0, 1]` as its docstring says;
//! we use the documented intent (the fastest bid scores 1).

use crate::core::common::{Ctx, TaskStatus};
use crate::core::ledger::{Account, Ledger};
use crate::core::op::TaskId;
use crate::core::reject::Reject;
use crate::core::tasks::{AuctionStatus, Bid, Task, Tasks};
use crate::core::upgrade::ModuleHash;
use crate::core::upgrades::{PolicyHooks, PolicyView};
use crate::identity::NodeId;
use std::collections::BTreeMap;

/// Fixed-point scale of the score terms.
pub const SCORE_SCALE: u128 = 1_000_000;

/// One bid as scoring sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScoredBid {
    pub bidder: NodeId,
    pub amount: u64,
    pub estimated_days: u32,
    /// Reputation `_total` in milli-points at close time.
    pub rep_milli: u64,
}

/// The normalised components `(cost, rep, time)` of every bid, each in
/// `0..=SCORE_SCALE` (the inputs of the `auction_score` policy).
pub fn score_components(max_reward: u64, bids: &[ScoredBid]) -> Vec<(NodeId, [u64; 3])> {
    let s = SCORE_SCALE;
    let max_rep = bids.iter().map(|b| b.rep_milli).max().unwrap_or(0) as u128;
    let min_days = bids.iter().map(|b| b.estimated_days).min().unwrap_or(1).max(1) as u128;
    let max_reward = (max_reward as u128).max(1);
    bids.iter()
        .map(|b| {
            let amount = (b.amount as u128).min(max_reward);
            let cost = (max_reward - amount) * s / max_reward;
            let rep = (b.rep_milli as u128 * s).checked_div(max_rep).unwrap_or(0);
            let time = min_days * s / (b.estimated_days as u128).max(1);
            // Each term is at most SCORE_SCALE, so the casts are exact.
            (b.bidder, [cost as u64, rep as u64, time as u64])
        })
        .collect()
}

/// The built-in score of one bid's components: `4·cost + 4·rep + 2·time`.
pub fn builtin_score([cost, rep, time]: [u64; 3]) -> u64 {
    // Each component is at most SCORE_SCALE (10^6), so this is at most 10^7.
    4 * cost + 4 * rep + 2 * time
}

/// Scores every bid with the built-in policy. Returns `(bidder, score)`.
pub fn score_bids(max_reward: u64, bids: &[ScoredBid]) -> Vec<(NodeId, u128)> {
    score_components(max_reward, bids).into_iter().map(|(n, c)| (n, u128::from(builtin_score(c)))).collect()
}

/// The winning bidder: highest score, ties to the lowest node id.
pub fn pick_winner(max_reward: u64, bids: &[ScoredBid]) -> Option<NodeId> {
    score_bids(max_reward, bids).into_iter().max_by(|(a, sa), (b, sb)| sa.cmp(sb).then(b.cmp(a))).map(|(n, _)| n)
}

/// Rule `auction_score`: the winner of `t`'s bids at `at_ms` under the
/// active `auction_score` policy (highest score, ties to the lowest node id)
/// with its score, and the modules of scores that fell back. Reputation is
/// read from `accounts` as it decays to `at_ms`.
pub fn auction_winner(
    t: &Task,
    at_ms: u64,
    accounts: &BTreeMap<NodeId, Account>,
    policy: PolicyView<'_>,
) -> (Option<(NodeId, u64)>, Vec<ModuleHash>) {
    let Some(a) = t.auction.as_ref() else { return (None, Vec::new()) };
    let scored: Vec<ScoredBid> = a
        .bids
        .iter()
        .map(|(n, b)| ScoredBid {
            bidder: *n,
            amount: b.amount,
            estimated_days: b.estimated_days,
            rep_milli: accounts.get(n).map_or(0, |acc| acc.reputation.at(at_ms).total),
        })
        .collect();
    let mut faults = Vec::new();
    let mut best: Option<(NodeId, u64)> = None;
    for (bidder, c) in score_components(a.terms.max_reward, &scored) {
        let r = policy.auction_score(c[0], c[1], c[2], builtin_score(c));
        faults.extend(r.fault);
        // Bids iterate in node-id order, so `>` keeps the lowest id on ties.
        if best.is_none_or(|(_, s)| r.value > s) {
            best = Some((bidder, r.value));
        }
    }
    (best, faults)
}

impl Tasks {
    /// Rule `bid`: the auction is open, the bid is on time
    /// (`hlc.ms <= deadline`), `1 <= amount <= max_reward`,
    /// `estimated_days > 0`, and the bidder is not the owner (the original
    /// documented this but did not check it). A rebid replaces the earlier one.
    pub(crate) fn bid(&mut self, cx: Ctx<'_>, id: TaskId, amount: u64, estimated_days: u32) -> Result<(), Reject> {
        let t = self.live_task(cx, id)?;
        let a = t.auction.as_ref().ok_or(Reject::NotAnAuction(id))?;
        if t.status != TaskStatus::AuctionOpen {
            return Err(Reject::AuctionNotOpen { task: id, status: t.status.name() });
        }
        if t.owner == cx.author {
            return Err(Reject::OwnAuction(id));
        }
        if cx.hlc.ms > a.terms.deadline_ms {
            return Err(Reject::BidAfterDeadline { task: id, deadline_ms: a.terms.deadline_ms });
        }
        if amount == 0 || amount > a.terms.max_reward {
            return Err(Reject::BidOutOfRange { amount, max: a.terms.max_reward });
        }
        if estimated_days == 0 {
            return Err(Reject::ZeroDays);
        }
        if let Some(a) = self.task_mut(&id).and_then(|t| t.auction.as_mut()) {
            a.bids.insert(cx.author, Bid { amount, estimated_days, at: cx.hlc });
        }
        Ok(())
    }

    /// Rule `auction_close`: after the deadline anyone may close; before it
    /// only the owner, and only if there are bids (early award). With bids,
    /// the winner's amount is escrowed from the payer (refused with
    /// `insufficient_funds` if it cannot pay; the auction stays open) and the
    /// task becomes claimed by the winner. Without bids the task reopens as
    /// a normal open task with reward 0.
    pub(crate) fn auction_close(
        &mut self,
        cx: Ctx<'_>,
        id: TaskId,
        ledger: &mut Ledger,
        policy: &mut PolicyHooks<'_>,
    ) -> Result<(), Reject> {
        let t = self.live_task(cx, id)?;
        let a = t.auction.as_ref().ok_or(Reject::NotAnAuction(id))?;
        if t.status != TaskStatus::AuctionOpen {
            return Err(Reject::AuctionNotOpen { task: id, status: t.status.name() });
        }
        let past_deadline = cx.hlc.ms > a.terms.deadline_ms;
        if !past_deadline && t.owner != cx.author {
            return Err(Reject::CloseBeforeDeadline { task: id, deadline_ms: a.terms.deadline_ms });
        }
        if a.bids.is_empty() {
            if !past_deadline {
                return Err(Reject::NoBids(id));
            }
            if let Some(t) = self.task_mut(&id) {
                t.status = TaskStatus::Open;
                t.updated = cx.hlc;
                if let Some(a) = t.auction.as_mut() {
                    a.status = AuctionStatus::Reopened;
                }
            }
            return Ok(());
        }
        let (best, faults) = auction_winner(t, cx.hlc.ms, &ledger.accounts, policy.view());
        let Some((winner, _)) = best else {
            return Err(Reject::NoBids(id));
        };
        let amount = a.bids.get(&winner).map_or(0, |b| b.amount);
        let payer = t.payer();
        ledger.check_escrow(&payer, amount)?;
        policy.record_faults(faults);
        ledger.escrow_from(&payer, amount)?;
        if let Some(t) = self.task_mut(&id) {
            t.reward = amount;
            t.escrow = amount;
            t.status = TaskStatus::Claimed;
            t.assignee = Some(winner);
            t.updated = cx.hlc;
            if let Some(a) = t.auction.as_mut() {
                a.status = AuctionStatus::Awarded { winner, amount };
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(b: u8) -> NodeId {
        NodeId([b; 32])
    }

    #[test]
    fn auction_score_weights_cost_reputation_and_time() {
        let bids = [
            ScoredBid { bidder: n(1), amount: 50, estimated_days: 2, rep_milli: 10_000 },
            ScoredBid { bidder: n(2), amount: 80, estimated_days: 1, rep_milli: 20_000 },
        ];
        let s = score_bids(100, &bids);
        // n1: cost 0.5, rep 0.5, time 0.5 → 4*.5+4*.5+2*.5 = 5.0
        assert_eq!(s[0], (n(1), 5 * SCORE_SCALE));
        // n2: cost 0.2, rep 1.0, time 1.0 → 0.8+4+2 = 6.8
        assert_eq!(s[1], (n(2), 6_800_000));
        assert_eq!(pick_winner(100, &bids), Some(n(2)));
    }

    #[test]
    fn auction_tie_breaks_by_node_id() {
        let bid = |b| ScoredBid { bidder: n(b), amount: 10, estimated_days: 3, rep_milli: 0 };
        assert_eq!(pick_winner(100, &[bid(9), bid(4), bid(7)]), Some(n(4)));
        assert_eq!(pick_winner(100, &[bid(4), bid(9)]), Some(n(4)));
        assert_eq!(pick_winner(100, &[]), None);
    }
}
