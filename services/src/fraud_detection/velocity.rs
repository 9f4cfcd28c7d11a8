//! Order velocity: how many checkouts one key (a name, an email, a card) went
//! through within a sliding window. Time is passed in, so the rules are tested
//! without sleeping.
//!
//! A checkout is counted the moment it is checked (so concurrent checkouts see
//! each other) and settled when it ends ([`SlidingWindow::settle`]): an approved
//! order stays as an order, a checkout refused for fraud stays as an attempt
//! (someone testing cards keeps the key blocked), and one refused for anything
//! else (the shopper's own input, stock, a service down before the order was
//! queued) is taken out: it could never have been charged. A checkout never
//! settled (its clear_order was lost, or said no result) stays counted until it
//! leaves the window, and so does one whose enqueue timed out (it may be charged).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// How a checkout ended, as far as the windows care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Approved: it stays counted as an order.
    Order,
    /// Refused for fraud: it stays counted as an attempt.
    Attempt,
    /// Refused for anything else: it is taken out of every window.
    Withdrawn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hit {
    /// The checkout has not ended yet.
    Open,
    Order,
    Attempt,
}

#[derive(Debug)]
struct Entry {
    at_ms: u64,
    order_id: String,
    hit: Hit,
}

/// The verdict on one more checkout for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Within,
    Over {
        /// Whether everything counted before this checkout was an approved order
        /// (else some were attempts: refused, or not ended yet).
        only_orders: bool,
        /// How long until a new checkout would be within the limit, if none comes
        /// in between.
        retry_after: Duration,
    },
}

pub struct SlidingWindow {
    window_ms: u64,
    limit: u32,
    max_keys: usize,
    hits: HashMap<String, VecDeque<Entry>>,
}

impl SlidingWindow {
    /// At most `limit` checkouts per key within `window`; remembers at most
    /// `max_keys` keys (the quietest are forgotten first when full).
    pub fn new(window: Duration, limit: u32, max_keys: usize) -> Self {
        Self { window_ms: window.as_millis() as u64, limit, max_keys, hits: HashMap::new() }
    }

    /// At most this many entries per key, so one key's memory stays bounded
    /// however it is hammered. A checkout that finds its key full is judged over
    /// the limit without being counted: nothing counted is ever dropped early
    /// (dropping settled orders to make room for open checkouts that are then
    /// withdrawn would empty the window).
    fn max_entries(&self) -> usize {
        4 * (self.limit as usize + 1)
    }

    /// Counts checkout `order_id` for `key` at `now_ms` and judges it. Counting the
    /// same checkout twice for one key changes nothing.
    pub fn record(&mut self, key: &str, order_id: &str, now_ms: u64) -> Verdict {
        let window_ms = self.window_ms;
        let outside = move |t: u64| now_ms.saturating_sub(t) >= window_ms;
        if !self.hits.contains_key(key) && self.hits.len() >= self.max_keys {
            self.evict(outside);
        }
        let max_entries = self.max_entries();
        let entries = self.hits.entry(key.to_owned()).or_default();
        while entries.front().is_some_and(|entry| outside(entry.at_ms)) {
            entries.pop_front();
        }
        let known = entries.iter().any(|entry| entry.order_id == order_id);
        if !known && entries.len() < max_entries {
            entries.push_back(Entry { at_ms: now_ms, order_id: order_id.to_owned(), hit: Hit::Open });
        }
        let counted = entries.len() + usize::from(!known && entries.len() >= max_entries);
        let limit = self.limit as usize;
        if counted <= limit {
            return Verdict::Within;
        }
        let only_orders =
            entries.iter().filter(|entry| entry.order_id != order_id).all(|entry| entry.hit == Hit::Order);
        // A new checkout fits once all but limit - 1 of these have left the window
        // (with a limit of 0, never: say the whole window).
        let frees_a_place = entries.get(entries.len() - limit).map_or(now_ms, |entry| entry.at_ms);
        let retry_after = Duration::from_millis((frees_a_place + window_ms).saturating_sub(now_ms));
        Verdict::Over { only_orders, retry_after }
    }

    /// Settles what was counted for `order_id` under `key`.
    pub fn settle(&mut self, key: &str, order_id: &str, settlement: Settlement) {
        let Some(entries) = self.hits.get_mut(key) else { return };
        match settlement {
            Settlement::Withdrawn => entries.retain(|entry| entry.order_id != order_id),
            Settlement::Order | Settlement::Attempt => {
                let hit = if settlement == Settlement::Order { Hit::Order } else { Hit::Attempt };
                for entry in entries.iter_mut().filter(|entry| entry.order_id == order_id) {
                    entry.hit = hit;
                }
            }
        }
        if entries.is_empty() {
            self.hits.remove(key);
        }
    }

    fn evict(&mut self, outside: impl Fn(u64) -> bool) {
        self.hits.retain(|_, entries| entries.back().is_some_and(|entry| !outside(entry.at_ms)));
        while self.hits.len() >= self.max_keys {
            let quietest = self
                .hits
                .iter()
                .min_by_key(|(_, entries)| entries.back().map_or(0, |entry| entry.at_ms))
                .map(|(key, _)| key.clone());
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

    fn window(limit: u32) -> SlidingWindow {
        SlidingWindow::new(Duration::from_secs(60), limit, 100)
    }

    /// Records and settles checkout `id` at `at_ms`; its verdict.
    fn checkout(window: &mut SlidingWindow, key: &str, id: &str, at_ms: u64, settlement: Settlement) -> Verdict {
        let verdict = window.record(key, id, at_ms);
        window.settle(key, id, settlement);
        verdict
    }

    #[test]
    fn the_sixth_order_within_the_window_is_refused_and_told_when_to_come_back() {
        let mut window = window(5);
        for i in 0..5 {
            let verdict = checkout(&mut window, "card", &format!("o{i}"), 1_000 + i * 1_000, Settlement::Order);
            assert_eq!(verdict, Verdict::Within, "order {}", i + 1);
        }
        // Orders at 1..5 s; at 10 s a sixth fits once the order of 2 s has left: at 62 s.
        let verdict = window.record("card", "o6", 10_000);
        assert_eq!(verdict, Verdict::Over { only_orders: true, retry_after: Duration::from_secs(52) });
        assert_eq!(window.record("other card", "o7", 10_000), Verdict::Within, "keys are counted apart");
    }

    #[test]
    fn checkouts_withdrawn_are_not_counted() {
        let mut window = window(2);
        for i in 0..10 {
            assert_eq!(checkout(&mut window, "k", &format!("bad{i}"), i, Settlement::Withdrawn), Verdict::Within);
        }
        assert_eq!(checkout(&mut window, "k", "good1", 20, Settlement::Order), Verdict::Within);
        assert_eq!(checkout(&mut window, "k", "good2", 21, Settlement::Order), Verdict::Within);
        assert!(matches!(window.record("k", "good3", 22), Verdict::Over { only_orders: true, .. }));
    }

    #[test]
    fn refused_attempts_count_and_are_called_attempts() {
        let mut window = window(2);
        checkout(&mut window, "k", "a1", 0, Settlement::Attempt);
        checkout(&mut window, "k", "a2", 1, Settlement::Attempt);
        assert!(matches!(window.record("k", "o1", 2), Verdict::Over { only_orders: false, .. }));
    }

    #[test]
    fn open_checkouts_count_for_concurrent_ones() {
        let mut window = window(1);
        assert_eq!(window.record("k", "first", 0), Verdict::Within);
        assert!(matches!(window.record("k", "second", 1), Verdict::Over { only_orders: false, .. }));
        window.record("k", "first", 2);
        assert_eq!(window.hits["k"].len(), 2, "one checkout counts once per key");
    }

    #[test]
    fn checkouts_leave_the_window_after_it_passes() {
        let mut window = window(2);
        checkout(&mut window, "k", "o1", 0, Settlement::Order);
        checkout(&mut window, "k", "o2", 30_000, Settlement::Order);
        assert!(matches!(checkout(&mut window, "k", "o3", 59_000, Settlement::Attempt), Verdict::Over { .. }));
        // At 90 s the orders at 0 s and 30 s have left; the refused attempt at 59 s
        // is still inside, so this is the second in the window.
        assert_eq!(window.record("k", "o4", 90_000), Verdict::Within);
    }

    #[test]
    fn forgets_the_quietest_key_when_full() {
        let mut window = SlidingWindow::new(Duration::from_secs(60), 1, 2);
        checkout(&mut window, "a", "1", 0, Settlement::Order);
        checkout(&mut window, "b", "2", 10, Settlement::Order);
        checkout(&mut window, "c", "3", 20, Settlement::Order);
        assert_eq!(window.record("a", "4", 30), Verdict::Within, "a was evicted, so this is its first order again");
        assert!(matches!(window.record("c", "5", 40), Verdict::Over { .. }));
    }

    #[test]
    fn one_key_holds_a_bounded_number_of_entries() {
        let mut window = window(2);
        for i in 0..1_000 {
            window.record("k", &format!("o{i}"), i);
        }
        assert_eq!(window.hits["k"].len(), window.max_entries());
    }

    #[test]
    fn a_flood_of_withdrawn_checkouts_does_not_push_settled_orders_out() {
        let mut window = window(2);
        checkout(&mut window, "k", "o1", 0, Settlement::Order);
        checkout(&mut window, "k", "o2", 1, Settlement::Order);
        // Many concurrent checkouts that will all be refused for their input.
        let flood: Vec<String> = (0..100).map(|i| format!("bad{i}")).collect();
        for id in &flood {
            assert!(matches!(window.record("k", id, 2), Verdict::Over { .. }));
        }
        for id in &flood {
            window.settle("k", id, Settlement::Withdrawn);
        }
        assert!(matches!(window.record("k", "o3", 3), Verdict::Over { only_orders: true, .. }));
    }
}
