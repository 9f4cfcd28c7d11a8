//! The knobs of a replica, in `Duration`s, and their translation to openraft's
//! millisecond config.
//!
//! Heartbeats: openraft checks for work on a tick of 1.5 × `heartbeat_interval` and
//! sends a heartbeat on the first tick after the interval, so the default 50 ms sends
//! one every 75 ms (the spec asks for at most 100 ms). openraft also drops an
//! AppendEntries round trip after the interval, and the gRPC call gives up at ¾ of
//! it (37.5 ms; `network.rs`), the follower's fsync included: which is why it is not
//! shorter.
//!
//! Elections: openraft 0.9 makes a follower that has heard a leader wait the leader's
//! lease, which it sets to `election_timeout_max`, *plus* its own randomized election
//! timeout before it stands (`RaftCore::handle_tick_election`), and a replica refuses
//! votes while that lease runs. It looks on the same 1.5 × heartbeat tick, so the
//! silence before a candidate stands is `election_timeout_max +
//! [election_timeout_min, election_timeout_max)`, plus up to one tick. The seed's
//! Raft stood after a random 300–800 ms; openraft's 300–800 would mean 1.1–1.7 s. The
//! defaults, 150–360 ms, put it at 510–795 ms: inside the seed's range, and over six
//! heartbeats, so a slow heartbeat on a busy machine does not depose a healthy leader.
//!
//! With `pre_vote` (the default), openraft's own timer is off and `election.rs`
//! keeps one over the same window, standing only when a majority says it could win.

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
    /// The leader sends a heartbeat on the first tick (1.5 × this) after this much
    /// time; also the limit of one AppendEntries (its gRPC call gets ¾ of it).
    pub heartbeat_interval: Duration,
    /// openraft's election timeout is drawn from [`election_timeout_min`,
    /// `election_timeout_max`); a follower stands after `election_timeout_max` plus
    /// that much silence (see the module's documentation).
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// How long connecting to a peer may take before it counts as unreachable.
    pub connect_timeout: Duration,
    /// The deadline of sending one snapshot chunk and, for the last one, installing it.
    pub install_snapshot_timeout: Duration,
    /// Build a snapshot every this many applied entries; `None`: only when asked
    /// (`raft.trigger().snapshot()`).
    pub snapshot_every_entries: Option<u64>,
    /// Also build one once this many bytes of entries were appended since the last
    /// one asked for so: an entry carries a batch of commands, so a count of
    /// entries does not bound the log's size. `None`: by count only.
    pub snapshot_after_bytes: Option<u64>,
    /// Entries kept in the log after a snapshot covers them, so that a briefly lagging
    /// follower catches up from the log rather than by a whole snapshot.
    pub entries_kept_after_snapshot: u64,
    /// How long `Node::shutdown` waits for the storage to be released.
    pub shutdown_timeout: Duration,
    /// Stand for election only when a majority would vote for this replica
    /// (`election.rs`). Off, openraft's own timer stands whenever it hears no
    /// leader: kept only to measure what pre-vote spares.
    pub pre_vote: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            cluster_name: "raft".to_owned(),
            heartbeat_interval: Duration::from_millis(50),
            election_timeout_min: Duration::from_millis(150),
            election_timeout_max: Duration::from_millis(360),
            connect_timeout: Duration::from_millis(100),
            install_snapshot_timeout: Duration::from_secs(2),
            snapshot_every_entries: Some(5_000),
            snapshot_after_bytes: Some(64 * 1024 * 1024),
            entries_kept_after_snapshot: 1_000,
            shutdown_timeout: Duration::from_secs(10),
            pre_vote: true,
        }
    }
}

impl Config {
    /// How long a follower that heard a leader waits in silence before it stands:
    /// the shortest and longest it may draw, the longest with the tick on which
    /// openraft notices.
    pub fn silence_before_election(&self) -> (Duration, Duration) {
        let tick = self.heartbeat_interval * 3 / 2;
        (self.election_timeout_max + self.election_timeout_min, self.election_timeout_max * 2 + tick)
    }

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
            enable_elect: !self.pre_vote,
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
        assert_eq!(config.heartbeat_interval, 50);
        assert_eq!((config.election_timeout_min, config.election_timeout_max), (150, 360));
        assert_eq!(config.snapshot_policy, SnapshotPolicy::LogsSinceLast(5_000));
    }

    #[test]
    fn by_default_a_follower_stands_within_the_seeds_300_to_800_ms_and_heartbeats_are_under_100_ms() {
        let config = Config::default();
        let (shortest, longest) = config.silence_before_election();
        assert!(
            Duration::from_millis(300) <= shortest && longest <= Duration::from_millis(800),
            "{shortest:?}–{longest:?}"
        );
        assert!(
            config.heartbeat_interval * 3 / 2 <= Duration::from_millis(100),
            "openraft's tick is 1.5 × the interval"
        );
        assert!(
            shortest >= config.heartbeat_interval * 3 / 2 * 5,
            "a lost heartbeat or four must not start an election"
        );
    }

    #[test]
    fn refuses_elections_faster_than_heartbeats() {
        let config = Config { heartbeat_interval: Duration::from_millis(400), ..Config::default() };
        assert!(config.to_openraft().is_err());
    }
}
