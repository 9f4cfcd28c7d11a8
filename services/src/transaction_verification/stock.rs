//! Where transaction_verification reads stock from: the replicated books database
//! (a linearizable read through its leader), or, when none is configured, the
//! catalog's initial stock.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use domain::Catalog;

#[derive(Debug, Clone, thiserror::Error)]
#[error("stock could not be read: {0}")]
pub struct StockError(pub String);

pub type StockFuture<'a> = Pin<Box<dyn Future<Output = Result<u32, StockError>> + Send + 'a>>;

pub trait StockSource: Send + Sync + 'static {
    /// Copies of `book_id` available now.
    fn available<'a>(&'a self, book_id: &'a str) -> StockFuture<'a>;
}

/// Stock as the catalog file gives it.
pub struct CatalogStock(pub Arc<Catalog>);

impl StockSource for CatalogStock {
    fn available<'a>(&'a self, book_id: &'a str) -> StockFuture<'a> {
        let stock = self.0.get(book_id).map_or(0, |book| book.stock);
        Box::pin(async move { Ok(stock) })
    }
}

/// Stock as the books database's leader reports it now.
pub struct BooksDbStock {
    client: crate::leader_client::LeaderClient,
    deadline: std::time::Duration,
}

impl BooksDbStock {
    pub fn new(client: crate::leader_client::LeaderClient, deadline: std::time::Duration) -> Self {
        Self { client, deadline }
    }
}

impl StockSource for BooksDbStock {
    fn available<'a>(&'a self, book_id: &'a str) -> StockFuture<'a> {
        Box::pin(async move {
            let response = self
                .client
                .call(|channel| async move {
                    let mut client = proto::v1::books_db_client::BooksDbClient::new(channel);
                    let mut request = tonic::Request::new(proto::v1::StockRequest {
                        book_ids: vec![book_id.to_owned()],
                        local: false,
                    });
                    request.set_timeout(self.deadline);
                    client.stock(request).await.map(tonic::Response::into_inner)
                })
                .await
                .map_err(|status| StockError(format!("books_db: {}", status.message())))?;
            Ok(response.books.first().map_or(0, |book| book.available))
        })
    }
}
