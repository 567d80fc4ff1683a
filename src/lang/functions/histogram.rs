//! Histograms: the axis functions `HILO`, `HIHO`, `HIIX`, the counting functions `HIST`,
//! `HIST2`, `HISTIF`, and `HISTS`, `HISTD` on their results.
//!
//! An axis is a string of edges `0,10,20,30` (bins `[0,10)`, `[10,20)`, `[20,30]`: each bin
//! holds its lower edge, the last one also its upper edge) or of explicit ranges
//! `0:10,10:25,25:40` (the same rule per range; ranges may leave gaps, and where they
//! overlap the first one wins). A numeric vector is also read as a list of edges.

use std::sync::Arc;

use crate::lang::function::{CallCx, Function};
use crate::lang::value::{parse_number, Reason, Value};

use super::operand::{empty, no_empty, nums, same_len, vector, whole, wrong, Res};

/// The histogram functions.
pub(super) static FUNCTIONS: &[Function] = &[
    entry!("HILO", [], [S, N], Propagate, hilo),
    entry!("HIHO", [], [S, N], Propagate, hiho),
    entry!("HIIX", [], [S, N], Propagate, hiix),
    entry!("HIST", [], [S, A, A], Accept, hist),
    entry!("HIST2", [], [S, S, A, A, A], Accept, hist2),
    entry!("HISTIF", [], [S, A, A, A], Accept, histif),
    entry!("HISTS", [], [A, N], Propagate, hists),
    entry!("HISTD", [], [A, A, N], Propagate, histd),
];

/// The bins of a histogram axis, in order.
#[derive(Debug)]
pub(crate) struct Axis {
    /// `[lo, hi)` per bin; the last bin also holds `hi`.
    bins: Vec<(f64, f64)>,
    /// Bins given as edges: contiguous and increasing, so a value's bin is found by
    /// binary search.
    edges: bool,
}

impl Axis {
    /// Reads an axis; `bad` is the function's message for a malformed one.
    fn parse(v: &Value, why: &'static str, bad: &'static str) -> Result<Axis, Value> {
        let edges: Vec<f64> = match v {
            Value::Str(s) if s.contains(':') => return Self::ranges(s, bad),
            Value::Str(s) => s
                .split(',')
                .map(parse_number)
                .collect::<Option<_>>()
                .ok_or(wrong(bad))?,
            Value::Num(_) => return Err(wrong(bad)),
            other => nums(other, why)?.into_owned(),
        };
        if edges.len() < 2 || edges.windows(2).any(|w| w[0] >= w[1]) {
            return Err(wrong(bad));
        }
        let bins = edges.windows(2).map(|w| (w[0], w[1])).collect();
        Ok(Axis { bins, edges: true })
    }

    /// `lo:hi,lo:hi,…` with lo < hi in every range.
    fn ranges(s: &str, bad: &'static str) -> Result<Axis, Value> {
        let bins = s
            .split(',')
            .map(|r| {
                let (lo, hi) = r.split_once(':')?;
                let (lo, hi) = (parse_number(lo)?, parse_number(hi)?);
                (lo < hi).then_some((lo, hi))
            })
            .collect::<Option<Vec<_>>>()
            .ok_or(wrong(bad))?;
        Ok(Axis { bins, edges: false })
    }

    /// The bin that holds `x`, if any.
    fn index(&self, x: f64) -> Option<usize> {
        let last = self.bins.len() - 1;
        let holds = |i: usize| {
            let (lo, hi) = self.bins[i];
            lo <= x && (x < hi || (i == last && x <= hi))
        };
        if self.edges {
            let i = self.bins.partition_point(|b| b.0 <= x).checked_sub(1)?;
            holds(i).then_some(i)
        } else {
            (0..self.bins.len()).find(|&i| holds(i))
        }
    }

    /// The bin at the 0-based index `b`.
    fn bin(&self, b: &Value, why: &'static str) -> Result<(f64, f64), Value> {
        let i = usize::try_from(whole(b, why)?).map_err(|_| empty(Reason::OutOfRange))?;
        self.bins.get(i).copied().ok_or(empty(Reason::OutOfRange))
    }
}

/// Axes read from strings, kept while a [`crate::lang::Machine`] runs (it hands them to
/// each evaluation's [`CallCx`]): an axis is nearly always a device constant such as
/// `#TAXIS`, the same string for every row, and reading it again for each row cost more
/// than the rest of `HIIX`.
///
/// An axis is known by its string's allocation (`Arc::ptr_eq`), not its text: comparing
/// is free, and the entry keeps the string alive, so the allocation cannot be reused for
/// another text. Only strings that read as an axis are kept, the last [`AxisMemo::SIZE`].
#[derive(Debug, Default)]
pub(crate) struct AxisMemo {
    entries: Vec<(Arc<str>, Arc<Axis>)>,
}

impl AxisMemo {
    /// How many axes are kept.
    const SIZE: usize = 8;

    /// [`Axis::parse`], answered from the memo for a string read before.
    fn parse(
        &mut self,
        v: &Value,
        why: &'static str,
        bad: &'static str,
    ) -> Result<Arc<Axis>, Value> {
        let Value::Str(text) = v else {
            return Axis::parse(v, why, bad).map(Arc::new);
        };
        if let Some((_, axis)) = self.entries.iter().find(|(t, _)| Arc::ptr_eq(t, text)) {
            return Ok(axis.clone());
        }
        let axis = Arc::new(Axis::parse(v, why, bad)?);
        if self.entries.len() >= Self::SIZE {
            self.entries.remove(0);
        }
        self.entries.push((text.clone(), axis.clone()));
        Ok(axis)
    }
}

fn hilo(a: &[Value], cx: &mut CallCx) -> Res {
    let why = "HILO: expects an axis and a number";
    let axis = cx.memo.axes.parse(
        &a[0],
        why,
        "HILO: the axis is not a list of edges or ranges",
    )?;
    Ok(Value::Num(axis.bin(&a[1], why)?.0))
}

fn hiho(a: &[Value], cx: &mut CallCx) -> Res {
    let why = "HIHO: expects an axis and a number";
    let axis = cx.memo.axes.parse(
        &a[0],
        why,
        "HIHO: the axis is not a list of edges or ranges",
    )?;
    Ok(Value::Num(axis.bin(&a[1], why)?.1))
}

fn hiix(a: &[Value], cx: &mut CallCx) -> Res {
    let why = "HIIX: expects an axis and a number";
    let axis = cx.memo.axes.parse(
        &a[0],
        why,
        "HIIX: the axis is not a list of edges or ranges",
    )?;
    let x = super::operand::num(&a[1], why)?;
    let i = axis.index(x).ok_or(empty(Reason::OutOfRange))?;
    Ok(Value::Num(i as f64))
}

/// Optional weights: `#NULL` means none; any other empty operand stays empty, so a
/// weight channel that is not available yet is retried instead of silently ignored.
fn weights(v: &Value, len: usize, why: &'static str) -> Result<Option<Vec<f64>>, Value> {
    match v {
        Value::Empty(Reason::Missing(name)) if name.eq_ignore_ascii_case("#NULL") => Ok(None),
        other => {
            let w = nums(other, why)?.into_owned();
            same_len(w.len(), len)?;
            Ok(Some(w))
        }
    }
}

/// Adds the weight (or 1) of every item of `values` whose condition holds into the bin
/// of its value; values outside the axis are not counted.
fn count(axis: &Axis, values: &[f64], weights: Option<&[f64]>, when: Option<&[f64]>) -> Res {
    let mut counts = vec![0.0; axis.bins.len()];
    for (i, x) in values.iter().enumerate() {
        if when.is_some_and(|c| c[i] == 0.0) {
            continue;
        }
        if let Some(bin) = axis.index(*x) {
            counts[bin] += weights.map_or(1.0, |w| w[i]);
        }
    }
    vector(counts)
}

fn hist(a: &[Value], cx: &mut CallCx) -> Res {
    let why = "HIST: expects an axis, a vector and a vector or #NULL";
    no_empty(&a[..2])?;
    let axis = cx.memo.axes.parse(
        &a[0],
        why,
        "HIST: the axis is not a list of edges or ranges",
    )?;
    let values = nums(&a[1], why)?;
    let w = weights(&a[2], values.len(), why)?;
    count(&axis, &values, w.as_deref(), None)
}

/// Flattened x-major: the count of x bin i and y bin j is item i · (number of y bins) + j.
fn hist2(a: &[Value], cx: &mut CallCx) -> Res {
    let why = "HIST2: expects two axes, three vectors (or #NULL weights)";
    no_empty(&a[..4])?;
    let bad = "HIST2: an axis is not a list of edges or ranges";
    let (xa, ya) = (
        cx.memo.axes.parse(&a[0], why, bad)?,
        cx.memo.axes.parse(&a[1], why, bad)?,
    );
    let (xs, ys) = (nums(&a[2], why)?, nums(&a[3], why)?);
    same_len(xs.len(), ys.len())?;
    let w = weights(&a[4], xs.len(), why)?;
    let ny = ya.bins.len();
    let mut counts = vec![0.0; xa.bins.len() * ny];
    for (i, (x, y)) in xs.iter().zip(ys.iter()).enumerate() {
        if let (Some(bx), Some(by)) = (xa.index(*x), ya.index(*y)) {
            counts[bx * ny + by] += w.as_ref().map_or(1.0, |w| w[i]);
        }
    }
    vector(counts)
}

fn histif(a: &[Value], cx: &mut CallCx) -> Res {
    let why = "HISTIF: expects an axis, a vector, a vector or #NULL, and a vector";
    no_empty(&a[..2])?;
    no_empty(&a[3..])?;
    let axis = cx.memo.axes.parse(
        &a[0],
        why,
        "HISTIF: the axis is not a list of edges or ranges",
    )?;
    let values = nums(&a[1], why)?;
    let when = nums(&a[3], why)?;
    same_len(values.len(), when.len())?;
    let w = weights(&a[2], values.len(), why)?;
    count(&axis, &values, w.as_deref(), Some(&when))
}

fn hists(a: &[Value], _: &mut CallCx) -> Res {
    let why = "HISTS: expects a vector and a number";
    let h = nums(&a[0], why)?;
    let b = super::operand::num(&a[1], why)?;
    if b == 0.0 {
        return Err(empty(Reason::DivisionByZero));
    }
    Ok(Value::num(h.iter().sum::<f64>() / b))
}

/// `a[i] / b[i] / c`; a bin where b is 0 gives 0 (an empty bin), c = 0 gives empty.
fn histd(a: &[Value], _: &mut CallCx) -> Res {
    let why = "HISTD: expects two vectors and a number";
    let (p, q) = (nums(&a[0], why)?, nums(&a[1], why)?);
    let c = super::operand::num(&a[2], why)?;
    same_len(p.len(), q.len())?;
    if c == 0.0 {
        return Err(empty(Reason::DivisionByZero));
    }
    let ratio = |(x, y): (&f64, &f64)| if *y == 0.0 { 0.0 } else { x / y / c };
    vector(p.iter().zip(q.iter()).map(ratio).collect())
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{assert_invalid, call, e, list, n, ns, null, s};
    use crate::lang::value::Reason;

    #[test]
    fn the_memo_knows_an_axis_by_its_string() {
        use super::{AxisMemo, Value};
        use std::sync::Arc;
        let mut memo = AxisMemo::default();
        let (why, bad) = ("why", "bad");
        let taxis = s("0,40,60");
        let first = memo.parse(&taxis, why, bad).unwrap();
        assert!(Arc::ptr_eq(
            &first,
            &memo.parse(&taxis.clone(), why, bad).unwrap()
        ));
        let same_text = s("0,40,60");
        let other = memo.parse(&same_text, why, bad).unwrap();
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(other.bins, first.bins);
        assert!(memo.parse(&s("1,0"), why, bad).is_err());
        assert_eq!(
            memo.entries.len(),
            2,
            "a string that is no axis is not kept"
        );
        for i in 0..20 {
            let axis = Value::str(format!("0,{}", i + 1));
            assert_eq!(
                memo.parse(&axis, why, bad).unwrap().bins,
                vec![(0.0, f64::from(i + 1))]
            );
        }
        assert_eq!(memo.entries.len(), AxisMemo::SIZE);
    }

    #[test]
    fn axis_edges() {
        let ax = s("0,10,20,30");
        assert_eq!(call("HILO", &[ax.clone(), n(1.0)]), n(10.0));
        assert_eq!(call("HIHO", &[ax.clone(), n(2.0)]), n(30.0));
        assert_eq!(call("HILO", &[ax.clone(), n(3.0)]), e(Reason::OutOfRange));
        assert_eq!(call("HIHO", &[ax.clone(), n(-1.0)]), e(Reason::OutOfRange));
        let ix = |x: f64| call("HIIX", &[ax.clone(), n(x)]);
        assert_eq!(ix(0.0), n(0.0));
        assert_eq!(ix(9.99), n(0.0));
        assert_eq!(ix(10.0), n(1.0));
        assert_eq!(ix(30.0), n(2.0));
        assert_eq!(ix(-0.1), e(Reason::OutOfRange));
        assert_eq!(ix(30.1), e(Reason::OutOfRange));
        let v = ns(&[0.0, 5.0]);
        assert_eq!(call("HIIX", &[v.clone(), n(5.0)]), n(0.0));
        assert_eq!(call("HIHO", &[v, n(0.0)]), n(5.0));
    }

    #[test]
    fn axis_ranges_and_bad_axes() {
        let ax = s("0:10, 10:25, 30:40");
        assert_eq!(call("HILO", &[ax.clone(), n(2.0)]), n(30.0));
        assert_eq!(call("HIHO", &[ax.clone(), n(1.0)]), n(25.0));
        assert_eq!(call("HIIX", &[ax.clone(), n(10.0)]), n(1.0));
        assert_eq!(call("HIIX", &[ax.clone(), n(27.0)]), e(Reason::OutOfRange));
        assert_eq!(call("HIIX", &[ax.clone(), n(40.0)]), n(2.0));
        assert_eq!(call("HIIX", &[ax.clone(), n(25.0)]), e(Reason::OutOfRange));
        assert_eq!(call("HIIX", &[s("0:10,5:20"), n(7.0)]), n(0.0));
        for bad in ["", "5", "0,0,1", "3,2", "0,x", "0:10,20", "5:1", "0:1:2"] {
            assert_invalid(call("HIIX", &[s(bad), n(1.0)]), "HIIX");
        }
        assert_invalid(call("HILO", &[n(5.0), n(0.0)]), "HILO");
        assert_eq!(
            call("HIIX", &[list(&[s("a")]), n(0.0)]),
            e(Reason::NotANumber)
        );
        assert_eq!(call("HIIX", &[ax.clone(), s("q")]), e(Reason::NotANumber));
        assert_eq!(call("HILO", &[ax, n(0.5)]), e(Reason::OutOfRange));
    }

    #[test]
    fn hist_counts_and_weights() {
        let ax = s("0,10,20");
        let v = ns(&[1.0, 5.0, 15.0, 20.0, 25.0, -1.0]);
        assert_eq!(
            call("HIST", &[ax.clone(), v.clone(), null()]),
            ns(&[2.0, 2.0])
        );
        let w = ns(&[1.0, 1.0, 2.0, 0.5, 9.0, 9.0]);
        assert_eq!(call("HIST", &[ax.clone(), v.clone(), w]), ns(&[2.0, 2.5]));
        assert_eq!(
            call("HIST", &[ax.clone(), ns(&[]), null()]),
            ns(&[0.0, 0.0])
        );
        let r = call("HIST", &[ax.clone(), v.clone(), ns(&[1.0])]);
        assert_eq!(r, e(Reason::UnequalLengths));
        let missing = e(Reason::Missing("w".into()));
        let r = call("HIST", &[ax.clone(), v.clone(), missing.clone()]);
        assert_eq!(r, missing, "only #NULL means no weights");
        assert_eq!(call("HIST", &[missing.clone(), v.clone(), null()]), missing);
        assert_eq!(
            call("HIST", &[ax.clone(), missing.clone(), null()]),
            missing
        );
        let r = call("HIST", &[ax.clone(), list(&[s("x")]), null()]);
        assert_eq!(r, e(Reason::NotANumber));
        assert_invalid(call("HIST", &[ax.clone(), n(1.0), null()]), "HIST");
        assert_invalid(call("HIST", &[s("1"), v, null()]), "HIST");
    }

    #[test]
    fn hist2_is_x_major() {
        let (xa, ya) = (s("0,10,20"), s("0:1,1:2,2:3"));
        let xs = ns(&[5.0, 5.0, 15.0, 15.0, 99.0]);
        let ys = ns(&[0.5, 2.5, 1.0, 1.5, 0.0]);
        let r = call(
            "HIST2",
            &[xa.clone(), ya.clone(), xs.clone(), ys.clone(), null()],
        );
        assert_eq!(r, ns(&[1.0, 0.0, 1.0, 0.0, 2.0, 0.0]));
        let w = ns(&[2.0, 3.0, 4.0, 5.0, 6.0]);
        let r = call(
            "HIST2",
            &[xa.clone(), ya.clone(), xs.clone(), ys.clone(), w],
        );
        assert_eq!(r, ns(&[2.0, 0.0, 3.0, 0.0, 9.0, 0.0]));
        let r = call(
            "HIST2",
            &[xa.clone(), ya.clone(), xs.clone(), ns(&[1.0]), null()],
        );
        assert_eq!(r, e(Reason::UnequalLengths));
        let r = call(
            "HIST2",
            &[xa.clone(), ya.clone(), xs.clone(), ys.clone(), ns(&[1.0])],
        );
        assert_eq!(r, e(Reason::UnequalLengths));
        let missing = e(Reason::Missing("y".into()));
        let r = call(
            "HIST2",
            &[xa.clone(), ya.clone(), xs, missing.clone(), null()],
        );
        assert_eq!(r, missing);
        assert_invalid(
            call("HIST2", &[xa, s("x"), ns(&[]), ns(&[]), null()]),
            "HIST2",
        );
    }

    #[test]
    fn histif_counts_where_true() {
        let ax = s("0,10,20");
        let v = ns(&[1.0, 5.0, 15.0]);
        let when = ns(&[1.0, 0.0, 2.0]);
        let r = call("HISTIF", &[ax.clone(), v.clone(), null(), when.clone()]);
        assert_eq!(r, ns(&[1.0, 1.0]));
        let r = call(
            "HISTIF",
            &[ax.clone(), v.clone(), ns(&[3.0, 4.0, 5.0]), when],
        );
        assert_eq!(r, ns(&[3.0, 5.0]));
        let r = call("HISTIF", &[ax.clone(), v.clone(), null(), ns(&[1.0])]);
        assert_eq!(r, e(Reason::UnequalLengths));
        let missing = e(Reason::Missing("c".into()));
        let r = call("HISTIF", &[ax.clone(), v.clone(), null(), missing.clone()]);
        assert_eq!(r, missing);
        assert_invalid(call("HISTIF", &[ax, v, null(), n(1.0)]), "HISTIF");
    }

    #[test]
    fn hists_and_histd() {
        assert_eq!(call("HISTS", &[ns(&[2.0, 3.0, 5.0]), n(4.0)]), n(2.5));
        assert_eq!(call("HISTS", &[ns(&[]), n(4.0)]), n(0.0));
        assert_eq!(
            call("HISTS", &[ns(&[1.0]), n(0.0)]),
            e(Reason::DivisionByZero)
        );
        assert_eq!(call("HISTS", &[ns(&[1.0]), s("x")]), e(Reason::NotANumber));
        assert_invalid(call("HISTS", &[n(1.0), n(1.0)]), "HISTS");
        let (p, q) = (ns(&[6.0, 3.0, 0.0]), ns(&[3.0, 0.0, 0.0]));
        assert_eq!(
            call("HISTD", &[p.clone(), q.clone(), n(2.0)]),
            ns(&[1.0, 0.0, 0.0])
        );
        let r = call("HISTD", &[p.clone(), q.clone(), n(0.0)]);
        assert_eq!(r, e(Reason::DivisionByZero));
        let r = call("HISTD", &[p.clone(), ns(&[1.0]), n(1.0)]);
        assert_eq!(r, e(Reason::UnequalLengths));
        assert_invalid(call("HISTD", &[p, n(1.0), n(1.0)]), "HISTD");
    }
}
