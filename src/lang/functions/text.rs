//! Strings and lists written as strings: `EQS`, `ADDS`, `S`, `ENUM`, `TOE`, `TABLE`,
//! `SLIST`, `SA`, and the vector builders `VT`, `VA`, `VAN`.
//!
//! A number where a string is expected is read as its printed text.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::lang::function::{CallCx, Function};
use crate::lang::value::{parse_number, Reason, Value};

use super::operand::{empty, flag, items, num, number_text, ordinal, text, whole, wrong, Res};

/// The string functions.
pub(super) static FUNCTIONS: &[Function] = &[
    entry!("EQS", [], [S, S], Propagate, eqs),
    entry!("ADDS", [], [S, S], Propagate, adds),
    entry!("S", [], [N], Propagate, s),
    entry!("ENUM", [], [N, S], Propagate, enum_),
    entry!("TOE", [], [S, S], Propagate, toe),
    entry!("TABLE", [], [N, S], Propagate, table),
    entry!("SLIST", [], [N, T], Propagate, slist),
    entry!("SA", [], [T], Propagate, sa),
    entry!("VT", [], [S], Propagate, vt),
    entry!("VA", [], [S], Propagate, va),
    entry!("VAN", [], [S, S], Propagate, van),
];

/// Exact, case-sensitive comparison of the texts.
fn eqs(a: &[Value], _: &mut CallCx) -> Res {
    let why = "EQS: expects two strings";
    Ok(flag(text(&a[0], why)? == text(&a[1], why)?))
}

fn adds(a: &[Value], _: &mut CallCx) -> Res {
    let why = "ADDS: expects two strings";
    let (x, y) = (text(&a[0], why)?, text(&a[1], why)?);
    let mut out = String::with_capacity(x.len() + y.len());
    out.push_str(&x);
    out.push_str(&y);
    Ok(Value::str(out))
}

fn s(a: &[Value], _: &mut CallCx) -> Res {
    Ok(Value::str(number_text(num(&a[0], "S: expects a number")?)))
}

/// The items of an `&`-list, trimmed; an empty string is a list with no items.
fn amp_items(list: &str) -> impl Iterator<Item = &str> {
    let none = list.trim().is_empty();
    list.split('&').map(str::trim).filter(move |_| !none)
}

/// `&`-lists read from strings, kept while a [`crate::lang::Machine`] runs (as the
/// histogram axes are): `ENUM`'s list is nearly always a literal or a constant, the same
/// string for every row, and each item is kept as a string of its own, so the result
/// is shared instead of allocated.
///
/// A list is known by its string's allocation (`Arc::ptr_eq`), as in
/// [`super::histogram::AxisMemo`]: the entry keeps the string alive, so the allocation cannot be
/// reused for another text. The last [`ListMemo::SIZE`] lists are kept.
#[derive(Debug, Default)]
pub(crate) struct ListMemo {
    entries: Vec<(Arc<str>, Arc<[Value]>)>,
}

impl ListMemo {
    /// How many lists are kept.
    const SIZE: usize = 8;

    /// The trimmed items of the `&`-list `v` (as [`amp_items`] yields them), answered
    /// from the memo for a string read before.
    fn items(&mut self, v: &Value, why: &'static str) -> Result<Arc<[Value]>, Value> {
        let list = text(v, why)?;
        let Value::Str(key) = v else {
            return Ok(amp_items(&list).map(Value::str).collect());
        };
        if let Some((_, items)) = self.entries.iter().find(|(t, _)| Arc::ptr_eq(t, key)) {
            return Ok(items.clone());
        }
        let items: Arc<[Value]> = amp_items(&list).map(Value::str).collect();
        if self.entries.len() >= Self::SIZE {
            self.entries.remove(0);
        }
        self.entries.push((key.clone(), items.clone()));
        Ok(items)
    }
}

fn enum_(a: &[Value], cx: &mut CallCx) -> Res {
    let why = "ENUM: expects a number and a string";
    let items = cx.memo.lists.items(&a[1], why)?;
    let i = ordinal(&a[0], items.len(), why)?.ok_or(empty(Reason::OutOfRange))?;
    items.get(i).cloned().ok_or(empty(Reason::OutOfRange))
}

fn toe(a: &[Value], _: &mut CallCx) -> Res {
    let why = "TOE: expects two strings";
    let (item, list) = (text(&a[0], why)?, text(&a[1], why)?);
    Ok(Value::str(if list.trim().is_empty() {
        item.into_owned()
    } else {
        format!("{list}&{item}")
    }))
}

/// Linear interpolation through the points `x1:y1,x2:y2,…` (x strictly increasing),
/// clamped to the first / last y outside them. The whole table is checked every time.
fn table(a: &[Value], _: &mut CallCx) -> Res {
    let why = "TABLE: expects a number and a string";
    let bad = || wrong("TABLE: the table is not x1:y1,x2:y2,… with increasing x");
    let x = num(&a[0], why)?;
    let points = text(&a[1], why)?;
    let mut prev: Option<(f64, f64)> = None;
    let mut result = None;
    for point in points.split(',') {
        let (px, py) = point.split_once(':').ok_or_else(bad)?;
        let (px, py) = (
            parse_number(px).ok_or_else(bad)?,
            parse_number(py).ok_or_else(bad)?,
        );
        match prev {
            None if x <= px => result = Some(py),
            Some((qx, _)) if px <= qx => return Err(bad()),
            Some((qx, qy)) if result.is_none() && x <= px => {
                result = Some(qy + (py - qy) * (x - qx) / (px - qx));
            }
            _ => {}
        }
        prev = Some((px, py));
    }
    let (_, last) = prev.ok_or_else(bad)?;
    Ok(Value::num(result.unwrap_or(last)))
}

/// How an item sorts and deduplicates in `SLIST`: numbers by value, before all texts,
/// texts bytewise.
#[derive(PartialEq, PartialOrd)]
enum Key {
    Num(f64),
    Text(String),
}

impl Key {
    fn of(v: &Value) -> Key {
        match v.as_num() {
            Some(n) => Key::Num(n + 0.0), // -0 and 0 are the same item
            None => Key::Text(v.to_string()),
        }
    }

    /// A total order: numbers are never NaN here, texts compare bytewise.
    fn cmp(&self, other: &Key) -> Ordering {
        self.partial_cmp(other).unwrap_or(Ordering::Equal)
    }
}

/// a = 0: all items; 1: unique items in order of first appearance; 2: unique, sorted.
fn slist(a: &[Value], _: &mut CallCx) -> Res {
    let why = "SLIST: expects a number and a vector";
    let mode = whole(&a[0], why)?;
    let v: Vec<Value> = items(&a[1], why)?.iter().collect();
    let mut order: Vec<usize> = (0..v.len()).collect();
    match mode {
        0 => {}
        1 | 2 => {
            let keys: Vec<Key> = v.iter().map(Key::of).collect();
            order.sort_by(|&i, &j| keys[i].cmp(&keys[j]).then(i.cmp(&j)));
            order.dedup_by(|j, i| keys[*i] == keys[*j]);
            if mode == 1 {
                order.sort_unstable();
            }
        }
        _ => return Err(wrong("SLIST: the kind a must be 0, 1 or 2")),
    }
    let mut out = String::new();
    for (k, i) in order.into_iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        out.push_str(&v[i].to_string());
    }
    Ok(Value::str(out))
}

fn sa(a: &[Value], _: &mut CallCx) -> Res {
    items(&a[0], "SA: expects a vector")?;
    Ok(Value::str(a[0].to_string()))
}

/// The items of a list split at `sep`, trimmed; a blank string has no items.
fn split<'t>(list: &'t str, sep: &'t str) -> impl Iterator<Item = &'t str> {
    let none = list.trim().is_empty();
    list.split(sep).map(str::trim).filter(move |_| !none)
}

fn vt(a: &[Value], _: &mut CallCx) -> Res {
    let list = text(&a[0], "VT: expects a string")?;
    Ok(Value::List(split(&list, ",").map(Value::str).collect()))
}

/// The numeric vector of the items, or not a number if any item is not one.
fn numbers(list: &str, sep: &str) -> Res {
    let v: Option<Arc<[f64]>> = split(list, sep).map(parse_number).collect();
    v.map(Value::Nums).ok_or(empty(Reason::NotANumber))
}

fn va(a: &[Value], _: &mut CallCx) -> Res {
    numbers(&text(&a[0], "VA: expects a string")?, ",")
}

fn van(a: &[Value], _: &mut CallCx) -> Res {
    let why = "VAN: expects two strings";
    let (list, sep) = (text(&a[0], why)?, text(&a[1], why)?);
    if sep.is_empty() {
        return Err(wrong("VAN: the separator b is an empty string"));
    }
    numbers(&list, &sep)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{assert_invalid, call, e, list, n, ns, null, s};
    use crate::lang::value::Reason;

    #[test]
    fn the_list_memo_gives_the_items_amp_items_gives() {
        use super::{amp_items, ListMemo};
        let mut memo = ListMemo::default();
        for text in ["idle&work& transport &fault", "", "  ", "one", "a&&b&"] {
            let list = s(text);
            let expected: Vec<_> = amp_items(text).map(s).collect();
            for v in [&list, &list.clone(), &s(text)] {
                assert_eq!(&*memo.items(v, "why").unwrap(), &expected[..], "{text:?}");
            }
        }
        assert!(memo.entries.len() <= ListMemo::SIZE);
        assert_eq!(&*memo.items(&n(12.0), "why").unwrap(), &[s("12")]);
    }

    #[test]
    fn eqs_adds_s() {
        assert_eq!(call("EQS", &[s("ab"), s("ab")]), n(1.0));
        assert_eq!(call("EQS", &[s("ab"), s("AB")]), n(0.0));
        assert_eq!(call("EQS", &[n(1.5), s("1.5")]), n(1.0));
        assert_eq!(call("EQS", &[n(1.0), s("1.0")]), n(0.0));
        assert_invalid(call("EQS", &[ns(&[1.0]), s("1")]), "EQS");
        assert_eq!(call("ADDS", &[s("ab"), s("cd")]), s("abcd"));
        assert_eq!(call("ADDS", &[s("t="), n(2.50)]), s("t=2.5"));
        assert_eq!(call("ADDS", &[s(""), s("")]), s(""));
        assert_invalid(call("ADDS", &[s("a"), list(&[])]), "ADDS");
        assert_eq!(call("S", &[n(2.50)]), s("2.5"));
        assert_eq!(call("S", &[s("007")]), s("7"));
        assert_eq!(call("S", &[n(-0.0)]), s("0"));
        assert_eq!(call("S", &[s("x")]), e(Reason::NotANumber));
        assert_invalid(call("S", &[ns(&[1.0])]), "S");
    }

    #[test]
    fn enum_and_toe() {
        assert_eq!(call("ENUM", &[n(2.0), s("red&green&blue")]), s("green"));
        assert_eq!(call("ENUM", &[n(1.0), s(" red & green")]), s("red"));
        assert_eq!(call("ENUM", &[n(3.0), s("red&green&blue")]), s("blue"));
        for bad in [0.0, 4.0, 1.5, -1.0] {
            let r = call("ENUM", &[n(bad), s("red&green&blue")]);
            assert_eq!(r, e(Reason::OutOfRange), "{bad}");
        }
        assert_eq!(call("ENUM", &[n(1.0), s("")]), e(Reason::OutOfRange));
        assert_eq!(call("ENUM", &[n(1.0), s(" \t")]), e(Reason::OutOfRange));
        assert_eq!(call("ENUM", &[n(2.0), s("a& &b")]), s(""));
        assert_eq!(call("ENUM", &[n(3.0), s("a& &b")]), s("b"));
        assert_eq!(call("ENUM", &[n(4.0), s("a& &b")]), e(Reason::OutOfRange));
        assert_eq!(call("ENUM", &[n(2.0), s("&")]), s(""));
        assert_eq!(call("ENUM", &[n(3.0), s("&")]), e(Reason::OutOfRange));
        assert_eq!(call("ENUM", &[s("x"), s("a")]), e(Reason::NotANumber));
        assert_eq!(call("TOE", &[s("c"), s("a&b")]), s("a&b&c"));
        assert_eq!(call("TOE", &[s("c"), s("")]), s("c"));
        assert_eq!(call("TOE", &[n(3.0), s("1&2")]), s("1&2&3"));
        assert_invalid(call("TOE", &[s("c"), ns(&[])]), "TOE");
    }

    #[test]
    fn table_interpolates_and_clamps() {
        let t = s("0:0, 10:100, 20:50");
        let at = |x: f64| call("TABLE", &[n(x), t.clone()]);
        assert_eq!(at(5.0), n(50.0));
        assert_eq!(at(15.0), n(75.0));
        assert_eq!(at(10.0), n(100.0));
        assert_eq!(at(0.0), n(0.0));
        assert_eq!(at(-5.0), n(0.0));
        assert_eq!(at(25.0), n(50.0));
        assert_eq!(call("TABLE", &[n(9.0), s("3:7")]), n(7.0));
        for bad in ["", "0:0,0:1", "5:1,2:2", "0:0,x:1", "0-1", "0:0,10:100,5:1"] {
            assert_invalid(call("TABLE", &[n(1.0), s(bad)]), "TABLE");
        }
        assert_eq!(call("TABLE", &[s("q"), t]), e(Reason::NotANumber));
    }

    #[test]
    fn slist_and_sa() {
        let v = list(&[s("b"), n(10.0), s("a"), n(2.0), s("b"), s("10"), null()]);
        assert_eq!(call("SLIST", &[n(0.0), v.clone()]), s("b,10,a,2,b,10,"));
        assert_eq!(call("SLIST", &[n(1.0), v.clone()]), s("b,10,a,2,"));
        assert_eq!(call("SLIST", &[n(2.0), v.clone()]), s("2,10,,a,b"));
        assert_eq!(call("SLIST", &[n(2.0), ns(&[3.0, -1.0, 3.0])]), s("-1,3"));
        assert_eq!(call("SLIST", &[n(1.0), ns(&[])]), s(""));
        assert_invalid(call("SLIST", &[n(3.0), v.clone()]), "SLIST");
        assert_invalid(call("SLIST", &[n(0.0), s("a")]), "SLIST");
        assert_eq!(call("SA", &[ns(&[1.0, 2.5])]), s("1,2.5"));
        assert_eq!(call("SA", &[v]), s("b,10,a,2,b,10,"));
        assert_eq!(call("SA", &[ns(&[])]), s(""));
        assert_invalid(call("SA", &[n(1.0)]), "SA");
    }

    #[test]
    fn vector_builders() {
        assert_eq!(
            call("VT", &[s("a, b,,3")]),
            list(&[s("a"), s("b"), s(""), s("3")])
        );
        assert_eq!(call("VT", &[s("")]), list(&[]));
        assert_eq!(call("VT", &[n(4.0)]), list(&[s("4")]));
        assert_invalid(call("VT", &[ns(&[1.0])]), "VT");
        assert_eq!(call("VA", &[s("1, 2.5,-3")]), ns(&[1.0, 2.5, -3.0]));
        assert_eq!(call("VA", &[s(" ")]), ns(&[]));
        assert_eq!(call("VA", &[s("1,x")]), e(Reason::NotANumber));
        assert_eq!(call("VA", &[s("1,,2")]), e(Reason::NotANumber));
        assert_eq!(call("VAN", &[s("1;2;3"), s(";")]), ns(&[1.0, 2.0, 3.0]));
        assert_eq!(call("VAN", &[s("1 | 2"), s("|")]), ns(&[1.0, 2.0]));
        assert_eq!(call("VAN", &[s("1,5"), s(";")]), e(Reason::NotANumber));
        assert_invalid(call("VAN", &[s("1"), s("")]), "VAN");
    }
}
