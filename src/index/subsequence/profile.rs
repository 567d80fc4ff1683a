//! MASS: the distance profile of a pattern over a series with FFTs, blocked.
//!
//! For window `j` with centred values `t' = t − c` (c: the block's mean), the sliding
//! dot product `P_j = Σ_i k_i·t'_{j+i}` of the pattern's kernel `k` (the z-normalised
//! pattern, or the pattern minus its mean for the Euclidean metric) comes from one
//! real FFT per block; the window sums `S_j = Σ t'`, `W_j = Σ t'²` from prefix sums
//! restarted every `m` values (so each sum adds at most `2m` terms and a large value
//! far away does not spoil it). Then, with `Q = Σ k²`:
//!
//! - z-normalised: `d² = Q + m − 2·P_j/σ_j`, `σ_j² = (W_j − S_j²/m)/m`;
//! - Euclidean: `d² = Q + Σ(t − μ_q)² − 2·Σ k_i (t_{j+i} − μ_q)`, both sums from `S`, `W`.
//!
//! Every estimate comes with a bound on its floating-point error (the FFT's, the sums',
//! the centring's, and [`super::exact::distance_sq`]'s own), from which a *lower bound*
//! follows. A window is recomputed exactly only when its lower bound reaches the
//! consumer's threshold ([`Consumer::threshold`]); windows whose statistics cannot be
//! trusted (σ lost in rounding) get the lower bound 0 and are always recomputed.
//! Constant windows (every value equal) are found exactly, by run lengths, and get the
//! exact distance of the convention (0 or √m).
//!
//! Memory: the series is processed in blocks of `L` values (a power of two, 2^13 by
//! default) overlapping by `m − 1`, so a profile of any length needs O(L) besides what
//! the consumer keeps.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use super::exact::{distance_sq, Pattern};
use super::select::Selector;
use super::Metric;

/// The default block (FFT) length: 2^13 values (64 KB of f64, within a core's L2
/// cache). Measured on 2^23 points and a 256-point pattern, a top-5 query over
/// precomputed blocks took 35.6 ms with 2^13, 37.8 ms with 2^14, 42.7 ms with 2^15 and
/// 49.9 ms with 2^16 (docs/benchmarks.md); a longer pattern gets blocks of at least
/// 4·m ([`Profiler::new`]).
pub const DEFAULT_BLOCK: usize = 1 << 13;

/// A consumer of the windows of a profile.
pub trait Consumer {
    /// The largest squared distance that still matters.
    fn threshold(&self) -> f64;
    /// Window `start`: MASS's estimate of its squared distance, a lower bound of the
    /// exact value, and the exact value on demand.
    fn window(&mut self, start: usize, estimate: f64, lower: f64, exact: impl FnOnce() -> f64);
    /// Whether every window must be handed over, with its estimate from the full
    /// statistics; otherwise a window whose lower bound exceeds [`Consumer::threshold`]
    /// may be skipped (a consumer must then ignore such windows).
    fn wants_every_window(&self) -> bool {
        false
    }
}

/// A [`Selector`] fed from a profile, counting the windows recomputed exactly.
#[derive(Debug, Clone)]
pub struct Refine {
    /// The windows kept.
    pub selector: Selector,
    /// Windows recomputed exactly.
    pub refined: u64,
}

impl Consumer for Refine {
    fn threshold(&self) -> f64 {
        self.selector.threshold()
    }

    fn window(&mut self, start: usize, _estimate: f64, lower: f64, exact: impl FnOnce() -> f64) {
        if lower <= self.selector.threshold() {
            self.refined += 1;
            self.selector.offer(start, exact());
        }
    }
}

/// Collects MASS's estimates of the distances (√ of the squared estimate clamped at 0),
/// as `stumpy.mass` returns them.
#[derive(Debug, Clone, Default)]
pub struct Estimates(pub Vec<f64>);

impl Consumer for Estimates {
    fn threshold(&self) -> f64 {
        f64::NEG_INFINITY
    }

    fn window(&mut self, _start: usize, estimate: f64, _lower: f64, _exact: impl FnOnce() -> f64) {
        self.0.push(estimate.max(0.0).sqrt());
    }

    fn wants_every_window(&self) -> bool {
        true
    }
}

/// The statistics of one window, from the block's centred values.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowStats {
    /// `Σ t'`.
    pub s: f64,
    /// `Σ t'²`.
    pub w: f64,
    /// Error bound of `s`.
    pub err_s: f64,
    /// Error bound of `w`.
    pub err_w: f64,
    /// Every value of the window equal.
    pub constant: bool,
    /// `1/σ` (0 when the centred sums leave no variance), for the z-normalised metric.
    pub inv_sd: f64,
    /// Relative error bound of `m·σ²`; infinite when σ cannot be trusted (the window is
    /// then always recomputed).
    pub rel_var: f64,
    /// The error bound the centring and the direct computation add, `4m·e_t`.
    pub base_err: f64,
}

/// One block of the series ready for any pattern of length `m`: its centre, its
/// centred values' spectrum and 2-norm, and its windows' statistics.
#[derive(Debug, Clone)]
pub struct Block {
    /// Index of the block's first value in the series.
    pub offset: usize,
    /// Values in the block (≤ L).
    pub len: usize,
    /// The centre `c` subtracted (the block's mean).
    pub centre: f64,
    /// Per-value rounding bound of the centred values.
    pub elem_err: f64,
    /// `‖t'‖₂`.
    pub norm: f64,
    /// The spectrum of the centred, zero-padded block (`L/2 + 1` values).
    pub spectrum: Vec<Complex<f64>>,
    /// Statistics of windows `0..=len − m`.
    pub stats: Vec<WindowStats>,
    /// The z-normalised metric's compact statistics (what a query reads per window).
    pub compact: Compact,
}

/// What a z-normalised query reads per window, 4 bytes instead of a [`WindowStats`]:
/// `1/σ` rounded to f32 (relative error ≤ 2⁻²⁴), NaN for the windows that take the full
/// path (constant, or σ not trusted); the relative variance error and the base error
/// bounded by their maxima over the block's other windows. The lower bound computed from
/// these is never above the one from the full statistics (see `profile_block`).
#[derive(Debug, Clone, Default)]
pub struct Compact {
    /// `1/σ` per window, or NaN.
    pub inv_sd: Vec<f32>,
    /// The largest `rel_var` of the windows with a finite `inv_sd` here.
    pub rel_var: f64,
    /// The largest `base_err` of those windows.
    pub base_err: f64,
    /// The largest `|Σ t'| + err_s` of those windows: `m` times a bound of their centred
    /// means, which the kernel's rounded sum multiplies (see `profile_compact`).
    pub sum: f64,
}

impl Compact {
    fn fill(&mut self, stats: &[WindowStats]) {
        self.inv_sd.clear();
        self.rel_var = 0.0;
        self.base_err = 0.0;
        self.sum = 0.0;
        for st in stats {
            let inv = st.inv_sd as f32;
            if st.constant || !st.rel_var.is_finite() || !inv.is_finite() || inv == 0.0 {
                self.inv_sd.push(f32::NAN);
            } else {
                self.inv_sd.push(inv);
                self.rel_var = self.rel_var.max(st.rel_var);
                self.base_err = self.base_err.max(st.base_err);
                self.sum = self.sum.max(st.s.abs() + st.err_s);
            }
        }
    }
}

/// The pattern's side, planned for one block length.
pub struct Profiler {
    pattern: Pattern,
    m: usize,
    len: usize,
    forward: Arc<dyn RealToComplex<f64>>,
    inverse: Arc<dyn ComplexToReal<f64>>,
    /// The spectrum of the reversed kernel, zero-padded; `None` when the kernel is 0.
    kernel: Option<Vec<Complex<f64>>>,
    /// `‖k‖₁`.
    kernel_l1: f64,
    /// `Σ k²`.
    kernel_sq: f64,
    /// `Σ k` (≈ 0; used exactly for the Euclidean metric).
    kernel_sum: f64,
    /// The pattern's mean (Euclidean metric).
    mean: f64,
    // Reused buffers.
    time: Vec<f64>,
    spec: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
    scratch_exact: Vec<f64>,
    /// Values not yet profiled; `pending[0]` is series index `offset`.
    pending: Vec<f64>,
    offset: usize,
    block: Option<Block>,
    /// Windows profiled.
    pub windows: u64,
}

impl std::fmt::Debug for Profiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profiler")
            .field("m", &self.m)
            .field("len", &self.len)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

impl Profiler {
    /// Plans a profile of `pattern` (checked by the caller) in blocks of `block` values
    /// (raised to a power of two of at least `4·m`).
    pub fn new(pattern: Pattern, block: usize) -> Profiler {
        let m = pattern.len();
        let len = block.max(4 * m).next_power_of_two();
        let mut planner = RealFftPlanner::<f64>::new();
        let forward = planner.plan_fft_forward(len);
        let inverse = planner.plan_fft_inverse(len);
        let (k, mean): (Vec<f64>, f64) = match pattern.metric {
            Metric::ZNorm => (pattern.compared.clone(), 0.0),
            Metric::Euclid => {
                let mean = pattern.raw.iter().sum::<f64>() / m as f64;
                (pattern.raw.iter().map(|&q| q - mean).collect(), mean)
            }
        };
        let kernel_l1 = k.iter().map(|v| v.abs()).sum();
        let kernel_sq = k.iter().map(|v| v * v).sum();
        let kernel_sum = k.iter().sum();
        let scratch_len = forward.get_scratch_len().max(inverse.get_scratch_len());
        let mut scratch = vec![Complex::default(); scratch_len];
        let kernel = if k.iter().all(|&v| v == 0.0) {
            None
        } else {
            let mut time = vec![0.0; len];
            for (i, &v) in k.iter().enumerate() {
                time[m - 1 - i] = v;
            }
            let mut spec = forward.make_output_vec();
            forward
                .process_with_scratch(&mut time, &mut spec, &mut scratch)
                .expect("buffers sized by the plan");
            Some(spec)
        };
        Profiler {
            m,
            len,
            time: vec![0.0; len],
            spec: forward.make_output_vec(),
            forward,
            inverse,
            kernel,
            kernel_l1,
            kernel_sq,
            kernel_sum,
            mean,
            scratch,
            scratch_exact: vec![0.0; m],
            pending: Vec::new(),
            offset: 0,
            block: None,
            pattern,
            windows: 0,
        }
    }

    /// The block length `L`.
    pub fn block_len(&self) -> usize {
        self.len
    }

    /// The pattern.
    pub fn pattern(&self) -> &Pattern {
        &self.pattern
    }

    /// Adds the series' next values, profiling every full block.
    pub fn push(&mut self, values: &[f64], consumer: &mut impl Consumer) {
        let step = self.len - self.m + 1;
        let mut rest = values;
        while !rest.is_empty() {
            let take = (self.len - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == self.len {
                self.profile_pending(consumer);
                self.pending.drain(..step);
                self.offset += step;
            }
        }
    }

    /// Profiles what is left (the last, shorter block).
    pub fn finish(&mut self, consumer: &mut impl Consumer) {
        if self.pending.len() >= self.m {
            self.profile_pending(consumer);
        }
        self.offset += self.pending.len();
        self.pending.clear();
    }

    fn profile_pending(&mut self, consumer: &mut impl Consumer) {
        let mut block = self.block.take().unwrap_or_else(|| Block {
            offset: 0,
            len: 0,
            centre: 0.0,
            elem_err: 0.0,
            norm: 0.0,
            spectrum: Vec::new(),
            stats: Vec::new(),
            compact: Compact::default(),
        });
        let pending = std::mem::take(&mut self.pending);
        self.prepare_into(&pending, self.offset, &mut block);
        self.profile_block(&block, &pending, consumer);
        self.pending = pending;
        self.block = Some(block);
    }

    /// Prepares `values` (series index `offset` onwards, at most `L`, at least `m`) as a
    /// [`Block`]: what a query over a stored series can keep between queries.
    pub fn prepare(&mut self, values: &[f64], offset: usize) -> Block {
        let mut block = Block {
            offset: 0,
            len: 0,
            centre: 0.0,
            elem_err: 0.0,
            norm: 0.0,
            spectrum: Vec::new(),
            stats: Vec::new(),
            compact: Compact::default(),
        };
        self.prepare_into(values, offset, &mut block);
        block
    }

    fn prepare_into(&mut self, values: &[f64], offset: usize, block: &mut Block) {
        let (m, len) = (self.m, values.len());
        debug_assert!(len >= m && len <= self.len);
        let centre = values.iter().sum::<f64>() / len as f64;
        let mut max_dev = 0.0f64;
        let mut norm_sq = 0.0;
        self.time.fill(0.0);
        for (t, &v) in self.time.iter_mut().zip(values) {
            *t = v - centre;
            max_dev = max_dev.max(t.abs());
            norm_sq += *t * *t;
        }
        let elem_err = f64::EPSILON * (centre.abs() + max_dev);
        block_stats(
            &self.time[..len],
            m,
            (centre, elem_err),
            values,
            &mut block.stats,
        );
        block.compact.fill(&block.stats);
        if block.spectrum.len() != self.spec.len() {
            block.spectrum = self.forward.make_output_vec();
        }
        self.forward
            .process_with_scratch(&mut self.time, &mut block.spectrum, &mut self.scratch)
            .expect("buffers sized by the plan");
        block.offset = offset;
        block.len = len;
        block.centre = centre;
        block.elem_err = elem_err;
        block.norm = norm_sq.sqrt() * (1.0 + 4.0 * f64::EPSILON * len as f64);
    }

    /// Profiles one prepared block; `values` are its raw values (for exact
    /// recomputation).
    pub fn profile_block(&mut self, block: &Block, values: &[f64], consumer: &mut impl Consumer) {
        let m = self.m;
        let mf = m as f64;
        let eps = f64::EPSILON;
        let windows = block.len + 1 - m;
        let have_p = match &self.kernel {
            Some(kernel) => {
                for ((o, a), b) in self.spec.iter_mut().zip(&block.spectrum).zip(kernel) {
                    *o = a * b;
                }
                let last = self.spec.len() - 1;
                self.spec[0].im = 0.0;
                self.spec[last].im = 0.0;
                self.inverse
                    .process_with_scratch(&mut self.spec, &mut self.time, &mut self.scratch)
                    .expect("buffers sized by the plan");
                true
            }
            None => false,
        };
        let scale = 1.0 / self.len as f64;
        let err_p = if have_p {
            8.0 * eps * ((self.len as f64).log2() + 2.0) * self.kernel_l1 * block.norm
                + 2.0 * block.elem_err * self.kernel_l1
        } else {
            0.0
        };
        // The exact function's own rounding, relative to the sizes in play.
        let exact_rel = 64.0 * eps * mf;
        let kernel = (self.kernel_sum, self.kernel_l1);
        if self.pattern.metric == Metric::ZNorm
            && !consumer.wants_every_window()
            && block.compact.inv_sd.len() >= windows
        {
            self.profile_compact(block, values, consumer, (have_p, err_p, exact_rel));
            self.windows += windows as u64;
            return;
        }
        for (j, st) in block.stats[..windows].iter().enumerate() {
            let p = if have_p {
                self.time[j + m - 1] * scale
            } else {
                0.0
            };
            let (estimate, lower) = match self.pattern.metric {
                Metric::ZNorm => {
                    if st.constant {
                        let v = if self.pattern.constant {
                            0.0
                        } else {
                            self.pattern.sum_sq
                        };
                        (v, v)
                    } else {
                        // The kernel's rounded sum δ is not 0: `Σ k·z = (p − μ'δ)/σ`.
                        let (p, err_p) = uncentred(kernel, mf, (p, err_p), (st.s, st.err_s));
                        let estimate = self.kernel_sq + mf - 2.0 * p * st.inv_sd;
                        if st.rel_var.is_finite() {
                            let err = 2.0 * err_p * st.inv_sd
                                + 2.0 * (p.abs() + err_p) * st.inv_sd * st.rel_var
                                + st.base_err
                                + exact_rel * (self.kernel_sq + mf);
                            (estimate, estimate - 2.0 * err)
                        } else {
                            (estimate, 0.0)
                        }
                    }
                }
                Metric::Euclid => {
                    let delta = block.centre - self.mean;
                    let x = p + delta * self.kernel_sum;
                    let t = st.w + 2.0 * delta * st.s + mf * delta * delta;
                    let err_t = st.err_w
                        + 2.0 * delta.abs() * st.err_s
                        + 8.0 * eps * (st.w + 2.0 * (delta * st.s).abs() + mf * delta * delta);
                    let err_x = err_p + 4.0 * eps * (delta * self.kernel_sum).abs();
                    let estimate = self.kernel_sq + t - 2.0 * x;
                    let err =
                        err_t + 2.0 * err_x + exact_rel * (self.kernel_sq + t + 2.0 * x.abs());
                    (estimate, estimate - 2.0 * err)
                }
            };
            let start = block.offset + j;
            let pattern = &self.pattern;
            let scratch = &mut self.scratch_exact;
            consumer.window(start, estimate, lower, || {
                distance_sq(pattern, &values[j..j + m], scratch)
            });
        }
        self.windows += windows as u64;
    }
}

impl Profiler {
    /// [`Profiler::profile_block`] for a z-normalised pattern and a consumer that skips
    /// windows beyond its threshold: reads [`Block::compact`] (4 bytes a window) and hands
    /// over only the windows whose lower bound reaches the threshold.
    ///
    /// The bound is never above the full path's. With `ι` the f32 `1/σ` (so the true
    /// `1/σ ≤ ι(1 + 2⁻²³)`), `R ≥ rel_var + 2⁻²⁰` and `B ≥ base_err`: the estimate
    /// `Q + m − 2pι` differs from the full path's by at most `2|p|ι·2⁻²³`, and the error
    /// `2e_p/σ + 2(|p| + e_p)·rel_var/σ + base_err + c` is at most
    /// `(1 + 2⁻²⁰)(2e_pι + 2(|p| + e_p)ιR) + B + c`, whose double covers that shift
    /// too (`4|p|ιR ≥ 4|p|ι·2⁻²⁰`). Windows with a NaN `ι` take the full path. The test
    /// runs eight windows at a time without branches; only groups holding a window that
    /// reaches the threshold are looked at one by one (with the same expression).
    fn profile_compact(
        &mut self,
        block: &Block,
        values: &[f64],
        consumer: &mut impl Consumer,
        (have_p, err_p, exact_rel): (bool, f64, f64),
    ) {
        let m = self.m;
        let mf = m as f64;
        let windows = block.len + 1 - m;
        let scale = 1.0 / self.len as f64;
        let widen = 1.0 + 1.0 / f64::from(1u32 << 20);
        let r = block.compact.rel_var + 1.0 / f64::from(1u32 << 20);
        let qm = self.kernel_sq + mf;
        let kernel = (self.kernel_sum, self.kernel_l1);
        let c = block.compact.base_err + exact_rel * qm;
        // lower = (qm − 2c) − ι·(2p + a + b·|p|), with p = raw·scale: the error above,
        // gathered (a = 4(1 + 2⁻²⁰)e_p(1 + R), b = 4(1 + 2⁻²⁰)R).
        let base = qm - 2.0 * c;
        let b = 4.0 * widen * r;
        // The estimate below leaves out `μ'δ` (see [`uncentred`]): at most `shift` here,
        // which moves the full path's lower bound by at most `(2 + 4R)·shift·ι`.
        let (shifted, shift_err) = uncentred(kernel, mf, (0.0, 0.0), (block.compact.sum, 0.0));
        let shift = shifted.abs() + shift_err;
        let a = 4.0 * widen * err_p * (1.0 + r) + (2.0 + b) * widen * shift;
        let (s2, sb) = if have_p {
            (2.0 * scale, b * scale)
        } else {
            (0.0, 0.0)
        };
        let lower_of = |inv: f32, raw: f64| {
            let raw = if have_p { raw } else { 0.0 };
            base - f64::from(inv) * (s2 * raw + a + sb * raw.abs())
        };
        let mut threshold = consumer.threshold();
        let pattern = &self.pattern;
        let scratch = &mut self.scratch_exact;
        let ps = &self.time[m - 1..m - 1 + windows];
        let invs = &block.compact.inv_sd[..windows];
        const LANES: usize = 8;
        let mut j0 = 0;
        while j0 < windows {
            let end = (j0 + LANES).min(windows);
            // Branch-free over the lanes: does any window reach the threshold (a NaN `ι`
            // always does)?
            let mut hit = false;
            for (&inv, &raw) in invs[j0..end].iter().zip(&ps[j0..end]) {
                let lower = lower_of(inv, raw);
                hit |= lower <= threshold || lower.is_nan();
            }
            if !hit {
                j0 = end;
                continue;
            }
            for j in j0..end {
                let (inv, raw) = (invs[j], ps[j]);
                let p = if have_p { raw * scale } else { 0.0 };
                let (estimate, lower) = if inv.is_nan() {
                    let st = &block.stats[j];
                    if st.constant {
                        let v = if pattern.constant {
                            0.0
                        } else {
                            pattern.sum_sq
                        };
                        (v, v)
                    } else {
                        let (p, err_p) = uncentred(kernel, mf, (p, err_p), (st.s, st.err_s));
                        let estimate = qm - 2.0 * p * st.inv_sd;
                        if st.rel_var.is_finite() {
                            let err = 2.0 * err_p * st.inv_sd
                                + 2.0 * (p.abs() + err_p) * st.inv_sd * st.rel_var
                                + st.base_err
                                + exact_rel * qm;
                            (estimate, estimate - 2.0 * err)
                        } else {
                            (estimate, 0.0)
                        }
                    }
                } else {
                    (qm - 2.0 * p * f64::from(inv), lower_of(inv, raw))
                };
                if lower > threshold {
                    continue;
                }
                consumer.window(block.offset + j, estimate, lower, || {
                    distance_sq(pattern, &values[j..j + m], scratch)
                });
                threshold = consumer.threshold();
            }
            j0 = end;
        }
    }
}

/// The statistics of every window of a block: `centred` are its centred values,
/// `raw` the same values before centring (for exact constancy).
/// `p − μ'δ` and its error bound, from `p` (`Σ k·t'` of a window, ± `err_p`) and the
/// window's `s = Σ t'` (± `err_s`): `Σ k·z = (p − μ'δ)/σ` with `μ' = s/m` the window's
/// centred mean and `δ = Σ k` the kernel's sum — 0 for a z-normalised pattern in exact
/// arithmetic, but not once rounded: a pattern whose σ is tiny against its values'
/// magnitude (2,500.0010075 repeated, one value 2.5·10⁻⁶ off) has `δ` near 10⁻⁵, and
/// `μ'δ/σ` then outweighs every other error (a property test found a window at true
/// squared distance 2·10⁻¹¹ estimated at 1.3·10⁻⁴ with a "lower bound" of 1.3·10⁻⁴).
/// `kernel` is `(δ as computed, Σ|k|)`; the computed `δ` is within `m·ε·Σ|k|` of the
/// exact sum.
fn uncentred(
    (kernel_sum, kernel_l1): (f64, f64),
    mf: f64,
    (p, err_p): (f64, f64),
    (s, err_s): (f64, f64),
) -> (f64, f64) {
    let eps = f64::EPSILON;
    let delta_err = mf * eps * kernel_l1;
    let shift = s / mf * kernel_sum;
    let err = err_p
        + err_s / mf * (kernel_sum.abs() + delta_err)
        + s.abs() / mf * delta_err
        + 4.0 * eps * (shift.abs() + p.abs());
    (p - shift, err)
}

fn block_stats(
    centred: &[f64],
    m: usize,
    (centre, elem_err): (f64, f64),
    raw: &[f64],
    out: &mut Vec<WindowStats>,
) {
    let len = centred.len();
    let eps = f64::EPSILON;
    // Prefix sums restarted at every multiple of m: (Σ t', Σ t'², Σ |t'|).
    let mut pre = vec![(0.0f64, 0.0f64, 0.0f64); len + 1];
    let chunks = len.div_ceil(m);
    let mut tot = vec![(0.0f64, 0.0f64, 0.0f64); chunks + 1];
    for i in 0..len {
        let t = centred[i];
        let before = if i % m == 0 { (0.0, 0.0, 0.0) } else { pre[i] };
        let after = (before.0 + t, before.1 + t * t, before.2 + t.abs());
        pre[i + 1] = if (i + 1) % m == 0 {
            (0.0, 0.0, 0.0)
        } else {
            after
        };
        tot[i / m] = after;
    }
    out.clear();
    let mut run = 0usize;
    let windows = len + 1 - m;
    let mf = m as f64;
    // Runs of equal values ending at each index, to know constant windows exactly.
    let mut runs = Vec::with_capacity(len);
    for i in 0..len {
        run = if i > 0 && raw[i] == raw[i - 1] {
            run + 1
        } else {
            1
        };
        runs.push(run);
    }
    for j in 0..windows {
        let a = j / m;
        let off = j % m;
        let (s, w, abs, err_scale_s, err_scale_w) = if off == 0 {
            let (s, w, abs) = tot[a];
            (s, w, abs, abs, w)
        } else {
            let (ts, tw, ta) = tot[a];
            let (ps, pw, _) = pre[j];
            let (qs, qw, _) = pre[j + m];
            let (_, nw, na) = tot[a + 1];
            ((ts - ps) + qs, (tw - pw) + qw, ta + na, ta + na, tw + nw)
        };
        let k = 2.0 * (mf + 2.0) * eps;
        let err_s = k * err_scale_s + mf * elem_err;
        let err_w = k * err_scale_w + 2.0 * elem_err * abs + mf * elem_err * elem_err;
        // The z-normalised side: σ from the sums, and how far it can be trusted.
        let v = w - s * s / mf;
        let err_v =
            err_w + (2.0 * s.abs() * err_s + err_s * err_s) / mf + 4.0 * eps * (w + s * s / mf);
        let (inv_sd, rel_var, base_err) = if v > 0.0 {
            let sd = (v / mf).sqrt();
            if v > 4.0 * err_v {
                let mean = centre + s / mf;
                let e_t = 4.0 * eps * (mean.abs() / sd + mf.sqrt());
                (1.0 / sd, err_v / v, 4.0 * mf * e_t)
            } else {
                (1.0 / sd, f64::INFINITY, 0.0)
            }
        } else {
            (0.0, f64::INFINITY, 0.0)
        };
        out.push(WindowStats {
            s,
            w,
            err_s,
            err_w,
            constant: runs[j + m - 1] >= m,
            inv_sd,
            rel_var,
            base_err,
        });
    }
}

/// MASS's distances of every window (for comparisons with `stumpy.mass`).
pub fn estimates(pattern: Pattern, series: &[f64], block: usize) -> Vec<f64> {
    let mut profiler = Profiler::new(pattern, block);
    let mut out = Estimates::default();
    profiler.push(series, &mut out);
    profiler.finish(&mut out);
    out.0
}
