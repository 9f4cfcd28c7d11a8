//! The card issuer, simulated: it approves every authorization except for the
//! well-known test cards that decline, so the abort path can be shown. Payment
//! never sees card numbers, so the test cards are recognised by fingerprint under
//! the deployment's key.

use domain::CardNumber;

use super::ledger::Authorization;
use platform::card_token::FingerprintKey;

/// Test cards that decline, with the code and the reason a shopper is told.
pub const DECLINING_TEST_CARDS: [(&str, &str, &str); 2] = [
    ("4000000000000002", "card_declined", "card declined"),
    ("4000000000009995", "insufficient_funds", "insufficient funds"),
];

pub struct Issuer {
    /// (fingerprint, code, reason)
    declines: Vec<(String, &'static str, &'static str)>,
}

impl Issuer {
    pub fn new(key: &FingerprintKey) -> Self {
        let declines = DECLINING_TEST_CARDS
            .iter()
            .filter_map(|(number, code, reason)| {
                CardNumber::parse(number).ok().map(|card| (key.fingerprint(&card), *code, *reason))
            })
            .collect();
        Self { declines }
    }

    pub fn authorize(&self, fingerprint: &str) -> Authorization {
        match self.declines.iter().find(|(print, _, _)| print == fingerprint) {
            Some((_, code, reason)) => {
                Authorization::Declined { code: (*code).to_owned(), reason: (*reason).to_owned() }
            }
            None => Authorization::Approved,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declines_the_test_cards_and_approves_others() {
        let key = FingerprintKey::new("k");
        let issuer = Issuer::new(&key);
        assert_eq!(DECLINING_TEST_CARDS.len(), issuer.declines.len(), "every test card parses");
        let print = |number: &str| key.fingerprint(&CardNumber::parse(number).unwrap());
        assert!(
            matches!(issuer.authorize(&print("4000000000000002")), Authorization::Declined { code, .. } if code == "card_declined")
        );
        assert!(
            matches!(issuer.authorize(&print("4000000000009995")), Authorization::Declined { code, .. } if code == "insufficient_funds")
        );
        assert_eq!(issuer.authorize(&print("4716401589806287")), Authorization::Approved);
    }
}
