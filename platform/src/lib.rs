//! What every process of the shop stands on, shared by the web server and the
//! services, so that neither depends on the other: serving gRPC with health and
//! reflection and opening client channels ([`grpc`]), logs and traces
//! ([`telemetry`]), Prometheus metrics ([`metrics`]), the wall clock ([`clock`]), the port map of a run on one machine ([`ports`]), and the
//! card fingerprint that lets everything past the web server recognise a card
//! without holding its number ([`card_token`]).
//!
//! Boundary: no business rule (those are in `domain`), no storage, no consensus.

pub mod card_token;
pub mod clock;
pub mod grpc;
pub mod metrics;
pub mod ports;
pub mod telemetry;
