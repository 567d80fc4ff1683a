//! The indexes over recalculated channels: pure algorithms, tested and benchmarked in
//! memory. Nothing here knows SQL, the store, the configuration or the async runtime; the store
//! keeps what these types describe (in its dialect modules) and the service drives
//! the searches.
//!
//! - [`feature`] — the feature index: per device and channel a hierarchy of time
//!   buckets (e.g. 1 d / 1 h / 10 min / 1 min, aligned to UTC midnight), each with
//!   features that combine upward (count, sum, sum of squares, min, max, first, last).
//! - [`condition`] — the search conditions (`AVG(w) > X`, `RUN(>= X, d)`, …), parsed
//!   with the column of any error.
//! - [`scan`] — the exact semantics: the brute-force oracle and the O(n) evaluator.
//! - [`judge`] — what a bucket's features say: no match, certain, possible.
//! - [`search`] — one search of one device, a SANS-IO state machine the store drives.
//! - [`series`] — the series files users hand to the similarity commands.
//! - [`m4`] — M4 aggregation: per pixel column first, last, min and max (pixel-exact
//!   line charts).
//! - [`plot`] — the progressive view, a SANS-IO state machine from the coarsest level
//!   to the exact M4 of every row.
//! - [`similarity`] — whole matching of jobs: DFT-bounded exact nearest neighbours,
//!   and an iSAX tree for approximate ones.
//!
//! # The available engines
//!
//! Every engine answers exactly what [`scan::brute_force`] gives over the rows in the
//! range; they differ in what they read ([`search::Method`]):
//!
//! | engine | reads | wins when | cannot |
//! |---|---|---|---|
//! | scan | every row | most of the range could match; no index | — |
//! | filtering | coarse-to-fine buckets, rows of *possible* buckets | `MIN`, `MAX`, `RUN`, `SUM`; selective conditions | — |
//! | fixed | one level (closest to the window), rows of *possible* buckets | `AVG` | — |
//!
//! `auto` picks filtering or fixed by the condition, and scans when there is no index or
//! when, once the buckets are judged, most rows would be read anyway. Buckets cut by the
//! range or overlapping a span the caller does not trust are always read raw.

pub mod condition;
mod exact;
pub mod feature;
pub mod judge;
pub mod m4;
mod plan;
pub mod plot;
pub mod scan;
pub mod search;
pub mod series;
pub mod similarity;
pub mod subsequence;

/// A point in time: microseconds since 1970-01-01 00:00 UTC (the stores' timestamp
/// resolution).
pub type Micros = i64;

/// Microseconds in a second.
pub const SECOND: Micros = 1_000_000;
/// Microseconds in a day.
pub const DAY: Micros = 86_400 * SECOND;

/// One stored row of a channel, in time order within a device.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
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

/// A time as the commands and the API take it (UTC): `YYYY-MM-DDTHH:MM:SS[.ffffff]`, or
/// a date `YYYY-MM-DD` for its midnight — or, with `end_of_day` (a range's end), for the
/// next midnight, so that the whole day is included.
///
/// # Errors
/// A message quoting `s` and naming the accepted forms.
pub fn parse_time(s: &str, end_of_day: bool) -> Result<chrono::NaiveDateTime, String> {
    use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
    let s = s.trim();
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Ok(t);
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let d = if end_of_day {
            d.succ_opt()
                .ok_or_else(|| format!("'{s}' is the last representable day"))?
        } else {
            d
        };
        return Ok(d.and_time(NaiveTime::MIN));
    }
    Err(format!(
        "'{s}' is not a time YYYY-MM-DDTHH:MM:SS[.ffffff] (UTC) or a date YYYY-MM-DD"
    ))
}

/// `spans` sorted and merged where they overlap or touch.
pub fn merge_spans(spans: Vec<(Micros, Micros)>) -> Vec<(Micros, Micros)> {
    merge_device_spans(spans.into_iter().map(|(a, b)| (0, a, b)).collect())
        .into_iter()
        .map(|(_, a, b)| (a, b))
        .collect()
}

/// A half-open span of time of one device: `(id, from, to)`.
pub type DeviceSpan = (i32, Micros, Micros);

/// `spans` without empty ones, sorted by device and time, and merged where two of one
/// device overlap or touch.
pub fn merge_device_spans(mut spans: Vec<DeviceSpan>) -> Vec<DeviceSpan> {
    spans.retain(|s| s.1 < s.2);
    spans.sort_unstable();
    let mut out: Vec<DeviceSpan> = Vec::with_capacity(spans.len());
    for s in spans {
        match out.last_mut() {
            Some(last) if s.0 == last.0 && s.1 <= last.2 => last.2 = last.2.max(s.2),
            _ => out.push(s),
        }
    }
    out
}
