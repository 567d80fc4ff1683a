//! Data-quality checks: `SDATCTRL`, the one function that writes a second result to an
//! `@name` output channel besides returning its own.

use crate::lang::function::{CallCx, Function};
use crate::lang::value::Value;

use super::operand::{num, nums, whole, wrong, Res};

/// The data-quality functions.
pub(super) static FUNCTIONS: &[Function] = &[entry!(
    "SDATCTRL",
    [],
    [N, Output, A, N],
    Propagate,
    sdatctrl
)];

/// Flags the items of c that fail check a with parameter d, writes the 0/1 flags to the
/// output channel b and returns how many items were flagged.
///
/// 1: item > d. 2: item < d. 3: a spike, `|c[i] − c[i−1]| > d`, flags the item after the
/// step (the first item is never flagged). 4: a stuck sensor, every item of a run of
/// equal consecutive values at least d items long (so d ≤ 1 flags everything).
/// Nothing is written when the result is empty.
fn sdatctrl(a: &[Value], cx: &mut CallCx) -> Res {
    let why = "SDATCTRL: expects a number, an @output, a vector and a number";
    let check = whole(&a[0], why)?;
    let Value::Str(channel) = &a[1] else {
        return Err(wrong("SDATCTRL: b must be an @output channel"));
    };
    let v = nums(&a[2], why)?;
    let d = num(&a[3], why)?;
    let flags: Vec<bool> = match check {
        1 => v.iter().map(|x| *x > d).collect(),
        2 => v.iter().map(|x| *x < d).collect(),
        3 => (0..v.len())
            .map(|i| i > 0 && (v[i] - v[i - 1]).abs() > d)
            .collect(),
        4 => stuck(&v, d),
        _ => return Err(wrong("SDATCTRL: the check a must be 1, 2, 3 or 4")),
    };
    let count = flags.iter().filter(|f| **f).count();
    let flags: Vec<f64> = flags.into_iter().map(|f| f64::from(u8::from(f))).collect();
    cx.outputs
        .push((channel.clone(), Value::Nums(flags.into())));
    Ok(Value::Num(count as f64))
}

/// True for every item of a run of equal consecutive values at least `d` items long.
fn stuck(v: &[f64], d: f64) -> Vec<bool> {
    let mut flags = vec![false; v.len()];
    let mut start = 0;
    for i in 1..=v.len() {
        if i == v.len() || v[i] != v[start] {
            if (i - start) as f64 >= d {
                flags[start..i].fill(true);
            }
            start = i;
        }
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{assert_invalid, call_cx, e, list, n, ns, s};
    use crate::lang::function::CallCx;
    use crate::lang::value::{Reason, Value};

    fn check(kind: f64, data: Value, d: f64) -> (Value, Vec<(std::sync::Arc<str>, Value)>) {
        let mut cx = CallCx::new(1);
        let v = call_cx("SDATCTRL", &[n(kind), s("flags"), data, n(d)], &mut cx);
        (v, cx.outputs)
    }

    #[test]
    fn above_and_below() {
        let (v, out) = check(1.0, ns(&[1.0, 5.0, 9.0, 4.0]), 4.0);
        assert_eq!(v, n(2.0));
        assert_eq!(out, vec![("flags".into(), ns(&[0.0, 1.0, 1.0, 0.0]))]);
        let (v, out) = check(2.0, ns(&[1.0, 5.0, 9.0, 4.0]), 4.0);
        assert_eq!(v, n(1.0));
        assert_eq!(out[0].1, ns(&[1.0, 0.0, 0.0, 0.0]));
        let (v, out) = check(1.0, list(&[s("1"), s("7")]), 4.0);
        assert_eq!(v, n(1.0));
        assert_eq!(out[0].1, ns(&[0.0, 1.0]));
    }

    #[test]
    fn spikes_and_stuck() {
        let (v, out) = check(3.0, ns(&[1.0, 2.0, 10.0, 9.0, 1.0]), 5.0);
        assert_eq!(v, n(2.0));
        assert_eq!(out[0].1, ns(&[0.0, 0.0, 1.0, 0.0, 1.0]));
        let (v, out) = check(4.0, ns(&[1.0, 2.0, 2.0, 2.0, 3.0, 3.0]), 3.0);
        assert_eq!(v, n(3.0));
        assert_eq!(out[0].1, ns(&[0.0, 1.0, 1.0, 1.0, 0.0, 0.0]));
        let (v, out) = check(4.0, ns(&[7.0, 7.0]), 2.0);
        assert_eq!(v, n(2.0));
        assert_eq!(out[0].1, ns(&[1.0, 1.0]));
        let (v, _) = check(4.0, ns(&[1.0, 2.0]), 1.0);
        assert_eq!(v, n(2.0));
    }

    #[test]
    fn edges() {
        let (v, out) = check(1.0, ns(&[]), 4.0);
        assert_eq!(v, n(0.0));
        assert_eq!(out[0].1, ns(&[]));
        let (v, out) = check(5.0, ns(&[1.0]), 4.0);
        assert_invalid(v, "SDATCTRL");
        assert!(out.is_empty());
        let (v, out) = check(1.0, list(&[s("x")]), 4.0);
        assert_eq!(v, e(Reason::NotANumber));
        assert!(out.is_empty());
        let (v, _) = check(1.0, n(3.0), 4.0);
        assert_invalid(v, "SDATCTRL");
        let mut cx = CallCx::new(1);
        let v = call_cx("SDATCTRL", &[n(1.0), n(2.0), ns(&[1.0]), n(0.0)], &mut cx);
        assert_invalid(v, "SDATCTRL");
        let v = call_cx(
            "SDATCTRL",
            &[n(1.0), s("f"), ns(&[1.0]), e(Reason::NotANumber)],
            &mut cx,
        );
        assert_eq!(v, e(Reason::NotANumber));
        assert!(cx.outputs.is_empty());
    }
}
