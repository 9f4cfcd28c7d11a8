//! Payment as Prometheus metrics: authorizations by what the issuer said,
//! captures and voids. Each counts a change of the ledger, not a call: a
//! repeated prepare, commit or abort (idempotent) counts nothing.

use platform::metrics::Registry;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use super::ledger::{PaymentState, Recorded};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Answer {
    /// `approved` or `declined`.
    result: &'static str,
}

#[derive(Clone, Default)]
pub(super) struct PaymentMetrics {
    authorizations: Family<Answer, Counter>,
    captures: Counter,
    voids: Counter,
}

impl PaymentMetrics {
    pub(super) fn register(registry: &Registry) -> Self {
        let metrics = Self::default();
        for result in ["approved", "declined"] {
            let _ = metrics.authorizations.get_or_create(&Answer { result });
        }
        registry.register(
            "payment_authorizations",
            "Holds the issuer was asked for, by its answer",
            metrics.authorizations.clone(),
        );
        registry.register("payment_captures", "Holds captured: orders charged", metrics.captures.clone());
        registry.register(
            "payment_voids",
            "Holds released, or orders aborted before their prepare",
            metrics.voids.clone(),
        );
        metrics
    }

    /// What a prepare, commit or abort did to the ledger.
    pub(super) fn recorded(&self, recorded: &Recorded) {
        if !recorded.changed {
            return;
        }
        match recorded.payment.state {
            PaymentState::Authorized => self.authorizations.get_or_create(&Answer { result: "approved" }).inc(),
            PaymentState::Declined => self.authorizations.get_or_create(&Answer { result: "declined" }).inc(),
            PaymentState::Captured => self.captures.inc(),
            PaymentState::Voided => self.voids.inc(),
        };
    }
}
