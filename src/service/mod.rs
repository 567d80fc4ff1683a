//! The service layer: where the pure engine meets the store. It polls, loads, computes
//! and writes back in batches ([`batch`]), runs that as a daemon that survives the
//! store going away ([`daemon`]), evaluates summaries ([`summary`]), and flags date
//! ranges for recalculation ([`reflag`]); it keeps the built indexes up to date with
//! the write-backs ([`index`]), searches them ([`search`], [`similar`], [`similar_approx`]) and plots channels from them
//! ([`plot`]); [`serve`] is the read-only web view and its JSON API.
//!
//! `recalcd run` is the daemon with an HTTP endpoint ([`http`]: health and Prometheus
//! [`metrics`]) and systemd notifications ([`systemd`]) beside it ([`supervisor`]);
//! the loop reports what happens to a [`Monitor`], which keeps the [`health`] and the
//! metrics.

pub mod batch;
pub mod build;
pub mod daemon;
pub mod health;
pub mod http;
pub mod index;
mod inflight;
pub mod metrics;
pub mod monitor;
pub mod plot;
pub mod reflag;
pub mod search;
pub mod serve;
pub mod similar;
pub mod similar_approx;
pub mod subsequence;
pub mod summary;
pub mod supervisor;
pub mod systemd;
pub mod window_index;

pub use batch::{run_until_idle, run_while, Loaded, Recalculator, Report};
pub use daemon::{run, DaemonError};
pub use monitor::Monitor;
pub use supervisor::ServiceError;
