//! `recalcd status`.

use std::process::ExitCode;

use recalcd::store::{self, Status, Store};

use super::GlobalArgs;

/// Arguments of `recalcd status`.
///
/// Prints the backlog (flagged rows per table and the oldest flagged `datetime`), the
/// numbers of equations and constants, and the latest error records. Fails with
/// "run `recalcd migrate`" when the schema is missing or outdated.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many of the latest error records to show.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub errors: usize,
}

/// Runs `recalcd status`.
pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let config = global.load_config()?;
    super::init_logging(&config.log);
    super::runtime()?.block_on(async {
        let store = store::connect(&config).await?;
        store.check_schema().await?;
        let status = store.status(args.errors).await?;
        print!("{}", render(&status));
        Ok(ExitCode::SUCCESS)
    })
}

fn render(s: &Status) -> String {
    let mut out = format!(
        "dialect: {} (schema migration {})\nbacklog (flagged rows):\n",
        s.dialect, s.schema_version
    );
    for b in &s.backlog {
        let oldest = b.oldest.map_or_else(
            || "-".to_string(),
            |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
        );
        out.push_str(&format!(
            "  {:<4} {:<20} {:>10} flagged, oldest {}\n",
            b.level.as_str(),
            b.table,
            b.flagged,
            oldest
        ));
    }
    out.push_str(&format!(
        "equations: {}\nconstants: {}\n",
        s.equations, s.constants
    ));
    if s.latest_errors.is_empty() {
        out.push_str("latest errors: none\n");
    } else {
        out.push_str("latest errors (newest first):\n");
        for e in &s.latest_errors {
            let r = &e.record;
            out.push_str(&format!(
                "  {} {} id={} {} {}: {}\n",
                e.at.format("%Y-%m-%d %H:%M:%S"),
                r.level,
                r.key.id,
                r.key.datetime.format("%Y-%m-%d %H:%M:%S%.f"),
                r.equation,
                r.reason
            ));
        }
    }
    out
}
