//! Where transaction_verification reads stock from. Today the catalog's initial
//! stock; the replicated books database plugs in behind the same trait.

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
