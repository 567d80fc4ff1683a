//! `recalcd demo`: the main job on a built-in data set, from an empty database (or none)
//! to a summary table.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use chrono::Duration;
use indicatif::{ProgressBar, ProgressStyle};
use recalcd::config::{Config, ConnectionString, LogConfig};
use recalcd::demo::{Dataset, Scale, ServerError, TempServer};
use recalcd::service::summary::summaries;
use recalcd::service::{run_until_idle, Recalculator, Report};
use recalcd::store::{self, AnyStore, Level, Row, Store, WriteBatch};

use super::summary::{render, Format};
use super::GlobalArgs;

/// Arguments of `recalcd demo` (its description is on [`super::Command::Demo`]).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of devices.
    #[arg(long, value_name = "N", default_value_t = Scale::DEMO.devices,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub devices: u32,
    /// Days of data per device, from 2024-04-01.
    #[arg(long, value_name = "N", default_value_t = Scale::DEMO.days,
          value_parser = clap::value_parser!(u32).range(1..=3_650))]
    pub days: u32,
    /// Jobs per device and day.
    #[arg(long, value_name = "N", default_value_t = Scale::DEMO.jobs_per_day,
          value_parser = clap::value_parser!(u32).range(1..=12))]
    pub jobs_per_day: u32,
    /// Seed of the generated data (the same seed gives the same data).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
}

/// Data rows written per `write_back` while loading the demo.
const LOAD_CHUNK: usize = 5_000;

/// Whether the user pointed recalcd at a database (flag, environment or file).
fn database_configured(global: &GlobalArgs) -> bool {
    let env_url = std::env::var("RECALCD__DATABASE__URL")
        .ok()
        .is_some_and(|u| !u.trim().is_empty());
    global.database_url.is_some() || global.config.is_some() || env_url
}

/// Runs `recalcd demo`.
pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let dataset = Dataset::new(
        Scale {
            devices: args.devices,
            days: args.days,
            jobs_per_day: args.jobs_per_day,
            rows_per_job: None,
        },
        args.seed,
    );
    if database_configured(global) {
        let config = global.load_config()?;
        init_quiet_logging(&config.log);
        println!(
            "recalcd demo: using the database at {}; the demo data stays there.",
            config.database.redacted_url()
        );
        return demo(&config, &dataset, None);
    }
    eprintln!("recalcd demo: no database configured; starting a throwaway PostgreSQL …");
    let server = match TempServer::start() {
        Ok(s) => s,
        Err(e @ ServerError::NotInstalled) => return Err(super::usage(e.to_string())),
        Err(e) => return Err(e).context("cannot start a throwaway PostgreSQL"),
    };
    println!(
        "recalcd demo: a throwaway PostgreSQL in {} on {} (removed at the end).",
        server.dir().display(),
        server.url()
    );
    let config = Config::load(None, Some(&server.url()))?;
    init_quiet_logging(&config.log);
    let outcome = demo(&config, &dataset, Some(&server));
    let dir = server.dir().to_owned();
    drop(server);
    println!(
        "\nThe throwaway server and its directory {} are removed. To keep the data and look \
         at it (psql, recalcd status, recalcd summary), give the demo an empty database, \
         e.g. `createdb recalcd_demo` and then \
         `recalcd demo --database-url postgres://USER@HOST/recalcd_demo`.",
        dir.display()
    );
    outcome
}

/// Logging at `warn` unless configured otherwise: the progress bar shows the progress.
fn init_quiet_logging(log: &LogConfig) {
    let mut log = log.clone();
    if std::env::var_os("RECALCD__LOG__LEVEL").is_none() {
        log.level = "warn".to_owned();
    }
    super::init_logging(&log);
}

fn demo(
    config: &Config,
    dataset: &Dataset,
    server: Option<&TempServer>,
) -> anyhow::Result<ExitCode> {
    super::runtime()?.block_on(async {
        tokio::select! {
            r = demo_in(config, dataset, server) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        }
    })
}

async fn demo_in(
    config: &Config,
    dataset: &Dataset,
    server: Option<&TempServer>,
) -> anyhow::Result<ExitCode> {
    let mut store = store::connect(config).await?;
    let migrated = store.migrate().await?;
    if !migrated.applied.is_empty() {
        println!(
            "migrated the schema to version {} ({} migration(s))",
            migrated.version,
            migrated.applied.len()
        );
    }
    let busy = store.tables_holding_rows().await?;
    if !busy.is_empty() {
        return Err(super::usage(format!(
            "the database already holds data (tables: {}); recalcd demo only loads into an \
             empty database, so that it never mixes with or changes your data: create one \
             (e.g. `createdb recalcd_demo`) and pass it with --database-url",
            busy.join(", ")
        )));
    }

    // Load the demo: definitions, then the flagged data rows as a producer writes them.
    let constants = dataset.constants();
    let equations = dataset.equations();
    store.insert_definitions(&constants, &equations).await?;
    let total_rows = dataset.row_count();
    println!(
        "loading the demo: {} devices, {} … {}, {} jobs, {} data rows, {} equations, {} constants",
        dataset.scale.devices,
        Dataset::start(),
        dataset.end(),
        dataset.scale.jobs(),
        total_rows,
        equations.len(),
        constants.len()
    );
    let bar = progress(total_rows, "loading");
    let mut chunk: Vec<Row> = Vec::with_capacity(LOAD_CHUNK + 256);
    for job in dataset.jobs() {
        chunk.extend(job);
        if chunk.len() >= LOAD_CHUNK {
            load(&mut store, &mut chunk, &bar).await?;
        }
    }
    load(&mut store, &mut chunk, &bar).await?;
    bar.finish_and_clear();

    // The main job: recalculate everything flagged, with a progress bar.
    let recalc = Recalculator::load(&store, config.engine.clone(), config.poll.batch_size).await?;
    let bar = progress(total_rows, "recalculating");
    let mut so_far = Report::default();
    let started = Instant::now();
    let (total, elapsed) = run_until_idle(&recalc, &mut store, |r| {
        so_far.add(r);
        bar.inc(r.data as u64);
        bar.set_message(format!(
            "{} job rows, {} day rows",
            so_far.jobs, so_far.days
        ));
    })
    .await?;
    bar.finish_and_clear();
    let secs = elapsed.as_secs_f64().max(1e-9);
    println!(
        "wrote {} data rows, {} job rows, {} day rows in {:.2} s ({:.0} data rows/s); \
         {} rows with failures, {} error records",
        total.data,
        total.jobs,
        total.days,
        secs,
        total.data as f64 / secs,
        total.failed_rows,
        total.errors
    );

    let (from, to) = (Dataset::start(), dataset.end());
    let list = summaries(&store, &config.engine, from, to, None).await?;
    println!("\nsummary {from} … {to} (equations of types 6 and 7, per device):\n");
    print!("{}", render(&list, Format::Table));
    show_samples(&store).await?;
    println!("\nfinished in {:.1} s", started.elapsed().as_secs_f64());

    if server.is_none() {
        print!("{}", follow_up(&config.database.url, from, to));
    }
    Ok(ExitCode::SUCCESS)
}

/// The commands to look at the results, ready to paste: the URL goes in `DATABASE_URL`
/// (which `recalcd` and `psql "$DATABASE_URL"` both read); when it holds a password, the
/// line setting it says where the password goes instead of printing it (or a mask that
/// would not work).
fn follow_up(url: &str, from: chrono::NaiveDate, to: chrono::NaiveDate) -> String {
    let Ok(connection) = ConnectionString::parse(url) else {
        return String::new();
    };
    let set = if connection.has_password() {
        format!(
            "  export DATABASE_URL='{}'   # your password (percent-encoded) in place of PASSWORD\n",
            connection.url_with_password(Some("PASSWORD"))
        )
    } else {
        format!(
            "  export DATABASE_URL='{}'\n",
            connection.url_with_password(None)
        )
    };
    format!(
        "\nLook at the results:\n{set}\
         \x20 psql \"$DATABASE_URL\" -c \"SELECT id, datetime, data_time, conjoined FROM job ORDER BY id, datetime LIMIT 5\"\n\
         \x20 psql \"$DATABASE_URL\" -c \"SELECT id, datetime, conjoined FROM day ORDER BY id, datetime LIMIT 5\"\n\
         \x20 recalcd status\n\
         \x20 recalcd summary --from {from} --to {to}\n\
         \x20 # change a row and flag it (UPDATE data SET conjoined = …, recalc = 1 …), then:\n\
         \x20 recalcd once\n"
    )
}

/// Writes `chunk` as new, flagged data rows and empties it.
async fn load(store: &mut AnyStore, chunk: &mut Vec<Row>, bar: &ProgressBar) -> anyhow::Result<()> {
    if chunk.is_empty() {
        return Ok(());
    }
    let n = chunk.len();
    let out = store
        .write_back(&WriteBatch {
            data: std::mem::take(chunk),
            ..WriteBatch::default()
        })
        .await?;
    if !out.skipped.is_empty() {
        anyhow::bail!(
            "{} demo rows already existed in the database; the demo needs an empty database",
            out.skipped.len()
        );
    }
    bar.inc(n as u64);
    Ok(())
}

fn progress(total: u64, what: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(
        "{prefix:>13} [{bar:40}] {human_pos}/{human_len} data rows, {elapsed} ({eta} left) {msg}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(what);
    bar
}

/// One data row and one job row of device 1, to show what the equations wrote.
async fn show_samples(store: &AnyStore) -> anyhow::Result<()> {
    let day_start = Dataset::start().and_time(chrono::NaiveTime::MIN);
    let jobs = store
        .load_between(Level::Job, day_start, day_start + Duration::days(2))
        .await?;
    let Some(job) = jobs.iter().find(|j| j.id == 1) else {
        return Ok(());
    };
    let rows = store.load_job_rows(&[(job.id, job.datetime)]).await?;
    if let Some(row) = rows.get(rows.len() / 2) {
        println!(
            "\na data row of device 1 ({}), as the device wrote it plus what type 1 and 2 equations computed:\n  {}",
            row.datetime,
            row.conjoined
        );
    }
    let shown: String = job.conjoined.chars().take(600).collect();
    println!(
        "its job ({} … {}), type 4 equations (TSPIKE and PSTUCK are SDATCTRL's flag vectors):\n  {}{}",
        job.datetime,
        job.data_time,
        shown,
        if shown.len() < job.conjoined.len() { " …" } else { "" }
    );
    let days = store
        .load_between(Level::Day, day_start, day_start + Duration::days(2))
        .await?;
    if let Some(day) = days.iter().find(|d| d.id == 1) {
        println!(
            "its day ({} … {}), type 5 equations:\n  {}",
            day.datetime, day.data_time, day.conjoined
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dates() -> (chrono::NaiveDate, chrono::NaiveDate) {
        let d = |day| chrono::NaiveDate::from_ymd_opt(2024, 4, day).expect("a date");
        (d(1), d(3))
    }

    #[test]
    fn the_follow_up_says_where_the_password_goes() {
        let (from, to) = dates();
        for url in [
            "postgres://me:ab/cdSECRET@db.example:5433/demo",
            "host=db.example port=5433 user=me password='Top Secret' dbname=demo",
        ] {
            let text = follow_up(url, from, to);
            assert!(
                text.contains(
                    "export DATABASE_URL='postgres://me:PASSWORD@db.example:5433/demo'   # your password"
                ),
                "{text}"
            );
            assert!(
                !text.contains("SECRET") && !text.contains("Secret"),
                "{text}"
            );
            assert!(!text.contains("***"), "{text}");
            assert!(text.contains("  recalcd summary --from 2024-04-01 --to 2024-04-03\n"));
        }
        let text = follow_up("postgres://me@db.example/demo", from, to);
        assert!(
            text.contains("export DATABASE_URL='postgres://me@db.example:5432/demo'\n"),
            "{text}"
        );
        assert!(text.contains("  psql \"$DATABASE_URL\" -c"), "{text}");
    }
}
