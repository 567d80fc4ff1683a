//! One condition search over one device's channel: the engines, behind one SANS-IO state
//! machine so that this layer stays pure while the stores are async.
//!
//! The caller asks [`Search::next`] what the search needs — buckets of a level, or raw
//! points in some spans — answers with [`Search::give_buckets`] or
//! [`Search::give_points`], and repeats until [`Step::Done`]. Every engine gives exactly
//! the answer of [`scan::brute_force`] over the rows in the range (the tests hold each
//! engine to it).
//!
//! The engines ([`Method`]):
//! - **Scan** reads every row of the range and evaluates it (O(n)). The only engine
//!   without an index, and the best when most of the range could match.
//! - **Filtering** (the seed's filtering search) judges the coarsest level's buckets and
//!   descends only under buckets where a match is possible or certain, down to the finest
//!   level not shorter than the window (for `RUN` and `SUM`, the finest level: for `RUN`
//!   finer buckets only cut what must be read; a `SUM` window's bound is the sum of the
//!   buckets it can reach, one window plus one bucket long, so it tightens from two
//!   windows' worth at a window-long level to little more than one at a finer one). It
//!   wins for `MIN`, `MAX`, `RUN` and `SUM`, whose bounds tighten as buckets shrink, and
//!   for selective conditions.
//! - **Fixed** (the seed's fixed-interval search) judges only the level closest to the
//!   window, each bucket with the buckets following it within a window (windows straddle
//!   bucket edges). It wins for `AVG`, whose bound (the values' range) does not tighten
//!   much going down.
//! - **Auto** picks filtering for `MIN`, `MAX`, `RUN` and `SUM`, fixed for `AVG`, and
//!   scans when there is no index or when, once the final level is judged, most rows
//!   (with the windows' margins) would be read anyway.
//!
//! Both indexed engines judge each bucket three ways ([`Verdict`]): *no match* (skipped,
//! children too), *certain* (its windows' spans follow from the features; rows are read
//! only where the last window ends), *possible* (read with a window's margin). Buckets
//! cut by the range or overlapping an *untrusted* span (dirty buckets, rows still
//! flagged) are never trusted: they are read raw.

use std::collections::BTreeMap;
use std::fmt;

use super::condition::{Agg, Condition, Kind};
use super::feature::{Bucket, Features, Levels};
use super::judge::{judge, Verdict};
use super::merge_spans;
use super::plan::{Known, Plan, Slot};
use super::scan::{self, Match};
use super::{datetime, Micros, Point};

/// Beyond this share of the rows to read (judged at the final level), `Auto` scans
/// instead.
const UNSELECTIVE: f64 = 0.7;

/// A search engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Pick one (see the module's docs).
    Auto,
    /// Descend the levels from the coarsest.
    Filtering,
    /// Judge the level closest to the window.
    Fixed,
    /// Read every row.
    Scan,
}

impl Method {
    /// The method's name as the command line and the JSON output spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Auto => "auto",
            Method::Filtering => "filtering",
            Method::Fixed => "fixed",
            Method::Scan => "scan",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the search needs next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Every stored bucket of `level` whose start lies in one of `spans` (half-open, in
    /// time order).
    Buckets {
        /// The level (0 = coarsest).
        level: usize,
        /// Half-open spans of bucket starts.
        spans: Vec<(Micros, Micros)>,
    },
    /// Every raw point in these half-open spans (disjoint, in time order), in time order.
    Points {
        /// Half-open spans of row times.
        spans: Vec<(Micros, Micros)>,
    },
    /// The answer.
    Done(Outcome),
}

/// The answer of a search, and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The matches, in time order, disjoint.
    pub matches: Vec<Match>,
    /// The engine used.
    pub method: Method,
    /// How many rows of the channel lie in the range (exact).
    pub rows_in_range: u64,
    /// How many raw points the search was given.
    pub rows_read: u64,
    /// How many buckets it was given, per level.
    pub buckets_read: Vec<u64>,
}

/// Why a search cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    /// `to <= from`.
    #[error("the range is empty: --to {to} is not after --from {from}")]
    EmptyRange {
        /// `--from` as written back.
        from: String,
        /// `--to` as written back.
        to: String,
    },
    /// The window (or a RUN's span) cannot fit in the range.
    #[error("the condition's window ({window}) is longer than the range ({range})")]
    WindowLongerThanRange {
        /// The window.
        window: String,
        /// The range's length.
        range: String,
    },
    /// An indexed method forced on a channel without a feature index.
    #[error(
        "--method {method} needs a feature index on this channel: build one with \
         `recalcd index build --channel <channel>` (or use --method auto or scan)"
    )]
    NoIndex {
        /// The method asked for.
        method: Method,
    },
    /// An answer the search did not ask for (a driver's bug).
    #[error("the search was given {given} while it needs {needs}")]
    Unexpected {
        /// What was given.
        given: &'static str,
        /// What it needs.
        needs: &'static str,
    },
}

impl SearchError {
    /// Whether a scan would answer instead (the index is missing).
    pub fn can_scan_instead(&self) -> bool {
        matches!(self, SearchError::NoIndex { .. })
    }
}

/// What the search waits for.
#[derive(Debug, Clone, PartialEq)]
enum Pending {
    /// Buckets of a level to judge.
    Judge {
        level: usize,
        spans: Vec<(Micros, Micros)>,
    },
    /// Buckets no longer than the window under certain buckets.
    Refine {
        level: usize,
        spans: Vec<(Micros, Micros)>,
    },
    /// The raw points of the plan (or of the whole range, when scanning).
    Points {
        spans: Vec<(Micros, Micros)>,
    },
    Done(Outcome),
}

/// The final level's judgement, kept while certain buckets are refined.
struct Final {
    slots: Vec<Slot>,
    known: Known,
}

/// One search over one device (see the module's docs).
pub struct Search {
    /// The condition.
    cond: Condition,
    /// The index's levels, when there is one.
    levels: Option<Levels>,
    /// The range, half-open.
    from: Micros,
    to: Micros,
    /// Spans whose buckets are not trusted (merged, in time order).
    untrusted: Vec<(Micros, Micros)>,
    /// Whether the method was left to the search (it may switch to a scan).
    auto: bool,
    /// The engine in use.
    method: Method,
    /// The level where the descent stops.
    stop: usize,
    /// What the search waits for.
    pending: Pending,
    /// Rows counted from trusted buckets that are settled (no descent, no raw read).
    rows_settled: u64,
    rows_read: u64,
    buckets_read: Vec<u64>,
    /// Spans (aligned to the pending level's buckets) whose buckets are to be judged.
    parents: Vec<(Micros, Micros)>,
    /// RUN: times inside buckets whose rows all fail.
    breakers: Vec<Micros>,
    /// RUN: certain buckets above the final level, kept whole.
    carried: Vec<Slot>,
    /// The final level's judgement while refining.
    last: Option<Final>,
    /// The plan whose points are pending.
    plan: Option<Plan>,
}

impl Search {
    /// A search of `cond` over `[range.0, range.1)` using `levels` (None: no feature
    /// index), trusting no bucket that overlaps a span of `untrusted`.
    ///
    /// # Errors
    /// An empty range, a window longer than the range, an indexed method forced
    /// without an index.
    pub fn new(
        cond: &Condition,
        levels: Option<&Levels>,
        range: (Micros, Micros),
        untrusted: Vec<(Micros, Micros)>,
        method: Method,
    ) -> Result<Search, SearchError> {
        let (from, to) = range;
        if to <= from {
            return Err(SearchError::EmptyRange {
                from: datetime(from).to_string(),
                to: datetime(to).to_string(),
            });
        }
        if cond.length() > to - from {
            let text = |l: Micros| {
                let mut s = String::new();
                let _ = super::feature::write_length(&mut s, l);
                s
            };
            return Err(SearchError::WindowLongerThanRange {
                window: text(cond.length()),
                range: text(to - from),
            });
        }
        let chosen = match (method, levels) {
            (Method::Filtering | Method::Fixed, None) => {
                return Err(SearchError::NoIndex { method })
            }
            (_, None) | (Method::Scan, _) => Method::Scan,
            (Method::Auto, Some(_)) => match cond.kind {
                Kind::Window { agg: Agg::Avg, .. } => Method::Fixed,
                _ => Method::Filtering,
            },
            (m, Some(_)) => m,
        };
        // Not cut to the range: a span just past it still taints the bucket cut by it.
        let untrusted = merge_spans(untrusted);
        let mut search = Search {
            cond: *cond,
            levels: levels.cloned(),
            from,
            to,
            untrusted,
            auto: method == Method::Auto,
            method: chosen,
            stop: 0,
            pending: Pending::Points {
                spans: vec![(from, to)],
            },
            rows_settled: 0,
            rows_read: 0,
            buckets_read: vec![0; levels.map_or(0, Levels::len)],
            parents: Vec::new(),
            breakers: Vec::new(),
            carried: Vec::new(),
            last: None,
            plan: None,
        };
        if let Some(levels) = levels {
            let (start, stop) = match chosen {
                Method::Fixed => {
                    let l = closest_level(levels, cond.length());
                    (l, l)
                }
                _ => (0, stop_level(levels, cond)),
            };
            if chosen != Method::Scan {
                search.stop = stop;
                search.parents = vec![(levels.bucket_start(start, from), to)];
                search.pending = Pending::Judge {
                    level: start,
                    spans: search.request_spans(start),
                };
            }
        }
        Ok(search)
    }

    /// What the search needs next (the same step until it is answered).
    // Not an iterator: asking twice gives the same step; the answer advances it.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Step {
        match &self.pending {
            Pending::Judge { level, spans } | Pending::Refine { level, spans } => Step::Buckets {
                level: *level,
                spans: spans.clone(),
            },
            Pending::Points { spans } => Step::Points {
                spans: spans.clone(),
            },
            Pending::Done(o) => Step::Done(o.clone()),
        }
    }

    /// The engine in use (it may change from an indexed one to a scan under `Auto`).
    pub fn method(&self) -> Method {
        self.method
    }

    /// Answers a [`Step::Buckets`]: every stored bucket of the level whose start lies in
    /// the spans asked for, in any order.
    ///
    /// # Errors
    /// [`SearchError::Unexpected`] when the search did not ask for buckets.
    pub fn give_buckets(&mut self, buckets: Vec<Bucket>) -> Result<(), SearchError> {
        let (level, spans, refine) = match &self.pending {
            Pending::Judge { level, spans } => (*level, spans.clone(), false),
            Pending::Refine { level, spans } => (*level, spans.clone(), true),
            _ => {
                return Err(SearchError::Unexpected {
                    given: "buckets",
                    needs: self.needs(),
                })
            }
        };
        self.buckets_read[level] += buckets.len() as u64;
        let inside = |t: Micros| spans.iter().any(|s| s.0 <= t && t < s.1);
        let known: BTreeMap<Micros, Features> = buckets
            .into_iter()
            .filter(|b| b.level == level && inside(b.start))
            .map(|b| (b.start, b.features))
            .collect();
        if refine {
            if let Some(mut last) = self.last.take() {
                last.known.sub = known;
                self.plan_reads(last);
            }
        } else {
            self.judge_level(level, known, spans);
        }
        Ok(())
    }

    /// Answers a [`Step::Points`]: every raw point in the spans asked for, in time order.
    ///
    /// # Errors
    /// [`SearchError::Unexpected`] when the search did not ask for points.
    pub fn give_points(&mut self, mut points: Vec<Point>) -> Result<(), SearchError> {
        if !matches!(self.pending, Pending::Points { .. }) {
            return Err(SearchError::Unexpected {
                given: "points",
                needs: self.needs(),
            });
        }
        self.rows_read += points.len() as u64;
        if !points.is_sorted_by_key(|p| p.t) {
            points.sort_by_key(|p| p.t);
        }
        let (matches, rows_in_range) = match self.plan.take() {
            Some(plan) => {
                let (matches, raw) = plan.assemble(&points);
                (matches, self.rows_settled + raw)
            }
            None => {
                let inside: Vec<Point> = points
                    .into_iter()
                    .filter(|p| self.from <= p.t && p.t < self.to)
                    .collect();
                (scan::evaluate(&self.cond, &inside), inside.len() as u64)
            }
        };
        self.pending = Pending::Done(self.outcome(matches, rows_in_range));
        Ok(())
    }

    fn outcome(&self, matches: Vec<Match>, rows_in_range: u64) -> Outcome {
        Outcome {
            matches,
            method: self.method,
            rows_in_range,
            rows_read: self.rows_read,
            buckets_read: self.buckets_read.clone(),
        }
    }

    fn needs(&self) -> &'static str {
        match self.pending {
            Pending::Judge { .. } | Pending::Refine { .. } => "buckets",
            Pending::Points { .. } => "points",
            Pending::Done(_) => "nothing (it is done)",
        }
    }

    fn levels(&self) -> &Levels {
        // Only the indexed engines call this, and they exist only with levels.
        self.levels
            .as_ref()
            .unwrap_or_else(|| unreachable!("an indexed search without levels"))
    }

    /// The window of a window condition (0 for RUN: its buckets need no margin).
    fn margin(&self) -> Micros {
        match self.cond.kind {
            Kind::Window { window, .. } => window,
            Kind::Run { .. } => 0,
        }
    }

    /// The spans of bucket starts to fetch at `level`: the parents, each with the
    /// margin their windows reach into, cut at the range's end.
    fn request_spans(&self, _level: usize) -> Vec<(Micros, Micros)> {
        let margin = self.margin();
        merge_spans(
            self.parents
                .iter()
                .map(|&(a, b)| (a, b.saturating_add(margin).min(self.to)))
                .collect(),
        )
    }

    /// Whether `[a, b)` overlaps an untrusted span.
    fn is_untrusted(&self, a: Micros, b: Micros) -> bool {
        let i = self.untrusted.partition_point(|s| s.1 <= a);
        self.untrusted.get(i).is_some_and(|s| s.0 < b)
    }

    /// Whether the bucket at `start` of length `len` is read raw.
    fn is_raw(&self, start: Micros, len: Micros) -> bool {
        start < self.from || start + len > self.to || self.is_untrusted(start, start + len)
    }

    /// The bucket starts of `level` to judge: fetched ones and untrusted ones (which may
    /// hold rows without a bucket), under the parents.
    fn candidates(&self, level: usize, known: &BTreeMap<Micros, Features>) -> Vec<Micros> {
        let levels = self.levels();
        let len = levels.length(level);
        let mut out = Vec::new();
        for &(a, b) in &self.parents {
            let b = b.min(self.to);
            out.extend(known.range(a..b).map(|(s, _)| *s));
            // The last bucket starting before `b` may reach past it into a span.
            let reach = levels.bucket_start(level, b - 1) + len;
            let i = self.untrusted.partition_point(|s| s.1 <= a);
            for &(u0, u1) in self.untrusted[i..].iter().take_while(|s| s.0 < reach) {
                let mut s = levels.bucket_start(level, u0.max(a));
                while s < u1.min(b) {
                    out.push(s);
                    s += len;
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The features of every row a window opened at `start` can hold, or None when an
    /// untrusted bucket lies among them.
    fn cover(
        &self,
        start: Micros,
        len: Micros,
        known: &BTreeMap<Micros, Features>,
    ) -> Option<Features> {
        let end = (start + len).saturating_add(self.margin()).min(self.to);
        // Every bucket starting before `end` counts, whole: an untrusted one taints.
        let reach = start + (end - start + len - 1) / len * len;
        if self.is_untrusted(start, reach) {
            return None;
        }
        let mut cover = Features::EMPTY;
        for (_, f) in known.range(start..end) {
            cover.combine(f);
        }
        Some(cover)
    }

    /// Judges the buckets of `level` and decides what comes next.
    fn judge_level(
        &mut self,
        level: usize,
        known: BTreeMap<Micros, Features>,
        fetched: Vec<(Micros, Micros)>,
    ) {
        let len = self.levels().length(level);
        let mut live = Vec::new();
        for start in self.candidates(level, &known) {
            let features = known.get(&start).copied();
            let raw = self.is_raw(start, len);
            let verdict = match (raw, features) {
                (true, f) => {
                    if f.is_none() && !self.is_untrusted(start, start + len) {
                        continue; // a trusted bucket cut by the range, without rows
                    }
                    Verdict::Possible
                }
                (false, None) => continue,
                (false, Some(f)) => match self.cover(start, len, &known) {
                    None => Verdict::Possible,
                    Some(cover) => judge(&self.cond, &f, &cover),
                },
            };
            let slot = Slot {
                start,
                len,
                verdict,
                features,
                raw,
            };
            if level < self.stop && self.keeps_certain(&slot) {
                // A RUN passes through it whole: its first and last rows stand for it.
                self.rows_settled += features.map_or(0, |f| f.count + f.other);
                self.carried.push(slot);
                continue;
            }
            if !raw && matches!(verdict, Verdict::NoMatch | Verdict::Empty) {
                let f = features.unwrap_or(Features::EMPTY);
                self.rows_settled += f.count + f.other;
                if verdict == Verdict::NoMatch && matches!(self.cond.kind, Kind::Run { .. }) {
                    self.breakers.push(start);
                }
                continue;
            }
            live.push(slot);
        }
        if self.auto && level == self.stop && self.unselective(&live, len) {
            self.switch_to_scan();
            return;
        }
        if level < self.stop {
            self.parents = merge_spans(live.iter().map(|s| (s.start, s.start + len)).collect());
            self.pending = Pending::Judge {
                level: level + 1,
                spans: self.request_spans(level + 1),
            };
            return;
        }
        self.finish(level, live, known, fetched);
    }

    /// Whether a certain bucket above the final level can stand as it is: for RUN, when
    /// no gap inside it can break a run.
    fn keeps_certain(&self, slot: &Slot) -> bool {
        slot.verdict == Verdict::Certain
            && !slot.raw
            && match self.cond.kind {
                Kind::Run { max_gap, .. } => {
                    max_gap.is_none_or(|g| slot.len <= g.saturating_add(1))
                }
                Kind::Window { .. } => false,
            }
    }

    /// Whether reading the possible buckets would read most of the rows.
    /// Judged at the final level only: finer levels often prune what coarser ones could
    /// not, and descending costs only buckets. Possible buckets are read with a window's
    /// margin.
    fn unselective(&self, live: &[Slot], len: Micros) -> bool {
        let rows = |s: &Slot| s.features.map_or(0, |f| f.count + f.other) as f64;
        let widen = 1.0 + self.margin() as f64 / len as f64;
        let possible: f64 = live
            .iter()
            .filter(|s| s.verdict == Verdict::Possible)
            .map(rows)
            .sum::<f64>()
            * widen;
        let total = self.rows_settled as f64 + live.iter().map(rows).sum::<f64>();
        total > 0.0 && possible > UNSELECTIVE * total
    }

    fn switch_to_scan(&mut self) {
        self.method = Method::Scan;
        self.rows_settled = 0;
        self.carried.clear();
        self.plan = None;
        self.pending = Pending::Points {
            spans: vec![(self.from, self.to)],
        };
    }

    /// At the final level: refine certain buckets longer than the window, or plan.
    fn finish(
        &mut self,
        level: usize,
        mut live: Vec<Slot>,
        known: BTreeMap<Micros, Features>,
        fetched: Vec<(Micros, Micros)>,
    ) {
        let len = self.levels().length(level);
        for s in &live {
            if !s.raw {
                self.rows_settled += s.features.map_or(0, |f| f.count + f.other);
            }
        }
        let demote = |live: &mut Vec<Slot>| {
            for s in live.iter_mut() {
                s.verdict = Verdict::Possible;
            }
        };
        let has_certain = live.iter().any(|s| s.verdict == Verdict::Certain);
        let mut refine = None;
        match self.cond.kind {
            Kind::Window { window, .. } if has_certain && len > window => {
                let levels = self.levels();
                match (level + 1..levels.len()).find(|&c| levels.length(c) <= window) {
                    Some(c) => refine = Some(c),
                    None => demote(&mut live),
                }
            }
            Kind::Run {
                max_gap: Some(gap), ..
            } if has_certain && len > gap.saturating_add(1) => demote(&mut live),
            _ => {}
        }
        let sub = if refine.is_none() {
            known.clone()
        } else {
            BTreeMap::new()
        };
        let last = Final {
            known: Known {
                buckets: known,
                fetched,
                sub,
            },
            slots: live,
        };
        match refine {
            Some(c) => {
                let spans = merge_spans(
                    last.slots
                        .iter()
                        .filter(|s| s.verdict == Verdict::Certain)
                        .map(|s| (s.start, s.start + s.len))
                        .collect(),
                );
                self.last = Some(last);
                self.pending = Pending::Refine { level: c, spans };
            }
            None => self.plan_reads(last),
        }
    }

    fn plan_reads(&mut self, last: Final) {
        let breakers = std::mem::take(&mut self.breakers);
        let mut slots = last.slots;
        slots.append(&mut self.carried);
        slots.sort_unstable_by_key(|s| s.start);
        let untrusted = |a: Micros, b: Micros| self.is_untrusted(a, b);
        let plan = Plan::new(
            &self.cond,
            (self.from, self.to),
            slots,
            breakers,
            &last.known,
            &untrusted,
        );
        if plan.reads().is_empty() {
            // Nothing to read: the buckets answered.
            let (matches, raw) = plan.assemble(&[]);
            self.pending = Pending::Done(self.outcome(matches, self.rows_settled + raw));
            return;
        }
        self.pending = Pending::Points {
            spans: plan.reads().to_vec(),
        };
        self.plan = Some(plan);
    }
}

/// The filtering search's last level: the finest not shorter than the window (the
/// finest for RUN and SUM, whose bounds only get better finer down; the coarsest when
/// every level is shorter than the window).
fn stop_level(levels: &Levels, cond: &Condition) -> usize {
    match cond.kind {
        Kind::Run { .. } | Kind::Window { agg: Agg::Sum, .. } => levels.finest(),
        Kind::Window { window, .. } => (0..levels.len())
            .rev()
            .find(|&l| levels.length(l) >= window)
            .unwrap_or(0),
    }
}

/// The fixed-interval search's level: the one closest to `length` by ratio (the
/// coarser on a tie; the finest for a zero length).
fn closest_level(levels: &Levels, length: Micros) -> usize {
    if length <= 0 {
        return levels.finest();
    }
    let distance = |l: usize| (levels.length(l) as f64 / length as f64).ln().abs();
    (0..levels.len())
        .min_by(|&a, &b| distance(a).total_cmp(&distance(b)).then(a.cmp(&b)))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
