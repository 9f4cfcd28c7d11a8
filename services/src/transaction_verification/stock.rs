//! Where transaction_verification reads stock from: the replicated books database
//! (a linearizable read through its leader), or, when none is configured, the
//! catalog's initial stock. [`source`] picks one.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use domain::Catalog;

use crate::leader_client::LeaderClient;

#[derive(Debug, Clone, thiserror::Error)]
#[error("stock could not be read: {0}")]
pub struct StockError(pub String);

pub type StockFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<u32>, StockError>> + Send + 'a>>;

pub trait StockSource: Send + Sync + 'static {
    /// Copies of each of `book_ids` available now, in the same order (0 for a book
    /// the source does not know).
    fn available<'a>(&'a self, book_ids: &'a [String]) -> StockFuture<'a>;
}

/// How long one stock read may take, through the books database's leader.
const BOOKS_DB_DEADLINE: Duration = Duration::from_millis(500);

/// The books database at `books_db` (its replicas' URLs), or the catalog's stock
/// when there are none.
pub fn source(catalog: &Arc<Catalog>, books_db: &[String]) -> Result<Arc<dyn StockSource>, tonic::transport::Error> {
    if books_db.is_empty() {
        return Ok(Arc::new(CatalogStock(Arc::clone(catalog))));
    }
    let client = LeaderClient::new(books_db, BOOKS_DB_DEADLINE)?;
    Ok(Arc::new(BooksDbStock::new(client, BOOKS_DB_DEADLINE)))
}

/// Stock as the catalog file gives it.
pub struct CatalogStock(pub Arc<Catalog>);

impl StockSource for CatalogStock {
    fn available<'a>(&'a self, book_ids: &'a [String]) -> StockFuture<'a> {
        let stock = book_ids.iter().map(|id| self.0.get(id).map_or(0, |book| book.stock)).collect();
        Box::pin(async move { Ok(stock) })
    }
}

/// Stock as the books database's leader reports it now: one read for all the books.
pub struct BooksDbStock {
    client: LeaderClient,
    deadline: Duration,
}

impl BooksDbStock {
    pub fn new(client: LeaderClient, deadline: Duration) -> Self {
        Self { client, deadline }
    }
}

impl StockSource for BooksDbStock {
    fn available<'a>(&'a self, book_ids: &'a [String]) -> StockFuture<'a> {
        Box::pin(async move {
            let response = self
                .client
                .call(|channel| async move {
                    let mut client = proto::v1::books_db_client::BooksDbClient::new(channel);
                    let message = proto::v1::StockRequest { book_ids: book_ids.to_vec(), local: false };
                    client.stock(platform::grpc::request(message, self.deadline)).await.map(tonic::Response::into_inner)
                })
                .await
                .map_err(|status| StockError(format!("books_db: {}", status.message())))?;
            let copies =
                |id: &String| response.books.iter().find(|book| &book.book_id == id).map_or(0, |b| b.available);
            Ok(book_ids.iter().map(copies).collect())
        })
    }
}
