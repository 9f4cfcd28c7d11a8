//! The checkout page: the form on the left, the order summary on the right, the
//! outcome above both.
//!
//! The form posts to the `checkout` server function: with JavaScript the page
//! sends it itself ([`submit`]) and the outcome appears in place; without, the
//! browser posts it to `/api/checkout` and lands on the result page. Either way the
//! server decides; the page only spares the shopper a round trip for what the
//! domain's parsers can already tell.
//!
//! What only a submitted checkout needs (reading the form into the request, the
//! call, the outcome panels) is split out of the page's first load
//! (`#[lazy]`, see `crate::pages`) and fetched when the shopper places the order.

mod cart;
pub(crate) mod field;
mod form;
pub(crate) mod outcome;
mod state;

use domain::CheckoutOutcome;
use leptos::ev::{MouseEvent, SubmitEvent};
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use wasm_bindgen::JsCast;
use web_sys::HtmlElement;

use crate::api::Checkout;
use crate::layout::{SiteHeader, Stage};
use cart::{live_totals, OrderSummary};
use form::{CheckoutFields, TermsField};
use outcome::{ErrorPanel, OutcomePanel, OUTCOME_REGION_ID};
use state::CheckoutState;

/// The performance mark set when the page has hydrated and answers the shopper.
pub const INTERACTIVE_MARK: &str = "bookstore:interactive";

#[component]
pub(crate) fn CheckoutPage() -> impl IntoView {
    let state = CheckoutState::new();
    let totals = live_totals(state);
    let pending = RwSignal::new(false);
    // The answer to the last checkout sent; `Err` when none came (the shop could
    // not be reached, or answered with an error).
    let result = RwSignal::new(None::<Result<CheckoutOutcome, ()>>);
    let approved = Memo::new(move |_| matches!(result.get(), Some(Ok(CheckoutOutcome::Approved(_)))));

    // Point the shopper at what the server said: the field it named (here), or the
    // panel (once it is shown, below).
    Effect::new(move |_| {
        let Some(Ok(CheckoutOutcome::Refused(refusal))) = result.get() else { return };
        if let Some((id, field)) = refusal.field.as_deref().and_then(|field| state.field_for(field)) {
            field.server_error.set(Some(refusal.message));
            request_animation_frame(move || focus(&format!("#{id}")));
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

    let send = move |ev: SubmitEvent| {
        if ev.default_prevented() || pending.get_untracked() {
            return;
        }
        ev.prevent_default();
        let Some(form) = ev.target().and_then(|target| target.dyn_into::<web_sys::HtmlFormElement>().ok()) else {
            return;
        };
        let Ok(data) = web_sys::FormData::new_with_form(&form) else { return };
        pending.set(true);
        leptos::task::spawn_local(async move {
            let answer = submit(data).await;
            result.set(Some(answer));
            pending.set(false);
        });
    };

    // The code a placed order needs is fetched once the shopper starts on the
    // form, so it is there by the time they place it (and not in the first load).
    let preloaded = StoredValue::new(false);
    let preload = move |_| {
        if !preloaded.get_value() {
            preloaded.set_value(true);
            #[cfg(feature = "hydrate")]
            {
                let _ = leptos::lazy_preload!(submit);
                let _ = leptos::lazy_preload!(outcome_view);
            }
        }
    };

    let outcome = move || {
        let result = if pending.get() { None } else { result.get() }?;
        let names_a_field = matches!(&result, Ok(CheckoutOutcome::Refused(refusal))
            if refusal.field.as_deref().and_then(|field| state.field_for(field)).is_some());
        Some(Suspend::new(async move {
            let panel = outcome_view(result).await;
            if !names_a_field {
                request_animation_frame(|| focus(&format!("#{OUTCOME_REGION_ID} .outcome")));
            }
            panel
        }))
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
    Effect::new(move |_| {
        hydrated.set(true);
        // For the time-to-interactive benchmark (server/benches/page_load.rs).
        if let Some(performance) = window().performance() {
            let _ = performance.mark(INTERACTIVE_MARK);
        }
    });
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
            <form
                action=Checkout::PATH
                method="post"
                on:submit=send
                on:focusin=preload
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
            </form>
        </main>
    }
}

/// Reads the form into the server function's arguments, the way the server reads
/// a native form post (serde_qs), and sends them.
#[cfg_attr(feature = "hydrate", leptos::lazy)]
async fn submit(data: web_sys::FormData) -> Result<CheckoutOutcome, ()> {
    use leptos::form::FromFormData;
    let Checkout { request } = Checkout::from_form_data(&data).map_err(drop)?;
    crate::api::checkout(request).await.map_err(drop)
}

/// The panel for how the checkout ended. Only a submitted checkout needs it, so its
/// code (and the live status it starts) is not part of the page's first load: it is
/// split out of the main wasm and fetched with the answer (see `crate::pages`).
#[cfg_attr(feature = "hydrate", leptos::lazy)]
async fn outcome_view(result: Result<CheckoutOutcome, ()>) -> AnyView {
    match result {
        Ok(outcome) => view! { <OutcomePanel outcome /> }.into_any(),
        Err(()) => view! { <ErrorPanel /> }.into_any(),
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
