//! The shop's durable files, opened one way. The queue, the payment ledger and each
//! Raft replica keep a redb database; [`open`] makes its folder, creates the file if
//! it is new and its tables in one committed transaction, and [`redb_errors_into!`]
//! lets a store's own error take every redb error with `?`.
//!
//! What each store writes, and how it encodes it, stays with the store; redb commits
//! a write transaction durably (fsync'd) before `commit` returns. [`GroupCommit`]
//! lets writes that arrive together share one transaction (one fsync), each
//! answered only once it is durable.

use std::path::Path;

pub use redb;

pub mod group;
pub use group::{GroupCommit, WriterStopped};

/// Opens the database at `path`, creating its folder and the file if need be, with
/// the tables `create_tables` opens (a table is created the first time a write
/// transaction opens it).
pub fn open(
    path: &Path,
    create_tables: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::TableError>,
) -> Result<redb::Database, redb::Error> {
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)?;
    }
    let db = redb::Database::create(path)?;
    let txn = db.begin_write()?;
    create_tables(&txn)?;
    txn.commit()?;
    Ok(db)
}

/// `impl From<E> for $target` for every redb error `E` (and `redb::Error` itself)
/// and for [`WriterStopped`], through `$convert: fn(redb::Error) -> $target`.
#[macro_export]
macro_rules! redb_errors_into {
    ($target:ty, $convert:expr) => {
        impl From<$crate::WriterStopped> for $target {
            fn from(error: $crate::WriterStopped) -> Self {
                let convert: fn($crate::redb::Error) -> $target = $convert;
                convert($crate::redb::Error::Io(std::io::Error::other(error)))
            }
        }
        $crate::redb_errors_into!(@each $target, $convert;
            $crate::redb::Error,
            $crate::redb::DatabaseError,
            $crate::redb::TransactionError,
            $crate::redb::TableError,
            $crate::redb::StorageError,
            $crate::redb::CommitError,
            $crate::redb::SetDurabilityError
        );
    };
    (@each $target:ty, $convert:expr; $($error:ty),*) => {$(
        impl From<$error> for $target {
            fn from(error: $error) -> Self {
                let convert: fn($crate::redb::Error) -> $target = $convert;
                convert($crate::redb::Error::from(error))
            }
        }
    )*};
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("t");

    #[derive(Debug)]
    struct StoreError(String);
    redb_errors_into!(StoreError, |error| StoreError(error.to_string()));

    fn read(db: &redb::Database, key: &str) -> Result<Option<u64>, StoreError> {
        use redb::ReadableDatabase;
        let txn = db.begin_read()?;
        let table = txn.open_table(TABLE)?;
        Ok(table.get(key)?.map(|value| value.value()))
    }

    #[test]
    fn opens_a_new_file_in_a_new_folder_with_its_tables_and_reopens_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("db.redb");
        let db = open(&path, |txn| txn.open_table(TABLE).map(drop)).unwrap();
        assert_eq!(read(&db, "missing").unwrap(), None, "the table exists before anything was written");
        let txn = db.begin_write().unwrap();
        txn.open_table(TABLE).unwrap().insert("k", 7).unwrap();
        txn.commit().unwrap();
        drop(db);
        let db = open(&path, |txn| txn.open_table(TABLE).map(drop)).unwrap();
        assert_eq!(read(&db, "k").unwrap(), Some(7));
    }

    #[test]
    fn a_folder_that_cannot_be_made_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"not a folder").unwrap();
        let error = open(&file.join("db.redb"), |_| Ok(())).unwrap_err();
        assert!(matches!(error, redb::Error::Io(_)), "{error:?}");
    }

    #[test]
    fn a_redb_error_becomes_the_stores_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let _open = open(&path, |_| Ok(())).unwrap();
        // redb refuses a file this process holds open already.
        let again: Result<redb::Database, StoreError> = redb::Database::create(&path).map_err(StoreError::from);
        let StoreError(message) = again.unwrap_err();
        assert!(message.contains("already open"), "{message}");
    }
}
