//! The command line: global options, the subcommands, and how errors become exit codes.
//!
//! Each subcommand lives in its own file and exposes `Args` (its clap arguments) and
//! `run`, which returns the process exit code. Errors are reported here, once, as a
//! single line (`error: …` with its causes), never as a panic or stack trace, and with
//! every password of the configuration scrubbed. Exit codes: 2 for usage and
//! configuration errors, 1 for everything else; `once` returns 3 of its own when it
//! finished but left problems.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use clap::{Parser, Subcommand, ValueEnum};
use recalcd::config::{self, Config, ConfigError, Dialect, DialectChoice, LogFormat};

mod check;
mod demo;
mod equations;
mod eval;
mod healthcheck;
mod index;
mod match_;
mod migrate;
mod once;
mod plot;
mod prune;
mod range;
mod reflag;
mod run;
mod search;
mod serve;
mod similar;
mod status;
mod summary;

/// recalcd recalculates derived time-series values inside QuestDB and PostgreSQL.
///
/// Devices write measurements into `data` rows and flag them (`recalc > 0`); recalcd
/// evaluates the user equations stored in the database and writes the derived data,
/// job and day values back.
///
/// Configuration: defaults, then `--config FILE`, then `RECALCD__SECTION__KEY`
/// environment variables, then `--database-url` / `DATABASE_URL`. Exit codes: 0 ok,
/// 1 runtime error, 2 usage or configuration error, 3 `once` finished but rows failed
/// (`recalc = -1`) or equations were skipped (see `recalcd status`).
#[derive(Debug, Parser)]
#[command(name = "recalcd", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted by every subcommand.
#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// Configuration file (TOML). Every key can also be set from the environment as
    /// `RECALCD__SECTION__KEY`, e.g. `RECALCD__DATABASE__URL`.
    #[arg(long, global = true, value_name = "PATH", env = "RECALCD_CONFIG")]
    pub config: Option<PathBuf>,

    /// Database connection string, e.g. `postgres://user@host:5432/db` or
    /// `host=h user=u password='…' dbname=d`; overrides `database.url`. Its password is
    /// never shown.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Force the SQL dialect instead of asking the server; overrides `database.dialect`.
    #[arg(long, global = true, value_enum, value_name = "DIALECT")]
    pub dialect: Option<DialectArg>,

    /// Passwords seen in the configuration, scrubbed from every error message.
    #[arg(skip)]
    secrets: Mutex<Vec<String>>,
}

/// `--dialect`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DialectArg {
    /// Ask the server (`SELECT version()`).
    Auto,
    /// PostgreSQL (TimescaleDB included).
    Postgres,
    /// QuestDB over PG wire.
    Questdb,
}

impl GlobalArgs {
    /// Loads and validates the configuration these options point at.
    ///
    /// # Errors
    /// [`ConfigError`] naming the bad key; the CLI turns it into exit code 2.
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        if let Some(url) = self.database_url.as_deref() {
            self.remember_secrets(config::connection::secrets(url));
        }
        let mut config = Config::load(self.config.as_deref(), self.database_url.as_deref())?;
        self.remember_secrets(config.database.secrets());
        if let Some(url) = &config.index.database_url {
            self.remember_secrets(config::connection::secrets(url));
        }
        if let Some(d) = self.dialect {
            config.database.dialect = match d {
                DialectArg::Auto => DialectChoice::Auto,
                DialectArg::Postgres => DialectChoice::Forced(Dialect::Postgres),
                DialectArg::Questdb => DialectChoice::Forced(Dialect::QuestDb),
            };
        }
        Ok(config)
    }

    /// Adds `secrets` to what every error message is scrubbed of.
    pub fn remember_secrets(&self, secrets: Vec<String>) {
        if let Ok(mut s) = self.secrets.lock() {
            s.extend(secrets);
        }
    }

    /// `message` with every remembered password replaced by `***`, longest first (so a
    /// password that contains another is replaced whole).
    fn scrub(&self, message: String) -> String {
        let Ok(mut secrets) = self.secrets.lock() else {
            return message;
        };
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets
            .iter()
            .filter(|s| !s.is_empty())
            .fold(message, |m, s| mask(&m, s))
    }
}

/// `message` with every occurrence of `secret` masked, except inside a longer word: a
/// password `quest` is masked in `admin:quest@host` and `'quest'`, but `questdb_ilp`
/// keeps its name.
fn mask(message: &str, secret: &str) -> String {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(secret) {
        let (before, after) = (&rest[..at], &rest[at + secret.len()..]);
        let glued = (word(before.chars().next_back()) && word(secret.chars().next()))
            || (word(after.chars().next()) && word(secret.chars().next_back()));
        out.push_str(before);
        out.push_str(if glued {
            secret
        } else {
            config::connection::PASSWORD_MASK
        });
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod scrub_tests {
    use super::mask;

    #[test]
    fn a_password_is_masked_where_it_stands_alone_not_inside_a_longer_word() {
        let m = mask(
            "postgres://admin:quest@h/qdb: password 'quest' refused; see questdb_ilp",
            "quest",
        );
        assert_eq!(
            m,
            "postgres://admin:***@h/qdb: password '***' refused; see questdb_ilp"
        );
        // A password of other characters is masked wherever it stands.
        assert_eq!(mask("x:p@ss!y", "p@ss!"), "x:***y");
        assert_eq!(mask("quest quest", "quest"), "*** ***");
    }
}

/// Starts logging to stderr as configured (`log.format`, `log.level`).
pub fn init_logging(log: &config::LogConfig) {
    let filter = tracing_subscriber::EnvFilter::new(&log.level);
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter);
    // A second initialisation (tests, nested commands) keeps the first subscriber.
    let _ = match log.format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// A runtime for the commands that talk to the store.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// What recalcd should do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole job on a built-in demo: machines in the field, weeks of data.
    ///
    /// With no database configured (no --database-url, DATABASE_URL,
    /// RECALCD__DATABASE__URL or --config) it starts a throwaway PostgreSQL of its own
    /// from the PostgreSQL programs installed on this machine (in a temporary directory,
    /// on a free port) and removes it at the end; if none are installed it says what to
    /// install. With a database it uses that one — which must be empty: the demo refuses
    /// to mix with existing data — and keeps the data.
    ///
    /// It migrates, loads the demo (devices reporting coolant temperature, oil pressure,
    /// engine speed, fuel, speed, GPS position and state; constants such as each device's
    /// day break #WB, #TMAX, a #TZ; fifty equations at the data, job, day and summary
    /// levels), recalculates everything with a progress bar, and prints what was
    /// computed, the summary table of the demo's date range, and how to look at the
    /// results.
    Demo(demo::Args),
    /// Evaluate one equation against values given on the command line.
    Eval(eval::Args),
    /// Check every stored equation and print every problem.
    Check(check::Args),
    /// Export the stored equations as CSV, or import them from a CSV file.
    #[command(subcommand_required = true)]
    Equations(equations::Args),
    /// Create or upgrade the database schema (safe to run again: it changes nothing
    /// once the schema is current).
    Migrate(migrate::Args),
    /// Show the backlog (flagged rows per table and the oldest flag), the failed rows
    /// (`recalc = -1`) per table, the numbers of equations and constants, the skipped
    /// equations, and the latest errors (current or past).
    Status(status::Args),
    /// Delete old error records (`--older-than 30d`); each failed row keeps its current
    /// records. PostgreSQL only (QuestDB cannot delete rows: drop old partitions of the
    /// errors table instead).
    Prune(prune::Args),
    /// Recalculate everything flagged, then exit.
    ///
    /// Polls the flagged data, job and day rows in batches of `poll.batch_size`, pulls in
    /// whole jobs, their days and the neighbours the equations read, computes, and writes
    /// each batch back in one transaction, until no flag is left. Rows whose outputs could
    /// not all be computed get `recalc = -1` and error records (see `recalcd status`). A
    /// row a producer changed meanwhile keeps the producer's content and flag. Running it
    /// again with nothing flagged changes nothing.
    ///
    /// Exits 0 when everything computed, 3 when it finished but rows got `recalc = -1`
    /// or equations were skipped (they do not parse or check, or read each other in a
    /// cycle; `recalcd status` lists them), 1 on a runtime error.
    Once(once::Args),
    /// Run as a daemon: recalculate whatever gets flagged, until SIGTERM or SIGINT.
    ///
    /// Polls the flagged rows and computes them in batches of `poll.batch_size`, back to
    /// back while there is a backlog, and every `poll.interval` when there is none (on
    /// PostgreSQL at once when a producer's write notifies it, `poll.notify`); memory
    /// follows the batch size, not the backlog. Several `recalcd run` may share a store:
    /// PostgreSQL leases each batch's devices to one of them (a dead one's pass to the
    /// others); on QuestDB give each its own `worker.shard` of `worker.shards`. When the
    /// stored equations or constants
    /// change, they are reloaded before the next batch (PostgreSQL: a revision counter
    /// kept by triggers; QuestDB: a fingerprint the server computes). SIGTERM or SIGINT
    /// lets the batch in flight finish (on PostgreSQL its write-back is one transaction:
    /// written completely or not at all), starts no other, and exits 0. When the store
    /// goes away, the failure is logged and the daemon reconnects, waiting 500ms at
    /// first and twice as long after each failure, up to `poll.max_backoff` (with
    /// `database.give_up_after` set, it exits 1 once the store stayed unusable that
    /// long). A bad
    /// equation or row never stops it. Logs go to stderr, pretty or JSON (`log.format`).
    /// Serves /healthz, /readyz and /metrics on `http.listen` (default 127.0.0.1:9187;
    /// `off` for none) and, under systemd (`Type=notify`), sends READY=1 after the first
    /// successful poll, WATCHDOG=1 while the loop is not stuck, and STOPPING=1.
    /// Exits 1 only when the configuration can never work (a malformed database URL, a
    /// schema newer than this recalcd) or `http.listen` cannot be bound.
    Run(run::Args),
    /// Ask a running `recalcd run` whether it is ready (for container health checks).
    ///
    /// Sends `GET /readyz` (or `--path`) to `--addr`, by default to `http.listen` of the
    /// configuration, prints the first line of the answer (`ready`, or `not ready:` and
    /// the reason) and exits 0 on HTTP 200, 1 otherwise (also when nothing answers).
    Healthcheck(healthcheck::Args),
    /// Print the summaries (types 6 and 7) of a date range, one record per device.
    ///
    /// Evaluates the type 6 equations and then the type 7 equations (which may read type
    /// 6 results as `$X`) for every device with days in the range, or only `--id`. The
    /// range runs from the device's day break (`#WB`, in its `#TZ`) on `--from` to its
    /// day break on the day after `--to`. Summaries are printed, not stored. Channels
    /// that could not be computed are shown as `-` (table), empty (CSV) or `null`
    /// (JSON), with the reason on stderr. When rows of the range are still flagged or
    /// failed (`recalc = -1`), a note on stderr says so: the summaries may change. An
    /// `--id` the store does not know (no rows, constants or equations) is an error
    /// (exit 2).
    Summary(summary::Args),
    /// Flag the rows of a date range for recalculation, e.g. after changing equations.
    ///
    /// Sets `recalc = 1` on the rows of `--level` (default data) whose `datetime` lies in
    /// the range, so the next `recalcd once` or `recalcd run` recomputes them, with
    /// everything a flag pulls in: a flagged data row or job is recomputed with its whole
    /// job (all its data rows) and that job's day; a flagged day alone. The range is
    /// read as `recalcd summary` reads it: from the device's day break (`#WB`, in its
    /// `#TZ`) on `--from` to its day break on the day after `--to`. Rows flagged already
    /// keep their flag and are not counted. Prints how many rows it flagged per level.
    Reflag(reflag::Args),
    /// Build, list and drop the indexes over recalculated channels (`[[index.feature]]`).
    ///
    /// A feature index keeps, per device, a hierarchy of time buckets of one channel
    /// (e.g. 1d/1h/10m/1m, aligned to UTC midnight) with count, sum, sum of squares,
    /// min, max, first and last. Once built, every write-back keeps it exact: the
    /// buckets the written rows fall in are recorded with the rows and recomputed after
    /// the batch (and at start-up of `once` and `run`). Writes that are never flagged,
    /// deleted rows and dropped partitions reach it only through `index build`.
    /// An undeclared channel is a usage error (exit 2) naming the declared ones.
    #[command(subcommand_required = true)]
    Index(index::Args),
    /// Find where a condition holds on a channel: `AVG|MIN|MAX|SUM(w) op X` or
    /// `RUN(op X, d)`.
    ///
    /// Per device, the rows of the channel with a numeric value, in time order, inside
    /// [--from, --to) (UTC). For `AGG(w) op X`, each row at time t opens the window of the
    /// rows with t <= time < t + w, however few it holds (before a gap, at the range's
    /// end); a window matches when its aggregate satisfies the condition; the answer is
    /// the union of the matching windows' spans (first to last row), merged where spans
    /// overlap or share a row. `RUN(op X, d)`: a maximal run of consecutive rows all
    /// satisfying `op X` whose span (last - first row time) is at least d; a value that
    /// is not a number breaks a run, and --max-gap breaks runs at longer gaps. Matches are
    /// ordered by device, then time.
    ///
    /// With a built feature index (`[[index.feature]]`, `recalcd index build`) only the
    /// buckets that could hold a match are read raw; the answer is exactly what a scan of
    /// every row gives. Rows still flagged, and buckets waiting to be recomputed, are read
    /// raw. Without an index the search scans and says so. The statistics (method, rows
    /// read of the rows in range, buckets read per level, time) go to stderr, or into the
    /// JSON. A malformed condition, an empty range, a window longer than the range, an
    /// indexed method on a channel without an index, or a channel that no index declares
    /// and no row holds: exit 2.
    Search(search::Args),
    /// Where a pattern occurs in one device's rows of a channel: the top-k
    /// non-overlapping windows by z-normalised (or plain Euclidean) distance, exact.
    ///
    /// The pattern is a CSV file (`--pattern`, one value per line or `time,value`) or a
    /// span of the same device (`--like FROM..TO`, whose own occurrence is not a match).
    /// Windows are rows in time order (non-numbers left out and counted); matches start
    /// at least `--exclusion` rows apart (default: the pattern length), chosen best
    /// first as `stumpy.match` does; ties by time. Computed with FFT distance profiles
    /// (MASS) in blocks, so memory stays bounded for any range. A pattern longer than
    /// the range, with fewer than 4 values or with non-numbers, `--k 0`, a file that is
    /// not CSV: exit 2.
    #[command(name = "match")]
    Match(match_::Args),
    /// Draw a channel of a device over a range as a line chart (PNG or SVG).
    ///
    /// The chart is pixel-identical to one drawn from every raw row of [--from, --to)
    /// (UTC; the time labels are in the device's zone): per pixel column it needs only
    /// the first, last, smallest and largest value (M4), which the feature index gives
    /// for every bucket lying in one column; only buckets straddling a column's edge,
    /// cut by the range, or not trusted (rows still flagged, buckets to recompute) are
    /// refined, down to raw rows. `--progressive DIR` writes the coarse-to-fine frames.
    /// Several channels (`--channel a,b`) get a panel each; `--where COND` shades a
    /// search's matches. A range without data draws an empty chart that says so (exit
    /// 0); an unknown channel or device, or a size or range beyond the limits: exit 2.
    Plot(plot::Args),
    /// The jobs whose series of a channel are nearest a given job (--job ID@START, left
    /// out of the answer) or series (--series FILE.csv), by z-normalised Euclidean
    /// distance (population σ; a constant series z-normalises to zeros) or, with
    /// --metric euclid, plain Euclidean distance. Each job's numbers are resampled
    /// linearly over time to the index's length (default 256); values that are not
    /// numbers are dropped and counted. The k nearest (--k, default 10), or with --within
    /// D every job at distance ≤ D (capped by --k only when given), nearest first, ties
    /// by device id then job start. With a built similarity index (`[[index.similarity]]`,
    /// `recalcd index build --kind similarity`) only jobs whose DFT lower bound could
    /// beat the answer are read; the answer is exactly a scan's. Without one it scans and
    /// says so in the statistics. With --approx the answer comes from the index's iSAX
    /// tree within a budget of examined series (--examine), and the statistics say
    /// whether it is proven exact. Bad input (--k 0, an unknown job, a file that is not
    /// a series CSV, fewer than 4 numbers, --approx with --metric euclid): exit 2.
    ///
    /// `--metric xcorr`: the kernelized cross-correlation distance (standardised series,
    /// Σ_k exp(γ·cc_k) over every circular lag, normalised; 0 for a circular shift, at
    /// most √2; γ is the index's `gamma`, default 5), answered exactly by the index's
    /// vantage-point tree (the statistics say how many distances it computed), or by a
    /// scan, which says so and how to build the index.
    Similar(similar::Args),
    /// Serve a read-only web view of the channels, and its JSON API, on `serve.listen`.
    ///
    /// The page (embedded: no network needed) picks a device, a channel and a range and
    /// draws the chart from the feature index's coarsest level at once, then refines it
    /// in place to the pixel-exact frame; drag across it to zoom; type a search
    /// condition to shade its matches; the address reproduces the view. The API
    /// (`/api/channels`, `/api/plot`, `/api/search`) is documented in docs/serve.md.
    /// With `serve.token` set, the API needs `Authorization: Bearer <token>`. Queries run
    /// on a pool of `serve.pool_size` connections; nothing is written. Prints
    /// `recalcd serve: listening on http://ADDR/` when ready; SIGTERM or SIGINT stops it.
    Serve(serve::Args),
}

/// A mistake in what the user asked for (beyond what clap checks): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(String);

/// A [`UsageError`] saying `message`.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// `e` marked as a usage error (exit code 2), under `what` (e.g. the option it came from);
/// the cause stays in the chain.
pub fn as_usage(e: anyhow::Error, what: impl Into<String>) -> anyhow::Error {
    e.context(UsageError(what.into()))
}

/// Parses the command line, runs the subcommand and turns its outcome into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Demo(args) => demo::run(args, &cli.global),
        Command::Eval(args) => eval::run(args, &cli.global),
        Command::Check(args) => check::run(args, &cli.global),
        Command::Equations(args) => equations::run(args, &cli.global),
        Command::Migrate(args) => migrate::run(args, &cli.global),
        Command::Status(args) => status::run(args, &cli.global),
        Command::Once(args) => once::run(args, &cli.global),
        Command::Run(args) => run::run(args, &cli.global),
        Command::Summary(args) => summary::run(args, &cli.global),
        Command::Reflag(args) => reflag::run(args, &cli.global),
        Command::Prune(args) => prune::run(args, &cli.global),
        Command::Healthcheck(args) => healthcheck::run(args, &cli.global),
        Command::Index(args) => index::run(args, &cli.global),
        Command::Search(args) => search::run(args, &cli.global),
        Command::Match(args) => match_::run(args, &cli.global),
        Command::Plot(args) => plot::run(args, &cli.global),
        Command::Similar(args) => similar::run(args, &cli.global),
        Command::Serve(args) => serve::run(args, &cli.global),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", cli.global.scrub(one_line(&e)));
            // `downcast_ref` also finds a context added with `as_usage`.
            let usage = e.downcast_ref::<UsageError>().is_some()
                || e.chain()
                    .any(|c| c.is::<ConfigError>() || c.is::<UsageError>());
            if usage {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The error and its causes on one line, skipping a cause its parent already printed
/// (the database driver repeats its cause in its own message).
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}
