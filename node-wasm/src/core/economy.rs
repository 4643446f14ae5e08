//! Synapse Points (SP): integer amounts, the tax rule and the constants of
//! the economy. Balances, escrow and treasuries live in the ledger
//! (`ledger.rs`); the rules that move SP live with the ops that move it
//! (`tasks.rs`, `auction.rs`, `teams.rs`, `tools.rs`) and move it through
//! the ledger.

use crate::core::rules::Rules;
use serde::{Deserialize, Serialize};

/// SP minted for each identity at its first op.
pub const INITIAL_SP: u64 = 1000;
/// Transaction tax in basis points (2 %).
pub const TAX_BPS: u64 = 200;
/// Reputation for completing a task (to `_total` and to each task tag).
pub const TASK_REPUTATION_MILLI: u64 = 10_000;
/// Reputation for a public vote.
pub const VOTE_REPUTATION_MILLI: u64 = 1_000;

/// Default minimum voting period of a proposal (six hours: long enough
/// for members in every time zone to see it).
pub const PROPOSAL_MIN_VOTING_SECONDS: u64 = 6 * 3_600;
/// Default auto-close delay of a proposal (one day).
pub const PROPOSAL_AUTO_CLOSE_AFTER_SECONDS: u64 = 86_400;
/// Default size of the validator set.
pub const VALIDATOR_SET_SIZE: u64 = 7;

/// The parameters the fold uses (the defaults are the default genesis's). Part of the state (and its hash) so
/// that a future config-change op can alter them from its position onwards,
/// never retroactively.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    pub initial_sp: u64,
    pub tax_bps: u64,
    pub task_reputation_milli: u64,
    pub vote_reputation_milli: u64,
    pub proposal_min_voting_seconds: u64,
    pub proposal_auto_close_after_seconds: u64,
    pub validator_set_size: u64,
    /// Peers each node aims to keep (the peer manager's target degree): the
    /// immune system's remedy for poor connectivity, latency or loss
    /// (`health.rs`). Not in the genesis; every network starts at 8.
    #[serde(default = "default_net_target_degree")]
    pub net_target_degree: u64,
    /// The genesis rules: fixed, no `config_change` reaches them.
    pub rules: Rules,
}

/// The default of [`Params::net_target_degree`].
pub const NET_TARGET_DEGREE: u64 = 8;

fn default_net_target_degree() -> u64 {
    NET_TARGET_DEGREE
}

impl Default for Params {
    fn default() -> Params {
        Params {
            initial_sp: INITIAL_SP,
            tax_bps: TAX_BPS,
            task_reputation_milli: TASK_REPUTATION_MILLI,
            vote_reputation_milli: VOTE_REPUTATION_MILLI,
            proposal_min_voting_seconds: PROPOSAL_MIN_VOTING_SECONDS,
            proposal_auto_close_after_seconds: PROPOSAL_AUTO_CLOSE_AFTER_SECONDS,
            validator_set_size: VALIDATOR_SET_SIZE,
            net_target_degree: NET_TARGET_DEGREE,
            rules: Rules::default(),
        }
    }
}

/// `n / d` rounded half to even (banker's rounding, as Python's `round`).
/// For `2 <= d <= u128::MAX / 2` (the tax uses 10000) neither `r * 2` nor
/// `q + 1` can overflow.
pub fn div_round_half_even(n: u128, d: u128) -> u128 {
    let q = n / d;
    let r = n % d;
    let twice = r * 2;
    if twice > d || (twice == d && q % 2 == 1) { q + 1 } else { q }
}

/// Tax on a completed task's reward:
/// `max(1, round_half_even(reward * tax_bps / 10000))` when `reward > 0`,
/// else 0; never more than the reward itself.
pub fn tax(reward: u64, tax_bps: u64) -> u64 {
    if reward == 0 {
        return 0;
    }
    // In u128, `reward * tax_bps` cannot overflow. A tax that does not fit
    // in u64 is above the reward (only with `tax_bps` > 10000, which
    // `config_change` refuses), so it is the whole reward: no saturation.
    let t = div_round_half_even(reward as u128 * tax_bps as u128, 10_000);
    u64::try_from(t).map_or(reward, |t| t.clamp(1, reward))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tax_rounds_half_even() {
        let table = [
            (1, 1),
            (5, 1),
            (10, 1),
            (25, 1),
            (30, 1),
            (50, 1),
            (75, 2),
            (100, 2),
            (125, 2),
            (150, 3),
            (175, 4),
            (200, 4),
            (225, 4),
            (250, 5),
            (500, 10),
            (1000, 20),
        ];
        for (reward, expect) in table {
            assert_eq!(tax(reward, TAX_BPS), expect, "reward {reward}");
        }
    }

    #[test]
    fn tax_is_zero_without_reward_and_never_exceeds_it() {
        assert_eq!(tax(0, TAX_BPS), 0);
        assert_eq!(tax(1, 20_000), 1);
        assert_eq!(tax(u64::MAX, TAX_BPS), u64::MAX / 50);
    }
}
