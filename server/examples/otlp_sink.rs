//! An OTLP/gRPC receiver that takes every span and log record and keeps only
//! their count: the collector of `scripts/bench-observability.sh`, so the shop
//! with tracing on exports for real, to a receiver that costs the machine
//! little. Prints the counts when stopped (Ctrl-C or SIGTERM).
//!
//!   cargo run --release -p server --example otlp_sink -- 127.0.0.1:4317

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use tonic::{Request, Response, Status};

#[derive(Clone, Default)]
struct Counts {
    spans: Arc<AtomicU64>,
    records: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl TraceService for Counts {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let spans: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|resource| &resource.scope_spans)
            .map(|scope| scope.spans.len())
            .sum();
        self.spans.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Counts {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let records: usize = request
            .get_ref()
            .resource_logs
            .iter()
            .flat_map(|resource| &resource.scope_logs)
            .map(|scope| scope.log_records.len())
            .sum();
        self.records.fetch_add(records as u64, Ordering::Relaxed);
        Ok(Response::new(ExportLogsServiceResponse::default()))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address: SocketAddr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:4317".to_owned()).parse()?;
    let counts = Counts::default();
    eprintln!("otlp_sink: listening on {address}");
    tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(counts.clone()))
        .add_service(LogsServiceServer::new(counts.clone()))
        .serve_with_shutdown(address, platform::grpc::shutdown_signal())
        .await?;
    println!(
        "otlp_sink: {} spans, {} log records",
        counts.spans.load(Ordering::Relaxed),
        counts.records.load(Ordering::Relaxed)
    );
    Ok(())
}
