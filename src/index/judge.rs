//! The three-way judgement of a bucket: for the windows (or run rows) a bucket opens,
//! is a match impossible, certain, or possible?
//!
//! A verdict must hold for the exact computation over the rows, whatever the rows are,
//! given only their features. So bounds come from `min`/`max` (exact), and from the
//! count where sums are involved, rounded outward. The bucket's own features bound the
//! rows that open windows; the `cover` (the bucket and the following buckets up to a
//! window past its end) bounds every row a window can hold. Covers may hold more rows
//! than the windows (a bucket cut by the range, a margin bucket): that only loosens the
//! bounds.

use super::condition::{Agg, Condition, Kind, Op};
use super::feature::Features;

/// What the features say about the windows a bucket opens (or its rows, for RUN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The bucket opens no window (no numeric row; for RUN, no row at all).
    Empty,
    /// No window opened in the bucket matches (for RUN: no row of it satisfies `op X`,
    /// so it breaks every run).
    NoMatch,
    /// Every window opened in the bucket matches (for RUN: every row satisfies `op X`).
    Certain,
    /// The rows must be read.
    Possible,
}

/// Whether some value in `[lo, hi]` satisfies `op x`, and whether every value does.
fn range_verdict(op: Op, x: f64, lo: f64, hi: f64) -> Verdict {
    let (some, all) = if op.is_upward() {
        (op.holds(hi, x), op.holds(lo, x))
    } else {
        (op.holds(lo, x), op.holds(hi, x))
    };
    if !some {
        Verdict::NoMatch
    } else if all {
        Verdict::Certain
    } else {
        Verdict::Possible
    }
}

/// `a · b` rounded down (`down`) or up, never past the exact product.
fn product_outward(count: u64, v: f64, down: bool) -> f64 {
    let p = count as f64 * v;
    let slack = p.abs() * f64::EPSILON + f64::MIN_POSITIVE;
    if down {
        p - slack
    } else {
        p + slack
    }
}

/// The bucket's sum widened by the worst rounding of `count - 1` additions in any
/// order: down (`down`) or up, never past the exact sum of its values.
fn sum_outward(f: &Features, down: bool) -> f64 {
    let n = f.count as f64;
    let slack = f.sum.abs() * 2.0 * n * f64::EPSILON + n * f64::MIN_POSITIVE;
    if down {
        f.sum - slack
    } else {
        f.sum + slack
    }
}

/// The verdict for the windows opened by the numeric rows of a bucket with features
/// `own`, when every row those windows can hold has features within `cover`; for RUN,
/// the verdict on the bucket's rows (`cover` unused).
pub fn judge(cond: &Condition, own: &Features, cover: &Features) -> Verdict {
    let (op, x) = (cond.op, cond.x);
    let agg = match cond.kind {
        Kind::Run { .. } => {
            if own.is_empty() {
                return Verdict::Empty;
            }
            let some_sat =
                own.count > 0 && op.holds(if op.is_upward() { own.max } else { own.min }, x);
            let all_sat = own.other == 0
                && own.count > 0
                && op.holds(if op.is_upward() { own.min } else { own.max }, x);
            return if !some_sat {
                Verdict::NoMatch
            } else if all_sat {
                Verdict::Certain
            } else {
                Verdict::Possible
            };
        }
        Kind::Window { agg, .. } => agg,
    };
    if own.count == 0 {
        return Verdict::Empty;
    }
    match agg {
        // A window's mean lies within the values it holds.
        Agg::Avg => range_verdict(op, x, cover.min, cover.max),
        // A window's sum over k (1..=count) values within [min, max].
        Agg::Sum => {
            // Of values all of one sign, a subset sums to no more (less) than the whole.
            let lo = if cover.min >= 0.0 {
                cover.min
            } else if cover.max <= 0.0 {
                product_outward(cover.count, cover.min, true).max(sum_outward(cover, true))
            } else {
                product_outward(cover.count, cover.min, true)
            };
            let hi = if cover.max <= 0.0 {
                cover.max
            } else if cover.min >= 0.0 {
                product_outward(cover.count, cover.max, false).min(sum_outward(cover, false))
            } else {
                product_outward(cover.count, cover.max, false)
            };
            range_verdict(op, x, lo, hi)
        }
        // A window's maximum is at least its opening row's value and at most the cover's
        // maximum; its minimum at most the opening row's value, at least the cover's.
        Agg::Max => range_verdict(op, x, own.min, cover.max),
        Agg::Min => range_verdict(op, x, cover.min, own.max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Point;

    fn features(values: &[f64]) -> Features {
        Features::of(values.iter().map(|&v| Point { t: 0, v: Some(v) }))
    }

    #[test]
    fn verdicts_follow_the_bounds() {
        let avg = Condition::parse("AVG(5m) > 1500").unwrap();
        // The seed's example: MAX 1700 / MIN 800 passes, MAX 600 fails.
        let f = features(&[800.0, 1700.0]);
        assert_eq!(judge(&avg, &f, &f), Verdict::Possible);
        let f = features(&[400.0, 600.0]);
        assert_eq!(judge(&avg, &f, &f), Verdict::NoMatch);
        let f = features(&[1600.0, 1700.0]);
        assert_eq!(judge(&avg, &f, &f), Verdict::Certain);
        // MAX(w) > 5: the opening row alone decides certainty; the cover, impossibility.
        let max = Condition::parse("MAX(5m) > 5").unwrap();
        assert_eq!(
            judge(&max, &features(&[6.0, 7.0]), &features(&[0.0, 7.0])),
            Verdict::Certain
        );
        assert_eq!(
            judge(&max, &features(&[1.0]), &features(&[1.0, 9.0])),
            Verdict::Possible
        );
        assert_eq!(
            judge(&max, &features(&[1.0]), &features(&[1.0, 5.0])),
            Verdict::NoMatch
        );
        // SUM with negative values: up to `count` values of the minimum.
        let sum = Condition::parse("SUM(5m) < -10").unwrap();
        let f = features(&[-3.0, 2.0, 2.0, 2.0]);
        assert_eq!(judge(&sum, &f, &f), Verdict::Possible);
        let f = features(&[-2.0, 2.0, 2.0, 2.0]);
        assert_eq!(judge(&sum, &f, &f), Verdict::NoMatch);
        let run = Condition::parse("RUN(>= 20, 5s)").unwrap();
        let mut f = features(&[20.0, 30.0]);
        assert_eq!(judge(&run, &f, &f), Verdict::Certain);
        f.other = 1;
        assert_eq!(judge(&run, &f, &f), Verdict::Possible);
        let f = features(&[1.0, 19.0]);
        assert_eq!(judge(&run, &f, &f), Verdict::NoMatch);
        assert_eq!(
            judge(&run, &Features::EMPTY, &Features::EMPTY),
            Verdict::Empty
        );
    }
}
