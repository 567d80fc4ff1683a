//! One batch of the recalculation: poll the flags, pull in what they depend on,
//! compute every device in memory, and write the whole batch back.
//!
//! A batch is bounded by `poll.batch_size` flagged rows per level; whole jobs and days
//! are loaded around them, so memory follows the batch size, never the backlog. The
//! loads are set-based: a handful of round trips per batch whatever its size.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use tracing::{debug, info, instrument, warn};

use super::inflight::{InFlight, Recent, View};
use crate::engine::catalog::{Catalog, Constants, Needs};
use crate::engine::columns::JobColumns;
use crate::engine::compute::{compute, DeviceBatch, Options, Outcome};
use crate::engine::day::DaySpan;
use crate::engine::record::Columns;
use crate::store::{
    sweep_cursor, EquationProblem, Flag, Lease, Level, Row, RowKey, Store, StoreError, Sweep,
    TimeRange, WriteBatch, WriteOutcome,
};

/// What one batch (or a whole `once` run) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Flagged rows picked up.
    pub flagged: usize,
    /// Data rows written back.
    pub data: usize,
    /// Job rows written back.
    pub jobs: usize,
    /// Day rows written back.
    pub days: usize,
    /// Rows written with `recalc = -1` (some output could not be computed).
    pub failed_rows: usize,
    /// Error records written.
    pub errors: usize,
    /// Rows the guard left alone because a producer changed them meanwhile.
    pub skipped: usize,
    /// Next jobs and days flagged because the one before them changed.
    pub followed: usize,
    /// The longest guard window of the batches' write-backs
    /// ([`WriteOutcome::guard_window`]; zero on PostgreSQL).
    pub guard_window: std::time::Duration,
}

impl Report {
    /// Adds another batch's counts.
    pub fn add(&mut self, other: &Report) {
        self.flagged += other.flagged;
        self.data += other.data;
        self.jobs += other.jobs;
        self.days += other.days;
        self.failed_rows += other.failed_rows;
        self.errors += other.errors;
        self.skipped += other.skipped;
        self.followed += other.followed;
        self.guard_window = self.guard_window.max(other.guard_window);
    }

    /// Whether the batch found nothing flagged.
    pub fn is_idle(&self) -> bool {
        self.flagged == 0
    }
}

/// How many equations and constants a [`Recalculator`] was loaded with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Equation records read.
    pub equations: usize,
    /// Equations left out because they do not compile (logged when loaded).
    pub skipped: usize,
    /// Constant records read.
    pub constants: usize,
}

/// A batch computed and not yet written.
#[derive(Debug)]
struct Prepared {
    /// What to write.
    batch: WriteBatch,
    /// Its counts before the write.
    report: Report,
    /// The jobs (device, start) it computes.
    jobs: HashSet<(i32, NaiveDateTime)>,
    /// Their `$d$x` channels as it writes them.
    day_columns: Vec<JobColumns>,
    /// The features of its data rows per marked bucket of the feature indexes, for the
    /// [`super::index::Written`] log (empty without one).
    features: super::index::BatchFeatures,
}

/// A prepared batch's report, completed with what its write-back did.
fn written_report(mut report: Report, written: &WriteOutcome) -> Report {
    report.skipped = written.skipped.len();
    report.errors = written.errors_written;
    report.guard_window = written.guard_window;
    for (level, key) in &written.skipped {
        match level {
            Level::Data => report.data = report.data.saturating_sub(1),
            Level::Job => report.jobs = report.jobs.saturating_sub(1),
            Level::Day => report.days = report.days.saturating_sub(1),
        }
        info!(%level, device = key.id, datetime = %key.datetime, "left for the producer's newer write");
    }
    report
}

/// A problem of the catalog as `recalcd status` shows it (`tables.problems`).
fn recorded(p: &crate::engine::catalog::Problem) -> EquationProblem {
    EquationProblem {
        ty: Some(p.key.ty),
        id: i32::try_from(p.key.id).ok(),
        name: Some(p.key.name.clone()),
        problem: p.to_string(),
        at: None,
    }
}

/// The compiled equations and the constants, loaded once and used for many batches.
#[derive(Debug)]
pub struct Recalculator {
    catalog: Catalog,
    constants: Constants,
    options: Options,
    batch_size: usize,
    /// What was loaded, for the daemon's logs.
    loaded: Loaded,
    /// Where each level's sweep over the flagged rows continues (see
    /// [`Store::poll_flagged`]).
    cursors: Mutex<Sweep>,
    /// The declared indexes, whose buckets each write-back marks
    /// ([`super::index::marks`]).
    indexes: crate::config::IndexConfig,
    /// Where what each write-back wrote into the feature indexes' marked buckets is
    /// recorded for the catch-up, if anywhere.
    written: Option<super::index::Written>,
}

impl Recalculator {
    /// Loads and compiles the equations and constants; bad equations are logged once
    /// (with their key and position) and left out.
    ///
    /// # Errors
    /// [`StoreError`] if the tables cannot be read.
    pub async fn load<S: Store>(
        store: &S,
        options: Options,
        batch_size: usize,
    ) -> Result<Recalculator, StoreError> {
        let equations = store.load_equations().await?;
        let catalog = Catalog::build(&equations);
        for p in catalog.problems() {
            warn!(problem = %p, "equation skipped");
        }
        let recorded: Vec<EquationProblem> = catalog.problems().iter().map(recorded).collect();
        store.record_problems(&recorded).await?;
        let constant_records = store.load_constants().await?;
        let constants = Constants::build(&constant_records, catalog.symbols());
        let loaded = Loaded {
            equations: equations.len(),
            skipped: catalog.problems().len(),
            constants: constant_records.len(),
        };
        info!(
            equations = loaded.equations,
            skipped = loaded.skipped,
            constants = loaded.constants,
            "equations loaded"
        );
        Ok(Recalculator {
            catalog,
            constants,
            options,
            batch_size: batch_size.max(1),
            loaded,
            cursors: Mutex::new([None; 3]),
            indexes: Default::default(),
            written: None,
        })
    }

    /// The same, marking the buckets of these declared indexes with every write-back
    /// (see [`super::index`]).
    pub fn with_indexes(mut self, indexes: crate::config::IndexConfig) -> Recalculator {
        self.indexes = indexes;
        self
    }

    /// The same, recording in `written` (if any) what each write-back wrote into the
    /// marked buckets of the feature indexes (see [`super::index::Written`]).
    pub fn with_written(mut self, written: Option<super::index::Written>) -> Recalculator {
        self.written = written;
        self
    }

    /// How many equations and constants were loaded.
    pub fn loaded(&self) -> Loaded {
        self.loaded
    }

    /// The compiled equations.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Runs one batch: lease devices, poll their flags, load, compute, write back,
    /// give the lease back.
    ///
    /// The lease covers the whole batch — the loads, the computation, the next job or
    /// day flagged for a changed one, and the write-back — so no other
    /// worker touches these devices meanwhile.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails; nothing of the batch is written then (on
    /// PostgreSQL; see the QuestDB module for its limits). The lease is then given back
    /// if the store still answers, and otherwise ends with the session.
    #[instrument(skip_all, fields(batch_size = self.batch_size))]
    pub async fn run_batch<S: Store>(&self, store: &mut S) -> Result<Report, StoreError> {
        // A device leased just after another worker computed it has nothing flagged any
        // more: look again a few times before calling the store idle.
        for _ in 0..3 {
            let lease = self.lease(store).await?;
            if lease.is_empty() {
                break;
            }
            let dynamic = matches!(lease, Lease::Devices(_));
            let view = View {
                store: &*store,
                in_flight: None,
                recent: None,
            };
            let outcome = match self.prepare(&view, &lease).await {
                Ok(Some(prepared)) => self.write(store, prepared).await,
                Ok(None) => Ok(Report::default()),
                Err(e) => Err(e),
            };
            let released = store.release(lease).await;
            let report = outcome?;
            released?;
            if !report.is_idle() || !dynamic {
                return Ok(report);
            }
        }
        Ok(Report::default())
    }

    /// Polls the flags of the devices of `lease`, loads what they pull in, computes,
    /// and flags the jobs and days that follow changed ones: everything of a batch but
    /// its write-back. `None` when nothing of the lease is flagged.
    async fn prepare<S: Store>(
        &self,
        view: &View<'_, S>,
        lease: &Lease,
    ) -> Result<Option<Prepared>, StoreError> {
        let n = self.batch_size;
        let t0 = Instant::now();
        let flagged_data = self.poll(view, Level::Data, lease, n).await?;
        let flagged_jobs = self.poll(view, Level::Job, lease, n).await?;
        let flagged_days = self.poll(view, Level::Day, lease, n).await?;
        let flagged = flagged_data.len() + flagged_jobs.len() + flagged_days.len();
        if flagged == 0 {
            return Ok(None);
        }
        let mut devices: BTreeMap<i32, DeviceBatch> = BTreeMap::new();
        fn device(devices: &mut BTreeMap<i32, DeviceBatch>, id: i32) -> &mut DeviceBatch {
            devices.entry(id).or_insert_with(|| DeviceBatch {
                id,
                ..DeviceBatch::default()
            })
        }
        for f in &flagged_data {
            device(&mut devices, f.key.id)
                .target_jobs
                .insert(f.data_time);
        }
        for f in &flagged_jobs {
            device(&mut devices, f.key.id)
                .target_jobs
                .insert(f.key.datetime);
        }
        if !flagged_days.is_empty() {
            let keys: Vec<RowKey> = flagged_days.iter().map(|f| f.key).collect();
            for r in view.load_rows(Level::Day, &keys).await? {
                let d = device(&mut devices, r.id);
                d.target_days.insert(r.datetime);
                d.days.push(r);
            }
        }
        let jobs: HashSet<(i32, NaiveDateTime)> = devices
            .values()
            .flat_map(|d| d.target_jobs.iter().map(move |t| (d.id, *t)))
            .collect();
        let t1 = Instant::now();
        self.load_jobs(view, &mut devices).await?;
        self.load_neighbours(view, &mut devices).await?;
        self.load_days(view, &mut devices).await?;
        let t2 = Instant::now();

        let mut batch = WriteBatch::default();
        let mut day_columns = Vec::new();
        let mut follow_jobs: Vec<RowKey> = Vec::new();
        let mut follow_days: Vec<RowKey> = Vec::new();
        let mut computed: HashSet<(Level, RowKey)> = HashSet::new();
        let devices: Vec<DeviceBatch> = devices.into_values().collect();
        let ids: Vec<i32> = devices.iter().map(|d| d.id).collect();
        let outcomes = compute_all(devices, &self.catalog, &self.constants, &self.options);
        for (id, out) in ids.into_iter().zip(outcomes) {
            let needs = self.needs(id);
            let key = |datetime| RowKey { id, datetime };
            if needs.next_job_follows() {
                follow_jobs.extend(out.changed_jobs.iter().copied().map(key));
            }
            if needs.next_day_follows() {
                follow_days.extend(out.changed_days.iter().copied().map(key));
            }
            computed.extend(out.jobs.iter().map(|r| (Level::Job, r.key())));
            computed.extend(out.days.iter().map(|r| (Level::Day, r.key())));
            batch.data.extend(out.data);
            batch.jobs.extend(out.jobs);
            batch.days.extend(out.days);
            batch.errors.extend(out.errors);
            day_columns.extend(out.day_columns);
        }
        let failed_rows = [&batch.data, &batch.jobs, &batch.days]
            .iter()
            .flat_map(|rows| rows.iter())
            .filter(|r| r.recalc < 0)
            .count();
        let mut report = Report {
            flagged,
            data: batch.data.len(),
            jobs: batch.jobs.len(),
            days: batch.days.len(),
            failed_rows,
            ..Report::default()
        };
        // The next job or day of a changed one is flagged, so the next batch
        // recomputes it (and, if it changes too, its own next).
        for (level, keys) in [(Level::Job, follow_jobs), (Level::Day, follow_days)] {
            if keys.is_empty() {
                continue;
            }
            for mut next in view.next(level, &keys).await?.into_iter().flatten() {
                if next.recalc > 0 || !computed.insert((level, next.key())) {
                    continue; // already flagged, or computed in this batch
                }
                next.recalc = 1;
                report.followed += 1;
                batch.rows_mut(level).push(next);
            }
        }
        batch.index_marks = super::index::marks(&self.indexes, &batch.data);
        let features = match self.written {
            Some(_) => super::index::BatchFeatures::of(&self.indexes, &batch.data),
            None => Default::default(),
        };
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        debug!(
            poll_ms = ms(t1 - t0),
            load_ms = ms(t2 - t1),
            compute_ms = ms(t2.elapsed()),
            flagged,
            "batch prepared"
        );
        Ok(Some(Prepared {
            batch,
            report,
            jobs,
            day_columns,
            features,
        }))
    }

    /// Writes a prepared batch back and completes its report.
    async fn write<S: Store>(
        &self,
        store: &mut S,
        prepared: Prepared,
    ) -> Result<Report, StoreError> {
        let started = Instant::now();
        let written = store.write_back(&prepared.batch).await?;
        self.record_written(prepared.features, &written);
        debug!(
            write_ms = started.elapsed().as_secs_f64() * 1e3,
            "batch written"
        );
        Ok(written_report(prepared.report, &written))
    }

    /// Records what a batch's write-back wrote into the feature indexes' marked buckets
    /// in the [`super::index::Written`] log, if there is one.
    fn record_written(&self, features: super::index::BatchFeatures, written: &WriteOutcome) {
        if let Some(log) = &self.written {
            log.record(&self.indexes, features, &written.skipped);
        }
    }

    /// The next `n` flagged rows of `level` of the leased devices, continuing the sweep; at the end of a sweep
    /// it starts over from the oldest flag once, so rows re-flagged behind the cursor are
    /// found and an empty answer means nothing of the level is flagged.
    async fn poll<S: Store>(
        &self,
        view: &View<'_, S>,
        level: Level,
        lease: &Lease,
        n: usize,
    ) -> Result<Vec<Flag>, StoreError> {
        let slot = level as usize;
        let after = self.cursors.lock().map(|c| c[slot]).unwrap_or(None);
        let (mut flags, mut stored) = view.poll(level, lease, after, n).await?;
        if stored.is_empty() && after.is_some() {
            (flags, stored) = view.poll(level, lease, None, n).await?;
        }
        if let Ok(mut c) = self.cursors.lock() {
            c[slot] = sweep_cursor(stored.iter().map(|f| f.key));
        }
        Ok(flags)
    }

    /// Leases the devices of the next flagged rows of the sweeps; at the end of the
    /// sweeps (or when other workers hold every device after them) those of the oldest.
    async fn lease<S: Store>(&self, store: &mut S) -> Result<Lease, StoreError> {
        let started = Instant::now();
        let after = self.cursors.lock().map(|c| *c).unwrap_or_default();
        let mut lease = store.lease(&after, self.batch_size).await?;
        if lease.is_empty() && after.iter().any(Option::is_some) {
            lease = store.lease(&[None; 3], self.batch_size).await?;
        }
        tracing::trace!(ms = started.elapsed().as_secs_f64() * 1e3, "devices leased");
        Ok(lease)
    }

    /// Starts every level's sweep over from the oldest flag.
    fn restart_sweeps(&self) {
        if let Ok(mut c) = self.cursors.lock() {
            *c = [None; 3];
        }
    }

    /// Every data row and the stored row of each job to compute.
    async fn load_jobs<S: Store>(
        &self,
        view: &View<'_, S>,
        devices: &mut BTreeMap<i32, DeviceBatch>,
    ) -> Result<(), StoreError> {
        let keys: Vec<(i32, NaiveDateTime)> = devices
            .values()
            .flat_map(|d| d.target_jobs.iter().map(move |t| (d.id, *t)))
            .collect();
        let row_keys: Vec<RowKey> = keys
            .iter()
            .map(|&(id, datetime)| RowKey { id, datetime })
            .collect();
        distribute(devices, view.load_job_rows(&keys).await?, |d| &mut d.data);
        distribute(devices, view.load_rows(Level::Job, &row_keys).await?, |d| {
            &mut d.jobs
        });
        Ok(())
    }

    /// The previous data row and job (and its rows) where the equations read them.
    async fn load_neighbours<S: Store>(
        &self,
        view: &View<'_, S>,
        devices: &mut BTreeMap<i32, DeviceBatch>,
    ) -> Result<(), StoreError> {
        // The first row of each job to compute, for devices that read backwards.
        let mut firsts: Vec<RowKey> = Vec::new();
        for d in devices.values() {
            let needs = self.needs(d.id);
            if !(needs.prev_data_row || needs.prev_job || needs.prev_job_rows) {
                continue;
            }
            let mut first: BTreeMap<NaiveDateTime, NaiveDateTime> = BTreeMap::new();
            for r in &d.data {
                let e = first.entry(r.data_time).or_insert(r.datetime);
                *e = (*e).min(r.datetime);
            }
            firsts.extend(
                first
                    .into_values()
                    .map(|datetime| RowKey { id: d.id, datetime }),
            );
        }
        if firsts.is_empty() {
            return Ok(());
        }
        let prevs: Vec<Row> = view
            .previous(Level::Data, &firsts)
            .await?
            .into_iter()
            .flatten()
            .collect();
        let mut prev_jobs: Vec<(i32, NaiveDateTime)> = Vec::new();
        let mut prev_job_rows: Vec<(i32, NaiveDateTime)> = Vec::new();
        for p in &prevs {
            let needs = self.needs(p.id);
            let known = devices
                .get(&p.id)
                .is_some_and(|d| d.target_jobs.contains(&p.data_time));
            if known {
                continue;
            }
            if needs.prev_job {
                prev_jobs.push((p.id, p.data_time));
            }
            if needs.prev_job_rows {
                prev_job_rows.push((p.id, p.data_time));
            }
        }
        distribute(devices, prevs, |d| &mut d.data);
        if !prev_jobs.is_empty() {
            let keys: Vec<RowKey> = prev_jobs
                .iter()
                .map(|&(id, datetime)| RowKey { id, datetime })
                .collect();
            distribute(devices, view.load_rows(Level::Job, &keys).await?, |d| {
                &mut d.jobs
            });
        }
        if !prev_job_rows.is_empty() {
            distribute(devices, view.load_job_rows(&prev_job_rows).await?, |d| {
                &mut d.data
            });
        }
        Ok(())
    }

    /// The days of the jobs to compute and of the flagged days: their stored rows, all
    /// their jobs, their data rows where `$d$x` is read, and the previous day.
    async fn load_days<S: Store>(
        &self,
        view: &View<'_, S>,
        devices: &mut BTreeMap<i32, DeviceBatch>,
    ) -> Result<(), StoreError> {
        let mut spans: Vec<(TimeRange, Needs)> = Vec::new();
        for d in devices.values() {
            let set = self.catalog.set_for(d.id);
            if set.day.is_empty() && d.target_days.is_empty() {
                continue;
            }
            let Ok(clock) = self
                .constants
                .for_device(d.id)
                .day_clock(self.options.default_zone)
            else {
                continue; // the engine records why for each job
            };
            let days: BTreeSet<DaySpan> = d
                .target_jobs
                .iter()
                .chain(&d.target_days)
                .map(|t| clock.day_of(*t))
                .collect();
            spans.extend(days.into_iter().map(|s| {
                let range = TimeRange {
                    id: d.id,
                    from: s.start,
                    to: s.end,
                };
                (range, set.needs)
            }));
        }
        if spans.is_empty() {
            return Ok(());
        }
        // A day with other jobs still flagged is computed by the batch that takes the
        // last of them: computing it now would be work thrown away (and rows rewritten).
        let all: Vec<TimeRange> = spans.iter().map(|(r, _)| *r).collect();
        let targets: Vec<(i32, NaiveDateTime)> = devices
            .values()
            .flat_map(|d| d.target_jobs.iter().map(move |t| (d.id, *t)))
            .collect();
        let waiting: Vec<(i32, NaiveDateTime)> = view
            .flagged_jobs_in(&all, &targets)
            .await?
            .into_iter()
            .filter(|(id, start)| !devices[id].target_jobs.contains(start))
            .collect();
        spans.retain(|(r, _)| {
            let deferred = waiting
                .iter()
                .any(|(id, start)| *id == r.id && *start >= r.from && *start < r.to);
            if deferred {
                if let Some(d) = devices.get_mut(&r.id) {
                    d.defer_days.insert(r.from);
                }
            }
            !deferred
        });
        if spans.is_empty() {
            return Ok(());
        }
        let ranges: Vec<TimeRange> = spans.iter().map(|(r, _)| *r).collect();
        let keys: Vec<RowKey> = ranges
            .iter()
            .map(|r| RowKey {
                id: r.id,
                datetime: r.from,
            })
            .collect();
        let mut have: HashSet<RowKey> = devices
            .values()
            .flat_map(|d| d.days.iter().map(Row::key))
            .collect();
        let days: Vec<Row> = view
            .load_rows(Level::Day, &keys)
            .await?
            .into_iter()
            .filter(|r| have.insert(r.key()))
            .collect();
        distribute(devices, days, |d| &mut d.days);
        let day_jobs = view.load_in_ranges(Level::Job, &ranges).await?;
        // Data rows of every job of a day whose equations read `$d$x`.
        let wants_data: HashSet<i32> = spans
            .iter()
            .filter(|(_, n)| n.day_data)
            .map(|(r, _)| r.id)
            .collect();
        let extra: Vec<&Row> = day_jobs
            .iter()
            .filter(|j| wants_data.contains(&j.id))
            .filter(|j| !devices[&j.id].target_jobs.contains(&j.datetime))
            .collect();
        if !extra.is_empty() {
            // Only the channels `$d$x` reads, a batch's worth of jobs' rows at a time.
            let symbols = self.catalog.symbols();
            let columns = Columns::new(symbols);
            let read = |id: i32, start, rows| {
                let slots = &self.catalog.set_for(id).day_data;
                JobColumns::of_rows(id, start, rows, symbols, &columns, slots)
            };
            let chunk = (self.batch_size / DAY_JOB_ROWS).max(1);
            for c in view.load_day_columns(&extra, chunk, read).await? {
                if let Some(d) = devices.get_mut(&c.id) {
                    d.day_data.push(c);
                }
            }
        }
        distribute(devices, day_jobs, |d| &mut d.jobs);
        // The previous day, and its jobs where `$$x` is read.
        let wants_prev: Vec<RowKey> = spans
            .iter()
            .zip(&keys)
            .filter(|((_, n), _)| n.prev_day || n.prev_day_jobs)
            .map(|(_, k)| *k)
            .collect();
        if wants_prev.is_empty() {
            return Ok(());
        }
        let prev_days: Vec<Row> = view
            .previous(Level::Day, &wants_prev)
            .await?
            .into_iter()
            .flatten()
            .collect();
        // The previous day's jobs, whether or not that day is loaded already (a flagged
        // day waiting for a job of its own is, without its jobs) — except where the
        // day is computed in this batch, whose jobs `day_jobs` holds.
        let computed: HashSet<RowKey> = keys.iter().copied().collect();
        let prev_ranges: Vec<TimeRange> = prev_days
            .iter()
            .filter(|r| self.needs(r.id).prev_day_jobs && !computed.contains(&r.key()))
            .map(|r| TimeRange {
                id: r.id,
                from: r.datetime,
                to: r.data_time,
            })
            .collect();
        let prev_days: Vec<Row> = prev_days
            .into_iter()
            .filter(|r| have.insert(r.key()))
            .collect();
        distribute(devices, prev_days, |d| &mut d.days);
        if !prev_ranges.is_empty() {
            distribute(
                devices,
                view.load_in_ranges(Level::Job, &prev_ranges).await?,
                |d| &mut d.jobs,
            );
        }
        Ok(())
    }

    fn needs(&self, device: i32) -> Needs {
        self.catalog.set_for(device).needs
    }
}

/// The rows a job is taken to have when a day's other jobs are read in pieces of about a
/// batch's rows.
const DAY_JOB_ROWS: usize = 100;

/// Data rows below which a batch is computed on one thread (threads cost more).
const PARALLEL_MIN_ROWS: usize = 2_000;

/// Computes the devices, in order, spread over the machine's cores: devices are
/// independent, so contiguous runs of them with about equal numbers of rows are
/// computed on scoped threads and the outcomes concatenated in device order.
fn compute_all(
    devices: Vec<DeviceBatch>,
    catalog: &Catalog,
    constants: &Constants,
    options: &Options,
) -> Vec<Outcome> {
    let rows: usize = devices.iter().map(|d| d.data.len()).sum();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(devices.len())
        .min(8);
    if threads <= 1 || rows < PARALLEL_MIN_ROWS {
        return devices
            .into_iter()
            .map(|d| compute(d, catalog, constants, options))
            .collect();
    }
    let share = rows.div_ceil(threads);
    let mut chunks: Vec<Vec<DeviceBatch>> = vec![Vec::new()];
    let mut in_chunk = 0;
    for d in devices {
        if in_chunk >= share && chunks.len() < threads {
            chunks.push(Vec::new());
            in_chunk = 0;
        }
        in_chunk += d.data.len();
        if let Some(last) = chunks.last_mut() {
            last.push(d);
        }
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|d| compute(d, catalog, constants, options))
                        .collect::<Vec<Outcome>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// Hands loaded rows to their devices.
fn distribute(
    devices: &mut BTreeMap<i32, DeviceBatch>,
    rows: Vec<Row>,
    field: impl Fn(&mut DeviceBatch) -> &mut Vec<Row>,
) {
    for r in rows {
        if let Some(d) = devices.get_mut(&r.id) {
            field(d).push(r);
        }
    }
}

/// Runs batches until nothing is flagged, and returns the totals and the time taken.
///
/// Where the store can open a second session ([`Store::open_writer`]), the batches are
/// pipelined: each is written on that session while the next is polled, loaded and
/// computed on this one, through a view of the store as it will be once the batch
/// being written has committed. Each batch is still written whole or not at all, and
/// the leases of both stay held until their own write-back is done.
///
/// A batch whose every row was left for a producer makes no progress of its own; after
/// a few of those in a row the run stops rather than spin, and says so.
///
/// # Errors
/// [`StoreError`] from the first batch that fails.
pub async fn run_until_idle<S: Store + Send + 'static>(
    recalc: &Recalculator,
    store: &mut S,
    mut on_batch: impl FnMut(&Report),
) -> Result<(Report, Duration), StoreError> {
    run_while(recalc, store, |report| {
        on_batch(report);
        true
    })
    .await
}

/// [`run_until_idle`], also stopping once `go_on` answers `false` for a batch just
/// written: the batch prepared meanwhile is then dropped unwritten (its rows are still
/// flagged), so nothing is in flight when this returns.
///
/// # Errors
/// [`StoreError`] from the first batch that fails.
pub async fn run_while<S: Store + Send + 'static>(
    recalc: &Recalculator,
    store: &mut S,
    go_on: impl FnMut(&Report) -> bool,
) -> Result<(Report, Duration), StoreError> {
    let started = Instant::now();
    let mut progress = Progress::new(go_on);
    let writer = store.open_writer().await.unwrap_or_else(|e| {
        warn!(error = %e, "no second connection for the write-back; batches run one after another");
        None
    });
    match writer {
        Some(writer) => pipelined(recalc, store, writer, &mut progress).await?,
        None => loop {
            let report = recalc.run_batch(store).await?;
            if report.is_idle() || !progress.add(&report) {
                break;
            }
        },
    }
    Ok((progress.total, started.elapsed()))
}

/// The totals of a run and the check that it makes progress.
struct Progress<F> {
    total: Report,
    stalled: usize,
    go_on: F,
}

impl<F: FnMut(&Report) -> bool> Progress<F> {
    fn new(go_on: F) -> Self {
        Progress {
            total: Report::default(),
            stalled: 0,
            go_on,
        }
    }

    /// Counts a written batch; `false` once the caller says stop or batches stopped
    /// making progress.
    fn add(&mut self, report: &Report) -> bool {
        self.total.add(report);
        let go_on = (self.go_on)(report);
        let wrote = report.data + report.jobs + report.days;
        self.stalled = if wrote == 0 { self.stalled + 1 } else { 0 };
        if self.stalled >= 3 {
            warn!("three batches in a row were all left for producers' newer writes; stopping");
            return false;
        }
        go_on
    }
}

/// A batch being written on the writer session.
struct Flight<S> {
    lease: Lease,
    rows: InFlight,
    report: Report,
    features: super::index::BatchFeatures,
    task: tokio::task::JoinHandle<(S, Result<WriteOutcome, StoreError>)>,
}

impl<S> Flight<S> {
    /// Waits for the write-back; gives the writer session back, with the batch's rows
    /// and what became of them.
    async fn land(self) -> (S, Landed) {
        let (writer, written) = match self.task.await {
            Ok(done) => done,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        let landed = Landed {
            lease: self.lease,
            rows: self.rows,
            report: self.report,
            features: self.features,
            written,
        };
        (writer, landed)
    }
}

/// A batch whose write-back ended ([`Flight::land`]).
struct Landed {
    lease: Lease,
    rows: InFlight,
    report: Report,
    /// What its data rows hold per marked bucket of the feature indexes.
    features: super::index::BatchFeatures,
    written: Result<WriteOutcome, StoreError>,
}

/// [`run_until_idle`] with a writer session: batch N+1 is prepared while batch N is
/// written.
async fn pipelined<S: Store + Send + 'static>(
    recalc: &Recalculator,
    store: &mut S,
    writer: S,
    progress: &mut Progress<impl FnMut(&Report) -> bool>,
) -> Result<(), StoreError> {
    let mut writer = Some(writer);
    let mut flight: Option<Flight<S>> = None;
    let mut recent = Recent::default();
    // Leases that found nothing flagged in a row (another worker got there first).
    let mut empty = 0;
    loop {
        let lease = match recalc.lease(store).await {
            Ok(lease) => lease,
            Err(e) => return Err(abandon(flight, e).await),
        };
        let prepared = if lease.is_empty() {
            Ok(None)
        } else {
            let view = View {
                store: &*store,
                in_flight: flight.as_ref().map(|f| &f.rows),
                recent: Some(&recent),
            };
            recalc.prepare(&view, &lease).await
        };
        let mut prepared = match prepared {
            Ok(p) => p,
            Err(e) => return Err(abandon(flight, e).await),
        };
        let landed = flight.is_some();
        if let Some(f) = flight.take() {
            let (w, landed) = f.land().await;
            writer = Some(w);
            let Landed {
                lease: held,
                rows,
                report,
                features,
                written,
            } = landed;
            let written = written?;
            recalc.record_written(features, &written);
            store.release(held).await?;
            let report = written_report(report, &written);
            let go_on = progress.add(&report);
            if !written.skipped.is_empty() || !go_on {
                // What was prepared may rest on a row the batch could not write: throw
                // it away; its rows are still flagged, and the sweep starts over.
                store.release(lease).await?;
                recalc.restart_sweeps();
                recent.clear();
                if go_on {
                    continue;
                }
                return Ok(());
            }
            if let (Some(p), Some(version)) = (prepared.as_mut(), written.version) {
                rows.adopt(&mut p.batch, version);
            }
            recent.remember(rows, written.version);
        }
        let Some(p) = prepared else {
            // As in `run_batch`: a device leased just after another worker computed it
            // has nothing flagged any more, so look again a few times; and after a
            // landed batch, look again with nothing in flight.
            let look_again = matches!(&lease, Lease::Devices(d) if !d.is_empty());
            store.release(lease).await?;
            empty = if landed { 0 } else { empty + 1 };
            if landed || (look_again && empty < 3) {
                continue;
            }
            return Ok(());
        };
        empty = 0;
        let indexed = Instant::now();
        let batch = Arc::new(p.batch);
        let rows = InFlight::new(Arc::clone(&batch), p.jobs, p.day_columns);
        tracing::trace!(
            ms = indexed.elapsed().as_secs_f64() * 1e3,
            "in-flight rows indexed"
        );
        let Some(mut w) = writer.take() else {
            unreachable!("the writer is back whenever nothing is in flight");
        };
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let written = w.write_back(&batch).await;
            // Back to the in-flight index alone, which can then keep the rows without
            // copying them (`Recent::remember`).
            drop(batch);
            debug!(
                write_ms = started.elapsed().as_secs_f64() * 1e3,
                "batch written"
            );
            (w, written)
        });
        flight = Some(Flight {
            lease,
            rows,
            report: p.report,
            features: p.features,
            task,
        });
    }
}

/// Waits for the batch in flight, if any, before giving up on `error`: it is written
/// whole or not at all, never cut off.
async fn abandon<S>(flight: Option<Flight<S>>, error: StoreError) -> StoreError {
    if let Some(f) = flight {
        let (_, landed) = f.land().await;
        if let Err(e) = landed.written {
            warn!(error = %e, "the batch being written failed too");
        }
    }
    error
}
