//! The recalculation engine: jobs, days and the level fixpoint (SPEC §3). Pure: no I/O.

pub mod day;

pub use day::{DayBreak, DayClock, DayError, DaySpan};
