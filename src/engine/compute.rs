//! One device's recalculation, in memory: jobs and days built from the loaded rows, the
//! data and job levels iterated to a fixpoint, then the days (SPEC §3).
//!
//! The input is a piece of the device's timeline: the rows to compute plus the
//! neighbours their equations read (the previous data row, job or day, the other jobs of
//! a day), which the caller loads according to [`super::Needs`]. Rows are taken to be
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
//!   `recalc = -1` and an error naming the problem.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;

use chrono::NaiveDateTime;
use chrono_tz::Tz;

use super::catalog::{Catalog, Constants, EquationSet};
use super::context::{DataCx, DayCx, Device, JobCx};
use super::day::{DayBreak, DaySpan};
use super::record::{Columns, Record};
use crate::lang::context::{Slot, Symbols};
use crate::lang::value::Value;
use crate::lang::{seed_for, Equation, Machine};
use crate::store::{self, ErrorRecord, Row, RowKey, RowVersion};

/// How the engine runs (`[engine]` in the configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The most data ↔ job iterations before giving up on a fixpoint (SPEC §3.3).
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
}

struct Job {
    start: NaiveDateTime,
    /// The job's data rows in `Engine::data`.
    rows: Range<usize>,
    rec: Record,
    target: bool,
    day: Option<usize>,
}

struct Day {
    span: DaySpan,
    /// Indices into the jobs, in time order.
    jobs: Vec<usize>,
    rec: Record,
    target: bool,
}

/// The outputs of a level, `(name, slot)` in evaluation order, each slot once.
fn outputs(eqs: &[Arc<Equation>], symbols: &Symbols) -> Vec<(Arc<str>, Slot)> {
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
    out
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

/// Evaluates one equation and stores its result and `@name` outputs in `rec`.
fn store_result(
    rec: &mut Record,
    eq: &Equation,
    ev: crate::lang::Evaluated,
    symbols: &Symbols,
) -> bool {
    let mut changed = assign(rec, eq.output, ev.value);
    for (name, v) in ev.outputs {
        if let Some(slot) = symbols.find_channel(&name) {
            changed |= assign(rec, slot, v);
        }
    }
    changed
}

/// A job row for `start` from its data rows: start, end and the last row's facts.
fn job_row(id: i32, start: NaiveDateTime, stored: Option<Row>, rows: &[Record]) -> Row {
    let mut row = stored.unwrap_or_else(|| Row {
        datetime: start,
        data_time: start,
        id,
        state: None,
        user: None,
        gps: None,
        recalc: 0,
        conjoined: String::new(),
        version: RowVersion::ABSENT,
    });
    if let Some(last) = rows.iter().max_by_key(|r| r.row.datetime) {
        row.data_time = last.row.datetime;
        row.state = last.row.state;
        row.user.clone_from(&last.row.user);
        row.gps.clone_from(&last.row.gps);
    }
    row
}

/// Recalculates one device. Never fails: what cannot be computed is in
/// [`Outcome::errors`].
pub fn compute(
    batch: DeviceBatch,
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
    let day_break = clock.as_ref().ok().map(|_| {
        consts
            .day_break
            .as_deref()
            .and_then(|b| b.parse::<DayBreak>().ok())
            .map(|b| b.to_string())
            .unwrap_or_default()
    });
    let device = Device {
        id,
        constants: consts,
        day_break: day_break.as_deref(),
    };
    let mut out = Outcome::default();

    // Data rows in time order, grouped into jobs by their start (`data_time`).
    let mut raw = batch.data;
    raw.sort_by_key(|r| (r.data_time, r.datetime));
    raw.dedup_by_key(|r| r.key());
    let mut data: Vec<Record> = raw
        .into_iter()
        .map(|r| Record::load(r, symbols, &columns))
        .collect();
    let mut groups: BTreeMap<NaiveDateTime, Range<usize>> = BTreeMap::new();
    for (i, r) in data.iter().enumerate() {
        groups
            .entry(r.row.data_time)
            .and_modify(|g| g.end = i + 1)
            .or_insert(i..i + 1);
    }

    // Jobs: those with data rows and those only stored.
    let mut stored_jobs: BTreeMap<NaiveDateTime, Row> =
        batch.jobs.into_iter().map(|r| (r.datetime, r)).collect();
    let starts: BTreeSet<NaiveDateTime> =
        groups.keys().chain(stored_jobs.keys()).copied().collect();
    let mut jobs: Vec<Job> = Vec::with_capacity(starts.len());
    for start in starts {
        let rows = groups.get(&start).cloned().unwrap_or(0..0);
        let flagged = batch.target_jobs.contains(&start);
        let stored = stored_jobs.remove(&start);
        if flagged && rows.is_empty() {
            if let Some(mut row) = stored.clone() {
                out.errors.push(ErrorRecord {
                    level: store::Level::Job,
                    key: row.key(),
                    equation: "(job)".into(),
                    reason: "the job has no data rows".into(),
                });
                row.recalc = -1;
                out.jobs.push(row);
            }
        }
        let row = job_row(id, start, stored, &data[rows.clone()]);
        jobs.push(Job {
            start,
            rec: Record::load(row, symbols, &columns),
            target: flagged && !rows.is_empty(),
            rows,
            day: None,
        });
    }

    // Days, when the device has equations for them or a day was flagged.
    let mut days: Vec<Day> = Vec::new();
    let stored_days = batch.days;
    let want_days = !set.day.is_empty() || !batch.target_days.is_empty();
    if let (Ok(clock), true) = (&clock, want_days) {
        {
            let mut spans: BTreeMap<NaiveDateTime, (DaySpan, Option<Row>)> = BTreeMap::new();
            for r in stored_days.iter().cloned() {
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
                spans.insert(span.start, (span, Some(r)));
            }
            for j in &jobs {
                let span = clock.day_of(j.start);
                spans.entry(span.start).or_insert((span, None));
            }
            let index: BTreeMap<NaiveDateTime, usize> =
                spans.keys().enumerate().map(|(i, k)| (*k, i)).collect();
            days = spans
                .into_values()
                .map(|(span, stored)| {
                    let row = stored.unwrap_or_else(|| Row {
                        datetime: span.start,
                        data_time: span.end,
                        id,
                        state: None,
                        user: None,
                        gps: None,
                        recalc: 0,
                        conjoined: String::new(),
                        version: RowVersion::ABSENT,
                    });
                    Day {
                        target: batch.target_days.contains(&span.start),
                        span,
                        jobs: Vec::new(),
                        rec: Record::load(row, symbols, &columns),
                    }
                })
                .collect();
            for (ji, j) in jobs.iter_mut().enumerate() {
                let d = index[&clock.day_of(j.start).start];
                j.day = Some(d);
                days[d].jobs.push(ji);
                days[d].target |= j.target;
            }
        }
    }
    // Flagged days that cannot be computed keep their content and say why, so their
    // flag does not bring them back for ever.
    if let Err(why) = &clock {
        for r in stored_days
            .iter()
            .filter(|r| batch.target_days.contains(&r.datetime))
        {
            let mut row = r.clone();
            row.recalc = -1;
            out.errors.push(ErrorRecord {
                level: store::Level::Day,
                key: row.key(),
                equation: "#WB".into(),
                reason: format!("the day cannot be computed: {why}"),
            });
            out.days.push(row);
        }
    }
    // Day equations that cannot run: every computed job says why.
    let day_failure = match &clock {
        Err(why) if !set.day.is_empty() => Some(format!("the job's day cannot be computed: {why}")),
        _ => None,
    };

    let data_out = outputs(&set.data, symbols);
    let job_out = outputs(&set.job, symbols);
    let day_out = outputs(&set.day, symbols);
    for j in jobs.iter_mut().filter(|j| j.target) {
        for r in &mut data[j.rows.clone()] {
            data_out.iter().for_each(|(_, s)| r.clear(*s));
        }
        job_out.iter().for_each(|(_, s)| j.rec.clear(*s));
    }
    for d in days.iter_mut().filter(|d| d.target) {
        day_out.iter().for_each(|(_, s)| d.rec.clear(*s));
    }

    // Data and job levels, to a fixpoint when data equations read what comes later.
    let mut machine = Machine::new();
    let mut settled = true;
    loop {
        out.iterations += 1;
        let mut changed = false;
        for ji in 0..jobs.len() {
            if !jobs[ji].target {
                continue;
            }
            let job = &jobs[ji];
            let span = (job.start, job.rec.row.data_time);
            let day = job.day.map(|d| days[d].span);
            for i in job.rows.clone() {
                if data[i].malformed.is_some() {
                    continue;
                }
                for (k, eq) in set.data.iter().enumerate() {
                    if out.iterations > 1 && !set.rerun_data(k) {
                        continue; // its inputs have not changed since the first iteration
                    }
                    let ev = {
                        let cx = DataCx {
                            device,
                            row: &data[i],
                            prev: i.checked_sub(1).map(|p| &data[p]),
                            job: &jobs[ji].rec,
                            prev_job: ji.checked_sub(1).map(|p| &jobs[p].rec),
                            ordinal: i - job.rows.start + 1,
                            prev_in_job: (i > job.rows.start).then(|| data[i - 1].row.datetime),
                            job_span: span,
                            day,
                        };
                        machine.eval(&eq.program, &cx, seed(&data[i].row, eq))
                    };
                    changed |= store_result(&mut data[i], eq, ev, symbols);
                }
            }
        }
        for ji in 0..jobs.len() {
            if !jobs[ji].target || jobs[ji].rec.malformed.is_some() {
                continue;
            }
            let day = jobs[ji].day.map(|d| days[d].span);
            for (k, eq) in set.job.iter().enumerate() {
                if out.iterations > 1 && !set.rerun_job(k) {
                    continue;
                }
                let ev = {
                    let prev = ji.checked_sub(1).map(|p| &jobs[p]);
                    let cx = JobCx::new(
                        device,
                        &data[jobs[ji].rows.clone()],
                        prev.filter(|p| !p.rows.is_empty())
                            .map(|p| &data[p.rows.clone()]),
                        &jobs[ji].rec,
                        prev.map(|p| &p.rec),
                        day,
                    );
                    machine.eval(&eq.program, &cx, seed(&jobs[ji].rec.row, eq))
                };
                changed |= store_result(&mut jobs[ji].rec, eq, ev, symbols);
            }
        }
        if !set.needs.fixpoint || !changed {
            break;
        }
        if out.iterations >= options.max_iterations {
            settled = false;
            break;
        }
    }

    for di in 0..days.len() {
        if !days[di].target || days[di].rec.malformed.is_some() {
            continue;
        }
        for eq in &set.day {
            let ev = {
                let day = &days[di];
                let recs = |d: &Day| d.jobs.iter().map(|&j| &jobs[j].rec).collect::<Vec<_>>();
                let prev = di.checked_sub(1).map(|p| recs(&days[p]));
                let rows = day
                    .jobs
                    .iter()
                    .flat_map(|&j| data[jobs[j].rows.clone()].iter())
                    .collect();
                let cx = DayCx::new(
                    device,
                    recs(day),
                    prev,
                    rows,
                    &day.rec,
                    di.checked_sub(1).map(|p| &days[p].rec),
                    day.span,
                );
                machine.eval(&eq.program, &cx, seed(&day.rec.row, eq))
            };
            store_result(&mut days[di].rec, eq, ev, symbols);
        }
    }

    // The rows to write back.
    let finish = |rec: &Record,
                  level: store::Level,
                  eqs: &[Arc<Equation>],
                  outs: &[(Arc<str>, Slot)],
                  extra: Vec<(String, String)>,
                  errors: &mut Vec<ErrorRecord>|
     -> Row {
        let mut row = rec.row.clone();
        let key: RowKey = row.key();
        let mut failed = extra;
        if let Some(e) = &rec.malformed {
            failed.push((
                "conjoined".into(),
                format!("the row's conjoined cannot be read: {e}"),
            ));
        } else {
            row.conjoined = rec.rewrite(outs, symbols);
            for eq in eqs {
                match rec.get(eq.output) {
                    Some(Value::Empty(reason)) => {
                        failed.push((eq.key.name.clone(), reason.to_string()))
                    }
                    None => failed.push((eq.key.name.clone(), "not computed".into())),
                    Some(_) => {}
                }
            }
        }
        row.recalc = if failed.is_empty() { 0 } else { -1 };
        errors.extend(failed.into_iter().map(|(equation, reason)| ErrorRecord {
            level,
            key,
            equation,
            reason,
        }));
        row
    };
    let unsettled = format!(
        "data and job values were still changing after {} iterations",
        options.max_iterations
    );
    for job in jobs.iter().filter(|j| j.target) {
        for rec in &data[job.rows.clone()] {
            let row = finish(
                rec,
                store::Level::Data,
                &set.data,
                &data_out,
                Vec::new(),
                &mut out.errors,
            );
            out.data.push(row);
        }
        let mut extra = Vec::new();
        if !settled {
            extra.push(("(fixpoint)".to_owned(), unsettled.clone()));
        }
        if let Some(why) = &day_failure {
            extra.push(("#WB".to_owned(), why.clone()));
        }
        let row = finish(
            &job.rec,
            store::Level::Job,
            &set.job,
            &job_out,
            extra,
            &mut out.errors,
        );
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
        let row = finish(
            &rec,
            store::Level::Day,
            &set.day,
            &day_out,
            Vec::new(),
            &mut out.errors,
        );
        out.days.push(row);
    }
    out
}
