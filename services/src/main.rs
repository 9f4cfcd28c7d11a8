//! `services`: one binary for every gRPC service of the bookstore, chosen by
//! subcommand, so the services build and link once. Each flag also reads an
//! environment variable (listed by `services <name> --help` and in `.env.example`);
//! a `.env` file in the working directory (or the nearest parent with one) is
//! loaded first, without overriding variables already set.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use domain::{Catalog, Money};
use platform::card_token::{FingerprintKey, DEVELOPMENT_KEY};
use platform::metrics::{ProcessMetrics, Registry};
use platform::ports;
use platform::{grpc, telemetry};
use services::fraud_detection::FraudConfig;
use services::order_executor::replica::{self, ExecutorConfig};
use services::order_queue::QueueConfig;
use services::transaction_verification::stock;
use services::{
    books_db, fraud_detection, health_check, order_queue, payment, retention, suggestions, transaction_verification,
};
use tokio::net::TcpListener;

/// mimalloc rather than glibc's malloc: a service allocates and frees a few small
/// buffers for every message (HTTP/2 frames, protobuf, JSON, redb pages), and
/// glibc's allocator was about a seventh of an executor's CPU under load
/// (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "services", about = "The bookstore's gRPC services", version, after_help = telemetry::HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Serve(Service),
    /// Asks one running service whether it is healthy: exit status 0 if it is (the
    /// containers' healthcheck; no tool but this binary needed).
    Health(HealthProbe),
    /// Prints the port map of a run on one machine as shell assignments
    /// (`scripts/run-local.sh` reads it).
    Ports,
    /// Prints a Prometheus configuration that scrapes every process of a run on
    /// one machine (`make observe` gives it to Debian's Prometheus).
    PrometheusConfig {
        /// How often to scrape, in seconds.
        #[arg(long, default_value_t = 5)]
        interval_s: u32,
    },
}

#[derive(Subcommand)]
enum Service {
    /// Checks books, stock, the shopper's details and the card format (events a, b, c).
    TransactionVerification {
        #[arg(long, env = "TRANSACTION_VERIFICATION_ADDR", default_value_t = ports::loopback(ports::TRANSACTION_VERIFICATION))]
        listen: SocketAddr,
        /// Where to serve Prometheus metrics (`GET /metrics`).
        #[arg(long, env = "TRANSACTION_VERIFICATION_METRICS_ADDR", default_value_t = ports::loopback(ports::metrics::TRANSACTION_VERIFICATION))]
        metrics_listen: SocketAddr,
        #[command(flatten)]
        catalog: CatalogArg,
        /// The books_db replicas to read stock from, comma-separated; without
        /// them, stock is the catalog's (a standalone mode for development).
        #[arg(long, env = "BOOKS_DB_URLS", value_delimiter = ',')]
        books_db: Vec<String>,
    },
    /// Looks for fraud: blocklists, order velocity, amount ceiling (events d, e).
    FraudDetection {
        #[arg(long, env = "FRAUD_DETECTION_ADDR", default_value_t = ports::loopback(ports::FRAUD_DETECTION))]
        listen: SocketAddr,
        /// Where to serve Prometheus metrics (`GET /metrics`).
        #[arg(long, env = "FRAUD_DETECTION_METRICS_ADDR", default_value_t = ports::loopback(ports::metrics::FRAUD_DETECTION))]
        metrics_listen: SocketAddr,
        #[command(flatten)]
        catalog: CatalogArg,
        /// Blocked full names, comma-separated (default: the seed's list).
        #[arg(long, env = "FRAUD_BLOCKED_NAMES", value_delimiter = ',')]
        blocked_names: Option<Vec<String>>,
        /// Blocked email addresses, comma-separated.
        #[arg(long, env = "FRAUD_BLOCKED_EMAILS", value_delimiter = ',')]
        blocked_emails: Option<Vec<String>>,
        /// Blocked card numbers, comma-separated.
        #[arg(long, env = "FRAUD_BLOCKED_CARDS", value_delimiter = ',')]
        blocked_cards: Option<Vec<String>>,
        /// Blocked CVVs, comma-separated.
        #[arg(long, env = "FRAUD_BLOCKED_CVVS", value_delimiter = ',')]
        blocked_cvvs: Option<Vec<String>>,
        /// Orders allowed per buyer and per card within the window.
        #[arg(long, env = "FRAUD_VELOCITY_LIMIT", default_value_t = 5)]
        velocity_limit: u32,
        #[arg(long, env = "FRAUD_VELOCITY_WINDOW_SECS", default_value_t = 60)]
        velocity_window_secs: u64,
        /// Orders above this total (in cents) are refused.
        #[arg(long, env = "FRAUD_AMOUNT_CEILING_CENTS", default_value_t = 150_000)]
        amount_ceiling_cents: u64,
    },
    /// Suggests books to go with an order (event f).
    Suggestions {
        #[arg(long, env = "SUGGESTIONS_ADDR", default_value_t = ports::loopback(ports::SUGGESTIONS))]
        listen: SocketAddr,
        /// Where to serve Prometheus metrics (`GET /metrics`).
        #[arg(long, env = "SUGGESTIONS_METRICS_ADDR", default_value_t = ports::loopback(ports::metrics::SUGGESTIONS))]
        metrics_listen: SocketAddr,
        #[command(flatten)]
        catalog: CatalogArg,
        /// How many books to suggest.
        #[arg(long, env = "SUGGESTIONS_COUNT", default_value_t = suggestions::DEFAULT_COUNT)]
        count: usize,
    },
    /// The durable priority queue of approved orders.
    OrderQueue {
        #[arg(long, env = "ORDER_QUEUE_ADDR", default_value_t = ports::loopback(ports::ORDER_QUEUE))]
        listen: SocketAddr,
        /// Where to serve Prometheus metrics (`GET /metrics`).
        #[arg(long, env = "ORDER_QUEUE_METRICS_ADDR", default_value_t = ports::loopback(ports::metrics::ORDER_QUEUE))]
        metrics_listen: SocketAddr,
        /// Where the queue keeps its database.
        #[arg(long, env = "ORDER_QUEUE_DATA_DIR", default_value = ".data/order_queue")]
        data_dir: PathBuf,
        /// Lease given to a consumer that asks for none, in milliseconds.
        #[arg(long, env = "ORDER_QUEUE_LEASE_MS", default_value_t = 30_000)]
        lease_ms: u64,
        /// How long the queue remembers an acknowledged or withdrawn order id (so a
        /// late duplicate enqueue adds nothing), in seconds (default a day).
        #[arg(long, env = "ORDER_RETENTION_SECS", default_value_t = retention::DEFAULT.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..))]
        retention_secs: u64,
    },
    /// One replica of the books database (stock; Raft-replicated; 2PC participant).
    BooksDb {
        /// This replica's id in the group.
        #[arg(long, env = "BOOKS_DB_ID")]
        id: u64,
        #[arg(long, env = "BOOKS_DB_ADDR")]
        listen: SocketAddr,
        /// Where to serve Prometheus metrics (`GET /metrics`; none if unset).
        #[arg(long, env = "BOOKS_DB_METRICS_ADDR")]
        metrics_listen: Option<SocketAddr>,
        /// Every replica of the group as id=host:port, comma-separated (the same list
        /// on every replica).
        #[arg(long, env = "BOOKS_DB_MEMBERS", value_delimiter = ',', value_parser = parse_member)]
        members: Vec<(u64, String)>,
        /// Where this replica keeps its log and snapshots (default .data/books_db/<id>).
        #[arg(long, env = "BOOKS_DB_DATA_DIR")]
        data_dir: Option<PathBuf>,
        #[command(flatten)]
        catalog: CatalogArg,
        #[command(flatten)]
        raft: RaftArgs,
        /// How long a decision is remembered, in seconds: one to two of these
        /// (default a day).
        #[arg(long, env = "ORDER_RETENTION_SECS", default_value_t = retention::DEFAULT.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..))]
        retention_secs: u64,
    },
    /// One replica of the order executors (Raft-replicated; the leader runs 2PC).
    OrderExecutor {
        #[arg(long, env = "ORDER_EXECUTOR_ID")]
        id: u64,
        #[arg(long, env = "ORDER_EXECUTOR_ADDR")]
        listen: SocketAddr,
        /// Where to serve Prometheus metrics (`GET /metrics`; none if unset).
        #[arg(long, env = "ORDER_EXECUTOR_METRICS_ADDR")]
        metrics_listen: Option<SocketAddr>,
        /// Every replica of the group as id=host:port, comma-separated.
        #[arg(long, env = "ORDER_EXECUTOR_MEMBERS", value_delimiter = ',', value_parser = parse_member)]
        members: Vec<(u64, String)>,
        /// Where this replica keeps its log and snapshots (default .data/order_executor/<id>).
        #[arg(long, env = "ORDER_EXECUTOR_DATA_DIR")]
        data_dir: Option<PathBuf>,
        #[arg(long, env = "ORDER_QUEUE_URL", default_value_t = ports::local_url(ports::ORDER_QUEUE))]
        queue_url: String,
        #[arg(long, env = "PAYMENT_URL", default_value_t = ports::local_url(ports::PAYMENT))]
        payment_url: String,
        #[arg(long, env = "BOOKS_DB_URLS", value_delimiter = ',', required = true)]
        books_db: Vec<String>,
        #[command(flatten)]
        raft: RaftArgs,
        /// The ceiling of the long-poll wait on an idle queue, and of the sleep
        /// before asking an unreachable one again.
        #[arg(long, env = "ORDER_EXECUTOR_BACKOFF_CEILING_MS", default_value_t = 5000)]
        backoff_ceiling_ms: u64,
        /// The most orders the leader runs through two-phase commit at once.
        #[arg(long, env = "ORDER_EXECUTOR_WINDOW", default_value_t = replica::DEFAULT_WINDOW as u32,
              value_parser = clap::value_parser!(u32).range(1..=4096))]
        window: u32,
        /// After taking fewer orders than it asked for, how long the leader waits
        /// before asking the queue again, so orders arriving a few apart share Raft
        /// entries (adds at most this to an order's execution; 0: no wait).
        #[arg(long, env = "ORDER_EXECUTOR_GATHER_MS", default_value_t = replica::DEFAULT_GATHER.as_millis() as u64,
              value_parser = clap::value_parser!(u64).range(0..=1000))]
        gather_ms: u64,
        /// How long a finished order is kept (its page shows it) before the group
        /// forgets it, in seconds (default a day).
        #[arg(long, env = "ORDER_RETENTION_SECS", default_value_t = retention::DEFAULT.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..))]
        retention_secs: u64,
    },
    /// Authorizes, captures and voids payments (two-phase commit participant).
    Payment {
        #[arg(long, env = "PAYMENT_ADDR", default_value_t = ports::loopback(ports::PAYMENT))]
        listen: SocketAddr,
        /// Where to serve Prometheus metrics (`GET /metrics`).
        #[arg(long, env = "PAYMENT_METRICS_ADDR", default_value_t = ports::loopback(ports::metrics::PAYMENT))]
        metrics_listen: SocketAddr,
        /// Where the payment ledger lives.
        #[arg(long, env = "PAYMENT_DATA_DIR", default_value = ".data/payment")]
        data_dir: PathBuf,
        /// The key card fingerprints are made with (the web server's): payment
        /// recognises its declining test cards by fingerprint.
        #[arg(long, env = "CARD_FINGERPRINT_KEY", hide_env_values = true)]
        card_fingerprint_key: Option<String>,
        /// How long a final payment (captured, voided, declined) is kept before the
        /// ledger forgets it, in seconds (default a day).
        #[arg(long, env = "ORDER_RETENTION_SECS", default_value_t = retention::DEFAULT.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..))]
        retention_secs: u64,
    },
}

#[derive(clap::Args)]
struct HealthProbe {
    /// A gRPC service's host:port, asked through the standard health service.
    #[arg(long, required_unless_present = "http", conflicts_with = "http")]
    addr: Option<String>,
    /// The gRPC service to ask about (default: the whole server).
    #[arg(long, default_value = "", requires = "addr")]
    service: String,
    /// The web server's host:port instead, asked for GET /healthz.
    #[arg(long, value_name = "ADDR")]
    http: Option<String>,
    /// How long to wait for the answer, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
}

impl HealthProbe {
    async fn run(&self) -> anyhow::Result<()> {
        let timeout = Duration::from_millis(self.timeout_ms);
        match (&self.addr, &self.http) {
            (Some(addr), _) => Ok(health_check::grpc(addr, &self.service, timeout).await?),
            (None, Some(http)) => Ok(health_check::http(http, "/healthz", timeout).await?),
            (None, None) => anyhow::bail!("give --addr (a gRPC service) or --http (the web server)"),
        }
    }
}

/// Raft timing, the same flags for both replicated groups.
#[derive(clap::Args)]
struct RaftArgs {
    /// Raft heartbeat interval in milliseconds (default 50; openraft sends one on
    /// its tick of 1.5 × this, so every 75 ms).
    #[arg(long, env = "RAFT_HEARTBEAT_MS")]
    heartbeat_ms: Option<u64>,
    /// Raft election timeouts are drawn from min..max milliseconds (default
    /// 150..360). A follower stands after max plus that much silence, seen on the
    /// next tick: 510–795 ms.
    #[arg(long, env = "RAFT_ELECTION_MIN_MS")]
    election_min_ms: Option<u64>,
    #[arg(long, env = "RAFT_ELECTION_MAX_MS")]
    election_max_ms: Option<u64>,
    /// Stand for election only once a majority would vote for this replica
    /// (pre-vote; default true). `false` restores openraft's own timer, which lets
    /// a replica that was cut off depose a healthy leader: only to measure that.
    #[arg(long, env = "RAFT_PRE_VOTE")]
    pre_vote: Option<bool>,
}

impl RaftArgs {
    fn apply(&self, config: &mut consensus::Config) {
        let millis = |flag: Option<u64>, default: Duration| flag.map_or(default, Duration::from_millis);
        config.heartbeat_interval = millis(self.heartbeat_ms, config.heartbeat_interval);
        config.election_timeout_min = millis(self.election_min_ms, config.election_timeout_min);
        config.election_timeout_max = millis(self.election_max_ms, config.election_timeout_max);
        config.pre_vote = self.pre_vote.unwrap_or(config.pre_vote);
    }
}

#[derive(clap::Args)]
struct CatalogArg {
    /// A catalog JSON file (default: the catalog built in, data/books.json).
    #[arg(long = "catalog", env = "CATALOG_FILE")]
    path: Option<PathBuf>,
}

impl CatalogArg {
    fn load(&self) -> anyhow::Result<Arc<Catalog>> {
        Ok(Arc::new(match &self.path {
            None => Catalog::embedded(),
            Some(path) => {
                let json = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                Catalog::from_json(&json).with_context(|| format!("loading {}", path.display()))?
            }
        }))
    }
}

impl Service {
    /// The process as traces name it (`service.name`): the service, and a
    /// replica's id (`books_db-2`).
    fn process_name(&self) -> String {
        match self {
            Self::TransactionVerification { .. } => "transaction_verification".to_owned(),
            Self::FraudDetection { .. } => "fraud_detection".to_owned(),
            Self::Suggestions { .. } => "suggestions".to_owned(),
            Self::OrderQueue { .. } => "order_queue".to_owned(),
            Self::Payment { .. } => "payment".to_owned(),
            Self::BooksDb { id, .. } => format!("books_db-{id}"),
            Self::OrderExecutor { id, .. } => format!("order_executor-{id}"),
        }
    }

    /// Where the process serves its metrics.
    fn metrics_listen(&self) -> Option<SocketAddr> {
        match self {
            Self::TransactionVerification { metrics_listen, .. }
            | Self::FraudDetection { metrics_listen, .. }
            | Self::Suggestions { metrics_listen, .. }
            | Self::OrderQueue { metrics_listen, .. }
            | Self::Payment { metrics_listen, .. } => Some(*metrics_listen),
            Self::BooksDb { metrics_listen, .. } | Self::OrderExecutor { metrics_listen, .. } => *metrics_listen,
        }
    }
}

/// This process's metrics registry, with its own health and the trace
/// exporter's counts, served on `listen` (if given) until the process stops.
async fn serve_metrics(
    listen: Option<SocketAddr>,
    telemetry: &telemetry::Telemetry,
    name: &str,
) -> anyhow::Result<Registry> {
    let registry = Registry::for_process(name);
    registry.register_collector(ProcessMetrics::new());
    if let Some(exports) = telemetry.export_metrics() {
        exports.register(&registry);
    }
    match listen {
        Some(addr) => {
            let listener = bind(addr, &format!("{name} metrics")).await?;
            tokio::spawn(platform::metrics::serve(listener, registry.clone(), grpc::shutdown_signal()));
        }
        None => tracing::warn!("no metrics address is set: this replica serves no /metrics"),
    }
    Ok(registry)
}

/// `2=127.0.0.1:50062`
fn parse_member(text: &str) -> Result<(u64, String), String> {
    let (id, addr) = text.split_once('=').ok_or_else(|| format!("{text:?} is not id=host:port"))?;
    let id = id.trim().parse().map_err(|_| format!("{id:?} is not a replica id"))?;
    Ok((id, addr.trim().to_owned()))
}

async fn bind(addr: SocketAddr, name: &str) -> anyhow::Result<TcpListener> {
    // The shop's ports lie in Linux's ephemeral range, so for a while one may be
    // the local end of some other program's connection: give the port time to
    // come free before giving up.
    let give_up = tokio::time::Instant::now() + BIND_PATIENCE;
    let mut warned = false;
    let listener = loop {
        match TcpListener::bind(addr).await {
            Err(error) if error.kind() == std::io::ErrorKind::AddrInUse && tokio::time::Instant::now() < give_up => {
                if !std::mem::replace(&mut warned, true) {
                    tracing::warn!(service = name, %addr, "the port is in use; trying again for {BIND_PATIENCE:?}");
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            bound => break bound.with_context(|| format!("{name} cannot listen on {addr}"))?,
        }
    };
    tracing::info!(service = name, addr = %listener.local_addr()?, "listening");
    Ok(listener)
}

/// How long a service waits for its port to come free before it gives up: the
/// kernel keeps a killed process's half-closed connections up to a minute
/// (`tcp_fin_timeout`), and one of them may hold the port.
const BIND_PATIENCE: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = dotenvy::dotenv();
    // Every subcommand's --help lists what logging and tracing read, too.
    let command = Cli::command().mut_subcommands(|subcommand| subcommand.after_help(telemetry::HELP));
    let cli = Cli::from_arg_matches(&command.get_matches())?;
    let service = match cli.command {
        // A container's healthcheck: it answers by its exit status and says why
        // on stderr; it logs and exports nothing (an absent collector must not
        // slow it).
        Command::Health(probe) => return probe.run().await,
        Command::Ports => {
            print!("{}", ports::as_shell());
            return Ok(());
        }
        Command::PrometheusConfig { interval_s } => {
            print!("{}", platform::metrics::scrape_config(interval_s, &ports::metrics_targets()));
            return Ok(());
        }
        Command::Serve(service) => service,
    };
    let name = service.process_name();
    let telemetry = telemetry::init(&name)?;
    let metrics = serve_metrics(service.metrics_listen(), &telemetry, &name).await?;
    let shutdown = grpc::shutdown_signal();
    match service {
        Service::TransactionVerification { listen, catalog, books_db, .. } => {
            let catalog = catalog.load()?;
            if books_db.is_empty() {
                tracing::warn!("BOOKS_DB_URLS is not set: stock comes from the catalog, not the books database");
            }
            let stock = stock::source(&catalog, &books_db)?;
            let listener = bind(listen, "transaction_verification").await?;
            transaction_verification::serve(listener, catalog, stock, &metrics, shutdown).await?;
        }
        Service::FraudDetection {
            listen,
            catalog,
            blocked_names,
            blocked_emails,
            blocked_cards,
            blocked_cvvs,
            velocity_limit,
            velocity_window_secs,
            amount_ceiling_cents,
            ..
        } => {
            let defaults = FraudConfig::default();
            let config = FraudConfig {
                blocked_names: blocked_names.unwrap_or(defaults.blocked_names),
                blocked_emails: blocked_emails.unwrap_or(defaults.blocked_emails),
                blocked_cards: blocked_cards.unwrap_or(defaults.blocked_cards),
                blocked_cvvs: blocked_cvvs.unwrap_or(defaults.blocked_cvvs),
                velocity_limit,
                velocity_window: Duration::from_secs(velocity_window_secs),
                amount_ceiling: Money::from_cents(amount_ceiling_cents),
            };
            let listener = bind(listen, "fraud_detection").await?;
            fraud_detection::serve(listener, catalog.load()?, config, &metrics, shutdown).await?;
        }
        Service::Suggestions { listen, catalog, count, .. } => {
            suggestions::serve(bind(listen, "suggestions").await?, catalog.load()?, count, &metrics, shutdown).await?;
        }
        Service::OrderQueue { listen, data_dir, lease_ms, retention_secs, .. } => {
            let store = order_queue::open(&data_dir.join("queue.redb"))
                .with_context(|| format!("opening the queue in {}", data_dir.display()))?;
            let config = QueueConfig {
                default_lease: Duration::from_millis(lease_ms),
                retention: Duration::from_secs(retention_secs),
                ..QueueConfig::default()
            };
            order_queue::serve(bind(listen, "order_queue").await?, store, config, &metrics, shutdown).await?;
        }
        Service::BooksDb { id, listen, members, data_dir, catalog, raft, retention_secs, .. } => {
            let data_dir = data_dir.unwrap_or_else(|| PathBuf::from(format!(".data/books_db/{id}")));
            let listener = bind(listen, "books_db").await?;
            let members = members.into_iter().collect();
            let mut config = books_db::raft_config();
            raft.apply(&mut config);
            let retention = Duration::from_secs(retention_secs);
            books_db::start(id, listener, members, &data_dir, catalog.load()?, &config, retention, &metrics, shutdown)
                .await?;
        }
        Service::OrderExecutor {
            id,
            listen,
            members,
            data_dir,
            queue_url,
            payment_url,
            books_db,
            raft,
            backoff_ceiling_ms,
            window,
            gather_ms,
            retention_secs,
            ..
        } => {
            let data_dir = data_dir.unwrap_or_else(|| PathBuf::from(format!(".data/order_executor/{id}")));
            let mut config = ExecutorConfig::new(queue_url, payment_url, books_db);
            raft.apply(&mut config.raft);
            config.backoff.ceiling = Duration::from_millis(backoff_ceiling_ms);
            config.window = window as usize;
            config.gather = Duration::from_millis(gather_ms);
            config.retention = Duration::from_secs(retention_secs);
            config.prune_every = retention::sweep_every(config.retention);
            let listener = bind(listen, "order_executor").await?;
            replica::start(id, listener, members.into_iter().collect(), &data_dir, config, &metrics, shutdown).await?;
        }
        Service::Payment { listen, data_dir, card_fingerprint_key, retention_secs, .. } => {
            let ledger = payment::open(&data_dir.join("payments.redb"))
                .with_context(|| format!("opening the payment ledger in {}", data_dir.display()))?;
            let key = FingerprintKey::new(card_fingerprint_key.as_deref().unwrap_or(DEVELOPMENT_KEY));
            let retention = Duration::from_secs(retention_secs);
            payment::serve(bind(listen, "payment").await?, ledger, &key, retention, &metrics, shutdown).await?;
        }
    }
    tracing::info!("stopped");
    drop(telemetry);
    Ok(())
}
