//! The checkout form's live state: what each field holds, whether the shopper is
//! done with it, and what is wrong with it.
//!
//! The inputs are not controlled: the browser owns their values, so the form posts
//! the same with or without JavaScript. The page mirrors them into signals to check
//! each field with the domain's parser and to price the order as the shopper types.
//! A field's own error shows once the shopper has left it (or sooner when it is
//! certainly wrong); an error the server named shows until the field is edited.

use domain::card::{CardNetwork, CardNumber, Cvv, Expiry};
use domain::contact::{self, Email, PersonName};
use domain::field::{self, check_terms, path};
use domain::order::{OrderLine, Quantity};
use domain::{FieldError, ShippingMethod, YearMonth};
use leptos::prelude::*;

use super::field::field_input_id;

/// The books in the cart: the seed's order (catalog ids).
pub(crate) const SEED_CART: [&str; 2] = ["4", "1"];

/// One field of the form.
#[derive(Clone, Copy)]
pub(crate) struct FieldState {
    pub value: RwSignal<String>,
    /// The shopper is done with the field (left it, or submitted the form).
    pub touched: RwSignal<bool>,
    /// The server's message for this field, until the shopper edits it.
    pub server_error: RwSignal<Option<String>>,
    /// The domain's verdict on the current value.
    problem: Memo<Option<String>>,
}

impl FieldState {
    fn new(initial: &str, check: impl Fn(&str) -> Result<(), FieldError> + Send + Sync + 'static) -> Self {
        let value = RwSignal::new(initial.to_owned());
        Self {
            value,
            touched: RwSignal::new(false),
            server_error: RwSignal::new(None),
            problem: Memo::new(move |_| value.with(|value| check(value).err().map(|error| error.message))),
        }
    }

    /// The message to show now (reactive).
    pub fn error(self) -> Option<String> {
        self.server_error.get().or_else(|| if self.touched.get() { self.problem.get() } else { None })
    }

    /// The shopper typed.
    pub fn input(self, value: String) {
        self.server_error.set(None);
        self.value.set(value);
    }

    /// The shopper left the field: check it from now on, unless it was left blank
    /// untouched (an empty form is not a wall of errors).
    pub fn leave(self) {
        if !self.value.with_untracked(String::is_empty) {
            self.touched.set(true);
        }
    }

    /// A value the browser put in the input before the page came alive (typed early,
    /// autofilled or restored).
    pub fn adopt(self, value: String) {
        if self.value.with_untracked(|current| *current != value) {
            self.touched.set(!value.is_empty());
            self.value.set(value);
        }
    }

    fn is_valid(self) -> bool {
        self.problem.with_untracked(Option::is_none)
    }
}

/// Everything the checkout form holds.
#[derive(Clone, Copy)]
pub(crate) struct CheckoutState {
    pub name: FieldState,
    pub email: FieldState,
    pub street: FieldState,
    pub city: FieldState,
    pub region: FieldState,
    pub zip: FieldState,
    pub country: FieldState,
    pub card_number: FieldState,
    pub expiry: FieldState,
    pub cvv: FieldState,
    pub comment: FieldState,
    pub gift_message: FieldState,
    /// `"true"` when ticked, as the checkbox posts.
    pub terms: FieldState,
    /// One per line of [`SEED_CART`].
    pub quantities: [FieldState; SEED_CART.len()],
    pub shipping: RwSignal<ShippingMethod>,
    pub gift_wrapping: RwSignal<bool>,
}

impl CheckoutState {
    pub fn new() -> Self {
        let card_number = FieldState::new("", |number| CardNumber::parse(number).map(drop));
        let number = card_number.value;
        Self {
            name: FieldState::new("", |name| PersonName::parse(name).map(drop)),
            email: FieldState::new("", |email| Email::parse(email).map(drop)),
            street: FieldState::new("", |street| contact::parse_street(street).map(drop)),
            city: FieldState::new("", |city| contact::parse_city(city).map(drop)),
            region: FieldState::new("", |region| contact::parse_state(region).map(drop)),
            zip: FieldState::new("", |zip| contact::parse_zip(zip).map(drop)),
            country: FieldState::new("", |country| contact::parse_country(country).map(drop)),
            card_number,
            expiry: FieldState::new("", |expiry| Expiry::parse(expiry, current_month()).map(drop)),
            // The server checks the code against the network of a valid number.
            cvv: FieldState::new("", move |cvv| {
                let network = number.with(|number| CardNumber::parse(number).ok().map(|card| card.network()));
                Cvv::parse(cvv, network).map(drop)
            }),
            comment: FieldState::new("", |note| field::check_note(path::COMMENT, note)),
            gift_message: FieldState::new("", |note| field::check_note(path::GIFT_MESSAGE, note)),
            terms: FieldState::new("", |ticked| check_terms(ticked == "true")),
            quantities: std::array::from_fn(|index| {
                FieldState::new("1", move |quantity| parse_quantity(index, quantity).map(drop))
            }),
            shipping: RwSignal::new(ShippingMethod::Standard),
            gift_wrapping: RwSignal::new(false),
        }
    }

    /// Every checked field with its path, in the order the page shows them.
    fn fields(self) -> Vec<(String, FieldState)> {
        let mut fields: Vec<(String, FieldState)> = [
            (path::NAME, self.name),
            (path::CONTACT, self.email),
            (path::STREET, self.street),
            (path::CITY, self.city),
            (path::STATE, self.region),
            (path::ZIP, self.zip),
            (path::COUNTRY, self.country),
            (path::CARD_NUMBER, self.card_number),
            (path::CARD_EXPIRY, self.expiry),
            (path::CARD_CVV, self.cvv),
            (path::COMMENT, self.comment),
            (path::GIFT_MESSAGE, self.gift_message),
        ]
        .into_iter()
        .map(|(path, field)| (path.to_owned(), field))
        .collect();
        fields.extend(self.quantities.iter().enumerate().map(|(index, field)| (path::item_quantity(index), *field)));
        fields.push((path::TERMS.to_owned(), self.terms));
        fields
    }

    /// The field a refusal names, with its input's id. A line's book id and quantity
    /// both lead to the line's quantity input.
    pub fn field_for(self, field: &str) -> Option<(String, FieldState)> {
        let line = field.strip_prefix("items[").and_then(|rest| rest.split_once(']')).map(|(index, _)| index);
        let wanted = match line.and_then(|index| index.parse::<usize>().ok()) {
            Some(index) => path::item_quantity(index),
            None => field.to_owned(),
        };
        self.fields().into_iter().find(|(path, _)| *path == wanted).map(|(path, state)| (field_input_id(&path), state))
    }

    /// The shopper is submitting: check every field from now on, forget the last
    /// refusal, and name the first field that is wrong.
    pub fn check_all(self) -> Option<String> {
        let fields = self.fields();
        for (_, field) in &fields {
            field.touched.set(true);
            field.server_error.set(None);
        }
        fields.into_iter().find(|(_, field)| !field.is_valid()).map(|(path, _)| field_input_id(&path))
    }

    /// The lines whose quantity is valid, for pricing.
    pub fn order_lines(self) -> Vec<OrderLine> {
        SEED_CART
            .iter()
            .zip(self.quantities)
            .enumerate()
            .filter_map(|(index, (book_id, field))| {
                let quantity = field.value.with(|quantity| parse_quantity(index, quantity)).ok()?;
                Some(OrderLine { book_id: (*book_id).to_owned(), quantity })
            })
            .collect()
    }
}

/// A line's quantity as typed into a number input.
pub(crate) fn parse_quantity(index: usize, text: &str) -> Result<Quantity, FieldError> {
    let field = path::item_quantity(index);
    match text.trim().parse::<i64>() {
        Ok(count) => Quantity::new(count, field),
        Err(_) => Err(FieldError::new(
            field,
            "quantity_not_a_number",
            format!("Enter how many copies you want, from 1 to {}.", Quantity::MAX),
        )),
    }
}

/// The network a card number being typed belongs to, as soon as its first digits
/// tell.
pub(crate) fn typed_network(number: &str) -> Option<CardNetwork> {
    let digits: String = number.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    CardNetwork::from_prefix(&digits)
}

/// Whether a card number being typed is settled enough to judge now: valid, or
/// wrong in a way more digits cannot fix.
pub(crate) fn card_number_settled(number: &str) -> bool {
    let digits = number.chars().filter(|c| !matches!(c, ' ' | '-')).count();
    match CardNumber::parse(number) {
        Ok(_) => true,
        Err(error) => match error.code.as_str() {
            "invalid_characters" => true,
            // Four digits decide every network's prefix.
            "unsupported_network" => digits >= 4,
            // Most cards have 16 digits; a longer one fails until it is complete.
            "checksum" => digits >= 16,
            "wrong_length" => {
                typed_network(number).is_none_or(|network| network.lengths().iter().all(|&length| digits > length))
            }
            _ => false,
        },
    }
}

/// This month (UTC), for card expiry: the browser's clock in wasm.
#[cfg(any(feature = "hydrate", feature = "csr"))]
fn current_month() -> YearMonth {
    YearMonth::from_unix_seconds((js_sys::Date::now() / 1000.0) as i64)
}

/// This month (UTC), for card expiry: the server's clock.
#[cfg(not(any(feature = "hydrate", feature = "csr")))]
fn current_month() -> YearMonth {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    YearMonth::from_unix_seconds(now.map_or(0, |elapsed| elapsed.as_secs() as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_must_be_whole_numbers_from_1_to_100() {
        assert_eq!(parse_quantity(0, " 3 ").map(Quantity::get), Ok(3));
        assert_eq!(parse_quantity(1, "").unwrap_err().code, "quantity_not_a_number");
        assert_eq!(parse_quantity(1, "2.5").unwrap_err().field, "items[1].quantity");
        assert_eq!(parse_quantity(0, "101").unwrap_err().code, "quantity_out_of_range");
    }

    #[test]
    fn card_numbers_are_judged_while_typing_only_when_settled() {
        assert!(!card_number_settled("4716 4015"), "still typing");
        assert!(!card_number_settled("5"), "a Mastercard may follow");
        assert!(card_number_settled("9999"), "no network starts so");
        assert!(card_number_settled("4716 40x"), "letters never fit");
        assert!(card_number_settled("4716401589806288"), "16 digits failing Luhn");
        assert!(card_number_settled("4716401589806287"), "valid");
        assert!(card_number_settled("37000000000000022"), "too long for Amex");
        assert_eq!(typed_network("4716"), Some(CardNetwork::Visa));
        assert_eq!(typed_network("37"), Some(CardNetwork::Amex));
    }

    #[test]
    fn a_refusal_finds_its_field() {
        let owner = Owner::new();
        owner.with(|| {
            let state = CheckoutState::new();
            assert_eq!(
                state.field_for(path::CARD_NUMBER).map(|(id, _)| id).as_deref(),
                Some("field-creditCard-number")
            );
            assert_eq!(state.field_for("items[1].id").map(|(id, _)| id).as_deref(), Some("field-items-1-quantity"));
            assert_eq!(state.field_for(path::TERMS).map(|(id, _)| id).as_deref(), Some("field-termsAccepted"));
            assert!(state.field_for(path::ITEMS).is_none());
            assert!(state.field_for(path::SHIPPING_METHOD).is_none());
        });
    }

    #[test]
    fn submitting_names_the_first_wrong_field_in_page_order() {
        let owner = Owner::new();
        owner.with(|| {
            let state = CheckoutState::new();
            for (field, value) in [
                (state.name, "Simon Lawrence"),
                (state.email, "simon@example.org"),
                (state.street, "Narva mnt 18"),
                (state.city, "Tartu"),
                (state.zip, "51009"),
                (state.country, "Estonia"),
                (state.card_number, "4716 4015 8980 6288"),
                (state.expiry, "12/99"),
                (state.cvv, "556"),
                (state.terms, "true"),
            ] {
                field.input(value.to_owned());
            }
            assert_eq!(state.check_all().as_deref(), Some("field-creditCard-number"));
            assert!(state.card_number.error().is_some_and(|message| message.contains("not valid")));
            state.card_number.input("4716 4015 8980 6287".to_owned());
            assert_eq!(state.check_all(), None);
            state.cvv.input("5566".to_owned());
            assert_eq!(state.check_all().as_deref(), Some("field-creditCard-cvv"), "a Visa code has 3 digits");
        });
    }
}
