//! `recalcd once`.

use std::process::ExitCode;

use recalcd::config::Dialect;
use recalcd::service::index::Maintainer;
use recalcd::service::{run_until_idle, Recalculator};
use recalcd::store::{self, Store};

use super::GlobalArgs;

/// The exit code of a `once` that finished but left problems: rows written with
/// `recalc = -1`, or equations skipped when loaded.
pub const PROBLEMS_LEFT: u8 = 3;

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
        let mut maintainer = Maintainer::new(&config);
        let recalc = Recalculator::load(&store, config.engine.clone(), config.poll.batch_size)
            .await?
            .with_indexes(config.index.clone())
            .with_written(maintainer.as_ref().map(Maintainer::written));
        // Marks a crash left behind first, then those of this run.
        maintain(&mut maintainer, &store).await;
        // On PostgreSQL the indexes catch up alongside the batches (marks commit with
        // their rows), on a connection of their own; elsewhere, after them.
        let alongside = match maintainer.take() {
            Some(m) if store.dialect() == Dialect::Postgres => match store::connect(&config).await {
                Ok(data) => Some(m.alongside(data)),
                Err(e) => {
                    tracing::warn!(error = %e, "no second connection for the indexes; they catch up after the batches");
                    maintainer = Some(m);
                    None
                }
            },
            m => {
                maintainer = m;
                None
            }
        };
        let ran = run_until_idle(&recalc, &mut store, |_| {
            if let Some(a) = &alongside {
                a.wake();
            }
        })
        .await;
        // `finish` catches up with the last batches itself.
        let caught_up = alongside.is_some();
        if let Some(a) = alongside {
            maintainer = Some(a.finish().await);
        }
        let (total, elapsed) = ran?;
        if !caught_up {
            maintain(&mut maintainer, &store).await;
        }
        let secs = elapsed.as_secs_f64();
        println!(
            "wrote {} data rows, {} job rows, {} day rows in {secs:.2} s ({:.0} data rows/s)",
            total.data,
            total.jobs,
            total.days,
            total.data as f64 / secs.max(1e-9)
        );
        let skipped = recalc.loaded().skipped;
        println!(
            "{} rows with failures ({} error records), {} of {} equations skipped (see `recalcd status`), {} rows left for producers' newer writes",
            total.failed_rows,
            total.errors,
            skipped,
            recalc.loaded().equations,
            total.skipped
        );
        if total.failed_rows > 0 || skipped > 0 {
            Ok(ExitCode::from(PROBLEMS_LEFT))
        } else {
            Ok(ExitCode::SUCCESS)
        }
    })
}

/// Brings the built indexes up to date; a failure is logged, not fatal (the marks stay
/// for the next run).
async fn maintain(maintainer: &mut Option<Maintainer>, store: &store::AnyStore) {
    if let Some(m) = maintainer {
        if let Err(e) = m.catch_up(store).await {
            tracing::warn!(
                error = format!("{:#}", anyhow::Error::from(e)),
                "cannot bring the indexes up to date; the next run retries"
            );
        }
    }
}
