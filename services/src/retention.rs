//! How long the shop remembers a finished order: one window, the same for every
//! service that keeps something of it (`ORDER_RETENTION_SECS`), so none forgets an
//! order another can still ask about.
//!
//! - the executors keep its record (its page) and `Prune` it through their log;
//! - books_db keeps its decision for one to two windows (`Rotate`);
//! - the queue keeps its acknowledged or withdrawn id (a late duplicate enqueue
//!   adds nothing);
//! - payment keeps its final record (a repeated decision is answered the same).
//!
//! The window must outlast any retry of a message about the order: those end
//! within seconds of the checkout, and the window is a day.

use std::future::Future;
use std::time::Duration;

/// A day: long enough for a shopper to come back to an order's page, short enough
/// that a busy shop keeps a day of orders, not all of them.
pub const DEFAULT: Duration = Duration::from_secs(24 * 3600);

/// How often a service looks for what fell out of `window`: a few times a
/// window, between once a second and once a minute.
pub fn sweep_every(window: Duration) -> Duration {
    (window / 4).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// The moment (Unix ms) before which a thing finished is out of `window` now.
pub fn cutoff_ms(window: Duration) -> u64 {
    platform::clock::unix_ms().saturating_sub(u64::try_from(window.as_millis()).unwrap_or(u64::MAX))
}

/// Every [`sweep_every`]`(window)`, asks `forget` to drop what finished before
/// [`cutoff_ms`]; it answers how many it dropped. Logs what it did as `what`
/// ("order ids", "payments"); runs until its task is dropped.
pub async fn sweep<F, E>(window: Duration, what: &'static str, mut forget: impl FnMut(u64) -> F)
where
    F: Future<Output = Result<u64, E>>,
    E: std::fmt::Display,
{
    loop {
        tokio::time::sleep(sweep_every(window)).await;
        let before_ms = cutoff_ms(window);
        match forget(before_ms).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, before_ms, "forgot {what} finished before the retention window"),
            Err(error) => tracing::warn!(%error, "forgetting old {what} failed; trying again later"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_a_few_times_a_window_but_at_least_once_a_minute_and_at_most_once_a_second() {
        assert_eq!(sweep_every(DEFAULT), Duration::from_secs(60));
        assert_eq!(sweep_every(Duration::from_secs(60)), Duration::from_secs(15));
        assert_eq!(sweep_every(Duration::from_secs(2)), Duration::from_secs(1));
    }
}
