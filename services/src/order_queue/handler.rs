//! The gRPC face of the queue: validation, long polling, and moving the blocking
//! database work off the async runtime.

use platform::clock::unix_ms;
use std::sync::Arc;
use std::time::Duration;

use proto::enums::client_card_from_proto;
use proto::order_line::order_lines_from_proto;
use proto::v1 as pb;
use proto::v1::order_queue_server::OrderQueue;
use tokio::sync::Notify;
use tokio::time::Instant;
use tonic::{Request, Response, Status};

use super::metrics::QueueMetrics;
use super::store::{Acked, Delivery, Enqueued, QueueStore, Released, StoreError, Withdrawn};
use super::QueueConfig;

/// The most orders one DequeueBatch leases.
pub const MAX_BATCH: usize = 512;

impl From<Delivery> for pb::Delivery {
    fn from(delivery: Delivery) -> Self {
        Self {
            order: Some(delivery.order),
            lease_id: delivery.lease_id,
            lease_expires_at_unix_ms: delivery.lease_expires_at_ms,
            delivery_count: delivery.delivery_count,
        }
    }
}

/// A long poll's parameters, as Dequeue and DequeueBatch carry them.
struct Poll {
    wait_ms: u32,
    lease_ms: u32,
    consumer: String,
    leader_term: u64,
    max: usize,
}

pub struct OrderQueueService {
    store: Arc<QueueStore>,
    config: QueueConfig,
    /// Woken on every enqueue, so a long-polling consumer gets the order at once.
    arrivals: Arc<Notify>,
    metrics: QueueMetrics,
}

impl From<StoreError> for Status {
    fn from(error: StoreError) -> Self {
        if let StoreError::Superseded { .. } = error {
            tracing::info!(%error, "refused a superseded executor leader");
            return Status::failed_precondition(error.to_string());
        }
        tracing::error!(%error, "queue storage failed");
        Status::unavailable(error.to_string())
    }
}

impl OrderQueueService {
    pub(super) fn new(store: Arc<QueueStore>, config: QueueConfig, metrics: QueueMetrics) -> Self {
        Self { store, config, arrivals: Arc::new(Notify::new()), metrics }
    }

    /// Leases up to `poll.max` orders, waiting up to `poll.wait_ms` (capped) for the
    /// first to become ready: an enqueue wakes it, and so does the next lease to
    /// expire. Empty when none came in time.
    async fn long_poll(&self, poll: Poll) -> Result<Vec<Delivery>, Status> {
        let wait = Duration::from_millis(u64::from(poll.wait_ms)).min(self.config.max_wait);
        let lease_ms = match poll.lease_ms {
            0 => self.config.default_lease.as_millis() as u64,
            ms => u64::from(ms),
        };
        let deadline = Instant::now() + wait;
        loop {
            // Register for wake-ups before looking, so an enqueue in between is not missed.
            let arrival = self.arrivals.notified();
            tokio::pin!(arrival);
            arrival.as_mut().enable();
            let deliveries =
                self.store.dequeue_batch(unix_ms(), lease_ms, &poll.consumer, poll.leader_term, poll.max).await?;
            if !deliveries.is_empty() {
                for delivery in &deliveries {
                    self.metrics.delivered(delivery.delivery_count);
                    tracing::info!(order_id = %delivery.order.order_id, consumer = %poll.consumer, delivery = delivery.delivery_count, "delivered");
                }
                return Ok(deliveries);
            }
            if Instant::now() >= deadline {
                return Ok(deliveries);
            }
            // Wake for an arrival, the deadline, or the next lease expiry.
            let mut wake_at = deadline;
            if let Some(expiry_ms) = self.blocking(QueueStore::next_lease_expiry).await? {
                let until_expiry = Duration::from_millis(expiry_ms.saturating_sub(unix_ms()));
                wake_at = wake_at.min(Instant::now() + until_expiry);
            }
            tokio::select! {
                () = arrival => {},
                () = tokio::time::sleep_until(wake_at) => {},
            }
        }
    }

    /// Runs a blocking read on the blocking pool (writes go through the store's
    /// group commit, which has a thread of its own).
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&QueueStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, Status> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || work(&store))
            .await
            .map_err(|e| Status::internal(format!("queue task failed: {e}")))?
            .map_err(Status::from)
    }
}

#[tonic::async_trait]
impl OrderQueue for OrderQueueService {
    async fn enqueue(&self, request: Request<pb::EnqueueRequest>) -> Result<Response<pb::EnqueueResponse>, Status> {
        let order = request.into_inner().order.ok_or_else(|| Status::invalid_argument("enqueue needs the order"))?;
        platform::grpc::order_id(&order.order_id)?;
        let priority = client_card_from_proto("QueuedOrder.client_card", order.client_card)
            .map_err(|unreadable| Status::invalid_argument(unreadable.to_string()))?;
        order_lines_from_proto("lines", &order.lines)
            .map_err(|error| Status::invalid_argument(format!("{}: {}", error.field, error.message)))?;
        if !platform::telemetry::context::carrier_is_sound(&order.trace_context) {
            return Err(Status::invalid_argument(format!(
                "trace_context: at most traceparent and tracestate, {} bytes in all",
                platform::telemetry::context::CARRIER_MAX_BYTES
            )));
        }
        let order_id = order.order_id.clone();
        let enqueued = self.store.enqueue(order, priority.queue_rank()).await?;
        match enqueued {
            Enqueued::Added => {
                self.metrics.enqueued(priority);
                tracing::info!(%order_id, %priority, "enqueued");
                self.arrivals.notify_waiters();
            }
            Enqueued::Duplicate => tracing::info!(%order_id, "duplicate enqueue ignored"),
            Enqueued::Withdrawn => {
                tracing::warn!(%order_id, "an enqueue arrived after its order was withdrawn: not added")
            }
        }
        Ok(Response::new(pb::EnqueueResponse {
            duplicate: enqueued == Enqueued::Duplicate,
            withdrawn: enqueued == Enqueued::Withdrawn,
        }))
    }

    async fn dequeue(&self, request: Request<pb::DequeueRequest>) -> Result<Response<pb::DequeueResponse>, Status> {
        let pb::DequeueRequest { wait_ms, lease_ms, consumer, leader_term } = request.into_inner();
        let poll = Poll { wait_ms, lease_ms, consumer, leader_term, max: 1 };
        let answer = self.long_poll(poll).await?.pop().map(pb::Delivery::from).map_or_else(
            pb::DequeueResponse::default,
            |pb::Delivery { order, lease_id, lease_expires_at_unix_ms, delivery_count }| pb::DequeueResponse {
                order,
                lease_id,
                lease_expires_at_unix_ms,
                delivery_count,
            },
        );
        Ok(Response::new(answer))
    }

    async fn dequeue_batch(
        &self,
        request: Request<pb::DequeueBatchRequest>,
    ) -> Result<Response<pb::DequeueBatchResponse>, Status> {
        let pb::DequeueBatchRequest { wait_ms, lease_ms, consumer, leader_term, max, resend_held } =
            request.into_inner();
        if max == 0 {
            return Err(Status::invalid_argument("max: must be at least 1"));
        }
        let max = (max as usize).min(MAX_BATCH);
        if resend_held {
            let asker = consumer.clone();
            let held = self.blocking(move |store| store.held(&asker, unix_ms())).await?;
            if !held.is_empty() {
                tracing::info!(%consumer, orders = held.len(), "delivered again what the consumer holds");
                let deliveries = held.into_iter().map(pb::Delivery::from).collect();
                return Ok(Response::new(pb::DequeueBatchResponse { deliveries }));
            }
        }
        let deliveries = self.long_poll(Poll { wait_ms, lease_ms, consumer, leader_term, max }).await?;
        let deliveries = deliveries.into_iter().map(pb::Delivery::from).collect();
        Ok(Response::new(pb::DequeueBatchResponse { deliveries }))
    }

    async fn ack(&self, request: Request<pb::AckRequest>) -> Result<Response<pb::AckResponse>, Status> {
        let pb::AckRequest { order_id, lease_id } = request.into_inner();
        let acked = self.store.ack(&order_id, &lease_id, unix_ms()).await?;
        match acked {
            Acked::Removed => {
                self.metrics.acknowledged();
                tracing::info!(%order_id, "acknowledged");
            }
            Acked::AlreadyDone => tracing::debug!(%order_id, "acknowledged again"),
            Acked::LeaseLost => {
                return Err(Status::failed_precondition(format!(
                    "the lease on order {order_id} expired and the order was delivered again; only the current lease may acknowledge it"
                )))
            }
            Acked::UnknownOrder => return Err(Status::not_found(format!("the queue has no order {order_id}"))),
        }
        Ok(Response::new(pb::AckResponse {}))
    }

    async fn release(&self, request: Request<pb::ReleaseRequest>) -> Result<Response<pb::ReleaseResponse>, Status> {
        let pb::ReleaseRequest { order_id, lease_id } = request.into_inner();
        let released = self.store.release(&order_id, &lease_id).await?;
        match released {
            Released::Ready => {
                tracing::info!(%order_id, "released by its holder: ready again");
                self.arrivals.notify_waiters();
            }
            Released::AlreadyDone => tracing::debug!(%order_id, "released after its acknowledgement: nothing to do"),
            Released::LeaseLost => {
                return Err(Status::failed_precondition(format!(
                    "the lease on order {order_id} is no longer its current one"
                )))
            }
            Released::UnknownOrder => return Err(Status::not_found(format!("the queue has no order {order_id}"))),
        }
        Ok(Response::new(pb::ReleaseResponse {}))
    }

    async fn take_over(&self, request: Request<pb::TakeOverRequest>) -> Result<Response<pb::TakeOverResponse>, Status> {
        let pb::TakeOverRequest { consumer, leader_term } = request.into_inner();
        if consumer.is_empty() {
            return Err(Status::invalid_argument("consumer must name the new leader"));
        }
        let released = self.store.take_over(&consumer, leader_term).await?;
        tracing::info!(%consumer, leader_term, released, "an executor leader took over");
        if released > 0 {
            self.arrivals.notify_waiters();
        }
        Ok(Response::new(pb::TakeOverResponse { released }))
    }

    async fn lookup(&self, request: Request<pb::LookupRequest>) -> Result<Response<pb::LookupResponse>, Status> {
        let order_id = request.into_inner().order_id;
        let found = self.blocking(move |store| store.look_up(&order_id)).await?;
        let order = found.order.unwrap_or_default();
        Ok(Response::new(pb::LookupResponse {
            state: pb::QueueState::from(found.location).into(),
            position: found.position.unwrap_or_default(),
            client_card: order.client_card,
            accepted_at_unix_ms: order.accepted_at_unix_ms,
            checkout_events: order.checkout_events,
            trace_context: order.trace_context,
        }))
    }

    async fn withdraw(&self, request: Request<pb::WithdrawRequest>) -> Result<Response<pb::WithdrawResponse>, Status> {
        let order_id = request.into_inner().order_id;
        platform::grpc::order_id(&order_id)?;
        let outcome = match self.store.withdraw(&order_id, unix_ms()).await? {
            Withdrawn::Withdrawn => {
                tracing::info!(%order_id, "withdrawn: its enqueue got no answer");
                pb::WithdrawOutcome::Withdrawn
            }
            Withdrawn::Taken => {
                tracing::info!(%order_id, "not withdrawn: the executors have it");
                pb::WithdrawOutcome::Taken
            }
        };
        Ok(Response::new(pb::WithdrawResponse { outcome: outcome.into() }))
    }

    async fn stats(&self, _: Request<pb::StatsRequest>) -> Result<Response<pb::StatsResponse>, Status> {
        let depth = self.blocking(QueueStore::depth).await?;
        let [premium, basic, none] = depth.ready_by_rank;
        Ok(Response::new(pb::StatsResponse { premium, basic, none, leased: depth.leased }))
    }
}
