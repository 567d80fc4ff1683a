//! The conditions the benchmark searches for and an independent brute-force answer
//! computed in Rust over the generated values (exact integer arithmetic on tenths),
//! against which the SQL baseline and recalcd's answers are checked.
//!
//! Semantics (issue 13): per device, the rows with a numeric value in time order; for
//! `AGG(w)` each row at time t opens the window of the rows with t ≤ time < t + w
//! (however few it holds at the range's end); a window matches when its aggregate
//! satisfies the condition; the answer is the union of the matching windows' spans
//! (first to last row), merged where spans overlap or share a row. `RUN(op X, d)`: a
//! maximal run of consecutive rows all satisfying `op X` whose span (last − first row
//! time) is at least d.

use std::fmt;

/// An aggregate over a window, or a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `AVG(w)`.
    Avg,
    /// `MIN(w)`.
    Min,
    /// `MAX(w)`.
    Max,
    /// `SUM(w)`.
    Sum,
    /// `RUN(op X, d)`.
    Run,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
}

impl Op {
    fn text(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }

    fn holds(self, a: f64, x: f64) -> bool {
        match self {
            Op::Gt => a > x,
            Op::Ge => a >= x,
            Op::Lt => a < x,
            Op::Le => a <= x,
        }
    }
}

/// One condition of the benchmark.
#[derive(Debug, Clone, Copy)]
pub struct Cond {
    /// What it aggregates.
    pub kind: Kind,
    /// The comparison.
    pub op: Op,
    /// The threshold, as written on the command line.
    pub x: &'static str,
    /// The window (`AGG`) or the least run span (`RUN`), in seconds.
    pub secs: u32,
    /// Whether it is meant to be selective (under 1 % of the time matches).
    pub selective: bool,
}

/// `300` as `5m`, `3600` as `1h`, `45` as `45s`.
pub fn duration_text(secs: u32) -> String {
    if secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

impl fmt::Display for Cond {
    /// The `--where` text: `AVG(5m) > 100.0314`, `RUN(> 100.05, 5m)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = duration_text(self.secs);
        match self.kind {
            Kind::Run => write!(f, "RUN({} {}, {w})", self.op.text(), self.x),
            k => write!(
                f,
                "{}({w}) {} {}",
                format!("{k:?}").to_uppercase(),
                self.op.text(),
                self.x
            ),
        }
    }
}

impl Cond {
    /// The threshold.
    pub fn threshold(&self) -> f64 {
        self.x.parse().expect("a numeric threshold")
    }

    /// The comparison's SQL operator.
    pub fn op_sql(&self) -> &'static str {
        self.op.text()
    }
}

/// The benchmark's conditions on `tmp`. Thresholds are chosen so that no aggregate of
/// values in tenths can equal them: MIN/MAX/RUN at half-tenths, SUM at a half-tenth,
/// AVG at 100.0314 (an average of n tenths is k / (10 n), and 1000.314 · n is never an
/// integer for n < 500, nor within 10⁻⁴ of one below 10,000).
pub fn conditions() -> Vec<Cond> {
    let c = |kind, op, x, secs, selective| Cond {
        kind,
        op,
        x,
        secs,
        selective,
    };
    vec![
        // Selective: only the planted overheats (above 100 °C) and dropouts (−40 °C).
        c(Kind::Avg, Op::Gt, "100.0314", 300, true),
        c(Kind::Max, Op::Gt, "105.05", 60, true),
        c(Kind::Min, Op::Gt, "100.05", 300, true),
        c(Kind::Min, Op::Lt, "-20.05", 10, true),
        c(Kind::Sum, Op::Gt, "60300.05", 600, true),
        c(Kind::Run, Op::Gt, "100.05", 300, true),
        // Unselective: most of the time matches.
        c(Kind::Avg, Op::Ge, "20.0314", 60, false),
        c(Kind::Max, Op::Gt, "0.05", 600, false),
        c(Kind::Run, Op::Le, "89.95", 600, false),
    ]
}

/// A match: device, first and last row time (µs since 1970).
pub type Match = (i32, i64, i64);

/// The brute-force answer over one device's rows at 1 Hz: `tenths[i]` is the value of
/// the row at `t0 + i` seconds (µs `t0`), every row numeric.
pub fn answer(cond: &Cond, id: i32, t0: i64, tenths: &[i32]) -> Vec<Match> {
    let at = |i: usize| t0 + i as i64 * 1_000_000;
    let x = cond.threshold();
    let w = cond.secs as usize;
    let n = tenths.len();
    let mut out: Vec<Match> = Vec::new();
    if cond.kind == Kind::Run {
        let mut run: Option<usize> = None;
        for i in 0..=n {
            let ok = tenths
                .get(i)
                .is_some_and(|&v| cond.op.holds(f64::from(v) / 10.0, x));
            match (ok, run) {
                (true, None) => run = Some(i),
                (false, Some(first)) => {
                    if i - 1 - first >= w {
                        out.push((id, at(first), at(i - 1)));
                    }
                    run = None;
                }
                _ => {}
            }
        }
        return out;
    }
    // Sliding window [i, j): sum by running total, min and max by monotonic deques.
    let mut sum: i64 = 0;
    let mut j = 0;
    let mut mins: std::collections::VecDeque<usize> = Default::default();
    let mut maxs: std::collections::VecDeque<usize> = Default::default();
    for i in 0..n {
        while j < n && j < i + w {
            sum += i64::from(tenths[j]);
            while mins.back().is_some_and(|&k| tenths[k] >= tenths[j]) {
                mins.pop_back();
            }
            mins.push_back(j);
            while maxs.back().is_some_and(|&k| tenths[k] <= tenths[j]) {
                maxs.pop_back();
            }
            maxs.push_back(j);
            j += 1;
        }
        while mins.front().is_some_and(|&k| k < i) {
            mins.pop_front();
        }
        while maxs.front().is_some_and(|&k| k < i) {
            maxs.pop_front();
        }
        let count = (j - i) as f64;
        let value = match cond.kind {
            Kind::Avg => sum as f64 / 10.0 / count,
            Kind::Sum => sum as f64 / 10.0,
            Kind::Min => f64::from(tenths[mins[0]]) / 10.0,
            Kind::Max => f64::from(tenths[maxs[0]]) / 10.0,
            Kind::Run => unreachable!("handled above"),
        };
        if cond.op.holds(value, x) {
            let (from, to) = (at(i), at(j - 1));
            match out.last_mut() {
                Some(last) if from <= last.2 => last.2 = last.2.max(to),
                _ => out.push((id, from, to)),
            }
        }
        sum -= i64::from(tenths[i]);
    }
    out
}

/// The rows the matches cover (first to last row, at 1 Hz), as a fraction of `rows`.
pub fn covered(matches: &[Match], rows: usize) -> f64 {
    let n: i64 = matches.iter().map(|m| (m.2 - m.1) / 1_000_000 + 1).sum();
    n as f64 / rows.max(1) as f64
}

/// The first difference between two answers, if any.
pub fn first_difference(a: &[Match], b: &[Match]) -> Option<String> {
    if a == b {
        return None;
    }
    let k = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let show = |m: Option<&Match>| {
        m.map_or("nothing".to_string(), |m| {
            format!(
                "id {} {} – {}",
                m.0,
                recalcd::index::datetime(m.1),
                recalcd::index::datetime(m.2)
            )
        })
    };
    Some(format!(
        "{} against {} matches; match {}: {} against {}",
        a.len(),
        b.len(),
        k + 1,
        show(a.get(k)),
        show(b.get(k))
    ))
}
