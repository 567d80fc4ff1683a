//! `recalcd search`: where a condition holds on a channel (its description is on
//! [`super::Command::Search`]).

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use chrono::NaiveDateTime;
use recalcd::index::condition::Condition;
use recalcd::index::feature::write_length;
use recalcd::index::search::Method;
use recalcd::index::{micros, Micros};
/// Times as the search's output writes them (`match` and `similar` write them so too).
pub(super) use recalcd::service::search::stamp;
use recalcd::service::search::{level_name, search, Answer, Request};
use recalcd::store::index::IndexStore;
use recalcd::store::{self, Store};

use super::range::{parse_from, parse_to};
use super::GlobalArgs;

/// How matches are printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned table for people; the statistics on stderr.
    #[default]
    Table,
    /// CSV (`id,from,to`) with a header row; the statistics on stderr.
    Csv,
    /// One JSON object: `{"matches": [...], "stats": {...}}`.
    Json,
}

/// The engines, as the command line names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodArg {
    /// Let recalcd choose: filtering for MIN, MAX and RUN, fixed-interval for AVG and
    /// SUM, a scan where no index exists or the condition is unselective.
    #[default]
    Auto,
    /// Descend the index's levels from the coarsest, skipping what cannot match.
    Filtering,
    /// Judge the level closest to the window, merging adjacent buckets.
    Fixed,
    /// Read every row of the range.
    Scan,
}

impl From<MethodArg> for Method {
    fn from(m: MethodArg) -> Method {
        match m {
            MethodArg::Auto => Method::Auto,
            MethodArg::Filtering => Method::Filtering,
            MethodArg::Fixed => Method::Fixed,
            MethodArg::Scan => Method::Scan,
        }
    }
}

/// Arguments of `recalcd search`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The channel: a data-level `conjoined` name, raw or computed (case-insensitive).
    #[arg(long)]
    channel: String,
    /// Only this device (default: every device with rows in the range).
    #[arg(long, value_name = "N")]
    id: Option<i32>,
    /// Start of the range (inclusive), UTC: YYYY-MM-DDTHH:MM:SS[.ffffff], or a date
    /// for its midnight.
    #[arg(long, value_name = "T", value_parser = parse_from)]
    from: NaiveDateTime,
    /// End of the range (exclusive), UTC: YYYY-MM-DDTHH:MM:SS[.ffffff], or a date for
    /// the whole day (the next midnight), so `--to 2024-04-21` includes the 21st.
    #[arg(long, value_name = "T", value_parser = parse_to)]
    to: NaiveDateTime,
    /// The condition: `AVG(w) op X`, `MIN(w) op X`, `MAX(w) op X`, `SUM(w) op X` or
    /// `RUN(op X, d)`, with op one of `> >= < <=` and durations such as 500ms, 5s, 10m,
    /// 1h, 1d. Example: --where 'AVG(5m) > 1500'.
    #[arg(long = "where", value_name = "COND")]
    condition: String,
    /// For RUN only: a gap between rows longer than this breaks a run (e.g. 10s).
    #[arg(long, value_name = "D")]
    max_gap: Option<String>,
    /// The engine.
    #[arg(long, value_enum, default_value_t = MethodArg::Auto)]
    method: MethodArg,
    /// List at most N matches (the statistics still count all).
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Runs `recalcd search`.
pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    if args.to <= args.from {
        return Err(super::usage(format!(
            "--to {} is not after --from {}",
            stamp(micros(args.to)),
            stamp(micros(args.from))
        )));
    }
    let max_gap = args
        .max_gap
        .as_deref()
        .map(|g| {
            recalcd::duration::parse_micros(g)
                .and_then(|u| Micros::try_from(u).map_err(|_| format!("`{g}` is too long")))
                .map_err(|e| super::usage(format!("--max-gap: {e}")))
        })
        .transpose()?;
    let condition = Condition::parse(&args.condition)
        .and_then(|c| c.with_max_gap(max_gap))
        .map_err(|e| super::usage(format!("--where '{}': {e}", args.condition)))?;
    let config = global.load_config()?;
    super::init_logging(&config.log);
    let request = Request {
        channel: args.channel.clone(),
        id: args.id,
        range: (micros(args.from), micros(args.to)),
        condition,
        method: args.method.into(),
    };
    let declared = config.index.feature(&args.channel);
    let answer = super::runtime()?.block_on(async {
        let data = store::connect(&config).await?;
        data.check_schema().await?;
        let index = if declared.is_some() {
            match IndexStore::connect(&config).await {
                Ok(ix) => Some(ix),
                Err(e) => {
                    tracing::warn!(error = %e, "the index store cannot be reached: scanning");
                    None
                }
            }
        } else {
            None
        };
        search(
            &data,
            index.as_ref(),
            declared,
            &config.index.declared_channels(),
            &request,
        )
        .await
        .map_err(|e| {
            if e.is_usage() {
                super::usage(e.to_string())
            } else {
                anyhow::Error::new(e)
            }
        })
    })?;
    let elapsed_ms = started.elapsed().as_millis();
    if let Some(note) = &answer.note {
        eprintln!("note: {note}");
    }
    let shown = args.limit.unwrap_or(usize::MAX).min(answer.matches.len());
    match args.format {
        Format::Json => println!("{}", answer.to_json(shown, elapsed_ms)),
        Format::Csv => {
            print!("{}", csv(&answer, shown));
            eprintln!("{}", stats_line(&answer, shown, elapsed_ms));
        }
        Format::Table => {
            print!("{}", table(&answer, shown));
            eprintln!("{}", stats_line(&answer, shown, elapsed_ms));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn csv(a: &Answer, shown: usize) -> String {
    let mut out = String::from("id,from,to\n");
    for m in &a.matches[..shown] {
        let _ = writeln!(out, "{},{},{}", m.id, stamp(m.from), stamp(m.to));
    }
    out
}

fn table(a: &Answer, shown: usize) -> String {
    let mut out = String::new();
    if shown == 0 {
        out.push_str("no match\n");
        return out;
    }
    let _ = writeln!(out, "{:>6}  {:<26}  {:<26}  duration", "id", "from", "to");
    for m in &a.matches[..shown] {
        let mut d = String::new();
        let _ = write_length(&mut d, m.to - m.from);
        let _ = writeln!(
            out,
            "{:>6}  {:<26}  {:<26}  {}",
            m.id,
            stamp(m.from),
            stamp(m.to),
            if m.to == m.from { "0s" } else { &d }
        );
    }
    out
}

/// `3 matches (2 listed); method filtering; read 1,234 of 86,400 rows (1.43 %); buckets 1d:1 1h:24; 12 ms`.
fn stats_line(a: &Answer, shown: usize, elapsed_ms: u128) -> String {
    let mut s = format!("{} match(es)", a.matches.len());
    if shown < a.matches.len() {
        let _ = write!(s, " ({shown} listed)");
    }
    let share = if a.rows_in_range == 0 {
        0.0
    } else {
        100.0 * a.rows_read as f64 / a.rows_in_range as f64
    };
    let _ = write!(
        s,
        "; method {}; read {} of {} rows ({share:.2} %)",
        a.method, a.rows_read, a.rows_in_range
    );
    if !a.buckets_read.is_empty() {
        s.push_str("; buckets");
        for (l, n) in &a.buckets_read {
            let _ = write!(s, " {}:{n}", level_name(*l));
        }
    }
    let _ = write!(s, "; {elapsed_ms} ms");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_dates() {
        let t = parse_from("2024-04-20T10:00:05.250000").unwrap();
        assert_eq!(stamp(micros(t)), "2024-04-20T10:00:05.250000");
        assert_eq!(
            stamp(micros(parse_from("2024-04-20").unwrap())),
            "2024-04-20T00:00:00"
        );
        assert_eq!(
            stamp(micros(parse_to("2024-04-21").unwrap())),
            "2024-04-22T00:00:00"
        );
        assert!(parse_from("20.4.2024").unwrap_err().contains("YYYY-MM-DD"));
    }
}
