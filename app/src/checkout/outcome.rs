//! How a checkout ended, told to the shopper: the same panels on the checkout page
//! (with JavaScript) and on the result page (without). An approved order's status
//! then follows the order live, and links to the order's own page.

use domain::checkout::ApprovedOrder;
use domain::{CheckoutOutcome, OrderState, OrderStatus, Refusal, RefusalClass};
use leptos::prelude::*;

use super::field::field_label;
use crate::live_status::LiveStatus;
use crate::order_page::order_href;

/// The id of the live region the panels appear in, on both pages.
pub(crate) const OUTCOME_REGION_ID: &str = "checkout-outcome";

/// An approved or refused order.
#[component]
pub(crate) fn OutcomePanel(
    outcome: CheckoutOutcome,
    /// On the result page, a refusal offers the way back to the form.
    #[prop(optional)]
    on_result_page: bool,
) -> impl IntoView {
    match outcome {
        CheckoutOutcome::Approved(order) => view! { <ApprovedPanel order /> }.into_any(),
        CheckoutOutcome::Refused(refusal) => view! { <RefusedPanel refusal on_result_page /> }.into_any(),
    }
}

/// An approved order: its number, its status followed live, a link to its page.
#[component]
fn ApprovedPanel(order: ApprovedOrder) -> impl IntoView {
    // The checkout's own answer ("queued") until the first question is answered.
    let initial = OrderStatus {
        order_id: order.order_id.clone(),
        status: OrderState::parse(&order.status).unwrap_or(OrderState::Queued),
        reason: None,
        journey: None,
        trace_id: None,
    };
    let order_page = order_href(&order.order_id);
    let suggestions = (!order.suggested_books.is_empty()).then(|| {
        let books = order
            .suggested_books
            .into_iter()
            .map(|book| {
                view! {
                    <li class="suggestion" data-book-id=book.book_id>
                        <span class="suggestion-title">{book.title}</span>
                        <span class="suggestion-author">{book.author}</span>
                    </li>
                }
            })
            .collect_view();
        view! {
            <h3>"You might also like"</h3>
            <ul class="suggestions" id="outcome-suggestions">{books}</ul>
        }
    });
    view! {
        <section class="outcome outcome-approved" id="outcome-approved" tabindex="-1" aria-labelledby="outcome-title">
            <h2 id="outcome-title">"Thank you, your order is placed"</h2>
            <dl class="order-facts">
                <div>
                    <dt>"Order number"</dt>
                    <dd id="outcome-order-id">{order.order_id}</dd>
                </div>
                <div>
                    <dt>"Status"</dt>
                    <dd id="outcome-status">
                        <LiveStatus initial />
                    </dd>
                </div>
            </dl>
            {suggestions}
            <div class="outcome-actions">
                <a class="button button-secondary" id="order-page-link" href=order_page>"View this order"</a>
                // A full page load, so the form starts empty.
                <a class="button button-secondary" id="start-new-order" href="/" rel="external">"Start a new order"</a>
            </div>
        </section>
    }
}

#[component]
fn RefusedPanel(refusal: Refusal, on_result_page: bool) -> impl IntoView {
    let title = match refusal.class {
        RefusalClass::Invalid => "Please check your order",
        RefusalClass::Fraud => "We could not accept this order",
        RefusalClass::OutOfStock => "Not enough copies in stock",
        RefusalClass::Unavailable => "We could not place your order just now",
    };
    let field = refusal.field.as_deref().map(|field| {
        view! {
            <p class="outcome-field">"Check: " <strong id="outcome-field">{field_label(field).to_owned()}</strong></p>
        }
    });
    let reassurance = (refusal.class == RefusalClass::Unavailable).then(|| {
        view! {
            <p class="outcome-reassurance" id="outcome-nothing-charged">
                "Nothing was charged and no order was placed. Please try again in a moment."
            </p>
        }
    });
    let back = on_result_page.then(|| {
        view! { <a class="button button-secondary" id="back-to-checkout" href="/">"Back to the checkout"</a> }
    });
    view! {
        <section
            class="outcome outcome-refused"
            id="outcome-refused"
            tabindex="-1"
            aria-labelledby="outcome-title"
            data-step=refusal.step.as_str()
            data-class=refusal.class.as_str()
            data-code=refusal.code
        >
            <h2 id="outcome-title">{title}</h2>
            <p class="outcome-step">
                "Stopped at: " <strong id="outcome-step">{refusal.step.label()}</strong>
                <span class="outcome-service">" (checked by " {refusal.service} ")"</span>
            </p>
            <p class="outcome-message" id="outcome-message">{refusal.message}</p>
            {field}
            {reassurance}
            {back}
        </section>
    }
}

/// The server could not be reached or failed: no details, nothing alarming.
#[component]
pub(crate) fn ErrorPanel() -> impl IntoView {
    view! {
        <section class="outcome outcome-refused outcome-error" id="outcome-error" tabindex="-1" aria-labelledby="outcome-title">
            <h2 id="outcome-title">"We could not reach the shop"</h2>
            <p class="outcome-message">
                "Your order was not placed and nothing was charged. Check your connection and try again in a moment."
            </p>
        </section>
    }
}
