//! The wire's enums ↔ the domain's. On the wire every enum starts with
//! `UNSPECIFIED = 0`, which is what an unset field or a number this version does
//! not know reads as; reading refuses it ([`Unspecified`]) instead of guessing a
//! default. Writing is total.

use domain::{ClientCard, OrderState, RefusalClass};

use crate::v1 as pb;

/// A wire enum that was unset or held a value this version does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unspecified {
    /// The message field, as the .proto names it (`Refusal.class`).
    pub field: &'static str,
    pub value: i32,
}

impl std::fmt::Display for Unspecified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is unspecified or unknown ({})", self.field, self.value)
    }
}

impl std::error::Error for Unspecified {}

pub fn refusal_class_from_proto(field: &'static str, value: i32) -> Result<RefusalClass, Unspecified> {
    match pb::RefusalClass::try_from(value) {
        Ok(pb::RefusalClass::Invalid) => Ok(RefusalClass::Invalid),
        Ok(pb::RefusalClass::Fraud) => Ok(RefusalClass::Fraud),
        Ok(pb::RefusalClass::OutOfStock) => Ok(RefusalClass::OutOfStock),
        Ok(pb::RefusalClass::Unavailable) => Ok(RefusalClass::Unavailable),
        Ok(pb::RefusalClass::Unspecified) | Err(_) => Err(Unspecified { field, value }),
    }
}

impl From<RefusalClass> for pb::RefusalClass {
    fn from(class: RefusalClass) -> Self {
        match class {
            RefusalClass::Invalid => Self::Invalid,
            RefusalClass::Fraud => Self::Fraud,
            RefusalClass::OutOfStock => Self::OutOfStock,
            RefusalClass::Unavailable => Self::Unavailable,
        }
    }
}

pub fn client_card_from_proto(field: &'static str, value: i32) -> Result<ClientCard, Unspecified> {
    match pb::ClientCard::try_from(value) {
        Ok(pb::ClientCard::None) => Ok(ClientCard::None),
        Ok(pb::ClientCard::Basic) => Ok(ClientCard::Basic),
        Ok(pb::ClientCard::Premium) => Ok(ClientCard::Premium),
        Ok(pb::ClientCard::Unspecified) | Err(_) => Err(Unspecified { field, value }),
    }
}

impl From<ClientCard> for pb::ClientCard {
    fn from(card: ClientCard) -> Self {
        match card {
            ClientCard::None => Self::None,
            ClientCard::Basic => Self::Basic,
            ClientCard::Premium => Self::Premium,
        }
    }
}

pub fn order_state_from_proto(field: &'static str, value: i32) -> Result<OrderState, Unspecified> {
    match pb::OrderState::try_from(value) {
        Ok(pb::OrderState::Queued) => Ok(OrderState::Queued),
        Ok(pb::OrderState::Executing) => Ok(OrderState::Executing),
        Ok(pb::OrderState::Committed) => Ok(OrderState::Committed),
        Ok(pb::OrderState::Aborted) => Ok(OrderState::Aborted),
        Ok(pb::OrderState::Unspecified) | Err(_) => Err(Unspecified { field, value }),
    }
}

impl From<OrderState> for pb::OrderState {
    fn from(state: OrderState) -> Self {
        match state {
            OrderState::Queued => Self::Queued,
            OrderState::Executing => Self::Executing,
            OrderState::Committed => Self::Committed,
            OrderState::Aborted => Self::Aborted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_crosses_the_wire_unchanged() {
        for class in [RefusalClass::Invalid, RefusalClass::Fraud, RefusalClass::OutOfStock, RefusalClass::Unavailable] {
            assert_eq!(refusal_class_from_proto("class", pb::RefusalClass::from(class) as i32), Ok(class));
        }
        for card in ClientCard::ALL {
            assert_eq!(client_card_from_proto("client_card", pb::ClientCard::from(card) as i32), Ok(card));
        }
        for state in [OrderState::Queued, OrderState::Executing, OrderState::Committed, OrderState::Aborted] {
            assert_eq!(order_state_from_proto("status", pb::OrderState::from(state) as i32), Ok(state));
        }
    }

    #[test]
    fn unspecified_and_unknown_values_are_refused_not_defaulted() {
        assert_eq!(refusal_class_from_proto("Refusal.class", 0), Err(Unspecified { field: "Refusal.class", value: 0 }));
        assert!(client_card_from_proto("QueuedOrder.client_card", 0).is_err());
        assert!(client_card_from_proto("QueuedOrder.client_card", 99).is_err());
        assert!(order_state_from_proto("OrderStatusResponse.status", 0).is_err());
        assert_eq!(
            Unspecified { field: "Refusal.class", value: 7 }.to_string(),
            "Refusal.class is unspecified or unknown (7)"
        );
    }

    /// The queue's file holds `QueuedOrder`s written when the client card was a
    /// string at field 2: they still read, with the priority unspecified (the
    /// queue keeps the rank apart, and the executors read it as unknown).
    #[test]
    fn a_queued_order_written_before_the_enums_still_decodes() {
        use prost::Message;

        #[derive(Clone, PartialEq, prost::Message)]
        struct QueuedOrderBefore {
            #[prost(string, tag = "1")]
            order_id: String,
            #[prost(string, tag = "2")]
            client_card: String,
            #[prost(uint64, tag = "4")]
            total_cents: u64,
        }
        let before = QueuedOrderBefore { order_id: "o1".into(), client_card: "Premium".into(), total_cents: 1099 };
        let read = pb::QueuedOrder::decode(before.encode_to_vec().as_slice()).unwrap();
        assert_eq!((read.order_id.as_str(), read.total_cents), ("o1", 1099));
        assert_eq!(read.client_card(), pb::ClientCard::Unspecified);
        assert!(client_card_from_proto("QueuedOrder.client_card", read.client_card).is_err());
    }
}
