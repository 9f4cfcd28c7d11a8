//! Errors that name one field of the checkout request.

use serde::{Deserialize, Serialize};

/// The JSON paths of the checkout request's fields (the REST contract's camelCase
/// names). The page uses the same strings to find the input to highlight.
pub mod path {
    pub const NAME: &str = "user.name";
    pub const CONTACT: &str = "user.contact";
    pub const CARD_NUMBER: &str = "creditCard.number";
    pub const CARD_EXPIRY: &str = "creditCard.expirationDate";
    pub const CARD_CVV: &str = "creditCard.cvv";
    pub const STREET: &str = "billingAddress.street";
    pub const CITY: &str = "billingAddress.city";
    pub const STATE: &str = "billingAddress.state";
    pub const ZIP: &str = "billingAddress.zip";
    pub const COUNTRY: &str = "billingAddress.country";
    pub const ITEMS: &str = "items";
    pub const SHIPPING_METHOD: &str = "shippingMethod";
    pub const CLIENT_CARD: &str = "clientCard";
    pub const TERMS: &str = "termsAccepted";
    pub const COMMENT: &str = "userComment";
    pub const GIFT_MESSAGE: &str = "giftMessage";

    /// `items[3].id`
    pub fn item_id(index: usize) -> String {
        format!("items[{index}].id")
    }

    /// `items[3].quantity`
    pub fn item_quantity(index: usize) -> String {
        format!("items[{index}].quantity")
    }
}

/// One field is wrong: which one, a stable code for programs, and a sentence for the
/// shopper that says what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        Self { field: field.into(), code: code.to_owned(), message: message.into() }
    }
}

/// A required free-text field: trimmed, non-empty, at most `max_chars` characters.
pub(crate) fn required_text(field: &str, value: &str, max_chars: usize, what: &str) -> Result<String, FieldError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(FieldError::new(field, "missing", format!("Enter {what}.")));
    }
    optional_text(field, trimmed, max_chars, what).map(|text| text.unwrap_or_default())
}

/// An optional free-text field: trimmed, at most `max_chars` characters, no control
/// characters; `None` when blank.
pub(crate) fn optional_text(
    field: &str,
    value: &str,
    max_chars: usize,
    what: &str,
) -> Result<Option<String>, FieldError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.chars().count() > max_chars {
        return Err(FieldError::new(field, "too_long", format!("Shorten {what} to at most {max_chars} characters.")));
    }
    if trimmed.chars().any(|c| c.is_control() && c != '\n') {
        return Err(FieldError::new(
            field,
            "invalid_characters",
            format!("Remove the control characters from {what}."),
        ));
    }
    Ok(Some(trimmed.to_owned()))
}

/// The longest comment or gift message accepted.
pub const MAX_NOTE_CHARS: usize = 1000;

/// A free-text note (comment, gift message): optional, at most [`MAX_NOTE_CHARS`].
pub fn check_note(field: &str, note: &str) -> Result<(), FieldError> {
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(FieldError::new(
            field,
            "too_long",
            format!("Shorten this to at most {MAX_NOTE_CHARS} characters."),
        ));
    }
    Ok(())
}

/// The terms and conditions must be accepted.
pub fn check_terms(accepted: bool) -> Result<(), FieldError> {
    if accepted {
        Ok(())
    } else {
        Err(FieldError::new(path::TERMS, "terms_not_accepted", "Accept the terms and conditions to place the order."))
    }
}
