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
}

/// One replica of a Raft group, as last seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaStatus {
    pub id: u64,
    pub address: String,
    /// "leader", "follower", "candidate", "learner", or "unreachable".
    pub role: String,
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
