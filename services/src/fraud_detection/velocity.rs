//! Order velocity: how many orders one key (an email, a card) placed within a
//! sliding window. Time is passed in, so the rules are tested without sleeping.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

pub struct SlidingWindow {
    window_ms: u64,
    limit: u32,
    max_keys: usize,
    hits: HashMap<String, VecDeque<u64>>,
}

impl SlidingWindow {
    /// At most `limit` orders per key within `window`; remembers at most `max_keys`
    /// keys (the quietest are forgotten first when full).
    pub fn new(window: Duration, limit: u32, max_keys: usize) -> Self {
        Self { window_ms: window.as_millis() as u64, limit, max_keys, hits: HashMap::new() }
    }

    /// Records an order for `key` at `now_ms`; false when it is over the limit.
    /// Refused attempts count too: hammering the checkout keeps the key blocked.
    pub fn record(&mut self, key: &str, now_ms: u64) -> bool {
        let window_ms = self.window_ms;
        let outside = move |t: u64| now_ms.saturating_sub(t) >= window_ms;
        if !self.hits.contains_key(key) && self.hits.len() >= self.max_keys {
            self.evict(outside);
        }
        let hits = self.hits.entry(key.to_owned()).or_default();
        while hits.front().is_some_and(|&t| outside(t)) {
            hits.pop_front();
        }
        hits.push_back(now_ms);
        // Bound one key's memory: beyond the limit the exact count no longer matters.
        while hits.len() > self.limit as usize + 1 {
            hits.pop_front();
        }
        hits.len() <= self.limit as usize
    }

    fn evict(&mut self, outside: impl Fn(u64) -> bool) {
        self.hits.retain(|_, hits| hits.back().is_some_and(|&t| !outside(t)));
        while self.hits.len() >= self.max_keys {
            let quietest =
                self.hits.iter().min_by_key(|(_, hits)| hits.back().copied().unwrap_or(0)).map(|(key, _)| key.clone());
            match quietest {
                Some(key) => self.hits.remove(&key),
                None => break,
            };
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn window(&self) -> Duration {
        Duration::from_millis(self.window_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sixth_order_within_the_window_is_refused() {
        let mut window = SlidingWindow::new(Duration::from_secs(60), 5, 100);
        for i in 0..5 {
            assert!(window.record("card", 1_000 + i * 1_000), "order {}", i + 1);
        }
        assert!(!window.record("card", 10_000));
        assert!(window.record("other card", 10_000), "keys are counted apart");
    }

    #[test]
    fn orders_leave_the_window_after_it_passes() {
        let mut window = SlidingWindow::new(Duration::from_secs(60), 2, 100);
        assert!(window.record("k", 0));
        assert!(window.record("k", 30_000));
        assert!(!window.record("k", 59_000));
        // At 90 s the orders at 0 s and 30 s have left; the refused one at 59 s is
        // still inside, so this is the second in the window.
        assert!(window.record("k", 90_000));
    }

    #[test]
    fn forgets_the_quietest_key_when_full() {
        let mut window = SlidingWindow::new(Duration::from_secs(60), 1, 2);
        assert!(window.record("a", 0));
        assert!(window.record("b", 10));
        assert!(window.record("c", 20));
        assert!(window.record("a", 30), "a was evicted, so this is its first order again");
        assert!(!window.record("c", 40));
    }
}
