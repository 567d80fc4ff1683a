//! `recalcd summary`: loads the days, jobs and previous days of a date range for every
//! device (or one) in a few round trips and evaluates the summary equations.

use std::collections::BTreeSet;

use chrono::{Duration, NaiveDate};
use tracing::warn;

use crate::engine::catalog::{Catalog, Constants};
use crate::engine::compute::Options;
use crate::engine::summary::{range_of, summarize, Summary, SummaryInput};
use crate::store::{Level, RowKey, Store, StoreError, TimeRange};

/// The summaries of the dates `from ..= to`, one per device that has days in the range
/// (or of `only`), in device order.
///
/// # Errors
/// [`StoreError`] if the store fails.
pub async fn summaries<S: Store>(
    store: &S,
    options: &Options,
    from: NaiveDate,
    to: NaiveDate,
    only: Option<i32>,
) -> Result<Vec<Summary>, StoreError> {
    let catalog = Catalog::build(&store.load_equations().await?);
    for p in catalog.problems() {
        warn!(problem = %p, "equation skipped");
    }
    let constants = Constants::build(&store.load_constants().await?, catalog.symbols());
    // Wide enough for any zone and day break; each device's own range is cut below.
    let window_start = (from - Duration::days(2)).and_time(chrono::NaiveTime::MIN);
    let window_end = (to + Duration::days(3)).and_time(chrono::NaiveTime::MIN);
    let days = store
        .load_between(Level::Day, window_start, window_end)
        .await?;
    let devices: BTreeSet<i32> = match only {
        Some(id) => BTreeSet::from([id]),
        None => days.iter().map(|d| d.id).collect(),
    };
    let ranges: Vec<TimeRange> = devices
        .iter()
        .map(|&id| {
            let span = range_of(id, &constants, options.default_zone, from, to);
            TimeRange {
                id,
                from: span.start,
                to: span.end,
            }
        })
        .collect();
    let jobs = store.load_in_ranges(Level::Job, &ranges).await?;
    let firsts: Vec<RowKey> = ranges
        .iter()
        .map(|r| RowKey {
            id: r.id,
            datetime: r.from,
        })
        .collect();
    let prev_days = store.previous(Level::Day, &firsts).await?;
    let mut out = Vec::with_capacity(ranges.len());
    for (range, prev_day) in ranges.iter().zip(prev_days) {
        let input = SummaryInput {
            id: range.id,
            days: days.iter().filter(|d| d.id == range.id).cloned().collect(),
            jobs: jobs.iter().filter(|j| j.id == range.id).cloned().collect(),
            prev_day,
        };
        let span = crate::engine::day::DaySpan {
            start: range.from,
            end: range.to,
        };
        out.push(summarize(
            input,
            span,
            &catalog,
            &constants,
            options.default_zone,
        ));
    }
    Ok(out)
}
