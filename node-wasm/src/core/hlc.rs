//! Hybrid logical clock (HLC).
//!
//! An HLC timestamp is `(ms, logical)`: physical milliseconds since the Unix
//! epoch plus a counter that orders events within one millisecond (or while
//! the local wall clock lags behind a peer's). It stays close to wall time, so
//! deadlines and reputation decay can be expressed in it, yet it never goes
//! backwards and always exceeds every timestamp this node has observed, so a
//! node's own ops sort after everything it had seen when it made them.
//!
//! The clock is sans-IO: `now_ms` is always an argument. A peer timestamp more
//! than [`MAX_DRIFT_MS`] ahead of our wall clock is refused by
//! [`Clock::observe`]; the op carrying it is held back until our clock catches
//! up, so one peer with a wrong clock cannot drag everybody's time forward (and
//! cannot close an auction early by post-dating its close op).

use serde::{Deserialize, Serialize};
use std::fmt;

/// How far (ms) a peer's timestamp may run ahead of our wall clock before its
/// op is held back rather than applied.
pub const MAX_DRIFT_MS: u64 = 60_000;

/// One hybrid logical timestamp. Ordered by `ms`, then `logical`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Hlc {
    /// Physical component, milliseconds since the Unix epoch.
    pub ms: u64,
    /// Logical counter within `ms`.
    pub logical: u32,
}

impl Hlc {
    pub const ZERO: Hlc = Hlc { ms: 0, logical: 0 };

    pub fn new(ms: u64, logical: u32) -> Hlc {
        Hlc { ms, logical }
    }

    /// The next timestamp after `self` (used when the counter would overflow:
    /// we move to the next millisecond instead).
    fn successor(self) -> Hlc {
        match self.logical.checked_add(1) {
            Some(l) => Hlc::new(self.ms, l),
            None => Hlc::new(self.ms.saturating_add(1), 0),
        }
    }

    /// True if this timestamp is more than [`MAX_DRIFT_MS`] ahead of `now_ms`.
    pub fn too_far_ahead(&self, now_ms: u64) -> bool {
        self.ms > now_ms.saturating_add(MAX_DRIFT_MS)
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.ms, self.logical)
    }
}

/// A remote timestamp was too far in the future to accept now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooFarAhead {
    pub remote: Hlc,
    pub now_ms: u64,
}

impl fmt::Display for TooFarAhead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timestamp {} is more than {} ms ahead of local time {}", self.remote, MAX_DRIFT_MS, self.now_ms)
    }
}

/// The local hybrid logical clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    last: Hlc,
}

impl Clock {
    pub fn new() -> Clock {
        Clock::default()
    }

    /// The last timestamp issued or observed.
    pub fn last(&self) -> Hlc {
        self.last
    }

    /// A fresh timestamp for a local event: strictly greater than anything
    /// issued or observed before, and equal to `(now_ms, 0)` when the wall
    /// clock is ahead.
    pub fn tick(&mut self, now_ms: u64) -> Hlc {
        self.last = if now_ms > self.last.ms { Hlc::new(now_ms, 0) } else { self.last.successor() };
        self.last
    }

    /// Merges a remote timestamp (standard HLC receive rule) so later local
    /// events sort after it. Refuses timestamps too far ahead of `now_ms`
    /// and leaves the clock unchanged in that case.
    pub fn observe(&mut self, remote: Hlc, now_ms: u64) -> Result<Hlc, TooFarAhead> {
        if remote.too_far_ahead(now_ms) {
            return Err(TooFarAhead { remote, now_ms });
        }
        let wall = Hlc::new(now_ms, 0);
        let top = self.last.max(remote);
        self.last = if wall > top { wall } else { top.successor() };
        Ok(self.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hlc_tick_is_monotonic_when_wall_clock_stalls_or_goes_back() {
        let mut c = Clock::new();
        assert_eq!(c.tick(100), Hlc::new(100, 0));
        assert_eq!(c.tick(100), Hlc::new(100, 1));
        assert_eq!(c.tick(50), Hlc::new(100, 2));
        assert_eq!(c.tick(101), Hlc::new(101, 0));
    }

    #[test]
    fn hlc_observe_moves_past_remote() {
        let mut c = Clock::new();
        c.tick(1_000);
        let r = Hlc::new(5_000, 7);
        let after = c.observe(r, 1_000).unwrap();
        assert!(after > r);
        assert!(c.tick(1_000) > after);
        // A remote timestamp in the past does not move us backwards.
        let before = c.last();
        c.observe(Hlc::new(10, 0), 1_000).unwrap();
        assert!(c.last() > before);
    }

    #[test]
    fn hlc_refuses_timestamps_beyond_max_drift() {
        let mut c = Clock::new();
        c.tick(1_000);
        let far = Hlc::new(1_000 + MAX_DRIFT_MS + 1, 0);
        assert!(c.observe(far, 1_000).is_err());
        assert_eq!(c.last(), Hlc::new(1_000, 0));
        let edge = Hlc::new(1_000 + MAX_DRIFT_MS, 0);
        assert!(c.observe(edge, 1_000).is_ok());
    }

    #[test]
    fn hlc_logical_overflow_rolls_into_next_ms() {
        let mut c = Clock { last: Hlc::new(5, u32::MAX) };
        assert_eq!(c.tick(0), Hlc::new(6, 0));
    }
}
