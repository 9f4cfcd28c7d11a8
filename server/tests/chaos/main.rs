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

mod history;
mod nemesis;

use std::path::Path;
use std::time::Duration;

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

/// Keeps the processes' data and logs when the run fails.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_faults_no_order_is_lost_charged_twice_or_oversold() {
    let orders = setting("CHAOS_ORDERS", 300);
    let rate = setting("CHAOS_RATE", 10).max(1) as f64;
    let seed = setting("CHAOS_SEED", 1);
    let settle = Duration::from_secs(setting("CHAOS_SETTLE_SECS", 120));

    let workdir = Workdir(Some(tempfile::tempdir().expect("a temp dir")));
    let dir = workdir.0.as_ref().expect("the temp dir").path().to_owned();
    let binaries = Binaries::beside(Path::new(env!("CARGO_BIN_EXE_server")));
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/books-load.json");
    let env = [("CATALOG_FILE".to_owned(), catalog.display().to_string())];
    let mut shop = Shop::start(&binaries, &dir, &env, true);
    shop.ready().await;
    let (books_db, executors) = (shop.side.books_db.urls(), shop.side.executors.urls());
    let terms_before = (term(&books_db).await, term(&executors).await);

    let origin = Instant::now();
    let mut nemesis = nemesis::Nemesis::new(seed, origin);
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
