//! The execution side as real processes of the `services` binary, killed with
//! SIGKILL while orders flow: the invariants of two-phase commit must hold across
//! crashes, not only across graceful stops.

use std::path::Path;

use proto::v1 as pb;

use testkit::processes::ExecutionSide;

/// Keeps the processes' data and logs when the test fails.
struct Workdir(Option<tempfile::TempDir>);

impl Drop for Workdir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(dir) = self.0.take() {
                eprintln!("the processes' data and logs are kept in {}", dir.keep().display());
            }
        }
    }
}

const CARD: &str = "4716401589806287";

#[tokio::test]
async fn kill_9_of_each_leader_and_the_queue_while_orders_flow_loses_none_and_charges_none_twice() {
    let workdir = Workdir(Some(tempfile::tempdir().unwrap()));
    let dir = workdir.0.as_ref().unwrap().path().to_owned();
    let mut side = ExecutionSide::start(Path::new(env!("CARGO_BIN_EXE_services")), &dir);
    let order_ids: Vec<String> = (0..30).map(|i| format!("crash-{i}")).collect();
    for order_id in &order_ids[..10] {
        side.enqueue(order_id, CARD, &[("4", 1)]).await;
    }
    side.final_status(&order_ids[0]).await;

    let executor_leader = side.executors.leader().await;
    side.executors.kill(executor_leader);
    for order_id in &order_ids[10..20] {
        side.enqueue(order_id, CARD, &[("4", 1)]).await;
    }
    let books_leader = side.books_db.leader().await;
    side.books_db.kill(books_leader);
    for order_id in &order_ids[20..] {
        side.enqueue(order_id, CARD, &[("4", 1)]).await;
    }
    // The queue dies with orders in it and comes back from its file.
    side.queue.kill();
    side.queue.restart();

    let mut committed = Vec::new();
    for order_id in &order_ids {
        let status = side.final_status(order_id).await;
        let payment = side.payment(order_id).await;
        match status.status() {
            pb::OrderState::Committed => {
                committed.push(order_id.clone());
                assert_eq!((payment.state(), payment.captures), (pb::PaymentState::Captured, 1), "{order_id}");
            }
            _ => assert_eq!(payment.captures, 0, "{order_id}: {status:?} {payment:?}"),
        }
    }
    // Only an order in flight at a kill may abort. Orders enqueued after the
    // executor leader died committed, so another replica took over and led.
    let after_the_kill = committed.iter().filter(|id| order_ids[10..].contains(id)).count();
    assert!(after_the_kill >= 18, "{after_the_kill} of the 20 orders after the kill committed: {committed:?}");
    let committed = committed.len() as u32;

    // The killed replicas come back on their data and catch up.
    side.executors.restart(executor_leader);
    side.books_db.restart(books_leader);
    assert_eq!(side.stock_everywhere("4").await, 60 - committed, "stock on all three books_db replicas");
    side.executors.caught_up().await;
}
