//! fraud_detection: should the shop trust this buyer and this card? Event d (the
//! buyer: blocklists, orders per name and email in a sliding window) and e (the
//! card: blocklists, orders per card in the window, an amount ceiling). Owns entry 1
//! of the vector clock.

mod handler;
pub mod rules;
pub mod velocity;

use std::sync::Arc;

use domain::Catalog;
use tokio::net::TcpListener;

pub use handler::FraudDetectionService;
pub use rules::FraudConfig;

use platform::grpc::{self, ServeError};
use platform::metrics::Registry;

use crate::verification_cache::OrderCacheService;

pub async fn serve(
    listener: TcpListener,
    catalog: Arc<Catalog>,
    config: FraudConfig,
    metrics: &Registry,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let service = Arc::new(FraudDetectionService::new(catalog, config));
    let order_cache = OrderCacheService::new(service.cache(), Some(service.clone()));
    let server = proto::v1::fraud_detection_server::FraudDetectionServer::from_arc(service);
    let routes = tonic::service::Routes::new(server).add_service(order_cache.into_server());
    grpc::serve(listener, routes, &["bookstore.v1.FraudDetection", "bookstore.v1.OrderCache"], metrics, shutdown).await
}
