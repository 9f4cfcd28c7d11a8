//! An order's journey, on its page: each checkout event (a–f) with its service,
//! its vector clock after the event and when it ended; then the queue (priority,
//! place while waiting); then the executors' two-phase commit (which leader, in
//! which term, both votes, the decision and who logged it); then the end.
//!
//! For a shopper it says where the order is; for a student of distributed systems
//! it shows the clocks and the two-phase commit of a real order. Times are shown
//! from the checkout's first event ("+3 ms"), and that first moment as a UTC time.

use domain::journey::{Execution, Journey, LeaderStamp, Queued};
use leptos::prelude::*;

/// `ms` after `origin`, as "+12 ms" (or "+1.25 s").
fn after(origin: u64, ms: u64) -> String {
    let elapsed = ms.saturating_sub(origin);
    if elapsed < 1_000 {
        format!("+{elapsed} ms")
    } else {
        format!("+{}.{:02} s", elapsed / 1_000, elapsed % 1_000 / 10)
    }
}

/// A Unix time in milliseconds as the UTC time of day, "14:03:07.250 UTC".
fn time_of_day(ms: u64) -> String {
    let of_day = ms % 86_400_000;
    let (hours, minutes, seconds, millis) =
        (of_day / 3_600_000, of_day / 60_000 % 60, of_day / 1_000 % 60, of_day % 1_000);
    format!("{hours:02}:{minutes:02}:{seconds:02}.{millis:03} UTC")
}

fn leader(stamp: &LeaderStamp) -> String {
    format!("executor {} (leader in term {})", stamp.node, stamp.term)
}

#[component]
pub(crate) fn JourneyView(journey: Signal<Option<Journey>>) -> impl IntoView {
    move || {
        journey.get().filter(|journey| !journey.checkout.is_empty() || journey.queued.is_some()).map(|journey| {
            let origin = journey
                .began_at_ms()
                .or(journey.queued.as_ref().map(|queued| queued.accepted_at_ms))
                .unwrap_or_default();
            let checkout = journey.checkout.iter().map(|event| checkout_step(origin, event)).collect_view();
            let queued = journey.queued.as_ref().map(|queued| queued_step(origin, queued, journey.execution.is_some()));
            let execution = journey.execution.as_ref().map(|execution| execution_steps(origin, execution));
            view! {
                <section class="journey" id="order-journey" aria-labelledby="journey-title">
                    <h2 id="journey-title">"How this order travelled"</h2>
                    <p class="journey-origin">"Checkout began at " {time_of_day(origin)} "."</p>
                    <ol class="journey-steps">{checkout} {queued} {execution}</ol>
                </section>
            }
            .into_any()
        })
    }
}

fn checkout_step(origin: u64, event: &domain::journey::CheckoutEvent) -> impl IntoView {
    let letter = event.step.letter().map(|letter| format!("{letter}.")).unwrap_or_default();
    let outcome = match &event.refusal {
        Some(code) => format!("refused ({code})"),
        None => "passed".to_owned(),
    };
    let clock = event.clock.map_or_else(|| "no answer".to_owned(), |clock| clock.to_string());
    view! {
        <li class="journey-step" data-step=event.step.as_str() data-refused=event.refusal.is_some().then_some("true")>
            <span class="journey-what">
                <span class="journey-letter">{letter}</span>
                " "
                {event.step.label()}
                " · "
                <span class="journey-outcome">{outcome}</span>
            </span>
            <span class="journey-detail">
                <code class="journey-service">{event.service.clone()}</code>
                " clock "
                <code class="journey-clock">{clock}</code>
                " · "
                <span class="journey-time">{after(origin, event.at_ms)}</span>
            </span>
        </li>
    }
}

fn queued_step(origin: u64, queued: &Queued, taken: bool) -> impl IntoView {
    let place = match (queued.position, taken) {
        (_, true) => "taken by the executors".to_owned(),
        (Some(1), false) => "next in line".to_owned(),
        (Some(position), false) => format!("number {position} in line"),
        (None, false) => "handed to an executor".to_owned(),
    };
    view! {
        <li class="journey-step" data-step="queued">
            <span class="journey-what">"Queued · priority " {queued.priority.clone()} " · " {place}</span>
            <span class="journey-detail">
                <code class="journey-service">"order_queue"</code>
                " · "
                <span class="journey-time">{after(origin, queued.accepted_at_ms)}</span>
            </span>
        </li>
    }
}

fn execution_steps(origin: u64, execution: &Execution) -> AnyView {
    let started = execution.started.map(|stamp| {
        view! {
            <li class="journey-step" data-step="executing">
                <span class="journey-what">"Two-phase commit started by " {leader(&stamp)}</span>
                <span class="journey-detail">
                    <code class="journey-service">"order_executor"</code>
                    " · "
                    <span class="journey-time">{after(origin, stamp.at_ms)}</span>
                </span>
            </li>
        }
    });
    let votes = execution
        .votes
        .iter()
        .map(|vote| {
            let said = match (&vote.reason, vote.yes) {
                (_, true) => "voted yes (prepared)".to_owned(),
                (Some(reason), false) => format!("voted no: {reason}"),
                (None, false) => "voted no".to_owned(),
            };
            view! {
                <li class="journey-step" data-step="vote" data-participant=vote.participant.clone()
                    data-vote=if vote.yes { "yes" } else { "no" }>
                    <span class="journey-what">"Prepare · " <code>{vote.participant.clone()}</code> " " {said}</span>
                    <span class="journey-detail"><span class="journey-time">{after(origin, vote.at_ms)}</span></span>
                </li>
            }
        })
        .collect_view();
    let decision = execution.decision.as_ref().map(|decision| {
        let what = if decision.commit { "Decision logged: commit" } else { "Decision logged: abort" };
        view! {
            <li class="journey-step" data-step="decision" data-decision=if decision.commit { "commit" } else { "abort" }>
                <span class="journey-what">{what} " · by " {leader(&decision.by)}</span>
                <span class="journey-detail"><span class="journey-time">{after(origin, decision.by.at_ms)}</span></span>
            </li>
        }
    });
    let completed = execution.completed_at_ms.map(|at| {
        let what = match &execution.decision {
            Some(decision) if !decision.commit => "Aborted: both participants released what they held",
            _ => "Committed: books reserved and payment captured",
        };
        view! {
            <li class="journey-step" data-step="completed">
                <span class="journey-what">{what}</span>
                <span class="journey-detail"><span class="journey-time">{after(origin, at)}</span></span>
            </li>
        }
    });
    view! { {started} {votes} {decision} {completed} }.into_any()
}

#[cfg(test)]
mod tests {
    use domain::Step;

    use super::*;

    #[test]
    fn times_are_shown_from_the_start_of_the_checkout() {
        assert_eq!(after(1_000, 1_003), "+3 ms");
        assert_eq!(after(1_000, 2_250), "+1.25 s");
        assert_eq!(after(1_000, 900), "+0 ms", "a clock a little behind shows no negative time");
        assert_eq!(time_of_day(1_764_633_787_250), "00:03:07.250 UTC");
    }

    #[test]
    fn every_checkout_step_has_its_letter() {
        let letters: String = Step::ALL.iter().filter_map(|step| step.letter()).collect();
        assert_eq!(letters, "abcdef");
    }
}
