//! The Raft plumbing shared by the bookstore's replicated groups (the three order
//! executors, the three books database replicas): openraft 0.9 with a durable log and
//! snapshots in redb, and peers talking over tonic.
//!
//! A group brings only its [`StateMachine`]; [`Node`] runs one replica of it:
//!
//! - `types.rs`: the [`StateMachine`] trait and openraft's type config ([`Group`]);
//! - `config.rs`: timings and snapshot policy ([`Config`]);
//! - `db.rs`: the replica's redb file, fsync'd writes off the async workers;
//! - `log_store.rs`: the Raft log, vote and committed index (openraft's `RaftLogStorage`);
//! - `state_store.rs`: the machine in memory and its snapshots (`RaftStateMachine`);
//! - `network.rs`: calling peers (`RaftNetwork`), `grpc.rs`: answering them ([`RaftGrpc`]);
//! - `election.rs`: pre-vote, so a replica that was cut off does not depose a
//!   healthy leader when it is back (openraft's own election timer is off);
//! - `batch.rs`: writes arriving together proposed as one entry ([`Commands`]),
//!   reads arriving together sharing one confirmation of leadership;
//! - `node.rs`: the wiring, and writes and reads for the group's service;
//! - `metrics.rs`: a replica's Raft state as Prometheus metrics ([`RaftMetrics`]).
//!
//! Boundary: no business logic, no dependency on the service crates; the caller
//! serves [`Node::grpc_service`] itself.

mod batch;
mod config;
mod db;
mod election;
mod grpc;
mod log_store;
mod metrics;
mod network;
mod node;
mod state_store;
mod types;

pub use batch::Commands;
pub use config::Config;
pub use db::StorageFailure;
pub use grpc::RaftGrpc;
pub use metrics::RaftMetrics;
pub use node::{Node, NodeError, DATA_FILE};
pub use openraft::BasicNode;
pub use state_store::StateHandle;
pub use types::{Entry, Group, LogId, NodeId, Raft, StateMachine};
