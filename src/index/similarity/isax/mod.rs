//! iSAX: approximate (and, given the budget, exact) nearest neighbours from a tree of
//! multi-resolution SAX words, in the style of iSAX 2.0.
//!
//! Each job's series (resampled to `length` points and z-normalised, as for the exact
//! index) is cut into `word_length` equal segments; each segment's mean (PAA) becomes a
//! symbol of 8 bits: the number of N(0,1) breakpoints `Φ⁻¹(i/256)` (`i = 1..=255`) at
//! or below it ([`word`]). The full 8-bit word is what the store keeps per job
//! (`word_length` bytes). A symbol at cardinality `2^b` is the top `b` bits of the
//! 8-bit one, so one stored word serves every resolution.
//!
//! [`Tree`] groups the words: the root's children are the distinct words at the base
//! cardinality; a leaf holding more than `leaf_capacity` entries splits in two on one
//! segment, by that segment's next bit ([`Split`]); a leaf whose entries cannot be told
//! apart (every segment at 8 bits, or identical words) just grows. Entries are keyed by
//! job ([`Key`]), never by value: two jobs with the same series are two entries.
//!
//! [`Approx`] searches it best first by the iSAX MINDIST lower bound
//! (`√(n/w)·‖dist(PAA(q), regions of the node's word)‖`, which never exceeds the
//! z-normalised Euclidean distance), computing true distances for the series of the
//! leaves it visits, until a budget of examined series is spent or no bound can beat
//! the k-th best — then the answer is exact, and says so.

mod search;
mod tree;
mod view;

pub use search::{Approx, ApproxOutcome};
pub use tree::Tree;
pub use view::{NodeView, TreeView};

use std::fmt;
use std::sync::OnceLock;

use super::series::znormalise;
pub use super::Key;

/// Bits of a full-resolution symbol: cardinality 256.
pub const SYMBOL_BITS: u8 = 8;

/// The default `word_length`: 16 segments (16 points each for the default length 256).
pub const DEFAULT_WORD_LENGTH: usize = 16;
/// The default base cardinality: 2, as iSAX 2.0 (one bit per segment at the root: at
/// most `2^word_length` root children, each refined by binary splits where the data is).
pub const DEFAULT_CARDINALITY: u16 = 2;
/// The default leaf capacity (see `docs/indexes.md` for the measurements behind it).
pub const DEFAULT_LEAF_CAPACITY: usize = 512;

/// How a full leaf chooses the segment it splits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Split {
    /// The segment whose next bit splits the entries most evenly (iSAX 2.0).
    #[default]
    Balanced,
    /// The segments in turn, the one after the parent's split first.
    RoundRobin,
}

impl Split {
    /// As the configuration spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Balanced => "balanced",
            Split::RoundRobin => "round-robin",
        }
    }

    /// Read from [`Split::as_str`].
    pub fn parse(text: &str) -> Option<Split> {
        match text {
            "balanced" => Some(Split::Balanced),
            "round-robin" => Some(Split::RoundRobin),
            _ => None,
        }
    }
}

/// The parameters of an iSAX tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsaxParams {
    /// Segments per word (divides the series length).
    pub word_length: usize,
    /// Base cardinality: symbols per segment at the root's children (a power of two,
    /// 2 to 256).
    pub cardinality: u16,
    /// Entries a leaf holds before it splits.
    pub leaf_capacity: usize,
    /// How a full leaf splits.
    pub split: Split,
}

/// Why iSAX parameters are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IsaxParamsError {
    /// `word_length` zero, above the length, or not dividing it.
    #[error("word_length {word_length} does not divide the series length {length} (1 to {length}, a divisor)")]
    WordLength {
        /// As given.
        word_length: usize,
        /// The series length.
        length: usize,
    },
    /// `cardinality` not a power of two in 2..=256.
    #[error("cardinality {0} is not a power of two from 2 to 256")]
    Cardinality(i64),
    /// `leaf_capacity` zero or above a million.
    #[error("leaf_capacity {0} is out of range (1 to 1000000)")]
    LeafCapacity(i64),
    /// `split` not a known policy.
    #[error("split `{0}` is not `balanced` or `round-robin`")]
    Split(String),
}

impl IsaxParams {
    /// Checked parameters for series of `length` points.
    ///
    /// # Errors
    /// [`IsaxParamsError`] naming the parameter out of range.
    pub fn new(
        length: usize,
        word_length: i64,
        cardinality: i64,
        leaf_capacity: i64,
        split: &str,
    ) -> Result<IsaxParams, IsaxParamsError> {
        let w = usize::try_from(word_length).unwrap_or(0);
        if w == 0 || w > length || !length.is_multiple_of(w) {
            return Err(IsaxParamsError::WordLength {
                word_length: w,
                length,
            });
        }
        if !(2..=256).contains(&cardinality) || (cardinality & (cardinality - 1)) != 0 {
            return Err(IsaxParamsError::Cardinality(cardinality));
        }
        if !(1..=1_000_000).contains(&leaf_capacity) {
            return Err(IsaxParamsError::LeafCapacity(leaf_capacity));
        }
        let split = Split::parse(split).ok_or_else(|| IsaxParamsError::Split(split.into()))?;
        Ok(IsaxParams {
            word_length: w,
            cardinality: cardinality as u16,
            leaf_capacity: leaf_capacity as usize,
            split,
        })
    }

    /// The defaults for series of `length` points (a word length dividing it: 16, or
    /// the largest divisor below 16).
    pub fn defaults(length: usize) -> IsaxParams {
        let w = (1..=DEFAULT_WORD_LENGTH.min(length))
            .rev()
            .find(|w| length.is_multiple_of(*w))
            .unwrap_or(1);
        IsaxParams {
            word_length: w,
            cardinality: DEFAULT_CARDINALITY,
            leaf_capacity: DEFAULT_LEAF_CAPACITY,
            split: Split::Balanced,
        }
    }

    /// Bits of a symbol at the base cardinality.
    pub fn base_bits(&self) -> u8 {
        self.cardinality.trailing_zeros() as u8
    }

    /// Read back from [`IsaxParams`]'s `Display` within a longer parameter text
    /// (`length=256 coefficients=8 word_length=16 …`); `None` when any is missing or
    /// out of range (an index built before iSAX existed).
    pub fn parse(text: &str, length: usize) -> Option<IsaxParams> {
        let (mut w, mut c, mut l, mut s) = (None, None, None, None);
        for word in text.split_whitespace() {
            match word.split_once('=') {
                Some(("word_length", v)) => w = v.parse().ok(),
                Some(("cardinality", v)) => c = v.parse().ok(),
                Some(("leaf_capacity", v)) => l = v.parse().ok(),
                Some(("split", v)) => s = Some(v.to_string()),
                _ => {}
            }
        }
        IsaxParams::new(length, w?, c?, l?, &s?).ok()
    }
}

impl fmt::Display for IsaxParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "word_length={} cardinality={} leaf_capacity={} split={}",
            self.word_length,
            self.cardinality,
            self.leaf_capacity,
            self.split.as_str()
        )
    }
}

/// The 257 region edges at full resolution: `-∞`, `Φ⁻¹(i/256)` for `i = 1..=255`, `+∞`.
/// Symbol `s` (8 bits) stands for `[edges[s], edges[s + 1])`.
pub fn breakpoints() -> &'static [f64; 257] {
    static EDGES: OnceLock<[f64; 257]> = OnceLock::new();
    EDGES.get_or_init(|| {
        let mut e = [0.0; 257];
        e[0] = f64::NEG_INFINITY;
        e[256] = f64::INFINITY;
        for (i, v) in e.iter_mut().enumerate().take(256).skip(1) {
            *v = inverse_normal(i as f64 / 256.0);
        }
        e
    })
}

/// `Φ⁻¹(p)` for `0 < p < 1` (Acklam's rational approximation, relative error below
/// 1.2e-9: the breakpoints only need to be fixed and increasing — a symbol and the
/// region used for its bound come from the same table, so the bound stays sound).
fn inverse_normal(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    const LOW: f64 = 0.02425;
    if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p <= 1.0 - LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    }
}

/// The 8-bit symbol of a segment mean: how many breakpoints lie at or below it.
pub fn symbol(v: f64) -> u8 {
    let e = breakpoints();
    e[1..256].partition_point(|b| *b <= v) as u8
}

/// The PAA of `z` (already z-normalised): the means of `w` equal segments.
pub fn paa(z: &[f64], w: usize) -> Vec<f64> {
    let seg = z.len() / w.max(1);
    z.chunks_exact(seg.max(1))
        .take(w)
        .map(|c| c.iter().sum::<f64>() / c.len() as f64)
        .collect()
}

/// The full-resolution word (one 8-bit symbol per segment) of `values` (resampled, raw:
/// z-normalised here as for the distance; a constant series is all zeros).
pub fn word(values: &[f64], word_length: usize) -> Vec<u8> {
    let mut z = values.to_vec();
    znormalise(&mut z);
    paa(&z, word_length).into_iter().map(symbol).collect()
}

/// The region `[lo, hi)` of symbol `s` at `bits` bits.
fn region(s: u8, bits: u8) -> (f64, f64) {
    let e = breakpoints();
    let shift = SYMBOL_BITS - bits;
    let lo = usize::from(s) << shift;
    let hi = (usize::from(s) + 1) << shift;
    (e[lo], e[hi])
}

/// The squared distance from `q` to the region of symbol `s` at `bits` bits.
fn gap_sq(q: f64, s: u8, bits: u8) -> f64 {
    let (lo, hi) = region(s, bits);
    let d = if q < lo {
        lo - q
    } else if q > hi {
        q - hi
    } else {
        0.0
    };
    d * d
}

/// The iSAX MINDIST: a lower bound of the z-normalised distance between the series of
/// PAA `q` (segments of `seg_len` points) and any series whose word has `symbols` at
/// `bits` bits per segment.
pub fn mindist(q: &[f64], seg_len: usize, symbols: &[u8], bits: &[u8]) -> f64 {
    let s: f64 = q
        .iter()
        .zip(symbols.iter().zip(bits))
        .map(|(&q, (&s, &b))| gap_sq(q, s, b))
        .sum();
    (seg_len as f64 * s).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breakpoints_are_normal_quantiles_in_order() {
        let e = breakpoints();
        assert!(e.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(e[128], 0.0);
        assert!((e[64] + 0.674_489_750_196_081_7).abs() < 1e-8);
        assert!((e[192] - 0.674_489_750_196_081_7).abs() < 1e-8);
        assert!((e[1] + 2.660_067_468_617_458).abs() < 1e-7);
        assert!((e[128 - 37] + e[128 + 37]).abs() < 1e-8);
    }

    #[test]
    fn symbols_and_words_follow_the_breakpoints() {
        assert_eq!(symbol(0.0), 128);
        assert_eq!(symbol(-0.000_001), 127);
        assert_eq!(symbol(-10.0), 0);
        assert_eq!(symbol(10.0), 255);
        // A ramp: the first half below the mean, the second above.
        let ramp: Vec<f64> = (0..16).map(f64::from).collect();
        let w = word(&ramp, 4);
        assert_eq!(w.len(), 4);
        assert!(w[0] < w[1] && w[1] < 128 && w[2] >= 128 && w[2] < w[3]);
        assert_eq!(word(&[3.0; 8], 2), vec![128, 128]);
        // Top bits are coarser symbols.
        assert_eq!(w[0] >> 7, 0);
        assert_eq!(w[3] >> 7, 1);
    }

    #[test]
    fn mindist_never_exceeds_the_distance() {
        let mut s: u64 = 5;
        let mut rnd = move || {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        };
        for _ in 0..300 {
            let mut walk = |n: usize| {
                let mut x = 0.0;
                (0..n)
                    .map(|_| {
                        x += rnd();
                        x
                    })
                    .collect::<Vec<f64>>()
            };
            let (x, y) = (walk(64), walk(64));
            let (mut zx, mut zy) = (x.clone(), y.clone());
            znormalise(&mut zx);
            znormalise(&mut zy);
            let d: f64 = zx.iter().zip(&zy).map(|(a, b)| (a - b).powi(2)).sum();
            let wy = word(&y, 8);
            let q = paa(&zx, 8);
            for bits in 1..=8u8 {
                let sym: Vec<u8> = wy.iter().map(|s| s >> (8 - bits)).collect();
                let lb = mindist(&q, 8, &sym, &[bits; 8]);
                assert!(lb <= d.sqrt() + 1e-9, "{lb} > {}", d.sqrt());
            }
        }
    }

    #[test]
    fn params_are_checked_printed_and_read_back() {
        let p = IsaxParams::new(256, 16, 4, 100, "round-robin").unwrap();
        assert_eq!(
            p.to_string(),
            "word_length=16 cardinality=4 leaf_capacity=100 split=round-robin"
        );
        let text = format!("length=256 coefficients=8 {p} devices=1,2");
        assert_eq!(IsaxParams::parse(&text, 256), Some(p));
        assert_eq!(IsaxParams::parse("length=256 coefficients=8", 256), None);
        assert!(matches!(
            IsaxParams::new(256, 15, 4, 100, "balanced"),
            Err(IsaxParamsError::WordLength { .. })
        ));
        assert!(matches!(
            IsaxParams::new(256, 16, 6, 100, "balanced"),
            Err(IsaxParamsError::Cardinality(6))
        ));
        assert!(IsaxParams::new(256, 16, 512, 100, "balanced").is_err());
        assert!(IsaxParams::new(256, 16, 1, 100, "balanced").is_err());
        assert!(matches!(
            IsaxParams::new(256, 16, 2, 0, "balanced"),
            Err(IsaxParamsError::LeafCapacity(0))
        ));
        assert!(matches!(
            IsaxParams::new(256, 16, 2, 10, "even"),
            Err(IsaxParamsError::Split(_))
        ));
        assert_eq!(IsaxParams::defaults(256).word_length, 16);
        assert_eq!(IsaxParams::defaults(100).word_length, 10);
        assert_eq!(IsaxParams::defaults(256).base_bits(), 1);
    }
}
