//! How patiently the leader asks the queue for work. Asking is a long poll, so
//! while orders flow the leader asks again at once. Each step grows additively —
//! by default the seed's 1 s, 3 s, 5 s, 5 s being the ceiling — and falls back to
//! the first step the moment an order arrives (a multiplicative decrease):
//! - a poll that comes back empty makes the next long poll wait longer (it still
//!   answers as soon as an order is enqueued);
//! - a queue that cannot be reached makes the leader sleep that long before it
//!   asks again.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// The first pause after an idle poll.
    pub first: Duration,
    /// What each further idle poll adds.
    pub step: Duration,
    pub ceiling: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self { first: Duration::from_secs(1), step: Duration::from_secs(2), ceiling: Duration::from_secs(5) }
    }
}

#[derive(Debug, Clone)]
pub struct Backoff {
    policy: BackoffPolicy,
    pause: Duration,
}

impl Backoff {
    pub fn new(policy: BackoffPolicy) -> Self {
        Self { policy, pause: Duration::ZERO }
    }

    /// An order arrived: the next step is the first again.
    pub fn on_order(&mut self) {
        self.pause = Duration::ZERO;
    }

    /// The poll found nothing or failed: how long the next long poll waits, or
    /// the leader sleeps before asking an unreachable queue again.
    pub fn on_idle(&mut self) -> Duration {
        self.pause = if self.pause.is_zero() { self.policy.first } else { self.pause + self.policy.step };
        self.pause = self.pause.min(self.policy.ceiling);
        self.pause
    }

    #[cfg(test)]
    fn current(&self) -> Duration {
        self.pause
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_polls_back_off_1_3_5_seconds_and_stay_at_the_ceiling() {
        let mut backoff = Backoff::new(BackoffPolicy::default());
        let pauses: Vec<u64> = (0..5).map(|_| backoff.on_idle().as_secs()).collect();
        assert_eq!(pauses, [1, 3, 5, 5, 5]);
    }

    #[test]
    fn an_order_returns_to_fast_polling_at_once() {
        let mut backoff = Backoff::new(BackoffPolicy::default());
        backoff.on_idle();
        backoff.on_idle();
        backoff.on_order();
        assert_eq!(backoff.current(), Duration::ZERO);
        assert_eq!(backoff.on_idle(), Duration::from_secs(1), "and backs off from the start again");
    }

    #[test]
    fn the_ceiling_is_configurable() {
        let policy = BackoffPolicy {
            first: Duration::from_millis(100),
            step: Duration::from_millis(100),
            ceiling: Duration::from_millis(250),
        };
        let mut backoff = Backoff::new(policy);
        let pauses: Vec<u128> = (0..4).map(|_| backoff.on_idle().as_millis()).collect();
        assert_eq!(pauses, [100, 200, 250, 250]);
    }
}
