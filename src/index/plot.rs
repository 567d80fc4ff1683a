//! The progressive view (SPEC §5; seed 003, L296–312): a channel over a range drawn
//! first from the coarsest level of the feature index, then refined level by level,
//! ending in the pixel-exact M4 of every raw row ([`super::m4`]).
//!
//! A SANS-IO state machine like [`super::search::Search`]: the caller asks
//! [`Plot::next`] what it needs (buckets of a level in some spans, raw points in some
//! spans), answers with [`Plot::give_buckets`] or [`Plot::give_points`], and collects
//! a [`Frame`] after every answer, until [`Step::Done`].
//!
//! Why it is exact: a bucket whose numeric values all fall in one pixel column (its
//! first and last value's times — which the features keep — lie in the same column)
//! contributes exactly its min, max, first and last to that column. Only buckets that
//! straddle a column's edge, are cut by the range, or overlap a span the caller does
//! not trust (dirty buckets, rows still flagged, outside the built range) are refined:
//! their children at the next level, and at the finest level their raw rows. A bucket
//! straddling one edge is not refined where the rest of the column already reaches
//! below its minimum and above its maximum: there only the rows next to the edge are
//! read (the last value before it, the first after it; see `covered` and
//! `probe_edges`) — at any level when both sides are covered, side by side at the
//! finest level.
//! Untrusted
//! spans are read raw whole (their buckets may be missing or stale), and nothing is
//! counted twice: a bucket is used only when no part of it is read raw.
//!
//! Frames before the last are approximations: a bucket still to refine is drawn over
//! every column it overlaps with its min and max, its first and last value where their
//! times fall and its mean elsewhere (the seed draws each node as a segment of its
//! feature); untrusted spans appear only once read.

use super::feature::{Bucket, Levels};
use super::m4::{add_points, merge_into, Column, Columns};
use super::{merge_spans, Micros, Point};

/// One picture of the plot (serialised with the field names below; see `docs/plot.md`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Frame {
    /// The refinement step (0 = coarsest).
    pub step: usize,
    /// The length of the finest level used so far; `None` with raw rows only (no index).
    pub level: Option<Micros>,
    /// Per pixel column, its M4 tuple (approximate unless `exact`); `None`: no value.
    pub columns: Vec<Option<Column>>,
    /// Whether this is the final, pixel-exact frame.
    pub exact: bool,
    /// Raw rows read so far.
    pub rows_read: u64,
    /// Buckets read so far (all levels).
    pub buckets_read: u64,
}

/// What the plot needs next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Every stored bucket of `level` whose start lies in one of `spans` (half-open).
    Buckets {
        /// The level (0 = coarsest).
        level: usize,
        /// Half-open spans of bucket starts, merged, in time order.
        spans: Vec<(Micros, Micros)>,
    },
    /// Every raw point in these half-open spans (merged, in time order).
    Points {
        /// Half-open spans of row times.
        spans: Vec<(Micros, Micros)>,
    },
    /// A new frame is ready ([`Plot::frame`]); call `next` again to go on.
    Frame,
    /// The last frame (exact) was given.
    Done,
}

/// Why a plot cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlotError {
    /// `to <= from` or no column.
    #[error("the plot needs a non-empty range and at least one pixel column")]
    Empty,
    /// An answer the plot did not ask for (a driver's bug).
    #[error("the plot was given {given} while it needs {needs}")]
    Unexpected {
        /// What was given.
        given: &'static str,
        /// What it needs.
        needs: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Pending {
    Buckets {
        level: usize,
        spans: Vec<(Micros, Micros)>,
    },
    Points {
        spans: Vec<(Micros, Micros)>,
    },
    /// A frame is ready; then `after`.
    Frame(Box<Pending>),
    Done,
}

/// The rows next to one column edge inside a straddling bucket.
#[derive(Debug, Clone, PartialEq)]
struct Probe {
    /// The span read, `[lo, hi)`, within the bucket's values.
    lo: Micros,
    hi: Micros,
    /// The column edge.
    edge: Micros,
    /// The columns left and right of it.
    columns: (usize, usize),
    /// The bucket's first and last value.
    first: (Micros, f64),
    last: (Micros, f64),
    /// Whether the side left (right) of the edge is read whole: its rows are added to
    /// the columns as they come.
    full: (bool, bool),
    /// The last value before the edge and the first at or after it, seen so far.
    left: Option<(Micros, f64)>,
    right: Option<(Micros, f64)>,
}

impl Probe {
    fn see(&mut self, p: Point) {
        let Some(v) = p.value() else { return };
        if p.t < self.edge {
            if self.left.is_none_or(|l| p.t >= l.0) {
                self.left = Some((p.t, v));
            }
        } else if self.right.is_none_or(|r| p.t < r.0) {
            self.right = Some((p.t, v));
        }
    }
}

/// One progressive plot of one device's channel (see the module's docs).
pub struct Plot {
    /// The pixel columns.
    cols: Columns,
    /// The index's levels, when there is one.
    levels: Option<Levels>,
    /// Spans not to trust, clipped to the range, merged.
    untrusted: Vec<(Micros, Micros)>,
    /// Exact contributions so far (buckets wholly in one column).
    exact: Vec<Option<Column>>,
    /// Buckets of the latest level not yet resolved (drawn approximately).
    open: Vec<Bucket>,
    /// Spans to read raw at the end.
    raw: Vec<(Micros, Micros)>,
    /// Trusted finest buckets whose values straddle one column edge, with the edge.
    straddling: Vec<(Bucket, Micros)>,
    /// The rows next to column edges being read, in time order, disjoint.
    probes: Vec<Probe>,
    /// What comes next.
    pending: Pending,
    /// The last frame.
    frame: Option<Frame>,
    /// Frames made so far.
    steps: usize,
    /// The finest level used so far.
    level: Option<usize>,
    rows_read: u64,
    buckets_read: u64,
}

impl Plot {
    /// A plot of `[from, to)` over `width` columns; `levels` the index's (`None`: raw
    /// rows only); `untrusted` the spans whose buckets must not be used.
    ///
    /// # Errors
    /// [`PlotError::Empty`] for an empty range or zero width.
    pub fn new(
        levels: Option<&Levels>,
        range: (Micros, Micros),
        width: u32,
        untrusted: Vec<(Micros, Micros)>,
    ) -> Result<Plot, PlotError> {
        let cols = Columns::new(range.0, range.1, width).ok_or(PlotError::Empty)?;
        let untrusted = merge_spans(
            untrusted
                .into_iter()
                .map(|(a, b)| (a.max(range.0), b.min(range.1)))
                .collect(),
        );
        let pending = match levels {
            Some(l) => Pending::Buckets {
                level: 0,
                spans: vec![(l.bucket_start(0, range.0), range.1)],
            },
            None => Pending::Points { spans: vec![range] },
        };
        Ok(Plot {
            cols,
            levels: levels.cloned(),
            raw: untrusted.clone(),
            straddling: Vec::new(),
            probes: Vec::new(),
            untrusted,
            exact: vec![None; width as usize],
            open: Vec::new(),
            pending,
            frame: None,
            steps: 0,
            level: None,
            rows_read: 0,
            buckets_read: 0,
        })
    }

    /// The pixel columns.
    pub fn columns(&self) -> &Columns {
        &self.cols
    }

    /// What the plot needs next.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Step {
        match &self.pending {
            Pending::Buckets { level, spans } => Step::Buckets {
                level: *level,
                spans: spans.clone(),
            },
            Pending::Points { spans } => Step::Points {
                spans: spans.clone(),
            },
            Pending::Frame(after) => {
                self.pending = (**after).clone();
                Step::Frame
            }
            Pending::Done => Step::Done,
        }
    }

    /// The latest frame (after [`Step::Frame`]).
    pub fn frame(&self) -> Option<&Frame> {
        self.frame.as_ref()
    }

    /// Takes the latest frame.
    pub fn take_frame(&mut self) -> Option<Frame> {
        self.frame.take()
    }

    /// Answers [`Step::Buckets`]: the stored buckets of that level in those spans.
    ///
    /// # Errors
    /// [`PlotError::Unexpected`] when buckets were not asked for.
    pub fn give_buckets(&mut self, buckets: Vec<Bucket>) -> Result<(), PlotError> {
        let Pending::Buckets { level, .. } = self.pending else {
            return Err(self.unexpected("buckets"));
        };
        let Some(levels) = self.levels.clone() else {
            return Err(self.unexpected("buckets"));
        };
        self.buckets_read += buckets.len() as u64;
        self.level = Some(level);
        let len = levels.length(level);
        let finest = level == levels.finest();
        let (from, to) = (self.cols.from, self.cols.to);
        self.open.clear();
        let mut refine: Vec<(Micros, Micros)> = Vec::new();
        let mut rest: Vec<(Bucket, Micros, Micros)> = Vec::new();
        for b in buckets {
            let (s, e) = (b.start, b.start.saturating_add(len));
            if e <= from || s >= to {
                continue;
            }
            let f = &b.features;
            if !self.is_untrusted(s, e) {
                if f.count == 0 || f.last.0 < from || f.first.0 >= to {
                    continue;
                }
                let one = match (self.cols.of(f.first.0), self.cols.of(f.last.0)) {
                    (Some(a), Some(z)) => (a == z).then_some(a),
                    _ => None,
                };
                if let (Some(c), Some(col)) = (one, Column::of_features(f)) {
                    merge_into(&mut self.exact[c], &col);
                    continue;
                }
            }
            rest.push((b, s, e));
        }
        // Decided once every bucket of the level that lies in one column is counted, so
        // that the coverage of the columns is as complete as it gets at this level.
        for (b, s, e) in rest {
            match self.edge_of(&b, s, e) {
                Some(edge) if finest || self.covered(&b) => self.straddling.push((b, edge)),
                _ if finest => {
                    self.raw.push((s.max(from), e.min(to)));
                    self.open.push(b);
                }
                _ => {
                    let child = levels.bucket_start(level + 1, from);
                    refine.push((s.max(child), e.min(to)));
                    self.open.push(b);
                }
            }
        }
        let after = if !refine.is_empty() {
            Pending::Buckets {
                level: level + 1,
                spans: merge_spans(refine),
            }
        } else {
            self.probe_edges();
            let mut spans = std::mem::take(&mut self.raw);
            spans.extend(self.probes.iter().map(|p| (p.lo, p.hi)));
            let spans = merge_spans(spans);
            if spans.is_empty() {
                Pending::Done
            } else {
                Pending::Points { spans }
            }
        };
        let exact = after == Pending::Done;
        self.emit(exact, after);
        Ok(())
    }

    /// Gives part of the answer to [`Step::Points`] (the caller may read the spans in
    /// pieces, so as not to hold them all); [`Plot::give_points`] gives the last part.
    ///
    /// # Errors
    /// [`PlotError::Unexpected`] when points were not asked for.
    pub fn feed_points(&mut self, points: Vec<Point>) -> Result<(), PlotError> {
        let Pending::Points { .. } = self.pending else {
            return Err(self.unexpected("points"));
        };
        self.rows_read += points.len() as u64;
        if self.probes.is_empty() {
            add_points(&self.cols, &mut self.exact, points);
            return Ok(());
        }
        for p in points {
            let i = self.probes.partition_point(|x| x.hi <= p.t);
            match self.probes.get_mut(i).filter(|x| x.lo <= p.t) {
                Some(probe)
                    if !(if p.t < probe.edge {
                        probe.full.0
                    } else {
                        probe.full.1
                    }) =>
                {
                    probe.see(p)
                }
                _ => add_points(&self.cols, &mut self.exact, [p]),
            }
        }
        Ok(())
    }

    /// Answers [`Step::Points`]: every raw point in those spans (or the last part of
    /// them after [`Plot::feed_points`]).
    ///
    /// # Errors
    /// [`PlotError::Unexpected`] when points were not asked for.
    pub fn give_points(&mut self, points: Vec<Point>) -> Result<(), PlotError> {
        self.feed_points(points)?;
        let mut unresolved = Vec::new();
        for p in std::mem::take(&mut self.probes) {
            let found_left = p.full.0 || p.left.is_some();
            let found_right = p.full.1 || p.right.is_some();
            if !(found_left && found_right) {
                // The probe found no value on one side: read the bucket's rows (the
                // rows of a side read whole come again: M4 takes them twice alike).
                unresolved.push((p.first.0, p.last.0 + 1));
                continue;
            }
            if let (false, Some(l)) = (p.full.0, p.left) {
                let first = Column::point(p.first.0, p.first.1);
                merge_into(&mut self.exact[p.columns.0], &first);
                merge_into(&mut self.exact[p.columns.0], &Column::point(l.0, l.1));
            }
            if let (false, Some(r)) = (p.full.1, p.right) {
                let last = Column::point(p.last.0, p.last.1);
                merge_into(&mut self.exact[p.columns.1], &Column::point(r.0, r.1));
                merge_into(&mut self.exact[p.columns.1], &last);
            }
        }
        if !unresolved.is_empty() {
            self.pending = Pending::Points {
                spans: merge_spans(unresolved),
            };
            return Ok(());
        }
        self.open.clear();
        self.emit(true, Pending::Done);
        Ok(())
    }

    fn unexpected(&self, given: &'static str) -> PlotError {
        PlotError::Unexpected {
            given,
            needs: match self.pending {
                Pending::Buckets { .. } => "buckets",
                Pending::Points { .. } => "points",
                Pending::Frame(_) => "a call to next",
                Pending::Done => "nothing",
            },
        }
    }

    /// The column edge a trusted finest bucket straddles, when its values lie in two
    /// neighbouring columns (then only the rows next to that edge may be needed).
    fn edge_of(&self, b: &Bucket, s: Micros, e: Micros) -> Option<Micros> {
        let f = &b.features;
        if f.count == 0 || self.is_untrusted(s, e) {
            return None;
        }
        let (a, z) = (self.cols.of(f.first.0)?, self.cols.of(f.last.0)?);
        (z == a + 1).then(|| self.cols.start(z))
    }

    /// Whether the exact parts of both columns a bucket's values fall in already reach
    /// below its minimum and above its maximum (then only its rows next to the edge
    /// between them are missing, at any level).
    fn covered(&self, b: &Bucket) -> bool {
        let f = &b.features;
        let covers = |c: Option<usize>| {
            c.and_then(|c| self.exact[c])
                .is_some_and(|c| c.min <= f.min && c.max >= f.max)
        };
        covers(self.cols.of(f.first.0)) && covers(self.cols.of(f.last.0))
    }

    /// Decides, for every finest bucket straddling one column edge, what to read of
    /// each side of the edge: when the exact part of that side's column already
    /// reaches below the bucket's minimum and above its maximum, the side changes
    /// neither the column's minimum nor its maximum, and only its value next to the
    /// edge is missing (its other end, the bucket's first or last value, is known);
    /// otherwise the side is read whole.
    fn probe_edges(&mut self) {
        let mut probes = Vec::new();
        for (b, edge) in std::mem::take(&mut self.straddling) {
            let f = &b.features;
            let (Some(a), Some(z)) = (self.cols.of(f.first.0), self.cols.of(f.last.0)) else {
                continue;
            };
            let covers = |c: &Option<Column>| c.is_some_and(|c| c.min <= f.min && c.max >= f.max);
            // A side the rest of its column does not cover is read whole.
            let (left_full, right_full) = (!covers(&self.exact[a]), !covers(&self.exact[z]));
            if left_full && right_full {
                self.raw.push((f.first.0, f.last.0 + 1));
                continue;
            }
            let len = self.levels.as_ref().map_or(1, |l| l.length(b.level));
            // About four rows on either side at the bucket's mean rate.
            let reach = (len / f.count as Micros).saturating_mul(4).max(1);
            probes.push(Probe {
                lo: if left_full {
                    f.first.0
                } else {
                    f.first.0.max(edge - reach)
                },
                hi: if right_full {
                    f.last.0 + 1
                } else {
                    (f.last.0 + 1).min(edge.saturating_add(reach))
                },
                edge,
                columns: (a, z),
                first: f.first,
                last: f.last,
                full: (left_full, right_full),
                left: None,
                right: None,
            });
        }
        probes.sort_by_key(|p| p.lo);
        self.probes = probes;
    }

    /// Whether `[s, e)` overlaps an untrusted span.
    fn is_untrusted(&self, s: Micros, e: Micros) -> bool {
        let i = self.untrusted.partition_point(|u| u.1 <= s);
        self.untrusted.get(i).is_some_and(|u| u.0 < e)
    }

    /// Makes the frame of what is known now, then goes on with `after`.
    fn emit(&mut self, exact: bool, after: Pending) {
        let mut columns = self.exact.clone();
        if !exact {
            let len = |b: &Bucket| self.levels.as_ref().map_or(0, |l| l.length(b.level));
            for b in self.open.iter().chain(self.straddling.iter().map(|x| &x.0)) {
                self.spread(&mut columns, b, len(b));
            }
        }
        self.frame = Some(Frame {
            step: self.steps,
            level: match (&self.levels, self.level) {
                (Some(l), Some(level)) => Some(l.length(level)),
                _ => None,
            },
            columns,
            exact,
            rows_read: self.rows_read,
            buckets_read: self.buckets_read,
        });
        self.steps += 1;
        self.pending = Pending::Frame(Box::new(after));
    }

    /// Draws an unresolved bucket approximately over the columns it overlaps.
    fn spread(&self, columns: &mut [Option<Column>], b: &Bucket, len: Micros) {
        let f = &b.features;
        let Some(mean) = f.mean() else { return };
        let (s, e) = (
            b.start.max(self.cols.from),
            (b.start + len).min(self.cols.to),
        );
        for c in self.cols.overlapped(s, e) {
            let (cs, ce) = (self.cols.start(c).max(s), self.cols.start(c + 1).min(e));
            let first = if self.cols.of(f.first.0) == Some(c) {
                Point {
                    t: f.first.0,
                    v: Some(f.first.1),
                }
            } else {
                Point {
                    t: cs,
                    v: Some(mean),
                }
            };
            let last = if self.cols.of(f.last.0) == Some(c) {
                Point {
                    t: f.last.0,
                    v: Some(f.last.1),
                }
            } else {
                Point {
                    t: ce - 1,
                    v: Some(mean),
                }
            };
            let col = Column {
                first,
                last,
                min: f.min,
                max: f.max,
            };
            merge_into(&mut columns[c], &col);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::feature::build;
    use crate::index::m4::m4;
    use crate::index::SECOND;
    use proptest::prelude::*;

    /// Drives a plot over in-memory buckets (built from `old`) and raw rows `now`.
    fn drive(
        levels: Option<&Levels>,
        built: &[Vec<Bucket>],
        now: &[Point],
        range: (Micros, Micros),
        width: u32,
        untrusted: Vec<(Micros, Micros)>,
    ) -> Vec<Frame> {
        let mut plot = Plot::new(levels, range, width, untrusted).unwrap();
        let mut frames = Vec::new();
        loop {
            match plot.next() {
                Step::Buckets { level, spans } => {
                    let got = built[level]
                        .iter()
                        .filter(|b| spans.iter().any(|s| b.start >= s.0 && b.start < s.1))
                        .copied()
                        .collect();
                    plot.give_buckets(got).unwrap();
                }
                Step::Points { spans } => {
                    let got = now
                        .iter()
                        .filter(|p| spans.iter().any(|s| p.t >= s.0 && p.t < s.1))
                        .copied()
                        .collect();
                    plot.give_points(got).unwrap();
                }
                Step::Frame => frames.push(plot.take_frame().unwrap()),
                Step::Done => return frames,
            }
        }
    }

    fn levels() -> Levels {
        Levels::new(vec![3_600 * SECOND, 600 * SECOND, 60 * SECOND, 10 * SECOND]).unwrap()
    }

    #[test]
    fn aligned_columns_need_no_raw_rows() {
        // Two hours at 1 Hz over 12 columns of 10 minutes: every 10-minute bucket
        // lies in one column.
        let pts: Vec<Point> = (0..7_200)
            .map(|i| Point {
                t: i * SECOND,
                v: Some(((i * 37) % 101) as f64),
            })
            .collect();
        let l = levels();
        let built = build(&l, &pts);
        let range = (0, 7_200 * SECOND);
        let frames = drive(Some(&l), &built, &pts, range, 12, vec![]);
        let last = frames.last().unwrap();
        assert!(last.exact);
        assert_eq!(last.rows_read, 0);
        assert_eq!(last.level, Some(600 * SECOND));
        assert_eq!(
            last.columns,
            m4(&Columns::new(range.0, range.1, 12).unwrap(), pts)
        );
        assert_eq!(frames.len(), 2);
        assert!(!frames[0].exact);
    }

    #[test]
    fn straddling_buckets_read_only_the_rows_next_to_the_edge() {
        // Six hours at 1 Hz (a slow wave), 7 columns on a range aligned to nothing.
        let pts: Vec<Point> = (0..21_600)
            .map(|i| Point {
                t: i * SECOND,
                v: Some((i as f64 / 2_000.0).sin() * 10.0 + (i % 3) as f64 / 10.0),
            })
            .collect();
        let l = levels();
        let built = build(&l, &pts);
        let range = (1_234 * SECOND + 5, 20_001 * SECOND + 7);
        let frames = drive(Some(&l), &built, &pts, range, 7, vec![]);
        let last = frames.last().unwrap();
        let cols = Columns::new(range.0, range.1, 7).unwrap();
        assert_eq!(last.columns, m4(&cols, pts.iter().copied()));
        // Two range ends (a 10 s bucket each) and six edges of about eight rows.
        // The range ends cut two buckets (6 + 2 rows); reading the six straddling
        // buckets whole would add 60 rows, the probes read about 8 each.
        assert!(last.rows_read <= 8 + 6 * 9, "{}", last.rows_read);
    }

    #[test]
    fn a_probe_that_finds_nothing_reads_the_bucket() {
        // Columns of 15 s; the bucket [10 s, 20 s) straddles the edge at 15 s with its
        // rows far from it: the probes find nothing, the bucket is read.
        let l = Levels::new(vec![60 * SECOND, 10 * SECOND]).unwrap();
        let mut pts: Vec<Point> = (0..10)
            .map(|i| Point {
                t: 10 * SECOND + i * SECOND / 10,
                v: Some(i as f64),
            })
            .collect();
        pts.push(Point {
            t: 19_900_000,
            v: Some(5.0),
        });
        for t in [1, 2, 21, 22] {
            pts.push(Point {
                t: t * SECOND,
                v: Some(if t % 2 == 0 { 100.0 } else { -100.0 }),
            });
        }
        pts.sort_by_key(|p| p.t);
        let built = build(&l, &pts);
        let range = (0, 60 * SECOND);
        let frames = drive(Some(&l), &built, &pts, range, 4, vec![]);
        let last = frames.last().unwrap();
        let cols = Columns::new(range.0, range.1, 4).unwrap();
        assert_eq!(last.columns, m4(&cols, pts.iter().copied()));
        assert_eq!(
            last.rows_read, 11,
            "the probes read nothing, then the bucket"
        );
    }

    #[test]
    fn without_levels_it_reads_raw_rows() {
        let pts: Vec<Point> = (0..100)
            .map(|i| Point {
                t: i * SECOND,
                v: Some(i as f64),
            })
            .collect();
        let frames = drive(None, &[], &pts, (5 * SECOND, 50 * SECOND), 7, vec![]);
        assert_eq!(frames.len(), 1);
        assert!(frames[0].exact && frames[0].level.is_none());
        assert_eq!(frames[0].rows_read, 45);
    }

    fn arb_points() -> impl Strategy<Value = Vec<Point>> {
        prop::collection::vec(
            (0i64..40_000, prop::option::weighted(0.9, -50i32..50)),
            0..300,
        )
        .prop_map(|mut v| {
            v.sort_by_key(|x| x.0);
            v.dedup_by_key(|x| x.0);
            v.into_iter()
                .map(|(t, x)| Point {
                    t: t * SECOND / 4,
                    v: x.map(f64::from),
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(256)))]

        /// The final frame equals M4 over every raw row now, whatever the range,
        /// width and stale spans (rows changed after the index was built).
        #[test]
        fn the_final_frame_is_m4_of_every_row(
            old in arb_points(),
            from in -100i64..9_000,
            len in 1i64..12_000,
            width in 1u32..40,
            stale in prop::collection::vec((0i64..1_000, 1i64..5), 0..3),
            bump in -5.0f64..5.0,
        ) {
            let l = levels();
            let built = build(&l, &old);
            let fine = l.length(l.finest());
            // Stale spans: finest buckets whose rows change (values and rows added).
            let untrusted: Vec<(Micros, Micros)> = stale
                .iter()
                .map(|&(k, n)| (k * fine, (k + n) * fine))
                .collect();
            let mut now: Vec<Point> = old
                .iter()
                .map(|p| {
                    if untrusted.iter().any(|u| p.t >= u.0 && p.t < u.1) {
                        Point { t: p.t, v: p.v.map(|v| v + bump) }
                    } else {
                        *p
                    }
                })
                .collect();
            for u in &untrusted {
                now.push(Point { t: u.0 + 1, v: Some(bump * 7.0) });
            }
            now.sort_by_key(|p| p.t);
            now.dedup_by_key(|p| p.t);
            let range = (from * SECOND, (from + len) * SECOND);
            let cols = Columns::new(range.0, range.1, width).unwrap();
            let frames = drive(Some(&l), &built, &now, range, width, untrusted);
            let last = frames.last().unwrap();
            prop_assert!(last.exact);
            prop_assert!(frames[..frames.len() - 1].iter().all(|f| !f.exact));
            prop_assert_eq!(&last.columns, &m4(&cols, now.iter().copied()));
            for (i, f) in frames.iter().enumerate() {
                prop_assert_eq!(f.step, i);
                prop_assert_eq!(f.columns.len(), width as usize);
            }
            let raw = drive(None, &[], &now, range, width, vec![]);
            prop_assert_eq!(&raw[0].columns, &last.columns);
        }
    }
}
