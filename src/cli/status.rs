//! `recalcd status`.

use std::fmt::Write as _;
use std::process::ExitCode;

use recalcd::store::{self, Status, Store};

use super::GlobalArgs;

/// Arguments of `recalcd status`.
///
/// Prints the backlog (flagged rows per table and the oldest flagged `datetime`), the
/// rows at `recalc = -1` per table, the numbers of equations and constants, the
/// equations left out when they were last loaded, and the latest error records, each
/// marked `current` (its row is still at `recalc = -1` and this is its latest record)
/// or `past` (the row has been computed again since). Text from the database is printed
/// with control characters escaped. Fails with "run `recalcd migrate`" when the schema
/// is missing or outdated.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many of the latest error records to show.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub errors: usize,
}

/// Runs `recalcd status`.
pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let config = global.load_config()?;
    super::init_logging(&config.log);
    super::runtime()?.block_on(async {
        let store = store::connect(&config).await?;
        store.check_schema().await?;
        let status = store.status(args.errors).await?;
        print!("{}", render(&status));
        Ok(ExitCode::SUCCESS)
    })
}

fn render(s: &Status) -> String {
    let mut out = format!(
        "dialect: {} (schema migration {})\nbacklog (flagged rows):\n",
        s.dialect, s.schema_version
    );
    for b in &s.backlog {
        let oldest = b.oldest.map_or_else(
            || "-".to_string(),
            |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
        );
        let _ = writeln!(
            out,
            "  {:<4} {:<20} {:>10} flagged, oldest {}",
            b.level.as_str(),
            b.table,
            b.flagged,
            oldest
        );
    }
    out.push_str("failed rows (recalc = -1: some output could not be computed):\n");
    for (level, n) in &s.failed {
        let table = s
            .backlog
            .iter()
            .find(|b| b.level == *level)
            .map_or("", |b| b.table.as_str());
        let _ = writeln!(
            out,
            "  {:<4} {:<20} {:>10} failed",
            level.as_str(),
            table,
            n
        );
    }
    let _ = writeln!(
        out,
        "equations: {} ({} skipped)\nconstants: {}",
        s.equations,
        s.problems.len(),
        s.constants
    );
    if s.problems.is_empty() {
        out.push_str("skipped equations: none\n");
    } else {
        out.push_str(
            "skipped equations (left out when last loaded; fix them, the daemon reloads):\n",
        );
        for p in &s.problems {
            let _ = writeln!(out, "  {}", printable(&p.problem));
        }
    }
    if s.latest_errors.is_empty() {
        out.push_str("latest errors: none\n");
    } else {
        out.push_str(
            "latest errors (newest first; current: the row is still at recalc = -1 from this \
             computation, past: computed again since):\n",
        );
        for e in &s.latest_errors {
            let r = &e.record;
            let _ = writeln!(
                out,
                "  {:<7} {} {} id={} {} {}: {}",
                if e.current { "current" } else { "past" },
                e.at.format("%Y-%m-%d %H:%M:%S"),
                r.level,
                r.key.id,
                r.key.datetime.format("%Y-%m-%d %H:%M:%S%.f"),
                printable(&r.equation),
                printable(&r.reason)
            );
        }
    }
    out
}

/// `text` safe to print on a terminal: control characters (and the bidirectional
/// overrides that reorder what a terminal shows) escaped as `\n`, `\u{1b}`, …
pub(super) fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let reorders = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || reorders {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("plain text, ü"), "plain text, ü");
        assert_eq!(
            printable("a\nb\r\t\u{1b}[31mred\u{7}"),
            "a\\nb\\r\\t\\u{1b}[31mred\\u{7}"
        );
        assert_eq!(printable("x\u{202e}y\u{9b}"), "x\\u{202e}y\\u{9b}");
    }
}
