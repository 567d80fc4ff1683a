//! M4 aggregation (Jugel et al., VLDB 2014): per pixel column of a chart, the first and
//! last point and the smallest and largest value. A line chart drawn without
//! antialiasing from these four per column is pixel-identical to the chart drawn from
//! every point: within a column every point falls on the same x, so the segments
//! between them cover exactly the rows from the minimum to the maximum, and between
//! columns only the last point of one and the first of the next are joined.
//!
//! [`Columns`] maps times to pixel columns with integer arithmetic (the same mapping
//! for the index planner, the oracle and the renderer); [`m4`] is the oracle over raw
//! points.

use super::feature::Features;
use super::{Micros, Point};

/// The pixel columns of a half-open range `[from, to)` drawn `width` pixels wide:
/// column `c` holds the times `t` with `floor((t - from) · width / (to - from)) == c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns {
    /// The range's start.
    pub from: Micros,
    /// The range's end (excluded).
    pub to: Micros,
    /// The number of columns.
    pub width: u32,
}

impl Columns {
    /// The columns of `[from, to)` over `width` pixels; `None` when the range is empty
    /// or `width` is 0.
    pub fn new(from: Micros, to: Micros, width: u32) -> Option<Columns> {
        (from < to && width > 0).then_some(Columns { from, to, width })
    }

    /// The column of `t`, `None` outside the range.
    pub fn of(&self, t: Micros) -> Option<usize> {
        (t >= self.from && t < self.to).then(|| {
            let c = (t as i128 - self.from as i128) * self.width as i128
                / (self.to as i128 - self.from as i128);
            c as usize
        })
    }

    /// The first time of column `c` (for `c == width`, the range's end).
    pub fn start(&self, c: usize) -> Micros {
        let span = self.to as i128 - self.from as i128;
        let w = self.width as i128;
        // ceil(c · span / w)
        let off = (c as i128 * span + w - 1) / w;
        (self.from as i128 + off) as Micros
    }

    /// The columns `[a, b)` (clipped to the range) overlaps, as a half-open range of
    /// column numbers; empty when it misses the range.
    pub fn overlapped(&self, a: Micros, b: Micros) -> std::ops::Range<usize> {
        let (a, b) = (a.max(self.from), b.min(self.to));
        match (self.of(a), b.checked_sub(1).and_then(|l| self.of(l))) {
            (Some(x), Some(y)) if a < b => x..y + 1,
            _ => 0..0,
        }
    }
}

/// The M4 tuple of one pixel column (serialised as `{"first": {"t", "v"}, "last": …,
/// "min", "max"}`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Column {
    /// The first point (earliest time) in the column.
    pub first: Point,
    /// The last point (latest time) in the column.
    pub last: Point,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl Column {
    /// The column of one numeric point.
    pub fn point(t: Micros, v: f64) -> Column {
        let p = Point { t, v: Some(v) };
        Column {
            first: p,
            last: p,
            min: v,
            max: v,
        }
    }

    /// The column of a bucket's numeric values, `None` when it has none.
    pub fn of_features(f: &Features) -> Option<Column> {
        (f.count > 0).then_some(Column {
            first: Point {
                t: f.first.0,
                v: Some(f.first.1),
            },
            last: Point {
                t: f.last.0,
                v: Some(f.last.1),
            },
            min: f.min,
            max: f.max,
        })
    }

    /// Merges `o` (disjoint rows) into this column: ties in time keep the earlier
    /// `first` and take the later-merged `last`, as [`Features::add`] does.
    pub fn merge(&mut self, o: &Column) {
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        if o.first.t < self.first.t {
            self.first = o.first;
        }
        if o.last.t >= self.last.t {
            self.last = o.last;
        }
    }
}

/// Merges `c` into the slot `slot`.
pub fn merge_into(slot: &mut Option<Column>, c: &Column) {
    match slot {
        Some(s) => s.merge(c),
        None => *slot = Some(*c),
    }
}

/// M4 over `points` (any order; non-numeric values and points outside the range are
/// left out): one entry per column, `None` where a column holds no numeric value.
pub fn m4(columns: &Columns, points: impl IntoIterator<Item = Point>) -> Vec<Option<Column>> {
    let mut out = vec![None; columns.width as usize];
    add_points(columns, &mut out, points);
    out
}

/// Adds `points` to the columns `out` (see [`m4`]).
pub fn add_points(
    columns: &Columns,
    out: &mut [Option<Column>],
    points: impl IntoIterator<Item = Point>,
) {
    for p in points {
        if let (Some(v), Some(c)) = (p.value(), columns.of(p.t)) {
            merge_into(&mut out[c], &Column::point(p.t, v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_partition_the_range() {
        for (from, to, w) in [(0, 10, 3), (-7, 1_000_003, 17), (5, 9, 10), (0, 86_400, 1)] {
            let c = Columns::new(from, to, w).unwrap();
            let mut last = 0;
            for t in from..to.min(from + 5_000) {
                let k = c.of(t).unwrap();
                assert!(k >= last && (k <= last + 1 || w as i64 > to - from), "{t}");
                assert!(c.start(k) <= t && t < c.start(k + 1), "{t} in {k}");
                last = k;
            }
            assert_eq!(c.start(0), from);
            assert_eq!(c.start(w as usize), to);
            assert_eq!(c.of(to), None);
            assert_eq!(c.of(from - 1), None);
        }
        assert!(Columns::new(5, 5, 3).is_none());
        assert!(Columns::new(0, 5, 0).is_none());
    }

    #[test]
    fn overlapped_columns_are_clipped() {
        let c = Columns::new(0, 100, 10).unwrap();
        assert_eq!(c.overlapped(-50, 5), 0..1);
        assert_eq!(c.overlapped(5, 25), 0..3);
        assert_eq!(c.overlapped(20, 30), 2..3);
        assert_eq!(c.overlapped(95, 500), 9..10);
        assert_eq!(c.overlapped(100, 500), 0..0);
        assert_eq!(c.overlapped(-5, 0), 0..0);
    }

    #[test]
    fn m4_keeps_first_last_min_max() {
        let c = Columns::new(0, 20, 2).unwrap();
        let pts = [
            (3, 5.0),
            (1, 2.0),
            (7, -1.0),
            (9, 4.0),
            (12, f64::NAN),
            (15, 8.0),
        ];
        let cols = m4(
            &c,
            pts.iter()
                .map(|&(t, v)| Point { t, v: Some(v) })
                .chain([Point { t: 4, v: None }]),
        );
        let a = cols[0].unwrap();
        assert_eq!((a.first.t, a.last.t, a.min, a.max), (1, 9, -1.0, 5.0));
        let b = cols[1].unwrap();
        assert_eq!((b.first.t, b.last.t, b.min, b.max), (15, 15, 8.0, 8.0));
    }
}
