//! The probe behind `services health`: asks one process whether it is serving, so
//! a container's healthcheck (Docker Compose) needs no tool beyond the image's own
//! binary. Two kinds of process: a gRPC service, asked through the standard health
//! service, and the web server, asked for `GET /healthz`.

use platform::grpc::CallFailure;
use std::time::Duration;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("{0} is not a usable address: {1}")]
    Address(String, String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the call failed: {0}")]
    Call(String),
    #[error("the service reports {0}")]
    NotServing(String),
}

/// Asks the gRPC health service at `addr` (`host:port`) about `service` ("" is the
/// whole server); healthy when it answers SERVING within `timeout`.
pub async fn grpc(addr: &str, service: &str, timeout: Duration) -> Result<(), HealthError> {
    let url = format!("http://{addr}");
    let channel =
        platform::grpc::channel(&url, timeout).map_err(|error| HealthError::Address(url, error.to_string()))?;
    let request = HealthCheckRequest { service: service.to_owned() };
    let answer =
        platform::grpc::within(timeout, HealthClient::new(channel).check(request)).await.map_err(|failure| {
            match failure {
                CallFailure::TimedOut => HealthError::Timeout(timeout),
                CallFailure::Status(status) => HealthError::Call(status.message().to_owned()),
            }
        })?;
    match answer.status() {
        ServingStatus::Serving => Ok(()),
        other => Err(HealthError::NotServing(other.as_str_name().to_owned())),
    }
}

/// `GET http://{addr}{path}` over HTTP/1.1; healthy on a 2xx answer within `timeout`.
pub async fn http(addr: &str, path: &str, timeout: Duration) -> Result<(), HealthError> {
    let status = tokio::time::timeout(timeout, get(addr, path)).await.map_err(|_| HealthError::Timeout(timeout))??;
    if status.is_success() {
        Ok(())
    } else {
        Err(HealthError::NotServing(format!("HTTP {status}")))
    }
}

async fn get(addr: &str, path: &str) -> Result<hyper::StatusCode, HealthError> {
    let call = |error: &dyn std::fmt::Display| HealthError::Call(error.to_string());
    let stream = TcpStream::connect(addr).await.map_err(|error| call(&error))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|error| call(&error))?;
    let driving = tokio::spawn(connection);
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, addr)
        .body(Empty::<Bytes>::new())
        .map_err(|error| HealthError::Address(path.to_owned(), error.to_string()))?;
    let answer = sender.send_request(request).await.map_err(|error| call(&error));
    driving.abort();
    Ok(answer?.status())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOON: Duration = Duration::from_secs(2);

    #[tokio::test]
    async fn a_serving_grpc_service_is_healthy_and_a_closed_port_is_not() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address").to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(platform::grpc::serve(
            listener,
            tonic::service::Routes::default(),
            &["bookstore.v1.Nothing"],
            &platform::metrics::Registry::default(),
            async {
                let _ = stopped.await;
            },
        ));
        grpc(&addr, "", SOON).await.expect("the whole server serves");
        grpc(&addr, "bookstore.v1.Nothing", SOON).await.expect("the named service serves");
        let unknown = grpc(&addr, "bookstore.v1.Unknown", SOON).await.expect_err("an unknown service");
        assert!(matches!(unknown, HealthError::Call(_)), "{unknown}");
        let _ = stop.send(());
        serving.await.expect("task").expect("served");
        assert!(grpc(&addr, "", SOON).await.is_err(), "nothing listens any more");
    }

    #[tokio::test]
    async fn http_health_follows_the_status_code() {
        use axum::http::StatusCode;
        let router = axum::Router::new()
            .route("/healthz", axum::routing::get(|| async { "ok" }))
            .route("/sick", axum::routing::get(|| async { StatusCode::SERVICE_UNAVAILABLE }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address").to_string();
        tokio::spawn(async move { axum::serve(listener, router).await });
        http(&addr, "/healthz", SOON).await.expect("2xx is healthy");
        let sick = http(&addr, "/sick", SOON).await.expect_err("503 is not");
        assert!(matches!(sick, HealthError::NotServing(_)), "{sick}");
    }
}
