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
//! 2. An approved checkout that took longer than the target while the limit was in
//!    use (at least half of it running) means checkouts queue somewhere: the limit
//!    shrinks to [`BACKOFF`] of itself. Once per generation: checkouts admitted
//!    before a decrease ran under the old limit, so their slowness says nothing new
//!    and decreases nothing. A slow one while few run says nothing of the limit (a
//!    lower one would not have made it faster), so at ordinary load the limit stays
//!    where it is, and bursts of ordinary load are not refused.
//! 3. One within the target, while at least half the limit is in use, grows the
//!    limit by `1 / limit`: by about one for each limit's worth of checkouts.
//! 4. Only approved checkouts count: a refusal may end after one call and say
//!    nothing about the pipeline.
//!
//! The floor is low (a thirty-second of the ceiling): beyond capacity, what slows
//! an accepted checkout is mostly the work the others already accepted cause (their
//! execution, on the same cores), so the limit must be free to fall until accepted
//! checkouts are as fast as usual.
//!
//! **Invariant**, checked after every change: `floor ≤ limit ≤ ceiling`, and
//! `running` is the number of permits alive. (`running` may exceed a limit that
//! just shrank: those checkouts finish, and none is admitted until it is below.)
//!
//! With no target, the limit is the ceiling, fixed.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// What a slow approved checkout leaves of the limit.
pub(crate) const BACKOFF: f64 = 0.9;

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

#[derive(Debug)]
struct State {
    running: usize,
    limit: f64,
    /// Bumped by each decrease; a permit remembers the one it was admitted in.
    generation: u64,
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
        let state = State { running: 0, limit: limits.ceiling as f64, generation: 0 };
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

    /// Steps 2 and 3: an approved checkout admitted in `generation` took `took`.
    fn approved(&self, generation: u64, took: Duration) {
        let Some(target) = self.limits.target else { return };
        let mut state = self.lock();
        // This checkout's permit is still alive, so it counts among the running.
        let in_use = state.running as f64 * 2.0 >= state.limit;
        if !in_use {
            return;
        }
        if took > target {
            if generation == state.generation {
                state.limit = (state.limit * BACKOFF).max(self.limits.floor as f64);
                state.generation += 1;
            }
        } else {
            state.limit = (state.limit + 1.0 / state.limit).min(self.limits.ceiling as f64);
        }
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
    /// The checkout was approved after `took` (step 4); frees the place.
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
    fn slow_checkouts_while_the_limit_is_in_use_shrink_it_once_per_generation_down_to_the_floor() {
        let admission = admission();
        assert_eq!(wave(&admission, 64, SLOW), 64);
        assert_eq!(admission.limit(), 57, "64 slow checkouts of one generation: one decrease");
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
    fn fast_checkouts_grow_it_back_to_the_ceiling_when_it_is_used_and_not_when_idle() {
        let admission = admission();
        for _ in 0..100 {
            wave(&admission, 64, SLOW);
        }
        for _ in 0..100 {
            wave(&admission, 1, FAST);
        }
        assert_eq!(admission.limit(), 2, "one at a time uses too little of a limit above 2 to grow it");
        for _ in 0..400 {
            wave(&admission, 64, FAST);
        }
        assert_eq!(admission.limit(), 64, "full waves of fast checkouts grow it back, up to the ceiling");
    }

    #[test]
    fn a_slow_checkout_admitted_before_a_decrease_does_not_decrease_again() {
        let admission = admission();
        let mut early: Vec<_> = (0..40).map_while(|_| admission.try_admit()).collect();
        early.pop().expect("admitted").approved(SLOW);
        assert_eq!(admission.limit(), 57);
        early.pop().expect("admitted").approved(SLOW);
        assert_eq!(admission.limit(), 57, "it ran under the old limit");
        admission.try_admit().expect("admitted").approved(SLOW);
        assert_eq!(admission.limit(), 51, "a checkout of the new generation does");
    }
}
