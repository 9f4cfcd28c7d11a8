//! `POST /checkout` against the whole stack on loopback: the approved path, every
//! refusal class with its step, code and status, unavailable services, and that no
//! service keeps a cached copy afterwards.

use crate::support;

use std::time::Duration;

use proto::v1 as pb;
use serde_json::{json, Value};
use services::fraud_detection::FraudConfig;
use support::{seed_order, with, Stack, StackOptions, ITEM_ONLY_FORM};

/// Asserts a refusal's status, step, code and field, and that every service
/// forgot the order.
async fn assert_refused(
    stack: &Stack,
    order: &Value,
    status: u16,
    step: &str,
    code: &str,
    field: Option<&str>,
) -> Value {
    let (got_status, body) = stack.checkout(order).await;
    let error = &body["error"];
    assert_eq!(got_status, status, "{body}");
    assert_eq!(error["step"], step, "{body}");
    assert_eq!(error["code"], code, "{body}");
    assert_eq!(error["field"].as_str(), field, "{body}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert_eq!(stack.cached_orders().await, [0, 0, 0], "a refused order is cleared everywhere");
    body
}

#[tokio::test]
async fn approves_the_seed_order_and_queues_it_without_the_card_number() {
    let stack = Stack::start().await;
    let (status, body) = stack.checkout(&seed_order()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "queued");
    let order_id = body["orderId"].as_str().expect("an order id").to_owned();
    let suggested: Vec<&str> =
        body["suggestedBooks"].as_array().expect("suggestions").iter().map(|b| b["bookId"].as_str().unwrap()).collect();
    assert_eq!(suggested.len(), 3);
    assert!(!suggested.contains(&"4") && !suggested.contains(&"1"), "never suggests an ordered book: {suggested:?}");
    assert!(body["suggestedBooks"][0]["title"].as_str().is_some_and(|t| !t.is_empty()));

    assert_eq!(stack.cached_orders().await, [0, 0, 0], "clear_order with [3,2,1] removed every copy");

    let queued = stack.dequeue().await.expect("the approved order is in the queue");
    assert_eq!(queued.order_id, order_id);
    assert_eq!(queued.client_card(), pb::ClientCard::Premium);
    assert_eq!(queued.total_cents, 1099 + 1899 + 499);
    let card = queued.card.clone().expect("a card token");
    assert_eq!((card.network.as_str(), card.last4.as_str()), ("visa", "6287"));
    assert_eq!(card.fingerprint.len(), 64);
    let stored = format!("{queued:?}");
    assert!(!stored.contains("4716401589806287"), "the queue never holds the card number");
}

#[tokio::test]
async fn refuses_each_emptied_required_field_naming_it() {
    let stack = Stack::start().await;
    let cases = [
        ("user.name", "verify_user_data", "user.name"),
        ("user.contact", "verify_user_data", "user.contact"),
        ("billingAddress.street", "verify_user_data", "billingAddress.street"),
        ("billingAddress.city", "verify_user_data", "billingAddress.city"),
        ("billingAddress.zip", "verify_user_data", "billingAddress.zip"),
        ("billingAddress.country", "verify_user_data", "billingAddress.country"),
        ("creditCard.number", "verify_card_format", "creditCard.number"),
        ("creditCard.expirationDate", "verify_card_format", "creditCard.expirationDate"),
        ("creditCard.cvv", "verify_card_format", "creditCard.cvv"),
        ("items.0.id", "verify_items", "items[0].id"),
    ];
    for (path, step, field) in cases {
        let order = with(seed_order(), path, json!(""));
        let code = if path == "items.0.id" { "unknown_book" } else { "missing" };
        assert_refused(&stack, &order, 400, step, code, Some(field)).await;
    }
    let no_terms = with(seed_order(), "termsAccepted", json!(false));
    assert_refused(&stack, &no_terms, 400, "verify_user_data", "terms_not_accepted", Some("termsAccepted")).await;
    let no_items = with(seed_order(), "items", json!([]));
    assert_refused(&stack, &no_items, 400, "verify_items", "empty_order", Some("items")).await;
    let blank = with(seed_order(), "shippingMethod", json!(""));
    assert_refused(&stack, &blank, 400, "verify_items", "blank_shipping_method", Some("shippingMethod")).await;
    let blank = with(seed_order(), "clientCard", json!(" "));
    assert_refused(&stack, &blank, 400, "verify_items", "blank_client_card", Some("clientCard")).await;
}

#[tokio::test]
async fn fields_left_out_take_their_documented_defaults() {
    let stack = Stack::start().await;
    let mut order = seed_order();
    for field in ["shippingMethod", "clientCard", "termsAccepted"] {
        order.as_object_mut().expect("an object").remove(field);
    }
    let (status, body) = stack.checkout(&order).await;
    assert_eq!(status, 200, "the seed's contract has none of these fields: {body}");
    let queued = stack.dequeue().await.expect("the order is queued");
    assert_eq!(queued.order_id, body["orderId"].as_str().expect("an order id"));
    assert_eq!((queued.shipping_method.as_str(), queued.client_card()), ("Standard", pb::ClientCard::None));
}

/// The seed order from a buyer and card of its own (`n` picks them).
fn shopper(n: usize, card: &str) -> Value {
    let order = with(seed_order(), "user.name", json!(format!("Simon Lawrence {}", "I".repeat(n + 1))));
    let order = with(order, "user.contact", json!(format!("simon.{n}@example.org")));
    with(order, "creditCard.number", json!(card))
}

#[tokio::test]
async fn input_errors_are_answered_as_such_however_often_one_buyer_tries() {
    let stack = Stack::start().await;
    let cases = [
        ("creditCard.number", json!("4716401589806288"), "checksum", "creditCard.number"),
        ("creditCard.expirationDate", json!("01/20"), "expired", "creditCard.expirationDate"),
        ("items", json!([]), "empty_order", "items"),
        ("shippingMethod", json!(""), "blank_shipping_method", "shippingMethod"),
        ("termsAccepted", json!(false), "terms_not_accepted", "termsAccepted"),
    ];
    // One buyer and one card throughout: far more attempts than the velocity limit.
    for (path, value, code, field) in cases {
        for attempt in 0..8 {
            let (status, body) = stack.checkout(&with(seed_order(), path, value.clone())).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (400, Some(code)),
                "{path}, attempt {attempt}: {body}"
            );
            assert_eq!(body["error"]["field"], field, "{body}");
        }
    }
    let (status, body) = stack.checkout(&seed_order()).await;
    assert_eq!(status, 200, "40 refused attempts did not count toward the buyer's or the card's window: {body}");
}

#[tokio::test]
async fn the_same_request_gets_the_same_answer_whatever_the_timing() {
    // Room for all 200 at once: this is about which refusal wins, not capacity
    // (beyond it a checkout is refused `busy` before any rule runs).
    let options = StackOptions { racing_chains: true, checkout_concurrency: Some(200), ..StackOptions::default() };
    let stack = Stack::start_with(options).await;
    // The card's expiry is wrong (c, on one chain) and the buyer is blocklisted (d,
    // on the other): the shopper's own input error wins, every time.
    let order = with(seed_order(), "creditCard.expirationDate", json!("01/20"));
    let order = with(order, "user.name", json!("John Doe"));
    let answers = futures::future::join_all((0..200).map(|_| stack.checkout(&order))).await;
    for (status, body) in &answers {
        assert_eq!((*status, body["error"]["code"].as_str()), (400, Some("expired")), "{body}");
        assert_eq!(body["error"]["step"], "verify_card_format", "{body}");
    }
    assert_eq!(stack.cached_orders().await, [0, 0, 0]);
}

#[tokio::test]
async fn checkouts_refused_for_fraud_count_toward_the_buyers_window() {
    let stack = Stack::start().await;
    // Card testing: one buyer, five cards, each refused for its blocklisted CVV.
    let cards = ["4716401589806287", "4539578763621486", "4916338506082832", "4024007198964305", "4485983356242217"];
    for card in cards {
        let order = with(shopper(0, card), "creditCard.cvv", json!("000"));
        assert_refused(&stack, &order, 403, "check_card", "cvv_blocklisted", Some("creditCard.cvv")).await;
    }
    let body = assert_refused(
        &stack,
        &shopper(0, "4532015112830366"),
        403,
        "check_user",
        "user_velocity_exceeded",
        Some("user.contact"),
    )
    .await;
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("More than 5 checkout attempts from this buyer"), "{message}");
    assert!(message.contains("try again in"), "{message}");
}

#[tokio::test]
async fn refuses_a_blocklisted_user_at_the_fraud_step() {
    let stack = Stack::start().await;
    let order = with(seed_order(), "user.name", json!("John Doe"));
    let body = assert_refused(&stack, &order, 403, "check_user", "user_blocklisted", Some("user.name")).await;
    assert_eq!(body["error"]["service"], "fraud_detection");
}

#[tokio::test]
async fn refuses_a_blocklisted_card_at_the_card_fraud_step() {
    let stack = Stack::start().await;
    let order = with(seed_order(), "creditCard.number", json!("4111 1111 1111 1111"));
    assert_refused(&stack, &order, 403, "check_card", "card_blocklisted", Some("creditCard.number")).await;
}

#[tokio::test]
async fn refuses_an_expired_card() {
    let stack = Stack::start().await;
    let order = with(seed_order(), "creditCard.expirationDate", json!("01/20"));
    assert_refused(&stack, &order, 400, "verify_card_format", "expired", Some("creditCard.expirationDate")).await;
}

#[tokio::test]
async fn refuses_a_card_number_failing_luhn() {
    let stack = Stack::start().await;
    let order = with(seed_order(), "creditCard.number", json!("4716401589806288"));
    let body = assert_refused(&stack, &order, 400, "verify_card_format", "checksum", Some("creditCard.number")).await;
    assert!(!body.to_string().contains("4716401589806288"), "the answer never repeats the number");
}

#[tokio::test]
async fn refuses_too_many_copies_and_unknown_books() {
    let stack = Stack::start().await;
    let order = with(seed_order(), "items.0.quantity", json!(101));
    assert_refused(&stack, &order, 400, "verify_items", "quantity_out_of_range", Some("items[0].quantity")).await;
    let order = with(seed_order(), "items.1.id", json!("999"));
    assert_refused(&stack, &order, 400, "verify_items", "unknown_book", Some("items[1].id")).await;
}

#[tokio::test]
async fn refuses_more_copies_than_in_stock_with_409() {
    let stack = Stack::start().await;
    // Six of Crows: 3 in stock.
    let order = with(seed_order(), "items", json!([{"id": "20", "name": "Six of Crows", "quantity": 4}]));
    let body = assert_refused(&stack, &order, 409, "verify_items", "out_of_stock", Some("items[0].quantity")).await;
    assert!(body["error"]["message"].as_str().unwrap().contains("Only 3 copies of Six of Crows"), "{body}");
}

#[tokio::test]
async fn refuses_an_unknown_client_card_and_queues_nothing() {
    let stack = Stack::start().await;
    let order = with(seed_order(), "clientCard", json!("Platinum"));
    assert_refused(&stack, &order, 400, "verify_items", "unknown_client_card", Some("clientCard")).await;
    let stats = stack.queue().await.stats(proto::v1::StatsRequest {}).await.unwrap().into_inner();
    assert_eq!(stats.premium + stats.basic + stats.none + stats.leased, 0);
}

#[tokio::test]
async fn refuses_the_sixth_order_from_one_card_within_the_window() {
    let stack = Stack::start().await;
    for i in 0..5 {
        // Different buyers, one card: only the card's velocity is at stake.
        let order = with(seed_order(), "user.name", json!(format!("Buyer Number{}", "x".repeat(i + 1))));
        let order = with(order, "user.contact", json!(format!("buyer{i}@example.org")));
        let (status, body) = stack.checkout(&order).await;
        assert_eq!(status, 200, "order {} of 5: {body}", i + 1);
    }
    let order = with(seed_order(), "user.contact", json!("buyer6@example.org"));
    let body =
        assert_refused(&stack, &order, 403, "check_card", "card_velocity_exceeded", Some("creditCard.number")).await;
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("More than 5 orders with this card within 60 seconds; please try again in"),
        "{message}"
    );
}

#[tokio::test]
async fn refuses_orders_above_the_amount_ceiling() {
    let config = FraudConfig { amount_ceiling: domain::Money::from_cents(2_000), ..FraudConfig::default() };
    let stack = Stack::start_with(StackOptions { fraud: config, ..StackOptions::default() }).await;
    assert_refused(&stack, &seed_order(), 403, "check_card", "amount_over_limit", Some("items")).await;
}

#[tokio::test]
async fn malformed_json_is_refused_at_the_input_step_without_echoing_values() {
    let stack = Stack::start().await;
    let response = stack
        .http
        .post(stack.url("/checkout"))
        .header("content-type", "application/json")
        .body("{\"user\": {")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["error"]["step"].as_str(), body["error"]["code"].as_str()),
        (Some("input"), Some("malformed_json"))
    );

    let order = with(seed_order(), "creditCard.number", json!(4716401589806287_u64));
    let (status, body) = stack.checkout(&order).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "creditCard.number", "{body}");
    assert!(!body.to_string().contains("4716401589806287"), "{body}");
    assert_eq!(stack.cached_orders().await, [0, 0, 0], "nothing was sent anywhere");
}

#[tokio::test]
async fn bodies_over_one_megabyte_get_413_in_the_error_shape() {
    let stack = Stack::start().await;
    let order = with(seed_order(), "userComment", json!("x".repeat(1024 * 1024 + 1)));
    let response = stack.http.post(stack.url("/checkout")).json(&order).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 413);
    let body: Value = response.json().await.expect("a JSON answer");
    assert_eq!(body["error"]["code"], "body_too_large", "{body}");
}

#[tokio::test]
async fn a_client_that_sends_its_whole_body_before_reading_gets_the_413() {
    let stack = Stack::start().await;
    // Large enough that the kernel's socket buffers cannot hold what the server
    // does not read: without the server discarding it, writing it fails (reset).
    for megabytes in [2, 8] {
        let answer = send_whole_body_then_read(&stack, megabytes).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{megabytes} MB: {answer}");
        assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
        assert!(answer.contains(r#""code":"body_too_large""#), "{answer}");
    }
}

#[tokio::test]
async fn a_client_that_waits_for_100_continue_gets_the_413_before_sending() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stack = Stack::start().await;
    let mut socket = tokio::net::TcpStream::connect(stack.web.addr).await.expect("connect");
    let head = "POST /checkout HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n\
                Content-Length: 8388608\r\nExpect: 100-continue\r\n\r\n";
    socket.write_all(head.as_bytes()).await.expect("the head is sent");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer))
        .await
        .expect("answered without the body")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(!answer.contains("100 Continue"), "the body was not invited: {answer}");
}

async fn send_whole_body_then_read(stack: &Stack, megabytes: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = vec![b'x'; megabytes * 1024 * 1024];
    let mut socket = tokio::net::TcpStream::connect(stack.web.addr).await.expect("connect");
    let head = format!(
        "POST /checkout HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await.expect("the head is sent");
    socket.write_all(&body).await.expect("the whole body is sent: the server reads it");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes")
        .expect("the answer is read, not reset");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn wrong_methods_types_and_paths_are_answered_in_the_error_shape() {
    let stack = Stack::start().await;
    let response = stack.http.get(stack.url("/checkout")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert!(response.headers().get("allow").is_some_and(|allow| allow.to_str().unwrap().contains("POST")));
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "method_not_allowed");
    let response =
        stack.http.post(stack.url("/checkout")).header("content-type", "text/plain").body("{}").send().await.unwrap();
    assert_eq!(response.status().as_u16(), 415);
    assert_eq!(response.json::<Value>().await.expect("JSON")["error"]["code"], "unsupported_media_type");
    let response = stack.http.get(stack.url("/api/no-such-thing")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(response.json::<Value>().await.expect("JSON")["error"]["code"], "not_found");
    let page = stack.http.get(stack.url("/no-such-page")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(page.status().as_u16(), 404);
    assert!(page.text().await.unwrap().contains("<html"), "a browser still gets the page's 404");
}

#[tokio::test]
async fn a_stopped_service_gives_503_naming_the_step() {
    let mut stack = Stack::start().await;
    stack.suggestions.take().unwrap().stop().await;
    let (status, body) = stack.checkout(&seed_order()).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["step"], "init_order");
    assert_eq!(body["error"]["service"], "suggestions");
    assert!(body["error"]["message"].as_str().unwrap().contains("Nothing was charged"), "{body}");

    let mut stack = Stack::start().await;
    stack.order_queue.take().unwrap().stop().await;
    let (status, body) = stack.checkout(&seed_order()).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        (body["error"]["step"].as_str(), body["error"]["service"].as_str(), body["error"]["code"].as_str()),
        (Some("enqueue"), Some("order_queue"), Some("service_unavailable")),
        "nothing listens at the queue's address, so the order was never sent: not unconfirmed"
    );
    assert_eq!(stack.cached_orders().await, [0, 0, 0]);
}

#[tokio::test]
async fn beyond_capacity_a_checkout_is_refused_at_once_and_told_when_to_come_back() {
    // Room for one checkout at a time; transaction_verification hangs, so a
    // checkout holds its place until its calls' deadline.
    let options =
        StackOptions { hung_transaction_verification: true, checkout_concurrency: Some(1), ..StackOptions::default() };
    let stack = Stack::start_with(options).await;
    // Two checkouts at once: one runs (until its deadline), the other is refused
    // at once: 503 `busy`, with when to try again, in the one error shape.
    let send = || async {
        let answer = stack.http.post(stack.url("/checkout")).json(&seed_order()).send().await.unwrap();
        let retry_after = answer.headers().get("retry-after").map(|value| value.to_str().unwrap().to_owned());
        (answer.status().as_u16(), retry_after, answer.json::<Value>().await.unwrap())
    };
    let (one, other) = tokio::join!(send(), send());
    let (refused, ran) = if one.2["error"]["code"] == "busy" { (one, other) } else { (other, one) };
    assert_eq!((refused.0, refused.1.as_deref()), (503, Some("1")), "{}", refused.2);
    assert_eq!(
        (
            refused.2["error"]["code"].as_str(),
            refused.2["error"]["step"].as_str(),
            refused.2["error"]["service"].as_str()
        ),
        (Some("busy"), Some("init_order"), Some("web"))
    );
    assert!(refused.2["error"]["message"].as_str().unwrap().contains("Nothing was charged"));
    assert_eq!(
        (ran.0, ran.2["error"]["code"].as_str()),
        (503, Some("service_unavailable")),
        "the other ran to its end: transaction_verification never answered: {}",
        ran.2
    );
    // Its place is free again: the next checkout runs (and meets the hung service).
    let (status, body) = stack.checkout(&seed_order()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("service_unavailable")), "{body}");
}

#[tokio::test]
async fn readiness_names_the_services_a_checkout_needs_that_do_not_serve() {
    let mut stack = Stack::start().await;
    let ready = stack.http.get(stack.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    assert_eq!(ready.text().await.unwrap(), "ready");

    stack.suggestions.take().unwrap().stop().await;
    let answer = stack.http.get(stack.url("/readyz")).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 503);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(
        (body["error"]["code"].as_str(), body["error"]["service"].as_str()),
        (Some("not_ready"), Some("suggestions")),
        "{body}"
    );
    assert!(body["error"]["message"].as_str().unwrap().contains("suggestions: the service is not reachable"), "{body}");
    let alive = stack.http.get(stack.url("/healthz")).send().await.unwrap();
    assert_eq!(alive.status().as_u16(), 200, "liveness does not depend on the services");
}

#[tokio::test]
async fn a_hung_service_gives_503_instead_of_a_hung_checkout() {
    let stack =
        Stack::start_with(StackOptions { hung_transaction_verification: true, ..StackOptions::default() }).await;
    let answer = tokio::time::timeout(Duration::from_secs(30), stack.checkout(&seed_order()))
        .await
        .expect("the checkout answers although a service hangs");
    let (status, body) = answer;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        (body["error"]["step"].as_str(), body["error"]["service"].as_str()),
        (Some("init_order"), Some("transaction_verification"))
    );
}

#[tokio::test]
async fn serves_the_openapi_document_covering_the_request_fields() {
    let stack = Stack::start().await;
    let document: Value = stack.http.get(stack.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let properties = &document["components"]["schemas"]["CheckoutRequest"]["properties"];
    let request = serde_json::to_value(domain::CheckoutRequest::default()).unwrap();
    for key in request.as_object().unwrap().keys() {
        assert!(properties.get(key).is_some(), "the OpenAPI document lacks {key}");
    }
    assert!(document["paths"]["/checkout"]["post"].is_object());
}

#[tokio::test]
async fn every_status_the_api_answers_is_in_the_openapi_document() {
    let stack = Stack::start().await;
    let document: Value = stack.http.get(stack.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let documented = |path: &str, method: &str, status: u16| {
        document["paths"][path][method]["responses"].get(status.to_string()).is_some()
    };
    let answers = [
        ("/orders/{id}", "get", stack.http.get(stack.url(&format!("/orders/{}", "x".repeat(65))))),
        ("/orders/{id}", "get", stack.http.get(stack.url("/orders/no-such-order"))),
        ("/checkout", "post", stack.http.post(stack.url("/checkout")).json(&seed_order())),
        ("/checkout", "post", stack.http.post(stack.url("/checkout")).json(&with(seed_order(), "items", json!([])))),
        ("/checkout", "post", stack.http.post(stack.url("/checkout")).header("content-type", "text/plain").body("{}")),
        (
            "/checkout",
            "post",
            stack.http.post(stack.url("/checkout")).json(&json!({"userComment": "x".repeat(1 << 21)})),
        ),
        ("/api/cluster", "get", stack.http.get(stack.url("/api/cluster"))),
        ("/healthz", "get", stack.http.get(stack.url("/healthz"))),
        ("/readyz", "get", stack.http.get(stack.url("/readyz"))),
    ];
    for (path, method, request) in answers {
        let status = request.send().await.expect("an answer").status().as_u16();
        assert!(
            documented(path, method, status),
            "{method} {path} answered {status}, which the document does not list"
        );
    }
}

#[tokio::test]
async fn renders_the_checkout_page_on_the_server() {
    let stack = Stack::start().await;
    let response = stack.http.get(stack.url("/")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("The Hunger Games") && html.contains("Fourth Wing"), "the cart is rendered");
    assert!(html.contains("name=\"request[creditCard][number]\""), "the form posts to the server function");
}

#[tokio::test]
async fn a_form_post_without_javascript_lands_on_a_sealed_result_that_cannot_be_altered() {
    let stack = Stack::start().await;
    // A form with an item and nothing else: refused for the missing name.
    let response = stack.post_checkout_form(ITEM_ONLY_FORM).await;
    assert!(response.status().is_redirection(), "{}", response.status());
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/checkout/result?step=verify_user_data&"), "{location}");
    assert!(location.contains("&field=user.name&") && location.contains("&seal="), "{location}");

    let page = |link: String| {
        let http = &stack.http;
        let url = stack.url(&link);
        async move { http.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let html = page(location.clone()).await;
    assert!(html.contains(r#"id="outcome-refused""#), "{html}");
    assert!(html.contains(r#"id="outcome-field""#), "the refusal names the field: {html}");

    // What a stranger types never gets a seal: no message repeats it.
    let expiry = support::future_expiry();
    let form = [
        ("request[user][name]", "Simon Lawrence"),
        ("request[user][contact]", "simon.lawrence@example.org"),
        ("request[billingAddress][street]", "Narva mnt 18"),
        ("request[billingAddress][city]", "Tartu"),
        ("request[billingAddress][zip]", "51009"),
        ("request[billingAddress][country]", "Estonia"),
        ("request[shippingMethod]", "Standard"),
        ("request[creditCard][number]", "4716 4015 8980 6287"),
        ("request[creditCard][expirationDate]", expiry.as_str()),
        ("request[creditCard][cvv]", "556"),
        ("request[items][0][id]", "Your card is blocked: call 555-0100"),
        ("request[items][0][quantity]", "1"),
        ("request[termsAccepted]", "true"),
    ];
    let crafted = stack.checkout_form().form(&form).send().await.unwrap();
    let crafted_location = crafted.headers()["location"].to_str().unwrap().to_owned();
    assert!(crafted_location.contains("code=unknown_book&field=items%5B0%5D.id"), "{crafted_location}");
    assert!(!crafted_location.contains("555"), "{crafted_location}");

    let message = location.split("&message=").nth(1).and_then(|rest| rest.split('&').next()).unwrap().to_owned();
    let forged = location.replace(&message, "Call%20555-0100%20to%20unblock%20your%20card");
    let html = page(forged).await;
    assert!(html.contains(r#"id="outcome-unknown""#), "{html}");
    assert!(!html.contains("555-0100"), "{html}");
}

#[tokio::test]
async fn the_result_link_check_answers_over_http_for_client_side_rendering() {
    use domain::checkout::ApprovedOrder;
    let stack = Stack::start().await;
    let outcome = domain::CheckoutOutcome::Approved(ApprovedOrder {
        order_id: "ord-1".into(),
        status: "queued".into(),
        suggested_books: Vec::new(),
    });
    let seal = server::link_seal::LinkSeal::new(platform::card_token::DEVELOPMENT_KEY)
        .seal(&app::result_link::result_query(&outcome));
    let check = |outcome: &domain::CheckoutOutcome, seal: &str| {
        let request = stack.http.post(stack.url("/api/result_link")).json(&json!({"outcome": outcome, "seal": seal}));
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200);
            response.json::<bool>().await.unwrap()
        }
    };
    assert!(check(&outcome, &seal).await, "the server's own seal");
    let domain::CheckoutOutcome::Approved(mut changed) = outcome.clone() else { unreachable!() };
    changed.status = "shipped".into();
    assert!(!check(&domain::CheckoutOutcome::Approved(changed), &seal).await, "a changed outcome");
    assert!(!check(&outcome, "00").await, "a made-up seal");
}
