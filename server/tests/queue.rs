//! The queue behind the checkout: it survives its own restart.

mod support;

use support::{seed_order, start_order_queue, Stack};

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
