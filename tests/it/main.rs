//! The integration tests: one binary, talking to the real binary and a real PostgreSQL.

#[macro_use]
mod support;

mod browser;
mod cli_equations;
mod cli_lang;
mod cli_problems;
mod cli_reflag;
mod cli_secrets;
mod cli_store;
mod daemon;
mod demo;
mod demo_server;
mod engine_forms;
mod engine_once;
mod faults;
mod http;
mod index_store;
mod isax;
mod match_;
mod match_index;
mod pipeline;
mod plot;
mod producer_text;
mod questdb_ilp;
mod readme;
mod row_failures;
mod search;
mod serve;
mod serve_similar;
mod similar;
mod similar_xcorr;
mod stale_days;
mod store_contract;
mod workers;
