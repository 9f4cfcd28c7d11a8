//! suggestions: books to go with an order, from the catalog — other books by the
//! same authors first, then books sharing a genre; never one already ordered; only
//! books in stock. Event f. Owns entry 2 of the vector clock.

mod handler;

use std::sync::Arc;

use domain::Catalog;
use tokio::net::TcpListener;

pub use handler::SuggestionsService;

use platform::grpc::{self, ServeError};

pub const DEFAULT_COUNT: usize = 3;

pub async fn serve(
    listener: TcpListener,
    catalog: Arc<Catalog>,
    count: usize,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let server = proto::v1::suggestions_server::SuggestionsServer::new(SuggestionsService::new(catalog, count));
    grpc::serve(listener, tonic::service::Routes::new(server), "bookstore.v1.Suggestions", shutdown).await
}
