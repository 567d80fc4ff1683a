//! `recalcd match`: where a pattern occurs in one device's rows of a channel.
//!
//! Drives the pure profile engine ([`crate::index::subsequence::profile`]) with the
//! device's rows read from the data store in time slices (the slice length adapts to
//! keep each read near [`SLICE_ROWS`] rows), so the memory stays bounded for any range:
//! the engine holds one FFT block and the windows a top-k answer needs, the driver only
//! the rows of the slice in hand and, per slice, where it starts. The times of the
//! matches' first and last rows are read again afterwards, slice by slice, only for the
//! slices that hold them.
//!
//! A Euclidean range query (`--metric euclid --within D`) whose pattern length is a
//! multiple of the window of a built `[[index.subsequence]]` index covering the device
//! runs through that index instead ([`crate::service::window_index::within`]) with
//! `--method auto` or `index`: it reads the stored boxes and only the rows of candidate
//! windows, and answers exactly what the profile answers. Other queries run the
//! profile; `--method index` says why in the answer's note.

use std::time::Instant;

use crate::config::subsequence::WindowParams;
use crate::index::subsequence::exact::Pattern;
use crate::index::subsequence::profile::{Profiler, Refine, DEFAULT_BLOCK};
use crate::index::subsequence::select::Selector;
use crate::index::subsequence::windows;
use crate::index::subsequence::{check_pattern, Metric, Query, QueryError};
use crate::index::{Micros, DAY};
use crate::service::search::stamp;
use crate::service::window_index;
use crate::store::index::{Built, IndexStore};
use crate::store::subsequence::SUBSEQUENCE;
use crate::store::{AnyStore, StoreError};

/// Rows a slice read aims at.
pub const SLICE_ROWS: usize = 1 << 18;

/// Where the pattern comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum PatternSource {
    /// Values from a file.
    Values(Vec<f64>),
    /// The numbers of the same device and channel in a span `[from, to)`; the span's own
    /// occurrence is not a match.
    Like(Micros, Micros),
}

/// The engine asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Method {
    /// The window index where it applies, else the profile.
    #[default]
    Auto,
    /// The sliding-window DFT index.
    Index,
    /// The exact distance profile (MASS).
    Profile,
}

/// What to match.
#[derive(Debug, Clone)]
pub struct Request {
    /// The channel (a data-level `conjoined` name, case-insensitive).
    pub channel: String,
    /// The device.
    pub id: i32,
    /// The range searched, half-open `[from, to)`.
    pub range: (Micros, Micros),
    /// The pattern.
    pub pattern: PatternSource,
    /// k, radius, exclusion (0: the pattern length) and metric.
    pub query: Query,
    /// The engine asked for.
    pub method: Method,
}

/// One match: its first and last row's times and its distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Found {
    /// The device.
    pub id: i32,
    /// The first row's time.
    pub from: Micros,
    /// The last row's time.
    pub to: Micros,
    /// The distance to the pattern.
    pub distance: f64,
}

/// The matches and what they cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The matches, by distance then time.
    pub matches: Vec<Found>,
    /// The engine used: `profile` (the only one with a stored series so far).
    pub method: &'static str,
    /// Windows whose lower bound let them be candidates.
    pub candidates: u64,
    /// Windows recomputed exactly.
    pub refined: u64,
    /// Windows in the range (numbers − m + 1).
    pub total: u64,
    /// Rows of the channel left out as non-numbers (range and `--like` span).
    pub dropped: u64,
    /// Rows read from the store (the range, the `--like` span, the match times).
    pub rows_read: u64,
    /// Milliseconds spent reading rows.
    pub load_ms: u64,
    /// Why the engine asked for was not used, when it was not.
    pub note: Option<String>,
}

/// Why a match failed.
#[derive(Debug, thiserror::Error)]
pub enum MatchFailure {
    /// A store could not answer.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The query or the pattern cannot be used.
    #[error("{0}")]
    Query(#[from] QueryError),
    /// The `--like` span holds no usable pattern.
    #[error("--like: {0}")]
    Like(QueryError),
    /// No row of the device in the range holds the channel.
    #[error("no row of device {id} in the range holds `{channel}`")]
    NoRows {
        /// The device.
        id: i32,
        /// The channel.
        channel: String,
    },
}

impl Answer {
    /// The answer as `recalcd match --format json` and `serve`'s `/api/match` write it:
    /// `{"matches": [{"id", "from", "to", "distance"}], "stats": {"method", "metric",
    /// "candidates", "refined", "total", "dropped", "rows_read", "load_ms", "elapsed_ms"
    /// [, "note"]}}`, `elapsed_ms` the caller's (from reading the request).
    pub fn to_json(&self, metric: Metric, elapsed_ms: u128) -> serde_json::Value {
        let matches: Vec<serde_json::Value> = self
            .matches
            .iter()
            .map(|m| {
                serde_json::json!({
                    "id": m.id, "from": stamp(m.from), "to": stamp(m.to), "distance": m.distance,
                })
            })
            .collect();
        let mut stats = serde_json::json!({
            "method": self.method,
            "metric": metric.as_str(),
            "candidates": self.candidates,
            "refined": self.refined,
            "total": self.total,
            "dropped": self.dropped,
            "rows_read": self.rows_read,
            "load_ms": self.load_ms,
            "elapsed_ms": elapsed_ms,
        });
        if let Some(note) = &self.note {
            stats["note"] = serde_json::json!(note);
        }
        serde_json::json!({"matches": matches, "stats": stats})
    }
}

impl MatchFailure {
    /// Whether the user asked for something that cannot be (exit code 2), rather than
    /// a store failing.
    pub fn is_usage(&self) -> bool {
        !matches!(self, MatchFailure::Store(_))
    }
}

/// One slice read: where its numbers start in the series, how many, its time span.
#[derive(Debug, Clone, Copy)]
struct Slice {
    first: usize,
    count: usize,
    span: (Micros, Micros),
}

/// The numbers of `points` and how many were not numbers.
fn numbers(points: &[crate::index::Point]) -> (Vec<f64>, Vec<Micros>, u64) {
    let mut values = Vec::with_capacity(points.len());
    let mut times = Vec::with_capacity(points.len());
    for p in points {
        if let Some(v) = p.value() {
            values.push(v);
            times.push(p.t);
        }
    }
    let dropped = (points.len() - values.len()) as u64;
    (values, times, dropped)
}

/// Runs `request`.
///
/// # Errors
/// [`MatchFailure`]: a store failing, a bad pattern or query, a pattern longer than the
/// range, a channel the device has no row of.
pub async fn run(
    data: &AnyStore,
    index: Option<&IndexStore>,
    request: &Request,
) -> Result<Answer, MatchFailure> {
    let (from, to) = request.range;
    let mut rows_read = 0u64;
    let mut dropped = 0u64;
    let mut load_ms = 0u64;
    let (values, like) = match &request.pattern {
        PatternSource::Values(v) => {
            check_pattern(v)?;
            (v.clone(), None)
        }
        PatternSource::Like(a, b) => {
            let started = Instant::now();
            let points = data
                .load_points(&request.channel, request.id, &[(*a, *b)])
                .await?;
            load_ms += started.elapsed().as_millis() as u64;
            rows_read += points.len() as u64;
            let (v, _, d) = numbers(&points);
            dropped += d;
            check_pattern(&v).map_err(MatchFailure::Like)?;
            (v, Some(*a))
        }
    };
    let m = values.len();
    let query = Query {
        exclusion: match request.query.exclusion {
            0 => m,
            e => e,
        },
        ..request.query
    };
    query.check()?;
    let mut note = None;
    let pattern = Pattern::new(&values, query.metric);
    if request.method != Method::Profile {
        let forced = request.method == Method::Index;
        match stored_index(index, &request.channel, request.id, m, &query).await? {
            Ok((built, params, radius)) => {
                let like_span = match request.pattern {
                    PatternSource::Like(a, b) => Some((a, b)),
                    PatternSource::Values(_) => None,
                };
                let Some(index) = index else {
                    unreachable!("stored_index needs the index database")
                };
                match window_index::within(
                    data,
                    index,
                    &built,
                    params,
                    &request.channel,
                    request.id,
                    request.range,
                    &pattern,
                    &query,
                    radius,
                    like_span,
                )
                .await
                {
                    Ok(out) => {
                        return Ok(Answer {
                            matches: out
                                .matches
                                .iter()
                                .map(|(f, a, b)| Found {
                                    id: request.id,
                                    from: *a,
                                    to: *b,
                                    distance: f.distance,
                                })
                                .collect(),
                            method: "index",
                            candidates: out.candidates,
                            refined: out.candidates,
                            total: (out.n + 1 - m) as u64,
                            dropped: dropped + out.dropped,
                            rows_read: rows_read + out.rows_read,
                            load_ms: load_ms + out.load_ms,
                            note: None,
                        })
                    }
                    Err(window_index::WithinError::Store(e)) => return Err(e.into()),
                    Err(window_index::WithinError::Query(e)) => return Err(e.into()),
                    Err(e @ window_index::WithinError::Changed(_)) => {
                        note = Some(format!("{e}; the exact profile was used"));
                    }
                }
            }
            // The index cannot serve this query: auto needs no word.
            Err(why) if forced => {
                note = Some(format!("--method index: {why}; the exact profile was used"))
            }
            Err(_) => {}
        }
    }
    let mut profiler = Profiler::new(pattern, DEFAULT_BLOCK);
    let mut refine = Refine {
        selector: Selector::new(&query, like.is_some()),
        refined: 0,
    };
    let mut slices: Vec<Slice> = Vec::new();
    let mut n = 0usize;
    let mut like_index: Option<usize> = None;
    let mut t = from;
    let mut length: Micros = DAY;
    while t < to {
        let end = to.min(t.saturating_add(length));
        let started = Instant::now();
        let points = data
            .load_points(&request.channel, request.id, &[(t, end)])
            .await?;
        load_ms += started.elapsed().as_millis() as u64;
        rows_read += points.len() as u64;
        let (vals, times, d) = numbers(&points);
        dropped += d;
        if let Some(a) = like.filter(|&a| from <= a && a < to) {
            if like_index.is_none() && t <= a && a < end {
                like_index = Some(n + times.partition_point(|&x| x < a));
            }
        }
        if !vals.is_empty() {
            slices.push(Slice {
                first: n,
                count: vals.len(),
                span: (t, end),
            });
        }
        n += vals.len();
        profiler.push(&vals, &mut refine);
        // Aim at SLICE_ROWS rows a read: halve after a heavy slice, double after a light one.
        if points.len() > 2 * SLICE_ROWS {
            length = (length / 2).max(1);
        } else if points.len() < SLICE_ROWS / 2 {
            length = length.saturating_mul(2);
        }
        t = end;
    }
    if n == 0 && dropped == 0 {
        return Err(MatchFailure::NoRows {
            id: request.id,
            channel: request.channel.clone(),
        });
    }
    if n < m {
        return Err(QueryError::LongPattern { m, n }.into());
    }
    profiler.finish(&mut refine);
    let forbidden = like_index.filter(|&a| a + m <= n).map(|a| {
        (
            a.saturating_sub(query.exclusion - 1),
            a + query.exclusion - 1,
        )
    });
    let refined = refine.refined;
    let found = refine.selector.finish(forbidden);
    // The times of the matches' first and last rows, re-reading only their slices.
    let mut wanted: Vec<usize> = found
        .iter()
        .flat_map(|f| [f.start, f.start + m - 1])
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut time_of = std::collections::HashMap::with_capacity(wanted.len());
    let mut i = 0;
    while i < wanted.len() {
        let at = slices.partition_point(|s| s.first + s.count <= wanted[i]);
        let Some(slice) = slices.get(at).copied() else {
            break;
        };
        let started = Instant::now();
        let points = data
            .load_points(&request.channel, request.id, &[slice.span])
            .await?;
        load_ms += started.elapsed().as_millis() as u64;
        rows_read += points.len() as u64;
        let (_, times, _) = numbers(&points);
        while i < wanted.len() && wanted[i] < slice.first + slice.count {
            if let Some(&t) = times.get(wanted[i] - slice.first) {
                time_of.insert(wanted[i], t);
            }
            i += 1;
        }
    }
    let matches = found
        .iter()
        .filter_map(|f| {
            Some(Found {
                id: request.id,
                from: *time_of.get(&f.start)?,
                to: *time_of.get(&(f.start + m - 1))?,
                distance: f.distance,
            })
        })
        .collect::<Vec<_>>();
    if matches.len() < found.len() && note.is_none() {
        note =
            Some("rows changed while matching: some matches' times could not be read again".into());
    }
    Ok(Answer {
        matches,
        method: "profile",
        candidates: refined,
        refined,
        total: (n + 1 - m) as u64,
        dropped,
        rows_read,
        load_ms,
        note,
    })
}

/// The built subsequence index that can answer `query` (pattern length `m`) for
/// device `id` of `channel`, its parameters and the radius; or why none can.
///
/// # Errors
/// [`StoreError`] if the catalogue cannot be read.
async fn stored_index(
    index: Option<&IndexStore>,
    channel: &str,
    id: i32,
    m: usize,
    query: &Query,
) -> Result<Result<(Built, WindowParams, f64), String>, StoreError> {
    if let Err(e) = windows::applicable(1, m, query) {
        return Ok(Err(e.to_string()));
    }
    let Some(index) = index else {
        return Ok(Err("no index database is at hand".into()));
    };
    let built = match index.built_kind(SUBSEQUENCE, channel).await {
        Ok(b) => b,
        // A catalogue that cannot be read (e.g. never created, for `serve`) holds no index.
        Err(e) => return Ok(Err(format!("the index catalogue cannot be read ({e})"))),
    };
    let Some(built) = built else {
        return Ok(Err(format!(
            "no subsequence index of `{channel}` is built (`recalcd index build --kind subsequence --channel {channel}`)"
        )));
    };
    let Some(params) = WindowParams::parse(&built.params) else {
        return Ok(Err(format!(
            "the subsequence index of `{channel}` was built with parameters `{}` that cannot be read: rebuild it",
            built.params
        )));
    };
    if !crate::config::subsequence::covers_in(&built.params, id) {
        return Ok(Err(format!(
            "the subsequence index of `{channel}` does not cover device {id} ({})",
            built.params
        )));
    }
    Ok(windows::applicable(params.window, m, query)
        .map(|radius| (built, params, radius))
        .map_err(|e| e.to_string()))
}
