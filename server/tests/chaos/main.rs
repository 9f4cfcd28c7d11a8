//! The chaos run: the whole shop as real processes (the binaries `cargo test`
//! builds), shoppers posting checkouts at a steady rate (good orders, a share paid
//! with cards the issuer declines, and buyers racing for the 3 copies of a book),
//! while a seeded nemesis breaks one process at a time (`nemesis`). Every request
//! and answer is kept (the history), and once the faults stop and every process
//! runs again, a checker reads the shop's end state against it (`history`):
//!
//! - every checkout is answered: queued (200) or refused in the one error shape;
//! - every order answered "queued" ends committed or aborted, the same on every
//!   executor replica, within the bound after the faults stop;
//! - a committed order is captured exactly once, an aborted one never, and none
//!   paid with a declined card commits;
//! - on every books_db replica, each book's sold count equals what the committed
//!   queued orders bought (so no order a shopper was refused, or answered 503,
//!   was committed), nothing stays reserved, available + reserved + sold =
//!   initial, and the replicas are identical;
//! - every killed process answers on its port again after its restart.
//!
//! It prints counts (checkouts, answers by kind and status, faults by kind, 503s,
//! how soon checkouts were queued again after each kind of fault, elections) and,
//! for any violation, the fault schedule. `make test` runs a short one;
//! `make chaos` the long one. `CHAOS_ORDERS` (300), `CHAOS_RATE` (checkouts a
//! second, 10), `CHAOS_SEED` (1: the same seed, the same orders and the same
//! fault schedule) and `CHAOS_SETTLE_SECS` (120) change it.

mod elections;
mod history;
mod nemesis;
mod soak;

use std::path::{Path, PathBuf};
use std::time::Duration;

use testkit::processes::{Setup, Workdir};
use testkit::shop::{Binaries, Shop};
use tokio::time::Instant;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().map_or(default, |value| {
        value.trim().parse().unwrap_or_else(|_| panic!("{name}={value} is not a whole number"))
    })
}

/// The highest Raft term any replica at `urls` reports.
async fn term(urls: &[String]) -> u64 {
    let mut highest = 0;
    for url in urls {
        if let Some(metrics) = testkit::probe::raft_metrics(url).await {
            highest = highest.max(metrics["current_term"].as_u64().unwrap_or(0));
        }
    }
    highest
}

/// The whole shop, with the load catalog (100,000 copies of each book but the
/// contended one), its data and logs in `workdir`, ready for checkouts; the
/// execution side's processes each in a cgroup `<cgroups>-<name>` if given.
async fn start(workdir: &Workdir, cgroups: Option<PathBuf>) -> Shop {
    let dir = workdir.path();
    let binaries = Binaries::beside(Path::new(env!("CARGO_BIN_EXE_server")));
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/books-load.json");
    let env = vec![("CATALOG_FILE".to_owned(), catalog.display().to_string())];
    let shop = Shop::set_up(&binaries, dir, &Setup { env, cgroups, ..Setup::default() }, true);
    shop.ready().await;
    shop
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_faults_no_order_is_lost_charged_twice_or_oversold() {
    let orders = setting("CHAOS_ORDERS", 300);
    let rate = setting("CHAOS_RATE", 10).max(1) as f64;
    let seed = setting("CHAOS_SEED", 1);
    let settle = Duration::from_secs(setting("CHAOS_SETTLE_SECS", 120));

    let workdir = Workdir::new();
    let partitions = nemesis::Partitions::probe();
    let mut shop = start(&workdir, partitions.as_ref().ok().map(nemesis::Partitions::prefix)).await;
    let (books_db, executors) = (shop.side.books_db.urls(), shop.side.executors.urls());
    let terms_before = (term(&books_db).await, term(&executors).await);

    let origin = Instant::now();
    let mut nemesis = nemesis::Nemesis::new(seed, origin, partitions);
    let partitions = match nemesis.partitions() {
        Ok(()) => "yes".to_owned(),
        Err(why) => format!("not on this host ({why}); kills and pauses only"),
    };
    println!("chaos: seed {seed}, {orders} checkouts at {rate}/s; partitions: {partitions}");
    let shoppers = tokio::spawn(history::shoppers(shop.web_url(), orders, rate, seed, origin));
    let mut faults = Vec::new();
    while !shoppers.is_finished() {
        let fault = nemesis.strike(&mut shop).await;
        println!("  {fault}");
        faults.push(fault);
    }
    let calls = shoppers.await.expect("the shoppers");
    // Every fault was healed as it ended: every process runs again.
    shop.side.books_db.caught_up().await;

    let end = history::settle(&executors, &shop.side.payment_url(), &books_db, &calls, settle).await;
    let terms_after = (term(&books_db).await, term(&executors).await);
    let mut violations = history::check(&calls, &end);
    for fault in faults.iter().filter(|fault| fault.not_back) {
        violations.push(format!("{} did not answer on its port again after its restart", fault.target));
    }
    print!("{}", history::report(&calls, &faults, &end, &violations, &partitions));
    println!(
        "  elections: books_db term {} → {}, executors term {} → {}",
        terms_before.0, terms_after.0, terms_before.1, terms_after.1
    );
    assert!(violations.is_empty(), "{} violations (replay: CHAOS_SEED={seed})", violations.len());
    assert!(!faults.is_empty() && calls.len() as u64 == orders, "the run ran");
}

/// Copies of `book` sold, as books_db's leader has it.
async fn sold(shop: &Shop, book: &str) -> u32 {
    let urls = shop.side.books_db.urls();
    testkit::probe::eventually("books_db's stock", Duration::from_millis(50), || async {
        for url in &urls {
            let Ok(mut client) = proto::v1::books_db_client::BooksDbClient::connect(url.clone()).await else {
                continue;
            };
            let request = proto::v1::StockRequest { book_ids: vec![book.to_owned()], local: false };
            if let Some(stock) = client.stock(request).await.ok().and_then(|answer| answer.into_inner().books.pop()) {
                return Some(stock.sold);
            }
        }
        None
    })
    .await
}

/// Waits until the queue holds nothing, ready or leased: what it took has run.
async fn queue_drained(shop: &Shop, patience: Duration) {
    let url = shop.side.queue_url();
    testkit::probe::eventually_within("the queue drained", Duration::from_millis(100), patience, || async {
        let mut client = proto::v1::order_queue_client::OrderQueueClient::connect(url.clone()).await.ok()?;
        let stats = client.stats(proto::v1::StatsRequest {}).await.ok()?.into_inner();
        (stats.premium + stats.basic + stats.none + stats.leased == 0).then_some(())
    })
    .await;
}

/// A checkout posted while the queue is paused for `paused`: its answer (status
/// and body) once the queue wakes up.
async fn checkout_while_the_queue_sleeps(shop: &Shop, n: u64, paused: Duration) -> (u16, serde_json::Value) {
    let lines = [("7".to_owned(), 1)];
    let body = history::checkout(7, n, &history::card_number(7, n), &lines);
    let url = format!("{}/checkout", shop.web_url());
    shop.side.queue.signal(testkit::processes::Signal::Pause);
    let post = tokio::spawn(async move {
        let answer = reqwest::Client::new().post(url).json(&body).send().await.expect("an answer");
        (answer.status().as_u16(), answer.json().await.expect("JSON"))
    });
    tokio::time::sleep(paused).await;
    shop.side.queue.signal(testkit::processes::Signal::Resume);
    post.await.expect("the checkout")
}

/// A queue paused past the web server's deadline holds a checkout's enqueue and
/// reads it when it wakes. What the shopper is told must be true: 503 and the
/// order never runs (it was withdrawn), or approved and it runs; and when the
/// queue cannot be asked for longer than the web server asks, the order is
/// "unconfirmed", named, and whatever became of it shows on its page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_the_queue_took_without_answering_is_withdrawn_or_goes_through() {
    let workdir = Workdir::new();
    let shop = start(&workdir, None).await;
    let executors = shop.side.executors.urls();

    // Paused for longer than the enqueue's deadline (800 ms), shorter than the
    // web server keeps asking for the order back.
    let before = sold(&shop, "7").await;
    let (status, body) = checkout_while_the_queue_sleeps(&shop, 1, Duration::from_secs(2)).await;
    queue_drained(&shop, testkit::probe::PATIENCE).await;
    match status {
        503 => {
            assert_eq!(body["error"]["code"], "service_unavailable", "{body}");
            assert_eq!(sold(&shop, "7").await, before, "a checkout answered 503 never runs: {body}");
        }
        200 => {
            let id = body["orderId"].as_str().expect("an order id");
            let status = testkit::probe::eventually("the order final", Duration::from_millis(50), || {
                testkit::probe::final_status(&executors, id)
            })
            .await;
            assert_eq!(status.status(), proto::v1::OrderState::Committed, "{status:?}");
            assert_eq!(sold(&shop, "7").await, before + 1);
        }
        other => panic!("{other}: {body}"),
    }

    // Paused for longer than the web server asks: unconfirmed, naming the order.
    let before = sold(&shop, "7").await;
    let (status, body) = checkout_while_the_queue_sleeps(&shop, 2, Duration::from_secs(9)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("order_unconfirmed")), "{body}");
    let message = body["error"]["message"].as_str().expect("a message");
    assert!(message.contains("/orders/"), "{message}");
    queue_drained(&shop, testkit::probe::PATIENCE).await;
    // The queue woke with the enqueue and the asks to withdraw it: withdrawn, or
    // run to its end; either way the stock says which.
    let after = sold(&shop, "7").await;
    assert!(after == before || after == before + 1, "{before} → {after}");
}
