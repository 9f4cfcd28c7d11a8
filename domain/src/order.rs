//! What is ordered and how it ships: lines, quantities, shipping, client card, price.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::catalog::{BookId, Catalog};
use crate::field::{path, FieldError};
use crate::money::Money;

/// The longest order id anyone accepts (ids are UUIDs, 36 characters).
pub const ORDER_ID_MAX_LEN: usize = 64;

/// Whether `id` can be an order id: 1 to [`ORDER_ID_MAX_LEN`] bytes. Every service
/// checks ids it is sent with this before storing or forwarding them.
pub fn is_order_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= ORDER_ID_MAX_LEN
}

/// Copies of one book in one order: 1 to 100. Read from JSON (a Raft log entry,
/// a snapshot) the same way, so no file can hold one out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32")]
pub struct Quantity(u32);

impl TryFrom<u32> for Quantity {
    type Error = FieldError;

    fn try_from(value: u32) -> Result<Self, FieldError> {
        Self::new(i64::from(value), "quantity")
    }
}

impl Quantity {
    pub const MAX: u32 = 100;

    pub fn new(value: i64, field: impl Into<String>) -> Result<Self, FieldError> {
        match u32::try_from(value) {
            Ok(n) if (1..=Self::MAX).contains(&n) => Ok(Self(n)),
            _ => Err(FieldError::new(
                field,
                "quantity_out_of_range",
                format!("Order between 1 and {} copies of a book; {value} is not possible.", Self::MAX),
            )),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// A line of an order as it arrives, before checking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawItem<'a> {
    pub id: &'a str,
    pub quantity: i64,
}

/// A checked order line: a book the catalog has, in an allowed quantity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub book_id: BookId,
    pub quantity: Quantity,
}

/// The most lines one order may have.
pub const MAX_LINES: usize = 50;

/// Checks the order's lines against the catalog: at least one line, at most
/// [`MAX_LINES`], every book known, each book once, quantities in range. Stock is a
/// separate check: it changes while the catalog does not.
pub fn parse_lines(catalog: &Catalog, items: &[RawItem<'_>]) -> Result<Vec<OrderLine>, FieldError> {
    if items.is_empty() {
        return Err(FieldError::new(path::ITEMS, "empty_order", "Add at least one book to the order."));
    }
    if items.len() > MAX_LINES {
        return Err(FieldError::new(
            path::ITEMS,
            "too_many_lines",
            format!("An order may hold at most {MAX_LINES} different books."),
        ));
    }
    let mut seen = HashSet::new();
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let id = item.id.trim();
            if catalog.get(id).is_none() {
                return Err(FieldError::new(
                    path::item_id(index),
                    "unknown_book",
                    // Never the id itself: a refusal's message must not repeat what the
                    // shopper typed (it may end up on the shop's own result page).
                    format!("Book {} of the order is not in our catalog; remove it from the order.", index + 1),
                ));
            }
            if !seen.insert(id) {
                return Err(FieldError::new(
                    path::item_id(index),
                    "duplicate_book",
                    "This book is in the order twice; change the quantity of one line instead.",
                ));
            }
            let quantity = Quantity::new(item.quantity, path::item_quantity(index))?;
            Ok(OrderLine { book_id: id.to_owned(), quantity })
        })
        .collect()
}

/// How the order ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ShippingMethod {
    Standard,
    Express,
    NextDay,
}

impl ShippingMethod {
    pub const ALL: [Self; 3] = [Self::Standard, Self::Express, Self::NextDay];
    /// What an order that names no shipping method gets.
    pub const DEFAULT: Self = Self::Standard;

    /// Accepts the names the page and the seed use (`Standard`, `Express`,
    /// `Next-Day`), in any case. A blank value is refused: a missing field is the
    /// caller's to default ([`Self::DEFAULT`]), a blank one is a mistake.
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        match input.trim().to_ascii_lowercase().as_str() {
            "" => Err(FieldError::new(
                path::SHIPPING_METHOD,
                "blank_shipping_method",
                "Choose Standard, Express or Next-Day shipping (or leave the field out for Standard).",
            )),
            "standard" => Ok(Self::Standard),
            "express" => Ok(Self::Express),
            "next-day" | "nextday" | "next_day" | "next day" => Ok(Self::NextDay),
            _ => Err(FieldError::new(
                path::SHIPPING_METHOD,
                "unknown_shipping_method",
                "Choose Standard, Express or Next-Day shipping.",
            )),
        }
    }

    /// The canonical name, as sent over the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "Standard",
            Self::Express => "Express",
            Self::NextDay => "Next-Day",
        }
    }

    pub fn cost(self) -> Money {
        Money::from_cents(match self {
            Self::Standard => 499,
            Self::Express => 999,
            Self::NextDay => 1999,
        })
    }

    pub fn delivery(self) -> &'static str {
        match self {
            Self::Standard => "3–5 working days",
            Self::Express => "1–2 working days",
            Self::NextDay => "next working day",
        }
    }
}

impl fmt::Display for ShippingMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The shopper's loyalty card; it sets the order's queue priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClientCard {
    None,
    Basic,
    Premium,
}

impl ClientCard {
    pub const ALL: [Self; 3] = [Self::None, Self::Basic, Self::Premium];
    /// What an order that names no client card gets.
    pub const DEFAULT: Self = Self::None;

    /// Accepts `None`, `Basic`, `Premium` in any case. Anything else, a blank value
    /// included, is refused rather than guessed ([`Self::DEFAULT`] is for a field
    /// left out).
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        match input.trim().to_ascii_lowercase().as_str() {
            "" => Err(FieldError::new(
                path::CLIENT_CARD,
                "blank_client_card",
                "Choose None, Basic or Premium as the client card (or leave the field out for None).",
            )),
            "none" => Ok(Self::None),
            "basic" => Ok(Self::Basic),
            "premium" => Ok(Self::Premium),
            _ => Err(FieldError::new(
                path::CLIENT_CARD,
                "unknown_client_card",
                "Choose None, Basic or Premium as the client card.",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Basic => "Basic",
            Self::Premium => "Premium",
        }
    }

    /// Queue rank: 0 is served first.
    pub fn queue_rank(self) -> u8 {
        match self {
            Self::Premium => 0,
            Self::Basic => 1,
            Self::None => 2,
        }
    }

    pub fn from_queue_rank(rank: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|card| card.queue_rank() == rank)
    }
}

impl fmt::Display for ClientCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What gift wrapping adds to an order.
pub const GIFT_WRAPPING: Money = Money::from_cents(399);

/// The price of an order: books, shipping and gift wrapping. Lines whose book the
/// catalog does not know count as zero (they are refused before anyone pays).
pub fn order_total(catalog: &Catalog, lines: &[OrderLine], shipping: ShippingMethod, gift_wrapping: bool) -> Money {
    let books: Money = lines
        .iter()
        .filter_map(|line| catalog.get(&line.book_id).map(|book| book.price().times(line.quantity.get())))
        .sum();
    books + shipping.cost() + if gift_wrapping { GIFT_WRAPPING } else { Money::ZERO }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(id: &str, quantity: i64) -> RawItem<'_> {
        RawItem { id, quantity }
    }

    #[test]
    fn quantities_from_1_to_100_are_allowed() {
        assert_eq!(Quantity::new(1, "q").unwrap().get(), 1);
        assert_eq!(Quantity::new(100, "q").unwrap().get(), 100);
        for bad in [0, -1, 101, i64::MAX, i64::MIN] {
            assert_eq!(Quantity::new(bad, "q").unwrap_err().code, "quantity_out_of_range", "{bad}");
        }
    }

    #[test]
    fn parses_the_seed_order() {
        let lines = parse_lines(&Catalog::embedded(), &[raw("4", 1), raw("1", 1)]).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].book_id, "4");
    }

    #[test]
    fn names_the_line_with_an_unknown_book_or_bad_quantity() {
        let catalog = Catalog::embedded();
        let err = parse_lines(&catalog, &[raw("4", 1), raw("404", 1)]).unwrap_err();
        assert_eq!((err.field.as_str(), err.code.as_str()), ("items[1].id", "unknown_book"));
        assert_eq!(err.message, "Book 2 of the order is not in our catalog; remove it from the order.");
        let crafted = "Your card is blocked: call 555-0100";
        let err = parse_lines(&catalog, &[raw(crafted, 1)]).unwrap_err();
        assert!(!err.message.contains("555-0100"), "a message never repeats what the shopper typed: {err:?}");
        let err = parse_lines(&catalog, &[raw("4", 101)]).unwrap_err();
        assert_eq!((err.field.as_str(), err.code.as_str()), ("items[0].quantity", "quantity_out_of_range"));
        let err = parse_lines(&catalog, &[raw("4", 1), raw("4", 2)]).unwrap_err();
        assert_eq!(err.code, "duplicate_book");
        assert_eq!(parse_lines(&catalog, &[]).unwrap_err().code, "empty_order");
    }

    #[test]
    fn shipping_and_client_card_accept_known_names_only_and_refuse_blanks() {
        assert_eq!(ShippingMethod::parse("next-day").unwrap(), ShippingMethod::NextDay);
        let blank = ShippingMethod::parse("  ").unwrap_err();
        assert_eq!((blank.field.as_str(), blank.code.as_str()), (path::SHIPPING_METHOD, "blank_shipping_method"));
        assert_eq!(ShippingMethod::parse("Teleport").unwrap_err().field, path::SHIPPING_METHOD);
        assert_eq!(ClientCard::parse("PREMIUM").unwrap(), ClientCard::Premium);
        let blank = ClientCard::parse("").unwrap_err();
        assert_eq!((blank.field.as_str(), blank.code.as_str()), (path::CLIENT_CARD, "blank_client_card"));
        assert_eq!(ClientCard::parse("Gold").unwrap_err().code, "unknown_client_card");
    }

    #[test]
    fn premium_ranks_before_basic_before_none() {
        assert!(ClientCard::Premium.queue_rank() < ClientCard::Basic.queue_rank());
        assert!(ClientCard::Basic.queue_rank() < ClientCard::None.queue_rank());
        for card in ClientCard::ALL {
            assert_eq!(ClientCard::from_queue_rank(card.queue_rank()), Some(card));
        }
    }

    #[test]
    fn totals_books_shipping_and_wrapping() {
        let catalog = Catalog::embedded();
        let lines = parse_lines(&catalog, &[raw("4", 2), raw("1", 1)]).unwrap();
        // 2 × 10.99 + 18.99 + 9.99 express + 3.99 wrapping
        assert_eq!(order_total(&catalog, &lines, ShippingMethod::Express, true), Money::from_cents(5495));
    }
}
