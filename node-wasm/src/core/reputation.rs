//! Reputation v2 in fixed point.
//!
//! Scores are integers in milli-points (1 point = 1000), so every replica
//! computes exactly the same numbers natively and in wasm. Each node has a
//! `_total` and per-tag scores. Decay is ×0.99 per whole day of *op time*
//! (HLC ms), applied lazily: whenever the fold touches a node's reputation at
//! op time `t`, it first applies one floor-rounded ×0.99 step for each whole
//! day elapsed since the reputation's anchor, and moves the anchor forward by
//! exactly those days (the remainder keeps counting). Tags that fall below 0.1
//! points are removed. Because the fold visits ops in a total order, `t`
//! never goes backwards and the result depends only on the op set.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Milli-points per point.
pub const MILLI: u64 = 1000;
/// One day of op time.
pub const DAY_MS: u64 = 86_400_000;
/// Tags below 0.1 points disappear.
pub const TAG_FLOOR_MILLI: u64 = 100;

/// One ×0.99 step, rounded down: `floor(v * 99 / 100) = v - ceil(v / 100)`
/// (written that way so it cannot overflow).
pub fn decay_step(v: u64) -> u64 {
    v - v.div_ceil(100)
}

/// `days` decay steps. Each step lowers any non-zero value by at least 1,
/// and values reach 0 after a few thousand steps, so this loop is bounded
/// even for absurd gaps.
pub fn decay(mut v: u64, days: u64) -> u64 {
    let mut d = 0;
    while d < days && v > 0 {
        v = decay_step(v);
        d += 1;
    }
    v
}

/// A node's reputation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reputation {
    /// `_total`, milli-points.
    pub total: u64,
    /// Per-tag scores, milli-points.
    pub tags: BTreeMap<String, u64>,
    /// Op time from which the next decay day is counted.
    pub anchor_ms: u64,
}

impl Reputation {
    /// A fresh, empty reputation whose decay clock starts at `t_ms`.
    pub fn new(t_ms: u64) -> Reputation {
        Reputation { total: 0, tags: BTreeMap::new(), anchor_ms: t_ms }
    }

    /// Applies the decay for whole days between the anchor and `t_ms`.
    pub fn decay_to(&mut self, t_ms: u64) {
        if self.total == 0 && self.tags.is_empty() {
            // Nothing to decay: the clock starts with the first credit, so a
            // founder's first point (its account made at time 0) does not
            // lose a day's decay within hours.
            self.anchor_ms = self.anchor_ms.max(t_ms);
            return;
        }
        let days = t_ms.saturating_sub(self.anchor_ms) / DAY_MS;
        if days == 0 {
            return;
        }
        self.total = decay(self.total, days);
        for v in self.tags.values_mut() {
            *v = decay(*v, days);
        }
        self.tags.retain(|_, v| *v >= TAG_FLOOR_MILLI);
        self.anchor_ms = self.anchor_ms.saturating_add(days.saturating_mul(DAY_MS));
    }

    /// This reputation as it reads at `t_ms`, without changing it (used for
    /// scoring, where touching would alter state for a mere read).
    pub fn at(&self, t_ms: u64) -> Reputation {
        let mut r = self.clone();
        r.decay_to(t_ms);
        r
    }

    /// Decays to `t_ms`, then adds `milli` to the total and to each tag.
    ///
    /// Saturating, on purpose: reputation moves no SP and no other counter
    /// must move with it, so a score stuck at `u64::MAX` breaks no invariant
    /// (conservation is about SP only) and is the same on every replica.
    /// With the config ranges (at most 1000 points per task or vote) it is
    /// unreachable in practice.
    pub fn credit(&mut self, t_ms: u64, milli: u64, tags: &[String]) {
        self.decay_to(t_ms);
        self.total = self.total.saturating_add(milli);
        for tag in tags {
            let v = self.tags.entry(tag.clone()).or_insert(0);
            *v = v.saturating_add(milli);
        }
        self.tags.retain(|_, v| *v >= TAG_FLOOR_MILLI);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reputation_decays_one_percent_after_one_day() {
        let mut r = Reputation::new(0);
        r.credit(0, 10 * MILLI, &["rust".into()]);
        r.decay_to(DAY_MS - 1);
        assert_eq!(r.total, 10_000, "no decay before a whole day");
        r.decay_to(DAY_MS);
        assert_eq!(r.total, 9_900);
        assert_eq!(r.tags["rust"], 9_900);
        assert_eq!(r.anchor_ms, DAY_MS);
    }

    #[test]
    fn reputation_decay_after_100_days_is_floor_per_day() {
        let mut r = Reputation::new(0);
        r.credit(0, 10 * MILLI, &["rust".into()]);
        r.decay_to(100 * DAY_MS + 5);
        // 10000 * 0.99^100 = 3660.3; per-day flooring gives slightly less.
        let mut expect = 10_000u64;
        for _ in 0..100 {
            expect = expect * 99 / 100;
        }
        assert_eq!(r.total, expect);
        assert!((3600..=3661).contains(&r.total), "{}", r.total);
        // The 5 ms remainder is kept for the next day.
        assert_eq!(r.anchor_ms, 100 * DAY_MS);
    }

    #[test]
    fn reputation_decay_in_steps_equals_decay_at_once() {
        let mut a = Reputation::new(0);
        a.credit(0, 12_345, &[]);
        let mut b = a.clone();
        for d in 1..=30 {
            a.decay_to(d * DAY_MS + 17);
        }
        b.decay_to(30 * DAY_MS + 17);
        assert_eq!(a, b);
    }

    #[test]
    fn reputation_tags_below_a_tenth_are_removed() {
        let mut r = Reputation::new(0);
        r.credit(0, 150, &["tiny".into()]);
        r.decay_to(40 * DAY_MS);
        assert!(!r.tags.contains_key("tiny"));
        assert!(r.total > 0 && r.total < 100);
    }

    #[test]
    fn reputation_decay_terminates_on_huge_gaps() {
        assert_eq!(decay(u64::MAX, u64::MAX), 0);
    }
}
