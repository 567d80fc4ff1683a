//! The kernelized cross-correlation distance (Wachman et al., ECML 2009; the notebook's
//! `corr` procedure): a distance between series that does not see circular shifts.
//!
//! Both series are standardised (population σ; see below for a constant series), then
//! for every circular lag `k`
//!
//! ```text
//! cc_k   = (1/n) · Σ_m x[(m + k) mod n] · y[m]
//! K(x,y) = Σ_k exp(γ · cc_k)
//! K̂      = K(x,y) / √(K(x,x) · K(y,y))
//! d      = √(2 · (1 − K̂))
//! ```
//!
//! `K` is a positive-definite kernel, so `d` is the distance between the normalised
//! images of the series in its feature space: symmetric, 0 for a circular shift of the
//! same series, and it satisfies the triangle inequality (a pseudometric, which is what
//! the [vantage-point tree](super::vptree) needs). `d` lies in `[0, √2]`.
//!
//! **How it is computed.** All `n` values `cc_k` come from one inverse real FFT of
//! `X·conj(Y)` (`X`, `Y` the spectra of the standardised series). `realfft` does not
//! divide by `n` in either direction, so the inverse holds `n²·cc_k`: it is divided by
//! `n²` (forgetting this makes `cc` `n` times too large and `exp` overflow). `K` is kept
//! as its logarithm (log-sum-exp shifted by the largest term), so nothing overflows for
//! any `γ`, and `1 − K̂ = −expm1(log K̂)` keeps its precision near 0. Each series is
//! [prepared](Xcorr::prepare) once — its spectrum and `log K(x,x)` — so one distance is
//! one complex product and one inverse FFT.
//!
//! **A constant series** (σ = 0) standardises to all zeros, like the z-normalised
//! distance's: every `cc_k` is 0, so `K(c, y) = n` for any `y`, and `d(c, c') = 0`
//! between constant series while `d(c, y) = √(2 · (1 − √(n / K(y,y))))` for a
//! non-constant `y` (`K(y,y) ≥ n` by Jensen's inequality, since the `cc_k` of a
//! standardised series average 0). The zero series is a point of the same feature
//! space, so the triangle inequality still holds.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use super::series::znormalise;

/// The default `γ` (the notebook's `corr`).
pub const DEFAULT_GAMMA: f64 = 5.0;

/// The `γ` recorded in an index's parameters text (`… gamma=5 …`); `None` when the
/// text has none (an index built before the distance existed) or it is not a finite
/// number > 0.
pub fn gamma_in(params: &str) -> Option<f64> {
    params
        .split_whitespace()
        .find_map(|w| w.strip_prefix("gamma="))
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|g| g.is_finite() && *g > 0.0)
}

/// A series made ready for distances: its spectrum and `log K(x,x)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// The real FFT of the standardised series (`n/2 + 1` values).
    spectrum: Vec<Complex<f64>>,
    /// `log K(x,x)`.
    self_log: f64,
}

impl Prepared {
    /// Bytes held in memory.
    pub fn bytes(&self) -> usize {
        self.spectrum.len() * std::mem::size_of::<Complex<f64>>() + 8
    }
}

/// Computes distances between series of one length with one `γ` (keeps the FFT plans
/// and their buffers).
pub struct Xcorr {
    n: usize,
    gamma: f64,
    forward: Arc<dyn RealToComplex<f64>>,
    inverse: Arc<dyn ComplexToReal<f64>>,
    real: Vec<f64>,
    product: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
}

impl std::fmt::Debug for Xcorr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Xcorr")
            .field("n", &self.n)
            .field("gamma", &self.gamma)
            .finish()
    }
}

impl Clone for Xcorr {
    fn clone(&self) -> Xcorr {
        Xcorr::new(self.n, self.gamma)
    }
}

impl Xcorr {
    /// For series of `n` values (n ≥ 1) and `gamma` (finite, > 0: checked by the
    /// configuration).
    pub fn new(n: usize, gamma: f64) -> Xcorr {
        let mut planner = RealFftPlanner::<f64>::new();
        let forward = planner.plan_fft_forward(n);
        let inverse = planner.plan_fft_inverse(n);
        let scratch_len = forward
            .get_scratch_len()
            .max(inverse.get_scratch_len())
            .max(1);
        Xcorr {
            n,
            gamma,
            real: forward.make_input_vec(),
            product: forward.make_output_vec(),
            scratch: vec![Complex::default(); scratch_len],
            forward,
            inverse,
        }
    }

    /// The series length.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the series are empty (never: `n ≥ 1`).
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// `γ`.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    /// `values` (n of them, raw: resampled, not normalised) standardised, as
    /// [`prepare_standardised`](Self::prepare_standardised) wants them.
    pub fn standardise(&self, values: &[f64]) -> Vec<f64> {
        let mut v: Vec<f64> = values.iter().copied().take(self.n).collect();
        v.resize(self.n, 0.0);
        znormalise(&mut v);
        v
    }

    /// `values` (raw) made ready for distances.
    pub fn prepare(&mut self, values: &[f64]) -> Prepared {
        let z = self.standardise(values);
        self.prepare_standardised(&z)
    }

    /// An already standardised series (as [`standardise`](Self::standardise) returns
    /// it) made ready for distances: the same bits give the same [`Prepared`].
    pub fn prepare_standardised(&mut self, z: &[f64]) -> Prepared {
        self.real.clear();
        self.real.extend_from_slice(&z[..self.n.min(z.len())]);
        self.real.resize(self.n, 0.0);
        let mut spectrum = self.forward.make_output_vec();
        // The lengths are the plan's own: the transform cannot fail.
        let ok = self
            .forward
            .process_with_scratch(&mut self.real, &mut spectrum, &mut self.scratch)
            .is_ok();
        debug_assert!(ok);
        let mut p = Prepared {
            spectrum,
            self_log: 0.0,
        };
        p.self_log = self.log_kernel(&p, &p);
        p
    }

    /// The standardised series a prepared one stands for (its inverse FFT; equal to
    /// the series it was prepared from but for rounding).
    pub fn series_of(&mut self, p: &Prepared) -> Vec<f64> {
        self.product.copy_from_slice(&p.spectrum);
        self.product[0].im = 0.0;
        if self.n.is_multiple_of(2) {
            if let Some(last) = self.product.last_mut() {
                last.im = 0.0;
            }
        }
        let ok = self
            .inverse
            .process_with_scratch(&mut self.product, &mut self.real, &mut self.scratch)
            .is_ok();
        debug_assert!(ok);
        let n = self.n as f64;
        self.real.iter().map(|v| v / n).collect()
    }

    /// `log K(a, b)`.
    fn log_kernel(&mut self, a: &Prepared, b: &Prepared) -> f64 {
        for ((p, x), y) in self.product.iter_mut().zip(&a.spectrum).zip(&b.spectrum) {
            *p = x * y.conj();
        }
        // The imaginary parts the inverse of a real signal ignores (rounding only).
        self.product[0].im = 0.0;
        if self.n.is_multiple_of(2) {
            if let Some(last) = self.product.last_mut() {
                last.im = 0.0;
            }
        }
        let ok = self
            .inverse
            .process_with_scratch(&mut self.product, &mut self.real, &mut self.scratch)
            .is_ok();
        debug_assert!(ok);
        // realfft divides by n in neither direction: the inverse holds n²·cc_k.
        let scale = self.gamma / (self.n as f64 * self.n as f64);
        let max = self
            .real
            .iter()
            .fold(f64::NEG_INFINITY, |m, &c| m.max(c * scale));
        let sum: f64 = self.real.iter().map(|&c| (c * scale - max).exp()).sum();
        max + sum.ln()
    }

    /// The distance between two prepared series.
    pub fn distance(&mut self, a: &Prepared, b: &Prepared) -> f64 {
        let log_hat = self.log_kernel(a, b) - 0.5 * (a.self_log + b.self_log);
        // 1 − K̂, precise near 0; K̂ ≤ 1 but for rounding.
        let one_minus = -(log_hat.min(0.0)).exp_m1();
        (2.0 * one_minus).max(0.0).sqrt()
    }

    /// The distance between two raw series (prepares both: for one-off use).
    pub fn distance_of(&mut self, x: &[f64], y: &[f64]) -> f64 {
        let (a, b) = (self.prepare(x), self.prepare(y));
        self.distance(&a, &b)
    }
}

/// The distance straight from the definition, without FFT, in `O(n²)`: the oracle the
/// FFT path is held to (tests and benchmarks).
pub fn direct_distance(x: &[f64], y: &[f64], gamma: f64) -> f64 {
    let n = x.len().min(y.len());
    let (mut zx, mut zy) = (x[..n].to_vec(), y[..n].to_vec());
    znormalise(&mut zx);
    znormalise(&mut zy);
    let log_k = |a: &[f64], b: &[f64]| {
        let cc: Vec<f64> = (0..n)
            .map(|k| gamma * (0..n).map(|m| a[(m + k) % n] * b[m]).sum::<f64>() / n as f64)
            .collect();
        let max = cc.iter().fold(f64::NEG_INFINITY, |m, &c| m.max(c));
        max + cc.iter().map(|c| (c - max).exp()).sum::<f64>().ln()
    };
    let l = log_k(&zx, &zy) - 0.5 * (log_k(&zx, &zx) + log_k(&zy, &zy));
    (2.0 * -(l.min(0.0)).exp_m1()).max(0.0).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A deterministic generator (splitmix64).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// A random series of one of several shapes: white noise, a random walk, a shifted
    /// noisy copy of `base`, or a constant.
    fn series(rng: &mut Rng, n: usize, base: &[f64]) -> Vec<f64> {
        match rng.below(8) {
            0 => vec![rng.unit() * 10.0; n],
            1 | 2 => (0..n).map(|_| rng.unit() - 0.5).collect(),
            3 | 4 => {
                let mut x = 0.0;
                (0..n)
                    .map(|_| {
                        x += rng.unit() - 0.5;
                        x
                    })
                    .collect()
            }
            _ => {
                let s = rng.below(n);
                let noise = rng.unit() * 0.3;
                (0..n)
                    .map(|i| base[(i + s) % n] * 3.0 + 7.0 + noise * (rng.unit() - 0.5))
                    .collect()
            }
        }
    }

    #[test]
    fn the_fft_path_is_the_definition() {
        let mut rng = Rng(3);
        for n in [4, 5, 8, 17, 32, 64] {
            let base: Vec<f64> = (0..n).map(|_| rng.unit()).collect();
            for gamma in [0.1, 1.0, 5.0, 50.0] {
                let mut xc = Xcorr::new(n, gamma);
                for _ in 0..20 {
                    let (x, y) = (series(&mut rng, n, &base), series(&mut rng, n, &base));
                    let (fast, slow) = (xc.distance_of(&x, &y), direct_distance(&x, &y, gamma));
                    assert!(
                        (fast - slow).abs() < 1e-7,
                        "n {n} γ {gamma}: {fast} vs {slow}"
                    );
                    assert!((0.0..=std::f64::consts::SQRT_2 + 1e-12).contains(&fast));
                }
            }
        }
    }

    #[test]
    fn gamma_is_read_from_the_params_text() {
        assert_eq!(gamma_in("length=256 coefficients=8 gamma=5"), Some(5.0));
        assert_eq!(
            gamma_in("length=16 coefficients=2 gamma=0.25 devices=7"),
            Some(0.25)
        );
        // Written before the distance existed, or out of range.
        assert_eq!(gamma_in("length=256 coefficients=8"), None);
        assert_eq!(gamma_in("length=256 coefficients=8 gamma=-1"), None);
    }

    #[test]
    fn nothing_overflows_for_a_large_gamma() {
        let mut xc = Xcorr::new(256, 1e4);
        let x: Vec<f64> = (0..256).map(|i| (i as f64 * 0.1).sin()).collect();
        let y: Vec<f64> = (0..256).map(|i| (i as f64 * 0.37).cos()).collect();
        let d = xc.distance_of(&x, &y);
        assert!(d.is_finite() && d > 0.0, "{d}");
    }

    #[test]
    fn constant_series_have_their_documented_distance() {
        let n = 16;
        let mut xc = Xcorr::new(n, 5.0);
        let (c, c2) = (vec![3.0; n], vec![-1.0; n]);
        assert_eq!(xc.distance_of(&c, &c2), 0.0);
        let y: Vec<f64> = (0..n).map(|i| ((i * i) % 7) as f64).collect();
        let py = xc.prepare(&y);
        let want = (2.0 * (1.0 - (n as f64 / py.self_log.exp()).sqrt())).sqrt();
        assert!((xc.distance_of(&c, &y) - want).abs() < 1e-12);
        assert!(want > 0.0);
    }

    /// The triangle inequality on `triples` random triples of length 8..=32 (shapes
    /// mixed so that near and far pairs both occur).
    fn triangles(triples: usize, seed: u64) {
        let mut rng = Rng(seed);
        let mut worst = f64::NEG_INFINITY;
        for round in 0..triples / 100 {
            let n = 8 + round % 25;
            let gamma = [5.0, 0.5, 20.0][round % 3];
            let mut xc = Xcorr::new(n, gamma);
            let base: Vec<f64> = (0..n).map(|_| rng.unit()).collect();
            for _ in 0..100 {
                let s: Vec<Prepared> = (0..3)
                    .map(|_| {
                        let v = series(&mut rng, n, &base);
                        xc.prepare(&v)
                    })
                    .collect();
                let (ab, bc, ac) = (
                    xc.distance(&s[0], &s[1]),
                    xc.distance(&s[1], &s[2]),
                    xc.distance(&s[0], &s[2]),
                );
                for (long, a, b) in [(ac, ab, bc), (ab, ac, bc), (bc, ab, ac)] {
                    worst = worst.max(long - (a + b));
                }
            }
        }
        assert!(worst <= 1e-9, "the triangle inequality fails by {worst}");
    }

    /// 100,000 triples: about 6 s in a debug build, well under 1 s in release.
    #[test]
    fn the_triangle_inequality_holds_on_100000_random_triples() {
        triangles(100_000, 12);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn symmetric_and_blind_to_circular_shifts(
            values in proptest::collection::vec(-100.0f64..100.0, 4..64),
            shift in 0usize..64,
            gamma in 0.1f64..20.0,
            other_seed in 0u64..1000,
        ) {
            let n = values.len();
            let mut xc = Xcorr::new(n, gamma);
            let shifted: Vec<f64> = (0..n).map(|i| values[(i + shift) % n]).collect();
            let mut rng = Rng(other_seed);
            let other: Vec<f64> = (0..n).map(|_| rng.unit()).collect();
            let (a, b, c) = (xc.prepare(&values), xc.prepare(&shifted), xc.prepare(&other));
            prop_assert!(xc.distance(&a, &b) < 1e-6, "{}", xc.distance(&a, &b));
            prop_assert_eq!(xc.distance(&a, &a), 0.0);
            prop_assert!((xc.distance(&a, &c) - xc.distance(&c, &a)).abs() < 1e-12);
            prop_assert!((xc.distance(&b, &c) - xc.distance(&a, &c)).abs() < 1e-6);
        }
    }
}
