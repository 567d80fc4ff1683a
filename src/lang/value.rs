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
    let t = text.trim();
    let first = t.as_bytes().first()?;
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None;
    }
    t.parse::<f64>().ok().filter(|n| n.is_finite())
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
/// `f64`, integers without a decimal point (`3`, `-0.5`, `0.1`, `1e-7`).
pub fn format_number(n: f64, out: &mut impl fmt::Write) -> fmt::Result {
    if n == 0.0 {
        return out.write_str("0"); // also turns -0 into 0
    }
    write!(out, "{n}")
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
