//! The knobs of a replica, in `Duration`s, and their translation to openraft's
//! millisecond config.
//!
//! The defaults follow the system's spec: heartbeats every 100 ms, elections after a
//! random 300–800 ms of silence. openraft also uses the heartbeat interval as the
//! deadline of one AppendEntries round trip (fsync on the follower included), which is
//! why it is not shorter.

use std::time::Duration;

use openraft::SnapshotPolicy;

/// The largest snapshot chunk sent in one InstallSnapshot call. The chunk travels as raw
/// bytes beside the JSON, so the message stays well under [`MAX_MESSAGE_BYTES`].
pub(crate) const SNAPSHOT_CHUNK_BYTES: u64 = 1024 * 1024;

/// The largest gRPC message a replica sends or accepts.
pub(crate) const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// The stored size of the entries read for one AppendEntries call, at most (always at
/// least one entry): keeps a catching-up follower's batches under [`MAX_MESSAGE_BYTES`].
pub(crate) const REPLICATION_BATCH_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Names the group in openraft's logs and traces ("order_executor", "books_db").
    pub cluster_name: String,
    /// How often the leader sends heartbeats; also the deadline of one AppendEntries.
    pub heartbeat_interval: Duration,
    /// A follower that hears no leader for a random time in
    /// [`election_timeout_min`, `election_timeout_max`) starts an election.
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// How long connecting to a peer may take before it counts as unreachable.
    pub connect_timeout: Duration,
    /// The deadline of sending one snapshot chunk and, for the last one, installing it.
    pub install_snapshot_timeout: Duration,
    /// Build a snapshot every this many applied entries; `None`: only when asked
    /// (`raft.trigger().snapshot()`).
    pub snapshot_every_entries: Option<u64>,
    /// Entries kept in the log after a snapshot covers them, so that a briefly lagging
    /// follower catches up from the log rather than by a whole snapshot.
    pub entries_kept_after_snapshot: u64,
    /// How long `Node::shutdown` waits for the storage to be released.
    pub shutdown_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            cluster_name: "raft".to_owned(),
            heartbeat_interval: Duration::from_millis(100),
            election_timeout_min: Duration::from_millis(300),
            election_timeout_max: Duration::from_millis(800),
            connect_timeout: Duration::from_millis(100),
            install_snapshot_timeout: Duration::from_secs(2),
            snapshot_every_entries: Some(5_000),
            entries_kept_after_snapshot: 1_000,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

impl Config {
    /// openraft's config, validated (e.g. elections slower than heartbeats).
    #[expect(clippy::result_large_err, reason = "openraft's own error type, returned once at startup")]
    pub(crate) fn to_openraft(&self) -> Result<openraft::Config, openraft::ConfigError> {
        openraft::Config {
            cluster_name: self.cluster_name.clone(),
            heartbeat_interval: millis(self.heartbeat_interval),
            election_timeout_min: millis(self.election_timeout_min),
            election_timeout_max: millis(self.election_timeout_max),
            install_snapshot_timeout: millis(self.install_snapshot_timeout),
            snapshot_policy: match self.snapshot_every_entries {
                Some(entries) => SnapshotPolicy::LogsSinceLast(entries),
                None => SnapshotPolicy::Never,
            },
            snapshot_max_chunk_size: SNAPSHOT_CHUNK_BYTES,
            max_in_snapshot_log_to_keep: self.entries_kept_after_snapshot,
            ..openraft::Config::default()
        }
        .validate()
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_in_milliseconds() {
        let config = Config::default().to_openraft().expect("valid defaults");
        assert_eq!(config.heartbeat_interval, 100);
        assert_eq!((config.election_timeout_min, config.election_timeout_max), (300, 800));
        assert_eq!(config.snapshot_policy, SnapshotPolicy::LogsSinceLast(5_000));
    }

    #[test]
    fn refuses_elections_faster_than_heartbeats() {
        let config = Config {
            heartbeat_interval: Duration::from_millis(400),
            ..Config::default()
        };
        assert!(config.to_openraft().is_err());
    }
}
