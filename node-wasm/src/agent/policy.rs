//! The default, rule-based policy: what the agent suggests with no chat
//! endpoint (or when the endpoint fails). Plain rules a user can predict:
//!
//! - **Claim** (rule `agent_claim_by_skill`): an open fixed-reward task of
//!   someone else whose tags meet this node's skill profile (or that has
//!   no tags), best skill match first, then the highest reward.
//! - **Bid** (rule `agent_bid_by_reward_per_day`): an open auction of
//!   someone else this node has not bid on and whose tags meet its skills.
//!   The estimate is one day plus one per tag it lacks the skill for; it
//!   asks 90 % of the maximum when its reputation is at least the best
//!   current bidder's (reputation weighs 40 % of the score), else 70 % to
//!   compete on cost; never above the bid cap. Ranked by reward per day.
//! - **Vote** (rule `agent_vote_remedies`): yes on an open `immune_system`
//!   remedy (a bounded configuration change the network's own health
//!   checks raised). Other proposals need judgement the rules do not have,
//!   so they are left to the user (or the model).
//!
//! At most [`MAX_RULE_SUGGESTIONS`] per cycle.

use super::{Action, Guardrails};
use crate::core::governance::ProposalStatus;
use crate::core::state::{AuctionStatus, State, TaskStatus};
use crate::identity::NodeId;
use std::collections::BTreeSet;

pub const MAX_RULE_SUGGESTIONS: usize = 8;
/// The tag the immune system puts on its remedies.
pub const REMEDY_TAG: &str = "immune_system";

/// The rule-based suggestions for `me` on `st` at wall time `now_ms`, each
/// with its reason (not yet checked against the guardrails' other rules).
pub fn suggest(st: &State, me: &NodeId, now_ms: u64, rails: &Guardrails) -> Vec<(Action, String)> {
    let empty = BTreeSet::new();
    let skills = st.skills.get(me).unwrap_or(&empty);
    let matched = |tags: &[String]| tags.iter().filter(|t| skills.contains(&t.to_lowercase())).count();
    let balance = st.ledger.accounts.get(me).map_or(0, |a| a.balance);
    let my_rep = st.ledger.accounts.get(me).map_or(0, |a| a.reputation.total);

    let mut claims = vec![];
    let mut bids = vec![];
    for t in st.tasks.values() {
        if &t.owner == me || !matches!(t.status, TaskStatus::Open | TaskStatus::AuctionOpen) || t.assignee.is_some() {
            continue;
        }
        let m = matched(&t.tags);
        if !t.tags.is_empty() && m == 0 {
            continue;
        }
        let skill_words = t.tags.iter().filter(|x| skills.contains(&x.to_lowercase())).cloned().collect::<Vec<_>>();
        let why_skills = if t.tags.is_empty() {
            "it needs no particular skill".to_string()
        } else {
            format!("your skills match {}", skill_words.join(", "))
        };
        match t.auction.as_ref().filter(|_| t.status == TaskStatus::AuctionOpen) {
            None => {
                let reason = format!("{why_skills}; {} SP reward", t.reward);
                claims.push(((m, t.reward), Action::Claim { task: t.id }, reason));
            }
            Some(a) => {
                if a.status != AuctionStatus::Open || now_ms > a.terms.deadline_ms || a.bids.contains_key(me) {
                    continue;
                }
                let missing = u32::try_from(t.tags.len().saturating_sub(m)).unwrap_or(u32::MAX);
                let days = missing.saturating_add(1);
                let best_rep = a
                    .bids
                    .keys()
                    .filter_map(|b| st.ledger.accounts.get(b))
                    .map(|x| x.reputation.total)
                    .max()
                    .unwrap_or(0);
                let (share, why_rep) = if my_rep >= best_rep {
                    (90, "your reputation is at least the best bidder's")
                } else {
                    (70, "a bidder has more reputation, so it competes on cost")
                };
                let ask = u64::try_from(u128::from(a.terms.max_reward) * share / 100).unwrap_or(u64::MAX);
                let cap = rails.bid_cap(balance);
                let amount = ask.min(cap).max(1);
                let capped = if ask > cap { format!(" (capped at {cap} SP)") } else { String::new() };
                let per_day = amount / u64::from(days.max(1));
                let reason = format!(
                    "{why_skills}; asks {amount} of {} SP{capped} over {days} day(s), {per_day} SP a day; {why_rep}",
                    a.terms.max_reward
                );
                bids.push((per_day, Action::Bid { task: t.id, amount, estimated_days: days }, reason));
            }
        }
    }
    claims.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    bids.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));

    let mut out: Vec<(Action, String)> = vec![];
    for p in st.gov.proposals.values() {
        if p.status == ProposalStatus::Open
            && now_ms <= p.deadline_ms
            && !p.votes.contains_key(me)
            && p.tags.iter().any(|t| t == REMEDY_TAG)
        {
            let reason = "a bounded remedy the network's health checks raised".to_string();
            out.push((Action::Vote { proposal: p.id, yes: true }, reason));
        }
    }
    out.extend(bids.into_iter().map(|(_, a, r)| (a, r)));
    out.extend(claims.into_iter().map(|(_, a, r)| (a, r)));
    out.truncate(MAX_RULE_SUGGESTIONS);
    out
}
