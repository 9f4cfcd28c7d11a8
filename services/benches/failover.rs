//! Fail-over times (a benchmark, not a test: it prints figures and asserts nothing
//! about time). The execution side runs as real processes of the `services` binary,
//! with the defaults `make run` uses, on loopback (`testkit::processes`).
//! A leader is killed with SIGKILL (`kill -9`).
//!
//! - executor leader: from the kill to the next order executed (an order enqueued
//!   right after the kill reaching a final state);
//! - books_db leader: from the kill to the next commit.
//!
//! Each round also notes when a survivor first reports a new leader. After each
//! kill the replica is started again on its data, one order goes through the
//! healed group, and the bench waits until all three replicas have applied the
//! same log, so every round starts from three healthy, caught-up replicas. Orders
//! buy one copy of The Hunger Games (60 in stock), so 10 kills per group stay in
//! stock.
//!
//! Run: `cargo bench -p services --bench failover` (optionally `-- <kills>`,
//! default 10; `FAILOVER_LOG=info,openraft=info` for openraft's election logs).
//! The processes' logs are kept in a temporary folder, named at the start.
//! Results go in docs/benchmarks.md.

use std::path::Path;
use std::time::{Duration, Instant};

use testkit::processes::{ExecutionSide, ReplicaGroup};

const CARD: &str = "4716401589806287";

#[derive(Default)]
struct Figures {
    election: Vec<Duration>,
    end_to_end: Vec<Duration>,
}

impl Figures {
    fn print(&self, name: &str) {
        summary(&format!("{name}: a survivor reports a new leader"), &self.election);
        summary(&format!("{name}: the next order final"), &self.end_to_end);
    }
}

fn summary(name: &str, times: &[Duration]) {
    if times.is_empty() {
        return println!("{name}: no kills");
    }
    let mut times = times.to_vec();
    times.sort();
    let median = times[times.len() / 2];
    let max = times[times.len() - 1];
    let all: Vec<String> = times.iter().map(|t| format!("{:.2}", t.as_secs_f64())).collect();
    println!("{name}: {} kills, median {median:.2?}, max {max:.2?}, all [{}] s", times.len(), all.join(", "));
}

fn group(side: &mut ExecutionSide, executors: bool) -> &mut ReplicaGroup {
    if executors {
        &mut side.executors
    } else {
        &mut side.books_db
    }
}

/// Kills a group's leader, then times the next order and the new leader; restarts
/// the killed replica, sends one order through the healed group and waits until
/// the restarted replica has caught up.
async fn round(side: &mut ExecutionSide, executors: bool, next: &mut u32, figures: &mut Figures) {
    let mut order_id = || {
        *next += 1;
        format!("bench-{}-{next}", std::process::id())
    };
    let leader = group(side, executors).leader().await;
    let killed = Instant::now();
    group(side, executors).kill(leader);
    let order = order_id();
    side.enqueue(&order, CARD, &[("4", 1)]).await;
    let survivors = if executors { &side.executors } else { &side.books_db };
    let elected = async {
        survivors.leader().await;
        killed.elapsed()
    };
    let (status, elected) = tokio::join!(side.final_status(&order), elected);
    figures.end_to_end.push(killed.elapsed());
    figures.election.push(elected);
    if status.status() != proto::v1::OrderState::Committed {
        println!("  order {order} ended {:?} ({})", status.status(), status.reason);
    }
    group(side, executors).restart(leader);
    let order = order_id();
    side.enqueue(&order, CARD, &[("4", 1)]).await;
    side.final_status(&order).await;
    group(side, executors).caught_up().await;
}

#[tokio::main]
async fn main() {
    let kills: usize = std::env::args().skip(1).find_map(|arg| arg.parse().ok()).unwrap_or(10);
    let dir = tempfile::Builder::new().prefix("failover-bench").tempdir().expect("temp dir").keep();
    println!("processes' data and logs in {}", dir.display());
    let mut side = ExecutionSide::start(Path::new(env!("CARGO_BIN_EXE_services")), &dir);
    let mut next = 0;
    side.enqueue("bench-warm-up", CARD, &[("4", 1)]).await;
    println!("warm-up order {}", side.final_status("bench-warm-up").await.status);

    let mut executor = Figures::default();
    for _ in 0..kills {
        round(&mut side, true, &mut next, &mut executor).await;
    }
    executor.print("executor leader killed");
    let mut books = Figures::default();
    for _ in 0..kills {
        round(&mut side, false, &mut next, &mut books).await;
    }
    books.print("books_db leader killed");
}
