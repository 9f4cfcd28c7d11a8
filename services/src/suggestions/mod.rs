//! suggestions: books to go with an order, from the catalog — other books by the
//! same authors first, then books sharing a genre; never one already ordered; only
//! books in stock. Event f. Owns entry 2 of the vector clock.

mod handler;

use std::sync::Arc;

use domain::Catalog;
use tokio::net::TcpListener;

pub use handler::SuggestionsService;

use platform::grpc::{self, ServeError};
use platform::metrics::Registry;

use crate::verification_cache::OrderCacheService;

pub const DEFAULT_COUNT: usize = 3;

pub async fn serve(
    listener: TcpListener,
    catalog: Arc<Catalog>,
    count: usize,
    metrics: &Registry,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let service = SuggestionsService::new(catalog, count);
    let order_cache = OrderCacheService::new(service.cache(), None);
    let server = proto::v1::suggestions_server::SuggestionsServer::new(service);
    let routes = tonic::service::Routes::new(server).add_service(order_cache.into_server());
    grpc::serve(listener, routes, &["bookstore.v1.Suggestions", "bookstore.v1.OrderCache"], metrics, shutdown).await
}
