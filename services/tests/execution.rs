//! Orders from the queue to their end: the executors' leader runs two-phase commit
//! against the books_db group and payment, all real, on loopback.

use std::time::Duration;

use proto::v1 as pb;
use services::card_token::FingerprintKey;
use services::testing as support;
use services::order_queue::QueueConfig;

struct Shop {
    queue: String,
    payment: String,
    books_db: support::Group,
    executors: support::Group,
    key: FingerprintKey,
    _dir: tempfile::TempDir,
}

async fn shop() -> Shop {
    let dir = tempfile::tempdir().unwrap();
    let key = FingerprintKey::new("test-key");
    let store = services::order_queue::open(&dir.path().join("queue.redb")).unwrap();
    let queue = support::serve(|l| services::order_queue::serve(l, store, QueueConfig::default(), std::future::pending())).await;
    let ledger = services::payment::open(&dir.path().join("payments.redb")).unwrap();
    let payment_key = key.clone();
    let payment =
        support::serve(|l| async move { services::payment::serve(l, ledger, &payment_key, std::future::pending()).await })
            .await;
    let books_db = support::books_db(dir.path().join("books_db")).await;
    let executors =
        support::order_executors(dir.path().join("order_executor"), queue.clone(), payment.clone(), books_db.urls()).await;
    Shop { queue, payment, books_db, executors, key, _dir: dir }
}

impl Shop {
    async fn enqueue(&self, order_id: &str, card: &str, lines: &[(&str, u32)], client_card: &str) {
        let number = domain::CardNumber::parse(card).unwrap();
        let expiry = domain::Expiry::parse(&domain::YearMonth::now_utc().plus_months(12).to_string(), domain::YearMonth::now_utc()).unwrap();
        let order = pb::QueuedOrder {
            order_id: order_id.into(),
            client_card: client_card.into(),
            lines: lines.iter().map(|(id, quantity)| pb::OrderLine { book_id: (*id).into(), quantity: *quantity }).collect(),
            total_cents: 2998,
            card: Some(self.key.token(&number, expiry)),
            ..Default::default()
        };
        let mut queue = pb::order_queue_client::OrderQueueClient::connect(self.queue.clone()).await.unwrap();
        queue.enqueue(pb::EnqueueRequest { order: Some(order) }).await.unwrap();
    }

    /// Waits (bounded) until some executor replica reports `order_id` final.
    async fn final_status(&self, order_id: &str) -> pb::OrderStatusResponse {
        for _ in 0..600 {
            for url in self.executors.urls() {
                let Ok(mut client) = pb::order_executor_client::OrderExecutorClient::connect(url).await else { continue };
                if let Ok(status) = client.order_status(pb::OrderStatusRequest { order_id: order_id.into() }).await {
                    let status = status.into_inner();
                    if matches!(status.status.as_str(), "committed" | "aborted") {
                        return status;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("order {order_id} never finished");
    }

    async fn payment(&self, order_id: &str) -> pb::PaymentRecord {
        let mut client = pb::payment_client::PaymentClient::connect(self.payment.clone()).await.unwrap();
        client.get(pb::PaymentDecision { order_id: order_id.into() }).await.unwrap().into_inner()
    }

    /// Stock of `book_id` on every books_db replica, once they agree.
    async fn stock_everywhere(&self, book_id: &str) -> u32 {
        for _ in 0..300 {
            let mut seen = Vec::new();
            for url in self.books_db.urls() {
                let mut client = pb::books_db_client::BooksDbClient::connect(url).await.unwrap();
                let stock = client
                    .stock(pb::StockRequest { book_ids: vec![book_id.into()], local: true })
                    .await
                    .unwrap()
                    .into_inner();
                seen.push(stock.books.first().map(|b| b.available));
            }
            if seen.windows(2).all(|w| w[0] == w[1]) && seen[0].is_some() {
                return seen[0].unwrap_or_default();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the books_db replicas never agreed on {book_id}");
    }
}

#[tokio::test]
async fn an_approved_order_commits_stock_everywhere_and_is_charged_once() {
    let shop = shop().await;
    shop.enqueue("ok-1", "4716401589806287", &[("4", 1), ("1", 1)], "Premium").await;
    let status = shop.final_status("ok-1").await;
    assert_eq!(status.status, "committed", "{status:?}");
    assert_eq!(shop.stock_everywhere("4").await, 59);
    assert_eq!(shop.stock_everywhere("1").await, 39);
    let payment = shop.payment("ok-1").await;
    assert_eq!((payment.state.as_str(), payment.captures), ("captured", 1));
}

#[tokio::test]
async fn a_declined_card_aborts_with_the_reason_and_releases_the_stock() {
    let shop = shop().await;
    shop.enqueue("declined-1", "4000000000000002", &[("20", 2)], "None").await;
    let status = shop.final_status("declined-1").await;
    assert_eq!((status.status.as_str(), status.reason.as_str()), ("aborted", "card declined"));
    assert_eq!(shop.stock_everywhere("20").await, 3, "the reservation was released");
    let payment = shop.payment("declined-1").await;
    assert_eq!((payment.state.as_str(), payment.captures), ("declined", 0));
}

#[tokio::test]
async fn more_copies_than_remain_abort_with_the_shortfall_and_void_the_payment() {
    let shop = shop().await;
    shop.enqueue("short-1", "4716401589806287", &[("20", 4)], "Basic").await;
    let status = shop.final_status("short-1").await;
    assert_eq!((status.status.as_str(), status.reason.as_str()), ("aborted", "only 3 copies of Six of Crows left"));
    assert_eq!(shop.stock_everywhere("20").await, 3);
    let payment = shop.payment("short-1").await;
    assert_eq!((payment.state.as_str(), payment.captures), ("voided", 0));
}
