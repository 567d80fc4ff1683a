//! Vectors in, a vector out: selection, item-wise logic and arithmetic, slices, shifts.
//!
//! Item-wise functions need operands of equal length. A slice keeps the kind of its
//! operand (a numeric vector stays numeric, a general vector general).

use crate::lang::function::{CallCx, Function};
use crate::lang::value::{Reason, Value};

use super::operand::{empty, items, num, nums, same_len, vector, whole, Items, Res};

/// The vector functions.
pub(super) static FUNCTIONS: &[Function] = &[
    entry!("VSEL", [], [T, A], Propagate, vsel),
    entry!("VISR", [], [A, N, N], Propagate, visr),
    entry!("VAND", [], [A, A], Propagate, vand),
    entry!("VOR", [], [A, A], Propagate, vor),
    entry!("VNOT", [], [A], Propagate, vnot),
    entry!("VBEX", [], [A, N], Propagate, vbex),
    entry!("VLAD", [], [A, A, N], Propagate, vlad),
    entry!("VBEG", [], [N, T], Propagate, vbeg),
    entry!("VEND", [], [N, T], Propagate, vend),
    entry!("VIDX", [], [N, N, T], Propagate, vidx),
    entry!("VMID", [], [N, N, T], Propagate, vmid),
    entry!("VNUM", [], [T], Propagate, vnum),
    entry!("VMUL", [], [A, A], Propagate, vmul),
    entry!("VDIV", [], [A, A], Propagate, vdiv),
    entry!("VADD", [], [A, A], Propagate, vadd),
    entry!("VMULC", [], [A, N], Propagate, vmulc),
    entry!("VADDC", [], [A, N], Propagate, vaddc),
    entry!("VSHIFT", [], [A, N], Propagate, vshift),
    entry!("VSSS", [], [A, N], Propagate, vsss),
];

/// 1.0 for true, 0.0 for false.
fn bit(b: bool) -> f64 {
    f64::from(u8::from(b))
}

fn vsel(a: &[Value], _: &mut CallCx) -> Res {
    let why = "VSEL: expects two vectors";
    let v = items(&a[0], why)?;
    let keep = nums(&a[1], why)?;
    same_len(v.len(), keep.len())?;
    Ok(v.select(|i| keep[i] != 0.0))
}

fn visr(a: &[Value], _: &mut CallCx) -> Res {
    let why = "VISR: expects a vector and two numbers";
    let v = nums(&a[0], why)?;
    let (lo, hi) = (num(&a[1], why)?, num(&a[2], why)?);
    Ok(Value::Nums(
        v.iter().map(|x| bit(lo <= *x && *x <= hi)).collect(),
    ))
}

/// Item-wise `f` of two equally long numeric vectors.
fn zip(a: &[Value], why: &'static str, f: impl Fn(f64, f64) -> f64) -> Res {
    let (x, y) = (nums(&a[0], why)?, nums(&a[1], why)?);
    same_len(x.len(), y.len())?;
    vector(x.iter().zip(y.iter()).map(|(p, q)| f(*p, *q)).collect())
}

fn vand(a: &[Value], _: &mut CallCx) -> Res {
    zip(a, "VAND: expects two vectors", |p, q| {
        bit(p != 0.0 && q != 0.0)
    })
}

fn vor(a: &[Value], _: &mut CallCx) -> Res {
    zip(a, "VOR: expects two vectors", |p, q| {
        bit(p != 0.0 || q != 0.0)
    })
}

fn vnot(a: &[Value], _: &mut CallCx) -> Res {
    let v = nums(&a[0], "VNOT: expects a vector")?;
    Ok(Value::Nums(v.iter().map(|x| bit(*x == 0.0)).collect()))
}

/// For each item, the distance to the nearest item whose truth is `target`; with
/// `edges`, the places just beyond both ends count as such items.
fn nearest(on: &[bool], target: bool, edges: bool) -> Vec<usize> {
    let far = usize::MAX / 2;
    let mut d = vec![far; on.len()];
    let mut dist = if edges { 0 } else { far };
    for (i, x) in on.iter().enumerate() {
        dist = if *x == target {
            0
        } else {
            dist.saturating_add(1)
        };
        d[i] = dist;
    }
    let mut dist = if edges { 0 } else { far };
    for (i, x) in on.iter().enumerate().rev() {
        dist = if *x == target {
            0
        } else {
            dist.saturating_add(1)
        };
        d[i] = d[i].min(dist);
    }
    d
}

/// b > 0: every item within b items of a true item becomes 1 (widening); b < 0: an item
/// stays 1 only if no 0 — and neither end of the vector — lies within −b items of it
/// (narrowing). Output 0/1.
fn vbex(a: &[Value], _: &mut CallCx) -> Res {
    let why = "VBEX: expects a vector and a number";
    let v = nums(&a[0], why)?;
    let b = whole(&a[1], why)?;
    let on: Vec<bool> = v.iter().map(|x| *x != 0.0).collect();
    let k = usize::try_from(b.unsigned_abs()).unwrap_or(usize::MAX);
    let out: Vec<f64> = if b >= 0 {
        nearest(&on, true, false)
            .iter()
            .map(|d| bit(*d <= k))
            .collect()
    } else {
        nearest(&on, false, true)
            .iter()
            .map(|d| bit(*d > k))
            .collect()
    };
    Ok(Value::Nums(out.into()))
}

fn vlad(a: &[Value], _: &mut CallCx) -> Res {
    let why = "VLAD: expects two vectors and a number";
    let c = num(&a[2], why)?;
    zip(a, why, |p, q| bit(p < q - c))
}

/// The first / last min(a, len) items; a negative a is out of range.
fn count(a: &Value, v: &Items, why: &'static str) -> Result<usize, Value> {
    let k = whole(a, why)?;
    let k = usize::try_from(k).map_err(|_| empty(Reason::OutOfRange))?;
    Ok(k.min(v.len()))
}

fn vbeg(a: &[Value], _: &mut CallCx) -> Res {
    let why = "VBEG: expects a number and a vector";
    let v = items(&a[1], why)?;
    let k = count(&a[0], &v, why)?;
    Ok(v.slice(0, k))
}

fn vend(a: &[Value], _: &mut CallCx) -> Res {
    let why = "VEND: expects a number and a vector";
    let v = items(&a[1], why)?;
    let k = count(&a[0], &v, why)?;
    Ok(v.slice(v.len() - k, v.len()))
}

/// Items `from..=to` (0-based), all of which must exist.
fn span(v: &Items, from: i64, to: i64) -> Res {
    let len = i64::try_from(v.len()).unwrap_or(i64::MAX);
    if 0 <= from && from <= to && to < len {
        Ok(v.slice(from as usize, to as usize + 1))
    } else {
        Err(empty(Reason::OutOfRange))
    }
}

fn vidx(a: &[Value], _: &mut CallCx) -> Res {
    let why = "VIDX: expects two numbers and a vector";
    let v = items(&a[2], why)?;
    span(&v, whole(&a[0], why)?, whole(&a[1], why)?)
}

/// mid = len / 2 (rounded down).
fn vmid(a: &[Value], _: &mut CallCx) -> Res {
    let why = "VMID: expects two numbers and a vector";
    let v = items(&a[2], why)?;
    let mid = i64::try_from(v.len() / 2).unwrap_or(i64::MAX);
    let (from, to) = (whole(&a[0], why)?, whole(&a[1], why)?);
    span(&v, mid.saturating_add(from), mid.saturating_add(to))
}

fn vnum(a: &[Value], _: &mut CallCx) -> Res {
    Ok(match items(&a[0], "VNUM: expects a vector")? {
        Items::Nums(_) => a[0].clone(),
        Items::List(v) => Value::Nums(v.iter().filter_map(Value::as_num).collect()),
    })
}

fn vmul(a: &[Value], _: &mut CallCx) -> Res {
    zip(a, "VMUL: expects two vectors", |p, q| p * q)
}

/// Any zero divisor makes the whole result empty.
fn vdiv(a: &[Value], _: &mut CallCx) -> Res {
    let why = "VDIV: expects two vectors";
    let (x, y) = (nums(&a[0], why)?, nums(&a[1], why)?);
    same_len(x.len(), y.len())?;
    if y.contains(&0.0) {
        return Err(empty(Reason::DivisionByZero));
    }
    vector(x.iter().zip(y.iter()).map(|(p, q)| p / q).collect())
}

fn vadd(a: &[Value], _: &mut CallCx) -> Res {
    zip(a, "VADD: expects two vectors", |p, q| p + q)
}

fn vmulc(a: &[Value], _: &mut CallCx) -> Res {
    let why = "VMULC: expects a vector and a number";
    let (v, c) = (nums(&a[0], why)?, num(&a[1], why)?);
    vector(v.iter().map(|x| x * c).collect())
}

fn vaddc(a: &[Value], _: &mut CallCx) -> Res {
    let why = "VADDC: expects a vector and a number";
    let (v, c) = (nums(&a[0], why)?, num(&a[1], why)?);
    vector(v.iter().map(|x| x + c).collect())
}

/// Without the first b items (b < 0: the last −b); removing more than there are leaves
/// no items.
fn vshift(a: &[Value], _: &mut CallCx) -> Res {
    let why = "VSHIFT: expects a vector and a number";
    let v = nums(&a[0], why)?;
    let b = whole(&a[1], why)?;
    let k = usize::try_from(b.unsigned_abs())
        .unwrap_or(usize::MAX)
        .min(v.len());
    Ok(Value::Nums(if b >= 0 {
        v[k..].into()
    } else {
        v[..v.len() - k].into()
    }))
}

/// `a[i] − a[i−b]` for every i where both items exist: len − |b| items (none when
/// |b| ≥ len). A negative b gives `a[i] − a[i+|b|]`.
fn vsss(a: &[Value], _: &mut CallCx) -> Res {
    let why = "VSSS: expects a vector and a number";
    let v = nums(&a[0], why)?;
    let b = whole(&a[1], why)?;
    let k = usize::try_from(b.unsigned_abs())
        .unwrap_or(usize::MAX)
        .min(v.len());
    let n = v.len() - k;
    vector(if b >= 0 {
        (0..n).map(|j| v[j + k] - v[j]).collect()
    } else {
        (0..n).map(|j| v[j] - v[j + k]).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{assert_invalid, call, call1, e, list, n, ns, s};
    use crate::lang::value::Reason;

    #[test]
    fn select() {
        let v = list(&[s("a"), n(2.0), s("c")]);
        let r = call("VSEL", &[v.clone(), ns(&[1.0, 0.0, -2.0])]);
        assert_eq!(r, list(&[s("a"), s("c")]));
        let r = call("VSEL", &[ns(&[1.0, 2.0]), list(&[s("0"), s("1")])]);
        assert_eq!(r, ns(&[2.0]));
        assert_eq!(call("VSEL", &[ns(&[]), ns(&[])]), ns(&[]));
        let r = call("VSEL", &[v.clone(), ns(&[1.0])]);
        assert_eq!(r, e(Reason::UnequalLengths));
        let r = call("VSEL", &[v.clone(), list(&[s("x"), n(1.0), n(1.0)])]);
        assert_eq!(r, e(Reason::NotANumber));
        assert_invalid(call("VSEL", &[s("abc"), ns(&[1.0])]), "VSEL");
        assert_invalid(call("VSEL", &[v, n(1.0)]), "VSEL");
    }

    #[test]
    fn range_and_logic() {
        let v = ns(&[1.0, 5.0, 10.0]);
        assert_eq!(
            call("VISR", &[v.clone(), n(2.0), n(10.0)]),
            ns(&[0.0, 1.0, 1.0])
        );
        assert_eq!(call("VISR", &[ns(&[]), n(2.0), n(10.0)]), ns(&[]));
        assert_eq!(call("VISR", &[v, s("x"), n(1.0)]), e(Reason::NotANumber));
        let (p, q) = (ns(&[0.0, 0.0, 2.0, -1.0]), ns(&[0.0, 3.0, 0.0, 1.0]));
        assert_eq!(
            call("VAND", &[p.clone(), q.clone()]),
            ns(&[0.0, 0.0, 0.0, 1.0])
        );
        assert_eq!(call("VOR", &[p.clone(), q]), ns(&[0.0, 1.0, 1.0, 1.0]));
        assert_eq!(call1("VNOT", &p), ns(&[1.0, 1.0, 0.0, 0.0]));
        assert_eq!(call("VNOT", &[ns(&[])]), ns(&[]));
        let r = call("VAND", &[p.clone(), ns(&[1.0])]);
        assert_eq!(r, e(Reason::UnequalLengths));
        assert_eq!(
            call("VOR", &[ns(&[]), ns(&[1.0])]),
            e(Reason::UnequalLengths)
        );
        assert_invalid(call("VOR", &[p, n(1.0)]), "VOR");
        assert_invalid(call("VNOT", &[n(1.0)]), "VNOT");
    }

    #[test]
    fn widen_and_narrow() {
        let v = ns(&[0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        let r = call("VBEX", &[v.clone(), n(2.0)]);
        assert_eq!(r, ns(&[0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]));
        assert_eq!(call("VBEX", &[v.clone(), n(0.0)]), v);
        let run = ns(&[0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]);
        let r = call("VBEX", &[run.clone(), n(-1.0)]);
        assert_eq!(r, ns(&[0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0]));
        let r = call("VBEX", &[run, n(-3.0)]);
        assert_eq!(r, ns(&[0.0; 7]));
        let edge = ns(&[1.0, 1.0, 1.0, 0.0, 5.0]);
        let r = call("VBEX", &[edge.clone(), n(-1.0)]);
        assert_eq!(r, ns(&[0.0, 1.0, 0.0, 0.0, 0.0]));
        let r = call("VBEX", &[edge, n(1.0)]);
        assert_eq!(r, ns(&[1.0, 1.0, 1.0, 1.0, 1.0]));
        assert_eq!(call("VBEX", &[ns(&[]), n(3.0)]), ns(&[]));
        assert_eq!(call("VBEX", &[ns(&[0.0, 0.0]), n(1e9)]), ns(&[0.0, 0.0]));
        assert_eq!(call("VBEX", &[ns(&[1.0]), n(0.5)]), e(Reason::OutOfRange));
        assert_invalid(call("VBEX", &[n(1.0), n(1.0)]), "VBEX");
    }

    #[test]
    fn lower_than_by() {
        let r = call(
            "VLAD",
            &[ns(&[1.0, 5.0, 3.0]), ns(&[4.0, 4.0, 4.0]), n(1.0)],
        );
        assert_eq!(r, ns(&[1.0, 0.0, 0.0]));
        let r = call("VLAD", &[ns(&[1.0]), ns(&[4.0, 4.0]), n(1.0)]);
        assert_eq!(r, e(Reason::UnequalLengths));
        let r = call("VLAD", &[ns(&[1.0]), ns(&[4.0]), s("c")]);
        assert_eq!(r, e(Reason::NotANumber));
        assert_invalid(call("VLAD", &[ns(&[1.0]), n(4.0), n(1.0)]), "VLAD");
    }

    #[test]
    fn slices() {
        let v = ns(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(call("VBEG", &[n(2.0), v.clone()]), ns(&[1.0, 2.0]));
        assert_eq!(call("VEND", &[n(2.0), v.clone()]), ns(&[4.0, 5.0]));
        assert_eq!(call("VBEG", &[n(9.0), v.clone()]), v);
        assert_eq!(call("VEND", &[n(0.0), v.clone()]), ns(&[]));
        assert_eq!(call("VBEG", &[n(-1.0), v.clone()]), e(Reason::OutOfRange));
        let l = list(&[s("a"), s("b"), s("c")]);
        assert_eq!(call("VEND", &[n(1.0), l.clone()]), list(&[s("c")]));
        assert_eq!(
            call("VIDX", &[n(1.0), n(3.0), v.clone()]),
            ns(&[2.0, 3.0, 4.0])
        );
        assert_eq!(call("VIDX", &[n(0.0), n(0.0), l.clone()]), list(&[s("a")]));
        for (p, q) in [(3.0, 1.0), (-1.0, 2.0), (2.0, 5.0), (0.5, 2.0)] {
            let r = call("VIDX", &[n(p), n(q), v.clone()]);
            assert_eq!(r, e(Reason::OutOfRange), "{p} {q}");
        }
        assert_eq!(
            call("VMID", &[n(-1.0), n(1.0), v.clone()]),
            ns(&[2.0, 3.0, 4.0])
        );
        assert_eq!(call("VMID", &[n(0.0), n(0.0), ns(&[1.0, 2.0])]), ns(&[2.0]));
        assert_eq!(
            call("VMID", &[n(-3.0), n(0.0), v.clone()]),
            e(Reason::OutOfRange)
        );
        assert_eq!(
            call("VMID", &[n(0.0), n(0.0), ns(&[])]),
            e(Reason::OutOfRange)
        );
        assert_invalid(call("VIDX", &[n(0.0), n(0.0), n(1.0)]), "VIDX");
        assert_invalid(call("VMID", &[v.clone(), n(0.0), v.clone()]), "VMID");
        assert_invalid(call("VBEG", &[n(1.0), s("abc")]), "VBEG");
    }

    #[test]
    fn numeric_items() {
        let l = list(&[s("1"), s("x"), n(2.5), s("")]);
        assert_eq!(call("VNUM", &[l]), ns(&[1.0, 2.5]));
        assert_eq!(call("VNUM", &[ns(&[3.0])]), ns(&[3.0]));
        assert_eq!(call("VNUM", &[list(&[])]), ns(&[]));
        assert_invalid(call("VNUM", &[s("1")]), "VNUM");
    }

    #[test]
    fn item_wise_arithmetic() {
        let (p, q) = (ns(&[1.0, 2.0, 3.0]), ns(&[4.0, 5.0, 6.0]));
        assert_eq!(
            call("VMUL", &[p.clone(), q.clone()]),
            ns(&[4.0, 10.0, 18.0])
        );
        assert_eq!(call("VDIV", &[q.clone(), p.clone()]), ns(&[4.0, 2.5, 2.0]));
        assert_eq!(call("VADD", &[p.clone(), q.clone()]), ns(&[5.0, 7.0, 9.0]));
        let z = ns(&[1.0, 0.0, 1.0]);
        assert_eq!(call("VDIV", &[p.clone(), z]), e(Reason::DivisionByZero));
        let r = call("VDIV", &[p.clone(), ns(&[0.0])]);
        assert_eq!(r, e(Reason::UnequalLengths));
        for name in ["VMUL", "VDIV", "VADD"] {
            let r = call(name, &[p.clone(), ns(&[1.0])]);
            assert_eq!(r, e(Reason::UnequalLengths), "{name}");
            assert_eq!(call(name, &[ns(&[]), ns(&[])]), ns(&[]), "{name}");
            assert_invalid(call(name, &[p.clone(), n(2.0)]), name);
            let r = call(name, &[list(&[s("a")]), ns(&[1.0])]);
            assert_eq!(r, e(Reason::NotANumber), "{name}");
        }
        assert!(call("VMUL", &[ns(&[1e300]), ns(&[1e300])]).is_empty());
        assert_eq!(call("VMULC", &[p.clone(), n(2.0)]), ns(&[2.0, 4.0, 6.0]));
        assert_eq!(call("VADDC", &[p.clone(), s("-1")]), ns(&[0.0, 1.0, 2.0]));
        assert_eq!(call("VMULC", &[ns(&[]), n(2.0)]), ns(&[]));
        assert_eq!(call("VADDC", &[p.clone(), s("y")]), e(Reason::NotANumber));
        assert_invalid(call("VMULC", &[n(1.0), n(2.0)]), "VMULC");
        assert_invalid(call("VADDC", &[p.clone(), p]), "VADDC");
    }

    #[test]
    fn shift_and_lagged_difference() {
        let v = ns(&[1.0, 4.0, 9.0, 16.0]);
        assert_eq!(call("VSHIFT", &[v.clone(), n(1.0)]), ns(&[4.0, 9.0, 16.0]));
        assert_eq!(call("VSHIFT", &[v.clone(), n(-2.0)]), ns(&[1.0, 4.0]));
        assert_eq!(call("VSHIFT", &[v.clone(), n(0.0)]), v);
        assert_eq!(call("VSHIFT", &[v.clone(), n(7.0)]), ns(&[]));
        assert_eq!(call("VSHIFT", &[v.clone(), n(-7.0)]), ns(&[]));
        assert_eq!(call("VSSS", &[v.clone(), n(1.0)]), ns(&[3.0, 5.0, 7.0]));
        assert_eq!(call("VSSS", &[v.clone(), n(2.0)]), ns(&[8.0, 12.0]));
        assert_eq!(call("VSSS", &[v.clone(), n(-1.0)]), ns(&[-3.0, -5.0, -7.0]));
        assert_eq!(call("VSSS", &[v.clone(), n(0.0)]), ns(&[0.0; 4]));
        assert_eq!(call("VSSS", &[v.clone(), n(4.0)]), ns(&[]));
        assert_eq!(call("VSSS", &[v.clone(), n(1.5)]), e(Reason::OutOfRange));
        assert_invalid(call("VSSS", &[n(1.0), n(1.0)]), "VSSS");
        assert_invalid(call("VSHIFT", &[v.clone(), v]), "VSHIFT");
    }
}
