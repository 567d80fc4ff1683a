//! `recalcd index build | list | drop | extend | rebuild --kind subsequence`: the
//! subsequence (sliding-window DFT) indexes' share of the index commands.

use std::process::ExitCode;
use std::time::Instant;

use recalcd::config::{Config, SubsequenceIndexConfig};
use recalcd::index::Micros;
use recalcd::service::window_index::build as build_boxes;
use recalcd::store::index::{Built, IndexStore, ALL_TIME};
use recalcd::store::subsequence::{mark_channel, SUBSEQUENCE};

/// The declared subsequence index of `channel`, or a usage error naming the declared
/// ones.
pub(super) fn declared<'a>(
    config: &'a Config,
    channel: &str,
) -> anyhow::Result<&'a SubsequenceIndexConfig> {
    config.index.subsequence(channel).ok_or_else(|| {
        super::super::usage(format!(
            "--channel {channel}: no subsequence index is declared for it; declared: {}",
            config.index.declared_subsequence()
        ))
    })
}

/// Builds the subsequence index of `decl` over `range` (`None`: every row), for device
/// `only` or all it covers; `fresh` drops a built one first.
pub(super) async fn build(
    config: &Config,
    decl: &SubsequenceIndexConfig,
    range: Option<(Micros, Micros)>,
    only: Option<i32>,
    fresh: bool,
) -> anyhow::Result<ExitCode> {
    if let Some(id) = only.filter(|id| !decl.covers(*id)) {
        return Err(super::super::usage(format!(
            "--id {id}: the subsequence index of `{}` does not cover device {id} ({})",
            decl.channel,
            decl.params_text()
        )));
    }
    let started = Instant::now();
    let report = build_boxes(config, decl, range, only, fresh).await?;
    if let Some(old) = &report.replaced {
        eprintln!(
            "note: the subsequence index of `{}` was built with {old} and is declared with {}: rebuilt it",
            decl.channel,
            decl.params_text()
        );
    }
    println!(
        "built the subsequence index of `{}` ({}): {} device(s), {}, {} values read, {} boxes written in {:.2} s",
        decl.channel,
        decl.params_text(),
        report.devices,
        range_text(report.built.range),
        report.values,
        report.boxes,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// `all rows` for an index built over all time, else as the feature index says it.
fn range_text(range: Option<(Micros, Micros)>) -> String {
    match range {
        Some(r) if r == ALL_TIME => "all rows".into(),
        other => super::range_text(other),
    }
}

/// The built columns of a `list` line of a subsequence index: range, size, stale (dirty
/// minutes waiting for `index build`), state.
pub(super) async fn fill(index: &IndexStore, b: &Built, line: &mut [String; 9], stale: u64) {
    line[4] = range_text(b.range);
    match index.subsequence_size(b).await {
        Ok(size) => {
            line[5] = match size.bytes {
                Some(bytes) => format!(
                    "{} boxes of {} windows, {}",
                    size.buckets,
                    size.points,
                    super::human_bytes(bytes)
                ),
                None => format!("{} boxes of {} windows", size.buckets, size.points),
            };
            line[7] = "-".into();
        }
        Err(e) => line[5] = format!("unknown ({e})"),
    }
    line[6] = if stale == 0 {
        "0".into()
    } else {
        format!("{stale} minutes (read raw until `index build`)")
    };
    line[8] = format!("built {}", b.built_at.format("%Y-%m-%d %H:%M:%S"));
}

/// The `list` lines of the declared subsequence indexes (`shown` collects the built
/// ones listed).
pub(super) async fn list_lines<'a>(
    config: &Config,
    index: &IndexStore,
    catalogue: &'a [Built],
    dirty: &[(String, u64)],
    shown: &mut Vec<&'a Built>,
) -> Vec<[String; 9]> {
    let mut lines = Vec::new();
    for decl in &config.index.subsequence {
        let key = decl.channel.to_lowercase();
        let built = catalogue
            .iter()
            .find(|b| b.kind == SUBSEQUENCE && b.channel == key);
        let mut line = super::declared_line(
            SUBSEQUENCE,
            &decl.channel,
            decl.params.to_string(),
            decl.devices.as_deref(),
        );
        if let Some(b) = built {
            shown.push(b);
            fill(index, b, &mut line, stale_of(dirty, &key)).await;
            if b.params != decl.params_text() {
                line[8] = format!(
                    "built with other parameters ({}) than declared: rebuild it",
                    b.params
                );
            }
        }
        lines.push(line);
    }
    lines
}

/// The dirty minutes of the subsequence index of `channel`.
pub(super) fn stale_of(dirty: &[(String, u64)], channel: &str) -> u64 {
    let mark = mark_channel(channel);
    dirty
        .iter()
        .find(|(c, _)| *c == mark)
        .map_or(0, |(_, n)| *n)
}
