//! `recalcd prune`.

use std::process::ExitCode;

use anyhow::Context as _;
use recalcd::config::parse_duration;
use recalcd::store::{self, Store};

use super::GlobalArgs;

/// Arguments of `recalcd prune` (its description is on [`super::Command::Prune`]).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Delete error records older than this: a duration with a unit, e.g. `30d`, `12h`.
    #[arg(long, value_name = "DURATION", value_parser = parse_age)]
    pub older_than: chrono::Duration,
}

fn parse_age(s: &str) -> Result<chrono::Duration, String> {
    let d = parse_duration(s)?;
    chrono::Duration::from_std(d).map_err(|_| format!("`{s}` is too long"))
}

/// Runs `recalcd prune`.
pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let config = global.load_config()?;
    super::init_logging(&config.log);
    let before = chrono::Utc::now()
        .naive_utc()
        .checked_sub_signed(args.older_than)
        .context("--older-than reaches before the calendar")
        .map_err(|e| super::as_usage(e, "--older-than"))?;
    super::runtime()?.block_on(async {
        let store = store::connect(&config).await?;
        store.check_schema().await?;
        let deleted = store.prune_errors(before).await?;
        println!(
            "deleted {deleted} error records recorded before {} UTC (the current ones of rows still at recalc = -1 are kept)",
            before.format("%Y-%m-%d %H:%M:%S")
        );
        Ok(ExitCode::SUCCESS)
    })
}
