//! Vector clocks over the three verification services.
//!
//! Index 0 is transaction_verification, 1 fraud_detection, 2 suggestions. Every
//! event merges the caller's clock into the service's own (element-wise max) and
//! then ticks the service's entry, so the clocks order the checkout's events
//! a–f the way the flow does: an approved order ends at `[3, 2, 1]`.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The three verification services: each owns an entry of the clock and keeps a
/// copy of the order while it is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verifier {
    TransactionVerification = 0,
    FraudDetection = 1,
    Suggestions = 2,
}

impl Verifier {
    pub const COUNT: usize = 3;
    pub const ALL: [Self; Self::COUNT] = [Self::TransactionVerification, Self::FraudDetection, Self::Suggestions];

    /// Its entry in the clock.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The service's name, as logs and refusals give it.
    pub fn name(self) -> &'static str {
        match self {
            Self::TransactionVerification => "transaction_verification",
            Self::FraudDetection => "fraud_detection",
            Self::Suggestions => "suggestions",
        }
    }
}

#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VectorClock([u64; Verifier::COUNT]);

/// A clock received from elsewhere had the wrong number of entries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a vector clock has {expected} entries, this one has {found}")]
pub struct WrongWidth {
    pub expected: usize,
    pub found: usize,
}

impl VectorClock {
    /// The clock of an approved checkout: TV ran a, b, c; FD ran d, e; SG ran f.
    pub const APPROVED: Self = Self([3, 2, 1]);

    pub const fn new(entries: [u64; Verifier::COUNT]) -> Self {
        Self(entries)
    }

    pub fn from_slice(entries: &[u64]) -> Result<Self, WrongWidth> {
        <[u64; Verifier::COUNT]>::try_from(entries)
            .map(Self)
            .map_err(|_| WrongWidth { expected: Verifier::COUNT, found: entries.len() })
    }

    pub fn entries(&self) -> &[u64; Verifier::COUNT] {
        &self.0
    }

    pub fn get(&self, verifier: Verifier) -> u64 {
        self.0[verifier.index()]
    }

    /// Element-wise maximum with `other`.
    pub fn merge(&mut self, other: &Self) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine = (*mine).max(theirs);
        }
    }

    pub fn merged(mut self, other: &Self) -> Self {
        self.merge(other);
        self
    }

    /// Records one local event of `verifier`.
    pub fn tick(&mut self, verifier: Verifier) {
        let entry = &mut self.0[verifier.index()];
        *entry = entry.saturating_add(1);
    }

    /// The receive rule: merge the incoming clock, then tick.
    pub fn receive(&mut self, incoming: &Self, verifier: Verifier) {
        self.merge(incoming);
        self.tick(verifier);
    }

    /// Every entry ≤ the other's: this state happened before or equals `other`.
    pub fn le(&self, other: &Self) -> bool {
        self.0.iter().zip(other.0).all(|(mine, theirs)| *mine <= theirs)
    }

    /// Neither happened before the other.
    pub fn concurrent_with(&self, other: &Self) -> bool {
        self.partial_cmp(other).is_none()
    }
}

impl PartialOrd for VectorClock {
    /// The happened-before order; `None` for concurrent clocks.
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match (self.le(other), other.le(self)) {
            (true, true) => Some(Ordering::Equal),
            (true, false) => Some(Ordering::Less),
            (false, true) => Some(Ordering::Greater),
            (false, false) => None,
        }
    }
}

impl fmt::Debug for VectorClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl fmt::Display for VectorClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{},{},{}]", self.0[0], self.0[1], self.0[2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verifier::*;

    #[test]
    fn merge_takes_the_elementwise_maximum() {
        let mut a = VectorClock::new([3, 0, 1]);
        a.merge(&VectorClock::new([1, 2, 0]));
        assert_eq!(a, VectorClock::new([3, 2, 1]));
    }

    #[test]
    fn receive_merges_then_ticks_the_own_entry() {
        let mut fd = VectorClock::default();
        fd.receive(&VectorClock::new([2, 0, 0]), FraudDetection);
        assert_eq!(fd, VectorClock::new([2, 1, 0]));
    }

    #[test]
    fn compares_by_happened_before() {
        let early = VectorClock::new([1, 0, 0]);
        let late = VectorClock::new([3, 2, 1]);
        assert!(early < late);
        assert!(late > early);
        assert!(early.le(&early));
        let left = VectorClock::new([2, 0, 0]);
        let right = VectorClock::new([1, 1, 0]);
        assert!(left.concurrent_with(&right));
        assert!(!left.le(&right) && !right.le(&left));
    }

    #[test]
    fn the_checkout_flow_ends_at_3_2_1() {
        // a and b at TV, then c; d at FD after b; e after c and d; f after e.
        let mut tv = VectorClock::default();
        let mut fd = VectorClock::default();
        let mut sg = VectorClock::default();
        let start = VectorClock::default();
        tv.receive(&start, TransactionVerification);
        let after_a = tv;
        tv.receive(&start, TransactionVerification);
        let after_b = tv;
        tv.receive(&after_a, TransactionVerification);
        let after_c = tv;
        fd.receive(&after_b, FraudDetection);
        let after_d = fd;
        fd.receive(&after_c.merged(&after_d), FraudDetection);
        let after_e = fd;
        sg.receive(&after_e, Suggestions);
        assert_eq!(sg, VectorClock::APPROVED);
        assert!(tv.le(&sg) && fd.le(&sg));
    }

    #[test]
    fn from_slice_checks_the_width() {
        assert_eq!(VectorClock::from_slice(&[1, 2, 3]).unwrap(), VectorClock::new([1, 2, 3]));
        assert_eq!(VectorClock::from_slice(&[1, 2]).unwrap_err(), WrongWidth { expected: 3, found: 2 });
    }
}
