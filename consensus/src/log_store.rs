//! The durable Raft log: entries, the vote, the committed log id and the last purged
//! log id, in the replica's redb file.
//!
//! Raft's safety rests on this store: a replica must never forget a vote it cast or
//! an entry it acknowledged. So every change is fsync'd, and `append` reports the
//! entries flushed (openraft's `LogFlushed` callback, after which the leader may
//! count them towards a quorum) only once their transaction is committed.
//!
//! `append` does not wait for that: it queues the entries for the writer (writes
//! arriving together share one transaction and one fsync) and returns, so
//! openraft's core goes on with its work (replicating, taking more proposals) while
//! the write is under way. Until it is committed the entries are kept here in
//! memory, where the readers find them: openraft reads what it appended at once.
//! The committed log id is saved too (lazily), so a restarted replica re-applies
//! what was committed after its last snapshot without waiting for a leader.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader, StorageIOError};
use redb::{ReadableTable, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::REPLICATION_BATCH_BYTES;
use crate::db::{Db, StorageFailure, LOG, LOG_META};
use crate::types::{Entry, Group, LogId, StateMachine, StorageError, Vote};

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";

/// Entries appended whose transaction is not committed yet, by index, as JSON.
type Unflushed = BTreeMap<u64, (LogId, Arc<[u8]>)>;

/// An entry's index and JSON.
type Row = (u64, Arc<[u8]>);

/// The log of a group replicating `M`. Cloning gives another handle on the same file
/// and the same unflushed entries (openraft reads the log from its replication
/// tasks while the core appends).
pub(crate) struct LogStore<M> {
    db: Arc<Db>,
    unflushed: Arc<Mutex<Unflushed>>,
    /// The committed log id last saved (`None` until one is), which reaches the
    /// file lazily.
    committed: Arc<Mutex<Option<Option<LogId>>>>,
    /// The last entry's log id, kept as the log changes, for pre-vote.
    tip: LogTip,
    /// Bytes of entries appended, for snapshotting by size (`node.rs`).
    appended: Arc<std::sync::atomic::AtomicU64>,
    _machine: PhantomData<fn() -> M>,
}

/// The id of the last entry of a replica's log (or of the last purged one, for a log
/// emptied by a snapshot), readable without the file: the election guard compares
/// it with a candidate's (`election.rs`), and holding it does not keep the file open.
#[derive(Clone, Default)]
pub(crate) struct LogTip(Arc<Mutex<Option<LogId>>>);

impl LogTip {
    pub(crate) fn get(&self) -> Option<LogId> {
        *lock(&self.0)
    }

    fn set(&self, last: Option<LogId>) {
        *lock(&self.0) = last;
    }
}

impl<M> Clone for LogStore<M> {
    fn clone(&self) -> Self {
        Self {
            db: Arc::clone(&self.db),
            unflushed: Arc::clone(&self.unflushed),
            committed: Arc::clone(&self.committed),
            tip: self.tip.clone(),
            appended: Arc::clone(&self.appended),
            _machine: PhantomData,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<M: StateMachine> LogStore<M> {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self {
            db,
            unflushed: Arc::default(),
            committed: Arc::default(),
            tip: LogTip::default(),
            appended: Arc::default(),
            _machine: PhantomData,
        }
    }

    /// How many bytes of entries have been appended since the replica started.
    pub(crate) fn appended(&self) -> Arc<std::sync::atomic::AtomicU64> {
        Arc::clone(&self.appended)
    }

    /// The last entry's log id as it changes; openraft reads the log state first
    /// thing at startup, which sets it.
    pub(crate) fn tip(&self) -> LogTip {
        self.tip.clone()
    }

    /// The last purged log id and the last log id (the last purged one for an empty
    /// log), read from the file and the unflushed entries; updates the tip.
    fn log_state(&self) -> Result<LogState<Group<M>>, StorageFailure> {
        let unflushed_last = lock(&self.unflushed).last_key_value().map(|(_, (log_id, _))| *log_id);
        let last_purged_log_id: Option<LogId> = self.read_meta(LAST_PURGED)?;
        let stored_last = self.db.read(|txn| {
            let table = txn.open_table(LOG)?;
            let last = table.last()?;
            Ok(last.map(|(_, v)| serde_json::from_slice::<Entry<M>>(v.value())).transpose()?)
        })?;
        let stored_last = stored_last.map(|entry| entry.log_id);
        let last_log_id = match (unflushed_last, stored_last) {
            (Some(unflushed), Some(stored)) if stored.index > unflushed.index => Some(stored),
            (Some(unflushed), _) => Some(unflushed),
            (None, stored) => stored,
        };
        let last_log_id = last_log_id.or(last_purged_log_id);
        self.tip.set(last_log_id);
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    /// The entries in `range`, in order, from the file and the unflushed ones (which
    /// are newer where both have an index); with a byte budget, stops once the
    /// entries read reach it (but always returns the first entry present).
    fn read_entries(
        &self,
        range: impl RangeBounds<u64>,
        byte_budget: Option<usize>,
    ) -> Result<Vec<Entry<M>>, StorageFailure> {
        let bounds = (range.start_bound().cloned(), range.end_bound().cloned());
        // The unflushed ones first: an entry leaves them only once its transaction
        // is committed, so the file, read after, has it.
        let unflushed: Vec<Row> =
            lock(&self.unflushed).range(bounds).map(|(index, (_, json))| (*index, Arc::clone(json))).collect();
        self.db.read(|txn| {
            let table = txn.open_table(LOG)?;
            let mut rows = table.range(bounds)?;
            let mut next_row = || -> Result<Option<Row>, StorageFailure> {
                match rows.next() {
                    Some(row) => {
                        let (index, json) = row?;
                        Ok(Some((index.value(), Arc::from(json.value()))))
                    }
                    None => Ok(None),
                }
            };
            let mut stored = next_row()?;
            let mut unflushed = unflushed.into_iter().peekable();
            let mut entries = Vec::new();
            let mut bytes = 0;
            loop {
                let take_unflushed = match (&stored, unflushed.peek()) {
                    (None, None) => break,
                    (None, Some(_)) => true,
                    (Some(_), None) => false,
                    (Some((at, _)), Some((unflushed_at, _))) => unflushed_at <= at,
                };
                let json = if take_unflushed {
                    let (at, json) = unflushed.next().expect("peeked");
                    if stored.as_ref().is_some_and(|(stored_at, _)| *stored_at == at) {
                        stored = next_row()?;
                    }
                    json
                } else {
                    let (_, json) = stored.take().expect("compared");
                    stored = next_row()?;
                    json
                };
                if byte_budget.is_some_and(|budget| !entries.is_empty() && bytes + json.len() > budget) {
                    break;
                }
                bytes += json.len();
                entries.push(serde_json::from_slice(&json)?);
            }
            Ok(entries)
        })
    }

    fn read_meta<T: DeserializeOwned>(&self, key: &'static str) -> Result<Option<T>, StorageFailure> {
        self.db.read(|txn| {
            let table = txn.open_table(LOG_META)?;
            let value = table.get(key)?;
            Ok(value.map(|v| serde_json::from_slice(v.value())).transpose()?)
        })
    }
}

/// Sets `key` of the log's metadata to `value` (removes it for `None`).
fn meta_change<T: Serialize>(
    key: &'static str,
    value: Option<&T>,
) -> Result<impl FnMut(&WriteTransaction) -> Result<(), StorageFailure> + Send + 'static, StorageFailure> {
    let value = value.map(serde_json::to_vec).transpose()?;
    Ok(move |txn: &WriteTransaction| {
        let mut table = txn.open_table(LOG_META)?;
        match &value {
            Some(value) => table.insert(key, value.as_slice())?,
            None => table.remove(key)?,
        };
        Ok(())
    })
}

/// Deletes the entries with an index in `range`.
fn delete_entries(txn: &WriteTransaction, range: impl RangeBounds<u64>) -> Result<(), StorageFailure> {
    txn.open_table(LOG)?.retain_in(range, |_, _| false)?;
    Ok(())
}

impl<M: StateMachine> RaftLogReader<Group<M>> for LogStore<M> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<M>>, StorageError> {
        self.read_entries(range, None).map_err(|e| StorageIOError::read_logs(&e).into())
    }

    /// Bounded by [`REPLICATION_BATCH_BYTES`]: replication reads through here.
    async fn limited_get_log_entries(&mut self, start: u64, end: u64) -> Result<Vec<Entry<M>>, StorageError> {
        self.read_entries(start..end, Some(REPLICATION_BATCH_BYTES)).map_err(|e| StorageIOError::read_logs(&e).into())
    }
}

impl<M: StateMachine> RaftLogStorage<Group<M>> for LogStore<M> {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<Group<M>>, StorageError> {
        self.log_state().map_err(|e| StorageIOError::read_logs(&e).into())
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let write = async { self.db.write(meta_change(VOTE, Some(vote))?).await };
        write.await.map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.read_meta(VOTE).map_err(|e| StorageIOError::read_vote(&e).into())
    }

    /// Without an fsync of its own, and without waiting for the write: openraft
    /// does not need the committed index to survive a crash (a stale one only means
    /// applying fewer entries at restart, and the leader's next message says how far
    /// it has come), and the next log append or vote makes it durable anyway.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        *lock(&self.committed) = Some(committed);
        let change = meta_change(COMMITTED, committed.as_ref()).map_err(|e| StorageIOError::write(&e))?;
        self.db.write_lazily_detached(change).await.map_err(|e| StorageIOError::write(&e).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        if let Some(committed) = *lock(&self.committed) {
            return Ok(committed);
        }
        self.read_meta(COMMITTED).map_err(|e| StorageIOError::read(&e).into())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<Group<M>>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<M>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let encode = |entry: Entry<M>| serde_json::to_vec(&entry).map(|json| (entry.log_id, Arc::<[u8]>::from(json)));
        let rows = entries
            .into_iter()
            .map(encode)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StorageIOError::write_logs(&e))?;
        {
            let mut unflushed = lock(&self.unflushed);
            for (log_id, json) in &rows {
                unflushed.insert(log_id.index, (*log_id, Arc::clone(json)));
            }
        }
        let written: Vec<LogId> = rows.iter().map(|(log_id, _)| *log_id).collect();
        let bytes: usize = rows.iter().map(|(_, json)| json.len()).sum();
        self.appended.fetch_add(bytes as u64, std::sync::atomic::Ordering::Relaxed);
        if let Some(last) = written.last() {
            self.tip.set(Some(*last));
        }
        let unflushed = Arc::clone(&self.unflushed);
        let write = move |txn: &WriteTransaction| {
            let mut table = txn.open_table(LOG)?;
            for (log_id, json) in &rows {
                table.insert(log_id.index, &json[..])?;
            }
            Ok(())
        };
        let flushed = move |result: Result<(), StorageFailure>| {
            if result.is_ok() {
                // In the file now. An entry truncated and appended anew meanwhile is
                // another's to remove.
                let mut unflushed = lock(&unflushed);
                for log_id in written {
                    if unflushed.get(&log_id.index).is_some_and(|(kept, _)| *kept == log_id) {
                        unflushed.remove(&log_id.index);
                    }
                }
            }
            callback.log_io_completed(result.map_err(|e| std::io::Error::other(e.to_string())));
        };
        self.db.write_then(write, flushed).await.map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(%log_id, "truncating the log from this entry on");
        lock(&self.unflushed).split_off(&log_id.index);
        // Queued after every earlier append, so it deletes them too.
        self.db
            .write(move |txn| delete_entries(txn, log_id.index..))
            .await
            .map_err(|e| StorageIOError::write_logs(&e))?;
        self.log_state().map(drop).map_err(|e| StorageIOError::read_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(%log_id, "purging the log up to this entry");
        lock(&self.unflushed).retain(|index, _| *index > log_id.index);
        let json = serde_json::to_vec(&log_id).map_err(|e| StorageIOError::write_logs(&e))?;
        self.db
            .write(move |txn| {
                txn.open_table(LOG_META)?.insert(LAST_PURGED, json.as_slice())?;
                delete_entries(txn, (Bound::Unbounded, Bound::Included(log_id.index)))
            })
            .await
            .map_err(|e| StorageIOError::write_logs(&e))?;
        if self.tip.get() < Some(log_id) {
            self.tip.set(Some(log_id));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use openraft::storage::RaftLogStorageExt;
    use openraft::{CommittedLeaderId, EntryPayload};
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::Commands;

    /// A machine whose commands are strings: enough to fill a log.
    #[derive(Debug, Default, Serialize, Deserialize)]
    struct Text(usize);

    impl StateMachine for Text {
        type Command = String;
        type Output = usize;

        fn apply(&mut self, command: &String) -> usize {
            self.0 += command.len();
            self.0
        }
    }

    fn log_id(term: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn entry(term: u64, index: u64) -> Entry<Text> {
        Entry { log_id: log_id(term, index), payload: EntryPayload::Normal(Commands(vec![format!("entry {index}")])) }
    }

    fn open(dir: &tempfile::TempDir) -> LogStore<Text> {
        let (db, _closed) = Db::open(&dir.path().join("raft.redb")).expect("open");
        LogStore::new(db)
    }

    async fn indexes(store: &mut LogStore<Text>) -> Vec<u64> {
        let entries = store.try_get_log_entries(..).await.expect("read");
        entries.iter().map(|e| e.log_id.index).collect()
    }

    #[tokio::test]
    async fn appends_and_reads_entries_back_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = open(&dir);
        store.blocking_append((1..=5).map(|i| entry(1, i))).await.expect("append");

        let read = store.try_get_log_entries(2..4).await.expect("read");
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].log_id, log_id(1, 2));
        assert!(matches!(&read[1].payload, EntryPayload::Normal(text) if text.0 == ["entry 3"]));
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_log_id, Some(log_id(1, 5)));
        assert_eq!(state.last_purged_log_id, None);
    }

    #[tokio::test]
    async fn truncates_conflicting_entries_and_replaces_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = open(&dir);
        store.blocking_append((1..=5).map(|i| entry(1, i))).await.expect("append");

        store.truncate(log_id(1, 3)).await.expect("truncate");
        assert_eq!(indexes(&mut store).await, [1, 2]);
        store.blocking_append([entry(2, 3)]).await.expect("append");
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_log_id, Some(log_id(2, 3)));
    }

    #[tokio::test]
    async fn purges_a_prefix_and_remembers_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = open(&dir);
        store.blocking_append((1..=5).map(|i| entry(1, i))).await.expect("append");

        store.purge(log_id(1, 3)).await.expect("purge");
        assert_eq!(indexes(&mut store).await, [4, 5]);
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 3)));
        assert_eq!(state.last_log_id, Some(log_id(1, 5)));

        store.purge(log_id(1, 5)).await.expect("purge all");
        assert!(indexes(&mut store).await.is_empty());
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_log_id, Some(log_id(1, 5)), "an empty log ends at the last purged entry");
    }

    #[tokio::test]
    async fn keeps_vote_committed_and_entries_across_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vote = Vote::new_committed(3, 2);
        {
            let mut store = open(&dir);
            store.blocking_append((1..=3).map(|i| entry(3, i))).await.expect("append");
            store.save_vote(&vote).await.expect("vote");
            store.save_committed(Some(log_id(3, 2))).await.expect("committed");
            store.purge(log_id(3, 1)).await.expect("purge");
        }
        let mut store = open(&dir);
        assert_eq!(store.read_vote().await.expect("vote"), Some(vote));
        assert_eq!(store.read_committed().await.expect("committed"), Some(log_id(3, 2)));
        assert_eq!(indexes(&mut store).await, [2, 3]);
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_purged_log_id, Some(log_id(3, 1)));
    }

    #[tokio::test]
    async fn bounds_replication_reads_but_returns_at_least_one_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = open(&dir);
        let big = |index: u64, bytes: usize| Entry::<Text> {
            log_id: log_id(1, index),
            payload: EntryPayload::Normal(Commands(vec!["x".repeat(bytes)])),
        };
        let entry_bytes = REPLICATION_BATCH_BYTES / 4;
        store.blocking_append((1..=10).map(|i| big(i, entry_bytes))).await.expect("append");
        store.blocking_append([big(11, 2 * REPLICATION_BATCH_BYTES)]).await.expect("append");

        let batch = store.limited_get_log_entries(1, 12).await.expect("read");
        assert_eq!(batch.len(), 3, "three entries and their JSON quotes fit the budget");
        assert_eq!(batch[0].log_id.index, 1);
        let oversized = store.limited_get_log_entries(11, 12).await.expect("read");
        assert_eq!(oversized.len(), 1, "an entry larger than the budget is still returned");
    }
}
