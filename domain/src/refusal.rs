//! Why a checkout was refused: the step, the service, a stable code, a message.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::field::FieldError;

/// The steps of a checkout, in the order the flow runs them. Letters a–f are the
/// vector-clocked events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The request itself could not be read.
    Input,
    /// Handing the order to the three verification services.
    InitOrder,
    /// a: the books exist, the quantities are allowed, the stock is there.
    VerifyItems,
    /// b: name, email, billing address, terms.
    VerifyUserData,
    /// c: card number, CVV, expiry.
    VerifyCardFormat,
    /// d: fraud checks on the shopper.
    CheckUser,
    /// e: fraud checks on the card and the amount.
    CheckCard,
    /// f: books to suggest.
    SuggestBooks,
    /// Putting the approved order on the queue.
    Enqueue,
}

impl Step {
    /// Every step, from the input check to the enqueue (the events a–f in order).
    pub const ALL: [Self; 9] = [
        Self::Input,
        Self::InitOrder,
        Self::VerifyItems,
        Self::VerifyUserData,
        Self::VerifyCardFormat,
        Self::CheckUser,
        Self::CheckCard,
        Self::SuggestBooks,
        Self::Enqueue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::InitOrder => "init_order",
            Self::VerifyItems => "verify_items",
            Self::VerifyUserData => "verify_user_data",
            Self::VerifyCardFormat => "verify_card_format",
            Self::CheckUser => "check_user",
            Self::CheckCard => "check_card",
            Self::SuggestBooks => "suggest_books",
            Self::Enqueue => "enqueue",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|step| step.as_str() == text)
    }

    /// The checkout events' letter (a–f), as the course names them.
    pub fn letter(self) -> Option<char> {
        match self {
            Self::VerifyItems => Some('a'),
            Self::VerifyUserData => Some('b'),
            Self::VerifyCardFormat => Some('c'),
            Self::CheckUser => Some('d'),
            Self::CheckCard => Some('e'),
            Self::SuggestBooks => Some('f'),
            Self::Input | Self::InitOrder | Self::Enqueue => None,
        }
    }

    /// What the step does, in the shopper's words.
    pub fn label(self) -> &'static str {
        match self {
            Self::Input => "Reading your order",
            Self::InitOrder => "Starting the checks",
            Self::VerifyItems => "Checking the books and stock",
            Self::VerifyUserData => "Checking your details",
            Self::VerifyCardFormat => "Checking the card details",
            Self::CheckUser => "Fraud check on the buyer",
            Self::CheckCard => "Fraud check on the card",
            Self::SuggestBooks => "Finding suggestions",
            Self::Enqueue => "Placing the order",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of refusal, which sets the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalClass {
    /// Malformed input or failed verification: 400.
    Invalid,
    /// Refused by fraud detection: 403.
    Fraud,
    /// Not enough stock: 409.
    OutOfStock,
    /// A service was down or too slow: 503. Nothing was charged.
    Unavailable,
}

impl RefusalClass {
    pub fn http_status(self) -> u16 {
        match self {
            Self::Invalid => 400,
            Self::Fraud => 403,
            Self::OutOfStock => 409,
            Self::Unavailable => 503,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::Fraud => "fraud",
            Self::OutOfStock => "out_of_stock",
            Self::Unavailable => "unavailable",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Invalid, Self::Fraud, Self::OutOfStock, Self::Unavailable]
            .into_iter()
            .find(|class| class.as_str() == text)
    }
}

/// A refused checkout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub step: Step,
    /// The service that refused (or could not be reached); `web` for the edge.
    pub service: String,
    pub class: RefusalClass,
    /// Stable, for programs: `expired`, `user_blocklisted`, `out_of_stock`, ...
    pub code: String,
    /// For the shopper: what happened and what to do.
    pub message: String,
    /// The request field at fault (`creditCard.number`), when there is one.
    pub field: Option<String>,
}

impl Refusal {
    pub fn invalid_field(step: Step, service: &str, error: FieldError) -> Self {
        Self {
            step,
            service: service.to_owned(),
            class: RefusalClass::Invalid,
            code: error.code,
            message: error.message,
            field: Some(error.field),
        }
    }

    /// A service could not run its step: nothing was charged.
    pub fn unavailable(step: Step, service: &str, detail: &str) -> Self {
        Self {
            step,
            service: service.to_owned(),
            class: RefusalClass::Unavailable,
            code: "service_unavailable".to_owned(),
            message: format!(
                "We could not complete the step \"{}\" ({detail}). Nothing was charged and \
                 no order was placed; please try again in a moment.",
                step.label()
            ),
            field: None,
        }
    }

    /// The shop is at capacity: the checkout was refused before anything was done
    /// for it (503, with `Retry-After`).
    pub fn busy() -> Self {
        Self {
            step: Step::InitOrder,
            service: "web".to_owned(),
            class: RefusalClass::Unavailable,
            code: "busy".to_owned(),
            message: "The shop is taking more orders than it can right now. Nothing was charged and no order \
                      was placed; please try again in a moment."
                .to_owned(),
            field: None,
        }
    }

    /// A step whose outcome could not be learned, so the order may or may not
    /// have been placed (the queue took no answer back, and could not be asked
    /// again): never "nothing was charged" then. The shopper gets the order's id,
    /// to look it up.
    pub fn unconfirmed(step: Step, service: &str, order_id: &str) -> Self {
        Self {
            step,
            service: service.to_owned(),
            class: RefusalClass::Unavailable,
            code: "order_unconfirmed".to_owned(),
            message: format!(
                "We could not confirm whether order {order_id} was placed: the step \"{}\" got no answer. It may \
                 still go through, and is then charged once; its page, /orders/{order_id}, will say. Please look \
                 there before you order again.",
                step.label()
            ),
            field: None,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} refused at {} ({}): {}", self.service, self.step, self.code, self.message)
    }
}
