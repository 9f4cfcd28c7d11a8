//! `POST /checkout` with generated bodies (proptest), against the whole stack on
//! loopback: the seed order with one field replaced by a value of any JSON type,
//! or a body that is not the request at all. Whatever arrives, the shop answers
//! without a 5xx (every service is up), every refusal in the one error shape,
//! a refusal of the shopper's input the same way when it comes again, never the
//! card number whole, and no service keeps a copy of any of these orders. (A 503
//! is asked once more: under load a call may pass its deadline, but a body that
//! breaks a service breaks it every time.)

use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use serde_json::Value;

use crate::support::{seed_order, with, Stack};

/// Every field of the seed order, and the parts of the ones that have parts.
const PATHS: [&str; 24] = [
    "user",
    "user.name",
    "user.contact",
    "creditCard",
    "creditCard.number",
    "creditCard.expirationDate",
    "creditCard.cvv",
    "items",
    "items.0",
    "items.0.id",
    "items.0.quantity",
    "items.1.quantity",
    "billingAddress",
    "billingAddress.street",
    "billingAddress.city",
    "billingAddress.state",
    "billingAddress.zip",
    "billingAddress.country",
    "shippingMethod",
    "clientCard",
    "termsAccepted",
    "userComment",
    "giftMessage",
    "giftWrapping",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[0-9 /-]{0,24}", "[a-zA-Z0-9 .@-]{0,40}", "[\\PC]{0,400}"]
}

/// A JSON value of any type, mostly of the types the fields take (text, small
/// numbers), so that most bodies get past the JSON's shape to the rules.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        2 => prop_oneof![any::<i64>(), -2i64..120].prop_map(Value::from),
        1 => any::<f64>().prop_map(|n| serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)),
        8 => text().prop_map(Value::String),
    ];
    let nested = leaf.clone().prop_recursive(2, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,8}", inner, 0..4)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    });
    prop_oneof![6 => leaf, 1 => nested]
}

/// What is posted: a JSON body, or bytes that are no JSON at all.
#[derive(Debug, Clone)]
enum Body {
    Json(Value),
    Bytes(Vec<u8>),
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        8 => (prop::sample::select(PATHS.to_vec()), value()).prop_map(|(path, value)| Body::Json(with(seed_order(), path, value))),
        1 => value().prop_map(Body::Json),
        1 => prop::collection::vec(any::<u8>(), 0..256).prop_map(Body::Bytes),
    ]
}

async fn post(stack: &Stack, body: &Body) -> (u16, String) {
    let request = stack.http.post(stack.url("/checkout")).header("content-type", "application/json");
    let request = match body {
        Body::Json(value) => request.body(value.to_string()),
        Body::Bytes(bytes) => request.body(bytes.clone()),
    };
    let response = request.send().await.expect("POST /checkout answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

/// The card number in a body, if it looks like one (twelve digits or more).
fn card_number(body: &Body) -> Option<String> {
    let Body::Json(value) = body else { return None };
    let number = value.pointer("/creditCard/number")?.as_str()?;
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= 12).then_some(digits)
}

#[test]
fn any_body_gets_an_answer_in_the_one_shape_and_leaves_nothing_behind() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let stack = runtime.block_on(Stack::start());
    let approved = AtomicUsize::new(0);
    let mut config = Config { cases: 128, failure_persistence: None, ..Config::default() };
    // The same bodies every run, so a failure here is one anybody can replay;
    // PROPTEST_RNG_SEED=<n> tries others.
    if matches!(config.rng_seed, RngSeed::Random) {
        config.rng_seed = RngSeed::Fixed(18);
    }
    let mut runner = TestRunner::new(config);
    runner
        .run(&body(), |body| {
            runtime.block_on(async {
                let (mut status, mut text) = post(&stack, &body).await;
                if status == 503 {
                    // A call past its deadline on a machine busy with other tests
                    // answers 503, as it should; a body that breaks a service
                    // gets it again.
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    (status, text) = post(&stack, &body).await;
                }
                prop_assert!(status < 500, "{status}: {text}");
                let answer: Value =
                    serde_json::from_str(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
                if let Some(digits) = card_number(&body) {
                    prop_assert!(!text.contains(&digits), "the card number came back: {text}");
                }
                if status == 200 {
                    approved.fetch_add(1, Ordering::Relaxed);
                    prop_assert!(answer["orderId"].as_str().is_some_and(|id| !id.is_empty()), "{text}");
                    return Ok(());
                }
                let error = &answer["error"];
                for key in ["code", "message", "step", "service"] {
                    prop_assert!(error[key].as_str().is_some_and(|v| !v.is_empty()), "{key} in {text}");
                }
                prop_assert!(
                    error["field"].is_null() || error["field"].as_str().is_some_and(|f| !f.is_empty()),
                    "{text}"
                );
                if status == 400 {
                    // The shopper's own input: the same refusal whenever it comes.
                    let (again, text_again) = post(&stack, &body).await;
                    let error_again = serde_json::from_str::<Value>(&text_again).unwrap_or_default()["error"].clone();
                    prop_assert_eq!(
                        (again, &error_again["code"], &error_again["field"]),
                        (status, &error["code"], &error["field"]),
                        "{} then {}",
                        text,
                        text_again
                    );
                }
                Ok(())
            })
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
    let cached = runtime.block_on(stack.cached_orders());
    assert_eq!(cached, [0, 0, 0], "every checkout, answered, is cleared everywhere");
    // Some generated orders changed only what the checkout lets through (a
    // comment, a gift message): the bodies reach the end of the checkout, not
    // only its first checks.
    assert!(approved.load(Ordering::Relaxed) > 0, "no generated body was approved: the generator lost its way");
}
