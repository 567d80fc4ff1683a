//! The service layer: where the pure engine meets the store. It polls, loads, computes
//! and writes back in batches ([`batch`]), and evaluates summaries ([`summary`]).

pub mod batch;
pub mod summary;

pub use batch::{run_until_idle, Recalculator, Report};
