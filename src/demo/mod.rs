//! `recalcd demo`: a throwaway PostgreSQL and a realistic demo data set.

pub mod server;

pub use server::{ServerError, TempServer};
