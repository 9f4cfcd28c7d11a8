//! The frame every page shares: the shop's name, where the shopper is in the
//! checkout, and a footer.

use leptos::prelude::*;

/// Where in the checkout the shopper is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Details,
    Confirmation,
}

/// The site header, with a short step indicator on the checkout's own pages.
#[component]
pub(crate) fn SiteHeader(
    /// Where in the checkout the shopper is; `None` off the checkout (the cluster page).
    #[prop(optional, into)]
    stage: Option<Signal<Stage>>,
) -> impl IntoView {
    let steps = stage.map(|stage| {
        let current = move |step: Stage| (stage.get() == step).then_some("step");
        let done = move |step: Stage| stage.get() == Stage::Confirmation && step == Stage::Details;
        view! {
            <nav aria-label="Checkout steps">
                <ol class="steps">
                    <li class="step done">"Cart"</li>
                    <li class="step" class:done=move || done(Stage::Details) aria-current=move || current(Stage::Details)>
                        "Details & payment"
                    </li>
                    <li class="step" aria-current=move || current(Stage::Confirmation)>"Confirmation"</li>
                </ol>
            </nav>
        }
    });
    view! {
        <a class="skip-link" href="#main">"Skip to the main content"</a>
        <header class="site-header">
            <div class="site-header-inner">
                <a class="brand" href="/" rel="external">
                    <svg class="brand-mark" viewBox="0 0 32 32" aria-hidden="true" focusable="false">
                        <path d="M6 6.5C6 5.1 7.1 4 8.5 4H15v22H8.5C7.1 26 6 27.1 6 28.5z" />
                        <path d="M26 6.5C26 5.1 24.9 4 23.5 4H17v22h6.5c1.4 0 2.5 1.1 2.5 2.5z" />
                    </svg>
                    <span>"Tartu Bookstore"</span>
                </a>
                {steps}
            </div>
        </header>
    }
}

/// The site footer, on every page: a discreet way to the cluster's status.
#[component]
pub(crate) fn SiteFooter() -> impl IntoView {
    view! {
        <footer class="site-footer">
            <div class="site-footer-inner">
                <span>"Tartu Bookstore"</span>
                <a href="/cluster" id="cluster-link">"Cluster status"</a>
            </div>
        </footer>
    }
}
