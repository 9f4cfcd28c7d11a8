//! The one redb file a replica keeps (`raft.redb` in its data directory): the Raft log
//! and its metadata (`log_store.rs`) and the latest snapshot (`state_store.rs`).
//!
//! Every write is one transaction, run on tokio's blocking pool: an fsync must not
//! hold up the async workers that run Raft's timers and RPCs. It is committed with
//! `Durability::Immediate` (fsync'd before it returns), except what may be lost in a
//! crash ([`Db::write_lazily`]): redb makes that durable with the next immediate
//! commit. Reads stay inline.
//!
//! redb refuses to open a file that is already open in the process, so [`Db`]
//! reports when its last handle is gone (the receiver from [`Db::open`]): a replica
//! restarted in the same process reopens its file only once the previous run let go.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, Durability, ReadTransaction, ReadableDatabase, TableDefinition, WriteTransaction};
use tokio::sync::watch;

/// Log index → the entry as JSON.
pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
/// The vote, the committed log id and the last purged log id, as JSON.
pub(crate) const LOG_META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_log_meta");
/// The latest snapshot: its metadata (JSON) and the machine's state (JSON).
pub(crate) const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_snapshot");

/// Why the replica's storage failed: openraft stops the node on any of these.
#[derive(Debug, thiserror::Error)]
pub enum StorageFailure {
    #[error("the Raft database failed: {0}")]
    Redb(redb::Error),
    #[error("stored Raft data could not be encoded or decoded: {0}")]
    Serde(#[from] serde_json::Error),
    #[error("a storage task ended abnormally: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("creating the data directory failed: {0}")]
    Io(#[from] std::io::Error),
}

storage::redb_errors_into!(StorageFailure, StorageFailure::Redb);

pub(crate) struct Db {
    db: Database,
    /// Dropped with the last handle: tells `Node::shutdown` the file is closed.
    _open: watch::Sender<()>,
}

impl Db {
    /// Opens (or creates) the file with its tables, and a receiver whose `changed()`
    /// fails once every handle to the database is dropped.
    pub(crate) fn open(path: &Path) -> Result<(Arc<Self>, watch::Receiver<()>), StorageFailure> {
        let db = storage::open(path, |txn| {
            txn.open_table(LOG)?;
            txn.open_table(LOG_META)?;
            txn.open_table(SNAPSHOT)?;
            Ok(())
        })?;
        let (open, closed) = watch::channel(());
        Ok((Arc::new(Self { db, _open: open }), closed))
    }

    /// Runs `change` in one write transaction and commits it durably; nothing is
    /// written if `change` fails.
    pub(crate) async fn write<T, F>(self: &Arc<Self>, change: F) -> Result<T, StorageFailure>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T, StorageFailure> + Send + 'static,
    {
        self.commit(Durability::Immediate, change).await
    }

    /// Like [`Db::write`], without its own fsync: a crash may lose the change, and
    /// the next durable write keeps it.
    pub(crate) async fn write_lazily<T, F>(self: &Arc<Self>, change: F) -> Result<T, StorageFailure>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T, StorageFailure> + Send + 'static,
    {
        self.commit(Durability::None, change).await
    }

    async fn commit<T, F>(self: &Arc<Self>, durability: Durability, change: F) -> Result<T, StorageFailure>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T, StorageFailure> + Send + 'static,
    {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut txn = this.db.begin_write()?;
            txn.set_durability(durability)?;
            let out = change(&txn)?;
            txn.commit()?;
            Ok(out)
        })
        .await?
    }

    pub(crate) fn read<T>(
        &self,
        query: impl FnOnce(&ReadTransaction) -> Result<T, StorageFailure>,
    ) -> Result<T, StorageFailure> {
        query(&self.db.begin_read()?)
    }
}
