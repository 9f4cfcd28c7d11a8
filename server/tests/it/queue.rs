//! The queue behind the checkout: it survives its own restart.

use crate::support;

use serde_json::{json, Value};
use support::{seed_order, start_order_queue, with, Stack};

#[tokio::test]
async fn an_order_accepted_before_a_queue_restart_is_dequeued_after_it() {
    let mut stack = Stack::start().await;
    let (status, body) = stack.checkout(&seed_order()).await;
    assert_eq!(status, 200, "{body}");
    stack.order_queue.take().expect("queue running").stop().await;

    stack.order_queue = Some(start_order_queue(stack.queue_dir.path().to_owned()).await);
    let queued = stack.dequeue().await.expect("the order survived the restart");
    assert_eq!(queued.order_id, body["orderId"].as_str().unwrap());
}

#[tokio::test]
async fn a_waiting_order_shows_its_checkout_events_and_its_place_in_line() {
    let stack = Stack::start().await;
    let place = |client_card: &'static str| {
        let stack = &stack;
        async move {
            let (status, body) = stack.checkout(&with(seed_order(), "clientCard", json!(client_card))).await;
            assert_eq!(status, 200, "{body}");
            body["orderId"].as_str().unwrap().to_owned()
        }
    };
    let plain = place("None").await;
    let premium = place("Premium").await;
    // No executor runs here: both wait, the Premium order first.
    let journey = |order_id: String| {
        let stack = &stack;
        async move {
            let (status, body) = stack.order_status(&order_id).await;
            assert_eq!((status, &body["status"]), (200, &json!("queued")), "{body}");
            body["journey"].clone()
        }
    };
    let (plain, premium) = (journey(plain).await, journey(premium).await);
    assert_eq!((&premium["queued"]["priority"], &premium["queued"]["position"]), (&json!("Premium"), &json!(1)));
    assert_eq!((&plain["queued"]["priority"], &plain["queued"]["position"]), (&json!("None"), &json!(2)));
    assert_eq!(plain["checkout"].as_array().map(Vec::len), Some(6), "{plain}");
    assert_eq!(plain["execution"], Value::Null);
}
