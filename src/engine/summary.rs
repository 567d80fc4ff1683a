//! Summaries: type 6 and then type 7 equations for one device over the days
//! of a date range. Not stored: the caller prints them.
//!
//! Our definitions: the range of dates `from ..= to` runs from the device's day break on
//! `from` to its day break on the day after `to`, in the device's zone; a device without
//! `#WB` breaks at midnight. Its days are the day rows starting in it, its jobs the job
//! rows starting in it, and `$$x` reads the last day row before it.

use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};
use chrono_tz::Tz;

use super::catalog::{Catalog, Constants, DeviceConstants};
use super::compute::seed;
use super::context::{Device, SummaryCx};
use super::day::{DayBreak, DayClock, DaySpan};
use super::record::{new_row, Columns, Record};
use crate::lang::value::Value;
use crate::lang::Machine;
use crate::model::Row;

/// What one device's summary reads.
#[derive(Debug, Clone, Default)]
pub struct SummaryInput {
    /// The device.
    pub id: i32,
    /// Its day rows in the range.
    pub days: Vec<Row>,
    /// Its job rows in the range.
    pub jobs: Vec<Row>,
    /// Its last day row before the range.
    pub prev_day: Option<Row>,
}

/// One device's summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The device.
    pub id: i32,
    /// The range it covers.
    pub range: DaySpan,
    /// Every summary channel in evaluation order (empty when not computed).
    pub values: Vec<(Arc<str>, Value)>,
}

impl Summary {
    /// The channels that could not be computed, with why.
    pub fn failures(&self) -> impl Iterator<Item = (&str, String)> {
        self.values.iter().filter_map(|(name, v)| match v {
            Value::Empty(reason) => Some((&**name, reason.to_string())),
            _ => None,
        })
    }
}

/// The device's clock for summaries: its day break and zone, or midnight.
fn clock(constants: &DeviceConstants, default_zone: Tz) -> DayClock {
    constants.day_clock(default_zone).unwrap_or_else(|_| {
        let zone = constants
            .zone
            .as_deref()
            .and_then(|z| super::day::parse_zone(z).ok())
            .unwrap_or(default_zone);
        DayClock::new(DayBreak::MIDNIGHT, zone)
    })
}

/// The range `from ..= to` for `device`: `[break on from, break on the day after to)`.
pub fn range_of(
    device: i32,
    constants: &Constants,
    default_zone: Tz,
    from: NaiveDate,
    to: NaiveDate,
) -> DaySpan {
    let clock = clock(constants.for_device(device), default_zone);
    let after = to.succ_opt().unwrap_or(to);
    DaySpan {
        start: clock.break_on(from),
        end: clock.break_on(after),
    }
}

/// Evaluates the device's type 6 and then type 7 equations over its days.
pub fn summarize(
    input: SummaryInput,
    range: DaySpan,
    catalog: &Catalog,
    constants: &Constants,
    default_zone: Tz,
) -> Summary {
    let id = input.id;
    let set = catalog.set_for(id);
    let symbols = catalog.symbols();
    let columns = Columns::new(symbols);
    let consts = constants.for_device(id);
    let clock = clock(consts, default_zone);
    let day_break = consts.day_break_text();
    let device = Device {
        id,
        constants: consts,
        day_break: day_break.as_deref(),
    };
    let load = |mut rows: Vec<Row>| -> Vec<Record> {
        rows.sort_by_key(Row::key);
        rows.into_iter()
            .filter(|r| r.datetime >= range.start && r.datetime < range.end)
            .map(|r| Record::load(r, symbols, &columns, &[]))
            .collect()
    };
    let days = load(input.days);
    let jobs = load(input.jobs);
    let prev_day = input
        .prev_day
        .map(|r| Record::load(r, symbols, &columns, &[]));
    let mut summary = Record::load(new_row(id, range.start, range.end), symbols, &columns, &[]);
    let mut machine = Machine::new();
    let first_day_end: NaiveDateTime = clock.day_of(range.start).end;
    let mut values: Vec<(Arc<str>, Value)> = Vec::new();
    for eq in &set.summary {
        let ev = {
            let cx = SummaryCx {
                device,
                days: &days,
                prev_day: prev_day.as_ref(),
                jobs: &jobs,
                summary: &summary,
                range,
                first_day_end,
            };
            machine.eval(&eq.program, &cx, seed(&summary.row, eq))
        };
        summary.set(eq.output, ev.value.clone());
        put(&mut values, Arc::from(eq.key.name.as_str()), ev.value);
        for (name, v) in ev.outputs {
            if let Some(slot) = symbols.find_channel(&name) {
                summary.set(slot, v.clone());
            }
            put(&mut values, name, v);
        }
    }
    Summary { id, range, values }
}

fn put(values: &mut Vec<(Arc<str>, Value)>, name: Arc<str>, v: Value) {
    match values
        .iter_mut()
        .find(|(n, _)| crate::conjoined::same_name(n, &name))
    {
        Some(entry) => *entry = (name, v),
        None => values.push((name, v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Constant, Equation, RowVersion};

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn row(at: &str, end: &str, conjoined: &str) -> Row {
        Row {
            datetime: t(at),
            data_time: t(end),
            id: 3,
            state: None,
            user: None,
            gps: None,
            recalc: 0,
            conjoined: conjoined.into(),
            version: RowVersion::ABSENT,
            unreadable: None,
        }
    }

    #[test]
    fn types_6_then_7_over_the_days_jobs_and_the_day_before() {
        let eq = |kind, name: &str, src: &str| Equation {
            kind,
            id: 0,
            name: name.into(),
            eq: src.into(),
        };
        let catalog = Catalog::build(&[
            eq(6, "total", "SSUM $davg"),
            eq(6, "days", "#RECS"),
            eq(6, "before", "$$davg"),
            eq(6, "jobs", "SCNT $j$n"),
            eq(6, "worked", "#JT"),
            eq(7, "mean", "/ $TOTAL $DAYS"),
        ]);
        assert!(catalog.problems().is_empty(), "{:?}", catalog.problems());
        let constants = Constants::build(
            &[Constant {
                id: 0,
                name: "WB".into(),
                value: "06:00".into(),
            }],
            catalog.symbols(),
        );
        let (from, to) = (
            NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
            NaiveDate::from_ymd_opt(2024, 3, 2).unwrap(),
        );
        let range = range_of(3, &constants, Tz::UTC, from, to);
        assert_eq!(range.start, t("2024-03-01 06:00:00"));
        assert_eq!(range.end, t("2024-03-03 06:00:00"));
        let input = SummaryInput {
            id: 3,
            days: vec![
                row("2024-03-01 06:00:00", "2024-03-02 06:00:00", "DAVG=10;"),
                row("2024-03-02 06:00:00", "2024-03-03 06:00:00", "DAVG=20;"),
                // Outside the range: ignored even if handed over.
                row("2024-03-03 06:00:00", "2024-03-04 06:00:00", "DAVG=99;"),
            ],
            jobs: vec![
                row("2024-03-01 07:00:00", "2024-03-01 08:00:00", "N=3;"),
                row("2024-03-02 07:00:00", "2024-03-02 07:30:00", "N=1;"),
            ],
            prev_day: Some(row("2024-02-28 06:00:00", "2024-02-29 06:00:00", "DAVG=7;")),
        };
        let s = summarize(input, range, &catalog, &constants, Tz::UTC);
        let text: Vec<String> = s.values.iter().map(|(n, v)| format!("{n}={v}")).collect();
        assert_eq!(
            text,
            [
                "before=7",
                "days=2",
                "jobs=2",
                "total=30",
                "worked=5400",
                "mean=15"
            ]
        );
        assert_eq!(s.failures().count(), 0);
    }
}
