//! The OTLP exporters, and the bound that keeps a slow or absent collector from
//! costing a checkout anything.
//!
//! Spans go through the SDK's batch processor (its own thread; a checkout only
//! hands a finished span over) behind a [`Gate`]: at most the batch queue's size
//! of spans may be on their way at once, and a span beyond that is dropped and
//! counted, as is a batch the collector did not take. The SDK's processor drops
//! silently when its queue is full; the gate admits no more than that queue
//! holds, so every drop happens here, where it is counted.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_otlp::ExporterBuildError;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SpanData, SpanExporter, SpanProcessor};
use opentelemetry_sdk::Resource;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::metrics::Registry;

/// The batch queue's size unless `OTEL_BSP_MAX_QUEUE_SIZE` says otherwise (the
/// SDK's default).
const DEFAULT_QUEUE: usize = 2048;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropReason {
    /// `queue_full` (the exporter is behind) or `export_failed` (the collector
    /// refused the batch or did not answer in time).
    reason: &'static str,
}

/// What became of the spans this process finished, as metrics.
#[derive(Debug, Clone, Default)]
pub struct ExportMetrics {
    exported: Counter,
    dropped: Family<DropReason, Counter>,
}

impl ExportMetrics {
    pub fn register(&self, registry: &Registry) {
        registry.register("otel_spans_exported", "Spans the OTLP collector accepted", self.exported.clone());
        registry.register(
            "otel_spans_dropped",
            "Spans not exported: the queue was full, or the collector did not take their batch",
            self.dropped.clone(),
        );
        // Both reasons are series from the start, so a rate over them is 0, not absent.
        for reason in ["queue_full", "export_failed"] {
            let _ = self.dropped.get_or_create(&DropReason { reason });
        }
    }

    /// Spans dropped so far, for whatever reason.
    #[cfg(test)]
    fn dropped(&self) -> u64 {
        ["queue_full", "export_failed"]
            .iter()
            .map(|reason| self.dropped.get_or_create(&DropReason { reason }).get())
            .sum()
    }
}

/// How many spans are on their way (queued or being exported), at most `limit`.
#[derive(Debug)]
struct Gate {
    on_the_way: AtomicUsize,
    limit: usize,
    /// Whether the last export failed: a failure is logged when it starts, and
    /// the recovery, not every batch in between.
    failing: AtomicBool,
    metrics: ExportMetrics,
}

impl Gate {
    fn admit(&self) -> bool {
        let admitted = self
            .on_the_way
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.limit).then_some(n + 1))
            .is_ok();
        if !admitted {
            self.metrics.dropped.get_or_create(&DropReason { reason: "queue_full" }).inc();
        }
        admitted
    }

    fn exported(&self, spans: usize, result: &OTelSdkResult) {
        self.on_the_way.fetch_sub(spans, Ordering::AcqRel);
        match result {
            Ok(()) => {
                self.metrics.exported.inc_by(spans as u64);
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("the OTLP collector takes spans again");
                }
            }
            Err(error) => {
                self.metrics.dropped.get_or_create(&DropReason { reason: "export_failed" }).inc_by(spans as u64);
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(%error, "the OTLP collector does not take spans; dropping them (counted in otel_spans_dropped_total) until it does");
                }
            }
        }
    }
}

/// The SDK's batch processor, admitting spans through the gate.
#[derive(Debug)]
struct GatedProcessor {
    inner: BatchSpanProcessor,
    gate: Arc<Gate>,
}

impl SpanProcessor for GatedProcessor {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.gate.admit() {
            self.inner.on_end(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The OTLP exporter, telling the gate how each batch went.
#[derive(Debug)]
struct Counted<E> {
    inner: E,
    gate: Arc<Gate>,
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        let result = self.inner.export(batch).await;
        self.gate.exported(spans, &result);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The span processor that exports over OTLP/gRPC (endpoint, timeout, headers
/// and batching from the standard `OTEL_*` variables), and its counts.
pub(super) fn span_processor() -> Result<(impl SpanProcessor, ExportMetrics), ExporterBuildError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic().build()?;
    let limit = std::env::var("OTEL_BSP_MAX_QUEUE_SIZE")
        .ok()
        .and_then(|size| size.trim().parse::<usize>().ok())
        .filter(|size| *size > 0)
        .unwrap_or(DEFAULT_QUEUE);
    let metrics = ExportMetrics::default();
    let gate = Arc::new(Gate {
        on_the_way: AtomicUsize::new(0),
        limit,
        failing: AtomicBool::new(false),
        metrics: metrics.clone(),
    });
    let config = BatchConfigBuilder::default().with_max_queue_size(limit).build();
    let inner = BatchSpanProcessor::new(Counted { inner: exporter, gate: Arc::clone(&gate) }, config);
    Ok((GatedProcessor { inner, gate }, metrics))
}

/// The log record exporter, over OTLP/gRPC like the spans.
pub(super) fn log_exporter() -> Result<opentelemetry_otlp::LogExporter, ExporterBuildError> {
    opentelemetry_otlp::LogExporter::builder().with_tonic().build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(limit: usize) -> Gate {
        Gate {
            on_the_way: AtomicUsize::new(0),
            limit,
            failing: AtomicBool::new(false),
            metrics: ExportMetrics::default(),
        }
    }

    #[test]
    fn spans_beyond_the_bound_are_dropped_and_counted() {
        let gate = gate(2);
        assert!(gate.admit() && gate.admit());
        assert!(!gate.admit(), "a third span waits for none");
        assert_eq!(gate.metrics.dropped(), 1);
        gate.exported(2, &Ok(()));
        assert!(gate.admit(), "exported spans make room");
        assert_eq!(gate.metrics.exported.get(), 2);
    }

    #[test]
    fn a_batch_the_collector_does_not_take_is_counted_as_dropped_and_makes_room() {
        let gate = gate(3);
        for _ in 0..3 {
            assert!(gate.admit());
        }
        gate.exported(3, &Err(opentelemetry_sdk::error::OTelSdkError::Timeout(Duration::from_secs(1))));
        assert_eq!((gate.metrics.dropped(), gate.metrics.exported.get()), (3, 0));
        assert!(gate.failing.load(Ordering::Relaxed));
        assert!(gate.admit());
        gate.exported(1, &Ok(()));
        assert!(!gate.failing.load(Ordering::Relaxed), "recovered");
    }
}
