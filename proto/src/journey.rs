//! An order's journey on the wire: `domain::journey` ↔ the `CheckoutEvent`,
//! `LeaderStamp` and `Vote` messages the orchestrator, the queue and the executors
//! pass along (see `domain::journey` for what each part means). They are stamped
//! with `platform::clock::unix_ms`.

use crate::v1 as pb;
use domain::journey::{CheckoutEvent, LeaderStamp, Vote};
use domain::{Step, VectorClock};

pub fn checkout_event_to_proto(event: &CheckoutEvent) -> pb::CheckoutEvent {
    pb::CheckoutEvent {
        step: event.step.as_str().to_owned(),
        service: event.service.clone(),
        clock: event.clock.map(crate::vector_clock::clock_to_proto),
        at_unix_ms: event.at_ms,
        refusal_code: event.refusal.clone().unwrap_or_default(),
    }
}

/// `None` for an event this version does not know (a step it cannot name, a clock
/// of the wrong width): a journey shows what it can read.
pub fn checkout_event_from_proto(event: &pb::CheckoutEvent) -> Option<CheckoutEvent> {
    let clock = match &event.clock {
        Some(clock) => Some(VectorClock::from_slice(&clock.entries).ok()?),
        None => None,
    };
    Some(CheckoutEvent {
        step: Step::parse(&event.step)?,
        service: event.service.clone(),
        clock,
        at_ms: event.at_unix_ms,
        refusal: Some(event.refusal_code.clone()).filter(|code| !code.is_empty()),
    })
}

pub fn checkout_events_from_proto(events: &[pb::CheckoutEvent]) -> Vec<CheckoutEvent> {
    events.iter().filter_map(checkout_event_from_proto).collect()
}

pub fn stamp_to_proto(stamp: &LeaderStamp) -> pb::LeaderStamp {
    pb::LeaderStamp { node_id: stamp.node, term: stamp.term, at_unix_ms: stamp.at_ms }
}

pub fn stamp_from_proto(stamp: &pb::LeaderStamp) -> LeaderStamp {
    LeaderStamp { node: stamp.node_id, term: stamp.term, at_ms: stamp.at_unix_ms }
}

pub fn vote_to_proto(vote: &Vote) -> pb::Vote {
    pb::Vote {
        participant: vote.participant.clone(),
        yes: vote.yes,
        reason: vote.reason.clone().unwrap_or_default(),
        at_unix_ms: vote.at_ms,
    }
}

pub fn vote_from_proto(vote: &pb::Vote) -> Vote {
    Vote {
        participant: vote.participant.clone(),
        yes: vote.yes,
        reason: Some(vote.reason.clone()).filter(|reason| !reason.is_empty()),
        at_ms: vote.at_unix_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkout_event_survives_the_wire_and_an_unreadable_one_is_left_out() {
        let event = CheckoutEvent {
            step: Step::CheckCard,
            service: "fraud_detection".into(),
            clock: Some(VectorClock::new([3, 2, 0])),
            at_ms: 42,
            refusal: Some("card_blocklisted".into()),
        };
        assert_eq!(checkout_event_from_proto(&checkout_event_to_proto(&event)), Some(event.clone()));
        let silent = CheckoutEvent { clock: None, refusal: None, ..event };
        assert_eq!(checkout_event_from_proto(&checkout_event_to_proto(&silent)), Some(silent));
        let unknown = pb::CheckoutEvent { step: "teleport".into(), ..Default::default() };
        let too_wide = pb::CheckoutEvent {
            step: "verify_items".into(),
            clock: Some(pb::VectorClock { entries: vec![1, 0, 0, 0] }),
            ..Default::default()
        };
        assert!(checkout_events_from_proto(&[unknown, too_wide]).is_empty());
    }

    #[test]
    fn stamps_and_votes_survive_the_wire() {
        let stamp = LeaderStamp { node: 2, term: 7, at_ms: 99 };
        assert_eq!(stamp_from_proto(&stamp_to_proto(&stamp)), stamp);
        let vote = Vote { participant: "payment".into(), yes: false, reason: Some("card declined".into()), at_ms: 5 };
        assert_eq!(vote_from_proto(&vote_to_proto(&vote)), vote);
    }
}
