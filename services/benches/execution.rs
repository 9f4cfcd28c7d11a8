//! Executed orders a second (a benchmark, not a test: it prints figures and
//! asserts nothing about time), and beside it, in the same run and on the same
//! disk, a three-node etcd's replicated writes a second.
//!
//! The execution side runs as real processes of the `services` binary with
//! `make run`'s defaults (`testkit::processes`: order_queue, payment, books_db ×3,
//! order_executor ×3, on loopback, every write fsync'd), the books database on the
//! load catalog (`data/books-load.json`). The queue is filled first with the
//! executors stopped (one copy of a book per order, priorities mixed); then the
//! three executors start, and the clock runs from their start until the queue
//! holds nothing ready or leased (an order is acknowledged only after its
//! `Complete` is in the log). Every order's end is then read back from the
//! executors: with ample stock, each must have committed. CPU seconds are the
//! eight processes' user + system time over the drain, from `/proc`.
//!
//! Then three etcd members (Debian's `etcd-server`) start in the same folder and
//! `etcdctl check perf --load=<load>` (Debian's `etcd-client`) runs against them;
//! the bench prints etcd's writes a second, its members' CPU seconds per write and
//! the ratio executed orders/s ÷ etcd writes/s.
//!
//! Run: `cargo bench -p services --bench execution` with, after `--`:
//! `--orders N` (default 20000), `--window N` (the executor leader's window;
//! default the binary's, 256), `--etcd-load s|m|l|xl` (default l), `--no-etcd`.
//! Results go in docs/benchmarks.md.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt;
use proto::v1 as pb;
use testkit::processes::{free_port, url, ExecutionSide, Process};

const CARD: &str = "4716401589806287";
/// How long `etcdctl check perf` writes.
const CHECK_PERF_SECONDS: f64 = 60.0;

struct Args {
    orders: usize,
    window: Option<u32>,
    etcd_load: Option<String>,
}

fn args() -> Args {
    let mut args = Args { orders: 20_000, window: None, etcd_load: Some("l".into()) };
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        let mut value = |name: &str| given.next().unwrap_or_else(|| usage(&format!("{name} needs a value")));
        match arg.as_str() {
            "--orders" => args.orders = value("--orders").parse().unwrap_or_else(|_| usage("--orders: a count")),
            "--window" => args.window = Some(value("--window").parse().unwrap_or_else(|_| usage("--window: a count"))),
            "--etcd-load" => args.etcd_load = Some(value("--etcd-load")),
            "--no-etcd" => args.etcd_load = None,
            // What cargo bench passes to every bench.
            "--bench" => {}
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    args
}

fn usage(problem: &str) -> ! {
    eprintln!("execution bench: {problem}");
    eprintln!("usage: cargo bench -p services --bench execution -- [--orders N] [--window N] [--etcd-load s|m|l|xl | --no-etcd]");
    std::process::exit(2)
}

/// CPU seconds (user + system) the processes `pids` have used so far.
fn cpu_seconds(pids: &[u32]) -> f64 {
    let ticks: u64 = pids
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .map(|stat| {
            // The fields after the command name (which is in parentheses and may
            // hold spaces): utime and stime are the 12th and 13th of them.
            let after_name = &stat[stat.rfind(')').map_or(0, |at| at + 1)..];
            let fields: Vec<&str> = after_name.split_whitespace().collect();
            fields.get(11).and_then(|t| t.parse::<u64>().ok()).unwrap_or(0)
                + fields.get(12).and_then(|t| t.parse::<u64>().ok()).unwrap_or(0)
        })
        .sum();
    ticks as f64 / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

async fn waiting(queue: &mut pb::order_queue_client::OrderQueueClient<tonic::transport::Channel>) -> u64 {
    match queue.stats(pb::StatsRequest {}).await {
        Ok(stats) => {
            let stats = stats.into_inner();
            stats.premium + stats.basic + stats.none + stats.leased
        }
        Err(_) => u64::MAX,
    }
}

struct Drained {
    orders: usize,
    seconds: f64,
    cpu_seconds: f64,
}

async fn execution(args: &Args, dir: &Path) -> Drained {
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/books-load.json");
    let books_db_args = [format!("--catalog={}", catalog.display())];
    // The books with stock for every order (the contended scenario's book has three).
    let json = std::fs::read_to_string(&catalog).expect("the load catalog");
    let loaded = domain::Catalog::from_json(&json).expect("the load catalog parses");
    let books: Vec<&str> =
        loaded.books().iter().filter(|book| book.stock as usize >= args.orders).map(|book| book.id.as_str()).collect();
    assert!(!books.is_empty(), "no book in {} has {} copies", catalog.display(), args.orders);
    let executor_args: Vec<String> = args.window.iter().map(|window| format!("--window={window}")).collect();
    let binary = Path::new(env!("CARGO_BIN_EXE_services"));
    let mut side = ExecutionSide::without_executors(binary, dir, &books_db_args, &executor_args);
    side.books_db.leader().await;

    let channel = tonic::transport::Endpoint::from_shared(side.queue_url()).expect("the queue's URL").connect_lazy();
    let mut queue = pb::order_queue_client::OrderQueueClient::new(channel);
    let cards = [domain::ClientCard::Premium, domain::ClientCard::Basic, domain::ClientCard::None];
    let filling = Instant::now();
    let ids: Vec<String> = (0..args.orders).map(|n| format!("exec-{}-{n}", std::process::id())).collect();
    futures::stream::iter(ids.iter().enumerate())
        .for_each_concurrent(64, |(n, id)| {
            let mut queue = queue.clone();
            let order =
                testkit::probe::queued_order(side.key(), id, CARD, &[(books[n % books.len()], 1)], cards[n % 3]);
            async move {
                queue.enqueue(pb::EnqueueRequest { order: Some(order) }).await.expect("the queue takes the order");
            }
        })
        .await;
    println!("queue filled: {} orders in {:.1} s", args.orders, filling.elapsed().as_secs_f64());

    let cpu_before = cpu_seconds(&side.pids());
    let started = Instant::now();
    side.executors.start_all();
    let mut last_report = Instant::now();
    loop {
        let left = waiting(&mut queue).await;
        if left == 0 {
            break;
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            println!("  {:>5.1} s: {left} orders waiting or in flight", started.elapsed().as_secs_f64());
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = cpu_seconds(&side.pids()) - cpu_before;

    // Every order's end, as the executors' log has it.
    let executors: Vec<String> = side.executors.urls();
    let ends = futures::stream::iter(&ids)
        .map(|id| testkit::probe::final_status(&executors, id))
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let committed = ends.iter().flatten().filter(|end| end.status() == pb::OrderState::Committed).count();
    let aborted: Vec<&pb::OrderStatusResponse> =
        ends.iter().flatten().filter(|end| end.status() == pb::OrderState::Aborted).collect();
    let unfinished = ends.iter().filter(|end| end.is_none()).count();
    println!("orders: {committed} committed, {} aborted, {unfinished} not final", aborted.len());
    if let Some(first) = aborted.first() {
        println!("  first abort: {}", first.reason);
    }
    Drained { orders: args.orders, seconds, cpu_seconds }
}

/// etcd's writes a second under `etcdctl check perf`, and its members' CPU
/// seconds over the check.
struct Etcd {
    writes_per_second: f64,
    cpu_seconds: f64,
}

fn find(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| Path::new(dir).join(program)).find(|path| path.is_file())
}

async fn etcd(load: &str, dir: &Path) -> Etcd {
    let (Some(etcd), Some(etcdctl)) = (find("etcd"), find("etcdctl")) else {
        eprintln!("etcd or etcdctl is not on PATH: `apt-get install etcd-server etcd-client`, or run with --no-etcd");
        std::process::exit(2);
    };
    let members: Vec<(String, u16, u16)> = (1..=3).map(|n| (format!("etcd-{n}"), free_port(), free_port())).collect();
    let cluster = members.iter().map(|(name, _, peer)| format!("{name}={}", url(*peer))).collect::<Vec<_>>().join(",");
    let processes: Vec<Process> = members
        .iter()
        .map(|(name, client, peer)| {
            let args = vec![
                format!("--name={name}"),
                format!("--data-dir={}", dir.join(name).display()),
                format!("--listen-client-urls={}", url(*client)),
                format!("--advertise-client-urls={}", url(*client)),
                format!("--listen-peer-urls={}", url(*peer)),
                format!("--initial-advertise-peer-urls={}", url(*peer)),
                format!("--initial-cluster={cluster}"),
                "--initial-cluster-state=new".to_owned(),
                "--initial-cluster-token=bookstore-bench".to_owned(),
            ];
            Process::start(&etcd, name, args, dir)
        })
        .collect();
    let endpoints = members.iter().map(|(_, client, _)| url(*client)).collect::<Vec<_>>().join(",");
    let healthy = Instant::now();
    while !Command::new(&etcdctl)
        .args(["--endpoints", &endpoints, "endpoint", "health"])
        .env("ETCDCTL_API", "3")
        .output()
        .is_ok_and(|out| out.status.success())
    {
        assert!(healthy.elapsed() < Duration::from_secs(60), "etcd did not become healthy (logs in {})", dir.display());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pids: Vec<u32> = processes.iter().filter_map(Process::pid).collect();
    let before = cpu_seconds(&pids);
    let check = Command::new(&etcdctl)
        .args(["--endpoints", &endpoints, "check", "perf", &format!("--load={load}")])
        .env("ETCDCTL_API", "3")
        .output()
        .expect("etcdctl runs");
    let cpu_seconds = cpu_seconds(&pids) - before;
    let output = String::from_utf8_lossy(&check.stdout);
    // "PASS: Throughput is 2213 writes/s" or "FAIL: Throughput too low: 2213 writes/s".
    let writes_per_second = output
        .lines()
        .find(|line| line.contains("writes/s"))
        .and_then(|line| line.split_whitespace().rev().nth(1))
        .and_then(|number| number.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no throughput in etcdctl check perf's output:\n{output}"));
    println!("etcd check perf --load={load}:");
    for line in output.lines().filter(|line| line.starts_with("PASS") || line.starts_with("FAIL")) {
        println!("  {line}");
    }
    Etcd { writes_per_second, cpu_seconds }
}

#[tokio::main]
async fn main() {
    let args = args();
    let dir = tempfile::Builder::new().prefix("execution-bench").tempdir().expect("temp dir").keep();
    println!("processes' data and logs in {}", dir.display());
    let drained = execution(&args, &dir).await;
    let orders_per_second = drained.orders as f64 / drained.seconds;
    println!(
        "executed: {} orders in {:.1} s = {orders_per_second:.0} orders/s; {:.1} CPU s, {:.2} CPU ms an order (window {})",
        drained.orders,
        drained.seconds,
        drained.cpu_seconds,
        drained.cpu_seconds * 1000.0 / drained.orders as f64,
        args.window.map_or("default".to_owned(), |window| window.to_string()),
    );
    let Some(load) = &args.etcd_load else { return };
    let etcd = etcd(load, &dir).await;
    println!(
        "etcd: {:.0} writes/s; {:.1} CPU s, {:.2} CPU ms a write",
        etcd.writes_per_second,
        etcd.cpu_seconds,
        etcd.cpu_seconds * 1000.0 / (etcd.writes_per_second * CHECK_PERF_SECONDS)
    );
    println!("ratio: executed orders/s ÷ etcd writes/s = {:.2}", orders_per_second / etcd.writes_per_second);
}
