//! A call that is a span of the caller's trace: a client span named as
//! OpenTelemetry's RPC conventions say (`bookstore.v1.OrderQueue/Enqueue`, with
//! `rpc.system.name`, `rpc.method` and, once answered,
//! `rpc.response.status_code`), whose context the request carries (built by
//! [`super::request`] inside the span), so the service's span is its child.
//! While tracing is off the span is disabled and costs nothing.

use std::future::Future;
use std::time::Duration;

use tracing::Instrument as _;

use super::CallFailure;

pub struct Call {
    span: tracing::Span,
    deadline: Duration,
}

impl Call {
    /// A call to `method` of `service` (gRPC's names: `bookstore.v1.OrderQueue`,
    /// `Enqueue`), answered within `deadline`, as a child of the current span.
    pub fn new(service: &'static str, method: &'static str, deadline: Duration) -> Self {
        let span = crate::traced_span!(
            "grpc.client",
            otel.name = %format_args!("{service}/{method}"),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            rpc.system.name = "grpc",
            rpc.method = %format_args!("{service}/{method}"),
            rpc.response.status_code = tracing::field::Empty,
            order.id = tracing::field::Empty,
            checkout.step = tracing::field::Empty,
            checkout.refusal_code = tracing::field::Empty,
        );
        Self { span, deadline }
    }

    /// Notes the order the call is about (`order.id`).
    pub fn for_order(self, order_id: &str) -> Self {
        self.span.record("order.id", order_id);
        self
    }

    /// The call's span, to record what the caller knows of it (`checkout.step`,
    /// `checkout.refusal_code`).
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// `message` as this call's request: its deadline, and this span's context.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        self.span.in_scope(|| super::request(message, self.deadline))
    }

    /// Awaits the call (made with [`Call::request`]) for at most the deadline:
    /// its message, or why there is none; the span records the status.
    pub async fn within<T>(
        &self,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, CallFailure> {
        let answer = super::within(self.deadline, call).instrument(self.span.clone()).await;
        self.ended(match &answer {
            Ok(_) => tonic::Code::Ok,
            Err(CallFailure::Status(status)) => status.code(),
            Err(CallFailure::TimedOut) => tonic::Code::DeadlineExceeded,
        });
        answer
    }

    /// Awaits `call`, which bounds itself (a replicated group's client rides out
    /// an election, trying replica after replica, each try with the deadline),
    /// inside the span; the span records the status.
    pub async fn answered<T>(&self, call: impl Future<Output = Result<T, tonic::Status>>) -> Result<T, tonic::Status> {
        let answer = call.instrument(self.span.clone()).await;
        self.ended(answer.as_ref().map_or_else(tonic::Status::code, |_| tonic::Code::Ok));
        answer
    }

    fn ended(&self, code: tonic::Code) {
        self.span.record("rpc.response.status_code", super::observe::code_name(code));
        if code != tonic::Code::Ok {
            self.span.record("otel.status_code", "ERROR");
        }
    }
}
