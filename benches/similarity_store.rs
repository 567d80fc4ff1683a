//! The similarity commands end to end through PostgreSQL (issue 15, point 6, last part):
//! the real `recalcd` binary against a database of its own at `DATABASE_URL`.
//!
//! 1. **`similar` over stored jobs**: `RECALCD_BENCH_SIM_JOBS` jobs (default 100,000) of
//!    `RECALCD_BENCH_SIM_ROWS` rows each (default 100, one a second; `tmp` a random
//!    walk), spread over 100 devices, streamed in with a binary `COPY` (already
//!    recalculated, `recalc = 0`). `recalcd index build --kind similarity` (length 256,
//!    8 coefficients; timed), then `RECALCD_BENCH_SIM_QUERIES` queries (default 5)
//!    `similar --job ID@START --k 10 --format json` with the index, the first
//!    `RECALCD_BENCH_SIM_SCANS` of them (default 2) also before the index is built (the
//!    scan). Per query: wall time, `stats.load_ms` (reading the
//!    index) and `elapsed_ms`, jobs refined and the rows that means, against the rows a
//!    scan reads; the two answers compared. Then the same queries, twice over, through
//!    `recalcd serve`'s `/api/similar`, which keeps the index loaded: wall time,
//!    `elapsed_ms`, `load_ms`, `stats.kept`, each answer against the command line's.
//! 2. **`match` over a year at 1 Hz**: `RECALCD_BENCH_MATCH_ROWS` rows of one device
//!    (default 31,536,000; a random walk of `tmp` with a few planted copies of one
//!    shape), then `RECALCD_BENCH_MATCH_QUERIES` queries (default 3)
//!    `match --like SPAN --k 5 --format json` over the whole range (a 256-row span):
//!    wall time, `elapsed_ms`, `load_ms` (reading the rows), rows read, windows refined.
//!
//!    Then the stored subsequence index: `index build --kind subsequence` (timed) and
//!    per query `match --like SPAN --metric euclid --within D` with `--method index`
//!    against `--method profile` (D the profile's 5th Euclidean distance for the span):
//!    rows read, latency, answers compared.
//!
//! `RECALCD_BENCH_PART=similar|match` runs one part. Prints figures; no timing
//! assertions. Each part drops its database at the end. `cargo bench --bench
//! similarity_store`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{Duration as Span, NaiveDate, NaiveDateTime};
use common::{connect, copy_rows, env_usize, BenchDb};
use recalcd::config::Config;
use recalcd::store::{self, Row, RowVersion, Store};
use serde_json::Value;

/// The devices the jobs are spread over.
const DEVICES: usize = 100;
/// The resampled length and coefficients of the index (issue 15's defaults).
const INDEX: &str = "[[index.similarity]]\nchannel = \"tmp\"\nlength = 256\ncoefficients = 8\n";
/// The pattern length of the `match` queries.
const SPAN: usize = 256;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let part = std::env::var("RECALCD_BENCH_PART").unwrap_or_default();
    if part.is_empty() || part == "similar" {
        runtime.block_on(similar());
    }
    if part.is_empty() || part == "match" {
        runtime.block_on(matching());
    }
}

/// A small generator: the same data on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) - 0.5
    }
}

fn base() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2023, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("a valid start")
}

fn row(at: NaiveDateTime, start: NaiveDateTime, id: i32, v: f64) -> Row {
    Row {
        datetime: at,
        data_time: start,
        id,
        state: Some(2),
        user: None,
        gps: None,
        recalc: 0,
        conjoined: format!("tmp={v:.4};"),
        version: RowVersion::ABSENT,
        unreadable: None,
    }
}

/// The `recalcd` binary with a configuration file and a database.
struct Binary {
    config: PathBuf,
    url: String,
}

impl Binary {
    fn new(dir: &Path, name: &str, config: &str, url: &str) -> Binary {
        let path = dir.join(name);
        std::fs::write(&path, format!("[log]\nlevel = \"warn\"\n{config}")).expect("config");
        Binary {
            config: path,
            url: url.to_string(),
        }
    }

    /// Runs `recalcd ARGS`: its wall time and standard output, or its first error line.
    fn run(&self, args: &[&str]) -> Result<(Duration, String), String> {
        let start = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_recalcd"))
            .arg("--config")
            .arg(&self.config)
            .arg("--database-url")
            .arg(&self.url)
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .map_err(|e| format!("cannot start recalcd: {e}"))?;
        let wall = start.elapsed();
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let first = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            return Err(format!(
                "`recalcd {}` exited with {}: {first}",
                args.join(" "),
                out.status
            ));
        }
        Ok((wall, String::from_utf8_lossy(&out.stdout).into_owned()))
    }

    /// `ARGS --format json`, read.
    fn json(&self, args: &[&str]) -> Result<(Duration, Value), String> {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--format", "json"]);
        let (wall, out) = self.run(&all)?;
        let v = serde_json::from_str(&out).map_err(|e| format!("JSON: {e}"))?;
        Ok((wall, v))
    }
}

fn stat(v: &Value, key: &str) -> f64 {
    v["stats"][key].as_f64().unwrap_or(f64::NAN)
}

/// The matches as `id job-or-from` pairs, for comparing answers.
fn answer(v: &Value) -> Vec<String> {
    v["matches"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    let at = m["job"].as_str().or(m["from"].as_str()).unwrap_or("");
                    format!("{}@{at}", m["id"])
                })
                .collect()
        })
        .unwrap_or_default()
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn fresh_db(prefix: &str) -> (BenchDb, tokio_postgres::Client, PathBuf) {
    let db = BenchDb::create(prefix).await;
    let mut config = Config::default();
    config.database.url = db.url.clone();
    let mut s = store::connect(&config).await.expect("connect");
    s.migrate().await.expect("migrate");
    drop(s);
    let client = connect(&db.url).await;
    let dir = std::env::temp_dir().join(format!("{prefix}_{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    (db, client, dir)
}

async fn table_mb(client: &tokio_postgres::Client, like: &str) -> f64 {
    let row = client
        .query_one(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::float8
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind = 'r' AND n.nspname = 'public' AND c.relname LIKE $1",
            &[&like],
        )
        .await
        .expect("sizes");
    row.get::<_, f64>(0) / 1e6
}

async fn similar() {
    let jobs = env_usize("RECALCD_BENCH_SIM_JOBS").unwrap_or(100_000);
    let rows = env_usize("RECALCD_BENCH_SIM_ROWS").unwrap_or(100).max(4);
    let queries = env_usize("RECALCD_BENCH_SIM_QUERIES").unwrap_or(5);
    let scans = env_usize("RECALCD_BENCH_SIM_SCANS").unwrap_or(2);
    println!(
        "## similar: {jobs} jobs of {rows} rows ({} rows) over {DEVICES} devices; index length 256, 8 coefficients; exact top-10",
        jobs * rows
    );
    let (db, client, dir) = fresh_db("recalcd_bench_simstore").await;
    let start_of = |j: usize| base() + Span::seconds((j * (rows + 60)) as i64);
    let started = Instant::now();
    let mut rng = Rng(11);
    let generated = (0..jobs).flat_map(move |n| {
        let (id, j) = ((n % DEVICES) as i32 + 1, n / DEVICES);
        let start = start_of(j);
        let mut x = rng.next() * 20.0;
        let steps: Vec<f64> = (0..rows).map(|_| rng.next()).collect();
        (0..rows).map(move |i| {
            x += steps[i];
            row(start + Span::seconds(i as i64), start, id, x)
        })
    });
    let copied = copy_rows(&client, "data", generated).await;
    client
        .batch_execute("VACUUM ANALYZE data")
        .await
        .expect("VACUUM");
    println!(
        "seeded {copied} rows in {:.1} s; data table {:.0} MB",
        started.elapsed().as_secs_f64(),
        table_mb(&client, "data").await
    );

    let indexed = Binary::new(&dir, "indexed.toml", INDEX, &db.url);
    let plain = Binary::new(&dir, "plain.toml", "", &db.url);
    let mut q = Rng(5);
    let picks: Vec<String> = (0..queries)
        .map(|_| {
            let pick = ((q.next() + 0.5) * jobs as f64) as usize % jobs;
            let (id, j) = (pick % DEVICES + 1, pick / DEVICES);
            format!("{id}@{}", start_of(j).format("%Y-%m-%dT%H:%M:%S"))
        })
        .collect();
    let args = |job: &str| -> Vec<String> {
        ["similar", "--channel", "tmp", "--job", job, "--k", "10"]
            .iter()
            .map(|a| a.to_string())
            .collect()
    };
    // The scans first: no index is built yet.
    let mut scanned: Vec<Option<Vec<String>>> = vec![None; picks.len()];
    let mut scan_walls = Vec::new();
    for (n, job) in picks.iter().enumerate().take(scans) {
        let a = args(job);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        match plain.json(&a) {
            Ok((wall, s)) => {
                println!(
                    "similar --job {job} without the index (a scan): wall {:.0} ms, elapsed_ms {}, method {}, {} jobs compared, {} rows read",
                    ms(wall),
                    stat(&s, "elapsed_ms"),
                    s["stats"]["method"],
                    stat(&s, "refined"),
                    jobs * rows
                );
                scan_walls.push(ms(wall));
                scanned[n] = Some(answer(&s));
            }
            Err(e) => println!("similar --job {job} (scan): {e}"),
        }
    }
    match indexed.run(&["index", "build", "--kind", "similarity", "--channel", "tmp"]) {
        Ok((wall, _)) => println!(
            "index build: {:.1} s ({:.1} µs a job); index tables {:.1} MB",
            wall.as_secs_f64(),
            wall.as_secs_f64() * 1e6 / jobs as f64,
            table_mb(&client, "%similar%").await
        ),
        Err(e) => println!("index build: {e}"),
    }
    let (mut walls, mut elapsed, mut loads, mut refined) = (vec![], vec![], vec![], vec![]);
    let mut cli_answers = Vec::new();
    for (n, job) in picks.iter().enumerate() {
        let a = args(job);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let v = match indexed.json(&a) {
            Ok(v) => v,
            Err(e) => {
                println!("similar --job {job}: {e}");
                continue;
            }
        };
        let (wall, v) = (v.0, &v.1);
        let r = stat(v, "refined");
        let same = match &scanned[n] {
            Some(s) => {
                if *s == answer(v) {
                    "; answer equal to the scan's"
                } else {
                    "; ANSWER DIFFERS from the scan's"
                }
            }
            None => "",
        };
        println!(
            "similar --job {job} (index): wall {:.0} ms, elapsed_ms {} of which load_ms {} (reading the entries), method {}, candidates {}, refined {} jobs = {:.0} rows read of {}{same}",
            ms(wall),
            stat(v, "elapsed_ms"),
            stat(v, "load_ms"),
            v["stats"]["method"],
            stat(v, "candidates"),
            r,
            r * rows as f64,
            jobs * rows
        );
        walls.push(ms(wall));
        elapsed.push(stat(v, "elapsed_ms"));
        loads.push(stat(v, "load_ms"));
        refined.push(r);
        cli_answers.push((job.clone(), answer(v)));
    }
    served_similar(&indexed, &cli_answers);
    let (w, s) = (median(walls), median(scan_walls));
    println!(
        "similar medians: index wall {w:.0} ms (elapsed_ms {:.0}, of it load_ms {:.0}: the query itself {:.0} ms), refined {:.0} jobs ({:.0} rows); scan wall {s:.0} ms ({:.1}x the index's wall)",
        median(elapsed.clone()),
        median(loads.clone()),
        median(elapsed.iter().zip(&loads).map(|(e, l)| e - l).collect()),
        median(refined.clone()),
        median(refined) * rows as f64,
        s / w
    );
    drop(client);
    db.drop_now().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same queries through `recalcd serve`'s `/api/similar`, which keeps the index
/// loaded: the first request reads the entries, the next ones use the copy kept. Each
/// answer is checked against the command line's.
fn served_similar(indexed: &Binary, cli: &[(String, Vec<String>)]) {
    let Some(served) = common::Served::start(
        Path::new(env!("CARGO_BIN_EXE_recalcd")),
        &indexed.config,
        &indexed.url,
    ) else {
        return;
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into();
    let (mut kept_walls, mut kept_elapsed) = (vec![], vec![]);
    // Every query twice: the first of all loads the index.
    for (job, want) in cli.iter().chain(cli) {
        let t = Instant::now();
        let v: Value = match agent
            .get(format!("{}/api/similar", served.base))
            .query("channel", "tmp")
            .query("job", job)
            .query("k", "10")
            .call()
            .map_err(|e| e.to_string())
            .and_then(|mut r| r.body_mut().read_to_string().map_err(|e| e.to_string()))
            .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
        {
            Ok(v) => v,
            Err(e) => {
                println!("serve /api/similar?job={job}: {e}");
                continue;
            }
        };
        let wall = ms(t.elapsed());
        let same = if answer(&v) == *want {
            "answer equal to the command line's"
        } else {
            "ANSWER DIFFERS from the command line's"
        };
        let kept = v["stats"]["kept"].as_bool();
        println!(
            "serve /api/similar?job={job}: wall {wall:.1} ms, elapsed_ms {}, load_ms {}, kept {kept:?}; {same}",
            stat(&v, "elapsed_ms"),
            stat(&v, "load_ms"),
        );
        if kept == Some(true) {
            kept_walls.push(wall);
            kept_elapsed.push(stat(&v, "elapsed_ms"));
        }
    }
    println!(
        "serve medians with the index kept: wall {:.1} ms (elapsed_ms {:.0}) over {} requests",
        median(kept_walls.clone()),
        median(kept_elapsed),
        kept_walls.len()
    );
}

async fn matching() {
    let rows = env_usize("RECALCD_BENCH_MATCH_ROWS").unwrap_or(31_536_000);
    let queries = env_usize("RECALCD_BENCH_MATCH_QUERIES").unwrap_or(3);
    println!("## match: one device, {rows} rows at 1 Hz, pattern {SPAN} rows (--like), top-5 z-normalised");
    let (db, client, dir) = fresh_db("recalcd_bench_matchstore").await;
    let started = Instant::now();
    // A random walk with a shape planted every ~ 1/20 of the range (scaled, offset).
    let mut rng = Rng(3);
    let shape: Vec<f64> = (0..SPAN)
        .map(|i| (i as f64 / 20.0).sin() * 3.0 + (i as f64 / 7.0).cos())
        .collect();
    let every = (rows / 20).max(SPAN * 2);
    let mut x = 0.0;
    let generated = (0..rows).map(move |i| {
        x += rng.next();
        let v = if i % every >= every - SPAN {
            x + shape[i % every - (every - SPAN)] * (1.0 + (i / every) as f64 * 0.1)
        } else {
            x
        };
        row(base() + Span::seconds(i as i64), base(), 1, v)
    });
    let copied = copy_rows(&client, "data", generated).await;
    client
        .batch_execute("VACUUM ANALYZE data")
        .await
        .expect("VACUUM");
    println!(
        "seeded {copied} rows in {:.1} s; data table {:.0} MB",
        started.elapsed().as_secs_f64(),
        table_mb(&client, "data").await
    );
    let bin = Binary::new(&dir, "plain.toml", "", &db.url);
    let end = base() + Span::seconds(rows as i64);
    let (from, to) = (
        base().format("%Y-%m-%dT%H:%M:%S").to_string(),
        end.format("%Y-%m-%dT%H:%M:%S").to_string(),
    );
    let (mut walls, mut elapsed, mut loads) = (vec![], vec![], vec![]);
    for n in 0..queries {
        let like = like_span(n, every, rows);
        let args = [
            "match",
            "--channel",
            "tmp",
            "--id",
            "1",
            "--from",
            &from,
            "--to",
            &to,
            "--like",
            &like,
            "--k",
            "5",
        ];
        match bin.json(&args) {
            Ok((wall, v)) => {
                println!(
                    "match --like {like}: wall {:.0} ms, elapsed_ms {}, load_ms {} (reading rows), method {}, rows read {}, windows {}, refined {}; matches {:?}",
                    ms(wall),
                    stat(&v, "elapsed_ms"),
                    stat(&v, "load_ms"),
                    v["stats"]["method"],
                    stat(&v, "rows_read"),
                    stat(&v, "total"),
                    stat(&v, "refined"),
                    answer(&v)
                );
                walls.push(ms(wall));
                elapsed.push(stat(&v, "elapsed_ms"));
                loads.push(stat(&v, "load_ms"));
            }
            Err(e) => println!("match --like {like}: {e}"),
        }
    }
    let (w, e, l) = (median(walls), median(elapsed), median(loads));
    println!(
        "match medians: wall {w:.0} ms, elapsed_ms {e:.0}, of it load_ms {l:.0} (reading {rows} rows), the rest (profile, greedy choice, the matches' times) {:.0} ms",
        e - l
    );
    euclid_within(&dir, &db.url, &client, rows, every, queries, (&from, &to)).await;
    drop(client);
    db.drop_now().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The stored subsequence index (`[[index.subsequence]]`, defaults w = 64, f = 4,
/// g = 64): its build, then per query `match --like SPAN --metric euclid --within D`
/// with `--method index` against `--method profile` (D: the 5th distance of the
/// profile's Euclidean top-5 of that span), rows read and latency, answers compared.
#[allow(clippy::too_many_arguments)]
async fn euclid_within(
    dir: &Path,
    url: &str,
    client: &tokio_postgres::Client,
    rows: usize,
    every: usize,
    queries: usize,
    (from, to): (&str, &str),
) {
    println!(
        "## match --metric euclid --within D: the stored subsequence index against the profile"
    );
    let bin = Binary::new(
        dir,
        "subsequence.toml",
        "[[index.subsequence]]\nchannel = \"tmp\"\n",
        url,
    );
    match bin.run(&[
        "index",
        "build",
        "--kind",
        "subsequence",
        "--channel",
        "tmp",
    ]) {
        Ok((wall, out)) => println!(
            "index build --kind subsequence: {:.1} s; {}; index tables {:.1} MB",
            wall.as_secs_f64(),
            out.trim(),
            table_mb(client, "recalcd_index_subsequence%").await
        ),
        Err(e) => {
            println!("{e}");
            return;
        }
    }
    let (mut index_ms, mut profile_ms) = (vec![], vec![]);
    for n in 0..queries {
        let like = like_span(n, every, rows);
        let base_args = [
            "match",
            "--channel",
            "tmp",
            "--id",
            "1",
            "--from",
            from,
            "--to",
            to,
            "--like",
            &like,
            "--metric",
            "euclid",
        ];
        let mut top = base_args.to_vec();
        top.extend_from_slice(&["--k", "5", "--method", "profile"]);
        let radius = match bin.json(&top) {
            Ok((_, v)) => v["matches"]
                .as_array()
                .and_then(|m| m.last())
                .and_then(|m| m["distance"].as_f64())
                .unwrap_or(0.0),
            Err(e) => {
                println!("{e}");
                continue;
            }
        };
        let radius = format!("{radius:e}");
        let mut answers = Vec::new();
        for method in ["index", "profile"] {
            let mut args = base_args.to_vec();
            args.extend_from_slice(&["--within", &radius, "--method", method]);
            match bin.json(&args) {
                Ok((wall, v)) => {
                    println!(
                        "  --like {like} --within {radius} --method {method}: wall {:.0} ms, elapsed_ms {}, load_ms {}, method {}, rows read {}, windows {}, recomputed {}, matches {}",
                        ms(wall),
                        stat(&v, "elapsed_ms"),
                        stat(&v, "load_ms"),
                        v["stats"]["method"],
                        stat(&v, "rows_read"),
                        stat(&v, "total"),
                        stat(&v, "refined"),
                        answer(&v).len()
                    );
                    if method == "index" {
                        index_ms.push(stat(&v, "elapsed_ms"));
                    } else {
                        profile_ms.push(stat(&v, "elapsed_ms"));
                    }
                    answers.push(answer(&v));
                }
                Err(e) => println!("  {e}"),
            }
        }
        if answers.len() == 2 {
            println!("  same answer: {}", answers[0] == answers[1]);
        }
    }
    println!(
        "euclid --within medians: index {:.0} ms, profile {:.0} ms (elapsed_ms)",
        median(index_ms),
        median(profile_ms)
    );
}

/// The `--like` span of query `n`: the n/2-th planted shape, or a stretch of plain walk.
fn like_span(n: usize, every: usize, rows: usize) -> String {
    let at = if n.is_multiple_of(2) {
        (n / 2 + 1) * every - SPAN
    } else {
        (n * 7919 * 97) % (rows - SPAN)
    }
    .min(rows - SPAN);
    let a = base() + Span::seconds(at as i64);
    let b = a + Span::seconds(SPAN as i64);
    format!(
        "{}..{}",
        a.format("%Y-%m-%dT%H:%M:%S"),
        b.format("%Y-%m-%dT%H:%M:%S")
    )
}
