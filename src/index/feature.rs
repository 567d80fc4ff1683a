//! Buckets and their features: the data of the feature index.
//!
//! A bucket covers `[start, start + length)` of one level; levels are listed coarse to
//! fine, each dividing the one above it, and every bucket is aligned to UTC midnight,
//! so the hierarchy is implicit in the bucket times: the parent of a bucket is the
//! bucket of the next coarser level that contains its start.

use std::collections::BTreeMap;
use std::fmt;

use super::{Micros, Point, SECOND};

/// The longest bucket the dirty log marks at where a level that short exists
/// ([`Levels::mark_level`]).
pub const MARK_SPAN_MAX: Micros = 3_600 * SECOND;

/// The features of one bucket. Only numeric values are counted; rows holding the
/// channel as something else (or as NaN) are counted in `other`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Features {
    /// How many numeric values.
    pub count: u64,
    /// How many rows hold the channel but not as a number.
    pub other: u64,
    /// Sum of the values.
    pub sum: f64,
    /// Sum of the squared values.
    pub sum_sq: f64,
    /// Smallest value (`+inf` when `count == 0`).
    pub min: f64,
    /// Largest value (`-inf` when `count == 0`).
    pub max: f64,
    /// Time and value of the first numeric value (`(Micros::MAX, 0.0)` when none).
    pub first: (Micros, f64),
    /// Time and value of the last numeric value (`(Micros::MIN, 0.0)` when none).
    pub last: (Micros, f64),
    /// A digest of the bucket's rows, numeric or not: the wrapping sum of a 64-bit
    /// hash of each row's time and value, so that it combines upward and does not
    /// depend on the order rows are added in (0 for no rows). Two buckets with equal
    /// digests hold the same rows but for a chance of 2⁻⁶⁴: the index's maintenance
    /// skips a bucket's children when its digest is unchanged.
    pub digest: u64,
}

impl Features {
    /// The features of a bucket without values.
    pub const EMPTY: Features = Features {
        count: 0,
        other: 0,
        sum: 0.0,
        sum_sq: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        first: (Micros::MAX, 0.0),
        last: (Micros::MIN, 0.0),
        digest: 0,
    };

    /// Adds one point (points may come in any order; ties keep the earlier one as
    /// first and the later one as last).
    pub fn add(&mut self, p: Point) {
        self.digest = self.digest.wrapping_add(point_digest(p));
        let Some(v) = p.value() else {
            self.other += 1;
            return;
        };
        self.count += 1;
        self.sum += v;
        self.sum_sq += v * v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        if p.t < self.first.0 {
            self.first = (p.t, v);
        }
        if p.t >= self.last.0 {
            self.last = (p.t, v);
        }
    }

    /// Whether two buckets hold the same rows, by their digests and counts (but for a
    /// chance of 2⁻⁶⁴): then every other feature is the same too, however the sums were
    /// added up.
    pub fn same_rows(&self, o: &Features) -> bool {
        self.digest == o.digest && self.count == o.count && self.other == o.other
    }

    /// Combines the features of two disjoint sets of rows (a parent from its children).
    pub fn combine(&mut self, o: &Features) {
        self.digest = self.digest.wrapping_add(o.digest);
        self.count += o.count;
        self.other += o.other;
        self.sum += o.sum;
        self.sum_sq += o.sum_sq;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        if o.count > 0 && o.first.0 < self.first.0 {
            self.first = o.first;
        }
        if o.count > 0 && o.last.0 >= self.last.0 {
            self.last = o.last;
        }
    }

    /// The features of `points`.
    pub fn of(points: impl IntoIterator<Item = Point>) -> Features {
        let mut f = Features::EMPTY;
        for p in points {
            f.add(p);
        }
        f
    }

    /// Whether the bucket holds no row of the channel at all.
    pub fn is_empty(&self) -> bool {
        self.count == 0 && self.other == 0
    }

    /// The mean of the values, if any.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

/// The hash of one row in [`Features::digest`]: its time and its value's bits (a
/// fixed tag for a value that is not a number), mixed by SplitMix64's finaliser.
fn point_digest(p: Point) -> u64 {
    /// Not the bits of any `f64` a row can hold as a number.
    const NOT_A_NUMBER: u64 = 0x7ff4_0000_dead_beef;
    let v = p.v.map_or(NOT_A_NUMBER, f64::to_bits);
    mix64(mix64(p.t as u64) ^ v)
}

/// SplitMix64's finaliser: every input bit changes about half the output bits.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One bucket of one device's channel at one level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// The level's index in [`Levels`] (0 = coarsest).
    pub level: usize,
    /// The bucket's start, a multiple of the level's length since UTC midnight.
    pub start: Micros,
    /// Its features.
    pub features: Features,
}

/// The bucket lengths of an index, coarse to fine, each dividing the one above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Levels(Vec<Micros>);

/// Why a list of levels was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LevelsError {
    /// No level.
    #[error("an index needs at least one level")]
    Empty,
    /// A length is zero or negative.
    #[error("level {0} is not a positive length")]
    NotPositive(usize),
    /// A length does not divide a day or the day does not divide it.
    #[error("level {0} neither divides a day nor is a whole number of days")]
    NotAligned(usize),
    /// A level does not divide the level above it (or is not finer).
    #[error("level {fine} does not divide level {coarse} above it (levels run coarse to fine)")]
    NotDividing {
        /// The coarser level's position.
        coarse: usize,
        /// The finer level's position.
        fine: usize,
    },
}

impl Levels {
    /// Checks and keeps `lengths` (coarse to fine).
    ///
    /// # Errors
    /// When a length is not positive, not aligned to UTC midnight, or does not divide
    /// the one above it.
    pub fn new(lengths: Vec<Micros>) -> Result<Levels, LevelsError> {
        if lengths.is_empty() {
            return Err(LevelsError::Empty);
        }
        for (i, &l) in lengths.iter().enumerate() {
            if l <= 0 {
                return Err(LevelsError::NotPositive(i));
            }
            if super::DAY % l != 0 && l % super::DAY != 0 {
                return Err(LevelsError::NotAligned(i));
            }
            if i > 0 && (lengths[i - 1] <= l || lengths[i - 1] % l != 0) {
                return Err(LevelsError::NotDividing {
                    coarse: i - 1,
                    fine: i,
                });
            }
        }
        Ok(Levels(lengths))
    }

    /// The lengths, coarse to fine.
    pub fn lengths(&self) -> &[Micros] {
        &self.0
    }

    /// The number of levels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a [`Levels`] has at least one level.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The finest level's index.
    pub fn finest(&self) -> usize {
        self.0.len() - 1
    }

    /// The length of `level`.
    pub fn length(&self, level: usize) -> Micros {
        self.0[level]
    }

    /// The start of the bucket of `level` that holds `t`.
    pub fn bucket_start(&self, level: usize, t: Micros) -> Micros {
        t.div_euclid(self.0[level]) * self.0[level]
    }

    /// The level the dirty log marks buckets at: the coarsest level at most an hour
    /// long, or the finest where every level is longer. A write-back of rows a minute
    /// apart then records one mark an hour of each device it wrote, not one per row,
    /// and the maintenance recomputes every finest bucket of a marked one from its rows.
    pub fn mark_level(&self) -> usize {
        self.0
            .iter()
            .position(|&l| l <= MARK_SPAN_MAX)
            .unwrap_or(self.finest())
    }
}

impl fmt::Display for Levels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            write_length(f, *l)?;
        }
        Ok(())
    }
}

/// Writes a length as `1d`, `1h`, `10m`, `5s` or `250ms` (the largest exact unit).
pub fn write_length(f: &mut impl fmt::Write, l: Micros) -> fmt::Result {
    const UNITS: [(Micros, &str); 5] = [
        (super::DAY, "d"),
        (3_600 * super::SECOND, "h"),
        (60 * super::SECOND, "m"),
        (super::SECOND, "s"),
        (1_000, "ms"),
    ];
    for (unit, name) in UNITS {
        if l % unit == 0 {
            return write!(f, "{}{name}", l / unit);
        }
    }
    write!(f, "{l}us")
}

/// The buckets of every level over `points` (one device, any order), finest level
/// first built from the points, each coarser level combined from the one below.
/// Buckets without any row are left out. Within a level, buckets are in time order.
pub fn build(levels: &Levels, points: &[Point]) -> Vec<Vec<Bucket>> {
    let finest = levels.finest();
    let mut fine: BTreeMap<Micros, Features> = Default::default();
    for p in points {
        fine.entry(levels.bucket_start(finest, p.t))
            .or_insert(Features::EMPTY)
            .add(*p);
    }
    let mut out = vec![Vec::new(); levels.len()];
    out[finest] = fine
        .into_iter()
        .map(|(start, features)| Bucket {
            level: finest,
            start,
            features,
        })
        .collect();
    for level in (0..finest).rev() {
        out[level] = combine_up(levels, level, &out[level + 1]);
    }
    out
}

/// The buckets of level `to` of several devices, combined from their buckets of the
/// finer level `from` (keyed by device and start) one level at a time in time order,
/// as [`build`] combines them, so that the sums come out bit for bit the same; a
/// parent is there for every child, empty or not.
pub fn combine_keyed(
    levels: &Levels,
    buckets: &BTreeMap<(i32, Micros), Features>,
    from: usize,
    to: usize,
) -> BTreeMap<(i32, Micros), Features> {
    let mut combined: Option<BTreeMap<(i32, Micros), Features>> = None;
    for level in (to..from).rev() {
        let mut parents: BTreeMap<(i32, Micros), Features> = BTreeMap::new();
        for (&(id, s), f) in combined.as_ref().unwrap_or(buckets) {
            parents
                .entry((id, levels.bucket_start(level, s)))
                .or_insert(Features::EMPTY)
                .combine(f);
        }
        combined = Some(parents);
    }
    combined.unwrap_or_else(|| buckets.clone())
}

/// The buckets of `level` combined from `children` (buckets of `level + 1`, in time
/// order).
pub fn combine_up(levels: &Levels, level: usize, children: &[Bucket]) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    for c in children {
        let start = levels.bucket_start(level, c.start);
        match out.last_mut() {
            Some(b) if b.start == start => b.features.combine(&c.features),
            _ => out.push(Bucket {
                level,
                start,
                features: c.features,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{DAY, SECOND};

    fn levels() -> Levels {
        Levels::new(vec![DAY, 3_600 * SECOND, 600 * SECOND, 60 * SECOND]).unwrap()
    }

    #[test]
    fn levels_are_checked() {
        assert!(levels().to_string() == "1d/1h/10m/1m");
        assert_eq!(Levels::new(vec![]), Err(LevelsError::Empty));
        assert_eq!(
            Levels::new(vec![3_600 * SECOND, 7 * 60 * SECOND]),
            Err(LevelsError::NotAligned(1))
        );
        assert_eq!(
            Levels::new(vec![600 * SECOND, 3_600 * SECOND]),
            Err(LevelsError::NotDividing { coarse: 0, fine: 1 })
        );
    }

    #[test]
    fn marks_are_kept_at_the_coarsest_level_of_an_hour_or_less() {
        let l = |v: &[Micros]| Levels::new(v.iter().map(|m| m * 60 * SECOND).collect()).unwrap();
        assert_eq!(levels().mark_level(), 1, "1d/1h/10m/1m: hours");
        assert_eq!(l(&[1440, 60]).mark_level(), 1, "1d/1h: hours");
        assert_eq!(l(&[1440, 10]).mark_level(), 1, "1d/10m: ten minutes");
        assert_eq!(
            l(&[1440, 120, 40]).mark_level(),
            2,
            "1d/2h/40m: forty minutes"
        );
        assert_eq!(
            l(&[2880, 1440, 240]).mark_level(),
            2,
            "every level longer: the finest"
        );
        assert_eq!(l(&[1440]).mark_level(), 0);
    }

    #[test]
    fn parents_equal_features_of_their_rows() {
        let points: Vec<Point> = (0..5000)
            .map(|i| Point {
                t: i * 37 * SECOND - 3 * DAY / 2,
                v: (i % 11 != 0).then(|| ((i * 7919) % 1000) as f64 / 10.0),
            })
            .collect();
        let levels = levels();
        let built = build(&levels, &points);
        for (level, buckets) in built.iter().enumerate() {
            let len = levels.length(level);
            for b in buckets {
                let direct = Features::of(
                    points
                        .iter()
                        .copied()
                        .filter(|p| p.t >= b.start && p.t < b.start + len),
                );
                assert_eq!(b.features.count, direct.count);
                assert_eq!(b.features.other, direct.other);
                assert_eq!((b.features.min, b.features.max), (direct.min, direct.max));
                assert_eq!(
                    (b.features.first, b.features.last),
                    (direct.first, direct.last)
                );
                assert!((b.features.sum - direct.sum).abs() < 1e-6);
                assert_eq!(b.features.digest, direct.digest, "combined upward exactly");
            }
            let rows: u64 = buckets
                .iter()
                .map(|b| b.features.count + b.features.other)
                .sum();
            assert_eq!(rows, points.len() as u64);
        }
    }

    #[test]
    fn the_digest_sees_every_row_and_not_their_order() {
        let points: Vec<Point> = (0..200)
            .map(|i| Point {
                t: i * SECOND,
                v: (i % 7 != 0).then_some(i as f64),
            })
            .collect();
        let digest = |p: &[Point]| Features::of(p.iter().copied()).digest;
        let d = digest(&points);
        assert_ne!(d, 0);
        let mut reversed = points.clone();
        reversed.reverse();
        assert_eq!(digest(&reversed), d, "any order");
        // Two rows swapping values keep every other feature but not the digest.
        let mut swapped = points.clone();
        (swapped[1].v, swapped[2].v) = (swapped[2].v, swapped[1].v);
        let (a, b) = (
            Features::of(swapped.iter().copied()),
            Features::of(points.iter().copied()),
        );
        assert_eq!(
            (a.count, a.min, a.max, a.sum),
            (b.count, b.min, b.max, b.sum)
        );
        assert_ne!(a.digest, b.digest);
        let mut changes = Vec::new();
        let mut moved = points.clone();
        moved[5].t += 1;
        changes.push(moved);
        let mut string = points.clone();
        string[3].v = None;
        changes.push(string);
        let mut nudged = points.clone();
        nudged[4].v = Some(4.0 + f64::EPSILON * 4.0);
        changes.push(nudged);
        changes.push(points[1..].to_vec());
        let all = Features::of(points.iter().copied());
        for c in &changes {
            assert_ne!(digest(c), d);
            assert!(!Features::of(c.iter().copied()).same_rows(&all));
        }
        assert_eq!(Features::EMPTY.digest, 0);
        // The same rows added in another order, or combined from halves, are the same
        // rows whatever the last bits of the sums.
        assert!(Features::of(reversed.iter().copied()).same_rows(&all));
        let mut halves = Features::of(points[100..].iter().copied());
        halves.combine(&Features::of(points[..100].iter().copied()));
        assert!(halves.same_rows(&all));
        assert!(Features::EMPTY.same_rows(&Features::of(std::iter::empty())));
    }

    #[test]
    fn keyed_buckets_combine_bit_for_bit_as_a_build() {
        let levels = levels();
        let mut finest: BTreeMap<(i32, Micros), Features> = BTreeMap::new();
        let mut points: BTreeMap<i32, Vec<Point>> = BTreeMap::new();
        for id in [3, 4] {
            for i in 0..4000i64 {
                let p = Point {
                    t: i * 41 * SECOND + i64::from(id) * 13,
                    v: (i % 17 != 0).then(|| ((i * 7919 + i64::from(id)) % 1000) as f64 / 7.3),
                };
                points.entry(id).or_default().push(p);
                finest
                    .entry((id, levels.bucket_start(3, p.t)))
                    .or_insert(Features::EMPTY)
                    .add(p);
            }
        }
        for to in [0, 1, 3] {
            let got = combine_keyed(&levels, &finest, 3, to);
            let mut want = BTreeMap::new();
            for (&id, p) in &points {
                for b in &build(&levels, p)[to] {
                    want.insert((id, b.start), b.features);
                }
            }
            assert_eq!(got.len(), want.len(), "level {to}");
            for (key, f) in &got {
                let w = &want[key];
                assert_eq!(f, w, "level {to} at {key:?}");
                assert_eq!(f.sum.to_bits(), w.sum.to_bits());
                assert_eq!(f.sum_sq.to_bits(), w.sum_sq.to_bits());
            }
        }
    }
}
