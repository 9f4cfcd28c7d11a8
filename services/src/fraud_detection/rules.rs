//! The fraud rules behind events d and e. Blocklists and limits are configuration
//! (the seed's lists are the defaults); every refusal has a stable code and says
//! what the shopper can do.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use domain::card::{CardNumber, Cvv};
use domain::field::path;
use domain::order::{order_total, parse_lines, RawItem};
use domain::{Catalog, Email, Money, PersonName, ShippingMethod};
use proto::v1 as pb;

use super::velocity::{Settlement, SlidingWindow, Verdict};
use crate::refusal::RuleRefusal;
use platform::card_token::FingerprintKey;

#[derive(Debug, Clone)]
pub struct FraudConfig {
    /// Full names, compared case- and space-insensitively.
    pub blocked_names: Vec<String>,
    pub blocked_emails: Vec<String>,
    /// Card numbers (digits).
    pub blocked_cards: Vec<String>,
    pub blocked_cvvs: Vec<String>,
    /// Orders allowed per name, email and card within `velocity_window`.
    pub velocity_limit: u32,
    pub velocity_window: Duration,
    /// Orders above this total are refused.
    pub amount_ceiling: Money,
}

impl Default for FraudConfig {
    fn default() -> Self {
        let list = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        Self {
            blocked_names: list(&["John Doe", "Jane Doe", "Test User"]),
            blocked_emails: list(&["john.doe@example.com", "jane.doe@example.com", "test.user@example.com"]),
            blocked_cards: list(&["4111111111111111", "5500000000000004", "340000000000009"]),
            blocked_cvvs: list(&["000", "111", "123"]),
            velocity_limit: 5,
            velocity_window: Duration::from_secs(60),
            amount_ceiling: Money::from_cents(150_000),
        }
    }
}

fn normalize_name(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

const SUPPORT: &str = "If you think this is a mistake, write to support@tartu-books.example.";
const VELOCITY_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
enum Window {
    Buyer,
    Card,
}

struct Counted {
    at_ms: u64,
    keys: Vec<(Window, String)>,
}

/// "More than 5 orders from this buyer within 60 seconds; …": orders when every
/// checkout counted before was an approved order, checkout attempts otherwise.
fn velocity_message(only_orders: bool, retry_after: Duration, window: &SlidingWindow, whose: &str) -> String {
    let what = if only_orders { "orders" } else { "checkout attempts" };
    let seconds = retry_after.as_millis().div_ceil(1000).max(1);
    format!(
        "More than {} {what} {whose} within {} seconds; please try again in {seconds} second{}.",
        window.limit(),
        window.window().as_secs(),
        if seconds == 1 { "" } else { "s" }
    )
}

/// The rules with their state (the velocity windows).
pub struct FraudRules {
    blocked_names: HashSet<String>,
    blocked_emails: HashSet<String>,
    blocked_cards: HashSet<String>,
    blocked_cvvs: HashSet<String>,
    amount_ceiling: Money,
    per_buyer: SlidingWindow,
    per_card: SlidingWindow,
    /// The window keys each checkout not yet settled was counted under, so that
    /// [`FraudRules::settle`] finds them (bounded like the windows).
    counted: HashMap<String, Counted>,
    /// Velocity keys for cards are fingerprints under a key that lives only in
    /// this process, so the window never holds a card number.
    card_key: FingerprintKey,
}

impl FraudRules {
    pub fn new(config: &FraudConfig) -> Self {
        let set = |items: &[String], f: fn(&str) -> String| items.iter().map(|s| f(s)).collect();
        Self {
            blocked_names: set(&config.blocked_names, normalize_name),
            blocked_emails: set(&config.blocked_emails, |s| s.trim().to_lowercase()),
            blocked_cards: set(&config.blocked_cards, |s| s.chars().filter(char::is_ascii_digit).collect()),
            blocked_cvvs: set(&config.blocked_cvvs, |s| s.trim().to_owned()),
            amount_ceiling: config.amount_ceiling,
            per_buyer: SlidingWindow::new(config.velocity_window, config.velocity_limit, VELOCITY_KEYS),
            per_card: SlidingWindow::new(config.velocity_window, config.velocity_limit, VELOCITY_KEYS),
            card_key: FingerprintKey::random(),
            counted: HashMap::new(),
        }
    }

    /// Counts checkout `order_id` under `key` of the buyer or the card window.
    fn count(&mut self, window: Window, key: String, order_id: &str, now_ms: u64) -> Verdict {
        let verdict = match window {
            Window::Buyer => self.per_buyer.record(&key, order_id, now_ms),
            Window::Card => self.per_card.record(&key, order_id, now_ms),
        };
        if !self.counted.contains_key(order_id) && self.counted.len() >= VELOCITY_KEYS {
            // Checkouts whose clear_order never came: they stay counted in the
            // windows until they leave; only the index forgets them.
            let horizon = now_ms.saturating_sub(self.per_buyer.window().max(self.per_card.window()).as_millis() as u64);
            self.counted.retain(|_, counted| counted.at_ms > horizon);
            if self.counted.len() >= VELOCITY_KEYS {
                self.counted.clear();
            }
        }
        let counted = self.counted.entry(order_id.to_owned()).or_insert(Counted { at_ms: now_ms, keys: Vec::new() });
        counted.keys.push((window, key));
        verdict
    }

    /// The checkout `order_id` has ended: settle what it counted in the windows.
    pub fn settle(&mut self, order_id: &str, settlement: Settlement) {
        for (window, key) in self.counted.remove(order_id).map(|counted| counted.keys).unwrap_or_default() {
            match window {
                Window::Buyer => self.per_buyer.settle(&key, order_id, settlement),
                Window::Card => self.per_card.settle(&key, order_id, settlement),
            }
        }
    }

    /// Event d: the buyer.
    pub fn check_user(&mut self, order_id: &str, order: &pb::Order, now_ms: u64) -> Result<(), RuleRefusal> {
        let name = PersonName::parse(&order.name)?;
        let email = Email::parse(&order.email)?;
        if self.blocked_names.contains(&normalize_name(name.as_str())) {
            return Err(RuleRefusal::fraud(
                "user_blocklisted",
                format!("We cannot accept orders for this name. {SUPPORT}"),
                Some(path::NAME),
            ));
        }
        if self.blocked_emails.contains(&email.as_str().to_lowercase()) {
            return Err(RuleRefusal::fraud(
                "email_blocklisted",
                format!("We cannot accept orders from this email address. {SUPPORT}"),
                Some(path::CONTACT),
            ));
        }
        let by_name = self.count(Window::Buyer, format!("name:{}", normalize_name(name.as_str())), order_id, now_ms);
        let by_email = self.count(Window::Buyer, format!("email:{}", email.as_str().to_lowercase()), order_id, now_ms);
        for verdict in [by_name, by_email] {
            if let Verdict::Over { only_orders, retry_after } = verdict {
                return Err(RuleRefusal::fraud(
                    "user_velocity_exceeded",
                    velocity_message(only_orders, retry_after, &self.per_buyer, "from this buyer"),
                    Some(path::CONTACT),
                ));
            }
        }
        Ok(())
    }

    /// Event e: the card and the amount.
    pub fn check_card(
        &mut self,
        order_id: &str,
        order: &pb::Order,
        catalog: &Catalog,
        now_ms: u64,
    ) -> Result<(), RuleRefusal> {
        let card = order.card.clone().unwrap_or_default();
        let number = CardNumber::parse(&card.number)?;
        let cvv = Cvv::parse(&card.cvv, Some(number.network()))?;
        if self.blocked_cards.contains(number.expose_digits()) {
            return Err(RuleRefusal::fraud(
                "card_blocklisted",
                format!("This card cannot be used in our shop; please pay with another card. {SUPPORT}"),
                Some(path::CARD_NUMBER),
            ));
        }
        if self.blocked_cvvs.contains(cvv.expose()) {
            return Err(RuleRefusal::fraud(
                "cvv_blocklisted",
                "This security code is not accepted; check it, or pay with another card.",
                Some(path::CARD_CVV),
            ));
        }
        let raw: Vec<RawItem<'_>> =
            order.items.iter().map(|item| RawItem { id: &item.book_id, quantity: item.quantity }).collect();
        let lines = parse_lines(catalog, &raw)?;
        let shipping = ShippingMethod::parse(&order.shipping_method)?;
        let total = order_total(catalog, &lines, shipping, order.gift_wrapping);
        if total > self.amount_ceiling {
            return Err(RuleRefusal::fraud(
                "amount_over_limit",
                format!(
                    "Orders over {} need a manual review: split the order into smaller ones or contact us. (This one is {total}.)",
                    self.amount_ceiling
                ),
                Some(path::ITEMS),
            ));
        }
        let fingerprint = self.card_key.fingerprint(&number);
        if let Verdict::Over { only_orders, retry_after } = self.count(Window::Card, fingerprint, order_id, now_ms) {
            return Err(RuleRefusal::fraud(
                "card_velocity_exceeded",
                velocity_message(only_orders, retry_after, &self.per_card, "with this card"),
                Some(path::CARD_NUMBER),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(name: &str, email: &str, card: &str, cvv: &str) -> pb::Order {
        pb::Order {
            name: name.into(),
            email: email.into(),
            card: Some(pb::Card { number: card.into(), expiration_date: "12/30".into(), cvv: cvv.into() }),
            items: vec![pb::OrderItem { book_id: "4".into(), name: String::new(), quantity: 1 }],
            shipping_method: "Standard".into(),
            ..Default::default()
        }
    }

    fn seed() -> pb::Order {
        order("Simon Lawrence", "simon@example.org", "4716401589806287", "556")
    }

    #[test]
    fn passes_the_seed_buyer_and_card() {
        let mut rules = FraudRules::new(&FraudConfig::default());
        rules.check_user("o1", &seed(), 0).unwrap();
        rules.check_card("o1", &seed(), &Catalog::embedded(), 0).unwrap();
    }

    #[test]
    fn refuses_blocklisted_names_in_any_case_and_spacing() {
        let mut rules = FraudRules::new(&FraudConfig::default());
        let err = rules
            .check_user("o1", &order("  john   DOE ", "jd@example.org", "4716401589806287", "556"), 0)
            .unwrap_err();
        assert_eq!((err.code.as_str(), err.field.as_deref()), ("user_blocklisted", Some("user.name")));
    }

    #[test]
    fn refuses_blocklisted_emails() {
        let mut rules = FraudRules::new(&FraudConfig::default());
        let err = rules
            .check_user("o1", &order("Jay Dee", "Jane.Doe@Example.com", "4716401589806287", "556"), 0)
            .unwrap_err();
        assert_eq!(err.code, "email_blocklisted");
    }

    #[test]
    fn refuses_blocklisted_cards_and_cvvs() {
        let mut rules = FraudRules::new(&FraudConfig::default());
        let catalog = Catalog::embedded();
        let err =
            rules.check_card("o1", &order("A B", "a@b.org", "4111 1111 1111 1111", "556"), &catalog, 0).unwrap_err();
        assert_eq!((err.code.as_str(), err.field.as_deref()), ("card_blocklisted", Some("creditCard.number")));
        let err = rules.check_card("o1", &order("A B", "a@b.org", "340000000000009", "5566"), &catalog, 0).unwrap_err();
        assert_eq!(err.code, "card_blocklisted");
        let err = rules.check_card("o1", &order("A B", "a@b.org", "4716401589806287", "123"), &catalog, 0).unwrap_err();
        assert_eq!((err.code.as_str(), err.field.as_deref()), ("cvv_blocklisted", Some("creditCard.cvv")));
    }

    #[test]
    fn refuses_the_sixth_order_from_one_card_within_a_minute() {
        let mut rules = FraudRules::new(&FraudConfig::default());
        let catalog = Catalog::embedded();
        for i in 0..5 {
            rules.check_card(&format!("o{i}"), &seed(), &catalog, i * 1000).unwrap();
            rules.settle(&format!("o{i}"), Settlement::Order);
        }
        let err = rules.check_card("o6", &seed(), &catalog, 6000).unwrap_err();
        assert_eq!(err.code, "card_velocity_exceeded");
        assert_eq!(err.message, "More than 5 orders with this card within 60 seconds; please try again in 55 seconds.");
        rules.settle("o6", Settlement::Attempt);
        rules.check_card("o7", &seed(), &catalog, 6000 + 60_000).unwrap();
    }

    #[test]
    fn refuses_the_sixth_checkout_from_one_email_within_a_minute() {
        let mut rules = FraudRules::new(&FraudConfig::default());
        for i in 0..5 {
            rules.check_user(&format!("o{i}"), &seed(), i).unwrap();
        }
        let err = rules.check_user("o6", &seed(), 5).unwrap_err();
        assert_eq!((err.code.as_str(), err.class), ("user_velocity_exceeded", domain::RefusalClass::Fraud));
        assert!(err.message.starts_with("More than 5 checkout attempts from this buyer"), "{}", err.message);
    }

    #[test]
    fn checkouts_refused_for_input_do_not_count_and_fraud_refusals_do() {
        let mut rules = FraudRules::new(&FraudConfig::default());
        for i in 0..20 {
            let _ = rules.check_user(&format!("bad{i}"), &seed(), i);
            rules.settle(&format!("bad{i}"), Settlement::Withdrawn);
        }
        rules.check_user("good", &seed(), 30).expect("withdrawn checkouts leave no trace");
        for i in 0..5 {
            let _ = rules.check_user(&format!("fraud{i}"), &seed(), 40 + i);
            rules.settle(&format!("fraud{i}"), Settlement::Attempt);
        }
        assert_eq!(rules.check_user("next", &seed(), 50).unwrap_err().code, "user_velocity_exceeded");
    }

    #[test]
    fn refuses_orders_over_the_amount_ceiling() {
        let config = FraudConfig { amount_ceiling: Money::from_cents(5_000), ..FraudConfig::default() };
        let mut rules = FraudRules::new(&config);
        let mut big = seed();
        big.items[0].quantity = 5; // 5 × €10.99 + €4.99 shipping = €59.94
        let err = rules.check_card("o1", &big, &Catalog::embedded(), 0).unwrap_err();
        assert_eq!(err.code, "amount_over_limit");
        assert!(err.message.contains("€50.00") && err.message.contains("€59.94"), "{}", err.message);
    }
}
