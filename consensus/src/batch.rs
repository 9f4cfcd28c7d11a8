//! Writes that arrive together share one log entry; reads that arrive together
//! share one confirmation of leadership.
//!
//! Every [`crate::Node::write`] goes to one task, which proposes what is waiting
//! as a single entry ([`Commands`]) and answers each writer with its own
//! command's output once that entry is committed and applied. At most
//! [`ENTRIES_IN_FLIGHT`] entries wait for the log at a time; writes arriving
//! meanwhile wait for the next entry, so under load one entry (one append, one
//! fsync on each replica, one replication message) carries many commands, and a
//! lone write is proposed at once. The machine applies an entry's commands one
//! after another, in the order they arrived, exactly as if each had its own entry.
//!
//! Likewise every [`crate::Node::read_linearizable`] goes to one task
//! ([`ReadBarrier`]), which confirms leadership with a majority (openraft's
//! `ensure_linearizable`: a heartbeat round) once for all the reads waiting when
//! it starts, one round at a time. A read is answered only by a round that started
//! after it arrived, so it still sees every write completed before it; under load
//! one round serves many reads instead of each paying its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::BasicNode;
use serde::{Deserialize, Deserializer, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::types::{NodeId, Raft, StateMachine};

/// The most commands one entry carries.
pub(crate) const MAX_COMMANDS: usize = 512;

/// Entries proposed and not yet applied, at most. One keeps the pipeline full
/// while the next batch gathers; more would only make the entries smaller.
pub(crate) const ENTRIES_IN_FLIGHT: usize = 2;

/// The commands of one log entry, applied in order. Written as a JSON array; an
/// entry written before batching (a single command) reads as a batch of one.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct Commands<C>(pub Vec<C>);

impl<'de, C: Deserialize<'de>> Deserialize<'de> for Commands<C> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored<C> {
            Batch(Vec<C>),
            One(C),
        }
        Ok(match Stored::deserialize(deserializer)? {
            Stored::Batch(commands) => Self(commands),
            Stored::One(command) => Self(vec![command]),
        })
    }
}

pub(crate) type WriteError = RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>;

type Answer<M> = oneshot::Sender<Result<<M as StateMachine>::Output, WriteError>>;

/// The writers' side of the batching task.
pub(crate) struct Batcher<M: StateMachine> {
    writes: mpsc::Sender<(M::Command, Answer<M>)>,
}

/// The most writes (and, apart, reads) that wait for the task at once; past it a
/// caller waits to hand its own over, so a flood of requests holds no more memory
/// here than this.
const WAITING: usize = 4096;

impl<M: StateMachine> Clone for Batcher<M> {
    fn clone(&self) -> Self {
        Self { writes: self.writes.clone() }
    }
}

impl<M: StateMachine> Batcher<M> {
    /// Starts the task proposing to `raft`; it ends when the last handle is dropped.
    pub(crate) fn start(raft: Raft<M>) -> Self {
        let (writes, waiting) = mpsc::channel(WAITING);
        tokio::spawn(propose_batches(raft, waiting));
        Self { writes }
    }

    /// Proposes `command` with whatever arrives with it; `None` if the task ended
    /// (the node is shutting down).
    pub(crate) async fn write(&self, command: M::Command) -> Option<Result<M::Output, WriteError>> {
        let (answer, answered) = oneshot::channel();
        self.writes.send((command, answer)).await.ok()?;
        answered.await.ok()
    }
}

async fn propose_batches<M: StateMachine>(raft: Raft<M>, mut waiting: mpsc::Receiver<(M::Command, Answer<M>)>) {
    let mut in_flight = FuturesUnordered::new();
    let mut open = true;
    while open || !in_flight.is_empty() {
        tokio::select! {
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
            first = waiting.recv(), if open && in_flight.len() < ENTRIES_IN_FLIGHT => {
                let Some(first) = first else {
                    open = false;
                    continue;
                };
                let batch = together(first, &mut waiting, MAX_COMMANDS).await;
                in_flight.push(propose(raft.clone(), batch));
            }
        }
    }
}

/// `first` and what else is waiting on `waiting`, at most `max` in all. Callers
/// woken by the same message (a gRPC frame carrying many requests, say) are ready
/// to run but may not have sent yet: the scheduler runs this task first, as the
/// one the first of them woke. Yielding once lets them send, so they join.
async fn together<T>(first: T, waiting: &mut mpsc::Receiver<T>, max: usize) -> Vec<T> {
    tokio::task::yield_now().await;
    let mut gathered = vec![first];
    while gathered.len() < max {
        match waiting.try_recv() {
            Ok(next) => gathered.push(next),
            Err(_) => break,
        }
    }
    gathered
}

/// Proposes one entry and answers each of its writers.
async fn propose<M: StateMachine>(raft: Raft<M>, batch: Vec<(M::Command, Answer<M>)>) {
    let (commands, answers): (Vec<M::Command>, Vec<Answer<M>>) = batch.into_iter().unzip();
    match raft.client_write(Commands(commands)).await {
        Ok(written) => {
            debug_assert_eq!(written.data.len(), answers.len(), "one output per command");
            for (answer, output) in answers.into_iter().zip(written.data) {
                let _ = answer.send(Ok(output));
            }
        }
        Err(error) => {
            for answer in answers {
                let _ = answer.send(Err(error.clone()));
            }
        }
    }
}

pub(crate) type ReadError = RaftError<NodeId, CheckIsLeaderError<NodeId, BasicNode>>;

/// Why a read was not confirmed.
#[derive(Debug, Clone)]
pub(crate) enum Confirmation {
    /// openraft's answer: not the leader, no quorum, or stopped.
    Refused(Box<ReadError>),
    /// No answer within [`CONFIRM_WITHIN`].
    TimedOut,
}

/// How long one confirmation may take: a heartbeat round to a quorum and applying
/// what was committed before, normally milliseconds.
const CONFIRM_WITHIN: Duration = Duration::from_secs(2);

/// The readers' side of the task confirming leadership for them.
#[derive(Clone)]
pub(crate) struct ReadBarrier {
    reads: mpsc::Sender<oneshot::Sender<Result<(), Confirmation>>>,
    rounds: Arc<AtomicU64>,
}

impl ReadBarrier {
    /// Starts the task confirming on `raft`; it ends when the last handle is dropped.
    pub(crate) fn start<M: StateMachine>(raft: Raft<M>) -> Self {
        let (reads, mut waiting) = mpsc::channel::<oneshot::Sender<Result<(), Confirmation>>>(WAITING);
        let rounds = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&rounds);
        tokio::spawn(async move {
            while let Some(first) = waiting.recv().await {
                let round = together(first, &mut waiting, usize::MAX).await;
                counted.fetch_add(1, Ordering::Relaxed);
                // Bounded: openraft waits, without end, for this replica to apply up
                // to the read's log index, which a leader deposed in between may not
                // reach until the next leader writes. One such round must not hold
                // every later read; its readers get an error and ask again.
                let confirmed = match tokio::time::timeout(CONFIRM_WITHIN, raft.ensure_linearizable()).await {
                    Ok(confirmed) => confirmed.map(|_| ()).map_err(|error| Confirmation::Refused(Box::new(error))),
                    Err(_) => Err(Confirmation::TimedOut),
                };
                for reader in round {
                    let _ = reader.send(confirmed.clone());
                }
            }
        });
        Self { reads, rounds }
    }

    /// How many confirmations the task has begun.
    pub(crate) fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }

    /// Once this replica has confirmed, after this call, that it still leads, and
    /// has applied everything committed before: `Ok`. `None` if the task ended.
    pub(crate) async fn confirm(&self) -> Option<Result<(), Confirmation>> {
        let (answer, answered) = oneshot::channel();
        self.reads.send(answer).await.ok()?;
        answered.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_a_json_array_and_a_single_stored_command_reads_as_a_batch_of_one() {
        let batch = Commands(vec!["a".to_owned(), "b".to_owned()]);
        assert_eq!(serde_json::to_string(&batch).unwrap(), r#"["a","b"]"#);
        let back: Commands<String> = serde_json::from_str(r#"["a","b"]"#).unwrap();
        assert_eq!(back.0, ["a", "b"]);
        let old: Commands<String> = serde_json::from_str(r#""a""#).unwrap();
        assert_eq!(old.0, ["a"]);
    }
}
