//! The wall clock, read in one place for the services and the web server (the
//! domain crate reads none: callers pass it the time).

use std::time::{SystemTime, UNIX_EPOCH};

use domain::YearMonth;

/// Now, in Unix milliseconds: how an order's journey is stamped.
pub fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// This month (UTC), for card expiry.
pub fn this_month() -> YearMonth {
    YearMonth::from_unix_seconds((unix_ms() / 1_000) as i64)
}
