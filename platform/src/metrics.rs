//! Prometheus metrics: each process (each service, in tests several in one
//! process) keeps its own [`Registry`], filled as its parts start, and serves it
//! as OpenMetrics text on `GET /metrics` ([`router`]: the gRPC services on a
//! metrics port of their own, the web server on its own port), or as
//! Prometheus's classic text format (0.0.4) to a client that does not ask for
//! OpenMetrics (curl, `promtool check metrics`).
//!
//! Names follow Prometheus's conventions (base units, `_seconds`, `_total`);
//! labels are bounded sets (a method, a status, a step; never an order id or
//! anything of a shopper's). Every metric of a process carries its name as the
//! `process` label (`books_db-2`, as its traces name it), so dashboards tell the
//! processes apart however Prometheus finds them (a static list, Kubernetes). Latency histograms keep the trace id of an
//! observation as an exemplar ([`observe`]), so a dashboard can open the trace
//! of a slow request.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::registry::{Metric, Unit};

use crate::telemetry::context::trace_id;

/// What a scrape that asks for it gets: OpenMetrics text (it carries the
/// exemplars). Prometheus asks for it.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How metrics are written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    /// Prometheus's text format 0.0.4: no exemplars.
    PrometheusText,
}

impl Format {
    /// What a request's `Accept` header asks for.
    pub fn accepted(accept: &str) -> Self {
        if accept.contains("application/openmetrics-text") {
            Self::OpenMetrics
        } else {
            Self::PrometheusText
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::OpenMetrics => OPENMETRICS,
            Self::PrometheusText => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        }
    }
}

/// Latency buckets in seconds, from a fraction of a millisecond (a cached
/// answer on loopback) to the deadlines and long polls (seconds).
pub const LATENCY_BUCKETS: [f64; 16] =
    [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0];

/// One process's metrics. Clones share the registry. The default has no
/// `process` label (tests' services, never scraped).
#[derive(Clone, Default)]
pub struct Registry(Arc<Mutex<prometheus_client::registry::Registry>>);

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Registry")
    }
}

impl Registry {
    /// The registry of the process named `process` (its `process` label).
    pub fn for_process(process: &str) -> Self {
        let label = (Cow::Borrowed("process"), Cow::Owned(process.to_owned()));
        Self(Arc::new(Mutex::new(prometheus_client::registry::Registry::with_labels(std::iter::once(label)))))
    }

    fn with<R>(&self, f: impl FnOnce(&mut prometheus_client::registry::Registry) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Adds `metric` as `name` (a counter's `_total` is added by the encoder).
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.with(|registry| registry.register(name, help, metric));
    }

    /// Adds a metric measured in seconds as `<name>_seconds`.
    pub fn register_seconds(&self, name: &str, help: &str, metric: impl Metric) {
        self.with(|registry| registry.register_with_unit(name, help, Unit::Seconds, metric));
    }

    /// Adds metrics read when scraped (a Raft replica's state, the queue's depth).
    pub fn register_collector(&self, collector: impl Collector) {
        self.with(|registry| registry.register_collector(Box::new(collector)));
    }

    /// Every metric, written out in `format`.
    pub fn encode(&self, format: Format) -> String {
        let mut text = String::new();
        // Writing to a String does not fail, nor does encoding our own metrics.
        let _ = self.with(|registry| match format {
            Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut text, registry),
            Format::PrometheusText => prometheus_client::encoding::prometheus_text::encode(&mut text, registry),
        });
        text
    }
}

/// `GET /metrics` on `registry`.
pub fn router(registry: Registry) -> axum::Router {
    axum::Router::new().route("/metrics", get(scrape)).with_state(registry)
}

async fn scrape(State(registry): State<Registry>, headers: HeaderMap) -> impl IntoResponse {
    let accept = headers.get(ACCEPT).and_then(|value| value.to_str().ok()).unwrap_or_default();
    let format = Format::accepted(accept);
    // Collectors read what they report (the queue's depth from its database):
    // off the async workers. A scrape that could not be answered is an error,
    // not a target without series.
    match tokio::task::spawn_blocking(move || registry.encode(format)).await {
        Ok(text) => ([(CONTENT_TYPE, format.content_type())], text).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Serves [`router`] on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    registry: Registry,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(registry)).with_graceful_shutdown(shutdown).await
}

/// An exemplar's labels: the trace an observation belongs to.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TraceExemplar {
    pub trace_id: String,
}

/// A latency histogram in seconds that keeps trace ids as exemplars.
pub type Latency = HistogramWithExemplars<TraceExemplar>;

/// A [`Latency`] with [`LATENCY_BUCKETS`] (a family's constructor).
pub fn latency() -> Latency {
    HistogramWithExemplars::new(LATENCY_BUCKETS.into_iter())
}

/// Records `elapsed` in `histogram`, with the trace of the span `cx` holds as
/// the exemplar when it is recorded.
pub fn observe(histogram: &Latency, elapsed: Duration, cx: Option<&opentelemetry::Context>) {
    let exemplar = cx.and_then(trace_id).map(|trace_id| TraceExemplar { trace_id });
    let at = exemplar.as_ref().map(|_| SystemTime::now());
    histogram.observe(elapsed.as_secs_f64(), exemplar, at);
}

/// The process's own health, read from `/proc/self` at every scrape (Linux; the
/// metrics are absent elsewhere): CPU seconds, resident memory, open files,
/// threads, and when it started. A binary registers it once for its process.
#[derive(Debug)]
pub struct ProcessMetrics {
    started: SystemTime,
}

impl ProcessMetrics {
    pub fn new() -> Self {
        Self { started: SystemTime::now() }
    }
}

impl Default for ProcessMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The kernel's clock ticks a second, in which `/proc/self/stat` counts CPU time
/// (`sysconf(_SC_CLK_TCK)`, 100 on every Linux this runs on).
const CLOCK_TICKS: f64 = 100.0;

impl Collector for ProcessMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric as _;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;

        let mut gauge = |name: &str, help: &str, unit: Option<&Unit>, value: f64| -> Result<(), std::fmt::Error> {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, unit, gauge.metric_type())?)
        };
        let started = self.started.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        gauge(
            "process_start_time",
            "When the process started (Unix time)",
            Some(&Unit::Seconds),
            started.as_secs_f64(),
        )?;
        if let Some(resident) = read_status_kib("VmRSS:") {
            gauge("process_resident_memory", "Resident memory", Some(&Unit::Bytes), resident * 1024.0)?;
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            gauge("process_open_fds", "Open file descriptors", None, fds.count() as f64)?;
        }
        // /proc/self/stat: the fields after the command's closing parenthesis,
        // from the third (state); utime and stime are the 14th and 15th, the
        // thread count the 20th.
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let fields: Vec<&str> =
            stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
        let field = |n: usize| fields.get(n - 3).and_then(|value| value.parse::<f64>().ok());
        if let Some(threads) = field(20) {
            gauge("process_threads", "Operating system threads", None, threads)?;
        }
        if let (Some(user), Some(system)) = (field(14), field(15)) {
            let cpu = ConstCounter::new((user + system) / CLOCK_TICKS);
            cpu.encode(encoder.encode_descriptor(
                "process_cpu",
                "CPU time used, user and system",
                Some(&Unit::Seconds),
                cpu.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

/// A `kB` line of `/proc/self/status`, in KiB.
fn read_status_kib(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// A Prometheus configuration that scrapes `targets` (the `host:port` each
/// process serves `/metrics` on) every `interval_s` seconds, as the job
/// `bookstore`: what `services prometheus-config` prints for a run on one
/// machine, and what the tests give Debian's Prometheus.
pub fn scrape_config(interval_s: u32, targets: &[String]) -> String {
    let mut config = format!(
        "# Generated by the bookstore: every process of the shop, scraped for its /metrics\n\
         # (each labels its metrics with its process's name).\n\
         global:\n  scrape_interval: {interval_s}s\n  evaluation_interval: {interval_s}s\n\
         scrape_configs:\n  - job_name: bookstore\n    metrics_path: /metrics\n    static_configs:\n      - targets:\n"
    );
    for address in targets {
        config.push_str(&format!("          - \"{address}\"\n"));
    }
    config
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;

    use super::*;

    #[test]
    fn every_metric_names_its_process_in_the_format_asked_for() {
        let registry = Registry::for_process("books_db-2");
        let orders = Counter::<u64>::default();
        orders.inc();
        registry.register("orders", "Orders", orders);
        registry.register_collector(ProcessMetrics::new());
        let open = registry.encode(Format::OpenMetrics);
        assert!(open.contains("orders_total{process=\"books_db-2\"} 1\n"), "{open}");
        assert!(open.contains("process_cpu_seconds_total{process=\"books_db-2\"}"), "{open}");
        assert!(open.ends_with("# EOF\n"), "{open}");
        let text = registry.encode(Format::PrometheusText);
        assert!(text.contains("orders_total{process=\"books_db-2\"} 1\n") && !text.contains("# EOF"), "{text}");
        assert_eq!(
            Format::accepted("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
            Format::OpenMetrics
        );
        assert_eq!(Format::accepted("*/*"), Format::PrometheusText);
    }

    #[test]
    fn a_scrape_config_lists_every_target_under_one_job() {
        let config = scrape_config(5, &["127.0.0.1:8080".to_owned(), "127.0.0.1:9051".to_owned()]);
        assert!(config.contains("scrape_interval: 5s\n") && config.contains("job_name: bookstore\n"), "{config}");
        assert!(config.contains("- \"127.0.0.1:8080\"\n") && config.contains("- \"127.0.0.1:9051\"\n"), "{config}");
    }
}
