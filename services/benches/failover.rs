//! Fail-over times (a benchmark, not a test: it prints figures and asserts nothing
//! about time). The execution side runs as real processes of the `services` binary,
//! with the defaults `make run` uses, on loopback: order_queue, payment, books_db ×3
//! and order_executor ×3. A leader is killed with SIGKILL (`kill -9`): no goodbye,
//! no flushed buffers.
//!
//! - executor leader: from the kill to the next order executed (an order enqueued
//!   right after the kill reaching a final state);
//! - books_db leader: from the kill to the next commit.
//!
//! Each round also notes when a survivor first reports a new leader. After each
//! kill the replica is started again on its data, one order goes through the
//! healed group, and the bench waits until all three replicas have applied the
//! same log, so every round starts from three healthy, caught-up replicas. Orders buy one
//! copy of The Hunger Games (60 in stock), so 10 kills per group stay in stock.
//!
//! Run: `cargo bench -p services --bench failover` (optionally `-- <kills>`,
//! default 10). The processes' logs stay in a temporary folder, named at the end.
//! Results go in docs/benchmarks.md.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proto::v1 as pb;
use services::card_token::{FingerprintKey, DEVELOPMENT_KEY};

/// One service process, which can be killed and started again with the same
/// arguments (so on the same port and data).
struct Process {
    name: String,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Process {
    fn start(name: String, args: Vec<String>, logs: &Path) -> Self {
        let log = logs.join(format!("{name}.log"));
        let mut process = Self { name, args, log, child: None };
        process.spawn();
        process
    }

    fn spawn(&mut self) {
        let log = File::options().create(true).append(true).open(&self.log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_services"))
            .args(&self.args)
            // Only what the bench sets: no .env, no RAFT_* from the caller's shell.
            .env_clear()
            // FAILOVER_LOG (e.g. "info,openraft=info") sets the processes' log filter.
            .env("RUST_LOG", std::env::var("FAILOVER_LOG").unwrap_or_else(|_| "info,openraft=warn".to_owned()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("starting {}: {error}", self.name));
        self.child = Some(child);
    }

    /// SIGKILL, then reap.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// Three replicas of one Raft group.
struct Group {
    ports: BTreeMap<u64, u16>,
    replicas: BTreeMap<u64, Process>,
}

impl Group {
    fn start(subcommand: &str, dir: &Path, extra: &[String]) -> Self {
        let ports: BTreeMap<u64, u16> = (1..=3).map(|id| (id, free_port())).collect();
        let members = ports.iter().map(|(id, port)| format!("{id}=127.0.0.1:{port}")).collect::<Vec<_>>().join(",");
        let replicas = ports
            .iter()
            .map(|(&id, port)| {
                let mut args = vec![
                    subcommand.to_owned(),
                    format!("--id={id}"),
                    format!("--listen=127.0.0.1:{port}"),
                    format!("--members={members}"),
                    format!("--data-dir={}", dir.join(format!("{subcommand}-{id}")).display()),
                ];
                args.extend_from_slice(extra);
                (id, Process::start(format!("{subcommand}-{id}"), args, dir))
            })
            .collect();
        Self { ports, replicas }
    }

    fn urls(&self) -> Vec<String> {
        self.ports.values().map(|port| url(*port)).collect()
    }

    fn running(&self) -> Vec<u64> {
        self.replicas.iter().filter(|(_, p)| p.child.is_some()).map(|(id, _)| *id).collect()
    }

    /// The replica that reports itself leader, once one among the running does.
    async fn leader(&self) -> u64 {
        loop {
            if let Some(id) = self.reported_leader().await {
                return id;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn reported_leader(&self) -> Option<u64> {
        for id in self.running() {
            if self.metrics(id).await.is_some_and(|metrics| metrics["state"] == "Leader") {
                return Some(id);
            }
        }
        None
    }

    /// openraft's metrics of replica `id`, if it answers.
    async fn metrics(&self, id: u64) -> Option<serde_json::Value> {
        let mut client = pb::raft_client::RaftClient::connect(url(self.ports[&id])).await.ok()?;
        let answer = client.metrics(pb::RaftMetricsRequest {}).await.ok()?;
        serde_json::from_slice(&answer.into_inner().payload).ok()
    }

    /// Waits until all three replicas answer and have applied the same log.
    async fn caught_up(&self) {
        loop {
            let mut applied = Vec::new();
            for id in self.running() {
                applied.extend(self.metrics(id).await.map(|metrics| metrics["last_applied"]["index"].clone()));
            }
            if applied.len() == 3 && applied.iter().all(|index| *index == applied[0]) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

struct Shop {
    queue_url: String,
    executors: Group,
    books_db: Group,
    key: FingerprintKey,
    next: u64,
}

impl Shop {
    async fn order(&mut self) -> String {
        self.next += 1;
        let order_id = format!("bench-{}-{}", std::process::id(), self.next);
        let card = domain::CardNumber::parse("4716401589806287").expect("a valid card");
        let now = domain::YearMonth::now_utc();
        let expiry = domain::Expiry::parse(&now.plus_months(12).to_string(), now).expect("a valid expiry");
        let order = pb::QueuedOrder {
            order_id: order_id.clone(),
            client_card: "None".into(),
            lines: vec![pb::OrderLine { book_id: "4".into(), quantity: 1 }],
            total_cents: 1099,
            card: Some(self.key.token(&card, expiry)),
            ..Default::default()
        };
        loop {
            if let Ok(mut queue) = pb::order_queue_client::OrderQueueClient::connect(self.queue_url.clone()).await {
                if queue.enqueue(pb::EnqueueRequest { order: Some(order.clone()) }).await.is_ok() {
                    return order_id;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until a running executor reports the order final; its status.
    async fn final_status(&self, order_id: &str) -> String {
        loop {
            for id in self.executors.running() {
                let Ok(mut client) =
                    pb::order_executor_client::OrderExecutorClient::connect(url(self.executors.ports[&id])).await
                else {
                    continue;
                };
                let Ok(answer) = client.order_status(pb::OrderStatusRequest { order_id: order_id.into() }).await else {
                    continue;
                };
                let answer = answer.into_inner();
                match answer.status.as_str() {
                    "committed" => return answer.status,
                    "aborted" => return format!("aborted ({})", answer.reason),
                    _ => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

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
    let mut times = times.to_vec();
    times.sort();
    let median = times[times.len() / 2];
    let max = times[times.len() - 1];
    let all: Vec<String> = times.iter().map(|t| format!("{:.2}", t.as_secs_f64())).collect();
    println!("{name}: {} kills, median {median:.2?}, max {max:.2?}, all [{}] s", times.len(), all.join(", "));
}

/// Kills `group`'s leader, then times the next order and the new leader; restarts
/// the killed replica, sends one order through the healed group and waits until
/// the restarted replica has caught up.
async fn round(shop: &mut Shop, executors: bool, figures: &mut Figures) {
    let group = if executors { &mut shop.executors } else { &mut shop.books_db };
    let leader = group.leader().await;
    let killed = Instant::now();
    group.replicas.get_mut(&leader).expect("a replica").kill();
    let order_id = shop.order().await;
    let group = if executors { &shop.executors } else { &shop.books_db };
    let (status, elected) = tokio::join!(shop.final_status(&order_id), async {
        group.leader().await;
        killed.elapsed()
    });
    figures.end_to_end.push(killed.elapsed());
    figures.election.push(elected);
    if status != "committed" {
        println!("  order {order_id} ended {status}");
    }
    let group = if executors { &mut shop.executors } else { &mut shop.books_db };
    group.replicas.get_mut(&leader).expect("a replica").spawn();
    let order_id = shop.order().await;
    shop.final_status(&order_id).await;
    let group = if executors { &shop.executors } else { &shop.books_db };
    group.caught_up().await;
}

#[tokio::main]
async fn main() {
    let kills: usize = std::env::args().skip(1).find_map(|arg| arg.parse().ok()).unwrap_or(10);
    let dir = tempfile::Builder::new().prefix("failover-bench").tempdir().expect("temp dir");
    let path = dir.path();
    let queue_port = free_port();
    let payment_port = free_port();
    let _queue = Process::start(
        "order_queue".into(),
        vec![
            "order-queue".into(),
            format!("--listen=127.0.0.1:{queue_port}"),
            format!("--data-dir={}", path.join("order_queue").display()),
        ],
        path,
    );
    let _payment = Process::start(
        "payment".into(),
        vec![
            "payment".into(),
            format!("--listen=127.0.0.1:{payment_port}"),
            format!("--data-dir={}", path.join("payment").display()),
        ],
        path,
    );
    let books_db = Group::start("books-db", path, &[]);
    let executor_args =
        vec![format!("--queue-url={}", url(queue_port)), format!("--payment-url={}", url(payment_port)), {
            format!("--books-db={}", books_db.urls().join(","))
        }];
    let executors = Group::start("order-executor", path, &executor_args);
    let mut shop =
        Shop { queue_url: url(queue_port), executors, books_db, key: FingerprintKey::new(DEVELOPMENT_KEY), next: 0 };
    let warm = shop.order().await;
    let status = shop.final_status(&warm).await;
    println!("warm-up order {status}; processes' logs in {}", path.display());

    let mut executor = Figures::default();
    for _ in 0..kills {
        round(&mut shop, true, &mut executor).await;
    }
    executor.print("executor leader killed");
    let mut books = Figures::default();
    for _ in 0..kills {
        round(&mut shop, false, &mut books).await;
    }
    books.print("books_db leader killed");
    drop(shop);
    // Keep the logs for a look; the folder is in the system's temporary directory.
    let kept = dir.keep();
    println!("logs kept in {}", kept.display());
}
