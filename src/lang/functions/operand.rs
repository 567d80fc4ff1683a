//! Reading operands: the shared conversions every function uses to turn a [`Value`] into
//! the number, text or vector it expects, and to build results.
//!
//! Every reader returns `Err(empty value)` when the operand cannot be read, so a function
//! body is a chain of `?`. The `why` argument is the function's own message for an operand
//! of the wrong *kind* (a vector where a number is expected or the other way round), e.g.
//! `"ADD: expects two numbers"`; other failures use the generic [`Reason`]s.

use std::borrow::Cow;
use std::sync::Arc;

use crate::lang::value::{format_number, parse_number, Reason, Value};

/// What a function body returns: `Err` carries the empty value to hand back.
pub(super) type Res = Result<Value, Value>;

/// An empty value for an operand of the wrong kind.
pub(super) fn wrong(why: &'static str) -> Value {
    Value::Empty(Reason::Invalid(why))
}

/// An empty value with a generic reason.
pub(super) fn empty(reason: Reason) -> Value {
    Value::Empty(reason)
}

/// The operand as a number: a number, or a string that reads as one.
pub(super) fn num(v: &Value, why: &'static str) -> Result<f64, Value> {
    match v {
        Value::Num(n) => Ok(*n),
        Value::Str(s) => parse_number(s).ok_or(Value::Empty(Reason::NotANumber)),
        Value::Empty(_) => Err(v.clone()),
        Value::Nums(_) | Value::List(_) => Err(wrong(why)),
    }
}

/// The operand as a condition: 0 is false, any other number true.
pub(super) fn truth(v: &Value, why: &'static str) -> Result<bool, Value> {
    num(v, why).map(|n| n != 0.0)
}

/// The operand as a whole number (a count, a position, a number of bits).
///
/// A fractional number, or one beyond ±2^53, is out of range: positions are never
/// silently truncated.
pub(super) fn whole(v: &Value, why: &'static str) -> Result<i64, Value> {
    let n = num(v, why)?;
    if n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_992.0 {
        Ok(n as i64)
    } else {
        Err(empty(Reason::OutOfRange))
    }
}

/// The operand as text: a string, or a number written as recalcd prints it.
pub(super) fn text<'a>(v: &'a Value, why: &'static str) -> Result<Cow<'a, str>, Value> {
    match v {
        Value::Str(s) => Ok(Cow::Borrowed(s)),
        Value::Num(n) => Ok(Cow::Owned(number_text(*n))),
        Value::Empty(_) => Err(v.clone()),
        Value::Nums(_) | Value::List(_) => Err(wrong(why)),
    }
}

/// A number as recalcd prints it.
pub(super) fn number_text(n: f64) -> String {
    let mut s = String::new();
    // Writing into a String cannot fail.
    let _ = format_number(n, &mut s);
    s
}

/// The operand as a numeric vector. A numeric vector is borrowed as is; a general vector
/// is converted when every item reads as a number (else not a number).
pub(super) fn nums<'a>(v: &'a Value, why: &'static str) -> Result<Cow<'a, [f64]>, Value> {
    match v {
        Value::Nums(items) => Ok(Cow::Borrowed(items)),
        Value::List(items) => items
            .iter()
            .map(Value::as_num)
            .collect::<Option<Vec<f64>>>()
            .map(Cow::Owned)
            .ok_or(Value::Empty(Reason::NotANumber)),
        Value::Empty(_) => Err(v.clone()),
        Value::Num(_) | Value::Str(_) => Err(wrong(why)),
    }
}

/// The operand as a vector of any items (operand kind `T`).
pub(super) fn items<'a>(v: &'a Value, why: &'static str) -> Result<Items<'a>, Value> {
    match v {
        Value::Nums(items) => Ok(Items::Nums(items)),
        Value::List(items) => Ok(Items::List(items)),
        Value::Empty(_) => Err(v.clone()),
        Value::Num(_) | Value::Str(_) => Err(wrong(why)),
    }
}

/// The 0-based index of the `a`-th item (1-based ordinal a) of a vector of `len` items,
/// `None` when there is no such item.
pub(super) fn ordinal(a: &Value, len: usize, why: &'static str) -> Result<Option<usize>, Value> {
    let a = whole(a, why)?;
    Ok(usize::try_from(a)
        .ok()
        .filter(|&k| k >= 1 && k <= len)
        .map(|k| k - 1))
}

/// For functions that accept empty operands: the first empty among `ops`, as an error.
pub(super) fn no_empty(ops: &[Value]) -> Result<(), Value> {
    match ops.iter().find(|v| v.is_empty()) {
        Some(e) => Err(e.clone()),
        None => Ok(()),
    }
}

/// Checks that item-wise operands have the same length.
pub(super) fn same_len(a: usize, b: usize) -> Result<(), Value> {
    if a == b {
        Ok(())
    } else {
        Err(empty(Reason::UnequalLengths))
    }
}

/// 1 for true, 0 for false.
pub(super) fn flag(b: bool) -> Value {
    Value::Num(if b { 1.0 } else { 0.0 })
}

/// A numeric vector result: empty when any item overflowed or is not a number.
pub(super) fn vector(v: Vec<f64>) -> Res {
    if v.iter().all(|n| n.is_finite()) {
        Ok(Value::Nums(v.into()))
    } else {
        Err(empty(Reason::Invalid("the result is not a finite number")))
    }
}

/// A vector operand of any items, borrowed.
#[derive(Debug, Clone, Copy)]
pub(super) enum Items<'a> {
    /// A numeric vector.
    Nums(&'a [f64]),
    /// A general vector.
    List(&'a [Value]),
}

impl<'a> Items<'a> {
    /// The number of items.
    pub(super) fn len(&self) -> usize {
        match self {
            Items::Nums(v) => v.len(),
            Items::List(v) => v.len(),
        }
    }

    /// The item at `i` (0-based), if there is one.
    pub(super) fn get(&self, i: usize) -> Option<Value> {
        match self {
            Items::Nums(v) => v.get(i).map(|n| Value::Num(*n)),
            Items::List(v) => v.get(i).cloned(),
        }
    }

    /// The items as values.
    pub(super) fn iter(&self) -> impl Iterator<Item = Value> + 'a {
        let (nums, list): (&'a [f64], &'a [Value]) = match *self {
            Items::Nums(v) => (v, &[]),
            Items::List(v) => (&[], v),
        };
        nums.iter()
            .map(|n| Value::Num(*n))
            .chain(list.iter().cloned())
    }

    /// The items at the positions `keep` selects, as a vector of the same kind.
    pub(super) fn select(&self, mut keep: impl FnMut(usize) -> bool) -> Value {
        match self {
            Items::Nums(v) => Value::Nums(
                v.iter()
                    .enumerate()
                    .filter(|(i, _)| keep(*i))
                    .map(|(_, n)| *n)
                    .collect(),
            ),
            Items::List(v) => Value::List(
                v.iter()
                    .enumerate()
                    .filter(|(i, _)| keep(*i))
                    .map(|(_, x)| x.clone())
                    .collect(),
            ),
        }
    }

    /// The items `from..to` (clamped to the vector), as a vector of the same kind.
    pub(super) fn slice(&self, from: usize, to: usize) -> Value {
        let to = to.min(self.len());
        let from = from.min(to);
        match self {
            Items::Nums(v) => Value::Nums(Arc::from(&v[from..to])),
            Items::List(v) => Value::List(Arc::from(&v[from..to])),
        }
    }
}

/// True for an item that counts as empty in a vector: an empty value or an empty string.
pub(super) fn is_blank(v: &Value) -> bool {
    match v {
        Value::Empty(_) => true,
        Value::Str(s) => s.is_empty(),
        _ => false,
    }
}

/// Two number operands, for the binary arithmetic and comparison functions.
pub(super) fn pair(a: &[Value], why: &'static str) -> Result<(f64, f64), Value> {
    Ok((num(&a[0], why)?, num(&a[1], why)?))
}
