//! Which code each page's first load carries.
//!
//! The checkout page is the one almost every visit starts on, so its wasm holds
//! only what it needs. The order, result and cluster pages are lazy routes: their
//! views are split out of the main wasm at build time (cargo-leptos `--split`) and
//! fetched when one of them is shown (on a first load of that page, Leptos names
//! the module in the HTML so it arrives beside the main one). On the server a lazy
//! route renders like any other.
//!
//! The client-side-only build (Trunk) does not split wasm, so there every page is a
//! plain route.

use leptos_router::ChooseView;

#[cfg(not(feature = "csr"))]
mod lazy {
    use leptos::prelude::*;
    use leptos_router::{lazy_route, LazyRoute};

    use crate::{cluster_page, order_page, result_page};

    pub struct Order;

    #[lazy_route]
    impl LazyRoute for Order {
        fn data() -> Self {
            Self
        }

        fn view(_this: Self) -> AnyView {
            view! { <order_page::OrderPage /> }.into_any()
        }
    }

    pub struct Result;

    #[lazy_route]
    impl LazyRoute for Result {
        fn data() -> Self {
            Self
        }

        fn view(_this: Self) -> AnyView {
            view! { <result_page::ResultPage /> }.into_any()
        }
    }

    pub struct Cluster;

    #[lazy_route]
    impl LazyRoute for Cluster {
        fn data() -> Self {
            Self
        }

        fn view(_this: Self) -> AnyView {
            view! { <cluster_page::ClusterPage /> }.into_any()
        }
    }
}

#[cfg(not(feature = "csr"))]
pub(crate) fn order() -> impl ChooseView {
    leptos_router::Lazy::<lazy::Order>::new()
}

#[cfg(not(feature = "csr"))]
pub(crate) fn result() -> impl ChooseView {
    leptos_router::Lazy::<lazy::Result>::new()
}

#[cfg(not(feature = "csr"))]
pub(crate) fn cluster() -> impl ChooseView {
    leptos_router::Lazy::<lazy::Cluster>::new()
}

#[cfg(feature = "csr")]
pub(crate) fn order() -> impl ChooseView {
    crate::order_page::OrderPage
}

#[cfg(feature = "csr")]
pub(crate) fn result() -> impl ChooseView {
    crate::result_page::ResultPage
}

#[cfg(feature = "csr")]
pub(crate) fn cluster() -> impl ChooseView {
    crate::cluster_page::ClusterPage
}
