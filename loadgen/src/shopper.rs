//! What each scenario sends: shoppers, their cards and their baskets, as the REST
//! API's JSON. Every choice comes from the request's number and the run's seed, so
//! a run can be repeated exactly.

use serde_json::{json, Value};

/// The scenarios, after the course's end-to-end tests and the load profiles of
/// Online Boutique and TeaStore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Distinct valid shoppers and cards: fraud velocity never fires.
    Good,
    /// Good orders with a share of fraudulent and of invalid ones among them.
    Mixed,
    /// Many buyers racing for the last copies of one book.
    Contended,
    /// Reads: the checkout page and orders' status.
    Browse,
}

/// What a checkout is meant to be, so its answer can be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Intent {
    /// Valid in every way: accepted unless stock runs out (any other refusal is
    /// wrong).
    Good,
    /// A blocklisted buyer or card: refused by fraud detection (403).
    Fraud,
    /// A card number that fails its checksum: refused as input (400).
    Invalid,
    /// One copy of the contended book.
    Contended,
}

impl Intent {
    /// The HTTP status this checkout must get, when only one is right.
    pub fn expected_status(self) -> Option<u16> {
        match self {
            Self::Fraud => Some(403),
            Self::Invalid => Some(400),
            Self::Good | Self::Contended => None,
        }
    }
}

/// A book of the catalog the load draws from.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Book {
    pub id: String,
    pub title: String,
    pub stock: u32,
}

/// How a scenario makes its checkouts.
#[derive(Debug, Clone)]
pub struct Plan {
    pub scenario: Scenario,
    pub seed: u64,
    /// Shares of fraudulent and invalid checkouts in `mixed`, 0 to 1.
    pub fraud_share: f64,
    pub invalid_share: f64,
    /// The books good checkouts buy from.
    pub books: Vec<Book>,
    /// The book `contended` races for.
    pub contended: Book,
}

/// One checkout to send.
#[derive(Debug, Clone)]
pub struct Checkout {
    pub intent: Intent,
    pub body: Value,
}

impl Plan {
    /// The `n`th checkout of the run.
    pub fn checkout(&self, n: u64) -> Checkout {
        let roll = unit(mix(self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        let intent = match self.scenario {
            Scenario::Contended => Intent::Contended,
            Scenario::Mixed if roll < self.fraud_share => Intent::Fraud,
            Scenario::Mixed if roll < self.fraud_share + self.invalid_share => Intent::Invalid,
            _ => Intent::Good,
        };
        let (book, quantity) = match intent {
            Intent::Contended => (&self.contended, 1),
            _ => (&self.books[(mix(self.seed.wrapping_add(n)) % self.books.len() as u64) as usize], 1),
        };
        // Who shops: distinct for every checkout of a run and, for seeds below
        // 1,000, across runs with different seeds, so runs one after another on the
        // same shop do not meet fraud detection's velocity limits with each other's
        // shoppers.
        let shopper = (self.seed % 1_000) * 10_000_000_000 + n;
        let mut name = format!("Load Shopper {}", letters(shopper));
        let mut card = card_number(shopper);
        match intent {
            // Half by the buyer, half by the card: both of fraud detection's checks.
            Intent::Fraud if n.is_multiple_of(2) => name = "John Doe".to_owned(),
            Intent::Fraud => card = "4111111111111111".to_owned(),
            Intent::Invalid => card = spoil_checksum(&card),
            Intent::Good | Intent::Contended => {}
        }
        let client_card = ["None", "Basic", "Premium"][(n % 3) as usize];
        let body = json!({
            "user": {"name": name, "contact": format!("shopper{shopper}@load.example.org")},
            "creditCard": {"number": card, "expirationDate": expiry(), "cvv": "556"},
            "items": [{"id": book.id, "name": book.title, "quantity": quantity}],
            "shippingMethod": "Standard",
            "clientCard": client_card,
            "billingAddress": {"street": "Narva mnt 18", "city": "Tartu", "state": "Tartumaa", "zip": "51009", "country": "Estonia"},
            "termsAccepted": true,
        });
        Checkout { intent, body }
    }
}

/// A Visa number of 16 digits, distinct for every `n` below 10¹³, that passes
/// Luhn and is on no blocklist and no declining list ("49…").
pub fn card_number(n: u64) -> String {
    let body = format!("49{:013}", n % 10_000_000_000_000);
    format!("{body}{}", luhn_digit(&body))
}

/// The check digit that makes `digits` followed by it pass Luhn.
fn luhn_digit(digits: &str) -> u32 {
    let sum: u32 = digits
        .chars()
        .rev()
        .filter_map(|c| c.to_digit(10))
        .enumerate()
        .map(|(i, d)| if i % 2 == 0 { [0, 2, 4, 6, 8, 1, 3, 5, 7, 9][d as usize] } else { d })
        .sum();
    (10 - sum % 10) % 10
}

/// The same number with its check digit off by one.
fn spoil_checksum(card: &str) -> String {
    let (body, check) = card.split_at(card.len() - 1);
    let check = check.parse::<u32>().unwrap_or(0);
    format!("{body}{}", (check + 1) % 10)
}

/// `n` in letters (a, b, …, z, ba, …), so names differ without digits in them.
fn letters(mut n: u64) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'a' + (n % 26) as u8);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    let mut name = String::from_utf8(out).unwrap_or_default();
    if let Some(first) = name.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    name
}

/// December of the year after next, as MM/YY: never in the past for a run.
fn expiry() -> String {
    let seconds = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let year = 1970 + seconds / 31_556_952;
    format!("12/{:02}", (year + 2) % 100)
}

/// splitmix64: a well-spread 64-bit hash.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A hash as a number in [0, 1).
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(scenario: Scenario) -> Plan {
        let book = |id: &str, stock| Book { id: id.into(), title: format!("Book {id}"), stock };
        Plan {
            scenario,
            seed: 7,
            fraud_share: 0.2,
            invalid_share: 0.1,
            books: vec![book("1", 1000), book("2", 1000)],
            contended: book("9", 3),
        }
    }

    #[test]
    fn cards_are_distinct_valid_and_of_no_list() {
        let cards: std::collections::BTreeSet<String> = (0..1000).map(card_number).collect();
        assert_eq!(cards.len(), 1000);
        for card in &cards {
            let number = domain::CardNumber::parse(card).unwrap_or_else(|e| panic!("{card}: {e:?}"));
            assert_eq!(number.last4().len(), 4);
            assert!(card.starts_with("49"));
        }
        assert!(domain::CardNumber::parse(&spoil_checksum(&card_number(5))).is_err());
    }

    #[test]
    fn a_mixed_run_has_its_shares_and_is_the_same_every_time() {
        let plan = plan(Scenario::Mixed);
        let intents: Vec<Intent> = (0..10_000).map(|n| plan.checkout(n).intent).collect();
        let share = |intent| intents.iter().filter(|i| **i == intent).count() as f64 / 10_000.0;
        assert!((share(Intent::Fraud) - 0.2).abs() < 0.02, "{}", share(Intent::Fraud));
        assert!((share(Intent::Invalid) - 0.1).abs() < 0.02, "{}", share(Intent::Invalid));
        let again: Vec<Intent> = (0..10_000).map(|n| plan.checkout(n).intent).collect();
        assert_eq!(intents, again);
    }

    #[test]
    fn good_shoppers_differ_and_contended_ones_want_the_one_book() {
        let plan = plan(Scenario::Good);
        let (a, b) = (plan.checkout(1).body, plan.checkout(2).body);
        assert_ne!(a["user"]["name"], b["user"]["name"]);
        assert_ne!(a["user"]["contact"], b["user"]["contact"]);
        assert_ne!(a["creditCard"]["number"], b["creditCard"]["number"]);
        let contended = super::Plan { scenario: Scenario::Contended, ..plan }.checkout(3);
        assert_eq!((contended.intent, &contended.body["items"][0]["id"]), (Intent::Contended, &json!("9")));
    }
}
