//! The bookstore's gRPC services, each a library module with its own handler,
//! domain logic and (where it has one) storage; `main.rs` is a thin multi-call
//! entry point (`services transaction-verification`, ...), so one binary serves
//! every role and links once.
//!
//! Start with [`verification_cache`] (the vector-clocked order cache the three
//! verification services share), then a service's `handler.rs`.

pub mod books_db;
pub mod fraud_detection;
pub mod health_check;
pub mod leader_client;
pub mod order_executor;
pub mod order_queue;
pub mod payment;
pub mod refusal;
pub mod replicated;
pub mod retention;
pub mod suggestions;
pub mod transaction_verification;
pub mod verification_cache;
