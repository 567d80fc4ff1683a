//! The exact distance of one window, and the brute-force oracle every engine answers as.
//!
//! [`distance_sq`] is *the* definition: every engine recomputes each window it may keep
//! with it, so engines and [`brute_force`] agree to the bit — including ties, broken by
//! the documented order (distance, then start).

use std::collections::BTreeSet;

use super::{Match, Metric, Query};

/// The pattern, prepared once for many windows.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The distance.
    pub metric: Metric,
    /// The values as given.
    pub raw: Vec<f64>,
    /// z-normalised values (all zeros for a constant pattern); the raw values for
    /// [`Metric::Euclid`].
    pub compared: Vec<f64>,
    /// Whether every value is equal.
    pub constant: bool,
    /// `Σ compared²`, summed as [`distance_sq`] sums it (the z-normalised distance to
    /// a constant window, exactly).
    pub sum_sq: f64,
}

impl Pattern {
    /// Prepares `values` for `metric` (checked by the caller: ≥ 1 value, finite).
    pub fn new(values: &[f64], metric: Metric) -> Pattern {
        let mut compared = vec![0.0; values.len()];
        let constant = match metric {
            Metric::ZNorm => znormalise(values, &mut compared),
            Metric::Euclid => {
                compared.copy_from_slice(values);
                values.iter().all(|&v| v == values[0])
            }
        };
        let mut sum_sq = 0.0;
        for &q in &compared {
            let d = q - 0.0;
            sum_sq += d * d;
        }
        Pattern {
            metric,
            raw: values.to_vec(),
            compared,
            constant,
            sum_sq,
        }
    }

    /// Its length `m`.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether it is empty (never, once checked).
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
}

/// Writes the z-normalised `x` (mean 0, population σ 1) into `out`; a constant `x`
/// (every value equal, or a σ that underflows) gives zeros. Returns whether it was
/// constant.
pub fn znormalise(x: &[f64], out: &mut [f64]) -> bool {
    let first = x[0];
    if x.iter().all(|&v| v == first) {
        out.fill(0.0);
        return true;
    }
    let m = x.len() as f64;
    let mean = x.iter().sum::<f64>() / m;
    let var = x.iter().map(|&v| (v - mean) * (v - mean)).sum::<f64>() / m;
    let sd = var.sqrt();
    if !(sd > 0.0 && sd.is_finite()) {
        out.fill(0.0);
        return true;
    }
    let inv = 1.0 / sd;
    for (o, &v) in out.iter_mut().zip(x) {
        *o = (v - mean) * inv;
    }
    false
}

/// The squared distance of `window` (length m) to the pattern. `scratch` holds m values
/// (used for the z-normalised window).
pub fn distance_sq(pattern: &Pattern, window: &[f64], scratch: &mut [f64]) -> f64 {
    let other: &[f64] = match pattern.metric {
        Metric::ZNorm => {
            znormalise(window, scratch);
            scratch
        }
        Metric::Euclid => window,
    };
    let mut s = 0.0;
    for (&q, &t) in pattern.compared.iter().zip(other) {
        let d = q - t;
        s += d * d;
    }
    s
}

/// The greedy choice over windows already in the order (squared distance, start):
/// each is taken unless `forbidden` holds its start or it starts fewer than
/// `exclusion` rows from one taken; at most `k`.
pub fn greedy(
    sorted: impl IntoIterator<Item = (f64, usize)>,
    k: Option<usize>,
    exclusion: usize,
    forbidden: Option<(usize, usize)>,
) -> Vec<Match> {
    let mut taken = BTreeSet::new();
    let mut out = Vec::new();
    for (d2, start) in sorted {
        if k.is_some_and(|k| out.len() >= k) {
            break;
        }
        if forbidden.is_some_and(|(lo, hi)| lo <= start && start <= hi) {
            continue;
        }
        let lo = start.saturating_sub(exclusion - 1);
        let hi = start.saturating_add(exclusion - 1);
        if taken.range(lo..=hi).next().is_some() {
            continue;
        }
        taken.insert(start);
        out.push(Match {
            start,
            distance: d2.sqrt(),
        });
    }
    out
}

/// Windows ordered by (squared distance, start).
pub fn by_distance(a: &(f64, usize), b: &(f64, usize)) -> std::cmp::Ordering {
    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
}

/// The oracle: every window's distance by [`distance_sq`], O(n·m), sorted by
/// (distance, start), then [`greedy`]. `forbidden` is a range of starts that are never
/// matches (the pattern's own occurrence).
pub fn brute_force(
    pattern: &Pattern,
    series: &[f64],
    query: &Query,
    forbidden: Option<(usize, usize)>,
) -> Vec<Match> {
    let m = pattern.len();
    if series.len() < m {
        return Vec::new();
    }
    let mut scratch = vec![0.0; m];
    let within_sq = query.within.map(|d| d * d);
    let mut all: Vec<(f64, usize)> = (0..=series.len() - m)
        .map(|j| (distance_sq(pattern, &series[j..j + m], &mut scratch), j))
        .filter(|&(d2, _)| within_sq.is_none_or(|w| d2 <= w))
        .collect();
    all.sort_by(by_distance);
    greedy(all, query.k, query.exclusion, forbidden)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_windows_are_at_distance_zero_and_constants_follow_stumpy() {
        let q = [1.0, 5.0, 2.0, 8.0];
        for metric in [Metric::ZNorm, Metric::Euclid] {
            let p = Pattern::new(&q, metric);
            assert_eq!(distance_sq(&p, &q, &mut [0.0; 4]), 0.0);
        }
        let p = Pattern::new(&q, Metric::ZNorm);
        // One side constant: √m.
        assert!((distance_sq(&p, &[3.0; 4], &mut [0.0; 4]) - 4.0).abs() < 1e-12);
        let c = Pattern::new(&[7.0; 4], Metric::ZNorm);
        assert!((distance_sq(&c, &q, &mut [0.0; 4]) - 4.0).abs() < 1e-12);
        // Both constant: 0.
        assert_eq!(distance_sq(&c, &[-2.0; 4], &mut [0.0; 4]), 0.0);
        // Scale and offset do not matter for the z-normalised distance.
        let scaled: Vec<f64> = q.iter().map(|v| 3.0 * v + 100.0).collect();
        assert!(distance_sq(&p, &scaled, &mut [0.0; 4]) < 1e-20);
    }

    #[test]
    fn greedy_takes_the_best_then_skips_the_excluded() {
        let sorted = vec![(0.0, 10), (0.1, 12), (0.2, 3), (0.3, 14), (0.4, 20)];
        let got = greedy(sorted.clone(), Some(3), 4, None);
        let starts: Vec<usize> = got.iter().map(|m| m.start).collect();
        assert_eq!(starts, vec![10, 3, 14]);
        let got = greedy(sorted, None, 4, Some((9, 11)));
        let starts: Vec<usize> = got.iter().map(|m| m.start).collect();
        assert_eq!(starts, vec![12, 3, 20]);
    }
}
