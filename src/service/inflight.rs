//! The store as the next batch must see it while the batch before is still being
//! written: the pipeline of `recalcd once` prepares batch N+1 on one session while
//! batch N is written on another, and batch N+1 must compute on N's results, not on the
//! rows N is replacing (or has not created yet).
//!
//! [`InFlight`] holds the rows of the batch being written; [`View`] answers the reads a
//! batch makes as the store will answer them once that batch has committed: a row of
//! the batch replaces the stored row of its key (or joins the answer, for rows it
//! creates), and the stored rows it replaces drop out of every answer. Each read's
//! answer is the stored rows whose key the batch does not write, plus the batch's rows
//! that meet the read's condition.
//!
//! Rows taken over from the batch carry its pending version until it commits; then
//! [`InFlight::adopt`] gives them the version the commit gave every row it wrote. If the
//! batch could not write some row (a producer changed it meanwhile), what was computed
//! on it is thrown away instead (see `run_until_idle`).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::ops::Bound;

use chrono::NaiveDateTime;

use crate::store::{
    Direction, Flag, Lease, Level, Row, RowKey, RowVersion, Store, StoreError, TimeRange,
    WriteBatch,
};

/// The rows of a batch being written, by level and key.
#[derive(Debug, Default)]
pub(super) struct InFlight {
    rows: [BTreeMap<RowKey, Row>; 3],
    /// The jobs (device, start) the batch computes: their rows are written unflagged.
    jobs: HashSet<(i32, NaiveDateTime)>,
}

impl InFlight {
    /// The rows of `batch`, which computed `jobs`.
    pub(super) fn new(batch: &WriteBatch, jobs: HashSet<(i32, NaiveDateTime)>) -> InFlight {
        let index = |rows: &[Row]| rows.iter().map(|r| (r.key(), r.clone())).collect();
        InFlight {
            rows: [index(&batch.data), index(&batch.jobs), index(&batch.days)],
            jobs,
        }
    }

    fn level(&self, level: Level) -> &BTreeMap<RowKey, Row> {
        &self.rows[level as usize]
    }

    fn get(&self, level: Level, key: &RowKey) -> Option<&Row> {
        self.level(level).get(key)
    }

    /// Gives the rows of `next` that were taken over from this batch the version its
    /// commit gave them.
    pub(super) fn adopt(&self, next: &mut WriteBatch, version: RowVersion) {
        for level in Level::ALL {
            for r in next.rows_mut(level) {
                if self.level(level).contains_key(&r.key()) {
                    r.version = version;
                }
            }
        }
    }

    /// The batch's row of `level` nearest to `key` in `direction`, of the same device.
    fn neighbour(&self, level: Level, key: &RowKey, direction: Direction) -> Option<&Row> {
        let rows = self.level(level);
        let found = match direction {
            Direction::Before => rows.range(..*key).next_back(),
            Direction::After => rows.range((Bound::Excluded(*key), Bound::Unbounded)).next(),
        };
        found.map(|(_, r)| r).filter(|r| r.id == key.id)
    }
}

/// The data rows of the jobs the last few written batches computed, as they wrote them.
///
/// A day's `$d$x` reads every data row of the day, and a day is computed by the batch
/// that takes its last flagged job: its other jobs were computed by the batches just
/// before, which had them in memory. They are taken from here rather than read again.
/// A producer that changes such a row flags it, and the day then waits for it; only a
/// change made without a flag after recalcd wrote the row goes unseen by that day.
#[derive(Debug, Default)]
pub(super) struct Recent {
    /// Newest first: per written batch, its jobs' data rows.
    batches: VecDeque<HashMap<(i32, NaiveDateTime), Vec<Row>>>,
}

/// How many written batches [`Recent`] remembers (a day of four jobs spans four).
const RECENT_BATCHES: usize = 4;

impl Recent {
    /// Remembers the jobs of a batch that has been written.
    pub(super) fn remember(&mut self, written: InFlight) {
        let InFlight { rows, jobs } = written;
        let [data, ..] = rows;
        let mut by_job: HashMap<(i32, NaiveDateTime), Vec<Row>> = HashMap::new();
        for r in data.into_values() {
            let job = (r.id, r.data_time);
            if jobs.contains(&job) {
                by_job.entry(job).or_default().push(r);
            }
        }
        self.batches.push_front(by_job);
        self.batches.truncate(RECENT_BATCHES);
    }

    /// Forgets everything (a written batch skipped rows: what was remembered may be
    /// off).
    pub(super) fn clear(&mut self) {
        self.batches.clear();
    }

    fn job(&self, job: &(i32, NaiveDateTime)) -> Option<&Vec<Row>> {
        self.batches.iter().find_map(|b| b.get(job))
    }
}

/// The reads of a batch, through the batch being written when there is one.
pub(super) struct View<'a, S> {
    pub(super) store: &'a S,
    pub(super) in_flight: Option<&'a InFlight>,
    pub(super) recent: Option<&'a Recent>,
}

impl<S: Store> View<'_, S> {
    /// Stored rows whose key the batch in flight does not write, plus its rows that
    /// `wanted` accepts.
    fn merge(&self, level: Level, stored: Vec<Row>, wanted: impl Fn(&Row) -> bool) -> Vec<Row> {
        let Some(f) = self.in_flight else {
            return stored;
        };
        let mut rows: Vec<Row> = stored
            .into_iter()
            .filter(|r| f.get(level, &r.key()).is_none())
            .collect();
        rows.extend(f.level(level).values().filter(|r| wanted(r)).cloned());
        rows.sort_by_key(|r| (r.id, r.datetime));
        rows
    }

    /// [`Store::poll_leased`]; rows the batch in flight clears are left out (it keeps
    /// the flags it sets itself, for a job or day that follows, and so do they).
    ///
    /// Returns the flags to take and all the store answered, for the sweep cursor.
    pub(super) async fn poll(
        &self,
        level: Level,
        lease: &Lease,
        after: Option<RowKey>,
        limit: usize,
    ) -> Result<(Vec<Flag>, Vec<Flag>), StoreError> {
        let stored = timed("poll", self.store.poll_leased(level, lease, after, limit)).await?;
        let Some(f) = self.in_flight else {
            return Ok((stored.clone(), stored));
        };
        let flags = stored
            .iter()
            .filter_map(|flag| match f.get(level, &flag.key) {
                None => Some(*flag),
                Some(w) if w.recalc > 0 => Some(Flag {
                    key: flag.key,
                    data_time: w.data_time,
                }),
                Some(_) => None,
            })
            .collect();
        Ok((flags, stored))
    }

    /// [`Store::load_rows`].
    pub(super) async fn load_rows(
        &self,
        level: Level,
        keys: &[RowKey],
    ) -> Result<Vec<Row>, StoreError> {
        let Some(f) = self.in_flight else {
            return timed("load_rows", self.store.load_rows(level, keys)).await;
        };
        let (held, ask): (Vec<RowKey>, Vec<RowKey>) =
            keys.iter().partition(|k| f.get(level, k).is_some());
        let stored = timed("load_rows", self.store.load_rows(level, &ask)).await?;
        let held: HashSet<RowKey> = held.into_iter().collect();
        Ok(self.merge(level, stored, |r| held.contains(&r.key())))
    }

    /// [`Store::load_job_rows`].
    pub(super) async fn load_job_rows(
        &self,
        jobs: &[(i32, NaiveDateTime)],
    ) -> Result<Vec<Row>, StoreError> {
        let stored = timed("load_job_rows", self.store.load_job_rows(jobs)).await?;
        let jobs: HashSet<(i32, NaiveDateTime)> = jobs.iter().copied().collect();
        Ok(self.merge(Level::Data, stored, |r| jobs.contains(&(r.id, r.data_time))))
    }

    /// The data rows of jobs no batch computes now, for a day's `$d$x`: those of
    /// [`Recent`] jobs from memory, the others through [`View::load_job_rows`].
    pub(super) async fn load_day_job_rows(
        &self,
        jobs: &[(i32, NaiveDateTime)],
    ) -> Result<Vec<Row>, StoreError> {
        let Some(recent) = self.recent else {
            return self.load_job_rows(jobs).await;
        };
        let in_flight =
            |j: &(i32, NaiveDateTime)| self.in_flight.is_some_and(|f| f.jobs.contains(j));
        let (known, ask): (Vec<_>, Vec<_>) = jobs
            .iter()
            .partition(|j| !in_flight(j) && recent.job(j).is_some());
        let mut rows = self.load_job_rows(&ask).await?;
        for j in &known {
            rows.extend(recent.job(j).into_iter().flatten().cloned());
        }
        Ok(rows)
    }

    /// [`Store::load_in_ranges`].
    pub(super) async fn load_in_ranges(
        &self,
        level: Level,
        ranges: &[TimeRange],
    ) -> Result<Vec<Row>, StoreError> {
        let stored = timed("load_in_ranges", self.store.load_in_ranges(level, ranges)).await?;
        Ok(self.merge(level, stored, |r| in_ranges(ranges, r.id, r.datetime)))
    }

    /// [`Store::flagged_jobs_in`]: the jobs the batch in flight computes are not
    /// flagged any more; the jobs it flags (a job that follows) are.
    pub(super) async fn flagged_jobs_in(
        &self,
        ranges: &[TimeRange],
    ) -> Result<Vec<(i32, NaiveDateTime)>, StoreError> {
        let stored = timed("flagged_jobs_in", self.store.flagged_jobs_in(ranges)).await?;
        let Some(f) = self.in_flight else {
            return Ok(stored);
        };
        let mut jobs: Vec<(i32, NaiveDateTime)> =
            stored.into_iter().filter(|j| !f.jobs.contains(j)).collect();
        jobs.extend(
            f.level(Level::Job)
                .values()
                .filter(|r| r.recalc > 0 && in_ranges(ranges, r.id, r.datetime))
                .map(|r| (r.id, r.datetime)),
        );
        jobs.sort_unstable();
        jobs.dedup();
        Ok(jobs)
    }

    /// [`Store::previous`].
    pub(super) async fn previous(
        &self,
        level: Level,
        keys: &[RowKey],
    ) -> Result<Vec<Option<Row>>, StoreError> {
        let stored = timed("previous", self.store.previous(level, keys)).await?;
        Ok(self.nearest(level, keys, stored, Direction::Before))
    }

    /// [`Store::next`].
    pub(super) async fn next(
        &self,
        level: Level,
        keys: &[RowKey],
    ) -> Result<Vec<Option<Row>>, StoreError> {
        let stored = timed("next", self.store.next(level, keys)).await?;
        Ok(self.nearest(level, keys, stored, Direction::After))
    }

    /// The nearer of the stored neighbour (as the batch in flight writes it) and the
    /// batch's own nearest row.
    fn nearest(
        &self,
        level: Level,
        keys: &[RowKey],
        stored: Vec<Option<Row>>,
        direction: Direction,
    ) -> Vec<Option<Row>> {
        let Some(f) = self.in_flight else {
            return stored;
        };
        keys.iter()
            .zip(stored)
            .map(|(key, found)| {
                let found = found.map(|r| f.get(level, &r.key()).cloned().unwrap_or(r));
                let held = f.neighbour(level, key, direction);
                match (found, held) {
                    (Some(s), Some(h)) => {
                        let held_nearer = match direction {
                            Direction::Before => h.datetime > s.datetime,
                            Direction::After => h.datetime < s.datetime,
                        };
                        Some(if held_nearer { h.clone() } else { s })
                    }
                    (found, held) => found.or_else(|| held.cloned()),
                }
            })
            .collect()
    }
}

/// Whether `(id, datetime)` lies in one of the ranges.
fn in_ranges(ranges: &[TimeRange], id: i32, datetime: NaiveDateTime) -> bool {
    ranges
        .iter()
        .any(|r| r.id == id && r.from <= datetime && datetime < r.to)
}

/// Awaits a read of the store, logging how long it took (`trace` level).
async fn timed<T>(what: &'static str, read: impl std::future::Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let out = read.await;
    tracing::trace!(
        read = what,
        ms = started.elapsed().as_secs_f64() * 1e3,
        "store read"
    );
    out
}
