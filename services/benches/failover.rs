//! Fail-over times (a benchmark, not a test: it prints figures and asserts nothing
//! about time). The whole execution side runs in this process on loopback: queue,
//! payment, books_db ×3, order_executor ×3.
//!
//! - executor leader: from stopping the executors' leader to the next order
//!   executed (an order enqueued right after the stop reaching a final state);
//! - books_db leader: from stopping the books database's leader to the next commit.
//!
//! Each kill is followed by restarting the stopped replica and one order through
//! the healed group, so every round starts from three healthy replicas. Orders buy
//! one copy of The Hunger Games (60 in stock), so 10 kills per group stay in stock.
//!
//! Run: `cargo bench -p services --bench failover` (optionally `-- <kills>`,
//! default 10). Results go in docs/benchmarks.md.

use std::time::{Duration, Instant};

use proto::v1 as pb;
use services::card_token::{FingerprintKey, DEVELOPMENT_KEY};
use services::order_queue::QueueConfig;
use services::testing::{self, Group};

struct Shop {
    queue: String,
    books_db: Group,
    executors: Group,
    key: FingerprintKey,
    next: u64,
}

impl Shop {
    async fn order(&mut self) -> String {
        self.next += 1;
        let order_id = format!("bench-{}", self.next);
        let card = domain::CardNumber::parse("4716401589806287").expect("a valid card");
        let expiry = domain::Expiry::parse(
            &domain::YearMonth::now_utc().plus_months(12).to_string(),
            domain::YearMonth::now_utc(),
        )
        .expect("a valid expiry");
        let order = pb::QueuedOrder {
            order_id: order_id.clone(),
            client_card: "None".into(),
            lines: vec![pb::OrderLine { book_id: "4".into(), quantity: 1 }],
            total_cents: 1099,
            card: Some(self.key.token(&card, expiry)),
            ..Default::default()
        };
        let mut queue = pb::order_queue_client::OrderQueueClient::connect(self.queue.clone()).await.expect("queue");
        queue.enqueue(pb::EnqueueRequest { order: Some(order) }).await.expect("enqueue");
        order_id
    }

    async fn wait_final(&self, order_id: &str) -> String {
        loop {
            for id in self.executors.running().collect::<Vec<_>>() {
                let url = testing::url(&self.executors.addrs[&id]);
                let Ok(mut client) = pb::order_executor_client::OrderExecutorClient::connect(url).await else {
                    continue;
                };
                if let Ok(answer) = client.order_status(pb::OrderStatusRequest { order_id: order_id.into() }).await {
                    let answer = answer.into_inner();
                    if answer.status == "committed" {
                        return answer.status;
                    }
                    if answer.status == "aborted" {
                        return format!("aborted ({})", answer.reason);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn leader_of(group: &Group) -> u64 {
    loop {
        for id in group.running().collect::<Vec<_>>() {
            let Ok(mut client) = pb::raft_client::RaftClient::connect(testing::url(&group.addrs[&id])).await else {
                continue;
            };
            let Ok(answer) = client.metrics(pb::RaftMetricsRequest {}).await else { continue };
            let metrics: serde_json::Value = serde_json::from_slice(&answer.into_inner().payload).unwrap_or_default();
            if metrics["state"] == "Leader" {
                return id;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn summary(name: &str, mut times: Vec<Duration>) {
    times.sort();
    let median = times[times.len() / 2];
    let max = times[times.len() - 1];
    println!("{name}: {} kills, median {median:.2?}, max {max:.2?}, all {times:.2?}", times.len());
}

#[tokio::main]
async fn main() {
    let kills: usize = std::env::args().skip(1).find_map(|arg| arg.parse().ok()).unwrap_or(10);
    let dir = tempfile::tempdir().expect("temp dir");
    let key = FingerprintKey::new(DEVELOPMENT_KEY);
    let store = services::order_queue::open(&dir.path().join("queue.redb")).expect("queue");
    let queue =
        testing::serve(|l| services::order_queue::serve(l, store, QueueConfig::default(), std::future::pending()))
            .await;
    let ledger = services::payment::open(&dir.path().join("payments.redb")).expect("ledger");
    let payment_key = key.clone();
    let payment =
        testing::serve(
            |l| async move { services::payment::serve(l, ledger, &payment_key, std::future::pending()).await },
        )
        .await;
    let books_db = testing::books_db(dir.path().join("books_db")).await;
    let executors = testing::order_executors(
        dir.path().join("order_executor"),
        queue.clone(),
        payment,
        books_db.urls(),
        Duration::from_secs(2),
    )
    .await;
    let mut shop = Shop { queue, books_db, executors, key, next: 0 };
    let warm = shop.order().await;
    shop.wait_final(&warm).await;

    let mut executor_times = Vec::new();
    let mut stop_times = Vec::new();
    for _ in 0..kills {
        let leader = leader_of(&shop.executors).await;
        let killed = Instant::now();
        shop.executors.stop(leader).await;
        stop_times.push(killed.elapsed());
        let order_id = shop.order().await;
        shop.wait_final(&order_id).await;
        executor_times.push(killed.elapsed());
        shop.executors.restart(leader).await;
        let order_id = shop.order().await;
        shop.wait_final(&order_id).await;
    }
    summary("executor leader killed -> next order executed", executor_times);
    summary("  of which stopping the replica (graceful shutdown)", std::mem::take(&mut stop_times));

    let mut books_times = Vec::new();
    for _ in 0..kills {
        let leader = leader_of(&shop.books_db).await;
        let killed = Instant::now();
        shop.books_db.stop(leader).await;
        stop_times.push(killed.elapsed());
        let order_id = shop.order().await;
        let status = shop.wait_final(&order_id).await;
        books_times.push(killed.elapsed());
        if status != "committed" {
            println!("  order {order_id} ended {status}");
        }
        shop.books_db.restart(leader).await;
        let order_id = shop.order().await;
        shop.wait_final(&order_id).await;
    }
    summary("books_db leader killed -> next commit", books_times);
    summary("  of which stopping the replica (graceful shutdown)", stop_times);
}
