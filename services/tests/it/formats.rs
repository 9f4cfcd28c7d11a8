//! Files written by an earlier release read in this one.
//!
//! `tests/fixtures/formats/<version>/` holds the four kinds of file the shop keeps
//! (a books_db replica's and an executor replica's Raft file, each with a snapshot
//! and entries after it; the queue's file; payment's ledger), as
//! [`write_fixtures`] wrote them with the release of that format, from the same
//! story every time. [`every_earlier_format_reads`] opens a copy of each with
//! today's code and finds the story in it. A release that changes a format adds its
//! folder (`cargo test -p services --test it formats::write_fixtures -- --ignored`)
//! and keeps the older ones.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use consensus::{BasicNode, Config, Node, StateMachine};
use domain::{OrderLine, Quantity};
use proto::v1 as pb;
use services::books_db::state::{BooksState, Command as BooksCommand};
use services::order_executor::replica::execution_from;
use services::order_executor::state::{Command as ExecutorCommand, ExecutorState};
use services::order_queue::store::{Acked, Location, Withdrawn};
use services::order_queue::QueueStore;
use services::payment::ledger::{Authorization, Hold, PaymentState};
use services::payment::Ledger;

/// The folder of every format's fixtures.
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/formats")
}

/// The folder name of the formats this release writes: the queue's file is version
/// 3 (it indexes leases by expiry, and acknowledged and withdrawn ids by time),
/// payment's ledger version 2 (it keeps when each payment became final), the Raft
/// files' stamp (`storage::Format`) version 1, and so is a snapshot's frame. `v2`
/// holds the files of the release before, `v1` those of the release that brought
/// stamps, `v0` those of the release before it.
const WRITES: &str = "v3";

/// The kind and version stamped in the file at `path`, once its store closed it.
fn stamp(path: &Path) -> Option<(String, u64)> {
    let db = storage::redb::Database::create(path).expect("the file opens");
    storage::format_of(&db).expect("the stamp reads")
}

/// Every command commits before the next, and a snapshot is taken after three
/// entries, so the file holds a snapshot and entries after it.
fn raft_config(name: &str) -> Config {
    Config {
        cluster_name: name.to_owned(),
        snapshot_every_entries: Some(3),
        entries_kept_after_snapshot: 0,
        ..Config::default()
    }
}

/// A one-replica group of `M` in `dir`, leading.
async fn lone_replica<M: StateMachine>(dir: &Path, name: &str) -> Node<M> {
    let node = Node::<M>::start(1, dir, &raft_config(name)).await.expect("the replica starts");
    node.initialize(BTreeMap::from([(1, BasicNode::new("127.0.0.1:1"))])).await.expect("a group of one");
    for _ in 0..500 {
        if node.is_leader() {
            return node;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("a group of one elects itself");
}

fn line(book_id: &str, quantity: u32) -> OrderLine {
    OrderLine { book_id: book_id.into(), quantity: Quantity::new(quantity.into(), "quantity").expect("a quantity") }
}

fn queued(order_id: &str) -> pb::QueuedOrder {
    pb::QueuedOrder {
        order_id: order_id.to_owned(),
        lines: vec![pb::OrderLine { book_id: "1".to_owned(), quantity: 2 }],
        total_cents: 2_598,
        name: "Ada Lovelace".to_owned(),
        email: "ada@example.com".to_owned(),
        accepted_at_unix_ms: 1_764_806_400_000,
        ..pb::QueuedOrder::default()
    }
}

fn hold(order_id: &str) -> Hold {
    Hold {
        order_id: order_id.to_owned(),
        amount_cents: 2_598,
        card_network: "visa".to_owned(),
        card_last4: "1111".to_owned(),
    }
}

/// books_db: a catalog of two books; order a (2 of book 1) committed, b (1 of
/// book 2) aborted, c (1 of book 1) prepared and undecided.
async fn write_books(dir: &Path) {
    let node = lone_replica::<BooksState>(dir, "books_db").await;
    let catalog = vec![("1".to_owned(), "Dune".to_owned(), 5), ("2".to_owned(), "Emma".to_owned(), 3)];
    let commands = [
        BooksCommand::LoadCatalog(catalog),
        BooksCommand::Prepare { order_id: "a".to_owned(), lines: vec![line("1", 2)] },
        BooksCommand::Commit { order_id: "a".to_owned() },
        BooksCommand::Prepare { order_id: "b".to_owned(), lines: vec![line("2", 1)] },
        BooksCommand::Abort { order_id: "b".to_owned() },
        BooksCommand::Prepare { order_id: "c".to_owned(), lines: vec![line("1", 1)] },
    ];
    for command in commands {
        node.write(command).await.expect("written");
    }
    node.shutdown().await.expect("stopped");
}

/// The executors: order a committed and completed, b decided aborted ("card
/// declined") and not completed, c started.
async fn write_executor(dir: &Path) {
    let node = lone_replica::<ExecutorState>(dir, "order_executor").await;
    let commands = [
        ExecutorCommand::Start(execution_from(queued("a"), "lease-a".to_owned())),
        ExecutorCommand::Decide { order_id: "a".to_owned(), abort_reason: None, votes: Vec::new(), by: None },
        ExecutorCommand::Complete { order_id: "a".to_owned(), at_ms: Some(1_764_806_401_000) },
        ExecutorCommand::Start(execution_from(queued("b"), "lease-b".to_owned())),
        ExecutorCommand::Decide {
            order_id: "b".to_owned(),
            abort_reason: Some("card declined".to_owned()),
            votes: Vec::new(),
            by: None,
        },
        ExecutorCommand::Start(execution_from(queued("c"), "lease-c".to_owned())),
    ];
    for command in commands {
        node.write(command).await.expect("written");
    }
    node.shutdown().await.expect("stopped");
}

/// The queue: a delivered and acknowledged, b waiting, c withdrawn before it
/// came, d leased.
async fn write_queue(path: &Path) {
    let queue = QueueStore::open(path).expect("the queue opens");
    queue.enqueue(queued("a"), 1).await.expect("enqueued");
    let delivery = queue.dequeue(1_000, 30_000, "executor-1/term_1", 1).await.expect("dequeued").expect("a");
    assert_eq!(queue.ack("a", &delivery.lease_id, 2_000).await.expect("acked"), Acked::Removed);
    assert_eq!(queue.withdraw("c", 2_000).await.expect("withdrawn"), Withdrawn::Withdrawn);
    queue.enqueue(queued("d"), 2).await.expect("enqueued");
    queue.dequeue(3_000, 4_102_444_800_000, "executor-1/term_1", 1).await.expect("dequeued").expect("d");
    queue.enqueue(queued("b"), 0).await.expect("enqueued");
}

/// Payment: a captured, b voided, c authorized, d declined.
async fn write_ledger(path: &Path) {
    let ledger = Ledger::open(path).expect("the ledger opens");
    for order_id in ["a", "b", "c"] {
        ledger.prepare(hold(order_id), || Authorization::Approved).await.expect("prepared");
    }
    let declined = || Authorization::Declined { code: "card_declined".to_owned(), reason: "declined".to_owned() };
    ledger.prepare(hold("d"), declined).await.expect("prepared");
    ledger.commit("a").await.expect("committed");
    ledger.abort("b").await.expect("aborted");
}

/// Writes the fixtures of the format this release writes, into
/// `tests/fixtures/formats/<WRITES>/`.
#[tokio::test]
#[ignore = "writes this release's fixtures: run by hand when a format changes"]
async fn write_fixtures() {
    let folder = fixtures().join(WRITES);
    let _ = std::fs::remove_dir_all(&folder);
    write_books(&folder.join("books_db")).await;
    write_executor(&folder.join("order_executor")).await;
    write_queue(&folder.join("order_queue/queue.redb")).await;
    write_ledger(&folder.join("payment/payments.redb")).await;
}

/// A copy of `from` in a fresh temporary folder (opening a file may write to it).
fn copy(from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    copy_into(from, dir.path());
    dir
}

fn copy_into(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("folder");
    for entry in std::fs::read_dir(from).expect("fixture folder").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_into(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copied");
        }
    }
}

/// The snapshot the replica started from, and the entries after it, were read.
fn assert_snapshot_and_entries<M: StateMachine>(node: &Node<M>) {
    let metrics = node.raft().metrics().borrow().clone();
    let snapshot = metrics.snapshot.expect("a snapshot was read").index;
    let last = metrics.last_log_index.expect("entries were read");
    assert!(last > snapshot, "entries after the snapshot: last {last}, snapshot {snapshot}");
}

async fn read_books(folder: &Path) {
    let dir = copy(&folder.join("books_db"));
    let node = lone_replica::<BooksState>(dir.path(), "books_db").await;
    assert_snapshot_and_entries(&node);
    // A read through the leader waits until everything committed is applied.
    let (dune, emma, a, b, c, open) = node
        .read_linearizable(|books| {
            (
                books.stock("1").cloned(),
                books.stock("2").cloned(),
                books.decision("a"),
                books.decision("b"),
                books.decision("c"),
                books.open_reservations(),
            )
        })
        .await
        .expect("read");
    let dune = dune.expect("book 1");
    assert_eq!((dune.title.as_str(), dune.available, dune.reserved, dune.sold), ("Dune", 2, 1, 2));
    let emma = emma.expect("book 2");
    assert_eq!((emma.available, emma.reserved, emma.sold), (3, 0, 0));
    assert_eq!(format!("{a:?} {b:?} {c:?} {open}"), "Some(Committed) Some(Aborted) None 1");
    node.shutdown().await.expect("stopped");
    assert_eq!(stamp(&dir.path().join(consensus::DATA_FILE)), Some(("raft".to_owned(), 1)));
}

async fn read_executor(folder: &Path) {
    let dir = copy(&folder.join("order_executor"));
    let node = lone_replica::<ExecutorState>(dir.path(), "order_executor").await;
    assert_snapshot_and_entries(&node);
    let seen = node
        .read_linearizable(|state| {
            ["a", "b", "c"]
                .map(|id| state.get(id).map(|record| (format!("{:?}", record.phase), record.execution.clone())))
        })
        .await
        .expect("read");
    let phases = seen.iter().map(|record| record.as_ref().map(|(phase, _)| phase.as_str())).collect::<Vec<_>>();
    assert_eq!(phases, [Some("Committed"), Some("Aborting { reason: \"card declined\" }"), Some("Executing")]);
    let (_, a) = seen[0].as_ref().expect("a");
    assert_eq!((a.total_cents, a.lines.len(), a.lease_id.as_str()), (2_598, 1, "lease-a"));
    node.shutdown().await.expect("stopped");
    assert_eq!(stamp(&dir.path().join(consensus::DATA_FILE)), Some(("raft".to_owned(), 1)));
}

async fn read_queue(folder: &Path) {
    let dir = copy(&folder.join("order_queue"));
    let queue = QueueStore::open(&dir.path().join("queue.redb")).expect("the queue opens");
    let locations = ["a", "b", "c", "d"].map(|id| queue.lookup(id).expect("looked up"));
    assert_eq!(locations, [Location::Done, Location::Ready, Location::Unknown, Location::Leased]);
    let depth = queue.depth().expect("depth");
    assert_eq!((depth.ready_by_rank, depth.leased), ([1, 0, 0], 1));
    // d's lease is found by its expiry, whatever version wrote it (version 2
    // indexes leases so; opening an older file builds the index).
    assert_eq!(queue.next_lease_expiry().expect("read"), Some(4_102_444_803_000));
    // c came after its withdrawal: refused, as before the upgrade.
    let late = queue.enqueue(queued("c"), 1).await.expect("enqueue");
    assert_eq!(format!("{late:?}"), "Withdrawn");
    let delivery = queue.dequeue(5_000, 30_000, "executor-2/term_2", 2).await.expect("dequeued").expect("b");
    assert_eq!(delivery.order, queued("b"), "the order reads back whole");
    assert_eq!(queue.next_lease_expiry().expect("read"), Some(35_000));
    let again = queue.dequeue(36_000, 30_000, "executor-2/term_2", 2).await.expect("dequeued").expect("b again");
    assert_eq!((again.order.order_id.as_str(), again.delivery_count), ("b", 2), "an expired lease ends");
    // a (acknowledged at 2,000) and c (withdrawn at 2,000) are found by time,
    // whatever version wrote them, and forgotten once out of the window.
    assert_eq!(queue.forget(2_000).await.expect("forgotten"), 0);
    assert_eq!(queue.forget(2_001).await.expect("forgotten"), 2);
    assert_eq!(queue.lookup("a").expect("looked up"), Location::Unknown);
    drop(queue);
    assert_eq!(stamp(&dir.path().join("queue.redb")), Some(("order_queue".to_owned(), 3)));
}

async fn read_ledger(folder: &Path) {
    let dir = copy(&folder.join("payment"));
    let ledger = Ledger::open(&dir.path().join("payments.redb")).expect("the ledger opens");
    let states = ["a", "b", "c", "d"].map(|id| ledger.get(id).expect("read").map(|payment| payment.state));
    assert_eq!(
        states,
        [
            Some(PaymentState::Captured),
            Some(PaymentState::Voided),
            Some(PaymentState::Authorized),
            Some(PaymentState::Declined)
        ]
    );
    let a = ledger.get("a").expect("read").expect("a");
    assert_eq!((a.amount_cents, a.card_last4.as_str(), a.captures), (2_598, "1111", 1));
    // Whatever the version, the final payments (a, b, d) are known as finished,
    // and only they are forgotten once out of the window.
    assert_eq!(ledger.forget(u64::MAX).await.expect("forgotten"), 3);
    let states = ["a", "b", "c", "d"].map(|id| ledger.get(id).expect("read").map(|payment| payment.state));
    assert_eq!(states, [None, None, Some(PaymentState::Authorized), None]);
    drop(ledger);
    assert_eq!(stamp(&dir.path().join("payments.redb")), Some(("payment".to_owned(), 2)));
}

#[tokio::test]
async fn every_earlier_format_reads() {
    let mut formats: Vec<PathBuf> =
        std::fs::read_dir(fixtures()).expect("the fixtures").flatten().map(|entry| entry.path()).collect();
    formats.sort();
    assert!(formats.iter().any(|folder| folder.ends_with(WRITES)), "this release's own format has fixtures");
    for folder in &formats {
        println!("reading {}", folder.display());
        read_books(folder).await;
        read_executor(folder).await;
        read_queue(folder).await;
        read_ledger(folder).await;
    }
}
