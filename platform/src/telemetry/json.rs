//! `LOG_FORMAT=json`: one JSON object a line, for a log store to index:
//! `timestamp` (RFC 3339, UTC), `level`, `target`, `message`, `trace_id` and
//! `span_id` (the OpenTelemetry span the line was written in, the same ids the
//! traces carry), `order_id` where the line or a `tracing` span around it names
//! the order, then the event's own fields.

use std::fmt;

use opentelemetry::trace::TraceContextExt as _;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The field names that name an order: `order_id` in log events, `order.id` on
/// spans (OpenTelemetry's attribute style).
fn names_order(field: &Field) -> bool {
    matches!(field.name(), "order_id" | "order.id")
}

/// The formatter of JSON lines.
pub(super) struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let mut line = Map::new();
        line.insert("timestamp".into(), timestamp.into());
        line.insert("level".into(), event.metadata().level().as_str().into());
        line.insert("target".into(), event.metadata().target().into());
        line.insert("message".into(), fields.message.take().unwrap_or_default().into());
        // The span the line was written in: the OpenTelemetry context the
        // work runs in (`spans.rs`).
        let context = opentelemetry::Context::current();
        let span = context.span();
        let span_context = span.span_context();
        if span_context.is_valid() {
            line.insert("trace_id".into(), span_context.trace_id().to_string().into());
            line.insert("span_id".into(), span_context.span_id().to_string().into());
        }
        let order_id = fields.order_id.take().or_else(|| {
            ctx.event_scope()
                .into_iter()
                .flatten()
                .find_map(|span| span.extensions().get::<OrderId>().map(|order| order.0.clone()))
        });
        if let Some(order_id) = order_id {
            line.insert("order_id".into(), order_id.into());
        }
        for (name, value) in fields.rest {
            line.entry(name).or_insert(value);
        }
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// An event's fields, the message and the order id apart.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    order_id: Option<String>,
    rest: Map<String, Value>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                Value::String(text) => text,
                other => other.to_string(),
            });
        } else if names_order(field) {
            self.order_id = Some(match value {
                Value::String(text) => text,
                other => other.to_string(),
            });
        } else {
            self.rest.insert(field.name().to_owned(), value);
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
}

/// The order a span is about, kept with the span for the lines written in it.
struct OrderId(String);

/// Notes the order id of every span that names one (`order.id` or `order_id`).
pub(super) struct OrderIds;

#[derive(Default)]
struct FindOrder(Option<String>);

impl Visit for FindOrder {
    fn record_str(&mut self, field: &Field, value: &str) {
        if names_order(field) {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if names_order(field) {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl<S> Layer<S> for OrderIds
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &tracing::span::Attributes<'_>, id: &tracing::span::Id, ctx: Context<'_, S>) {
        let mut found = FindOrder::default();
        attrs.record(&mut found);
        if let (Some(order_id), Some(span)) = (found.0, ctx.span(id)) {
            span.extensions_mut().insert(OrderId(order_id));
        }
    }

    fn on_record(&self, id: &tracing::span::Id, values: &tracing::span::Record<'_>, ctx: Context<'_, S>) {
        let mut found = FindOrder::default();
        values.record(&mut found);
        if let (Some(order_id), Some(span)) = (found.0, ctx.span(id)) {
            span.extensions_mut().replace(OrderId(order_id));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::{TraceContextExt as _, Tracer as _, TracerProvider as _};
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// What the formatter wrote, line by line.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_carries_its_spans_trace_and_order_and_its_own_fields() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().event_format(JsonLines).with_writer(move || writer.clone()))
            .with(OrderIds);
        let tracer = opentelemetry_sdk::trace::SdkTracerProvider::builder().build().tracer("test");
        let cx = opentelemetry::Context::new().with_span(tracer.start("checkout"));
        let otel = cx.span().span_context().clone();
        let (trace_id, span_id) = (otel.trace_id().to_string(), otel.span_id().to_string());
        tracing::subscriber::with_default(subscriber, || {
            let _in_span = cx.attach();
            let span = tracing::info_span!("checkout", order_id = "o-1");
            let _entered = span.enter();
            tracing::info!(elapsed_us = 42_u64, step = %"check_card", "refused");
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "refused");
        assert_eq!(line["order_id"], "o-1", "from the span around it");
        assert_eq!(
            (line["trace_id"].as_str(), line["span_id"].as_str()),
            (Some(trace_id.as_str()), Some(span_id.as_str()))
        );
        assert_eq!((line["elapsed_us"].as_u64(), line["step"].as_str()), (Some(42), Some("check_card")));
        assert!(line["timestamp"].as_str().is_some_and(|at| at.ends_with('Z')), "{line}");
        assert_eq!(text.lines().count(), 1, "one line: {text}");
    }
}
