//! order_executor: three replicas in one Raft group; the leader takes orders from
//! the queue and runs two-phase commit against books_db and payment. [`state`] is
//! the group's replicated state machine; the leader's loop and the Raft wiring come
//! with the consensus plumbing.

pub mod backoff;
pub mod coordinator;
pub mod participants;
pub mod state;
