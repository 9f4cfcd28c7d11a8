//! What every process tells its operators, set up the same way by every binary:
//! logs to stderr (readable text, or JSON lines with `LOG_FORMAT=json`), and
//! OpenTelemetry traces (and the log records written inside them) exported over
//! OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set. The SDK's standard `OTEL_*`
//! variables are honoured (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`, `OTEL_EXPORTER_OTLP_TIMEOUT`, `_HEADERS`, …;
//! `OTEL_SDK_DISABLED=true` turns exporting off).
//!
//! Spans are OpenTelemetry's, made with its API ([`spans`]); `tracing` carries
//! the logs, and a log line written inside a span carries its ids. With neither
//! an endpoint nor JSON logs no tracer is installed and [`tracing_enabled`] is
//! false: no span is made, so a shop run without a collector pays nothing for
//! tracing. JSON logs install a tracer without an exporter, so their lines carry
//! the trace and span ids that join them to the other processes' lines.
//!
//! - [`spans`]: making a span, or nothing while tracing is off;
//! - [`context`]: the W3C trace context in and out of gRPC metadata, HTTP
//!   headers and the queued order;
//! - `export.rs`: the OTLP exporters; spans go through the SDK's batch processor
//!   behind a bounded gate that counts what it drops;
//! - `json.rs`: the JSON log lines.

pub mod context;
mod export;
mod json;
pub mod spans;

use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use opentelemetry_semantic_conventions::resource as semconv;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub use export::ExportMetrics;
pub use spans::tracing_enabled;

/// `info`, with openraft's chatty internals at `warn`. openraft logs three or four
/// lines at every failed replication attempt, ten attempts a second while a replica
/// is down: its replication module is silenced and its replication handler keeps
/// only errors; the Raft network logs a peer lost and regained once each instead
/// (`consensus/src/network.rs`).
pub const DEFAULT_FILTER: &str =
    "info,openraft=warn,openraft::replication=off,openraft::engine::handler::replication_handler=error";

/// What the binaries' `--help` says of the environment logging and tracing read
/// (the deployment tests check every variable a container is given against it).
pub const HELP: &str = "Logs and traces, from the environment: RUST_LOG (the log filter), LOG_FORMAT (text, the \
default, or json: one object a line, with trace and span ids), OTEL_EXPORTER_OTLP_ENDPOINT (export spans and log \
records over OTLP/gRPC there; unset: nothing is exported) or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT and \
OTEL_EXPORTER_OTLP_LOGS_ENDPOINT (each signal on its own), OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_EXPORTER_OTLP_HEADERS, \
OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG, OTEL_BSP_MAX_QUEUE_SIZE, \
OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_MAX_EXPORT_BATCH_SIZE, OTEL_BLRP_SCHEDULE_DELAY, OTEL_SDK_DISABLED, \
OTEL_TRACES_EXPORTER, OTEL_LOGS_EXPORTER (none: not exported).";

/// The shop's own crates: the `tracing` spans the JSON lines read an order id
/// from are theirs.
const SHOP_CRATES: [&str; 6] = ["platform", "services", "server", "consensus", "app", "domain"];

/// Notes on the current span (a gRPC call's) the order it is about: its
/// `order.id`, if `order_id` can be one (what a caller sent is not put in a
/// trace unchecked).
pub fn about_order(order_id: &str) {
    if tracing_enabled() && domain::order::is_order_id(order_id) {
        opentelemetry::Context::current().span().set_attribute(KeyValue::new("order.id", order_id.to_owned()));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Readable lines (the default).
    Text,
    /// One JSON object a line: timestamp, level, target, message, `trace_id`,
    /// `span_id`, `order_id` where known, and the event's fields.
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("LOG_FORMAT must be `text` or `json`, not {0:?}")]
    LogFormat(String),
    #[error("the OTLP trace exporter cannot be built (check OTEL_EXPORTER_OTLP_ENDPOINT): {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// What [`init`] set up. Dropping it flushes the spans and log records still
/// queued (a process should keep it until it exits).
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
    logs: Option<SdkLoggerProvider>,
    exports: Option<ExportMetrics>,
}

impl Telemetry {
    fn nothing() -> Self {
        Self { traces: None, logs: None, exports: None }
    }

    /// The exporter's counts (spans exported, dropped, failed), when exporting.
    pub fn export_metrics(&self) -> Option<&ExportMetrics> {
        self.exports.as_ref()
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(traces) = self.traces.take() {
            let _ = traces.shutdown();
        }
        if let Some(logs) = self.logs.take() {
            let _ = logs.shutdown();
        }
    }
}

/// Installs logging and, if configured, trace and log export, for the process
/// named `service_name` in traces (`web`, `fraud_detection`, `books_db-2`; the
/// standard `OTEL_SERVICE_NAME` overrides it). A second call (tests) installs
/// nothing more and exports nothing.
pub fn init(service_name: &str) -> Result<Telemetry, TelemetryError> {
    let format = log_format()?;
    let traces_exported = exporting(Signal::Traces);
    let log_filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let lines = match format {
        LogFormat::Text => {
            tracing_subscriber::fmt::layer().with_target(false).with_ansi(ansi).with_writer(std::io::stderr).boxed()
        }
        LogFormat::Json => {
            tracing_subscriber::fmt::layer().event_format(json::JsonLines).with_writer(std::io::stderr).boxed()
        }
    }
    .with_filter(log_filter());
    let mut telemetry = Telemetry::nothing();
    let resource = resource(service_name);
    let tracer = if traces_exported || format == LogFormat::Json {
        let mut provider = SdkTracerProvider::builder().with_resource(resource.clone());
        if traces_exported {
            let (processor, exports) = export::span_processor()?;
            provider = provider.with_span_processor(processor);
            telemetry.exports = Some(exports);
        }
        let provider = provider.build();
        let tracer = provider.tracer("bookstore");
        telemetry.traces = Some(provider);
        Some(tracer)
    } else {
        None
    };
    // Log records go where the spans go, each with the trace and span it was
    // written in, so the collector's log store finds a trace's lines by its id.
    let exported_logs = if exporting(Signal::Logs) {
        let provider =
            SdkLoggerProvider::builder().with_resource(resource).with_batch_exporter(export::log_exporter()?).build();
        let bridge = OpenTelemetryTracingBridge::new(&provider).with_filter(log_filter());
        telemetry.logs = Some(provider);
        Some(bridge)
    } else {
        None
    };
    let installed = tracing_subscriber::registry()
        .with(lines)
        .with(exported_logs)
        // Filtered to the spans it reads: a layer without a filter would make
        // every span and event of every library (h2's, hyper's) live.
        .with((format == LogFormat::Json).then(|| json::OrderIds.with_filter(shop_crates())))
        .try_init()
        .is_ok();
    if !installed {
        // Tests start many servers in one process; the first set-up stands.
        return Ok(Telemetry::nothing());
    }
    if let Some(tracer) = tracer {
        spans::install(tracer);
    }
    if traces_exported {
        tracing::info!(service = service_name, "exporting traces over OTLP");
    }
    Ok(telemetry)
}

/// The shop's own crates, at `info` and above.
fn shop_crates() -> Targets {
    SHOP_CRATES.iter().fold(Targets::new(), |targets, krate| targets.with_target(*krate, LevelFilter::INFO))
}

fn log_format() -> Result<LogFormat, TelemetryError> {
    match std::env::var("LOG_FORMAT").unwrap_or_default().trim().to_ascii_lowercase().as_str() {
        "" | "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(TelemetryError::LogFormat(other.to_owned())),
    }
}

/// What goes to the collector.
#[derive(Clone, Copy)]
enum Signal {
    Traces,
    Logs,
}

/// Whether `signal` is exported: an OTLP endpoint is named for it (the common
/// one or its own), and exporting is not switched off (`OTEL_SDK_DISABLED`,
/// `OTEL_TRACES_EXPORTER=none`, `OTEL_LOGS_EXPORTER=none`).
fn exporting(signal: Signal) -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|value| !value.trim().is_empty());
    let is = |name: &str, value: &str| std::env::var(name).is_ok_and(|v| v.trim().eq_ignore_ascii_case(value));
    let (endpoint, exporter) = match signal {
        Signal::Traces => ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER"),
        Signal::Logs => ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "OTEL_LOGS_EXPORTER"),
    };
    (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set(endpoint)) && !is("OTEL_SDK_DISABLED", "true") && !is(exporter, "none")
}

/// The process as traces name it: `service.name` (ours unless `OTEL_SERVICE_NAME`
/// or `OTEL_RESOURCE_ATTRIBUTES` names one), the shop as its namespace, and the
/// version, beside what the SDK detects from the environment.
fn resource(service_name: &str) -> Resource {
    let detected = Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::from_static_str(semconv::SERVICE_NAME))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    let mut builder = Resource::builder().with_attributes([
        KeyValue::new(semconv::SERVICE_NAMESPACE, "bookstore"),
        KeyValue::new(semconv::SERVICE_VERSION, env!("CARGO_PKG_VERSION")),
    ]);
    if !named {
        builder = builder.with_service_name(service_name.to_owned());
    }
    builder.build()
}
