//! The execution side as real processes of the `services` binary on loopback, with
//! `make run`'s defaults: order_queue, payment, books_db ×3 and order_executor ×3,
//! each serving its metrics on a port of its own.
//! Any process can be killed with SIGKILL (`kill -9`: no goodbye, no flushed
//! buffers), stopped with SIGSTOP (a hung process) and started again on its port
//! and data. The process tests and the fail-over benchmark use it; the binary's
//! path comes from the caller (`env!("CARGO_BIN_EXE_services")`, which Cargo sets
//! for tests and benches only).
//!
//! Every wait is [`probe::eventually`], bounded, and panics naming the folder with
//! the processes' logs.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use proto::v1 as pb;

use crate::probe::{self, eventually};
use platform::card_token::{FingerprintKey, DEVELOPMENT_KEY};

/// A temporary folder for processes' data and logs, kept (and its path printed)
/// when the test that owns it fails, so what happened can be read.
pub struct Workdir(Option<tempfile::TempDir>);

impl Workdir {
    pub fn new() -> Self {
        Self(Some(tempfile::tempdir().expect("a temporary folder")))
    }

    pub fn path(&self) -> &Path {
        self.0.as_ref().expect("the folder, until dropped").path()
    }
}

impl Default for Workdir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(dir) = self.0.take() {
                eprintln!("the processes' data and logs are kept in {}", dir.keep().display());
            }
        }
    }
}

/// One service process, which can be killed and started again with the same
/// arguments and environment, so on the same port and data. Killed when dropped.
pub struct Process {
    binary: PathBuf,
    args: Vec<String>,
    /// Set beside `RUST_LOG`; nothing else of the caller's environment is.
    env: Vec<(String, String)>,
    log: PathBuf,
    /// The cgroup v2 folder it runs in, if one of its own (see [`Process::in_cgroup`]).
    cgroup: Option<PathBuf>,
    child: Option<Child>,
}

impl Process {
    /// Starts `binary args`, its output appended to `<logs>/<name>.log`.
    pub fn start(binary: &Path, name: &str, args: Vec<String>, logs: &Path) -> Self {
        let mut process = Self::stopped(binary, name, args, logs);
        process.restart();
        process
    }

    /// The same process, not started yet ([`Process::restart`] starts it).
    pub fn stopped(binary: &Path, name: &str, args: Vec<String>, logs: &Path) -> Self {
        let log = logs.join(format!("{name}.log"));
        Self { binary: binary.to_owned(), args, env: Vec::new(), log, cgroup: None, child: None }
    }

    /// The process, whenever it starts, in the cgroup v2 folder `cgroup` (made if
    /// missing; needs root), from before its first instruction: a socket belongs to
    /// the cgroup its process was in when it made it, so a process moved later
    /// keeps its connections out of reach of iptables' cgroup match. A test can then
    /// cut it off (a partition) by that match.
    pub fn in_cgroup(mut self, cgroup: PathBuf) -> Self {
        self.cgroup = Some(cgroup);
        self
    }

    /// The cgroup it runs in, if one of its own.
    pub fn cgroup(&self) -> Option<&Path> {
        self.cgroup.as_deref()
    }

    /// The process with `env` set too, whenever it starts.
    pub fn with_env(mut self, env: &[(String, String)]) -> Self {
        self.env.extend_from_slice(env);
        self
    }

    /// Where its output goes.
    pub fn log(&self) -> &Path {
        &self.log
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The operating system's id of the running process.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the process again (after [`Process::kill`]).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "{} is running", self.log.display());
        let log = File::options().create(true).append(true).open(&self.log).expect("log file");
        let mut command = match &self.cgroup {
            Some(cgroup) => {
                std::fs::create_dir_all(cgroup).unwrap_or_else(|e| panic!("making {}: {e}", cgroup.display()));
                // The shell moves itself into the cgroup, then becomes the binary.
                let mut command = Command::new("sh");
                command.args(["-c", r#"echo $$ > "$0/cgroup.procs" && exec "$@""#]).arg(cgroup).arg(&self.binary);
                command
            }
            None => Command::new(&self.binary),
        };
        let child = command
            .args(&self.args)
            // Only what is set here: no RAFT_* from the caller's shell, and no .env
            // (the binary looks in its working directory and the parents: the log
            // folder's). The log filter is the binary's default unless FAILOVER_LOG
            // (e.g. `info,openraft=info`) names another.
            .current_dir(self.log.parent().expect("the log folder"))
            .env_clear()
            .env(
                "RUST_LOG",
                std::env::var("FAILOVER_LOG").unwrap_or_else(|_| platform::telemetry::DEFAULT_FILTER.to_owned()),
            )
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("starting {}: {error}", self.binary.display()));
        self.child = Some(child);
    }

    /// SIGSTOP (`pause`) or SIGCONT (`resume`): a process that hangs, holding
    /// its connections, and one that goes on.
    pub fn signal(&self, signal: Signal) {
        if let Some(pid) = self.pid() {
            let name = match signal {
                Signal::Pause => "-STOP",
                Signal::Resume => "-CONT",
            };
            let sent = Command::new("kill").args([name, &pid.to_string()]).status();
            assert!(sent.is_ok_and(|status| status.success()), "kill {name} {pid}");
        }
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
        // A paused process is killed all the same: SIGKILL needs no SIGCONT.
        self.kill();
        if let Some(cgroup) = &self.cgroup {
            let _ = std::fs::remove_dir(cgroup);
        }
    }
}

/// What [`Process::signal`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGSTOP.
    Pause,
    /// SIGCONT.
    Resume,
}

/// A `services` process: `services <args> --metrics-listen=<a free port>`, with
/// `env`; and its metrics port.
pub fn service_process(
    binary: &Path,
    name: &str,
    mut args: Vec<String>,
    dir: &Path,
    env: &[(String, String)],
) -> (Process, u16) {
    let metrics_port = free_port();
    args.push(format!("--metrics-listen=127.0.0.1:{metrics_port}"));
    (Process::stopped(binary, name, args, dir).with_env(env), metrics_port)
}

/// Where [`free_port`] looks: below the kernel's ephemeral range (32768 and
/// up by default), from which every outgoing connection takes its own port.
const PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A loopback port free at the time of asking, for a process to listen on. It
/// lies below the ephemeral range, so no connection the shop's processes open
/// takes it before the process it is meant for binds it (a port handed out by
/// the kernel for binding 0 could be), and it is handed out once in this test
/// process (the tests running at once never share one).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    // Each test process starts somewhere of its own in the range.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let span = PORTS.end - PORTS.start;
    let _ = NEXT.compare_exchange(
        0,
        (std::process::id() % u32::from(span)) as u16 + 1,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..span {
        let port = PORTS.start + NEXT.fetch_add(1, Ordering::Relaxed) % span;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {PORTS:?}")
}

pub fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// Three replicas of one Raft group, ids 1–3.
pub struct ReplicaGroup {
    pub ports: BTreeMap<u64, u16>,
    /// Where each replica serves its metrics.
    pub metrics_ports: BTreeMap<u64, u16>,
    replicas: BTreeMap<u64, Process>,
    logs: PathBuf,
}

impl ReplicaGroup {
    /// `services <subcommand> --id N --listen … --members … --data-dir <dir>/<subcommand>-N <extra>`.
    pub fn start(binary: &Path, subcommand: &str, dir: &Path, extra: &[String]) -> Self {
        let mut group = Self::stopped(binary, subcommand, dir, extra, &[]);
        group.start_all();
        group
    }

    /// The same group, no replica started yet ([`ReplicaGroup::start_all`] or
    /// [`ReplicaGroup::restart`] starts them), each replica with `env`.
    pub fn stopped(binary: &Path, subcommand: &str, dir: &Path, extra: &[String], env: &[(String, String)]) -> Self {
        let ports: BTreeMap<u64, u16> = (1..=3).map(|id| (id, free_port())).collect();
        let members = ports.iter().map(|(id, port)| format!("{id}=127.0.0.1:{port}")).collect::<Vec<_>>().join(",");
        let mut metrics_ports = BTreeMap::new();
        let mut replicas = BTreeMap::new();
        for (&id, port) in &ports {
            let name = format!("{subcommand}-{id}");
            let mut args = vec![
                subcommand.to_owned(),
                format!("--id={id}"),
                format!("--listen=127.0.0.1:{port}"),
                format!("--members={members}"),
                format!("--data-dir={}", dir.join(&name).display()),
            ];
            args.extend_from_slice(extra);
            let (process, metrics_port) = service_process(binary, &name, args, dir, env);
            replicas.insert(id, process);
            metrics_ports.insert(id, metrics_port);
        }
        Self { ports, metrics_ports, replicas, logs: dir.to_owned() }
    }

    /// Each replica, whenever it starts, in the cgroup `<prefix>-<name>` of its
    /// own ([`Process::in_cgroup`]).
    pub fn in_cgroups(mut self, prefix: &Path) -> Self {
        self.replicas = std::mem::take(&mut self.replicas)
            .into_iter()
            .map(|(id, process)| {
                let cgroup = in_prefix(prefix, &process);
                (id, process.in_cgroup(cgroup))
            })
            .collect();
        self
    }

    /// Replica `id`'s process.
    pub fn replica(&self, id: u64) -> &Process {
        &self.replicas[&id]
    }

    pub fn urls(&self) -> Vec<String> {
        self.ports.values().map(|port| url(*port)).collect()
    }

    pub fn running(&self) -> Vec<u64> {
        self.replicas.iter().filter(|(_, process)| process.is_running()).map(|(id, _)| *id).collect()
    }

    /// The operating system's ids of the running replicas.
    pub fn pids(&self) -> Vec<u32> {
        self.replicas.values().filter_map(Process::pid).collect()
    }

    pub fn kill(&mut self, id: u64) {
        self.replicas.get_mut(&id).expect("a replica of the group").kill();
    }

    pub fn restart(&mut self, id: u64) {
        self.replicas.get_mut(&id).expect("a replica of the group").restart();
    }

    /// Starts every replica that is not running.
    pub fn start_all(&mut self) {
        for process in self.replicas.values_mut().filter(|process| !process.is_running()) {
            process.restart();
        }
    }

    fn running_urls(&self) -> Vec<(u64, String)> {
        self.running().into_iter().map(|id| (id, url(self.ports[&id]))).collect()
    }

    /// The running replica that reports itself leader, once one does.
    pub async fn leader(&self) -> u64 {
        let what = format!("a leader (logs in {})", self.logs.display());
        eventually(what, Duration::from_millis(5), || probe::leader(self.running_urls())).await
    }

    /// Waits until all three replicas answer, name the same leader in the same term
    /// and have applied the same log.
    pub async fn caught_up(&self) {
        let what = format!("the replicas catching up (logs in {})", self.logs.display());
        eventually(what, Duration::from_millis(10), || async {
            let mut seen = Vec::new();
            for (_, url) in self.running_urls() {
                let metrics = probe::raft_metrics(&url).await?;
                let leader = metrics["current_leader"].as_u64()?;
                seen.push((leader, metrics["current_term"].clone(), metrics["last_applied"]["index"].clone()));
            }
            (seen.len() == 3 && seen.iter().all(|one| *one == seen[0])).then_some(())
        })
        .await
    }
}

/// How [`ExecutionSide::set_up`] starts the processes: arguments added to the
/// books database's and the executors' command lines (e.g. `--catalog=…`),
/// environment for every process (e.g. `OTEL_EXPORTER_OTLP_ENDPOINT`), and, to
/// partition them, a cgroup v2 folder prefix: each process then runs in
/// `<prefix>-<name>` ([`Process::in_cgroup`]).
#[derive(Debug, Clone, Default)]
pub struct Setup {
    pub books_db_args: Vec<String>,
    pub executor_args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cgroups: Option<PathBuf>,
}

/// `<prefix>-<name>`: the cgroup of the process named `name` (its log's name).
fn in_prefix(prefix: &Path, process: &Process) -> PathBuf {
    let name = process.log.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
    let mut folder = prefix.as_os_str().to_owned();
    folder.push(format!("-{name}"));
    PathBuf::from(folder)
}

/// The queue, payment, the books database and the executors, as processes.
pub struct ExecutionSide {
    pub queue: Process,
    pub payment: Process,
    pub books_db: ReplicaGroup,
    pub executors: ReplicaGroup,
    queue_port: u16,
    payment_port: u16,
    /// Where the queue and payment serve their metrics.
    queue_metrics: u16,
    payment_metrics: u16,
    /// The key the processes use when none is set: orders' card tokens match it.
    key: FingerprintKey,
    logs: PathBuf,
}

impl ExecutionSide {
    /// Starts every process, keeping data and logs under `dir`.
    pub fn start(binary: &Path, dir: &Path) -> Self {
        let mut side = Self::without_executors(binary, dir, &[], &[]);
        side.executors.start_all();
        side
    }

    /// Starts the queue, payment and the books database (with `books_db_args`
    /// added, e.g. `--catalog=…`); the executors (with `extra_executor_args` added) are
    /// set up but not started (`executors.start_all()` starts them), so orders can
    /// wait in the queue first.
    pub fn without_executors(
        binary: &Path,
        dir: &Path,
        books_db_args: &[String],
        extra_executor_args: &[String],
    ) -> Self {
        let setup = Setup {
            books_db_args: books_db_args.to_vec(),
            executor_args: extra_executor_args.to_vec(),
            ..Setup::default()
        };
        Self::set_up(binary, dir, &setup)
    }

    /// [`ExecutionSide::without_executors`], as `setup` says.
    pub fn set_up(binary: &Path, dir: &Path, setup: &Setup) -> Self {
        let queue_port = free_port();
        let payment_port = free_port();
        let service = |name: &str, port: u16| {
            let args = vec![
                name.replace('_', "-"),
                format!("--listen=127.0.0.1:{port}"),
                format!("--data-dir={}", dir.join(name).display()),
            ];
            let (mut process, metrics) = service_process(binary, name, args, dir, &setup.env);
            if let Some(prefix) = &setup.cgroups {
                let cgroup = in_prefix(prefix, &process);
                process = process.in_cgroup(cgroup);
            }
            process.restart();
            (process, metrics)
        };
        let (queue, queue_metrics) = service("order_queue", queue_port);
        let (payment, payment_metrics) = service("payment", payment_port);
        let mut books_db = ReplicaGroup::stopped(binary, "books-db", dir, &setup.books_db_args, &setup.env);
        let mut executor_args = vec![
            format!("--queue-url={}", url(queue_port)),
            format!("--payment-url={}", url(payment_port)),
            format!("--books-db={}", books_db.urls().join(",")),
        ];
        executor_args.extend_from_slice(&setup.executor_args);
        let mut executors = ReplicaGroup::stopped(binary, "order-executor", dir, &executor_args, &setup.env);
        if let Some(prefix) = &setup.cgroups {
            books_db = books_db.in_cgroups(prefix);
            executors = executors.in_cgroups(prefix);
        }
        books_db.start_all();
        Self {
            queue,
            payment,
            books_db,
            executors,
            queue_port,
            payment_port,
            queue_metrics,
            payment_metrics,
            key: FingerprintKey::new(DEVELOPMENT_KEY),
            logs: dir.to_owned(),
        }
    }

    /// Every process's name (as traces name it) and the URL of its metrics.
    pub fn metrics_urls(&self) -> Vec<(String, String)> {
        let mut urls = vec![
            ("order_queue".to_owned(), url(self.queue_metrics)),
            ("payment".to_owned(), url(self.payment_metrics)),
        ];
        for (group, replicas) in [("books_db", &self.books_db), ("order_executor", &self.executors)] {
            urls.extend(replicas.metrics_ports.iter().map(|(id, port)| (format!("{group}-{id}"), url(*port))));
        }
        urls
    }

    pub fn payment_url(&self) -> String {
        url(self.payment_port)
    }

    /// The operating system's ids of every running process.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = [&self.queue, &self.payment].into_iter().filter_map(Process::pid).collect();
        pids.extend(self.books_db.pids());
        pids.extend(self.executors.pids());
        pids
    }

    pub fn queue_url(&self) -> String {
        url(self.queue_port)
    }

    /// The key the processes fingerprint cards with.
    pub fn key(&self) -> &FingerprintKey {
        &self.key
    }

    fn waiting_for(&self, what: &str) -> String {
        format!("{what} (logs in {})", self.logs.display())
    }

    /// Enqueues an order for `lines` (book id, copies) paid with `card`, at a
    /// nominal 10.99 a copy, retrying while the queue is down.
    pub async fn enqueue(&self, order_id: &str, card: &str, lines: &[(&str, u32)]) {
        let order = probe::queued_order(&self.key, order_id, card, lines, domain::ClientCard::None);
        let queue = url(self.queue_port);
        let what = self.waiting_for(&format!("order {order_id} enqueued"));
        eventually(what, Duration::from_millis(20), || probe::enqueue(&queue, &order)).await
    }

    /// Waits until a running executor reports `order_id` committed or aborted.
    pub async fn final_status(&self, order_id: &str) -> pb::OrderStatusResponse {
        let executors: Vec<String> = self.executors.running_urls().into_iter().map(|(_, url)| url).collect();
        let what = self.waiting_for(&format!("order {order_id} final"));
        eventually(what, Duration::from_millis(5), || probe::final_status(&executors, order_id)).await
    }

    /// The payment ledger's record of `order_id`.
    pub async fn payment(&self, order_id: &str) -> pb::PaymentRecord {
        let payment = url(self.payment_port);
        let what = self.waiting_for(&format!("the payment record of {order_id}"));
        eventually(what, Duration::from_millis(20), || probe::payment(&payment, order_id)).await
    }

    /// Copies of `book_id` available as the books_db replicas have applied it,
    /// once all three answer and agree.
    pub async fn stock_everywhere(&self, book_id: &str) -> u32 {
        let replicas = self.books_db.urls();
        let what = self.waiting_for(&format!("the books_db replicas agreeing on book {book_id}"));
        eventually(what, Duration::from_millis(20), || probe::agreed_stock(&replicas, book_id)).await
    }
}
