//! The inclusive range of every config key a `config_change` may set, in one
//! table, with the reason for each bound. `Governance::config_change` refuses
//! a value outside its key's range with a sentence and changes nothing.
//!
//! The upper bounds keep every counter the fold adds to far from `u64::MAX`
//! (SP amounts, `minted`, reputation, op times in ms), so the checked
//! arithmetic in the ledger can refuse an op in theory but not in any
//! network that could exist. The lower bounds only exclude values the fold
//! cannot work with; the defaults (`Params::default()`) are all inside.

use crate::core::rules::Rules;

/// One row: key, minimum, maximum (both inclusive), why.
pub struct ConfigRange {
    pub key: &'static str,
    pub min: u64,
    pub max: u64,
    pub why: &'static str,
}

/// 365 days in seconds.
pub const YEAR_SECONDS: u64 = 365 * 86_400;

/// The ranges, in `CONFIG_KEYS` order.
pub const CONFIG_RANGES: &[ConfigRange] = &[
    ConfigRange {
        key: "initial_sp",
        min: 0,
        max: 1_000_000,
        why: "SP minted per new identity; at most 10^6 keeps `minted` below u64::MAX \
              for more than 10^13 identities (0 stops minting)",
    },
    ConfigRange {
        key: "tax_bps",
        min: 0,
        max: 10_000,
        why: "basis points of a reward; 10000 is the whole reward, more would tax SP that does not exist",
    },
    ConfigRange {
        key: "task_reputation_milli",
        min: 0,
        max: 1_000_000,
        why: "reputation per completed task, at most 1000 points, so a score cannot \
              approach u64::MAX within 10^13 tasks",
    },
    ConfigRange {
        key: "vote_reputation_milli",
        min: 0,
        max: 1_000_000,
        why: "reputation per public vote, at most 1000 points, for the same reason",
    },
    ConfigRange {
        key: "proposal_min_voting_seconds",
        min: 0,
        max: YEAR_SECONDS,
        why: "a voting period of at most 365 days; 0 means no minimum",
    },
    ConfigRange {
        key: "proposal_auto_close_after_seconds",
        min: 0,
        max: YEAR_SECONDS,
        why: "a proposal expires within at most 365 days, so op time plus it stays far inside u64 ms",
    },
    ConfigRange {
        key: "validator_set_size",
        min: 1,
        max: 1_000,
        why: "at least one validator to ratify; at most 1000 keeps the close's \
              validator computation and every snapshot small",
    },
    ConfigRange {
        key: "net_target_degree",
        min: 4,
        max: 16,
        why: "peers each node aims to keep: below 4 gossip has too few paths to survive churn, \
              above 16 (the degree a node dials up to) it would exceed what the peer manager keeps",
    },
];

/// The range of `key`, if it is a config key.
pub fn range_of(key: &str) -> Option<&'static ConfigRange> {
    CONFIG_RANGES.iter().find(|r| r.key == key)
}

/// The lowest value `key` may take under `rules`: its range's minimum,
/// raised by the genesis floors (rules `voting_floor` and
/// `validator_floor`).
pub fn floor(r: &ConfigRange, rules: &Rules) -> u64 {
    match r.key {
        "proposal_min_voting_seconds" => r.min.max(rules.voting_floor_seconds),
        "validator_set_size" => r.min.max(rules.validator_floor),
        _ => r.min,
    }
}

/// Checks `value` against `key`'s range and the genesis floors: `Err` is
/// the sentence for the execution log (it names the key, the value and the
/// range).
pub fn check(key: &str, value: u64, rules: &Rules) -> Result<(), String> {
    let r = range_of(key).ok_or_else(|| format!("unknown config key {key:?}"))?;
    let min = floor(r, rules);
    if value < min || value > r.max {
        let why = if min > r.min { "a floor fixed by this network's genesis" } else { r.why };
        return Err(format!(
            "{key} = {value} is out of range: it must be at least {min} and at most {} ({why})",
            r.max
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::economy::Params;
    use crate::core::governance::{CONFIG_KEYS, Governance};
    use crate::core::op::ConfigValue;

    #[test]
    fn every_config_key_has_one_range_and_the_defaults_are_inside() {
        let keys: Vec<&str> = CONFIG_RANGES.iter().map(|r| r.key).collect();
        assert_eq!(keys, CONFIG_KEYS, "one row per key, in CONFIG_KEYS order");
        let d = Params::default();
        let defaults = [
            d.initial_sp,
            d.tax_bps,
            d.task_reputation_milli,
            d.vote_reputation_milli,
            d.proposal_min_voting_seconds,
            d.proposal_auto_close_after_seconds,
            d.validator_set_size,
            d.net_target_degree,
        ];
        for (r, v) in CONFIG_RANGES.iter().zip(defaults) {
            assert!(r.min <= r.max && (r.min..=r.max).contains(&v), "{} default {v}", r.key);
            assert!(!r.why.is_empty());
        }
    }

    #[test]
    fn config_change_accepts_the_edges_and_refuses_one_past_them_without_a_change() {
        for r in CONFIG_RANGES {
            let min = floor(r, &Params::default().rules);
            for v in [min, r.max] {
                let (mut g, mut p) = (Governance::default(), Params::default());
                assert!(g.config_change(&mut p, r.key, &ConfigValue::Int(v)).is_ok(), "{} = {v}", r.key);
                assert_eq!(g.config_version, 1);
            }
            let mut outside = vec![u64::MAX];
            outside.extend(r.max.checked_add(1));
            outside.extend(min.checked_sub(1));
            for v in outside {
                let (mut g, mut p) = (Governance::default(), Params::default());
                let e = g.config_change(&mut p, r.key, &ConfigValue::Int(v)).unwrap_err();
                assert!(e.contains(r.key) && e.contains(&v.to_string()), "{e}");
                assert!(e.contains(&format!("at least {min} and at most {}", r.max)), "{e}");
                assert_eq!((g.config_version, p), (0, Params::default()), "{} = {v} changed something", r.key);
            }
        }
    }
}
