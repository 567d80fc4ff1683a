//! `recalcd migrate`.

use std::process::ExitCode;

use recalcd::store::{self, Store};

use super::GlobalArgs;

/// Arguments of `recalcd migrate`.
///
/// Creates the tables of the configured names (data, job, day, constants, equations,
/// the errors table and the migrations table) or upgrades them, applying the embedded
/// numbered migrations of the detected dialect that are not recorded yet. Tables that
/// already exist are kept. Running it again changes nothing.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `recalcd migrate`.
pub fn run(_args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let config = global.load_config()?;
    super::init_logging(&config.log);
    super::runtime()?.block_on(async {
        let mut store = store::connect(&config).await?;
        let report = store.migrate().await?;
        store.check_schema().await?;
        let dialect = store.dialect();
        if report.applied.is_empty() {
            println!(
                "schema is up to date (migration {}, {dialect})",
                report.version
            );
        } else {
            for (version, name) in &report.applied {
                println!("applied {version:04}_{name}");
            }
            println!("schema is at migration {} ({dialect})", report.version);
        }
        Ok(ExitCode::SUCCESS)
    })
}
