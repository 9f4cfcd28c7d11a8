//! After the checkout: the order executes (two-phase commit by the executors'
//! leader against books_db and payment) and `GET /orders/{id}` follows it to its
//! end; `GET /api/cluster` shows both Raft groups. The whole shop runs on loopback.

use crate::support;

use serde_json::{json, Value};
use support::{seed_order, with, Stack, StackOptions};

async fn shop() -> Stack {
    Stack::start_with(StackOptions { execution: true, ..StackOptions::default() }).await
}

async fn place(stack: &Stack, order: &Value) -> String {
    let (status, body) = stack.checkout(order).await;
    assert_eq!(status, 200, "{body}");
    body["orderId"].as_str().expect("an order id").to_owned()
}

#[tokio::test]
async fn an_approved_order_ends_committed() {
    let stack = shop().await;
    let order_id = place(&stack, &seed_order()).await;
    let body = stack.final_status(&order_id).await;
    assert_eq!(
        (&body["orderId"], &body["status"], &body["reason"]),
        (&json!(order_id), &json!("committed"), &Value::Null)
    );
}

/// The times of a journey, for checking the order things happened in.
fn at(value: &Value) -> u64 {
    value.as_u64().unwrap_or_else(|| panic!("a time in ms, not {value}"))
}

#[tokio::test]
async fn a_committed_order_shows_its_whole_journey() {
    let stack = shop().await;
    let order = with(seed_order(), "clientCard", json!("Premium"));
    let order_id = place(&stack, &order).await;
    let body = stack.final_status(&order_id).await;
    let journey = &body["journey"];
    // a-f, each by its service, each clock after the event; f ends at [3,2,1].
    let checkout = journey["checkout"].as_array().unwrap_or_else(|| panic!("{body}"));
    let mut steps: Vec<&str> = checkout.iter().map(|event| event["step"].as_str().unwrap()).collect();
    steps.sort_unstable();
    assert_eq!(
        steps,
        ["check_card", "check_user", "suggest_books", "verify_card_format", "verify_items", "verify_user_data"]
    );
    let event = |step: &str| checkout.iter().find(|event| event["step"] == step).unwrap();
    assert_eq!(event("verify_items")["clock"], json!([1, 0, 0]));
    assert_eq!(event("check_user")["service"], "fraud_detection");
    assert_eq!(event("suggest_books")["clock"], json!([3, 2, 1]));
    assert!(checkout.iter().all(|event| event["refusal"].is_null()), "{journey}");
    // e waits for c and d, f for e: their ends are in that order.
    assert!(at(&event("check_card")["atMs"]) >= at(&event("verify_card_format")["atMs"]));
    assert!(at(&event("check_card")["atMs"]) >= at(&event("check_user")["atMs"]));
    assert!(at(&event("suggest_books")["atMs"]) >= at(&event("check_card")["atMs"]));
    // Queued with the priority it was given, then run by a leader of the group.
    assert_eq!(journey["queued"]["priority"], "Premium");
    let execution = &journey["execution"];
    let started = &execution["started"];
    assert!((1..=3).contains(&started["node"].as_u64().unwrap()), "{execution}");
    assert!(started["term"].as_u64().unwrap() >= 1, "{execution}");
    assert!(at(&started["atMs"]) >= at(&journey["queued"]["acceptedAtMs"]));
    let votes = execution["votes"].as_array().unwrap();
    let mut voters: Vec<&str> = votes.iter().map(|vote| vote["participant"].as_str().unwrap()).collect();
    voters.sort_unstable();
    assert_eq!(voters, ["books_db", "payment"]);
    assert!(votes.iter().all(|vote| vote["yes"] == true), "{execution}");
    assert_eq!(execution["decision"]["commit"], true);
    let decided = at(&execution["decision"]["by"]["atMs"]);
    assert!(votes.iter().all(|vote| at(&vote["atMs"]) <= decided), "the decision follows both votes: {execution}");
    assert!(at(&execution["completedAtMs"]) >= decided);
    // Nothing of the shopper's is in it.
    let text = journey.to_string();
    for secret in ["4716", "556", "Simon", "Narva"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[tokio::test]
async fn a_declined_payment_shows_the_no_vote_and_the_abort_in_the_journey() {
    let stack = shop().await;
    let order = with(seed_order(), "creditCard.number", json!("4000 0000 0000 0002"));
    let order_id = place(&stack, &order).await;
    let body = stack.final_status(&order_id).await;
    let execution = &body["journey"]["execution"];
    let votes = execution["votes"].as_array().unwrap_or_else(|| panic!("{body}"));
    let payment = votes.iter().find(|vote| vote["participant"] == "payment").unwrap();
    assert_eq!((&payment["yes"], &payment["reason"]), (&json!(false), &json!("card declined")));
    assert_eq!(execution["decision"]["commit"], false);
}

#[tokio::test]
async fn a_declined_card_ends_aborted_with_the_reason() {
    let stack = shop().await;
    let order = with(seed_order(), "creditCard.number", json!("4000 0000 0000 0002"));
    let order_id = place(&stack, &order).await;
    let body = stack.final_status(&order_id).await;
    assert_eq!((body["status"].as_str(), body["reason"].as_str()), (Some("aborted"), Some("card declined")));
}

#[tokio::test]
async fn an_unknown_order_is_404() {
    let stack = shop().await;
    let (status, body) = stack.order_status("no-such-order").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "unknown_order");
}

#[tokio::test]
async fn the_cluster_endpoint_shows_both_groups_with_one_leader_each() {
    let stack = shop().await;
    // Let the groups elect (a checkout through the whole shop proves they did).
    let order_id = place(&stack, &seed_order()).await;
    stack.final_status(&order_id).await;
    let cluster: Value = stack.http.get(stack.url("/api/cluster")).send().await.unwrap().json().await.unwrap();
    for group in ["executors", "booksDb"] {
        let replicas = cluster[group].as_array().unwrap_or_else(|| panic!("{group} in {cluster}"));
        assert_eq!(replicas.len(), 3, "{cluster}");
        assert!(replicas.iter().all(|r| r["answers"] == true), "{cluster}");
        assert_eq!(replicas.iter().filter(|r| r["role"] == "leader").count(), 1, "{cluster}");
    }
    assert!(cluster["queue"]["premium"].is_u64(), "{cluster}");
}

#[tokio::test]
async fn a_replica_that_does_not_answer_is_shown_by_its_id() {
    let mut stack = shop().await;
    let order_id = place(&stack, &seed_order()).await;
    stack.final_status(&order_id).await;
    let execution = stack.execution.as_mut().expect("the shop runs execution");
    let silent_url = execution.books_db.urls()[1].clone();
    execution.books_db.stop(2).await;
    let cluster: Value = stack.http.get(stack.url("/api/cluster")).send().await.unwrap().json().await.unwrap();
    let silent: Vec<&Value> = cluster["booksDb"].as_array().unwrap().iter().filter(|r| r["answers"] == false).collect();
    assert_eq!(silent.len(), 1, "{cluster}");
    assert_eq!((silent[0]["id"].as_u64(), silent[0]["address"].as_str()), (Some(2), Some(silent_url.as_str())));
    assert_eq!(silent[0]["role"], "unreachable", "{cluster}");
}
