//! Seals on the links the server writes and reads back later, so that a link it
//! did not write is not believed.
//!
//! Without JavaScript a checkout ends on `/checkout/result?…`, rendered from the
//! query alone (the server keeps no session). Unsealed, anyone could craft such a
//! link that shows any message on the shop's own page ("call this number to fix
//! your payment"). The server seals the query it writes with an HMAC-SHA256 under
//! the deployment's secret, and the page shows an outcome only when the seal
//! matches.
//!
//! The secret is the card fingerprint key (`CARD_FINGERPRINT_KEY`), kept apart by a
//! label that begins every sealed message: a card number's digits never begin
//! with it, so a seal is never a card fingerprint and the reverse. Without that
//! key the server seals with a random key of its own process (`startup.rs`): the
//! development key is public, and links then last until a restart.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What every sealed message starts with.
const LABEL: &[u8] = b"bookstore result link v1\n";

/// The seal's length: the first 16 bytes of the MAC (128 bits), as 32 hex digits.
const SEAL_BYTES: usize = 16;

/// Seals under one secret; its `Debug` hides the secret.
#[derive(Clone)]
pub struct LinkSeal(Vec<u8>);

impl LinkSeal {
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        Self(secret.as_ref().to_vec())
    }

    fn mac(&self, text: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(LABEL);
        mac.update(text.as_bytes());
        mac
    }

    /// The seal of `text`: 32 lowercase hex digits.
    pub fn seal(&self, text: &str) -> String {
        self.mac(text).finalize().into_bytes()[..SEAL_BYTES].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `seal` is the seal of `text` (compared in constant time). Any other
    /// input, however malformed, is simply not a match.
    pub fn verifies(&self, text: &str, seal: &str) -> bool {
        let Some(bytes) = decode_hex(seal).filter(|bytes| bytes.len() == SEAL_BYTES) else {
            return false;
        };
        self.mac(text).verify_truncated_left(&bytes).is_ok()
    }
}

impl std::fmt::Debug for LinkSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSeal(..)")
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.is_ascii() || !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|at| u8::from_str_radix(&text[at..at + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUERY: &str = "step=check_user&service=fraud_detection&class=fraud&code=blocked_name&message=Refused";

    #[test]
    fn a_seal_verifies_its_own_text_only() {
        let key = LinkSeal::new("secret");
        let seal = key.seal(QUERY);
        assert_eq!(seal.len(), 32);
        assert!(seal.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{seal}");
        assert!(key.verifies(QUERY, &seal));
        assert!(!key.verifies(&QUERY.replace("Refused", "Call 555-0100 to unblock your card"), &seal));
        assert!(!LinkSeal::new("another secret").verifies(QUERY, &seal), "another deployment's seal");
    }

    #[test]
    fn malformed_seals_are_refused_without_panicking() {
        let key = LinkSeal::new("secret");
        let seal = key.seal(QUERY);
        for bad in ["", "0", "zz", &seal[..30], &format!("{seal}00"), &seal.replace(&seal[..2], "é"), "ünïcödé"] {
            assert!(!key.verifies(QUERY, bad), "{bad:?}");
        }
        assert!(key.verifies(QUERY, &seal.to_uppercase()), "hex digits in either case");
    }

    #[test]
    fn a_seal_is_not_a_card_fingerprint() {
        let secret = "secret";
        let card = domain::CardNumber::parse("4716401589806287").unwrap();
        let fingerprint = platform::card_token::FingerprintKey::new(secret).fingerprint(&card);
        assert_ne!(LinkSeal::new(secret).seal(card.expose_digits()), fingerprint[..32]);
    }
}
