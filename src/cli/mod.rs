//! The command line: global options, the subcommands, and how errors become exit codes.
//!
//! Each subcommand lives in its own file and exposes `Args` (its clap arguments) and
//! `run`, which returns the process exit code. Errors are reported here, once, as a
//! single line (`error: …` with its causes), never as a panic or stack trace.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod check;
mod eval;
mod migrate;
mod status;

/// recalcd recalculates derived time-series values inside QuestDB and PostgreSQL.
///
/// Devices write measurements into `data` rows and flag them (`recalc > 0`); recalcd
/// evaluates the user equations stored in the database and writes the derived data,
/// job and day values back.
#[derive(Debug, Parser)]
#[command(name = "recalcd", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted by every subcommand.
#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// Configuration file (TOML). Every key can also be set from the environment as
    /// `RECALCD__SECTION__KEY`, e.g. `RECALCD__DATABASE__URL`.
    #[arg(long, global = true, value_name = "PATH", env = "RECALCD_CONFIG")]
    pub config: Option<PathBuf>,

    /// Database URL, e.g. `postgres://user@host:5432/db`; overrides `database.url`.
    #[arg(long, global = true, value_name = "URL", env = "DATABASE_URL")]
    pub database_url: Option<String>,
}

/// What recalcd should do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Evaluate one equation against values given on the command line.
    Eval(eval::Args),
    /// Check every stored equation and print every problem.
    Check(check::Args),
    /// Create or upgrade the database schema.
    Migrate(migrate::Args),
    /// Show the backlog, the equations and constants, and the latest errors.
    Status(status::Args),
}

/// Parses the command line, runs the subcommand and turns its outcome into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Eval(args) => eval::run(args, &cli.global),
        Command::Check(args) => check::run(args, &cli.global),
        Command::Migrate(args) => migrate::run(args, &cli.global),
        Command::Status(args) => status::run(args, &cli.global),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
