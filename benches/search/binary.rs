//! Driving the real `recalcd` binary through its command-line contract (issue 13):
//! `recalcd index build` and `recalcd search … --format json`. Until a command exists
//! (or when it fails), the outcome says so with the binary's exit code and first error
//! line, and the benchmark goes on without that figure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::reference::Match;

/// The binary built with this benchmark, a configuration file and a database.
pub struct Recalcd {
    exe: PathBuf,
    config: PathBuf,
    url: String,
}

/// One finished command.
pub struct Outcome {
    /// The process's wall time.
    pub wall: Duration,
    /// Its standard output.
    pub stdout: String,
}

/// What `search --format json` answered.
pub struct Search {
    /// The process's wall time.
    pub wall: Duration,
    /// The matches.
    pub matches: Vec<Match>,
    /// `stats.method`.
    pub method: String,
    /// `stats.rows_in_range`.
    pub rows_in_range: u64,
    /// `stats.rows_read`.
    pub rows_read: u64,
    /// `stats.buckets_read`, level by level as printed.
    pub buckets_read: String,
    /// `stats.elapsed_ms`.
    pub elapsed_ms: f64,
}

impl Recalcd {
    /// The binary at `exe`, with the configuration file `config` and the database `url`.
    pub fn new(exe: &Path, config: &Path, url: &str) -> Recalcd {
        Recalcd {
            exe: exe.to_path_buf(),
            config: config.to_path_buf(),
            url: url.to_string(),
        }
    }

    /// Runs `recalcd --config … --database-url … ARGS`; an error line when it could not
    /// start or exited with another code than 0.
    pub fn run(&self, args: &[&str]) -> Result<Outcome, String> {
        let start = Instant::now();
        let out = Command::new(&self.exe)
            .arg("--config")
            .arg(&self.config)
            .arg("--database-url")
            .arg(&self.url)
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .map_err(|e| format!("cannot start {}: {e}", self.exe.display()))?;
        let wall = start.elapsed();
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let first = stderr
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("(nothing on stderr)");
            let shown: Vec<String> = args
                .iter()
                .map(|a| {
                    if a.contains(' ') {
                        format!("'{a}'")
                    } else {
                        (*a).to_string()
                    }
                })
                .collect();
            return Err(format!(
                "`recalcd {}` exited with {}: {first}",
                shown.join(" "),
                out.status
                    .code()
                    .map_or("a signal".to_string(), |c| format!("code {c}"))
            ));
        }
        Ok(Outcome {
            wall,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        })
    }

    /// `recalcd search … --format json`, its answer read.
    pub fn search(&self, args: &[&str]) -> Result<Search, String> {
        let mut all: Vec<&str> = vec!["search"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--format", "json"]);
        let out = self.run(&all)?;
        parse_search(&out.stdout, out.wall)
            .map_err(|e| format!("`recalcd {}`: unexpected output ({e})", all.join(" ")))
    }
}

/// A `YYYY-MM-DDTHH:MM:SS[.ffffff]` time as µs since 1970.
fn micros(text: &str) -> Result<i64, String> {
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|t| t.and_utc().timestamp_micros())
        .map_err(|e| format!("time {text:?}: {e}"))
}

/// Reads the JSON of `search --format json`.
fn parse_search(stdout: &str, wall: Duration) -> Result<Search, String> {
    let v: serde_json::Value = serde_json::from_str(stdout).map_err(|e| format!("JSON: {e}"))?;
    let matches = v["matches"]
        .as_array()
        .ok_or("no \"matches\" array")?
        .iter()
        .map(|m| {
            let id = m["id"].as_i64().ok_or("a match without \"id\"")?;
            let field = |k: &str| m[k].as_str().ok_or(format!("a match without {k:?}"));
            Ok((
                i32::try_from(id).map_err(|e| e.to_string())?,
                micros(field("from")?)?,
                micros(field("to")?)?,
            ))
        })
        .collect::<Result<Vec<Match>, String>>()?;
    let stats = &v["stats"];
    let count = |k: &str| stats[k].as_u64().ok_or(format!("no stats.{k}"));
    Ok(Search {
        wall,
        matches,
        method: stats["method"]
            .as_str()
            .ok_or("no stats.method")?
            .to_string(),
        rows_in_range: count("rows_in_range")?,
        rows_read: count("rows_read")?,
        buckets_read: stats["buckets_read"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, n)| format!("{k}: {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default(),
        elapsed_ms: stats["elapsed_ms"].as_f64().ok_or("no stats.elapsed_ms")?,
    })
}
