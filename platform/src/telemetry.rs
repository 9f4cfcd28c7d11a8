//! Logging set-up shared by every binary: `tracing` to stderr, filtered by
//! `RUST_LOG` (default [`DEFAULT_FILTER`]).

use tracing_subscriber::EnvFilter;

/// `info`, with openraft's chatty internals at `warn`. openraft logs three or four
/// lines at every failed replication attempt, ten attempts a second while a replica
/// is down: its replication module is silenced and its replication handler keeps
/// only errors; the Raft network logs a peer lost and regained once each instead
/// (`consensus/src/network.rs`).
pub const DEFAULT_FILTER: &str =
    "info,openraft=warn,openraft::replication=off,openraft::engine::handler::replication_handler=error";

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
