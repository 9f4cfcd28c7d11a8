//! The execution side as real processes of the `services` binary on loopback, with
//! `make run`'s defaults: order_queue, payment, books_db ×3 and order_executor ×3.
//! Any process can be killed with SIGKILL (`kill -9`: no goodbye, no flushed
//! buffers) and started again on its port and data. The process tests and the
//! fail-over benchmark use it; the binary's path comes from the caller
//! (`env!("CARGO_BIN_EXE_services")`, which Cargo sets for tests and benches only).
//!
//! Every wait is bounded by [`PATIENCE`] and panics naming the folder with the
//! processes' logs.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use proto::v1 as pb;
use tokio::time::Instant;

use crate::card_token::{FingerprintKey, DEVELOPMENT_KEY};

/// How long any wait here may take before it panics.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// One service process, which can be killed and started again with the same
/// arguments, so on the same port and data. Killed when dropped.
pub struct Process {
    binary: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Process {
    /// Starts `binary args`, its output appended to `<logs>/<name>.log`.
    pub fn start(binary: &Path, name: &str, args: Vec<String>, logs: &Path) -> Self {
        let log = logs.join(format!("{name}.log"));
        let mut process = Self { binary: binary.to_owned(), args, log, child: None };
        process.restart();
        process
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts the process again (after [`Process::kill`]).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "{} is running", self.log.display());
        let log = File::options().create(true).append(true).open(&self.log).expect("log file");
        let child = Command::new(&self.binary)
            .args(&self.args)
            // Only what is set here: no .env, no RAFT_* from the caller's shell. The log
            // filter is the binary's default unless FAILOVER_LOG (e.g.
            // `info,openraft=info`) names another.
            .env_clear()
            .env(
                "RUST_LOG",
                std::env::var("FAILOVER_LOG").unwrap_or_else(|_| crate::telemetry::DEFAULT_FILTER.to_owned()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("starting {}: {error}", self.binary.display()));
        self.child = Some(child);
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
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

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

pub fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// Three replicas of one Raft group, ids 1–3.
pub struct ReplicaGroup {
    pub ports: BTreeMap<u64, u16>,
    replicas: BTreeMap<u64, Process>,
    logs: PathBuf,
}

impl ReplicaGroup {
    /// `services <subcommand> --id N --listen … --members … --data-dir <dir>/<subcommand>-N <extra>`.
    pub fn start(binary: &Path, subcommand: &str, dir: &Path, extra: &[String]) -> Self {
        let ports: BTreeMap<u64, u16> = (1..=3).map(|id| (id, free_port())).collect();
        let members = ports.iter().map(|(id, port)| format!("{id}=127.0.0.1:{port}")).collect::<Vec<_>>().join(",");
        let replicas = ports
            .iter()
            .map(|(&id, port)| {
                let name = format!("{subcommand}-{id}");
                let mut args = vec![
                    subcommand.to_owned(),
                    format!("--id={id}"),
                    format!("--listen=127.0.0.1:{port}"),
                    format!("--members={members}"),
                    format!("--data-dir={}", dir.join(&name).display()),
                ];
                args.extend_from_slice(extra);
                (id, Process::start(binary, &name, args, dir))
            })
            .collect();
        Self { ports, replicas, logs: dir.to_owned() }
    }

    pub fn urls(&self) -> Vec<String> {
        self.ports.values().map(|port| url(*port)).collect()
    }

    pub fn running(&self) -> Vec<u64> {
        self.replicas.iter().filter(|(_, process)| process.is_running()).map(|(id, _)| *id).collect()
    }

    pub fn kill(&mut self, id: u64) {
        self.replicas.get_mut(&id).expect("a replica of the group").kill();
    }

    pub fn restart(&mut self, id: u64) {
        self.replicas.get_mut(&id).expect("a replica of the group").restart();
    }

    /// openraft's metrics of replica `id`, if it answers.
    pub async fn metrics(&self, id: u64) -> Option<serde_json::Value> {
        let mut client = pb::raft_client::RaftClient::connect(url(self.ports[&id])).await.ok()?;
        let answer = client.metrics(pb::RaftMetricsRequest {}).await.ok()?;
        serde_json::from_slice(&answer.into_inner().payload).ok()
    }

    /// The running replica that reports itself leader, once one does.
    pub async fn leader(&self) -> u64 {
        let give_up = Instant::now() + PATIENCE;
        loop {
            for id in self.running() {
                if self.metrics(id).await.is_some_and(|metrics| metrics["state"] == "Leader") {
                    return id;
                }
            }
            assert!(Instant::now() < give_up, "no leader within {PATIENCE:?} (logs in {})", self.logs.display());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until all three replicas answer and have applied the same log.
    pub async fn caught_up(&self) {
        let give_up = Instant::now() + PATIENCE;
        loop {
            let mut applied = Vec::new();
            for id in self.running() {
                applied.extend(self.metrics(id).await.map(|metrics| metrics["last_applied"]["index"].clone()));
            }
            if applied.len() == 3 && applied.iter().all(|index| *index == applied[0]) {
                return;
            }
            assert!(Instant::now() < give_up, "replicas not caught up: {applied:?} (logs in {})", self.logs.display());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The queue, payment, the books database and the executors, as processes.
pub struct ExecutionSide {
    pub queue: Process,
    pub payment: Process,
    pub books_db: ReplicaGroup,
    pub executors: ReplicaGroup,
    queue_port: u16,
    payment_port: u16,
    /// The key the processes use when none is set: orders' card tokens match it.
    key: FingerprintKey,
    logs: PathBuf,
}

impl ExecutionSide {
    /// Starts every process, keeping data and logs under `dir`.
    pub fn start(binary: &Path, dir: &Path) -> Self {
        let queue_port = free_port();
        let payment_port = free_port();
        let service = |name: &str, port: u16| {
            let args = vec![
                name.replace('_', "-"),
                format!("--listen=127.0.0.1:{port}"),
                format!("--data-dir={}", dir.join(name).display()),
            ];
            Process::start(binary, name, args, dir)
        };
        let queue = service("order_queue", queue_port);
        let payment = service("payment", payment_port);
        let books_db = ReplicaGroup::start(binary, "books-db", dir, &[]);
        let executor_args = [
            format!("--queue-url={}", url(queue_port)),
            format!("--payment-url={}", url(payment_port)),
            format!("--books-db={}", books_db.urls().join(",")),
        ];
        let executors = ReplicaGroup::start(binary, "order-executor", dir, &executor_args);
        Self {
            queue,
            payment,
            books_db,
            executors,
            queue_port,
            payment_port,
            key: FingerprintKey::new(DEVELOPMENT_KEY),
            logs: dir.to_owned(),
        }
    }

    fn give_up(&self, what: &str) -> ! {
        panic!("{what} within {PATIENCE:?} (logs in {})", self.logs.display())
    }

    /// Enqueues an order for `lines` (book id, copies) paid with `card`, at a
    /// nominal 10.99 a copy, retrying while the queue is down.
    pub async fn enqueue(&self, order_id: &str, card: &str, lines: &[(&str, u32)]) {
        let number = domain::CardNumber::parse(card).expect("a valid card number");
        let now = domain::YearMonth::now_utc();
        let expiry = domain::Expiry::parse(&now.plus_months(12).to_string(), now).expect("a valid expiry");
        let order = pb::QueuedOrder {
            order_id: order_id.to_owned(),
            client_card: "None".into(),
            lines: lines
                .iter()
                .map(|(id, quantity)| pb::OrderLine { book_id: (*id).into(), quantity: *quantity })
                .collect(),
            total_cents: lines.iter().map(|(_, quantity)| u64::from(*quantity) * 1099).sum(),
            card: Some(self.key.token(&number, expiry)),
            ..Default::default()
        };
        let give_up = Instant::now() + PATIENCE;
        while Instant::now() < give_up {
            if let Ok(mut queue) = pb::order_queue_client::OrderQueueClient::connect(url(self.queue_port)).await {
                if queue.enqueue(pb::EnqueueRequest { order: Some(order.clone()) }).await.is_ok() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.give_up(&format!("order {order_id} not enqueued"))
    }

    /// Waits until a running executor reports `order_id` committed or aborted.
    pub async fn final_status(&self, order_id: &str) -> pb::OrderStatusResponse {
        let give_up = Instant::now() + PATIENCE;
        while Instant::now() < give_up {
            for id in self.executors.running() {
                let Ok(mut client) =
                    pb::order_executor_client::OrderExecutorClient::connect(url(self.executors.ports[&id])).await
                else {
                    continue;
                };
                let request = pb::OrderStatusRequest { order_id: order_id.into() };
                if let Ok(answer) = client.order_status(request).await {
                    let answer = answer.into_inner();
                    if matches!(answer.status.as_str(), "committed" | "aborted") {
                        return answer;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.give_up(&format!("order {order_id} not final"))
    }

    /// The payment ledger's record of `order_id`.
    pub async fn payment(&self, order_id: &str) -> pb::PaymentRecord {
        let give_up = Instant::now() + PATIENCE;
        while Instant::now() < give_up {
            if let Ok(mut client) = pb::payment_client::PaymentClient::connect(url(self.payment_port)).await {
                if let Ok(record) = client.get(pb::PaymentDecision { order_id: order_id.into() }).await {
                    return record.into_inner();
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.give_up(&format!("no payment record of {order_id}"))
    }

    /// Copies of `book_id` available as the books_db replicas have applied it,
    /// once all three answer and agree.
    pub async fn stock_everywhere(&self, book_id: &str) -> u32 {
        let give_up = Instant::now() + PATIENCE;
        while Instant::now() < give_up {
            let mut seen = Vec::new();
            for port in self.books_db.ports.values() {
                let Ok(mut client) = pb::books_db_client::BooksDbClient::connect(url(*port)).await else { break };
                let request = pb::StockRequest { book_ids: vec![book_id.into()], local: true };
                let Ok(answer) = client.stock(request).await else { break };
                seen.extend(answer.into_inner().books.first().map(|book| book.available));
            }
            if seen.len() == 3 && seen.iter().all(|copies| *copies == seen[0]) {
                return seen[0];
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.give_up(&format!("the books_db replicas did not agree on book {book_id}"))
    }
}
