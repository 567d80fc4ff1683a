//! The `--from D --to D` date range of `recalcd summary` and `recalcd reflag`, and the
//! `--from T --to T` times of `search` and the other index commands.

use chrono::{NaiveDate, NaiveDateTime};

/// Days `from` to `to`, both inclusive.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct DateRange {
    /// First day of the range (inclusive), YYYY-MM-DD.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub from: NaiveDate,
    /// Last day of the range (inclusive), YYYY-MM-DD.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub to: NaiveDate,
}

impl DateRange {
    /// The range, or a usage error when `--from` is after `--to`.
    ///
    /// # Errors
    /// A usage error (exit code 2) naming both dates.
    pub fn checked(self) -> anyhow::Result<DateRange> {
        if self.from > self.to {
            return Err(super::usage(format!(
                "--from {} is after --to {}",
                self.from, self.to
            )));
        }
        Ok(self)
    }
}

/// A `--from` / `--to` date.
pub(super) fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("'{s}' is not a date YYYY-MM-DD"))
}

/// A `--from` time: a date alone is its midnight.
pub(super) fn parse_from(s: &str) -> Result<NaiveDateTime, String> {
    parse_time(s, false)
}

/// A `--to` time: a date alone is the next midnight (the whole day included).
pub(super) fn parse_to(s: &str) -> Result<NaiveDateTime, String> {
    parse_time(s, true)
}

fn parse_time(s: &str, end_of_day: bool) -> Result<NaiveDateTime, String> {
    recalcd::index::parse_time(s, end_of_day)
}
