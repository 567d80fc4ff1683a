//! `recalcd serve` (its description is on [`super::Command::Serve`]).

use std::process::ExitCode;

use recalcd::service::serve::{self, App};
use tokio::signal::unix::{signal, SignalKind};

use super::GlobalArgs;

/// Arguments of `recalcd serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Listen here instead of `serve.listen` (an IP address and port; port 0 takes a
    /// free one).
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
}

/// Runs `recalcd serve` until SIGTERM or SIGINT.
pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let mut config = global.load_config()?;
    if let Some(token) = &config.serve.token {
        global.remember_secrets(vec![token.secret().to_string()]);
    }
    if let Some(addr) = args.listen {
        config.serve.listen = addr;
    }
    super::init_logging(&config.log);
    super::runtime()?.block_on(async {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let listener = serve::bind(config.serve.listen).await?;
        let app = App::start(&config).await?;
        let addr = listener.local_addr()?;
        // The one line a supervisor or a test reads to find the port.
        eprintln!("recalcd serve: listening on http://{addr}/");
        tracing::info!(%addr, token = config.serve.token.is_some(), "serving");
        let shutdown = async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "shutting down");
        };
        serve::serve(listener, app, shutdown).await?;
        Ok(ExitCode::SUCCESS)
    })
}
