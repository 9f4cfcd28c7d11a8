//! One order_executor replica: a member of the executors' Raft group, serving
//! status questions, and — while it leads — taking orders from the queue and
//! running their two-phase commit (`coordinator`). On becoming leader it first
//! finishes what its predecessor left in flight.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use consensus::{Node, NodeError, NodeId};
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use opentelemetry::trace::{FutureExt as _, SpanContext, SpanKind, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use platform::metrics::Registry;
use platform::telemetry::spans;
use proto::v1 as pb;
use proto::v1::order_executor_server::{OrderExecutor, OrderExecutorServer};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tonic::{Request, Response, Status};

use super::backoff::{Backoff, BackoffPolicy};
use super::coordinator::{order_span, Coordinator, DecisionLog, Finished, LogError, RetryPolicy};
use super::metrics::ExecutionMetrics;
use super::participants::{BooksParticipant, PaymentParticipant, QueueClient, QueueError};
use super::state::{Command, Execution, ExecutorState, Outcome, Record};
use crate::leader_client::LeaderClient;
use crate::replicated::{self, ReplicaError};
use platform::grpc;
use proto::enums::client_card_from_proto;
use proto::journey;
use proto::order_line::order_lines_from_proto;

impl consensus::StateMachine for ExecutorState {
    type Command = Command;
    type Output = Outcome;

    fn apply(&mut self, command: &Command) -> Outcome {
        ExecutorState::apply(self, command)
    }
}

/// How many orders the leader runs at once unless told otherwise.
pub const DEFAULT_WINDOW: usize = 256;

/// [`ExecutorConfig::gather`]'s default.
pub const DEFAULT_GATHER: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    pub raft: consensus::Config,
    pub queue_url: String,
    pub payment_url: String,
    pub books_db_urls: Vec<String>,
    /// Deadline of each call to a participant or the queue.
    pub call_deadline: Duration,
    /// How long the queue leases an order to the leader.
    pub lease: Duration,
    /// The most orders the leader runs at once.
    pub window: usize,
    /// The most orders it takes from the queue in one call.
    pub batch: usize,
    /// How long the leader waits, after taking fewer orders than it asked for,
    /// before it asks the queue again, so that orders arriving a few apart start
    /// together and share Raft entries, fsyncs and messages (at 200 orders a
    /// second, 50 ms gathers about ten; docs/benchmarks.md has what it saves).
    /// The first order after a quiet spell starts at once, and a full batch is
    /// followed by the next at once, so the pause costs nothing at peak; it adds
    /// at most this much to an order's execution, not to its checkout. Zero: ask
    /// again at once.
    pub gather: Duration,
    pub backoff: BackoffPolicy,
    /// How long a finished order is kept (for its page) before the group forgets
    /// it; the leader looks for such orders every `prune_every`.
    pub retention: Duration,
    pub prune_every: Duration,
}

impl ExecutorConfig {
    pub fn new(queue_url: String, payment_url: String, books_db_urls: Vec<String>) -> Self {
        Self {
            raft: consensus::Config { cluster_name: "order_executor".to_owned(), ..consensus::Config::default() },
            queue_url,
            payment_url,
            books_db_urls,
            call_deadline: Duration::from_secs(1),
            lease: Duration::from_secs(30),
            window: DEFAULT_WINDOW,
            batch: 64,
            gather: DEFAULT_GATHER,
            backoff: BackoffPolicy::default(),
            retention: crate::retention::DEFAULT,
            prune_every: crate::retention::sweep_every(crate::retention::DEFAULT),
        }
    }
}

/// The group's log as the coordinator needs it.
struct RaftLog(Node<ExecutorState>);

impl DecisionLog for RaftLog {
    fn propose(&self, command: Command) -> BoxFuture<'_, Result<Outcome, LogError>> {
        Box::pin(async move {
            self.0.write(command).await.map_err(|error| match error {
                NodeError::NotLeader { .. } => LogError::NotLeader,
                other => LogError::Failed(other.to_string()),
            })
        })
    }

    fn in_flight(&self) -> Vec<Record> {
        self.0.read(|state| state.in_flight().cloned().collect())
    }

    fn is_leader(&self) -> bool {
        self.0.is_leader()
    }

    fn leadership(&self) -> (u64, u64) {
        (self.0.id(), self.0.term())
    }
}

struct StatusService(Node<ExecutorState>);

#[tonic::async_trait]
impl OrderExecutor for StatusService {
    async fn order_status(
        &self,
        request: Request<pb::OrderStatusRequest>,
    ) -> Result<Response<pb::OrderStatusResponse>, Status> {
        let order_id = request.into_inner().order_id;
        let answer = self.0.read(|state| {
            let Some(record) = state.get(&order_id) else {
                let archived_before_unix_ms = state.archived_before_ms();
                return pb::OrderStatusResponse { archived_before_unix_ms, ..pb::OrderStatusResponse::default() };
            };
            pb::OrderStatusResponse {
                known: true,
                status: pb::OrderState::from(record.phase.status()).into(),
                reason: record.phase.reason().unwrap_or_default().to_owned(),
                sequence: record.sequence,
                checkout_events: record
                    .execution
                    .checkout_events
                    .iter()
                    .map(journey::checkout_event_to_proto)
                    .collect(),
                client_card: record
                    .execution
                    .client_card
                    .map_or(pb::ClientCard::Unspecified, pb::ClientCard::from)
                    .into(),
                accepted_at_unix_ms: record.execution.accepted_at_ms,
                started: record.execution.started.as_ref().map(journey::stamp_to_proto),
                votes: record.votes.iter().map(journey::vote_to_proto).collect(),
                decided: record.decided.as_ref().map(journey::stamp_to_proto),
                completed_at_unix_ms: record.completed_at_ms.unwrap_or_default(),
                trace_context: record.execution.trace_context.clone(),
                archived_before_unix_ms: 0,
            }
        });
        Ok(Response::new(answer))
    }
}

type LiveCoordinator = Coordinator<RaftLog, BooksParticipant, PaymentParticipant, QueueClient>;

/// Runs replica `id` of the executors' group until `shutdown`, its metrics in
/// `metrics`.
pub async fn start(
    id: NodeId,
    listener: TcpListener,
    members: BTreeMap<NodeId, String>,
    data_dir: &Path,
    config: ExecutorConfig,
    metrics: &Registry,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ReplicaError> {
    let node = Node::<ExecutorState>::start(id, data_dir, &config.raft).await?;
    let coordinator = Coordinator {
        log: RaftLog(node.clone()),
        // A prepare or decision may wait out a books_db election: the order waits
        // anyway, and aborting it for a fail-over would refuse a good order.
        books: BooksParticipant::new(
            LeaderClient::new(&config.books_db_urls, config.call_deadline)?.with_retry_window(Duration::from_secs(15)),
            config.call_deadline,
        ),
        payment: PaymentParticipant::new(
            grpc::channel(&config.payment_url, config.call_deadline)?,
            config.call_deadline,
        ),
        queue: QueueClient::new(grpc::channel(&config.queue_url, config.call_deadline)?, config.call_deadline),
        retry: RetryPolicy::default(),
        metrics: ExecutionMetrics::register(metrics),
    };
    let routes = tonic::service::Routes::new(OrderExecutorServer::new(StatusService(node.clone())));
    let group = config.raft.cluster_name.clone();
    tokio::spawn(prune(node.clone(), config.retention, config.prune_every));
    let leading = tokio::spawn(lead(node.clone(), coordinator, config));
    let service: &[&str] = &["bookstore.v1.OrderExecutor", "bookstore.v1.Raft"];
    replicated::run(node, &group, listener, routes, service, members, metrics, shutdown, Some(leading)).await
}

/// While this replica leads, every `every`: logs `Prune` of the orders finished
/// before `retention` ago, so every replica forgets the same ones. Ends with the
/// node.
async fn prune(node: Node<ExecutorState>, retention: Duration, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if !node.is_leader() {
            continue;
        }
        let before_ms = crate::retention::cutoff_ms(retention);
        match node.write(Command::Prune { before_ms }).await {
            Ok(Outcome::Pruned { orders }) if orders > 0 => {
                tracing::info!(orders, before_ms, "forgot orders finished before the retention window");
            }
            Ok(_) => {}
            Err(NodeError::Stopped(_)) => return,
            Err(error) => tracing::debug!(%error, "pruning waits for the next round"),
        }
    }
}

/// While this replica leads: recover, take over the queue's leases, then take
/// orders from the queue.
async fn lead(node: Node<ExecutorState>, coordinator: LiveCoordinator, config: ExecutorConfig) {
    let id = node.id();
    loop {
        let waiting = node.raft().wait(Some(Duration::from_secs(1)));
        if waiting.metrics(|m| m.current_leader == Some(id), "leading").await.is_err() {
            continue;
        }
        // Metrics name a new leader before it can commit: confirm leadership with a
        // quorum round first, or the first order taken would fail to record.
        if let Err(error) = node.read_linearizable(|_| ()).await {
            tracing::debug!(%error, "not yet able to lead");
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let term = node.raft().metrics().borrow().current_term;
        match coordinator.recover(config.window).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "finished the orders the previous leader left in flight"),
            Err(LogError::NotLeader) => continue,
            Err(error) => {
                tracing::warn!(%error, "recovery failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        }
        // Recovery may have taken a while: lead on only if still leading. The queue
        // fences by term as well, so a replica deposed after this check takes nothing.
        if node.read_linearizable(|_| ()).await.is_err() {
            continue;
        }
        // The consumer name carries the term, so a take-over also ends leases this
        // replica held in an earlier term.
        let consumer = format!("order_executor_{id}/term_{term}");
        match coordinator.queue.take_over(&consumer, term).await {
            Ok(0) => {}
            Ok(released) => tracing::info!(released, "orders leased to a previous leader are ready again"),
            Err(QueueError::Superseded(reason)) => {
                tracing::info!(%reason, "a newer leader took over the queue");
                continue;
            }
            // Their leases run out instead.
            Err(QueueError::Unreachable(error)) => tracing::warn!(%error, "could not take over the queue's leases"),
        }
        tracing::info!(term, "leading: taking orders from the queue");
        take_orders(&node, &coordinator, &config, &consumer, term).await;
    }
}

/// Takes orders from the queue and runs up to `config.window` of them at once, for
/// as long as this replica leads (by its Raft node, and by the queue's fence). Each
/// runs the same two-phase commit; books_db's log orders the prepares of orders
/// that want the same book, so the last copies go to exactly one of them. The
/// window is refilled from the head of the queue, a batch at a time, so priority
/// holds. Once leadership is lost it takes nothing more, lets what runs end, and
/// gives back what it cannot finish.
async fn take_orders(
    node: &Node<ExecutorState>,
    coordinator: &LiveCoordinator,
    config: &ExecutorConfig,
    consumer: &str,
    term: u64,
) {
    // What a fetch asked for, what it got, and the span that received it.
    type Batch = (usize, Result<Vec<(pb::QueuedOrder, String)>, QueueError>, Option<SpanContext>);
    type Run<'a> = BoxFuture<'a, (String, String, Result<Finished, LogError>)>;
    let window = config.window.max(1);
    let mut backoff = Backoff::new(config.backoff);
    let mut wait = config.backoff.first;
    let mut pause_until: Option<Instant> = None;
    let mut leading = true;
    let mut running: FuturesUnordered<Run<'_>> = FuturesUnordered::new();
    // The orders in the window: a lease that ran out while its order was still
    // running here brings it back, and that delivery is left alone (the run in
    // progress finishes it; the log makes a later delivery a no-op).
    let mut in_window: HashSet<String> = HashSet::new();
    let mut fetch: Option<BoxFuture<'_, Batch>> = None;
    // A poll failed: its answer may have been lost with orders in it, which the
    // queue holds as ours. The next poll asks for those again, so they need not
    // wait out their leases.
    let mut resend_held = false;
    loop {
        leading &= node.is_leader();
        coordinator.metrics.set_in_flight(running.len());
        if leading && fetch.is_none() && running.len() < window {
            let max = (window - running.len()).min(config.batch.max(1));
            let pause = pause_until.take();
            let resend = std::mem::take(&mut resend_held);
            fetch = Some(Box::pin(async move {
                if let Some(at) = pause {
                    tokio::time::sleep_until(at).await;
                }
                let receive = receive_span(max);
                let poll = coordinator.queue.next_batch(max, wait, config.lease, consumer, term, resend);
                let batch = match &receive {
                    Some(cx) => poll.with_context(cx.clone()).await,
                    None => poll.await,
                };
                let receipt = receive.map(|cx| {
                    let span = cx.span();
                    if let Ok(orders) = &batch {
                        span.set_attribute(KeyValue::new("messaging.batch.message_count", orders.len() as i64));
                    }
                    span.end();
                    span.span_context().clone()
                });
                (max, batch, receipt)
            }));
        }
        if fetch.is_none() && running.is_empty() {
            return;
        }
        tokio::select! {
            Some((order_id, lease_id, result)) = running.next(), if !running.is_empty() => {
                in_window.remove(&order_id);
                match result {
                    Ok(finished) => tracing::info!(%order_id, ?finished, "order finished"),
                    Err(LogError::NotLeader) => {
                        leading = false;
                        // Whatever the log holds of it, the next leader finishes; the
                        // queue need not wait out the lease to hand it over.
                        give_back(coordinator, &order_id, &lease_id).await;
                    }
                    Err(error) => {
                        tracing::warn!(%order_id, %error, "order not finished; the queue will redeliver it")
                    }
                }
            }
            (asked, batch, receipt) = async { fetch.as_mut().expect("polled only while set").await }, if fetch.is_some() => {
                fetch = None;
                match batch {
                    // The long poll found nothing: wait longer next time (it still
                    // answers the moment an order arrives).
                    Ok(orders) if orders.is_empty() => wait = backoff.on_idle(),
                    Ok(orders) => {
                        backoff.on_order();
                        wait = config.backoff.first;
                        if orders.len() < asked && !config.gather.is_zero() {
                            pause_until = Some(Instant::now() + config.gather);
                        }
                        for (order, lease_id) in orders {
                            if !leading {
                                give_back(coordinator, &order.order_id, &lease_id).await;
                            } else if in_window.insert(order.order_id.clone()) {
                                running.push(Box::pin(run(coordinator, execution_from(order, lease_id), receipt.clone())));
                            } else {
                                tracing::debug!(order_id = %order.order_id, "delivered again while still running here");
                            }
                        }
                    }
                    Err(QueueError::Superseded(reason)) => {
                        tracing::info!(%reason, "a newer leader took over the queue; no longer taking orders");
                        leading = false;
                    }
                    Err(QueueError::Unreachable(error)) => {
                        resend_held = true;
                        let pause = backoff.on_idle();
                        tracing::warn!(%error, pause_ms = pause.as_millis() as u64, "the queue is unreachable; backing off");
                        pause_until = Some(Instant::now() + pause);
                    }
                }
            }
        }
    }
}

/// Runs one order of the window to its end; answers its ids with the result.
/// Its span continues the order's trace and links to the span that received it.
async fn run(
    coordinator: &LiveCoordinator,
    execution: Execution,
    receipt: Option<SpanContext>,
) -> (String, String, Result<Finished, LogError>) {
    let span = order_span(&execution, "execute", receipt);
    let (order_id, lease_id) = (execution.order_id.clone(), execution.lease_id.clone());
    let result = spans::within(span, coordinator.execute(execution)).await;
    (order_id, lease_id, result)
}

/// The span of one long poll of the queue: a messaging receive (a client of the
/// queue), a root, which the orders it brings link to.
fn receive_span(max: usize) -> Option<Context> {
    spans::start(&Context::new(), |tracer| {
        tracer.span_builder("receive orders").with_kind(SpanKind::Client).with_attributes([
            KeyValue::new("messaging.system", "bookstore"),
            KeyValue::new("messaging.destination.name", "orders"),
            KeyValue::new("messaging.operation.type", "receive"),
            KeyValue::new("messaging.operation.name", "dequeue_batch"),
            KeyValue::new("messaging.consumer.group.name", "order_executor"),
            KeyValue::new("bookstore.batch.asked", max as i64),
        ])
    })
}

/// Hands an order this replica can no longer run back to the queue.
async fn give_back(coordinator: &LiveCoordinator, order_id: &str, lease_id: &str) {
    if let Err(error) = coordinator.queue.release(order_id, lease_id).await {
        tracing::warn!(%order_id, %error, "could not give the order back; its lease will run out");
    }
}

/// A delivered order as the coordinator runs it (public for the fuzz target
/// `queue_record`).
pub fn execution_from(order: pb::QueuedOrder, lease_id: String) -> Execution {
    let card = order.card.unwrap_or_default();
    // The queue takes only orders whose lines read; should one not, it has none
    // here, and books_db's participant votes no: nothing is reserved or charged, and
    // the order is aborted with the reason.
    let lines = order_lines_from_proto("lines", &order.lines)
        .inspect_err(|error| tracing::error!(order_id = %order.order_id, ?error, "an order's lines cannot be read"))
        .unwrap_or_default();
    Execution {
        order_id: order.order_id,
        lines,
        total_cents: order.total_cents,
        card_network: card.network,
        card_last4: card.last4,
        card_fingerprint: card.fingerprint,
        lease_id,
        checkout_events: journey::checkout_events_from_proto(&order.checkout_events),
        // The queue refuses an order without one; an unreadable one (a newer
        // queue's) only leaves the journey without its priority.
        client_card: client_card_from_proto("QueuedOrder.client_card", order.client_card).ok(),
        accepted_at_ms: order.accepted_at_unix_ms,
        // Stamped by the coordinator when it starts the order.
        started: None,
        trace_context: order.trace_context,
    }
}
