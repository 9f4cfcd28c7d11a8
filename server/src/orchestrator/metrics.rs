//! Checkouts as Prometheus metrics: how many ended how (approved, or refused at
//! which step with which code), and how long each took, with the checkout's
//! trace as the exemplar. Steps and codes are the shop's own fixed sets.

use std::time::Duration;

use domain::CheckoutOutcome;
use platform::metrics::{self, Latency, Registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Ended {
    /// `approved` or `refused`.
    outcome: &'static str,
    /// The step that refused (empty for an approved checkout).
    step: String,
    /// The refusal's code (empty for an approved checkout).
    code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

#[derive(Clone)]
pub struct CheckoutMetrics {
    checkouts: Family<Ended, Counter>,
    durations: Family<Outcome, Latency, fn() -> Latency>,
    admission_limit: Gauge,
}

impl CheckoutMetrics {
    pub fn register(registry: &Registry) -> Self {
        let metrics = Self {
            checkouts: Family::default(),
            durations: Family::new_with_constructor(metrics::latency),
            admission_limit: Gauge::default(),
        };
        let _ =
            metrics.checkouts.get_or_create(&Ended { outcome: "approved", step: String::new(), code: String::new() });
        // Shed checkouts show as a zero until there are any (the dashboard plots them).
        let _ = metrics.checkouts.get_or_create(&refused(&domain::Refusal::busy()));
        for outcome in ["approved", "refused"] {
            let _ = metrics.durations.get_or_create(&Outcome { outcome });
        }
        registry.register(
            "checkouts",
            "Checkouts answered: approved, or refused at a step with a code",
            metrics.checkouts.clone(),
        );
        registry.register(
            "checkout_admission_limit",
            "How many checkouts may run at once: beyond it one is refused busy; it shrinks while approved checkouts are slow",
            metrics.admission_limit.clone(),
        );
        registry.register_seconds(
            "checkout_duration",
            "How long a checkout took, from the request to the answer",
            metrics.durations.clone(),
        );
        metrics
    }

    /// How many checkouts may run at once now (`admission.rs`).
    pub fn admission_limit(&self, limit: usize) {
        self.admission_limit.set(i64::try_from(limit).unwrap_or(i64::MAX));
    }

    /// A checkout refused at once, at capacity: counted (refused, `busy`), not
    /// timed (its duration would pull the checkouts' latency down).
    pub fn shed(&self, refusal: &domain::Refusal) {
        self.checkouts.get_or_create(&refused(refusal)).inc();
    }

    /// A checkout ended with `outcome` after `elapsed`, in the span `cx` holds.
    pub fn ended(&self, outcome: &CheckoutOutcome, elapsed: Duration, cx: Option<&opentelemetry::Context>) {
        let (ended, label) = ended(outcome);
        self.checkouts.get_or_create(&ended).inc();
        metrics::observe(&self.durations.get_or_create(&Outcome { outcome: label }), elapsed, cx);
    }
}

/// How `outcome` is counted, and the label it is timed under.
fn ended(outcome: &CheckoutOutcome) -> (Ended, &'static str) {
    match outcome {
        CheckoutOutcome::Approved(_) => {
            (Ended { outcome: "approved", step: String::new(), code: String::new() }, "approved")
        }
        CheckoutOutcome::Refused(refusal) => (refused(refusal), "refused"),
    }
}

fn refused(refusal: &domain::Refusal) -> Ended {
    Ended { outcome: "refused", step: refusal.step.to_string(), code: refusal.code.clone() }
}
