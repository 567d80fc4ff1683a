//! The last stage of an indexed search: from the judged buckets of the final level, the
//! raw spans to read, and the exact answer assembled from those rows and the buckets.
//!
//! - `AGG(w)`: each maximal group of adjacent *possible* buckets `[a, b)` is read with a
//!   window's margin, `[a, b + w)`, and the windows its rows open are evaluated exactly.
//!   Each group of adjacent *certain* buckets contributes, without reading its rows, the
//!   spans of all its windows: consecutive numeric rows closer than `w` share windows,
//!   so the spans are the runs of sub-buckets (at most `w` long, so no gap of `w` hides
//!   inside one) whose gaps (from one's last row to the next's first) are under `w`; the
//!   last span ends at the last row of the last window, found from the following buckets
//!   or read raw. *No match* buckets contribute nothing.
//! - `RUN`: the buckets form regions between buckets that break every run (all rows fail);
//!   a region too short to hold a span of `d` is skipped; in the others, *possible*
//!   buckets are read and *certain* ones stand for their first and last rows.

use std::collections::BTreeMap;

use super::condition::{Condition, Kind};
use super::feature::Features;
use super::judge::Verdict;
use super::merge_spans;
use super::scan::{self, Match};
use super::{Micros, Point};

/// One judged bucket: of the final level, or (RUN) a coarser certain one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    /// The bucket's start.
    pub start: Micros,
    /// The level's length.
    pub len: Micros,
    /// Its verdict: `Possible` or `Certain` (the others are settled before the plan).
    pub verdict: Verdict,
    /// Its features, when trusted.
    pub features: Option<Features>,
    /// Whether its rows are counted from raw points (cut by the range, or untrusted).
    pub raw: bool,
}

/// What the plan knows of the final level's buckets, beyond the judged ones.
pub(crate) struct Known {
    /// The buckets of the final level that were fetched.
    pub buckets: BTreeMap<Micros, Features>,
    /// The spans their starts were fetched for (a slot there without a bucket is empty).
    pub fetched: Vec<(Micros, Micros)>,
    /// The buckets, at most a window long, that certain groups are cut into.
    pub sub: BTreeMap<Micros, Features>,
}

/// How a group of certain buckets' last span ends.
#[derive(Debug, Clone, Copy)]
enum Tail {
    /// At this time, known from the buckets.
    At(Micros),
    /// At the last numeric row of this raw span, or at the group's last row if none.
    Read(Micros, Micros),
}

/// The spans a certain group contributes.
#[derive(Debug, Clone)]
struct Chain {
    pieces: Vec<Match>,
    tail: Tail,
}

/// A group of adjacent possible buckets read with its margin.
#[derive(Debug, Clone, Copy)]
struct Region {
    /// Rows opening windows lie in `[from, open_until)`.
    from: Micros,
    open_until: Micros,
    /// The span read: `[from, read_until)`.
    read_until: Micros,
}

/// The final stage of an indexed search.
pub(crate) struct Plan {
    cond: Condition,
    range: (Micros, Micros),
    slots: Vec<Slot>,
    /// RUN: times inside buckets whose rows all fail (they break every run).
    breakers: Vec<Micros>,
    regions: Vec<Region>,
    chains: Vec<Chain>,
    /// RUN: the groups of slots (indices into `slots`) between breakers worth reading.
    run_groups: Vec<Vec<usize>>,
    reads: Vec<(Micros, Micros)>,
}

/// The points of `points` (time order) with `from <= t < to`.
fn slice(points: &[Point], from: Micros, to: Micros) -> &[Point] {
    let a = points.partition_point(|p| p.t < from);
    let b = points.partition_point(|p| p.t < to);
    &points[a..b.max(a)]
}

impl Plan {
    /// Plans the reads over `slots` (time order).
    pub fn new(
        cond: &Condition,
        range: (Micros, Micros),
        slots: Vec<Slot>,
        breakers: Vec<Micros>,
        known: &Known,
        untrusted: &dyn Fn(Micros, Micros) -> bool,
    ) -> Plan {
        let mut plan = Plan {
            cond: *cond,
            range,
            slots,
            breakers,
            regions: Vec::new(),
            chains: Vec::new(),
            run_groups: Vec::new(),
            reads: Vec::new(),
        };
        match cond.kind {
            Kind::Window { window, .. } => plan.plan_windows(window, known, untrusted),
            Kind::Run { min_span, .. } => plan.plan_runs(min_span),
        }
        // Raw slots are read whole (their rows are counted from the points).
        for s in &plan.slots {
            if s.raw {
                plan.reads
                    .push((s.start.max(range.0), (s.start + s.len).min(range.1)));
            }
        }
        plan.reads = merge_spans(std::mem::take(&mut plan.reads));
        plan
    }

    /// The raw spans to read.
    pub fn reads(&self) -> &[(Micros, Micros)] {
        &self.reads
    }

    /// Groups of adjacent slots with the same verdict.
    fn groups(&self, verdict: Verdict) -> Vec<(usize, usize)> {
        let mut out: Vec<(usize, usize)> = Vec::new();
        for (i, s) in self.slots.iter().enumerate() {
            if s.verdict != verdict {
                continue;
            }
            match out.last_mut() {
                Some((_, end))
                    if *end == i && self.slots[i - 1].start + self.slots[i - 1].len == s.start =>
                {
                    *end = i + 1
                }
                _ => out.push((i, i + 1)),
            }
        }
        out
    }

    fn plan_windows(
        &mut self,
        window: Micros,
        known: &Known,
        untrusted: &dyn Fn(Micros, Micros) -> bool,
    ) {
        let (from, to) = self.range;
        for (a, b) in self.groups(Verdict::Possible) {
            let start = self.slots[a].start.max(from);
            let end = (self.slots[b - 1].start + self.slots[b - 1].len).min(to);
            let read_until = end.saturating_add(window).min(to);
            self.regions.push(Region {
                from: start,
                open_until: end,
                read_until,
            });
            self.reads.push((start, read_until));
        }
        for (a, b) in self.groups(Verdict::Certain) {
            let start = self.slots[a].start;
            let end = self.slots[b - 1].start + self.slots[b - 1].len;
            let mut pieces: Vec<Match> = Vec::new();
            for f in known.sub.range(start..end).map(|(_, f)| f) {
                if f.count == 0 {
                    continue;
                }
                match pieces.last_mut() {
                    Some(p) if f.first.0 - p.to < window => p.to = f.last.0,
                    _ => pieces.push(Match {
                        from: f.first.0,
                        to: f.last.0,
                    }),
                }
            }
            let Some(last) = pieces.last() else { continue };
            let len = self.slots[a].len;
            let tail = Self::tail(last.to, len, window, end, to, known, untrusted);
            if let Tail::Read(a, b) = tail {
                self.reads.push((a, b));
            }
            self.chains.push(Chain { pieces, tail });
        }
    }

    /// How the last window of a certain group, opened at `t_last`, ends: the buckets
    /// from `end` on tell, or the rows up to `t_last + window` must be read.
    #[allow(clippy::too_many_arguments)]
    fn tail(
        t_last: Micros,
        len: Micros,
        window: Micros,
        end: Micros,
        to: Micros,
        known: &Known,
        untrusted: &dyn Fn(Micros, Micros) -> bool,
    ) -> Tail {
        let limit = t_last.saturating_add(window).min(to);
        let read = Tail::Read(end, limit);
        let fetched = |a: Micros, b: Micros| known.fetched.iter().any(|f| f.0 <= a && b <= f.1);
        if end >= limit {
            return Tail::At(t_last);
        }
        // The buckets starting before the limit, whole: any untrusted one taints.
        let reach = end + (limit - end + len - 1) / len * len;
        if !fetched(end, limit) || untrusted(end, reach) {
            return read;
        }
        let mut e = t_last;
        for (_, f) in known.buckets.range(end..limit) {
            if f.count == 0 || f.first.0 >= limit {
                continue;
            }
            if f.last.0 < limit {
                // Every numeric row of this bucket lies before the limit (the bucket
                // may reach past `to` only if its last row does too).
                e = e.max(f.last.0);
            } else {
                return read;
            }
        }
        Tail::At(e)
    }

    fn plan_runs(&mut self, min_span: Micros) {
        let (from, to) = self.range;
        // Slots and breakers in time order; a breaker closes a group.
        let mut events: Vec<(Micros, Option<usize>)> = self
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| (s.start.max(from), Some(i)))
            .chain(self.breakers.iter().map(|&t| (t, None)))
            .collect();
        events.sort_by_key(|e| e.0);
        let mut group: Vec<usize> = Vec::new();
        let mut groups = Vec::new();
        for (_, e) in events {
            match e {
                Some(i) => group.push(i),
                None => groups.push(std::mem::take(&mut group)),
            }
        }
        groups.push(group);
        for g in groups {
            let (Some(&first), Some(&last)) = (g.first(), g.last()) else {
                continue;
            };
            let a = self.slots[first].start.max(from);
            let b = (self.slots[last].start + self.slots[last].len).min(to);
            // Rows of the group lie in [a, b): no span inside reaches b - 1 - a.
            if b - 1 - a < min_span {
                continue;
            }
            for &i in &g {
                let s = self.slots[i];
                if s.verdict == Verdict::Possible {
                    self.reads
                        .push((s.start.max(from), (s.start + s.len).min(to)));
                }
            }
            self.run_groups.push(g);
        }
    }

    /// The matches, and the rows in the raw-counted slots, from the points read (time
    /// order, every row of the spans of [`Plan::reads`]).
    pub fn assemble(&self, points: &[Point]) -> (Vec<Match>, u64) {
        let (from, to) = self.range;
        let mut spans = Vec::new();
        match self.cond.kind {
            Kind::Window { agg, window } => {
                for r in &self.regions {
                    let rows = slice(points, r.from, r.read_until);
                    spans.extend(scan::windows_opened(
                        &self.cond,
                        agg,
                        window,
                        rows,
                        r.open_until,
                    ));
                }
                for c in &self.chains {
                    let mut pieces = c.pieces.clone();
                    let end = match c.tail {
                        Tail::At(e) => e,
                        Tail::Read(a, b) => slice(points, a, b)
                            .iter()
                            .filter(|p| p.value().is_some())
                            .map(|p| p.t)
                            .max()
                            .unwrap_or(Micros::MIN),
                    };
                    if let Some(last) = pieces.last_mut() {
                        last.to = last.to.max(end);
                    }
                    spans.extend(pieces);
                }
            }
            Kind::Run { min_span, max_gap } => {
                for g in &self.run_groups {
                    let mut rows: Vec<(Micros, bool)> = Vec::new();
                    for &i in g {
                        let s = self.slots[i];
                        match (s.verdict, s.features) {
                            (Verdict::Certain, Some(f)) => {
                                rows.push((f.first.0, true));
                                rows.push((f.last.0, true));
                            }
                            _ => rows.extend(
                                slice(points, s.start.max(from), (s.start + s.len).min(to))
                                    .iter()
                                    .map(|p| {
                                        (
                                            p.t,
                                            p.value().is_some_and(|v| {
                                                self.cond.op.holds(v, self.cond.x)
                                            }),
                                        )
                                    }),
                            ),
                        }
                    }
                    spans.extend(scan::runs(rows, min_span, max_gap));
                }
            }
        }
        let raw_rows = self
            .slots
            .iter()
            .filter(|s| s.raw)
            .map(|s| slice(points, s.start.max(from), (s.start + s.len).min(to)).len() as u64)
            .sum();
        (scan::merge(spans), raw_rows)
    }
}
