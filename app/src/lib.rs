//! The bookstore's checkout page, written once for three builds.
//!
//! - `ssr`: the web server renders the page (leptos_axum) and runs the `checkout`
//!   server function against the [`backend::Backend`] it provides as context.
//! - `hydrate`: the same components, compiled to wasm, take over the server-rendered
//!   page so fields are checked as the shopper types and the order is placed without
//!   a page load.
//! - `csr`: a client-side-only build (Trunk) that calls the real server.
//!
//! Without JavaScript the page still works: the form posts natively to the server
//! function, which redirects to `/checkout/result` (see [`result_link`]).
//!
//! After the checkout an order can be followed: the approved panel and the order's
//! page (`/orders/{id}`) show its status live (`live_status`), and `/cluster`
//! shows the replicated groups and the queue. Both pages are server-rendered with
//! current data and keep themselves fresh in the browser.
//!
//! Every rule the page applies comes from the `domain` crate, so what is flagged
//! while typing is exactly what the services refuse.

use domain::Catalog;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, Link, Meta, MetaTags, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, SsrMode};

pub mod api;
#[cfg(feature = "ssr")]
pub mod backend;
mod checkout;
mod cluster_page;
mod journey;
mod layout;
mod live_status;
mod not_found;
mod order_page;
mod pages;
mod poll;
pub mod result_link;
mod result_page;

pub use checkout::field::field_input_id;
pub use checkout::INTERACTIVE_MARK;
pub use result_link::result_href;

/// The whole HTML document the server sends (leptos_axum renders routes into it).
pub fn shell(options: leptos::config::LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <AutoReload options=options.clone() />
                // In the shell rather than in <App/>: the Trunk build links its own copy.
                // The name carries the build's content hash (cargo-leptos `hash-files`).
                <HashedStylesheet options=options.clone() id="leptos" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The application: document metadata and the routes.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Effects run only in the browser, after hydration: this marks the page as live
    // (`<body data-hydrated="true">`; the browser tests wait for it).
    Effect::new(|_| {
        let _ = document().body().map(|body| body.set_attribute("data-hydrated", "true"));
    });
    view! {
        <Title text="Checkout · Tartu Bookstore" />
        <Meta name="description" content="Check out your books at the Tartu Bookstore." />
        <Meta name="theme-color" content="#f6f5f2" />
        // An explicit icon, so browsers never ask for a /favicon.ico that is not there.
        <Link rel="icon" href="/favicon.svg" type_="image/svg+xml" />
        <Router>
            <Routes fallback=not_found::NotFound>
                <Route path=path!("/") view=checkout::CheckoutPage />
                <Route path=path!("/checkout/result") view=pages::result() ssr=SsrMode::Async />
                // Both wait for their data before sending anything, so the answer is
                // in the HTML (no script needed to see it) and a 404 can be set.
                <Route path=path!("/orders/:id") view=pages::order() ssr=SsrMode::Async />
                <Route path=path!("/cluster") view=pages::cluster() ssr=SsrMode::Async />
            </Routes>
            <layout::SiteFooter />
        </Router>
    }
}

/// The wasm entry point: hydrates the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // `hydrate_lazy`, not `hydrate_body`: a first load of a lazy route (see
    // `pages`) waits for that route's module before hydrating it.
    leptos::mount::hydrate_lazy(App);
}

/// The catalog compiled into the binary, parsed once.
pub(crate) fn catalog() -> &'static Catalog {
    static CATALOG: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
    CATALOG.get_or_init(Catalog::embedded)
}
