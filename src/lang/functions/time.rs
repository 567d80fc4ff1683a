//! Times: `DDIF`, `DADD`, `DWEEK`, and the time reader they share.
//!
//! A time is ISO 8601 text — `2024-03-01T06:00:00`, a space instead of `T`, optional
//! fractional seconds, optional seconds, a date alone meaning midnight, an optional `Z`
//! or `±HH:MM` offset — or epoch seconds (a number, or a string that reads as one).
//! Without an offset a time is UTC, as the store's timestamps are. Times are written as
//! `YYYY-MM-DDTHH:MM:SS` in UTC, with the fraction only when there is one.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc};

use crate::lang::function::{CallCx, Function};
use crate::lang::value::{parse_number, Reason, Value};

use super::operand::{empty, num, wrong, Res};

/// The time functions.
pub(super) static FUNCTIONS: &[Function] = &[
    entry!("DDIF", [], [S, S], Propagate, ddif),
    entry!("DADD", [], [S, N], Propagate, dadd),
    entry!("DWEEK", [], [S], Propagate, dweek),
];

/// Reads a time operand; `bad` is the function's message for one that is not a time.
fn time(v: &Value, bad: &'static str) -> Result<DateTime<Utc>, Value> {
    match v {
        Value::Num(n) => epoch(*n),
        Value::Str(s) => match parse_number(s) {
            Some(n) => epoch(n),
            None => parse_iso(s).ok_or(wrong(bad)),
        },
        Value::Empty(_) => Err(v.clone()),
        Value::Nums(_) | Value::List(_) => Err(wrong(bad)),
    }
}

/// Epoch seconds (fractions to the nanosecond) as a time.
fn epoch(n: f64) -> Result<DateTime<Utc>, Value> {
    let out = || empty(Reason::OutOfRange);
    if !n.is_finite() || n.abs() > 1e14 {
        return Err(out());
    }
    let nanos = (n * 1e9).round() as i128;
    let secs = i64::try_from(nanos.div_euclid(1_000_000_000)).map_err(|_| out())?;
    let sub = nanos.rem_euclid(1_000_000_000) as u32;
    DateTime::from_timestamp(secs, sub).ok_or_else(out)
}

/// The time as epoch nanoseconds.
fn nanos(t: &DateTime<Utc>) -> i128 {
    i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos())
}

/// `n` ASCII digits of `b` at `at`.
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let d = b.get(at..at + n)?;
    d.iter().try_fold(0u32, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// `YYYY-MM-DD[(T| )HH:MM[:SS[.fff…]]][Z|±HH[:MM]]`.
fn parse_iso(text: &str) -> Option<DateTime<Utc>> {
    let b = text.trim().as_bytes();
    let expect = |at: usize, c: u8| (b.get(at) == Some(&c)).then_some(());
    let year = digits(b, 0, 4)?;
    expect(4, b'-')?;
    let month = digits(b, 5, 2)?;
    expect(7, b'-')?;
    let day = digits(b, 8, 2)?;
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    let (mut h, mut m, mut s, mut nano) = (0, 0, 0, 0);
    let mut at = 10;
    if at < b.len() && matches!(b[at], b'T' | b't' | b' ') {
        h = digits(b, 11, 2)?;
        expect(13, b':')?;
        m = digits(b, 14, 2)?;
        at = 16;
        if b.get(at) == Some(&b':') {
            s = digits(b, 17, 2)?;
            at = 19;
            if matches!(b.get(at), Some(b'.' | b',')) {
                at += 1;
                let start = at;
                while at < b.len() && b[at].is_ascii_digit() {
                    if at - start < 9 {
                        nano = nano * 10 + u32::from(b[at] - b'0');
                    }
                    at += 1;
                }
                let len = at - start;
                if len == 0 {
                    return None;
                }
                nano *= 10u32.pow(9 - len.min(9) as u32);
            }
        }
    }
    let offset = offset_seconds(&b[at..])?;
    let t = date.and_time(NaiveTime::from_hms_nano_opt(h, m, s, nano)?);
    let utc = t.and_utc();
    utc.checked_sub_signed(chrono::TimeDelta::seconds(offset))
}

/// `` (none), `Z`, `±HH`, `±HHMM` or `±HH:MM`, in seconds east of UTC.
fn offset_seconds(b: &[u8]) -> Option<i64> {
    let sign = match b.first() {
        None => return Some(0),
        Some(b'Z' | b'z') if b.len() == 1 => return Some(0),
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return None,
    };
    let h = digits(b, 1, 2)?;
    let m = match b.len() {
        3 => 0,
        5 => digits(b, 3, 2)?,
        6 if b[3] == b':' => digits(b, 4, 2)?,
        _ => return None,
    };
    (h < 24 && m < 60).then(|| sign * i64::from(h * 3600 + m * 60))
}

/// `YYYY-MM-DDTHH:MM:SS`, plus the fraction only when there is one.
fn write_time(t: &DateTime<Utc>) -> Value {
    Value::str(t.format("%Y-%m-%dT%H:%M:%S%.f").to_string())
}

/// a − b in seconds (fractional when the times have fractions).
fn ddif(a: &[Value], _: &mut CallCx) -> Res {
    let bad = "DDIF: expects two times (ISO 8601 or epoch seconds)";
    let (x, y) = (time(&a[0], bad)?, time(&a[1], bad)?);
    Ok(Value::num((nanos(&x) - nanos(&y)) as f64 / 1e9))
}

fn dadd(a: &[Value], _: &mut CallCx) -> Res {
    let bad = "DADD: expects a time (ISO 8601 or epoch seconds) and a number";
    let t = time(&a[0], bad)?;
    let secs = num(&a[1], bad)?;
    // Exact in nanoseconds; beyond ±1e14 s no time is representable anyway.
    let added = if secs.abs() < 1e14 {
        let n = nanos(&t) + (secs * 1e9).round() as i128;
        let whole = i64::try_from(n.div_euclid(1_000_000_000)).ok();
        whole.and_then(|w| DateTime::from_timestamp(w, n.rem_euclid(1_000_000_000) as u32))
    } else {
        None
    };
    Ok(write_time(&added.ok_or(empty(Reason::OutOfRange))?))
}

/// ISO day of the week (in UTC), Monday = 1 … Sunday = 7.
fn dweek(a: &[Value], _: &mut CallCx) -> Res {
    let t = time(&a[0], "DWEEK: expects a time (ISO 8601 or epoch seconds)")?;
    Ok(Value::Num(f64::from(t.weekday().number_from_monday())))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{assert_invalid, call, e, n, ns, s};
    use crate::lang::value::Reason;

    #[test]
    fn reads_every_time_form() {
        let base = s("2024-03-01T00:00:00");
        let d = |t: &str| call("DDIF", &[s(t), base.clone()]);
        assert_eq!(d("2024-03-01T06:00:00"), n(21600.0));
        assert_eq!(d("2024-03-01 06:00:00"), n(21600.0));
        assert_eq!(d(" 2024-03-01t06:00 "), n(21600.0));
        assert_eq!(d("2024-03-01T06:00:00.250"), n(21600.25));
        assert_eq!(d("2024-03-01T06:00:00,5Z"), n(21600.5));
        assert_eq!(
            d("2024-03-01T06:00:00.000000Z"),
            n(21600.0),
            "QuestDB's form"
        );
        assert_eq!(d("2024-03-01T06:00:00.123456789123"), n(21600.123456789));
        assert_eq!(d("2024-03-02"), n(86400.0));
        assert_eq!(d("2024-03-01T07:00:00+01:00"), n(21600.0));
        assert_eq!(d("2024-03-01T05:30:00-0030"), n(21600.0));
        assert_eq!(d("2024-03-01T08:00:00+02"), n(21600.0));
        assert_eq!(d("1709272800"), n(21600.0));
        assert_eq!(call("DDIF", &[n(1709272800.5), base.clone()]), n(21600.5));
        assert_eq!(d("2024-02-29T00:00:00"), n(-86400.0));
    }

    #[test]
    fn rejects_what_is_not_a_time() {
        let base = s("2024-03-01T00:00:00");
        for bad in [
            "",
            "yesterday",
            "2024-3-1",
            "2024-02-30",
            "2024-03-01T25:00:00",
            "2024-03-01T06",
            "2024-03-01T06:00:00.",
            "2024-03-01T06:00:00+1",
            "2024-03-01T06:00:00 UTC",
            "2024-03-01X06:00:00",
        ] {
            assert_invalid(call("DDIF", &[s(bad), base.clone()]), "DDIF");
        }
        assert_invalid(call("DDIF", &[ns(&[1.0]), base.clone()]), "DDIF");
        assert_eq!(call("DDIF", &[n(1e300), base]), e(Reason::OutOfRange));
    }

    #[test]
    fn dadd_writes_iso_utc() {
        let t = s("2024-03-01 06:00:00");
        assert_eq!(
            call("DADD", &[t.clone(), n(90.0)]),
            s("2024-03-01T06:01:30")
        );
        assert_eq!(
            call("DADD", &[t.clone(), n(-21601.0)]),
            s("2024-02-29T23:59:59")
        );
        assert_eq!(
            call("DADD", &[t.clone(), n(0.25)]),
            s("2024-03-01T06:00:00.250")
        );
        assert_eq!(
            call("DADD", &[t.clone(), s("86400")]),
            s("2024-03-02T06:00:00")
        );
        let r = call("DADD", &[s("2024-03-01T07:00:00+01:00"), n(0.0)]);
        assert_eq!(r, s("2024-03-01T06:00:00"));
        assert_eq!(call("DADD", &[n(0.0), n(60.0)]), s("1970-01-01T00:01:00"));
        assert_eq!(call("DADD", &[t.clone(), n(1e20)]), e(Reason::OutOfRange));
        assert_eq!(call("DADD", &[t, s("x")]), e(Reason::NotANumber));
        assert_invalid(call("DADD", &[s("nope"), n(1.0)]), "DADD");
    }

    #[test]
    fn day_of_week() {
        assert_eq!(call("DWEEK", &[s("2024-03-04T12:00:00")]), n(1.0));
        assert_eq!(call("DWEEK", &[s("2024-03-01")]), n(5.0));
        assert_eq!(call("DWEEK", &[s("2024-03-03 23:59:59")]), n(7.0));
        assert_eq!(call("DWEEK", &[s("2024-03-04T00:30:00+01:00")]), n(7.0));
        assert_eq!(call("DWEEK", &[n(0.0)]), n(4.0));
        assert_invalid(call("DWEEK", &[s("monday")]), "DWEEK");
    }
}
