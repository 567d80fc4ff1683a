//! The stored sliding-window DFT index (`[[index.subsequence]]`): building it from the
//! stored rows ([`build`]) and answering `recalcd match --metric euclid --within D`
//! through it ([`within`]).
//!
//! A query splits the device's numbers in the range into *parts* in time order: runs
//! of consecutive boxes the index vouches for (*segments*: boxes of the latest build,
//! wholly inside the range, whose rows from their first window's first row to their
//! last window's last row meet no dirty mark, no row still flagged and not the
//! `--like` span) and the rows between them, read raw. Boxes carry the number of
//! windows they hold, so the position of every part in the series is known without
//! reading a segment's rows. A window of `p·w` values is a candidate when one of its
//! `p` pieces starts at a raw row or in a box flagged for that piece
//! ([`crate::index::subsequence::windows::candidate_starts`]); only the boxes holding
//! candidates' rows are read (`time` from a box's first row to its last window's first
//! row: exactly its windows' starts), and each candidate is recomputed exactly with
//! the function the profile uses, then chosen by the same [`Selector`]. The answer is
//! the exhaustive profile's.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::config::subsequence::WindowParams;
use crate::config::{Config, SubsequenceIndexConfig};
use crate::index::subsequence::exact::Pattern;
use crate::index::subsequence::select::Selector;
use crate::index::subsequence::windows::{candidate_starts, euclid_within, Probe, WindowIndex};
use crate::index::subsequence::{Match, Query, QueryError};
use crate::index::{merge_spans, Micros, Point, DAY};
use crate::store::index::{Built, IndexStore, ALL_TIME};
use crate::store::subsequence::{mark_channel, StoredBox, MARK_SPAN, SUBSEQUENCE};
use crate::store::{self, AnyStore, Store, StoreError};

/// Windows a build computes at a time (a multiple of any group is taken).
const CHUNK_WINDOWS: usize = 1 << 16;

/// Boxes written at a time by a build.
const WRITE_BOXES: usize = 4096;

/// Spans read by one query when reading candidate boxes.
const READ_SPANS: usize = 2048;

/// Boxes of one device from its numbers pushed in time order.
#[derive(Debug)]
pub struct Boxer {
    params: WindowParams,
    id: i32,
    generation: i64,
    values: Vec<f64>,
    times: Vec<Micros>,
    /// The ordinal of the window starting at `values[0]`.
    next_window: i64,
}

impl Boxer {
    /// A boxer for device `id`, build `generation`.
    pub fn new(params: WindowParams, id: i32, generation: i64) -> Boxer {
        Boxer {
            params,
            id,
            generation,
            values: Vec::new(),
            times: Vec::new(),
            next_window: 0,
        }
    }

    /// Takes the numbers of `points` (in time order, after those pushed before);
    /// returns the boxes completed.
    pub fn push(&mut self, points: &[Point]) -> Vec<StoredBox> {
        for p in points {
            if let Some(v) = p.value() {
                self.values.push(v);
                self.times.push(p.t);
            }
        }
        let g = self.params.group;
        let chunk = CHUNK_WINDOWS.div_ceil(g) * g;
        let mut out = Vec::new();
        while self.values.len() >= chunk + self.params.window - 1 {
            out.extend(self.emit(chunk));
        }
        out
    }

    /// The boxes of the numbers left.
    pub fn finish(mut self) -> Vec<StoredBox> {
        let w = self.params.window;
        if self.values.len() < w {
            return Vec::new();
        }
        let windows = self.values.len() + 1 - w;
        self.emit(windows)
    }

    /// The boxes of the first `windows` windows (a multiple of the group unless the
    /// last), dropping the values only they start.
    fn emit(&mut self, windows: usize) -> Vec<StoredBox> {
        let WindowParams {
            window: w,
            coefficients: f,
            group: g,
        } = self.params;
        let mut out = Vec::new();
        if let Ok(index) = WindowIndex::build(&self.values[..windows + w - 1], w, f, g) {
            let err = index.feature_err();
            for (first, count, bounds) in index.boxes() {
                let mut b = bounds.to_vec();
                b.push(err);
                out.push(StoredBox {
                    id: self.id,
                    generation: self.generation,
                    first_window: self.next_window + first as i64,
                    windows: count as u32,
                    first_time: self.times[first],
                    last_start: self.times[first + count - 1],
                    last_time: self.times[first + count - 1 + w - 1],
                    bounds: b,
                });
            }
        }
        self.values.drain(..windows);
        self.times.drain(..windows);
        self.next_window += windows as i64;
        out
    }
}

/// What a build did.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// The index as recorded after the build.
    pub built: Built,
    /// Devices built.
    pub devices: usize,
    /// Numbers read.
    pub values: u64,
    /// Boxes written.
    pub boxes: u64,
    /// Set when an index built with other parameters was replaced: those parameters.
    pub replaced: Option<String>,
}

/// Builds the subsequence index `decl` over `range` (`None`: all time) for device
/// `only` or every device it covers; `fresh` drops a built one first. Each device is
/// built anew over the index's whole range (the one built before, widened by `range`):
/// its boxes are written under a new generation, its older ones retired, and the dirty
/// marks read before its rows cleared.
///
/// # Errors
/// [`StoreError`] if the data store or the index database fails.
pub async fn build(
    config: &Config,
    decl: &SubsequenceIndexConfig,
    range: Option<(Micros, Micros)>,
    only: Option<i32>,
    fresh: bool,
) -> Result<BuildReport, StoreError> {
    let data = store::connect(config).await?;
    data.check_schema().await?;
    let mut index = IndexStore::connect(config).await?;
    let params_text = decl.params_text();
    let existing = index.built_kind(SUBSEQUENCE, &decl.channel).await?;
    let mut replaced = None;
    let mut built = match existing {
        Some(b) if !fresh && b.params == params_text => b,
        other => {
            replaced = other.filter(|b| b.params != params_text).map(|b| b.params);
            index
                .create_subsequence(&config.tables, &decl.channel, &params_text)
                .await?
        }
    };
    let span = range.unwrap_or(ALL_TIME);
    let span = built
        .range
        .map_or(span, |(f, t)| (f.min(span.0), t.max(span.1)));
    let generation = chrono::Utc::now().timestamp_micros();
    let mut devices: Vec<(i32, Micros, Micros)> = data.data_extent(Some(span)).await?;
    devices.retain(|(id, _, _)| decl.covers(*id) && only.is_none_or(|want| want == *id));
    let (mut values, mut boxes) = (0u64, 0u64);
    for &(id, first, last) in &devices {
        let marks = data.subsequence_marks(&decl.channel, id).await?;
        let mut boxer = Boxer::new(decl.params, id, generation);
        let mut pending: Vec<StoredBox> = Vec::new();
        let (from, to) = (first.max(span.0), last.saturating_add(1).min(span.1));
        let mut t = from;
        let mut length = DAY;
        while t < to {
            let end = to.min(t.saturating_add(length));
            let points = data.load_points(&decl.channel, id, &[(t, end)]).await?;
            values += points.len() as u64;
            pending.extend(boxer.push(&points));
            if pending.len() >= WRITE_BOXES {
                boxes += pending.len() as u64;
                index.write_boxes(&built, &pending).await?;
                pending.clear();
            }
            length = adapt(length, points.len());
            t = end;
        }
        pending.extend(boxer.finish());
        boxes += pending.len() as u64;
        index.write_boxes(&built, &pending).await?;
        index.retire_boxes(&built, id, generation).await?;
        let done: Vec<_> = marks
            .into_iter()
            .filter(|m| {
                let s = crate::index::micros(m.start);
                span.0 <= s && s < span.1
            })
            .collect();
        data.clear_dirty(&done).await?;
    }
    built.range = Some(span);
    let size = index.subsequence_size(&built).await?;
    built.points = size.points;
    built.other = 0;
    built.built_at = chrono::Utc::now().naive_utc();
    built.updated_at = built.built_at;
    index.record(&built).await?;
    Ok(BuildReport {
        built,
        devices: devices.len(),
        values,
        boxes,
        replaced,
    })
}

/// The next read's length: halved after a heavy read, doubled after a light one (aims
/// at about 2^18 rows a read).
fn adapt(length: Micros, rows: usize) -> Micros {
    const AIM: usize = 1 << 18;
    if rows > 2 * AIM {
        (length / 2).max(1)
    } else if rows < AIM / 2 {
        length.saturating_mul(2)
    } else {
        length
    }
}

/// A run of the series in time order: raw rows, or a segment of vouched boxes.
#[derive(Debug)]
enum Part {
    Raw {
        ord: usize,
        values: Vec<f64>,
        times: Vec<Micros>,
    },
    Segment {
        ord: usize,
        boxes: Vec<StoredBox>,
    },
}

/// What a query through the stored index found and cost.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The matches with their first and last row's times.
    pub matches: Vec<(Match, Micros, Micros)>,
    /// Numbers in the range.
    pub n: usize,
    /// Windows recomputed exactly.
    pub candidates: u64,
    /// Rows read.
    pub rows_read: u64,
    /// Of them, not numbers.
    pub dropped: u64,
    /// Milliseconds reading rows and boxes.
    pub load_ms: u64,
}

/// Why the stored index did not answer.
#[derive(Debug, thiserror::Error)]
pub enum WithinError {
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The query cannot be answered at all.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// A box's rows are not those it was built from (a row written without a mark):
    /// the caller runs the profile.
    #[error("the rows of a box built at {0} changed without a mark (rebuild the index with `recalcd index build --kind subsequence`)")]
    Changed(String),
}

/// Answers `query` (a Euclidean range query, `radius` its `within`) for `pattern` over
/// device `id`'s numbers of `channel` in `range` through the built index `built`
/// (parameters `params`). `like`: the span the pattern was taken from (its own
/// occurrence is excluded as the profile excludes it).
///
/// # Errors
/// [`WithinError`].
#[allow(clippy::too_many_arguments)]
pub async fn within(
    data: &AnyStore,
    index: &IndexStore,
    built: &Built,
    params: WindowParams,
    channel: &str,
    id: i32,
    range: (Micros, Micros),
    pattern: &Pattern,
    query: &Query,
    radius: f64,
    like: Option<(Micros, Micros)>,
) -> Result<Outcome, WithinError> {
    let (from, to) = range;
    let w = params.window;
    let m = pattern.len();
    let mut load_ms = 0u64;
    let (mut rows_read, mut dropped) = (0u64, 0u64);
    let started = Instant::now();
    let mut untrusted = data
        .untrusted(&mark_channel(channel), id, (MARK_SPAN, MARK_SPAN), range)
        .await?;
    if let Some(span) = like {
        untrusted.push(span);
    }
    let untrusted = merge_spans(untrusted);
    let boxes = index.load_boxes(built, id, range).await?;
    load_ms += started.elapsed().as_millis() as u64;
    let trusted = |b: &StoredBox| {
        !untrusted
            .iter()
            .any(|&(a, z)| a <= b.last_time && b.first_time < z)
    };
    // Segments: runs of consecutive trusted boxes.
    let mut segments: Vec<Vec<StoredBox>> = Vec::new();
    for b in boxes.into_iter().filter(|b| trusted(b)) {
        match segments.last_mut() {
            Some(s)
                if s.last()
                    .is_some_and(|p| p.first_window + i64::from(p.windows) == b.first_window) =>
            {
                s.push(b)
            }
            _ => segments.push(vec![b]),
        }
    }
    // The parts, raw rows read between the segments.
    let mut parts: Vec<Part> = Vec::new();
    let mut n = 0usize;
    let mut t = from;
    for seg in segments.into_iter().chain(std::iter::once(Vec::new())) {
        let z = seg.first().map_or(to, |b| b.first_time);
        if t < z {
            let started = Instant::now();
            let points = data.load_points(channel, id, &[(t, z)]).await?;
            load_ms += started.elapsed().as_millis() as u64;
            rows_read += points.len() as u64;
            let (mut values, mut times) = (Vec::new(), Vec::new());
            for p in &points {
                match p.value() {
                    Some(v) => {
                        values.push(v);
                        times.push(p.t);
                    }
                    None => dropped += 1,
                }
            }
            if !values.is_empty() {
                let len = values.len();
                parts.push(Part::Raw {
                    ord: n,
                    values,
                    times,
                });
                n += len;
            }
        }
        if let Some(last) = seg.last() {
            t = last.last_start + 1;
            let windows: usize = seg.iter().map(|b| b.windows as usize).sum();
            parts.push(Part::Segment { ord: n, boxes: seg });
            n += windows;
        }
    }
    if n < m {
        return Err(QueryError::LongPattern { m, n }.into());
    }
    // Candidates.
    let probe = Probe::new(&pattern.raw, w, params.coefficients, radius)
        .map_err(|e| WithinError::Changed(e.to_string()))?;
    let mut unvouched = Vec::new();
    let mut flagged: Vec<Vec<(usize, usize)>> = vec![Vec::new(); probe.pieces()];
    for part in &parts {
        match part {
            Part::Raw { ord, values, .. } => unvouched.push((*ord, ord + values.len())),
            Part::Segment { ord, boxes } => {
                let mut o = *ord;
                for b in boxes {
                    let k = b.windows as usize;
                    for (i, f) in flagged.iter_mut().enumerate() {
                        if probe.may_hold(i, b.lo_hi(), b.err()) {
                            f.push((o, o + k));
                        }
                    }
                    o += k;
                }
            }
        }
    }
    let runs = candidate_starts(n + 1 - m, w, &unvouched, &flagged);
    let forbidden_at = like
        .map(|(a, _)| a)
        .filter(|&a| from <= a && a < to)
        .map(|a| ordinal_of(&parts, a));

    // The rows the candidates need, as runs of ordinals, and the boxes holding them.
    let mut need: Vec<(usize, usize)> = Vec::new();
    for &(a, b) in &runs {
        match need.last_mut() {
            Some(l) if a <= l.1 => l.1 = l.1.max(b + m - 1),
            _ => need.push((a, b + m - 1)),
        }
    }
    // Rows by ordinal: (first ordinal) → (values, times).
    let mut rows: BTreeMap<usize, (Vec<f64>, Vec<Micros>)> = BTreeMap::new();
    let mut to_read: Vec<(usize, StoredBox)> = Vec::new();
    for part in parts {
        match part {
            Part::Raw { ord, values, times } => {
                rows.insert(ord, (values, times));
            }
            Part::Segment { ord, boxes } => {
                let mut o = ord;
                for b in boxes {
                    let k = b.windows as usize;
                    let i = need.partition_point(|r| r.1 <= o);
                    if need.get(i).is_some_and(|r| r.0 < o + k) {
                        to_read.push((o, b));
                    }
                    o += k;
                }
            }
        }
    }
    for chunk in to_read.chunks(READ_SPANS) {
        // Runs of adjacent boxes read as one span (one query per span on QuestDB).
        let mut spans: Vec<(Micros, Micros)> = Vec::new();
        let mut next_ord = None;
        for (o, b) in chunk {
            match spans.last_mut() {
                Some(last) if next_ord == Some(*o) => last.1 = b.last_start + 1,
                _ => spans.push((b.first_time, b.last_start + 1)),
            }
            next_ord = Some(o + b.windows as usize);
        }
        let started = Instant::now();
        let points = data.load_points(channel, id, &spans).await?;
        load_ms += started.elapsed().as_millis() as u64;
        rows_read += points.len() as u64;
        for (o, b) in chunk {
            let o = *o;
            let lo = points.partition_point(|p| p.t < b.first_time);
            let hi = points.partition_point(|p| p.t <= b.last_start);
            let (mut values, mut times) = (Vec::new(), Vec::new());
            for p in &points[lo..hi] {
                match p.value() {
                    Some(v) => {
                        values.push(v);
                        times.push(p.t);
                    }
                    None => dropped += 1,
                }
            }
            if values.len() != b.windows as usize {
                return Err(WithinError::Changed(crate::service::search::stamp(
                    b.first_time,
                )));
            }
            rows.insert(o, (values, times));
        }
    }
    // Exact recomputation of the candidates.
    let limit = radius * radius;
    let mut selector = Selector::new(query, forbidden_at.is_some());
    let mut candidates = 0u64;
    let mut times_of: BTreeMap<usize, Micros> = BTreeMap::new();
    let mut r = 0;
    for &(s, z) in &need {
        let (values, times) = gather(&rows, s, z);
        if values.len() != z - s {
            return Err(WithinError::Changed(format!("row {s}")));
        }
        while let Some(&(a, b)) = runs.get(r).filter(|run| run.0 < z) {
            for j in a..b {
                candidates += 1;
                if let Some(d) = euclid_within(pattern, &values[j - s..j - s + m], limit) {
                    selector.offer(j, d);
                    times_of.insert(j, times[j - s]);
                    times_of.insert(j + m - 1, times[j - s + m - 1]);
                }
            }
            r += 1;
        }
    }
    let forbidden = forbidden_at.filter(|&a| a + m <= n).map(|a| {
        (
            a.saturating_sub(query.exclusion - 1),
            a + query.exclusion - 1,
        )
    });
    let matches = selector
        .finish(forbidden)
        .into_iter()
        .filter_map(|f| {
            Some((
                f,
                *times_of.get(&f.start)?,
                *times_of.get(&(f.start + m - 1))?,
            ))
        })
        .collect();
    Ok(Outcome {
        matches,
        n,
        candidates,
        rows_read,
        dropped,
        load_ms,
    })
}

/// The values and times of ordinals `[s, z)` from the rows read (every one of them was).
fn gather(
    rows: &BTreeMap<usize, (Vec<f64>, Vec<Micros>)>,
    s: usize,
    z: usize,
) -> (Vec<f64>, Vec<Micros>) {
    let mut values = Vec::with_capacity(z - s);
    let mut times = Vec::with_capacity(z - s);
    let first = rows.range(..=s).next_back().map_or(s, |(k, _)| *k);
    for (&o, (v, t)) in rows.range(first..z) {
        let a = s.max(o) - o;
        let b = (z - o).min(v.len());
        if a < b {
            values.extend_from_slice(&v[a..b]);
            times.extend_from_slice(&t[a..b]);
        }
    }
    (values, times)
}

/// The number of numbers before time `at` (the segments' start rows all lie on one
/// side of it: boxes meeting the `--like` span are not trusted).
fn ordinal_of(parts: &[Part], at: Micros) -> usize {
    let mut n = 0;
    for part in parts {
        match part {
            Part::Raw { ord, times, .. } => {
                let k = times.partition_point(|&t| t < at);
                if k < times.len() {
                    return ord + k;
                }
                n = ord + times.len();
            }
            Part::Segment { ord, boxes } => {
                n = *ord;
                for b in boxes {
                    if b.first_time >= at {
                        return n;
                    }
                    n += b.windows as usize;
                }
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::subsequence::windows::features;

    /// Boxes built in chunks, as a build reads them, tile the windows in order, map
    /// back to their rows' times and bound every window's features.
    #[test]
    fn chunked_boxes_tile_the_windows_and_bound_their_features() {
        let params = WindowParams {
            window: 16,
            coefficients: 3,
            group: 50,
        };
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut level = 0.0;
        let points: Vec<Point> = (0..CHUNK_WINDOWS + 3000)
            .map(|i| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                level += (rng % 1000) as f64 / 500.0 - 1.0;
                Point {
                    t: 10 * i as Micros,
                    v: (!rng.is_multiple_of(97)).then_some(level),
                }
            })
            .collect();
        let mut boxer = Boxer::new(params, 3, 7);
        let mut boxes = Vec::new();
        for piece in points.chunks(7777) {
            boxes.extend(boxer.push(piece));
        }
        boxes.extend(boxer.finish());
        let numbers: Vec<Point> = points.iter().filter(|p| p.v.is_some()).copied().collect();
        let values: Vec<f64> = numbers.iter().filter_map(Point::value).collect();
        let w = params.window;
        assert_eq!(
            boxes.iter().map(|b| b.windows as usize).sum::<usize>(),
            values.len() + 1 - w
        );
        let mut next = 0usize;
        let mut feat = Vec::new();
        for b in &boxes {
            assert_eq!(b.first_window as usize, next);
            assert!(b.windows as usize <= params.group);
            let k = b.windows as usize;
            assert_eq!(b.first_time, numbers[next].t);
            assert_eq!(b.last_start, numbers[next + k - 1].t);
            assert_eq!(b.last_time, numbers[next + k - 1 + w - 1].t);
            let d = b.lo_hi().len() / 2;
            for s in next..next + k {
                features(&values[s..s + w], params.coefficients, &mut feat);
                for (i, &x) in feat.iter().enumerate() {
                    assert!(
                        b.lo_hi()[i] - b.err() <= x && x <= b.lo_hi()[d + i] + b.err(),
                        "window {s} dimension {i}"
                    );
                }
            }
            next += k;
        }
    }
}
