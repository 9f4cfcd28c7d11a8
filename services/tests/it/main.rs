//! The services' integration tests, in one binary: every service over real gRPC on
//! loopback, the Raft groups in this process, and the execution side as real
//! processes of the `services` binary (`testkit` holds the harnesses).
//!
//! - `grpc`: each service on its own: health, reflection, the checkout's events.
//! - `books_db`: the replicated books database (writes through the log, fail-over).
//! - `execution`: two-phase commit by the executors' leader, recovery, take-over.
//! - `processes`: the same with real processes, `kill -9` of each leader.
//! - `fuzz_seeds`: the fuzz targets' seed inputs read as what they stand for.

mod books_db;
mod execution;
mod formats;
mod fuzz_seeds;
mod grpc;
mod processes;
