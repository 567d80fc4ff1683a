//! The index entry of one series: its mean, its standard deviation and its first DFT
//! coefficients, scaled so that the Euclidean distance between the coefficients of two
//! series never exceeds the distance between the series (a lower bound, by Parseval).
//!
//! With the orthonormal DFT `X_k = (1/√n) Σ_m x_m e^{-2πikm/n}`, Parseval gives
//! `‖x − y‖² = Σ_{k<n} |X_k − Y_k|²`. For real series `X_{n−k}` is the conjugate of
//! `X_k`, so coefficient `k` (0 < k < n/2) stands for two terms of that sum, `n/2` (n
//! even) for one. Keeping `k = 1..=c` (`c ≤ n/2`):
//!
//! - plain Euclidean: `‖x − y‖² ≥ n(μx − μy)² + Σ_{k=1..c} w_k |X_k − Y_k|²`
//!   (`X_0 = √n·μ`);
//! - z-normalised: `ẑ(x)` has `Ẑ_0 = 0` and `Ẑ_k = X_k / σx`, so
//!   `‖ẑ(x) − ẑ(y)‖² ≥ Σ_{k=1..c} w_k |X_k/σx − Y_k/σy|²` (a constant series has
//!   `ẑ = 0`, all coefficients 0);
//!
//! with `w_k = 2`, or 1 for `k = n/2`. The index keeps the terms pre-multiplied by
//! `√w_k` so the bound is a plain Euclidean distance between flat vectors.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

use super::series::{is_constant, mean_sigma};
use super::Params;

/// One series' entry: what the index stores per job.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The resampled series' mean.
    pub mean: f32,
    /// Its population standard deviation.
    pub sigma: f32,
    /// `Re X_k, Im X_k` for `k = 1..=c` (orthonormal DFT of the raw resampled values).
    pub coefs: Vec<f32>,
}

/// Why stored entry bytes cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an entry of {got} bytes where {want} were expected (rebuild the index)")]
pub struct EntryBytesError {
    got: usize,
    want: usize,
}

impl Entry {
    /// The entry as stored: `mean, sigma, coefs…` as little-endian f32.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 * (2 + self.coefs.len()));
        for v in [self.mean, self.sigma].iter().chain(&self.coefs) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// An entry of `coefficients` coefficients read back from [`Entry::to_bytes`].
    ///
    /// # Errors
    /// [`EntryBytesError`] when the length does not fit.
    pub fn from_bytes(bytes: &[u8], coefficients: usize) -> Result<Entry, EntryBytesError> {
        let want = 4 * (2 + 2 * coefficients);
        if bytes.len() != want {
            return Err(EntryBytesError {
                got: bytes.len(),
                want,
            });
        }
        let mut v = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        let mean = v.next().unwrap_or(0.0);
        let sigma = v.next().unwrap_or(0.0);
        Ok(Entry {
            mean,
            sigma,
            coefs: v.collect(),
        })
    }

    /// An entry of `coefficients` coefficients read from the start of `bytes`, and the
    /// bytes after it (what a store appends, e.g. an iSAX word).
    ///
    /// # Errors
    /// [`EntryBytesError`] when there are fewer bytes than an entry.
    pub fn from_bytes_prefix(
        bytes: &[u8],
        coefficients: usize,
    ) -> Result<(Entry, &[u8]), EntryBytesError> {
        let want = 4 * (2 + 2 * coefficients);
        if bytes.len() < want {
            return Err(EntryBytesError {
                got: bytes.len(),
                want,
            });
        }
        let (head, tail) = bytes.split_at(want);
        Ok((Entry::from_bytes(head, coefficients)?, tail))
    }

    /// The bound vector for z-normalised distance (`√w_k · X_k/σ`, zeros for a
    /// constant series), appended to `out` (`2c` values).
    pub fn push_znorm(&self, params: &Params, out: &mut Vec<f32>) {
        let constant = is_constant(f64::from(self.mean), f64::from(self.sigma));
        for (i, c) in self.coefs.iter().enumerate() {
            if constant {
                out.push(0.0);
            } else {
                let k = i / 2 + 1;
                let w = weight(params.length, k);
                out.push((f64::from(*c) * w / f64::from(self.sigma)) as f32);
            }
        }
    }

    /// The bound vector for plain Euclidean distance (`√n·μ`, then `√w_k · X_k`),
    /// appended to `out` (`2c + 1` values).
    pub fn push_euclid(&self, params: &Params, out: &mut Vec<f32>) {
        out.push(((params.length as f64).sqrt() * f64::from(self.mean)) as f32);
        for (i, c) in self.coefs.iter().enumerate() {
            let k = i / 2 + 1;
            out.push((f64::from(*c) * weight(params.length, k)) as f32);
        }
    }
}

/// `√w_k`: √2 for `0 < k < n/2`, 1 for `k = n/2`.
fn weight(n: usize, k: usize) -> f64 {
    if 2 * k == n {
        1.0
    } else {
        std::f64::consts::SQRT_2
    }
}

/// Computes entries of series of one length (keeps the FFT plan and its buffers).
pub struct Spectrum {
    params: Params,
    fft: Arc<dyn RealToComplex<f64>>,
    input: Vec<f64>,
    output: Vec<realfft::num_complex::Complex<f64>>,
    scratch: Vec<realfft::num_complex::Complex<f64>>,
}

impl std::fmt::Debug for Spectrum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spectrum")
            .field("params", &self.params)
            .finish()
    }
}

impl Spectrum {
    /// A spectrum for series of `params.length` values.
    pub fn new(params: Params) -> Spectrum {
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(params.length);
        let input = fft.make_input_vec();
        let output = fft.make_output_vec();
        let scratch = fft.make_scratch_vec();
        Spectrum {
            params,
            fft,
            input,
            output,
            scratch,
        }
    }

    /// The entry of `values` (`params.length` of them, resampled, not normalised).
    pub fn entry(&mut self, values: &[f64]) -> Entry {
        let (mean, sigma) = mean_sigma(values);
        let n = self.params.length;
        self.input.clear();
        self.input.extend_from_slice(&values[..n.min(values.len())]);
        self.input.resize(n, 0.0);
        // The lengths are the plan's own: the transform cannot fail.
        let ok = self
            .fft
            .process_with_scratch(&mut self.input, &mut self.output, &mut self.scratch)
            .is_ok();
        debug_assert!(ok);
        let scale = 1.0 / (n as f64).sqrt();
        let mut coefs = Vec::with_capacity(2 * self.params.coefficients);
        for k in 1..=self.params.coefficients {
            let c = self.output.get(k).copied().unwrap_or_default();
            coefs.push((c.re * scale) as f32);
            coefs.push((c.im * scale) as f32);
        }
        Entry {
            mean: mean as f32,
            sigma: sigma as f32,
            coefs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::series::znormalise;
    use super::*;

    fn walk(seed: &mut u64, n: usize) -> Vec<f64> {
        let mut x = 0.0;
        (0..n)
            .map(|_| {
                *seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                x += ((*seed >> 11) as f64 / (1u64 << 53) as f64) - 0.5;
                x
            })
            .collect()
    }

    fn dist(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(x - y).powi(2))
            .sum::<f64>()
            .sqrt()
    }

    #[test]
    fn bounds_never_exceed_the_true_distance_and_all_coefficients_are_exact() {
        let mut seed = 7;
        for (n, c) in [(16, 8), (17, 8), (64, 4), (256, 8)] {
            let params = Params {
                length: n,
                coefficients: c,
            };
            let mut s = Spectrum::new(params);
            for _ in 0..50 {
                let x = walk(&mut seed, n);
                let y = walk(&mut seed, n);
                let (ex, ey) = (s.entry(&x), s.entry(&y));
                let (mut bx, mut by) = (Vec::new(), Vec::new());
                ex.push_euclid(&params, &mut bx);
                ey.push_euclid(&params, &mut by);
                let euclid: f64 = x.iter().zip(&y).map(|(a, b)| (a - b).powi(2)).sum();
                let lb = dist(&bx, &by);
                assert!(lb <= euclid.sqrt() * (1.0 + 1e-5) + 1e-4, "{lb} {euclid}");
                if 2 * c >= n {
                    // Every coefficient kept: the bound is the distance.
                    assert!((lb - euclid.sqrt()).abs() < 1e-3 * euclid.sqrt().max(1.0));
                }
                let (mut zx, mut zy) = (x.clone(), y.clone());
                znormalise(&mut zx);
                znormalise(&mut zy);
                let z: f64 = zx.iter().zip(&zy).map(|(a, b)| (a - b).powi(2)).sum();
                let (mut bx, mut by) = (Vec::new(), Vec::new());
                ex.push_znorm(&params, &mut bx);
                ey.push_znorm(&params, &mut by);
                let lb = dist(&bx, &by);
                assert!(lb <= z.sqrt() * (1.0 + 1e-5) + 1e-4, "{lb} {z}");
            }
        }
    }

    #[test]
    fn entries_round_trip_their_bytes() {
        let params = Params {
            length: 32,
            coefficients: 3,
        };
        let mut seed = 1;
        let e = Spectrum::new(params).entry(&walk(&mut seed, 32));
        assert_eq!(Entry::from_bytes(&e.to_bytes(), 3).unwrap(), e);
        assert!(Entry::from_bytes(&e.to_bytes(), 4).is_err());
    }
}
