//! `recalcd once`.

use std::process::ExitCode;

use recalcd::service::{run_until_idle, Recalculator};
use recalcd::store::{self, Store};

use super::GlobalArgs;

/// Arguments of `recalcd once` (its description is on [`super::Command::Once`]).
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `recalcd once`.
pub fn run(_args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let config = global.load_config()?;
    super::init_logging(&config.log);
    super::runtime()?.block_on(async {
        let mut store = store::connect(&config).await?;
        store.check_schema().await?;
        let recalc =
            Recalculator::load(&store, config.engine.clone(), config.poll.batch_size).await?;
        let (total, elapsed) = run_until_idle(&recalc, &mut store, |_| {}).await?;
        let secs = elapsed.as_secs_f64();
        println!(
            "wrote {} data rows, {} job rows, {} day rows in {secs:.2} s ({:.0} data rows/s)",
            total.data,
            total.jobs,
            total.days,
            total.data as f64 / secs.max(1e-9)
        );
        println!(
            "{} rows with failures ({} error records; see `recalcd status`), {} rows left for producers' newer writes",
            total.failed_rows, total.errors, total.skipped
        );
        Ok(ExitCode::SUCCESS)
    })
}
