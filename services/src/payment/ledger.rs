//! The payment ledger: one record per order, in a redb database, every change
//! committed (fsync'd) before it answers; changes arriving together share one
//! transaction (group commit, `storage::GroupCommit`). The state machine of a
//! payment:
//!
//! ```text
//! (none) ──prepare──▶ authorized ──commit──▶ captured
//!    │                    │
//!    │ prepare (declined) └──abort──▶ voided
//!    ▼
//! declined        (none) ──abort──▶ voided   (a late prepare then votes no)
//! ```
//!
//! Every transition is idempotent by order id, and a captured payment can neither
//! be voided nor captured again: an order is charged at most once. Records hold the
//! card's network and last four digits, never the number or the CVV.
//!
//! A record that is final (captured, voided, declined) is kept for the retention
//! window (`crate::retention`), then forgotten ([`Ledger::forget`]), so the file
//! holds about a window of orders, not every order ever. An authorized hold waits
//! for its decision however long that takes.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use storage::GroupCommit;

const PAYMENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("payments");
/// (When its payment became final (Unix ms), order id): by time, so forgetting
/// reads only what is out of the window. A payment is final once and stays so,
/// so each order is here once.
const FINISHED: TableDefinition<(u64, &str), ()> = TableDefinition::new("finished");

/// The layout of the ledger's file: order id → its `Payment` as JSON (version 1),
/// and since version 2 the `finished` table. A version 0 or 1 file gains it when
/// opened: its final payments count as finished then, and are forgotten a window
/// later.
const FORMAT: storage::Format = storage::Format { kind: "payment", version: 2 };

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentState {
    Authorized,
    Captured,
    Voided,
    Declined,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub order_id: String,
    pub state: PaymentState,
    pub amount_cents: u64,
    pub card_network: String,
    pub card_last4: String,
    pub captures: u32,
    /// Why it was declined or voided, for the shopper.
    pub reason: String,
    /// Stable code of `reason`.
    pub code: String,
}

/// What the card issuer says about an authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    Approved,
    Declined { code: String, reason: String },
}

/// The card and amount to authorize.
#[derive(Debug, Clone)]
pub struct Hold {
    pub order_id: String,
    pub amount_cents: u64,
    pub card_network: String,
    pub card_last4: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("payment storage failed: {0}")]
    Storage(String),
    #[error("no payment for order {0}")]
    Unknown(String),
    #[error("order {order_id}'s payment is {state:?}; it cannot be {action}")]
    Conflict { order_id: String, state: PaymentState, action: &'static str },
}

storage::redb_errors_into!(LedgerError, |error| LedgerError::Storage(error.to_string()));

impl From<serde_json::Error> for LedgerError {
    fn from(error: serde_json::Error) -> Self {
        Self::Storage(error.to_string())
    }
}

/// A payment as a call left it, and whether that call changed it (a repeated
/// call, idempotent, changes nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub payment: Payment,
    pub changed: bool,
}

pub struct Ledger {
    db: Arc<Database>,
    writer: GroupCommit,
}

impl Ledger {
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let db = storage::open(path, FORMAT, |txn, held| {
            let payments = txn.open_table(PAYMENTS)?;
            let mut finished = txn.open_table(FINISHED)?;
            if held < 2 {
                let now = platform::clock::unix_ms();
                for row in payments.iter()? {
                    let (order_id, record) = row?;
                    let payment: Payment = serde_json::from_slice(record.value())
                        .map_err(|error| redb::Error::Corrupted(format!("payment {}: {error}", order_id.value())))?;
                    if is_final(payment.state) {
                        finished.insert((now, order_id.value()), ())?;
                    }
                }
            }
            Ok(())
        })
        .map_err(|error| LedgerError::Storage(format!("{}: {error}", path.display())))?;
        let db = Arc::new(db);
        let writer = GroupCommit::start(Arc::clone(&db), "payment")
            .map_err(|error| LedgerError::Storage(format!("starting the writer: {error}")))?;
        Ok(Self { db, writer })
    }

    pub fn get(&self, order_id: &str) -> Result<Option<Payment>, LedgerError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(PAYMENTS)?;
        let record = table.get(order_id)?;
        Ok(match record {
            Some(bytes) => Some(serde_json::from_slice(bytes.value())?),
            None => None,
        })
    }

    /// Reads the record, lets `change` decide the new one, writes it if it
    /// changed; answers once the transaction holding it is committed.
    async fn update(
        &self,
        order_id: &str,
        mut change: impl FnMut(Option<Payment>) -> Result<Payment, LedgerError> + Send + 'static,
    ) -> Result<Recorded, LedgerError> {
        let order_id = order_id.to_owned();
        self.writer
            .write(move |txn| {
                let mut table = txn.open_table(PAYMENTS)?;
                let current: Option<Payment> = match table.get(order_id.as_str())? {
                    Some(bytes) => Some(serde_json::from_slice(bytes.value())?),
                    None => None,
                };
                let next = change(current.clone())?;
                let changed = current.as_ref() != Some(&next);
                if changed {
                    table.insert(order_id.as_str(), serde_json::to_vec(&next)?.as_slice())?;
                    if is_final(next.state) {
                        txn.open_table(FINISHED)?.insert((platform::clock::unix_ms(), order_id.as_str()), ())?;
                    }
                }
                Ok(Recorded { payment: next, changed })
            })
            .await
    }

    /// Phase one: authorize a hold (or vote no). `authorize` is asked only the
    /// first time; a repeated prepare answers what the first one decided.
    pub async fn prepare(
        &self,
        hold: Hold,
        authorize: impl FnOnce() -> Authorization + Send + 'static,
    ) -> Result<Recorded, LedgerError> {
        // The write may run twice (group commit reruns a failed batch one by one):
        // the issuer is still asked once.
        let mut authorize = Some(authorize);
        let mut answer: Option<Authorization> = None;
        let order_id = hold.order_id.clone();
        self.update(&order_id, move |current| {
            Ok(prepared(current, &hold, || {
                answer.get_or_insert_with(|| (authorize.take().expect("asked once"))()).clone()
            }))
        })
        .await
    }

    /// Phase two, commit: capture the hold, once.
    pub async fn commit(&self, order_id: &str) -> Result<Recorded, LedgerError> {
        let id = order_id.to_owned();
        self.update(order_id, move |current| captured(&id, current)).await
    }

    /// Forgets the payments that became final before `before_ms` (Unix ms);
    /// answers how many. A decision repeated after that would find no record: the
    /// retention window must outlast any retry (they end within seconds).
    pub async fn forget(&self, before_ms: u64) -> Result<u64, LedgerError> {
        self.writer
            .write(move |txn| {
                let mut finished = txn.open_table(FINISHED)?;
                let mut payments = txn.open_table(PAYMENTS)?;
                let mut forgotten = 0;
                for row in finished.extract_from_if((0, "")..(before_ms, ""), |_, _| true)? {
                    let (key, _) = row?;
                    payments.remove(key.value().1)?;
                    forgotten += 1;
                }
                Ok(forgotten)
            })
            .await
    }

    /// Phase two, abort: release the hold. Aborting an order never prepared here
    /// records it as voided, so a prepare arriving late votes no.
    pub async fn abort(&self, order_id: &str) -> Result<Recorded, LedgerError> {
        let id = order_id.to_owned();
        self.update(order_id, move |current| voided(&id, current)).await
    }
}

// The ledger's transitions, each from the record as it is (if any) to the record as
// it must be, or why not: pure, so the simulation of the execution protocol
// (`order_executor::simulation`) runs the same rules without the file.

/// Phase one: the record a prepare leaves. An order with a record keeps it (a
/// repeated prepare answers what the first decided, and one arriving after an
/// abort finds it voided); `authorize` is asked only when there is none.
pub(crate) fn prepared(current: Option<Payment>, hold: &Hold, authorize: impl FnOnce() -> Authorization) -> Payment {
    if let Some(existing) = current {
        return existing;
    }
    let (state, code, reason) = match authorize() {
        Authorization::Approved => (PaymentState::Authorized, String::new(), String::new()),
        Authorization::Declined { code, reason } => (PaymentState::Declined, code, reason),
    };
    Payment {
        order_id: hold.order_id.clone(),
        state,
        amount_cents: hold.amount_cents,
        card_network: hold.card_network.clone(),
        card_last4: hold.card_last4.clone(),
        captures: 0,
        reason,
        code,
    }
}

/// Whether a payment in `state` is settled for good: nothing changes it again.
fn is_final(state: PaymentState) -> bool {
    !matches!(state, PaymentState::Authorized)
}

/// Whether a prepare that left `payment` votes yes.
pub(crate) fn votes_yes(payment: &Payment) -> bool {
    matches!(payment.state, PaymentState::Authorized | PaymentState::Captured)
}

/// Commit: an authorized hold is captured, once; a captured one stays as it is.
pub(crate) fn captured(order_id: &str, current: Option<Payment>) -> Result<Payment, LedgerError> {
    let payment = current.ok_or_else(|| LedgerError::Unknown(order_id.to_owned()))?;
    match payment.state {
        PaymentState::Authorized => Ok(Payment { state: PaymentState::Captured, captures: 1, ..payment }),
        PaymentState::Captured => Ok(payment),
        state => Err(LedgerError::Conflict { order_id: order_id.to_owned(), state, action: "captured" }),
    }
}

/// Abort: a hold is voided; an order never prepared here is recorded voided, so a
/// late prepare votes no; a captured payment is never voided.
pub(crate) fn voided(order_id: &str, current: Option<Payment>) -> Result<Payment, LedgerError> {
    match current {
        None => Ok(Payment {
            order_id: order_id.to_owned(),
            state: PaymentState::Voided,
            amount_cents: 0,
            card_network: String::new(),
            card_last4: String::new(),
            captures: 0,
            reason: "the order was aborted before payment was prepared".to_owned(),
            code: "voided".to_owned(),
        }),
        Some(payment) => match payment.state {
            PaymentState::Authorized => Ok(Payment {
                state: PaymentState::Voided,
                reason: "the order was aborted".to_owned(),
                code: "voided".to_owned(),
                ..payment
            }),
            PaymentState::Voided | PaymentState::Declined => Ok(payment),
            PaymentState::Captured => Err(LedgerError::Conflict {
                order_id: order_id.to_owned(),
                state: PaymentState::Captured,
                action: "voided",
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(order_id: &str) -> Hold {
        Hold { order_id: order_id.into(), amount_cents: 3497, card_network: "visa".into(), card_last4: "6287".into() }
    }

    fn ledger(dir: &tempfile::TempDir) -> Ledger {
        Ledger::open(&dir.path().join("payments.redb")).unwrap()
    }

    #[tokio::test]
    async fn authorizes_then_captures_exactly_once() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = ledger(&dir);
        assert_eq!(
            ledger.prepare(hold("o1"), || Authorization::Approved).await.unwrap().payment.state,
            PaymentState::Authorized
        );
        let captured = ledger.commit("o1").await.unwrap();
        assert_eq!(
            (captured.payment.state, captured.payment.captures, captured.changed),
            (PaymentState::Captured, 1, true)
        );
        let again = ledger.commit("o1").await.unwrap();
        assert_eq!((again.payment.captures, again.changed), (1, false), "a repeated commit charges nothing more");
        assert!(
            matches!(ledger.abort("o1").await, Err(LedgerError::Conflict { .. })),
            "a captured payment is never voided"
        );
    }

    #[tokio::test]
    async fn a_repeated_prepare_answers_the_first_decision_without_asking_again() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = ledger(&dir);
        let declined = || Authorization::Declined { code: "card_declined".into(), reason: "card declined".into() };
        assert_eq!(ledger.prepare(hold("o1"), declined).await.unwrap().payment.state, PaymentState::Declined);
        let again = ledger.prepare(hold("o1"), || panic!("the issuer is asked once")).await.unwrap();
        assert_eq!((again.payment.state, again.payment.reason.as_str()), (PaymentState::Declined, "card declined"));
        assert!(!again.changed);
        assert!(matches!(ledger.commit("o1").await, Err(LedgerError::Conflict { .. })));
        assert_eq!(ledger.abort("o1").await.unwrap().payment.state, PaymentState::Declined);
    }

    #[tokio::test]
    async fn abort_voids_a_hold_and_an_abort_before_prepare_blocks_a_late_prepare() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = ledger(&dir);
        ledger.prepare(hold("o1"), || Authorization::Approved).await.unwrap();
        assert_eq!(ledger.abort("o1").await.unwrap().payment.state, PaymentState::Voided);
        assert_eq!(ledger.abort("o1").await.unwrap().payment.state, PaymentState::Voided);
        assert_eq!(ledger.abort("o2").await.unwrap().payment.state, PaymentState::Voided);
        let late = ledger.prepare(hold("o2"), || Authorization::Approved).await.unwrap();
        assert_eq!(late.payment.state, PaymentState::Voided, "a late prepare votes no");
        assert!(matches!(ledger.commit("o3").await, Err(LedgerError::Unknown(_))));
    }

    #[tokio::test]
    async fn final_payments_are_forgotten_after_the_window_and_holds_never() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = ledger(&dir);
        for id in ["captured", "voided", "held"] {
            ledger.prepare(hold(id), || Authorization::Approved).await.unwrap();
        }
        let declined = || Authorization::Declined { code: "card_declined".into(), reason: "card declined".into() };
        ledger.prepare(hold("declined"), declined).await.unwrap();
        ledger.commit("captured").await.unwrap();
        ledger.abort("voided").await.unwrap();
        let before = platform::clock::unix_ms().saturating_sub(60_000);
        assert_eq!(ledger.forget(before).await.unwrap(), 0, "nothing finished a minute ago");
        assert_eq!(ledger.forget(u64::MAX).await.unwrap(), 3);
        let kept = ["captured", "voided", "declined", "held"].map(|id| ledger.get(id).unwrap().map(|p| p.state));
        assert_eq!(kept, [None, None, None, Some(PaymentState::Authorized)], "an open hold waits for its decision");
        assert_eq!(ledger.forget(u64::MAX).await.unwrap(), 0);
        ledger.commit("held").await.unwrap();
        assert_eq!(ledger.forget(u64::MAX).await.unwrap(), 1, "once decided, it goes too");
    }

    #[tokio::test]
    async fn the_ledger_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let ledger = ledger(&dir);
            ledger.prepare(hold("o1"), || Authorization::Approved).await.unwrap();
            ledger.commit("o1").await.unwrap();
        }
        let ledger = ledger(&dir);
        let payment = ledger.get("o1").unwrap().unwrap();
        assert_eq!((payment.state, payment.captures, payment.card_last4.as_str()), (PaymentState::Captured, 1, "6287"));
    }
}
