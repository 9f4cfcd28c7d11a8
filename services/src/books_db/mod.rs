//! books_db: the book catalog's stock, replicated by Raft across three replicas,
//! and a two-phase-commit participant. [`state`] is the replicated state machine;
//! the Raft wiring and gRPC face come with the consensus plumbing.

pub mod state;
