//! The result page, where a checkout posted without JavaScript lands: the outcome
//! is read back from the query string (`result_link`) and shown in the same panel
//! the checkout page uses.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::catalog;
use crate::checkout::outcome::{OutcomePanel, OUTCOME_REGION_ID};
use crate::layout::{SiteHeader, Stage};
use crate::result_link::outcome_from_query;

#[component]
pub(crate) fn ResultPage() -> impl IntoView {
    let query = use_query_map();
    let outcome = move || query.with(|query| outcome_from_query(catalog(), |key| query.get_str(key)));
    view! {
        <Title text="Your order · Tartu Bookstore" />
        <SiteHeader stage=Stage::Confirmation />
        <main id="main" class="page page-narrow">
            <h1>"Your order"</h1>
            <div id=OUTCOME_REGION_ID class="outcome-region" role="status" aria-live="polite">
                {move || match outcome() {
                    Some(outcome) => view! { <OutcomePanel outcome on_result_page=true /> }.into_any(),
                    None => {
                        view! {
                            <section class="outcome outcome-refused" id="outcome-unknown">
                                <h2>"We cannot tell how this order went"</h2>
                                <p class="outcome-message">
                                    "This link does not describe a checkout. Go back to the checkout to place your order."
                                </p>
                                <a class="button button-secondary" id="back-to-checkout" href="/">
                                    "Back to the checkout"
                                </a>
                            </section>
                        }
                            .into_any()
                    }
                }}
            </div>
        </main>
    }
}
