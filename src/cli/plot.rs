//! `recalcd plot`: a line chart of one or more channels of a device (its description is
//! on [`super::Command::Plot`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use chrono::{NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use recalcd::chart::{self, Chart, Layout, Panel};
use recalcd::index::condition::Condition;
use recalcd::index::feature::write_length;
use recalcd::index::m4::Columns;
use recalcd::index::search::Method;
use recalcd::index::{datetime, micros, Micros};
use recalcd::service::plot::{device_zone, plot, Frame, Plot, PlotRequest};
use recalcd::service::search::{search, Request};
use recalcd::store::index::IndexStore;
use recalcd::store::{self, Store};

use super::range::{parse_from, parse_to};
use super::GlobalArgs;

/// The tallest image.
const MAX_HEIGHT: u32 = 8_192;
/// The widest image (its plot area is the M4 width, within the service's limit).
const MAX_WIDTH: u32 = 8_192;
/// The most channels in one chart.
const MAX_CHANNELS: usize = 8;

/// Arguments of `recalcd plot`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The channel, or several separated by commas (one panel each): data-level
    /// `conjoined` names, raw or computed (case-insensitive).
    #[arg(long, value_name = "C[,C…]")]
    channel: String,
    /// The device.
    #[arg(long, value_name = "N")]
    id: i32,
    /// Start of the range (inclusive), UTC: YYYY-MM-DDTHH:MM:SS[.ffffff], or a date
    /// for its midnight.
    #[arg(long, value_name = "T", value_parser = parse_from)]
    from: NaiveDateTime,
    /// End of the range (exclusive), UTC: YYYY-MM-DDTHH:MM:SS[.ffffff], or a date for
    /// the whole day (the next midnight).
    #[arg(long, value_name = "T", value_parser = parse_to)]
    to: NaiveDateTime,
    /// Image width in pixels.
    #[arg(long, value_name = "PX", default_value_t = 1200)]
    width: u32,
    /// Image height in pixels.
    #[arg(long, value_name = "PX", default_value_t = 400)]
    height: u32,
    /// The chart's file: `.png` or `.svg`.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Also write one picture per refinement step into this folder
    /// (`frame-00.png`, … coarsest first, the last one exact).
    #[arg(long, value_name = "DIR")]
    progressive: Option<PathBuf>,
    /// Shade where this search condition holds (as `recalcd search --where`).
    #[arg(long = "where", value_name = "COND")]
    condition: Option<String>,
}

/// The picture format, from the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Png,
    Svg,
}

/// Runs `recalcd plot`.
pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let (from, to) = (micros(args.from), micros(args.to));
    if to <= from {
        return Err(super::usage(format!(
            "--to {} is not after --from {}",
            args.to, args.from
        )));
    }
    let channels: Vec<String> = args
        .channel
        .split(',')
        .map(|c| c.trim().to_string())
        .collect();
    if channels.iter().any(String::is_empty) {
        return Err(super::usage(format!(
            "--channel '{}': an empty channel name",
            args.channel
        )));
    }
    if channels.len() > MAX_CHANNELS {
        return Err(super::usage(format!(
            "--channel: {} channels; the limit is {MAX_CHANNELS}",
            channels.len()
        )));
    }
    if args.width > MAX_WIDTH || args.height > MAX_HEIGHT {
        return Err(super::usage(format!(
            "--width {} --height {}: the limit is {MAX_WIDTH} × {MAX_HEIGHT} px",
            args.width, args.height
        )));
    }
    let layout =
        Layout::new(args.width, args.height, channels.len() as u32).map_err(|(w, h)| {
            super::usage(format!(
            "--width {} --height {}: too small for {} panel(s); the limit is at least {w} × {h} px",
            args.width,
            args.height,
            channels.len()
        ))
        })?;
    let format = format_of(&args.out)?;
    let condition = args
        .condition
        .as_deref()
        .map(|c| {
            Condition::parse(c)
                .and_then(|c| c.with_max_gap(None))
                .map_err(|e| super::usage(format!("--where '{c}': {e}")))
        })
        .transpose()?;
    let config = global.load_config()?;
    super::init_logging(&config.log);
    let usage_or = |e: recalcd::service::plot::PlotFailure| {
        if e.is_usage() {
            super::usage(e.to_string())
        } else {
            anyhow::Error::new(e)
        }
    };
    let (plots, shades, zone) = super::runtime()?.block_on(async {
        let data = store::connect(&config).await?;
        data.check_schema().await?;
        let declared = channels.iter().any(|c| config.index.feature(c).is_some());
        let index = if declared {
            match IndexStore::connect(&config).await {
                Ok(ix) => Some(ix),
                Err(e) => {
                    tracing::warn!(error = %e, "the index store cannot be reached: raw rows");
                    None
                }
            }
        } else {
            None
        };
        let mut plots = Vec::with_capacity(channels.len());
        let mut shades = Vec::with_capacity(channels.len());
        for c in &channels {
            let req = PlotRequest {
                channel: c.clone(),
                id: args.id,
                range: (from, to),
                width: layout.columns,
            };
            plots.push(
                plot(&data, index.as_ref(), &config.index, &req, None)
                    .await
                    .map_err(usage_or)?,
            );
            let mut shade = Vec::new();
            if let Some(cond) = &condition {
                let request = Request {
                    channel: c.clone(),
                    id: Some(args.id),
                    range: (from, to),
                    condition: *cond,
                    method: Method::Auto,
                };
                let answer = search(
                    &data,
                    index.as_ref(),
                    config.index.feature(c),
                    &config.index.declared_channels(),
                    &request,
                )
                .await
                .map_err(|e| {
                    if e.is_usage() {
                        super::usage(format!("--where: {e}"))
                    } else {
                        anyhow::Error::new(e)
                    }
                })?;
                shade = answer.matches.iter().map(|m| (m.from, m.to)).collect();
            }
            shades.push(shade);
        }
        let zone = device_zone(&data, args.id, config.engine.default_zone).await?;
        anyhow::Ok((plots, shades, zone))
    })?;
    let cols = Columns::new(from, to, layout.columns)
        .ok_or_else(|| super::usage("the range or the width is empty"))?;
    for (c, p) in channels.iter().zip(&plots) {
        if let Some(note) = &p.note {
            eprintln!("note: {c}: {note}");
        }
    }
    let steps = plots.iter().map(|p| p.frames.len()).max().unwrap_or(0);
    let draw = |step: usize| -> Chart {
        let frames: Vec<&Frame> = plots
            .iter()
            .map(|p| &p.frames[step.min(p.frames.len() - 1)])
            .collect();
        chart_of(&Drawn {
            layout,
            cols: &cols,
            zone,
            id: args.id,
            channels: &channels,
            plots: &plots,
            frames: &frames,
            shades: &shades,
            steps,
        })
    };
    if let Some(dir) = &args.progressive {
        std::fs::create_dir_all(dir)
            .map_err(|e| super::usage(format!("--progressive {}: {e}", dir.display())))?;
        for step in 0..steps {
            let path = dir.join(format!(
                "frame-{step:02}.{}",
                if format == Format::Svg { "svg" } else { "png" }
            ));
            write(&path, format, &draw(step))?;
        }
    }
    let last = draw(steps.saturating_sub(1));
    write(&args.out, format, &last)?;
    let empty = last
        .panels
        .iter()
        .all(|p| p.columns.iter().all(Option::is_none));
    let (rows, buckets) = plots.iter().fold((0, 0), |(r, b), p| {
        let f = p.frames.last();
        (
            r + f.map_or(0, |f| f.rows_read),
            b + f.map_or(0, |f| f.buckets_read),
        )
    });
    eprintln!(
        "wrote {} ({} × {} px, {} column(s)){}; {steps} frame(s); read {rows} rows and {buckets} buckets; {} ms",
        args.out.display(),
        args.width,
        args.height,
        layout.columns,
        if empty { "; no data in this range" } else { "" },
        started.elapsed().as_millis()
    );
    Ok(ExitCode::SUCCESS)
}

fn format_of(path: &Path) -> anyhow::Result<Format> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("png") => Ok(Format::Png),
        Some("svg") => Ok(Format::Svg),
        _ => Err(super::usage(format!(
            "--out {}: the file must end in .png or .svg",
            path.display()
        ))),
    }
}

fn write(path: &Path, format: Format, chart: &Chart) -> anyhow::Result<()> {
    let bytes = match format {
        Format::Png => chart.render().to_png()?,
        Format::Svg => chart::svg::to_svg(chart).into_bytes(),
    };
    std::fs::write(path, bytes).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
}

/// What one picture shows.
struct Drawn<'a> {
    layout: Layout,
    cols: &'a Columns,
    zone: Tz,
    id: i32,
    channels: &'a [String],
    plots: &'a [Plot],
    frames: &'a [&'a Frame],
    shades: &'a [Vec<(Micros, Micros)>],
    steps: usize,
}

fn chart_of(d: &Drawn<'_>) -> Chart {
    let local = |t: Micros| {
        d.zone
            .from_utc_datetime(&datetime(t))
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    };
    let title = format!(
        "{} - device {} - {} to {} ({})",
        d.channels.join(", "),
        d.id,
        local(d.cols.from),
        local(d.cols.to),
        d.zone.name()
    );
    let step = d.frames.iter().map(|f| f.step).max().unwrap_or(0);
    let exact = d.frames.iter().all(|f| f.exact);
    let rows: u64 = d.frames.iter().map(|f| f.rows_read).sum();
    let buckets: u64 = d.frames.iter().map(|f| f.buckets_read).sum();
    let level = d
        .frames
        .iter()
        .filter_map(|f| f.level)
        .min()
        .map_or_else(|| "raw rows".to_string(), level_name);
    let status = format!(
        "step {}/{}: level {level}, {rows} rows and {buckets} buckets read{}",
        step + 1,
        d.steps,
        if exact {
            " - exact (M4 of every row)"
        } else {
            " - refining"
        }
    );
    let panels = d
        .channels
        .iter()
        .enumerate()
        .map(|(i, c)| Panel {
            label: match &d.plots[i].unit {
                Some(u) => format!("{c} ({u})"),
                None => c.clone(),
            },
            columns: d.frames[i].columns.clone(),
            shade: d.shades[i]
                .iter()
                .map(|&(a, b)| d.cols.overlapped(a, b.saturating_add(1)))
                .filter(|r| !r.is_empty())
                .collect(),
            empty: "no data in this range".into(),
            color: chart::SERIES[i % chart::SERIES.len()],
        })
        .collect();
    Chart {
        layout: d.layout,
        title,
        status,
        panels,
        ticks: chart::time_ticks(d.cols, d.zone, (d.layout.columns / 110).max(1) as usize),
    }
}

/// A level's length as the output names it (`1d`, `10m`).
fn level_name(l: Micros) -> String {
    let mut s = String::new();
    let _ = write_length(&mut s, l);
    s
}
