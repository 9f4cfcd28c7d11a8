//! How many checkouts run at once: a limit that adapts to how long approved
//! checkouts take (additive increase, multiplicative decrease, like TCP's
//! congestion window), between a floor and a ceiling.
//!
//! A fixed limit must choose. High, and beyond capacity every admitted checkout
//! waits behind the others (64 at once took 60 ms at the median where 5 ms is
//! usual, docs/benchmarks.md); low, and bursts at ordinary load are refused. So:
//!
//! 1. A checkout is admitted while fewer than `limit` run; otherwise it is refused
//!    at once (`busy`, `Retry-After`), before anything is done for it.
//! 2. Approved checkouts are judged in windows: the first [`WINDOW`] approved
//!    checkouts admitted under the current limit. Checkouts admitted under an
//!    earlier limit say nothing of this one and are not counted.
//! 3. A window whose mean latency is over the target, while the limit was in use
//!    (at least half of it running at some approval), means checkouts queue
//!    somewhere: the limit shrinks by `target / mean`, to between [`DEEPEST`] and
//!    [`BACKOFF`] of itself. Slow while few run says nothing of the limit (a lower
//!    one would not have made them faster): no change.
//! 4. A window within the target grows the limit by one and an eighth of itself
//!    ([`GROWTH`]): by one where it is small, as beyond capacity; faster once it is
//!    larger, so after an overload or a stall ordinary load brings it back to the
//!    ceiling within a few hundred checkouts, and its bursts are not refused.
//! 5. Only approved checkouts count: a refusal may end after one call and say
//!    nothing about the pipeline.
//!
//! A mean over a window, not each checkout: latencies vary (at ordinary load the
//! p90 is twice the median), and reacting to each slow one would hold the limit
//! below what the shop can take. The floor is low (a thirty-second of the
//! ceiling): beyond capacity, what slows an accepted checkout is mostly the work
//! the others accepted cause (their execution, on the same cores), so the limit
//! must be free to fall until accepted checkouts are as fast as usual.
//!
//! **Invariant**, checked after every change: `floor ≤ limit ≤ ceiling`, and
//! `running` is the number of permits alive. (`running` may exceed a limit that
//! just shrank: those checkouts finish, and none is admitted until it is below.)
//!
//! With no target, the limit is the ceiling, fixed.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The fewest approved checkouts a window judges (step 2).
pub(crate) const WINDOW: u32 = 16;
/// A window within the target grows the limit by one and this fraction of it
/// (step 4).
pub(crate) const GROWTH: f64 = 8.0;
/// The most a slow window leaves of the limit (step 3).
pub(crate) const BACKOFF: f64 = 0.9;
/// The least it leaves, however slow.
pub(crate) const DEEPEST: f64 = 0.5;

/// The bounds and target of an [`Admission`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// The fewest checkouts admitted at once, whatever their latency.
    pub floor: usize,
    /// The most.
    pub ceiling: usize,
    /// How long an approved checkout may take before the limit shrinks; `None`:
    /// the limit stays at the ceiling.
    pub target: Option<Duration>,
}

impl Limits {
    /// The web server's: at most `ceiling`, at least a thirty-second of it (and at
    /// least one), adapting to `target`.
    pub fn adaptive(ceiling: usize, target: Option<Duration>) -> Self {
        let ceiling = ceiling.max(1);
        Self { floor: (ceiling / 32).max(1), ceiling, target }
    }
}

pub(crate) struct Admission {
    limits: Limits,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    running: usize,
    limit: f64,
    /// Bumped as each window ends; a permit remembers the one it was admitted in.
    generation: u64,
    window: Window,
}

/// The window so far (step 2): how many approved checkouts, their total latency,
/// and the most running at one of their approvals.
#[derive(Debug, Default)]
struct Window {
    samples: u32,
    total: Duration,
    busiest: usize,
}

/// A checkout's place; dropping it frees the place.
pub(crate) struct Permit<'a> {
    admission: &'a Admission,
    generation: u64,
}

impl Admission {
    pub(crate) fn new(limits: Limits) -> Self {
        let limits =
            Limits { ceiling: limits.ceiling.max(1), floor: limits.floor.clamp(1, limits.ceiling.max(1)), ..limits };
        let state = State { limit: limits.ceiling as f64, ..State::default() };
        Self { limits, state: Mutex::new(state) }
    }

    /// A place for one more checkout, or `None` when the limit is reached (step 1).
    pub(crate) fn try_admit(&self) -> Option<Permit<'_>> {
        let mut state = self.lock();
        if state.running as f64 >= state.limit.floor() {
            return None;
        }
        state.running += 1;
        let generation = state.generation;
        self.check(&state);
        Some(Permit { admission: self, generation })
    }

    /// The limit now, rounded down: how many checkouts may run at once.
    pub(crate) fn limit(&self) -> usize {
        self.lock().limit as usize
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Steps 2 to 4: an approved checkout admitted in `generation` took `took`.
    fn approved(&self, generation: u64, took: Duration) {
        let Some(target) = self.limits.target else { return };
        let mut state = self.lock();
        if generation != state.generation {
            return;
        }
        let running = state.running;
        let window = &mut state.window;
        window.samples += 1;
        window.total += took;
        // This checkout's permit is still alive, so it counts among the running.
        window.busiest = window.busiest.max(running);
        if window.samples < WINDOW {
            return;
        }
        let window = std::mem::take(&mut state.window);
        let mean = window.total / window.samples;
        let in_use = window.busiest as f64 * 2.0 >= state.limit;
        if mean <= target {
            state.limit = (state.limit + 1.0 + state.limit / GROWTH).min(self.limits.ceiling as f64);
        } else if in_use {
            let factor = (target.as_secs_f64() / mean.as_secs_f64()).clamp(DEEPEST, BACKOFF);
            state.limit = (state.limit * factor).max(self.limits.floor as f64);
        }
        state.generation += 1;
        self.check(&state);
    }

    fn check(&self, state: &State) {
        debug_assert!(
            self.limits.floor as f64 <= state.limit && state.limit <= self.limits.ceiling as f64,
            "limit out of bounds: {state:?} {:?}",
            self.limits
        );
    }
}

impl Permit<'_> {
    /// The checkout was approved after `took` (step 2); frees the place.
    pub(crate) fn approved(self, took: Duration) {
        self.admission.approved(self.generation, took);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut state = self.admission.lock();
        state.running -= 1;
        self.admission.check(&state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGET: Duration = Duration::from_millis(50);
    const FAST: Duration = Duration::from_millis(10);
    const SLOW: Duration = Duration::from_millis(200);

    fn admission() -> Admission {
        Admission::new(Limits::adaptive(64, Some(TARGET)))
    }

    /// Runs `n` checkouts at once, each approved after `took`; answers how many
    /// were admitted.
    fn wave(admission: &Admission, n: usize, took: Duration) -> usize {
        let permits: Vec<_> = (0..n).map_while(|_| admission.try_admit()).collect();
        let admitted = permits.len();
        for permit in permits {
            permit.approved(took);
        }
        admitted
    }

    #[test]
    fn admits_up_to_the_limit_and_frees_a_place_when_a_checkout_ends() {
        let admission = Admission::new(Limits { floor: 1, ceiling: 2, target: None });
        let one = admission.try_admit().expect("first");
        let two = admission.try_admit().expect("second");
        assert!(admission.try_admit().is_none(), "a third is refused");
        drop(one);
        let three = admission.try_admit().expect("a place was freed");
        two.approved(SLOW);
        drop(three);
        assert_eq!(admission.limit(), 2, "no target: the limit never moves");
    }

    #[test]
    fn a_slow_window_while_the_limit_is_in_use_shrinks_it_by_how_slow_down_to_the_floor() {
        let admission = admission();
        assert_eq!(wave(&admission, 15, SLOW), 15);
        assert_eq!(admission.limit(), 64, "fifteen approved: not a window yet");
        assert_eq!(wave(&admission, 64, SLOW), 64);
        assert_eq!(admission.limit(), 32, "four times the target while 64 ran: halved, no further");
        assert_eq!(wave(&admission, 32, Duration::from_millis(55)), 32);
        assert_eq!(admission.limit(), 28, "a little over the target: a tenth off");
        for _ in 0..100 {
            wave(&admission, 64, SLOW);
        }
        assert_eq!(admission.limit(), 2, "never below the floor (a thirty-second of the ceiling)");
        assert_eq!(wave(&admission, 64, FAST), 2, "only the limit is admitted");
    }

    #[test]
    fn slow_checkouts_while_few_run_leave_the_limit_alone() {
        let admission = admission();
        for _ in 0..100 {
            wave(&admission, 1, SLOW);
            wave(&admission, 31, SLOW);
        }
        assert_eq!(admission.limit(), 64, "under half the limit in use: the slowness is not the limit's");
    }

    #[test]
    fn fast_windows_grow_it_back_to_the_ceiling_busy_or_not() {
        let admission = admission();
        admission.lock().limit = 2.0;
        for _ in 0..15 {
            wave(&admission, 1, FAST);
        }
        assert_eq!(admission.limit(), 2, "fifteen approved: not a window yet");
        wave(&admission, 1, FAST);
        assert_eq!(admission.limit(), 3, "a window within the target: one more, and an eighth");
        for _ in 0..(16 * 20) {
            wave(&admission, 1, FAST);
        }
        assert_eq!(admission.limit(), 64, "up to the ceiling within twenty windows, even one at a time");
    }

    #[test]
    fn checkouts_admitted_under_an_earlier_limit_are_not_counted() {
        let admission = admission();
        let stale: Vec<_> = (0..48).map_while(|_| admission.try_admit()).collect();
        wave(&admission, 16, SLOW);
        assert_eq!(admission.limit(), 32, "a slow window while 64 ran");
        for permit in stale {
            permit.approved(SLOW);
        }
        assert_eq!(admission.limit(), 32, "admitted under 64: not counted");
        wave(&admission, 15, FAST);
        assert_eq!(admission.limit(), 32, "fifteen of the new limit: not a window yet");
        wave(&admission, 1, FAST);
        assert_eq!(admission.limit(), 37, "sixteen fast ones of the new limit: one more, and an eighth");
    }
}
