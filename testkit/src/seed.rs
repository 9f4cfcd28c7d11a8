//! The seed's happy-path order, the one every test starts from and varies: Simon
//! Lawrence in Tartu buys "The Hunger Games" (id "4") and "Fourth Wing" (id "1"),
//! one each, with a valid Visa expiring a year from now. Built here once, in the
//! two forms the tests send: the REST API's JSON and the services' `Order` message.

use proto::v1 as pb;
use serde_json::{json, Value};

pub const NAME: &str = "Simon Lawrence";
pub const EMAIL: &str = "simon.lawrence@example.org";
/// A Visa number that passes Luhn and that the simulated issuer accepts.
pub const CARD: &str = "4716401589806287";
pub const CVV: &str = "556";
/// (book id, title, copies).
pub const ITEMS: [(&str, &str, u32); 2] = [("4", "The Hunger Games", 1), ("1", "Fourth Wing", 1)];

/// An expiry a year from now, as MM/YY.
pub fn expiry() -> String {
    platform::clock::this_month().plus_months(12).to_string()
}

/// The order as `POST /checkout` takes it, every field the seed's clients send.
pub fn rest_order() -> Value {
    let items: Vec<Value> =
        ITEMS.iter().map(|(id, name, quantity)| json!({"id": id, "name": name, "quantity": quantity})).collect();
    json!({
        "user": {"name": NAME, "contact": EMAIL},
        "creditCard": {"number": CARD, "expirationDate": expiry(), "cvv": CVV},
        "userComment": "Please handle with care.",
        "items": items,
        "discountCode": "",
        "shippingMethod": "Standard",
        "clientCard": "Premium",
        "giftMessage": "",
        "billingAddress": {"street": "Narva mnt 18", "city": "Tartu", "state": "Tartumaa", "zip": "51009", "country": "Estonia"},
        "giftWrapping": false,
        "termsAccepted": true,
        "notificationPreferences": ["email"],
        "device": {"type": "Smartphone", "model": "Pixel 8", "os": "Android 15"},
        "browser": {"name": "Chrome", "version": "131"},
        "appVersion": "3.0.0",
        "screenResolution": "1080x2400",
        "referrer": "https://www.example.org",
        "deviceLanguage": "en-US"
    })
}

/// The same order as the web server sends it to the verification services.
pub fn order() -> pb::Order {
    pb::Order {
        name: NAME.into(),
        email: EMAIL.into(),
        card: Some(pb::Card { number: CARD.into(), expiration_date: expiry(), cvv: CVV.into() }),
        items: ITEMS
            .iter()
            .map(|(id, name, quantity)| pb::OrderItem {
                book_id: (*id).into(),
                name: (*name).into(),
                quantity: i64::from(*quantity),
            })
            .collect(),
        billing_address: Some(pb::Address {
            street: "Narva mnt 18".into(),
            city: "Tartu".into(),
            state: "Tartumaa".into(),
            zip: "51009".into(),
            country: "Estonia".into(),
        }),
        shipping_method: "Standard".into(),
        client_card: "Premium".into(),
        terms_accepted: true,
        comment: "Please handle with care.".into(),
        ..Default::default()
    }
}
