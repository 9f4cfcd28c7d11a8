//! Any address the shop does not have.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::layout::{SiteHeader, Stage};

/// The not-found page, sent with status 404.
#[component]
pub(crate) fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Page not found · Tartu Bookstore" />
        <SiteHeader stage=Stage::Details />
        <main id="main" class="page page-narrow">
            <section class="panel not-found">
                <h1>"Page not found"</h1>
                <p>"There is no page at this address."</p>
                <a class="button button-primary" href="/">"Go to the checkout"</a>
            </section>
        </main>
    }
}
