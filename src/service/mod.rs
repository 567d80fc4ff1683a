//! The service layer: where the pure engine meets the store. It polls, loads, computes
//! and writes back in batches ([`batch`]).

pub mod batch;

pub use batch::{run_until_idle, Recalculator, Report};
