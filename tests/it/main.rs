//! The integration tests: one binary, talking to the real binary and a real PostgreSQL.
mod demo_server;
