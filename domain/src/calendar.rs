//! Calendar months, the only unit of time card expiry needs.

use std::fmt;

/// A month of the Gregorian calendar (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearMonth {
    year: u16,
    month: u8,
}

impl YearMonth {
    /// `None` unless `month` is 1..=12.
    pub fn new(year: u16, month: u8) -> Option<Self> {
        (1..=12).contains(&month).then_some(Self { year, month })
    }

    pub fn year(self) -> u16 {
        self.year
    }

    pub fn month(self) -> u8 {
        self.month
    }

    /// The UTC month containing `unix_seconds` (seconds since 1970-01-01T00:00:00Z).
    pub fn from_unix_seconds(unix_seconds: i64) -> Self {
        let (year, month) = civil_year_month(unix_seconds.div_euclid(86_400));
        Self { year: year.clamp(0, i64::from(u16::MAX)) as u16, month }
    }

    /// The month `months` after this one.
    pub fn plus_months(self, months: u32) -> Self {
        let index = u32::from(self.year) * 12 + u32::from(self.month - 1) + months;
        Self { year: (index / 12).min(u32::from(u16::MAX)) as u16, month: (index % 12) as u8 + 1 }
    }
}

impl fmt::Display for YearMonth {
    /// `MM/YY`, as printed on cards.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}/{:02}", self.month, self.year % 100)
    }
}

/// Year and month of the day `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, valid for the whole proleptic Gregorian calendar).
fn civil_year_month(days: i64) -> (i64, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // March = 0
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_unix_seconds_to_utc_months() {
        assert_eq!(YearMonth::from_unix_seconds(0), YearMonth::new(1970, 1).unwrap());
        // 2024-02-29T23:59:59Z, a leap day.
        assert_eq!(YearMonth::from_unix_seconds(1_709_251_199), YearMonth::new(2024, 2).unwrap());
        // 2024-03-01T00:00:00Z
        assert_eq!(YearMonth::from_unix_seconds(1_709_251_200), YearMonth::new(2024, 3).unwrap());
        // 2026-12-31T23:59:59Z and the next second.
        assert_eq!(YearMonth::from_unix_seconds(1_798_761_599), YearMonth::new(2026, 12).unwrap());
        assert_eq!(YearMonth::from_unix_seconds(1_798_761_600), YearMonth::new(2027, 1).unwrap());
    }

    #[test]
    fn adds_months_across_year_ends() {
        let december = YearMonth::new(2026, 12).unwrap();
        assert_eq!(december.plus_months(1), YearMonth::new(2027, 1).unwrap());
        assert_eq!(december.plus_months(13), YearMonth::new(2028, 1).unwrap());
        assert_eq!(december.plus_months(0), december);
    }

    #[test]
    fn rejects_month_zero_and_thirteen() {
        assert!(YearMonth::new(2026, 0).is_none());
        assert!(YearMonth::new(2026, 13).is_none());
    }

    #[test]
    fn displays_as_printed_on_cards() {
        assert_eq!(YearMonth::new(2029, 8).unwrap().to_string(), "08/29");
    }
}
