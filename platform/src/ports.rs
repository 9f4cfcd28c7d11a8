//! The port map of a run on one machine (the seed's ports), written once. The
//! services' and the web server's defaults come from here, and `scripts/run-local.sh`
//! asks `services ports` for it. The Compose file and the Helm chart name the same
//! ports for their containers; their tests check that they agree with this map.
//!
//! Each gRPC service serves its Prometheus metrics on a port of its own, the
//! gRPC port's last digits after 90 (fraud_detection 50051 → 9051, an executor
//! 50501 → 9501); the web server serves them on its own port (`/metrics`).

use std::fmt::Write;

pub const WEB: u16 = 8080;
pub const FRAUD_DETECTION: u16 = 50051;
pub const TRANSACTION_VERIFICATION: u16 = 50052;
pub const SUGGESTIONS: u16 = 50053;
pub const ORDER_QUEUE: u16 = 50054;
pub const PAYMENT: u16 = 50055;
/// Replica 1, 2, 3 of each Raft group.
pub const BOOKS_DB: [u16; 3] = [50061, 50062, 50063];
pub const ORDER_EXECUTOR: [u16; 3] = [50501, 50502, 50503];

/// Where each gRPC service serves `GET /metrics`.
pub mod metrics {
    pub const FRAUD_DETECTION: u16 = 9051;
    pub const TRANSACTION_VERIFICATION: u16 = 9052;
    pub const SUGGESTIONS: u16 = 9053;
    pub const ORDER_QUEUE: u16 = 9054;
    pub const PAYMENT: u16 = 9055;
    pub const BOOKS_DB: [u16; 3] = [9061, 9062, 9063];
    pub const ORDER_EXECUTOR: [u16; 3] = [9501, 9502, 9503];
}

/// What runs beside the shop to watch it (`make observe`, Compose's
/// `observability` profile): Prometheus, Grafana, an OTLP collector (its gRPC and
/// HTTP ports, the standard ones).
pub mod observability {
    pub const PROMETHEUS: u16 = 9090;
    pub const GRAFANA: u16 = 3000;
    pub const OTLP_GRPC: u16 = 4317;
    pub const OTLP_HTTP: u16 = 4318;
}

/// `127.0.0.1:port`: where a service listens by default.
pub fn loopback(port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

/// `http://127.0.0.1:port`: where a client finds a service by default.
pub fn local_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

pub fn local_urls(ports: &[u16]) -> Vec<String> {
    ports.iter().map(|port| local_url(*port)).collect()
}

/// Where every process of a run on one machine serves its metrics
/// (`host:port`; the web server on its own port).
pub fn metrics_targets() -> Vec<String> {
    let mut ports = vec![
        WEB,
        metrics::FRAUD_DETECTION,
        metrics::TRANSACTION_VERIFICATION,
        metrics::SUGGESTIONS,
        metrics::ORDER_QUEUE,
        metrics::PAYMENT,
    ];
    ports.extend(metrics::BOOKS_DB);
    ports.extend(metrics::ORDER_EXECUTOR);
    ports.into_iter().map(|port| format!("127.0.0.1:{port}")).collect()
}

/// The map as shell assignments (`services ports`), for `scripts/run-local.sh`.
pub fn as_shell() -> String {
    let mut out = String::new();
    let single = [
        ("WEB_PORT", WEB),
        ("FRAUD_DETECTION_PORT", FRAUD_DETECTION),
        ("TRANSACTION_VERIFICATION_PORT", TRANSACTION_VERIFICATION),
        ("SUGGESTIONS_PORT", SUGGESTIONS),
        ("ORDER_QUEUE_PORT", ORDER_QUEUE),
        ("PAYMENT_PORT", PAYMENT),
        ("FRAUD_DETECTION_METRICS_PORT", metrics::FRAUD_DETECTION),
        ("TRANSACTION_VERIFICATION_METRICS_PORT", metrics::TRANSACTION_VERIFICATION),
        ("SUGGESTIONS_METRICS_PORT", metrics::SUGGESTIONS),
        ("ORDER_QUEUE_METRICS_PORT", metrics::ORDER_QUEUE),
        ("PAYMENT_METRICS_PORT", metrics::PAYMENT),
        ("PROMETHEUS_PORT", observability::PROMETHEUS),
        ("GRAFANA_PORT", observability::GRAFANA),
        ("OTLP_GRPC_PORT", observability::OTLP_GRPC),
        ("OTLP_HTTP_PORT", observability::OTLP_HTTP),
    ];
    for (name, port) in single {
        let _ = writeln!(out, "{name}={port}");
    }
    let groups = [
        ("BOOKS_DB_PORTS", BOOKS_DB),
        ("ORDER_EXECUTOR_PORTS", ORDER_EXECUTOR),
        ("BOOKS_DB_METRICS_PORTS", metrics::BOOKS_DB),
        ("ORDER_EXECUTOR_METRICS_PORTS", metrics::ORDER_EXECUTOR),
    ];
    for (name, ports) in groups {
        let _ = writeln!(out, "{name}=\"{} {} {}\"", ports[0], ports[1], ports[2]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_port_is_different_and_the_shell_form_names_them_all() {
        let mut all = vec![WEB, FRAUD_DETECTION, TRANSACTION_VERIFICATION, SUGGESTIONS, ORDER_QUEUE, PAYMENT];
        all.extend(BOOKS_DB);
        all.extend(ORDER_EXECUTOR);
        all.extend([
            metrics::FRAUD_DETECTION,
            metrics::TRANSACTION_VERIFICATION,
            metrics::SUGGESTIONS,
            metrics::ORDER_QUEUE,
            metrics::PAYMENT,
        ]);
        all.extend(metrics::BOOKS_DB);
        all.extend(metrics::ORDER_EXECUTOR);
        all.extend([
            observability::PROMETHEUS,
            observability::GRAFANA,
            observability::OTLP_GRPC,
            observability::OTLP_HTTP,
        ]);
        let count = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), count);
        let shell = as_shell();
        assert!(shell.contains("TRANSACTION_VERIFICATION_PORT=50052\n"), "{shell}");
        assert!(shell.contains("BOOKS_DB_PORTS=\"50061 50062 50063\"\n"), "{shell}");
        assert!(shell.contains("FRAUD_DETECTION_METRICS_PORT=9051\n"), "{shell}");
        assert!(shell.contains("ORDER_EXECUTOR_METRICS_PORTS=\"9501 9502 9503\"\n"), "{shell}");
        assert_eq!(local_url(50054), "http://127.0.0.1:50054");
    }
}
