//! An order's status that follows the order: after the checkout (approved panel),
//! on the result page and on the order's own page.
//!
//! An approved order is only queued; the executors take it, reserve the books and
//! take payment within about a second, or abort it. The shopper should see that
//! without reloading, so once the page runs in the browser this block asks the
//! server (`order_status`) every second until the status is final, announcing each
//! change politely to screen readers. It starts from a status the page already has
//! (the checkout's answer or the server-rendered one), so the server and the
//! browser render the same block and hydration matches.

use std::time::Duration;

use domain::{OrderState, OrderStatus};
use leptos::prelude::*;

use crate::api::order_status;
use crate::journey::JourneyView;
use crate::poll::{poll, Cadence, Next};

/// Every second, for at least ten minutes.
pub(crate) const ORDER_CADENCE: Cadence = Cadence { interval: Duration::from_secs(1), limit: 600 };

/// Whether another question can change what is shown.
fn next_after(state: OrderState) -> Next {
    if state.is_final() {
        Next::Done
    } else {
        Next::Again
    }
}

/// Why an order was aborted, when it was and the server said why.
fn shown_reason(status: &OrderStatus) -> Option<String> {
    (status.status == OrderState::Aborted).then(|| status.reason.clone()).flatten().filter(|r| !r.trim().is_empty())
}

/// The status badge (`#order-live-status[data-status]`), the abort reason
/// (`#order-live-reason`) and, if checking stopped, a note to refresh.
#[component]
pub(crate) fn LiveStatus(
    initial: OrderStatus,
    /// Also show the order's journey (`crate::journey`), kept as fresh as the status.
    #[prop(optional)]
    with_journey: bool,
) -> impl IntoView {
    let order_id = initial.order_id.clone();
    let status = RwSignal::new(initial);
    // The last question got no answer (the order stays as last shown).
    let unsure = RwSignal::new(false);
    let gave_up = RwSignal::new(false);

    // Effects run only in the browser, after hydration.
    Effect::new(move |_| {
        if status.with_untracked(|status| status.status.is_final()) {
            return;
        }
        let order_id = order_id.clone();
        let ask = move || {
            let order_id = order_id.clone();
            async move {
                match order_status(order_id).await {
                    Ok(Some(now)) => {
                        if unsure.get_untracked() {
                            unsure.set(false);
                        }
                        let next = next_after(now.status);
                        if status.with_untracked(|shown| *shown != now) {
                            status.set(now);
                        }
                        next
                    }
                    // Not known here (yet): keep what is shown and ask again.
                    Ok(None) => Next::Again,
                    Err(_) => {
                        unsure.set(true);
                        Next::Again
                    }
                }
            }
        };
        poll(ORDER_CADENCE, ask, move || gave_up.set(true));
    });

    let state = Memo::new(move |_| status.with(|status| status.status));
    let journey = with_journey.then(|| {
        let journey = Signal::derive(move || status.with(|status| status.journey.clone()));
        view! { <JourneyView journey /> }.into_any()
    });
    let reason = Memo::new(move |_| status.with(shown_reason));
    let stopped_note = format!(
        "We stopped checking after {} minutes: refresh to see the latest status.",
        ORDER_CADENCE.span_minutes()
    );
    view! {
        <div class="live-status" role="status" aria-live="polite" aria-atomic="true">
            <span id="order-live-status" class="status-badge" data-status=move || state.get().as_str()>
                {move || state.get().label()}
            </span>
            {move || {
                reason
                    .get()
                    .map(|reason| {
                        view! {
                            <p class="live-status-reason">"Reason: " <span id="order-live-reason">{reason}</span></p>
                        }
                    })
            }}
            {move || {
                (unsure.get() && !gave_up.get())
                    .then(|| {
                        view! {
                            <p class="live-status-note" id="order-live-unsure">
                                "We could not check the status just now; trying again."
                            </p>
                        }
                    })
            }}
            {move || {
                gave_up
                    .get()
                    .then(|| {
                        view! {
                            <p class="live-status-note" id="order-live-stale">
                                {stopped_note.clone()}
                            </p>
                        }
                    })
            }}
        </div>
        {journey}
    }
    // Erased, so the views that contain it stay within the compiler's type depth.
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: OrderState, reason: Option<&str>) -> OrderStatus {
        OrderStatus {
            order_id: "o1".into(),
            status: state,
            reason: reason.map(str::to_owned),
            journey: None,
            trace_id: None,
        }
    }

    #[test]
    fn only_a_final_status_stops_the_questions() {
        assert_eq!(next_after(OrderState::Queued), Next::Again);
        assert_eq!(next_after(OrderState::Executing), Next::Again);
        assert_eq!(next_after(OrderState::Committed), Next::Done);
        assert_eq!(next_after(OrderState::Aborted), Next::Done);
    }

    #[test]
    fn a_reason_is_shown_only_for_an_aborted_order_that_has_one() {
        assert_eq!(shown_reason(&status(OrderState::Aborted, Some("card declined"))).as_deref(), Some("card declined"));
        assert_eq!(shown_reason(&status(OrderState::Aborted, None)), None);
        assert_eq!(shown_reason(&status(OrderState::Aborted, Some("  "))), None);
        assert_eq!(shown_reason(&status(OrderState::Committed, Some("stale"))), None);
    }

    #[test]
    fn the_order_is_followed_for_ten_minutes_at_most_every_second() {
        assert_eq!(ORDER_CADENCE.interval, Duration::from_secs(1));
        assert_eq!(ORDER_CADENCE.span_minutes(), 10);
    }
}
