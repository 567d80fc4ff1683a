//! `recalcd similar`: the jobs whose series of a channel look most like a given one.
//!
//! The search itself is pure ([`crate::index::similarity`]); this drives it with the
//! entries from the index store and the candidate jobs' rows from the data store. With
//! a built index the entries are loaded once (`load_ms`), bounds are computed for every
//! job, and only candidates are read, in batches; the jobs the index cannot vouch for
//! (in the dirty log, or with rows still flagged) are read and compared directly. Without
//! an index, or when the range asked for is not inside the indexed range, every job is
//! read (a scan) and the report says why.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use crate::config::Config;
use crate::index::series::SeriesFile;
use crate::index::similarity::isax;
use crate::index::similarity::series::{resample, resample_even, SeriesError};
use crate::index::similarity::{
    brute_force, Best, Key, Match, Metric, Nearest, Params, Query, Spectrum,
};
use crate::index::{Micros, Point};
use crate::service::search::stamp;
use crate::store::index::{Built, IndexStore, ALL_TIME};
use crate::store::similarity::{JobSeries, StoredEntry, SIMILARITY};
use crate::store::{AnyStore, StoreError};

pub mod kept;
pub mod xcorr;

use kept::{Kept, Loaded};

/// Candidate jobs read per query of the data store.
pub(crate) const BATCH: usize = 64;

/// What is compared with the jobs.
#[derive(Debug, Clone)]
pub enum Target {
    /// A stored job (excluded from the answer).
    Job(Key),
    /// A series from a file.
    Series(SeriesFile),
}

/// What to look for.
#[derive(Debug, Clone)]
pub struct Request {
    /// The channel (case-insensitive).
    pub channel: String,
    /// The series compared.
    pub target: Target,
    /// The query: metric, k, within.
    pub query: Query,
    /// Only jobs of this device.
    pub id: Option<i32>,
    /// Only jobs starting in `[from, to)`; `None`: any.
    pub range: Option<(Micros, Micros)>,
}

/// The answer and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The matches, nearest first (ties by device id, then job start).
    pub matches: Vec<Match>,
    /// `index` or `scan`.
    pub method: &'static str,
    /// Why it scanned, when it did.
    pub why: Option<String>,
    /// Jobs that passed the filters.
    pub candidates: usize,
    /// Jobs whose series were read and compared.
    pub refined: usize,
    /// Jobs considered in all (the index's entries, or the jobs scanned).
    pub total: usize,
    /// Values left out as not numbers (in the query and the series compared).
    pub dropped: u64,
    /// Distances computed (`--metric xcorr` only: to vantage points and to jobs).
    pub distances: Option<u64>,
    /// Reading the index, ms.
    pub load_ms: u128,
    /// The whole query, ms.
    pub elapsed_ms: u128,
    /// Whether the index's entries were the copy kept loaded (`recalcd serve`), or
    /// read for this query; `None` where nothing is kept between queries.
    pub kept: Option<bool>,
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum SimilarError {
    /// A store could not answer.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request cannot be answered as given (the user's input).
    #[error("{0}")]
    Usage(String),
}

impl SimilarError {
    /// Whether the user's input is at fault (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(self, SimilarError::Usage(_))
    }
}

/// The stored entry of a job's series, with its iSAX word of `word_length` segments
/// when given (an index built before iSAX has none), or `None` when it holds fewer
/// numbers than needed.
pub fn entry_of(
    job: &JobSeries,
    spectrum: &mut Spectrum,
    params: Params,
    word_length: Option<usize>,
) -> Option<StoredEntry> {
    let r = resample(&job.points, params.length).ok()?;
    Some(StoredEntry {
        key: job.key,
        end: job.end,
        points: u32::try_from(job.points.len() as u64 - r.dropped).unwrap_or(u32::MAX),
        dropped: u32::try_from(r.dropped).unwrap_or(u32::MAX),
        entry: spectrum.entry(&r.values),
        word: word_length.map_or_else(Vec::new, |w| isax::word(&r.values, w)),
    })
}

/// `points` resampled to `length` values, with the values dropped as not numbers; `None`
/// with fewer than 4 numbers.
pub fn resampled(points: &[Point], length: usize) -> Option<(Vec<f64>, u64)> {
    resample(points, length).ok().map(|r| (r.values, r.dropped))
}

/// The built similarity index of `channel` (lower-case) in the index store, if any.
///
/// # Errors
/// [`SimilarError::Store`] if the catalogue cannot be read.
pub(crate) async fn built_index(
    index: Option<&IndexStore>,
    channel: &str,
) -> Result<Option<Built>, SimilarError> {
    Ok(match index {
        Some(ix) => ix.built_kind(SIMILARITY, channel).await?,
        None => None,
    })
}

/// What `load` reads from the built index `b` (of `ix`): the copy kept in `kept` when
/// the catalogue's record is still the one it was loaded under (`Some(true)`), else
/// read now (`Some(false)`, and kept for the next query); without `kept`, read now
/// (`None`). Call it after the jobs the index cannot vouch for were read (see [`kept`]).
///
/// # Errors
/// [`SimilarError::Store`] if the catalogue cannot be read; what `load` returns.
pub(crate) async fn kept_or_read<T, E, F, Fut>(
    kept: Option<&Kept<T>>,
    ix: &IndexStore,
    b: &Built,
    load: F,
) -> Result<(Arc<T>, Option<bool>), SimilarError>
where
    F: Fn(Built) -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    SimilarError: From<E>,
{
    let Some(kept) = kept else {
        return Ok((Arc::new(load(b.clone()).await?), None));
    };
    match built_index(Some(ix), &b.channel).await? {
        Some(now) if now.params == b.params => {
            let (t, k) = kept.get(&now, load(now.clone())).await?;
            Ok((t, Some(k)))
        }
        // Dropped or rebuilt meanwhile: read as the start found it.
        _ => Ok((Arc::new(load(b.clone()).await?), Some(false))),
    }
}

/// Answers `req`.
///
/// # Errors
/// [`SimilarError::Usage`] for an unknown job or a series with fewer than 4 numbers;
/// [`SimilarError::Store`] if a store fails.
pub async fn similar(
    config: &Config,
    data: &AnyStore,
    index: Option<&IndexStore>,
    req: &Request,
) -> Result<Answer, SimilarError> {
    similar_kept(config, data, index, None, req).await
}

/// Answers `req` as [`similar`] does, with the index kept loaded in `kept` when given
/// (`recalcd serve`; see [`kept`]): the entries are read only when the catalogue says
/// they changed since they were loaded.
///
/// # Errors
/// As [`similar`].
pub async fn similar_kept(
    config: &Config,
    data: &AnyStore,
    index: Option<&IndexStore>,
    kept: Option<&Kept<Loaded>>,
    req: &Request,
) -> Result<Answer, SimilarError> {
    let started = Instant::now();
    let channel = req.channel.to_lowercase();
    let built = built_index(index, &channel).await?;
    let built_params = built.as_ref().and_then(|b| Params::parse(&b.params));
    let declared = config.index.similarity(&channel);
    let params = built_params
        .or(declared.map(|d| d.params))
        .unwrap_or(Params {
            length: crate::config::similarity::DEFAULT_LENGTH,
            coefficients: crate::config::similarity::DEFAULT_COEFFICIENTS,
        });
    let (values, mut dropped, exclude) = query_series(data, req, &channel, params.length).await?;
    let range = req.range.unwrap_or(ALL_TIME);
    let accept = |k: &Key| {
        Some(*k) != exclude
            && req.id.is_none_or(|id| id == k.id)
            && k.start >= range.0
            && k.start < range.1
    };
    let why = scan_reason(req, built.as_ref(), built_params.is_some());
    if let (None, Some(b), Some(ix)) = (&why, &built, index) {
        let t = Instant::now();
        // The jobs the index cannot vouch for, read before the entries are (and before
        // a kept copy's record is checked: see `kept`).
        let untrusted: BTreeSet<Key> = data.untrusted_jobs(&channel).await?.into_iter().collect();
        let (loaded, was_kept) = kept_or_read(kept, ix, b, |now| async move {
            Loaded::read(ix, &now, params).await
        })
        .await?;
        let load_ms = t.elapsed().as_millis();
        let (mem, ends) = (&loaded.index, &loaded.ends);
        let total = ends.len() - untrusted.iter().filter(|k| ends.contains_key(k)).count();
        // The jobs not vouched for are compared from their rows, below.
        let vouched = |k: &Key| accept(k) && !untrusted.contains(k);
        let mut search = Nearest::new(mem, &values, &req.query, vouched);
        let mut refined_dropped = 0;
        loop {
            let want = search.wanted(mem, BATCH);
            if want.is_empty() {
                break;
            }
            let asked: Vec<(Key, Option<Micros>)> =
                want.iter().map(|k| (*k, ends.get(k).copied())).collect();
            let got = data.jobs_points(&channel, &asked).await?;
            let by_key: BTreeMap<Key, &JobSeries> = got.iter().map(|j| (j.key, j)).collect();
            for k in want {
                let r = by_key
                    .get(&k)
                    .and_then(|j| resampled(&j.points, params.length));
                if let Some((_, d)) = &r {
                    refined_dropped += d;
                }
                search.give(k, r.as_ref().map(|(v, _)| v.as_slice()));
            }
        }
        // The jobs the index cannot vouch for, compared directly.
        let (extra, d) =
            untrusted_series(data, &channel, &untrusted, &accept, declared, params.length).await?;
        refined_dropped += d;
        let extra_n = extra.len();
        for (k, v) in extra {
            search.give(k, Some(&v));
        }
        let outcome = search.finish();
        dropped += refined_dropped;
        return Ok(Answer {
            matches: outcome.matches,
            method: "index",
            why: None,
            candidates: outcome.candidates + extra_n,
            refined: outcome.refined,
            total: total + extra_n,
            dropped,
            distances: None,
            load_ms,
            elapsed_ms: started.elapsed().as_millis(),
            kept: was_kept,
        });
    }
    // A scan: every job of every device with rows in the range.
    let mut best = Best::new(&req.query);
    let mut candidates = 0;
    let (total, scan_dropped) = scan(data, &channel, req, params.length, &accept, |series| {
        let outcome = brute_force(
            &values,
            &req.query,
            series.iter().map(|(k, v)| (*k, v.as_slice())),
            |_| true,
        );
        candidates += outcome.candidates;
        for m in outcome.matches {
            best.offer(m);
        }
    })
    .await?;
    dropped += scan_dropped;
    Ok(Answer {
        matches: best.into_vec(),
        method: "scan",
        why,
        candidates,
        refined: candidates,
        total,
        dropped,
        distances: None,
        load_ms: 0,
        elapsed_ms: started.elapsed().as_millis(),
        kept: None,
    })
}

/// The resampled series of the jobs in `untrusted` that `accept` admits and the declared
/// index covers (the jobs an index cannot vouch for, which every search compares
/// directly), read in batches, with the values dropped as not numbers; jobs with fewer
/// than 4 numbers are left out.
///
/// # Errors
/// [`SimilarError::Store`] if the data store fails.
pub(crate) async fn untrusted_series(
    data: &AnyStore,
    channel: &str,
    untrusted: &BTreeSet<Key>,
    accept: &impl Fn(&Key) -> bool,
    declared: Option<&crate::config::SimilarityIndexConfig>,
    length: usize,
) -> Result<(Vec<(Key, Vec<f64>)>, u64), SimilarError> {
    let wanted: Vec<(Key, Option<Micros>)> = untrusted
        .iter()
        .filter(|k| accept(k))
        .map(|k| (*k, None))
        .collect();
    let (mut out, mut dropped) = (Vec::new(), 0);
    for chunk in wanted.chunks(BATCH) {
        for j in data.jobs_points(channel, chunk).await? {
            if declared.is_some_and(|d| !d.covers(j.key.id)) {
                continue;
            }
            if let Some((v, d)) = resampled(&j.points, length) {
                dropped += d;
                out.push((j.key, v));
            }
        }
    }
    Ok((out, dropped))
}

/// The query series of `req` resampled to `length` points, the values it dropped as not
/// numbers, and the job to leave out of the answer (the query job itself).
///
/// # Errors
/// [`SimilarError::Usage`] for an unknown job or a series with fewer than 4 numbers;
/// [`SimilarError::Store`] if the data store fails.
pub(crate) async fn query_series(
    data: &AnyStore,
    req: &Request,
    channel: &str,
    length: usize,
) -> Result<(Vec<f64>, u64, Option<Key>), SimilarError> {
    let params = Params {
        length,
        coefficients: 1,
    };
    Ok(match &req.target {
        Target::Job(key) => {
            let jobs = data.jobs_points(channel, &[(*key, None)]).await?;
            let Some(job) = jobs.into_iter().next() else {
                return Err(SimilarError::Usage(format!(
                    "--job {}@{}: no such job (no data rows of device {} with that job start)",
                    key.id,
                    crate::index::datetime(key.start).format("%Y-%m-%dT%H:%M:%S%.f"),
                    key.id
                )));
            };
            let r = resample(&job.points, params.length).map_err(
                |SeriesError::TooFew { numbers }| {
                    SimilarError::Usage(format!(
                    "--job {}@{}: its `{}` series holds {numbers} number(s); at least 4 are needed",
                    key.id,
                    crate::index::datetime(key.start).format("%Y-%m-%dT%H:%M:%S%.f"),
                    req.channel
                ))
                },
            )?;
            (r.values, r.dropped, Some(*key))
        }
        Target::Series(file) => {
            let too_few = |n: usize| {
                SimilarError::Usage(format!(
                    "--series: the file holds {n} value(s); at least 4 are needed"
                ))
            };
            let values = match &file.times {
                Some(times) => {
                    let points: Vec<Point> = times
                        .iter()
                        .zip(&file.values)
                        .map(|(&t, &v)| Point { t, v: Some(v) })
                        .collect();
                    resample(&points, params.length)
                        .map_err(|SeriesError::TooFew { numbers }| too_few(numbers))?
                        .values
                }
                None => resample_even(&file.values, params.length)
                    .map_err(|SeriesError::TooFew { numbers }| too_few(numbers))?,
            };
            (values, 0, None)
        }
    })
}

/// Every job of every device (or of `req.id`) starting in the range asked for, with the
/// channel's numbers: the ones `accept` takes are resampled to `length` points and handed
/// to `visit`, a device at a time. Returns the jobs seen (with numbers or not) and the
/// values dropped as not numbers.
///
/// # Errors
/// [`StoreError`] if the data store fails.
pub(crate) async fn scan(
    data: &AnyStore,
    channel: &str,
    req: &Request,
    length: usize,
    accept: &impl Fn(&Key) -> bool,
    mut visit: impl FnMut(Vec<(Key, Vec<f64>)>),
) -> Result<(usize, u64), StoreError> {
    let range = req.range.unwrap_or(ALL_TIME);
    let (mut total, mut dropped) = (0, 0);
    let devices: Vec<i32> = match req.id {
        Some(id) => vec![id],
        // A job's rows lie at or after its start: devices with rows from the range's start.
        None => data
            .data_extent(Some((range.0, ALL_TIME.1)))
            .await?
            .into_iter()
            .map(|d| d.0)
            .collect(),
    };
    for id in devices {
        let jobs = data.job_series(channel, id, range).await?;
        let mut series: Vec<(Key, Vec<f64>)> = Vec::new();
        for j in &jobs {
            if j.points.is_empty() {
                continue;
            }
            total += 1;
            if !accept(&j.key) {
                continue;
            }
            if let Some((v, d)) = resampled(&j.points, length) {
                dropped += d;
                series.push((j.key, v));
            }
        }
        visit(series);
    }
    Ok((total, dropped))
}

/// Why a query of `req` cannot use the `built` index (`readable`: its parameters can be
/// read) and scans, or `None` when it can use it.
pub(crate) fn scan_reason(req: &Request, built: Option<&Built>, readable: bool) -> Option<String> {
    match (built, readable) {
        (None, _) => Some(format!(
            "no similarity index of `{}` is built (declare it with [[index.similarity]] and run `recalcd index build --kind similarity --channel {}`)",
            req.channel, req.channel
        )),
        (Some(b), false) => Some(format!(
            "the similarity index of `{}` was built with parameters `{}` this version cannot read: rebuild it",
            req.channel, b.params
        )),
        (Some(b), true) if !covers(&b.params, req.id) => Some(format!(
            "the similarity index of `{}` covers only some devices ({}); ask for one of them with --id",
            req.channel, b.params
        )),
        (Some(b), true) => match (req.range.unwrap_or(ALL_TIME), b.range) {
            (r, Some(built_range)) if r.0 < built_range.0 || r.1 > built_range.1 => Some(format!(
                "the range asked for is not inside the indexed range {} .. {} (extend it with `recalcd index extend`)",
                crate::index::datetime(built_range.0).format("%Y-%m-%d %H:%M:%S"),
                crate::index::datetime(built_range.1).format("%Y-%m-%d %H:%M:%S")
            )),
            (_, None) => Some("the similarity index is built over no range yet".into()),
            _ => None,
        },
    }
}

/// Whether an index built with `params` (`… devices=5,7`) holds every job `id` asks for.
fn covers(params: &str, id: Option<i32>) -> bool {
    let Some(list) = params.split(" devices=").nth(1) else {
        return true;
    };
    id.is_some_and(|id| list.split(',').any(|d| d.trim().parse() == Ok(id)))
}

impl Answer {
    /// The method, with why it scanned when it did: `index`, or `scan (…)`.
    pub fn method_text(&self) -> String {
        match &self.why {
            Some(why) => format!("{} ({why})", self.method),
            None => self.method.to_string(),
        }
    }

    /// The answer as `recalcd similar --format json` and `serve`'s `/api/similar` write
    /// it: `{"matches": [{"id", "job", "distance"}], "stats": {"method", "candidates",
    /// "refined", "total", "dropped", "load_ms", "elapsed_ms"}}`.
    pub fn to_json(&self) -> serde_json::Value {
        let matches: Vec<serde_json::Value> = self
            .matches
            .iter()
            .map(|m| serde_json::json!({"id": m.key.id, "job": stamp(m.key.start), "distance": m.distance}))
            .collect();
        let mut out = serde_json::json!({
            "matches": matches,
            "stats": {
                "method": self.method_text(),
                "candidates": self.candidates,
                "refined": self.refined,
                "total": self.total,
                "dropped": self.dropped,
                "load_ms": self.load_ms,
                "elapsed_ms": self.elapsed_ms,
            }
        });
        if let Some(d) = self.distances {
            out["stats"]["distances"] = d.into();
        }
        if let Some(k) = self.kept {
            out["stats"]["kept"] = k.into();
        }
        out
    }
}

/// A job named as `ID@YYYY-MM-DDTHH:MM:SS[.ffffff]` (its device and start, UTC): what
/// `recalcd similar --job` and `/api/similar?job=` take.
///
/// # Errors
/// A message saying which part is not what it should be.
pub fn parse_job(s: &str) -> Result<Key, String> {
    let (id, start) = s
        .split_once('@')
        .ok_or_else(|| format!("'{s}' is not ID@START (e.g. 7@2024-04-20T08:00:00)"))?;
    let id: i32 = id
        .trim()
        .parse()
        .map_err(|_| format!("'{id}' in '{s}' is not a device id"))?;
    let t = chrono::NaiveDateTime::parse_from_str(start.trim(), "%Y-%m-%dT%H:%M:%S%.f").map_err(
        |_| format!("'{start}' in '{s}' is not a job start YYYY-MM-DDTHH:MM:SS[.ffffff]"),
    )?;
    Ok(Key {
        id,
        start: crate::index::micros(t),
    })
}

/// The metric named on the command line.
pub fn metric(name: &str) -> Option<Metric> {
    match name {
        "znorm" => Some(Metric::ZNorm),
        "euclid" => Some(Metric::Euclid),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_parse_with_their_errors() {
        let k = parse_job("7@2024-04-20T08:00:00.5").unwrap();
        assert_eq!(k.id, 7);
        assert_eq!(stamp(k.start), "2024-04-20T08:00:00.500000");
        assert!(parse_job("7-2024").unwrap_err().contains("ID@START"));
        assert!(parse_job("x@2024-04-20T08:00:00")
            .unwrap_err()
            .contains("device id"));
        assert!(parse_job("7@yesterday").unwrap_err().contains("job start"));
    }
}
