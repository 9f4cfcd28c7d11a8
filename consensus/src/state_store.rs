//! The replicated state machine: the application's machine in memory, what it has
//! applied, and its snapshots on disk.
//!
//! Applying an entry writes nothing to disk: the log already holds it durably. A
//! restarted replica loads its last snapshot (the machine's serde form, with the log id
//! and membership it covers) and openraft re-applies the committed entries after it
//! from the log. A snapshot is persisted before openraft hears of it, since openraft
//! then purges the log entries it covers.
//!
//! The machine sits behind a lock shared with [`StateHandle`], so the application reads
//! it in place; apply holds the write lock for one batch of entries.

use std::io::Cursor;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use redb::ReadableTable;

use crate::db::{Db, StorageFailure, SNAPSHOT};
use crate::types::{Entry, Group, LogId, SnapshotMeta, StateMachine, StorageError, StoredMembership};

const SNAPSHOT_META: &str = "meta";
const SNAPSHOT_DATA: &str = "data";

/// The machine and how far it got.
struct Applied<M> {
    machine: M,
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

type Shared<M> = Arc<RwLock<Applied<M>>>;

/// The locks are only poisoned if `M::apply` panicked, which stops the Raft node
/// anyway; readers then still see the last state.
fn read_lock<M>(applied: &RwLock<Applied<M>>) -> RwLockReadGuard<'_, Applied<M>> {
    applied.read().unwrap_or_else(PoisonError::into_inner)
}

fn write_lock<M>(applied: &RwLock<Applied<M>>) -> RwLockWriteGuard<'_, Applied<M>> {
    applied.write().unwrap_or_else(PoisonError::into_inner)
}

/// Read access to a replica's machine, as applied so far on this replica (which may
/// trail the leader; `Node::read_linearizable` reads what every write before it did).
pub struct StateHandle<M> {
    applied: Shared<M>,
}

impl<M> Clone for StateHandle<M> {
    fn clone(&self) -> Self {
        Self { applied: Arc::clone(&self.applied) }
    }
}

impl<M> StateHandle<M> {
    /// Runs `f` on the machine; writes wait meanwhile, so keep it short.
    pub fn read<R>(&self, f: impl FnOnce(&M) -> R) -> R {
        f(&read_lock(&self.applied).machine)
    }

    /// The index of the last entry applied here.
    pub fn last_applied_index(&self) -> Option<u64> {
        read_lock(&self.applied).last_applied.map(|log_id| log_id.index)
    }
}

pub(crate) struct StateStore<M> {
    applied: Shared<M>,
    db: Arc<Db>,
}

impl<M: StateMachine> StateStore<M> {
    /// The machine as of the stored snapshot, or a fresh one.
    pub(crate) fn open(db: Arc<Db>) -> Result<Self, StorageFailure> {
        let applied = match read_snapshot(&db)? {
            Some((meta, data)) => {
                tracing::info!(snapshot = %meta, "restoring the state machine from its snapshot");
                Applied {
                    machine: decode_machine(&data)?,
                    last_applied: meta.last_log_id,
                    membership: meta.last_membership,
                }
            }
            None => Applied { machine: M::default(), last_applied: None, membership: StoredMembership::default() },
        };
        Ok(Self { applied: Arc::new(RwLock::new(applied)), db })
    }

    pub(crate) fn handle(&self) -> StateHandle<M> {
        StateHandle { applied: Arc::clone(&self.applied) }
    }
}

fn read_snapshot(db: &Db) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StorageFailure> {
    db.read(|txn| {
        let table = txn.open_table(SNAPSHOT)?;
        let (Some(meta), Some(data)) = (table.get(SNAPSHOT_META)?, table.get(SNAPSHOT_DATA)?) else {
            return Ok(None);
        };
        Ok(Some((serde_json::from_slice(meta.value())?, data.value().to_vec())))
    })
}

/// Stores the snapshot unless the stored one is as recent: a snapshot built from an
/// older state must not replace one installed from the leader meanwhile.
async fn persist_snapshot(db: &Arc<Db>, meta: &SnapshotMeta, data: Vec<u8>) -> Result<(), StorageError> {
    let signature = meta.signature();
    let meta_json =
        serde_json::to_vec(meta).map_err(|e| StorageIOError::write_snapshot(Some(signature.clone()), &e))?;
    let last_log_id = meta.last_log_id;
    db.write(move |txn| {
        let mut table = txn.open_table(SNAPSHOT)?;
        let stored_last = match table.get(SNAPSHOT_META)? {
            Some(stored) => serde_json::from_slice::<SnapshotMeta>(stored.value())?.last_log_id,
            None => None,
        };
        if stored_last.is_some() && stored_last >= last_log_id {
            tracing::debug!(?stored_last, ?last_log_id, "a snapshot as recent is stored already");
            return Ok(());
        }
        table.insert(SNAPSHOT_META, meta_json.as_slice())?;
        table.insert(SNAPSHOT_DATA, data.as_slice())?;
        Ok(())
    })
    .await
    .map_err(|e| StorageIOError::write_snapshot(Some(signature), &e).into())
}

/// A snapshot of the machine as it was when openraft asked for a builder: the state is
/// serialized then, since openraft builds on another task while entries keep being
/// applied.
pub(crate) struct SnapshotBuilder {
    prepared: Result<(SnapshotMeta, Vec<u8>), StorageError>,
    db: Arc<Db>,
}

impl<M: StateMachine> RaftSnapshotBuilder<Group<M>> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<Group<M>>, StorageError> {
        let (meta, data) = self.prepared.clone()?;
        persist_snapshot(&self.db, &meta, data.clone()).await?;
        tracing::info!(snapshot = %meta, bytes = data.len(), "snapshot built");
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}

impl<M: StateMachine> RaftStateMachine<Group<M>> for StateStore<M> {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let applied = read_lock(&self.applied);
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<M::Output>>, StorageError>
    where
        I: IntoIterator<Item = Entry<M>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut applied = write_lock(&self.applied);
        let mut outputs = Vec::new();
        for entry in entries {
            debug_assert!(
                applied.last_applied.is_none_or(|last| last.index < entry.log_id.index),
                "entries are applied once, in order"
            );
            applied.last_applied = Some(entry.log_id);
            outputs.push(match entry.payload {
                EntryPayload::Blank => Vec::new(),
                EntryPayload::Normal(commands) => {
                    commands.0.iter().map(|command| applied.machine.apply(command)).collect()
                }
                EntryPayload::Membership(membership) => {
                    applied.membership = StoredMembership::new(Some(entry.log_id), membership);
                    Vec::new()
                }
            });
        }
        Ok(outputs)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        let applied = read_lock(&self.applied);
        let prepared = encode_machine(&applied.machine)
            .map(|data| {
                let meta = SnapshotMeta {
                    last_log_id: applied.last_applied,
                    last_membership: applied.membership.clone(),
                    snapshot_id: snapshot_id(applied.last_applied),
                };
                (meta, data)
            })
            .map_err(|e| StorageIOError::read_state_machine(&e).into());
        SnapshotBuilder { prepared, db: Arc::clone(&self.db) }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let machine: M =
            decode_machine(&data).map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        persist_snapshot(&self.db, meta, data).await?;
        tracing::info!(snapshot = %meta, "installed a snapshot from the leader");
        *write_lock(&self.applied) =
            Applied { machine, last_applied: meta.last_log_id, membership: meta.last_membership.clone() };
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<Group<M>>>, StorageError> {
        let stored = read_snapshot(&self.db).map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(stored.map(|(meta, data)| Snapshot { meta, snapshot: Box::new(Cursor::new(data)) }))
    }
}

/// The version of a snapshot's framing, its first byte: then the machine as JSON.
/// The same bytes are stored and sent to a follower that is too far behind.
/// Snapshots from before the byte are the JSON alone (version 0), and JSON never
/// begins with a byte below a space, so the two cannot be confused.
const SNAPSHOT_VERSION: u8 = 1;

fn encode_machine<M: StateMachine>(machine: &M) -> Result<Vec<u8>, serde_json::Error> {
    let mut data = vec![SNAPSHOT_VERSION];
    serde_json::to_writer(&mut data, machine)?;
    Ok(data)
}

fn decode_machine<M: StateMachine>(data: &[u8]) -> Result<M, StorageFailure> {
    match data.first() {
        Some(&SNAPSHOT_VERSION) => Ok(serde_json::from_slice(&data[1..])?),
        Some(&version) if version < b' ' => Err(StorageFailure::NewerSnapshot(version)),
        _ => Ok(serde_json::from_slice(data)?),
    }
}

/// Unique per snapshot (openraft tells snapshot streams apart by it): the log id it
/// covers and the time it was built.
fn snapshot_id(last_applied: Option<LogId>) -> String {
    let built_ns = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_nanos());
    match last_applied {
        Some(log_id) => format!("{}-{}-{built_ns}", log_id.leader_id, log_id.index),
        None => format!("empty-{built_ns}"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use openraft::testing::{StoreBuilder, Suite};
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::log_store::LogStore;

    #[derive(Debug, Default, Serialize, Deserialize)]
    struct Tally(BTreeMap<String, u64>);

    impl StateMachine for Tally {
        type Command = String;
        type Output = u64;

        fn apply(&mut self, command: &String) -> u64 {
            let count = self.0.entry(command.clone()).or_default();
            *count += 1;
            *count
        }
    }

    struct Stores;

    impl StoreBuilder<Group<Tally>, LogStore<Tally>, StateStore<Tally>, tempfile::TempDir> for Stores {
        async fn build(&self) -> Result<(tempfile::TempDir, LogStore<Tally>, StateStore<Tally>), StorageError> {
            let dir = tempfile::tempdir().map_err(|e| StorageIOError::write(&e))?;
            let (db, _closed) = Db::open(&dir.path().join("raft.redb")).map_err(|e| StorageIOError::write(&e))?;
            let state = StateStore::open(Arc::clone(&db)).map_err(|e| StorageIOError::read(&e))?;
            Ok((dir, LogStore::new(db), state))
        }
    }

    #[test]
    fn passes_openraft_storage_suite() {
        Suite::test_all(Stores).expect("openraft's storage suite");
    }

    #[test]
    fn a_snapshot_reads_framed_or_as_written_before_the_frame_and_a_newer_one_is_refused() {
        let machine = Tally(BTreeMap::from([("dune".to_owned(), 2)]));
        let framed = encode_machine(&machine).expect("encoded");
        assert_eq!(framed[0], SNAPSHOT_VERSION);
        assert_eq!(decode_machine::<Tally>(&framed).expect("framed").0, machine.0);
        let before = serde_json::to_vec(&machine).expect("JSON");
        assert_eq!(decode_machine::<Tally>(&before).expect("unframed").0, machine.0);
        let mut newer = framed.clone();
        newer[0] = SNAPSHOT_VERSION + 1;
        let error = decode_machine::<Tally>(&newer).expect_err("newer");
        assert!(matches!(error, StorageFailure::NewerSnapshot(2)), "{error:?}");
    }
}
