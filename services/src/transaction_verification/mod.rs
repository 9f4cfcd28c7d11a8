//! transaction_verification: is this an order the shop can process? Events a
//! (books, quantities, stock, shipping, client card), b (the shopper's details) and
//! c (the card's format). Owns entry 0 of the vector clock.

mod handler;
pub mod rules;
pub mod stock;

use std::sync::Arc;

use domain::Catalog;
use tokio::net::TcpListener;

pub use handler::TransactionVerificationService;

use platform::grpc::{self, ServeError};
use platform::metrics::Registry;

use crate::verification_cache::OrderCacheService;
use stock::StockSource;

/// Serves transaction_verification on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    catalog: Arc<Catalog>,
    stock: Arc<dyn StockSource>,
    metrics: &Registry,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let service = TransactionVerificationService::new(catalog, stock);
    let order_cache = OrderCacheService::new(service.cache(), None);
    let server = proto::v1::transaction_verification_server::TransactionVerificationServer::new(service);
    let routes = tonic::service::Routes::new(server).add_service(order_cache.into_server());
    grpc::serve(
        listener,
        routes,
        &["bookstore.v1.TransactionVerification", "bookstore.v1.OrderCache"],
        metrics,
        shutdown,
    )
    .await
}
