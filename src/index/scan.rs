//! The exact evaluation of a condition over raw rows, and its oracle.
//!
//! Both take the points of ONE device in time order (repeated timestamps allowed),
//! already cut to the searched range, and return the matches in time order.
//!
//! Semantics (the search's definition):
//! - `AGG(w) op X`: only numeric values count (a missing value, a string or NaN is not
//!   a number). Each numeric row at time `t` opens the window of the numeric rows with
//!   `t <= time < t + w`, however few; the window matches when its aggregate satisfies
//!   the condition. Sums and means are compared exactly (as real numbers).
//! - `RUN(op X, d)`: a maximal run of consecutive rows (every row of the channel; one
//!   that is not a number breaks a run) all satisfying `op X`, whose span (last − first
//!   row time) is at least `d`; with a maximum gap, a gap longer than it breaks runs.
//! - The answer is the union of the matching spans (first to last row time, inclusive),
//!   merged where spans overlap or share an instant.
//!
//! [`brute_force`] is the oracle: written the most obvious way, O(n²). [`evaluate`] is
//! the O(n) sliding evaluator the search engines use; the tests hold it to the oracle.

use std::collections::VecDeque;

use super::condition::{Agg, Condition, Kind, Op};
use super::exact::ExactSum;
use super::{Micros, Point};

/// One match: the closed span from its first to its last row time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Match {
    /// The first row's time.
    pub from: Micros,
    /// The last row's time (inclusive).
    pub to: Micros,
}

/// Sorts `spans` and merges those that overlap or touch at an instant.
pub fn merge(mut spans: Vec<Match>) -> Vec<Match> {
    spans.sort_unstable();
    let mut out: Vec<Match> = Vec::with_capacity(spans.len());
    for m in spans {
        match out.last_mut() {
            Some(last) if m.from <= last.to => last.to = last.to.max(m.to),
            _ => out.push(m),
        }
    }
    out
}

/// Whether an aggregate's exact value satisfies the condition.
fn window_holds(agg: Agg, op: Op, x: f64, values: &[f64]) -> bool {
    match agg {
        Agg::Min => values
            .iter()
            .copied()
            .reduce(f64::min)
            .is_some_and(|m| op.holds(m, x)),
        Agg::Max => values
            .iter()
            .copied()
            .reduce(f64::max)
            .is_some_and(|m| op.holds(m, x)),
        Agg::Sum | Agg::Avg => {
            let mut sum = ExactSum::new();
            for v in values {
                sum.add(*v);
            }
            let count = if agg == Agg::Avg {
                values.len() as u64
            } else {
                1
            };
            sum.cmp_scaled(x, count)
                .is_some_and(|o| op.holds_ordering(o))
        }
    }
}

/// The oracle: every window and every run computed from scratch.
pub fn brute_force(cond: &Condition, points: &[Point]) -> Vec<Match> {
    let mut spans = Vec::new();
    match cond.kind {
        Kind::Window { agg, window } => {
            let numeric: Vec<(Micros, f64)> = points
                .iter()
                .filter_map(|p| p.value().map(|v| (p.t, v)))
                .collect();
            for &(t, _) in &numeric {
                let inside: Vec<(Micros, f64)> = numeric
                    .iter()
                    .copied()
                    .filter(|&(u, _)| u >= t && u - t < window)
                    .collect();
                let values: Vec<f64> = inside.iter().map(|&(_, v)| v).collect();
                if window_holds(agg, cond.op, cond.x, &values) {
                    let last = inside.iter().map(|&(u, _)| u).max().unwrap_or(t);
                    spans.push(Match { from: t, to: last });
                }
            }
        }
        Kind::Run { min_span, max_gap } => {
            let sat = |p: &Point| p.value().is_some_and(|v| cond.op.holds(v, cond.x));
            for i in 0..points.len() {
                let starts = sat(&points[i])
                    && (i == 0
                        || !sat(&points[i - 1])
                        || max_gap.is_some_and(|g| points[i].t - points[i - 1].t > g));
                if !starts {
                    continue;
                }
                let mut j = i;
                while j + 1 < points.len()
                    && sat(&points[j + 1])
                    && max_gap.is_none_or(|g| points[j + 1].t - points[j].t <= g)
                {
                    j += 1;
                }
                if points[j].t - points[i].t >= min_span {
                    spans.push(Match {
                        from: points[i].t,
                        to: points[j].t,
                    });
                }
            }
        }
    }
    merge(spans)
}

/// The exact answer over `points`, in O(n).
pub fn evaluate(cond: &Condition, points: &[Point]) -> Vec<Match> {
    match cond.kind {
        Kind::Window { agg, window } => {
            merge(windows_opened(cond, agg, window, points, Micros::MAX))
        }
        Kind::Run { min_span, max_gap } => merge(runs(
            points
                .iter()
                .map(|p| (p.t, p.value().is_some_and(|v| cond.op.holds(v, cond.x)))),
            min_span,
            max_gap,
        )),
    }
}

/// The spans of the matching windows opened by numeric rows before `open_until`, the
/// windows holding every numeric row of `points` (which must hold every row of the
/// channel from the first opener to the last window's end).
pub(crate) fn windows_opened(
    cond: &Condition,
    agg: Agg,
    window: Micros,
    points: &[Point],
    open_until: Micros,
) -> Vec<Match> {
    let numeric: Vec<(Micros, f64)> = points
        .iter()
        .filter_map(|p| p.value().map(|v| (p.t, v)))
        .collect();
    let mut out = Vec::new();
    // The window is numeric[lo..hi]; `extreme` holds the indices of a monotonic queue
    // (for MIN increasing values, for MAX decreasing).
    let (mut lo, mut hi) = (0, 0);
    let mut sum = ExactSum::new();
    let mut extreme: VecDeque<usize> = VecDeque::new();
    let keeps = |older: f64, newer: f64| match agg {
        Agg::Min => older < newer,
        _ => older > newer,
    };
    while lo < numeric.len() {
        let t = numeric[lo].0;
        if t >= open_until {
            break;
        }
        let end = t.saturating_add(window);
        while hi < numeric.len() && numeric[hi].0 < end {
            let v = numeric[hi].1;
            match agg {
                Agg::Min | Agg::Max => {
                    while extreme.back().is_some_and(|&b| !keeps(numeric[b].1, v)) {
                        extreme.pop_back();
                    }
                    extreme.push_back(hi);
                }
                Agg::Sum | Agg::Avg => sum.add(v),
            }
            hi += 1;
        }
        let holds = match agg {
            Agg::Min | Agg::Max => extreme
                .front()
                .is_some_and(|&i| cond.op.holds(numeric[i].1, cond.x)),
            Agg::Sum => sum
                .cmp_scaled(cond.x, 1)
                .is_some_and(|o| cond.op.holds_ordering(o)),
            Agg::Avg => sum
                .cmp_scaled(cond.x, (hi - lo) as u64)
                .is_some_and(|o| cond.op.holds_ordering(o)),
        };
        if holds {
            out.push(Match {
                from: t,
                to: numeric[hi - 1].0,
            });
        }
        // The next opener is the next distinct time (tied rows open the same window).
        while lo < numeric.len() && numeric[lo].0 == t {
            match agg {
                Agg::Min | Agg::Max => {
                    if extreme.front() == Some(&lo) {
                        extreme.pop_front();
                    }
                }
                Agg::Sum | Agg::Avg => sum.sub(numeric[lo].1),
            }
            lo += 1;
        }
    }
    out
}

/// The spans of the maximal runs of satisfied rows at least `min_span` long, over rows
/// given as `(time, satisfied)` in time order; a gap over `max_gap` breaks a run.
pub(crate) fn runs(
    rows: impl IntoIterator<Item = (Micros, bool)>,
    min_span: Micros,
    max_gap: Option<Micros>,
) -> Vec<Match> {
    let mut out = Vec::new();
    let mut run: Option<(Micros, Micros)> = None;
    let mut close = |run: &mut Option<(Micros, Micros)>| {
        if let Some((first, last)) = run.take() {
            if last - first >= min_span {
                out.push(Match {
                    from: first,
                    to: last,
                });
            }
        }
    };
    for (t, sat) in rows {
        if let Some((_, last)) = run {
            if !sat || max_gap.is_some_and(|g| t - last > g) {
                close(&mut run);
            }
        }
        if sat {
            run = Some(run.map_or((t, t), |(first, _)| (first, t)));
        }
    }
    close(&mut run);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::SECOND;
    use proptest::prelude::*;

    fn pts(rows: &[(i64, Option<f64>)]) -> Vec<Point> {
        rows.iter()
            .map(|&(t, v)| Point { t: t * SECOND, v })
            .collect()
    }

    fn m(from: i64, to: i64) -> Match {
        Match {
            from: from * SECOND,
            to: to * SECOND,
        }
    }

    #[test]
    fn windows_follow_the_definition() {
        let p = pts(&[
            (0, Some(1.0)),
            (1, Some(5.0)),
            (2, None),
            (3, Some(1.0)),
            (10, Some(9.0)),
            (10, Some(0.0)),
        ]);
        let c = Condition::parse("MAX(2s) > 4").unwrap();
        // windows: 0 → {0,1}, 1 → {1} (2 is not a number, 3 is outside), 3, 10 → {10,10}.
        assert_eq!(brute_force(&c, &p), vec![m(0, 1), m(10, 10)]);
        assert_eq!(evaluate(&c, &p), brute_force(&c, &p));
        let c = Condition::parse("AVG(2s) >= 3").unwrap();
        assert_eq!(brute_force(&c, &p), vec![m(0, 1), m(10, 10)]);
        let c = Condition::parse("AVG(2s) >= 4.5").unwrap();
        // {0,1} averages 3, {1} is 5, {3} is 1, {10,10} is 4.5.
        assert_eq!(brute_force(&c, &p), vec![m(1, 1), m(10, 10)]);
        assert_eq!(evaluate(&c, &p), brute_force(&c, &p));
    }

    #[test]
    fn touching_spans_merge() {
        let p = pts(&[
            (0, Some(5.0)),
            (2, Some(5.0)),
            (4, Some(0.0)),
            (9, Some(5.0)),
        ]);
        let c = Condition::parse("MAX(3s) > 4").unwrap();
        // 0 → [0,2], 2 → [2,4] share row 2; 4 → {4} fails; 9 → [9,9].
        assert_eq!(brute_force(&c, &p), vec![m(0, 4), m(9, 9)]);
        assert_eq!(evaluate(&c, &p), brute_force(&c, &p));
    }

    #[test]
    fn runs_break_at_strings_and_gaps() {
        let p = pts(&[
            (0, Some(5.0)),
            (1, Some(6.0)),
            (2, Some(7.0)),
            (3, None),
            (4, Some(8.0)),
            (5, Some(8.0)),
            (20, Some(8.0)),
            (21, Some(8.0)),
        ]);
        let c = Condition::parse("RUN(>= 5, 2s)").unwrap();
        assert_eq!(brute_force(&c, &p), vec![m(0, 2), m(4, 21)]);
        let gap = c.with_max_gap(Some(5 * SECOND)).unwrap();
        assert_eq!(brute_force(&gap, &p), vec![m(0, 2)]);
        assert_eq!(evaluate(&gap, &p), brute_force(&gap, &p));
        assert_eq!(evaluate(&c, &p), brute_force(&c, &p));
    }

    #[test]
    fn sums_compare_exactly() {
        let p = pts(&[(0, Some(0.1)), (1, Some(0.2))]);
        let c = Condition::parse("SUM(5s) > 0.3").unwrap();
        assert_eq!(brute_force(&c, &p), vec![m(0, 1)]);
        assert_eq!(evaluate(&c, &p), brute_force(&c, &p));
    }

    /// Random series: small integer times (repeats and gaps), some missing values.
    pub(crate) fn series() -> impl Strategy<Value = Vec<Point>> {
        prop::collection::vec(
            (
                0i64..4,
                prop_oneof![
                    8 => (-50i32..50).prop_map(|v| Some(f64::from(v) / 4.0)),
                    1 => Just(None),
                    1 => Just(Some(f64::NAN)),
                ],
            ),
            0..120,
        )
        .prop_map(|steps| {
            let mut t = 0;
            steps
                .into_iter()
                .map(|(dt, v)| {
                    t += if dt == 3 { 17 } else { dt };
                    Point { t: t * SECOND, v }
                })
                .collect()
        })
    }

    pub(crate) fn condition() -> impl Strategy<Value = Condition> {
        (
            0usize..5,
            0usize..4,
            -40i32..40,
            1i64..30,
            prop::option::of(1i64..10),
        )
            .prop_map(|(kind, op, x, len, gap)| {
                let op = [">", ">=", "<", "<="][op];
                let x = f64::from(x) / 4.0;
                let text = match kind {
                    0 => format!("AVG({len}s) {op} {x}"),
                    1 => format!("MIN({len}s) {op} {x}"),
                    2 => format!("MAX({len}s) {op} {x}"),
                    3 => format!("SUM({len}s) {op} {x}"),
                    _ => format!("RUN({op} {x}, {}s)", len - 1),
                };
                let c = Condition::parse(&text).expect("a generated condition");
                match c.kind {
                    Kind::Run { .. } => c.with_max_gap(gap.map(|g| g * SECOND)).expect("a run"),
                    _ => c,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn evaluate_agrees_with_brute_force(points in series(), cond in condition()) {
            prop_assert_eq!(evaluate(&cond, &points), brute_force(&cond, &points));
        }
    }
}
