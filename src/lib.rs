//! recalcd recalculates derived time-series values inside QuestDB and PostgreSQL.
//!
//! The crate is layered so that pure things stay pure:
//!
//! - [`lang`] — the equation language: parser, checker/compiler, value model and
//!   function library. No I/O, no async.
//! - [`store`] — the one storage interface and its dialects (PostgreSQL, QuestDB):
//!   migrations, polling, loading and batched write-back.
//! - [`conjoined`] — the codec of the `conjoined` column (`name=value;…`).
//! - [`config`] — configuration: the TOML mirror and the validated [`config::Config`].
#![deny(missing_docs)]

pub mod config;
pub mod conjoined;
pub mod demo;
pub mod engine;
pub mod lang;
pub mod service;
pub mod store;
