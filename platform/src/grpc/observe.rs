//! The layer every gRPC server here runs its calls through: each call is a
//! server span that continues the caller's trace (the W3C context in its
//! metadata), named and described as OpenTelemetry's RPC conventions say
//! (`bookstore.v1.OrderQueue/Enqueue`; `rpc.system`, `rpc.service`, `rpc.method`,
//! `rpc.grpc.status_code`), and is timed into `rpc_server_call_duration_seconds`
//! by method and status, with its trace as the exemplar.
//!
//! Health checks, reflection and Raft's own traffic (heartbeats every 75 ms)
//! make no spans; all but reflection (a stream) are timed. The status is read
//! from the response's headers, where tonic puts an error's; a unary call that
//! answers has its OK in the trailers.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use tonic::codegen::http;
use tower::{Layer, Service};
use tracing::Instrument as _;

use crate::metrics::{self, Latency, Registry};
use crate::telemetry::{context, tracing_enabled};

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
    rpc_service: String,
    rpc_method: String,
    rpc_grpc_status_code: i32,
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
            "gRPC calls served, by service, method and status code: how long each took",
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
        let (service, method) = service_and_method(request.uri().path());
        let (service, method) = (service.to_owned(), method.to_owned());
        let span = if tracing_enabled() && !UNTRACED.contains(&service.as_str()) {
            let span = tracing::info_span!(
                parent: None,
                "grpc.server",
                otel.name = %format_args!("{service}/{method}"),
                otel.kind = "server",
                otel.status_code = tracing::field::Empty,
                rpc.system = "grpc",
                rpc.service = %service,
                rpc.method = %method,
                rpc.grpc.status_code = tracing::field::Empty,
                order.id = tracing::field::Empty,
            );
            context::continue_from_headers(&span, request.headers());
            span
        } else {
            tracing::Span::none()
        };
        let started = Instant::now();
        let answer = self.inner.call(request).instrument(span.clone());
        let calls = self.calls.clone();
        Box::pin(async move {
            let response = answer.await;
            let code = match &response {
                Ok(response) => status_code(response.headers()),
                Err(_) => tonic::Code::Unknown,
            };
            span.record("rpc.grpc.status_code", code as i32);
            if is_server_error(code) {
                span.record("otel.status_code", "ERROR");
            }
            if !UNTIMED.contains(&service.as_str()) {
                // An unknown method names nothing we serve: one label for all of
                // them, so a stranger's paths cannot grow the label set.
                let (rpc_service, rpc_method) = match code {
                    tonic::Code::Unimplemented => ("_OTHER".to_owned(), "_OTHER".to_owned()),
                    _ => (service, method),
                };
                let labels = CallLabels { rpc_service, rpc_method, rpc_grpc_status_code: code as i32 };
                metrics::observe(&calls.get_or_create(&labels), started.elapsed(), &span);
            }
            response
        })
    }
}

/// `/bookstore.v1.OrderQueue/Enqueue` → (`bookstore.v1.OrderQueue`, `Enqueue`).
fn service_and_method(path: &str) -> (&str, &str) {
    path.trim_start_matches('/').split_once('/').unwrap_or((path, ""))
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
    fn a_path_names_the_service_and_the_method() {
        assert_eq!(service_and_method("/bookstore.v1.OrderQueue/Enqueue"), ("bookstore.v1.OrderQueue", "Enqueue"));
        assert_eq!(service_and_method("/nonsense"), ("/nonsense", ""));
    }

    #[test]
    fn an_error_status_is_read_from_the_headers_and_its_absence_is_ok() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(status_code(&headers), tonic::Code::Ok);
        headers.insert("grpc-status", http::HeaderValue::from_static("14"));
        assert_eq!(status_code(&headers), tonic::Code::Unavailable);
    }
}
