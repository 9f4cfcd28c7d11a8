//! Properties of the domain's parsers over generated input (proptest): whatever a
//! shopper or a client sends, a parser answers (no panic), a refusal names the
//! field it is about with a stable code and a sentence, and what is accepted is
//! what the rules say. The examples in each module's unit tests pin the messages;
//! these pin the rules over inputs nobody wrote by hand.

use domain::calendar::YearMonth;
use domain::card::luhn_valid;
use domain::contact::{self, RawAddress};
use domain::field::{path, FieldError};
use domain::order::{parse_lines, RawItem, MAX_LINES};
use domain::{
    BillingAddress, CardNetwork, CardNumber, Catalog, CheckoutRequest, ClientCard, Cvv, Email, Expiry, PersonName,
    Quantity, ShippingMethod,
};
use proptest::prelude::*;
use serde_json::Value;

/// Any text at all, with what shoppers really type over-represented: digits,
/// spaces, dashes, slashes, `@`, dots and letters, some of it very long.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[0-9 ./@-]{0,40}", "[a-zA-Z0-9 .@_+-]{0,80}", "[\\PC]{0,300}",]
}

/// A refusal is about `field`, with a code a program can match and a sentence.
fn refuses(error: &FieldError, field: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(error.field.as_str(), field);
    prop_assert!(!error.code.is_empty() && error.code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    prop_assert!(error.message.ends_with('.'), "a sentence: {:?}", error.message);
    Ok(())
}

/// The check digit that makes `body` followed by it pass Luhn.
fn check_digit(body: &str) -> char {
    (b'0'..=b'9').map(char::from).find(|digit| luhn_valid(&format!("{body}{digit}"))).expect("one digit in ten passes")
}

/// A card number that is valid on every count: a network's prefix, one of its
/// lengths, and the Luhn check digit.
fn valid_card() -> impl Strategy<Value = (String, CardNetwork)> {
    let networks = prop_oneof![
        Just(("4", CardNetwork::Visa)),
        Just(("34", CardNetwork::Amex)),
        Just(("37", CardNetwork::Amex)),
        Just(("51", CardNetwork::Mastercard)),
        Just(("55", CardNetwork::Mastercard)),
        Just(("2221", CardNetwork::Mastercard)),
        Just(("2720", CardNetwork::Mastercard)),
        Just(("6011", CardNetwork::Discover)),
        Just(("644", CardNetwork::Discover)),
        Just(("65", CardNetwork::Discover)),
    ];
    (networks, any::<prop::sample::Index>(), prop::collection::vec(0u8..10, 19)).prop_map(
        |((prefix, network), length, filler)| {
            let length = *length.get(network.lengths());
            let mut body = prefix.to_owned();
            body.extend(filler.iter().take(length - 1 - prefix.len()).map(|d| char::from(b'0' + d)));
            body.push(check_digit(&body));
            (body, network)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_card_number_is_read_or_refused_by_its_field(input in text()) {
        match CardNumber::parse(&input) {
            Ok(card) => {
                let digits: String = input.chars().filter(char::is_ascii_digit).collect();
                prop_assert_eq!(card.expose_digits(), digits.as_str());
                prop_assert!(luhn_valid(&digits));
                prop_assert!(card.network().lengths().contains(&digits.len()));
                // Shown, only the last four digits.
                let shown = format!("{card:?}");
                prop_assert!(!shown.contains(&digits));
                prop_assert!(!card.masked().contains(&digits));
            }
            Err(error) => refuses(&error, path::CARD_NUMBER)?,
        }
    }

    #[test]
    fn luhn_answers_for_any_text(input in text()) {
        // Only digits can pass; anything else is simply not valid.
        if luhn_valid(&input) {
            prop_assert!(input.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn every_valid_card_is_accepted_grouped_or_not((digits, network) in valid_card()) {
        let card = CardNumber::parse(&digits).expect("a valid card");
        prop_assert_eq!(card.network(), network);
        let grouped: Vec<String> = digits.as_bytes().chunks(4).map(|chunk| String::from_utf8_lossy(chunk).into_owned()).collect();
        prop_assert_eq!(CardNumber::parse(&grouped.join(" ")).map(|card| card.expose_digits().to_owned()), Ok(digits.clone()));
        prop_assert_eq!(CardNumber::parse(&grouped.join("-")).map(|card| card.expose_digits().to_owned()), Ok(digits.clone()));
        prop_assert_eq!(card.last4(), &digits[digits.len() - 4..]);
    }

    #[test]
    fn one_mistyped_digit_is_always_caught(
        (digits, _) in valid_card(),
        position in any::<prop::sample::Index>(),
        change in 1u8..10,
    ) {
        // Luhn catches every single-digit error; the prefix may change the
        // network too, but never to a valid number.
        let at = position.index(digits.len());
        let mut mistyped = digits.into_bytes();
        mistyped[at] = b'0' + (mistyped[at] - b'0' + change) % 10;
        let mistyped = String::from_utf8(mistyped).expect("digits");
        let error = CardNumber::parse(&mistyped).expect_err("a mistyped number");
        refuses(&error, path::CARD_NUMBER)?;
    }

    #[test]
    fn a_cvv_has_the_networks_length_and_only_digits(input in text(), network in prop::option::of(prop_oneof![
        Just(CardNetwork::Visa), Just(CardNetwork::Mastercard), Just(CardNetwork::Amex), Just(CardNetwork::Discover),
    ])) {
        match Cvv::parse(&input, network) {
            Ok(cvv) => {
                let code = input.trim();
                prop_assert_eq!(cvv.expose(), code);
                prop_assert!(code.bytes().all(|b| b.is_ascii_digit()));
                match network {
                    Some(network) => prop_assert_eq!(code.len(), network.cvv_length()),
                    None => prop_assert!(matches!(code.len(), 3 | 4)),
                }
                let shown = format!("{cvv:?}");
                prop_assert!(!shown.contains(code), "a CVV is never shown");
            }
            Err(error) => refuses(&error, path::CARD_CVV)?,
        }
    }

    #[test]
    fn an_expiry_is_accepted_exactly_when_its_month_is_not_over(
        month in 0u8..=99,
        year in 0u16..=99,
        today_year in 2000u16..=2099,
        today_month in 1u8..=12,
    ) {
        let today = YearMonth::new(today_year, today_month).expect("a month");
        let answer = Expiry::parse(&format!("{month:02}/{year:02}"), today);
        match YearMonth::new(2000 + year, month) {
            Some(expiry) if expiry >= today => prop_assert_eq!(answer.map(Expiry::month), Ok(expiry)),
            _ => refuses(&answer.expect_err("not a month, or over"), path::CARD_EXPIRY)?,
        }
    }

    #[test]
    fn any_expiry_text_is_read_or_refused_by_its_field(input in text()) {
        let today = YearMonth::new(2026, 12).expect("a month");
        if let Err(error) = Expiry::parse(&input, today) {
            refuses(&error, path::CARD_EXPIRY)?;
        }
    }

    #[test]
    fn a_name_is_trimmed_and_has_a_letter(input in text()) {
        match PersonName::parse(&input) {
            Ok(name) => {
                prop_assert_eq!(name.as_str(), input.trim());
                prop_assert!(name.as_str().chars().any(char::is_alphabetic));
                prop_assert!(name.as_str().chars().count() <= 100);
            }
            Err(error) => refuses(&error, path::NAME)?,
        }
    }

    #[test]
    fn an_email_has_one_local_part_and_a_lower_cased_domain(input in prop_oneof![
        text(),
        // Letters whose lower case is longer, or not a letter at all.
        "[a-z]{1,5}@[a-zA-ZİΣẞÅ]{1,6}\\.[a-zA-ZİΣ]{2,4}",
    ]) {
        match Email::parse(&input) {
            Ok(email) => {
                let (local, domain) = email.as_str().split_once('@').expect("an @");
                prop_assert!(!local.is_empty() && !domain.is_empty());
                prop_assert_eq!(domain.to_lowercase(), domain);
                prop_assert!(!email.as_str().chars().any(char::is_whitespace));
                // Reading it again changes nothing.
                prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
            }
            Err(error) => refuses(&error, path::CONTACT)?,
        }
    }

    #[test]
    fn a_plain_address_of_letters_is_accepted(
        local in "[a-z0-9]([a-z0-9._-]{0,20}[a-z0-9])?",
        domain in "[a-zA-Z0-9]{1,20}",
        tld in "[a-zA-Z]{2,6}",
    ) {
        prop_assume!(!local.contains(".."));
        let email = Email::parse(&format!("{local}@{domain}.{tld}")).expect("a plain address");
        prop_assert_eq!(email.as_str(), format!("{local}@{}.{}", domain.to_lowercase(), tld.to_lowercase()));
    }

    #[test]
    fn an_address_is_refused_at_its_first_wrong_part(
        street in text(), city in text(), state in text(), zip in text(), country in text(),
    ) {
        let raw = RawAddress { street: &street, city: &city, state: &state, zip: &zip, country: &country };
        let parts: [(&str, Result<(), FieldError>); 5] = [
            (path::STREET, contact::parse_street(&street).map(drop)),
            (path::CITY, contact::parse_city(&city).map(drop)),
            (path::STATE, contact::parse_state(&state).map(drop)),
            (path::ZIP, contact::parse_zip(&zip).map(drop)),
            (path::COUNTRY, contact::parse_country(&country).map(drop)),
        ];
        match (BillingAddress::parse(&raw), parts.iter().find(|(_, part)| part.is_err())) {
            (Ok(address), None) => {
                prop_assert_eq!(address.street.as_str(), street.trim());
                prop_assert!(address.zip.len() >= 3);
            }
            (Err(error), Some((field, _))) => refuses(&error, field)?,
            (answer, first) => prop_assert!(false, "the address answered {answer:?}, its parts {first:?}"),
        }
    }

    #[test]
    fn a_quantity_is_one_to_a_hundred(value in prop_oneof![any::<i64>(), -5i64..=105]) {
        match Quantity::new(value, "items[0].quantity") {
            Ok(quantity) => prop_assert!((1..=100).contains(&value) && i64::from(quantity.get()) == value),
            Err(error) => {
                prop_assert!(!(1..=100).contains(&value));
                refuses(&error, "items[0].quantity")?;
            }
        }
    }

    #[test]
    fn order_lines_are_refused_by_the_line_they_are_about(
        items in prop::collection::vec((prop_oneof![text(), (1u32..30).prop_map(|id| id.to_string())], -3i64..120), 0..60),
    ) {
        let catalog = Catalog::embedded();
        let raw: Vec<RawItem<'_>> = items.iter().map(|(id, quantity)| RawItem { id, quantity: *quantity }).collect();
        match parse_lines(&catalog, &raw) {
            Ok(lines) => {
                prop_assert_eq!(lines.len(), raw.len());
                prop_assert!(!lines.is_empty() && lines.len() <= MAX_LINES);
                for (line, item) in lines.iter().zip(&raw) {
                    prop_assert!(catalog.get(item.id.trim()).is_some());
                    prop_assert_eq!(i64::from(line.quantity.get()), item.quantity);
                }
            }
            Err(error) => {
                prop_assert!(error.field == path::ITEMS || error.field.starts_with("items["), "{}", error.field);
                refuses(&error, &error.field.clone())?;
            }
        }
    }

    #[test]
    fn json_holds_no_quantity_name_or_email_the_parsers_would_refuse(
        number in prop_oneof![any::<u32>(), 0u32..=101],
        input in text(),
    ) {
        // What a Raft log entry or a snapshot holds is read by the same rules as
        // what a shopper types, and what the shop writes reads back unchanged.
        let quantity = serde_json::from_value::<Quantity>(serde_json::json!(number));
        prop_assert_eq!(quantity.is_ok(), (1..=Quantity::MAX).contains(&number));
        if let Ok(quantity) = quantity {
            prop_assert_eq!(serde_json::to_value(quantity).ok(), Some(serde_json::json!(number)));
        }
        let json = serde_json::json!(input);
        prop_assert_eq!(serde_json::from_value::<PersonName>(json.clone()).ok(), PersonName::parse(&input).ok());
        prop_assert_eq!(serde_json::from_value::<Email>(json).ok(), Email::parse(&input).ok());
        if let Ok(email) = Email::parse(&input) {
            let written = serde_json::to_value(&email).expect("an email is JSON");
            prop_assert_eq!(written.as_str(), Some(email.as_str()));
            prop_assert_eq!(serde_json::from_value::<Email>(written).ok(), Some(email));
        }
    }

    #[test]
    fn shipping_and_client_card_are_read_or_refused_by_their_fields(input in prop_oneof![
        text(), Just("Express".to_owned()), Just(" next-day ".to_owned()), Just("PREMIUM".to_owned()),
    ]) {
        if let Err(error) = ShippingMethod::parse(&input) {
            refuses(&error, path::SHIPPING_METHOD)?;
        }
        if let Err(error) = ClientCard::parse(&input) {
            refuses(&error, path::CLIENT_CARD)?;
        }
    }

    #[test]
    fn any_json_body_is_read_or_refused_without_a_panic(body in prop_oneof![
        any::<Vec<u8>>(),
        text().prop_map(String::into_bytes),
        json_like().prop_map(String::into_bytes),
    ]) {
        // What the web server does with a body first; it answers a refusal here
        // with 400 (rest.rs), which only needs this not to panic.
        let _ = serde_json::from_slice::<CheckoutRequest>(&body);
    }
}

/// JSON close to the checkout request's: the right keys with values of any type.
fn json_like() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    let object = |value: BoxedStrategy<Value>, size| {
        prop::collection::vec((key(), value), size)
            .prop_map(|fields| Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
    };
    let value = leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array), object(inner, 0..6)]
    });
    object(value.boxed(), 0..10).prop_map(|body| body.to_string())
}

fn key() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "user",
        "name",
        "contact",
        "creditCard",
        "number",
        "expirationDate",
        "cvv",
        "items",
        "id",
        "quantity",
        "billingAddress",
        "street",
        "city",
        "state",
        "zip",
        "country",
        "shippingMethod",
        "clientCard",
        "termsAccepted",
        "userComment",
        "giftMessage",
        "giftWrapping",
        "deviceInfo",
        "browserInfo",
        "other",
    ])
}
