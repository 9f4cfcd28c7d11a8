//! The queue's durable state, in a redb database: every write is committed
//! (fsync'd) before it answers, so an order accepted before a crash or restart is
//! still there after it. Writes arriving together share one transaction (group
//! commit, `storage::GroupCommit`), each seeing the ones before it.
//!
//! Tables:
//! - `orders`: order id → the stored order (its priority rank, its sequence number
//!   and how often it was delivered);
//! - `ready`: (rank, sequence) → order id, the orders waiting, in delivery order;
//! - `leases`: order id → (expiry, lease id), the orders delivered and not acked;
//! - `expiries`: (expiry, order id), the same leases by when they run out, so a
//!   dequeue reads only the expired ones (since format version 2);
//! - `holders`: order id → the consumer a leased order was delivered to;
//! - `done`: order id → ack time, so that enqueueing an order twice stays a no-op;
//! - `withdrawn`: order id → when the web server took it back (its enqueue got no
//!   answer), so that the enqueue, should it arrive late, is refused;
//! - `finished`: (ack or withdrawal time, order id), the ids of `done` and
//!   `withdrawn` by time, so forgetting those out of the retention window reads
//!   only them (since format version 3);
//! - `meta`: the next sequence number, and the fence: the newest executor leader's
//!   term named by a take-over.
//!
//! An expired lease puts the order back under its original (rank, sequence), so a
//! redelivered order keeps its place in line. Time is passed in.

use std::path::Path;
use std::sync::Arc;

use prost::Message;
use proto::v1 as pb;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};
use storage::GroupCommit;

const ORDERS: TableDefinition<&str, &[u8]> = TableDefinition::new("orders");
const READY: TableDefinition<(u8, u64), &str> = TableDefinition::new("ready");
const LEASES: TableDefinition<&str, (u64, &str)> = TableDefinition::new("leases");
/// The leases by when they expire: (expires at ms, order id). Every lease is here
/// exactly when it is in `LEASES`, so a dequeue finds the expired ones without
/// reading the others.
const EXPIRIES: TableDefinition<(u64, &str), ()> = TableDefinition::new("expiries");
const HOLDERS: TableDefinition<&str, &str> = TableDefinition::new("holders");
const DONE: TableDefinition<&str, u64> = TableDefinition::new("done");
const WITHDRAWN: TableDefinition<&str, u64> = TableDefinition::new("withdrawn");
/// `DONE` and `WITHDRAWN` by time: (acknowledged or withdrawn at ms, order id).
/// Every id of those two tables is here exactly once, so forgetting reads only
/// what fell out of the window.
const FINISHED: TableDefinition<(u64, &str), ()> = TableDefinition::new("finished");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The layout of the queue's file: the tables above, orders as `StoredOrder`
/// protobuf. Version 2 added `EXPIRIES`, version 3 `FINISHED`; opening an older
/// file fills them from `LEASES`, and from `DONE` and `WITHDRAWN`.
const FORMAT: storage::Format = storage::Format { kind: "order_queue", version: 3 };
const NEXT_SEQUENCE: &str = "next_sequence";
const LEADER_TERM: &str = "leader_term";

#[derive(Clone, PartialEq, Message)]
struct StoredOrder {
    #[prost(message, optional, tag = "1")]
    order: Option<pb::QueuedOrder>,
    #[prost(uint32, tag = "2")]
    rank: u32,
    #[prost(uint64, tag = "3")]
    sequence: u64,
    #[prost(uint32, tag = "4")]
    deliveries: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("queue storage failed: {0}")]
    Storage(String),
    #[error("stored order {0} is unreadable: {1}")]
    Corrupt(String, prost::DecodeError),
    /// A take-over named a newer executor leader than the one asking.
    #[error("the executor leader of term {term} was superseded: a leader of term {current} took over")]
    Superseded { term: u64, current: u64 },
}

storage::redb_errors_into!(StoreError, |error| StoreError::Storage(error.to_string()));

#[derive(Debug, PartialEq, Eq)]
pub enum Enqueued {
    Added,
    /// The queue holds this order id already, or delivered and saw it acknowledged.
    Duplicate,
    /// The order id was withdrawn first: not added.
    Withdrawn,
}

/// What withdrawing an order did.
#[derive(Debug, PartialEq, Eq)]
pub enum Withdrawn {
    /// It is not in the queue (removed, or never came) and never will be.
    Withdrawn,
    /// The executors have it (leased, or done): it goes through.
    Taken,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub order: pb::QueuedOrder,
    pub lease_id: String,
    pub lease_expires_at_ms: u64,
    pub delivery_count: u32,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Acked {
    Removed,
    /// Acknowledged before: nothing to do.
    AlreadyDone,
    /// The lease expired and the order was delivered again (or is waiting to be):
    /// only the current lease may acknowledge it.
    LeaseLost,
    UnknownOrder,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Released {
    /// The order is ready for delivery again.
    Ready,
    /// Acknowledged before: nothing to give back.
    AlreadyDone,
    /// The lease is not the order's current one.
    LeaseLost,
    UnknownOrder,
}

/// Where an order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Ready,
    Leased,
    Done,
    Unknown,
}

impl From<Location> for pb::QueueState {
    fn from(location: Location) -> Self {
        match location {
            Location::Ready => Self::Queued,
            Location::Leased => Self::Leased,
            Location::Done => Self::Done,
            Location::Unknown => Self::NotFound,
        }
    }
}

/// What `look_up` found.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub location: Location,
    /// While the queue holds the order (ready or leased).
    pub order: Option<pb::QueuedOrder>,
    /// While it is ready: 1 when it is next.
    pub position: Option<u64>,
}

/// Orders ready for delivery by rank (0 = Premium), and leased ones.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Depth {
    pub ready_by_rank: [u64; 3],
    pub leased: u64,
}

pub struct QueueStore {
    db: Arc<Database>,
    /// Every write goes through it: writes that arrive together share one
    /// transaction and one fsync, each answered once durable.
    writer: GroupCommit,
}

impl QueueStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = storage::open(path, FORMAT, |txn, held| {
            txn.open_table(ORDERS)?;
            txn.open_table(READY)?;
            let leases = txn.open_table(LEASES)?;
            let mut expiries = txn.open_table(EXPIRIES)?;
            if held < 2 {
                for row in leases.iter()? {
                    let (id, lease) = row?;
                    expiries.insert((lease.value().0, id.value()), ())?;
                }
            }
            txn.open_table(HOLDERS)?;
            let done = txn.open_table(DONE)?;
            let withdrawn = txn.open_table(WITHDRAWN)?;
            let mut finished = txn.open_table(FINISHED)?;
            if held < 3 {
                for row in done.iter()?.chain(withdrawn.iter()?) {
                    let (id, at_ms) = row?;
                    finished.insert((at_ms.value(), id.value()), ())?;
                }
            }
            txn.open_table(META)?;
            Ok(())
        })
        .map_err(|error| StoreError::Storage(format!("{}: {error}", path.display())))?;
        let db = Arc::new(db);
        let writer = GroupCommit::start(Arc::clone(&db), "order_queue")
            .map_err(|error| StoreError::Storage(format!("starting the writer: {error}")))?;
        Ok(Self { db, writer })
    }

    /// Adds `order` at priority `rank` (0 first), unless its id is known already.
    pub async fn enqueue(&self, order: pb::QueuedOrder, rank: u8) -> Result<Enqueued, StoreError> {
        self.writer.write(move |txn| enqueue_in(txn, &order, rank)).await
    }

    /// Leases the first ready order to `consumer` until `now_ms + lease_ms`, after
    /// putting back every order whose lease expired by `now_ms`. A consumer naming
    /// a leader term (not 0) older than the fence is refused.
    pub async fn dequeue(
        &self,
        now_ms: u64,
        lease_ms: u64,
        consumer: &str,
        leader_term: u64,
    ) -> Result<Option<Delivery>, StoreError> {
        Ok(self.dequeue_batch(now_ms, lease_ms, consumer, leader_term, 1).await?.pop())
    }

    /// Leases up to `max` ready orders from the head of the queue, as `dequeue`
    /// leases one, in one transaction. In delivery order; empty when none is ready.
    pub async fn dequeue_batch(
        &self,
        now_ms: u64,
        lease_ms: u64,
        consumer: &str,
        leader_term: u64,
        max: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let consumer = consumer.to_owned();
        self.writer.write(move |txn| dequeue_in(txn, now_ms, lease_ms, &consumer, leader_term, max)).await
    }

    /// Removes a delivered order for good, if `lease_id` is its current lease.
    pub async fn ack(&self, order_id: &str, lease_id: &str, now_ms: u64) -> Result<Acked, StoreError> {
        let (order_id, lease_id) = (order_id.to_owned(), lease_id.to_owned());
        self.writer.write(move |txn| ack_in(txn, &order_id, &lease_id, now_ms)).await
    }

    /// Takes back an order whose enqueue may or may not have arrived: removed if
    /// it waits, refused for good if it comes later; `Taken` if the executors have
    /// it already.
    pub async fn withdraw(&self, order_id: &str, now_ms: u64) -> Result<Withdrawn, StoreError> {
        let order_id = order_id.to_owned();
        self.writer.write(move |txn| withdraw_in(txn, &order_id, now_ms)).await
    }

    /// Ends the lease `lease_id` on `order_id` early: the order is ready again.
    pub async fn release(&self, order_id: &str, lease_id: &str) -> Result<Released, StoreError> {
        let (order_id, lease_id) = (order_id.to_owned(), lease_id.to_owned());
        self.writer.write(move |txn| release_in(txn, &order_id, &lease_id)).await
    }

    /// Ends every lease not held by `consumer` (a lease from before holders were
    /// recorded counts as another's) and fences out older leader terms; answers
    /// how many leases ended. Refused if a newer term took over already.
    pub async fn take_over(&self, consumer: &str, leader_term: u64) -> Result<u32, StoreError> {
        let consumer = consumer.to_owned();
        self.writer.write(move |txn| take_over_in(txn, &consumer, leader_term)).await
    }

    /// Forgets the acknowledged and withdrawn order ids recorded before
    /// `before_ms`, so the file stays bounded; answers how many. A duplicate enqueue
    /// of a forgotten id would be queued again, so the retention must outlast any
    /// retry (the web server's end within seconds of the checkout).
    pub async fn forget(&self, before_ms: u64) -> Result<u64, StoreError> {
        self.writer.write(move |txn| forget_in(txn, before_ms)).await
    }

    pub fn depth(&self) -> Result<Depth, StoreError> {
        let txn = self.db.begin_read()?;
        let ready = txn.open_table(READY)?;
        let mut depth = Depth { leased: txn.open_table(LEASES)?.len()?, ..Depth::default() };
        for (rank, count) in depth.ready_by_rank.iter_mut().enumerate() {
            let rank = rank as u8;
            *count = ready.range((rank, 0)..=(rank, u64::MAX))?.count() as u64;
        }
        Ok(depth)
    }

    pub fn lookup(&self, order_id: &str) -> Result<Location, StoreError> {
        Ok(self.look_up(order_id)?.location)
    }

    /// Where an order is and, while the queue holds it, the order and (while it
    /// waits) its place: 1 when it is next to be delivered.
    pub fn look_up(&self, order_id: &str) -> Result<Found, StoreError> {
        let txn = self.db.begin_read()?;
        if txn.open_table(DONE)?.get(order_id)?.is_some() {
            return Ok(Found { location: Location::Done, order: None, position: None });
        }
        let Some(bytes) = txn.open_table(ORDERS)?.get(order_id)? else {
            return Ok(Found { location: Location::Unknown, order: None, position: None });
        };
        let stored = decode(order_id, bytes.value())?;
        if txn.open_table(LEASES)?.get(order_id)?.is_some() {
            return Ok(Found { location: Location::Leased, order: stored.order, position: None });
        }
        let rank = u8::try_from(stored.rank).unwrap_or(u8::MAX);
        let ahead = txn.open_table(READY)?.range(..(rank, stored.sequence))?.count() as u64;
        Ok(Found { location: Location::Ready, order: stored.order, position: Some(ahead + 1) })
    }

    /// The orders leased to `consumer` whose leases have not run out at `now_ms`,
    /// with those leases, in delivery order: what it holds, for it to be told again
    /// after an answer was lost.
    pub fn held(&self, consumer: &str, now_ms: u64) -> Result<Vec<Delivery>, StoreError> {
        let txn = self.db.begin_read()?;
        let (holders, leases, orders) = (txn.open_table(HOLDERS)?, txn.open_table(LEASES)?, txn.open_table(ORDERS)?);
        let mut held = Vec::new();
        for row in holders.iter()? {
            let (id, holder) = row?;
            if holder.value() != consumer {
                continue;
            }
            let id = id.value();
            let (Some(lease), Some(bytes)) = (leases.get(id)?, orders.get(id)?) else { continue };
            let (lease_expires_at_ms, lease_id) = lease.value();
            if lease_expires_at_ms <= now_ms {
                continue;
            }
            let stored = decode(id, bytes.value())?;
            held.push((
                stored.sequence,
                Delivery {
                    order: stored.order.unwrap_or_default(),
                    lease_id: lease_id.to_owned(),
                    lease_expires_at_ms,
                    delivery_count: stored.deliveries,
                },
            ));
        }
        held.sort_by_key(|(sequence, _)| *sequence);
        Ok(held.into_iter().map(|(_, delivery)| delivery).collect())
    }

    /// When the earliest lease expires, if any order is leased.
    pub fn next_lease_expiry(&self) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin_read()?;
        let expiries = txn.open_table(EXPIRIES)?;
        let first = expiries.first()?.map(|(key, _)| key.value().0);
        Ok(first)
    }
}

/// Writes of the queue, each run inside the writer's transaction (which commits
/// it). Each decides from what the transaction shows, so it may run again.
fn forget_in(txn: &WriteTransaction, before_ms: u64) -> Result<u64, StoreError> {
    let mut finished = txn.open_table(FINISHED)?;
    let (mut done, mut withdrawn) = (txn.open_table(DONE)?, txn.open_table(WITHDRAWN)?);
    let mut forgotten = 0;
    for row in finished.extract_from_if((0, "")..(before_ms, ""), |_, _| true)? {
        let (key, _) = row?;
        let id = key.value().1;
        done.remove(id)?;
        withdrawn.remove(id)?;
        forgotten += 1;
    }
    Ok(forgotten)
}

fn enqueue_in(txn: &WriteTransaction, order: &pb::QueuedOrder, rank: u8) -> Result<Enqueued, StoreError> {
    let mut orders = txn.open_table(ORDERS)?;
    let done = txn.open_table(DONE)?;
    let id = order.order_id.as_str();
    if orders.get(id)?.is_some() || done.get(id)?.is_some() {
        return Ok(Enqueued::Duplicate);
    }
    if txn.open_table(WITHDRAWN)?.get(id)?.is_some() {
        return Ok(Enqueued::Withdrawn);
    }
    let mut meta = txn.open_table(META)?;
    let sequence = meta.get(NEXT_SEQUENCE)?.map_or(0, |v| v.value());
    meta.insert(NEXT_SEQUENCE, sequence + 1)?;
    let stored = StoredOrder { order: Some(order.clone()), rank: u32::from(rank), sequence, deliveries: 0 };
    orders.insert(id, stored.encode_to_vec().as_slice())?;
    txn.open_table(READY)?.insert((rank, sequence), id)?;
    Ok(Enqueued::Added)
}

fn withdraw_in(txn: &WriteTransaction, order_id: &str, now_ms: u64) -> Result<Withdrawn, StoreError> {
    if txn.open_table(DONE)?.get(order_id)?.is_some() || txn.open_table(LEASES)?.get(order_id)?.is_some() {
        return Ok(Withdrawn::Taken);
    }
    let mut orders = txn.open_table(ORDERS)?;
    let stored = match orders.remove(order_id)? {
        Some(bytes) => Some(decode(order_id, bytes.value())?),
        None => None,
    };
    if let Some(stored) = stored {
        let rank = u8::try_from(stored.rank).unwrap_or(u8::MAX);
        txn.open_table(READY)?.remove((rank, stored.sequence))?;
    }
    // Withdrawn again (a retry): the first time stands, as the retention's start.
    let mut withdrawn = txn.open_table(WITHDRAWN)?;
    if withdrawn.get(order_id)?.is_none() {
        withdrawn.insert(order_id, now_ms)?;
        txn.open_table(FINISHED)?.insert((now_ms, order_id), ())?;
    }
    Ok(Withdrawn::Withdrawn)
}

fn dequeue_in(
    txn: &WriteTransaction,
    now_ms: u64,
    lease_ms: u64,
    consumer: &str,
    leader_term: u64,
    max: usize,
) -> Result<Vec<Delivery>, StoreError> {
    if leader_term != 0 {
        check_fence(txn, leader_term)?;
    }
    let expired: Vec<String> = txn
        .open_table(EXPIRIES)?
        .range((0, "")..(now_ms.saturating_add(1), ""))?
        .map(|row| row.map(|(key, _)| key.value().1.to_owned()))
        .collect::<Result<_, _>>()?;
    for id in &expired {
        make_ready(txn, id)?;
    }
    let mut orders = txn.open_table(ORDERS)?;
    let mut ready = txn.open_table(READY)?;
    let mut leases = txn.open_table(LEASES)?;
    let mut expiries = txn.open_table(EXPIRIES)?;
    let mut holders = txn.open_table(HOLDERS)?;
    let lease_expires_at_ms = now_ms.saturating_add(lease_ms);
    let mut deliveries = Vec::new();
    while deliveries.len() < max {
        let Some(id) = ready.pop_first()?.map(|(_, id)| id.value().to_owned()) else { break };
        let mut stored = match orders.get(id.as_str())? {
            Some(bytes) => decode(&id, bytes.value())?,
            None => return Err(StoreError::Storage(format!("ready order {id} has no record"))),
        };
        stored.deliveries += 1;
        orders.insert(id.as_str(), stored.encode_to_vec().as_slice())?;
        let lease_id = uuid::Uuid::new_v4().to_string();
        leases.insert(id.as_str(), (lease_expires_at_ms, lease_id.as_str()))?;
        expiries.insert((lease_expires_at_ms, id.as_str()), ())?;
        holders.insert(id.as_str(), consumer)?;
        deliveries.push(Delivery {
            order: stored.order.unwrap_or_default(),
            lease_id,
            lease_expires_at_ms,
            delivery_count: stored.deliveries,
        });
    }
    Ok(deliveries)
}

fn ack_in(txn: &WriteTransaction, order_id: &str, lease_id: &str, now_ms: u64) -> Result<Acked, StoreError> {
    let mut done = txn.open_table(DONE)?;
    if done.get(order_id)?.is_some() {
        return Ok(Acked::AlreadyDone);
    }
    let mut orders = txn.open_table(ORDERS)?;
    let current = txn.open_table(LEASES)?.get(order_id)?.map(|lease| lease.value().1.to_owned());
    Ok(match current {
        Some(current) if current == lease_id => {
            end_lease(txn, order_id)?;
            orders.remove(order_id)?;
            done.insert(order_id, now_ms)?;
            txn.open_table(FINISHED)?.insert((now_ms, order_id), ())?;
            Acked::Removed
        }
        _ if orders.get(order_id)?.is_some() => Acked::LeaseLost,
        _ => Acked::UnknownOrder,
    })
}

fn release_in(txn: &WriteTransaction, order_id: &str, lease_id: &str) -> Result<Released, StoreError> {
    let current = txn.open_table(LEASES)?.get(order_id)?.map(|lease| lease.value().1.to_owned());
    Ok(match current {
        Some(current) if current == lease_id => {
            make_ready(txn, order_id)?;
            Released::Ready
        }
        _ if txn.open_table(ORDERS)?.get(order_id)?.is_some() => Released::LeaseLost,
        _ if txn.open_table(DONE)?.get(order_id)?.is_some() => Released::AlreadyDone,
        _ => Released::UnknownOrder,
    })
}

fn take_over_in(txn: &WriteTransaction, consumer: &str, leader_term: u64) -> Result<u32, StoreError> {
    check_fence(txn, leader_term)?;
    txn.open_table(META)?.insert(LEADER_TERM, leader_term)?;
    let others: Vec<String> = {
        let holders = txn.open_table(HOLDERS)?;
        let leased: Vec<String> =
            txn.open_table(LEASES)?.iter()?.filter_map(Result::ok).map(|(id, _)| id.value().to_owned()).collect();
        let mut others = Vec::new();
        for id in leased {
            if holders.get(id.as_str())?.is_none_or(|holder| holder.value() != consumer) {
                others.push(id);
            }
        }
        others
    };
    for id in &others {
        make_ready(txn, id)?;
    }
    Ok(others.len() as u32)
}

/// Refuses a leader term older than the newest one that took over.
fn check_fence(txn: &WriteTransaction, leader_term: u64) -> Result<(), StoreError> {
    let current = txn.open_table(META)?.get(LEADER_TERM)?.map_or(0, |term| term.value());
    if leader_term < current {
        return Err(StoreError::Superseded { term: leader_term, current });
    }
    Ok(())
}

/// Ends `id`'s lease, if it has one: its entry in `LEASES`, `EXPIRIES` and
/// `HOLDERS`.
fn end_lease(txn: &WriteTransaction, id: &str) -> Result<(), StoreError> {
    if let Some(lease) = txn.open_table(LEASES)?.remove(id)? {
        txn.open_table(EXPIRIES)?.remove((lease.value().0, id))?;
    }
    txn.open_table(HOLDERS)?.remove(id)?;
    Ok(())
}

/// Ends `id`'s lease and puts it back under its original (rank, sequence).
fn make_ready(txn: &WriteTransaction, id: &str) -> Result<(), StoreError> {
    end_lease(txn, id)?;
    if let Some(bytes) = txn.open_table(ORDERS)?.get(id)? {
        let stored = decode(id, bytes.value())?;
        txn.open_table(READY)?.insert((stored.rank as u8, stored.sequence), id)?;
    }
    Ok(())
}

/// The order a record of the queue's file holds, as the queue reads it (the fuzz
/// target `queue_record` feeds it any bytes).
pub fn read_record(id: &str, bytes: &[u8]) -> Result<pb::QueuedOrder, StoreError> {
    let stored = decode(id, bytes)?;
    stored.order.ok_or_else(|| StoreError::Storage(format!("stored order {id} holds no order")))
}

fn decode(id: &str, bytes: &[u8]) -> Result<StoredOrder, StoreError> {
    StoredOrder::decode(bytes).map_err(|e| StoreError::Corrupt(id.to_owned(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(id: &str) -> pb::QueuedOrder {
        pb::QueuedOrder { order_id: id.into(), ..Default::default() }
    }

    fn store(dir: &tempfile::TempDir) -> QueueStore {
        QueueStore::open(&dir.path().join("queue.redb")).unwrap()
    }

    async fn next_id(store: &QueueStore, now_ms: u64) -> Option<String> {
        store.dequeue(now_ms, 1_000, "test", 0).await.unwrap().map(|d| d.order.order_id)
    }

    #[tokio::test]
    async fn a_consumer_is_told_again_what_it_holds_with_the_same_leases_and_nothing_of_others() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        for id in ["a", "b", "c"] {
            store.enqueue(order(id), 1).await.unwrap();
        }
        let mine = store.dequeue_batch(0, 1_000, "leader/term_2", 0, 2).await.unwrap();
        let theirs = store.dequeue_batch(0, 1_000, "other", 0, 1).await.unwrap();
        assert_eq!(store.held("leader/term_2", 10).unwrap(), mine, "the same orders, leases and counts");
        assert_eq!(store.held("other", 10).unwrap(), theirs);
        assert_eq!(store.ack("a", &mine[0].lease_id, 20).await.unwrap(), Acked::Removed);
        let held = store.held("leader/term_2", 30).unwrap();
        assert_eq!(held.iter().map(|d| d.order.order_id.as_str()).collect::<Vec<_>>(), ["b"]);
        assert!(store.held("leader/term_2", 1_000).unwrap().is_empty(), "an expired lease is not held");
    }

    #[tokio::test]
    async fn forgets_acknowledged_and_withdrawn_ids_older_than_the_window_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        store.enqueue(order("old"), 1).await.unwrap();
        store.enqueue(order("recent"), 1).await.unwrap();
        store.enqueue(order("waiting"), 1).await.unwrap();
        let old = store.dequeue(0, 60_000, "leader", 0).await.unwrap().unwrap();
        let recent = store.dequeue(0, 60_000, "leader", 0).await.unwrap().unwrap();
        assert_eq!(store.ack("old", &old.lease_id, 1_000).await.unwrap(), Acked::Removed);
        assert_eq!(store.ack("recent", &recent.lease_id, 5_000).await.unwrap(), Acked::Removed);
        store.withdraw("withdrawn-early", 1_000).await.unwrap();
        store.withdraw("withdrawn-late", 5_000).await.unwrap();
        // A retried withdrawal keeps the first time.
        store.withdraw("withdrawn-early", 6_000).await.unwrap();
        assert_eq!(finished_indexed(&store), 4);

        assert_eq!(store.forget(5_000).await.unwrap(), 2);
        assert_eq!(finished_indexed(&store), 2, "only what fell out of the window went");
        let locations = ["old", "recent", "waiting"].map(|id| store.lookup(id).unwrap());
        assert_eq!(locations, [Location::Unknown, Location::Done, Location::Ready]);
        assert_eq!(store.enqueue(order("withdrawn-late"), 1).await.unwrap(), Enqueued::Withdrawn);
        assert_eq!(store.enqueue(order("recent"), 1).await.unwrap(), Enqueued::Duplicate);
        // Past the window a duplicate is new again: why the window outlasts retries.
        assert_eq!(store.enqueue(order("withdrawn-early"), 1).await.unwrap(), Enqueued::Added);
    }

    #[tokio::test]
    async fn a_waiting_order_knows_its_place_and_a_delivered_one_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        for (id, rank) in [("none-1", 2), ("basic-1", 1), ("premium-1", 0), ("none-2", 2)] {
            store.enqueue(order(id), rank).await.unwrap();
        }
        let place = |id: &str| store.look_up(id).unwrap().position;
        // Premium first, then Basic, then None in arrival order.
        assert_eq!(
            [place("premium-1"), place("basic-1"), place("none-1"), place("none-2")],
            [Some(1), Some(2), Some(3), Some(4)]
        );
        assert_eq!(next_id(&store, 0).await.as_deref(), Some("premium-1"));
        let leased = store.look_up("premium-1").unwrap();
        assert_eq!((leased.location, leased.position), (Location::Leased, None));
        assert_eq!(leased.order.map(|order| order.order_id).as_deref(), Some("premium-1"), "the queue still holds it");
        assert_eq!(place("none-2"), Some(3), "everyone moved up");
        let unknown = store.look_up("nope").unwrap();
        assert_eq!((unknown.location, unknown.order, unknown.position), (Location::Unknown, None, None));
    }

    #[tokio::test]
    async fn serves_premium_then_basic_then_none_fifo_within_each() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        for (id, rank) in
            [("none-1", 2), ("basic-1", 1), ("premium-1", 0), ("none-2", 2), ("premium-2", 0), ("basic-2", 1)]
        {
            assert_eq!(store.enqueue(order(id), rank).await.unwrap(), Enqueued::Added);
        }
        let mut order = Vec::new();
        while let Some(id) = next_id(&store, 0).await {
            order.push(id);
        }
        assert_eq!(order, ["premium-1", "premium-2", "basic-1", "basic-2", "none-1", "none-2"]);
    }

    #[tokio::test]
    async fn a_batch_takes_the_head_of_the_queue_in_order_each_with_its_own_lease() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        for (id, rank) in [("none-1", 2), ("basic-1", 1), ("premium-1", 0), ("basic-2", 1), ("premium-2", 0)] {
            store.enqueue(order(id), rank).await.unwrap();
        }
        let ids = |batch: &[Delivery]| batch.iter().map(|d| d.order.order_id.clone()).collect::<Vec<_>>();
        let first = store.dequeue_batch(0, 1_000, "leader", 0, 3).await.unwrap();
        assert_eq!(ids(&first), ["premium-1", "premium-2", "basic-1"]);
        let leases: std::collections::BTreeSet<&str> = first.iter().map(|d| d.lease_id.as_str()).collect();
        assert_eq!(leases.len(), 3, "every order has a lease of its own");
        assert_eq!(store.depth().unwrap().leased, 3);
        let rest = store.dequeue_batch(0, 1_000, "leader", 0, 10).await.unwrap();
        assert_eq!(ids(&rest), ["basic-2", "none-1"], "a batch is capped by what is ready");
        assert!(store.dequeue_batch(0, 1_000, "leader", 0, 10).await.unwrap().is_empty());
        for delivery in first.iter().chain(&rest) {
            assert_eq!(store.ack(&delivery.order.order_id, &delivery.lease_id, 1).await.unwrap(), Acked::Removed);
        }
        // Expired leases come back in their old places, in one batch.
        store.enqueue(order("late"), 2).await.unwrap();
        let taken = store.dequeue_batch(0, 10, "leader", 0, 1).await.unwrap();
        assert_eq!(ids(&taken), ["late"]);
        let again = store.dequeue_batch(10, 10, "leader", 0, 5).await.unwrap();
        assert_eq!(ids(&again), ["late"]);
        assert_eq!(again[0].delivery_count, 2);
    }

    #[tokio::test]
    async fn enqueue_is_idempotent_by_order_id_even_after_ack() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        store.enqueue(order("o1"), 2).await.unwrap();
        assert_eq!(store.enqueue(order("o1"), 0).await.unwrap(), Enqueued::Duplicate);
        let delivery = store.dequeue(0, 1_000, "test", 0).await.unwrap().unwrap();
        assert_eq!(store.ack("o1", &delivery.lease_id, 10).await.unwrap(), Acked::Removed);
        assert_eq!(store.enqueue(order("o1"), 2).await.unwrap(), Enqueued::Duplicate);
        assert_eq!(store.dequeue(20, 1_000, "test", 0).await.unwrap(), None);
        assert_eq!(store.ack("o1", &delivery.lease_id, 30).await.unwrap(), Acked::AlreadyDone);
    }

    #[tokio::test]
    async fn a_withdrawn_order_leaves_the_queue_and_a_late_enqueue_of_it_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        store.enqueue(order("waiting"), 2).await.unwrap();
        store.enqueue(order("next"), 2).await.unwrap();
        assert_eq!(store.withdraw("waiting", 1).await.unwrap(), Withdrawn::Withdrawn);
        assert_eq!(store.withdraw("waiting", 2).await.unwrap(), Withdrawn::Withdrawn, "idempotent");
        assert_eq!(store.lookup("waiting").unwrap(), Location::Unknown);
        assert_eq!(store.depth().unwrap().ready_by_rank, [0, 0, 1]);
        assert_eq!(next_id(&store, 3).await.as_deref(), Some("next"), "the rest keep their place");
        // Withdrawn before its enqueue arrived (the enqueue sat in a paused queue's
        // socket): the enqueue, when it comes, adds nothing.
        assert_eq!(store.withdraw("late", 4).await.unwrap(), Withdrawn::Withdrawn);
        assert_eq!(store.enqueue(order("late"), 0).await.unwrap(), Enqueued::Withdrawn);
        assert_eq!(store.enqueue(order("waiting"), 0).await.unwrap(), Enqueued::Withdrawn);
        assert_eq!(next_id(&store, 5).await, None);
    }

    #[tokio::test]
    async fn an_order_the_executors_have_cannot_be_withdrawn() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        store.enqueue(order("leased"), 2).await.unwrap();
        store.enqueue(order("done"), 2).await.unwrap();
        let delivered = store.dequeue_batch(1, 1_000, "test", 0, 2).await.unwrap();
        assert_eq!(delivered.len(), 2);
        let done = delivered.iter().find(|d| d.order.order_id == "done").unwrap();
        store.ack("done", &done.lease_id, 2).await.unwrap();
        assert_eq!(store.withdraw("leased", 3).await.unwrap(), Withdrawn::Taken);
        assert_eq!(store.withdraw("done", 3).await.unwrap(), Withdrawn::Taken);
        assert_eq!(store.lookup("leased").unwrap(), Location::Leased, "it goes through");
    }

    /// The keys of an index table, (time, order id), in order.
    fn index_keys(txn: &redb::ReadTransaction, table: TableDefinition<(u64, &str), ()>) -> Vec<(u64, String)> {
        let rows = txn.open_table(table).unwrap();
        rows.iter().unwrap().map(|row| row.map(|(key, _)| (key.value().0, key.value().1.to_owned())).unwrap()).collect()
    }

    /// Every lease is in the expiry index, and nothing else is; answers how many.
    fn leases_indexed(store: &QueueStore) -> usize {
        let txn = store.db.begin_read().unwrap();
        let leases = txn.open_table(LEASES).unwrap();
        let mut leased: Vec<(u64, String)> = leases
            .iter()
            .unwrap()
            .map(|row| row.map(|(id, lease)| (lease.value().0, id.value().to_owned())).unwrap())
            .collect();
        leased.sort();
        assert_eq!(leased, index_keys(&txn, EXPIRIES), "the expiry index and the leases agree");
        leased.len()
    }

    /// The ids acknowledged or withdrawn are in the by-time index, at the time each
    /// table gives, and nothing else is; answers how many.
    fn finished_indexed(store: &QueueStore) -> usize {
        let txn = store.db.begin_read().unwrap();
        let mut finished: Vec<(u64, String)> = Vec::new();
        for table in [DONE, WITHDRAWN] {
            let rows = txn.open_table(table).unwrap();
            finished.extend(
                rows.iter().unwrap().map(|row| row.map(|(id, at)| (at.value(), id.value().to_owned())).unwrap()),
            );
        }
        finished.sort();
        assert_eq!(finished, index_keys(&txn, FINISHED), "the by-time index and the finished ids agree");
        finished.len()
    }

    #[tokio::test]
    async fn an_unacked_order_is_delivered_again_after_its_lease_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        store.enqueue(order("o1"), 1).await.unwrap();
        store.enqueue(order("o2"), 1).await.unwrap();
        let first = store.dequeue(0, 100, "test", 0).await.unwrap().unwrap();
        assert_eq!((first.order.order_id.as_str(), first.delivery_count), ("o1", 1));
        assert_eq!(store.next_lease_expiry().unwrap(), Some(100));
        // Before expiry o1 stays leased and o2 comes next.
        assert_eq!(next_id(&store, 99).await.as_deref(), Some("o2"));
        // After expiry o1 is back, in its old place.
        let again = store.dequeue(100, 100, "test", 0).await.unwrap().unwrap();
        assert_eq!((again.order.order_id.as_str(), again.delivery_count), ("o1", 2));
        assert_eq!(
            store.ack("o1", &first.lease_id, 150).await.unwrap(),
            Acked::LeaseLost,
            "the stale lease may not ack"
        );
        assert_eq!(store.ack("o1", &again.lease_id, 150).await.unwrap(), Acked::Removed);
        assert_eq!(store.ack("nope", "x", 150).await.unwrap(), Acked::UnknownOrder);
        assert_eq!(store.lookup("o1").unwrap(), Location::Done);
        assert_eq!(store.lookup("o2").unwrap(), Location::Leased);
        assert_eq!(store.lookup("nope").unwrap(), Location::Unknown);
        assert_eq!(leases_indexed(&store), 1, "o2's");
    }

    #[tokio::test]
    async fn survives_a_restart_with_ready_and_leased_orders() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = store(&dir);
            store.enqueue(order("leased"), 0).await.unwrap();
            store.enqueue(order("ready"), 2).await.unwrap();
            store.dequeue(0, 500, "test", 0).await.unwrap().unwrap();
        }
        let store = store(&dir);
        assert_eq!(store.depth().unwrap(), Depth { ready_by_rank: [0, 0, 1], leased: 1 });
        assert_eq!(next_id(&store, 10).await.as_deref(), Some("ready"));
        assert_eq!(
            next_id(&store, 500).await.as_deref(),
            Some("leased"),
            "redelivered after the restart once its lease ran out"
        );
    }

    #[tokio::test]
    async fn a_released_order_is_ready_again_at_once_in_its_old_place() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        store.enqueue(order("o1"), 1).await.unwrap();
        store.enqueue(order("o2"), 1).await.unwrap();
        let first = store.dequeue(0, 10_000, "leader-a", 0).await.unwrap().unwrap();
        assert_eq!(store.release("o1", "not-the-lease").await.unwrap(), Released::LeaseLost);
        assert_eq!(store.release("o1", &first.lease_id).await.unwrap(), Released::Ready);
        assert_eq!(store.lookup("o1").unwrap(), Location::Ready);
        let again = store.dequeue(1, 10_000, "leader-a", 0).await.unwrap().unwrap();
        assert_eq!((again.order.order_id.as_str(), again.delivery_count), ("o1", 2), "before o2, long before expiry");
        assert_eq!(
            store.ack("o1", &first.lease_id, 2).await.unwrap(),
            Acked::LeaseLost,
            "the released lease may not ack"
        );
        assert_eq!(store.ack("o1", &again.lease_id, 2).await.unwrap(), Acked::Removed);
        assert_eq!(store.release("o1", &again.lease_id).await.unwrap(), Released::AlreadyDone);
        assert_eq!(store.release("nope", "x").await.unwrap(), Released::UnknownOrder);
        assert_eq!(leases_indexed(&store), 0);
    }

    #[tokio::test]
    async fn a_take_over_ends_the_leases_of_every_other_consumer() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        for id in ["old-1", "old-2", "mine", "waiting"] {
            store.enqueue(order(id), 2).await.unwrap();
        }
        store.dequeue(0, 10_000, "leader-1/term-3", 0).await.unwrap().unwrap();
        store.dequeue(0, 10_000, "leader-2/term-4", 0).await.unwrap().unwrap();
        let mine = store.dequeue(0, 10_000, "leader-3/term-5", 0).await.unwrap().unwrap();
        assert_eq!(store.take_over("leader-3/term-5", 5).await.unwrap(), 2);
        assert_eq!(store.depth().unwrap(), Depth { ready_by_rank: [0, 0, 3], leased: 1 });
        assert_eq!(next_id(&store, 1).await.as_deref(), Some("old-1"), "taken-back orders keep their place");
        assert_eq!(
            store.ack("mine", &mine.lease_id, 2).await.unwrap(),
            Acked::Removed,
            "the new leader's lease stands"
        );
        assert_eq!(store.take_over("leader-3/term-5", 5).await.unwrap(), 1, "old-1, just leased to \"test\"");
        assert_eq!(store.take_over("leader-3/term-5", 5).await.unwrap(), 0);
        assert_eq!(leases_indexed(&store), 0);
    }

    #[tokio::test]
    async fn a_take_over_fences_out_older_leaders() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        for id in ["o1", "o2"] {
            store.enqueue(order(id), 2).await.unwrap();
        }
        assert!(store.dequeue(0, 10_000, "old", 3).await.unwrap().is_some(), "no fence yet");
        assert_eq!(store.take_over("new", 4).await.unwrap(), 1);
        let superseded =
            |result: Result<_, StoreError>| matches!(result, Err(StoreError::Superseded { term: 3, current: 4 }));
        assert!(superseded(store.dequeue(1, 10_000, "old", 3).await.map(drop)), "a deposed leader takes nothing more");
        assert!(superseded(store.take_over("old", 3).await.map(drop)), "nor ends the new leader's leases");
        assert_eq!(store.depth().unwrap(), Depth { ready_by_rank: [0, 0, 2], leased: 0 });
        assert!(store.dequeue(1, 10_000, "new", 4).await.unwrap().is_some());
        assert!(store.dequeue(1, 10_000, "unfenced", 0).await.unwrap().is_some(), "term 0 is not fenced");
        drop(store);
        let store = QueueStore::open(&dir.path().join("queue.redb")).unwrap();
        assert!(store.take_over("old", 3).await.is_err(), "the fence is durable");
    }
}
