//! The shop's durable files, opened one way. The queue, the payment ledger and each
//! Raft replica keep a redb database; [`open`] makes its folder, creates the file if
//! it is new and its tables in one committed transaction, and [`redb_errors_into!`]
//! lets a store's own error take every redb error with `?`.
//!
//! Every file says which layout it holds: [`Format`], a kind and a version, kept in
//! the file's `format` table and checked by [`open`], which refuses a file of
//! another kind or written by a newer release.
//!
//! What each store writes, and how it encodes it, stays with the store; redb commits
//! a write transaction durably (fsync'd) before `commit` returns. [`GroupCommit`]
//! lets writes that arrive together share one transaction (one fsync), each
//! answered only once it is durable.

use std::path::Path;

pub use redb;

pub mod group;
pub use group::{GroupCommit, WriterStopped};

/// The layout a store's file holds: what kind of file it is, and the version of its
/// tables and encodings. A release that changes how a store writes raises the
/// store's version (and reads every older one: see ARCHITECTURE.md, "Files and
/// upgrades").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    /// e.g. "order_queue"; a file of another kind is refused.
    pub kind: &'static str,
    /// The version this release writes, and the newest it reads.
    pub version: u64,
}

/// The most memory redb keeps pages of one file in (its default is 1 GiB, which a
/// file that grows for good, like the payment ledger, would fill in time). Reads
/// past it go to the kernel's page cache.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Kind → version; one row.
const FORMAT: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("format");

/// Why [`open`] refused a file.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Redb(#[from] redb::Error),
    #[error(
        "the file holds format {found} of {kind}, written by a newer release; this one reads up to {reads}: \
         run the newer release (a file is never rewritten to an older format)"
    )]
    Newer { kind: &'static str, found: u64, reads: u64 },
    #[error("the file holds {found}, not {expected}: is the path right?")]
    OtherKind { expected: &'static str, found: String },
}

/// Opens the database at `path`, creating its folder and the file if need be, with
/// the tables `prepare` opens (a table is created the first time a write
/// transaction opens it), and stamps it with `format`.
///
/// `prepare` gets the version the file held (0 for a new file, and for one
/// written before files had a stamp: version 0 of its kind, whose layout version
/// 1 kept as it was) and converts an older layout to `format`'s in the same
/// transaction as the stamp, so a crash leaves the file wholly old or wholly new.
/// A file stamped with a newer version than `format`'s, or with another kind, is
/// refused and left as it is.
pub fn open(
    path: &Path,
    format: Format,
    prepare: impl FnOnce(&redb::WriteTransaction, u64) -> Result<(), redb::Error>,
) -> Result<redb::Database, OpenError> {
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder).map_err(redb::Error::from)?;
    }
    let db = redb::Database::builder().set_cache_size(CACHE_BYTES).create(path).map_err(redb::Error::from)?;
    let txn = db.begin_write().map_err(redb::Error::from)?;
    let held = {
        let mut stamp = txn.open_table(FORMAT).map_err(redb::Error::from)?;
        let found = {
            use redb::ReadableTable;
            let mut rows = stamp.iter().map_err(redb::Error::from)?;
            rows.next()
                .transpose()
                .map_err(redb::Error::from)?
                .map(|(kind, version)| (kind.value().to_owned(), version.value()))
        };
        match found {
            Some((kind, _)) if kind != format.kind => {
                return Err(OpenError::OtherKind { expected: format.kind, found: kind });
            }
            Some((_, found)) if found > format.version => {
                return Err(OpenError::Newer { kind: format.kind, found, reads: format.version });
            }
            // The same version, or an older one, which `prepare` converts.
            found => {
                stamp.insert(format.kind, format.version).map_err(redb::Error::from)?;
                found.map_or(0, |(_, version)| version)
            }
        }
    };
    prepare(&txn, held)?;
    txn.commit().map_err(redb::Error::from)?;
    Ok(db)
}

/// The format stamped in `db`'s file (kind and version), if it has a stamp.
pub fn format_of(db: &redb::Database) -> Result<Option<(String, u64)>, redb::Error> {
    use redb::{ReadableDatabase, ReadableTable};
    let txn = db.begin_read()?;
    let stamp = match txn.open_table(FORMAT) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    let mut rows = stamp.iter()?;
    let first = rows.next().transpose()?.map(|(kind, version)| (kind.value().to_owned(), version.value()));
    Ok(first)
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

    /// The test files' `prepare`: their one table, whatever version was found.
    fn with_table(txn: &redb::WriteTransaction, _found: u64) -> Result<(), redb::Error> {
        txn.open_table(TABLE).map(drop).map_err(Into::into)
    }
    const FILE: Format = Format { kind: "test", version: 1 };

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
        let db = open(&path, FILE, with_table).unwrap();
        assert_eq!(read(&db, "missing").unwrap(), None, "the table exists before anything was written");
        let txn = db.begin_write().unwrap();
        txn.open_table(TABLE).unwrap().insert("k", 7).unwrap();
        txn.commit().unwrap();
        drop(db);
        let db = open(&path, FILE, with_table).unwrap();
        assert_eq!(read(&db, "k").unwrap(), Some(7));
    }

    #[test]
    fn a_folder_that_cannot_be_made_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"not a folder").unwrap();
        let error = open(&file.join("db.redb"), FILE, |_, _| Ok(())).unwrap_err();
        assert!(matches!(error, OpenError::Redb(redb::Error::Io(_))), "{error:?}");
    }

    #[test]
    fn a_redb_error_becomes_the_stores_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let _open = open(&path, FILE, |_, _| Ok(())).unwrap();
        // redb refuses a file this process holds open already.
        let again: Result<redb::Database, StoreError> = redb::Database::create(&path).map_err(StoreError::from);
        let StoreError(message) = again.unwrap_err();
        assert!(message.contains("already open"), "{message}");
    }

    /// A file as a release before format stamps wrote it: its table, no stamp.
    fn unstamped(path: &Path) {
        let db = redb::Database::create(path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(TABLE).unwrap().insert("k", 7).unwrap();
        txn.commit().unwrap();
    }

    #[test]
    fn a_file_from_before_stamps_is_read_and_stamped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        unstamped(&path);
        let db = open(&path, FILE, with_table).unwrap();
        assert_eq!(read(&db, "k").unwrap(), Some(7));
        assert_eq!(format_of(&db).unwrap(), Some(("test".to_owned(), 1)));
    }

    #[test]
    fn a_file_of_a_newer_format_or_another_kind_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        drop(open(&path, Format { version: 2, ..FILE }, with_table).unwrap());

        let error = open(&path, FILE, with_table).unwrap_err();
        assert!(matches!(error, OpenError::Newer { found: 2, reads: 1, .. }), "{error:?}");
        assert!(error.to_string().contains("format 2 of test"), "{error}");
        let error = open(&path, Format { kind: "other", version: 2 }, |_, _| Ok(())).unwrap_err();
        assert!(matches!(&error, OpenError::OtherKind { found, .. } if found == "test"), "{error:?}");

        let db = redb::Database::create(&path).unwrap();
        assert_eq!(format_of(&db).unwrap(), Some(("test".to_owned(), 2)), "the stamp is unchanged");
    }
}
