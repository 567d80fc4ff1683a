//! The integration tests: one binary, talking to the real binary and a real PostgreSQL.

mod cli_lang;
mod demo_server;
