//! payment: a two-phase-commit participant. Prepare authorizes a hold for the
//! order's total (or votes no: a few test cards decline), commit captures it, abort
//! voids it; a durable ledger makes every call idempotent by order id.

mod handler;
pub mod issuer;
pub mod ledger;
mod metrics;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

pub use handler::PaymentService;
pub use ledger::Ledger;

use platform::card_token::FingerprintKey;
use platform::grpc::{self, ServeError};
use platform::metrics::Registry;

pub fn open(path: &Path) -> Result<Arc<Ledger>, ledger::LedgerError> {
    Ledger::open(path).map(Arc::new)
}

/// Serves payment on `listener` until `shutdown`, its metrics in `metrics`;
/// final payments are forgotten `retention` after they ended.
pub async fn serve(
    listener: TcpListener,
    ledger: Arc<Ledger>,
    key: &FingerprintKey,
    retention: Duration,
    metrics: &Registry,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let kept = Arc::clone(&ledger);
    let forgetting = tokio::spawn(async move {
        crate::retention::sweep(retention, "payments", |before_ms| kept.forget(before_ms)).await;
    });
    let counts = metrics::PaymentMetrics::register(metrics);
    let service = PaymentService::new(ledger, Arc::new(issuer::Issuer::new(key)), counts);
    let server = proto::v1::payment_server::PaymentServer::new(service);
    let served =
        grpc::serve(listener, tonic::service::Routes::new(server), &["bookstore.v1.Payment"], metrics, shutdown).await;
    forgetting.abort();
    served
}
