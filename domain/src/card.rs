//! Payment card details: number, CVV and expiry, each parsed once at the edge.
//!
//! The full card number leaves this module only through
//! [`CardNumber::expose_digits`], whose name makes every such use visible in review.
//! `Debug` and `Display` show the last four digits at most; the CVV never shows.

use std::fmt;

use crate::calendar::YearMonth;
use crate::field::{path, FieldError};

/// The card networks the shop accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardNetwork {
    Visa,
    Mastercard,
    Amex,
    Discover,
}

impl CardNetwork {
    /// The network a card number belongs to, from its leading digits (IIN ranges).
    pub fn from_prefix(digits: &str) -> Option<Self> {
        let prefix = |n: usize| digits.get(..n).and_then(|p| p.parse::<u32>().ok());
        if digits.starts_with('4') {
            return Some(Self::Visa);
        }
        if matches!(prefix(2), Some(34 | 37)) {
            return Some(Self::Amex);
        }
        if matches!(prefix(2), Some(51..=55)) || matches!(prefix(4), Some(2221..=2720)) {
            return Some(Self::Mastercard);
        }
        if prefix(4) == Some(6011) || matches!(prefix(3), Some(644..=649)) || prefix(2) == Some(65) {
            return Some(Self::Discover);
        }
        None
    }

    /// The lengths a number of this network may have.
    pub fn lengths(self) -> &'static [usize] {
        match self {
            Self::Visa => &[13, 16, 19],
            Self::Mastercard => &[16],
            Self::Amex => &[15],
            Self::Discover => &[16, 19],
        }
    }

    /// How many digits the card's security code has.
    pub fn cvv_length(self) -> usize {
        match self {
            Self::Amex => 4,
            _ => 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Visa => "Visa",
            Self::Mastercard => "Mastercard",
            Self::Amex => "American Express",
            Self::Discover => "Discover",
        }
    }

    /// A stable lower-case identifier, for protocols and data files.
    pub fn code(self) -> &'static str {
        match self {
            Self::Visa => "visa",
            Self::Mastercard => "mastercard",
            Self::Amex => "amex",
            Self::Discover => "discover",
        }
    }
}

impl fmt::Display for CardNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A card number that has a known network, the right length for it and a valid Luhn
/// check digit.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CardNumber {
    digits: String,
    network: CardNetwork,
}

impl CardNumber {
    /// Parses what a shopper typed: digits, optionally grouped with spaces or dashes.
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let err = |code, message: String| Err(FieldError::new(path::CARD_NUMBER, code, message));
        let compact: String = input.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if compact.is_empty() {
            return err("missing", "Enter the card number.".into());
        }
        if !compact.chars().all(|c| c.is_ascii_digit()) {
            return err("invalid_characters", "A card number has only digits (spaces between groups are fine).".into());
        }
        if compact.len() > 19 {
            return err("wrong_length", "A card number has at most 19 digits.".into());
        }
        let Some(network) = CardNetwork::from_prefix(&compact) else {
            return err(
                "unsupported_network",
                "We accept Visa, Mastercard, American Express and Discover; this number \
                 belongs to none of them."
                    .into(),
            );
        };
        if !network.lengths().contains(&compact.len()) {
            let allowed = network.lengths().iter().map(usize::to_string).collect::<Vec<_>>();
            return err(
                "wrong_length",
                format!("A {network} card number has {} digits; this one has {}.", join_or(&allowed), compact.len()),
            );
        }
        if !luhn_valid(&compact) {
            return err("checksum", "This card number is not valid: check it for a typo.".into());
        }
        Ok(Self { digits: compact, network })
    }

    pub fn network(&self) -> CardNetwork {
        self.network
    }

    /// The last four digits, the most of a card number that may be shown or logged.
    pub fn last4(&self) -> &str {
        &self.digits[self.digits.len() - 4..]
    }

    /// The whole number. Only for handing the card to a service that must check or
    /// charge it; never log, store or display what this returns.
    pub fn expose_digits(&self) -> &str {
        &self.digits
    }

    /// `Visa •••• 6287`
    pub fn masked(&self) -> String {
        format!("{} •••• {}", self.network, self.last4())
    }
}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardNumber({})", self.masked())
    }
}

/// True when `digits` are ASCII digits that pass the Luhn (mod 10) check; false
/// for anything else, empty text included.
pub fn luhn_valid(digits: &str) -> bool {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// A card security code of the length the card's network requires. Never stored,
/// never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Cvv(String);

impl Cvv {
    /// Parses a CVV for a card of `network`; `None` when the network is not known yet
    /// (the number itself is wrong), in which case 3 or 4 digits are accepted.
    pub fn parse(input: &str, network: Option<CardNetwork>) -> Result<Self, FieldError> {
        let err = |code, message: String| Err(FieldError::new(path::CARD_CVV, code, message));
        let cvv = input.trim();
        if cvv.is_empty() {
            return err("missing", "Enter the security code from the back of the card.".into());
        }
        if !cvv.chars().all(|c| c.is_ascii_digit()) {
            return err("invalid_characters", "The security code has only digits.".into());
        }
        let ok = match network {
            Some(network) => cvv.len() == network.cvv_length(),
            None => matches!(cvv.len(), 3 | 4),
        };
        if !ok {
            let message = match network {
                Some(CardNetwork::Amex) => {
                    "An American Express security code has 4 digits, on the front of the card.".to_owned()
                }
                Some(network) => {
                    format!("A {network} security code has {} digits, on the back of the card.", network.cvv_length())
                }
                None => "The security code has 3 or 4 digits.".to_owned(),
            };
            return err("wrong_length", message);
        }
        Ok(Self(cvv.to_owned()))
    }

    /// The code itself, for the one comparison that needs it. Never store or log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Cvv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cvv(***)")
    }
}

/// A card's expiry month. The card is valid through the last day of that month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry(YearMonth);

impl Expiry {
    /// Parses `MM/YY` and refuses a month already over on `today`.
    pub fn parse(input: &str, today: YearMonth) -> Result<Self, FieldError> {
        let err = |code, message: String| Err(FieldError::new(path::CARD_EXPIRY, code, message));
        let text = input.trim();
        if text.is_empty() {
            return err("missing", "Enter the expiry date as MM/YY.".into());
        }
        let Some((mm, yy)) = text.split_once('/') else {
            return err("bad_format", "Enter the expiry date as MM/YY, for example 08/29.".into());
        };
        let (mm, yy) = (mm.trim(), yy.trim());
        let two_digits = |s: &str| s.len() == 2 && s.chars().all(|c| c.is_ascii_digit());
        if !two_digits(mm) || !two_digits(yy) {
            return err("bad_format", "Enter the expiry date as MM/YY, for example 08/29.".into());
        }
        let month: u8 = mm.parse().unwrap_or(0);
        let year = 2000 + yy.parse::<u16>().unwrap_or(0);
        let Some(expiry) = YearMonth::new(year, month) else {
            return err("bad_month", format!("{mm} is not a month: use 01 to 12."));
        };
        if expiry < today {
            return err("expired", format!("This card expired at the end of {expiry}; use another card."));
        }
        Ok(Self(expiry))
    }

    pub fn month(self) -> YearMonth {
        self.0
    }
}

impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> YearMonth {
        YearMonth::new(2026, 11).unwrap()
    }

    #[test]
    fn luhn_accepts_valid_and_refuses_altered_numbers() {
        assert!(luhn_valid("4716401589806287"));
        assert!(luhn_valid("4111111111111111"));
        assert!(luhn_valid("340000000000009"));
        assert!(!luhn_valid("4716401589806288"));
        assert!(!luhn_valid("4716401589806278"), "a transposition changes the sum");
        assert!(!luhn_valid(""));
        // Found by the property tests: anything but a digit made the sum underflow.
        assert!(!luhn_valid(" "));
        assert!(!luhn_valid("4716 4015 8980 6287"), "grouped: CardNumber::parse takes the spaces out first");
        assert!(!luhn_valid("０"), "a full-width digit is not an ASCII one");
    }

    #[test]
    fn parses_the_seed_card_with_spaces() {
        let card = CardNumber::parse("4716 4015 8980 6287").unwrap();
        assert_eq!(card.network(), CardNetwork::Visa);
        assert_eq!(card.last4(), "6287");
        assert_eq!(card.expose_digits(), "4716401589806287");
    }

    #[test]
    fn detects_networks_from_prefixes() {
        assert_eq!(CardNumber::parse("5500000000000004").unwrap().network(), CardNetwork::Mastercard);
        assert_eq!(CardNumber::parse("2221000000000009").unwrap().network(), CardNetwork::Mastercard);
        assert_eq!(CardNumber::parse("340000000000009").unwrap().network(), CardNetwork::Amex);
        assert_eq!(CardNumber::parse("6011111111111117").unwrap().network(), CardNetwork::Discover);
    }

    #[test]
    fn refuses_luhn_failure_naming_the_field() {
        let err = CardNumber::parse("4716401589806288").unwrap_err();
        assert_eq!(err.field, path::CARD_NUMBER);
        assert_eq!(err.code, "checksum");
    }

    #[test]
    fn refuses_wrong_length_for_the_network() {
        let err = CardNumber::parse("471640158980628").unwrap_err();
        assert_eq!(err.code, "wrong_length");
        assert!(err.message.contains("13, 16 or 19"), "{}", err.message);
    }

    #[test]
    fn refuses_unknown_network_letters_and_empty() {
        assert_eq!(CardNumber::parse("9999999999999995").unwrap_err().code, "unsupported_network");
        assert_eq!(CardNumber::parse("4716-4015-89x0-6287").unwrap_err().code, "invalid_characters");
        assert_eq!(CardNumber::parse("   ").unwrap_err().code, "missing");
    }

    #[test]
    fn debug_shows_only_the_last_four_digits() {
        let card = CardNumber::parse("4716401589806287").unwrap();
        let shown = format!("{card:?}");
        assert!(!shown.contains("4716401589806287"));
        assert!(shown.contains("6287"));
        assert_eq!(format!("{:?}", Cvv::parse("556", Some(CardNetwork::Visa)).unwrap()), "Cvv(***)");
    }

    #[test]
    fn cvv_length_follows_the_network() {
        assert!(Cvv::parse("556", Some(CardNetwork::Visa)).is_ok());
        assert_eq!(Cvv::parse("5566", Some(CardNetwork::Visa)).unwrap_err().code, "wrong_length");
        assert!(Cvv::parse("5566", Some(CardNetwork::Amex)).is_ok());
        assert_eq!(Cvv::parse("556", Some(CardNetwork::Amex)).unwrap_err().code, "wrong_length");
        assert_eq!(Cvv::parse("", Some(CardNetwork::Visa)).unwrap_err().code, "missing");
        assert_eq!(Cvv::parse("5a6", None).unwrap_err().code, "invalid_characters");
    }

    #[test]
    fn expiry_in_the_current_month_is_still_valid() {
        assert_eq!(Expiry::parse("11/26", today()).unwrap().to_string(), "11/26");
    }

    #[test]
    fn expiry_last_month_is_expired() {
        let err = Expiry::parse("10/26", today()).unwrap_err();
        assert_eq!(err.code, "expired");
        assert_eq!(err.field, path::CARD_EXPIRY);
    }

    #[test]
    fn expiry_month_twelve_is_valid_and_thirteen_is_not() {
        assert!(Expiry::parse("12/26", today()).is_ok());
        assert!(Expiry::parse("12/26", YearMonth::new(2026, 12).unwrap()).is_ok());
        assert_eq!(Expiry::parse("12/26", YearMonth::new(2027, 1).unwrap()).unwrap_err().code, "expired");
        assert_eq!(Expiry::parse("13/27", today()).unwrap_err().code, "bad_month");
        assert_eq!(Expiry::parse("00/27", today()).unwrap_err().code, "bad_month");
    }

    #[test]
    fn expiry_needs_mm_slash_yy() {
        for input in ["1226", "1/26", "12/2026", "ab/cd", "12-26"] {
            assert_eq!(Expiry::parse(input, today()).unwrap_err().code, "bad_format", "{input}");
        }
        assert_eq!(Expiry::parse(" 08 / 29 ", today()).unwrap().to_string(), "08/29");
    }
}
