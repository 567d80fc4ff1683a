//! `recalcd reflag`.

use std::process::ExitCode;

use recalcd::service::reflag::{reflag, ReflagError};
use recalcd::store::{self, Level, Store};

use super::range::DateRange;
use super::GlobalArgs;

/// A level to flag (`--level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LevelArg {
    /// Data rows: their jobs and days are recomputed with them.
    Data,
    /// Job rows: each with its data rows and its day.
    Job,
    /// Day rows only.
    Day,
}

impl From<LevelArg> for Level {
    fn from(l: LevelArg) -> Level {
        match l {
            LevelArg::Data => Level::Data,
            LevelArg::Job => Level::Job,
            LevelArg::Day => Level::Day,
        }
    }
}

/// Arguments of `recalcd reflag` (its description is on [`super::Command::Reflag`]).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub range: DateRange,
    /// Only this device (it must have rows in the data, job or day table).
    #[arg(long, value_name = "N")]
    pub id: Option<i32>,
    /// The level whose rows are flagged; repeat it or separate with commas for several.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_values_t = [LevelArg::Data],
        value_name = "LEVEL"
    )]
    pub level: Vec<LevelArg>,
}

/// Runs `recalcd reflag`.
pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let DateRange { from, to } = args.range.checked()?;
    let mut levels: Vec<Level> = args.level.iter().map(|&l| l.into()).collect();
    levels.sort();
    levels.dedup();
    let config = global.load_config()?;
    super::init_logging(&config.log);
    let flagged = super::runtime()?.block_on(async {
        let mut store = store::connect(&config).await?;
        store.check_schema().await?;
        match reflag(&mut store, &config.engine, from, to, args.id, &levels).await {
            Err(e @ ReflagError::UnknownDevice(_)) => Err(super::usage(e.to_string())),
            other => Ok(other?),
        }
    })?;
    let devices = args
        .id
        .map_or_else(|| "all devices".to_owned(), |id| format!("device {id}"));
    println!("flagged the working days {} ..= {} of {devices}:", from, to);
    for (level, n) in flagged {
        println!("{level} rows flagged: {n}");
    }
    println!(
        "(rows flagged already are left as they are and not counted); `recalcd once`, or a running `recalcd run`, recomputes them"
    );
    Ok(ExitCode::SUCCESS)
}
