//! Amounts of money, in euro cents so that sums are exact.

use std::fmt;
use std::iter::Sum;
use std::ops::Add;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Money {
    cents: u64,
}

impl Money {
    pub const ZERO: Self = Self { cents: 0 };

    pub const fn from_cents(cents: u64) -> Self {
        Self { cents }
    }

    pub const fn cents(self) -> u64 {
        self.cents
    }

    pub fn times(self, count: u32) -> Self {
        Self { cents: self.cents.saturating_mul(u64::from(count)) }
    }
}

impl Add for Money {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        Self { cents: self.cents.saturating_add(other.cents) }
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::ZERO, Add::add)
    }
}

impl fmt::Display for Money {
    /// `€12.34`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "€{}.{:02}", self.cents / 100, self.cents % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_euros_and_cents() {
        assert_eq!(Money::from_cents(1099).to_string(), "€10.99");
        assert_eq!(Money::from_cents(5).to_string(), "€0.05");
        assert_eq!([Money::from_cents(1099), Money::from_cents(1)].into_iter().sum::<Money>(), Money::from_cents(1100));
    }
}
