//! Comparisons, conditions and the tests for empty: `= > >= < <=`, `IF`, `INR`, `TOR`,
//! `IFNN`, `IFNA`, `ISN`, `ISA`, `GOTH`, `TRANS`.
//!
//! `IF`, `IFNN`, `IFNA`, `ISN` and `ISA` accept empty operands: their purpose is to test
//! for empty, and `IF` must not become empty because its unchosen branch is.

use crate::lang::function::{CallCx, Function};
use crate::lang::value::Value;

use super::operand::{flag, num, pair, truth, wrong, Res};

/// The comparison and condition functions.
pub(super) static FUNCTIONS: &[Function] = &[
    entry!("EQ", ["="], [N, N], Propagate, eq),
    entry!("GT", [">"], [N, N], Propagate, gt),
    entry!("GET", [">="], [N, N], Propagate, get),
    entry!("LT", ["<"], [N, N], Propagate, lt),
    entry!("LET", ["<="], [N, N], Propagate, let_),
    entry!("IF", [], [N, Any, Any], Accept, if_),
    entry!("INR", [], [N, N, N], Propagate, inr),
    entry!("TOR", [], [N, N, N], Propagate, tor),
    entry!("IFNN", [], [Any, N], Accept, ifnn),
    entry!("IFNA", [], [Any, Any], Accept, ifna),
    entry!("ISN", [], [Any], Accept, isn),
    entry!("ISA", [], [Any], Accept, isa),
    entry!("GOTH", [], [N, N, N, N], Propagate, goth),
    entry!("TRANS", [], [N, N, N, N], Propagate, trans),
];

/// Exact equality of the two numbers (no tolerance).
fn eq(a: &[Value], _: &mut CallCx) -> Res {
    let (x, y) = pair(a, "EQ: expects two numbers")?;
    Ok(flag(x == y))
}

fn gt(a: &[Value], _: &mut CallCx) -> Res {
    let (x, y) = pair(a, "GT: expects two numbers")?;
    Ok(flag(x > y))
}

fn get(a: &[Value], _: &mut CallCx) -> Res {
    let (x, y) = pair(a, "GET: expects two numbers")?;
    Ok(flag(x >= y))
}

fn lt(a: &[Value], _: &mut CallCx) -> Res {
    let (x, y) = pair(a, "LT: expects two numbers")?;
    Ok(flag(x < y))
}

fn let_(a: &[Value], _: &mut CallCx) -> Res {
    let (x, y) = pair(a, "LET: expects two numbers")?;
    Ok(flag(x <= y))
}

/// An empty condition gives empty; only the chosen branch may make the result empty.
fn if_(a: &[Value], _: &mut CallCx) -> Res {
    let chosen = if truth(&a[0], "IF: the condition must be a number")? {
        &a[1]
    } else {
        &a[2]
    };
    Ok(chosen.clone())
}

/// b ≤ a ≤ c, literally: when b > c nothing is in range.
fn inr(a: &[Value], _: &mut CallCx) -> Res {
    let why = "INR: expects three numbers";
    let (x, lo, hi) = (num(&a[0], why)?, num(&a[1], why)?, num(&a[2], why)?);
    Ok(flag(lo <= x && x <= hi))
}

/// Clamps a into [b, c]; b > c is invalid.
fn tor(a: &[Value], _: &mut CallCx) -> Res {
    let why = "TOR: expects three numbers";
    let (x, lo, hi) = (num(&a[0], why)?, num(&a[1], why)?, num(&a[2], why)?);
    if lo > hi {
        return Err(wrong("TOR: the lower bound b is above the upper bound c"));
    }
    Ok(Value::num(x.clamp(lo, hi)))
}

/// b (as a number) when a is not a number (empty, a non-numeric string or a vector),
/// else a as a number.
fn ifnn(a: &[Value], _: &mut CallCx) -> Res {
    match a[0].as_num() {
        Some(x) => Ok(Value::Num(x)),
        None => Ok(Value::Num(num(&a[1], "IFNN: b must be a number")?)),
    }
}

fn ifna(a: &[Value], _: &mut CallCx) -> Res {
    Ok(if a[0].is_empty() { &a[1] } else { &a[0] }.clone())
}

fn isn(a: &[Value], _: &mut CallCx) -> Res {
    Ok(flag(a[0].as_num().is_some()))
}

/// A number, a non-empty string, or a vector with at least one item.
fn isa(a: &[Value], _: &mut CallCx) -> Res {
    Ok(flag(match &a[0] {
        Value::Empty(_) => false,
        Value::Num(_) => true,
        Value::Str(s) => !s.is_empty(),
        Value::Nums(v) => !v.is_empty(),
        Value::List(v) => !v.is_empty(),
    }))
}

/// Crossing of level d between previous value b and current value c; a selects the
/// direction: 1 rising (b < d ≤ c), −1 falling (b > d ≥ c), 0 either; others invalid.
fn goth(a: &[Value], _: &mut CallCx) -> Res {
    let why = "GOTH: expects four numbers";
    let (mode, prev, cur, level) = (
        num(&a[0], why)?,
        num(&a[1], why)?,
        num(&a[2], why)?,
        num(&a[3], why)?,
    );
    let rising = prev < level && level <= cur;
    let falling = prev > level && level >= cur;
    if mode == 1.0 {
        Ok(flag(rising))
    } else if mode == -1.0 {
        Ok(flag(falling))
    } else if mode == 0.0 {
        Ok(flag(rising || falling))
    } else {
        Err(wrong("GOTH: the direction a must be 1, -1 or 0"))
    }
}

/// The closed interval between a and b (either order) covers the whole range [c, d]
/// (c and d in either order).
fn trans(a: &[Value], _: &mut CallCx) -> Res {
    let why = "TRANS: expects four numbers";
    let (from, to, c, d) = (
        num(&a[0], why)?,
        num(&a[1], why)?,
        num(&a[2], why)?,
        num(&a[3], why)?,
    );
    Ok(flag(from.min(to) <= c.min(d) && from.max(to) >= c.max(d)))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{assert_invalid, call, e, list, n, ns, null, s};
    use crate::lang::value::Reason;

    #[test]
    fn comparisons_and_aliases() {
        for (name, alias, expect) in [
            ("EQ", "=", [0.0, 1.0, 0.0]),
            ("GT", ">", [0.0, 0.0, 1.0]),
            ("GET", ">=", [0.0, 1.0, 1.0]),
            ("LT", "<", [1.0, 0.0, 0.0]),
            ("LET", "<=", [1.0, 1.0, 0.0]),
        ] {
            for (i, x) in [1.0, 2.0, 3.0].into_iter().enumerate() {
                assert_eq!(call(name, &[n(x), n(2.0)]), n(expect[i]), "{name} {x} 2");
                assert_eq!(call(alias, &[n(x), s("2")]), n(expect[i]), "{alias} {x} 2");
            }
            assert_eq!(call(name, &[s("two"), n(2.0)]), e(Reason::NotANumber));
            assert_invalid(call(name, &[ns(&[1.0]), n(2.0)]), name);
        }
        assert_eq!(call("=", &[n(0.1 + 0.2), n(0.3)]), n(0.0), "no tolerance");
    }

    #[test]
    fn if_chooses_and_ignores_the_other_branch() {
        assert_eq!(call("IF", &[n(1.0), s("yes"), s("no")]), s("yes"));
        assert_eq!(call("IF", &[n(0.0), s("yes"), s("no")]), s("no"));
        assert_eq!(call("IF", &[n(-0.5), n(1.0), n(2.0)]), n(1.0));
        assert_eq!(call("IF", &[s("0"), n(1.0), n(2.0)]), n(2.0));
        assert_eq!(call("IF", &[n(1.0), n(7.0), null()]), n(7.0));
        assert_eq!(call("IF", &[n(0.0), n(7.0), null()]), null());
        assert_eq!(
            call("IF", &[n(1.0), ns(&[1.0, 2.0]), n(0.0)]),
            ns(&[1.0, 2.0])
        );
        let missing = e(Reason::Missing("c".into()));
        assert_eq!(call("IF", &[missing.clone(), n(1.0), n(2.0)]), missing);
        assert_eq!(call("IF", &[s("x"), n(1.0), n(2.0)]), e(Reason::NotANumber));
        assert_invalid(call("IF", &[ns(&[1.0]), n(1.0), n(2.0)]), "IF");
    }

    #[test]
    fn inr_and_tor() {
        assert_eq!(call("INR", &[n(5.0), n(1.0), n(5.0)]), n(1.0));
        assert_eq!(call("INR", &[n(1.0), n(1.0), n(5.0)]), n(1.0));
        assert_eq!(call("INR", &[n(6.0), n(1.0), n(5.0)]), n(0.0));
        assert_eq!(call("INR", &[n(3.0), n(5.0), n(1.0)]), n(0.0));
        assert_eq!(
            call("INR", &[n(3.0), s("x"), n(1.0)]),
            e(Reason::NotANumber)
        );
        assert_eq!(call("TOR", &[n(7.0), n(0.0), n(5.0)]), n(5.0));
        assert_eq!(call("TOR", &[n(-7.0), n(0.0), n(5.0)]), n(0.0));
        assert_eq!(call("TOR", &[n(3.0), n(0.0), n(5.0)]), n(3.0));
        assert_invalid(call("TOR", &[n(3.0), n(5.0), n(0.0)]), "TOR");
        assert_invalid(call("TOR", &[n(3.0), ns(&[5.0]), n(0.0)]), "TOR");
    }

    #[test]
    fn tests_for_empty() {
        let missing = e(Reason::Missing("x".into()));
        assert_eq!(call("IFNA", &[missing.clone(), n(2.0)]), n(2.0));
        assert_eq!(call("IFNA", &[s(""), n(2.0)]), s(""));
        assert_eq!(call("IFNA", &[n(1.0), missing.clone()]), n(1.0));
        assert_eq!(call("IFNN", &[missing.clone(), n(2.0)]), n(2.0));
        assert_eq!(call("IFNN", &[s("abc"), n(2.0)]), n(2.0));
        assert_eq!(call("IFNN", &[s(" 4 "), n(2.0)]), n(4.0));
        assert_eq!(call("IFNN", &[ns(&[1.0]), s("3")]), n(3.0));
        assert_eq!(call("IFNN", &[n(1.0), missing.clone()]), n(1.0));
        assert_eq!(call("IFNN", &[s("a"), s("b")]), e(Reason::NotANumber));
        assert_eq!(call("IFNN", &[s("a"), missing.clone()]), missing);
        assert_eq!(call("ISN", &[n(1.0)]), n(1.0));
        assert_eq!(call("ISN", &[s("1e3")]), n(1.0));
        assert_eq!(call("ISN", &[s("abc")]), n(0.0));
        assert_eq!(call("ISN", std::slice::from_ref(&missing)), n(0.0));
        assert_eq!(call("ISN", &[ns(&[1.0])]), n(0.0));
        assert_eq!(call("ISA", &[n(0.0)]), n(1.0));
        assert_eq!(call("ISA", &[s("a")]), n(1.0));
        assert_eq!(call("ISA", &[s("")]), n(0.0));
        assert_eq!(call("ISA", &[missing]), n(0.0));
        assert_eq!(call("ISA", &[ns(&[])]), n(0.0));
        assert_eq!(call("ISA", &[list(&[s("")])]), n(1.0));
    }

    #[test]
    fn goth_crossings() {
        assert_eq!(call("GOTH", &[n(1.0), n(1.0), n(5.0), n(3.0)]), n(1.0));
        assert_eq!(call("GOTH", &[n(1.0), n(1.0), n(3.0), n(3.0)]), n(1.0));
        assert_eq!(call("GOTH", &[n(1.0), n(3.0), n(5.0), n(3.0)]), n(0.0));
        assert_eq!(call("GOTH", &[n(1.0), n(5.0), n(1.0), n(3.0)]), n(0.0));
        assert_eq!(call("GOTH", &[n(-1.0), n(5.0), n(1.0), n(3.0)]), n(1.0));
        assert_eq!(call("GOTH", &[n(-1.0), n(5.0), n(3.0), n(3.0)]), n(1.0));
        assert_eq!(call("GOTH", &[n(-1.0), n(1.0), n(5.0), n(3.0)]), n(0.0));
        assert_eq!(call("GOTH", &[n(0.0), n(1.0), n(5.0), n(3.0)]), n(1.0));
        assert_eq!(call("GOTH", &[n(0.0), n(5.0), n(1.0), n(3.0)]), n(1.0));
        assert_eq!(call("GOTH", &[n(0.0), n(4.0), n(5.0), n(3.0)]), n(0.0));
        assert_invalid(call("GOTH", &[n(2.0), n(1.0), n(5.0), n(3.0)]), "GOTH");
        assert_eq!(
            call("GOTH", &[n(0.0), s("?"), n(5.0), n(3.0)]),
            e(Reason::NotANumber)
        );
    }

    #[test]
    fn trans_covers_range() {
        assert_eq!(call("TRANS", &[n(0.0), n(10.0), n(2.0), n(8.0)]), n(1.0));
        assert_eq!(call("TRANS", &[n(10.0), n(0.0), n(2.0), n(8.0)]), n(1.0));
        assert_eq!(call("TRANS", &[n(2.0), n(8.0), n(8.0), n(2.0)]), n(1.0));
        assert_eq!(call("TRANS", &[n(3.0), n(10.0), n(2.0), n(8.0)]), n(0.0));
        assert_eq!(call("TRANS", &[n(0.0), n(7.0), n(2.0), n(8.0)]), n(0.0));
        assert_eq!(
            call("TRANS", &[n(0.0), n(7.0), s("a"), n(8.0)]),
            e(Reason::NotANumber)
        );
    }
}
