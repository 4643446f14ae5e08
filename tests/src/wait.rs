//! Polling with a deadline and an explanation.

use std::fmt::Debug;
use std::time::{Duration, Instant};

/// How often [`wait_until`] re-checks its condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Polls `check` every [`POLL_INTERVAL`] until it returns `Ok(value)`, and
/// returns that value. `Err(observed)` means "not yet"; when `timeout` passes
/// (or one check hangs past it) this panics with `what` and the last observed
/// value, so a failure says what the system looked like.
pub async fn wait_until<T, E: Debug>(timeout: Duration, what: &str, mut check: impl AsyncFnMut() -> Result<T, E>) -> T {
    let start = Instant::now();
    let deadline = start + timeout;
    let mut last: Option<E> = None;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        // A check that hangs (a stuck WebDriver call) must not hang the test;
        // the grace lets a check started just before the deadline finish.
        let budget = deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(5);
        match tokio::time::timeout(budget, check()).await {
            Ok(Ok(v)) => return v,
            Ok(Err(observed)) => last = Some(observed),
            Err(_) => panic!(
                "timed out after {:?} waiting for {what}: a check did not return \
                 (last observed before it: {last:?})",
                start.elapsed()
            ),
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {:?} ({attempts} checks) waiting for {what}; \
                 last observed: {:#?}",
                start.elapsed(),
                last.expect("at least one check ran")
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_first_ok_value() {
        let mut n = 0;
        let v = wait_until(Duration::from_secs(5), "n reaches 3", async || {
            n += 1;
            if n >= 3 { Ok(n * 10) } else { Err(n) }
        })
        .await;
        assert_eq!(v, 30);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for the impossible; last observed: 7")]
    async fn times_out_with_the_last_observation() {
        wait_until(Duration::from_millis(120), "the impossible", async || Err::<(), _>(7)).await;
    }
}
