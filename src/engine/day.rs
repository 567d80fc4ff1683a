//! Working days: which day a job belongs to, from the device's day break `#WB` read in
//! its time zone `#TZ`.
//!
//! A working day runs from one day break to the next. Timestamps in the store are UTC;
//! the day break is a local wall-clock time, so a day is usually 24 hours long but 23 or
//! 25 hours around a daylight-saving change. Our definitions for the two cases where the
//! wall clock is not a single instant:
//! - a break that falls into a gap (clocks jump forward over it) happens at the first
//!   wall-clock time after the gap, i.e. when the clocks jump;
//! - a break that occurs twice (clocks go back) happens the first time.

use std::fmt;
use std::str::FromStr;

use chrono::{Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike};
use chrono_tz::Tz;

/// The local time of day at which a device's working day starts (`#WB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayBreak(NaiveTime);

/// Why a `#WB` or `#TZ` value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DayError {
    /// `#WB` is not `HH:MM` or `HH:MM:SS`.
    #[error("day break {0:?} is not a time of day HH:MM or HH:MM:SS")]
    BadBreak(String),
    /// `#TZ` is not an IANA time zone name.
    #[error("time zone {0:?} is not an IANA time zone name such as Europe/Prague")]
    BadZone(String),
}

impl DayBreak {
    /// A break at midnight.
    pub const MIDNIGHT: DayBreak = DayBreak(NaiveTime::MIN);
}

impl FromStr for DayBreak {
    type Err = DayError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let parsed = match t.len() {
            5 => NaiveTime::parse_from_str(t, "%H:%M"),
            8 => NaiveTime::parse_from_str(t, "%H:%M:%S"),
            _ => return Err(DayError::BadBreak(s.to_owned())),
        };
        parsed
            .map(DayBreak)
            .map_err(|_| DayError::BadBreak(s.to_owned()))
    }
}

impl fmt::Display for DayBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%H:%M:%S"))
    }
}

/// Parses a `#TZ` value (an IANA name such as `Europe/Prague`, or `UTC`).
///
/// # Errors
/// [`DayError::BadZone`] when the name is not in the time zone database.
pub fn parse_zone(name: &str) -> Result<Tz, DayError> {
    name.trim()
        .parse::<Tz>()
        .map_err(|_| DayError::BadZone(name.to_owned()))
}

/// One working day of a device: `[start, end)` in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DaySpan {
    /// The day break that starts the day (the day row's `datetime`).
    pub start: NaiveDateTime,
    /// The next day break (`#WE`), exclusive.
    pub end: NaiveDateTime,
}

/// Assigns UTC instants to working days for one device.
#[derive(Debug, Clone, Copy)]
pub struct DayClock {
    /// The local wall-clock time at which each day starts.
    brk: DayBreak,
    /// The zone the day break is read in.
    zone: Tz,
}

impl DayClock {
    /// A clock for a device whose day starts at `brk` local time in `zone`.
    pub fn new(brk: DayBreak, zone: Tz) -> DayClock {
        DayClock { brk, zone }
    }

    /// The working day that holds the UTC instant `t` (a job belongs to the day in which
    /// it starts).
    pub fn day_of(&self, t: NaiveDateTime) -> DaySpan {
        let local_date = self.zone.from_utc_datetime(&t).date_naive();
        // The local date is a first guess; the break of that date may lie after `t`
        // (then the day started the date before) — at most one step either way.
        let mut date = local_date;
        if self.break_on(date) > t {
            date = date.pred_opt().unwrap_or(date);
        } else if self.break_on(next(date)) <= t {
            date = next(date);
        }
        DaySpan {
            start: self.break_on(date),
            end: self.break_on(next(date)),
        }
    }

    /// The UTC instant of the day break on the local `date` (the start of that
    /// working day).
    pub fn break_on(&self, date: NaiveDate) -> NaiveDateTime {
        let wall = date.and_time(self.brk.0);
        match self.zone.from_local_datetime(&wall) {
            LocalResult::Single(t) => t.naive_utc(),
            LocalResult::Ambiguous(first, _) => first.naive_utc(),
            LocalResult::None => {
                // In a gap: the first whole wall-clock minute after it. Gaps are at most
                // a few hours long; a day bounds the search regardless.
                let mut probe = wall.with_second(0).unwrap_or(wall);
                for _ in 0..24 * 60 {
                    probe += Duration::minutes(1);
                    if let Some(t) = self.zone.from_local_datetime(&probe).earliest() {
                        return t.naive_utc();
                    }
                }
                wall // unreachable for real zones: no gap lasts a day
            }
        }
    }
}

fn next(date: NaiveDate) -> NaiveDate {
    date.succ_opt().unwrap_or(date)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn clock(brk: &str, zone: &str) -> DayClock {
        DayClock::new(brk.parse().unwrap(), parse_zone(zone).unwrap())
    }

    #[test]
    fn parses_day_breaks() {
        assert_eq!("06:00".parse::<DayBreak>().unwrap().to_string(), "06:00:00");
        assert_eq!(
            " 23:59:30 ".parse::<DayBreak>().unwrap().to_string(),
            "23:59:30"
        );
        for bad in ["6:00", "24:00", "06:60", "06-00", "", "06:00:00:00", "noon"] {
            assert_eq!(
                bad.parse::<DayBreak>(),
                Err(DayError::BadBreak(bad.to_owned())),
                "{bad}"
            );
        }
    }

    #[test]
    fn parses_zones() {
        assert!(parse_zone("Europe/Prague").is_ok());
        assert!(parse_zone("UTC").is_ok());
        assert_eq!(
            parse_zone("Mars/Olympus").unwrap_err(),
            DayError::BadZone("Mars/Olympus".into())
        );
    }

    #[test]
    fn utc_break_before_and_after() {
        let c = clock("06:00", "UTC");
        let before = c.day_of(at("2024-03-01 05:59:59"));
        assert_eq!(before.start, at("2024-02-29 06:00:00"));
        assert_eq!(before.end, at("2024-03-01 06:00:00"));
        let on = c.day_of(at("2024-03-01 06:00:00"));
        assert_eq!(on.start, at("2024-03-01 06:00:00"));
        assert_eq!(on.end, at("2024-03-02 06:00:00"));
    }

    #[test]
    fn midnight_break_in_another_zone() {
        // 23:30 UTC on Jan 10 is 00:30 on Jan 11 in Prague (UTC+1).
        let c = clock("00:00", "Europe/Prague");
        let d = c.day_of(at("2024-01-10 23:30:00"));
        assert_eq!(d.start, at("2024-01-10 23:00:00"));
        assert_eq!(d.end, at("2024-01-11 23:00:00"));
        let d = c.day_of(at("2024-01-10 22:59:59"));
        assert_eq!(d.start, at("2024-01-09 23:00:00"));
    }

    #[test]
    fn late_evening_break() {
        // A day break at 22:00 local in New York (UTC-5 in January).
        let c = clock("22:00", "America/New_York");
        let d = c.day_of(at("2024-01-11 02:30:00")); // 21:30 local on Jan 10
        assert_eq!(d.start, at("2024-01-10 03:00:00")); // 22:00 local on Jan 9
        assert_eq!(d.end, at("2024-01-11 03:00:00"));
    }

    #[test]
    fn break_in_a_spring_forward_gap_happens_when_clocks_jump() {
        // Prague, 2024-03-31: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
        let c = clock("02:30", "Europe/Prague");
        let d = c.day_of(at("2024-03-31 01:00:00"));
        assert_eq!(d.start, at("2024-03-31 01:00:00"));
        assert_eq!(d.end, at("2024-04-01 00:30:00"));
        let before = c.day_of(at("2024-03-31 00:59:59"));
        assert_eq!(before.start, at("2024-03-30 01:30:00"));
        assert_eq!(before.end, at("2024-03-31 01:00:00")); // a 23.5-hour day
    }

    #[test]
    fn break_repeated_when_clocks_go_back_happens_the_first_time() {
        // Prague, 2024-10-27: 03:00 CEST goes back to 02:00 CET; 02:30 occurs twice,
        // first at 00:30 UTC, again at 01:30 UTC.
        let c = clock("02:30", "Europe/Prague");
        let d = c.day_of(at("2024-10-27 01:30:00"));
        assert_eq!(d.start, at("2024-10-27 00:30:00"));
        assert_eq!(d.end, at("2024-10-28 01:30:00")); // a 25-hour day
    }
}
