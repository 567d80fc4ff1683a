//! The indexes over recalculated channels: pure algorithms, tested and benchmarked in
//! memory. Nothing here knows SQL, the store, the configuration or tokio; the store
//! keeps what these types describe (in its dialect modules) and the service drives
//! the searches.
//!
//! - [`feature`] — the feature index: per device and channel a hierarchy of time
//!   buckets (e.g. 1 d / 1 h / 10 min / 1 min, aligned to UTC midnight), each with
//!   features that combine upward (count, sum, sum of squares, min, max, first, last).

pub mod condition;
mod exact;
pub mod feature;
pub mod judge;
mod plan;
pub mod scan;
pub mod search;

/// A point in time: microseconds since 1970-01-01 00:00 UTC (the stores' timestamp
/// resolution).
pub type Micros = i64;

/// Microseconds in a second.
pub const SECOND: Micros = 1_000_000;
/// Microseconds in a day.
pub const DAY: Micros = 86_400 * SECOND;

/// One stored row of a channel, in time order within a device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// The row's `datetime`.
    pub t: Micros,
    /// The channel's value; `None` when the row holds the channel but not as a number
    /// (a string, a vector, an unreadable value). Rows without the channel are not
    /// points.
    pub v: Option<f64>,
}

impl Point {
    /// The value when it is a number: `None` for a missing value and for NaN, which
    /// the index and the search count as "not a number" like a string.
    pub fn value(&self) -> Option<f64> {
        self.v.filter(|v| !v.is_nan())
    }
}

/// `t` as [`Micros`].
pub fn micros(t: chrono::NaiveDateTime) -> Micros {
    t.and_utc().timestamp_micros()
}

/// [`Micros`] as a timestamp (saturating at chrono's range).
pub fn datetime(t: Micros) -> chrono::NaiveDateTime {
    chrono::DateTime::from_timestamp_micros(t)
        .map(|d| d.naive_utc())
        .unwrap_or(if t < 0 {
            chrono::NaiveDateTime::MIN
        } else {
            chrono::NaiveDateTime::MAX
        })
}
