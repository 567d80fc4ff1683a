//! The value model: number, string, numeric vector, general vector, and *empty*.
//!
//! Values are cheap to clone: strings and vectors are reference counted, so a job-level
//! `$x` handed to `SNRM` is shared, not copied. *Empty* carries the [`Reason`] it could not
//! be computed, so the error log can say why without any cost on the hot path.

use std::fmt;
use std::sync::Arc;

/// A value of the equation language.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Nothing could be computed; the reason says why.
    Empty(Reason),
    /// A number.
    Num(f64),
    /// A string (a string that reads as a number is a number where one is expected).
    Str(Arc<str>),
    /// A numeric vector, in time order.
    Nums(Arc<[f64]>),
    /// A general vector whose items are scalars: numbers, strings or empty items.
    List(Arc<[Value]>),
}

/// Why a value is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// A variable, channel or constant has no value; names what was missing.
    Missing(Arc<str>),
    /// A division (or `MOD`) by zero.
    DivisionByZero,
    /// An operand that should be a number is not one.
    NotANumber,
    /// Item-wise operands have different lengths.
    UnequalLengths,
    /// A vector with no items where at least one is needed.
    EmptyVector,
    /// An index or position outside its vector, list or axis.
    OutOfRange,
    /// Anything else, as a short sentence naming the function, e.g.
    /// `"HIST: the axis is not a list of edges"`.
    Invalid(&'static str),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Missing(name) => write!(f, "{name} has no value"),
            Reason::DivisionByZero => f.write_str("division by zero"),
            Reason::NotANumber => f.write_str("an operand is not a number"),
            Reason::UnequalLengths => f.write_str("vectors of unequal length"),
            Reason::EmptyVector => f.write_str("an empty vector"),
            Reason::OutOfRange => f.write_str("a position outside its range"),
            Reason::Invalid(why) => f.write_str(why),
        }
    }
}

/// Reads a number as the language does: decimal point `.`, optional sign and exponent,
/// surrounding spaces ignored. `None` when the text is not a number (`inf`/`NaN` are not).
pub fn parse_number(text: &str) -> Option<f64> {
    let t = if has_plain_ends(text) {
        text // the usual case: nothing to trim
    } else {
        text.trim()
    };
    let first = t.as_bytes().first()?;
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None;
    }
    if let Some(n) = plain_decimal(t) {
        return Some(n);
    }
    t.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Whether `s` starts and ends with an ASCII character that is not whitespace (so
/// `str::trim` would return it unchanged), told from two bytes.
pub(crate) fn has_plain_ends(s: &str) -> bool {
    let plain = |b: &u8| b.is_ascii() && !char::from(*b).is_whitespace();
    let bytes = s.as_bytes();
    bytes.first().is_some_and(plain) && bytes.last().is_some_and(plain)
}

/// `10^k` for the `k` [`plain_decimal`] reads, all exact in `f64`.
const POWERS_OF_TEN: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// A plain decimal `[+-]digits[.digits]` of at most 15 digits, read as `str::parse`
/// reads it; `None` for any other text (exponents, more digits), which `str::parse`
/// then reads.
///
/// Why the value is the same: the digits form an integer `m < 10^15` and the point
/// divides it by `10^k` (`k <= 15`); both are exact in `f64`, so the one rounding of the
/// division gives the `f64` nearest to the decimal, which is what `str::parse` returns.
fn plain_decimal(t: &str) -> Option<f64> {
    let (negative, digits) = match t.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        rest => (false, rest),
    };
    let (mut m, mut count) = (0u64, 0usize);
    let mut fraction: Option<usize> = None;
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                count += 1;
                if count >= POWERS_OF_TEN.len() {
                    return None;
                }
                m = m * 10 + u64::from(b - b'0');
                if let Some(k) = &mut fraction {
                    *k += 1;
                }
            }
            b'.' if fraction.is_none() => fraction = Some(0),
            _ => return None,
        }
    }
    if count == 0 {
        return None;
    }
    let value = m as f64 / POWERS_OF_TEN[fraction.unwrap_or(0)];
    Some(if negative { -value } else { value })
}

impl Value {
    /// A string value.
    pub fn str(s: impl Into<Arc<str>>) -> Value {
        Value::Str(s.into())
    }

    /// The number this value stands for: a number, or a string that reads as one.
    pub fn as_num(&self) -> Option<f64> {
        match self {
            Value::Num(n) => Some(*n),
            Value::Str(s) => parse_number(s),
            _ => None,
        }
    }

    /// True for [`Value::Empty`].
    pub fn is_empty(&self) -> bool {
        matches!(self, Value::Empty(_))
    }

    /// The number of items of a vector (`None` for scalars and empty).
    pub fn len(&self) -> Option<usize> {
        match self {
            Value::Nums(v) => Some(v.len()),
            Value::List(v) => Some(v.len()),
            _ => None,
        }
    }

    /// The value as a numeric vector: a numeric vector itself, or a general vector whose
    /// items are all numbers (or numeric strings). `None` otherwise.
    pub fn to_nums(&self) -> Option<Arc<[f64]>> {
        match self {
            Value::Nums(v) => Some(v.clone()),
            Value::List(items) => items.iter().map(Value::as_num).collect(),
            _ => None,
        }
    }

    /// Result of a numeric computation: a finite number, or empty when it overflowed or
    /// is not a number (so `NaN` and infinities never reach the store).
    pub fn num(n: f64) -> Value {
        if n.is_finite() {
            Value::Num(n)
        } else {
            Value::Empty(Reason::Invalid("the result is not a finite number"))
        }
    }
}

/// Formats a number as recalcd writes it: the shortest text that reads back to the same
/// `f64`, integers without a decimal point (`3`, `-0.5`, `0.1`, `0.0000001`): Rust's
/// `Display` for `f64`, with `-0` written as `0`.
///
/// Most results are integers or have a few decimals (`ROUNDX`); those take a fast path
/// that writes the same text as `Display` (see `short_decimal`) at a fraction of its cost.
pub fn format_number(n: f64, out: &mut impl fmt::Write) -> fmt::Result {
    if n == 0.0 {
        return out.write_str("0"); // also turns -0 into 0
    }
    let mut buf = [0u8; SHORT_DECIMAL_LEN];
    match short_decimal(n, &mut buf) {
        Some(text) => out.write_str(text),
        None => write!(out, "{n}"),
    }
}

/// The most digits after the point [`short_decimal`] tries.
const SHORT_DECIMAL_FRACTION: i32 = 6;

/// Bound on the scaled integer `m` of [`short_decimal`]: below `2^52 / 10`, one unit in
/// the last place of `n` is less than a tenth of the last decimal written.
const SHORT_DECIMAL_LIMIT: f64 = 4e14;

/// Room for a sign, 15 digits, the point and leading zeros of the fraction.
const SHORT_DECIMAL_LEN: usize = 32;

/// `n` written as `Display` writes it, when `n` is the `f64` nearest to a decimal `m/10^k`
/// with `k <= 6` digits after the point and `|m| < 4e14`; `None` otherwise (and for 0).
///
/// Why the text is the same: `Display` writes the shortest decimal that reads back as `n`
/// (the nearest of them if several). Take the least such `k`: `m = round(n·10^k)` is found
/// exactly (`n·10^k` is within 0.1 of an integer that reads back, and `m/10^k` is
/// rounded once, as reading rounds, so `m/10^k == n` is the read-back test), and `m` has
/// no trailing zero. A decimal with fewer digits after the point would have been found
/// for a smaller `k`; any other decimal that reads back as `n` lies within one unit in
/// the last place of `n`, less than `10^-(k+1)` away, so it needs at least `k+2` digits
/// after the point and more significant digits in all. The text is then `m` with the
/// point `k` digits from the right, as `Display` prints it (no exponent, no padding).
fn short_decimal(n: f64, buf: &mut [u8; SHORT_DECIMAL_LEN]) -> Option<&str> {
    if n == 0.0 || n.is_nan() || n.abs() >= SHORT_DECIMAL_LIMIT {
        return None;
    }
    let mut scale = 1.0; // 10^k, exact for every k tried
    for k in 0..=SHORT_DECIMAL_FRACTION {
        let m = (n * scale).round();
        if m.abs() >= SHORT_DECIMAL_LIMIT {
            return None;
        }
        if m / scale == n {
            return Some(write_fixed(m as i64, k, buf));
        }
        scale *= 10.0;
    }
    None
}

/// `m / 10^k` as text: `m`'s digits with the point `k` digits from the right, and a `0`
/// before the point when there is nothing else. `buf` holds the text.
fn write_fixed(m: i64, k: i32, buf: &mut [u8; SHORT_DECIMAL_LEN]) -> &str {
    let mut i = buf.len();
    let mut put = |b: u8| {
        i -= 1;
        buf[i] = b;
    };
    let mut v = m.unsigned_abs();
    for _ in 0..k {
        put(b'0' + (v % 10) as u8);
        v /= 10;
    }
    if k > 0 {
        put(b'.');
    }
    loop {
        put(b'0' + (v % 10) as u8);
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if m < 0 {
        put(b'-');
    }
    // Only ASCII digits, `.` and `-` were written.
    std::str::from_utf8(&buf[i..]).unwrap_or_default()
}

impl fmt::Display for Value {
    /// The text written into `conjoined`, before escaping: vectors comma-separated,
    /// empty as nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Empty(_) => Ok(()),
            Value::Num(n) => format_number(*n, f),
            Value::Str(s) => f.write_str(s),
            Value::Nums(v) => {
                for (i, n) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    format_number(*n, f)?;
                }
                Ok(())
            }
            Value::List(v) => {
                for (i, item) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{item}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn display(n: f64) -> String {
        if n == 0.0 {
            "0".to_owned()
        } else {
            format!("{n}")
        }
    }

    fn formatted(n: f64) -> String {
        let mut s = String::new();
        let _ = format_number(n, &mut s);
        s
    }

    /// The fast path reads what `str::parse` reads: plain decimals of every length around
    /// its limits, and texts it leaves to `str::parse`.
    #[test]
    fn numbers_are_read_as_str_parse_reads_them() {
        let std = |t: &str| {
            let t = t.trim();
            let first = t.as_bytes().first()?;
            if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
                return None;
            }
            t.parse::<f64>().ok().filter(|n| n.is_finite())
        };
        let same = |t: &str| {
            let (got, want) = (parse_number(t), std(t));
            assert_eq!(got.map(f64::to_bits), want.map(f64::to_bits), "{t:?}");
        };
        for t in [
            "0",
            "-0",
            "+0",
            "-0.0",
            "007",
            "1.",
            ".5",
            "-.5",
            ".",
            "-",
            "+",
            "",
            " 21.5 ",
            "1.2.3",
            "1e5",
            "1_0",
            "--1",
            "+-1",
            "0.1",
            "0.30000000000000004",
            "999999999999999",
            "9999999999999999",
            "999999999999.999",
            "0.000000000000001",
            "123456789012345",
            "1234567890123456",
            "9007199254740993",
            "1,5",
            "12a",
        ] {
            same(t);
        }
        let mut rng = crate::lang::function::Rng::new(11);
        for _ in 0..200_000 {
            let r = rng.next_u64();
            let digits = 1 + (r % 17) as usize;
            let mut t = String::new();
            match (r >> 8) % 3 {
                0 => t.push('-'),
                1 => t.push('+'),
                _ => {}
            }
            let point = ((r >> 16) % (digits as u64 + 2)) as usize;
            for i in 0..digits {
                if i == point {
                    t.push('.');
                }
                t.push(char::from(b'0' + (rng.next_u64() % 10) as u8));
            }
            same(&t);
        }
    }

    /// The fast path writes what `Display` writes: decimals of every length around its
    /// limits, their neighbours one unit in the last place away, and random bit patterns.
    #[test]
    fn numbers_are_written_as_display_writes_them() {
        let mut rng = crate::lang::function::Rng::new(7);
        let check = |n: f64| {
            for x in [
                n,
                -n,
                f64::from_bits(n.to_bits().wrapping_add(1)),
                f64::from_bits(n.to_bits().wrapping_sub(1)),
            ] {
                assert_eq!(formatted(x), display(x), "{x:e}");
            }
        };
        for n in [
            0.1,
            0.5,
            1.0,
            3.0,
            9.95,
            10.0,
            21.5,
            0.000001,
            0.0000005,
            0.0000001,
            1e-7,
            123.456789,
            4e14,
            3.999_999_999_999_99e14,
            399_999_999_999_999.0,
            39_999_999_999_999.9,
            9_007_199_254_740_993.0,
            1e300,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
        ] {
            check(n);
        }
        for _ in 0..200_000 {
            let r = rng.next_u64();
            let k = (r % 9) as i32;
            let m = (rng.next_u64() % 1_000_000_000_000_000) as f64;
            let digits = 10f64.powi((r >> 8) as i32 % 16);
            check((m % digits) / 10f64.powi(k));
            check(f64::from_bits(rng.next_u64()));
        }
        assert_eq!(formatted(-0.0), "0");
        assert_eq!(formatted(-0.05), "-0.05");
        assert_eq!(formatted(1e-7), "0.0000001");
    }
}
