//! The checks behind events a, b and c, on the order as the shopper typed it. Pure
//! functions over the domain parsers: the page runs the same parsers as the shopper
//! types, so the two never disagree.

use domain::card::{CardNumber, Cvv, Expiry};
use domain::contact::{BillingAddress, Email, PersonName, RawAddress};
use domain::field::{self, path};
use domain::order::{parse_lines, OrderLine, RawItem};
use domain::{Catalog, ClientCard, RefusalClass, ShippingMethod, YearMonth};
use proto::v1 as pb;

use crate::refusal::RuleRefusal;

/// Event a, without stock: the books exist, each once, in quantities 1..=100, and
/// the shipping method and client card are ones the shop knows.
pub fn verify_items(order: &pb::Order, catalog: &Catalog) -> Result<Vec<OrderLine>, RuleRefusal> {
    let raw: Vec<RawItem<'_>> =
        order.items.iter().map(|item| RawItem { id: &item.book_id, quantity: item.quantity }).collect();
    let lines = parse_lines(catalog, &raw)?;
    ShippingMethod::parse(&order.shipping_method)?;
    ClientCard::parse(&order.client_card)?;
    Ok(lines)
}

/// Event a's stock check: every line fits in what `available` reports.
pub fn check_stock(lines: &[OrderLine], catalog: &Catalog, available: &[u32]) -> Result<(), RuleRefusal> {
    for (index, (line, &left)) in lines.iter().zip(available).enumerate() {
        if line.quantity.get() > left {
            let title = catalog.get(&line.book_id).map_or(line.book_id.as_str(), |b| b.title.as_str());
            let message = match left {
                0 => format!("{title} is sold out; remove it from the order."),
                1 => format!("Only 1 copy of {title} is left; lower the quantity."),
                n => format!("Only {n} copies of {title} are left; lower the quantity."),
            };
            return Err(RuleRefusal::new(
                RefusalClass::OutOfStock,
                "out_of_stock",
                message,
                Some(&path::item_quantity(index)),
            ));
        }
    }
    Ok(())
}

/// Event b: a name, a valid email, a complete billing address, notes of a sane
/// length, and the terms accepted.
pub fn verify_user_data(order: &pb::Order) -> Result<(), RuleRefusal> {
    PersonName::parse(&order.name)?;
    Email::parse(&order.email)?;
    let address = order.billing_address.clone().unwrap_or_default();
    BillingAddress::parse(&RawAddress {
        street: &address.street,
        city: &address.city,
        state: &address.state,
        zip: &address.zip,
        country: &address.country,
    })?;
    field::check_note(path::COMMENT, &order.comment)?;
    field::check_note(path::GIFT_MESSAGE, &order.gift_message)?;
    field::check_terms(order.terms_accepted)?;
    Ok(())
}

/// Event c: the card number (network, length, Luhn), the CVV for that network, and
/// an expiry that is not past on `today`.
pub fn verify_card_format(order: &pb::Order, today: YearMonth) -> Result<(), RuleRefusal> {
    let card = order.card.clone().unwrap_or_default();
    let number = CardNumber::parse(&card.number)?;
    Cvv::parse(&card.cvv, Some(number.network()))?;
    Expiry::parse(&card.expiration_date, today)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use testkit::seed;

    fn today() -> YearMonth {
        YearMonth::new(2026, 11).unwrap()
    }

    #[test]
    fn the_seed_order_passes_a_b_and_c() {
        let catalog = Catalog::embedded();
        let lines = verify_items(&seed::order(), &catalog).unwrap();
        check_stock(&lines, &catalog, &[60, 40]).unwrap();
        verify_user_data(&seed::order()).unwrap();
        verify_card_format(&seed::order(), today()).unwrap();
    }

    #[test]
    fn stock_shortfall_names_the_line_and_how_many_are_left() {
        let catalog = Catalog::embedded();
        let lines = verify_items(&seed::order(), &catalog).unwrap();
        let err = check_stock(&lines, &catalog, &[60, 0]).unwrap_err();
        assert_eq!((err.class, err.field.as_deref()), (RefusalClass::OutOfStock, Some("items[1].quantity")));
        assert_eq!(err.message, "Fourth Wing is sold out; remove it from the order.");
        let mut order = seed::order();
        order.items[0].quantity = 3;
        let lines = verify_items(&order, &catalog).unwrap();
        assert_eq!(
            check_stock(&lines, &catalog, &[2, 40]).unwrap_err().message,
            "Only 2 copies of The Hunger Games are left; lower the quantity."
        );
    }

    #[test]
    fn refuses_unknown_client_card_rather_than_guessing() {
        let order = pb::Order { client_card: "Gold".into(), ..seed::order() };
        assert_eq!(verify_items(&order, &Catalog::embedded()).unwrap_err().field.as_deref(), Some("clientCard"));
    }

    #[test]
    fn refuses_each_missing_user_field_by_name() {
        type Mutation = fn(&mut pb::Order);
        let cases: Vec<(Mutation, &str)> = vec![
            (|o| o.name.clear(), "user.name"),
            (|o| o.email.clear(), "user.contact"),
            (|o| o.billing_address.as_mut().unwrap().street.clear(), "billingAddress.street"),
            (|o| o.billing_address.as_mut().unwrap().city.clear(), "billingAddress.city"),
            (|o| o.billing_address.as_mut().unwrap().zip.clear(), "billingAddress.zip"),
            (|o| o.billing_address.as_mut().unwrap().country.clear(), "billingAddress.country"),
            (|o| o.terms_accepted = false, "termsAccepted"),
        ];
        for (mutate, field) in cases {
            let mut order = seed::order();
            mutate(&mut order);
            assert_eq!(verify_user_data(&order).unwrap_err().field.as_deref(), Some(field));
        }
    }

    #[test]
    fn refuses_bad_card_formats_by_field() {
        let with_card = |number: &str, expiry: &str, cvv: &str| pb::Order {
            card: Some(pb::Card { number: number.into(), expiration_date: expiry.into(), cvv: cvv.into() }),
            ..seed::order()
        };
        let err = verify_card_format(&with_card("4716401589806288", "12/30", "556"), today()).unwrap_err();
        assert_eq!((err.code.as_str(), err.field.as_deref()), ("checksum", Some("creditCard.number")));
        let err = verify_card_format(&with_card("4716401589806287", "10/26", "556"), today()).unwrap_err();
        assert_eq!((err.code.as_str(), err.field.as_deref()), ("expired", Some("creditCard.expirationDate")));
        let err = verify_card_format(&with_card("4716401589806287", "12/30", "55"), today()).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("creditCard.cvv"));
    }
}
