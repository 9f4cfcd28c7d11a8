//! One replica of a group: its openraft node wired to the redb storage and the gRPC
//! network, and the few operations a group's service needs (form the group, write a
//! command, read the machine, stop).
//!
//! Everything else (metrics, `wait()`, membership changes, triggers) is openraft's own
//! API on [`Node::raft`]; this module does not wrap what it does not need to.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, ClientWriteError, Fatal, ForwardToLeader, InitializeError, RaftError};
use openraft::BasicNode;
use proto::v1::raft_server::RaftServer;
use tokio::sync::watch;

use crate::batch::{Batcher, Confirmation, ReadBarrier, WriteError};
use crate::config::Config;
use crate::db::{Db, StorageFailure};
use crate::election::{Ballot, Contact, Guard};
use crate::grpc::RaftGrpc;
use crate::log_store::LogStore;
use crate::network::Network;
use crate::state_store::{StateHandle, StateStore};
use crate::types::{NodeId, Raft, StateMachine};

/// The file, in the replica's data directory, holding its log and snapshot.
pub const DATA_FILE: &str = "raft.redb";

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("the Raft configuration is invalid: {0}")]
    Config(#[from] openraft::ConfigError),
    #[error("the Raft storage at {path} failed: {source}")]
    Storage { path: PathBuf, source: StorageFailure },
    #[error("this replica is not the leader{}: send the request to the leader", leader_hint(.leader_id, .leader_addr))]
    NotLeader { leader_id: Option<NodeId>, leader_addr: Option<String> },
    #[error("the leader could not reach a majority of the group; retry when more replicas are up")]
    NoQuorum,
    #[error("replica {id} is not among the members it was asked to form a group with")]
    NotAMember { id: NodeId },
    #[error("openraft refused the write: {0}")]
    Refused(String),
    #[error("the Raft node stopped: {0}")]
    Stopped(#[from] Fatal<NodeId>),
    #[error("the Raft node did not release its storage within {0:?} of shutting down")]
    ShutdownTimedOut(Duration),
}

fn leader_hint(id: &Option<NodeId>, addr: &Option<String>) -> String {
    match (id, addr) {
        (Some(id), Some(addr)) => format!(" (the leader is {id} at {addr})"),
        (Some(id), None) => format!(" (the leader is {id})"),
        _ => " (no leader is known yet)".to_owned(),
    }
}

fn write_error(error: WriteError) -> NodeError {
    match error {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => forward.into(),
        // Only membership changes fail so; kept for completeness of the match.
        RaftError::APIError(ClientWriteError::ChangeMembershipError(refused)) => {
            NodeError::Refused(refused.to_string())
        }
        RaftError::Fatal(fatal) => fatal.into(),
    }
}

impl From<ForwardToLeader<NodeId, BasicNode>> for NodeError {
    fn from(forward: ForwardToLeader<NodeId, BasicNode>) -> Self {
        Self::NotLeader { leader_id: forward.leader_id, leader_addr: forward.leader_node.map(|node| node.addr) }
    }
}

/// Asks for a snapshot each time another `bytes` of entries were appended, until
/// `stop` changes or is dropped. Looked at every second.
async fn snapshot_by_size<M: StateMachine>(
    raft: Raft<M>,
    appended: Arc<std::sync::atomic::AtomicU64>,
    bytes: u64,
    mut stop: watch::Receiver<()>,
) {
    let mut at_last = 0;
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
        let now = appended.load(std::sync::atomic::Ordering::Relaxed);
        if now.saturating_sub(at_last) >= bytes {
            at_last = now;
            tracing::debug!(appended = now, "the log grew past the snapshot size; snapshotting");
            if raft.trigger().snapshot().await.is_err() {
                return;
            }
        }
    }
}

/// One replica of a group replicating `M`. Cloning gives another handle on the same
/// replica.
pub struct Node<M: StateMachine> {
    id: NodeId,
    raft: Raft<M>,
    /// Where writes go to be proposed together (`batch.rs`).
    batcher: Batcher<M>,
    /// Where linearizable reads go to share a confirmation (`batch.rs`).
    reads: ReadBarrier,
    state: StateHandle<M>,
    /// What the gRPC service needs to answer pre-votes (`election.rs`).
    ballot: Ballot,
    /// Dropping the last one stops the election guard; `shutdown` sends on it.
    stop_guard: Arc<watch::Sender<()>>,
    /// Fails once the storage is released (see `db.rs`).
    storage_closed: watch::Receiver<()>,
    shutdown_timeout: Duration,
    /// How long each rank waits for a group to reach it before forming one
    /// ([`Node::initialize`]).
    form_stagger: Duration,
}

impl<M: StateMachine> Clone for Node<M> {
    fn clone(&self) -> Self {
        Self {
            id: self.id,
            raft: self.raft.clone(),
            batcher: self.batcher.clone(),
            reads: self.reads.clone(),
            state: self.state.clone(),
            ballot: self.ballot.clone(),
            stop_guard: Arc::clone(&self.stop_guard),
            storage_closed: self.storage_closed.clone(),
            shutdown_timeout: self.shutdown_timeout,
            form_stagger: self.form_stagger,
        }
    }
}

impl<M: StateMachine> Node<M> {
    /// Starts replica `id` on the storage in `data_dir` (created if missing). A
    /// replica with data resumes where it stopped: its snapshot, then the committed
    /// entries after it. A new one waits to be made part of a group, by
    /// [`Node::initialize`] here or by a leader adding it.
    pub async fn start(id: NodeId, data_dir: &Path, config: &Config) -> Result<Self, NodeError> {
        let raft_config = Arc::new(config.to_openraft()?);
        let path = data_dir.join(DATA_FILE);
        let storage_failed = |source| NodeError::Storage { path: path.clone(), source };
        let (db, storage_closed) = Db::open(&path).map_err(storage_failed)?;
        let state_store = StateStore::<M>::open(Arc::clone(&db)).map_err(storage_failed)?;
        let state = state_store.handle();
        let log_store = LogStore::<M>::new(db);
        let ballot = Ballot { contact: Contact::new(), tip: log_store.tip(), lease: config.election_timeout_max };
        let appended = log_store.appended();
        let network = Network::new(id, config.connect_timeout);
        let raft = Raft::<M>::new(id, raft_config, network, log_store, state_store).await?;
        tracing::info!(id, cluster = %config.cluster_name, path = %path.display(), "Raft replica started");
        let (stop_guard, stopped) = watch::channel(());
        if config.pre_vote {
            Guard::spawn(id, raft.clone(), ballot.clone(), config.clone(), stopped.clone());
        }
        if let Some(bytes) = config.snapshot_after_bytes {
            tokio::spawn(snapshot_by_size(raft.clone(), appended, bytes, stopped));
        }
        let batcher = Batcher::start(raft.clone());
        let reads = ReadBarrier::start(raft.clone());
        Ok(Self {
            id,
            raft,
            batcher,
            reads,
            state,
            ballot,
            stop_guard: Arc::new(stop_guard),
            storage_closed,
            shutdown_timeout: config.shutdown_timeout,
            // Long enough for the replica before it to stand, win and be heard.
            form_stagger: config.silence_before_election().1 * 2,
        })
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    /// openraft's node: metrics, `wait()`, membership changes, triggers.
    pub fn raft(&self) -> &Raft<M> {
        &self.raft
    }

    /// The `bookstore.v1.Raft` service through which peers reach this replica: add it
    /// to the routes the replica serves, at the address the group knows it by.
    pub fn grpc_service(&self) -> RaftServer<RaftGrpc<M>> {
        RaftGrpc::server(self.raft.clone(), self.ballot.clone())
    }

    /// Forms a new group of `members` (id → address of its Raft service; this replica
    /// among them). Calling it again, on any member, or on a replica that already
    /// belongs to a group, changes nothing; every member must be given the same map.
    ///
    /// Forming makes the replica stand at once, in term 1. If every member formed the
    /// group at the same moment they would all stand in term 1, and the one that
    /// loses while holding its own vote refuses the winner (openraft ranks a vote in
    /// the same term by node id), then deposes it: a leader change on every fresh
    /// start. So members take turns by rank (position of their id in `members`): the
    /// first forms the group at once; the k-th waits up to k × `form_stagger` for a
    /// leader to reach it and forms the group only if none has (the members before it
    /// are down).
    pub async fn initialize(&self, members: BTreeMap<NodeId, BasicNode>) -> Result<(), NodeError> {
        let rank = members.keys().position(|id| *id == self.id).unwrap_or(0);
        if rank > 0 && !self.raft.is_initialized().await? {
            let joined = self
                .raft
                .wait(Some(self.form_stagger * rank as u32))
                .metrics(|metrics| metrics.last_log_index.is_some(), "a leader reaching this replica")
                .await;
            if joined.is_ok() {
                tracing::debug!(id = self.id, "a leader formed the group and reached this replica");
                return Ok(());
            }
            tracing::info!(id = self.id, rank, "no leader reached this replica in its turn; forming the group");
        }
        // Asking first spares the log openraft's error line for a refused initialize
        // on every restart; a peer may still form the group in between, hence the match.
        if self.raft.is_initialized().await? {
            tracing::debug!(id = self.id, "the replica is part of a group already");
            return Ok(());
        }
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(InitializeError::NotAllowed(already))) => {
                tracing::debug!(id = self.id, %already, "the replica is part of a group already");
                Ok(())
            }
            Err(RaftError::APIError(InitializeError::NotInMembers(_))) => Err(NodeError::NotAMember { id: self.id }),
            Err(RaftError::Fatal(fatal)) => Err(fatal.into()),
        }
    }

    /// The current leader, as far as this replica knows.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// This replica's current Raft term.
    pub fn term(&self) -> u64 {
        self.raft.metrics().borrow().current_term
    }

    /// Whether this replica believes it leads (it may have been deposed without
    /// knowing yet: [`Node::read_linearizable`] confirms).
    pub fn is_leader(&self) -> bool {
        self.leader() == Some(self.id)
    }

    /// Replicates `command` and answers what applying it gave, once a majority holds
    /// it. Only the leader accepts writes ([`NodeError::NotLeader`] names it). If the
    /// leader fails before answering, the command may or may not be applied: commands
    /// should be idempotent (e.g. keyed by order id). Writes arriving together share
    /// one log entry (`batch.rs`), applied in the order they arrived.
    pub async fn write(&self, command: M::Command) -> Result<M::Output, NodeError> {
        match self.batcher.write(command).await {
            Some(Ok(output)) => Ok(output),
            Some(Err(error)) => Err(write_error(error)),
            None => Err(NodeError::Stopped(Fatal::Stopped)),
        }
    }

    /// Runs `f` on this replica's machine as applied here so far: possibly behind the
    /// leader. For a read that sees every write completed before it, use
    /// [`Node::read_linearizable`].
    pub fn read<R>(&self, f: impl FnOnce(&M) -> R) -> R {
        self.state.read(f)
    }

    /// A handle for reading the machine that outlives borrowing the node.
    pub fn state(&self) -> StateHandle<M> {
        self.state.clone()
    }

    /// Runs `f` on the machine once this replica has confirmed with a majority that it
    /// is still the leader and has applied everything committed before the call
    /// (openraft's `ensure_linearizable`). Only on the leader. Reads arriving
    /// together share one confirmation, begun after each of them arrived.
    pub async fn read_linearizable<R>(&self, f: impl FnOnce(&M) -> R) -> Result<R, NodeError> {
        match self.reads.confirm().await {
            Some(Ok(())) => Ok(self.state.read(f)),
            Some(Err(Confirmation::Refused(refused))) => Err(match *refused {
                RaftError::APIError(CheckIsLeaderError::ForwardToLeader(forward)) => forward.into(),
                RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_)) => NodeError::NoQuorum,
                RaftError::Fatal(fatal) => fatal.into(),
            }),
            Some(Err(Confirmation::TimedOut)) => Err(NodeError::NoQuorum),
            None => Err(NodeError::Stopped(Fatal::Stopped)),
        }
    }

    /// How many leadership confirmations this replica has run for linearizable
    /// reads (fewer than the reads when they arrive together).
    pub fn read_rounds(&self) -> u64 {
        self.reads.rounds()
    }

    /// Stops the Raft node and waits until its storage is released, so the replica can
    /// be started again from the same directory. Stop serving its gRPC service too.
    pub async fn shutdown(&self) -> Result<(), NodeError> {
        self.stop_guard.send_replace(());
        if let Err(panicked) = self.raft.shutdown().await {
            tracing::error!(id = self.id, error = %panicked, "the Raft core ended abnormally");
        }
        let mut storage_closed = self.storage_closed.clone();
        let released = tokio::time::timeout(self.shutdown_timeout, async {
            // Only fails, and only once the last storage handle is dropped.
            while storage_closed.changed().await.is_ok() {}
        });
        released.await.map_err(|_| NodeError::ShutdownTimedOut(self.shutdown_timeout))?;
        tracing::info!(id = self.id, "Raft replica stopped");
        Ok(())
    }
}
