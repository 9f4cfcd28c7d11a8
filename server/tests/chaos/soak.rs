//! The soak run: the shop as processes taking checkouts for a long while with a short
//! retention window, sampling every process's resident memory and every data
//! folder's size at the start, the middle and the end. What the shop keeps of a
//! finished order (the executors' record, books_db's decision, the queue's
//! acknowledged id, payment's record) goes after the window, so after the first
//! window memory and files stay flat.
//!
//! `make test` runs a short one (`SOAK_ORDERS` 300 at `SOAK_RATE` 30 a second, a
//! `SOAK_RETENTION_SECS` of 2) and asserts counts, not times: once the queue is
//! drained and a window has passed, every executor replica, the queue and payment
//! have forgotten the orders, and an order placed then is known to every replica.
//! `make soak` runs 200,000 and prints the table (docs/benchmarks.md has one).

use std::path::Path;
use std::time::Duration;

use proto::v1 as pb;
use testkit::processes::{Setup, Workdir};
use testkit::shop::{Binaries, Shop};
use tokio::time::Instant;

use crate::history;
use crate::setting;

/// Resident memory of each process and size of each data folder, at one moment.
struct Sample {
    label: String,
    orders: usize,
    rss_kib: Vec<(String, u64)>,
    data_bytes: Vec<(String, u64)>,
}

/// VmRSS of process `pid`, in KiB (0 if it is gone).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn folder_bytes(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => folder_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

fn sample(shop: &Shop, dir: &Path, label: &str, orders: usize) -> Sample {
    let side = &shop.side;
    let mut processes = vec![("web".to_owned(), shop.web.pid())];
    processes.extend(shop.verifiers.iter().map(|observed| (observed.name.clone(), observed.process.pid())));
    processes.push(("order_queue".to_owned(), side.queue.pid()));
    processes.push(("payment".to_owned(), side.payment.pid()));
    for id in 1..=3 {
        processes.push((format!("books_db-{id}"), side.books_db.replica(id).pid()));
        processes.push((format!("order_executor-{id}"), side.executors.replica(id).pid()));
    }
    let rss_kib = processes.into_iter().map(|(name, pid)| (name, pid.map_or(0, rss_kib))).collect();
    let mut folders: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    let data_bytes = folders.into_iter().map(|name| (name.clone(), folder_bytes(&dir.join(&name)))).collect();
    Sample { label: label.to_owned(), orders, rss_kib, data_bytes }
}

fn print(samples: &[Sample]) {
    let header: Vec<String> = samples.iter().map(|s| format!("{} ({} orders)", s.label, s.orders)).collect();
    println!("  {:<26} {}", "resident memory, MiB", header.iter().map(|h| format!("{h:>24}")).collect::<String>());
    for (row, (name, _)) in samples[0].rss_kib.iter().enumerate() {
        let cells: String = samples.iter().map(|s| format!("{:>24.1}", s.rss_kib[row].1 as f64 / 1024.0)).collect();
        println!("  {name:<26} {cells}");
    }
    println!("  {:<26}", "data folder, MiB");
    for (row, (name, _)) in samples[0].data_bytes.iter().enumerate() {
        let cells: String = samples
            .iter()
            .map(|s| format!("{:>24.2}", s.data_bytes.get(row).map_or(0, |(_, bytes)| *bytes) as f64 / 1_048_576.0))
            .collect();
        println!("  {name:<26} {cells}");
    }
}

/// How many of `order_ids` payment's ledger still holds.
async fn payments_known(shop: &Shop, order_ids: &[&String]) -> usize {
    let mut payment = pb::payment_client::PaymentClient::connect(shop.side.payment_url()).await.expect("payment");
    let mut known = 0;
    for order_id in order_ids {
        match payment.get(pb::PaymentDecision { order_id: (*order_id).clone() }).await {
            Ok(_) => known += 1,
            Err(status) => assert_eq!(status.code(), tonic::Code::NotFound, "{status}"),
        }
    }
    known
}

/// How many of `order_ids` each executor replica, and the queue, still know.
async fn still_known(shop: &Shop, order_ids: &[&String]) -> (Vec<usize>, usize) {
    let mut per_replica = Vec::new();
    for url in shop.side.executors.urls() {
        let mut client = pb::order_executor_client::OrderExecutorClient::connect(url).await.expect("an executor");
        let mut known = 0;
        for order_id in order_ids {
            let request = pb::OrderStatusRequest { order_id: (*order_id).clone() };
            known += usize::from(client.order_status(request).await.expect("answered").into_inner().known);
        }
        per_replica.push(known);
    }
    let mut queue = pb::order_queue_client::OrderQueueClient::connect(shop.side.queue_url()).await.expect("the queue");
    let mut in_queue = 0;
    for order_id in order_ids {
        let answer = queue.lookup(pb::LookupRequest { order_id: (*order_id).clone() }).await.expect("answered");
        in_queue += usize::from(answer.into_inner().state() != pb::QueueState::NotFound);
    }
    (per_replica, in_queue)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_shop_keeps_stays_bounded_past_the_retention_window() {
    let orders = setting("SOAK_ORDERS", 300);
    let rate = setting("SOAK_RATE", 30).max(1) as f64;
    let retention = Duration::from_secs(setting("SOAK_RETENTION_SECS", 2).max(1));

    let workdir = Workdir::new();
    let dir = workdir.path();
    // `make soak` runs the release build, as a shop would run (SOAK_BINARIES names
    // its folder); the debug build cannot take as many checkouts a second.
    let server = std::env::var("SOAK_BINARIES")
        .map_or_else(|_| Path::new(env!("CARGO_BIN_EXE_server")).to_owned(), |dir| Path::new(&dir).join("server"));
    let binaries = Binaries::beside(&server);
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/books-load.json");
    let env = vec![
        ("CATALOG_FILE".to_owned(), catalog.display().to_string()),
        ("ORDER_RETENTION_SECS".to_owned(), retention.as_secs().to_string()),
    ];
    let shop = Shop::set_up(&binaries, dir, &Setup { env, ..Setup::default() }, true);
    shop.ready().await;
    println!("soak: {orders} checkouts at {rate}/s, retention {retention:?}");

    let mut samples = vec![sample(&shop, dir, "start", 0)];
    print(&samples);
    let origin = Instant::now();
    let shoppers = tokio::spawn(history::shoppers(shop.web_url(), orders, rate, 1, origin));
    let mut next = 1;
    while !shoppers.is_finished() {
        tokio::time::sleep(Duration::from_millis(200)).await;
        // A sample at each fifth of the run.
        let sent = ((origin.elapsed().as_secs_f64() * rate) as u64).min(orders);
        if next < 5 && sent >= orders * next / 5 {
            samples.push(sample(&shop, dir, &format!("{}/5", next), sent as usize));
            print(&samples);
            next += 1;
        }
    }
    let calls = shoppers.await.expect("the shoppers");
    let queued: Vec<&String> = calls.iter().filter_map(|call| call.order_id.as_ref()).collect();
    // Every queued order acknowledged: finished. (The chaos run checks what they
    // did; here they are forgotten too soon for its checker.) A backlog takes as
    // long as it takes: the bound grows with the run.
    crate::queue_drained(&shop, Duration::from_secs(60 + orders / 20)).await;
    let finished_at = Instant::now();

    // Orders finished a window and a pruning round ago are forgotten (asked of
    // at most about 500 of them, spread over the run: asking of every one takes
    // minutes in a long run).
    tokio::time::sleep(retention * 2 + Duration::from_secs(2)).await;
    let waited = finished_at.elapsed();
    samples.push(sample(&shop, dir, "end", calls.len()));
    print(&samples);
    let asked: Vec<&String> = queued.iter().step_by((queued.len() / 500).max(1)).copied().collect();
    let (executors_old, queue_old) = still_known(&shop, &asked).await;
    let payments_old = payments_known(&shop, &asked).await;
    println!(
        "  {} queued; {:.1} s after the last was final, the executors still know {executors_old:?} of {} of them, the queue {queue_old}, payment {payments_old}",
        queued.len(),
        waited.as_secs_f64(),
        asked.len()
    );
    // A checkout placed now is known to every replica (until its own window ends).
    let answer = reqwest::Client::new()
        .post(format!("{}/checkout", shop.web_url()))
        .json(&testkit::seed::rest_order())
        .send()
        .await
        .expect("answered");
    let body: serde_json::Value = answer.json().await.expect("JSON");
    let fresh_id = body["orderId"].as_str().map(str::to_owned);
    let fresh: Vec<&String> = fresh_id.iter().collect();

    assert!(calls.iter().all(|call| call.malformed.is_none()), "every answer in the one shape");
    assert!(!queued.is_empty(), "the run queued orders");
    assert_eq!(executors_old, vec![0; 3], "every executor replica forgot the orders finished before the window");
    assert_eq!(queue_old, 0, "the queue forgot their ids");
    assert_eq!(payments_old, 0, "payment forgot their payments");
    let page = reqwest::Client::new()
        .get(format!("{}/orders/{}", shop.web_url(), queued[0]))
        .header("accept", "application/json")
        .send()
        .await
        .expect("answered");
    assert_eq!(page.status(), reqwest::StatusCode::NOT_FOUND);
    let page = page.text().await.expect("a body");
    assert!(page.contains("after they finish and then archived"), "{page}");
    assert_eq!(fresh.len(), 1, "a checkout after the window is queued: {body}");
    let settled = async {
        loop {
            let (executors, queue) = still_known(&shop, &fresh).await;
            if executors.iter().all(|known| *known == 1) {
                return (executors, queue);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (executors_new, _) =
        tokio::time::timeout(Duration::from_secs(30), settled).await.expect("the fresh order is taken");
    assert_eq!(executors_new, vec![1; 3], "every replica knows an order inside the window");
}
