//! The integration tests: one binary, talking to the real binary and a real PostgreSQL.

mod support;

mod store_contract;

mod cli_store;

mod cli_lang;
