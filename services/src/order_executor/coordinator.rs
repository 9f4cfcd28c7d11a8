//! Two-phase commit, as the executor leader runs it for one order:
//!
//! 1. record `Start` in the group's log;
//! 2. prepare books_db (reserve stock) and payment (authorize) in parallel;
//! 3. record the decision — commit if both voted yes, else abort with the no
//!    voter's reason (books_db's if both said no) — in the log *before* telling
//!    anyone;
//! 4. send the decision until both participants acknowledge;
//! 5. record `Complete`, then acknowledge the queue.
//!
//! [`Coordinator::recover`] is what a new leader runs first: every order its
//! predecessor left undecided is aborted, every decided one has its decision sent
//! again. Participants are idempotent by order id, so resending is always safe.
//!
//! The log and the participants are traits so the flow is tested with injected
//! faults; production wires the Raft group and gRPC clients behind them.
//!
//! Each order's run is a span of the trace its checkout began (the trace context
//! came with it through the queue and is kept in the log, so a new leader's
//! recovery continues the same trace); each step is timed into the metrics.

use std::future::Future;
use std::time::{Duration, Instant};

use domain::journey::{LeaderStamp, Vote as VoteRecord};
use futures::future::BoxFuture;
use futures::TryStreamExt;
use opentelemetry::trace::{Link, SpanContext, SpanKind, Tracer as _};
use opentelemetry::{Context, KeyValue};

use super::metrics::{AbortCause, ExecutionMetrics, Step};
use super::state::{Command, Execution, Outcome, Phase, Record};
use platform::clock::unix_ms;
use platform::telemetry::{context, spans, tracing_enabled};

/// A participant's vote in phase one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vote {
    Yes,
    No { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{participant} could not be reached: {detail}")]
pub struct Unreachable {
    pub participant: &'static str,
    pub detail: String,
}

pub trait Participant: Send + Sync {
    fn name(&self) -> &'static str;
    fn prepare<'a>(&'a self, execution: &'a Execution) -> BoxFuture<'a, Result<Vote, Unreachable>>;
    fn commit<'a>(&'a self, order_id: &'a str) -> BoxFuture<'a, Result<(), Unreachable>>;
    fn abort<'a>(&'a self, order_id: &'a str) -> BoxFuture<'a, Result<(), Unreachable>>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// This replica is no longer the leader: stop; the new leader recovers.
    #[error("not the leader any more")]
    NotLeader,
    #[error("the log could not record the command: {0}")]
    Failed(String),
}

/// The executors' replicated log, as the coordinator needs it.
pub trait DecisionLog: Send + Sync {
    /// Appends `command` through consensus and answers the state machine's outcome
    /// once it is committed and applied.
    fn propose(&self, command: Command) -> BoxFuture<'_, Result<Outcome, LogError>>;
    /// The records of orders started and not finished.
    fn in_flight(&self) -> Vec<Record>;
    /// Whether this replica still leads; a deposed leader stops resending
    /// decisions (its successor recovers the order).
    fn is_leader(&self) -> bool;
    /// This replica's node id and current term, stamped on what it logs (the
    /// order's journey shows which leader ran it).
    fn leadership(&self) -> (u64, u64);
}

/// Acknowledges a finished order to the queue.
pub trait QueueAck: Send + Sync {
    fn ack<'a>(&'a self, order_id: &'a str, lease_id: &'a str) -> BoxFuture<'a, Result<(), Unreachable>>;
}

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// First pause between rounds of resending a decision.
    pub first_pause: Duration,
    /// Pauses double up to this.
    pub max_pause: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { first_pause: Duration::from_millis(50), max_pause: Duration::from_secs(1) }
    }
}

pub struct Coordinator<L, B, P, Q> {
    pub log: L,
    pub books: B,
    pub payment: P,
    pub queue: Q,
    pub retry: RetryPolicy,
    pub metrics: ExecutionMetrics,
}

/// What phase one gave: why to abort, if it must, and the votes as they came.
struct Votes {
    abort: Option<(String, AbortCause)>,
    records: Vec<VoteRecord>,
}

/// The span of one order's run on this leader: a consumer of the queue
/// (OpenTelemetry's messaging conventions), continuing the order's trace, and
/// linked to the `receipt` that took it from the queue, if any. `operation` is
/// `execute` for a delivered order, `recover` for one a previous leader left in
/// flight.
pub fn order_span(execution: &Execution, operation: &'static str, receipt: Option<SpanContext>) -> Option<Context> {
    if !tracing_enabled() {
        return None;
    }
    let parent = context::from_carrier(&execution.trace_context);
    spans::start(&parent, |tracer| {
        tracer
            .span_builder("process orders")
            .with_kind(SpanKind::Consumer)
            .with_attributes([
                KeyValue::new("messaging.system", "bookstore"),
                KeyValue::new("messaging.destination.name", "orders"),
                KeyValue::new("messaging.operation.type", "process"),
                KeyValue::new("messaging.operation.name", operation),
                KeyValue::new("messaging.consumer.group.name", "order_executor"),
                KeyValue::new("messaging.message.id", execution.order_id.clone()),
                KeyValue::new("order.id", execution.order_id.clone()),
            ])
            .with_links(receipt.map(Link::with_context).into_iter().collect())
    })
}

/// How an order ended, as far as this leader saw it through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    Committed,
    Aborted { reason: String },
}

impl<L: DecisionLog, B: Participant, P: Participant, Q: QueueAck> Coordinator<L, B, P, Q> {
    /// Runs an order delivered by the queue to its end (in the caller's span:
    /// [`order_span`]).
    pub async fn execute(&self, mut execution: Execution) -> Result<Finished, LogError> {
        let order_id = execution.order_id.clone();
        let lease_id = execution.lease_id.clone();
        execution.started = Some(self.stamp());
        let phase = self.timed(Step::Start, self.record(Command::Start(execution.clone()))).await?;
        let decided = match phase {
            Phase::Executing => {
                let votes = self.timed(Step::Prepare, self.prepare_both(&execution)).await;
                let (abort_reason, cause) =
                    votes.abort.map_or((None, None), |(reason, cause)| (Some(reason), Some(cause)));
                let decide = Command::Decide {
                    order_id: order_id.clone(),
                    abort_reason,
                    votes: votes.records,
                    by: Some(self.stamp()),
                };
                let decided = self.timed(Step::Decide, self.record(decide)).await?;
                self.metrics.decided(cause);
                decided
            }
            // Redelivered after a decision: finish what the log says.
            other => other,
        };
        let finished = self.finish(&order_id, &decided).await?;
        self.ack_queue(&order_id, &lease_id).await;
        Ok(finished)
    }

    /// Awaits `step`, timing it.
    async fn timed<T>(&self, step: Step, work: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let done = work.await;
        self.metrics.step(step, started);
        done
    }

    /// What a new leader does first: finish every order left in flight, up to
    /// `concurrency` of them at once (its predecessor may have left a whole window).
    pub async fn recover(&self, concurrency: usize) -> Result<usize, LogError> {
        let in_flight = self.log.in_flight();
        let count = in_flight.len();
        futures::stream::iter(in_flight.into_iter().map(Ok))
            .try_for_each_concurrent(concurrency.max(1), |record| {
                let span = order_span(&record.execution, "recover", None);
                spans::within(span, self.recover_one(record))
            })
            .await?;
        Ok(count)
    }

    async fn recover_one(&self, record: Record) -> Result<(), LogError> {
        let order_id = &record.execution.order_id;
        let decided = match &record.phase {
            Phase::Executing => {
                tracing::info!(%order_id, "recovering an undecided order: aborting it");
                let reason = "the executor running it stopped before deciding; nothing was charged".to_owned();
                let decide = Command::Decide {
                    order_id: order_id.clone(),
                    abort_reason: Some(reason),
                    votes: Vec::new(),
                    by: Some(self.stamp()),
                };
                let decided = self.timed(Step::Decide, self.record(decide)).await?;
                self.metrics.decided(Some(AbortCause::LeaderStopped));
                decided
            }
            phase => {
                tracing::info!(%order_id, status = %phase.status(), "recovering a decided order: resending the decision");
                phase.clone()
            }
        };
        self.finish(order_id, &decided).await?;
        self.ack_queue(order_id, &record.execution.lease_id).await;
        Ok(())
    }

    /// Phase one: both votes, in parallel: why to abort (books_db's no before
    /// payment's), if either said no or could not be reached, and the votes as
    /// they came, for the journey (an unreachable participant counts as a no).
    async fn prepare_both(&self, execution: &Execution) -> Votes {
        let (books, payment) = tokio::join!(
            voted(self.books.name(), self.books.prepare(execution)),
            voted(self.payment.name(), self.payment.prepare(execution)),
        );
        // Why a vote says no, and the cause as the metrics count it.
        let no = |vote: &Result<Vote, Unreachable>, refused, unreachable| match vote {
            Ok(Vote::Yes) => None,
            Ok(Vote::No { reason }) => Some((reason.clone(), refused)),
            Err(error) => Some((format!("{error}; nothing was charged"), unreachable)),
        };
        let books_no = no(&books.1, AbortCause::BooksDbRefused, AbortCause::BooksDbUnreachable);
        let payment_no = no(&payment.1, AbortCause::PaymentDeclined, AbortCause::PaymentUnreachable);
        let mut records: Vec<VoteRecord> = [(books, &books_no), (payment, &payment_no)]
            .into_iter()
            .map(|((participant, vote, at_ms), no)| VoteRecord {
                participant: participant.to_owned(),
                yes: matches!(vote, Ok(Vote::Yes)),
                reason: no.as_ref().map(|(reason, _)| reason.clone()),
                at_ms,
            })
            .collect();
        let abort = books_no.or(payment_no);
        records.sort_by_key(|vote| vote.at_ms);
        Votes { abort, records }
    }

    fn stamp(&self) -> LeaderStamp {
        let (node, term) = self.log.leadership();
        LeaderStamp { node, term, at_ms: unix_ms() }
    }

    /// Phase two: send the recorded decision until both acknowledge, then record
    /// completion.
    async fn finish(&self, order_id: &str, decided: &Phase) -> Result<Finished, LogError> {
        let finished = match decided {
            Phase::Committing | Phase::Committed => Finished::Committed,
            Phase::Aborting { reason } | Phase::Aborted { reason } => Finished::Aborted { reason: reason.clone() },
            Phase::Executing => return Err(LogError::Failed(format!("order {order_id} has no decision"))),
        };
        if !decided.is_final() {
            let committed = finished == Finished::Committed;
            self.timed(Step::Deliver, self.deliver(order_id, committed)).await?;
            let complete = Command::Complete { order_id: order_id.to_owned(), at_ms: Some(unix_ms()) };
            self.timed(Step::Complete, self.record(complete)).await?;
            self.metrics.finished(committed);
        }
        Ok(finished)
    }

    /// Sends the decision to each participant until it acknowledges, for as long
    /// as this replica leads. Participants are idempotent, so a repeat is harmless;
    /// the pause between rounds doubles up to the policy's maximum.
    async fn deliver(&self, order_id: &str, commit: bool) -> Result<(), LogError> {
        let mut books_done = false;
        let mut payment_done = false;
        let mut pause = self.retry.first_pause;
        loop {
            let books_call = (!books_done).then(|| match commit {
                true => self.books.commit(order_id),
                false => self.books.abort(order_id),
            });
            let payment_call = (!payment_done).then(|| match commit {
                true => self.payment.commit(order_id),
                false => self.payment.abort(order_id),
            });
            let (books, payment) = tokio::join!(
                acknowledged(order_id, self.books.name(), books_call),
                acknowledged(order_id, self.payment.name(), payment_call),
            );
            books_done |= books;
            payment_done |= payment;
            if books_done && payment_done {
                return Ok(());
            }
            if !self.log.is_leader() {
                return Err(LogError::NotLeader);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(self.retry.max_pause);
        }
    }

    async fn ack_queue(&self, order_id: &str, lease_id: &str) {
        // A lost ack is harmless: the lease expires, the queue redelivers, and the
        // log's record makes the redelivery a no-op.
        if let Err(error) = self.queue.ack(order_id, lease_id).await {
            tracing::warn!(%order_id, %error, "queue acknowledgement failed; the order will be redelivered and skipped");
        }
    }

    /// Appends `command` to the group's log (a span of the order's trace).
    async fn record(&self, command: Command) -> Result<Phase, LogError> {
        let span = spans::start_here(|tracer| {
            tracer
                .span_builder(format!("log {}", command.name()))
                .with_attributes([KeyValue::new("raft.group", "order_executor")])
        });
        match spans::within(span, self.log.propose(command)).await? {
            Outcome::Phase(phase) => Ok(phase),
            Outcome::Refused { reason } => Err(LogError::Failed(reason)),
            Outcome::Nothing | Outcome::Pruned { .. } => {
                Err(LogError::Failed("the log answered nothing about the order".to_owned()))
            }
        }
    }
}

/// A participant's vote, with its name and when it came.
async fn voted(
    participant: &'static str,
    vote: BoxFuture<'_, Result<Vote, Unreachable>>,
) -> (&'static str, Result<Vote, Unreachable>, u64) {
    let vote = vote.await;
    (participant, vote, unix_ms())
}

/// Awaits one decision call (`None`: acknowledged before); true once acknowledged.
async fn acknowledged(order_id: &str, participant: &str, call: Option<BoxFuture<'_, Result<(), Unreachable>>>) -> bool {
    let Some(call) = call else { return true };
    match call.await {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%order_id, participant, %error, "decision not acknowledged yet; will resend");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::order_executor::state::ExecutorState;

    /// The log, in memory: the same state machine without the replication.
    #[derive(Default, Clone)]
    struct MemoryLog(Arc<Mutex<ExecutorState>>);

    impl DecisionLog for MemoryLog {
        fn propose(&self, command: Command) -> BoxFuture<'_, Result<Outcome, LogError>> {
            let outcome = self.0.lock().unwrap().apply(&command);
            Box::pin(async move { Ok(outcome) })
        }
        fn in_flight(&self) -> Vec<Record> {
            self.0.lock().unwrap().in_flight().cloned().collect()
        }
        fn is_leader(&self) -> bool {
            true
        }
        fn leadership(&self) -> (u64, u64) {
            (1, 1)
        }
    }

    /// A participant whose answers are scripted (fault injection) and whose calls
    /// are recorded.
    #[derive(Clone)]
    struct Scripted {
        name: &'static str,
        vote: Result<Vote, Unreachable>,
        /// Decision calls fail this many times before succeeding.
        failures_before_ack: Arc<Mutex<u32>>,
        calls: Arc<Mutex<Vec<String>>>,
    }

    impl Scripted {
        fn new(name: &'static str, vote: Result<Vote, Unreachable>) -> Self {
            Self { name, vote, failures_before_ack: Arc::default(), calls: Arc::default() }
        }
        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
        fn decision(&self, what: &str, order_id: &str) -> Result<(), Unreachable> {
            self.calls.lock().unwrap().push(format!("{what} {order_id}"));
            let mut failures = self.failures_before_ack.lock().unwrap();
            if *failures > 0 {
                *failures -= 1;
                return Err(Unreachable { participant: self.name, detail: "down".into() });
            }
            Ok(())
        }
    }

    impl Participant for Scripted {
        fn name(&self) -> &'static str {
            self.name
        }
        fn prepare<'a>(&'a self, execution: &'a Execution) -> BoxFuture<'a, Result<Vote, Unreachable>> {
            self.calls.lock().unwrap().push(format!("prepare {}", execution.order_id));
            let vote = self.vote.clone();
            Box::pin(async move { vote })
        }
        fn commit<'a>(&'a self, order_id: &'a str) -> BoxFuture<'a, Result<(), Unreachable>> {
            let result = self.decision("commit", order_id);
            Box::pin(async move { result })
        }
        fn abort<'a>(&'a self, order_id: &'a str) -> BoxFuture<'a, Result<(), Unreachable>> {
            let result = self.decision("abort", order_id);
            Box::pin(async move { result })
        }
    }

    #[derive(Default, Clone)]
    struct Acks(Arc<Mutex<VecDeque<String>>>);

    impl QueueAck for Acks {
        fn ack<'a>(&'a self, order_id: &'a str, _lease_id: &'a str) -> BoxFuture<'a, Result<(), Unreachable>> {
            self.0.lock().unwrap().push_back(order_id.to_owned());
            Box::pin(async { Ok(()) })
        }
    }

    fn execution(order_id: &str) -> Execution {
        Execution {
            order_id: order_id.into(),
            lines: vec![domain::OrderLine {
                book_id: "1".into(),
                quantity: domain::Quantity::new(1, "quantity").unwrap(),
            }],
            total_cents: 2398,
            card_network: "visa".into(),
            card_last4: "6287".into(),
            card_fingerprint: "f".repeat(64),
            lease_id: "lease-1".into(),
            checkout_events: Vec::new(),
            client_card: Some(domain::ClientCard::None),
            accepted_at_ms: 0,
            started: None,
            trace_context: Default::default(),
        }
    }

    fn coordinator(books: Scripted, payment: Scripted) -> Coordinator<MemoryLog, Scripted, Scripted, Acks> {
        Coordinator {
            log: MemoryLog::default(),
            books,
            payment,
            queue: Acks::default(),
            retry: RetryPolicy { first_pause: Duration::from_millis(1), max_pause: Duration::from_millis(4) },
            metrics: ExecutionMetrics::default(),
        }
    }

    #[tokio::test]
    async fn commits_when_both_vote_yes_and_acks_the_queue_last() {
        let c = coordinator(Scripted::new("books_db", Ok(Vote::Yes)), Scripted::new("payment", Ok(Vote::Yes)));
        assert_eq!(c.execute(execution("o1")).await.unwrap(), Finished::Committed);
        assert_eq!(c.books.calls(), ["prepare o1", "commit o1"]);
        assert_eq!(c.payment.calls(), ["prepare o1", "commit o1"]);
        assert_eq!(c.log.0.lock().unwrap().get("o1").unwrap().phase, Phase::Committed);
        assert_eq!(c.queue.0.lock().unwrap().iter().collect::<Vec<_>>(), ["o1"]);
    }

    #[tokio::test]
    async fn aborts_with_the_no_voters_reason_and_releases_the_other() {
        let no = Vote::No { reason: "card declined".into() };
        let c = coordinator(Scripted::new("books_db", Ok(Vote::Yes)), Scripted::new("payment", Ok(no)));
        assert_eq!(c.execute(execution("o1")).await.unwrap(), Finished::Aborted { reason: "card declined".into() });
        assert_eq!(c.books.calls(), ["prepare o1", "abort o1"], "the reservation is released");
        assert_eq!(c.payment.calls(), ["prepare o1", "abort o1"]);
    }

    #[tokio::test]
    async fn an_unreachable_participant_aborts_the_order() {
        let down = Err(Unreachable { participant: "books_db", detail: "connection refused".into() });
        let c = coordinator(Scripted::new("books_db", down), Scripted::new("payment", Ok(Vote::Yes)));
        let Finished::Aborted { reason } = c.execute(execution("o1")).await.unwrap() else { panic!("committed") };
        assert!(reason.contains("books_db could not be reached"), "{reason}");
        assert_eq!(c.payment.calls(), ["prepare o1", "abort o1"], "the payment hold is voided");
    }

    #[tokio::test]
    async fn the_decision_is_resent_until_acknowledged() {
        let books = Scripted::new("books_db", Ok(Vote::Yes));
        *books.failures_before_ack.lock().unwrap() = 3;
        let c = coordinator(books, Scripted::new("payment", Ok(Vote::Yes)));
        assert_eq!(c.execute(execution("o1")).await.unwrap(), Finished::Committed);
        assert_eq!(c.books.calls().iter().filter(|call| *call == "commit o1").count(), 4);
        assert_eq!(
            c.payment.calls().iter().filter(|call| *call == "commit o1").count(),
            1,
            "an acknowledged participant is not asked again"
        );
    }

    #[tokio::test]
    async fn a_new_leader_aborts_undecided_orders_and_resends_decided_ones() {
        let c = coordinator(Scripted::new("books_db", Ok(Vote::Yes)), Scripted::new("payment", Ok(Vote::Yes)));
        // What the previous leader left behind.
        c.log.propose(Command::Start(execution("undecided"))).await.unwrap();
        c.log.propose(Command::Start(execution("decided"))).await.unwrap();
        c.log
            .propose(Command::Decide { order_id: "decided".into(), abort_reason: None, votes: Vec::new(), by: None })
            .await
            .unwrap();
        assert_eq!(c.recover(8).await.unwrap(), 2);
        let state = c.log.0.lock().unwrap().clone();
        assert_eq!(state.get("decided").unwrap().phase, Phase::Committed);
        assert_eq!(state.get("undecided").unwrap().phase.status(), domain::OrderState::Aborted);
        let mut calls = c.books.calls();
        calls.sort();
        assert_eq!(calls, ["abort undecided", "commit decided"]);
        assert_eq!(state.in_flight().count(), 0);
    }

    #[tokio::test]
    async fn a_redelivered_finished_order_is_not_prepared_or_charged_again() {
        let c = coordinator(Scripted::new("books_db", Ok(Vote::Yes)), Scripted::new("payment", Ok(Vote::Yes)));
        c.execute(execution("o1")).await.unwrap();
        assert_eq!(c.execute(execution("o1")).await.unwrap(), Finished::Committed);
        assert_eq!(c.payment.calls(), ["prepare o1", "commit o1"]);
        assert_eq!(c.queue.0.lock().unwrap().len(), 2, "the redelivery is acknowledged again");
    }
}
