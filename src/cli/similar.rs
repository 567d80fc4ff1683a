//! `recalcd similar`: the jobs most like a given job or series (its description is on
//! [`super::Command::Similar`]).

use std::process::ExitCode;

use chrono::NaiveDateTime;
use recalcd::index::micros;
use recalcd::index::similarity::{Key, Metric, Query};
use recalcd::service::search::stamp;
use recalcd::service::similar::xcorr::similar_xcorr;
use recalcd::service::similar::{parse_job, similar, Answer, Request, Target};
use recalcd::service::similar_approx::{similar_approx, ApproxAnswer, DEFAULT_EXAMINE};
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
    /// CSV (`id,job,distance`) with a header row; the statistics on stderr.
    Csv,
    /// One JSON object: `{"matches": [...], "stats": {...}}`.
    Json,
}

/// The distances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum MetricArg {
    /// Euclidean distance of the z-normalised series (population σ).
    #[default]
    Znorm,
    /// Plain Euclidean distance.
    Euclid,
    /// Kernelized cross-correlation distance: blind to circular shifts, in [0, √2]
    /// (gamma from the index's `gamma`, default 5); answered exactly by the index's
    /// vantage-point tree, or by a scan without it.
    Xcorr,
}

/// Arguments of `recalcd similar`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The channel: a data-level `conjoined` name (case-insensitive).
    #[arg(long)]
    channel: String,
    /// The job to compare with: device id and job start, ID@YYYY-MM-DDTHH:MM:SS[.ffffff].
    #[arg(long, value_name = "ID@START", value_parser = parse_job, conflicts_with = "series", required_unless_present = "series")]
    job: Option<Key>,
    /// A series file to compare with: one value per line (an optional header line), or
    /// `time,value` lines.
    #[arg(long, value_name = "FILE.csv")]
    series: Option<std::path::PathBuf>,
    /// The k nearest jobs (default 10; with --within, a cap only when given).
    #[arg(long, value_name = "N")]
    k: Option<usize>,
    /// Every job at a distance ≤ D.
    #[arg(long, value_name = "D")]
    within: Option<f64>,
    /// The distance.
    #[arg(long, value_enum, default_value_t = MetricArg::Znorm)]
    metric: MetricArg,
    /// Only jobs of this device.
    #[arg(long, value_name = "N")]
    id: Option<i32>,
    /// Only jobs starting at or after T (UTC; a date for its midnight).
    #[arg(long, value_name = "T", value_parser = parse_from)]
    from: Option<NaiveDateTime>,
    /// Only jobs starting before T (UTC; a date for the next midnight).
    #[arg(long, value_name = "T", value_parser = parse_to)]
    to: Option<NaiveDateTime>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Answer from the iSAX tree (approximate, z-normalised distance only): leaves in
    /// order of their lower bound, the true distance of each series in them, until the
    /// budget (--examine) is spent or no leaf can do better (then the answer is proven
    /// exact; the statistics say which). Without a built index it answers exactly by a
    /// scan and says so.
    #[arg(long)]
    approx: bool,
    /// With --approx: series to examine (compute the distance of) before stopping
    /// (default 5000; 0: no limit, until the answer is proven exact). A k-NN search
    /// always goes on until it holds k matches.
    #[arg(long, value_name = "N", requires = "approx")]
    examine: Option<usize>,
}

/// Runs `recalcd similar`.
pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    if args.k == Some(0) {
        return Err(super::usage("--k 0: ask for at least one match"));
    }
    if let Some(d) = args.within {
        if !d.is_finite() || d < 0.0 {
            return Err(super::usage(format!(
                "--within {d}: a distance is a number ≥ 0"
            )));
        }
    }
    let range = match (args.from, args.to) {
        (None, None) => None,
        (from, to) => {
            let (a, b) = (
                from.map_or(recalcd::store::index::ALL_TIME.0, micros),
                to.map_or(recalcd::store::index::ALL_TIME.1, micros),
            );
            if b <= a {
                return Err(super::usage(format!(
                    "--to {} is not after --from {}",
                    stamp(b),
                    stamp(a)
                )));
            }
            Some((a, b))
        }
    };
    let target = match (&args.job, &args.series) {
        (Some(k), _) => Target::Job(*k),
        (None, Some(path)) => {
            let text = std::fs::read(path).map_err(|e| {
                super::usage(format!("--series {}: cannot be read ({e})", path.display()))
            })?;
            let text = String::from_utf8(text).map_err(|_| {
                super::usage(format!(
                    "--series {}: not a CSV text file (not UTF-8)",
                    path.display()
                ))
            })?;
            let file = recalcd::index::series::parse(&text).map_err(|e| {
                super::usage(format!(
                    "--series {}: not a series CSV: {e}",
                    path.display()
                ))
            })?;
            Target::Series(file)
        }
        (None, None) => return Err(super::usage("give --job ID@START or --series FILE.csv")),
    };
    let query = Query {
        metric: match args.metric {
            MetricArg::Znorm => Metric::ZNorm,
            MetricArg::Euclid => Metric::Euclid,
            // Not read: `similar_xcorr` has its own distance.
            MetricArg::Xcorr => Metric::default(),
        },
        k: match (args.k, args.within) {
            (Some(k), _) => Some(k),
            (None, Some(_)) => None,
            (None, None) => Some(10),
        },
        within: args.within,
    };
    let config = global.load_config()?;
    super::init_logging(&config.log);
    let request = Request {
        channel: args.channel.clone(),
        target,
        query,
        id: args.id,
        range,
    };
    let answer = super::runtime()?.block_on(async {
        let data = store::connect(&config).await?;
        data.check_schema().await?;
        let index = match IndexStore::connect(&config).await {
            Ok(ix) => Some(ix),
            Err(e) => {
                tracing::warn!(error = %e, "the index store cannot be reached: scanning");
                None
            }
        };
        let answer = if args.approx {
            let examine = match args.examine {
                Some(0) => None,
                Some(n) => Some(n),
                None => Some(DEFAULT_EXAMINE),
            };
            similar_approx(&config, &data, index.as_ref(), &request, examine)
                .await
                .map(|a| (a.answer.clone(), Some(a)))
        } else if args.metric == MetricArg::Xcorr {
            similar_xcorr(&config, &data, index.as_ref(), &request)
                .await
                .map(|a| (a, None))
        } else {
            similar(&config, &data, index.as_ref(), &request)
                .await
                .map(|a| (a, None))
        };
        answer.map_err(|e| {
            if e.is_usage() {
                super::usage(e.to_string())
            } else {
                anyhow::Error::new(e)
            }
        })
    })?;
    let (answer, approx) = answer;
    if let Some(why) = &answer.why {
        if approx.is_some() {
            eprintln!("note: answered exactly, not from the iSAX tree: {why}");
        } else {
            eprintln!("note: scanning: {why}");
        }
    }
    match args.format {
        Format::Json => println!("{}", json(&answer, approx.as_ref())),
        Format::Csv => {
            println!("id,job,distance");
            for m in &answer.matches {
                println!("{},{},{}", m.key.id, stamp(m.key.start), m.distance);
            }
            eprintln!("{}", stats_line(&answer, approx.as_ref()));
        }
        Format::Table => {
            let mut lines = vec![["id".to_string(), "job".into(), "distance".into()]];
            for m in &answer.matches {
                lines.push([
                    m.key.id.to_string(),
                    stamp(m.key.start),
                    format!("{:.6}", m.distance),
                ]);
            }
            let w: Vec<usize> = (0..3)
                .map(|i| lines.iter().map(|l| l[i].len()).max().unwrap_or(0))
                .collect();
            for l in &lines {
                println!(
                    "{:>w0$}  {:<w1$}  {:>w2$}",
                    l[0],
                    l[1],
                    l[2],
                    w0 = w[0],
                    w1 = w[1],
                    w2 = w[2]
                );
            }
            eprintln!("{}", stats_line(&answer, approx.as_ref()));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn stats_line(a: &Answer, approx: Option<&ApproxAnswer>) -> String {
    let distances = a
        .distances
        .map_or(String::new(), |d| format!(" ({d} distance(s) computed)"));
    let mut line = format!(
        "{} match(es); method {}; {} candidate(s), {} refined of {} job(s){distances}; {} value(s) not numbers dropped; index load {} ms, {} ms in all",
        a.matches.len(),
        a.method_text(),
        a.candidates,
        a.refined,
        a.total,
        a.dropped,
        a.load_ms,
        a.elapsed_ms
    );
    if let Some(x) = approx {
        line.push_str(&format!(
            "; examined {} series in {} leaf(s) (tree built in {} ms); {}",
            x.examined,
            x.leaves,
            x.tree_ms,
            if x.exact {
                "the answer is proven exact"
            } else {
                "the answer is approximate (raise --examine, or 0 for no limit)"
            }
        ));
    }
    line
}

fn json(a: &Answer, approx: Option<&ApproxAnswer>) -> String {
    approx
        .map_or_else(|| a.to_json(), ApproxAnswer::to_json)
        .to_string()
}
