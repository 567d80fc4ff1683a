//! The channels a day's `$d$x` reads of the jobs it does not compute, without their rows.
//!
//! A day's `$d$x` reads every data row of the day. The rows of the jobs computed in the
//! batch are in memory anyway; those of the day's other jobs are needed only for the few
//! channels the day equations read as `$d$x`, so they are held as [`JobColumns`] — one
//! column of values per such channel (8 bytes a number) — and not as whole rows. A day of
//! thousands of rows then costs a few kilobytes per channel, and memory follows the batch
//! size whatever the length of the days.
//!
//! Columns read exactly as the rows would: a row whose `conjoined` cannot be read is left
//! out (as [`super::context`]'s vectors leave it out), a row without the channel gives an
//! empty item.

use std::sync::Arc;

use chrono::NaiveDateTime;

use super::record::{Columns, Record};
use crate::lang::context::{Slot, Symbols};
use crate::lang::value::Value;
use crate::model::Row;

/// One channel over a job's readable data rows, in time order.
#[derive(Debug, Clone, PartialEq)]
enum Column {
    /// Every row has a number.
    Nums(Vec<f64>),
    /// Anything else; `None` where a row has no value.
    Values(Vec<Option<Value>>),
}

impl Column {
    fn from_values(values: Vec<Option<Value>>) -> Column {
        if values.iter().all(|v| matches!(v, Some(Value::Num(_)))) {
            let nums = values
                .iter()
                .filter_map(|v| match v {
                    Some(Value::Num(n)) => Some(*n),
                    _ => None,
                })
                .collect();
            Column::Nums(nums)
        } else {
            Column::Values(values)
        }
    }

    fn len(&self) -> usize {
        match self {
            Column::Nums(n) => n.len(),
            Column::Values(v) => v.len(),
        }
    }
}

/// The values of the channels a device's day equations read as `$d$x`, over the
/// readable data rows of one job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobColumns {
    /// The device.
    pub id: i32,
    /// The job's start (its rows' `data_time`).
    pub start: NaiveDateTime,
    /// Readable rows.
    rows: usize,
    /// One column per slot read.
    columns: Vec<(Slot, Column)>,
}

impl JobColumns {
    /// The `slots` of a job's records (its rows in time order).
    pub fn of_records<'r>(
        id: i32,
        start: NaiveDateTime,
        records: impl Iterator<Item = &'r Record> + Clone,
        slots: &[Slot],
    ) -> JobColumns {
        let readable = records.filter(|r| r.malformed.is_none());
        let columns = slots
            .iter()
            .map(|&slot| {
                let values = readable.clone().map(|r| r.get(slot).cloned()).collect();
                (slot, Column::from_values(values))
            })
            .collect();
        JobColumns {
            id,
            start,
            rows: readable.count(),
            columns,
        }
    }

    /// The `slots` of one job's stored rows (any order), read as a batch reads them.
    pub fn of_rows(
        id: i32,
        start: NaiveDateTime,
        mut rows: Vec<Row>,
        symbols: &Symbols,
        columns: &Columns,
        slots: &[Slot],
    ) -> JobColumns {
        rows.sort_by_key(|r| r.datetime);
        rows.dedup_by_key(|r| r.datetime);
        let records: Vec<Record> = rows
            .into_iter()
            .map(|r| Record::read(r, symbols, columns))
            .collect();
        JobColumns::of_records(id, start, records.iter(), slots)
    }

    /// What a later read of the rows as written would give: results that could not be
    /// computed are left out of `conjoined`, so they read as no value.
    pub fn as_written(mut self) -> JobColumns {
        for (_, c) in &mut self.columns {
            if let Column::Values(values) = c {
                for v in values.iter_mut() {
                    if matches!(v, Some(Value::Empty(_))) {
                        *v = None;
                    }
                }
            }
        }
        self
    }

    /// The number of values held (for bounding a cache of them).
    pub fn size(&self) -> usize {
        self.columns
            .iter()
            .map(|(_, c)| c.len())
            .sum::<usize>()
            .max(1)
    }

    /// The items of channel `slot`, one per readable row.
    fn items(&self, slot: Slot) -> impl Iterator<Item = Item<'_>> + Clone {
        let column = self
            .columns
            .iter()
            .find(|(s, _)| *s == slot)
            .map(|(_, c)| c);
        let (nums, values, missing) = match column {
            Some(Column::Nums(n)) => (&n[..], &[][..], 0),
            Some(Column::Values(v)) => (&[][..], &v[..], 0),
            None => (&[][..], &[][..], self.rows),
        };
        nums.iter()
            .map(|n| Item::Num(*n))
            .chain(values.iter().map(|v| Item::of(v.as_ref())))
            .chain(std::iter::repeat_n(Item::None, missing))
    }
}

/// One row's value of a channel, as a vector over rows reads it.
#[derive(Debug, Clone, Copy)]
pub enum Item<'v> {
    /// A number.
    Num(f64),
    /// Another value.
    Other(&'v Value),
    /// No value.
    None,
}

impl<'v> Item<'v> {
    /// The item of a value as a row holds it.
    pub fn of(v: Option<&'v Value>) -> Item<'v> {
        match v {
            Some(Value::Num(n)) => Item::Num(*n),
            Some(v) => Item::Other(v),
            None => Item::None,
        }
    }
}

/// The vector of `items`, in order: numeric when every item is a number, otherwise a
/// general vector with an empty item where there is no value. No items give an empty
/// vector; items of which none has a value give `None`.
pub fn vector_of<'v>(items: impl Iterator<Item = Item<'v>> + Clone) -> Option<Value> {
    if items.clone().next().is_none() {
        return Some(Value::Nums(Arc::from([])));
    }
    let mut any = false;
    let mut all_numbers = true;
    for item in items.clone() {
        match item {
            Item::Num(_) => any = true,
            Item::Other(_) => {
                any = true;
                all_numbers = false;
            }
            Item::None => all_numbers = false,
        }
    }
    if !any {
        return None;
    }
    if all_numbers {
        let nums: Arc<[f64]> = items
            .filter_map(|i| match i {
                Item::Num(n) => Some(n),
                _ => None,
            })
            .collect();
        return Some(Value::Nums(nums));
    }
    let list: Arc<[Value]> = items
        .map(|i| match i {
            Item::Num(n) => Value::Num(n),
            Item::Other(v @ (Value::Str(_) | Value::Empty(_))) => v.clone(),
            // A vector inside a vector is kept as its text, so items stay scalars.
            Item::Other(v) => Value::str(v.to_string()),
            Item::None => Value::Empty(crate::lang::Reason::Missing(Arc::from("an item"))),
        })
        .collect();
    Some(Value::List(list))
}

/// A piece of a day's data rows: a job's records, or a job's columns.
#[derive(Debug, Clone, Copy)]
pub enum DayRows<'a> {
    /// Records in time order (rows that cannot be read are left out when read).
    Records(&'a [Record]),
    /// A job's columns.
    Columns(&'a JobColumns),
}

/// The vector of channel `slot` over the pieces of a day, in order.
pub fn day_vector(pieces: &[DayRows<'_>], slot: Slot) -> Option<Value> {
    let items = pieces.iter().flat_map(move |p| {
        let (records, columns) = match p {
            DayRows::Records(r) => (&r[..], None),
            DayRows::Columns(c) => (&[][..], Some(*c)),
        };
        records
            .iter()
            .filter(|r| r.malformed.is_none())
            .map(move |r| Item::of(r.get(slot)))
            .chain(columns.into_iter().flat_map(move |c| c.items(slot)))
    });
    vector_of(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::record::new_row;

    fn t(minute: u32) -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2024, 4, 1)
            .and_then(|d| d.and_hms_opt(8, minute, 0))
            .expect("a valid time")
    }

    fn row(minute: u32, conjoined: &str) -> Row {
        let mut r = new_row(1, t(minute), t(0));
        r.conjoined = conjoined.into();
        r
    }

    /// Every mix of numbers, texts, missing values and unreadable rows reads the same
    /// from the columns as from the records.
    #[test]
    fn columns_read_as_the_records_read() {
        let mut s = Symbols::new();
        let x = s.channel("x");
        let y = s.channel("y");
        let cols = Columns::new(&s);
        let jobs: [&[&str]; 6] = [
            &["x=1;y=a;", "x=2;", "x=3;y=b;"],
            &["x=1;", "x=2.5;"],
            &["y=1;", "y=2;"],
            &["x=1;bad;", "x=4;"],
            &["bad;"],
            &[],
        ];
        for texts in jobs {
            let rows: Vec<Row> = texts
                .iter()
                .enumerate()
                .map(|(i, c)| row(i as u32, c))
                .collect();
            let records: Vec<Record> = rows
                .iter()
                .map(|r| Record::read(r.clone(), &s, &cols))
                .collect();
            let mut reversed = rows.clone();
            reversed.reverse();
            let columns = JobColumns::of_rows(1, t(0), reversed, &s, &cols, &[x, y]);
            for slot in [x, y] {
                let from_records = day_vector(&[DayRows::Records(&records)], slot);
                let from_columns = day_vector(&[DayRows::Columns(&columns)], slot);
                assert_eq!(from_columns, from_records, "{texts:?}");
            }
            // Two pieces read as their concatenation.
            let both = day_vector(&[DayRows::Records(&records), DayRows::Columns(&columns)], x);
            let twice: Vec<Record> = records.iter().chain(&records).cloned().collect();
            assert_eq!(both, day_vector(&[DayRows::Records(&twice)], x));
        }
    }

    #[test]
    fn numbers_take_eight_bytes_and_results_not_computed_read_as_missing() {
        let mut s = Symbols::new();
        let x = s.channel("x");
        let cols = Columns::new(&s);
        let rows = vec![row(0, "x=1;"), row(1, "x=2;")];
        let c = JobColumns::of_rows(1, t(0), rows, &s, &cols, &[x]);
        assert!(matches!(c.columns[0].1, Column::Nums(ref n) if n == &[1.0, 2.0]));
        assert_eq!(c.size(), 2);
        let mut rec = Record::read(row(0, "x=1;"), &s, &cols);
        rec.set(x, Value::Empty(crate::lang::Reason::DivisionByZero));
        let c = JobColumns::of_records(1, t(0), [&rec].into_iter(), &[x]).as_written();
        assert_eq!(day_vector(&[DayRows::Columns(&c)], x), None);
    }
}
