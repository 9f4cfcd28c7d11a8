//! A real OTLP receiver for the tests: a tonic server implementing the
//! collector's `TraceService` and `LogsService` (opentelemetry-proto's), keeping
//! every span and log record the shop's processes export, with the name of the
//! process that sent it (`service.name`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use testkit::service::Running;
use tonic::{Request, Response, Status};

/// A span as received: the process that sent it, its resource, the span.
#[derive(Debug, Clone)]
pub struct Received {
    pub service: String,
    pub resource: Vec<KeyValue>,
    pub span: Span,
}

impl Received {
    pub fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    pub fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }

    pub fn parent_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }

    /// An attribute's value, as text.
    pub fn attribute(&self, key: &str) -> Option<String> {
        attribute(&self.span.attributes, key)
    }
}

/// A log record as received, with the process that sent it.
#[derive(Debug, Clone)]
pub struct ReceivedLog {
    pub service: String,
    pub record: LogRecord,
}

#[derive(Clone, Default)]
pub struct Collector {
    spans: Arc<Mutex<Vec<Received>>>,
    logs: Arc<Mutex<Vec<ReceivedLog>>>,
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// `key`'s value among `attributes`, as text (a number as its digits).
pub fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|attribute| attribute.key == key)?.value.as_ref()?.value.as_ref()?;
    Some(text(value))
}

fn text(value: &Any) -> String {
    match value {
        Any::StringValue(text) => text.clone(),
        Any::BoolValue(flag) => flag.to_string(),
        Any::IntValue(number) => number.to_string(),
        Any::DoubleValue(number) => number.to_string(),
        Any::ArrayValue(values) => {
            values.values.iter().filter_map(|value| value.value.as_ref()).map(text).collect::<Vec<_>>().join(",")
        }
        Any::KvlistValue(list) => list
            .values
            .iter()
            .map(|pair| {
                format!(
                    "{}={}",
                    pair.key,
                    pair.value.as_ref().and_then(|v| v.value.as_ref()).map(text).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join(","),
        Any::BytesValue(bytes) => hex(bytes),
        Any::StringValueStrindex(index) => index.to_string(),
    }
}

fn service_name(resource: &[KeyValue]) -> String {
    attribute(resource, "service.name").unwrap_or_default()
}

impl Collector {
    /// Every span received so far.
    pub fn spans(&self) -> Vec<Received> {
        self.spans.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The spans of one trace.
    pub fn trace(&self, trace_id: &str) -> Vec<Received> {
        self.spans().into_iter().filter(|span| span.trace_id() == trace_id).collect()
    }

    /// Which processes sent spans of a trace, and how many each.
    pub fn services_in(&self, trace_id: &str) -> BTreeMap<String, usize> {
        let mut services = BTreeMap::new();
        for span in self.trace(trace_id) {
            *services.entry(span.service).or_default() += 1;
        }
        services
    }

    /// Every log record received so far.
    pub fn logs(&self) -> Vec<ReceivedLog> {
        self.logs.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Every text a shopper's data could hide in: span names, attribute keys and
    /// values, events, links and resources, and log records' bodies and
    /// attributes.
    pub fn every_text(&self) -> BTreeSet<String> {
        let mut texts = BTreeSet::new();
        for log in self.logs() {
            if let Some(body) = log.record.body.as_ref().and_then(|body| body.value.as_ref()) {
                texts.insert(text(body));
            }
            for attribute in &log.record.attributes {
                texts.insert(attribute.key.clone());
                if let Some(value) = attribute.value.as_ref().and_then(|value| value.value.as_ref()) {
                    texts.insert(text(value));
                }
            }
        }
        for received in self.spans() {
            let span = &received.span;
            texts.insert(span.name.clone());
            let mut attributes: Vec<&KeyValue> = span.attributes.iter().chain(&received.resource).collect();
            for event in &span.events {
                texts.insert(event.name.clone());
                attributes.extend(&event.attributes);
            }
            for link in &span.links {
                attributes.extend(&link.attributes);
            }
            for attribute in attributes {
                texts.insert(attribute.key.clone());
                if let Some(value) = attribute.value.as_ref().and_then(|value| value.value.as_ref()) {
                    texts.insert(text(value));
                }
            }
        }
        texts
    }
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut spans = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
        for resource_spans in request.into_inner().resource_spans {
            let resource = resource_spans.resource.map(|resource| resource.attributes).unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    spans.push(Received { service: service_name(&resource), resource: resource.clone(), span });
                }
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Collector {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let mut logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        for resource_logs in request.into_inner().resource_logs {
            let resource = resource_logs.resource.map(|resource| resource.attributes).unwrap_or_default();
            for scope in resource_logs.scope_logs {
                for record in scope.log_records {
                    logs.push(ReceivedLog { service: service_name(&resource), record });
                }
            }
        }
        Ok(Response::new(ExportLogsServiceResponse::default()))
    }
}

/// Starts a receiver on a loopback port: what it received, and the running server
/// (its URL is the `OTEL_EXPORTER_OTLP_ENDPOINT` to give).
pub async fn start() -> (Collector, Running) {
    let collector = Collector::default();
    let (listener, addr) = testkit::service::listener().await;
    let serving = collector.clone();
    let running = testkit::service::spawn(addr, move |shutdown| async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let _ = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(serving.clone()))
            .add_service(LogsServiceServer::new(serving))
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await;
    });
    (collector, running)
}
