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
use std::sync::Arc;

use chrono::NaiveDateTime;

use crate::engine::columns::JobColumns;
use crate::store::content_version;
use crate::store::{
    Direction, Flag, Lease, Level, Row, RowKey, RowVersion, Store, StoreError, TimeRange,
    WriteBatch, WrittenVersions,
};

/// The rows of a batch being written, by level and key: the batch itself, shared
/// with the write-back (not copied), and an index into it.
#[derive(Debug)]
pub(super) struct InFlight {
    batch: Arc<WriteBatch>,
    /// Per level, each key's position in the batch's rows of that level.
    index: [BTreeMap<RowKey, usize>; 3],
    /// The jobs (device, start) the batch computes: their rows are written unflagged.
    jobs: HashSet<(i32, NaiveDateTime)>,
    /// The `$d$x` channels of those jobs as the batch writes them, by job.
    columns: JobColumnsByJob,
}

/// The `$d$x` channels of jobs, by job (device, start).
type JobColumnsByJob = HashMap<(i32, NaiveDateTime), JobColumns>;

impl InFlight {
    /// The rows of `batch`, which computed `jobs` (whose `$d$x` channels are `columns`).
    pub(super) fn new(
        batch: Arc<WriteBatch>,
        jobs: HashSet<(i32, NaiveDateTime)>,
        columns: Vec<JobColumns>,
    ) -> InFlight {
        let columns = columns.into_iter().map(|c| ((c.id, c.start), c)).collect();
        let index = |level: Level| {
            let rows = batch.rows(level).iter().enumerate();
            rows.map(|(i, r)| (r.key(), i)).collect()
        };
        InFlight {
            index: [index(Level::Data), index(Level::Job), index(Level::Day)],
            batch,
            jobs,
            columns,
        }
    }

    /// The batch's rows of `level`, in key order.
    fn rows(&self, level: Level) -> impl Iterator<Item = &Row> {
        let rows = self.batch.rows(level);
        self.index[level as usize].values().map(move |&i| &rows[i])
    }

    fn get(&self, level: Level, key: &RowKey) -> Option<&Row> {
        let i = *self.index[level as usize].get(key)?;
        self.batch.rows(level).get(i)
    }

    fn contains(&self, level: Level, key: &RowKey) -> bool {
        self.index[level as usize].contains_key(key)
    }

    /// Gives the rows of `next` that were taken over from this batch the version its
    /// commit gave them (`versions` of this batch's row of the same key).
    pub(super) fn adopt(&self, next: &mut WriteBatch, versions: WrittenVersions) {
        for level in Level::ALL {
            for r in next.rows_mut(level) {
                if let Some(written) = self.get(level, &r.key()) {
                    r.version = versions.of(written);
                }
            }
        }
    }

    /// The batch's row of `level` nearest to `key` in `direction`, of the same device.
    fn neighbour(&self, level: Level, key: &RowKey, direction: Direction) -> Option<&Row> {
        let index = &self.index[level as usize];
        let found = match direction {
            Direction::Before => index.range(..*key).next_back(),
            Direction::After => index
                .range((Bound::Excluded(*key), Bound::Unbounded))
                .next(),
        };
        found
            .and_then(|(_, &i)| self.batch.rows(level).get(i))
            .filter(|r| r.id == key.id)
    }
}

/// The `$d$x` channels of the jobs that recently written batches computed, as they wrote
/// them.
///
/// A day's `$d$x` reads every data row of the day, and a day is computed by the batch
/// that takes its last flagged job: its other jobs were computed by the batches before,
/// which had them in memory. Their channels are taken from here rather than read again
/// — but only while the job's stored row still carries the version the remembering
/// batch's commit gave it: a job recomputed since (by another worker, or after a
/// producer re-flagged one of its rows) has a new version, and its rows are read. A
/// producer that changes such a row flags it, and the day then waits for it; only a
/// change made without a flag after recalcd wrote the row goes unseen by that day.
///
/// Columns are small (8 bytes a number), so a long day's worth fits: the oldest batches
/// are forgotten once more than [`RECENT_VALUES`] values are held.
#[derive(Debug, Default)]
pub(super) struct Recent {
    /// Newest first: per written batch, its jobs' columns with the version its commit
    /// gave each job's row, and how many values they hold.
    batches: VecDeque<(VersionedColumns, usize)>,
    /// Values held in all.
    values: usize,
}

/// The `$d$x` channels of jobs, by job, with the version of the job row as written.
type VersionedColumns = HashMap<(i32, NaiveDateTime), (RowVersion, JobColumns)>;

/// How many values [`Recent`] holds at most (about 32 MB of numbers).
const RECENT_VALUES: usize = 4_000_000;

impl Recent {
    /// Remembers the jobs of a batch that has been written, whose commit gave its rows
    /// `versions` (nothing is remembered without them: the rows could not be told
    /// current later).
    pub(super) fn remember(&mut self, written: InFlight, versions: Option<WrittenVersions>) {
        let Some(versions) = versions else {
            return;
        };
        let InFlight {
            batch,
            index,
            columns,
            ..
        } = written;
        let job_rows = batch.rows(Level::Job);
        let mut jobs = HashMap::with_capacity(columns.len());
        let mut size = 0;
        for (job, columns) in columns {
            let key = RowKey {
                id: job.0,
                datetime: job.1,
            };
            let row = index[Level::Job as usize]
                .get(&key)
                .and_then(|&i| job_rows.get(i));
            let version = match (versions, row) {
                (WrittenVersions::All(v), _) => Some(v),
                (WrittenVersions::Content, row) => row.map(content_version),
            };
            // Without its row, a job's version is not known: it is not remembered.
            if let Some(version) = version {
                size += columns.size();
                jobs.insert(job, (version, columns));
            }
        }
        self.values += size;
        self.batches.push_front((jobs, size));
        while self.values > RECENT_VALUES && self.batches.len() > 1 {
            if let Some((_, size)) = self.batches.pop_back() {
                self.values -= size;
            }
        }
    }

    /// Forgets everything (a written batch skipped rows: what was remembered may be
    /// off).
    pub(super) fn clear(&mut self) {
        self.batches.clear();
        self.values = 0;
    }

    /// The columns of `job` as a remembered batch wrote them, if its stored job row
    /// still carries the version that batch's commit gave it.
    fn job(&self, job: &(i32, NaiveDateTime), version: RowVersion) -> Option<&JobColumns> {
        self.batches
            .iter()
            .find_map(|(jobs, _)| jobs.get(job))
            .filter(|(v, _)| *v == version)
            .map(|(_, c)| c)
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
        let rows: Vec<Row> = stored
            .into_iter()
            .filter(|r| !f.contains(level, &r.key()))
            .collect();
        in_key_order(rows, f.rows(level).filter(|r| wanted(r)))
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
            keys.iter().partition(|k| f.contains(level, k));
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

    /// The `$d$x` channels of jobs no batch computes now, for their days, given the
    /// jobs' rows as loaded: those of the batch in flight as it writes them, those of
    /// [`Recent`] jobs whose row still carries the version their batch gave it from
    /// memory, the others read `chunk` jobs at a time (so that no more rows are held at
    /// once) and turned into columns by `read` (device, start, the job's rows).
    pub(super) async fn load_day_columns(
        &self,
        jobs: &[&Row],
        chunk: usize,
        read: impl Fn(i32, NaiveDateTime, Vec<Row>) -> JobColumns,
    ) -> Result<Vec<JobColumns>, StoreError> {
        let key = |j: &Row| (j.id, j.datetime);
        let known = |j: &Row| match self.in_flight.and_then(|f| f.columns.get(&key(j))) {
            Some(c) => Some(c),
            None if self.in_flight.is_some_and(|f| f.jobs.contains(&key(j))) => None,
            None => self.recent.and_then(|r| r.job(&key(j), j.version)),
        };
        let mut out = Vec::with_capacity(jobs.len());
        let mut ask = Vec::new();
        for j in jobs {
            match known(j) {
                Some(c) => out.push(c.clone()),
                None => ask.push(key(j)),
            }
        }
        for part in ask.chunks(chunk.max(1)) {
            let mut by_job: HashMap<(i32, NaiveDateTime), Vec<Row>> =
                part.iter().map(|j| (*j, Vec::new())).collect();
            for r in self.load_job_rows(part).await? {
                if let Some(rows) = by_job.get_mut(&(r.id, r.data_time)) {
                    rows.push(r);
                }
            }
            out.extend(
                by_job
                    .into_iter()
                    .map(|((id, start), rows)| read(id, start, rows)),
            );
        }
        Ok(out)
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
    /// flagged any more (the store may look past them, as past `except`); the jobs it
    /// flags (a job that follows) are.
    pub(super) async fn flagged_jobs_in(
        &self,
        ranges: &[TimeRange],
        except: &[(i32, NaiveDateTime)],
    ) -> Result<Vec<(i32, NaiveDateTime)>, StoreError> {
        let Some(f) = self.in_flight else {
            return timed(
                "flagged_jobs_in",
                self.store.flagged_jobs_in(ranges, except),
            )
            .await;
        };
        let mut past: Vec<(i32, NaiveDateTime)> = except.to_vec();
        past.extend(f.jobs.iter().copied());
        let stored = timed("flagged_jobs_in", self.store.flagged_jobs_in(ranges, &past)).await?;
        let mut jobs: Vec<(i32, NaiveDateTime)> =
            stored.into_iter().filter(|j| !f.jobs.contains(j)).collect();
        jobs.extend(
            f.rows(Level::Job)
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

/// `stored` and copies of `held` (in key order, no key of `stored` among them) in one
/// list in key order: merged where `stored` is in key order already (as QuestDB
/// answers), sorted where it is not — rows are too large to sort needlessly.
fn in_key_order<'a>(mut stored: Vec<Row>, held: impl Iterator<Item = &'a Row>) -> Vec<Row> {
    if !stored.is_sorted_by_key(Row::key) {
        stored.sort_by_key(Row::key);
    }
    let mut held = held.peekable();
    if held.peek().is_none() {
        return stored;
    }
    let mut out = Vec::with_capacity(stored.len());
    for r in stored {
        while let Some(h) = held.next_if(|h| h.key() < r.key()) {
            out.push(h.clone());
        }
        out.push(r);
    }
    out.extend(held.cloned());
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    fn t(minute: u32) -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 3, 1)
            .and_then(|d| d.and_hms_opt(8, minute, 0))
            .expect("a valid time")
    }

    fn row(id: i32, minute: u32, job: u32) -> Row {
        Row {
            datetime: t(minute),
            data_time: t(job),
            id,
            state: None,
            user: None,
            gps: None,
            recalc: 0,
            conjoined: format!("x={minute};"),
            version: RowVersion::ABSENT,
            unreadable: None,
        }
    }

    /// The `x` column of device `id`'s job `job` over `minutes`.
    fn columns(id: i32, job: u32, minutes: &[u32]) -> JobColumns {
        use crate::engine::record::Columns;
        use crate::lang::context::Symbols;
        let mut s = Symbols::new();
        let x = s.channel("x");
        let rows = minutes.iter().map(|&m| row(id, m, job)).collect();
        JobColumns::of_rows(id, t(job), rows, &s, &Columns::new(&s), &[x])
    }

    /// A batch of device 1's job 0 (minutes 0–2) and job 10 (10–11), given out of key
    /// order, and device 2's minute 5; it computed device 1's job 0 only.
    fn in_flight() -> (Arc<WriteBatch>, InFlight) {
        let batch = Arc::new(WriteBatch {
            data: vec![
                row(1, 11, 10),
                row(1, 1, 0),
                row(2, 5, 0),
                row(1, 0, 0),
                row(1, 10, 10),
                row(1, 2, 0),
            ],
            ..WriteBatch::default()
        });
        let jobs = HashSet::from([(1, t(0))]);
        let computed = vec![columns(1, 0, &[0, 1, 2])];
        (Arc::clone(&batch), InFlight::new(batch, jobs, computed))
    }

    fn key(id: i32, minute: u32) -> RowKey {
        RowKey {
            id,
            datetime: t(minute),
        }
    }

    #[test]
    fn stored_and_held_rows_come_out_in_key_order_as_a_sort_gives_them() {
        let held = [row(1, 1, 0), row(1, 3, 0), row(2, 0, 0), row(3, 9, 0)];
        let stored = vec![row(1, 0, 0), row(1, 2, 0), row(1, 4, 0), row(2, 5, 0)];
        let sorted = |mut rows: Vec<Row>| {
            rows.sort_by_key(Row::key);
            rows
        };
        let all = sorted([stored.clone(), held.to_vec()].concat());
        assert_eq!(in_key_order(stored.clone(), held.iter()), all);
        let mut shuffled = stored.clone();
        shuffled.reverse();
        assert_eq!(in_key_order(shuffled.clone(), held.iter()), all);
        assert_eq!(in_key_order(shuffled, [].iter()), sorted(stored.clone()));
        assert_eq!(in_key_order(Vec::new(), held.iter()), held.to_vec());
    }

    #[test]
    fn the_index_answers_by_key_in_key_order_and_stays_within_a_device() {
        let (_, f) = in_flight();
        let keys: Vec<RowKey> = f.rows(Level::Data).map(Row::key).collect();
        let want = [
            key(1, 0),
            key(1, 1),
            key(1, 2),
            key(1, 10),
            key(1, 11),
            key(2, 5),
        ];
        assert_eq!(keys, want);
        assert_eq!(
            f.get(Level::Data, &key(1, 10)).map(|r| r.datetime),
            Some(t(10))
        );
        assert!(f.get(Level::Data, &key(1, 3)).is_none());
        assert!(f.get(Level::Job, &key(1, 0)).is_none());
        let before = f.neighbour(Level::Data, &key(1, 5), Direction::Before);
        assert_eq!(before.map(Row::key), Some(key(1, 2)));
        let after = f.neighbour(Level::Data, &key(1, 5), Direction::After);
        assert_eq!(after.map(Row::key), Some(key(1, 10)));
        // Device 1 has nothing after minute 11: device 2's row is not its neighbour.
        assert!(f
            .neighbour(Level::Data, &key(1, 11), Direction::After)
            .is_none());
    }

    #[test]
    fn recent_keeps_the_computed_jobs_columns_while_the_job_row_carries_the_batch_version() {
        let (_, f) = in_flight();
        let mut recent = Recent::default();
        recent.remember(f, Some(WrittenVersions::All(RowVersion::of(7))));
        let kept = recent.job(&(1, t(0)), RowVersion::of(7));
        assert_eq!(kept, Some(&columns(1, 0, &[0, 1, 2])));
        assert!(
            recent.job(&(1, t(10)), RowVersion::of(7)).is_none(),
            "not computed"
        );
        assert!(recent.job(&(2, t(0)), RowVersion::of(7)).is_none());
        // Recomputed since by someone else: the stored job row has another version.
        assert!(recent.job(&(1, t(0)), RowVersion::of(8)).is_none());
        assert!(recent.job(&(1, t(0)), RowVersion::ABSENT).is_none());
        // A batch whose commit gave no version is not remembered.
        let (_, f) = in_flight();
        let mut recent = Recent::default();
        recent.remember(f, None);
        assert!(recent.job(&(1, t(0)), RowVersion::ABSENT).is_none());
    }

    #[test]
    fn content_versions_are_those_of_the_rows_as_the_batch_writes_them() {
        // The batch writes device 1's job 0 (its row and columns) and data row minute 1.
        let mut job = row(1, 0, 0);
        job.conjoined = "y=3;".into();
        let mut data = row(1, 1, 0);
        data.recalc = 0;
        data.conjoined = "x=1;z=2;".into();
        let batch = Arc::new(WriteBatch {
            data: vec![data.clone()],
            jobs: vec![job.clone()],
            ..WriteBatch::default()
        });
        let f = InFlight::new(
            batch,
            HashSet::from([(1, t(0))]),
            vec![columns(1, 0, &[0, 1, 2])],
        );
        // The next batch took both over (with other content: it recomputed them) and
        // loaded minute 2 from the store.
        let mut taken = data.clone();
        taken.conjoined = "x=1;z=5;".into();
        let mut stored = row(1, 2, 0);
        stored.version = RowVersion::of(42);
        let mut next = WriteBatch {
            data: vec![taken, stored],
            jobs: vec![job.clone()],
            ..WriteBatch::default()
        };
        f.adopt(&mut next, WrittenVersions::Content);
        assert_eq!(next.data[0].version, content_version(&data));
        assert_ne!(next.data[0].version, content_version(&next.data[0]));
        assert_eq!(next.data[1].version, RowVersion::of(42), "not in flight");
        assert_eq!(next.jobs[0].version, content_version(&job));
        let mut recent = Recent::default();
        recent.remember(f, Some(WrittenVersions::Content));
        let kept = recent.job(&(1, t(0)), content_version(&job));
        assert_eq!(kept, Some(&columns(1, 0, &[0, 1, 2])));
        let mut changed = job.clone();
        changed.recalc = 1;
        assert!(recent.job(&(1, t(0)), content_version(&changed)).is_none());
    }

    #[test]
    fn recent_forgets_the_oldest_batches_beyond_its_size() {
        let mut recent = Recent::default();
        let big = (0..60).collect::<Vec<u32>>();
        let per_batch = columns(1, 0, &big).size();
        let batches = RECENT_VALUES / per_batch + 5;
        for v in 0..batches {
            let f = InFlight::new(
                Arc::new(WriteBatch::default()),
                HashSet::new(),
                vec![columns(1, 0, &big)],
            );
            recent.remember(f, Some(WrittenVersions::All(RowVersion::of(v as i64))));
        }
        assert!(recent.values <= RECENT_VALUES);
        assert_eq!(recent.batches.len(), RECENT_VALUES / per_batch);
        let newest = RowVersion::of(batches as i64 - 1);
        assert!(recent.job(&(1, t(0)), newest).is_some());
    }
}
