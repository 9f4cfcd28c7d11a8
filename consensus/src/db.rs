//! The one redb file a replica keeps (`raft.redb` in its data directory): the Raft log
//! and its metadata (`log_store.rs`) and the latest snapshot (`state_store.rs`).
//!
//! Every write goes to one writer thread (`storage::GroupCommit`), in order: an
//! fsync must not hold up the async workers that run Raft's timers and RPCs, and
//! openraft wants its writes done in the order it asked for them. Writes waiting
//! together share one transaction and one fsync. Each is durable (fsync'd) before
//! it is reported done, except what may be lost in a crash
//! ([`Db::write_lazily_detached`]): redb makes that durable with the next durable
//! commit. Reads stay inline.
//!
//! redb refuses to open a file that is already open in the process, so [`Db`]
//! reports when its last handle is gone (the receiver from [`Db::open`]): a replica
//! restarted in the same process reopens its file only once the previous run let go.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadTransaction, ReadableDatabase, TableDefinition, WriteTransaction};
use storage::GroupCommit;
use tokio::sync::watch;

/// Log index → the entry as JSON.
pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
/// The vote, the committed log id and the last purged log id, as JSON.
pub(crate) const LOG_META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_log_meta");
/// The latest snapshot: its metadata (JSON) and the machine's state (JSON).
pub(crate) const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_snapshot");

/// The layout of a replica's file: the tables above, the entries and the meta as
/// openraft's JSON, the snapshot's machine as `state_store.rs` frames it.
const FORMAT: storage::Format = storage::Format { kind: "raft", version: 1 };

/// Why the replica's storage failed: openraft stops the node on any of these.
#[derive(Debug, thiserror::Error)]
pub enum StorageFailure {
    #[error("the Raft database failed: {0}")]
    Redb(redb::Error),
    #[error("the Raft file cannot be opened: {0}")]
    Open(#[from] storage::OpenError),
    #[error("stored Raft data could not be encoded or decoded: {0}")]
    Serde(#[from] serde_json::Error),
    #[error("the snapshot is framed as version {0}, by a newer release: run that release")]
    NewerSnapshot(u8),
    #[error("creating the data directory failed: {0}")]
    Io(#[from] std::io::Error),
}

storage::redb_errors_into!(StorageFailure, StorageFailure::Redb);

pub(crate) struct Db {
    db: Arc<Database>,
    /// Dropping it waits for the writer thread to end, which closes the file.
    writer: GroupCommit,
    /// Dropped with the last handle, after the writer: tells `Node::shutdown` the
    /// file is closed.
    _open: watch::Sender<()>,
}

impl Db {
    /// Opens (or creates) the file with its tables, and a receiver whose `changed()`
    /// fails once every handle to the database is dropped.
    pub(crate) fn open(path: &Path) -> Result<(Arc<Self>, watch::Receiver<()>), StorageFailure> {
        let db = storage::open(path, FORMAT, |txn, _| {
            txn.open_table(LOG)?;
            txn.open_table(LOG_META)?;
            txn.open_table(SNAPSHOT)?;
            Ok(())
        })?;
        let db = Arc::new(db);
        let writer = GroupCommit::start(Arc::clone(&db), "raft")?;
        let (open, closed) = watch::channel(());
        Ok((Arc::new(Self { db, writer, _open: open }), closed))
    }

    /// Runs `change` in the next write transaction and answers once it is
    /// committed durably; nothing of it is written if `change` fails. It may run
    /// twice (see `storage::GroupCommit`), so it changes nothing but the
    /// transaction.
    pub(crate) async fn write<T, F>(&self, change: F) -> Result<T, StorageFailure>
    where
        T: Send + 'static,
        F: FnMut(&WriteTransaction) -> Result<T, StorageFailure> + Send + 'static,
    {
        self.writer.write(change).await
    }

    /// Queues `change` for the next write transaction and returns at once; `then`
    /// is called (on the writer's thread) once it is committed durably.
    pub(crate) async fn write_then<T, F>(
        &self,
        change: F,
        then: impl FnOnce(Result<T, StorageFailure>) + Send + 'static,
    ) -> Result<(), StorageFailure>
    where
        T: Send + 'static,
        F: FnMut(&WriteTransaction) -> Result<T, StorageFailure> + Send + 'static,
    {
        self.writer.write_then(change, then).await
    }

    /// Queues `change`, which a crash may lose, and returns at once: it is written
    /// in order with the rest, without an fsync of its own. A failure is logged.
    pub(crate) async fn write_lazily_detached<F>(&self, change: F) -> Result<(), StorageFailure>
    where
        F: FnMut(&WriteTransaction) -> Result<(), StorageFailure> + Send + 'static,
    {
        self.writer
            .write_lazily_then(change, |result: Result<(), StorageFailure>| {
                if let Err(error) = result {
                    tracing::error!(%error, "a lazy write to the Raft database failed");
                }
            })
            .await
    }

    pub(crate) fn read<T>(
        &self,
        query: impl FnOnce(&ReadTransaction) -> Result<T, StorageFailure>,
    ) -> Result<T, StorageFailure> {
        query(&self.db.begin_read()?)
    }
}
