//! The result page's address: a checkout outcome written into a query string, and
//! read back.
//!
//! Without JavaScript the browser follows the server function's redirect to
//! `/checkout/result?…`, and that page is rendered from the query alone: the server
//! keeps no session. An outcome holds no card data, so neither does the link.
//! Suggested books travel as catalog ids; the page looks their titles up again.
//!
//! The link ends with `seal=…`, the server's seal of [`result_query`]; the page
//! shows the outcome only if the server confirms the seal, so a crafted link cannot
//! put words on the shop's page. The outcome read back is written out again with
//! [`result_query`] to check it, so the seal covers what is shown, however the
//! browser encoded the link.

use domain::checkout::ApprovedOrder;
use domain::{Catalog, CheckoutOutcome, Refusal, RefusalClass, Step, SuggestedBook};
use serde::Deserialize;

/// Where a plain form post lands.
pub const RESULT_PATH: &str = "/checkout/result";

/// The query parameter holding the seal.
pub const SEAL_PARAM: &str = "seal";

/// `{RESULT_PATH}?{result_query}&seal={seal of the query}`.
pub fn result_href(outcome: &CheckoutOutcome, seal: impl FnOnce(&str) -> String) -> String {
    let query = result_query(outcome);
    let seal = seal(&query);
    format!("{RESULT_PATH}?{query}&{SEAL_PARAM}={}", encode(&seal))
}

/// `order=…&status=…&suggested=2,3` for an approved order,
/// `step=…&service=…&class=…&code=…&field=…&message=…` for a refused one (`field`
/// only when the refusal names one). Values are percent-encoded. What is sealed.
pub fn result_query(outcome: &CheckoutOutcome) -> String {
    let pairs: Vec<(&str, &str)> = match outcome {
        CheckoutOutcome::Approved(order) => {
            vec![("order", &order.order_id), ("status", &order.status)]
        }
        CheckoutOutcome::Refused(refusal) => {
            let mut pairs = vec![
                ("step", refusal.step.as_str()),
                ("service", refusal.service.as_str()),
                ("class", refusal.class.as_str()),
                ("code", refusal.code.as_str()),
            ];
            if let Some(field) = &refusal.field {
                pairs.push(("field", field));
            }
            pairs.push(("message", &refusal.message));
            pairs
        }
    };
    let mut query: Vec<String> = pairs.iter().map(|(key, value)| format!("{key}={}", encode(value))).collect();
    if let CheckoutOutcome::Approved(order) = outcome {
        let ids: Vec<String> = order.suggested_books.iter().map(|book| encode(&book.book_id)).collect();
        query.push(format!("suggested={}", ids.join(",")));
    }
    query.join("&")
}

/// Reads back what [`result_href`] wrote, given the decoded query parameters.
/// `None` when the query does not describe an outcome. The seal is not checked
/// here (the key is the server's): see [`crate::api::result_link_is_sealed`].
pub fn outcome_from_query<'a>(catalog: &Catalog, get: impl Fn(&str) -> Option<&'a str>) -> Option<CheckoutOutcome> {
    if let Some(order_id) = get("order").filter(|id| !id.is_empty()) {
        let suggested_books = get("suggested")
            .unwrap_or_default()
            .split(',')
            .filter_map(|id| catalog.get(id))
            .map(|book| SuggestedBook {
                book_id: book.id.clone(),
                title: book.title.clone(),
                author: book.author.clone(),
            })
            .collect();
        return Some(CheckoutOutcome::Approved(ApprovedOrder {
            order_id: order_id.to_owned(),
            status: get("status").unwrap_or_default().to_owned(),
            suggested_books,
        }));
    }
    let step = get("step").and_then(parse_step)?;
    let class = get("class").and_then(RefusalClass::parse)?;
    Some(CheckoutOutcome::Refused(Refusal {
        step,
        service: get("service").unwrap_or_default().to_owned(),
        class,
        code: get("code").unwrap_or_default().to_owned(),
        message: get("message")?.to_owned(),
        field: get("field").filter(|field| !field.is_empty()).map(str::to_owned),
    }))
}

/// `Step::as_str` backwards, through the step's own serde names.
fn parse_step(text: &str) -> Option<Step> {
    Step::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(text)).ok()
}

/// Percent-encodes everything but unreserved characters (and commas), so the link is
/// plain ASCII, a valid `Location` header and unambiguous in a query or a path segment.
pub(crate) fn encode(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~,".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push('%');
            encoded.push(char::from(HEX[usize::from(byte >> 4)]));
            encoded.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Decodes the query as the server (the url crate) and browsers do.
    fn read_back(href: &str) -> Option<CheckoutOutcome> {
        let query = href.strip_prefix(RESULT_PATH).and_then(|rest| rest.strip_prefix('?')).expect("a result link");
        let params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        outcome_from_query(&Catalog::embedded(), |key| params.get(key).map(String::as_str))
    }

    /// Writes the link, reads it back, and checks that writing out what was read
    /// gives the very query that was sealed.
    fn round_trip(outcome: &CheckoutOutcome) -> String {
        let href = result_href(outcome, |_| "5ea1".to_owned());
        assert!(href.ends_with("&seal=5ea1"), "{href}");
        let read = read_back(&href).expect("an outcome");
        assert_eq!(&read, outcome);
        assert_eq!(result_query(&read), result_query(outcome), "the seal covers what is read back");
        href
    }

    fn suggestion(catalog: &Catalog, id: &str) -> SuggestedBook {
        let book = catalog.get(id).expect("a catalog book");
        SuggestedBook { book_id: book.id.clone(), title: book.title.clone(), author: book.author.clone() }
    }

    #[test]
    fn an_approved_order_round_trips_with_its_suggestions() {
        let catalog = Catalog::embedded();
        let outcome = CheckoutOutcome::Approved(ApprovedOrder {
            order_id: "0b7e9a52-77c1-4c1e-9d1c-3f0c2a9e8b10".into(),
            status: "queued".into(),
            suggested_books: vec![suggestion(&catalog, "2"), suggestion(&catalog, "5")],
        });
        let href = round_trip(&outcome);
        assert_eq!(
            href,
            "/checkout/result?order=0b7e9a52-77c1-4c1e-9d1c-3f0c2a9e8b10&status=queued&suggested=2,5&seal=5ea1"
        );
    }

    #[test]
    fn a_refusal_round_trips_with_awkward_characters() {
        let outcome = CheckoutOutcome::Refused(Refusal {
            step: Step::VerifyCardFormat,
            service: "transaction_verification".into(),
            class: RefusalClass::Invalid,
            code: "checksum".into(),
            message: "This card number is not valid: check it for a typo. 100% & more + \"€\" #1 ?a=b".into(),
            field: Some("creditCard.number".into()),
        });
        let href = round_trip(&outcome);
        assert!(href.bytes().all(|b| b.is_ascii_graphic()), "{href}");
        assert!(href.contains("step=verify_card_format&service=transaction_verification&class=invalid"), "{href}");
    }

    #[test]
    fn a_refusal_without_a_field_round_trips_for_every_step() {
        for step in Step::ALL {
            let outcome = CheckoutOutcome::Refused(Refusal::unavailable(step, "fraud_detection", "timed out"));
            let href = round_trip(&outcome);
            assert!(!href.contains("field="), "{href}");
        }
    }

    #[test]
    fn unknown_suggestions_are_dropped_and_garbage_is_no_outcome() {
        let Some(CheckoutOutcome::Approved(order)) =
            read_back("/checkout/result?order=o1&status=queued&suggested=404,3,")
        else {
            panic!("an approved order");
        };
        let ids: Vec<&str> = order.suggested_books.iter().map(|b| b.book_id.as_str()).collect();
        assert_eq!(ids, ["3"]);
        assert_eq!(read_back("/checkout/result?step=teleport&class=invalid&message=x"), None);
        assert_eq!(read_back("/checkout/result?step=input&class=invalid"), None);
        assert_eq!(read_back("/checkout/result?"), None);
    }
}
