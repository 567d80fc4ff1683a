//! Subsequence matching: where in one device's rows of a channel a pattern occurs.
//!
//! The rows (numbers only, in time order) are a series `t` of `n` values; the pattern `q`
//! has `m` values; window `j` is `t[j..j + m]`. Its distance to the pattern is
//! ([`Metric`]):
//!
//! - **z-normalised** (default): both sides standardised with their mean and population
//!   σ, then Euclidean. Constant sides (every value equal) follow `stumpy`'s convention:
//!   a constant side standardises to all zeros, so both constant → 0 and one constant →
//!   √m (the other side's z-norm has a squared length of m).
//! - **Euclidean**: the plain Euclidean distance of the raw values.
//!
//! The answer is the top-k *non-overlapping* windows ([`Query`]): all windows in the
//! order (distance, start), taken greedily — a window is taken unless its start lies
//! fewer than `exclusion` rows from one already taken — as `stumpy.match` does; with
//! `within` only windows at distance ≤ D count.
//!
//! # The available engines
//!
//! Every engine answers exactly what [`exact::brute_force`] (an O(n·m) scan) answers,
//! to the bit: each engine only *bounds* distances cheaply and recomputes every window
//! it may keep with the very function the scan uses ([`exact::distance_sq`]).
//!
//! | engine | work | wins when | cannot |
//! |---|---|---|---|
//! | [`profile`] (MASS) | FFT per block + O(1) per window, exact recomputation of windows whose lower bound may qualify | always applies; top-k or range | — |
//! | [`windows`] (sliding-window DFT) | scan of window-feature boxes, exact recomputation of candidates | `within` queries with the Euclidean metric, pattern length a multiple of the window | z-normalised queries (its bound does not hold there), top-k without a radius |
//!
//! The profile engine is *blocked*: it processes the series in blocks of a fixed FFT
//! size (`m − 1` values of overlap), so its memory is bounded for any series length
//! whatever the input; [`select::Selector`] keeps at most `k·(2·exclusion − 1)`
//! windows for a top-k query, enough for the greedy choice (see there).

pub mod exact;
pub mod profile;
pub mod select;
pub mod windows;

/// The distance between the pattern and a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Metric {
    /// Both sides z-normalised (population σ), then Euclidean.
    #[default]
    ZNorm,
    /// The plain Euclidean distance of the raw values.
    Euclid,
}

impl Metric {
    /// The name the command line and the statistics use.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::ZNorm => "znorm",
            Metric::Euclid => "euclid",
        }
    }
}

/// What to find.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Query {
    /// At most this many matches (`None`: every window within `within`).
    pub k: Option<usize>,
    /// Only windows at distance ≤ this.
    pub within: Option<f64>,
    /// Two matches' starts are at least this many rows apart (≥ 1).
    pub exclusion: usize,
    /// The distance.
    pub metric: Metric,
}

/// One match: the window starting at row `start` (0-based in the series).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match {
    /// The window's first row.
    pub start: usize,
    /// Its distance to the pattern.
    pub distance: f64,
}

/// Why a query cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// The pattern is too short to mean anything.
    #[error("the pattern has {0} value(s); at least 4 are needed")]
    ShortPattern(usize),
    /// The pattern holds a value that is not a finite number.
    #[error("the pattern's value {0} is not a finite number")]
    NotANumber(usize),
    /// The series has fewer values than the pattern.
    #[error("the pattern has {m} values but the range holds only {n} number(s)")]
    LongPattern {
        /// Pattern length.
        m: usize,
        /// Numbers in the series.
        n: usize,
    },
    /// `k` is zero.
    #[error("k must be at least 1")]
    ZeroK,
    /// Neither `k` nor `within`.
    #[error("a query needs k, a radius (within), or both")]
    Unbounded,
    /// The exclusion zone is zero.
    #[error("the exclusion zone must be at least 1 row")]
    ZeroExclusion,
    /// A radius that is negative or not a number.
    #[error("the radius {0} is not a non-negative number")]
    BadRadius(f64),
}

impl Query {
    /// Checks the query's own parameters.
    ///
    /// # Errors
    /// [`QueryError`] for `k = 0`, no bound at all, an exclusion of 0, a bad radius.
    pub fn check(&self) -> Result<(), QueryError> {
        if self.k == Some(0) {
            return Err(QueryError::ZeroK);
        }
        if self.k.is_none() && self.within.is_none() {
            return Err(QueryError::Unbounded);
        }
        if self.exclusion == 0 {
            return Err(QueryError::ZeroExclusion);
        }
        if let Some(d) = self.within {
            if !(d >= 0.0 && d.is_finite()) {
                return Err(QueryError::BadRadius(d));
            }
        }
        Ok(())
    }
}

/// Checks a pattern: at least 4 values, all finite.
///
/// # Errors
/// [`QueryError::ShortPattern`], [`QueryError::NotANumber`].
pub fn check_pattern(pattern: &[f64]) -> Result<(), QueryError> {
    if pattern.len() < 4 {
        return Err(QueryError::ShortPattern(pattern.len()));
    }
    if let Some(i) = pattern.iter().position(|v| !v.is_finite()) {
        return Err(QueryError::NotANumber(i + 1));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
