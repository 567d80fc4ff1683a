//! The similarity index: which jobs' series look like a given one (whole matching).
//!
//! Each job's series of one channel is resampled to `length` points ([`series`]) and
//! kept as an [`Entry`] ([`spectrum`]): its mean, standard deviation and first
//! `coefficients` DFT coefficients, from which a lower bound of the distance to any
//! query follows (Parseval). [`knn`] answers the k nearest jobs, or all within a
//! distance, exactly: lower bounds for every job in one flat scan, then the candidates
//! refined in increasing bound order with early abandoning until no bound can beat the
//! k-th best distance. [`knn::brute_force`] is the oracle every answer is held to.
//!
//! # The available engines
//!
//! | engine | reads | wins when | cannot |
//! |---|---|---|---|
//! | scan ([`knn::brute_force`]) | every job's series | no index; tiny catalogues | — |
//! | index ([`knn::Nearest`]) | every entry, the series of the candidates | the bounds are tight (smooth series: random walks, sensor curves) | prune white noise (its energy is spread over all coefficients: it refines nearly every job, and costs about what a scan costs) |
//! | xcorr scan ([`vptree::brute_force`]) | every job's series | `--metric xcorr` without an index | — |
//! | vantage-point tree ([`vptree::Search`]) | the tree, the series of the candidates | `--metric xcorr` on clustered data (shapes that recur, shifted) | prune when every job is about as far from every other (then it computes nearly every distance) |
//! | iSAX ([`isax::Approx`]) | the tree of every job's word, the series in the leaves visited | an approximate answer is enough: a budget of examined series bounds the cost (z-normalised only) | promise exactness on a budget (it says when the answer is proven exact) |
//!
//! [`xcorr`] is the kernelized cross-correlation distance (blind to circular shifts), a
//! pseudometric that [`vptree`] prunes by the triangle inequality.
//!
//! Distances: z-normalised Euclidean (population σ; a constant series z-normalises to
//! all zeros, so its distance to a series `y` is ‖ẑ(y)‖, √n for a non-constant `y` and 0
//! for another constant one) or plain Euclidean. Ties are ordered by distance, then
//! device id, then job start.

pub mod isax;
pub mod knn;
pub mod series;
pub mod spectrum;
pub mod vptree;
pub mod xcorr;

pub use knn::{brute_force, Best, Index, Key, Match, Nearest, Outcome, Query};
pub use spectrum::{Entry, Spectrum};

use std::fmt;

/// The parameters of a similarity index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Points each series is resampled to.
    pub length: usize,
    /// DFT coefficients kept (`k = 1..=coefficients`).
    pub coefficients: usize,
}

/// Why parameters are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// `length` below [`series::MIN_POINTS`] or above a million.
    #[error("length {0} is out of range (4 to 1000000)")]
    Length(usize),
    /// `coefficients` zero or above `length / 2`.
    #[error("coefficients {coefficients} is out of range (1 to length/2 = {max})")]
    Coefficients {
        /// As given.
        coefficients: usize,
        /// The largest allowed.
        max: usize,
    },
}

impl Params {
    /// Checked parameters.
    ///
    /// # Errors
    /// [`ParamsError`] naming the parameter out of range.
    pub fn new(length: usize, coefficients: usize) -> Result<Params, ParamsError> {
        if !(series::MIN_POINTS..=1_000_000).contains(&length) {
            return Err(ParamsError::Length(length));
        }
        if coefficients == 0 || coefficients > length / 2 {
            return Err(ParamsError::Coefficients {
                coefficients,
                max: length / 2,
            });
        }
        Ok(Params {
            length,
            coefficients,
        })
    }

    /// Read back from [`Params`]'s `Display` (`length=256 coefficients=8`).
    pub fn parse(text: &str) -> Option<Params> {
        let mut length = None;
        let mut coefficients = None;
        for word in text.split_whitespace() {
            match word.split_once('=') {
                Some(("length", v)) => length = v.parse().ok(),
                Some(("coefficients", v)) => coefficients = v.parse().ok(),
                _ => {}
            }
        }
        Params::new(length?, coefficients?).ok()
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "length={} coefficients={}",
            self.length, self.coefficients
        )
    }
}

/// The distance between series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Metric {
    /// Euclidean distance between the z-normalised series (population σ).
    #[default]
    ZNorm,
    /// Plain Euclidean distance.
    Euclid,
}

impl Metric {
    /// As the command line spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::ZNorm => "znorm",
            Metric::Euclid => "euclid",
        }
    }
}

/// Test series of a few shapes, by the position `i % period`: constants (0), a
/// duplicate of the series two before (1), white noise (2), random walks (the rest).
#[cfg(test)]
pub(crate) fn test_series(seed: u64, n: usize, count: usize, period: usize) -> Vec<Vec<f64>> {
    let mut s = seed.wrapping_mul(2).wrapping_add(1);
    let mut rnd = move || {
        s = s
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
    };
    let mut out: Vec<Vec<f64>> = Vec::new();
    for i in 0..count {
        let v = match i % period {
            0 => vec![rnd() * 4.0; n],
            1 if i > 2 => out[i - 2].clone(),
            2 => (0..n).map(|_| rnd()).collect(),
            _ => {
                let mut x = rnd() * 10.0;
                (0..n)
                    .map(|_| {
                        x += rnd();
                        x
                    })
                    .collect()
            }
        };
        out.push(v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_checked_and_read_back() {
        let p = Params::new(256, 8).unwrap();
        assert_eq!(p.to_string(), "length=256 coefficients=8");
        assert_eq!(Params::parse(&p.to_string()), Some(p));
        assert_eq!(Params::new(3, 1), Err(ParamsError::Length(3)));
        assert!(Params::new(16, 9).is_err() && Params::new(16, 0).is_err());
        assert_eq!(Params::parse("length=16"), None);
    }
}
