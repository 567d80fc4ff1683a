//! `recalcd index build | list | drop | extend | rebuild | cleanup`: the built indexes
//! over recalculated channels.

mod similarity;
mod subsequence;

use std::process::ExitCode;
use std::time::Instant;

use chrono::NaiveDate;
use indicatif::{ProgressBar, ProgressStyle};
use recalcd::config::{Config, FeatureIndexConfig};
use recalcd::index::feature::Levels;
use recalcd::index::{datetime, micros, Micros};
use recalcd::service::build::{build_feature, BuildEvent};
use recalcd::store::index::{Built, IndexStore, FEATURE};
use recalcd::store::{self, AnyStore, Store};

use super::GlobalArgs;

/// Arguments of `recalcd index`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: IndexCommand,
}

/// What to do with the indexes.
#[derive(Debug, clap::Subcommand)]
enum IndexCommand {
    /// Build (or rebuild) an index from the stored rows, with a progress bar.
    ///
    /// Reads the data rows of the channel device by device, one coarsest bucket (e.g.
    /// a day) at a time, and replaces the buckets of that span, reading the next spans
    /// meanwhile: memory stays at a few spans' rows whatever the range. Without --from/--to it builds the whole range
    /// of the stored rows; with them, the days from --from to --to (both inclusive,
    /// widened to whole coarsest buckets). An index built with other parameters (levels,
    /// devices) than declared is dropped and rebuilt over the given range. Rows a
    /// producer wrote without flagging them, deleted rows and dropped partitions reach
    /// the index only through this command.
    Build(BuildArgs),
    /// List every declared and built index: kind, channel, levels, devices, built
    /// range, size, staleness (buckets waiting to be recomputed) and values that are
    /// not numbers; a declared index not built, or built with other parameters than
    /// declared, says so.
    List,
    /// Drop a built index (its buckets and its catalogue record); the declaration in
    /// the configuration stays.
    Drop(DropArgs),
    /// Extend a built index over a new range of days (--from/--to, both inclusive),
    /// which must overlap the indexed range; the parameters stay those it was built
    /// with (an index declared with other parameters than built: use `rebuild`).
    Extend(ExtendArgs),
    /// Drop a built index and build it again over the whole stored range with the
    /// parameters now declared.
    Rebuild(DropArgs),
    /// Drop every built index of every kind, and its tables.
    Cleanup,
    /// Show one built index: its catalogue record, or with --tree the iSAX tree of a
    /// similarity index (rebuilt from the stored words), printed as the notebook does:
    /// `root`, then each node in preorder indented by depth (`--->` per level) with its
    /// word (per segment the symbol in binary at that segment's cardinality) and the
    /// number of jobs under it; the jobs (ID@START) at the leaves only.
    Show(ShowArgs),
}

/// `recalcd index show`.
#[derive(Debug, clap::Args)]
struct ShowArgs {
    /// The kind of index (default similarity: the kind with a tree).
    #[arg(long, value_enum, default_value = "similarity")]
    kind: Kind,
    /// The channel (case-insensitive).
    #[arg(long)]
    channel: String,
    /// Print the iSAX tree (similarity indexes).
    #[arg(long)]
    tree: bool,
    /// With --tree: only nodes down to this depth (the root's children are depth 1;
    /// default: the whole tree).
    #[arg(long, value_name = "N", requires = "tree")]
    max_depth: Option<usize>,
    /// Output format: `text` for people, `json` for programs.
    #[arg(long, value_enum, default_value = "text")]
    format: ShowFormat,
}

/// How `index show` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ShowFormat {
    /// Lines for people.
    Text,
    /// One JSON object.
    Json,
}

/// The kinds of index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Kind {
    /// Hierarchical time buckets with count, sum, sum of squares, min, max, first and
    /// last (`[[index.feature]]`).
    Feature,
    /// Whole matching of jobs: each job's series resampled, with its first DFT
    /// coefficients and its iSAX word (`[[index.similarity]]`).
    Similarity,
    /// Subsequence matching: every sliding window's first DFT coefficients, boxed a
    /// group of consecutive windows at a time (`[[index.subsequence]]`; `recalcd match
    /// --metric euclid --within D`).
    Subsequence,
}

/// `recalcd index extend`.
#[derive(Debug, clap::Args)]
struct ExtendArgs {
    /// The kind of index.
    #[arg(long, value_enum, default_value = "feature")]
    kind: Kind,
    /// The channel (case-insensitive).
    #[arg(long)]
    channel: String,
    /// First day of the new range (inclusive), YYYY-MM-DD.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = super::range::parse_date)]
    from: NaiveDate,
    /// Last day of the new range (inclusive), YYYY-MM-DD.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = super::range::parse_date)]
    to: NaiveDate,
}

/// `recalcd index build`.
#[derive(Debug, clap::Args)]
struct BuildArgs {
    /// The kind of index (needed only where one channel has indexes of several kinds).
    #[arg(long, value_enum, default_value = "feature")]
    kind: Kind,
    /// The channel, as declared in `[[index.feature]]`, `[[index.similarity]]` or
    /// `[[index.subsequence]]` (case-insensitive).
    #[arg(long)]
    channel: String,
    /// Only this device.
    #[arg(long, value_name = "N")]
    id: Option<i32>,
    /// First day to build (inclusive), YYYY-MM-DD; with --to.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = super::range::parse_date, requires = "to")]
    from: Option<NaiveDate>,
    /// Last day to build (inclusive), YYYY-MM-DD; with --from.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = super::range::parse_date, requires = "from")]
    to: Option<NaiveDate>,
}

/// `recalcd index drop`.
#[derive(Debug, clap::Args)]
struct DropArgs {
    /// The kind of index.
    #[arg(long, value_enum, default_value = "feature")]
    kind: Kind,
    /// The channel (case-insensitive).
    #[arg(long)]
    channel: String,
}

/// Runs `recalcd index …`.
pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let config = global.load_config()?;
    super::init_logging(&config.log);
    match args.command {
        IndexCommand::Build(a) => build_index(a, &config),
        IndexCommand::List => list(&config),
        IndexCommand::Drop(a) => drop_index(a, &config),
        IndexCommand::Extend(a) => extend(a, &config),
        IndexCommand::Rebuild(a) => rebuild(a, &config),
        IndexCommand::Cleanup => cleanup(&config),
        IndexCommand::Show(a) => show(a, &config),
    }
}

/// Days `from` to `to` (inclusive) as `[from 00:00, to + 1 day 00:00)`.
fn day_span(from: NaiveDate, to: NaiveDate) -> anyhow::Result<(Micros, Micros)> {
    if from > to {
        return Err(super::usage(format!("--from {from} is after --to {to}")));
    }
    Ok((
        micros(from.and_time(chrono::NaiveTime::MIN)),
        micros(to.and_time(chrono::NaiveTime::MIN)) + recalcd::index::DAY,
    ))
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Feature => FEATURE,
        Kind::Similarity => recalcd::store::similarity::SIMILARITY,
        Kind::Subsequence => recalcd::store::subsequence::SUBSEQUENCE,
    }
}

fn extend(args: ExtendArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let (a, b) = day_span(args.from, args.to)?;
    let kind = kind_name(args.kind);
    let built = super::runtime()?.block_on(async {
        let index = IndexStore::connect(config).await?;
        anyhow::Ok(index.built_kind(kind, &args.channel).await?)
    })?;
    let Some(built) = built else {
        return Err(super::usage(format!(
            "--channel {}: no {kind} index is built for it: build one with `recalcd index build --kind {kind} --channel {}`",
            args.channel, args.channel
        )));
    };
    let Some((f, t)) = built.range else {
        return Err(super::usage(format!(
            "--channel {}: the {kind} index is built over no range yet: use `recalcd index build`",
            args.channel
        )));
    };
    if !(a < t && f < b) {
        return Err(super::usage(format!(
            "--from {} --to {}: the new range must overlap the indexed one ({} .. {})",
            args.from,
            args.to,
            datetime(f).format("%Y-%m-%d %H:%M"),
            datetime(t).format("%Y-%m-%d %H:%M")
        )));
    }
    let declared_params = match args.kind {
        Kind::Feature => declared(config, &args.channel)?.params(),
        Kind::Similarity => similarity::declared(config, &args.channel)?.params_text(),
        Kind::Subsequence => subsequence::declared(config, &args.channel)?.params_text(),
    };
    if built.params != declared_params {
        return Err(super::usage(format!(
            "--channel {}: built with {} but declared with {declared_params}: use `recalcd index rebuild`",
            args.channel, built.params,
        )));
    }
    match args.kind {
        Kind::Feature => build_index(
            BuildArgs {
                kind: args.kind,
                channel: args.channel,
                id: None,
                from: Some(args.from),
                to: Some(args.to),
            },
            config,
        ),
        Kind::Similarity => {
            let decl = similarity::declared(config, &args.channel)?;
            super::runtime()?.block_on(similarity::build(config, decl, Some((a, b)), None, false))
        }
        Kind::Subsequence => {
            let decl = subsequence::declared(config, &args.channel)?;
            super::runtime()?.block_on(subsequence::build(config, decl, Some((a, b)), None, false))
        }
    }
}

fn rebuild(args: DropArgs, config: &Config) -> anyhow::Result<ExitCode> {
    match args.kind {
        Kind::Feature => {
            declared(config, &args.channel)?;
            super::runtime()?.block_on(async {
                let mut index = IndexStore::connect(config).await?;
                index.drop_index(&args.channel).await?;
                anyhow::Ok(())
            })?;
            build_index(
                BuildArgs {
                    kind: args.kind,
                    channel: args.channel,
                    id: None,
                    from: None,
                    to: None,
                },
                config,
            )
        }
        Kind::Similarity => {
            let decl = similarity::declared(config, &args.channel)?;
            super::runtime()?.block_on(similarity::build(config, decl, None, None, true))
        }
        Kind::Subsequence => {
            let decl = subsequence::declared(config, &args.channel)?;
            super::runtime()?.block_on(subsequence::build(config, decl, None, None, true))
        }
    }
}

fn cleanup(config: &Config) -> anyhow::Result<ExitCode> {
    super::runtime()?.block_on(async {
        let mut index = IndexStore::connect(config).await?;
        let catalogue = index.catalogue().await?;
        for b in &catalogue {
            index.drop_built(b).await?;
            println!(
                "dropped the {} index of `{}` ({})",
                b.kind, b.channel, b.bucket_table
            );
        }
        println!("{} index(es) dropped", catalogue.len());
        Ok(ExitCode::SUCCESS)
    })
}

/// The declared feature index of `channel`, or a usage error naming the declared ones.
fn declared<'a>(config: &'a Config, channel: &str) -> anyhow::Result<&'a FeatureIndexConfig> {
    config.index.feature(channel).ok_or_else(|| {
        super::usage(format!(
            "--channel {channel}: no feature index is declared for it; declared: {}",
            config.index.declared_channels()
        ))
    })
}

async fn open(config: &Config) -> anyhow::Result<(AnyStore, IndexStore)> {
    let data = store::connect(config).await?;
    data.check_schema().await?;
    let index = IndexStore::connect(config).await?;
    Ok((data, index))
}

fn build_index(args: BuildArgs, config: &Config) -> anyhow::Result<ExitCode> {
    if args.kind == Kind::Subsequence {
        let decl = subsequence::declared(config, &args.channel)?;
        let range = match (args.from, args.to) {
            (Some(f), Some(t)) => Some(day_span(f, t)?),
            _ => None,
        };
        return super::runtime()?.block_on(subsequence::build(config, decl, range, args.id, false));
    }
    if args.kind == Kind::Similarity {
        let decl = similarity::declared(config, &args.channel)?;
        if let Some(id) = args.id {
            if !decl.covers(id) {
                return Err(super::usage(format!(
                    "--id {id}: the similarity index of `{}` does not cover device {id} ({})",
                    decl.channel,
                    decl.params_text()
                )));
            }
        }
        let range = match (args.from, args.to) {
            (Some(f), Some(t)) => Some(day_span(f, t)?),
            _ => None,
        };
        return super::runtime()?.block_on(similarity::build(config, decl, range, args.id, false));
    }
    let decl = declared(config, &args.channel)?;
    if let Some(id) = args.id {
        if !decl.covers(id) {
            return Err(super::usage(format!(
                "--id {id}: the index of `{}` covers only devices {}",
                decl.channel,
                decl.params().split("devices=").nth(1).unwrap_or("")
            )));
        }
    }
    let levels = decl.levels.clone();
    let coarse = levels.length(0);
    let range = match (args.from, args.to) {
        (Some(from), Some(to)) => {
            if from > to {
                return Err(super::usage(format!("--from {from} is after --to {to}")));
            }
            let a = micros(from.and_time(chrono::NaiveTime::MIN));
            let b = micros(to.and_time(chrono::NaiveTime::MIN)) + recalcd::index::DAY;
            Some((
                levels.bucket_start(0, a),
                levels.bucket_start(0, b - 1) + coarse,
            ))
        }
        _ => None,
    };
    super::runtime()?.block_on(async {
        let started = Instant::now();
        let mut bar: Option<ProgressBar> = None;
        let report = build_feature(config, decl, range, args.id, &mut |event| match event {
            BuildEvent::Rebuilding { built, declared } => eprintln!(
                "note: the index of `{}` was built with {built} and is declared with {declared}: rebuilding it",
                decl.channel
            ),
            BuildEvent::Planned { spans } => bar = Some(progress(spans, &decl.channel, &levels)),
            BuildEvent::SpanDone { id, values } => {
                if let Some(bar) = &bar {
                    bar.inc(1);
                    bar.set_message(format!("device {id}, {values} values"));
                }
            }
        })
        .await?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        println!(
            "built the feature index of `{}` ({}): {} device(s), {}, {} values read, {} buckets written in {:.2} s",
            decl.channel,
            levels,
            report.devices,
            range_text(report.range),
            report.values,
            report.buckets,
            started.elapsed().as_secs_f64()
        );
        Ok(ExitCode::SUCCESS)
    })
}

fn progress(total: u64, channel: &str, levels: &Levels) -> ProgressBar {
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ProgressBar::new(total)
    } else {
        ProgressBar::hidden()
    };
    let style = ProgressStyle::with_template(
        "{prefix} [{bar:40}] {pos}/{len} spans, {elapsed} ({eta} left) {msg}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(format!("indexing {channel} ({levels})"));
    bar
}

/// `2024-04-01 .. 2024-04-30` (the last day included), or `nothing built`.
fn range_text(range: Option<(Micros, Micros)>) -> String {
    match range {
        Some((a, b)) if a < b => {
            let day = |t: Micros| datetime(t).format("%Y-%m-%d %H:%M").to_string();
            format!("{} .. {}", day(a), day(b))
        }
        _ => "nothing built".into(),
    }
}

fn show(args: ShowArgs, config: &Config) -> anyhow::Result<ExitCode> {
    if args.max_depth == Some(0) {
        return Err(super::usage(
            "--max-depth 0: the root's children are depth 1",
        ));
    }
    let kind = kind_name(args.kind);
    if args.tree && args.kind != Kind::Similarity {
        return Err(super::usage(format!(
            "--tree: only a similarity index has a tree (not a {kind} index); use --kind similarity"
        )));
    }
    super::runtime()?.block_on(async {
        let (data, index) = open(config).await?;
        let key = args.channel.to_lowercase();
        let Some(built) = index.built_kind(kind, &key).await? else {
            return Err(super::usage(format!(
                "--channel {}: no {kind} index of it is built (build it with `recalcd index build --kind {kind} --channel {}`)",
                args.channel, args.channel
            )));
        };
        let json = args.format == ShowFormat::Json;
        if args.tree {
            return similarity::show_tree(&data, &index, &built, args.max_depth, json).await;
        }
        let range = range_text(built.range);
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "kind": built.kind,
                    "channel": built.channel,
                    "params": built.params,
                    "table": built.bucket_table,
                    "range": range,
                    "built_at": built.built_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    "points": built.points,
                    "not_numbers": built.other,
                })
            );
        } else {
            println!("kind:        {}", built.kind);
            println!("channel:     {}", built.channel);
            println!("parameters:  {}", built.params);
            println!("table:       {}", built.bucket_table);
            println!("range:       {range}");
            println!("built at:    {}", built.built_at.format("%Y-%m-%d %H:%M:%S"));
            println!("numbers:     {}", built.points);
            println!("not numbers: {}", built.other);
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn list(config: &Config) -> anyhow::Result<ExitCode> {
    super::runtime()?.block_on(async {
        let (data, index) = open(config).await?;
        let catalogue = index.catalogue().await?;
        let dirty = data.dirty_counts().await?;
        let mut lines = vec![[
            "kind".to_string(),
            "channel".into(),
            "levels".into(),
            "devices".into(),
            "range".into(),
            "size".into(),
            "stale".into(),
            "not numbers".into(),
            "state".into(),
        ]];
        let stale = |channel: &str| {
            dirty
                .iter()
                .find(|(c, _)| c == channel)
                .map_or(0, |(_, n)| *n)
        };
        let mut shown: Vec<&Built> = Vec::new();
        for decl in &config.index.feature {
            let key = decl.channel.to_lowercase();
            let built = catalogue
                .iter()
                .find(|b| b.kind == FEATURE && b.channel == key);
            let mut line = declared_line(
                FEATURE,
                &decl.channel,
                decl.levels.to_string(),
                decl.devices.as_deref(),
            );
            if let Some(b) = built {
                shown.push(b);
                fill(&index, b, &mut line, stale(&key)).await?;
                if b.params != decl.params() {
                    line[8] = format!(
                        "built with other parameters ({}) than declared: rebuild it",
                        b.params
                    );
                }
            }
            lines.push(line);
        }
        lines.extend(similarity::list_lines(config, &index, &catalogue, &dirty, &mut shown).await);
        lines.extend(subsequence::list_lines(config, &index, &catalogue, &dirty, &mut shown).await);
        for b in catalogue.iter().filter(|b| !shown.contains(b)) {
            let mut line = [
                b.kind.clone(),
                b.channel.clone(),
                b.params.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "built, not declared (drop it with `recalcd index drop`)".into(),
            ];
            if b.kind == recalcd::store::subsequence::SUBSEQUENCE {
                subsequence::fill(&index, b, &mut line, subsequence::stale_of(&dirty, &b.channel)).await;
                line[8] = "built, not declared (drop it with `recalcd index drop --kind subsequence`)".into();
            } else if b.kind == recalcd::store::similarity::SIMILARITY {
                let mark = recalcd::store::similarity::mark_channel(&b.channel);
                similarity::fill(&index, b, &mut line, stale(&mark)).await;
                line[8] = "built, not declared (drop it with `recalcd index drop --kind similarity`)".into();
            } else {
                fill(&index, b, &mut line, stale(&b.channel)).await?;
            }
            lines.push(line);
        }
        if lines.len() == 1 {
            println!(
                "no index declared or built (declare one with [[index.feature]], [[index.similarity]] or [[index.subsequence]] in the configuration)"
            );
            return Ok(ExitCode::SUCCESS);
        }
        print_table(&lines);
        Ok(ExitCode::SUCCESS)
    })
}

/// Fills the built columns of a `list` line.
async fn fill(
    index: &IndexStore,
    b: &Built,
    line: &mut [String; 9],
    stale: u64,
) -> anyhow::Result<()> {
    line[4] = range_text(b.range);
    match index.size(b).await {
        Ok(size) => {
            line[3] = if line[3] == "-" {
                let d = index.devices(b).await?;
                d.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
            } else {
                line[3].clone()
            };
            line[5] = match size.bytes {
                Some(bytes) => format!("{} buckets, {}", size.buckets, human_bytes(bytes)),
                None => format!("{} buckets", size.buckets),
            };
            line[7] = size.other.to_string();
        }
        Err(e) => line[5] = format!("unknown ({e})"),
    }
    line[6] = if stale == 0 {
        "0".into()
    } else {
        format!("{stale} buckets")
    };
    line[8] = "built".into();
    Ok(())
}

/// The `index list` line of a declared index, as if not built (`fill` completes it).
fn declared_line(
    kind: &str,
    channel: &str,
    params: String,
    devices: Option<&[i32]>,
) -> [String; 9] {
    let devices = devices.map_or("all".to_string(), |d| {
        d.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
    });
    [
        kind.to_string(),
        channel.to_string(),
        params,
        devices,
        "-".into(),
        "-".into(),
        "-".into(),
        "-".into(),
        "declared, not built".into(),
    ]
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn print_table(lines: &[[String; 9]]) {
    let mut widths = [0usize; 9];
    for l in lines {
        for (w, c) in widths.iter_mut().zip(l) {
            *w = (*w).max(c.chars().count());
        }
    }
    for l in lines {
        let mut out = String::new();
        for (i, (c, w)) in l.iter().zip(widths).enumerate() {
            if i + 1 == l.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    }
}

fn drop_index(args: DropArgs, config: &Config) -> anyhow::Result<ExitCode> {
    if args.kind != Kind::Feature {
        let kind = kind_name(args.kind);
        let (declared, names) = match args.kind {
            Kind::Similarity => (
                config.index.similarity(&args.channel).is_some(),
                config.index.declared_similarity(),
            ),
            _ => (
                config.index.subsequence(&args.channel).is_some(),
                config.index.declared_subsequence(),
            ),
        };
        return super::runtime()?.block_on(async {
            let mut index = IndexStore::connect(config).await?;
            match index.built_kind(kind, &args.channel).await? {
                Some(b) => {
                    index.drop_built(&b).await?;
                    println!("dropped the {kind} index of `{}`", args.channel);
                }
                None if !declared => {
                    return Err(super::usage(format!(
                    "--channel {}: no {kind} index is declared or built for it; declared: {names}",
                    args.channel,
                )))
                }
                None => println!(
                    "the {kind} index of `{}` is not built: nothing to drop",
                    args.channel
                ),
            }
            Ok(ExitCode::SUCCESS)
        });
    }
    super::runtime()?.block_on(async {
        let mut index = IndexStore::connect(config).await?;
        let built = index.built(&args.channel).await?;
        if built.is_none() && config.index.feature(&args.channel).is_none() {
            return Err(super::usage(format!(
                "--channel {}: no feature index is declared or built for it; declared: {}",
                args.channel,
                config.index.declared_channels()
            )));
        }
        if index.drop_index(&args.channel).await? {
            println!("dropped the feature index of `{}`", args.channel);
        } else {
            println!(
                "the feature index of `{}` is not built: nothing to drop",
                args.channel
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}
