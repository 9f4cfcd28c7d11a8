//! Properties of the wire conversions over generated messages (proptest): what a
//! peer sends, or what a file holds, is read into the domain or refused, never a
//! panic; what the shop writes reads back as it was; and any bytes at all either
//! decode as a message or are refused.

use domain::journey::{LeaderStamp, Vote};
use domain::order::Quantity;
use domain::{ClientCard, OrderState, RefusalClass, Step, VectorClock};
use proptest::prelude::*;
use prost::Message;
use proto::enums::{client_card_from_proto, order_state_from_proto, refusal_class_from_proto};
use proto::journey::{
    checkout_event_from_proto, checkout_event_to_proto, stamp_from_proto, stamp_to_proto, vote_from_proto,
    vote_to_proto,
};
use proto::order_line::order_lines_from_proto;
use proto::v1 as pb;
use proto::vector_clock::{clock_from_proto, clock_to_proto};

/// Any i32, with the values near the enums' over-represented.
fn wire_enum() -> impl Strategy<Value = i32> {
    prop_oneof![any::<i32>(), -2i32..8]
}

fn clock() -> impl Strategy<Value = Option<pb::VectorClock>> {
    prop::option::of(
        prop::collection::vec(prop_oneof![any::<u64>(), 0u64..4], 0..6).prop_map(|entries| pb::VectorClock { entries }),
    )
}

fn wire_event() -> impl Strategy<Value = pb::CheckoutEvent> {
    let step = prop_oneof![
        any::<String>(),
        prop::sample::select(vec!["a", "b", "c", "d", "e", "f", "input", "stock", "enqueue", "clear"])
            .prop_map(str::to_owned),
    ];
    (step, any::<String>(), clock(), any::<u64>(), prop_oneof![Just(String::new()), any::<String>()]).prop_map(
        |(step, service, clock, at_unix_ms, refusal_code)| pb::CheckoutEvent {
            step,
            service,
            clock,
            at_unix_ms,
            refusal_code,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn an_enum_reads_a_known_value_and_refuses_the_rest_naming_its_field(value in wire_enum()) {
        // Exactly the values that name a variant, and never UNSPECIFIED (0).
        let class = refusal_class_from_proto("Refusal.class", value);
        prop_assert_eq!(class.is_ok(), (1..=4).contains(&value), "{:?}", class);
        if let Err(unspecified) = class {
            prop_assert_eq!((unspecified.field, unspecified.value), ("Refusal.class", value));
        }
        prop_assert_eq!(client_card_from_proto("Order.client_card", value).is_ok(), (1..=3).contains(&value));
        prop_assert_eq!(order_state_from_proto("OrderStatusResponse.status", value).is_ok(), (1..=4).contains(&value));
    }

    #[test]
    fn an_enum_crosses_the_wire_and_back_unchanged(index in 0usize..4) {
        let class = [RefusalClass::Invalid, RefusalClass::Fraud, RefusalClass::OutOfStock, RefusalClass::Unavailable][index];
        prop_assert_eq!(refusal_class_from_proto("f", pb::RefusalClass::from(class) as i32), Ok(class));
        let card = [ClientCard::None, ClientCard::Basic, ClientCard::Premium][index % 3];
        prop_assert_eq!(client_card_from_proto("f", pb::ClientCard::from(card) as i32), Ok(card));
        let state = [OrderState::Queued, OrderState::Executing, OrderState::Committed, OrderState::Aborted][index];
        prop_assert_eq!(order_state_from_proto("f", pb::OrderState::from(state) as i32), Ok(state));
    }

    #[test]
    fn order_lines_are_all_read_or_refused_by_the_first_wrong_one(
        lines in prop::collection::vec(
            (prop_oneof![Just(String::new()), "[0-9]{1,3}", any::<String>()], prop_oneof![any::<u32>(), 0u32..102]),
            0..8,
        ),
    ) {
        let wire: Vec<pb::OrderLine> =
            lines.iter().map(|(book_id, quantity)| pb::OrderLine { book_id: book_id.clone(), quantity: *quantity }).collect();
        let first_wrong = wire.iter().position(|line| line.book_id.is_empty() || !(1..=Quantity::MAX).contains(&line.quantity));
        match (order_lines_from_proto("lines", &wire), first_wrong) {
            (Ok(read), None) => {
                prop_assert!(!wire.is_empty());
                let back: Vec<pb::OrderLine> = read.iter().map(pb::OrderLine::from).collect();
                prop_assert_eq!(back, wire);
            }
            (Err(error), Some(index)) => prop_assert!(error.field.starts_with(&format!("lines[{index}].")), "{error:?}"),
            (Err(error), None) => {
                prop_assert!(wire.is_empty());
                prop_assert_eq!(error.code.as_str(), "no_lines");
            }
            (Ok(read), Some(index)) => prop_assert!(false, "line {index} is wrong, yet {read:?} was read"),
        }
    }

    #[test]
    fn a_clock_is_read_only_at_its_width(clock in clock()) {
        match (clock_from_proto(clock.as_ref()), &clock) {
            (Ok(read), None) => prop_assert_eq!(read, VectorClock::default()),
            (Ok(read), Some(wire)) => prop_assert_eq!(&clock_to_proto(read), wire),
            (Err(wrong), Some(wire)) => {
                prop_assert_ne!(wire.entries.len(), 3);
                prop_assert_eq!(wrong.found, wire.entries.len());
            }
            (Err(wrong), None) => prop_assert!(false, "no clock is the zero clock, not {wrong:?}"),
        }
    }

    #[test]
    fn an_event_is_read_whole_or_skipped_and_reads_back_as_written(wire in wire_event()) {
        match checkout_event_from_proto(&wire) {
            Some(event) => {
                prop_assert!(Step::parse(&wire.step).is_some());
                prop_assert_eq!(checkout_event_to_proto(&event), wire);
            }
            None => prop_assert!(
                Step::parse(&wire.step).is_none() || wire.clock.as_ref().is_some_and(|clock| clock.entries.len() != 3)
            ),
        }
    }

    #[test]
    fn stamps_and_votes_cross_the_wire_unchanged(
        node in any::<u64>(), term in any::<u64>(), at_ms in any::<u64>(),
        participant in any::<String>(), yes in any::<bool>(), reason in prop::option::of("[a-z_ ]{1,20}"),
    ) {
        let stamp = LeaderStamp { node, term, at_ms };
        prop_assert_eq!(stamp_from_proto(&stamp_to_proto(&stamp)), stamp);
        let vote = Vote { participant, yes, reason, at_ms };
        prop_assert_eq!(vote_from_proto(&vote_to_proto(&vote)), vote);
    }

    #[test]
    fn any_bytes_decode_as_a_stored_message_or_are_refused(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        // What the queue's file and the payment ledger hold, and what the services
        // send each other: a corrupt record is an error, and whatever decodes
        // goes through the same conversions as a message from a peer.
        if let Ok(queued) = pb::QueuedOrder::decode(bytes.as_slice()) {
            let _ = order_lines_from_proto("lines", &queued.lines);
            let _ = client_card_from_proto("QueuedOrder.client_card", queued.client_card);
            let _ = queued.checkout_events.iter().map(checkout_event_from_proto).count();
        }
        if let Ok(status) = pb::OrderStatusResponse::decode(bytes.as_slice()) {
            let _ = order_state_from_proto("OrderStatusResponse.status", status.status);
        }
        let _ = pb::PaymentRecord::decode(bytes.as_slice());
        let _ = pb::EventRequest::decode(bytes.as_slice()).map(|event| clock_from_proto(event.clock.as_ref()));
        let _ = pb::BooksPrepareRequest::decode(bytes.as_slice()).map(|prepare| order_lines_from_proto("lines", &prepare.lines));
    }

    #[test]
    fn a_written_message_decodes_to_itself(wire in wire_event()) {
        let bytes = wire.encode_to_vec();
        prop_assert_eq!(pb::CheckoutEvent::decode(bytes.as_slice()), Ok(wire));
    }
}
