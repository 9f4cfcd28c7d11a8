//! The books database's replicated state machine: stock per book and the
//! reservations two-phase commit has prepared. Every replica applies the same
//! commands in the same order (the Raft log), so the logic here is deterministic:
//! no clock, no randomness, no I/O.
//!
//! Per order: `prepare` reserves every line or nothing (voting no with the
//! shortfall); `commit` makes a reservation final; `abort` returns it to stock.
//! All three are idempotent by order id, and a decided order stays decided: a
//! committed order cannot be aborted, an aborted one cannot be committed, and a
//! prepare arriving after an abort votes no.
//!
//! Decisions are remembered for one to two retention windows, not forever: the
//! leader logs `Rotate` once a window, which drops the decisions of the window
//! before last (two generations, so no clock in here). A decision is needed only
//! while its order's messages may still arrive, seconds after it.
//!
//! Invariant (checked in debug builds after every command): for every book,
//! available + reserved = initial − committed, and nothing is negative (counts are
//! unsigned and only ever decremented after a check).

use std::collections::BTreeMap;

use domain::{Catalog, OrderLine};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stock {
    pub title: String,
    /// Copies neither reserved nor sold.
    pub available: u32,
    /// Copies held by prepared, undecided orders.
    pub reserved: u32,
    /// Copies sold to committed orders.
    pub sold: u32,
    /// Stock when the catalog was loaded.
    pub initial: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Committed,
    Aborted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Load the catalog's initial stock; ignored once loaded (the first
    /// initialisation of the cluster wins).
    LoadCatalog(Vec<(String, String, u32)>),
    Prepare {
        order_id: String,
        lines: Vec<OrderLine>,
    },
    Commit {
        order_id: String,
    },
    Abort {
        order_id: String,
    },
    /// Start a new window of decisions, forgetting the one before last.
    Rotate,
}

impl Command {
    pub fn load(catalog: &Catalog) -> Self {
        Self::LoadCatalog(catalog.books().iter().map(|b| (b.id.clone(), b.title.clone(), b.stock)).collect())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Outcome {
    #[default]
    Done,
    /// Prepare voted yes: the lines are reserved.
    Reserved,
    /// Prepare voted no.
    Refused {
        reason: String,
    },
    Committed,
    Aborted,
    /// The command contradicts the order's decision (commit after abort, abort
    /// after commit, commit without prepare): a coordinator bug, refused.
    Conflict {
        reason: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BooksState {
    stock: BTreeMap<String, Stock>,
    reservations: BTreeMap<String, Vec<OrderLine>>,
    decisions: BTreeMap<String, Decision>,
    /// The decisions of the window before (`Rotate`).
    #[serde(default)]
    older_decisions: BTreeMap<String, Decision>,
}

impl BooksState {
    pub fn apply(&mut self, command: &Command) -> Outcome {
        let outcome = match command {
            Command::LoadCatalog(books) => self.load(books),
            Command::Prepare { order_id, lines } => self.prepare(order_id, lines),
            Command::Commit { order_id } => self.commit(order_id),
            Command::Abort { order_id } => self.abort(order_id),
            Command::Rotate => {
                self.older_decisions = std::mem::take(&mut self.decisions);
                Outcome::Done
            }
        };
        debug_assert!(self.consistent(), "stock invariant broken by {command:?}");
        outcome
    }

    /// Whether the catalog's stock has been loaded.
    pub fn is_loaded(&self) -> bool {
        !self.stock.is_empty()
    }

    pub fn stock(&self, book_id: &str) -> Option<&Stock> {
        self.stock.get(book_id)
    }

    pub fn books(&self) -> impl Iterator<Item = (&String, &Stock)> {
        self.stock.iter()
    }

    /// The decision recorded for an order, if any.
    pub fn decision(&self, order_id: &str) -> Option<Decision> {
        self.decisions.get(order_id).or_else(|| self.older_decisions.get(order_id)).copied()
    }

    /// How many decisions are remembered (both windows).
    pub fn remembered_decisions(&self) -> usize {
        self.decisions.len() + self.older_decisions.len()
    }

    /// How many orders hold a reservation (prepared and undecided).
    pub fn open_reservations(&self) -> usize {
        self.reservations.len()
    }

    fn load(&mut self, books: &[(String, String, u32)]) -> Outcome {
        if self.stock.is_empty() {
            for (id, title, stock) in books {
                self.stock.insert(
                    id.clone(),
                    Stock { title: title.clone(), available: *stock, reserved: 0, sold: 0, initial: *stock },
                );
            }
        }
        Outcome::Done
    }

    fn prepare(&mut self, order_id: &str, lines: &[OrderLine]) -> Outcome {
        match self.decision(order_id) {
            Some(Decision::Committed) => return Outcome::Reserved,
            Some(Decision::Aborted) => return Outcome::Refused { reason: "the order was already aborted".to_owned() },
            None => {}
        }
        if self.reservations.contains_key(order_id) {
            return Outcome::Reserved;
        }
        // All or nothing: check every line before touching any.
        let mut needed: BTreeMap<&str, u32> = BTreeMap::new();
        for line in lines {
            let total = needed.entry(line.book_id.as_str()).or_default();
            *total = total.saturating_add(line.quantity.get());
        }
        for (book_id, quantity) in &needed {
            let Some(stock) = self.stock.get(*book_id) else {
                return Outcome::Refused { reason: format!("book {book_id} is not in the catalog") };
            };
            if stock.available < *quantity {
                let reason = match stock.available {
                    0 => format!("{} is sold out", stock.title),
                    1 => format!("only 1 copy of {} left", stock.title),
                    n => format!("only {n} copies of {} left", stock.title),
                };
                return Outcome::Refused { reason };
            }
        }
        for (book_id, quantity) in needed {
            if let Some(stock) = self.stock.get_mut(book_id) {
                stock.available -= quantity;
                stock.reserved += quantity;
            }
        }
        self.reservations.insert(order_id.to_owned(), lines.to_vec());
        Outcome::Reserved
    }

    fn commit(&mut self, order_id: &str) -> Outcome {
        match self.decision(order_id) {
            Some(Decision::Committed) => return Outcome::Committed,
            Some(Decision::Aborted) => return Outcome::Conflict { reason: "the order was aborted".to_owned() },
            None => {}
        }
        let Some(lines) = self.reservations.remove(order_id) else {
            return Outcome::Conflict { reason: "the order was never prepared here".to_owned() };
        };
        for line in &lines {
            if let Some(stock) = self.stock.get_mut(&line.book_id) {
                stock.reserved -= line.quantity.get();
                stock.sold += line.quantity.get();
            }
        }
        self.decisions.insert(order_id.to_owned(), Decision::Committed);
        Outcome::Committed
    }

    fn abort(&mut self, order_id: &str) -> Outcome {
        match self.decision(order_id) {
            Some(Decision::Aborted) => return Outcome::Aborted,
            Some(Decision::Committed) => return Outcome::Conflict { reason: "the order was committed".to_owned() },
            None => {}
        }
        if let Some(lines) = self.reservations.remove(order_id) {
            for line in &lines {
                if let Some(stock) = self.stock.get_mut(&line.book_id) {
                    stock.reserved -= line.quantity.get();
                    stock.available += line.quantity.get();
                }
            }
        }
        self.decisions.insert(order_id.to_owned(), Decision::Aborted);
        Outcome::Aborted
    }

    /// available + reserved + sold = initial for every book, and the reserved
    /// counts match the open reservations.
    fn consistent(&self) -> bool {
        let mut reserved: BTreeMap<&str, u32> = BTreeMap::new();
        for line in self.reservations.values().flatten() {
            *reserved.entry(line.book_id.as_str()).or_default() += line.quantity.get();
        }
        self.stock.iter().all(|(id, stock)| {
            stock.available + stock.reserved + stock.sold == stock.initial
                && stock.reserved == reserved.get(id.as_str()).copied().unwrap_or(0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(book_id: &str, quantity: u32) -> OrderLine {
        OrderLine { book_id: book_id.into(), quantity: domain::Quantity::new(quantity.into(), "quantity").unwrap() }
    }

    fn loaded() -> BooksState {
        let mut state = BooksState::default();
        state.apply(&Command::load(&Catalog::embedded()));
        state
    }

    fn prepare(order_id: &str, book_id: &str, quantity: u32) -> Command {
        Command::Prepare { order_id: order_id.into(), lines: vec![line(book_id, quantity)] }
    }

    fn commit(order_id: &str) -> Command {
        Command::Commit { order_id: order_id.into() }
    }

    fn abort(order_id: &str) -> Command {
        Command::Abort { order_id: order_id.into() }
    }

    #[test]
    fn prepare_reserves_and_commit_sells() {
        let mut state = loaded();
        assert_eq!(state.apply(&prepare("o1", "20", 2)), Outcome::Reserved);
        let stock = state.stock("20").unwrap();
        assert_eq!((stock.available, stock.reserved, stock.sold), (1, 2, 0));
        assert_eq!(state.apply(&commit("o1")), Outcome::Committed);
        let stock = state.stock("20").unwrap();
        assert_eq!((stock.available, stock.reserved, stock.sold), (1, 0, 2));
    }

    #[test]
    fn prepare_votes_no_with_the_shortfall_and_reserves_nothing() {
        let mut state = loaded();
        let order = Command::Prepare { order_id: "o1".into(), lines: vec![line("4", 1), line("20", 4)] };
        assert_eq!(state.apply(&order), Outcome::Refused { reason: "only 3 copies of Six of Crows left".into() });
        assert_eq!(state.stock("4").unwrap().available, 60, "all or nothing");
        assert_eq!(
            state.apply(&prepare("o2", "11", 1)),
            Outcome::Refused { reason: "Sunrise on the Reaping is sold out".into() }
        );
    }

    #[test]
    fn abort_returns_the_stock_and_a_late_prepare_votes_no() {
        let mut state = loaded();
        state.apply(&prepare("o1", "20", 3));
        assert_eq!(state.apply(&abort("o1")), Outcome::Aborted);
        assert_eq!(state.stock("20").unwrap().available, 3);
        assert_eq!(state.apply(&abort("o2")), Outcome::Aborted, "abort before prepare");
        assert!(matches!(state.apply(&prepare("o2", "20", 1)), Outcome::Refused { .. }));
        assert_eq!(state.stock("20").unwrap().available, 3);
    }

    #[test]
    fn every_command_is_idempotent_by_order_id() {
        let mut state = loaded();
        assert_eq!(state.apply(&prepare("o1", "20", 2)), Outcome::Reserved);
        assert_eq!(state.apply(&prepare("o1", "20", 2)), Outcome::Reserved);
        assert_eq!(state.stock("20").unwrap().available, 1, "reserved once");
        assert_eq!(state.apply(&commit("o1")), Outcome::Committed);
        assert_eq!(state.apply(&commit("o1")), Outcome::Committed);
        assert_eq!(state.apply(&prepare("o1", "20", 2)), Outcome::Reserved, "a decided order keeps its vote");
        assert_eq!(state.stock("20").unwrap().sold, 2, "sold once");
    }

    #[test]
    fn a_decided_order_cannot_change_its_decision() {
        let mut state = loaded();
        state.apply(&prepare("o1", "4", 1));
        state.apply(&commit("o1"));
        assert!(matches!(state.apply(&abort("o1")), Outcome::Conflict { .. }));
        state.apply(&prepare("o2", "4", 1));
        state.apply(&abort("o2"));
        assert!(matches!(state.apply(&commit("o2")), Outcome::Conflict { .. }));
        assert!(matches!(state.apply(&commit("never")), Outcome::Conflict { .. }));
        let stock = state.stock("4").unwrap();
        assert_eq!((stock.available, stock.sold), (59, 1));
    }

    #[test]
    fn stock_never_goes_negative_under_competing_orders() {
        let mut state = loaded();
        let outcomes: Vec<Outcome> = (0..5).map(|i| state.apply(&prepare(&format!("o{i}"), "20", 1))).collect();
        assert_eq!(outcomes.iter().filter(|o| **o == Outcome::Reserved).count(), 3);
        assert_eq!(state.stock("20").unwrap().available, 0);
    }

    #[test]
    fn reloading_the_catalog_changes_nothing_once_loaded() {
        let mut state = loaded();
        state.apply(&prepare("o1", "20", 1));
        state.apply(&commit("o1"));
        state.apply(&Command::load(&Catalog::embedded()));
        assert_eq!(state.stock("20").unwrap().available, 2);
    }

    #[test]
    fn replaying_the_same_commands_gives_the_same_state() {
        let commands = [
            Command::load(&Catalog::embedded()),
            prepare("o1", "20", 2),
            prepare("o2", "20", 2),
            abort("o1"),
            prepare("o3", "20", 3),
            commit("o3"),
        ];
        let mut first = BooksState::default();
        let mut second = BooksState::default();
        let a: Vec<Outcome> = commands.iter().map(|c| first.apply(c)).collect();
        let b: Vec<Outcome> = commands.iter().map(|c| second.apply(c)).collect();
        assert_eq!((a, &first), (b, &second));
        let restored: BooksState = serde_json::from_str(&serde_json::to_string(&first).unwrap()).unwrap();
        assert_eq!(restored, first, "a snapshot round-trips");
    }

    #[test]
    fn rotating_twice_forgets_a_decision_and_once_does_not() {
        let mut state = loaded();
        state.apply(&Command::Prepare { order_id: "o1".into(), lines: vec![line("1", 1)] });
        state.apply(&Command::Commit { order_id: "o1".into() });
        state.apply(&Command::Abort { order_id: "o2".into() });
        state.apply(&Command::Rotate);
        assert_eq!((state.decision("o1"), state.decision("o2")), (Some(Decision::Committed), Some(Decision::Aborted)));
        assert_eq!(state.apply(&Command::Commit { order_id: "o1".into() }), Outcome::Committed, "still idempotent");
        assert!(matches!(
            state.apply(&Command::Prepare { order_id: "o2".into(), lines: vec![] }),
            Outcome::Refused { .. }
        ));
        state.apply(&Command::Rotate);
        assert_eq!((state.decision("o1"), state.remembered_decisions()), (None, 0));
        assert_eq!(state.stock("1").map(|stock| stock.sold), Some(1), "what was sold stays sold");
    }
}
