//! `recalcd check`.

use std::process::ExitCode;

use super::GlobalArgs;

/// Arguments of `recalcd check`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `recalcd check`.
pub fn run(_args: Args, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`recalcd check` is not implemented yet")
}
