//! Aggregates: a vector in, one value out (`SNRM`, `SMED`, `SSUM`, `SBEGN`, `SCNT`, …).
//!
//! A numeric vector is iterated in place; only a general vector (items that may be
//! strings) is converted first. `SDATCTRL` lives in `quality.rs`; `SLIST` and `SA`, which
//! produce text, in `text.rs`.

use crate::lang::function::{CallCx, Function};
use crate::lang::value::{Reason, Value};

use super::operand::{empty, is_blank, items, no_empty, num, nums, ordinal, Items, Res};

/// The aggregate functions.
pub(super) static FUNCTIONS: &[Function] = &[
    entry!("SNRM", [], [A], Propagate, snrm),
    entry!("SMED", [], [A], Propagate, smed),
    entry!("SMIN", [], [A], Propagate, smin),
    entry!("SMAX", [], [A], Propagate, smax),
    entry!("SSUM", [], [A], Propagate, ssum),
    entry!("SSUMX", [], [T], Propagate, ssumx),
    entry!("SSUMN", [], [T], Propagate, ssumn),
    entry!("SBEG", [], [T], Propagate, sbeg),
    entry!("SEND", [], [T], Propagate, send),
    entry!("SBEGN", [], [N, T], Propagate, sbegn),
    entry!("SENDN", [], [N, T], Propagate, sendn),
    entry!("SBEGNR", [], [N, A, N, N, Any], Accept, sbegnr),
    entry!("SENDNR", [], [N, A, N, N, Any], Accept, sendnr),
    entry!("SSUMD", [], [A], Propagate, ssumd),
    entry!("SSUMP", [], [A], Propagate, ssump),
    entry!("SSUMM", [], [A], Propagate, ssumm),
    entry!("SCNT", [], [T], Propagate, scnt),
    entry!("SCNT0", [], [T], Accept, scnt0),
    entry!("SCNTS", [], [T], Accept, scnts),
    entry!("SCNTNR", [], [A, N, N], Propagate, scntnr),
];

/// The vector must have items.
fn nonempty(v: &[f64]) -> Result<&[f64], Value> {
    if v.is_empty() {
        Err(empty(Reason::EmptyVector))
    } else {
        Ok(v)
    }
}

fn snrm(a: &[Value], _: &mut CallCx) -> Res {
    let v = nums(&a[0], "SNRM: expects a vector")?;
    let v = nonempty(&v)?;
    Ok(Value::num(v.iter().sum::<f64>() / v.len() as f64))
}

/// Even length: the mean of the two middle items.
fn smed(a: &[Value], _: &mut CallCx) -> Res {
    let mut v = nums(&a[0], "SMED: expects a vector")?.into_owned();
    nonempty(&v)?;
    let n = v.len();
    let (lower, middle, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    let middle = *middle;
    let median = if n % 2 == 0 {
        let below = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        below / 2.0 + middle / 2.0
    } else {
        middle
    };
    Ok(Value::num(median))
}

fn smin(a: &[Value], _: &mut CallCx) -> Res {
    let v = nums(&a[0], "SMIN: expects a vector")?;
    let v = nonempty(&v)?;
    Ok(Value::num(v.iter().copied().fold(f64::INFINITY, f64::min)))
}

fn smax(a: &[Value], _: &mut CallCx) -> Res {
    let v = nums(&a[0], "SMAX: expects a vector")?;
    let v = nonempty(&v)?;
    Ok(Value::num(
        v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    ))
}

/// The sum of no items is 0.
fn ssum(a: &[Value], _: &mut CallCx) -> Res {
    let v = nums(&a[0], "SSUM: expects a vector")?;
    Ok(Value::num(v.iter().sum()))
}

/// Items that are not numbers (strings, empty items) are skipped.
fn ssumx(a: &[Value], _: &mut CallCx) -> Res {
    Ok(Value::num(match items(&a[0], "SSUMX: expects a vector")? {
        Items::Nums(v) => v.iter().sum(),
        Items::List(v) => v.iter().filter_map(Value::as_num).sum(),
    }))
}

fn ssumn(a: &[Value], _: &mut CallCx) -> Res {
    let v = nums(&a[0], "SSUMN: expects a vector")?;
    Ok(Value::num(v.iter().sum()))
}

fn sbeg(a: &[Value], _: &mut CallCx) -> Res {
    let v = items(&a[0], "SBEG: expects a vector")?;
    v.get(0).ok_or(empty(Reason::EmptyVector))
}

fn send(a: &[Value], _: &mut CallCx) -> Res {
    let v = items(&a[0], "SEND: expects a vector")?;
    let last = v.len().checked_sub(1).ok_or(empty(Reason::EmptyVector))?;
    v.get(last).ok_or(empty(Reason::EmptyVector))
}

fn sbegn(a: &[Value], _: &mut CallCx) -> Res {
    let why = "SBEGN: expects a number and a vector";
    let v = items(&a[1], why)?;
    let i = ordinal(&a[0], v.len(), why)?.ok_or(empty(Reason::OutOfRange))?;
    v.get(i).ok_or(empty(Reason::OutOfRange))
}

fn sendn(a: &[Value], _: &mut CallCx) -> Res {
    let why = "SENDN: expects a number and a vector";
    let v = items(&a[1], why)?;
    let i = ordinal(&a[0], v.len(), why)?.ok_or(empty(Reason::OutOfRange))?;
    v.get(v.len() - 1 - i).ok_or(empty(Reason::OutOfRange))
}

/// The a-th item from the start (`from_end` false) or end if it lies in [c, d], else e.
/// Empty a, b, c or d give empty; e only matters when it is chosen.
fn nth_in_range(a: &[Value], from_end: bool, why: &'static str) -> Res {
    no_empty(&a[..4])?;
    let v = nums(&a[1], why)?;
    let (lo, hi) = (num(&a[2], why)?, num(&a[3], why)?);
    let item = ordinal(&a[0], v.len(), why)?
        .map(|i| if from_end { v[v.len() - 1 - i] } else { v[i] })
        .filter(|x| lo <= *x && *x <= hi);
    Ok(match item {
        Some(x) => Value::Num(x),
        None => a[4].clone(),
    })
}

fn sbegnr(a: &[Value], _: &mut CallCx) -> Res {
    nth_in_range(
        a,
        false,
        "SBEGNR: expects a number, a vector and three more operands",
    )
}

fn sendnr(a: &[Value], _: &mut CallCx) -> Res {
    nth_in_range(
        a,
        true,
        "SENDNR: expects a number, a vector and three more operands",
    )
}

/// `Σ (a[i] − a[i−1])`; 0 for fewer than two items.
fn ssumd(a: &[Value], _: &mut CallCx) -> Res {
    let v = nums(&a[0], "SSUMD: expects a vector")?;
    Ok(Value::num(v.windows(2).map(|w| w[1] - w[0]).sum()))
}

fn ssump(a: &[Value], _: &mut CallCx) -> Res {
    let v = nums(&a[0], "SSUMP: expects a vector")?;
    let d = v.windows(2).map(|w| w[1] - w[0]).filter(|d| *d > 0.0);
    Ok(Value::num(d.sum()))
}

/// The sum of the negative differences, itself negative (or 0).
fn ssumm(a: &[Value], _: &mut CallCx) -> Res {
    let v = nums(&a[0], "SSUMM: expects a vector")?;
    let d = v.windows(2).map(|w| w[1] - w[0]).filter(|d| *d < 0.0);
    Ok(Value::num(d.sum()))
}

/// All items, empty ones included.
fn scnt(a: &[Value], _: &mut CallCx) -> Res {
    Ok(Value::Num(
        items(&a[0], "SCNT: expects a vector")?.len() as f64
    ))
}

/// Counts (blank items, other items); a scalar or empty operand counts as one item.
fn blanks(v: &Value) -> (usize, usize) {
    match v {
        Value::Nums(v) => (0, v.len()),
        Value::List(v) => {
            let blank = v.iter().filter(|x| is_blank(x)).count();
            (blank, v.len() - blank)
        }
        scalar if is_blank(scalar) => (1, 0),
        _ => (0, 1),
    }
}

fn scnt0(a: &[Value], _: &mut CallCx) -> Res {
    Ok(Value::Num(blanks(&a[0]).0 as f64))
}

fn scnts(a: &[Value], _: &mut CallCx) -> Res {
    Ok(Value::Num(blanks(&a[0]).1 as f64))
}

/// Items in [b, c]; when b > c, the items outside [c, b].
fn scntnr(a: &[Value], _: &mut CallCx) -> Res {
    let why = "SCNTNR: expects a vector and two numbers";
    let v = nums(&a[0], why)?;
    let (b, c) = (num(&a[1], why)?, num(&a[2], why)?);
    let count = if b <= c {
        v.iter().filter(|x| b <= **x && **x <= c).count()
    } else {
        v.iter().filter(|x| **x < c || **x > b).count()
    };
    Ok(Value::Num(count as f64))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{assert_invalid, call, call1, e, list, n, ns, null, s};
    use crate::lang::value::Reason;

    #[test]
    fn mean_median_min_max_sum() {
        let v = ns(&[1.0, 2.0, 3.0, 6.0]);
        assert_eq!(call1("SNRM", &v), n(3.0));
        assert_eq!(call1("SMED", &v), n(2.5));
        assert_eq!(call("SMED", &[ns(&[5.0, 1.0, 3.0])]), n(3.0));
        assert_eq!(call("SMED", &[ns(&[7.0])]), n(7.0));
        assert_eq!(
            call("SMED", &[ns(&[4.0, -1.0, 9.0, 2.0, 2.0, 8.0])]),
            n(3.0)
        );
        assert_eq!(call1("SMIN", &v), n(1.0));
        assert_eq!(call1("SMAX", &v), n(6.0));
        assert_eq!(call("SSUM", &[v]), n(12.0));
        let strings = list(&[s("1"), n(2.0), s(" 6 ")]);
        assert_eq!(call1("SNRM", &strings), n(3.0));
        assert_eq!(call1("SMAX", &strings), n(6.0));
        assert_eq!(call("SSUM", &[strings]), n(9.0));
    }

    #[test]
    fn numeric_aggregate_edges() {
        for name in ["SNRM", "SMED", "SMIN", "SMAX"] {
            assert_eq!(call(name, &[ns(&[])]), e(Reason::EmptyVector), "{name}");
            assert_eq!(
                call(name, &[list(&[n(1.0), s("x")])]),
                e(Reason::NotANumber)
            );
            assert_eq!(
                call(name, &[list(&[n(1.0), null()])]),
                e(Reason::NotANumber)
            );
            assert_invalid(call(name, &[n(1.0)]), name);
            assert_invalid(call(name, &[s("1,2")]), name);
            assert_eq!(call(name, &[null()]), null());
        }
        assert_eq!(call("SSUM", &[ns(&[])]), n(0.0));
        assert_eq!(call("SSUM", &[list(&[s("a")])]), e(Reason::NotANumber));
        assert_invalid(call("SSUM", &[n(1.0)]), "SSUM");
        assert!(call("SSUM", &[ns(&[1e308, 1e308])]).is_empty(), "overflow");
    }

    #[test]
    fn sums_of_mixed_vectors() {
        let mixed = list(&[n(1.0), s("2"), s("x"), null(), s("")]);
        assert_eq!(call1("SSUMX", &mixed), n(3.0));
        assert_eq!(call("SSUMX", &[ns(&[1.5, 2.5])]), n(4.0));
        assert_eq!(call("SSUMX", &[list(&[])]), n(0.0));
        assert_invalid(call("SSUMX", &[n(1.0)]), "SSUMX");
        assert_eq!(call("SSUMN", &[mixed]), e(Reason::NotANumber));
        assert_eq!(call("SSUMN", &[list(&[n(1.0), s("2")])]), n(3.0));
        assert_eq!(call("SSUMN", &[ns(&[])]), n(0.0));
        assert_invalid(call("SSUMN", &[s("1")]), "SSUMN");
    }

    #[test]
    fn first_last_and_nth() {
        let v = list(&[s("a"), n(2.0), s("c")]);
        assert_eq!(call1("SBEG", &v), s("a"));
        assert_eq!(call1("SEND", &v), s("c"));
        assert_eq!(call("SBEG", &[ns(&[])]), e(Reason::EmptyVector));
        assert_eq!(call("SEND", &[list(&[])]), e(Reason::EmptyVector));
        assert_invalid(call("SEND", &[n(1.0)]), "SEND");
        assert_eq!(call("SBEGN", &[n(2.0), v.clone()]), n(2.0));
        assert_eq!(call("SENDN", &[n(1.0), v.clone()]), s("c"));
        assert_eq!(call("SENDN", &[n(3.0), v.clone()]), s("a"));
        assert_eq!(call("SBEGN", &[s("3"), ns(&[4.0, 5.0, 6.0])]), n(6.0));
        for bad in [0.0, 4.0, -1.0, 1.5] {
            assert_eq!(call("SBEGN", &[n(bad), v.clone()]), e(Reason::OutOfRange));
            assert_eq!(call("SENDN", &[n(bad), v.clone()]), e(Reason::OutOfRange));
        }
        assert_eq!(call("SBEGN", &[s("x"), v.clone()]), e(Reason::NotANumber));
        assert_invalid(call("SBEGN", &[n(1.0), n(1.0)]), "SBEGN");
        assert_invalid(call("SENDN", &[v.clone(), v]), "SENDN");
    }

    #[test]
    fn nth_in_range_with_fallback() {
        let v = ns(&[1.0, 50.0, 200.0]);
        let go = |name, k: f64| call(name, &[n(k), v.clone(), n(0.0), n(100.0), s("no")]);
        assert_eq!(go("SBEGNR", 2.0), n(50.0));
        assert_eq!(go("SBEGNR", 3.0), s("no"));
        assert_eq!(go("SBEGNR", 4.0), s("no"));
        assert_eq!(go("SENDNR", 1.0), s("no"));
        assert_eq!(go("SENDNR", 3.0), n(1.0));
        assert_eq!(go("SENDNR", 0.0), s("no"));
        assert_eq!(go("SBEGNR", 1.5), e(Reason::OutOfRange));
        let chosen = call("SBEGNR", &[n(1.0), v.clone(), n(0.0), n(10.0), null()]);
        assert_eq!(chosen, n(1.0), "an unchosen empty fallback does not matter");
        let fallback = call("SBEGNR", &[n(3.0), v.clone(), n(0.0), n(10.0), null()]);
        assert_eq!(fallback, null());
        let missing = e(Reason::Missing("x".into()));
        let r = call(
            "SENDNR",
            &[n(1.0), missing.clone(), n(0.0), n(10.0), n(0.0)],
        );
        assert_eq!(r, missing);
        let r = call(
            "SENDNR",
            &[n(1.0), v.clone(), n(0.0), missing.clone(), n(0.0)],
        );
        assert_eq!(r, missing);
        let r = call("SENDNR", &[n(1.0), list(&[s("a")]), n(0.0), n(1.0), n(0.0)]);
        assert_eq!(r, e(Reason::NotANumber));
        assert_invalid(
            call("SBEGNR", &[n(1.0), n(5.0), n(0.0), n(9.0), n(0.0)]),
            "SBEGNR",
        );
    }

    #[test]
    fn differences() {
        let v = ns(&[1.0, 4.0, 2.0, 7.0, 7.0, 5.0]);
        assert_eq!(call1("SSUMD", &v), n(4.0));
        assert_eq!(call1("SSUMP", &v), n(8.0));
        assert_eq!(call("SSUMM", &[v]), n(-4.0));
        for name in ["SSUMD", "SSUMP", "SSUMM"] {
            assert_eq!(call(name, &[ns(&[])]), n(0.0), "{name}");
            assert_eq!(call(name, &[ns(&[3.0])]), n(0.0), "{name}");
            assert_eq!(call(name, &[list(&[s("z")])]), e(Reason::NotANumber));
            assert_invalid(call(name, &[n(3.0)]), name);
        }
    }

    #[test]
    fn counts() {
        let mixed = list(&[n(1.0), s(""), null(), s("x"), n(0.0)]);
        assert_eq!(call1("SCNT", &mixed), n(5.0));
        assert_eq!(call1("SCNT0", &mixed), n(2.0));
        assert_eq!(call("SCNTS", &[mixed]), n(3.0));
        assert_eq!(call("SCNT", &[ns(&[])]), n(0.0));
        assert_eq!(call("SCNT0", &[ns(&[1.0, 2.0])]), n(0.0));
        assert_eq!(call("SCNTS", &[ns(&[1.0, 2.0])]), n(2.0));
        assert_invalid(call("SCNT", &[n(1.0)]), "SCNT");
        // The testers accept empty and scalar operands as one item.
        assert_eq!(call("SCNT0", &[null()]), n(1.0));
        assert_eq!(call("SCNTS", &[null()]), n(0.0));
        assert_eq!(call("SCNT0", &[s("a")]), n(0.0));
        assert_eq!(call("SCNTS", &[n(4.0)]), n(1.0));
        assert_eq!(call("SCNT0", &[s("")]), n(1.0));
    }

    #[test]
    fn count_in_range() {
        let v = ns(&[1.0, 5.0, 10.0, 15.0]);
        assert_eq!(call("SCNTNR", &[v.clone(), n(5.0), n(10.0)]), n(2.0));
        assert_eq!(call("SCNTNR", &[v.clone(), n(10.0), n(5.0)]), n(2.0));
        assert_eq!(call("SCNTNR", &[v.clone(), n(12.0), n(2.0)]), n(2.0));
        assert_eq!(call("SCNTNR", &[ns(&[]), n(0.0), n(1.0)]), n(0.0));
        assert_eq!(call("SCNTNR", &[v, s("a"), n(1.0)]), e(Reason::NotANumber));
        assert_invalid(call("SCNTNR", &[n(1.0), n(0.0), n(1.0)]), "SCNTNR");
    }
}
