//! `domain::VectorClock` ↔ `VectorClock` on the wire. An absent clock is the
//! zero clock (a message that carries none has seen no event).

use domain::vector_clock::WrongWidth;
use domain::VectorClock;

use crate::v1 as pb;

pub fn clock_from_proto(clock: Option<&pb::VectorClock>) -> Result<VectorClock, WrongWidth> {
    match clock {
        Some(clock) => VectorClock::from_slice(&clock.entries),
        None => Ok(VectorClock::default()),
    }
}

pub fn clock_to_proto(clock: VectorClock) -> pb::VectorClock {
    pb::VectorClock { entries: clock.entries().to_vec() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_crosses_the_wire_unchanged_and_a_wrong_width_is_refused() {
        let clock = VectorClock::from_slice(&[3, 2, 1]).unwrap();
        assert_eq!(clock_from_proto(Some(&clock_to_proto(clock))).unwrap(), clock);
        assert_eq!(clock_from_proto(None).unwrap(), VectorClock::default());
        assert!(clock_from_proto(Some(&pb::VectorClock { entries: vec![1, 2] })).is_err());
    }
}
