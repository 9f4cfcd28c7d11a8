//! The checkout page: the form on the left, the order summary on the right, the
//! outcome above both.
//!
//! The form is an `ActionForm` bound to the `checkout` server function: with
//! JavaScript the action submits it and the outcome appears in place; without, the
//! browser posts it to `/api/checkout` and lands on the result page. Either way the
//! server decides; the page only spares the shopper a round trip for what the
//! domain's parsers can already tell.

mod cart;
pub(crate) mod field;
mod form;
pub(crate) mod outcome;
mod state;

use domain::CheckoutOutcome;
use leptos::ev::MouseEvent;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::HtmlElement;

use crate::api::Checkout;
use crate::layout::{SiteHeader, Stage};
use cart::{live_totals, OrderSummary};
use form::{CheckoutFields, TermsField};
use outcome::{ErrorPanel, OutcomePanel, OUTCOME_REGION_ID};
use state::CheckoutState;

#[component]
pub(crate) fn CheckoutPage() -> impl IntoView {
    let action = ServerAction::<Checkout>::new();
    let state = CheckoutState::new();
    let totals = live_totals(state);
    let pending = action.pending();
    let result = action.value();
    let approved = Memo::new(move |_| matches!(result.get(), Some(Ok(CheckoutOutcome::Approved(_)))));

    // Point the shopper at what the server said: the field it named, or the panel.
    Effect::new(move |_| {
        let Some(result) = result.get() else { return };
        let field = match &result {
            Ok(CheckoutOutcome::Refused(refusal)) => refusal.field.as_deref().and_then(|field| state.field_for(field)),
            _ => None,
        };
        match (field, result) {
            (Some((id, field)), Ok(CheckoutOutcome::Refused(refusal))) => {
                field.server_error.set(Some(refusal.message));
                request_animation_frame(move || focus(&format!("#{id}")));
            }
            _ => request_animation_frame(|| focus(&format!("#{OUTCOME_REGION_ID} .outcome"))),
        }
    });

    // Spare a round trip when a field is already known to be wrong; the browser's
    // own `required` checks follow, and the server has the last word.
    let place_order = move |ev: MouseEvent| {
        if let Some(id) = state.check_all() {
            ev.prevent_default();
            focus(&format!("#{id}"));
        }
    };

    let outcome = move || {
        let result = if pending.get() { None } else { result.get() }?;
        Some(match result {
            Ok(outcome) => view! { <OutcomePanel outcome /> }.into_any(),
            Err(_) => view! { <ErrorPanel /> }.into_any(),
        })
    };
    let button_label = move || {
        if pending.get() {
            "Placing your order…".to_owned()
        } else {
            format!("Place order · {}", totals.get().total)
        }
    };
    // Effects run only in the browser, after hydration: this marks the form as live
    // (the browser tests wait for it).
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let stage = Signal::derive(move || if approved.get() { Stage::Confirmation } else { Stage::Details });

    view! {
        <SiteHeader stage />
        <main id="main" class="page">
            <div class="page-heading">
                <h1>"Checkout"</h1>
                <p class="lede">"Check your books, tell us where to send them, and pay. It takes a minute."</p>
            </div>
            <div id=OUTCOME_REGION_ID class="outcome-region" role="status" aria-live="polite">
                {outcome}
            </div>
            <ActionForm
                action
                {..}
                id="checkout-form"
                class="checkout"
                hidden=move || approved.get()
                data-hydrated=move || hydrated.get().then_some("true")
            >
                <div class="checkout-grid">
                    <div class="checkout-fields">
                        <CheckoutFields state />
                    </div>
                    <aside class="checkout-summary panel" aria-labelledby="summary-heading">
                        <OrderSummary state totals />
                        <TermsField state />
                        <button
                            type="submit"
                            id="place-order"
                            class="button button-primary button-block"
                            disabled=move || pending.get()
                            aria-busy=move || pending.get().then_some("true")
                            on:click=place_order
                        >
                            {button_label}
                        </button>
                        <p class="fine-print">
                            "By placing the order you agree to pay the total shown."
                        </p>
                    </aside>
                </div>
            </ActionForm>
        </main>
    }
}

/// Moves keyboard focus (and the view) to the first element matching `selector`.
fn focus(selector: &str) {
    let element = document().query_selector(selector).ok().flatten();
    if let Some(element) = element.and_then(|element| element.dyn_into::<HtmlElement>().ok()) {
        // Focus is a courtesy: if the browser refuses it, the panel still shows.
        let _ = element.focus();
    }
}
