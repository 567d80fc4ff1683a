//! `recalcd match`: where a pattern occurs in a channel (its description is on
//! [`super::Command::Match`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use chrono::NaiveDateTime;
use recalcd::index::micros;
use recalcd::index::series;
use recalcd::index::subsequence::exact::Pattern;
use recalcd::index::subsequence::profile::{estimates, Profiler, Refine, DEFAULT_BLOCK};
use recalcd::index::subsequence::select::Selector;
use recalcd::index::subsequence::{check_pattern, Metric, Query, QueryError};
use recalcd::service::subsequence::{run as run_match, Answer, Method, PatternSource, Request};
use recalcd::store::index::IndexStore;
use recalcd::store::{self, Store};

use super::range::{parse_from, parse_to};
use super::search::{stamp, Format};
use super::GlobalArgs;

/// `--metric`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum MetricArg {
    /// Both sides z-normalised (population σ), then Euclidean.
    #[default]
    Znorm,
    /// Plain Euclidean distance of the raw values.
    Euclid,
}

/// `--method`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodArg {
    /// The window index where it applies, else the exact profile.
    #[default]
    Auto,
    /// The stored sliding-window DFT index (`[[index.subsequence]]`, built with `recalcd
    /// index build --kind subsequence`): Euclidean queries with --within and a pattern
    /// length a multiple of its window; otherwise says why and uses the profile.
    Index,
    /// The exact FFT distance profile (MASS).
    Profile,
}

/// Arguments of `recalcd match`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["pattern", "like"])))]
pub struct Args {
    /// The channel: a data-level `conjoined` name, raw or computed (case-insensitive).
    #[arg(long, required_unless_present = "series")]
    channel: Option<String>,
    /// The device.
    #[arg(long, value_name = "N", required_unless_present = "series")]
    id: Option<i32>,
    /// Start of the range (inclusive), UTC: YYYY-MM-DDTHH:MM:SS[.ffffff], or a date.
    #[arg(long, value_name = "T", value_parser = parse_from, required_unless_present = "series")]
    from: Option<NaiveDateTime>,
    /// End of the range (exclusive), UTC; a date alone includes that whole day.
    #[arg(long, value_name = "T", value_parser = parse_to, required_unless_present = "series")]
    to: Option<NaiveDateTime>,
    /// The pattern: a CSV file, one value per line (an optional header line) or
    /// `time,value` lines.
    #[arg(long, value_name = "FILE.csv")]
    pattern: Option<PathBuf>,
    /// The pattern is the device's own rows in this span, `FROM..TO` (times as for
    /// --from/--to); its own occurrence is not a match.
    #[arg(long, value_name = "FROM..TO")]
    like: Option<String>,
    /// At most N matches (default 5; with --within and no --k, every match within D).
    #[arg(long, value_name = "N")]
    k: Option<usize>,
    /// Only matches at distance ≤ D.
    #[arg(long, value_name = "D")]
    within: Option<f64>,
    /// Matches start at least M rows apart (default: the pattern length).
    #[arg(long, value_name = "M")]
    exclusion: Option<usize>,
    /// The distance.
    #[arg(long, value_enum, default_value_t = MetricArg::Znorm)]
    metric: MetricArg,
    /// The engine.
    #[arg(long, value_enum, default_value_t = MethodArg::Auto)]
    method: MethodArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Test only (the stumpy check script): match against the values of this file
    /// instead of the store; matches are printed by row number.
    #[arg(long, value_name = "FILE.csv", hide = true)]
    series: Option<PathBuf>,
    /// Test only, with --series: write MASS's distance profile here, one value a line.
    #[arg(long, value_name = "FILE", hide = true, requires = "series")]
    profile_out: Option<PathBuf>,
}

/// A series file's values, or a usage error naming the option and the file.
fn read_values(option: &str, path: &Path) -> anyhow::Result<Vec<f64>> {
    let text = std::fs::read(path)
        .map_err(|e| super::usage(format!("{option} {}: {e}", path.display())))?;
    let text = String::from_utf8(text).map_err(|_| {
        super::usage(format!(
            "{option} {}: not a CSV file (not UTF-8 text)",
            path.display()
        ))
    })?;
    let file = series::parse(&text)
        .map_err(|e| super::usage(format!("{option} {}: {e}", path.display())))?;
    Ok(file.values)
}

/// Runs `recalcd match`.
pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let metric = match args.metric {
        MetricArg::Znorm => Metric::ZNorm,
        MetricArg::Euclid => Metric::Euclid,
    };
    let k = match (args.k, args.within) {
        (Some(k), _) => Some(k),
        (None, Some(_)) => None,
        (None, None) => Some(5),
    };
    let pattern = args
        .pattern
        .as_deref()
        .map(|p| read_values("--pattern", p))
        .transpose()?;
    let m = pattern.as_ref().map(Vec::len);
    let query = |m: usize| Query {
        k,
        within: args.within,
        exclusion: args.exclusion.unwrap_or(m),
        metric,
    };
    let check = |q: &Query| {
        q.check().map_err(|e| {
            super::usage(match e {
                QueryError::ZeroK => "--k 0: at least 1 match must be asked for".to_string(),
                QueryError::ZeroExclusion => "--exclusion 0: must be at least 1 row".to_string(),
                QueryError::BadRadius(d) => format!("--within {d}: not a non-negative number"),
                e => e.to_string(),
            })
        })
    };
    if let Some(pattern) = &pattern {
        check_pattern(pattern).map_err(|e| super::usage(format!("--pattern: {e}")))?;
    }
    if let Some(path) = &args.series {
        let Some(pattern) = pattern else {
            return Err(super::usage("--series needs --pattern"));
        };
        let q = query(pattern.len());
        check(&q)?;
        return offline(&pattern, path, &q, args.profile_out.as_deref());
    }
    // clap requires these unless --series.
    let (Some(channel), Some(id), Some(from), Some(to)) =
        (args.channel, args.id, args.from, args.to)
    else {
        return Err(super::usage(
            "--channel, --id, --from and --to are required",
        ));
    };
    if to <= from {
        return Err(super::usage(format!(
            "--to {} is not after --from {}",
            stamp(micros(to)),
            stamp(micros(from))
        )));
    }
    let source = match (pattern, &args.like) {
        (Some(p), _) => PatternSource::Values(p),
        (None, Some(span)) => {
            let (a, b) = span
                .split_once("..")
                .ok_or_else(|| super::usage(format!("--like {span}: expected FROM..TO")))?;
            let a = parse_from(a).map_err(|e| super::usage(format!("--like: {e}")))?;
            let b = parse_to(b).map_err(|e| super::usage(format!("--like: {e}")))?;
            if b <= a {
                return Err(super::usage(format!("--like {span}: TO is not after FROM")));
            }
            PatternSource::Like(micros(a), micros(b))
        }
        (None, None) => return Err(super::usage("--pattern or --like is required")),
    };
    // The exclusion zone defaults to the pattern length, known once the span is read.
    let q = query(m.unwrap_or(4));
    check(&q)?;
    let request = Request {
        channel,
        id,
        range: (micros(from), micros(to)),
        pattern: source,
        query: Query {
            exclusion: args.exclusion.unwrap_or(0),
            ..q
        },
        method: match args.method {
            MethodArg::Auto => Method::Auto,
            MethodArg::Index => Method::Index,
            MethodArg::Profile => Method::Profile,
        },
    };
    let config = global.load_config()?;
    super::init_logging(&config.log);
    let answer = super::runtime()?.block_on(async {
        let data = store::connect(&config).await?;
        data.check_schema().await?;
        // Only a query the stored window index may answer needs the index database.
        let index = if request.method != Method::Profile
            && request.query.metric == Metric::Euclid
            && request.query.within.is_some()
        {
            match IndexStore::connect(&config).await {
                Ok(ix) => Some(ix),
                Err(e) => {
                    tracing::warn!(error = %e, "the index store cannot be reached: profiling");
                    None
                }
            }
        } else {
            None
        };
        run_match(&data, index.as_ref(), &request)
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
    match args.format {
        Format::Json => println!("{}", json(&answer, metric, elapsed_ms)),
        Format::Csv => {
            print!("{}", csv(&answer));
            eprintln!("{}", stats_line(&answer, elapsed_ms));
        }
        Format::Table => {
            print!("{}", table(&answer));
            eprintln!("{}", stats_line(&answer, elapsed_ms));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--series`: the matches by row number (and the profile) of a file's values.
fn offline(
    pattern: &[f64],
    path: &Path,
    query: &Query,
    profile_out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let values = read_values("--series", path)?;
    if values.len() < pattern.len() {
        return Err(super::usage(
            QueryError::LongPattern {
                m: pattern.len(),
                n: values.len(),
            }
            .to_string(),
        ));
    }
    let prepared = Pattern::new(pattern, query.metric);
    if let Some(out) = profile_out {
        let mut text = String::new();
        for d in estimates(prepared.clone(), &values, DEFAULT_BLOCK) {
            let _ = writeln!(text, "{d:.17e}");
        }
        std::fs::write(out, text)?;
    }
    let mut profiler = Profiler::new(prepared, DEFAULT_BLOCK);
    let mut refine = Refine {
        selector: Selector::new(query, false),
        refined: 0,
    };
    profiler.push(&values, &mut refine);
    profiler.finish(&mut refine);
    let refined = refine.refined;
    let matches: Vec<serde_json::Value> = refine
        .selector
        .finish(None)
        .iter()
        .map(|m| serde_json::json!({"start": m.start, "distance": m.distance}))
        .collect();
    println!(
        "{}",
        serde_json::json!({
            "matches": matches,
            "stats": {"method": "profile", "refined": refined, "total": profiler.windows},
        })
    );
    Ok(ExitCode::SUCCESS)
}

fn json(a: &Answer, metric: Metric, elapsed_ms: u128) -> String {
    a.to_json(metric, elapsed_ms).to_string()
}

fn csv(a: &Answer) -> String {
    let mut out = String::from("id,from,to,distance\n");
    for m in &a.matches {
        let _ = writeln!(
            out,
            "{},{},{},{}",
            m.id,
            stamp(m.from),
            stamp(m.to),
            m.distance
        );
    }
    out
}

fn table(a: &Answer) -> String {
    if a.matches.is_empty() {
        return "no match\n".to_string();
    }
    let mut out = format!("{:>6}  {:<26}  {:<26}  distance\n", "id", "from", "to");
    for m in &a.matches {
        let _ = writeln!(
            out,
            "{:>6}  {:<26}  {:<26}  {:.6}",
            m.id,
            stamp(m.from),
            stamp(m.to),
            m.distance
        );
    }
    out
}

/// `3 match(es); method profile; 1,020 of 86,145 windows recomputed; read 86,400 rows (2 not numbers); 12 ms`.
fn stats_line(a: &Answer, elapsed_ms: u128) -> String {
    format!(
        "{} match(es); method {}; {} of {} windows recomputed exactly; read {} rows ({} not \
         numbers) in {} ms; {elapsed_ms} ms",
        a.matches.len(),
        a.method,
        a.refined,
        a.total,
        a.rows_read,
        a.dropped,
        a.load_ms
    )
}
