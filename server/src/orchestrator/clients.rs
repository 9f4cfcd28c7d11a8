//! The orchestrator's gRPC clients, and the one place a downstream call gets its
//! deadline and its failure turned into a refusal the shopper can read.

use std::future::Future;
use std::time::Duration;

use domain::{Refusal, Step};
use proto::v1::fraud_detection_client::FraudDetectionClient;
use proto::v1::order_queue_client::OrderQueueClient;
use proto::v1::suggestions_client::SuggestionsClient;
use proto::v1::transaction_verification_client::TransactionVerificationClient;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

use crate::config::ServiceUrls;

pub const TRANSACTION_VERIFICATION: &str = "transaction_verification";
pub const FRAUD_DETECTION: &str = "fraud_detection";
pub const SUGGESTIONS: &str = "suggestions";
pub const ORDER_QUEUE: &str = "order_queue";

#[derive(Clone)]
pub struct Clients {
    pub transaction_verification: TransactionVerificationClient<Channel>,
    pub fraud_detection: FraudDetectionClient<Channel>,
    pub suggestions: SuggestionsClient<Channel>,
    pub order_queue: OrderQueueClient<Channel>,
    /// Every call's deadline.
    pub deadline: Duration,
}

impl Clients {
    /// Channels connect lazily: the web server starts even if a service is down,
    /// and a checkout then reports that service as unavailable.
    pub fn new(urls: &ServiceUrls, deadline: Duration) -> Result<Self, tonic::transport::Error> {
        let channel = |url: &str| platform::grpc::channel(url, deadline);
        Ok(Self {
            transaction_verification: TransactionVerificationClient::new(channel(&urls.transaction_verification)?),
            fraud_detection: FraudDetectionClient::new(channel(&urls.fraud_detection)?),
            suggestions: SuggestionsClient::new(channel(&urls.suggestions)?),
            order_queue: OrderQueueClient::new(channel(&urls.order_queue)?),
            deadline,
        })
    }

    /// A request carrying the deadline, so the service can give up too.
    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(self.deadline);
        request
    }

    /// Awaits `call` for at most the deadline; a failure or time-out becomes an
    /// `unavailable` refusal naming `step` and `service`.
    pub async fn call<T>(
        &self,
        step: Step,
        service: &'static str,
        call: impl Future<Output = Result<Response<T>, Status>>,
    ) -> Result<T, Refusal> {
        self.call_raw(service, call).await.map_err(|failure| Refusal::unavailable(step, service, failure.describe()))
    }

    /// Awaits `call` for at most the deadline, logging a failure.
    pub async fn call_raw<T>(
        &self,
        service: &'static str,
        call: impl Future<Output = Result<Response<T>, Status>>,
    ) -> Result<T, CallFailure> {
        match tokio::time::timeout(self.deadline, call).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => {
                tracing::warn!(service, code = ?status.code(), message = status.message(), "call failed");
                Err(CallFailure::Status(status.code()))
            }
            Err(_) => {
                tracing::warn!(service, deadline_ms = self.deadline.as_millis() as u64, "call timed out");
                Err(CallFailure::TimedOut)
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallFailure {
    Status(Code),
    TimedOut,
}

impl CallFailure {
    /// What a shopper may be told about a failed call: the kind of failure, never
    /// the service's internals.
    fn describe(self) -> &'static str {
        match self {
            Self::TimedOut | Self::Status(Code::DeadlineExceeded | Code::Cancelled) => {
                "the service did not answer in time"
            }
            Self::Status(Code::Unavailable | Code::Unknown) => "the service is not reachable",
            Self::Status(Code::ResourceExhausted) => "the service is busy",
            Self::Status(_) => "the service reported an internal error",
        }
    }
}
