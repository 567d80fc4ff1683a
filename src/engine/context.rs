//! The engine's answers to the language's [`Context`]: what each variable form and
//! pseudo-constant reads at the data, job and day levels (the
//! tables of `docs/language.md`).

use std::cell::RefCell;
use std::sync::Arc;

use chrono::NaiveDateTime;

use super::catalog::DeviceConstants;
use super::columns::{day_vector, vector_of, DayRows, Item};
use super::day::DaySpan;
use super::record::{time_value, Record};
use crate::lang::context::{ConstSlot, Context, Pseudo, Slot, VarForm};
use crate::lang::value::Value;

/// Seconds from `a` to `b`, fractions included.
pub fn seconds(a: NaiveDateTime, b: NaiveDateTime) -> f64 {
    (b - a).as_seconds_f64()
}

/// What every level shares: the device, its constants, its day break.
#[derive(Debug, Clone, Copy)]
pub struct Device<'a> {
    /// The device id (`#GID`).
    pub id: i32,
    /// Its constants.
    pub constants: &'a DeviceConstants,
    /// Its day break as `HH:MM:SS` (`#WB`), when it has one.
    pub day_break: Option<&'a str>,
}

impl Device<'_> {
    fn pseudo(&self, p: Pseudo) -> Option<Value> {
        match p {
            Pseudo::Gid => Some(Value::Num(f64::from(self.id))),
            Pseudo::Wb => self.day_break.map(Value::str),
            _ => None,
        }
    }
}

/// The vector of channel `slot` over `rows`, in their order ([`vector_of`]). Rows whose
/// `conjoined` cannot be read are left out, as if they did not exist: their failure
/// stays theirs.
fn vector<'r>(rows: impl Iterator<Item = &'r Record> + Clone, slot: Slot) -> Option<Value> {
    vector_of(
        rows.filter(|r| r.malformed.is_none())
            .map(move |r| Item::of(r.get(slot))),
    )
}

/// Vectors already built during one evaluation context's life, by form and slot.
#[derive(Debug, Default)]
struct VectorCache(RefCell<Vec<(VarForm, Slot, Option<Value>)>>);

impl VectorCache {
    fn get_or(
        &self,
        form: VarForm,
        slot: Slot,
        build: impl FnOnce() -> Option<Value>,
    ) -> Option<Value> {
        if let Some((_, _, v)) = self
            .0
            .borrow()
            .iter()
            .find(|(f, s, _)| *f == form && *s == slot)
        {
            return v.clone();
        }
        let v = build();
        self.0.borrow_mut().push((form, slot, v.clone()));
        v
    }
}

/// A data row's context (types 1 and 2).
#[derive(Debug)]
pub struct DataCx<'a> {
    /// Device facts.
    pub device: Device<'a>,
    /// The current row.
    pub row: &'a Record,
    /// The device's previous data row (`$$x`), if any.
    pub prev: Option<&'a Record>,
    /// The current row's job (`$X`).
    pub job: &'a Record,
    /// The previous job (`$$X`).
    pub prev_job: Option<&'a Record>,
    /// 1-based position of the row in its job (`#REC`).
    pub ordinal: usize,
    /// When the previous row of the same job was measured (`#MT`); `None` for the first.
    pub prev_in_job: Option<NaiveDateTime>,
    /// The job's start and end (`#JB`, `#JE`).
    pub job_span: (NaiveDateTime, NaiveDateTime),
    /// The day the job belongs to (`#WE`), if the device has a day break.
    pub day: Option<DaySpan>,
}

impl Context for DataCx<'_> {
    fn var(&self, form: VarForm, slot: Slot) -> Option<Value> {
        match form {
            VarForm::Cur => self.row.get(slot).cloned(),
            VarForm::Prev => self.prev?.get(slot).cloned(),
            VarForm::Up => self.job.get(slot).cloned(),
            VarForm::PrevUp => self.prev_job?.get(slot).cloned(),
            VarForm::DayData | VarForm::RangeJobs => None,
        }
    }

    fn constant(&self, slot: ConstSlot) -> Option<Value> {
        self.device.constants.get(slot).cloned()
    }

    fn pseudo(&self, p: Pseudo) -> Option<Value> {
        let t = self.row.row.datetime;
        let (start, end) = self.job_span;
        match p {
            Pseudo::Mt => Some(Value::Num(seconds(self.prev_in_job.unwrap_or(start), t))),
            Pseudo::Jt => Some(Value::Num(seconds(start, t))),
            Pseudo::Rec => Some(Value::Num(self.ordinal as f64)),
            Pseudo::Jb => Some(time_value(start)),
            Pseudo::Je => Some(time_value(end)),
            Pseudo::We => self.day.map(|d| time_value(d.end)),
            _ => self.device.pseudo(p),
        }
    }
}

/// A job's context (type 4).
#[derive(Debug)]
pub struct JobCx<'a> {
    /// Device facts.
    pub device: Device<'a>,
    /// The job's data rows, in time order (`$x`).
    pub rows: &'a [Record],
    /// The previous job's data rows (`$$x`), when loaded.
    pub prev_rows: Option<&'a [Record]>,
    /// The job (`$X`).
    pub job: &'a Record,
    /// The previous job (`$$X`).
    pub prev_job: Option<&'a Record>,
    /// The job's day (`#WE`).
    pub day: Option<DaySpan>,
    /// Vectors built so far.
    cache: VectorCache,
}

impl<'a> JobCx<'a> {
    /// A context for one evaluation pass over one job.
    pub fn new(
        device: Device<'a>,
        rows: &'a [Record],
        prev_rows: Option<&'a [Record]>,
        job: &'a Record,
        prev_job: Option<&'a Record>,
        day: Option<DaySpan>,
    ) -> JobCx<'a> {
        JobCx {
            device,
            rows,
            prev_rows,
            job,
            prev_job,
            day,
            cache: VectorCache::default(),
        }
    }
}

impl Context for JobCx<'_> {
    fn var(&self, form: VarForm, slot: Slot) -> Option<Value> {
        match form {
            VarForm::Cur => self
                .cache
                .get_or(form, slot, || vector(self.rows.iter(), slot)),
            VarForm::Prev => {
                let rows = self.prev_rows?;
                self.cache.get_or(form, slot, || vector(rows.iter(), slot))
            }
            VarForm::Up => self.job.get(slot).cloned(),
            VarForm::PrevUp => self.prev_job?.get(slot).cloned(),
            VarForm::DayData | VarForm::RangeJobs => None,
        }
    }

    fn constant(&self, slot: ConstSlot) -> Option<Value> {
        self.device.constants.get(slot).cloned()
    }

    fn pseudo(&self, p: Pseudo) -> Option<Value> {
        let (start, end) = (self.job.row.datetime, self.job.row.data_time);
        match p {
            Pseudo::Mt => Some(Value::Num(seconds(start, end))),
            Pseudo::Vmt => {
                let mut prev = start;
                let mts: Arc<[f64]> = self
                    .rows
                    .iter()
                    .map(|r| {
                        let mt = seconds(prev, r.row.datetime);
                        prev = r.row.datetime;
                        mt
                    })
                    .collect();
                Some(Value::Nums(mts))
            }
            Pseudo::Recs => Some(Value::Num(self.rows.len() as f64)),
            Pseudo::Jb => Some(time_value(start)),
            Pseudo::Je => Some(time_value(end)),
            Pseudo::We => self.day.map(|d| time_value(d.end)),
            _ => self.device.pseudo(p),
        }
    }
}

/// A day's context (type 5).
#[derive(Debug)]
pub struct DayCx<'a> {
    /// Device facts.
    pub device: Device<'a>,
    /// The day's jobs in time order (`$x`).
    pub jobs: Vec<&'a Record>,
    /// The previous day's jobs (`$$x`).
    pub prev_jobs: Option<Vec<&'a Record>>,
    /// All data rows of the day's jobs in time order (`$d$x`): the records of the jobs
    /// computed, the columns of the others.
    pub data: Vec<DayRows<'a>>,
    /// The day (`$X`).
    pub day: &'a Record,
    /// The previous day (`$$X`).
    pub prev_day: Option<&'a Record>,
    /// The day's span.
    pub span: DaySpan,
    /// Vectors built so far.
    cache: VectorCache,
}

impl<'a> DayCx<'a> {
    /// A context for one evaluation pass over one day.
    pub fn new(
        device: Device<'a>,
        jobs: Vec<&'a Record>,
        prev_jobs: Option<Vec<&'a Record>>,
        data: Vec<DayRows<'a>>,
        day: &'a Record,
        prev_day: Option<&'a Record>,
        span: DaySpan,
    ) -> DayCx<'a> {
        DayCx {
            device,
            jobs,
            prev_jobs,
            data,
            day,
            prev_day,
            span,
            cache: VectorCache::default(),
        }
    }
}

impl Context for DayCx<'_> {
    fn var(&self, form: VarForm, slot: Slot) -> Option<Value> {
        match form {
            VarForm::Cur => self
                .cache
                .get_or(form, slot, || vector(self.jobs.iter().copied(), slot)),
            VarForm::Prev => {
                let jobs = self.prev_jobs.as_ref()?;
                self.cache
                    .get_or(form, slot, || vector(jobs.iter().copied(), slot))
            }
            VarForm::DayData => self
                .cache
                .get_or(form, slot, || day_vector(&self.data, slot)),
            VarForm::Up => self.day.get(slot).cloned(),
            VarForm::PrevUp => self.prev_day?.get(slot).cloned(),
            VarForm::RangeJobs => None,
        }
    }

    fn constant(&self, slot: ConstSlot) -> Option<Value> {
        self.device.constants.get(slot).cloned()
    }

    fn pseudo(&self, p: Pseudo) -> Option<Value> {
        match p {
            Pseudo::Mt => Some(Value::Num(seconds(self.span.start, self.span.end))),
            Pseudo::Vmt => Some(Value::Nums(
                self.jobs
                    .iter()
                    .map(|j| seconds(j.row.datetime, j.row.data_time))
                    .collect(),
            )),
            Pseudo::Recs => Some(Value::Num(self.jobs.len() as f64)),
            Pseudo::Jb => Some(time_value(self.span.start)),
            Pseudo::Je | Pseudo::We => Some(time_value(self.span.end)),
            _ => self.device.pseudo(p),
        }
    }
}

/// A summary's context (types 6 and 7): one device over a range of days.
#[derive(Debug)]
pub struct SummaryCx<'a> {
    /// Device facts.
    pub device: Device<'a>,
    /// The days in the range, in time order (`$x`).
    pub days: &'a [Record],
    /// The last day before the range (`$$x`).
    pub prev_day: Option<&'a Record>,
    /// The jobs in the range, in time order (`$j$x`).
    pub jobs: &'a [Record],
    /// The summary computed so far (`$X`: type 7 reads type 6).
    pub summary: &'a Record,
    /// The range `[start, end)`: from the first day's break to the break after the last.
    pub range: DaySpan,
    /// The end of the range's first day (`#WE`).
    pub first_day_end: NaiveDateTime,
}

impl Context for SummaryCx<'_> {
    fn var(&self, form: VarForm, slot: Slot) -> Option<Value> {
        match form {
            VarForm::Cur => vector(self.days.iter(), slot),
            VarForm::Prev => self.prev_day?.get(slot).cloned(),
            VarForm::Up => self.summary.get(slot).cloned(),
            VarForm::RangeJobs => vector(self.jobs.iter(), slot),
            VarForm::PrevUp | VarForm::DayData => None,
        }
    }

    fn constant(&self, slot: ConstSlot) -> Option<Value> {
        self.device.constants.get(slot).cloned()
    }

    fn pseudo(&self, p: Pseudo) -> Option<Value> {
        let duration = |r: &Record| seconds(r.row.datetime, r.row.data_time);
        match p {
            Pseudo::Mt => Some(Value::Num(seconds(self.range.start, self.range.end))),
            Pseudo::Vmt => Some(Value::Nums(self.days.iter().map(duration).collect())),
            Pseudo::Jt => Some(Value::Num(self.jobs.iter().map(duration).sum())),
            Pseudo::Recs => Some(Value::Num(self.days.len() as f64)),
            Pseudo::Jb => Some(time_value(self.range.start)),
            Pseudo::Je => Some(time_value(self.range.end)),
            Pseudo::We => Some(time_value(self.first_day_end)),
            _ => self.device.pseudo(p),
        }
    }
}
