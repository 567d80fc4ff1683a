//! `recalcd status`.

use std::process::ExitCode;

use super::GlobalArgs;

/// Arguments of `recalcd status`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `recalcd status`.
pub fn run(_args: Args, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`recalcd status` is not implemented yet")
}
