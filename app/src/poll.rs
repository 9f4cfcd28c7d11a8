//! Asking the server again and again while a page is open, so that what the page
//! shows (an order's status, the cluster) follows the system without a reload.
//!
//! One question at a time: the next is asked an interval after the previous answer,
//! so a slow server is never sent a pile of overlapping requests. The loop ends when
//! an answer says nothing more can change, after a bounded number of questions (a
//! forgotten tab does not ask forever), or when the component that started it goes
//! away: its reactive owner is cleaned up, the pending timer is cleared and an
//! answer still in flight is ignored.
//!
//! Browser only: [`poll`] is called from an `Effect`, and effects never run on the
//! server. Timers are leptos's `set_timeout_with_handle`; no timer crate is needed.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;

/// How often to ask, and how many times at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cadence {
    /// From one answer to the next question.
    pub interval: Duration,
    /// Questions asked before giving up.
    pub limit: u32,
}

impl Cadence {
    /// At least how long the loop runs before it gives up (answers take time too).
    pub fn span(self) -> Duration {
        self.interval * self.limit
    }

    /// The span in whole minutes, for the sentence that says polling stopped.
    pub fn span_minutes(self) -> u64 {
        self.span().as_secs() / 60
    }
}

/// What an answer means for the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Something may still change: ask again.
    Again,
    /// Nothing more can change: stop.
    Done,
}

/// What the loop does after its `asked`th answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Ask again after the interval.
    Wait,
    /// The answer was final.
    Stop,
    /// The limit is reached: stop and say so.
    GiveUp,
}

fn step(next: Next, asked: u32, limit: u32) -> Step {
    match next {
        Next::Done => Step::Stop,
        Next::Again if asked >= limit => Step::GiveUp,
        Next::Again => Step::Wait,
    }
}

/// Asks `ask` one `cadence.interval` from now, and again after each answer, until
/// an answer is [`Next::Done`], `cadence.limit` questions were asked (then calls
/// `give_up`), or the current reactive owner is cleaned up.
///
/// Call it from an `Effect` (browser only): the loop stops with that effect.
pub(crate) fn poll<Ask, Answer, GiveUp>(cadence: Cadence, ask: Ask, give_up: GiveUp)
where
    Ask: Fn() -> Answer + 'static,
    Answer: Future<Output = Next> + 'static,
    GiveUp: FnOnce() + 'static,
{
    let stop = Stop::default();
    on_cleanup({
        let stop = stop.clone();
        move || stop.stop()
    });
    Rc::new(Loop { cadence, ask, give_up: Cell::new(Some(give_up)), asked: Cell::new(0), stop }).wait();
}

/// One running loop: shared by its timer and its request in flight.
struct Loop<Ask, GiveUp> {
    cadence: Cadence,
    ask: Ask,
    give_up: Cell<Option<GiveUp>>,
    asked: Cell<u32>,
    stop: Stop,
}

impl<Ask, Answer, GiveUp> Loop<Ask, GiveUp>
where
    Ask: Fn() -> Answer + 'static,
    Answer: Future<Output = Next> + 'static,
    GiveUp: FnOnce() + 'static,
{
    /// Asks again after the interval.
    fn wait(self: Rc<Self>) {
        let stop = self.stop.clone();
        let interval = self.cadence.interval;
        // A browser that refuses a timer ends the loop; the page keeps what it shows.
        if let Ok(timer) = set_timeout_with_handle(move || self.ask(), interval) {
            stop.keep(timer);
        }
    }

    fn ask(self: Rc<Self>) {
        if self.stop.is_stopped() {
            return;
        }
        spawn_local(async move {
            let next = (self.ask)().await;
            if self.stop.is_stopped() {
                return;
            }
            let asked = self.asked.get().saturating_add(1);
            self.asked.set(asked);
            match step(next, asked, self.cadence.limit) {
                Step::Wait => self.wait(),
                Step::Stop => {}
                Step::GiveUp => {
                    if let Some(give_up) = self.give_up.take() {
                        give_up();
                    }
                }
            }
        });
    }
}

/// Ends a loop from outside (the owner's cleanup, which must be `Send + Sync`).
#[derive(Clone, Default)]
struct Stop(Arc<Mutex<StopState>>);

#[derive(Default)]
struct StopState {
    stopped: bool,
    /// The timer of the next question, cleared on stop.
    timer: Option<TimeoutHandle>,
}

impl Stop {
    fn stop(&self) {
        let mut state = self.lock();
        state.stopped = true;
        if let Some(timer) = state.timer.take() {
            timer.clear();
        }
    }

    fn is_stopped(&self) -> bool {
        self.lock().stopped
    }

    /// Remembers the pending timer, or clears it at once if the loop has stopped.
    fn keep(&self, timer: TimeoutHandle) {
        let mut state = self.lock();
        if state.stopped {
            timer.clear();
        } else {
            state.timer = Some(timer);
        }
    }

    fn lock(&self) -> MutexGuard<'_, StopState> {
        // Nothing here can panic while holding the lock; a poisoned flag is still a flag.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_final_answer_stops_at_once() {
        assert_eq!(step(Next::Done, 1, 10), Step::Stop);
        assert_eq!(step(Next::Done, 10, 10), Step::Stop);
    }

    #[test]
    fn the_loop_asks_again_until_the_limit_then_gives_up() {
        assert_eq!(step(Next::Again, 1, 3), Step::Wait);
        assert_eq!(step(Next::Again, 2, 3), Step::Wait);
        assert_eq!(step(Next::Again, 3, 3), Step::GiveUp);
    }

    #[test]
    fn a_stopped_loop_stays_stopped() {
        let stop = Stop::default();
        assert!(!stop.is_stopped());
        stop.stop();
        assert!(stop.is_stopped());
        stop.stop();
        assert!(stop.clone().is_stopped());
    }

    #[test]
    fn the_span_is_interval_times_limit() {
        let cadence = Cadence { interval: Duration::from_secs(2), limit: 300 };
        assert_eq!(cadence.span(), Duration::from_secs(600));
        assert_eq!(cadence.span_minutes(), 10);
    }
}
