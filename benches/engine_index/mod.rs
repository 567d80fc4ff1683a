//! `RECALCD_BENCH_INDEX=CHANNEL` (issue 13, point 6): the engine benchmark with one
//! indexed channel against the same without it. Each round times the real binary's
//! `recalcd once` twice on the re-seeded backlog — once with a configuration that
//! declares no index, once with one declaring a feature index on `CHANNEL` (levels
//! `1d/1h/10m/1m`, or `RECALCD_BENCH_INDEX_LEVELS`, e.g. `1d,1h`: this data set has a
//! row every 30–60 s, so a 1-minute finest level holds one or two rows a bucket) built
//! by `recalcd index build` right before, so that the index is maintained with every
//! write-back — alternating which goes first, and prints the ratio with / without; the
//! median over `RECALCD_BENCH_ROUNDS` (target ≤ 1.10). Before a run without the index,
//! the one built before is dropped (`recalcd index drop`); before every timed run, a
//! `CHECKPOINT` (see [`settle`]).
//!
//! Both sides run the binary (not the in-process loop of the rest of the benchmark), so
//! that whatever `recalcd once` does for the index is measured. Where `index build` or
//! the `[[index.feature]]` configuration is not available the round says so (the
//! binary's exit code and first error line) and stops.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use crate::common::{children_cpu_seconds, cpu_seconds, print_median, secs};

/// The two configuration files: without and with the index.
pub struct IndexBench {
    channel: String,
    /// The declared levels, as written in the configuration.
    levels: String,
    without: PathBuf,
    with: PathBuf,
    url: String,
    dir: PathBuf,
}

/// Runs the binary with `config` and `args`; its wall time, or the error line. With
/// `RECALCD_BENCH_INDEX_CPU=1`, also prints the CPU seconds the binary and the
/// PostgreSQL server used meanwhile.
fn recalcd(config: &Path, url: &str, args: &[&str]) -> Result<Duration, String> {
    let exe = env!("CARGO_BIN_EXE_recalcd");
    let cpu = std::env::var_os("RECALCD_BENCH_INDEX_CPU")
        .map(|_| (children_cpu_seconds(), cpu_seconds().map(|c| c.2)));
    let start = Instant::now();
    let out = Command::new(exe)
        .arg("--config")
        .arg(config)
        .arg("--database-url")
        .arg(url)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .map_err(|e| format!("cannot start {exe}: {e}"))?;
    let took = start.elapsed();
    if let Some((Some(own), Some(server))) = cpu {
        if let (Some(own_after), Some((_, _, server_after))) =
            (children_cpu_seconds(), cpu_seconds())
        {
            println!(
                "    `recalcd {}`: {}, CPU: recalcd {:.1} s, PostgreSQL {:.1} s",
                args.join(" "),
                secs(took),
                own_after - own,
                server_after - server
            );
        }
    }
    // `RECALCD_BENCH_INDEX_STDERR=FILE`: keep what the runs logged (with `RECALCD__LOG__LEVEL`).
    if let Some(file) = std::env::var_os("RECALCD_BENCH_INDEX_STDERR") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
        {
            let _ = writeln!(f, "== recalcd {} ({} ms)", args.join(" "), took.as_millis());
            let _ = f.write_all(&out.stderr);
        }
    }
    if out.status.success() {
        return Ok(took);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(nothing on stderr)");
    Err(format!(
        "`recalcd {}` exited with {}: {first}",
        args.join(" "),
        out.status
            .code()
            .map_or("a signal".to_string(), |c| format!("code {c}"))
    ))
}

impl IndexBench {
    /// The configuration files for `channel` (`RECALCD_BENCH_INDEX`) and `batch_size`.
    pub fn new(channel: &str, url: &str, batch_size: usize) -> IndexBench {
        let dir =
            std::env::temp_dir().join(format!("recalcd_bench_engine_index_{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let poll = format!("[poll]\nbatch_size = {batch_size}\n");
        let levels = std::env::var("RECALCD_BENCH_INDEX_LEVELS")
            .unwrap_or_else(|_| "1d,1h,10m,1m".to_string());
        let levels: Vec<String> = levels
            .split(',')
            .map(|l| format!("\"{}\"", l.trim()))
            .collect();
        let levels = levels.join(", ");
        let without = dir.join("without.toml");
        let with = dir.join("with.toml");
        std::fs::write(&without, &poll).expect("config file");
        std::fs::write(
            &with,
            format!("{poll}\n[[index.feature]]\nchannel = \"{channel}\"\nlevels = [{levels}]\n"),
        )
        .expect("config file");
        IndexBench {
            channel: channel.to_string(),
            levels,
            without,
            with,
            url: url.to_string(),
            dir,
        }
    }

    /// Drops the index an earlier round built (`recalcd index drop`), so that nothing
    /// of it is maintained.
    fn drop_index(&self) -> Result<Duration, String> {
        recalcd(
            &self.with,
            &self.url,
            &["index", "drop", "--channel", &self.channel],
        )
    }

    /// `recalcd index build` on the seeded rows, over every device's whole extent (a
    /// working day that starts at its day break runs past midnight: a range of the
    /// data set's dates would leave its last hours to the catch-up).
    fn build(&self) -> Result<Duration, String> {
        recalcd(
            &self.with,
            &self.url,
            &["index", "build", "--channel", &self.channel],
        )
    }

    /// The rounds: with and without, alternating which goes first, re-seeding before
    /// each; `reset` re-seeds the backlog.
    pub async fn run<F, Fut>(&self, client: &Client, rounds: usize, reset: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = usize>,
    {
        println!(
            "engine benchmark with a feature index on {} (RECALCD_BENCH_INDEX, levels [{}]), \
             `recalcd once` of the binary with and without it, {rounds} round(s):",
            self.channel, self.levels
        );
        let mut ratios = Vec::with_capacity(rounds);
        let mut built = false;
        for round in 1..=rounds {
            let mut times = [None, None];
            for k in 0..2 {
                // Odd rounds: without first; even rounds: with first.
                let with_index = (k == 0) == (round % 2 == 0);
                reset().await;
                if with_index {
                    let build = match self.build() {
                        Ok(build) => build,
                        Err(e) => {
                            println!("  round {round}: with the index unavailable — {e}");
                            return;
                        }
                    };
                    built = true;
                    settle(client).await;
                    match recalcd(&self.with, &self.url, &["once"]) {
                        Ok(once) => {
                            println!(
                                "  round {round}: index build (on the flagged rows) {}, recalcd once with the index {}",
                                secs(build),
                                secs(once)
                            );
                            times[1] = Some(once);
                        }
                        Err(e) => {
                            println!("  round {round}: recalcd once with the index failed — {e}");
                            return;
                        }
                    }
                } else {
                    if built {
                        if let Err(e) = self.drop_index() {
                            println!("  round {round}: {e}");
                            return;
                        }
                    }
                    settle(client).await;
                    match recalcd(&self.without, &self.url, &["once"]) {
                        Ok(once) => {
                            println!(
                                "  round {round}: recalcd once without an index {}",
                                secs(once)
                            );
                            times[0] = Some(once);
                        }
                        Err(e) => {
                            println!("  round {round}: recalcd once failed — {e}");
                            return;
                        }
                    }
                }
            }
            if let [Some(without), Some(with)] = times {
                let flagged: i64 = client
                    .query_one("SELECT count(*) FROM data WHERE recalc > 0", &[])
                    .await
                    .and_then(|r| r.try_get(0))
                    .expect("count");
                let ratio = with.as_secs_f64() / without.as_secs_f64();
                println!(
                    "  round {round}: with / without {ratio:.3} (target ≤ 1.10); rows still flagged after: {flagged}"
                );
                ratios.push(ratio);
            }
        }
        print_median("with the index / without", &mut ratios);
    }
}

/// A `CHECKPOINT` before each timed `recalcd once`, with or without the index: the
/// seeding and the index build leave hundreds of megabytes of dirty pages, which the
/// server would otherwise flush during whichever run follows (the one with the index,
/// right after its build), and that is neither run's work.
async fn settle(client: &Client) {
    if let Err(e) = client.batch_execute("CHECKPOINT").await {
        println!("    (CHECKPOINT refused: {e}; the runs are timed without it)");
    }
}

impl Drop for IndexBench {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
