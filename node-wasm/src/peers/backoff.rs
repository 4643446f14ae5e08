//! Rule `reconnect_backoff`: how long to wait before dialling a dropped
//! peer again. Exponential from 0.5 s, doubling up to 30 s, plus up to
//! 250 ms of jitter so that two peers that lost each other at the same
//! moment do not redial in lockstep.

/// First retry delay.
pub const BACKOFF_BASE_MS: u64 = 500;
/// Longest delay between retries.
pub const BACKOFF_MAX_MS: u64 = 30_000;
/// Random spread added to each delay.
pub const BACKOFF_JITTER_MS: u64 = 250;

/// Delay before attempt number `attempt` (1 = first retry); `random` is
/// injected randomness.
pub fn backoff_delay(attempt: u32, random: u64) -> u64 {
    let doublings = attempt.saturating_sub(1).min(6);
    let base = BACKOFF_BASE_MS.saturating_mul(1 << doublings).min(BACKOFF_MAX_MS);
    base + random % BACKOFF_JITTER_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_backoff_doubles_to_a_cap_with_bounded_jitter() {
        assert_eq!(backoff_delay(1, 0), 500);
        assert_eq!(backoff_delay(2, 0), 1000);
        assert_eq!(backoff_delay(6, 0), 16_000);
        assert_eq!(backoff_delay(7, 0), 30_000);
        assert_eq!(backoff_delay(u32::MAX, 0), 30_000);
        assert_eq!(backoff_delay(0, 0), 500);
        assert!(backoff_delay(1, u64::MAX) < 500 + BACKOFF_JITTER_MS);
    }
}
