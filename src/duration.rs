//! Durations written with a unit — `250ms`, `5s`, `2m`, `1h`, `30d` — the one parser the
//! configuration, the command line and the index's conditions share. Pure: no I/O.

use std::time::Duration;

/// Microseconds in each accepted unit.
const UNITS: [(&str, u64); 6] = [
    ("ms", 1_000),
    ("s", 1_000_000),
    ("m", 60_000_000),
    ("min", 60_000_000),
    ("h", 3_600_000_000),
    ("d", 86_400_000_000),
];

/// Parses `"250ms"`, `"5s"`, `"2m"` (or `"2min"`), `"1h"` or `"30d"` into
/// microseconds (saturating at `u64::MAX`).
///
/// # Errors
/// A message saying what is accepted.
pub fn parse_micros(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (use e.g. `250ms`, `5s`, `2m`, `1h`)"))?;
    let unit = unit.trim();
    match UNITS.iter().find(|(name, _)| *name == unit) {
        Some((_, micros)) => Ok(n.saturating_mul(*micros)),
        None => Err(format!(
            "`{s}` has no known unit (use e.g. `250ms`, `5s`, `2m`, `1h`)"
        )),
    }
}

/// [`parse_micros`] as a [`Duration`].
///
/// # Errors
/// A message saying what is accepted.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    parse_micros(s).map(Duration::from_micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("2min"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_micros(" 10m "), Ok(600_000_000));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }
}
