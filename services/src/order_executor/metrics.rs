//! Execution as Prometheus metrics: the orders the leader runs at once, each
//! decision by what was decided and why, the orders finished, and how long each
//! step of two-phase commit took (with the order's trace as the exemplar).

use std::time::Instant;

use platform::metrics::{self, Latency, Registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

/// Why an order was aborted, as a bounded label (the reason itself, a sentence
/// for the shopper, stays in the order's record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbortCause {
    /// books_db voted no: not enough stock.
    BooksDbRefused,
    /// payment voted no: the card was declined.
    PaymentDeclined,
    BooksDbUnreachable,
    PaymentUnreachable,
    /// The leader running it stopped before deciding; its successor aborted it.
    LeaderStopped,
}

impl AbortCause {
    const ALL: [Self; 5] = [
        Self::BooksDbRefused,
        Self::PaymentDeclined,
        Self::BooksDbUnreachable,
        Self::PaymentUnreachable,
        Self::LeaderStopped,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::BooksDbRefused => "books_db_refused",
            Self::PaymentDeclined => "payment_declined",
            Self::BooksDbUnreachable => "books_db_unreachable",
            Self::PaymentUnreachable => "payment_unreachable",
            Self::LeaderStopped => "leader_stopped",
        }
    }
}

/// The steps of two-phase commit, as the coordinator times them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `Start` recorded in the group's log.
    Start,
    /// Both participants' votes.
    Prepare,
    /// The decision recorded in the log.
    Decide,
    /// The decision acknowledged by both participants.
    Deliver,
    /// `Complete` recorded.
    Complete,
}

impl Step {
    const ALL: [Self; 5] = [Self::Start, Self::Prepare, Self::Decide, Self::Deliver, Self::Complete];

    fn label(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Prepare => "prepare",
            Self::Decide => "decide",
            Self::Deliver => "deliver",
            Self::Complete => "complete",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Decision {
    /// `commit` or `abort`.
    decision: &'static str,
    /// Why an abort was decided (`none` for a commit).
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    /// `committed` or `aborted`.
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Phase {
    phase: &'static str,
}

/// The executors' metrics. The default is unregistered (the coordinator's
/// tests count into it all the same).
#[derive(Clone)]
pub struct ExecutionMetrics {
    in_flight: Gauge,
    decisions: Family<Decision, Counter>,
    finished: Family<Outcome, Counter>,
    steps: Family<Phase, Latency, fn() -> Latency>,
}

impl Default for ExecutionMetrics {
    fn default() -> Self {
        let metrics = Self {
            in_flight: Gauge::default(),
            decisions: Family::default(),
            finished: Family::default(),
            steps: Family::new_with_constructor(metrics::latency),
        };
        // Every label is a series from the start, so a rate over it reads 0.
        let _ = metrics.decisions.get_or_create(&Decision { decision: "commit", reason: "none" });
        for cause in AbortCause::ALL {
            let _ = metrics.decisions.get_or_create(&Decision { decision: "abort", reason: cause.label() });
        }
        for outcome in ["committed", "aborted"] {
            let _ = metrics.finished.get_or_create(&Outcome { outcome });
        }
        for step in Step::ALL {
            let _ = metrics.steps.get_or_create(&Phase { phase: step.label() });
        }
        metrics
    }
}

impl ExecutionMetrics {
    pub fn register(registry: &Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "order_executor_orders_in_flight",
            "Orders this replica runs through two-phase commit now (only the leader runs any)",
            metrics.in_flight.clone(),
        );
        registry.register(
            "order_executor_decisions",
            "Two-phase-commit decisions this replica logged, by decision and, for an abort, why",
            metrics.decisions.clone(),
        );
        registry.register(
            "order_executor_orders_finished",
            "Orders this replica saw to their end (both participants and the log told), by outcome",
            metrics.finished.clone(),
        );
        registry.register_seconds(
            "order_executor_phase_duration",
            "How long each step of an order's two-phase commit took",
            metrics.steps.clone(),
        );
        metrics
    }

    pub fn set_in_flight(&self, orders: usize) {
        self.in_flight.set(orders as i64);
    }

    /// A decision logged: commit (`None`) or abort for `cause`.
    pub fn decided(&self, abort: Option<AbortCause>) {
        let decision = match abort {
            None => Decision { decision: "commit", reason: "none" },
            Some(cause) => Decision { decision: "abort", reason: cause.label() },
        };
        self.decisions.get_or_create(&decision).inc();
    }

    pub fn finished(&self, committed: bool) {
        let outcome = if committed { "committed" } else { "aborted" };
        self.finished.get_or_create(&Outcome { outcome }).inc();
    }

    /// `step` took from `started` until now; the current span's trace is the
    /// exemplar.
    pub fn step(&self, step: Step, started: Instant) {
        let histogram = self.steps.get_or_create(&Phase { phase: step.label() });
        metrics::observe(&histogram, started.elapsed(), Some(&opentelemetry::Context::current()));
    }
}
