//! The routes as the server renders them: what a browser first receives, and all
//! that a shopper without JavaScript ever gets.
#![cfg(feature = "ssr")]

use domain::checkout::ApprovedOrder;
use domain::field::path;
use domain::{CheckoutOutcome, Refusal, RefusalClass, Step, SuggestedBook};
use leptos::prelude::*;
use leptos_router::location::RequestUrl;

/// Renders `App` for a request to `url`, with the status it set.
fn render(url: &str) -> (String, Option<http::StatusCode>) {
    let owner = Owner::new();
    owner.with(|| {
        provide_context(RequestUrl::new(url));
        let (meta, _) = leptos_meta::ServerMetaContext::new();
        provide_context(meta);
        let response = leptos_axum::ResponseOptions::default();
        provide_context(response.clone());
        let html = view! { <app::App /> }.to_html();
        let status = response.0.read().ok().and_then(|parts| parts.status);
        (html, status)
    })
}

#[test]
fn the_checkout_form_posts_natively_to_the_server_function() {
    let (html, status) = render("/");
    assert_eq!(status, None, "200");
    assert!(html.contains(r#"<form action="/api/checkout" method="post" id="checkout-form""#), "{html}");
    for name in [
        "request[user][name]",
        "request[user][contact]",
        "request[billingAddress][street]",
        "request[billingAddress][city]",
        "request[billingAddress][state]",
        "request[billingAddress][zip]",
        "request[billingAddress][country]",
        "request[shippingMethod]",
        "request[clientCard]",
        "request[creditCard][number]",
        "request[creditCard][expirationDate]",
        "request[creditCard][cvv]",
        "request[userComment]",
        "request[giftWrapping]",
        "request[giftMessage]",
        "request[termsAccepted]",
        "request[items][0][id]",
        "request[items][0][name]",
        "request[items][0][quantity]",
        "request[items][1][id]",
        "request[items][1][quantity]",
    ] {
        assert!(html.contains(&format!(r#"name="{name}""#)), "no input named {name}");
    }
    for field in [path::NAME, path::CONTACT, path::CARD_NUMBER, path::CARD_EXPIRY, path::CARD_CVV, path::TERMS] {
        let id = app::field_input_id(field);
        assert!(html.contains(&format!(r#"<label for="{id}""#)), "no label for {id}");
        assert!(html.contains(&format!(r#"id="{id}-error""#)), "no error element for {id}");
    }
    assert!(html.contains(r#"autocomplete="cc-number""#) && html.contains(r#"inputmode="numeric""#));
    assert!(html.contains(r#"value="Standard" checked"#), "Standard shipping is the default");
    assert!(html.contains("Place order · €34.97"), "the seed cart with standard shipping");
    assert!(!html.contains("aria-invalid"), "nothing is flagged before the shopper types");
}

#[test]
fn the_result_page_shows_an_approved_order_with_its_suggestions() {
    let outcome = CheckoutOutcome::Approved(ApprovedOrder {
        order_id: "ord-42".into(),
        status: "queued".into(),
        suggested_books: vec![SuggestedBook { book_id: "2".into(), title: String::new(), author: String::new() }],
    });
    let (html, _) = render(&app::result_href(&outcome));
    assert!(html.contains(r#"id="outcome-approved""#), "{html}");
    assert!(html.contains(r#"<dd id="outcome-order-id">ord-42</dd>"#), "{html}");
    assert!(html.contains("waiting to be packed"), "{html}");
    assert!(html.contains("Iron Flame"), "the title comes from the catalog: {html}");
    assert!(html.contains(r#"href="/""#));
}

#[test]
fn the_result_page_names_the_step_that_refused() {
    let outcome = CheckoutOutcome::Refused(Refusal::unavailable(Step::CheckCard, "fraud_detection", "timed out"));
    let (html, _) = render(&app::result_href(&outcome));
    assert!(html.contains(r#"id="outcome-refused""#), "{html}");
    assert!(html.contains(r#"<strong id="outcome-step">Fraud check on the card</strong>"#), "{html}");
    assert!(html.contains(r#"id="outcome-nothing-charged""#), "{html}");
    assert!(html.contains(r#"id="back-to-checkout" href="/""#), "{html}");

    let outcome = CheckoutOutcome::Refused(Refusal {
        step: Step::VerifyCardFormat,
        service: "transaction_verification".into(),
        class: RefusalClass::Invalid,
        code: "checksum".into(),
        message: "This card number is not valid: check it for a typo.".into(),
        field: Some(path::CARD_NUMBER.into()),
    });
    let (html, _) = render(&app::result_href(&outcome));
    assert!(html.contains("This card number is not valid: check it for a typo."), "{html}");
    assert!(html.contains(r#"<strong id="outcome-field">Card number</strong>"#), "{html}");
    assert!(!html.contains("outcome-nothing-charged"), "{html}");
}

#[test]
fn a_result_link_without_an_outcome_says_so() {
    let (html, _) = render("/checkout/result?order=");
    assert!(html.contains(r#"id="outcome-unknown""#), "{html}");
}

#[test]
fn unknown_addresses_are_404() {
    let (html, status) = render("/no-such-page");
    assert_eq!(status, Some(http::StatusCode::NOT_FOUND));
    assert!(html.contains("Page not found"), "{html}");
}
