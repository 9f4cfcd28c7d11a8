//! The shoppers, what they were told (the history), and the checker that reads
//! the shop's end state against it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use proto::v1 as pb;
use serde_json::{json, Value};
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::nemesis::{Chance, Fault};

/// The book buyers race for: 3 copies in the load catalog.
pub const CONTENDED: &str = "20";
/// Test cards the issuer declines.
const DECLINING: [&str; 2] = ["4000000000000002", "4000000000009995"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A valid order of a book with stock to spare.
    Good,
    /// A valid order paid with a card the issuer declines: never committed.
    Declined,
    /// One copy of the contended book.
    Contended,
}

/// One checkout and what the shop answered.
#[derive(Debug, Clone)]
pub struct Call {
    pub n: u64,
    pub kind: Kind,
    pub lines: Vec<(String, u32)>,
    pub sent: Duration,
    pub answered: Duration,
    /// The HTTP status; 0 if no answer came.
    pub status: u16,
    pub order_id: Option<String>,
    /// The refusal's step and code (`error.step`, `error.code`).
    pub refusal: Option<(String, String)>,
    /// What is wrong with the answer itself (not the one error shape, …).
    pub malformed: Option<String>,
}

impl Call {
    /// Answered 503 `order_unconfirmed`: it may or may not have gone through.
    pub fn unconfirmed(&self) -> bool {
        self.refusal.as_ref().is_some_and(|(_, code)| code == "order_unconfirmed")
    }
}

/// Posts `orders` checkouts at `rate` a second from `origin`, each on its own
/// (an open loop: a slow answer does not slow the next), and answers the history.
pub async fn shoppers(web: String, orders: u64, rate: f64, seed: u64, origin: Instant) -> Vec<Call> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("an HTTP client");
    let mut chance = Chance(seed);
    let mut calls = Vec::new();
    for n in 0..orders {
        let roll = chance.below(100);
        let kind = match roll {
            0..=9 => Kind::Declined,
            10..=24 => Kind::Contended,
            _ => Kind::Good,
        };
        let lines = match kind {
            Kind::Contended => vec![(CONTENDED.to_owned(), 1)],
            // Books 1–19 and 21–23 of the load catalog, 100,000 copies each.
            _ => {
                let book = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 23]
                    [chance.below(21) as usize];
                vec![(book.to_string(), 1 + chance.below(2) as u32)]
            }
        };
        let card = match kind {
            Kind::Declined => DECLINING[(n % 2) as usize].to_owned(),
            _ => card_number(seed, n),
        };
        let body = checkout(seed, n, &card, &lines);
        let at = origin + Duration::from_secs_f64(n as f64 / rate);
        let (client, url) = (client.clone(), format!("{web}/checkout"));
        calls.push(tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let sent = origin.elapsed();
            let answer = client.post(&url).json(&body).send().await;
            let (status, body) = match answer {
                Ok(answer) => (answer.status().as_u16(), answer.json::<Value>().await.ok()),
                Err(_) => (0, None),
            };
            let mut call = Call {
                n,
                kind,
                lines,
                sent,
                answered: origin.elapsed(),
                status,
                order_id: None,
                refusal: None,
                malformed: None,
            };
            read_answer(&mut call, body);
            call
        }));
    }
    let mut history = Vec::new();
    for call in calls {
        history.push(call.await.expect("a shopper"));
    }
    history
}

/// Reads the answer's body into `call`: a queued order's id, or the refusal in
/// the one error shape.
fn read_answer(call: &mut Call, body: Option<Value>) {
    let Some(body) = body else {
        if call.status != 0 {
            call.malformed = Some(format!("{}: not JSON", call.status));
        }
        return;
    };
    match call.status {
        200 => match (body["orderId"].as_str(), body["status"].as_str()) {
            (Some(id), Some("queued")) => call.order_id = Some(id.to_owned()),
            _ => call.malformed = Some(format!("200 without an order id and \"queued\": {body}")),
        },
        400 | 403 | 409 | 503 => {
            let error = &body["error"];
            match (error["step"].as_str(), error["code"].as_str(), error["message"].as_str()) {
                (Some(step), Some(code), Some(_)) => call.refusal = Some((step.to_owned(), code.to_owned())),
                _ => call.malformed = Some(format!("{}: not the error shape: {body}", call.status)),
            }
        }
        other => call.malformed = Some(format!("{other}: {body}")),
    }
}

/// A checkout by shopper `n` of the run (its own name, e-mail and card, so fraud
/// detection's velocity limits never meet two shoppers).
pub fn checkout(seed: u64, n: u64, card: &str, lines: &[(String, u32)]) -> Value {
    let shopper = format!("{}{n}", seed % 1_000);
    let name: String = shopper.bytes().map(|digit| char::from(b'a' + (digit - b'0'))).collect();
    let items: Vec<Value> = lines
        .iter()
        .map(|(id, quantity)| json!({"id": id, "name": format!("book {id}"), "quantity": quantity}))
        .collect();
    let client_card = ["None", "Basic", "Premium"][(n % 3) as usize];
    json!({
        "user": {"name": format!("Chaos Shopper {name}"), "contact": format!("chaos{shopper}@chaos.example.org")},
        "creditCard": {"number": card, "expirationDate": "12/39", "cvv": "737"},
        "items": items,
        "shippingMethod": "Standard",
        "clientCard": client_card,
        "billingAddress": {"street": "Narva mnt 18", "city": "Tartu", "state": "Tartumaa", "zip": "51009", "country": "Estonia"},
        "termsAccepted": true,
    })
}

/// A Visa number for shopper `n`: "48", the run and the shopper, and the digit
/// that makes it pass Luhn (found by domain's own check).
pub fn card_number(seed: u64, n: u64) -> String {
    let body = format!("48{:03}{:010}", seed % 1_000, n);
    (0..10)
        .map(|digit| format!("{body}{digit}"))
        .find(|number| domain::card::luhn_valid(number))
        .expect("one digit passes Luhn")
}

/// What the shop ended with.
pub struct EndState {
    /// Each queued order's status on each executor replica (1, 2, 3).
    pub statuses: BTreeMap<String, Vec<Option<pb::OrderStatusResponse>>>,
    pub payments: BTreeMap<String, Option<pb::PaymentRecord>>,
    /// Each books_db replica's stock, by book.
    pub stock: Vec<BTreeMap<String, pb::BookStock>>,
    /// How long after the faults stopped the last queued order was final, or
    /// `None` if some were not within the bound.
    pub settled_after: Option<Duration>,
}

fn channel(url: &str) -> Channel {
    Channel::from_shared(url.to_owned()).expect("a URL").connect_lazy()
}

/// Waits up to `bound` for every queued order to be final on every executor
/// replica, then reads the end state.
pub async fn settle(
    executors: &[String],
    payment: &str,
    books_db: &[String],
    calls: &[Call],
    bound: Duration,
) -> EndState {
    let executors: Vec<_> =
        executors.iter().map(|url| pb::order_executor_client::OrderExecutorClient::new(channel(url))).collect();
    let queued: Vec<&String> = calls.iter().filter_map(|call| call.order_id.as_ref()).collect();
    let is_final = |seen: &Vec<Option<pb::OrderStatusResponse>>| {
        seen.iter().all(|s| {
            s.as_ref().is_some_and(|s| matches!(s.status(), pb::OrderState::Committed | pb::OrderState::Aborted))
        })
    };
    let calm = Instant::now();
    // An order final on every replica stays so; only the others are asked again.
    let mut statuses: BTreeMap<String, Vec<Option<pb::OrderStatusResponse>>> = BTreeMap::new();
    let settled_after = loop {
        for id in &queued {
            if statuses.get(*id).is_some_and(is_final) {
                continue;
            }
            let mut seen = Vec::new();
            for executor in &executors {
                let request = pb::OrderStatusRequest { order_id: (*id).clone() };
                seen.push(executor.clone().order_status(request).await.ok().map(tonic::Response::into_inner));
            }
            statuses.insert((*id).clone(), seen);
        }
        if statuses.values().all(is_final) {
            break Some(calm.elapsed());
        }
        if calm.elapsed() > bound {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let payment = pb::payment_client::PaymentClient::new(channel(payment));
    let mut payments = BTreeMap::new();
    for id in &queued {
        let record = payment.clone().get(pb::PaymentDecision { order_id: (*id).clone() }).await;
        payments.insert((*id).clone(), record.ok().map(tonic::Response::into_inner));
    }
    let mut stock = Vec::new();
    for url in books_db {
        let mut client = pb::books_db_client::BooksDbClient::new(channel(url));
        let books = client
            .stock(pb::StockRequest { book_ids: Vec::new(), local: true })
            .await
            .map(|answer| answer.into_inner().books)
            .unwrap_or_default();
        stock.push(books.into_iter().map(|book| (book.book_id.clone(), book)).collect());
    }
    EndState { statuses, payments, stock, settled_after }
}

/// The checker: every promise, from the shopper's view and the operator's.
pub fn check(calls: &[Call], end: &EndState) -> Vec<String> {
    let mut violations = Vec::new();
    let mut bought: BTreeMap<&str, u32> = BTreeMap::new();
    // What checkouts answered "unconfirmed" asked for: they may have gone through.
    let mut unconfirmed: BTreeMap<&str, u32> = BTreeMap::new();
    for call in calls.iter().filter(|call| call.unconfirmed()) {
        for (book, quantity) in &call.lines {
            *unconfirmed.entry(book.as_str()).or_default() += quantity;
        }
    }
    for call in calls {
        if let Some(problem) = &call.malformed {
            violations.push(format!("checkout {} at {:.2} s: {problem}", call.n, call.sent.as_secs_f64()));
        }
        if call.status == 0 {
            violations.push(format!("checkout {} at {:.2} s: no answer", call.n, call.sent.as_secs_f64()));
        }
        let Some(id) = &call.order_id else { continue };
        let seen = &end.statuses[id];
        let states: Vec<Option<pb::OrderState>> = seen.iter().map(|s| s.as_ref().map(|s| s.status())).collect();
        let committed = states.iter().all(|s| *s == Some(pb::OrderState::Committed));
        let aborted = states.iter().all(|s| *s == Some(pb::OrderState::Aborted));
        if !committed && !aborted {
            violations.push(format!("order {id} (checkout {}): the executors hold {states:?}", call.n));
            continue;
        }
        let payment = end.payments[id].as_ref().map(|p| (p.state(), p.captures));
        if committed {
            for (book, quantity) in &call.lines {
                *bought.entry(book.as_str()).or_default() += quantity;
            }
            if payment != Some((pb::PaymentState::Captured, 1)) {
                violations.push(format!("order {id} committed, its payment is {payment:?}"));
            }
            if call.kind == Kind::Declined {
                violations.push(format!("order {id} committed with a declined card"));
            }
        } else if payment.is_some_and(|(_, captures)| captures > 0) {
            violations.push(format!("order {id} aborted, its payment is {payment:?}"));
        }
    }
    for (replica, books) in end.stock.iter().enumerate() {
        if books.is_empty() {
            violations.push(format!("books_db-{} gave no stock", replica + 1));
        }
        for (id, book) in books {
            let expected = bought.get(id.as_str()).copied().unwrap_or(0);
            let perhaps = unconfirmed.get(id.as_str()).copied().unwrap_or(0);
            if book.reserved != 0 || book.available + book.reserved + book.sold != book.initial {
                violations.push(format!("books_db-{}: book {id} does not add up: {book:?}", replica + 1));
            }
            if book.sold < expected || book.sold > expected + perhaps {
                let refused = if book.sold > expected { ": an order a shopper was refused was committed" } else { "" };
                violations.push(format!(
                    "books_db-{}: book {id} sold {}; the orders answered \"queued\" that committed bought {expected}, \
                     unconfirmed ones asked for {perhaps}{refused}",
                    replica + 1,
                    book.sold,
                ));
            }
        }
        if replica > 0 && *books != end.stock[0] {
            violations.push(format!("books_db-{} differs from books_db-1", replica + 1));
        }
    }
    violations
}

/// The counts of a run, and for violations the fault schedule.
pub fn report(calls: &[Call], faults: &[Fault], end: &EndState, violations: &[String], partitions: &str) -> String {
    let mut text = String::new();
    let mut by_kind: BTreeMap<(Kind, u16), u64> = BTreeMap::new();
    for call in calls {
        *by_kind.entry((call.kind, call.status)).or_default() += 1;
    }
    let queued = calls.iter().filter(|call| call.order_id.is_some()).count();
    let committed = end
        .statuses
        .values()
        .filter(|seen| seen.iter().all(|s| s.as_ref().is_some_and(|s| s.status() == pb::OrderState::Committed)))
        .count();
    let _ = writeln!(text, "chaos: {} checkouts, {queued} queued, {committed} committed", calls.len());
    let _ = writeln!(text, "  answers by kind and status: {by_kind:?}");
    let _ = writeln!(text, "  {} faults; partitions: {partitions}", faults.len());
    // Each 503 is laid at the door of the fault in force when it was sent, or
    // the last one to heal within 5 s before; after each fault, how long until
    // the first checkout sent after it healed was queued.
    let blamed = |call: &Call| {
        faults.iter().rev().find(|f| f.began <= call.sent && call.sent <= f.healed + Duration::from_secs(5))
    };
    let name =
        |fault: &Fault| format!("{} {}{}", fault.kind, fault.target.group(), if fault.leader { " leader" } else { "" });
    #[derive(Default)]
    struct Row {
        faults: u32,
        refused: u32,
        recovery: Vec<f64>,
        /// From the fault's start to the first checkout sent since then that was
        /// queued: how long checkouts could not be placed (for a kill, down time,
        /// restart and recovery together).
        window: Vec<f64>,
    }
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    for fault in faults {
        let row = rows.entry(name(fault)).or_default();
        row.faults += 1;
        // How long from `since` until a checkout sent since then was queued.
        let queued_after = |since: Duration| {
            let first = calls.iter().filter(|call| call.status == 200 && call.sent >= since).map(|call| call.answered);
            first.min().map(|first| (first - since).as_secs_f64())
        };
        row.recovery.extend(queued_after(fault.healed));
        row.window.extend(queued_after(fault.began));
    }
    let mut unblamed = 0;
    for call in calls.iter().filter(|call| call.status == 503) {
        match blamed(call) {
            Some(fault) => rows.entry(name(fault)).or_default().refused += 1,
            None => unblamed += 1,
        }
    }
    let total_503 = calls.iter().filter(|call| call.status == 503).count();
    let unconfirmed = calls.iter().filter(|call| call.unconfirmed()).count();
    let _ = writeln!(
        text,
        "  503s: {total_503} ({unblamed} with no fault in force or just healed; {unconfirmed} unconfirmed)"
    );
    let _ = writeln!(
        text,
        "  {:<38} {:>6} {:>5}  {:<32}  first checkout queued after it began",
        "fault", "count", "503s", "first checkout queued after it healed"
    );
    let spread = |seconds: &mut Vec<f64>| {
        seconds.sort_by(f64::total_cmp);
        match (seconds.get(seconds.len() / 2), seconds.last()) {
            (Some(median), Some(max)) => format!("median {median:.2} s, max {max:.2} s"),
            _ => "none after it".to_owned(),
        }
    };
    for (fault, row) in &mut rows {
        let (recovery, window) = (spread(&mut row.recovery), spread(&mut row.window));
        let _ = writeln!(text, "  {fault:<38} {:>6} {:>5}  {recovery:<32}  {window}", row.faults, row.refused);
    }
    match end.settled_after {
        Some(after) => {
            let _ = writeln!(text, "  every queued order final {:.1} s after the faults stopped", after.as_secs_f64());
        }
        None => {
            let _ = writeln!(text, "  NOT every queued order was final within the bound");
        }
    }
    let _ = writeln!(text, "  violations: {}", violations.len());
    if !violations.is_empty() {
        for violation in violations.iter().take(40) {
            let _ = writeln!(text, "    {violation}");
        }
        let _ = writeln!(text, "  the fault schedule:");
        for fault in faults {
            let _ = writeln!(text, "    {fault}{}", if fault.not_back { "  NOT BACK" } else { "" });
        }
    }
    text
}
