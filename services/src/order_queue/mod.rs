//! order_queue: the durable priority queue between checkout and execution.
//! Premium before Basic before None, FIFO within a priority; leases with explicit
//! acknowledgement; idempotent enqueue; long-poll dequeue.

mod handler;
mod metrics;
pub mod store;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

pub use handler::OrderQueueService;
pub use store::QueueStore;

use platform::grpc::{self, ServeError};
use platform::metrics::Registry;

#[derive(Debug, Clone, Copy)]
pub struct QueueConfig {
    /// Lease given when the consumer asks for none.
    pub default_lease: Duration,
    /// The longest a dequeue may wait for an order.
    pub max_wait: Duration,
    /// How long an acknowledged or withdrawn order id is remembered.
    pub retention: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            default_lease: Duration::from_secs(30),
            max_wait: Duration::from_secs(30),
            retention: crate::retention::DEFAULT,
        }
    }
}

/// Forgets the order ids acknowledged or withdrawn before the retention window,
/// a few times a window (`retention::sweep`).
async fn forget_old(store: Arc<QueueStore>, retention: Duration) {
    crate::retention::sweep(retention, "order ids", |before_ms| store.forget(before_ms)).await;
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// Opens (or creates) the queue's database at `path`.
pub fn open(path: &Path) -> Result<Arc<QueueStore>, store::StoreError> {
    QueueStore::open(path).map(Arc::new)
}

/// Serves the queue on `listener` until `shutdown`, its metrics in `metrics`.
pub async fn serve(
    listener: TcpListener,
    store: Arc<QueueStore>,
    config: QueueConfig,
    metrics: &Registry,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), QueueError> {
    let counts = metrics::QueueMetrics::register(metrics, Arc::clone(&store));
    let forgetting = tokio::spawn(forget_old(Arc::clone(&store), config.retention));
    let server = proto::v1::order_queue_server::OrderQueueServer::new(OrderQueueService::new(store, config, counts));
    let served =
        grpc::serve(listener, tonic::service::Routes::new(server), &["bookstore.v1.OrderQueue"], metrics, shutdown)
            .await;
    forgetting.abort();
    served?;
    Ok(())
}
