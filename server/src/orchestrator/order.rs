//! Turning the shopper's request into what the services receive, and an approved
//! order into what the queue may hold (no card number, no CVV).

use domain::card::{CardNumber, Expiry};
use domain::checkout::CheckoutRequest;
use domain::order::{order_total, parse_lines, RawItem};
use domain::{Catalog, ClientCard, FieldError, ShippingMethod};
use platform::card_token::FingerprintKey;
use proto::v1 as pb;

/// The order as the verification services receive it: as typed.
pub fn to_verification_order(request: &CheckoutRequest) -> pb::Order {
    let address = &request.billing_address;
    pb::Order {
        name: request.user.name.clone(),
        email: request.user.contact.clone(),
        card: Some(pb::Card {
            number: request.credit_card.number.clone(),
            expiration_date: request.credit_card.expiration_date.clone(),
            cvv: request.credit_card.cvv.clone(),
        }),
        items: request
            .items
            .iter()
            .map(|item| pb::OrderItem { book_id: item.id.clone(), name: item.name.clone(), quantity: item.quantity })
            .collect(),
        billing_address: Some(pb::Address {
            street: address.street.clone(),
            city: address.city.clone(),
            state: address.state.clone(),
            zip: address.zip.clone(),
            country: address.country.clone(),
        }),
        shipping_method: request.shipping_method_or_default().to_owned(),
        client_card: request.client_card_or_default().to_owned(),
        gift_wrapping: request.gift_wrapping,
        terms_accepted: request.terms_accepted.unwrap_or(false),
        comment: request.user_comment.clone(),
        gift_message: request.gift_message.clone(),
        discount_code: request.discount_code.clone(),
    }
}

/// What suggestions needs: the books, nothing about the buyer or the card.
pub fn to_suggestions_order(order: &pb::Order) -> pb::Order {
    pb::Order { items: order.items.clone(), ..pb::Order::default() }
}

/// The approved order as the queue holds it. The verification services passed
/// every field already; parsing again here only builds the typed values (and
/// refuses, rather than panics, if they ever disagree).
pub fn to_queued_order(
    order_id: &str,
    request: &CheckoutRequest,
    catalog: &Catalog,
    key: &FingerprintKey,
    accepted_at_unix_ms: u64,
) -> Result<pb::QueuedOrder, FieldError> {
    let card = CardNumber::parse(&request.credit_card.number)?;
    let expiry = Expiry::parse(&request.credit_card.expiration_date, platform::clock::this_month())?;
    let raw: Vec<RawItem<'_>> = request.items.iter().map(|i| RawItem { id: &i.id, quantity: i.quantity }).collect();
    let lines = parse_lines(catalog, &raw)?;
    let shipping = ShippingMethod::parse(request.shipping_method_or_default())?;
    let client_card = ClientCard::parse(request.client_card_or_default())?;
    let address = &request.billing_address;
    Ok(pb::QueuedOrder {
        order_id: order_id.to_owned(),
        client_card: pb::ClientCard::from(client_card).into(),
        lines: lines.iter().map(pb::OrderLine::from).collect(),
        total_cents: order_total(catalog, &lines, shipping, request.gift_wrapping).cents(),
        card: Some(key.token(&card, expiry)),
        name: request.user.name.trim().to_owned(),
        email: request.user.contact.trim().to_owned(),
        billing_address: Some(pb::Address {
            street: address.street.trim().to_owned(),
            city: address.city.trim().to_owned(),
            state: address.state.trim().to_owned(),
            zip: address.zip.trim().to_owned(),
            country: address.country.trim().to_owned(),
        }),
        shipping_method: shipping.as_str().to_owned(),
        gift_wrapping: request.gift_wrapping,
        gift_message: request.gift_message.trim().to_owned(),
        comment: request.user_comment.trim().to_owned(),
        accepted_at_unix_ms,
        // The orchestrator adds the events it saw and the trace context
        // (`Orchestrator::enqueue`).
        checkout_events: Vec::new(),
        trace_context: Default::default(),
    })
}
