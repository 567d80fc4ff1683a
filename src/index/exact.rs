//! An exact sum of `f64` values: the window sums and means of the search are compared
//! with their threshold as real numbers, without rounding, so that every engine (and the
//! brute-force oracle) gives the same answer however it adds and removes values.
//!
//! The sum is kept in fixed point over every bit an `f64` can hold (2^-1074 up to
//! 2^1024), in 32-bit digits stored in `i64` so additions carry lazily.

use std::cmp::Ordering;

/// 32-bit digits: bit 0 is 2^-1074; the largest product `x · count` reaches bit ~2163.
const LIMBS: usize = 72;
/// Normalise the digits after this many additions (each adds < 2^32 to a digit).
const RENORMALISE: u32 = 1 << 29;

/// An exact sum of finite `f64` values, and counts of the non-finite ones.
#[derive(Debug, Clone)]
pub struct ExactSum {
    limbs: [i64; LIMBS],
    /// Lowest and highest digit touched since the last reset.
    lo: usize,
    hi: usize,
    /// Additions since the last normalisation.
    pending: u32,
    /// How many `+inf`, `-inf` and NaN values are in the sum.
    pos_inf: i64,
    neg_inf: i64,
    nan: i64,
}

impl Default for ExactSum {
    fn default() -> Self {
        ExactSum::new()
    }
}

/// The mantissa and the bit position of `|v|` (finite, non-zero).
fn decompose(v: f64) -> (u64, usize) {
    let bits = v.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as usize;
    let frac = bits & ((1 << 52) - 1);
    if exp == 0 {
        (frac, 0)
    } else {
        (frac | (1 << 52), exp - 1)
    }
}

impl ExactSum {
    /// Zero.
    pub fn new() -> ExactSum {
        ExactSum {
            limbs: [0; LIMBS],
            lo: LIMBS,
            hi: 0,
            pending: 0,
            pos_inf: 0,
            neg_inf: 0,
            nan: 0,
        }
    }

    /// Adds `v`.
    pub fn add(&mut self, v: f64) {
        self.add_signed(v, 1);
    }

    /// Removes `v` (added before).
    pub fn sub(&mut self, v: f64) {
        self.add_signed(v, -1);
    }

    fn add_signed(&mut self, v: f64, sign: i64) {
        if v.is_nan() {
            self.nan += sign;
        } else if v == f64::INFINITY {
            self.pos_inf += sign;
        } else if v == f64::NEG_INFINITY {
            self.neg_inf += sign;
        } else if v != 0.0 {
            let (m, bit) = decompose(v);
            self.add_bits(u128::from(m), bit, (v < 0.0) != (sign < 0));
        }
    }

    /// Adds `±m · 2^(bit - 1074)`.
    fn add_bits(&mut self, mut m: u128, mut bit: usize, negative: bool) {
        if self.pending >= RENORMALISE {
            self.normalise();
        }
        self.pending += 1;
        self.lo = self.lo.min(bit / 32);
        while m != 0 {
            let chunk = (m & 0xffff_ffff) as u64;
            let shifted = chunk << (bit % 32);
            let k = bit / 32;
            let (low, high) = ((shifted & 0xffff_ffff) as i64, (shifted >> 32) as i64);
            if negative {
                self.limbs[k] -= low;
                self.limbs[k + 1] -= high;
            } else {
                self.limbs[k] += low;
                self.limbs[k + 1] += high;
            }
            self.hi = self.hi.max(k + 1);
            m >>= 32;
            bit += 32;
        }
    }

    /// Carries every digit below the top one into `[0, 2^32)`; the top digit keeps the
    /// sign.
    fn normalise(&mut self) {
        self.pending = 0;
        if self.lo > self.hi {
            return;
        }
        let mut k = self.lo;
        loop {
            let carry = self.limbs[k] >> 32;
            // Above the old top, stop where the digit can stand as the signed top.
            if k >= self.hi && carry == 0 || k + 1 == LIMBS {
                break;
            }
            if k >= self.hi && self.limbs[k].abs() < (1 << 32) {
                break;
            }
            self.limbs[k] -= carry << 32;
            self.limbs[k + 1] += carry;
            k += 1;
        }
        self.hi = k;
    }

    /// The sign of the sum's finite part after normalising.
    fn finite_sign(&mut self) -> Ordering {
        self.normalise();
        if self.lo > self.hi {
            return Ordering::Equal;
        }
        match self.limbs[self.hi].cmp(&0) {
            Ordering::Equal => {
                if self.limbs[self.lo..self.hi].iter().any(|&d| d != 0) {
                    Ordering::Greater
                } else {
                    Ordering::Equal
                }
            }
            o => o,
        }
    }

    /// How the sum compares with `x · count` (`x` finite), `None` when the sum is NaN
    /// (a NaN value, or both infinities).
    pub fn cmp_scaled(&mut self, x: f64, count: u64) -> Option<Ordering> {
        if self.nan > 0 || (self.pos_inf > 0 && self.neg_inf > 0) {
            return None;
        }
        if self.pos_inf > 0 {
            return Some(Ordering::Greater);
        }
        if self.neg_inf > 0 {
            return Some(Ordering::Less);
        }
        if x == 0.0 || count == 0 {
            return Some(self.finite_sign());
        }
        let (m, bit) = decompose(x);
        let product = u128::from(m) * u128::from(count);
        self.add_bits(product, bit, x > 0.0);
        let sign = self.finite_sign();
        self.add_bits(product, bit, x < 0.0);
        Some(sign)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(values: &[f64], x: f64, count: u64) -> Option<Ordering> {
        let mut s = ExactSum::new();
        for v in values {
            s.add(*v);
        }
        s.cmp_scaled(x, count)
    }

    #[test]
    fn sums_are_exact() {
        // 0.1 + 0.2 is a little more than 0.3 as doubles, exactly.
        assert_eq!(cmp(&[0.1, 0.2], 0.3, 1), Some(Ordering::Greater));
        assert_eq!(cmp(&[0.5, 0.25], 0.75, 1), Some(Ordering::Equal));
        assert_eq!(
            cmp(&[1e300, -1e300, 1e-300], 0.0, 1),
            Some(Ordering::Greater)
        );
        assert_eq!(cmp(&[1e300, 1.0, -1e300], 1.0, 1), Some(Ordering::Equal));
        assert_eq!(cmp(&[-5e-324, 0.0], 0.0, 1), Some(Ordering::Less));
        assert_eq!(cmp(&[3.0, 4.0, 5.0], 4.0, 3), Some(Ordering::Equal));
        assert_eq!(cmp(&[3.0, 4.0, 5.5], 4.0, 3), Some(Ordering::Greater));
        assert_eq!(cmp(&[-3.0, -4.0, -5.0], -4.0, 3), Some(Ordering::Equal));
        assert_eq!(
            cmp(&[f64::MAX, f64::MAX], f64::MAX, 2),
            Some(Ordering::Equal)
        );
        assert_eq!(cmp(&[f64::INFINITY, 1.0], 5.0, 2), Some(Ordering::Greater));
        assert_eq!(cmp(&[f64::INFINITY, f64::NEG_INFINITY], 5.0, 2), None);
        assert_eq!(cmp(&[f64::NAN], 5.0, 1), None);
    }

    #[test]
    fn adding_and_removing_agrees_with_integers() {
        // Integer-valued doubles sum exactly in i128: compare at every step.
        let mut s = ExactSum::new();
        let mut exact: i128 = 0;
        let mut window = std::collections::VecDeque::new();
        let mut seed: u64 = 42;
        for _ in 0..20_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = ((seed >> 11) % 2_000_001) as i64 - 1_000_000;
            let v = v * (1 << (seed % 20));
            s.add(v as f64);
            exact += i128::from(v);
            window.push_back(v);
            if window.len() > 37 {
                let old = window.pop_front().unwrap_or(0);
                s.sub(old as f64);
                exact -= i128::from(old);
            }
            let probe = (seed % 7) as i64 - 3 + (exact / window.len() as i128) as i64;
            let want = exact.cmp(&(i128::from(probe) * window.len() as i128));
            assert_eq!(s.cmp_scaled(probe as f64, window.len() as u64), Some(want));
        }
    }
}
