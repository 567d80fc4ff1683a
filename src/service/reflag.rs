//! `recalcd reflag`: flags the rows of a date range so that the next `recalcd once` or
//! `recalcd run` recomputes them (after the equations changed, say).
//!
//! The range is read as `recalcd summary` reads it: for each device, from its day break
//! (`#WB`, in its zone `#TZ`) on the first date to its day break on the day after the
//! last, so a level's rows are those whose `datetime` falls in the device's working days
//! `from ..= to`. A device without `#WB` breaks at midnight. Only the constants are read;
//! every device without constants of its own shares the defaults' range
//! ([`ReflagRanges::others`]), so flagging all devices needs no list of them.

use std::collections::BTreeSet;

use chrono::NaiveDate;

use crate::engine::catalog::Constants;
use crate::engine::compute::Options;
use crate::engine::summary::range_of;
use crate::lang::context::Symbols;
use crate::store::{Level, ReflagRanges, Store, StoreError, TimeRange};

/// Why `recalcd reflag` flagged nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReflagError {
    /// `--id` names a device with no row at any level.
    #[error("--id {0}: device {0} has no rows in the data, job or day table")]
    UnknownDevice(i32),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The rows of the dates `from ..= to` of device `only` (or every device).
///
/// # Errors
/// [`StoreError`] if the constants cannot be read.
pub async fn ranges<S: Store>(
    store: &S,
    options: &Options,
    from: NaiveDate,
    to: NaiveDate,
    only: Option<i32>,
) -> Result<ReflagRanges, StoreError> {
    let records = store.load_constants().await?;
    let constants = Constants::build(&records, &Symbols::new());
    let span = |id| {
        let s = range_of(id, &constants, options.default_zone, from, to);
        TimeRange {
            id,
            from: s.start,
            to: s.end,
        }
    };
    Ok(match only {
        Some(id) => ReflagRanges {
            devices: vec![span(id)],
            others: None,
        },
        None => {
            let own: BTreeSet<i32> = records.iter().map(|c| c.id).filter(|&id| id != 0).collect();
            // Id 0 is no device: its constants are the defaults.
            let default = span(0);
            ReflagRanges {
                devices: own.into_iter().map(span).collect(),
                others: Some((default.from, default.to)),
            }
        }
    })
}

/// Flags the rows of each of `levels` in the dates `from ..= to` of device `only` (or
/// every device); how many rows it flagged per level (rows flagged already not counted).
///
/// # Errors
/// [`ReflagError::UnknownDevice`] for an `only` without rows; [`StoreError`] if the
/// store fails.
pub async fn reflag<S: Store>(
    store: &mut S,
    options: &Options,
    from: NaiveDate,
    to: NaiveDate,
    only: Option<i32>,
    levels: &[Level],
) -> Result<Vec<(Level, u64)>, ReflagError> {
    if let Some(id) = only {
        if !store.device_known(id).await? {
            return Err(ReflagError::UnknownDevice(id));
        }
    }
    let ranges = ranges(store, options, from, to, only).await?;
    let mut out = Vec::with_capacity(levels.len());
    for &level in levels {
        out.push((level, store.reflag(level, &ranges).await?));
    }
    Ok(out)
}
