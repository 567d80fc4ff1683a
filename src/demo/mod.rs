//! `recalcd demo`: a throwaway PostgreSQL and a realistic demo data set.
//!
//! [`dataset`] generates the demo's devices, constants, equations and data rows
//! (pure, deterministic); [`server`] starts and removes a PostgreSQL of its own when no
//! database is configured.

pub mod dataset;
pub mod server;

pub use dataset::{Dataset, Scale};
pub use server::{ServerError, TempServer};
