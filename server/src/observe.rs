//! What every HTTP request to the web server passes through: a server span that
//! begins a trace (linked to the trace a `traceparent` header names, if any: the
//! web server is the shop's edge, and a stranger does not pick the shop's trace
//! ids, their sampling, or what travels with an order), named
//! and described as OpenTelemetry's HTTP conventions say (`POST /checkout`;
//! `http.request.method`, `http.route`, `http.response.status_code`); the answer
//! carries the span as a W3C `traceresponse` header, so a shopper's report (or
//! a client's log) leads an operator to the trace; and the request is timed into
//! `http_server_request_duration_seconds` by method, route and status, with its
//! trace as the exemplar.
//!
//! The span names the route, never the path or query a client sent (which could
//! hold anything, a card number too). Health checks and scrapes make no spans.
//! Labels are bounded: the route as
//! the router matched it (`/orders/{id}`, not the id), `other` for what no route
//! matched (the page's files, unknown paths), and `_OTHER` for a method HTTP
//! does not define.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::trace::{FutureExt as _, Link, SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::KeyValue;
use platform::metrics::{self, Latency, Registry};
use platform::telemetry::{context, spans};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;

/// Routes whose requests make no span: probes and scrapes, every few seconds.
const UNTRACED: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The header an answer names its span in (W3C Trace Context, level 2).
pub const TRACERESPONSE: &str = "traceresponse";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    http_request_method: &'static str,
    http_route: String,
    http_response_status_code: u16,
}

/// The web server's request metrics.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Latency, fn() -> Latency>,
}

impl HttpMetrics {
    pub fn register(registry: &Registry) -> Self {
        let requests: Family<RequestLabels, Latency, fn() -> Latency> = Family::new_with_constructor(metrics::latency);
        registry.register_seconds(
            "http_server_request_duration",
            "HTTP requests answered, by method, route and status: how long each took",
            requests.clone(),
        );
        Self { requests }
    }
}

/// The middleware (`axum::middleware::from_fn_with_state`).
pub async fn observe(State(metrics): State<HttpMetrics>, request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let route = request.extensions().get::<MatchedPath>().map(|path| path.as_str().to_owned());
    let span = if route.as_deref().is_some_and(|route| UNTRACED.contains(&route)) {
        None
    } else {
        // A root: a client's own trace is linked, not continued.
        let remote = context::remote_span(request.headers());
        spans::start(&opentelemetry::Context::new(), |tracer| {
            let name = match &route {
                Some(route) => format!("{method} {route}"),
                None => method.to_owned(),
            };
            let mut attributes = vec![KeyValue::new("http.request.method", method)];
            if let Some(route) = &route {
                attributes.push(KeyValue::new("http.route", route.clone()));
            }
            tracer
                .span_builder(name)
                .with_kind(SpanKind::Server)
                .with_attributes(attributes)
                .with_links(remote.map(Link::with_context).into_iter().collect())
        })
    };
    let started = Instant::now();
    let mut response = match &span {
        Some(span) => next.run(request).with_context(span.clone()).await,
        None => next.run(request).await,
    };
    let status = response.status();
    if let Some(cx) = &span {
        let otel = cx.span();
        otel.set_attribute(KeyValue::new("http.response.status_code", i64::from(status.as_u16())));
        if status.is_server_error() {
            otel.set_status(Status::error(status.as_str().to_owned()));
        }
        if let Some(value) = context::traceresponse(cx).and_then(|value| HeaderValue::try_from(value).ok()) {
            response.headers_mut().insert(TRACERESPONSE, value);
        }
        otel.end();
    }
    let labels = RequestLabels {
        http_request_method: method,
        http_route: route.unwrap_or_else(|| "other".to_owned()),
        http_response_status_code: status.as_u16(),
    };
    metrics::observe(&metrics.requests.get_or_create(&labels), started.elapsed(), span.as_ref());
    response
}

/// The method as a bounded label.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}
