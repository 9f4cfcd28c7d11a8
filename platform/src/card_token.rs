//! Recognising a card without keeping its number: a keyed fingerprint.
//!
//! The queue, the executors and payment need to know *which* card an order uses
//! (to charge it, to count its orders) but must never hold the number. They get
//! the network, the last four digits and HMAC-SHA256(number) under a key only the
//! deployment knows; without the key the fingerprint reveals nothing.

use domain::CardNumber;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The key used when `CARD_FINGERPRINT_KEY` is not set: fine on a laptop, and the
/// operator guide says to set a secret one anywhere else.
pub const DEVELOPMENT_KEY: &str = "bookstore-development-fingerprint-key";

/// A fingerprint key; its `Debug` hides the key.
#[derive(Clone)]
pub struct FingerprintKey(Vec<u8>);

impl FingerprintKey {
    pub fn new(key: impl AsRef<[u8]>) -> Self {
        Self(key.as_ref().to_vec())
    }

    /// A random key for fingerprints that only live in one process's memory.
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().as_bytes().to_vec())
    }

    /// Hex HMAC-SHA256 of the card's digits.
    pub fn fingerprint(&self, card: &CardNumber) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(card.expose_digits().as_bytes());
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The card as the queue may hold it.
    pub fn token(&self, card: &CardNumber, expiry: domain::Expiry) -> proto::v1::CardToken {
        proto::v1::CardToken {
            network: card.network().code().to_owned(),
            last4: card.last4().to_owned(),
            fingerprint: self.fingerprint(card),
            expiry: expiry.to_string(),
        }
    }
}

impl std::fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FingerprintKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_stable_per_key_and_never_contain_the_number() {
        let card = CardNumber::parse("4716401589806287").unwrap();
        let key = FingerprintKey::new("k1");
        let print = key.fingerprint(&card);
        assert_eq!(print, key.fingerprint(&card));
        assert_eq!(print.len(), 64);
        assert!(!print.contains("4716401589806287"));
        assert_ne!(print, FingerprintKey::new("k2").fingerprint(&card));
    }
}
