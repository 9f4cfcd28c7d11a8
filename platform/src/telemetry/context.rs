//! The W3C trace context (`traceparent`, `tracestate`), carried where the work
//! goes: in the metadata of every gRPC call ([`inject`], read back by the
//! serving layer: [`from_headers`]), and with an approved order through the
//! queue into the executors' log ([`carrier`], [`from_carrier`]), so the order's
//! execution continues its checkout's trace, even on a leader that took over.
//! At the shop's edge, a context a stranger sends is only linked
//! ([`remote_span`]): the shop's traces begin with the shop.
//!
//! All of it does nothing while [`super::tracing_enabled`] is false.

use std::collections::BTreeMap;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::codegen::http::HeaderMap;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};

use super::tracing_enabled;

/// A trace context as a small map (`traceparent` → …), the form it takes in a
/// queued order and in the executors' record of it.
pub type Carrier = BTreeMap<String, String>;

struct Metadata<'a>(&'a mut MetadataMap);

impl Injector for Metadata<'_> {
    fn set(&mut self, key: &str, value: String) {
        // The propagator writes a `tracestate` even when it has no entries (every
        // call of the shop's): an empty one says nothing, and is not sent.
        if value.is_empty() {
            return;
        }
        if let (Ok(key), Ok(mut value)) = (MetadataKey::from_bytes(key.as_bytes()), MetadataValue::try_from(value)) {
            // A `traceparent` differs in every call: HPACK indexing it would only
            // churn the connection's header table, evicting the headers that do
            // repeat and searching it for a value never seen before (`perf diff`
            // put that table among the largest differences tracing made; see
            // docs/benchmarks.md). Sent as a literal that is never indexed instead.
            value.set_sensitive(key.as_str() == "traceparent");
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
        // As in a call's metadata, an empty `tracestate` is left out.
        if !value.is_empty() {
            self.0.insert(key.to_owned(), value);
        }
    }
}

/// The W3C Trace Context format, the one the shop speaks.
fn propagator() -> TraceContextPropagator {
    TraceContextPropagator::new()
}

/// Puts the current span's trace context into a call's metadata, so the service
/// continues the trace.
pub fn inject(metadata: &mut MetadataMap) {
    if tracing_enabled() {
        propagator().inject_context(&Context::current(), &mut Metadata(metadata));
    }
}

/// The trace context a request carries in its headers (empty if none).
fn extract(headers: &HeaderMap) -> Context {
    propagator().extract(&Headers(headers))
}

/// The current span's trace context as a map, to travel with an order (empty
/// while tracing is off or outside any span).
pub fn carrier() -> Carrier {
    let mut carrier = Carrier::new();
    if tracing_enabled() {
        propagator().inject_context(&Context::current(), &mut MapMut(&mut carrier));
    }
    carrier
}

/// The context `carrier` holds: the parent of a span continuing that trace.
pub fn from_carrier(carrier: &Carrier) -> Context {
    propagator().extract(&Map(carrier))
}

/// The context a call from another process of the shop carries in its
/// headers: the parent of the span serving it.
pub fn from_headers(headers: &HeaderMap) -> Context {
    if tracing_enabled() {
        extract(headers)
    } else {
        Context::new()
    }
}

/// The span a request from outside the shop names in its headers, if any: the
/// web server, the shop's edge, links its trace to it rather than continuing
/// it, so a stranger cannot pick the shop's trace ids, force them to be
/// sampled, or make anything ride along with an order (its `tracestate`).
pub fn remote_span(headers: &HeaderMap) -> Option<SpanContext> {
    if !tracing_enabled() {
        return None;
    }
    let remote = extract(headers);
    let span = remote.span().span_context().clone();
    span.is_valid().then_some(span)
}

/// The trace a carrier belongs to, as 32 hex digits (what a trace store is
/// searched by), if its `traceparent` names one that was recorded (sampled).
/// Read from the text itself, so it answers in a process that does not trace.
pub fn trace_id_in(carrier: &Carrier) -> Option<String> {
    let traceparent = carrier.get("traceparent")?;
    let [version, trace_id, span_id, flags] = traceparent.split('-').collect::<Vec<_>>()[..] else { return None };
    let hex = |text: &str, digits: usize| text.len() == digits && text.bytes().all(|b| b.is_ascii_hexdigit());
    let sampled = u8::from_str_radix(flags, 16).is_ok_and(|flags| flags & 1 == 1);
    let valid = version == "00"
        && hex(trace_id, 32)
        && hex(span_id, 16)
        && hex(flags, 2)
        && trace_id.bytes().any(|b| b != b'0')
        && span_id.bytes().any(|b| b != b'0');
    (valid && sampled).then(|| trace_id.to_ascii_lowercase())
}

/// The most a queued order's trace context may hold, in bytes (a `traceparent`
/// is 55, a `tracestate` up to 512): what the queue and the executors' log keep
/// of it is bounded.
pub const CARRIER_MAX_BYTES: usize = 1024;

/// Whether `carrier` can be a trace context as the shop writes one: W3C's two
/// keys at most, within [`CARRIER_MAX_BYTES`].
pub fn carrier_is_sound(carrier: &Carrier) -> bool {
    let size: usize = carrier.iter().map(|(key, value)| key.len() + value.len()).sum();
    size <= CARRIER_MAX_BYTES && carrier.keys().all(|key| key == "traceparent" || key == "tracestate")
}

/// The span `cx` holds, when it is recorded (sampled).
pub fn sampled(cx: &Context) -> Option<SpanContext> {
    let span = cx.span();
    let context = span.span_context();
    (context.is_valid() && context.is_sampled()).then(|| context.clone())
}

/// The trace id of the span `cx` holds, if it is recorded: the exemplar a
/// latency histogram keeps, so a dashboard can open the trace of a slow request.
pub fn trace_id(cx: &Context) -> Option<String> {
    sampled(cx).map(|context| context.trace_id().to_string())
}

/// The span `cx` holds as a W3C `traceresponse` header value
/// (`00-<trace>-<span>-<flags>`), if it is recorded: the web server answers with
/// it, so a shopper's report leads to the trace.
pub fn traceresponse(cx: &Context) -> Option<String> {
    sampled(cx)
        .map(|context| format!("00-{}-{}-{:02x}", context.trace_id(), context.span_id(), context.trace_flags().to_u8()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn carrier(traceparent: &str) -> Carrier {
        Carrier::from([("traceparent".to_owned(), traceparent.to_owned())])
    }

    #[test]
    fn a_trace_id_is_read_only_from_a_recorded_valid_traceparent() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(trace_id_in(&carrier(&format!("00-{id}-00f067aa0ba902b7-01"))).as_deref(), Some(id));
        assert_eq!(trace_id_in(&carrier(&format!("00-{id}-00f067aa0ba902b7-00"))), None, "not sampled");
        assert_eq!(trace_id_in(&carrier("00-00000000000000000000000000000000-00f067aa0ba902b7-01")), None);
        assert_eq!(trace_id_in(&carrier(&format!("00-{id}-00f067aa0ba902b7"))), None);
        assert_eq!(trace_id_in(&carrier(&format!("00-{id}x-00f067aa0ba902b7-01"))), None);
        assert_eq!(trace_id_in(&Carrier::new()), None);
    }

    #[test]
    fn a_trace_context_in_metadata_is_never_indexed_by_hpack() {
        let mut metadata = MetadataMap::new();
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        Metadata(&mut metadata).set("traceparent", traceparent.to_owned());
        let value = metadata.get("traceparent").expect("injected");
        assert_eq!(value.to_str().ok(), Some(traceparent));
        assert!(value.is_sensitive(), "h2 indexes a header value unless it is marked sensitive");
        // What reaches h2 keeps the mark.
        let headers = metadata.into_headers();
        assert!(headers.get("traceparent").is_some_and(|value| value.is_sensitive()));
    }

    /// A context holding a remote span with `trace_state`.
    fn remote(trace_state: opentelemetry::trace::TraceState) -> Context {
        use opentelemetry::trace::{SpanId, TraceFlags, TraceId};
        let span = SpanContext::new(
            TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
            SpanId::from(0x00f0_67aa_0ba9_02b7),
            TraceFlags::SAMPLED,
            true,
            trace_state,
        );
        Context::new().with_remote_span_context(span)
    }

    #[test]
    fn an_empty_tracestate_is_neither_sent_nor_carried_and_a_full_one_is_both() {
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut metadata = MetadataMap::new();
        let mut carried = Carrier::new();
        propagator().inject_context(&remote(Default::default()), &mut Metadata(&mut metadata));
        propagator().inject_context(&remote(Default::default()), &mut MapMut(&mut carried));
        assert_eq!(metadata.len(), 1, "only the traceparent: {metadata:?}");
        assert_eq!(metadata.get("traceparent").and_then(|value| value.to_str().ok()), Some(traceparent));
        assert_eq!(carried, carrier(traceparent));

        let state: opentelemetry::trace::TraceState = "vendor=value".parse().expect("a valid tracestate");
        let mut metadata = MetadataMap::new();
        propagator().inject_context(&remote(state), &mut Metadata(&mut metadata));
        let tracestate = metadata.get("tracestate").expect("a tracestate with entries is sent");
        assert_eq!(tracestate.to_str().ok(), Some("vendor=value"));
        assert!(!tracestate.is_sensitive(), "a tracestate repeats from call to call: HPACK may index it");
    }

    #[test]
    fn a_carrier_holds_the_two_w3c_keys_within_its_bound() {
        assert!(carrier_is_sound(&Carrier::new()));
        assert!(carrier_is_sound(&carrier("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")));
        let mut odd = carrier("x");
        odd.insert("baggage".to_owned(), "user=simon".to_owned());
        assert!(!carrier_is_sound(&odd));
        assert!(!carrier_is_sound(&Carrier::from([("tracestate".to_owned(), "a".repeat(CARRIER_MAX_BYTES))])));
    }
}
