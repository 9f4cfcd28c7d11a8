//! The bookstore's domain rules, written once.
//!
//! This crate compiles natively (for the web server and the gRPC services) and to
//! wasm (for the checkout page), so the page flags a field with exactly the rule the
//! server will apply. It has no I/O and reads no clock: callers pass "today" in.
//!
//! Types here can only be built valid (`CardNumber::parse`, `Email::parse`, ...);
//! code past the edge takes them instead of strings and never checks again.

pub mod calendar;
pub mod card;
pub mod catalog;
pub mod checkout;
pub mod contact;
pub mod field;
pub mod journey;
pub mod money;
pub mod order;
pub mod refusal;
pub mod status;
pub mod vector_clock;

pub use calendar::YearMonth;
pub use card::{CardNetwork, CardNumber, Cvv, Expiry};
pub use catalog::{Book, BookId, Catalog};
pub use checkout::{CheckoutOutcome, CheckoutRequest, SuggestedBook};
pub use contact::{BillingAddress, Email, PersonName};
pub use field::FieldError;
pub use journey::Journey;
pub use money::Money;
pub use order::{ClientCard, OrderLine, Quantity, ShippingMethod};
pub use refusal::{Refusal, RefusalClass, Step};
pub use status::{ClusterStatus, OrderState, OrderStatus, QueueDepth, ReplicaStatus, Role};
pub use vector_clock::{VectorClock, Verifier};
