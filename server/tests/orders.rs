//! After the checkout: the order executes (two-phase commit by the executors'
//! leader against books_db and payment) and `GET /orders/{id}` follows it to its
//! end; `GET /api/cluster` shows both Raft groups. The whole shop runs on loopback.

mod support;

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
    assert_eq!(body, json!({"orderId": order_id, "status": "committed", "reason": null}));
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
