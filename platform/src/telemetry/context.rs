//! The W3C trace context (`traceparent`, `tracestate`), carried where the work
//! goes: in the metadata of every gRPC call ([`inject`], read back by the
//! serving layer with [`extract`]), and with an approved order through the queue
//! into the executors' log ([`carrier`], [`continue_from`]), so the order's
//! execution continues its checkout's trace, even on a leader that took over.
//!
//! All of it does nothing while [`super::tracing_enabled`] is false.

use std::collections::BTreeMap;

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use tonic::codegen::http::HeaderMap;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::tracing_enabled;

/// A trace context as a small map (`traceparent` → …), the form it takes in a
/// queued order and in the executors' record of it.
pub type Carrier = BTreeMap<String, String>;

struct Metadata<'a>(&'a mut MetadataMap);

impl Injector for Metadata<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (MetadataKey::from_bytes(key.as_bytes()), MetadataValue::try_from(value)) {
            self.0.insert(key, value);
        }
    }
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

struct Map<'a>(&'a Carrier);

impl Extractor for Map<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

struct MapMut<'a>(&'a mut Carrier);

impl Injector for MapMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

/// Puts the current span's trace context into a call's metadata, so the service
/// continues the trace.
pub fn inject(metadata: &mut MetadataMap) {
    if !tracing_enabled() {
        return;
    }
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut Metadata(metadata));
    });
}

/// The trace context a request carries in its headers (empty if none).
pub fn extract(headers: &HeaderMap) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&Headers(headers)))
}

/// The current span's trace context as a map, to travel with an order (empty
/// while tracing is off or outside any span).
pub fn carrier() -> Carrier {
    let mut carrier = Carrier::new();
    if tracing_enabled() {
        let context = tracing::Span::current().context();
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut MapMut(&mut carrier));
        });
    }
    carrier
}

/// Makes `span` (not yet entered) continue the trace `carrier` holds: its child.
pub fn continue_from(span: &tracing::Span, carrier: &Carrier) {
    if !tracing_enabled() || carrier.is_empty() {
        return;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&Map(carrier)));
    let _ = span.set_parent(parent);
}

/// Makes `span` (not yet entered) continue the trace a request's headers carry.
pub fn continue_from_headers(span: &tracing::Span, headers: &HeaderMap) {
    if tracing_enabled() {
        let _ = span.set_parent(extract(headers));
    }
}

/// Links `span` (not yet entered) to `other`: work `other` began, that `span`
/// does in another trace (the receipt of a batch, for each order in it).
pub fn link(span: &tracing::Span, other: &tracing::Span) {
    if let Some(context) = sampled(other) {
        span.add_link(context);
    }
}

/// The trace a carrier belongs to, as 32 hex digits (what a trace store is
/// searched by), if it holds a valid context.
pub fn trace_id_in(carrier: &Carrier) -> Option<String> {
    if carrier.is_empty() {
        return None;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&Map(carrier)));
    let span = parent.span();
    let context = span.span_context();
    context.is_valid().then(|| context.trace_id().to_string())
}

/// `span`'s context, when tracing is on and it is recorded (sampled).
fn sampled(span: &tracing::Span) -> Option<SpanContext> {
    if !tracing_enabled() || span.is_disabled() {
        return None;
    }
    let context = span.context();
    let otel_span = context.span();
    let span_context = otel_span.span_context();
    (span_context.is_valid() && span_context.is_sampled()).then(|| span_context.clone())
}

/// The trace id of `span`, if it is recorded: the exemplar a latency histogram
/// keeps, so a dashboard can open the trace of a slow request.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    sampled(span).map(|context| context.trace_id().to_string())
}

/// `span` as a W3C `traceresponse` header value (`00-<trace>-<span>-<flags>`),
/// if it is recorded: the web server answers with it, so a shopper's report
/// leads to the trace.
pub fn traceresponse(span: &tracing::Span) -> Option<String> {
    sampled(span)
        .map(|context| format!("00-{}-{}-{:02x}", context.trace_id(), context.span_id(), context.trace_flags().to_u8()))
}
