//! The executors' replicated state machine: the two-phase-commit record of every
//! order the group has taken from the queue. The leader appends `Start` before it
//! prepares the participants, `Decide` before it sends the decision, and `Complete`
//! once both participants and the queue have acknowledged. Because the record is
//! in the Raft log, a new leader knows every order its predecessor left in flight:
//! undecided ones it aborts (releasing what was reserved), decided ones it finishes
//! by sending the recorded decision again.
//!
//! Transitions are typed and one-way: executing → committing → committed, or
//! executing → aborting → aborted. The first decision recorded wins; a later,
//! different one is refused, so an order can never be both committed and aborted.
//!
//! The state stays bounded: the leader logs `Prune` now and then, and every replica
//! forgets the same finished orders, those completed before its time. Only final
//! records go, so every order a new leader must finish is still here; what is
//! forgotten is answered for as archived (`archived_before_ms`).
//!
//! Nothing scans every record: the orders in flight (what a new leader finishes)
//! and the final ones by completion time (what `Prune` forgets) are indexed.
//!
//! Invariant (checked in debug builds after every command): `in_flight` holds the
//! ids of exactly the records not final, and `completed` the (completion time, id)
//! of exactly the final records that have a completion time. Both are derived from
//! the records: never stored, rebuilt when a snapshot is read.

use std::collections::{BTreeMap, BTreeSet};

use domain::journey::{CheckoutEvent, LeaderStamp, Vote};
use domain::{ClientCard, OrderLine, OrderState};
use serde::{Deserialize, Serialize};

/// What the executors need to run an order's two-phase commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Execution {
    pub order_id: String,
    pub lines: Vec<OrderLine>,
    pub total_cents: u64,
    pub card_network: String,
    pub card_last4: String,
    pub card_fingerprint: String,
    /// The queue lease to acknowledge when the order is finished.
    pub lease_id: String,
    /// The start of the order's journey, carried along for its page (none of it is
    /// customer data). Absent in records written before it was kept.
    #[serde(default)]
    pub checkout_events: Vec<CheckoutEvent>,
    /// The order's priority on the queue (absent in records written before it was
    /// kept).
    #[serde(default)]
    pub client_card: Option<ClientCard>,
    #[serde(default)]
    pub accepted_at_ms: u64,
    /// The leader that started the two-phase commit (set by it, when proposing).
    #[serde(default)]
    pub started: Option<LeaderStamp>,
    /// The checkout's trace context (W3C `traceparent`), as it came through the
    /// queue: the order's execution, by whichever leader, continues that trace.
    /// Empty when tracing was off, and in records written before it was kept.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub trace_context: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Started: participants are being prepared; no decision yet.
    Executing,
    /// Decided to commit; the decision is being delivered.
    Committing,
    /// Decided to abort, with the reason; the decision is being delivered.
    Aborting {
        reason: String,
    },
    Committed,
    Aborted {
        reason: String,
    },
}

impl Phase {
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Committed | Self::Aborted { .. })
    }

    /// The status shown to the shopper: executing until the decision has reached
    /// every participant, then committed or aborted.
    pub fn status(&self) -> OrderState {
        match self {
            Self::Executing | Self::Committing | Self::Aborting { .. } => OrderState::Executing,
            Self::Committed => OrderState::Committed,
            Self::Aborted { .. } => OrderState::Aborted,
        }
    }

    /// What was decided, once it was: "commit" or "abort".
    fn decision(&self) -> Option<&'static str> {
        match self {
            Self::Executing => None,
            Self::Committing | Self::Committed => Some("commit"),
            Self::Aborting { .. } | Self::Aborted { .. } => Some("abort"),
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Aborting { reason } | Self::Aborted { reason } => Some(reason),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub execution: Execution,
    pub phase: Phase,
    /// 1 for the first order the group started, 2 for the next, ...: the order in
    /// which the leader took orders from the queue.
    pub sequence: u64,
    /// The votes the decision was made on (none when a new leader aborted an
    /// undecided order), and who logged it, when.
    #[serde(default)]
    pub votes: Vec<Vote>,
    #[serde(default)]
    pub decided: Option<LeaderStamp>,
    #[serde(default)]
    pub completed_at_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Start(Execution),
    /// `None` commits; `Some(reason)` aborts.
    Decide {
        order_id: String,
        abort_reason: Option<String>,
        /// What the decision was made on and who made it (for the journey; the
        /// state machine keeps the first decision's).
        #[serde(default)]
        votes: Vec<Vote>,
        #[serde(default)]
        by: Option<LeaderStamp>,
    },
    Complete {
        order_id: String,
        #[serde(default)]
        at_ms: Option<u64>,
    },
    /// Forget the final orders completed before `before_ms` (and final ones whose
    /// completion time was not recorded). The leader's clock, in the command, so
    /// every replica forgets the same.
    Prune {
        before_ms: u64,
    },
}

impl Command {
    /// What the command does, as a span names it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Start(_) => "Start",
            Self::Decide { .. } => "Decide",
            Self::Complete { .. } => "Complete",
            Self::Prune { .. } => "Prune",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Outcome {
    /// The command took effect, or had already (idempotent repeat); the order's
    /// phase now.
    Phase(Phase),
    /// Refused: the order is unknown, or the command contradicts its record.
    Refused { reason: String },
    /// `Prune` forgot this many orders.
    Pruned { orders: usize },
    #[default]
    Nothing,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "Stored")]
pub struct ExecutorState {
    records: BTreeMap<String, Record>,
    started: u64,
    /// Orders completed before this time (ms since the epoch) are forgotten.
    archived_before_ms: u64,
    /// The ids of the records not final.
    in_flight: BTreeSet<String>,
    /// (completion time, id) of the final records that have one.
    completed: BTreeSet<(u64, String)>,
}

/// What a snapshot holds of the state: the records, not the indexes.
#[derive(Deserialize)]
struct Stored {
    records: BTreeMap<String, Record>,
    started: u64,
    #[serde(default)]
    archived_before_ms: u64,
}

/// [`Stored`], borrowed: a snapshot is written without copying the records.
#[derive(Serialize)]
struct StoredRef<'a> {
    records: &'a BTreeMap<String, Record>,
    started: u64,
    archived_before_ms: u64,
}

impl From<Stored> for ExecutorState {
    fn from(stored: Stored) -> Self {
        let (in_flight, completed) = indexes(&stored.records);
        Self {
            records: stored.records,
            started: stored.started,
            archived_before_ms: stored.archived_before_ms,
            in_flight,
            completed,
        }
    }
}

impl Serialize for ExecutorState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StoredRef { records: &self.records, started: self.started, archived_before_ms: self.archived_before_ms }
            .serialize(serializer)
    }
}

/// The indexes `records` implies: the ids not final, and the (completion time, id)
/// of the final ones that have one.
fn indexes(records: &BTreeMap<String, Record>) -> (BTreeSet<String>, BTreeSet<(u64, String)>) {
    let in_flight = records.iter().filter(|(_, record)| !record.phase.is_final()).map(|(id, _)| id.clone()).collect();
    let completed = records.iter().filter_map(|(id, record)| completion(id, record)).collect();
    (in_flight, completed)
}

/// The key of a final record in [`ExecutorState::completed`].
fn completion(id: &str, record: &Record) -> Option<(u64, String)> {
    record.phase.is_final().then_some(record.completed_at_ms).flatten().map(|at| (at, id.to_owned()))
}

impl ExecutorState {
    pub fn apply(&mut self, command: &Command) -> Outcome {
        let outcome = self.run(command);
        debug_assert!(self.consistent(), "executor indexes disagree with the records after {command:?}");
        outcome
    }

    fn run(&mut self, command: &Command) -> Outcome {
        match command {
            Command::Start(execution) => {
                let started = &mut self.started;
                let in_flight = &mut self.in_flight;
                let record = self.records.entry(execution.order_id.clone()).or_insert_with(|| {
                    *started += 1;
                    in_flight.insert(execution.order_id.clone());
                    Record {
                        execution: execution.clone(),
                        phase: Phase::Executing,
                        sequence: *started,
                        votes: Vec::new(),
                        decided: None,
                        completed_at_ms: None,
                    }
                });
                Outcome::Phase(record.phase.clone())
            }
            Command::Decide { order_id, abort_reason, votes, by } => {
                let Some(record) = self.records.get_mut(order_id) else {
                    return Outcome::Refused { reason: format!("order {order_id} was never started") };
                };
                let wanted = match abort_reason {
                    None => Phase::Committing,
                    Some(reason) => Phase::Aborting { reason: reason.clone() },
                };
                match (&record.phase, &wanted) {
                    (Phase::Executing, _) => {
                        record.phase = wanted;
                        record.votes = votes.clone();
                        record.decided = *by;
                        Outcome::Phase(record.phase.clone())
                    }
                    (Phase::Committing | Phase::Committed, Phase::Committing)
                    | (Phase::Aborting { .. } | Phase::Aborted { .. }, Phase::Aborting { .. }) => {
                        Outcome::Phase(record.phase.clone())
                    }
                    (current, _) => Outcome::Refused {
                        reason: format!(
                            "order {order_id} is already decided: {}",
                            current.decision().unwrap_or("none")
                        ),
                    },
                }
            }
            Command::Complete { order_id, at_ms } => {
                let Some(record) = self.records.get_mut(order_id) else {
                    return Outcome::Refused { reason: format!("order {order_id} was never started") };
                };
                record.phase = match &record.phase {
                    Phase::Committing | Phase::Committed => Phase::Committed,
                    Phase::Aborting { reason } | Phase::Aborted { reason } => Phase::Aborted { reason: reason.clone() },
                    Phase::Executing => {
                        return Outcome::Refused { reason: format!("order {order_id} has no decision to complete") }
                    }
                };
                record.completed_at_ms = record.completed_at_ms.or(*at_ms);
                self.in_flight.remove(order_id);
                self.completed.extend(completion(order_id, record));
                Outcome::Phase(record.phase.clone())
            }
            Command::Prune { before_ms } => {
                let kept = self.completed.split_off(&(*before_ms, String::new()));
                let forgotten = std::mem::replace(&mut self.completed, kept);
                for (_, order_id) in &forgotten {
                    self.records.remove(order_id);
                }
                self.archived_before_ms = self.archived_before_ms.max(*before_ms);
                Outcome::Pruned { orders: forgotten.len() }
            }
        }
    }

    /// The invariant (see the module's documentation).
    fn consistent(&self) -> bool {
        let (in_flight, completed) = indexes(&self.records);
        in_flight == self.in_flight && completed == self.completed
    }

    /// Orders completed before this time (ms since the epoch) have been forgotten.
    pub fn archived_before_ms(&self) -> u64 {
        self.archived_before_ms
    }

    /// How many orders the state holds.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn get(&self, order_id: &str) -> Option<&Record> {
        self.records.get(order_id)
    }

    /// Orders started and not finished: what a new leader must finish.
    pub fn in_flight(&self) -> impl Iterator<Item = &Record> {
        self.in_flight.iter().filter_map(|order_id| self.records.get(order_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn execution(order_id: &str) -> Execution {
        Execution {
            order_id: order_id.into(),
            lines: vec![OrderLine { book_id: "4".into(), quantity: domain::Quantity::new(1, "quantity").unwrap() }],
            total_cents: 1598,
            card_network: "visa".into(),
            card_last4: "6287".into(),
            card_fingerprint: "f".repeat(64),
            lease_id: "lease".into(),
            checkout_events: Vec::new(),
            client_card: Some(ClientCard::Premium),
            accepted_at_ms: 1_000,
            started: Some(LeaderStamp { node: 1, term: 2, at_ms: 1_010 }),
            trace_context: BTreeMap::from([(
                "traceparent".to_owned(),
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
            )]),
        }
    }

    fn decide(order_id: &str, abort_reason: Option<&str>) -> Command {
        let votes =
            vec![Vote { participant: "books_db".into(), yes: abort_reason.is_none(), reason: None, at_ms: 1_011 }];
        let by = Some(LeaderStamp { node: 1, term: 2, at_ms: 1_012 });
        Command::Decide { order_id: order_id.into(), abort_reason: abort_reason.map(str::to_owned), votes, by }
    }

    fn complete(order_id: &str) -> Command {
        Command::Complete { order_id: order_id.into(), at_ms: Some(1_020) }
    }

    #[test]
    fn the_record_keeps_the_first_decisions_votes_and_stamps() {
        let mut state = ExecutorState::default();
        state.apply(&Command::Start(execution("o1")));
        state.apply(&decide("o1", None));
        let later = Command::Decide {
            order_id: "o1".into(),
            abort_reason: None,
            votes: Vec::new(),
            by: Some(LeaderStamp { node: 3, term: 4, at_ms: 2_000 }),
        };
        state.apply(&later);
        state.apply(&complete("o1"));
        state.apply(&Command::Complete { order_id: "o1".into(), at_ms: Some(3_000) });
        let record = state.get("o1").unwrap();
        assert_eq!(record.execution.started, Some(LeaderStamp { node: 1, term: 2, at_ms: 1_010 }));
        assert_eq!(record.votes.len(), 1);
        assert_eq!(record.decided, Some(LeaderStamp { node: 1, term: 2, at_ms: 1_012 }), "the first decision's");
        assert_eq!(record.completed_at_ms, Some(1_020), "the first completion's");
    }

    #[test]
    fn commands_logged_before_the_journey_was_kept_still_apply() {
        let start = r#"{"Start":{"order_id":"o1","lines":[{"book_id":"4","quantity":1}],"total_cents":1598,
            "card_network":"visa","card_last4":"6287","card_fingerprint":"f","lease_id":"l"}}"#;
        let decide = r#"{"Decide":{"order_id":"o1","abort_reason":null}}"#;
        let complete = r#"{"Complete":{"order_id":"o1"}}"#;
        let mut state = ExecutorState::default();
        for json in [start, decide, complete] {
            state.apply(&serde_json::from_str(json).unwrap());
        }
        let record = state.get("o1").unwrap();
        assert_eq!(record.phase, Phase::Committed);
        assert_eq!((record.execution.started, record.decided, record.completed_at_ms), (None, None, None));
    }

    #[test]
    fn the_trace_context_is_logged_with_the_order_and_kept_in_its_record() {
        let logged = serde_json::to_string(&Command::Start(execution("o1"))).unwrap();
        let mut state = ExecutorState::default();
        state.apply(&serde_json::from_str(&logged).unwrap());
        let kept = &state.get("o1").unwrap().execution.trace_context;
        assert_eq!(kept, &execution("o1").trace_context);
        let untraced = Execution { trace_context: BTreeMap::new(), ..execution("o2") };
        let logged = serde_json::to_string(&Command::Start(untraced)).unwrap();
        assert!(!logged.contains("trace_context"), "an order without a trace logs no empty field: {logged}");
    }

    #[test]
    fn an_order_goes_executing_committing_committed() {
        let mut state = ExecutorState::default();
        assert_eq!(state.apply(&Command::Start(execution("o1"))), Outcome::Phase(Phase::Executing));
        assert_eq!(state.apply(&decide("o1", None)), Outcome::Phase(Phase::Committing));
        assert_eq!(state.apply(&complete("o1")), Outcome::Phase(Phase::Committed));
        assert_eq!(state.get("o1").unwrap().phase.status(), OrderState::Committed);
        assert_eq!(state.in_flight().count(), 0);
        state.apply(&Command::Start(execution("o2")));
        state.apply(&Command::Start(execution("o1")));
        assert_eq!((state.get("o1").unwrap().sequence, state.get("o2").unwrap().sequence), (1, 2));
    }

    #[test]
    fn the_first_decision_wins() {
        let mut state = ExecutorState::default();
        state.apply(&Command::Start(execution("o1")));
        state.apply(&decide("o1", Some("card declined")));
        assert!(matches!(state.apply(&decide("o1", None)), Outcome::Refused { .. }), "no commit after an abort");
        assert_eq!(
            state.apply(&decide("o1", Some("other"))),
            Outcome::Phase(Phase::Aborting { reason: "card declined".into() }),
            "a repeated abort keeps the first reason"
        );
        state.apply(&complete("o1"));
        let record = state.get("o1").unwrap();
        assert_eq!((record.phase.status(), record.phase.reason()), (OrderState::Aborted, Some("card declined")));
    }

    #[test]
    fn start_and_complete_are_idempotent() {
        let mut state = ExecutorState::default();
        state.apply(&Command::Start(execution("o1")));
        state.apply(&decide("o1", None));
        assert_eq!(
            state.apply(&Command::Start(execution("o1"))),
            Outcome::Phase(Phase::Committing),
            "redelivery keeps the record"
        );
        state.apply(&complete("o1"));
        assert_eq!(state.apply(&complete("o1")), Outcome::Phase(Phase::Committed));
        assert!(matches!(state.apply(&complete("o2")), Outcome::Refused { .. }));
        state.apply(&Command::Start(execution("o3")));
        assert!(matches!(state.apply(&complete("o3")), Outcome::Refused { .. }), "no completion without a decision");
    }

    #[test]
    fn a_replayed_log_shows_a_new_leader_what_is_in_flight() {
        let log = [
            Command::Start(execution("done")),
            decide("done", None),
            complete("done"),
            Command::Start(execution("undecided")),
            Command::Start(execution("decided")),
            decide("decided", Some("only 2 copies of Fourth Wing left")),
        ];
        let mut replica = ExecutorState::default();
        for command in &log {
            replica.apply(command);
        }
        // A restart replays the same log into a fresh state.
        let mut restarted = ExecutorState::default();
        for command in &log {
            restarted.apply(command);
        }
        assert_eq!(restarted, replica);
        let in_flight: Vec<(&str, &Phase)> =
            restarted.in_flight().map(|r| (r.execution.order_id.as_str(), &r.phase)).collect();
        assert_eq!(
            in_flight,
            [
                ("decided", &Phase::Aborting { reason: "only 2 copies of Fourth Wing left".into() }),
                ("undecided", &Phase::Executing),
            ]
        );
    }

    #[test]
    fn prune_forgets_only_final_orders_completed_before_its_time() {
        let mut state = ExecutorState::default();
        for id in ["old", "recent", "undecided", "decided"] {
            state.apply(&Command::Start(execution(id)));
        }
        for id in ["old", "recent", "decided"] {
            state.apply(&Command::Decide { order_id: id.into(), abort_reason: None, votes: Vec::new(), by: None });
        }
        state.apply(&Command::Complete { order_id: "old".into(), at_ms: Some(1_000) });
        state.apply(&Command::Complete { order_id: "recent".into(), at_ms: Some(5_000) });

        assert_eq!(state.apply(&Command::Prune { before_ms: 5_000 }), Outcome::Pruned { orders: 1 });
        assert!(state.get("old").is_none());
        assert!(["recent", "undecided", "decided"].iter().all(|id| state.get(id).is_some()));
        assert_eq!((state.len(), state.archived_before_ms()), (3, 5_000));
        assert_eq!(state.in_flight().count(), 2, "what a new leader must finish is kept");
        assert_eq!(state.apply(&Command::Prune { before_ms: 2_000 }), Outcome::Pruned { orders: 0 });
        assert_eq!(state.archived_before_ms(), 5_000, "the horizon never moves back");
    }

    #[test]
    fn a_snapshot_keeps_the_records_and_rebuilds_the_indexes() {
        let mut state = ExecutorState::default();
        for id in ["a", "b", "c"] {
            state.apply(&Command::Start(execution(id)));
        }
        state.apply(&Command::Decide { order_id: "a".into(), abort_reason: None, votes: Vec::new(), by: None });
        state.apply(&Command::Complete { order_id: "a".into(), at_ms: Some(1_000) });

        let json = serde_json::to_value(&state).expect("JSON");
        let fields: Vec<&String> = json.as_object().expect("an object").keys().collect();
        assert_eq!(fields, ["archived_before_ms", "records", "started"], "the indexes are not stored");
        let mut read: ExecutorState = serde_json::from_value(json).expect("read back");
        assert_eq!(read, state, "records and indexes alike");
        let in_flight: Vec<&str> = read.in_flight().map(|record| record.execution.order_id.as_str()).collect();
        assert_eq!(in_flight, ["b", "c"]);
        assert_eq!(read.apply(&Command::Prune { before_ms: 2_000 }), Outcome::Pruned { orders: 1 });
    }
}
