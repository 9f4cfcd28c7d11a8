//! Where an order is after checkout, and how the replicated groups are doing: the
//! answers of `GET /orders/{id}` and `GET /api/cluster`, shared with the page.

use std::fmt;

use serde::{Deserialize, Serialize};

/// queued → executing → committed, or aborted (with a reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Accepted and waiting in the queue.
    Queued,
    /// Two-phase commit under way.
    Executing,
    /// Stock taken and payment captured.
    Committed,
    /// Not executed; nothing was charged.
    Aborted,
}

impl OrderState {
    pub fn is_final(self) -> bool {
        matches!(self, Self::Committed | Self::Aborted)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Executing => "executing",
            Self::Committed => "committed",
            Self::Aborted => "aborted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Queued, Self::Executing, Self::Committed, Self::Aborted].into_iter().find(|s| s.as_str() == text)
    }

    /// For the shopper.
    pub fn label(self) -> &'static str {
        match self {
            Self::Queued => "Waiting to be packed",
            Self::Executing => "Reserving your books and taking payment",
            Self::Committed => "Confirmed: your books are reserved and paid",
            Self::Aborted => "Cancelled: nothing was charged",
        }
    }
}

impl fmt::Display for OrderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderStatus {
    pub order_id: String,
    pub status: OrderState,
    /// Why an aborted order was aborted.
    pub reason: Option<String>,
    /// How the order travelled through the system so far (absent when no service
    /// recorded it, e.g. for orders placed before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journey: Option<crate::Journey>,
    /// The trace of the order's checkout and execution (32 hex digits), what an
    /// operator looks it up by in the trace store; absent when the shop did not
    /// trace it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

/// What a replica is in its Raft group, as last seen. Serialized in lowercase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
    /// The replica is stopping.
    Shutdown,
    /// The replica did not answer.
    Unreachable,
    /// The replica answered with a state this version does not know.
    #[serde(other)]
    Unknown,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Leader => "leader",
            Self::Follower => "follower",
            Self::Candidate => "candidate",
            Self::Learner => "learner",
            Self::Shutdown => "shutdown",
            Self::Unreachable => "unreachable",
            Self::Unknown => "unknown",
        }
    }

    /// From openraft's `ServerState` as its metrics name it (`"Leader"`, ...).
    pub fn from_server_state(state: &str) -> Self {
        match state {
            "Leader" => Self::Leader,
            "Follower" => Self::Follower,
            "Candidate" => Self::Candidate,
            "Learner" => Self::Learner,
            "Shutdown" => Self::Shutdown,
            _ => Self::Unknown,
        }
    }
}

/// One replica of a Raft group, as last seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaStatus {
    pub id: u64,
    pub address: String,
    pub role: Role,
    pub term: u64,
    pub last_applied: Option<u64>,
    /// Whether the replica answered.
    pub answers: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueDepth {
    pub premium: u64,
    pub basic: u64,
    pub none: u64,
    /// Delivered to the executors and not yet acknowledged.
    pub leased: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    pub executors: Vec<ReplicaStatus>,
    pub books_db: Vec<ReplicaStatus>,
    /// `None` when the queue did not answer.
    pub queue: Option<QueueDepth>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_travel_in_lowercase_and_an_unknown_one_is_unknown() {
        for role in [
            Role::Leader,
            Role::Follower,
            Role::Candidate,
            Role::Learner,
            Role::Shutdown,
            Role::Unreachable,
            Role::Unknown,
        ] {
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
            assert_eq!(serde_json::from_str::<Role>(&json).unwrap(), role);
        }
        assert_eq!(serde_json::from_str::<Role>("\"observer\"").unwrap(), Role::Unknown);
        assert_eq!(Role::from_server_state("Leader"), Role::Leader);
        assert_eq!(Role::from_server_state("leader"), Role::Unknown, "openraft's names are capitalised");
    }
}
