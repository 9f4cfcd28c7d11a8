//! The web server's configuration, in one place: defaults, then a `.env` file,
//! then the environment, then flags (`server --help` lists them all).

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser};
use platform::ports;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "server",
    about = "The bookstore's web server: checkout page, server functions, REST API",
    version,
    after_help = platform::telemetry::HELP
)]
pub struct Config {
    /// Address to serve the page and the API on.
    #[arg(long, env = "LEPTOS_SITE_ADDR", default_value_t = ports::loopback(ports::WEB))]
    pub listen: SocketAddr,
    /// Folder holding the built page assets (pkg/, favicon), as cargo-leptos writes it.
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: String,
    #[command(flatten)]
    pub services: ServiceUrls,
    /// Deadline for each call to a service, in milliseconds.
    #[arg(long, env = "CALL_TIMEOUT_MS", default_value_t = 800)]
    pub call_timeout_ms: u64,
    /// The most checkouts in progress at once; one more is refused at once (503
    /// `busy`, with `Retry-After`), so the rest stay fast beyond capacity.
    #[arg(long, env = "CHECKOUT_CONCURRENCY", default_value_t = DEFAULT_CHECKOUT_CONCURRENCY)]
    pub checkout_concurrency: usize,
    /// The mean latency of approved checkouts, in milliseconds, above which fewer
    /// are admitted at once while many run (down to a thirty-second of
    /// `CHECKOUT_CONCURRENCY`); 0 keeps the limit fixed.
    #[arg(long, env = "CHECKOUT_LATENCY_TARGET_MS", default_value_t = DEFAULT_CHECKOUT_LATENCY_TARGET_MS)]
    pub checkout_latency_target_ms: u64,
    /// Secret key for card fingerprints and the seal on result links (HMAC-SHA256).
    /// Set it outside development.
    #[arg(long, env = "CARD_FINGERPRINT_KEY", hide_env_values = true)]
    pub card_fingerprint_key: Option<String>,
    /// Origins allowed to call the API from a browser (e.g. the Trunk build's),
    /// comma-separated.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub cors_allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ServiceUrls {
    #[arg(long, env = "TRANSACTION_VERIFICATION_URL", default_value_t = ports::local_url(ports::TRANSACTION_VERIFICATION))]
    pub transaction_verification: String,
    #[arg(long, env = "FRAUD_DETECTION_URL", default_value_t = ports::local_url(ports::FRAUD_DETECTION))]
    pub fraud_detection: String,
    #[arg(long, env = "SUGGESTIONS_URL", default_value_t = ports::local_url(ports::SUGGESTIONS))]
    pub suggestions: String,
    #[arg(long, env = "ORDER_QUEUE_URL", default_value_t = ports::local_url(ports::ORDER_QUEUE))]
    pub order_queue: String,
    /// The order executor replicas (order status, cluster status), comma-separated.
    #[arg(
        long,
        env = "ORDER_EXECUTOR_URLS",
        value_delimiter = ',',
        default_values_t = ports::local_urls(&ports::ORDER_EXECUTOR)
    )]
    pub order_executors: Vec<String>,
    /// The books_db replicas (cluster status), comma-separated.
    #[arg(
        long = "books-db",
        env = "BOOKS_DB_URLS",
        value_delimiter = ',',
        default_values_t = ports::local_urls(&ports::BOOKS_DB)
    )]
    pub books_db: Vec<String>,
}

/// [`Config::checkout_concurrency`]'s default: enough checkouts in progress at
/// once to keep this machine's two cores busy (the throughput of 64 closed-loop
/// shoppers is within a few percent of 128's), few enough that each stays fast
/// (docs/benchmarks.md, "Overload").
pub const DEFAULT_CHECKOUT_CONCURRENCY: usize = 64;

/// [`Config::checkout_latency_target_ms`]'s default: a little above the mean of an
/// approved checkout at ordinary load on the two cores the shop was measured on
/// (6 ms; the median is 5–7 ms, the p99 16–20 ms; docs/benchmarks.md,
/// "Overload"). Beyond capacity the limit settles where the mean is about this. A
/// slower machine wants more: at ordinary load the mean must stay under it, or a
/// limit lowered by an overload does not grow back.
pub const DEFAULT_CHECKOUT_LATENCY_TARGET_MS: u64 = 8;

impl Config {
    /// A configuration for `listen` and `services` with every other setting at its
    /// default, ignoring the environment (tests use this).
    pub fn new(listen: SocketAddr, services: ServiceUrls) -> Self {
        Self {
            listen,
            site_root: "target/site".to_owned(),
            services,
            call_timeout_ms: 800,
            checkout_concurrency: DEFAULT_CHECKOUT_CONCURRENCY,
            checkout_latency_target_ms: DEFAULT_CHECKOUT_LATENCY_TARGET_MS,
            card_fingerprint_key: None,
            cors_allowed_origins: Vec::new(),
        }
    }

    /// How many checkouts run at once (`orchestrator::admission`).
    pub fn checkout_limits(&self) -> crate::orchestrator::Limits {
        let target =
            (self.checkout_latency_target_ms > 0).then(|| Duration::from_millis(self.checkout_latency_target_ms));
        crate::orchestrator::Limits::adaptive(self.checkout_concurrency, target)
    }

    pub fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.call_timeout_ms)
    }
}
