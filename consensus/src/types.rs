//! What a replicated group supplies (its [`StateMachine`]) and the openraft type
//! configuration derived from it ([`Group`]).
//!
//! openraft wants one `RaftTypeConfig` type per application. Ours is generic over the
//! machine, so each group (executors, books database) gets its own config — its own
//! command and output types in the log — from the same plumbing. openraft's
//! `declare_raft_types!` cannot declare a generic type, so the config's trait bounds
//! (`Clone`, `Ord`, ...) are implemented here by hand: derived ones would demand the
//! same of the machine.

use std::cmp::Ordering;
use std::fmt::{self, Debug};
use std::io::Cursor;
use std::marker::PhantomData;

use openraft::impls::OneshotResponder;
use openraft::{BasicNode, RaftTypeConfig, TokioRuntime};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::batch::Commands;

/// A replica's id within its group.
pub type NodeId = u64;

/// A deterministic state machine replicated by Raft.
///
/// Every replica starts from `Default` (or from a snapshot: the machine's serde form)
/// and applies the same committed commands in the same order, so every replica holds
/// the same state. Hence `apply` must depend on nothing but the state and the command:
/// no clock, no randomness, no I/O (a command carries any time or id it needs), and it
/// must not panic (a panic stops the replica's Raft node).
pub trait StateMachine: Default + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// A change, as written to the log.
    type Command: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static;
    /// What applying a command answers to the writer.
    type Output: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + Default + 'static;

    fn apply(&mut self, command: &Self::Command) -> Self::Output;
}

/// The openraft type configuration of a group replicating `M`.
pub struct Group<M>(PhantomData<fn() -> M>);

impl<M: StateMachine> RaftTypeConfig for Group<M> {
    /// An entry carries the commands written together (`batch.rs`).
    type D = Commands<M::Command>;
    /// And answers each one's output, in order.
    type R = Vec<M::Output>;
    type NodeId = NodeId;
    type Node = BasicNode;
    type Entry = openraft::Entry<Self>;
    type SnapshotData = Cursor<Vec<u8>>;
    type AsyncRuntime = TokioRuntime;
    type Responder = OneshotResponder<Self>;
}

impl<M> Debug for Group<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Group<{}>", std::any::type_name::<M>())
    }
}

impl<M> Clone for Group<M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M> Copy for Group<M> {}

impl<M> Default for Group<M> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<M> PartialEq for Group<M> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<M> Eq for Group<M> {}

impl<M> PartialOrd for Group<M> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<M> Ord for Group<M> {
    fn cmp(&self, _: &Self) -> Ordering {
        Ordering::Equal
    }
}

/// A log entry of the group replicating `M`.
pub type Entry<M> = openraft::Entry<Group<M>>;
/// A position in the log: (leader's term and id, index).
pub type LogId = openraft::LogId<NodeId>;
/// The openraft node of a group replicating `M`.
pub type Raft<M> = openraft::Raft<Group<M>>;
pub(crate) type Vote = openraft::Vote<NodeId>;
pub(crate) type SnapshotMeta = openraft::SnapshotMeta<NodeId, BasicNode>;
pub(crate) type StoredMembership = openraft::StoredMembership<NodeId, BasicNode>;
pub(crate) type StorageError = openraft::StorageError<NodeId>;
