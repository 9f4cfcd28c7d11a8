//! The web server's integration tests, in one binary (one link of the whole stack):
//! the shop on loopback, every service real, started in this process
//! (`support`), driven through REST, the server functions and a real browser.
//!
//! - `checkout`: `POST /checkout`, every refusal, the error shape, the contract.
//! - `fuzzed`: `POST /checkout` with generated bodies (proptest): no 5xx, the one
//!   error shape, the same refusal again, no card number back, nothing left cached.
//! - `orders`: the order after checkout (two-phase commit, its journey, the cluster).
//! - `queue`: the queue behind the checkout survives its restart.
//! - `browser`: the page in headless Chromium (needs `make build-site`).
//! - `observability`: the whole shop as processes, its traces sent to a real
//!   OTLP receiver, its metrics scraped by Debian's Prometheus, its JSON logs.

mod browser;
mod checkout;
mod fuzzed;
mod observability;
mod orders;
mod queue;
mod support;
