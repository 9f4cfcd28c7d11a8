//! The checkout request and its answer, as the REST API, the server function and
//! the page's form exchange them (the seed's `bookstore.yaml`, camelCase JSON).
//!
//! These are the *raw* shapes: strings as typed. Every rule lives in the parsing
//! types of this crate and runs in transaction_verification; the page runs the same
//! functions as the shopper types.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::card::CardNumber;
use crate::order::{ClientCard, ShippingMethod};
use crate::refusal::Refusal;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CheckoutRequest {
    pub user: UserInput,
    pub credit_card: CardInput,
    pub user_comment: String,
    pub items: Vec<ItemInput>,
    pub discount_code: String,
    /// Absent: [`ShippingMethod::DEFAULT`]. Present, it must name a method: a
    /// blank value is refused, not guessed.
    pub shipping_method: Option<String>,
    /// Absent: [`ClientCard::DEFAULT`]. Present, it must name a card.
    pub client_card: Option<String>,
    pub gift_message: String,
    pub billing_address: AddressInput,
    pub gift_wrapping: bool,
    /// Absent, each entry point decides: the REST API takes it as accepted (an API
    /// client collected the consent; the seed's contract has no such field), the
    /// page's server function as not accepted (its box must be ticked).
    pub terms_accepted: Option<bool>,
    pub notification_preferences: Vec<String>,
    pub device: Option<DeviceInput>,
    pub browser: Option<BrowserInput>,
    pub app_version: String,
    pub screen_resolution: String,
    pub referrer: String,
    pub device_language: String,
}

impl CheckoutRequest {
    /// The shipping method as sent, or the default's name when it was left out.
    pub fn shipping_method_or_default(&self) -> &str {
        self.shipping_method.as_deref().unwrap_or(ShippingMethod::DEFAULT.as_str())
    }

    /// The client card as sent, or the default's name when it was left out.
    pub fn client_card_or_default(&self) -> &str {
        self.client_card.as_deref().unwrap_or(ClientCard::DEFAULT.as_str())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserInput {
    pub name: String,
    /// The shopper's email address.
    pub contact: String,
}

/// Card details as typed. `Debug` shows the last four digits and hides the CVV.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CardInput {
    pub number: String,
    pub expiration_date: String,
    pub cvv: String,
}

impl fmt::Debug for CardInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardInput")
            .field("number", &mask_card_text(&self.number))
            .field("expiration_date", &self.expiration_date)
            .field("cvv", &"***")
            .finish()
    }
}

/// What may be shown of a card number that may not even be valid: its last four
/// digits at most.
pub fn mask_card_text(text: &str) -> String {
    match CardNumber::parse(text) {
        Ok(card) => card.masked(),
        Err(_) => {
            let digits: Vec<char> = text.chars().filter(char::is_ascii_digit).collect();
            let tail: String = digits[digits.len().saturating_sub(4)..].iter().collect();
            format!("•••• {tail} ({} digits)", digits.len())
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ItemInput {
    pub id: String,
    pub name: String,
    pub quantity: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AddressInput {
    pub street: String,
    pub city: String,
    pub state: String,
    pub zip: String,
    pub country: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceInput {
    #[serde(rename = "type")]
    pub kind: String,
    pub model: String,
    pub os: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BrowserInput {
    pub name: String,
    pub version: String,
}

/// A book suggested with an approved order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SuggestedBook {
    pub book_id: String,
    pub title: String,
    pub author: String,
}

/// The answer to an approved checkout: the REST API's 200 body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovedOrder {
    pub order_id: String,
    /// `queued`: the order waits for execution.
    pub status: String,
    pub suggested_books: Vec<SuggestedBook>,
}

/// How a checkout ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CheckoutOutcome {
    Approved(ApprovedOrder),
    Refused(Refusal),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_seed_json_and_ignores_unknown_fields() {
        let json = r#"{
            "user": {"name": "Simon Lawrence", "contact": "simon@example.org"},
            "creditCard": {"number": "4716401589806287", "expirationDate": "12/30", "cvv": "556"},
            "items": [{"id": "4", "name": "The Hunger Games", "quantity": 1}],
            "billingAddress": {"street": "Narva mnt 18", "city": "Tartu", "zip": "51009", "country": "Estonia"},
            "termsAccepted": true, "shippingMethod": "Express", "somethingNew": 42,
            "device": {"type": "Smartphone", "model": "Pixel", "os": "Android"}
        }"#;
        let request: CheckoutRequest = serde_json::from_str(json).unwrap();
        assert_eq!(request.credit_card.expiration_date, "12/30");
        assert_eq!(request.items[0].quantity, 1);
        assert_eq!(request.device.as_ref().unwrap().kind, "Smartphone");
        assert_eq!(request.client_card, None, "optional fields may be missing");
        assert_eq!(request.client_card_or_default(), "None");
    }

    #[test]
    fn debug_never_shows_the_whole_card_or_the_cvv() {
        let card = CardInput { number: "4716401589806287".into(), expiration_date: "12/30".into(), cvv: "556".into() };
        let shown = format!("{card:?}");
        assert!(!shown.contains("4716401589806287") && !shown.contains("556"), "{shown}");
        assert!(shown.contains("6287"));
        let invalid = CardInput { number: "4716401589806288".into(), ..card };
        let shown = format!("{invalid:?}");
        assert!(!shown.contains("4716401589806288") && shown.contains("6288"), "{shown}");
    }
}
