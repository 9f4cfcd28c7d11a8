//! order_executor: three replicas in one Raft group; the leader takes orders from
//! the queue and runs two-phase commit against books_db and payment. [`state`] is
//! the group's replicated state machine, [`coordinator`] the two-phase commit,
//! [`participants`] its gRPC clients, [`backoff`] the polling pace, [`metrics`]
//! what it counts and times, and [`replica`] runs one replica.

pub mod backoff;
pub mod coordinator;
pub mod metrics;
pub mod participants;
pub mod replica;
#[cfg(test)]
mod simulation;
pub mod state;
