//! A deterministic simulation of order execution, run over thousands of seeds
//! (TigerBeetle's VOPR and FoundationDB's simulation are the models).
//!
//! What is real: the coordinator ([`Coordinator`]: two-phase commit, recovery,
//! resending), and the state machines it drives — the executors' log
//! ([`ExecutorState`]), books_db's stock ([`BooksState`]) and payment's ledger
//! transitions (`payment::ledger::{prepared, captured, voided}`).
//!
//! What is modelled, in one thread on tokio's paused clock:
//! - the executors' Raft group: a proposal is committed in log order after a
//!   delay, unless the leader changes first; then a prefix of what its leader
//!   had pending survives into the new term and the rest is lost, and the deposed
//!   leader may learn of it late (a paused leader wakes up still believing it
//!   leads). Its answer may be lost after it committed. A crashed leader's work
//!   stops at whatever await it was in.
//! - the network to books_db, payment and the queue: each message is delivered,
//!   lost before or after it took effect, delivered twice, or delivered after the
//!   caller gave up on it (so it overtakes what the caller sent next); each
//!   participant is down for a while (crashed, restarted on the same data: its
//!   state is durable), refusing every call.
//! - the queue: leases that run out and redeliver, a take-over by each new leader
//!   that fences the older terms, acknowledgements by lease.
//! - the replica's loop that takes orders (`replica::lead`), in small: recover,
//!   take over, take orders up to a window while leading, let them end.
//!
//! One seed fixes everything: the orders and when they come, each message's fate
//! and delay, each fault. The faults stop after [`FAULTS_FOR`]; the run then has
//! [`SETTLE_WITHIN`] to finish every order, and the checker reads the end state
//! against what the shop promises: every queued order ends committed or aborted
//! and leaves the queue; a committed order is sold by books_db and captured once
//! by payment, an aborted one neither; nothing stays reserved or authorized; stock
//! adds up; no participant ever refused a decision (a coordinator bug: two
//! decisions, or a decision without a yes vote).
//!
//! `cargo test -p services --lib simulation` runs seeds 1..=[`DEFAULT_SEEDS`]
//! (`SIM_SEEDS=n` runs more, from `SIM_SEED_BASE`); `SIM_SEED=n` replays one seed
//! and prints its history. A seed that ever failed joins [`REGRESSIONS`].
//!
//! Why this and not the Raft groups under turmoil: the invariants that can break
//! silently are the protocol's (which leader decides, what a late message does,
//! what recovery resends), and this reaches every interleaving of them at a few
//! milliseconds a seed; openraft's own tests cover consensus, and the chaos run
//! (`make chaos`) runs the real processes, Raft and all.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;

use super::coordinator::{
    Coordinator, DecisionLog, Finished, LogError, Participant, QueueAck, RetryPolicy, Unreachable, Vote,
};
use super::metrics::ExecutionMetrics;
use super::state::{Command, Execution, ExecutorState, Outcome, Phase, Record};
use crate::books_db::state::{self as books, BooksState, Decision};
use crate::payment::ledger::{self, Authorization, Hold, Payment, PaymentState};

/// Seeds run by `make test`.
const DEFAULT_SEEDS: u64 = 1_000;
/// Seeds that once failed, run every time.
const REGRESSIONS: &[u64] = &[];
/// How long faults are injected, orders arriving throughout.
const FAULTS_FOR: Duration = Duration::from_secs(10);
/// How long after the faults stop every order must be finished.
const SETTLE_WITHIN: Duration = Duration::from_secs(60);
/// Each call's deadline, as `ExecutorConfig::call_deadline`.
const DEADLINE: Duration = Duration::from_secs(1);
/// The queue's lease on a delivered order.
const LEASE: Duration = Duration::from_secs(3);
/// The most orders a leader runs at once.
const WINDOW: usize = 8;
/// The book buyers race for, and how many copies it has.
const SCARCE: (&str, u32) = ("1", 3);
/// A book with stock to spare.
const PLENTY: (&str, u32) = ("2", 40);
/// Cards ending so are declined by the issuer.
const DECLINED_LAST4: &str = "0002";

/// splitmix64: the simulation's one source of chance, from the seed.
struct Chance(u64);

impl Chance {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.below(high - low + 1))
    }
}

/// What a seed's nemesis can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    /// The executors elect another leader; the old one learns of it up to 5 s late.
    Depose,
    /// The executors' leader crashes: its work stops where it was.
    CrashLeader,
    /// A participant or the queue is down (crashed, restarting on its data).
    Down(Part),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    BooksDb,
    Payment,
    Queue,
}

/// What becomes of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fate {
    Delivered,
    LostBefore,
    LostAfter,
    Duplicated,
    Late,
}

/// The executors' Raft group, as the coordinator sees it.
struct ExecutorGroup {
    state: ExecutorState,
    term: u64,
    /// Until when a deposed term's leader still believes it leads.
    unaware_until: BTreeMap<u64, Instant>,
    /// Proposed, not yet committed, by entry.
    pending: BTreeMap<u64, Command>,
    /// Settled entries: the outcome once committed, `None` if lost.
    settled: BTreeMap<u64, Option<Outcome>>,
    next_entry: u64,
}

impl ExecutorGroup {
    /// Commits every pending entry up to `entry`, in log order.
    fn commit_through(&mut self, entry: u64) {
        while let Some(first) = self.pending.first_entry() {
            if *first.key() > entry {
                break;
            }
            let (id, command) = first.remove_entry();
            let outcome = self.state.apply(&command);
            self.settled.insert(id, Some(outcome));
        }
    }
}

struct Queued {
    execution: Execution,
    /// (lease id, term of the consumer, until)
    lease: Option<(String, u64, Instant)>,
}

#[derive(Default)]
struct Queue {
    orders: Vec<Queued>,
    /// The newest leader's term that took the queue over; older ones are fenced.
    fence: u64,
    next_lease: u64,
}

/// Counts for the report.
#[derive(Debug, Default, Clone)]
struct Counts {
    faults: BTreeMap<String, u64>,
    messages: BTreeMap<String, u64>,
    log_entries_lost: u64,
}

struct World {
    chance: Chance,
    start: Instant,
    /// Faults are injected until this is false.
    faulty: bool,
    executors: ExecutorGroup,
    books: BooksState,
    payments: BTreeMap<String, Payment>,
    queue: Queue,
    down_until: BTreeMap<Part, Instant>,
    history: Vec<String>,
    /// Decisions a participant refused (each once): never expected.
    conflicts: BTreeSet<String>,
    counts: Counts,
}

type Shared = Arc<Mutex<World>>;

fn lock(world: &Shared) -> MutexGuard<'_, World> {
    world.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl World {
    fn new(seed: u64) -> Self {
        let mut books = BooksState::default();
        let catalog = [(SCARCE, "The Last Copies"), (PLENTY, "Plenty")]
            .map(|((id, stock), title)| (id.to_owned(), title.to_owned(), stock));
        books.apply(&books::Command::LoadCatalog(catalog.to_vec()));
        Self {
            chance: Chance(seed),
            start: Instant::now(),
            faulty: true,
            executors: ExecutorGroup {
                state: ExecutorState::default(),
                term: 1,
                unaware_until: BTreeMap::new(),
                pending: BTreeMap::new(),
                settled: BTreeMap::new(),
                next_entry: 1,
            },
            books,
            payments: BTreeMap::new(),
            queue: Queue::default(),
            down_until: BTreeMap::new(),
            history: Vec::new(),
            conflicts: BTreeSet::new(),
            counts: Counts::default(),
        }
    }

    fn note(&mut self, what: impl std::fmt::Display) {
        let at = Instant::now().duration_since(self.start).as_millis();
        self.history.push(format!("{at:>6} ms  {what}"));
    }

    fn is_down(&self, part: Part) -> bool {
        self.down_until.get(&part).is_some_and(|until| Instant::now() < *until)
    }

    fn fate(&mut self) -> Fate {
        if !self.faulty {
            return Fate::Delivered;
        }
        match self.chance.below(24) {
            0 => Fate::LostBefore,
            1 => Fate::LostAfter,
            2 => Fate::Duplicated,
            3 => Fate::Late,
            _ => Fate::Delivered,
        }
    }

    /// A new leader for the executors: of what the old one had pending, a prefix
    /// survives (the new leader had it) and the rest is lost.
    fn elect(&mut self, aware_after: Duration) -> u64 {
        let group = &mut self.executors;
        let survivors = self.chance.below(group.pending.len() as u64 + 1);
        let through = group.pending.keys().nth(survivors as usize).copied();
        match through {
            Some(first_lost) => {
                group.commit_through(first_lost - 1);
                let lost: Vec<u64> = group.pending.keys().copied().collect();
                self.counts.log_entries_lost += lost.len() as u64;
                for entry in lost {
                    group.pending.remove(&entry);
                    group.settled.insert(entry, None);
                }
            }
            None => group.commit_through(u64::MAX),
        }
        group.unaware_until.insert(group.term, Instant::now() + aware_after);
        group.term += 1;
        let term = group.term;
        self.note(format_args!("term {term} begins; the old leader learns it in {} ms", aware_after.as_millis()));
        term
    }

    /// A message's fate, how long it takes to arrive, its answer to come back, and
    /// a duplicate to follow it.
    fn plan(&mut self, participant: &str, what: &str) -> (Fate, Duration, Duration, Duration) {
        let fate = self.fate();
        *self.counts.messages.entry(format!("{fate:?}")).or_default() += 1;
        if fate != Fate::Delivered {
            self.note(format_args!("{what} to {participant}: {fate:?}"));
        }
        let there = match fate {
            Fate::Late => DEADLINE + self.chance.millis(1, 3_000),
            _ => self.chance.millis(0, 20),
        };
        (fate, there, self.chance.millis(0, 20), self.chance.millis(0, 500))
    }

    fn leading(&self, term: u64) -> bool {
        let group = &self.executors;
        term == group.term || group.unaware_until.get(&term).is_some_and(|until| Instant::now() < *until)
    }

    /// Up to `max` orders for the leader of `term`, each leased to it.
    fn dequeue(&mut self, term: u64, max: usize) -> Result<Vec<Execution>, &'static str> {
        if self.is_down(Part::Queue) {
            return Err("the queue is down");
        }
        if term < self.queue.fence {
            return Err("superseded");
        }
        let now = Instant::now();
        let mut taken = Vec::new();
        for queued in &mut self.queue.orders {
            if taken.len() == max {
                break;
            }
            if queued.lease.as_ref().is_some_and(|(_, _, until)| now < *until) {
                continue;
            }
            self.queue.next_lease += 1;
            let lease_id = format!("lease-{}", self.queue.next_lease);
            queued.lease = Some((lease_id.clone(), term, now + LEASE));
            taken.push(Execution { lease_id, ..queued.execution.clone() });
        }
        for execution in &taken {
            self.history.push(format!("         term {term} takes {} ({})", execution.order_id, execution.lease_id));
        }
        Ok(taken)
    }

    /// A new leader takes the queue over: older terms' leases end.
    fn take_over(&mut self, term: u64) {
        if self.is_down(Part::Queue) {
            self.note(format_args!("term {term} could not take the queue over (down); leases run out instead"));
            return;
        }
        self.queue.fence = self.queue.fence.max(term);
        for queued in &mut self.queue.orders {
            if queued.lease.as_ref().is_some_and(|(_, held_by, _)| *held_by < term) {
                queued.lease = None;
            }
        }
    }

    fn settle_lease(&mut self, order_id: &str, lease_id: &str, done: bool) {
        let Some(index) = self.queue.orders.iter().position(|queued| queued.execution.order_id == order_id) else {
            return;
        };
        if self.queue.orders[index].lease.as_ref().is_some_and(|(id, _, _)| id == lease_id) {
            if done {
                self.queue.orders.remove(index);
            } else {
                self.queue.orders[index].lease = None;
            }
        }
    }
}

/// Sends one message to `part`, which `deliver` applies there; answers what it
/// answered, or `Unreachable` if nothing came back within the deadline.
async fn call<T: Send + 'static>(
    world: &Shared,
    part: Part,
    what: String,
    deliver: impl Fn(&mut World) -> T + Send + Sync + 'static,
) -> Result<T, Unreachable> {
    let participant = match part {
        Part::BooksDb => "books_db",
        Part::Payment => "payment",
        Part::Queue => "order_queue",
    };
    let plan = {
        let mut w = lock(world);
        if w.is_down(part) {
            None
        } else {
            Some(w.plan(participant, &what))
        }
    };
    let Some((fate, there, back, again)) = plan else {
        tokio::time::sleep(Duration::from_millis(1)).await;
        return Err(Unreachable { participant, detail: "connection refused".to_owned() });
    };
    let deliver = Arc::new(deliver);
    let (answer, answered) = tokio::sync::oneshot::channel();
    // Applies the message at `part` after `delay`, unless `part` is down by then.
    let arrive = |delay: Duration, answer: Option<tokio::sync::oneshot::Sender<T>>| {
        let world = Arc::clone(world);
        let deliver = Arc::clone(&deliver);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let result = {
                let mut w = lock(&world);
                if w.is_down(part) {
                    return;
                }
                deliver(&mut w)
            };
            if let Some(answer) = answer {
                tokio::time::sleep(back).await;
                let _ = answer.send(result);
            }
        });
    };
    match fate {
        Fate::Delivered => arrive(there, Some(answer)),
        Fate::LostBefore => drop(answer),
        Fate::LostAfter | Fate::Late => arrive(there, None),
        Fate::Duplicated => {
            arrive(there, Some(answer));
            arrive(there + again, None);
        }
    }
    match tokio::time::timeout(DEADLINE, answered).await {
        Ok(Ok(result)) => Ok(result),
        _ => Err(Unreachable { participant, detail: "no answer within the deadline".to_owned() }),
    }
}

/// The executors' log for the leader of one term.
struct SimLog {
    world: Shared,
    term: u64,
}

impl DecisionLog for SimLog {
    fn propose(&self, command: Command) -> BoxFuture<'_, Result<Outcome, LogError>> {
        Box::pin(async move {
            let proposed = {
                let mut w = lock(&self.world);
                (w.executors.term == self.term).then(|| {
                    let entry = w.executors.next_entry;
                    w.executors.next_entry += 1;
                    w.executors.pending.insert(entry, command);
                    (entry, w.chance.millis(1, 15))
                })
            };
            let Some((entry, delay)) = proposed else {
                tokio::time::sleep(Duration::from_millis(1)).await;
                return Err(LogError::NotLeader);
            };
            tokio::time::sleep(delay).await;
            let mut w = lock(&self.world);
            if w.executors.term == self.term {
                w.executors.commit_through(entry);
            }
            let settled = w.executors.settled.remove(&entry).expect("a pending entry settles by commit or election");
            let still_leading = w.executors.term == self.term;
            let answer_lost = w.faulty && w.chance.one_in(40);
            let told = w.chance.one_in(2);
            match settled {
                None => Err(LogError::NotLeader),
                Some(_) if answer_lost => {
                    w.note(format_args!("term {}: entry {entry} committed, its answer lost", self.term));
                    Err(LogError::Failed("the answer was lost".to_owned()))
                }
                Some(outcome) if still_leading || told => Ok(outcome),
                Some(_) => Err(LogError::NotLeader),
            }
        })
    }

    fn in_flight(&self) -> Vec<Record> {
        lock(&self.world).executors.state.in_flight().cloned().collect()
    }

    fn is_leader(&self) -> bool {
        lock(&self.world).leading(self.term)
    }

    fn leadership(&self) -> (u64, u64) {
        (self.term % 3 + 1, self.term)
    }
}

struct SimBooks(Shared);

impl SimBooks {
    fn decide(&self, order_id: &str, commit: bool) -> BoxFuture<'_, Result<(), Unreachable>> {
        let id = order_id.to_owned();
        let what = format!("{} {id}", if commit { "commit" } else { "abort" });
        {
            // As books_db answers: a decision against the recorded one is answered
            // with the recorded one, and the participant does not send it again.
            Box::pin(call(&self.0, Part::BooksDb, what, move |w| {
                let command = match commit {
                    true => books::Command::Commit { order_id: id.clone() },
                    false => books::Command::Abort { order_id: id.clone() },
                };
                if let books::Outcome::Conflict { reason } = w.books.apply(&command) {
                    w.conflicts.insert(format!("books_db refused {command:?}: {reason}"));
                }
            }))
        }
    }
}

impl Participant for SimBooks {
    fn name(&self) -> &'static str {
        "books_db"
    }

    fn prepare<'a>(&'a self, execution: &'a Execution) -> BoxFuture<'a, Result<Vote, Unreachable>> {
        let command = books::Command::Prepare { order_id: execution.order_id.clone(), lines: execution.lines.clone() };
        let what = format!("prepare {}", execution.order_id);
        Box::pin(async move {
            let outcome = call(&self.0, Part::BooksDb, what, move |w| w.books.apply(&command)).await?;
            Ok(match outcome {
                books::Outcome::Reserved => Vote::Yes,
                books::Outcome::Refused { reason } => Vote::No { reason },
                other => Vote::No { reason: format!("unexpected answer {other:?}") },
            })
        })
    }

    fn commit<'a>(&'a self, order_id: &'a str) -> BoxFuture<'a, Result<(), Unreachable>> {
        self.decide(order_id, true)
    }

    fn abort<'a>(&'a self, order_id: &'a str) -> BoxFuture<'a, Result<(), Unreachable>> {
        self.decide(order_id, false)
    }
}

struct SimPayment(Shared);

impl SimPayment {
    fn decide(&self, order_id: &str, commit: bool) -> BoxFuture<'_, Result<(), Unreachable>> {
        let id = order_id.to_owned();
        let what = format!("{} {id}", if commit { "commit" } else { "abort" });
        {
            // As payment answers: a decision its state refuses leaves the record
            // as it is, and the participant does not send it again.
            Box::pin(call(&self.0, Part::Payment, what, move |w| {
                let current = w.payments.get(&id).cloned();
                let next = match commit {
                    true => ledger::captured(&id, current),
                    false => ledger::voided(&id, current),
                };
                match next {
                    Ok(payment) => drop(w.payments.insert(id.clone(), payment)),
                    Err(error) => drop(w.conflicts.insert(format!(
                        "payment refused to {} {id}: {error}",
                        ["abort", "commit"][usize::from(commit)]
                    ))),
                }
            }))
        }
    }
}

impl Participant for SimPayment {
    fn name(&self) -> &'static str {
        "payment"
    }

    fn prepare<'a>(&'a self, execution: &'a Execution) -> BoxFuture<'a, Result<Vote, Unreachable>> {
        let hold = Hold {
            order_id: execution.order_id.clone(),
            amount_cents: execution.total_cents,
            card_network: execution.card_network.clone(),
            card_last4: execution.card_last4.clone(),
        };
        let what = format!("prepare {}", execution.order_id);
        Box::pin(async move {
            let payment = call(&self.0, Part::Payment, what, move |w| {
                let current = w.payments.get(&hold.order_id).cloned();
                let payment = ledger::prepared(current, &hold, || match hold.card_last4 == DECLINED_LAST4 {
                    true => Authorization::Declined { code: "card_declined".into(), reason: "card declined".into() },
                    false => Authorization::Approved,
                });
                w.payments.insert(hold.order_id.clone(), payment.clone());
                payment
            })
            .await?;
            Ok(match ledger::votes_yes(&payment) {
                true => Vote::Yes,
                false => Vote::No { reason: payment.reason },
            })
        })
    }

    fn commit<'a>(&'a self, order_id: &'a str) -> BoxFuture<'a, Result<(), Unreachable>> {
        self.decide(order_id, true)
    }

    fn abort<'a>(&'a self, order_id: &'a str) -> BoxFuture<'a, Result<(), Unreachable>> {
        self.decide(order_id, false)
    }
}

struct SimQueue(Shared);

impl QueueAck for SimQueue {
    fn ack<'a>(&'a self, order_id: &'a str, lease_id: &'a str) -> BoxFuture<'a, Result<(), Unreachable>> {
        let (id, lease) = (order_id.to_owned(), lease_id.to_owned());
        let what = format!("ack {id}");
        Box::pin(call(&self.0, Part::Queue, what, move |w| w.settle_lease(&id, &lease, true)))
    }
}

type SimCoordinator = Coordinator<SimLog, SimBooks, SimPayment, SimQueue>;

/// The leader of `term`, as `replica::lead` runs it: recover what the previous
/// leader left, take the queue over, then take orders while leading; once deposed
/// it takes nothing more, lets what runs end and gives back what it cannot finish.
async fn lead(world: Shared, term: u64) {
    let coordinator: SimCoordinator = Coordinator {
        log: SimLog { world: Arc::clone(&world), term },
        books: SimBooks(Arc::clone(&world)),
        payment: SimPayment(Arc::clone(&world)),
        queue: SimQueue(Arc::clone(&world)),
        retry: RetryPolicy::default(),
        metrics: ExecutionMetrics::default(),
    };
    loop {
        match coordinator.recover(WINDOW).await {
            Ok(count) => {
                lock(&world).note(format_args!("term {term} recovered {count} orders"));
                break;
            }
            Err(LogError::NotLeader) => return,
            Err(error) => {
                lock(&world).note(format_args!("term {term}: recovery failed ({error}); again"));
                if !coordinator.log.is_leader() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    lock(&world).take_over(term);
    let mut running = FuturesUnordered::new();
    let mut in_window = BTreeSet::new();
    let mut leading = true;
    loop {
        leading &= coordinator.log.is_leader();
        if leading && running.len() < WINDOW {
            let batch = lock(&world).dequeue(term, WINDOW - running.len());
            match batch {
                Ok(orders) => {
                    for execution in orders {
                        if in_window.insert(execution.order_id.clone()) {
                            let coordinator = &coordinator;
                            running.push(async move {
                                let ids = (execution.order_id.clone(), execution.lease_id.clone());
                                (ids, coordinator.execute(execution).await)
                            });
                        }
                    }
                }
                Err("superseded") => leading = false,
                Err(_) => {}
            }
        }
        if !leading && running.is_empty() {
            return;
        }
        tokio::select! {
            biased;
            Some(((order_id, lease_id), result)) = running.next(), if !running.is_empty() => {
                in_window.remove(&order_id);
                let mut w = lock(&world);
                match result {
                    Ok(Finished::Committed) => w.note(format_args!("term {term}: {order_id} committed")),
                    Ok(Finished::Aborted { reason }) => w.note(format_args!("term {term}: {order_id} aborted: {reason}")),
                    Err(LogError::NotLeader) => {
                        leading = false;
                        w.note(format_args!("term {term}: {order_id} given back (not the leader)"));
                        if !w.is_down(Part::Queue) {
                            w.settle_lease(&order_id, &lease_id, false);
                        }
                    }
                    Err(error) => w.note(format_args!("term {term}: {order_id} not finished ({error}); redelivered later")),
                }
            }
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
}

/// An order of the workload.
#[derive(Debug, Clone)]
struct Order {
    execution: Execution,
    arrives: Duration,
}

fn workload(chance: &mut Chance) -> Vec<Order> {
    let count = 6 + chance.below(19);
    (1..=count)
        .map(|n| {
            let mut lines = Vec::new();
            let scarce = chance.below(3);
            if scarce > 0 || chance.one_in(2) {
                let quantity = if scarce > 0 { scarce } else { 1 + chance.below(3) };
                let book = if scarce > 0 { SCARCE.0 } else { PLENTY.0 };
                lines.push(line(book, quantity));
            }
            if lines.is_empty() || chance.one_in(3) {
                lines.push(line(PLENTY.0, 1 + chance.below(2)));
            }
            let declined = chance.one_in(6);
            Order {
                execution: Execution {
                    order_id: format!("order-{n:02}"),
                    lines,
                    total_cents: 1_000 + chance.below(9_000),
                    card_network: "visa".to_owned(),
                    card_last4: if declined { DECLINED_LAST4 } else { "6287" }.to_owned(),
                    card_fingerprint: "f".repeat(64),
                    lease_id: String::new(),
                    checkout_events: Vec::new(),
                    client_card: Some(domain::ClientCard::None),
                    accepted_at_ms: 0,
                    started: None,
                    trace_context: BTreeMap::new(),
                },
                arrives: chance.millis(0, FAULTS_FOR.as_millis() as u64 - 1_000),
            }
        })
        .collect()
}

fn line(book_id: &str, quantity: u64) -> domain::OrderLine {
    domain::OrderLine {
        book_id: book_id.to_owned(),
        quantity: domain::Quantity::new(quantity as i64, "quantity").expect("1 to 3 copies"),
    }
}

/// What one seed's run did and found.
#[derive(Debug, Default)]
struct Report {
    seed: u64,
    orders: usize,
    committed: usize,
    counts: Counts,
    terms: u64,
    /// How long, after the faults stopped, the last order took to finish.
    settled_after: Duration,
    violations: Vec<String>,
    history: Vec<String>,
}

/// Runs one seed to its end and checks it.
fn simulate(seed: u64) -> Report {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(run(seed))
}

async fn run(seed: u64) -> Report {
    let world: Shared = Arc::new(Mutex::new(World::new(seed)));
    let orders = workload(&mut lock(&world).chance);
    for order in &orders {
        let (world, order) = (Arc::clone(&world), order.clone());
        tokio::spawn(async move {
            tokio::time::sleep(order.arrives).await;
            let mut w = lock(&world);
            w.note(format_args!("{} queued: {:?}", order.execution.order_id, order.execution.lines));
            w.queue.orders.push(Queued { execution: order.execution, lease: None });
        });
    }
    let start = Instant::now();
    let mut leader = tokio::spawn(lead(Arc::clone(&world), 1));
    // The nemesis: one fault every 0.2–1.5 s while faults last.
    loop {
        let pause = lock(&world).chance.millis(200, 1_500);
        tokio::time::sleep(pause).await;
        if Instant::now() >= start + FAULTS_FOR {
            break;
        }
        let mut w = lock(&world);
        let fault = match w.chance.below(6) {
            0 => Fault::Depose,
            1 => Fault::CrashLeader,
            2 | 3 => Fault::Down(Part::BooksDb),
            4 => Fault::Down(Part::Payment),
            _ => Fault::Down(Part::Queue),
        };
        *w.counts.faults.entry(format!("{fault:?}")).or_default() += 1;
        match fault {
            Fault::Depose => {
                let aware_after = w.chance.millis(0, 5_000);
                let term = w.elect(aware_after);
                leader = tokio::spawn(lead(Arc::clone(&world), term));
            }
            Fault::CrashLeader => {
                leader.abort();
                w.note("the leader crashed");
                let term = w.elect(Duration::ZERO);
                leader = tokio::spawn(lead(Arc::clone(&world), term));
            }
            Fault::Down(part) => {
                let down_for = w.chance.millis(100, 3_000);
                w.note(format_args!("{part:?} down for {} ms", down_for.as_millis()));
                w.down_until.insert(part, Instant::now() + down_for);
            }
        }
    }
    let calm = Instant::now();
    {
        let mut w = lock(&world);
        w.faulty = false;
        w.note("faults stop");
    }
    let settled_after = loop {
        let done = {
            let w = lock(&world);
            w.queue.orders.is_empty()
                && w.executors.state.in_flight().next().is_none()
                && orders.iter().all(|order| w.executors.state.get(&order.execution.order_id).is_some())
        };
        if done || Instant::now() >= calm + SETTLE_WITHIN {
            break Instant::now().duration_since(calm);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    leader.abort();
    let w = lock(&world);
    let violations = check(&w, &orders);
    let committed = orders
        .iter()
        .filter(|o| w.executors.state.get(&o.execution.order_id).is_some_and(|r| r.phase == Phase::Committed))
        .count();
    Report {
        seed,
        orders: orders.len(),
        committed,
        counts: w.counts.clone(),
        terms: w.executors.term,
        settled_after,
        violations,
        history: w.history.clone(),
    }
}

/// The end state against what the shop promises.
fn check(w: &World, orders: &[Order]) -> Vec<String> {
    let mut violations: Vec<String> =
        w.conflicts.iter().map(|conflict| format!("a decision was refused: {conflict}")).collect();
    let mut sold: BTreeMap<&str, u32> = BTreeMap::new();
    for order in orders {
        let id = &order.execution.order_id;
        let Some(record) = w.executors.state.get(id) else {
            violations.push(format!("{id} was queued and never started"));
            continue;
        };
        let books = w.books.decision(id);
        let payment = w.payments.get(id).map(|p| (p.state, p.captures));
        match &record.phase {
            Phase::Committed => {
                for line in &order.execution.lines {
                    *sold.entry(line.book_id.as_str()).or_default() += line.quantity.get();
                }
                if books != Some(Decision::Committed) {
                    violations.push(format!("{id} committed, but books_db holds {books:?}"));
                }
                if payment != Some((PaymentState::Captured, 1)) {
                    violations.push(format!("{id} committed, but its payment is {payment:?}"));
                }
                if order.execution.card_last4 == DECLINED_LAST4 {
                    violations.push(format!("{id} committed with a declined card"));
                }
            }
            Phase::Aborted { .. } => {
                if books == Some(Decision::Committed) {
                    violations.push(format!("{id} aborted, but books_db sold it"));
                }
                if let Some((state @ (PaymentState::Captured | PaymentState::Authorized), _)) = payment {
                    violations.push(format!("{id} aborted, but its payment is {state:?}"));
                }
            }
            phase => violations.push(format!("{id} is still {phase:?} {SETTLE_WITHIN:?} after the faults stopped")),
        }
    }
    for queued in &w.queue.orders {
        violations.push(format!("{} is still on the queue", queued.execution.order_id));
    }
    if w.books.open_reservations() != 0 {
        violations.push(format!("books_db holds {} reservations", w.books.open_reservations()));
    }
    for (id, stock) in w.books.books() {
        let expected = sold.get(id.as_str()).copied().unwrap_or(0);
        if stock.sold != expected || stock.reserved != 0 || stock.available + stock.sold != stock.initial {
            violations.push(format!("book {id}: {stock:?}, but the committed orders bought {expected}"));
        }
    }
    violations
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.trim().parse().unwrap_or_else(|_| panic!("{name}={value} is not a number")))
}

fn describe(report: &Report) -> String {
    let mut text = format!(
        "seed {}: {} orders ({} committed, {} aborted), {} terms, faults {:?}, messages {:?}, {} log entries lost, settled {} ms after the faults stopped\n",
        report.seed,
        report.orders,
        report.committed,
        report.orders - report.committed,
        report.terms,
        report.counts.faults,
        report.counts.messages,
        report.counts.log_entries_lost,
        report.settled_after.as_millis(),
    );
    for violation in &report.violations {
        let _ = writeln!(text, "  VIOLATION: {violation}");
    }
    text
}

#[test]
fn every_seed_keeps_every_promise() {
    if let Some(seed) = env_u64("SIM_SEED") {
        let report = simulate(seed);
        println!("{}", report.history.join("\n"));
        println!("{}", describe(&report));
        assert!(report.violations.is_empty(), "seed {seed} broke a promise");
        return;
    }
    let count = env_u64("SIM_SEEDS").unwrap_or(DEFAULT_SEEDS);
    let base = env_u64("SIM_SEED_BASE").unwrap_or(1);
    let seeds: Vec<u64> = REGRESSIONS.iter().copied().chain(base..base + count).collect();
    let mut failed = Vec::new();
    let (mut orders, mut committed, mut terms, mut slowest) = (0, 0, 0, Duration::ZERO);
    let mut faults: BTreeMap<String, u64> = BTreeMap::new();
    let mut messages: BTreeMap<String, u64> = BTreeMap::new();
    for &seed in &seeds {
        let report = simulate(seed);
        orders += report.orders;
        committed += report.committed;
        terms += report.terms;
        slowest = slowest.max(report.settled_after);
        for (kind, n) in &report.counts.faults {
            *faults.entry(kind.clone()).or_default() += n;
        }
        for (kind, n) in &report.counts.messages {
            *messages.entry(kind.clone()).or_default() += n;
        }
        if !report.violations.is_empty() {
            failed.push(describe(&report));
        }
    }
    println!(
        "simulation: {} seeds ({} regressions), {orders} orders ({committed} committed), {terms} executor terms, faults {faults:?}, messages {messages:?}, slowest settling {} ms after the faults stopped, {} seeds with violations",
        seeds.len(),
        REGRESSIONS.len(),
        slowest.as_millis(),
        failed.len(),
    );
    assert!(
        failed.is_empty(),
        "{} of {} seeds broke a promise (replay one: SIM_SEED=n cargo test -p services --lib simulation -- --nocapture):\n{}",
        failed.len(),
        seeds.len(),
        failed.iter().take(10).cloned().collect::<String>()
    );
}

#[test]
fn a_seed_replays_exactly() {
    for seed in [3, 17, 99] {
        let first = simulate(seed);
        let second = simulate(seed);
        assert!(first.history.len() > 10, "seed {seed} did something");
        assert_eq!(first.history, second.history, "seed {seed} ran the same way twice");
    }
}

#[test]
fn the_checker_sees_a_broken_promise() {
    // A run whose end state is tampered with: each kind of breach is reported.
    let mut report_world = World::new(1);
    let orders = workload(&mut Chance(1));
    let first = &orders[0].execution;
    report_world.executors.state.apply(&Command::Start(first.clone()));
    report_world.executors.state.apply(&Command::Decide {
        order_id: first.order_id.clone(),
        abort_reason: None,
        votes: Vec::new(),
        by: None,
    });
    report_world.executors.state.apply(&Command::Complete { order_id: first.order_id.clone(), at_ms: None });
    let violations = check(&report_world, &orders);
    assert!(violations.iter().any(|v| v.contains("committed, but books_db holds None")), "{violations:?}");
    assert!(violations.iter().any(|v| v.contains("committed, but its payment is None")), "{violations:?}");
    assert!(violations.iter().any(|v| v.contains("never started")), "{violations:?}");
    assert!(violations.iter().any(|v| v.contains("but the committed orders bought")), "{violations:?}");
}
