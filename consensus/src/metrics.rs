//! A replica's Raft state as Prometheus metrics, read from openraft's own
//! metrics at every scrape, labelled by group and replica: its role (one series
//! per role, 1 for the current one), term, the leader it knows, its last log
//! and applied indexes, and the elections it has seen (terms it entered: the
//! first, and one for every election since).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::ServerState;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::node::Node;
use crate::types::{Raft, StateMachine};

const ROLES: [(ServerState, &str); 5] = [
    (ServerState::Leader, "leader"),
    (ServerState::Follower, "follower"),
    (ServerState::Candidate, "candidate"),
    (ServerState::Learner, "learner"),
    (ServerState::Shutdown, "shutdown"),
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Replica {
    group: String,
    replica: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Role {
    group: String,
    replica: String,
    role: &'static str,
}

/// The collector of one replica's Raft metrics (register it with the process's
/// Prometheus registry).
pub struct RaftMetrics<M: StateMachine> {
    raft: Raft<M>,
    replica: Replica,
    elections: Arc<AtomicU64>,
}

impl<M: StateMachine> std::fmt::Debug for RaftMetrics<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftMetrics").field("replica", &self.replica).finish()
    }
}

impl<M: StateMachine> RaftMetrics<M> {
    /// The metrics of `node`, a replica of `group`. Counts the terms it enters
    /// from now on, in a task that ends with the node.
    pub fn new(node: &Node<M>, group: &str) -> Self {
        let elections = Arc::new(AtomicU64::new(0));
        let mut watch = node.raft().metrics();
        let seen = Arc::clone(&elections);
        tokio::spawn(async move {
            let mut term = 0;
            loop {
                let current = watch.borrow_and_update().current_term;
                if current > term {
                    term = current;
                    seen.fetch_add(1, Ordering::Relaxed);
                }
                if watch.changed().await.is_err() {
                    return;
                }
            }
        });
        Self {
            raft: node.raft().clone(),
            replica: Replica { group: group.to_owned(), replica: node.id().to_string() },
            elections,
        }
    }
}

impl<M: StateMachine> Collector for RaftMetrics<M> {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let metrics = self.raft.metrics().borrow().clone();
        let mut role = encoder.encode_descriptor(
            "raft_role",
            "The replica's role: 1 for the role it has, 0 for the others",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (state, name) in ROLES {
            let labels = Role { group: self.replica.group.clone(), replica: self.replica.replica.clone(), role: name };
            ConstGauge::new(i64::from(metrics.state == state)).encode(role.encode_family(&labels)?)?;
        }
        let mut gauge = |name: &str, help: &str, value: u64| -> Result<(), std::fmt::Error> {
            let gauge = ConstGauge::new(value as i64);
            let mut family = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(family.encode_family(&self.replica)?)
        };
        gauge("raft_term", "The replica's current Raft term", metrics.current_term)?;
        gauge(
            "raft_leader_id",
            "The leader this replica knows of (its replica id; 0: none known)",
            metrics.current_leader.unwrap_or_default(),
        )?;
        gauge(
            "raft_last_log_index",
            "The index of the last entry in the replica's log",
            metrics.last_log_index.unwrap_or(0),
        )?;
        gauge(
            "raft_applied_index",
            "The index of the last entry the replica applied to its state machine",
            metrics.last_applied.map_or(0, |log_id| log_id.index),
        )?;
        let elections = ConstCounter::new(self.elections.load(Ordering::Relaxed));
        let mut family = encoder.encode_descriptor(
            "raft_elections_seen",
            "Terms the replica has entered since it started: one per election it saw",
            None,
            elections.metric_type(),
        )?;
        elections.encode(family.encode_family(&self.replica)?)
    }
}
