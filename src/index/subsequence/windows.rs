//! The sliding-window DFT index (the Informix subsequence index; Faloutsos, Ranganathan
//! and Manolopoulos, SIGMOD 1994).
//!
//! Every sliding window of `w` values of the series is mapped to the first `f`
//! coefficients of its orthonormal DFT (`X_k = w^{-1/2} Σ x_i e^{-2πi·k·i/w}`). By
//! Parseval, `‖x − y‖² = Σ_k |X_k − Y_k|²` over all `w` coefficients; keeping
//! `k = 0..f` and counting each `k ≥ 1` twice (its conjugate `w − k` has the same
//! modulus; `f ≤ w/2` keeps them distinct) gives a **lower bound** of the Euclidean
//! distance. Consecutive windows are grouped `g` at a time into boxes (per dimension the
//! minimum and maximum), as the seed's `partitionlen`; the distance from a point to a
//! box bounds the distance to each feature inside.
//!
//! A `within D` query with a pattern of `m = p·w` values splits it into `p` pieces. If
//! window `j` is within `D` then `Σ_i ‖q_i − t_{j+iw}‖² ≤ D²`, so some piece is within
//! `D/√p` of its part: window `j` is a **candidate** when some piece `i` has the box of
//! `j + i·w` within `D/√p`. Candidates alone are read and recomputed exactly, so the
//! answer equals the exhaustive one. Floating-point error in the features is bounded
//! and subtracted from every gap, so rounding cannot drop a candidate.
//!
//! The bound does not hold for z-normalised windows (each window has its own mean and
//! σ), so z-normalised queries never use this index.

use realfft::num_complex::Complex;

use super::exact::Pattern;
use super::select::Selector;
use super::{Match, Metric, Query};

/// Why the index cannot answer a query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotApplicable {
    /// The index bounds plain Euclidean distances only.
    #[error("the window index bounds plain Euclidean distances, not z-normalised ones")]
    ZNorm,
    /// A range query only.
    #[error("the window index answers queries with a radius (--within) only")]
    NoRadius,
    /// The pattern length is not a multiple of the window.
    #[error("the pattern's {m} values are not a multiple of the index window {w}")]
    Length {
        /// Pattern length.
        m: usize,
        /// Window length.
        w: usize,
    },
    /// The index was built with parameters that cannot be used.
    #[error("window {w} with {f} coefficient(s) and groups of {g}: needs 1 ≤ f ≤ w/2, g ≥ 1")]
    Parameters {
        /// Window.
        w: usize,
        /// Coefficients.
        f: usize,
        /// Group size.
        g: usize,
    },
}

/// The index of one series.
#[derive(Debug, Clone)]
pub struct WindowIndex {
    w: usize,
    f: usize,
    group: usize,
    /// Windows indexed (`n − w + 1`).
    windows: usize,
    /// Per box, `dims` minima then `dims` maxima.
    boxes: Vec<f64>,
    /// Bound of the rounding error of every stored feature value.
    feature_err: f64,
}

/// The number of real dimensions of `f` coefficients (`X_0` is real).
fn dims(f: usize) -> usize {
    2 * f - 1
}

/// The features of one window (direct DFT), as `dims(f)` reals: re X_0, then re and im
/// of X_1 … X_{f−1}.
pub fn features(window: &[f64], f: usize, out: &mut Vec<f64>) {
    let w = window.len();
    let norm = 1.0 / (w as f64).sqrt();
    out.clear();
    for k in 0..f {
        let mut acc = Complex::new(0.0, 0.0);
        for (i, &x) in window.iter().enumerate() {
            let angle = -2.0 * std::f64::consts::PI * ((k * i) % w) as f64 / w as f64;
            acc += Complex::new(angle.cos(), angle.sin()) * x;
        }
        acc *= norm;
        out.push(acc.re);
        if k > 0 {
            out.push(acc.im);
        }
    }
}

impl WindowIndex {
    /// Indexes every window of `w` values of `series`, `f` coefficients, boxes of `group`
    /// consecutive windows.
    ///
    /// # Errors
    /// [`NotApplicable::Parameters`] unless `1 ≤ f ≤ w/2` and `group ≥ 1`.
    pub fn build(
        series: &[f64],
        w: usize,
        f: usize,
        group: usize,
    ) -> Result<WindowIndex, NotApplicable> {
        if f == 0 || 2 * (f - 1) >= w || group == 0 || w < 2 {
            return Err(NotApplicable::Parameters { w, f, g: group });
        }
        let d = dims(f);
        let windows = (series.len() + 1).saturating_sub(w);
        let max_abs = series.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        // Resynchronised by a direct DFT every w windows: at most w sliding steps, each
        // adding an error of a few ε·|X| ≤ ε·√w·max|x| per coefficient.
        let wf = w as f64;
        let feature_err = 16.0 * f64::EPSILON * wf * wf.sqrt() * max_abs * (wf + 4.0);
        let norm = 1.0 / wf.sqrt();
        let rot: Vec<Complex<f64>> = (0..f)
            .map(|k| {
                let a = 2.0 * std::f64::consts::PI * k as f64 / wf;
                Complex::new(a.cos(), a.sin())
            })
            .collect();
        let mut boxes = Vec::with_capacity(windows.div_ceil(group) * 2 * d);
        let mut current = vec![Complex::new(0.0, 0.0); f];
        let mut feat = Vec::with_capacity(d);
        let mut lo = vec![f64::INFINITY; d];
        let mut hi = vec![f64::NEG_INFINITY; d];
        for s in 0..windows {
            if s % w == 0 {
                features(&series[s..s + w], f, &mut feat);
                current[0] = Complex::new(feat[0], 0.0);
                for k in 1..f {
                    current[k] = Complex::new(feat[2 * k - 1], feat[2 * k]);
                }
            } else {
                let delta = (series[s + w - 1] - series[s - 1]) * norm;
                for (x, r) in current.iter_mut().zip(&rot) {
                    *x = (*x + delta) * r;
                }
                feat.clear();
                feat.push(current[0].re);
                for x in &current[1..] {
                    feat.push(x.re);
                    feat.push(x.im);
                }
            }
            for (i, &v) in feat.iter().enumerate() {
                lo[i] = lo[i].min(v);
                hi[i] = hi[i].max(v);
            }
            if (s + 1) % group == 0 || s + 1 == windows {
                boxes.extend_from_slice(&lo);
                boxes.extend_from_slice(&hi);
                lo.fill(f64::INFINITY);
                hi.fill(f64::NEG_INFINITY);
            }
        }
        Ok(WindowIndex {
            w,
            f,
            group,
            windows,
            boxes,
            feature_err,
        })
    }

    /// The window length.
    pub fn window(&self) -> usize {
        self.w
    }

    /// Bytes the boxes take.
    pub fn size_bytes(&self) -> usize {
        self.boxes.len() * std::mem::size_of::<f64>()
    }

    /// The number of real dimensions of a feature.
    pub fn dims(&self) -> usize {
        dims(self.f)
    }

    /// The coefficients kept.
    pub fn coefficients(&self) -> usize {
        self.f
    }

    /// Windows indexed.
    pub fn windows(&self) -> usize {
        self.windows
    }

    /// The bound of the rounding error of every stored feature value.
    pub fn feature_err(&self) -> f64 {
        self.feature_err
    }

    /// The boxes in order: the first window each holds, how many, and its `dims`
    /// minima then `dims` maxima.
    pub fn boxes(&self) -> impl Iterator<Item = (usize, usize, &[f64])> + '_ {
        self.boxes
            .chunks_exact(2 * dims(self.f))
            .enumerate()
            .map(move |(b, bounds)| {
                let first = b * self.group;
                (
                    first,
                    (first + self.group).min(self.windows) - first,
                    bounds,
                )
            })
    }

    /// The starts of the windows of length `m` that may lie within `radius` of
    /// `pattern` (raw values, length a multiple of the window), in order.
    ///
    /// # Errors
    /// [`NotApplicable::Length`] when `m` is not a multiple of the window.
    pub fn candidates(&self, pattern: &[f64], radius: f64) -> Result<Vec<usize>, NotApplicable> {
        let probe = Probe::new(pattern, self.w, self.f, radius)?;
        let m = pattern.len();
        let starts = (self.windows + self.w).saturating_sub(m);
        let flagged: Vec<Vec<(usize, usize)>> = (0..probe.pieces())
            .map(|i| {
                self.boxes()
                    .filter(|(_, _, bounds)| probe.may_hold(i, bounds, self.feature_err))
                    .map(|(first, count, _)| (first, first + count))
                    .collect()
            })
            .collect();
        Ok(candidate_starts(starts, self.w, &[], &flagged)
            .into_iter()
            .flat_map(|(a, b)| a..b)
            .collect())
    }
}

/// A pattern cut into its pieces of one window each, with their features: tests boxes.
#[derive(Debug, Clone)]
pub struct Probe {
    pieces: Vec<Vec<f64>>,
    /// The squared radius of a piece, `D²/p`, widened by a relative 1e-12.
    r2: f64,
    /// The rounding error of the pieces' features.
    slack: f64,
}

impl Probe {
    /// The pieces of `pattern` (raw values) for windows of `w` values and `f`
    /// coefficients, each searched with `radius/√p`.
    ///
    /// # Errors
    /// [`NotApplicable::Length`] when the length is not a multiple of `w`;
    /// [`NotApplicable::Parameters`] for unusable `w`, `f`.
    pub fn new(pattern: &[f64], w: usize, f: usize, radius: f64) -> Result<Probe, NotApplicable> {
        if f == 0 || w < 2 || 2 * (f - 1) >= w {
            return Err(NotApplicable::Parameters { w, f, g: 1 });
        }
        let m = pattern.len();
        if m == 0 || !m.is_multiple_of(w) {
            return Err(NotApplicable::Length { m, w });
        }
        let p = m / w;
        let r = radius / (p as f64).sqrt();
        let q_abs = pattern.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        let wf = w as f64;
        let pieces = pattern
            .chunks_exact(w)
            .map(|piece| {
                let mut y = Vec::with_capacity(dims(f));
                features(piece, f, &mut y);
                y
            })
            .collect();
        Ok(Probe {
            pieces,
            r2: r * r * (1.0 + 1e-12),
            slack: 16.0 * f64::EPSILON * wf * wf.sqrt() * q_abs,
        })
    }

    /// The number of pieces `p`.
    pub fn pieces(&self) -> usize {
        self.pieces.len()
    }

    /// Whether the box `bounds` (`dims` minima then maxima, each off by at most `err`)
    /// may hold a window within `D/√p` of piece `i`.
    pub fn may_hold(&self, i: usize, bounds: &[f64], err: f64) -> bool {
        let y = &self.pieces[i];
        let d = y.len();
        if bounds.len() != 2 * d {
            return true;
        }
        let (lo, hi) = bounds.split_at(d);
        let slack = err + self.slack;
        let mut lb = 0.0;
        for dim in 0..d {
            let gap = (lo[dim] - y[dim]).max(y[dim] - hi[dim]) - slack;
            if gap > 0.0 {
                lb += if dim == 0 { gap * gap } else { 2.0 * gap * gap };
            }
        }
        lb <= self.r2
    }
}

/// The starts (as half-open runs, in order, merged) of the windows of `p·w` values
/// among `starts` that must be recomputed: window `j` is a candidate when for some piece
/// `i` the window of `w` values at `j + i·w` is one the index cannot vouch for (in one
/// of the half-open runs `unvouched`) or lies in a box flagged for piece `i`
/// (`flagged[i]`, half-open runs of window starts). `p = flagged.len()`.
pub fn candidate_starts(
    starts: usize,
    w: usize,
    unvouched: &[(usize, usize)],
    flagged: &[Vec<(usize, usize)>],
) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, boxes) in flagged.iter().enumerate() {
        let shift = i * w;
        for &(a, b) in unvouched.iter().chain(boxes) {
            let (a, b) = (a.saturating_sub(shift), b.saturating_sub(shift).min(starts));
            if a < b {
                runs.push((a, b));
            }
        }
    }
    runs.sort_unstable();
    let mut out: Vec<(usize, usize)> = Vec::with_capacity(runs.len());
    for (a, b) in runs {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// The squared distance of `window` to `pattern` ([`super::exact::distance_sq`] for the
/// Euclidean metric), abandoned once past `limit`: the partial sums only grow, so a
/// kept value is computed exactly as the scan does.
pub fn euclid_within(pattern: &Pattern, window: &[f64], limit: f64) -> Option<f64> {
    let mut s = 0.0;
    for (&q, &t) in pattern.compared.iter().zip(window) {
        let d = q - t;
        s += d * d;
        if s > limit {
            return None;
        }
    }
    Some(s)
}

/// What a query through the index found and cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The matches, as the profile would give them.
    pub matches: Vec<Match>,
    /// Candidate windows (recomputed exactly).
    pub candidates: u64,
    /// Distinct rows the candidates cover (what a store would read).
    pub rows_read: u64,
}

/// Answers `query` (checked) for `pattern` over `series` through `index`:
/// candidates from the boxes, each recomputed exactly.
///
/// # Errors
/// [`NotApplicable`] when the query is not a Euclidean range query or the pattern
/// length is not a multiple of the window.
pub fn within(
    index: &WindowIndex,
    pattern: &Pattern,
    series: &[f64],
    query: &Query,
    forbidden: Option<(usize, usize)>,
) -> Result<Outcome, NotApplicable> {
    let radius = applicable(index.w, pattern.len(), query)?;
    let m = pattern.len();
    let candidates = index.candidates(&pattern.raw, radius)?;
    let limit = radius * radius;
    let mut selector = Selector::new(query, forbidden.is_some());
    let mut rows_read = 0u64;
    let mut covered_to = 0usize;
    for &j in &candidates {
        let (from, to) = (j.max(covered_to), j + m);
        rows_read += (to - from.min(to)) as u64;
        covered_to = covered_to.max(to);
        if let Some(s) = euclid_within(pattern, &series[j..j + m], limit) {
            selector.offer(j, s);
        }
    }
    Ok(Outcome {
        matches: selector.finish(forbidden),
        candidates: candidates.len() as u64,
        rows_read,
    })
}

/// The radius of `query` when the index can answer it.
///
/// # Errors
/// [`NotApplicable`] saying why not.
pub fn applicable(w: usize, m: usize, query: &Query) -> Result<f64, NotApplicable> {
    if query.metric != Metric::Euclid {
        return Err(NotApplicable::ZNorm);
    }
    let Some(radius) = query.within else {
        return Err(NotApplicable::NoRadius);
    };
    if !m.is_multiple_of(w) {
        return Err(NotApplicable::Length { m, w });
    }
    Ok(radius)
}
