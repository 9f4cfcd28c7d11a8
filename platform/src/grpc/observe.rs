//! The layer every gRPC server here runs its calls through: each call is a
//! server span that continues the caller's trace (the W3C context in its
//! metadata), named and described as OpenTelemetry's RPC conventions (schema
//! 1.42) say: `bookstore.v1.OrderQueue/Enqueue`, with `rpc.system.name`,
//! `rpc.method` (fully qualified; `_OTHER` for a method not served, whose name,
//! a stranger's text, is kept out of the trace) and `rpc.response.status_code`
//! (`OK`, `UNAVAILABLE`, …; `DEADLINE_EXCEEDED` or `CANCELLED` for a call that
//! ended unanswered);
//! and it is timed into `rpc_server_call_duration_seconds` by method and status,
//! with its trace as the exemplar.
//!
//! Health checks, reflection and Raft's own traffic (heartbeats every 75 ms)
//! make no spans; all but reflection (a stream) are timed. The status is read
//! from the response's headers, where tonic puts an error's; a unary call that
//! answers has its OK in the trailers.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use opentelemetry::trace::{FutureExt as _, SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::KeyValue;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use tonic::codegen::http;
use tower::{Layer, Service};

use crate::metrics::{self, Latency, Registry};
use crate::telemetry::{context, spans};

/// Services whose calls make no span.
const UNTRACED: [&str; 4] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    "bookstore.v1.Raft",
];

/// Services whose calls are not timed: reflection answers with a stream.
const UNTIMED: [&str; 2] = ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    /// `bookstore.v1.OrderQueue/Enqueue`, or `_OTHER`.
    rpc_method: String,
    /// `OK`, `UNAVAILABLE`, …
    rpc_response_status_code: &'static str,
}

type Calls = Family<CallLabels, Latency, fn() -> Latency>;

#[derive(Clone)]
pub(super) struct ObserveLayer {
    calls: Calls,
}

impl ObserveLayer {
    pub(super) fn new(registry: &Registry) -> Self {
        let calls: Calls = Family::new_with_constructor(metrics::latency);
        registry.register_seconds(
            "rpc_server_call_duration",
            "gRPC calls served, by method and status code: how long each took",
            calls.clone(),
        );
        Self { calls }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe { inner, calls: self.calls.clone() }
    }
}

#[derive(Clone)]
pub(super) struct Observe<S> {
    inner: S,
    calls: Calls,
}

impl<S, B, R> Service<http::Request<B>> for Observe<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().trim_start_matches('/').to_owned();
        let service_len = method.find('/').unwrap_or(method.len());
        let service = &method[..service_len];
        let span = if UNTRACED.contains(&service) {
            None
        } else {
            let parent = context::from_headers(request.headers());
            spans::start(&parent, |tracer| {
                tracer.span_builder(method.clone()).with_kind(SpanKind::Server).with_attributes([
                    KeyValue::new("rpc.system.name", "grpc"),
                    KeyValue::new("rpc.method", method.clone()),
                ])
            })
        };
        let timed = !UNTIMED.contains(&service);
        let deadline =
            request.headers().get("grpc-timeout").and_then(|value| value.to_str().ok()).and_then(grpc_timeout);
        let mut call = Ending {
            span: span.clone(),
            calls: self.calls.clone(),
            method,
            timed,
            deadline,
            started: Instant::now(),
            ended: false,
        };
        let answer = self.inner.call(request);
        Box::pin(async move {
            // The handler runs in the span: its log lines and its own calls carry it.
            let response = match span {
                Some(span) => answer.with_context(span).await,
                None => answer.await,
            };
            call.end(match &response {
                Ok(response) => status_code(response.headers()),
                Err(_) => tonic::Code::Unknown,
            });
            response
        })
    }
}

/// A call until it ends: it records how it ended on its span and in the
/// metrics, once. A call tonic drops unanswered (the caller cancelled it, or its
/// deadline passed, which tonic checks outside this layer) ends when dropped:
/// `DEADLINE_EXCEEDED` if its deadline had passed, else `CANCELLED`.
struct Ending {
    span: Option<opentelemetry::Context>,
    calls: Calls,
    method: String,
    timed: bool,
    deadline: Option<std::time::Duration>,
    started: Instant,
    ended: bool,
}

impl Ending {
    fn end(&mut self, code: tonic::Code) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        // A method not served names nothing of ours: one name for all of them,
        // so a stranger's paths neither grow the label set nor reach a trace.
        let unknown = code == tonic::Code::Unimplemented;
        if let Some(cx) = &self.span {
            let span = cx.span();
            span.set_attribute(KeyValue::new("rpc.response.status_code", code_name(code)));
            if is_server_error(code) {
                span.set_status(Status::error(code_name(code)));
            }
            if unknown {
                span.update_name("_OTHER");
                span.set_attribute(KeyValue::new("rpc.method", "_OTHER"));
            }
            span.end();
        }
        let rpc_method = if unknown { "_OTHER".to_owned() } else { std::mem::take(&mut self.method) };
        if self.timed {
            let labels = CallLabels { rpc_method, rpc_response_status_code: code_name(code) };
            metrics::observe(&self.calls.get_or_create(&labels), self.started.elapsed(), self.span.as_ref());
        }
    }
}

impl Drop for Ending {
    fn drop(&mut self) {
        let late = self.deadline.is_some_and(|deadline| self.started.elapsed() >= deadline);
        self.end(if late { tonic::Code::DeadlineExceeded } else { tonic::Code::Cancelled });
    }
}

/// A `grpc-timeout` header's deadline: up to eight digits and a unit (gRPC's
/// wire format: H, M, S, m, u, n).
fn grpc_timeout(value: &str) -> Option<std::time::Duration> {
    use std::time::Duration;
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// A status code's name, as gRPC's specification writes it.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The status a response carries in its headers (an error's), else OK.
fn status_code(headers: &http::HeaderMap) -> tonic::Code {
    headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok())
        .map_or(tonic::Code::Ok, tonic::Code::from)
}

/// The codes that are the server's failure rather than the caller's, which mark
/// a server span as an error (OpenTelemetry's RPC conventions).
fn is_server_error(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(code, Unknown | DeadlineExceeded | Unimplemented | Internal | Unavailable | DataLoss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_is_read_as_grpc_writes_it() {
        use std::time::Duration;
        assert_eq!(grpc_timeout("800m"), Some(Duration::from_millis(800)));
        assert_eq!(grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(grpc_timeout("m"), None);
        assert_eq!(grpc_timeout("123456789m"), None, "nine digits");
        assert_eq!(grpc_timeout("10x"), None);
        assert_eq!(grpc_timeout("é"), None);
    }

    #[test]
    fn a_code_is_named_as_grpc_names_it() {
        assert_eq!(code_name(tonic::Code::Ok), "OK");
        assert_eq!(code_name(tonic::Code::DeadlineExceeded), "DEADLINE_EXCEEDED");
        assert_eq!(code_name(tonic::Code::Unauthenticated), "UNAUTHENTICATED");
    }

    #[test]
    fn an_error_status_is_read_from_the_headers_and_its_absence_is_ok() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(status_code(&headers), tonic::Code::Ok);
        headers.insert("grpc-status", http::HeaderValue::from_static("14"));
        assert_eq!(status_code(&headers), tonic::Code::Unavailable);
    }
}
