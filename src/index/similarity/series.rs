//! A job's series as the similarity index sees it: its numbers resampled linearly over
//! time to a fixed length, and z-normalised on request.

use crate::index::{Micros, Point};

/// The fewest numbers a series may hold: fewer say nothing about a shape.
pub const MIN_POINTS: usize = 4;

/// A series resampled to a fixed length.
#[derive(Debug, Clone, PartialEq)]
pub struct Resampled {
    /// The values, evenly spaced over the series' time span.
    pub values: Vec<f64>,
    /// Values left out because they are not numbers (strings, vectors, NaN).
    pub dropped: u64,
}

/// Why a series cannot be resampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SeriesError {
    /// Fewer than [`MIN_POINTS`] numbers.
    #[error("holds {numbers} number(s); at least {MIN_POINTS} are needed")]
    TooFew {
        /// The numbers it holds.
        numbers: usize,
    },
}

/// `points` (in time order) resampled to `length` values: the numbers are interpolated
/// linearly at `length` evenly spaced times from the first number's time to the last's.
/// A series of exactly `length` evenly spaced numbers is taken as it is; when every
/// number has the same time, they are taken as evenly spaced by position.
///
/// # Errors
/// [`SeriesError::TooFew`] with fewer than [`MIN_POINTS`] numbers.
pub fn resample(points: &[Point], length: usize) -> Result<Resampled, SeriesError> {
    let numbers: Vec<(Micros, f64)> = points
        .iter()
        .filter_map(|p| p.value().map(|v| (p.t, v)))
        .collect();
    let dropped = (points.len() - numbers.len()) as u64;
    if numbers.len() < MIN_POINTS {
        return Err(SeriesError::TooFew {
            numbers: numbers.len(),
        });
    }
    let t0 = numbers[0].0;
    let t1 = numbers[numbers.len() - 1].0;
    let values = if t0 == t1 {
        let v: Vec<f64> = numbers.iter().map(|n| n.1).collect();
        resample_values(&v, length)
    } else {
        let even = numbers.len() == length && {
            let step = numbers[1].0 - t0;
            numbers.windows(2).all(|w| w[1].0 - w[0].0 == step)
        };
        if even {
            numbers.iter().map(|n| n.1).collect()
        } else {
            interpolate(&numbers, length)
        }
    };
    Ok(Resampled { values, dropped })
}

/// `values`, taken as evenly spaced, resampled to `length` values (as they are when
/// there are `length` of them).
///
/// # Errors
/// [`SeriesError::TooFew`] with fewer than [`MIN_POINTS`] values.
pub fn resample_even(values: &[f64], length: usize) -> Result<Vec<f64>, SeriesError> {
    if values.len() < MIN_POINTS {
        return Err(SeriesError::TooFew {
            numbers: values.len(),
        });
    }
    Ok(resample_values(values, length))
}

fn resample_values(values: &[f64], length: usize) -> Vec<f64> {
    if values.len() == length {
        return values.to_vec();
    }
    let numbers: Vec<(f64, f64)> = values
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as f64, v))
        .collect();
    interpolate_f(&numbers, length)
}

fn interpolate(numbers: &[(Micros, f64)], length: usize) -> Vec<f64> {
    let t0 = numbers[0].0;
    // Relative times keep the precision of f64 for any epoch.
    let rel: Vec<(f64, f64)> = numbers.iter().map(|&(t, v)| ((t - t0) as f64, v)).collect();
    interpolate_f(&rel, length)
}

/// Linear interpolation of `(x, y)` (x non-decreasing, at least two points, the last x
/// larger than the first) at `length` evenly spaced x from the first to the last.
fn interpolate_f(numbers: &[(f64, f64)], length: usize) -> Vec<f64> {
    let (x0, x1) = (numbers[0].0, numbers[numbers.len() - 1].0);
    let mut out = Vec::with_capacity(length);
    let mut i = 0;
    for j in 0..length {
        let x = if j + 1 == length || length == 1 {
            if length == 1 {
                x0
            } else {
                x1
            }
        } else {
            x0 + (x1 - x0) * j as f64 / (length - 1) as f64
        };
        while i + 2 < numbers.len() && numbers[i + 1].0 <= x {
            i += 1;
        }
        let (a, b) = (numbers[i], numbers[i + 1]);
        let y = if x <= a.0 {
            a.1
        } else if x >= b.0 || b.0 == a.0 {
            b.1
        } else {
            a.1 + (b.1 - a.1) * (x - a.0) / (b.0 - a.0)
        };
        out.push(y);
    }
    out
}

/// The mean and the population standard deviation of `values`.
pub fn mean_sigma(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var.max(0.0).sqrt())
}

/// Below this share of the mean's magnitude (or absolutely, near zero), a standard
/// deviation is rounding noise: the series counts as constant.
const CONSTANT: f64 = 1e-12;

/// Whether a series with this mean and standard deviation counts as constant (its
/// z-normalised form is all zeros).
pub fn is_constant(mean: f64, sigma: f64) -> bool {
    sigma <= CONSTANT * mean.abs().max(1.0)
}

/// `values` z-normalised in place (population σ). A constant series becomes all zeros,
/// so its z-normalised distance to any series `y` is ‖ẑ(y)‖ (√n when `y` is not
/// constant, 0 when it is).
pub fn znormalise(values: &mut [f64]) {
    let (mean, sigma) = mean_sigma(values);
    if is_constant(mean, sigma) {
        values.iter_mut().for_each(|v| *v = 0.0);
    } else {
        values.iter_mut().for_each(|v| *v = (*v - mean) / sigma);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: Micros, v: f64) -> Point {
        Point { t, v: Some(v) }
    }

    #[test]
    fn evenly_spaced_series_of_the_length_are_taken_as_they_are() {
        let pts: Vec<Point> = (0..8).map(|i| p(i * 10, (i * i) as f64 + 0.1)).collect();
        let r = resample(&pts, 8).unwrap();
        assert_eq!(
            r.values,
            pts.iter().map(|p| p.v.unwrap()).collect::<Vec<_>>()
        );
        assert_eq!(r.dropped, 0);
    }

    #[test]
    fn resampling_is_linear_over_time_and_counts_what_it_drops() {
        let pts = vec![
            p(0, 0.0),
            Point { t: 1, v: None },
            p(10, 10.0),
            p(20, 0.0),
            Point {
                t: 25,
                v: Some(f64::NAN),
            },
            p(40, 20.0),
        ];
        let r = resample(&pts, 5).unwrap();
        assert_eq!(r.values, vec![0.0, 10.0, 0.0, 10.0, 20.0]);
        assert_eq!(r.dropped, 2);
        assert_eq!(
            resample(&pts[..4], 5).unwrap_err(),
            SeriesError::TooFew { numbers: 3 }
        );
    }

    #[test]
    fn same_times_and_plain_values_resample_by_position() {
        let pts: Vec<Point> = (0..4).map(|i| p(7, i as f64)).collect();
        assert_eq!(
            resample(&pts, 7).unwrap().values,
            vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
        );
        assert_eq!(resample_even(&[0.0, 2.0, 4.0, 6.0], 7).unwrap()[1], 1.0);
        assert!(resample_even(&[1.0, 2.0, 3.0], 7).is_err());
    }

    #[test]
    fn a_constant_series_z_normalises_to_zeros() {
        let mut c = vec![3.0; 6];
        znormalise(&mut c);
        assert_eq!(c, vec![0.0; 6]);
        let mut x = vec![1.0, 2.0, 3.0, 4.0];
        znormalise(&mut x);
        let (m, s) = mean_sigma(&x);
        assert!(m.abs() < 1e-12 && (s - 1.0).abs() < 1e-12);
    }
}
