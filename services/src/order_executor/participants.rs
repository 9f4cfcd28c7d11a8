//! The coordinator's participants and queue, over gRPC: every call has a deadline,
//! and a failed or late call is `Unreachable` (the coordinator aborts, or resends
//! the decision).

use std::time::Duration;

use futures::future::BoxFuture;
use platform::grpc::{self, request, CallFailure};
use proto::v1 as pb;
use proto::v1::order_queue_client::OrderQueueClient;
use proto::v1::payment_client::PaymentClient;
use tonic::transport::Channel;
use tonic::Code;

use super::coordinator::{Participant, QueueAck, Unreachable, Vote};
use super::state::Execution;

fn unreachable(participant: &'static str, status: &tonic::Status) -> Unreachable {
    Unreachable { participant, detail: format!("{:?}: {}", status.code(), status.message()) }
}

/// Awaits a call with a deadline; any failure is `Unreachable`.
async fn within<T>(
    participant: &'static str,
    deadline: Duration,
    call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, Unreachable> {
    grpc::within(deadline, call).await.map_err(|failure| Unreachable { participant, detail: failure.to_string() })
}

/// Awaits a queue call: its answer, or the status it failed with (which the caller
/// reads), or `Unreachable` if nothing came in time.
async fn answered<T>(
    deadline: Duration,
    call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<Result<T, tonic::Status>, Unreachable> {
    match grpc::within(deadline, call).await {
        Ok(answer) => Ok(Ok(answer)),
        Err(CallFailure::Status(status)) => Ok(Err(status)),
        Err(failure @ CallFailure::TimedOut) => {
            Err(Unreachable { participant: "order_queue", detail: failure.to_string() })
        }
    }
}

pub struct PaymentParticipant {
    client: PaymentClient<Channel>,
    deadline: Duration,
}

impl PaymentParticipant {
    pub fn new(channel: Channel, deadline: Duration) -> Self {
        Self { client: PaymentClient::new(channel), deadline }
    }
}

impl Participant for PaymentParticipant {
    fn name(&self) -> &'static str {
        "payment"
    }

    fn prepare<'a>(&'a self, execution: &'a Execution) -> BoxFuture<'a, Result<Vote, Unreachable>> {
        Box::pin(async move {
            let card = pb::CardToken {
                network: execution.card_network.clone(),
                last4: execution.card_last4.clone(),
                fingerprint: execution.card_fingerprint.clone(),
                expiry: String::new(),
            };
            let message = pb::PaymentPrepareRequest {
                order_id: execution.order_id.clone(),
                amount_cents: execution.total_cents,
                card: Some(card),
            };
            let mut client = self.client.clone();
            let vote = within("payment", self.deadline, client.prepare(request(message, self.deadline))).await?;
            Ok(if vote.yes { Vote::Yes } else { Vote::No { reason: vote.reason } })
        })
    }

    fn commit<'a>(&'a self, order_id: &'a str) -> BoxFuture<'a, Result<(), Unreachable>> {
        Box::pin(self.decide(order_id, true))
    }

    fn abort<'a>(&'a self, order_id: &'a str) -> BoxFuture<'a, Result<(), Unreachable>> {
        Box::pin(self.decide(order_id, false))
    }
}

impl PaymentParticipant {
    /// Sends the decision; answered means acknowledged. A payment left in the
    /// other state (or none prepared, for a commit) is a conflict: the log forbids
    /// two decisions, so it is a bug. It is logged, loudly, and not sent again:
    /// sending it again would change nothing.
    async fn decide(&self, order_id: &str, commit: bool) -> Result<(), Unreachable> {
        let mut client = self.client.clone();
        let message = request(pb::PaymentDecision { order_id: order_id.to_owned() }, self.deadline);
        let call = async move {
            match commit {
                true => client.commit(message).await,
                false => client.abort(message).await,
            }
        };
        let state = match answered(self.deadline, call).await {
            Ok(Ok(record)) => record.state(),
            Ok(Err(status)) if status.code() == Code::NotFound => pb::PaymentState::Unspecified,
            Ok(Err(status)) => return Err(unreachable("payment", &status)),
            Err(unanswered) => return Err(Unreachable { participant: "payment", ..unanswered }),
        };
        let holds = if commit { state == pb::PaymentState::Captured } else { state != pb::PaymentState::Captured };
        if !holds {
            tracing::error!(%order_id, commit, ?state, "payment holds another outcome; the decision is not sent again");
        }
        Ok(())
    }
}

pub struct QueueClient {
    client: OrderQueueClient<Channel>,
    deadline: Duration,
}

impl QueueClient {
    pub fn new(channel: Channel, deadline: Duration) -> Self {
        Self { client: OrderQueueClient::new(channel), deadline }
    }

    /// Long-polls for up to `max` orders from the head of the queue, each leased
    /// for `lease` to `consumer`, the leader of `leader_term`: each with its lease
    /// id, in delivery order; none if none came within `wait`. With `resend_held`,
    /// first the orders `consumer` holds already, if any (after a poll whose answer
    /// was lost).
    pub async fn next_batch(
        &self,
        max: usize,
        wait: Duration,
        lease: Duration,
        consumer: &str,
        leader_term: u64,
        resend_held: bool,
    ) -> Result<Vec<(pb::QueuedOrder, String)>, QueueError> {
        let message = pb::DequeueBatchRequest {
            wait_ms: wait.as_millis().min(u128::from(u32::MAX)) as u32,
            lease_ms: lease.as_millis().min(u128::from(u32::MAX)) as u32,
            consumer: consumer.to_owned(),
            leader_term,
            max: max.clamp(1, u32::MAX as usize) as u32,
            resend_held,
        };
        let mut client = self.client.clone();
        // The long poll may take `wait`; the deadline comes on top.
        let deadline = wait + self.deadline;
        let batch = fenced(deadline, client.dequeue_batch(request(message, deadline))).await?;
        Ok(batch
            .deliveries
            .into_iter()
            .filter_map(|delivery| delivery.order.map(|order| (order, delivery.lease_id)))
            .collect())
    }
}

/// Why the queue gave this leader nothing.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(transparent)]
    Unreachable(#[from] Unreachable),
    /// A newer leader took the queue over: this replica is deposed, whether or not
    /// its Raft node has noticed yet.
    #[error("{0}")]
    Superseded(String),
}

/// Awaits a call the queue fences by leader term.
async fn fenced<T>(
    deadline: Duration,
    call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, QueueError> {
    match answered(deadline, call).await? {
        Ok(response) => Ok(response),
        Err(status) if status.code() == Code::FailedPrecondition => {
            Err(QueueError::Superseded(status.message().to_owned()))
        }
        Err(status) => Err(unreachable("order_queue", &status).into()),
    }
}

impl QueueClient {
    /// Gives back an order this leader took and cannot run, so the next leader gets
    /// it at once rather than when its lease runs out.
    pub async fn release(&self, order_id: &str, lease_id: &str) -> Result<(), Unreachable> {
        let mut client = self.client.clone();
        let message = pb::ReleaseRequest { order_id: order_id.to_owned(), lease_id: lease_id.to_owned() };
        settle_lease(self.deadline, client.release(request(message, self.deadline))).await
    }

    /// Ends the leases of every consumer but `consumer` (this leader, this term)
    /// and fences out older terms; answers how many leases ended.
    pub async fn take_over(&self, consumer: &str, leader_term: u64) -> Result<u32, QueueError> {
        let mut client = self.client.clone();
        let message = pb::TakeOverRequest { consumer: consumer.to_owned(), leader_term };
        fenced(self.deadline, client.take_over(request(message, self.deadline))).await.map(|answer| answer.released)
    }
}

impl QueueAck for QueueClient {
    fn ack<'a>(&'a self, order_id: &'a str, lease_id: &'a str) -> BoxFuture<'a, Result<(), Unreachable>> {
        Box::pin(async move {
            let mut client = self.client.clone();
            let message = pb::AckRequest { order_id: order_id.to_owned(), lease_id: lease_id.to_owned() };
            settle_lease(self.deadline, client.ack(request(message, self.deadline))).await
        })
    }
}

/// Awaits an acknowledgement or release of a lease. An order acknowledged before,
/// or whose lease ended and went to someone else, needs nothing more: done.
async fn settle_lease<T>(
    deadline: Duration,
    call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<(), Unreachable> {
    match answered(deadline, call).await? {
        Ok(_) => Ok(()),
        Err(status) if matches!(status.code(), Code::NotFound | Code::FailedPrecondition) => Ok(()),
        Err(status) => Err(unreachable("order_queue", &status)),
    }
}

/// books_db, through its leader.
pub struct BooksParticipant {
    client: crate::leader_client::LeaderClient,
    deadline: Duration,
}

impl BooksParticipant {
    pub fn new(client: crate::leader_client::LeaderClient, deadline: Duration) -> Self {
        Self { client, deadline }
    }

    async fn decide(&self, order_id: &str, commit: bool) -> Result<(), Unreachable> {
        let answer = self
            .client
            .call(|channel| async move {
                let mut client = proto::v1::books_db_client::BooksDbClient::new(channel);
                let decision = request(pb::BooksDecision { order_id: order_id.to_owned() }, self.deadline);
                if commit {
                    client.commit(decision).await
                } else {
                    client.abort(decision).await
                }
            })
            .await;
        let ack = answer.map_err(|status| unreachable("books_db", &status))?.into_inner();
        match ack.outcome() {
            // Not an acknowledgement this version can read: send the decision again.
            pb::BooksOutcome::Unspecified => Err(Unreachable {
                participant: "books_db",
                detail: format!("an acknowledgement without a known outcome ({})", ack.outcome),
            }),
            outcome => {
                // books_db keeps the first decision; another one here (or a commit
                // of an order it never prepared) means two coordinators decided
                // differently, which the decision log forbids: a bug, logged
                // loudly and not sent again (it would change nothing).
                if (outcome == pb::BooksOutcome::Committed) != commit {
                    tracing::error!(%order_id, commit, ?outcome, "books_db holds another outcome; the decision is not sent again");
                }
                Ok(())
            }
        }
    }
}

impl Participant for BooksParticipant {
    fn name(&self) -> &'static str {
        "books_db"
    }

    fn prepare<'a>(&'a self, execution: &'a Execution) -> BoxFuture<'a, Result<Vote, Unreachable>> {
        Box::pin(async move {
            // An order whose lines could not be read (`replica::execution_from`)
            // reserves nothing.
            if execution.lines.is_empty() {
                return Ok(Vote::No { reason: "the order's lines could not be read".to_owned() });
            }
            let lines: Vec<pb::OrderLine> = execution.lines.iter().map(pb::OrderLine::from).collect();
            let vote = self
                .client
                .call(|channel| {
                    let message =
                        pb::BooksPrepareRequest { order_id: execution.order_id.clone(), lines: lines.clone() };
                    async move {
                        proto::v1::books_db_client::BooksDbClient::new(channel)
                            .prepare(request(message, self.deadline))
                            .await
                    }
                })
                .await
                .map_err(|status| unreachable("books_db", &status))?
                .into_inner();
            Ok(if vote.yes { Vote::Yes } else { Vote::No { reason: vote.reason } })
        })
    }

    fn commit<'a>(&'a self, order_id: &'a str) -> BoxFuture<'a, Result<(), Unreachable>> {
        Box::pin(self.decide(order_id, true))
    }

    fn abort<'a>(&'a self, order_id: &'a str) -> BoxFuture<'a, Result<(), Unreachable>> {
        Box::pin(self.decide(order_id, false))
    }
}
