//! Orders from the queue to their end: the executors' leader runs two-phase commit
//! against the books_db group and payment, all real, on loopback.

use std::time::Duration;

use domain::ClientCard;
use platform::card_token::FingerprintKey;
use proto::v1 as pb;
use services::order_executor::replica;
use testkit::probe::{self, eventually};
use testkit::{self as support, service};

struct Shop {
    queue: String,
    payment: String,
    books_db: support::Group,
    executors: Option<support::Group>,
    key: FingerprintKey,
    dir: tempfile::TempDir,
}

/// How long the queue leases an order to the executors' leader. A new leader ends
/// its predecessors' leases when it takes over, so no test waits for one to run out.
const LEASE: Duration = Duration::from_secs(2);

async fn shop() -> Shop {
    let mut shop = shop_without_executors().await;
    shop.start_executors().await;
    shop
}

async fn shop_without_executors() -> Shop {
    let dir = tempfile::tempdir().unwrap();
    let key = FingerprintKey::new("test-key");
    let queue = service::start_order_queue(dir.path().to_owned()).await.detach();
    let payment = service::start_payment(&dir.path().join("payments.redb"), key.clone()).await.detach();
    let books_db = support::books_db(dir.path().join("books_db")).await;
    Shop { queue, payment, books_db, executors: None, key, dir }
}

/// The replica of `group` that leads, by its Raft metrics (waits, bounded).
async fn leader_of(group: &support::Group) -> u64 {
    let replicas = || group.addrs.iter().map(|(id, addr)| (*id, support::url(addr)));
    eventually("a leader", Duration::from_millis(50), || probe::leader(replicas())).await
}

impl Shop {
    async fn start_executors(&mut self) {
        self.start_executors_gathering(replica::DEFAULT_GATHER).await;
    }

    /// Executors whose leader waits `gather` after a short batch (`ExecutorConfig::gather`).
    async fn start_executors_gathering(&mut self, gather: Duration) {
        let dir = self.dir.path().join("order_executor");
        let (queue, payment) = (self.queue.clone(), self.payment.clone());
        let executors = support::order_executors_with(dir, queue, payment, self.books_db.urls(), move |config| {
            config.lease = LEASE;
            config.gather = gather;
        })
        .await;
        self.executors = Some(executors);
    }

    /// Waits (bounded) until the executors' leader has applied `order_id`'s
    /// Complete record, the last its log holds of an order.
    async fn completed_on_leader(&self, order_id: &str) -> pb::OrderStatusResponse {
        let leader = leader_of(self.executors()).await;
        let url = [support::url(&self.executors().addrs[&leader])];
        let what = format!("order {order_id} completed on the leader");
        eventually(what, Duration::from_millis(50), || async {
            probe::final_status(&url, order_id).await.filter(|status| status.completed_at_unix_ms > 0)
        })
        .await
    }

    /// The index of the last entry the executors' leader applied.
    async fn executor_log_index(&self) -> u64 {
        let leader = leader_of(self.executors()).await;
        let url = support::url(&self.executors().addrs[&leader]);
        let metrics = eventually("the leader's metrics", Duration::from_millis(50), || probe::raft_metrics(&url)).await;
        metrics["last_applied"]["index"].as_u64().expect("the leader applied entries")
    }

    fn executors(&self) -> &support::Group {
        self.executors.as_ref().expect("executors running")
    }

    async fn enqueue(&self, order_id: &str, card: &str, lines: &[(&str, u32)], client_card: ClientCard) {
        let order = probe::queued_order(&self.key, order_id, card, lines, client_card);
        probe::enqueue(&self.queue, &order).await.expect("the queue takes the order");
    }

    /// Waits (bounded) until some executor replica reports `order_id` final.
    async fn final_status(&self, order_id: &str) -> pb::OrderStatusResponse {
        let executors = self.executors().urls();
        let what = format!("order {order_id} final");
        eventually(what, Duration::from_millis(100), || probe::final_status(&executors, order_id)).await
    }

    async fn payment(&self, order_id: &str) -> pb::PaymentRecord {
        probe::payment(&self.payment, order_id).await.expect("a payment record")
    }

    /// Stock of `book_id` on every running books_db replica, once they agree.
    async fn stock_everywhere(&self, book_id: &str) -> u32 {
        let running: Vec<String> = self.books_db.running().map(|id| support::url(&self.books_db.addrs[&id])).collect();
        let what = format!("the books_db replicas agreeing on book {book_id}");
        eventually(what, Duration::from_millis(100), || probe::agreed_stock(&running, book_id)).await
    }
}

#[tokio::test]
async fn an_approved_order_commits_stock_everywhere_and_is_charged_once() {
    let shop = shop().await;
    shop.enqueue("ok-1", "4716401589806287", &[("4", 1), ("1", 1)], ClientCard::Premium).await;
    let status = shop.final_status("ok-1").await;
    assert_eq!(status.status(), pb::OrderState::Committed, "{status:?}");
    assert_eq!(shop.stock_everywhere("4").await, 59);
    assert_eq!(shop.stock_everywhere("1").await, 39);
    let payment = shop.payment("ok-1").await;
    assert_eq!((payment.state(), payment.captures), (pb::PaymentState::Captured, 1));
}

#[tokio::test]
async fn a_declined_card_aborts_with_the_reason_and_releases_the_stock() {
    let shop = shop().await;
    shop.enqueue("declined-1", "4000000000000002", &[("20", 2)], ClientCard::None).await;
    let status = shop.final_status("declined-1").await;
    assert_eq!((status.status(), status.reason.as_str()), (pb::OrderState::Aborted, "card declined"));
    assert_eq!(shop.stock_everywhere("20").await, 3, "the reservation was released");
    let payment = shop.payment("declined-1").await;
    assert_eq!((payment.state(), payment.captures), (pb::PaymentState::Declined, 0));
}

#[tokio::test]
async fn more_copies_than_remain_abort_with_the_shortfall_and_void_the_payment() {
    let shop = shop().await;
    shop.enqueue("short-1", "4716401589806287", &[("20", 4)], ClientCard::Basic).await;
    let status = shop.final_status("short-1").await;
    assert_eq!(
        (status.status(), status.reason.as_str()),
        (pb::OrderState::Aborted, "only 3 copies of Six of Crows left")
    );
    assert_eq!(shop.stock_everywhere("20").await, 3);
    let payment = shop.payment("short-1").await;
    assert_eq!((payment.state(), payment.captures), (pb::PaymentState::Voided, 0));
}

#[tokio::test]
async fn premium_orders_execute_first_when_the_executors_resume() {
    let mut shop = shop_without_executors().await;
    shop.enqueue("none-1", "4716401589806287", &[("7", 1)], ClientCard::None).await;
    shop.enqueue("basic-1", "4716401589806287", &[("7", 1)], ClientCard::Basic).await;
    shop.enqueue("premium-1", "4716401589806287", &[("7", 1)], ClientCard::Premium).await;
    shop.start_executors().await;
    let sequence = |status: pb::OrderStatusResponse| status.sequence;
    let premium = sequence(shop.final_status("premium-1").await);
    let basic = sequence(shop.final_status("basic-1").await);
    let none = sequence(shop.final_status("none-1").await);
    assert!(premium < basic && basic < none, "premium {premium}, basic {basic}, none {none}");
}

#[tokio::test]
async fn with_many_orders_in_flight_the_last_copies_go_to_exactly_as_many_orders() {
    // Twenty orders for the last three copies, all waiting when the leader starts:
    // it takes them in one batch and runs them at once.
    let mut shop = shop_without_executors().await;
    let order_ids: Vec<String> = (0..20).map(|i| format!("last-copies-{i}")).collect();
    for order_id in &order_ids {
        shop.enqueue(order_id, "4716401589806287", &[("20", 1)], ClientCard::None).await;
    }
    shop.start_executors().await;
    let mut statuses = Vec::new();
    for order_id in &order_ids {
        let status = shop.final_status(order_id).await;
        let payment = shop.payment(order_id).await;
        match status.status() {
            pb::OrderState::Committed => {
                assert_eq!((payment.state(), payment.captures), (pb::PaymentState::Captured, 1), "{order_id}")
            }
            _ => {
                assert_eq!(status.reason, "Six of Crows is sold out", "{order_id}: {status:?}");
                assert_eq!((payment.state(), payment.captures), (pb::PaymentState::Voided, 0), "{order_id}");
            }
        }
        statuses.push(status);
    }
    let committed = statuses.iter().filter(|s| s.status() == pb::OrderState::Committed).count();
    assert_eq!((committed, statuses.len() - committed), (3, 17));
    assert_eq!(shop.stock_everywhere("20").await, 0, "three sold, none oversold, none left reserved");
    // They ran at once: several had started before the first was decided.
    let at = |stamp: &Option<pb::LeaderStamp>| stamp.as_ref().expect("stamped").at_unix_ms;
    let first_decision = statuses.iter().map(|s| at(&s.decided)).min().unwrap();
    let started_before = statuses.iter().filter(|s| at(&s.started) < first_decision).count();
    assert!(started_before > 1, "only {started_before} order(s) started before the first decision");
}

#[tokio::test]
async fn orders_arriving_a_few_apart_start_together_and_share_log_entries() {
    // The leader waits `gather` after a short batch: orders enqueued one after
    // another while it waits start together, so their Start, Decide and Complete
    // records share entries of the executors' log instead of taking three each.
    let mut shop = shop_without_executors().await;
    shop.start_executors_gathering(Duration::from_secs(3)).await;
    shop.enqueue("gather-first", "4716401589806287", &[("1", 1)], ClientCard::None).await;
    assert_eq!(shop.completed_on_leader("gather-first").await.status(), pb::OrderState::Committed);
    let before = shop.executor_log_index().await;
    const ORDERS: u64 = 10;
    let order_ids: Vec<String> = (0..ORDERS).map(|i| format!("gather-{i}")).collect();
    for order_id in &order_ids {
        shop.enqueue(order_id, "4716401589806287", &[("1", 1)], ClientCard::None).await;
    }
    for order_id in &order_ids {
        assert_eq!(shop.completed_on_leader(order_id).await.status(), pb::OrderState::Committed, "{order_id}");
    }
    let entries = shop.executor_log_index().await - before;
    // Here 3 or 4 (two batches would be about 8); 19 without the wait.
    assert!(entries <= ORDERS, "{ORDERS} orders took {entries} log entries for their {} records", ORDERS * 3);
}

#[tokio::test]
async fn a_new_leader_takes_back_an_order_leased_to_a_leader_that_is_gone() {
    let mut shop = shop_without_executors().await;
    shop.enqueue("orphan-1", "4716401589806287", &[("7", 1)], ClientCard::None).await;
    // A leader of an earlier term took it for ten minutes, then died.
    let mut queue = pb::order_queue_client::OrderQueueClient::connect(shop.queue.clone()).await.unwrap();
    let taken = queue
        .dequeue(pb::DequeueRequest {
            wait_ms: 0,
            lease_ms: 600_000,
            consumer: "order_executor_9/term_1".into(),
            leader_term: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(taken.order.map(|order| order.order_id).as_deref(), Some("orphan-1"));
    shop.start_executors().await;
    // final_status gives up long before the ten-minute lease would run out.
    assert_eq!(shop.final_status("orphan-1").await.status(), pb::OrderState::Committed);
    let lookup = queue.lookup(pb::LookupRequest { order_id: "orphan-1".into() }).await.unwrap().into_inner();
    assert_eq!(lookup.state(), pb::QueueState::Done, "acknowledged by the new leader");
}

/// Every order final, none charged twice, committed ones charged once and the
/// stock of book 4 down by exactly the committed copies on every replica.
async fn assert_all_finished_exactly_once(shop: &Shop, order_ids: &[String]) {
    let mut committed = 0;
    for order_id in order_ids {
        let status = shop.final_status(order_id).await;
        let payment = shop.payment(order_id).await;
        match status.status() {
            pb::OrderState::Committed => {
                committed += 1;
                assert_eq!((payment.state(), payment.captures), (pb::PaymentState::Captured, 1), "{order_id}");
            }
            _ => assert_eq!(payment.captures, 0, "{order_id}: {status:?} {payment:?}"),
        }
    }
    assert!(committed > 0, "some orders committed");
    assert_eq!(shop.stock_everywhere("4").await, 60 - committed);
}

#[tokio::test]
async fn killing_the_executor_leader_while_orders_flow_loses_none_and_charges_none_twice() {
    let mut shop = shop().await;
    let order_ids: Vec<String> = (0..50).map(|i| format!("flow-{i}")).collect();
    for order_id in &order_ids[..25] {
        shop.enqueue(order_id, "4716401589806287", &[("4", 1)], ClientCard::None).await;
    }
    shop.final_status(&order_ids[0]).await;
    let leader = leader_of(shop.executors()).await;
    for order_id in &order_ids[25..45] {
        shop.enqueue(order_id, "4716401589806287", &[("4", 1)], ClientCard::None).await;
    }
    shop.executors.as_mut().expect("running").stop(leader).await;
    // Only a leader executes: these commit only if another replica took over.
    for order_id in &order_ids[45..] {
        shop.enqueue(order_id, "4716401589806287", &[("4", 1)], ClientCard::None).await;
    }
    assert_all_finished_exactly_once(&shop, &order_ids).await;
    for order_id in &order_ids[45..] {
        assert_eq!(
            shop.final_status(order_id).await.status(),
            pb::OrderState::Committed,
            "{order_id}, enqueued after the stop"
        );
    }
}

#[tokio::test]
async fn killing_the_books_db_leader_during_prepares_keeps_the_invariants_and_it_catches_up() {
    let mut shop = shop().await;
    let order_ids: Vec<String> = (0..30).map(|i| format!("books-{i}")).collect();
    for order_id in &order_ids[..10] {
        shop.enqueue(order_id, "4716401589806287", &[("4", 1)], ClientCard::None).await;
    }
    shop.final_status(&order_ids[0]).await;
    let leader = leader_of(&shop.books_db).await;
    for order_id in &order_ids[10..] {
        shop.enqueue(order_id, "4716401589806287", &[("4", 1)], ClientCard::None).await;
    }
    shop.books_db.stop(leader).await;
    assert_all_finished_exactly_once(&shop, &order_ids).await;
    shop.books_db.restart(leader).await;
    // stock_everywhere waits until all three replicas, the restarted one too, agree.
    let stock = shop.stock_everywhere("4").await;
    assert!(stock < 60, "{stock}");
}
