//! Group commit: writes that arrive together share one redb transaction and so
//! one fsync, and each is answered only after that transaction is durable.
//!
//! One thread owns the writing. It takes every write waiting (up to a bound), runs
//! them one after another in a single transaction, in arrival order, so each sees
//! the ones before it exactly as if they had run alone, commits, and then answers
//! them all. If one of them fails, the transaction is dropped (nothing of it is
//! written) and each write of that batch runs again in a transaction of its own,
//! so one write's failure is never another's and nothing is half done. That is
//! why a write is `FnMut`: it must be able to run twice, and do nothing outside
//! the transaction.
//!
//! At most [`MAX_WAITING`] writes wait for the writer: one more waits for room
//! (its caller's task is suspended, no thread blocks), so writers faster than the
//! disk slow down instead of filling memory.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use redb::{Database, Durability, WriteTransaction};

/// The most writes one transaction carries.
pub const MAX_BATCH: usize = 1024;

/// The most writes waiting for the writer: four full transactions.
pub const MAX_WAITING: usize = 4 * MAX_BATCH;

/// A handle on a database's writer thread; clones share it. Dropping the last
/// handle waits for the writer to answer what it holds and end, so the database
/// can be opened again at once.
#[derive(Clone)]
pub struct GroupCommit {
    inner: Arc<Inner>,
}

struct Inner {
    jobs: Option<mpsc::Sender<Box<dyn Job>>>,
    counts: Arc<Counts>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel ends the writer's loop once it is empty.
        drop(self.jobs.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

#[derive(Default)]
struct Counts {
    commits: AtomicU64,
    waiting: AtomicUsize,
}

/// Why a write has no answer: the writer has stopped, or the write panicked (a
/// bug; the writer carries on with the others).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the write was not done: the database's writer stopped or the write failed unexpectedly")]
pub struct WriterStopped;

impl GroupCommit {
    /// Starts the writer thread of `db`, named `name` (it shows in a debugger and in
    /// a panic message).
    pub fn start(db: Arc<Database>, name: &str) -> std::io::Result<Self> {
        let (jobs, mut queue) = mpsc::channel::<Box<dyn Job>>(MAX_WAITING);
        let counts = Arc::new(Counts::default());
        let counted = Arc::clone(&counts);
        let writer = std::thread::Builder::new()
            .name(format!("{name}-writer"))
            .spawn(move || write_batches(&db, &mut queue, &counted))?;
        Ok(Self { inner: Arc::new(Inner { jobs: Some(jobs), counts, writer: Some(writer) }) })
    }

    /// How many transactions the writer has committed so far.
    pub fn commits(&self) -> u64 {
        self.inner.counts.commits.load(Ordering::Relaxed)
    }

    /// How many writes wait for the writer to take them.
    pub fn waiting(&self) -> usize {
        self.inner.counts.waiting.load(Ordering::Relaxed)
    }

    /// Runs `work` in the next transaction and answers its result once that
    /// transaction is committed (or the commit's error, converted).
    pub async fn write<T, E, W>(&self, work: W) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<redb::Error> + From<WriterStopped> + Send + 'static,
        W: FnMut(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.submit(Durability::Immediate, work, move |result| drop(answer.send(result))).await?;
        answered.await.map_err(|_| E::from(WriterStopped))?
    }

    /// Queues `work` for the next transaction and returns once it is queued (at
    /// once, unless [`MAX_WAITING`] writes wait already); `then` gets its result once
    /// that transaction is committed. Writes are run in the order they were queued,
    /// whichever way they came.
    pub async fn write_then<T, E, W>(&self, work: W, then: impl FnOnce(Result<T, E>) + Send + 'static) -> Result<(), E>
    where
        T: Send + 'static,
        E: From<redb::Error> + From<WriterStopped> + Send + 'static,
        W: FnMut(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        self.submit(Durability::Immediate, work, then).await
    }

    /// Like [`GroupCommit::write_then`], for a write a crash may lose: alone, or
    /// with only others like it, its transaction is committed without an fsync
    /// (the next durable commit makes it durable too).
    pub async fn write_lazily_then<T, E, W>(
        &self,
        work: W,
        then: impl FnOnce(Result<T, E>) + Send + 'static,
    ) -> Result<(), E>
    where
        T: Send + 'static,
        E: From<redb::Error> + From<WriterStopped> + Send + 'static,
        W: FnMut(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        self.submit(Durability::None, work, then).await
    }

    async fn submit<T, E, W>(
        &self,
        durability: Durability,
        work: W,
        answer: impl FnOnce(Result<T, E>) + Send + 'static,
    ) -> Result<(), E>
    where
        T: Send + 'static,
        E: From<redb::Error> + From<WriterStopped> + Send + 'static,
        W: FnMut(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        let lazy = matches!(durability, Durability::None);
        let job = Write { work, result: None, panicked: false, lazy, answer: Box::new(answer) };
        let jobs = self.inner.jobs.as_ref().ok_or_else(|| E::from(WriterStopped))?;
        self.inner.counts.waiting.fetch_add(1, Ordering::Relaxed);
        let sent = jobs.send(Box::new(job)).await;
        if sent.is_err() {
            self.inner.counts.waiting.fetch_sub(1, Ordering::Relaxed);
        }
        sent.map_err(|_| E::from(WriterStopped))
    }
}

/// A write waiting for its transaction, type-erased so one thread runs them all.
trait Job: Send {
    /// Whether a crash may lose it (its transaction need not be fsync'd).
    fn lazy(&self) -> bool;
    /// Runs the write in `txn`, keeping its result; false if it failed.
    fn run(&mut self, txn: &WriteTransaction) -> bool;
    /// Answers the kept result, or `failed` (the commit's error) instead of a success.
    fn answer(self: Box<Self>, failed: Option<redb::Error>);
}

struct Write<T, E, W> {
    work: W,
    result: Option<Result<T, E>>,
    panicked: bool,
    lazy: bool,
    answer: Box<dyn FnOnce(Result<T, E>) + Send>,
}

impl<T, E, W> Job for Write<T, E, W>
where
    T: Send,
    E: From<redb::Error> + Send,
    W: FnMut(&WriteTransaction) -> Result<T, E> + Send,
{
    fn lazy(&self) -> bool {
        self.lazy
    }

    fn run(&mut self, txn: &WriteTransaction) -> bool {
        if self.panicked {
            return false;
        }
        // A panicking write is a bug; it must not take the writer, and every
        // write after it, down with it.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.work)(txn))) {
            Ok(result) => {
                let ok = result.is_ok();
                self.result = Some(result);
                ok
            }
            Err(_) => {
                self.panicked = true;
                self.result = None;
                false
            }
        }
    }

    fn answer(self: Box<Self>, failed: Option<redb::Error>) {
        let result = match (self.result, failed) {
            (Some(Err(error)), _) => Err(error),
            (_, Some(error)) => Err(E::from(error)),
            (Some(Ok(value)), None) => Ok(value),
            // It panicked: dropping the answer tells the caller `WriterStopped`.
            (None, None) => return,
        };
        (self.answer)(result);
    }
}

fn write_batches(db: &Database, queue: &mut mpsc::Receiver<Box<dyn Job>>, counts: &Counts) {
    let commits = &counts.commits;
    while let Some(first) = queue.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        counts.waiting.fetch_sub(batch.len(), Ordering::Relaxed);
        if batch.len() == 1 {
            write_alone(db, batch.pop().expect("one job"), commits);
            continue;
        }
        match begin(db, batch.iter().all(|job| job.lazy())) {
            Ok(txn) => {
                if batch.iter_mut().all(|job| job.run(&txn)) {
                    let failed = txn.commit().err().map(redb::Error::from);
                    commits.fetch_add(u64::from(failed.is_none()), Ordering::Relaxed);
                    for job in batch {
                        job.answer(failed.as_ref().map(copy_error));
                    }
                } else {
                    // Dropped uncommitted: nothing of the batch is written. Each
                    // write runs again alone, so the failure stays its own.
                    drop(txn);
                    for job in batch {
                        write_alone(db, job, commits);
                    }
                }
            }
            Err(error) => {
                for job in batch {
                    job.answer(Some(copy_error(&error)));
                }
            }
        }
    }
}

/// One write in a transaction of its own, committed only if it succeeded.
fn write_alone(db: &Database, mut job: Box<dyn Job>, commits: &AtomicU64) {
    let failed = match begin(db, job.lazy()) {
        Ok(txn) => match job.run(&txn) {
            true => {
                let failed = txn.commit().err().map(redb::Error::from);
                commits.fetch_add(u64::from(failed.is_none()), Ordering::Relaxed);
                failed
            }
            false => None,
        },
        Err(error) => Some(error),
    };
    job.answer(failed);
}

/// A write transaction, fsync'd on commit unless `lazy`.
fn begin(db: &Database, lazy: bool) -> Result<WriteTransaction, redb::Error> {
    let mut txn = db.begin_write()?;
    if lazy {
        txn.set_durability(Durability::None)?;
    }
    Ok(txn)
}

/// redb's errors are not `Clone`; every write of a failed batch gets its message.
fn copy_error(error: &redb::Error) -> redb::Error {
    redb::Error::Io(std::io::Error::other(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{ReadableDatabase, ReadableTable, TableDefinition};

    const TABLE: TableDefinition<&str, u64> = TableDefinition::new("t");

    #[derive(Debug, PartialEq)]
    enum TestError {
        Storage(String),
        Refused(String),
    }

    impl From<redb::Error> for TestError {
        fn from(error: redb::Error) -> Self {
            Self::Storage(error.to_string())
        }
    }

    impl From<WriterStopped> for TestError {
        fn from(error: WriterStopped) -> Self {
            Self::Storage(error.to_string())
        }
    }

    fn database(dir: &tempfile::TempDir) -> Arc<Database> {
        Arc::new(
            crate::open(&dir.path().join("db.redb"), crate::Format { kind: "test", version: 1 }, |txn, _| {
                txn.open_table(TABLE).map(drop).map_err(Into::into)
            })
            .unwrap(),
        )
    }

    fn read(db: &Database, key: &str) -> Option<u64> {
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(TABLE).unwrap();
        table.get(key).unwrap().map(|value| value.value())
    }

    /// Adds `by` to `key`, refusing to go past `limit`.
    fn add(key: &'static str, by: u64, limit: u64) -> impl FnMut(&WriteTransaction) -> Result<u64, TestError> + Send {
        move |txn| {
            let mut table = txn.open_table(TABLE).map_err(redb::Error::from)?;
            let now = table.get(key).map_err(redb::Error::from)?.map_or(0, |v| v.value()) + by;
            if now > limit {
                return Err(TestError::Refused(format!("{key} would be {now}")));
            }
            table.insert(key, now).map_err(redb::Error::from)?;
            Ok(now)
        }
    }

    /// Holds the writer inside a write (queued alone, before any other) until the
    /// answered sender sends; the receiver gets that write's result.
    async fn hold_writer(
        group: &GroupCommit,
    ) -> (std::sync::mpsc::SyncSender<()>, tokio::sync::oneshot::Receiver<Result<u64, TestError>>) {
        let (release, held) = std::sync::mpsc::sync_channel::<()>(0);
        let held = std::sync::Mutex::new(held);
        let (done, answered) = tokio::sync::oneshot::channel();
        let hold = move |_txn: &WriteTransaction| {
            held.lock().unwrap().recv().ok();
            Ok::<_, TestError>(0)
        };
        group.write_then(hold, move |result| drop(done.send(result))).await.unwrap();
        while group.waiting() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        (release, answered)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn writes_waiting_together_share_one_transaction_and_each_sees_the_ones_before() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(&dir);
        let group = GroupCommit::start(Arc::clone(&db), "test").unwrap();
        // The writer is held until fifty more are waiting.
        let (release, first) = hold_writer(&group).await;
        let writes: Vec<_> = (0..50)
            .map(|_| {
                let group = group.clone();
                tokio::spawn(async move { group.write(add("counter", 1, u64::MAX)).await })
            })
            .collect();
        while group.waiting() < 50 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(0));
        let mut answers = Vec::new();
        for write in writes {
            answers.push(write.await.unwrap().unwrap());
        }
        answers.sort_unstable();
        assert_eq!(answers, (1..=50).collect::<Vec<_>>(), "each write saw every one before it");
        assert_eq!(read(&db, "counter"), Some(50));
        assert_eq!(group.commits(), 2, "the held write alone, then the fifty together");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn beyond_the_waiting_bound_a_write_waits_for_room() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(&dir);
        let group = GroupCommit::start(Arc::clone(&db), "test").unwrap();
        let (release, _held) = hold_writer(&group).await;
        // The writer is held: MAX_WAITING writes are queued at once...
        for _ in 0..MAX_WAITING {
            group.write_then(add("counter", 1, u64::MAX), drop).await.unwrap();
        }
        // ...and one more is not, until the writer takes some. (Polled once, outside
        // tokio's budget, which could otherwise make it wait for another reason.)
        let mut one_more = std::pin::pin!(group.write_then(add("counter", 1, u64::MAX), drop));
        let at_once =
            tokio::time::timeout(std::time::Duration::ZERO, tokio::task::unconstrained(one_more.as_mut())).await;
        assert!(at_once.is_err(), "queued beyond the bound");
        release.send(()).unwrap();
        one_more.await.unwrap();
        assert_eq!(group.write(add("counter", 0, u64::MAX)).await, Ok(MAX_WAITING as u64 + 1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_refused_write_changes_nothing_and_fails_no_other_write() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(&dir);
        let group = GroupCommit::start(Arc::clone(&db), "test").unwrap();
        // 30 concurrent +1s on a counter capped at 10: exactly 10 succeed, 20 are
        // refused, and the refused ones wrote nothing, whichever batches they shared.
        let writes: Vec<_> = (0..30)
            .map(|_| {
                let group = group.clone();
                tokio::spawn(async move { group.write(add("capped", 1, 10)).await })
            })
            .collect();
        let mut ok = 0;
        let mut refused = 0;
        for write in writes {
            match write.await.unwrap() {
                Ok(_) => ok += 1,
                Err(TestError::Refused(_)) => refused += 1,
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((ok, refused), (10, 20));
        assert_eq!(read(&db, "capped"), Some(10));
    }

    #[tokio::test]
    async fn once_the_last_handle_is_gone_the_database_opens_again() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(&dir);
        let group = GroupCommit::start(db, "test").unwrap();
        assert_eq!(group.write(add("k", 1, 10)).await, Ok(1));
        drop(group.clone());
        drop(group);
        assert_eq!(read(&database(&dir), "k"), Some(1));
    }

    #[tokio::test]
    async fn a_write_is_answered_after_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(&dir);
        let group = GroupCommit::start(Arc::clone(&db), "test").unwrap();
        assert_eq!(group.write(add("k", 4, 10)).await, Ok(4));
        assert_eq!(read(&db, "k"), Some(4), "visible (committed) once answered");
        assert_eq!(group.write(add("k", 7, 10)).await, Err(TestError::Refused("k would be 11".into())));
        assert_eq!(read(&db, "k"), Some(4));
    }
}
