//! `recalcd run`.

use std::process::ExitCode;

use tokio::signal::unix::{signal, SignalKind};

use super::GlobalArgs;

/// Arguments of `recalcd run` (its description is on [`super::Command::Run`]).
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `recalcd run` (the daemon, its HTTP endpoint, systemd notifications) until
/// SIGTERM or SIGINT.
pub fn run(_args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let config = global.load_config()?;
    super::init_logging(&config.log);
    super::runtime()?.block_on(async {
        // Installed before any work, so a signal during the first batch is not lost
        // (nor fatal, which is the default action of both).
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let shutdown = async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "shutting down");
        };
        recalcd::service::supervisor::run(&config, shutdown).await?;
        Ok(ExitCode::SUCCESS)
    })
}
