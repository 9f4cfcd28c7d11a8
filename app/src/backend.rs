//! What the page's server function needs from the server: something that takes a
//! checkout request and answers with its outcome.
//!
//! The page does not know how orders are checked (gRPC services, a test double):
//! the server crate implements [`CheckoutBackend`] and provides a [`Backend`] as
//! Leptos context, for rendering and for server functions alike.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use domain::{CheckoutOutcome, CheckoutRequest};

/// Runs a checkout from start to end.
pub trait CheckoutBackend: Send + Sync + 'static {
    fn checkout(&self, request: CheckoutRequest) -> Pin<Box<dyn Future<Output = CheckoutOutcome> + Send + '_>>;
}

/// The backend as Leptos context (`provide_context(Backend(...))`).
#[derive(Clone)]
pub struct Backend(pub Arc<dyn CheckoutBackend>);
