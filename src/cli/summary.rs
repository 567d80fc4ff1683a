//! `recalcd summary`.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{NaiveDate, NaiveTime};
use recalcd::engine::summary::Summary;
use recalcd::lang::Value;
use recalcd::service::summary::summaries;
use recalcd::store::{self, Store, Unsettled};

use super::range::DateRange;
use super::status::printable;
use super::GlobalArgs;

/// How summaries are printed.
#[derive(Debug, Clone, Copy, Default, clap::ValueEnum)]
pub enum Format {
    /// An aligned table for people.
    #[default]
    Table,
    /// CSV with a header row, for programs.
    Csv,
    /// A JSON array of objects (`id` and every summary channel), for programs.
    Json,
}

/// Arguments of `recalcd summary` (its description is on [`super::Command::Summary`]).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub range: DateRange,
    /// Only this device.
    #[arg(long, value_name = "N")]
    pub id: Option<i32>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Runs `recalcd summary`.
pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let DateRange { from, to } = args.range.checked()?;
    let config = global.load_config()?;
    super::init_logging(&config.log);
    let (list, unsettled) = super::runtime()?.block_on(async {
        let store = store::connect(&config).await?;
        store.check_schema().await?;
        if let Some(id) = args.id {
            if !store.device_known(id).await? {
                return Err(super::usage(format!(
                    "--id {id}: the store knows no device {id} (no data, job or day rows, constants or equations)"
                )));
            }
        }
        let list = summaries(&store, &config.engine, from, to, args.id).await?;
        let start = from.and_time(NaiveTime::MIN);
        let end = (to + chrono::Duration::days(1)).and_time(NaiveTime::MIN);
        let unsettled = store.unsettled_between(start, end, args.id).await?;
        anyhow::Ok((list, unsettled))
    })?;
    for s in &list {
        for (name, why) in s.failures() {
            eprintln!(
                "device {}: '{}' could not be computed: {}",
                s.id,
                printable(name),
                printable(&why)
            );
        }
    }
    if let Some(note) = unsettled_note(&unsettled, from, to) {
        eprintln!("{note}");
    }
    if list.iter().all(|s| s.values.is_empty()) {
        eprintln!("no summary equations (types 6 and 7) apply to these devices");
    }
    print!("{}", render(&list, args.format));
    Ok(ExitCode::SUCCESS)
}

/// A warning when rows of the range are not computed (flagged, or failed at
/// `recalc = -1`): the summaries read what is stored, so they may not be final.
fn unsettled_note(unsettled: &[Unsettled], from: NaiveDate, to: NaiveDate) -> Option<String> {
    let parts: Vec<String> = unsettled
        .iter()
        .filter(|u| u.flagged > 0 || u.failed > 0)
        .map(|u| {
            format!(
                "{} rows: {} flagged, {} failed",
                u.level, u.flagged, u.failed
            )
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "note: rows between {from} and {to} are still flagged or failed ({}); the summaries \
             read what is stored and may change: run `recalcd once` (or let `recalcd run` \
             catch up), and see `recalcd status` for the failures",
            parts.join("; ")
        )
    })
}

/// The channel names of all summaries, in first-seen order.
fn columns(list: &[Summary]) -> Vec<Arc<str>> {
    let mut names: Vec<Arc<str>> = Vec::new();
    for s in list {
        for (name, _) in &s.values {
            if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                names.push(name.clone());
            }
        }
    }
    names
}

fn value_of<'a>(s: &'a Summary, name: &str) -> Option<&'a Value> {
    s.values
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// The summaries in `format`.
pub fn render(list: &[Summary], format: Format) -> String {
    let names = columns(list);
    match format {
        Format::Json => {
            let array: Vec<serde_json::Value> = list
                .iter()
                .map(|s| {
                    let mut obj = serde_json::Map::new();
                    obj.insert("id".into(), s.id.into());
                    for name in &names {
                        let v = value_of(s, name).map_or(serde_json::Value::Null, json);
                        obj.insert(name.to_string(), v);
                    }
                    serde_json::Value::Object(obj)
                })
                .collect();
            let mut text = serde_json::Value::Array(array).to_string();
            text.push('\n');
            text
        }
        Format::Csv => {
            let mut out = String::new();
            let header: Vec<String> = std::iter::once("id".to_owned())
                .chain(names.iter().map(|n| csv_field(n)))
                .collect();
            out.push_str(&header.join(","));
            out.push('\n');
            for s in list {
                let mut fields = vec![s.id.to_string()];
                fields.extend(
                    names.iter().map(|n| {
                        csv_field(&value_of(s, n).map(Value::to_string).unwrap_or_default())
                    }),
                );
                out.push_str(&fields.join(","));
                out.push('\n');
            }
            out
        }
        Format::Table => {
            let mut rows: Vec<Vec<String>> = vec![std::iter::once("id".to_owned())
                .chain(names.iter().map(|n| n.to_string()))
                .collect()];
            for s in list {
                let mut cells = vec![s.id.to_string()];
                cells.extend(names.iter().map(|n| match value_of(s, n) {
                    Some(Value::Empty(_)) | None => "-".to_owned(),
                    Some(v) => v.to_string(),
                }));
                rows.push(cells);
            }
            let widths: Vec<usize> = (0..rows[0].len())
                .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
                .collect();
            let mut out = String::new();
            for (i, r) in rows.iter().enumerate() {
                let line: Vec<String> = r
                    .iter()
                    .zip(&widths)
                    .map(|(cell, w)| format!("{cell:>w$}"))
                    .collect();
                let _ = writeln!(out, "{}", line.join("  ").trim_end());
                if i == 0 {
                    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
                    let _ = writeln!(out, "{}", rule.join("  "));
                }
            }
            out
        }
    }
}

fn json(v: &Value) -> serde_json::Value {
    match v {
        Value::Empty(_) => serde_json::Value::Null,
        Value::Num(n) => json_number(*n),
        Value::Str(s) => serde_json::Value::String(s.to_string()),
        Value::Nums(items) => items.iter().map(|n| json_number(*n)).collect(),
        Value::List(items) => items.iter().map(json).collect(),
    }
}

/// A number as JSON, whole numbers without a fraction (as recalcd writes them).
fn json_number(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        (n as i64).into()
    } else {
        serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, Into::into)
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}
