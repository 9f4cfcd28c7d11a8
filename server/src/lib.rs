//! The web server: serves the checkout page (Leptos SSR + hydration), hosts its
//! server functions and the REST API, and orchestrates the verification services.
//!
//! Read [`orchestrator`] first: it is the checkout flow. [`startup`] wires
//! everything for `main` and for the tests; [`rest`] is the JSON API; [`observe`]
//! the span, `traceresponse` and timing of every request.

pub mod api_errors;
pub mod assets;
pub mod config;
pub mod link_seal;
pub mod observe;
pub mod orchestrator;
pub mod rest;
pub mod startup;
pub mod status;
