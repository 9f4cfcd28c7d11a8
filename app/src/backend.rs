//! What the page's server functions need from the server: run a checkout, tell an
//! order's status, describe the cluster.
//!
//! The page does not know how orders are checked (gRPC services, a test double):
//! the server crate implements [`CheckoutBackend`] and provides a [`Backend`] as
//! Leptos context, for rendering and for server functions alike.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use domain::{CheckoutOutcome, CheckoutRequest, ClusterStatus, OrderStatus};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the server does for the page.
pub trait CheckoutBackend: Send + Sync + 'static {
    /// Runs a checkout from start to end.
    fn checkout(&self, request: CheckoutRequest) -> BoxFuture<'_, CheckoutOutcome>;
    /// Where an order is: `Ok(None)` for an id nobody knows; `Err` with a message
    /// for the shopper when the status cannot be read now.
    fn order_status(&self, order_id: String) -> BoxFuture<'_, Result<Option<OrderStatus>, String>>;
    /// Every replica of both Raft groups and the queue's depth, as seen now.
    fn cluster_status(&self) -> BoxFuture<'_, ClusterStatus>;
    /// A seal vouching that this server wrote `text` (a result link's query): what
    /// the no-JavaScript result page needs to tell its own links from crafted ones.
    fn seal(&self, text: &str) -> String;
    /// Whether `seal` is this server's seal of `text`.
    fn is_sealed(&self, text: &str, seal: &str) -> bool;
}

/// The backend as Leptos context (`provide_context(Backend(...))`).
#[derive(Clone)]
pub struct Backend(pub Arc<dyn CheckoutBackend>);
