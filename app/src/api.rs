//! The checkout server function: the one call the page makes.
//!
//! It keeps the default `PostUrl` encoding (urlencoded, read with serde_qs) so that
//! the checkout `<form>` can post to it natively when JavaScript is off: the inputs
//! are named `request[creditCard][number]` and so on (`field_input_name`). Such a
//! post gets a redirect to the result page; the wasm client gets the outcome itself.

use domain::{CheckoutOutcome, CheckoutRequest, ClusterStatus, OrderStatus};
use leptos::prelude::*;

/// Places the order: runs the checkout on the server's [`crate::backend::Backend`].
///
/// Served at `/api/checkout`. A plain form post (its `Accept` asks for HTML) is
/// redirected to [`crate::result_href`] of the outcome, sealed by the backend.
#[server(endpoint = "checkout")]
pub async fn checkout(request: CheckoutRequest) -> Result<CheckoutOutcome, ServerFnError> {
    // An unticked box posts nothing: on the page, no answer is no consent.
    let request = CheckoutRequest { terms_accepted: Some(request.terms_accepted.unwrap_or(false)), ..request };
    let backend = backend()?;
    let outcome = backend.checkout(request).await;
    if use_context::<http::request::Parts>().is_some_and(|parts| accepts_html(&parts.headers)) {
        leptos_axum::redirect(&crate::result_href(&outcome, |query| backend.seal(query)));
    }
    Ok(outcome)
}

/// Whether a result link's `outcome` is one this server wrote: `seal` is its seal
/// of the outcome's query. Served at `/api/result_link`, JSON in (an outcome is a
/// tagged enum with lists, which the form encoding does not round-trip). It only
/// ever says yes or no, so it cannot help anyone forge a seal.
#[server(name = CheckResultLink, endpoint = "result_link", input = leptos::server_fn::codec::Json)]
pub async fn result_link_is_sealed(outcome: CheckoutOutcome, seal: String) -> Result<bool, ServerFnError> {
    Ok(backend()?.is_sealed(&crate::result_link::result_query(&outcome), &seal))
}

/// Where an order is now (`None`: no such order). Served at `/api/order_status`.
#[server(name = LoadOrderStatus, endpoint = "order_status")]
pub async fn order_status(order_id: String) -> Result<Option<OrderStatus>, ServerFnError> {
    backend()?.order_status(order_id).await.map_err(ServerFnError::new)
}

/// The replicated groups and the queue, as seen now. Served at `/api/cluster_status`.
#[server(name = LoadClusterStatus, endpoint = "cluster_status")]
pub async fn cluster_status() -> Result<ClusterStatus, ServerFnError> {
    Ok(backend()?.cluster_status().await)
}

/// The server's [`crate::backend::Backend`], provided as context.
#[cfg(feature = "ssr")]
fn backend() -> Result<std::sync::Arc<dyn crate::backend::CheckoutBackend>, ServerFnError> {
    use_context::<crate::backend::Backend>()
        .map(|crate::backend::Backend(backend)| backend)
        .ok_or_else(|| ServerFnError::new("checkout backend not configured"))
}

/// True for a browser's own form post or navigation, whose `Accept` lists
/// `text/html`; the server function client and API clients ask for JSON (or
/// anything) instead.
#[cfg(feature = "ssr")]
pub fn accepts_html(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("text/html"))
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake};

    use domain::checkout::{AddressInput, ApprovedOrder, CardInput, ItemInput, UserInput};
    use domain::field::path;
    use http::header::{ACCEPT, LOCATION};

    use super::*;
    use crate::backend::{Backend, CheckoutBackend};
    use crate::checkout::field::{field_input_name, item_name_path, GIFT_WRAPPING_PATH};

    /// Answers every checkout with the same outcome.
    struct Fixed(CheckoutOutcome);

    impl CheckoutBackend for Fixed {
        fn checkout(&self, _: CheckoutRequest) -> Pin<Box<dyn Future<Output = CheckoutOutcome> + Send + '_>> {
            Box::pin(std::future::ready(self.0.clone()))
        }
        fn order_status(&self, _: String) -> crate::backend::BoxFuture<'_, Result<Option<OrderStatus>, String>> {
            Box::pin(std::future::ready(Ok(None)))
        }
        fn cluster_status(&self) -> crate::backend::BoxFuture<'_, ClusterStatus> {
            Box::pin(std::future::ready(ClusterStatus::default()))
        }
        fn seal(&self, text: &str) -> String {
            format!("{:x}", text.len())
        }
        fn is_sealed(&self, text: &str, seal: &str) -> bool {
            self.seal(text) == seal
        }
    }

    /// Enough of an executor for futures that only wait on their own steps.
    fn block_on<F: Future>(future: F) -> F::Output {
        struct Unpark(std::thread::Thread);
        impl Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Arc::new(Unpark(std::thread::current())).into();
        let mut cx = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            std::thread::park();
        }
    }

    fn approved() -> CheckoutOutcome {
        CheckoutOutcome::Approved(ApprovedOrder {
            order_id: "ord-1".into(),
            status: "queued".into(),
            suggested_books: Vec::new(),
        })
    }

    /// Runs the server function as leptos_axum would for a request with `accept`,
    /// returning its result and the `Location` it set.
    fn run(backend: Option<Backend>, accept: &str) -> (Result<CheckoutOutcome, ServerFnError>, Option<String>) {
        let owner = Owner::new();
        owner.with(|| {
            let request = http::Request::builder().header(ACCEPT, accept).body(()).expect("a valid request");
            provide_context(request.into_parts().0);
            let response = leptos_axum::ResponseOptions::default();
            provide_context(response.clone());
            if let Some(backend) = backend {
                provide_context(backend);
            }
            let result = block_on(checkout(CheckoutRequest::default()));
            let location = response
                .0
                .read()
                .ok()
                .and_then(|parts| parts.headers.get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned));
            (result, location)
        })
    }

    const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

    #[test]
    fn a_plain_form_post_is_redirected_to_the_result_page() {
        let (result, location) = run(Some(Backend(Arc::new(Fixed(approved())))), BROWSER_ACCEPT);
        assert_eq!(result.ok(), Some(approved()));
        // The test backend's seal is the query's length in hex.
        let query = "order=ord-1&status=queued&suggested=";
        assert_eq!(location, Some(format!("/checkout/result?{query}&seal={:x}", query.len())));
    }

    #[test]
    fn the_wasm_client_gets_the_outcome_without_a_redirect() {
        let (result, location) = run(Some(Backend(Arc::new(Fixed(approved())))), "application/json");
        assert_eq!(result.ok(), Some(approved()));
        assert_eq!(location, None);
    }

    #[test]
    fn a_missing_backend_is_an_error_not_a_panic() {
        let (result, location) = run(None, "application/json");
        let error = result.expect_err("no backend");
        assert!(error.to_string().contains("checkout backend not configured"), "{error}");
        assert_eq!(location, None);
    }

    /// What a browser posts for the checkout form: the page's input names, encoded
    /// as `application/x-www-form-urlencoded`.
    fn form_body(pairs: &[(String, &str)]) -> String {
        let mut body = form_urlencoded::Serializer::new(String::new());
        for (name, value) in pairs {
            body.append_pair(name, value);
        }
        body.finish()
    }

    /// Deserializes a form body with the configuration server_fn uses for `PostUrl`.
    fn read_form(body: &str) -> Result<Checkout, serde_qs::Error> {
        serde_qs::Config::new(5, false).deserialize_str::<Checkout>(body)
    }

    #[test]
    fn the_form_posts_a_complete_checkout_request() {
        let name = |path: &str| field_input_name(path);
        let body = form_body(&[
            (name(path::NAME), "Simon Lawrence"),
            (name(path::CONTACT), "simon@example.org"),
            (name(path::STREET), "Narva mnt 18"),
            (name(path::CITY), "Tartu"),
            (name(path::STATE), ""),
            (name(path::ZIP), "51009"),
            (name(path::COUNTRY), "Estonia"),
            (name(path::SHIPPING_METHOD), "Next-Day"),
            (name(path::CLIENT_CARD), "Premium"),
            (name(path::CARD_NUMBER), "4716 4015 8980 6287"),
            (name(path::CARD_EXPIRY), "12/30"),
            (name(path::CARD_CVV), "556"),
            (name(&path::item_id(0)), "4"),
            (name(&item_name_path(0)), "The Hunger Games"),
            (name(&path::item_quantity(0)), "2"),
            (name(&path::item_id(1)), "1"),
            (name(&item_name_path(1)), "Fourth Wing"),
            (name(&path::item_quantity(1)), "1"),
            (name(path::COMMENT), "Leave it at the door, please."),
            (name(GIFT_WRAPPING_PATH), "true"),
            (name(path::GIFT_MESSAGE), "Happy birthday & [many] more!"),
            (name(path::TERMS), "true"),
        ]);
        assert!(body.contains("request%5BcreditCard%5D%5Bnumber%5D="), "{body}");
        let request = read_form(&body).expect("the form deserializes").request;
        let expected = CheckoutRequest {
            user: UserInput { name: "Simon Lawrence".into(), contact: "simon@example.org".into() },
            credit_card: CardInput {
                number: "4716 4015 8980 6287".into(),
                expiration_date: "12/30".into(),
                cvv: "556".into(),
            },
            user_comment: "Leave it at the door, please.".into(),
            items: vec![
                ItemInput { id: "4".into(), name: "The Hunger Games".into(), quantity: 2 },
                ItemInput { id: "1".into(), name: "Fourth Wing".into(), quantity: 1 },
            ],
            shipping_method: Some("Next-Day".into()),
            client_card: Some("Premium".into()),
            gift_message: "Happy birthday & [many] more!".into(),
            billing_address: AddressInput {
                street: "Narva mnt 18".into(),
                city: "Tartu".into(),
                state: String::new(),
                zip: "51009".into(),
                country: "Estonia".into(),
            },
            gift_wrapping: true,
            terms_accepted: Some(true),
            ..CheckoutRequest::default()
        };
        assert_eq!(request, expected);
    }

    #[test]
    fn unticked_checkboxes_are_absent_and_read_as_false() {
        let body =
            form_body(&[(field_input_name(&path::item_id(0)), "4"), (field_input_name(&path::item_quantity(0)), "1")]);
        let request = read_form(&body).expect("the form deserializes").request;
        assert!(!request.gift_wrapping && request.terms_accepted.is_none());
        assert_eq!(request.items.len(), 1);
    }

    #[test]
    fn only_html_accepting_requests_count_as_form_posts() {
        let headers = |accept: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert(ACCEPT, http::HeaderValue::from_str(accept).expect("a valid header"));
            headers
        };
        assert!(accepts_html(&headers(BROWSER_ACCEPT)));
        assert!(!accepts_html(&headers("application/json")));
        assert!(!accepts_html(&http::HeaderMap::new()));
    }
}
