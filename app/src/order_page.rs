//! One order's page, `/orders/{id}`: where the order is now.
//!
//! The page is a link the shopper can keep (the approved panel points here), so it
//! must make sense on its own, with or without JavaScript:
//! - the server renders it with the current status (a `Resource` read under
//!   `Suspense`, and the route waits for it: `SsrMode::Async`, so no script is needed
//!   to see the answer, and a 404 can still be set);
//! - in the browser the status then follows the order ([`LiveStatus`]);
//! - without JavaScript, while the order can still change, a refresh inside
//!   `<noscript>` reloads the page every 2 seconds. It is not a leptos_meta `<Meta>`
//!   in the head on purpose: a browser cannot cancel a meta refresh once it has read
//!   it, so with JavaScript on the page would reload every 2 seconds on top of its
//!   live updates; a browser with scripting on reads `<noscript>` as plain text.

use domain::OrderStatus;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

use crate::api::order_status;
use crate::layout::{SiteHeader, Stage};
use crate::live_status::LiveStatus;
use crate::result_link::encode;

/// The order page's address for `order_id`.
pub(crate) fn order_href(order_id: &str) -> String {
    format!("/orders/{}", encode(order_id))
}

/// The start of an order id, enough to tell orders apart in a title.
fn short_id(order_id: &str) -> &str {
    const SHOWN: usize = 8;
    order_id.char_indices().nth(SHOWN).map_or(order_id, |(end, _)| &order_id[..end])
}

/// Reloads the page for a shopper without JavaScript (see the module docs).
const NO_SCRIPT_REFRESH: &str = r#"<meta http-equiv="refresh" content="2"><p class="order-refresh-note">This page refreshes itself every 2 seconds until the order is complete.</p>"#;

/// What the page learned about the order. An error keeps no details: the value is
/// also serialized into the page for hydration.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Lookup {
    Found(Box<OrderStatus>),
    Unknown,
    Unreadable,
}

async fn look_up(order_id: String) -> Lookup {
    match order_status(order_id).await {
        Ok(Some(status)) => Lookup::Found(Box::new(status)),
        Ok(None) => Lookup::Unknown,
        Err(_) => Lookup::Unreadable,
    }
}

#[component]
pub(crate) fn OrderPage() -> impl IntoView {
    let params = use_params_map();
    let order_id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    let lookup = Resource::new(move || order_id.get(), look_up);
    let title = move || format!("Order {}", short_id(&order_id.read()));
    view! {
        <Title text=move || format!("{} · Tartu Bookstore", title()) />
        <SiteHeader stage=Stage::Confirmation />
        <main id="main" class="page page-narrow">
            <h1 id="order-title">{title}</h1>
            <Suspense fallback=|| view! { <p class="order-loading">"Looking up your order…"</p> }>
                {move || Suspend::new(async move {
                    match lookup.await {
                        Lookup::Found(status) => view! { <OrderFound status=*status /> }.into_any(),
                        Lookup::Unknown => view! { <OrderUnknown /> }.into_any(),
                        Lookup::Unreadable => view! { <OrderUnreadable order_id=order_id.get_untracked() /> }.into_any(),
                    }
                })}
            </Suspense>
        </main>
    }
}

#[component]
fn OrderFound(status: OrderStatus) -> impl IntoView {
    let refresh = (!status.status.is_final()).then(|| view! { <noscript inner_html=NO_SCRIPT_REFRESH></noscript> });
    // The order's trace: quoted to support, it leads straight to everything the
    // shop did with the order.
    let trace = status.trace_id.clone().map(|trace_id| {
        view! {
            <div>
                <dt>"Support reference"</dt>
                <dd id="order-trace" class="order-trace">{trace_id}</dd>
            </div>
        }
    });
    view! {
        <section class="panel order" id="order-found">
            <dl class="order-facts">
                <div>
                    <dt>"Order number"</dt>
                    <dd id="order-id">{status.order_id.clone()}</dd>
                </div>
                {trace}
            </dl>
            <h2 class="order-status-title">"Status"</h2>
            // The status, then the order's journey (`crate::journey`), both kept fresh.
            <LiveStatus initial=status with_journey=true />
            {refresh}
            // A full page load, so the checkout form starts empty.
            <a class="button button-secondary" href="/" rel="external">"Back to the shop"</a>
        </section>
    }
}

/// No order has this id: sent with status 404.
#[component]
fn OrderUnknown() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <section class="panel order-unknown" id="order-unknown">
            <h2>"We don't know this order"</h2>
            <p>
                "Check that the link is complete. An order has a page from the moment its checkout is approved "
                "until some time after it is finished, when it is archived."
            </p>
            <a class="button button-primary" href="/" rel="external">"Go to the checkout"</a>
        </section>
    }
}

/// The status could not be read now: no details, and nothing about the order changes.
#[component]
fn OrderUnreadable(order_id: String) -> impl IntoView {
    view! {
        <section class="panel order-error" id="order-error">
            <h2>"We could not look up this order just now"</h2>
            <p>"This does not change your order. Please try again in a moment."</p>
            <a class="button button-secondary" href=order_href(&order_id) rel="external">"Try again"</a>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_link_is_a_path_with_the_id_encoded() {
        assert_eq!(order_href("0b7e9a52-77c1-4c1e-9d1c-3f0c2a9e8b10"), "/orders/0b7e9a52-77c1-4c1e-9d1c-3f0c2a9e8b10");
        assert_eq!(order_href("a/b?c d"), "/orders/a%2Fb%3Fc%20d");
    }

    #[test]
    fn a_short_id_is_the_first_eight_characters() {
        assert_eq!(short_id("0b7e9a52-77c1-4c1e-9d1c-3f0c2a9e8b10"), "0b7e9a52");
        assert_eq!(short_id("ord-1"), "ord-1");
        assert_eq!(short_id(""), "");
        assert_eq!(short_id("ééééééééé"), "éééééééé");
    }
}
