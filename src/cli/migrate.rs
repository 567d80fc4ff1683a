//! `recalcd migrate`.

use std::process::ExitCode;

use super::GlobalArgs;

/// Arguments of `recalcd migrate`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `recalcd migrate`.
pub fn run(_args: Args, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`recalcd migrate` is not implemented yet")
}
