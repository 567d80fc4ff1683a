//! The service layer: where the pure engine meets the store. It polls, loads, computes
//! and writes back in batches ([`batch`]), runs that as a daemon that survives the
//! store going away ([`daemon`]), and evaluates summaries ([`summary`]).

pub mod batch;
pub mod daemon;
pub mod summary;

pub use batch::{run_until_idle, Loaded, Recalculator, Report};
pub use daemon::{run, DaemonError};
