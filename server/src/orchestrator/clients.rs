//! The orchestrator's gRPC clients, and the one place a downstream call gets its
//! deadline and its failure turned into a refusal the shopper can read.

use std::future::Future;
use std::time::Duration;

use domain::{Refusal, Step, Verifier};
use platform::grpc::CallFailure;
use proto::v1::fraud_detection_client::FraudDetectionClient;
use proto::v1::order_cache_client::OrderCacheClient;
use proto::v1::order_queue_client::OrderQueueClient;
use proto::v1::suggestions_client::SuggestionsClient;
use proto::v1::transaction_verification_client::TransactionVerificationClient;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::config::ServiceUrls;

pub const ORDER_QUEUE: &str = "order_queue";

#[derive(Clone)]
pub struct Clients {
    /// The `OrderCache` each verification service serves, by `Verifier::index`.
    pub order_caches: [OrderCacheClient<Channel>; Verifier::COUNT],
    pub transaction_verification: TransactionVerificationClient<Channel>,
    pub fraud_detection: FraudDetectionClient<Channel>,
    pub suggestions: SuggestionsClient<Channel>,
    pub order_queue: OrderQueueClient<Channel>,
    /// The standard gRPC health service of each service a checkout calls, over
    /// the same channels: `GET /readyz`.
    pub health: [(&'static str, HealthClient<Channel>); 4],
    /// Every call's deadline.
    pub deadline: Duration,
}

impl Clients {
    /// Channels connect lazily: the web server starts even if a service is down,
    /// and a checkout then reports that service as unavailable.
    pub fn new(urls: &ServiceUrls, deadline: Duration) -> Result<Self, tonic::transport::Error> {
        let channel = |url: &str| platform::grpc::channel(url, deadline);
        // One channel per service, shared by its own client and its order cache's.
        let (tv, fd, sg) =
            (channel(&urls.transaction_verification)?, channel(&urls.fraud_detection)?, channel(&urls.suggestions)?);
        let queue = channel(&urls.order_queue)?;
        Ok(Self {
            order_caches: [tv.clone(), fd.clone(), sg.clone()].map(OrderCacheClient::new),
            health: [
                (Verifier::TransactionVerification.name(), HealthClient::new(tv.clone())),
                (Verifier::FraudDetection.name(), HealthClient::new(fd.clone())),
                (Verifier::Suggestions.name(), HealthClient::new(sg.clone())),
                (ORDER_QUEUE, HealthClient::new(queue.clone())),
            ],
            transaction_verification: TransactionVerificationClient::new(tv),
            fraud_detection: FraudDetectionClient::new(fd),
            suggestions: SuggestionsClient::new(sg),
            order_queue: OrderQueueClient::new(queue),
            deadline,
        })
    }

    /// Asks every service a checkout calls whether it serves, all at once, each
    /// within the deadline; answers the names of those that do not, with why.
    pub async fn not_serving(&self) -> Vec<(&'static str, String)> {
        let asks = self.health.iter().map(|(name, client)| async move {
            let mut client = client.clone();
            let answer = self.call_raw(name, client.check(self.request(HealthCheckRequest::default()))).await;
            match answer.map(|response| response.status()) {
                Ok(ServingStatus::Serving) => None,
                Ok(status) => Some((*name, format!("reports {}", status.as_str_name()))),
                Err(failure) => Some((*name, describe(&failure).to_owned())),
            }
        });
        futures::future::join_all(asks).await.into_iter().flatten().collect()
    }

    /// A request carrying the deadline, so the service can give up too.
    pub fn request<T>(&self, message: T) -> Request<T> {
        platform::grpc::request(message, self.deadline)
    }

    /// Awaits `call` for at most the deadline; a failure or time-out becomes an
    /// `unavailable` refusal naming `step` and `service`.
    pub async fn call<T>(
        &self,
        step: Step,
        service: &'static str,
        call: impl Future<Output = Result<Response<T>, Status>>,
    ) -> Result<T, Refusal> {
        self.call_raw(service, call).await.map_err(|failure| Refusal::unavailable(step, service, describe(&failure)))
    }

    /// Awaits `call` for at most the deadline, logging a failure.
    pub async fn call_raw<T>(
        &self,
        service: &'static str,
        call: impl Future<Output = Result<Response<T>, Status>>,
    ) -> Result<T, CallFailure> {
        let answer = platform::grpc::within(self.deadline, call).await;
        match &answer {
            Ok(_) => {}
            Err(CallFailure::Status(status)) => {
                tracing::warn!(service, code = ?status.code(), message = status.message(), "call failed")
            }
            Err(CallFailure::TimedOut) => {
                tracing::warn!(service, deadline_ms = self.deadline.as_millis() as u64, "call timed out")
            }
        }
        answer
    }
}

/// Whether a failed call certainly did nothing: the service refused it before
/// acting (a bad argument, too busy, ...). A call that timed out, was cut off or
/// failed inside the service may have done its work all the same.
pub(super) fn did_nothing(failure: &CallFailure) -> bool {
    match failure {
        CallFailure::TimedOut => false,
        CallFailure::Status(status) if status.code() == Code::Unavailable => refused_to_connect(status),
        CallFailure::Status(status) => !matches!(
            status.code(),
            Code::DeadlineExceeded | Code::Cancelled | Code::Unknown | Code::Internal | Code::DataLoss
        ),
    }
}

/// Whether the call failed because nothing listened at the service's address (a
/// stopped service): the request was never sent.
fn refused_to_connect(status: &tonic::Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        if error.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused) {
            return true;
        }
        source = error.source();
    }
    false
}

/// What a shopper may be told about a failed call: the kind of failure, never the
/// service's internals.
pub(super) fn describe(failure: &CallFailure) -> &'static str {
    match failure {
        CallFailure::TimedOut => "the service did not answer in time",
        CallFailure::Status(status) => match status.code() {
            Code::DeadlineExceeded | Code::Cancelled => "the service did not answer in time",
            Code::Unavailable | Code::Unknown => "the service is not reachable",
            Code::ResourceExhausted => "the service is busy",
            _ => "the service reported an internal error",
        },
    }
}
