//! `POST /checkout`'s body, from any bytes: read as the web server reads it (serde
//! JSON into `CheckoutRequest`) or refused, and then every rule the checkout
//! applies to a field run on what was read. No input may panic.
#![no_main]

use domain::contact::RawAddress;
use domain::order::{parse_lines, RawItem};
use domain::{
    BillingAddress, CardNumber, Catalog, CheckoutRequest, ClientCard, Cvv, Email, Expiry, PersonName, ShippingMethod,
    YearMonth,
};

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let Ok(request) = serde_json::from_slice::<CheckoutRequest>(bytes) else { return };
    let card = &request.credit_card;
    let network = CardNumber::parse(&card.number).ok().map(|card| card.network());
    let _ = Cvv::parse(&card.cvv, network);
    let today = YearMonth::new(2026, 12).expect("a month");
    let _ = Expiry::parse(&card.expiration_date, today);
    let _ = domain::checkout::mask_card_text(&card.number);
    let _ = PersonName::parse(&request.user.name);
    let _ = Email::parse(&request.user.contact);
    let address = &request.billing_address;
    let _ = BillingAddress::parse(&RawAddress {
        street: &address.street,
        city: &address.city,
        state: &address.state,
        zip: &address.zip,
        country: &address.country,
    });
    let items: Vec<RawItem<'_>> =
        request.items.iter().map(|item| RawItem { id: &item.id, quantity: item.quantity }).collect();
    let _ = parse_lines(&Catalog::embedded(), &items);
    let _ = ShippingMethod::parse(request.shipping_method_or_default());
    let _ = ClientCard::parse(request.client_card_or_default());
    // What is read is written back the same way.
    let written = serde_json::to_vec(&request).expect("a request serializes");
    assert_eq!(serde_json::from_slice::<CheckoutRequest>(&written).ok().as_ref(), Some(&request));
});
