//! The recalculation engine: jobs, days and the level fixpoint. Pure: no I/O.

pub mod catalog;
pub mod columns;
pub mod compute;
pub mod context;
pub mod day;
pub mod record;
pub mod summary;
pub mod validation;

pub use day::{DayBreak, DayClock, DayError, DaySpan};

#[cfg(test)]
mod tests;
