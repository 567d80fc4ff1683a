//! One device's recalculation, in memory: jobs and days built from the loaded rows, the
//! data and job levels iterated to a fixpoint, then the days.
//!
//! The input is a piece of the device's timeline: the rows to compute plus the
//! neighbours their equations read (the previous data row, job or day, the other jobs of
//! a day), which the caller loads according to [`super::catalog::Needs`]. Rows are taken to be
//! complete where the equations need them complete: a job's `$x` reads every data row of
//! the job that was loaded.
//!
//! Our definitions:
//! - all outputs of a row being computed are forgotten first, so a result never depends
//!   on a stale value from an earlier run (running twice gives the same rows);
//! - a day row spans `[day break, next day break)`: `datetime` is the break, `data_time`
//!   the next one; `state`, `user`, `gps` of a job or day row are those of its last data
//!   row or job;
//! - outputs are written in evaluation order: by type, an equation after those it reads,
//!   otherwise by name;
//! - an output that could not be computed is left out of `conjoined` (the old value is
//!   not kept) and recorded as an error; the row gets `recalc = -1`;
//! - a row whose `conjoined` cannot be read is not computed and keeps its content, with
//!   `recalc = -1` and an error naming the problem; and its failure stays its own: no
//!   other row reads it. Vectors over rows (a job's `$x`, a day's `$x` and `$d$x`, a
//!   summary's) leave it out, the next data row's `$$x` reads the readable row before
//!   it, and a value read directly from an unreadable job or day row (`$X`, `$$X`) has
//!   no value.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;

use chrono::NaiveDateTime;
use chrono_tz::Tz;

use super::catalog::{Catalog, Constants, EquationSet};
use super::columns::{DayRows, JobColumns};
use super::context::{DataCx, DayCx, Device, JobCx};
use super::day::{DayClock, DaySpan};
use super::record::{new_row, Columns, Output, Record};
use crate::lang::context::{Slot, Symbols};
use crate::lang::value::Value;
use crate::lang::{seed_for, Equation, Machine};
use crate::model::{self, ErrorRecord, Row, RowKey};

/// How the engine runs (`[engine]` in the configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The most data ↔ job iterations before giving up on a fixpoint.
    pub max_iterations: u32,
    /// The zone day breaks are read in when a device has no `#TZ`.
    pub default_zone: Tz,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_iterations: 10,
            default_zone: Tz::UTC,
        }
    }
}

/// The loaded piece of one device's timeline and what to compute in it.
#[derive(Debug, Clone, Default)]
pub struct DeviceBatch {
    /// The device.
    pub id: i32,
    /// Data rows: every row of the jobs to compute, and neighbours (any order).
    pub data: Vec<Row>,
    /// Stored job rows: of the jobs to compute (where they exist) and neighbours.
    pub jobs: Vec<Row>,
    /// Stored day rows: of the days to compute (where they exist) and neighbours.
    pub days: Vec<Row>,
    /// The starts of the jobs to compute (with all their data rows).
    pub target_jobs: BTreeSet<NaiveDateTime>,
    /// The starts of days to compute besides the days of those jobs (flagged days).
    pub target_days: BTreeSet<NaiveDateTime>,
    /// The starts of days not to compute now although their jobs are computed: other
    /// jobs of theirs are still flagged, and the batch that takes the last computes them.
    pub defer_days: BTreeSet<NaiveDateTime>,
    /// The channels the days' `$d$x` read of jobs not computed, instead of their rows
    /// (a job with columns here is read from them, not from rows in `data`).
    pub day_data: Vec<JobColumns>,
}

/// What one device's recalculation produced: the rows to write back and the failures.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Recomputed data rows.
    pub data: Vec<Row>,
    /// Recomputed (or new) job rows.
    pub jobs: Vec<Row>,
    /// Recomputed (or new) day rows.
    pub days: Vec<Row>,
    /// One record per output that could not be computed.
    pub errors: Vec<ErrorRecord>,
    /// Data ↔ job passes made.
    pub iterations: u32,
    /// Starts of the jobs whose row or data rows now read differently (or are new): the
    /// next job follows them where the equations read `$$`.
    pub changed_jobs: BTreeSet<NaiveDateTime>,
    /// Starts of the days that now read differently (or are new).
    pub changed_days: BTreeSet<NaiveDateTime>,
    /// The `$d$x` channels of the computed jobs as written, where day equations read
    /// them: what a later batch computing their day may take instead of reading them.
    pub day_columns: Vec<JobColumns>,
}

struct Job {
    start: NaiveDateTime,
    /// The job's data rows in [`Timeline::data`].
    rows: Range<usize>,
    rec: Record,
    target: bool,
    day: Option<usize>,
}

struct Day {
    span: DaySpan,
    /// Indices into [`Timeline::jobs`], in time order.
    jobs: Vec<usize>,
    rec: Record,
    target: bool,
}

/// The outputs of a level in evaluation order, each slot once (under the last name).
fn outputs(eqs: &[Arc<Equation>], symbols: &Symbols) -> Vec<Output> {
    let mut out: Vec<(Arc<str>, Slot)> = Vec::new();
    let mut put = |name: Arc<str>, slot: Slot| match out.iter_mut().find(|(_, s)| *s == slot) {
        Some(entry) => entry.0 = name,
        None => out.push((name, slot)),
    };
    for eq in eqs {
        put(Arc::from(eq.key.name.as_str()), eq.output);
        for (slot, name) in eq.program.outputs() {
            let name = symbols
                .channel_name(*slot)
                .cloned()
                .unwrap_or_else(|| name.clone());
            put(name, *slot);
        }
    }
    out.iter()
        .map(|(name, slot)| Output::new(name, *slot))
        .collect()
}

/// The random seed of one evaluation: the row's key and the equation's (0 for an
/// equation that draws no random numbers: the seed would not be used).
pub(crate) fn seed(row: &Row, eq: &Equation) -> u64 {
    if !eq.program.uses_random() {
        return 0;
    }
    let micros = row.datetime.and_utc().timestamp_micros();
    seed_for(&[&row.id.to_le_bytes(), &micros.to_le_bytes()], &eq.key)
}

/// Sets `slot` and says whether the value changed.
fn assign(rec: &mut Record, slot: Slot, value: Value) -> bool {
    let changed = rec.get(slot) != Some(&value);
    if changed {
        rec.set(slot, value);
    }
    changed
}

/// Stores an evaluation's result and `@name` outputs in `rec`; says whether any changed.
fn store_result(
    rec: &mut Record,
    eq: &Equation,
    ev: crate::lang::Evaluated,
    symbols: &Symbols,
) -> bool {
    let mut changed = assign(rec, eq.output, ev.value);
    if ev.outputs.is_empty() {
        return changed; // nearly always: dropping an empty list's iterator costs more
    }
    for (name, v) in ev.outputs {
        if let Some(slot) = symbols.find_channel(&name) {
            changed |= assign(rec, slot, v);
        }
    }
    changed
}

/// A job row for `start` from its data rows: start, end and the last row's facts.
fn job_row(id: i32, start: NaiveDateTime, stored: Option<Row>, rows: &[Record]) -> Row {
    let mut row = stored.unwrap_or_else(|| new_row(id, start, start));
    if let Some(last) = rows.iter().max_by_key(|r| r.row.datetime) {
        row.data_time = last.row.datetime;
        row.state = last.row.state;
        row.user.clone_from(&last.row.user);
        row.gps.clone_from(&last.row.gps);
    }
    row
}

/// The loaded piece of a device's timeline: data rows in time order, the jobs they form
/// (and stored ones), the days the jobs fall in (and stored ones).
struct Timeline {
    data: Vec<Record>,
    jobs: Vec<Job>,
    days: Vec<Day>,
    /// The `$d$x` channels of jobs not computed, by start.
    columns: BTreeMap<NaiveDateTime, JobColumns>,
}

/// What every evaluation of one device needs.
struct Pass<'a> {
    set: &'a EquationSet,
    symbols: &'a Symbols,
    device: Device<'a>,
}

impl Timeline {
    /// Groups the data rows into jobs by their start (`data_time`) and merges the
    /// stored job rows. A flagged job without data rows cannot be computed: it is
    /// handed back in `out` with `recalc = -1`.
    fn build(
        batch: &mut DeviceBatch,
        symbols: &Symbols,
        columns: &Columns,
        outs: &Outputs,
        out: &mut Outcome,
    ) -> Timeline {
        let mut raw = std::mem::take(&mut batch.data);
        raw.sort_by_key(|r| (r.data_time, r.datetime));
        raw.dedup_by_key(|r| r.key());
        let data: Vec<Record> = raw
            .into_iter()
            .map(|r| {
                // The rows of jobs not computed are only read (by their day).
                if batch.target_jobs.contains(&r.data_time) {
                    Record::load(r, symbols, columns, &outs.data)
                } else {
                    Record::read(r, symbols, columns)
                }
            })
            .collect();
        let mut groups: BTreeMap<NaiveDateTime, Range<usize>> = BTreeMap::new();
        for (i, r) in data.iter().enumerate() {
            groups
                .entry(r.row.data_time)
                .and_modify(|g| g.end = i + 1)
                .or_insert(i..i + 1);
        }
        let mut stored: BTreeMap<NaiveDateTime, Row> = std::mem::take(&mut batch.jobs)
            .into_iter()
            .map(|r| (r.datetime, r))
            .collect();
        let starts: BTreeSet<NaiveDateTime> = groups.keys().chain(stored.keys()).copied().collect();
        let mut jobs: Vec<Job> = Vec::with_capacity(starts.len());
        for start in starts {
            let rows = groups.get(&start).cloned().unwrap_or(0..0);
            let flagged = batch.target_jobs.contains(&start);
            let stored = stored.remove(&start);
            if flagged && rows.is_empty() {
                if let Some(mut row) = stored.clone() {
                    out.errors.push(ErrorRecord {
                        level: model::Level::Job,
                        key: row.key(),
                        equation: "(job)".into(),
                        reason: "the job has no data rows".into(),
                    });
                    row.recalc = -1;
                    out.jobs.push(row);
                }
            }
            let row = job_row(batch.id, start, stored, &data[rows.clone()]);
            jobs.push(Job {
                start,
                rec: Record::load(row, symbols, columns, &outs.job),
                target: flagged && !rows.is_empty(),
                rows,
                day: None,
            });
        }
        let columns = std::mem::take(&mut batch.day_data)
            .into_iter()
            .filter(|c| !batch.target_jobs.contains(&c.start))
            .map(|c| (c.start, c))
            .collect();
        Timeline {
            data,
            jobs,
            days: Vec::new(),
            columns,
        }
    }

    /// Assigns the jobs to days by the device's clock and merges the stored day rows.
    fn add_days(
        &mut self,
        clock: &DayClock,
        batch: &DeviceBatch,
        symbols: &Symbols,
        columns: &Columns,
        outs: &Outputs,
    ) {
        let mut spans: BTreeMap<NaiveDateTime, (DaySpan, Option<Row>)> = BTreeMap::new();
        for r in &batch.days {
            let span = clock.day_of(r.datetime);
            let span = if span.start == r.datetime {
                span
            } else {
                // Stored under another day break: keep it as it was stored.
                DaySpan {
                    start: r.datetime,
                    end: r.data_time.max(r.datetime),
                }
            };
            spans.insert(span.start, (span, Some(r.clone())));
        }
        for j in &self.jobs {
            let span = clock.day_of(j.start);
            spans.entry(span.start).or_insert((span, None));
        }
        let index: BTreeMap<NaiveDateTime, usize> =
            spans.keys().enumerate().map(|(i, k)| (*k, i)).collect();
        self.days = spans
            .into_values()
            .map(|(span, stored)| {
                let row = stored.unwrap_or_else(|| new_row(batch.id, span.start, span.end));
                Day {
                    target: batch.target_days.contains(&span.start)
                        && !batch.defer_days.contains(&span.start),
                    span,
                    jobs: Vec::new(),
                    rec: Record::load(row, symbols, columns, &outs.day),
                }
            })
            .collect();
        for (ji, j) in self.jobs.iter_mut().enumerate() {
            let d = index[&clock.day_of(j.start).start];
            j.day = Some(d);
            self.days[d].jobs.push(ji);
            self.days[d].target |= j.target && !batch.defer_days.contains(&self.days[d].span.start);
        }
    }

    /// Forgets the outputs of every row about to be computed, so no result reads a
    /// stale value from an earlier run.
    fn clear_outputs(&mut self, outs: &Outputs) {
        for j in self.jobs.iter_mut().filter(|j| j.target) {
            for r in &mut self.data[j.rows.clone()] {
                outs.data.iter().for_each(|o| r.clear(o.slot));
            }
            outs.job.iter().for_each(|o| j.rec.clear(o.slot));
        }
        for d in self.days.iter_mut().filter(|d| d.target) {
            outs.day.iter().for_each(|o| d.rec.clear(o.slot));
        }
    }

    /// Evaluates the data equations of every row of the jobs to compute, in time order.
    /// In a `later` fixpoint iteration only the equations whose inputs can still
    /// change are evaluated again.
    fn data_pass(&mut self, pass: &Pass, machine: &mut Machine, later: bool) -> bool {
        let mut changed = false;
        for ji in (0..self.jobs.len()).filter(|&j| self.jobs[j].target) {
            let job = &self.jobs[ji];
            let (rows, span) = (job.rows.clone(), (job.start, job.rec.row.data_time));
            let day = job.day.map(|d| self.days[d].span);
            for i in rows.clone() {
                if self.data[i].malformed.is_some() {
                    continue;
                }
                for (k, eq) in pass.set.data.iter().enumerate() {
                    if later && !pass.set.rerun_data(k) {
                        continue; // its inputs have not changed since the first iteration
                    }
                    let ev = {
                        let cx = DataCx {
                            device: pass.device,
                            row: &self.data[i],
                            // The row before, skipping rows that cannot be read.
                            prev: self.data[..i].iter().rev().find(|r| r.malformed.is_none()),
                            job: &self.jobs[ji].rec,
                            prev_job: ji.checked_sub(1).map(|p| &self.jobs[p].rec),
                            ordinal: i - rows.start + 1,
                            prev_in_job: (i > rows.start).then(|| self.data[i - 1].row.datetime),
                            job_span: span,
                            day,
                        };
                        machine.eval(&eq.program, &cx, seed(&self.data[i].row, eq))
                    };
                    changed |= store_result(&mut self.data[i], eq, ev, pass.symbols);
                }
            }
        }
        changed
    }

    /// Evaluates the job equations of every job to compute.
    /// In a `later` fixpoint iteration only the equations whose inputs can still
    /// change are evaluated again.
    fn job_pass(&mut self, pass: &Pass, machine: &mut Machine, later: bool) -> bool {
        let mut changed = false;
        for ji in 0..self.jobs.len() {
            if !self.jobs[ji].target || self.jobs[ji].rec.malformed.is_some() {
                continue;
            }
            let day = self.jobs[ji].day.map(|d| self.days[d].span);
            for (k, eq) in pass.set.job.iter().enumerate() {
                if later && !pass.set.rerun_job(k) {
                    continue;
                }
                let ev = {
                    let prev = ji.checked_sub(1).map(|p| &self.jobs[p]);
                    let cx = JobCx::new(
                        pass.device,
                        &self.data[self.jobs[ji].rows.clone()],
                        prev.filter(|p| !p.rows.is_empty())
                            .map(|p| &self.data[p.rows.clone()]),
                        &self.jobs[ji].rec,
                        prev.map(|p| &p.rec),
                        day,
                    );
                    machine.eval(&eq.program, &cx, seed(&self.jobs[ji].rec.row, eq))
                };
                changed |= store_result(&mut self.jobs[ji].rec, eq, ev, pass.symbols);
            }
        }
        changed
    }

    /// Evaluates the day equations of every day to compute.
    fn day_pass(&mut self, pass: &Pass, machine: &mut Machine) {
        for di in 0..self.days.len() {
            if !self.days[di].target || self.days[di].rec.malformed.is_some() {
                continue;
            }
            for eq in &pass.set.day {
                let ev = {
                    let (jobs, data) = (&self.jobs, &self.data);
                    let recs = |d: &Day| d.jobs.iter().map(|&j| &jobs[j].rec).collect::<Vec<_>>();
                    let day = &self.days[di];
                    // A job computed here is read from its records, another from its
                    // columns where they were loaded.
                    let rows = day
                        .jobs
                        .iter()
                        .map(|&j| match self.columns.get(&jobs[j].start) {
                            Some(c) if !jobs[j].target => DayRows::Columns(c),
                            _ => DayRows::Records(&data[jobs[j].rows.clone()]),
                        })
                        .collect();
                    let cx = DayCx::new(
                        pass.device,
                        recs(day),
                        di.checked_sub(1).map(|p| recs(&self.days[p])),
                        rows,
                        &day.rec,
                        di.checked_sub(1).map(|p| &self.days[p].rec),
                        day.span,
                    );
                    machine.eval(&eq.program, &cx, seed(&day.rec.row, eq))
                };
                store_result(&mut self.days[di].rec, eq, ev, pass.symbols);
            }
        }
    }
}

/// The outputs of each level.
struct Outputs {
    data: Vec<Output>,
    job: Vec<Output>,
    day: Vec<Output>,
}

/// The row to write back for `rec`, and whether it changes what is stored; the errors of
/// its outputs that failed go to `errors`, `extra` are failures found before evaluation.
/// Takes the record, so its row is moved, not copied.
fn finish(
    rec: Record,
    symbols: &Symbols,
    level: model::Level,
    eqs: &[Arc<Equation>],
    outs: &[Output],
    mut failed: Vec<(String, String)>,
    errors: &mut Vec<ErrorRecord>,
) -> (Row, bool) {
    let key: RowKey = rec.row.key();
    let (mut row, conjoined) = match &rec.malformed {
        Some(e) => {
            failed.push((
                "conjoined".into(),
                format!("the row's conjoined cannot be read: {e}"),
            ));
            (rec.row, None) // kept as it was
        }
        None => {
            for eq in eqs {
                match rec.get(eq.output) {
                    Some(Value::Empty(reason)) => {
                        failed.push((eq.key.name.clone(), reason.to_string()))
                    }
                    None => failed.push((eq.key.name.clone(), "not computed".into())),
                    Some(_) => {}
                }
            }
            let (row, conjoined) = rec.rewrite(symbols, outs);
            (row, Some(conjoined))
        }
    };
    let mut changed = row.version.is_absent();
    if let Some(conjoined) = conjoined {
        changed |= conjoined != row.conjoined;
        row.conjoined = conjoined;
    }
    row.recalc = if failed.is_empty() { 0 } else { -1 };
    errors.extend(failed.into_iter().map(|(equation, reason)| ErrorRecord {
        level,
        key,
        equation,
        reason,
    }));
    (row, changed)
}

/// Recalculates one device. Never fails: what cannot be computed is in
/// [`Outcome::errors`].
pub fn compute(
    mut batch: DeviceBatch,
    catalog: &Catalog,
    constants: &Constants,
    options: &Options,
) -> Outcome {
    let id = batch.id;
    let set: &EquationSet = catalog.set_for(id);
    let symbols = catalog.symbols();
    let columns = Columns::new(symbols);
    let consts = constants.for_device(id);
    let clock = consts.day_clock(options.default_zone);
    let day_break = consts.day_break_text();
    let pass = Pass {
        set,
        symbols,
        device: Device {
            id,
            constants: consts,
            day_break: day_break.as_deref(),
        },
    };
    let outs = Outputs {
        data: outputs(&set.data, symbols),
        job: outputs(&set.job, symbols),
        day: outputs(&set.day, symbols),
    };
    let mut out = Outcome::default();
    let mut timeline = Timeline::build(&mut batch, symbols, &columns, &outs, &mut out);

    // Days, when the device has equations for them or a day was flagged.
    let want_days = !set.day.is_empty() || !batch.target_days.is_empty();
    let mut day_failure = None;
    match &clock {
        Ok(clock) if want_days => timeline.add_days(clock, &batch, symbols, &columns, &outs),
        Ok(_) => {}
        Err(why) => {
            // Flagged days that cannot be computed keep their content and say why, so
            // their flag does not bring them back for ever.
            for r in batch
                .days
                .iter()
                .filter(|r| batch.target_days.contains(&r.datetime))
            {
                let mut row = r.clone();
                row.recalc = -1;
                out.errors.push(ErrorRecord {
                    level: model::Level::Day,
                    key: row.key(),
                    equation: "#WB".into(),
                    reason: format!("the day cannot be computed: {why}"),
                });
                out.days.push(row);
            }
            // Day equations that cannot run: every computed job says why.
            if !set.day.is_empty() {
                day_failure = Some(format!("the job's day cannot be computed: {why}"));
            }
        }
    }

    timeline.clear_outputs(&outs);

    // Data and job levels, to a fixpoint when data equations read what comes later.
    let mut machine = Machine::new();
    let mut settled = true;
    loop {
        out.iterations += 1;
        let later = out.iterations > 1;
        let changed = timeline.data_pass(&pass, &mut machine, later)
            | timeline.job_pass(&pass, &mut machine, later);
        if !set.needs.fixpoint || !changed {
            break;
        }
        if out.iterations >= options.max_iterations {
            settled = false;
            break;
        }
    }
    timeline.day_pass(&pass, &mut machine);

    // The `$d$x` channels of the computed jobs, as they will be written.
    if !set.day_data.is_empty() {
        for job in timeline.jobs.iter().filter(|j| j.target) {
            let records = timeline.data[job.rows.clone()].iter();
            let c = JobColumns::of_records(id, job.start, records, &set.day_data);
            out.day_columns.push(c.as_written());
        }
    }

    // The rows to write back.
    let Timeline {
        data, jobs, days, ..
    } = timeline;
    // Each data row is finished once (the jobs' rows do not overlap): taken, not copied.
    let mut data: Vec<Option<Record>> = data.into_iter().map(Some).collect();
    for job in jobs.iter().filter(|j| j.target) {
        for rec in data[job.rows.clone()].iter_mut().filter_map(Option::take) {
            let (row, changed) = finish(
                rec,
                symbols,
                model::Level::Data,
                &set.data,
                &outs.data,
                Vec::new(),
                &mut out.errors,
            );
            if changed {
                out.changed_jobs.insert(job.start);
            }
            out.data.push(row);
        }
        let mut extra = Vec::new();
        if !settled {
            let why = format!(
                "data and job values were still changing after {} iterations",
                options.max_iterations
            );
            extra.push(("(fixpoint)".to_owned(), why));
        }
        if let Some(why) = &day_failure {
            extra.push(("#WB".to_owned(), why.clone()));
        }
        let (row, changed) = finish(
            job.rec.clone(),
            symbols,
            model::Level::Job,
            &set.job,
            &outs.job,
            extra,
            &mut out.errors,
        );
        if changed {
            out.changed_jobs.insert(job.start);
        }
        out.jobs.push(row);
    }
    for day in days.iter().filter(|d| d.target) {
        let mut rec = day.rec.clone();
        if let Some(last) = day.jobs.last().map(|&j| &jobs[j].rec.row) {
            rec.row.state = last.state;
            rec.row.user.clone_from(&last.user);
            rec.row.gps.clone_from(&last.gps);
        }
        rec.row.data_time = day.span.end;
        let (row, changed) = finish(
            rec,
            symbols,
            model::Level::Day,
            &set.day,
            &outs.day,
            Vec::new(),
            &mut out.errors,
        );
        if changed {
            out.changed_days.insert(day.span.start);
        }
        out.days.push(row);
    }
    out
}
