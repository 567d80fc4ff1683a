//! `recalcd eval`.

use std::process::ExitCode;

use super::GlobalArgs;

/// Arguments of `recalcd eval`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `recalcd eval`.
pub fn run(_args: Args, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`recalcd eval` is not implemented yet")
}
