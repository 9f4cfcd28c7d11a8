//! Serving a gRPC service the same way everywhere: with the standard health
//! service and server reflection (so grpcurl and Postman work without the .proto
//! files), observed (`observe.rs`: a span per call continuing the caller's trace,
//! latency by method and status), on a listener the caller bound (port 0 in
//! tests), until `shutdown`. And calling one: [`request`] carries the deadline
//! and the trace context of every call, so the service's span is a child of the
//! caller's (the caller makes no span of its own for the call: the service's
//! says what the call did, and a span a call costs every checkout).

mod connect;
mod observe;

pub use connect::Connector;

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::StreamExt;
use tonic::service::Routes;
use tonic::transport::{Channel, Endpoint, Server};

use crate::metrics::Registry;

/// `id` if it can be an order id (`domain::order::is_order_id`), else the
/// INVALID_ARGUMENT a service answers. The call's span is then about that order
/// (its `order.id`).
pub fn order_id(id: &str) -> Result<&str, tonic::Status> {
    if domain::order::is_order_id(id) {
        crate::telemetry::about_order(id);
        Ok(id)
    } else {
        Err(tonic::Status::invalid_argument("order_id must be 1 to 64 characters"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("building the reflection service failed: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("the gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("the gRPC server task failed: {0}")]
    Task(String),
}

/// The services every port serves beside its own, as reflection names them.
const ALWAYS_SERVED: [&str; 3] =
    ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];

/// Serves `routes` plus health and reflection on `listener`. `services` are the
/// fully qualified gRPC names of what `routes` serves: the health service
/// reports each as SERVING, and reflection (both `v1` and `v1alpha`, which
/// Postman and older grpcurl ask first) lists those and no other, beside health
/// and itself. The calls' latencies go to `metrics` (registered at once: the
/// future does not borrow it).
pub fn serve<S>(
    listener: TcpListener,
    routes: Routes,
    services: &'static [&'static str],
    metrics: &Registry,
    shutdown: S,
) -> impl Future<Output = Result<(), ServeError>> + Send
where
    S: Future<Output = ()> + Send,
{
    let observe = observe::ObserveLayer::new(metrics);
    async move {
        let (health, health_service) = tonic_health::server::health_reporter();
        for service in services {
            health.set_service_status(*service, tonic_health::ServingStatus::Serving).await;
        }
        health.set_service_status("", tonic_health::ServingStatus::Serving).await;
        let reflection = || {
            services.iter().chain(&ALWAYS_SERVED).fold(
                tonic_reflection::server::Builder::configure()
                    .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
                    .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET),
                |builder, service| builder.with_service_name(*service),
            )
        };
        let (reflection_v1, reflection_v1alpha) = (reflection().build_v1()?, reflection().build_v1alpha()?);
        Server::builder()
            .layer(observe)
            .add_routes(routes)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .serve_with_incoming_shutdown(incoming(listener), shutdown)
            .await?;
        Ok(())
    }
}

/// Accepted connections with Nagle's algorithm off: small gRPC responses otherwise
/// wait for the peer's delayed ACK (40 ms on Linux) before they are sent.
fn incoming(listener: TcpListener) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    TcpListenerStream::new(listener).map(|stream| {
        if let Ok(stream) = &stream {
            let _ = stream.set_nodelay(true);
        }
        stream
    })
}

/// `message` as a request that carries `deadline` (as `grpc-timeout`), so the
/// service gives up when the caller does, and the current span's trace context
/// (W3C `traceparent`), so the service's span continues the caller's trace.
pub fn request<T>(message: T, deadline: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(deadline);
    crate::telemetry::context::inject(request.metadata_mut());
    request
}

/// Why a call gave no answer.
#[derive(Debug)]
pub enum CallFailure {
    /// The service (or the transport) answered with an error status.
    Status(tonic::Status),
    /// Nothing came back within the deadline.
    TimedOut,
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Status(status) => write!(f, "{:?}: {}", status.code(), status.message()),
            Self::TimedOut => f.write_str("no answer in time"),
        }
    }
}

/// Awaits a unary call for at most `deadline`: its message, or why there is none.
/// The one way a caller here bounds a call; the request should carry the same
/// deadline ([`request`]), so both sides give up together.
pub async fn within<T>(
    deadline: Duration,
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, CallFailure> {
    match tokio::time::timeout(deadline, call).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(CallFailure::Status(status)),
        Err(_) => Err(CallFailure::TimedOut),
    }
}

/// How often a channel pings its peer over HTTP/2, and how long a ping may go
/// unanswered before the connection is dropped and the next call reconnects. Without
/// it, a connection whose packets were lost (a partition, a peer's host gone) stays
/// open, and calls wait behind TCP's retransmissions, seconds apart, after the
/// network is back.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(1);

/// A lazily connecting channel to `url` that fails fast when the peer is down,
/// notices a silent one within seconds, and never connects to itself
/// ([`Connector`]).
pub fn channel(url: &str, connect_timeout: Duration) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.to_owned())?
        .connect_timeout(connect_timeout)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .connect_with_connector_lazy(Connector))
}

/// Resolves when the process gets Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
