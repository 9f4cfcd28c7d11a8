//! The routes as the server renders them: what a browser first receives, and all
//! that a shopper without JavaScript ever gets.
#![cfg(feature = "ssr")]

use std::sync::Arc;

use app::backend::{Backend, BoxFuture, CheckoutBackend};
use domain::checkout::ApprovedOrder;
use domain::field::path;
use domain::{
    CheckoutOutcome, CheckoutRequest, ClusterStatus, OrderState, OrderStatus, QueueDepth, Refusal, RefusalClass,
    ReplicaStatus, Role, Step, SuggestedBook,
};
use futures::StreamExt;
use hydration_context::{SharedContext, SsrSharedContext};
use leptos::prelude::*;
use leptos_router::location::RequestUrl;

/// Renders `App` for a request to `url`, with the status it set.
fn render(url: &str) -> (String, Option<http::StatusCode>) {
    let owner = Owner::new();
    owner.with(|| {
        provide_context(RequestUrl::new(url));
        let (meta, _) = leptos_meta::ServerMetaContext::new();
        provide_context(meta);
        let response = leptos_axum::ResponseOptions::default();
        provide_context(response.clone());
        let html = view! { <app::App /> }.to_html();
        let status = response.0.read().ok().and_then(|parts| parts.status);
        (html, status)
    })
}

#[test]
fn the_checkout_form_posts_natively_to_the_server_function() {
    let (html, status) = render("/");
    assert_eq!(status, None, "200");
    assert!(html.contains(r#"<form action="/api/checkout" method="post" id="checkout-form""#), "{html}");
    for name in [
        "request[user][name]",
        "request[user][contact]",
        "request[billingAddress][street]",
        "request[billingAddress][city]",
        "request[billingAddress][state]",
        "request[billingAddress][zip]",
        "request[billingAddress][country]",
        "request[shippingMethod]",
        "request[clientCard]",
        "request[creditCard][number]",
        "request[creditCard][expirationDate]",
        "request[creditCard][cvv]",
        "request[userComment]",
        "request[giftWrapping]",
        "request[giftMessage]",
        "request[termsAccepted]",
        "request[items][0][id]",
        "request[items][0][name]",
        "request[items][0][quantity]",
        "request[items][1][id]",
        "request[items][1][quantity]",
    ] {
        assert!(html.contains(&format!(r#"name="{name}""#)), "no input named {name}");
    }
    for field in [path::NAME, path::CONTACT, path::CARD_NUMBER, path::CARD_EXPIRY, path::CARD_CVV, path::TERMS] {
        let id = app::field_input_id(field);
        assert!(html.contains(&format!(r#"<label for="{id}""#)), "no label for {id}");
        assert!(html.contains(&format!(r#"id="{id}-error""#)), "no error element for {id}");
    }
    assert!(html.contains(r#"autocomplete="cc-number""#) && html.contains(r#"inputmode="numeric""#));
    assert!(html.contains(r#"value="Standard" checked"#), "Standard shipping is the default");
    assert!(html.contains("Place order · €34.97"), "the seed cart with standard shipping");
    assert!(!html.contains("aria-invalid"), "nothing is flagged before the shopper types");
}

/// A server that knows a few orders and one cluster.
struct Fake {
    cluster: ClusterStatus,
}

impl CheckoutBackend for Fake {
    fn checkout(&self, _: CheckoutRequest) -> BoxFuture<'_, CheckoutOutcome> {
        Box::pin(std::future::ready(CheckoutOutcome::Refused(Refusal::unavailable(Step::Input, "test", "not here"))))
    }

    fn order_status(&self, order_id: String) -> BoxFuture<'_, Result<Option<OrderStatus>, String>> {
        let status = |status, reason: Option<&str>| {
            Ok(Some(OrderStatus {
                order_id: order_id.clone(),
                status,
                reason: reason.map(str::to_owned),
                journey: None,
                // A shop that does not trace names no trace.
                trace_id: (order_id != "ord-executing").then(|| "4bf92f3577b34da6a3ce929d0e0e4736".to_owned()),
            }))
        };
        let answer = match order_id.as_str() {
            "0b7e9a52-77c1-4c1e-9d1c-3f0c2a9e8b10" => status(OrderState::Queued, None),
            "ord-executing" => status(OrderState::Executing, None),
            "ord-committed" => status(OrderState::Committed, None),
            "ord-aborted" => status(OrderState::Aborted, Some("only 2 copies of Fourth Wing left")),
            "ord-unreadable" => Err("order_executor: connection refused at 127.0.0.1:50071".to_owned()),
            _ => Ok(None),
        };
        Box::pin(std::future::ready(answer))
    }

    fn cluster_status(&self) -> BoxFuture<'_, ClusterStatus> {
        Box::pin(std::future::ready(self.cluster.clone()))
    }

    /// Not a real seal (no secret), but any change to the text changes it.
    fn seal(&self, text: &str) -> String {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::hash::DefaultHasher::new();
        text.hash(&mut hasher);
        format!("{:016x}", hasher.finish())
    }

    fn is_sealed(&self, text: &str, seal: &str) -> bool {
        self.seal(text) == seal
    }
}

fn fake() -> Fake {
    Fake { cluster: ClusterStatus::default() }
}

/// The result link the server writes for `outcome`.
fn sealed_href(outcome: &CheckoutOutcome) -> String {
    app::result_href(outcome, |query| fake().seal(query))
}

fn replica(id: u64, role: Role, answers: bool) -> ReplicaStatus {
    ReplicaStatus {
        id,
        address: format!("127.0.0.1:5007{id}"),
        role,
        term: if answers { 4 } else { 0 },
        last_applied: answers.then_some(17),
        answers,
    }
}

fn a_cluster_with_a_leader_and_an_unreachable_replica() -> ClusterStatus {
    ClusterStatus {
        executors: vec![
            replica(1, Role::Follower, true),
            replica(2, Role::Leader, true),
            replica(3, Role::Unreachable, false),
        ],
        books_db: vec![
            replica(1, Role::Leader, true),
            replica(2, Role::Follower, true),
            replica(3, Role::Follower, true),
        ],
        queue: Some(QueueDepth { premium: 3, basic: 1, none: 0, leased: 2 }),
    }
}

/// Renders the whole document for `url` the way leptos_axum does for a route that
/// waits for its data: in order, with resources resolved, against `backend`, then
/// the scripts that carry the resources' values to the browser.
async fn render_with(url: &str, backend: impl Into<Option<Fake>>) -> (String, Option<http::StatusCode>) {
    let backend = backend.into();
    // The executor resources are spawned on; set once per process, later calls are no-ops.
    let _ = any_spawner::Executor::init_tokio();
    let shared = Arc::new(SsrSharedContext::new());
    let owner = Owner::new_root(Some(Arc::clone(&shared) as Arc<dyn SharedContext + Send + Sync>));
    let response = leptos_axum::ResponseOptions::default();
    let mut html = owner
        .with(|| {
            provide_context(RequestUrl::new(url));
            let (meta, _) = leptos_meta::ServerMetaContext::new();
            provide_context(meta);
            provide_context(response.clone());
            if let Some(backend) = backend {
                provide_context(Backend(Arc::new(backend)));
            }
            view! { <app::App /> }.to_html_stream_in_order()
        })
        .collect::<String>()
        .await;
    if let Some(data) = shared.pending_data() {
        html.push_str(&data.map(|chunk| format!("<script>{chunk}</script>")).collect::<String>().await);
    }
    let status = response.0.read().ok().and_then(|parts| parts.status);
    (html, status)
}

async fn render_order(id: &str) -> (String, Option<http::StatusCode>) {
    render_with(&format!("/orders/{id}"), Fake { cluster: ClusterStatus::default() }).await
}

/// The start tag of the element `#id` and the text right after it (the renderer
/// orders attributes its own way, so tests look at them one by one).
fn element<'a>(html: &'a str, id: &str) -> (&'a str, &'a str) {
    let at = html.find(&format!(r#" id="{id}""#)).unwrap_or_else(|| panic!("no #{id}: {html}"));
    let start = html[..at].rfind('<').unwrap_or(at);
    let end = at + html[at..].find('>').unwrap_or(0);
    let text = &html[end + 1..];
    (&html[start..=end], &text[..text.find('<').unwrap_or(text.len())])
}

/// The start tags of the `<tr>` rows in the body of `table#id`.
fn rows<'a>(html: &'a str, id: &str) -> Vec<&'a str> {
    let (table, _) = element(html, id);
    let from = html.find(table).unwrap_or(0);
    let body = &html[from..from + html[from..].find("</table>").unwrap_or(0)];
    let body = &body[body.find("<tbody>").unwrap_or(0)..];
    body.match_indices("<tr").map(|(at, _)| &body[at..at + body[at..].find('>').unwrap_or(0) + 1]).collect()
}

#[tokio::test]
async fn an_order_page_shows_the_current_status_and_refreshes_without_javascript() {
    let (html, status) = render_order("0b7e9a52-77c1-4c1e-9d1c-3f0c2a9e8b10").await;
    assert_eq!(status, None, "200");
    assert_eq!(element(&html, "order-title").1, "Order 0b7e9a52");
    assert_eq!(element(&html, "order-id").1, "0b7e9a52-77c1-4c1e-9d1c-3f0c2a9e8b10");
    assert_eq!(element(&html, "order-trace").1, "4bf92f3577b34da6a3ce929d0e0e4736", "the support reference");
    let (badge, label) = element(&html, "order-live-status");
    assert!(badge.contains(r#"data-status="queued""#), "{badge}");
    assert_eq!(label, "Waiting to be packed");
    assert!(html.contains(r#"role="status" aria-live="polite""#), "{html}");
    assert!(html.contains(r#"<noscript><meta http-equiv="refresh" content="2">"#), "{html}");
    assert!(!html.contains("order-live-reason"), "{html}");

    let (html, _) = render_order("ord-executing").await;
    let (badge, label) = element(&html, "order-live-status");
    assert!(badge.contains(r#"data-status="executing""#), "{badge}");
    assert_eq!(label, "Reserving your books and taking payment");
    assert!(html.contains(r#"http-equiv="refresh""#), "still changing: {html}");
    assert!(!html.contains("order-trace"), "no trace, no reference: {html}");
}

#[tokio::test]
async fn a_final_order_page_stops_refreshing_and_an_aborted_one_says_why() {
    let (html, status) = render_order("ord-committed").await;
    assert_eq!(status, None, "200");
    let (badge, label) = element(&html, "order-live-status");
    assert!(badge.contains(r#"data-status="committed""#), "{badge}");
    assert_eq!(label, "Confirmed: your books are reserved and paid");
    assert!(!html.contains("http-equiv"), "{html}");

    let (html, _) = render_order("ord-aborted").await;
    let (badge, label) = element(&html, "order-live-status");
    assert!(badge.contains(r#"data-status="aborted""#), "{badge}");
    assert_eq!(label, "Cancelled: nothing was charged");
    assert_eq!(element(&html, "order-live-reason").1, "only 2 copies of Fourth Wing left");
    assert!(!html.contains("http-equiv"), "{html}");
}

#[tokio::test]
async fn an_unknown_order_is_a_friendly_404() {
    let (html, status) = render_order("no-such-order").await;
    assert_eq!(status, Some(http::StatusCode::NOT_FOUND));
    assert!(html.contains(r#"id="order-unknown""#), "{html}");
    assert!(html.contains("We don&#x27;t know this order") || html.contains("We don't know this order"), "{html}");
    assert!(!html.contains("order-live-status"), "{html}");
    assert!(!html.contains("http-equiv"), "{html}");
}

#[tokio::test]
async fn an_unreadable_status_is_a_calm_message_without_details() {
    let (html, _) = render_order("ord-unreadable").await;
    assert!(html.contains(r#"id="order-error""#), "{html}");
    assert!(html.contains(r#"href="/orders/ord-unreadable""#), "a way to try again: {html}");
    assert!(html.contains("<script>") && html.contains("Unreadable"), "the value hydration reads: {html}");
    assert!(
        !html.contains("connection refused") && !html.contains("127.0.0.1"),
        "no details, not even in scripts: {html}"
    );
}

#[tokio::test]
async fn without_a_backend_both_pages_stay_calm() {
    let (html, _) = render_with("/orders/ord-committed", None).await;
    assert!(html.contains(r#"id="order-error""#), "{html}");
    let (html, _) = render_with("/cluster", None).await;
    assert!(html.contains(r#"id="cluster-error""#), "{html}");
    assert!(!html.contains("cluster-executors") && !html.contains("Updated"), "{html}");
    for page in ["/orders/ord-committed", "/cluster"] {
        let (html, _) = render_with(page, None).await;
        assert!(!html.contains("backend not configured") && !html.contains("ServerFnError"), "{html}");
    }
}

#[tokio::test]
async fn the_cluster_page_shows_both_groups_and_the_queue() {
    let (html, status) =
        render_with("/cluster", Fake { cluster: a_cluster_with_a_leader_and_an_unreachable_replica() }).await;
    assert_eq!(status, None, "200");
    assert!(html.contains("<h1>Cluster status</h1>"), "{html}");

    let executors = rows(&html, "cluster-executors");
    assert_eq!(executors.len(), 3, "{html}");
    let expected =
        [("1", "follower", "replica"), ("2", "leader", "replica leader"), ("3", "unreachable", "replica unreachable")];
    for (row, (id, role, class)) in executors.iter().zip(expected) {
        for attribute in [format!(r#"data-id="{id}""#), format!(r#"data-role="{role}""#), format!(r#"class="{class}""#)]
        {
            assert!(row.contains(&attribute), "{row} lacks {attribute}");
        }
    }
    let books_db = rows(&html, "cluster-books-db");
    assert_eq!(books_db.len(), 3, "{html}");
    assert_eq!(books_db.iter().filter(|row| row.contains(r#"class="replica leader""#)).count(), 1, "{html}");
    assert!(!books_db.iter().any(|row| row.contains("unreachable")), "{html}");

    assert!(html.contains(r#"<td data-label="Address" class="address">127.0.0.1:50073</td>"#), "{html}");
    assert!(html.contains(r#"<td data-label="Role" class="role">leader</td>"#), "{html}");
    assert!(
        html.contains(r#"<td data-label="Answering" class="answers">no</td>"#)
            && html.contains(r#"<td data-label="Answering" class="answers">yes</td>"#)
    );
    assert!(html.contains(r#"<td data-label="Last applied" class="number">—</td>"#), "an unknown index: {html}");

    let (queue, _) = element(&html, "cluster-queue");
    let queue_at = html.find(queue).unwrap_or(0);
    for (priority, count) in [("premium", 3), ("basic", 1), ("none", 0), ("leased", 2)] {
        let cell = format!(r#"<div data-priority="{priority}""#);
        let at = html[queue_at..].find(&cell).unwrap_or_else(|| panic!("no {priority} count: {html}"));
        let rest = &html[queue_at + at..];
        assert!(rest[..rest.find("</div>").unwrap_or(0)].contains(&format!("<dd>{count}</dd>")), "{rest}");
    }
    assert_eq!(element(&html, "cluster-updated").1, "Updated just now");
    assert_eq!(element(&html, "cluster-link").1, "Cluster status");
    assert!(element(&html, "cluster-link").0.contains(r#"href="/cluster""#));
}

#[tokio::test]
async fn the_cluster_page_says_when_the_queue_is_silent() {
    let cluster = ClusterStatus { queue: None, ..a_cluster_with_a_leader_and_an_unreachable_replica() };
    let (html, _) = render_with("/cluster", Fake { cluster }).await;
    assert_eq!(element(&html, "cluster-queue-silent").1, "The queue did not answer.");
    assert!(!html.contains("data-priority"), "{html}");
}

#[tokio::test]
async fn the_result_page_shows_an_approved_order_with_its_suggestions() {
    let outcome = CheckoutOutcome::Approved(ApprovedOrder {
        order_id: "ord-42".into(),
        status: "queued".into(),
        suggested_books: vec![SuggestedBook { book_id: "2".into(), title: String::new(), author: String::new() }],
    });
    let (html, _) = render_with(&sealed_href(&outcome), fake()).await;
    assert!(html.contains(r#"id="outcome-approved""#), "{html}");
    assert!(html.contains(r#"<dd id="outcome-order-id">ord-42</dd>"#), "{html}");
    let (badge, label) = element(&html, "order-live-status");
    assert!(badge.contains(r#"data-status="queued""#), "{badge}");
    assert_eq!(label, "Waiting to be packed");
    let (link, text) = element(&html, "order-page-link");
    assert!(link.contains(r#"href="/orders/ord-42""#), "{link}");
    assert_eq!(text, "View this order");
    assert!(!html.contains("http-equiv"), "the link is enough here: {html}");
    assert!(html.contains("Iron Flame"), "the title comes from the catalog: {html}");
    assert!(html.contains(r#"href="/""#));
}

#[tokio::test]
async fn the_result_page_names_the_step_that_refused() {
    let outcome = CheckoutOutcome::Refused(Refusal::unavailable(Step::CheckCard, "fraud_detection", "timed out"));
    let (html, _) = render_with(&sealed_href(&outcome), fake()).await;
    assert!(html.contains(r#"id="outcome-refused""#), "{html}");
    assert!(html.contains(r#"<strong id="outcome-step">Fraud check on the card</strong>"#), "{html}");
    assert!(html.contains(r#"id="outcome-nothing-charged""#), "{html}");
    assert!(html.contains(r#"id="back-to-checkout" href="/""#), "{html}");

    let outcome = CheckoutOutcome::Refused(Refusal {
        step: Step::VerifyCardFormat,
        service: "transaction_verification".into(),
        class: RefusalClass::Invalid,
        code: "checksum".into(),
        message: "This card number is not valid: check it for a typo.".into(),
        field: Some(path::CARD_NUMBER.into()),
    });
    let (html, _) = render_with(&sealed_href(&outcome), fake()).await;
    assert!(html.contains("This card number is not valid: check it for a typo."), "{html}");
    assert!(html.contains(r#"<strong id="outcome-field">Card number</strong>"#), "{html}");
    assert!(!html.contains("outcome-nothing-charged"), "{html}");
}

#[tokio::test]
async fn a_result_link_without_an_outcome_says_so() {
    let (html, _) = render_with("/checkout/result?order=", fake()).await;
    assert!(html.contains(r#"id="outcome-unknown""#), "{html}");
}

#[tokio::test]
async fn a_result_link_the_server_did_not_write_shows_nothing_of_it() {
    let outcome = CheckoutOutcome::Refused(Refusal::unavailable(Step::CheckCard, "fraud_detection", "timed out"));
    let href = sealed_href(&outcome);
    let message = app::result_link::result_query(&outcome).split("message=").nth(1).expect("a message").to_owned();
    let forged = href.replace(&message, "Call%20555-0100%20to%20unblock%20your%20card");
    let unsealed = href.split("&seal=").next().expect("a query").to_owned();
    for link in [forged, unsealed, format!("{href}0")] {
        let (html, _) = render_with(&link, fake()).await;
        assert!(html.contains(r#"id="outcome-unknown""#), "{link}: {html}");
        assert!(!html.contains("555-0100") && !html.contains("outcome-step"), "{link}: {html}");
    }
}

#[test]
fn unknown_addresses_are_404() {
    let (html, status) = render("/no-such-page");
    assert_eq!(status, Some(http::StatusCode::NOT_FOUND));
    assert!(html.contains("Page not found"), "{html}");
}
