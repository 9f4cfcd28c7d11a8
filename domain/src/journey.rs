//! An order's journey through the system, as its page shows it: the checkout's
//! vector-clocked events (a–f), its time in the queue, and the executors' two-phase
//! commit (which leader, in which term, the participants' votes, the decision).
//!
//! Built from what the services record; holds no customer data (no name, no card).
//! Times are Unix milliseconds, as the services stamped them.

use serde::{Deserialize, Serialize};

use crate::{Step, VectorClock};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Journey {
    /// The checkout's events, in the order they ended.
    pub checkout: Vec<CheckoutEvent>,
    /// On the queue: known while it waits there, and afterwards from the executors.
    pub queued: Option<Queued>,
    /// The two-phase commit, once the executors have started it.
    pub execution: Option<Execution>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutEvent {
    pub step: Step,
    pub service: String,
    /// The service's clock after the event; `None` if it did not answer.
    pub clock: Option<VectorClock>,
    pub at_ms: u64,
    /// The refusal's code, if the step refused.
    pub refusal: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Queued {
    /// The client card that set the priority: "Premium", "Basic" or "None".
    pub priority: String,
    /// When the checkout accepted the order.
    pub accepted_at_ms: u64,
    /// While it waits: 1 when it is next.
    pub position: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    /// The executor leader that started the two-phase commit.
    pub started: Option<LeaderStamp>,
    /// The participants' votes on the prepare, in the order they came.
    pub votes: Vec<Vote>,
    /// The decision, once logged (by the starting leader or, after a fail-over,
    /// the next one).
    pub decision: Option<Decision>,
    /// When both participants and the queue had acknowledged the decision.
    pub completed_at_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaderStamp {
    /// The executor replica's Raft node id.
    pub node: u64,
    pub term: u64,
    pub at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vote {
    /// "books_db" or "payment".
    pub participant: String,
    pub yes: bool,
    pub reason: Option<String>,
    pub at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub commit: bool,
    pub by: LeaderStamp,
}

impl Journey {
    /// When the journey began (the first checkout event), the origin for the page's
    /// "+N ms".
    pub fn began_at_ms(&self) -> Option<u64> {
        self.checkout.iter().map(|event| event.at_ms).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journey_reads_back_from_its_json() {
        let journey = Journey {
            checkout: vec![CheckoutEvent {
                step: Step::VerifyItems,
                service: "transaction_verification".into(),
                clock: Some(VectorClock::new([1, 0, 0])),
                at_ms: 1_000,
                refusal: None,
            }],
            queued: Some(Queued { priority: "Premium".into(), accepted_at_ms: 1_005, position: Some(1) }),
            execution: Some(Execution {
                started: Some(LeaderStamp { node: 2, term: 3, at_ms: 1_010 }),
                votes: vec![Vote { participant: "books_db".into(), yes: true, reason: None, at_ms: 1_012 }],
                decision: Some(Decision { commit: true, by: LeaderStamp { node: 2, term: 3, at_ms: 1_013 } }),
                completed_at_ms: Some(1_020),
            }),
        };
        let json = serde_json::to_value(&journey).unwrap();
        assert_eq!(json["checkout"][0]["step"], "verify_items");
        assert_eq!(json["execution"]["decision"]["by"]["term"], 3);
        assert_eq!(serde_json::from_value::<Journey>(json).unwrap(), journey);
        assert_eq!(journey.began_at_ms(), Some(1_000));
    }
}
