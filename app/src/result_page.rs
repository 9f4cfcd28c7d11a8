//! The result page, where a checkout posted without JavaScript lands: the outcome
//! is read back from the query string (`result_link`) and, once the server has
//! confirmed the link's seal, shown in the same panel the checkout page uses.
//!
//! The check is a `Resource` read under `Suspense`, and the route waits for it
//! (`SsrMode::Async`): a browser without JavaScript gets the checked answer in the
//! first response, and hydration reuses it rather than asking again.

use domain::CheckoutOutcome;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::result_link_is_sealed;
use crate::catalog;
use crate::checkout::outcome::{OutcomePanel, OUTCOME_REGION_ID};
use crate::layout::{SiteHeader, Stage};
use crate::result_link::{outcome_from_query, SEAL_PARAM};

/// The link's outcome if the server wrote it; `None` for a link that describes no
/// outcome, was changed, or cannot be checked now.
async fn checked(outcome: Option<CheckoutOutcome>, seal: String) -> Option<CheckoutOutcome> {
    let outcome = outcome?;
    match result_link_is_sealed(outcome.clone(), seal).await {
        Ok(true) => Some(outcome),
        Ok(false) | Err(_) => None,
    }
}

#[component]
pub(crate) fn ResultPage() -> impl IntoView {
    let query = use_query_map();
    let link = Memo::new(move |_| {
        query.with(|query| {
            let outcome = outcome_from_query(catalog(), |key| query.get_str(key));
            (outcome, query.get_str(SEAL_PARAM).unwrap_or_default().to_owned())
        })
    });
    let outcome = Resource::new(move || link.get(), |(outcome, seal)| checked(outcome, seal));
    view! {
        <Title text="Your order · Tartu Bookstore" />
        <SiteHeader stage=Stage::Confirmation />
        <main id="main" class="page page-narrow">
            <h1>"Your order"</h1>
            <div id=OUTCOME_REGION_ID class="outcome-region" role="status" aria-live="polite">
                <Suspense fallback=|| view! { <p class="order-loading">"Checking this link…"</p> }>
                    {move || Suspend::new(async move {
                        match outcome.await {
                            Some(outcome) => view! { <OutcomePanel outcome on_result_page=true /> }.into_any(),
                            None => view! { <UnknownOutcome /> }.into_any(),
                        }
                    })}
                </Suspense>
            </div>
        </main>
    }
}

#[component]
fn UnknownOutcome() -> impl IntoView {
    view! {
        <section class="outcome outcome-refused" id="outcome-unknown">
            <h2>"We cannot tell how this order went"</h2>
            <p class="outcome-message">
                "This link does not describe a checkout we made, or it was changed after we wrote it. Go back to the checkout to place your order."
            </p>
            <a class="button button-secondary" id="back-to-checkout" href="/">
                "Back to the checkout"
            </a>
        </section>
    }
}
