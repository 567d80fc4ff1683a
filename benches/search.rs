//! Search benchmark (issue 13, point 6): one device, one year at 1 Hz (31,536,000 data
//! rows; `RECALCD_BENCH_ROWS` for a quick run) in a PostgreSQL database of its own at
//! `DATABASE_URL`, its rows carrying the demo's channels; the feature index on `tmp`
//! with levels `1d/1h/10m/1m`; selective and unselective conditions of every kind.
//!
//! 1. Seed (timed): the rows, already recalculated (`recalc = 0`), streamed from a
//!    generator thread into a binary `COPY` (never all in memory: only the `tmp`
//!    values are kept, as tenths, for the reference answers); `VACUUM ANALYZE`; the
//!    table's size.
//! 2. Read (timed): the same rows `index build` reads (`datetime, recalc, conjoined`
//!    of the device in the range) streamed with `COPY … TO STDOUT`.
//! 3. `recalcd index build --channel tmp` (the real binary, timed) against the read;
//!    `recalcd index list`; every table's `pg_total_relation_size`, the index tables'
//!    (names with `index`, `feature` or `bucket`) against the data table's.
//! 4. Per condition: the reference answer (brute force in Rust over the generated
//!    values, exact arithmetic), the fraction of the time it matches; the SQL a user
//!    would write (`sql.rs`), checked against the reference and timed
//!    (`RECALCD_BENCH_SQL=0` skips it, `=selective` runs it for the selective
//!    conditions only: `MIN` and `MAX` restart for every row's frame, so at full size
//!    it takes many minutes per condition);
//!    `recalcd search --method auto|filtering|fixed|scan --format json`, each checked
//!    against the reference, with its wall time, `stats.elapsed_ms`, rows read, buckets
//!    read; speed-ups against the SQL and against `--method scan`, next to the targets.
//!
//! Where a `recalcd` command is not available yet (or fails) the benchmark prints its
//! exit code and first error line instead of a figure and goes on. Prints figures; the
//! answers' checks are printed too (`answer: equal to the reference` or the first
//! difference) and never stop the run. `cargo bench --bench search`.

#[path = "search/binary.rs"]
mod binary;
mod common;
#[path = "search/reference.rs"]
mod reference;
#[path = "search/seed.rs"]
mod seed;
#[path = "search/series.rs"]
mod series;
#[path = "search/sql.rs"]
mod sql;

use std::time::{Duration, Instant};

use chrono::{Duration as Span, NaiveDateTime};
use common::{connect, env_usize, secs, BenchDb};
use futures_util::{pin_mut, StreamExt};
use recalcd::config::Config;
use recalcd::store::{self, Store};
use tokio_postgres::Client;

use binary::{Recalcd, Search};
use reference::{Cond, Match};
use seed::seed;

/// The indexed channel.
const CHANNEL: &str = "tmp";

/// The index's configuration (issue 13, point 1).
const CONFIG: &str = r#"[[index.feature]]
channel = "tmp"
levels = ["1d", "1h", "10m", "1m"]
unit = "°C"
"#;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}

/// Streams the rows `index build` reads with `COPY … TO STDOUT`; returns the bytes.
async fn read_rows(client: &Client, from: NaiveDateTime, to: NaiveDateTime) -> u64 {
    let fmt = |t: NaiveDateTime| t.format("%Y-%m-%d %H:%M:%S").to_string();
    let stream = client
        .copy_out(&format!(
            "COPY (SELECT datetime, recalc, conjoined FROM data
                    WHERE id = {} AND datetime >= '{}' AND datetime < '{}') TO STDOUT (FORMAT binary)",
            series::DEVICE,
            fmt(from),
            fmt(to)
        ))
        .await
        .expect("COPY TO");
    pin_mut!(stream);
    let mut bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        bytes += chunk.expect("COPY TO chunk").len() as u64;
    }
    bytes
}

/// Every table of the database with its `pg_total_relation_size`, largest first.
async fn table_sizes(client: &Client) -> Vec<(String, i64)> {
    client
        .query(
            "SELECT c.relname::text, pg_total_relation_size(c.oid)
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
              ORDER BY 2 DESC, 1",
            &[],
        )
        .await
        .expect("table sizes")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Whether a table is one of the index's (by its name).
fn is_index_table(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("index") || n.contains("feature") || n.contains("bucket")
}

fn mb(bytes: i64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

/// `meets` or `misses` a target.
fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

/// One condition's figures, for the summary at the end.
struct Line {
    cond: Cond,
    matched: f64,
    sql: Option<Duration>,
    auto: Option<Search>,
    scan: Option<Duration>,
}

/// The check of an answer against the reference, as text.
fn check(answer: &[Match], reference: &[Match]) -> String {
    match reference::first_difference(answer, reference) {
        None => format!("answer equal to the reference ({} matches)", answer.len()),
        Some(d) => format!("ANSWER DIFFERS from the reference: {d}"),
    }
}

async fn one_condition(
    cond: &Cond,
    client: &Client,
    recalcd: &Recalcd,
    tenths: &[i32],
    (from, to): (NaiveDateTime, NaiveDateTime),
    (from_arg, to_arg): (&str, &str),
) -> Line {
    let t0 = from.and_utc().timestamp_micros();
    let start = Instant::now();
    let expected = reference::answer(cond, series::DEVICE, t0, tenths);
    let brute = start.elapsed();
    let matched = reference::covered(&expected, tenths.len());
    println!(
        "\n{cond}  ({}; target: {})",
        if cond.selective {
            "selective"
        } else {
            "unselective"
        },
        if cond.selective {
            "under 1 % of the time matches"
        } else {
            "most of the time matches"
        }
    );
    println!(
        "  reference (brute force in Rust, in memory): {} matches covering {:.3} % of the rows, {}",
        expected.len(),
        matched * 100.0,
        ms(brute)
    );
    let sql_mode = std::env::var("RECALCD_BENCH_SQL").unwrap_or_default();
    let sql = if sql_mode == "0" || (sql_mode == "selective" && !cond.selective) {
        println!("  SQL baseline: skipped (RECALCD_BENCH_SQL={sql_mode})");
        None
    } else {
        match sql::run(client, cond, CHANNEL, series::DEVICE, from, to).await {
            Ok((answer, took)) => {
                println!(
                    "  SQL baseline: {}; {}",
                    secs(took),
                    check(&answer, &expected)
                );
                Some(took)
            }
            Err(e) => {
                println!("  SQL baseline failed: {e}");
                None
            }
        }
    };
    let id = series::DEVICE.to_string();
    let mut line = Line {
        cond: *cond,
        matched,
        sql,
        auto: None,
        scan: None,
    };
    for method in ["scan", "auto", "filtering", "fixed"] {
        let text = cond.to_string();
        let args = [
            "--channel",
            CHANNEL,
            "--id",
            &id,
            "--from",
            from_arg,
            "--to",
            to_arg,
            "--where",
            &text,
            "--method",
            method,
        ];
        match recalcd.search(&args) {
            Ok(s) => {
                let share = s.rows_read as f64 / s.rows_in_range.max(1) as f64;
                let mut figures = format!(
                    "  recalcd --method {method}: {} wall, {:.0} ms inside (stats.method {}); \
                     rows read {} of {} ({:.3} %); buckets read {{{}}}; {}",
                    ms(s.wall),
                    s.elapsed_ms,
                    s.method,
                    s.rows_read,
                    s.rows_in_range,
                    share * 100.0,
                    s.buckets_read,
                    check(&s.matches, &expected)
                );
                if method != "scan" {
                    if let Some(scan) = line.scan {
                        figures += &format!(
                            "; {:.1}× faster than scan",
                            scan.as_secs_f64() / s.wall.as_secs_f64()
                        );
                    }
                    if let Some(sql) = sql {
                        figures += &format!(
                            ", {:.1}× faster than SQL",
                            sql.as_secs_f64() / s.wall.as_secs_f64()
                        );
                    }
                }
                println!("{figures}");
                match method {
                    "scan" => line.scan = Some(s.wall),
                    "auto" => line.auto = Some(s),
                    _ => {}
                }
            }
            Err(e) => println!("  recalcd --method {method}: unavailable — {e}"),
        }
    }
    line
}

/// The targets of issue 13 for one condition, as text.
fn targets(line: &Line) -> String {
    let Some(auto) = &line.auto else {
        return "not measured (recalcd search unavailable)".into();
    };
    let wall = auto.wall.as_secs_f64();
    let mut out = Vec::new();
    if line.cond.selective {
        let share = auto.rows_read as f64 / auto.rows_in_range.max(1) as f64;
        out.push(format!(
            "rows read {:.3} % (≤ 1 %: {})",
            share * 100.0,
            verdict(share <= 0.01)
        ));
        if let Some(sql) = line.sql {
            let x = sql.as_secs_f64() / wall;
            out.push(format!("{x:.1}× SQL (≥ 50×: {})", verdict(x >= 50.0)));
        }
        if let Some(scan) = line.scan {
            let x = scan.as_secs_f64() / wall;
            out.push(format!("{x:.1}× scan (≥ 20×: {})", verdict(x >= 20.0)));
        }
    } else if let Some(scan) = line.scan {
        let x = wall / scan.as_secs_f64();
        out.push(format!("auto / scan {x:.2} (≤ 1.2: {})", verdict(x <= 1.2)));
    }
    out.join("; ")
}

async fn bench() {
    let rows = env_usize("RECALCD_BENCH_ROWS").unwrap_or(series::YEAR_ROWS);
    let db = BenchDb::create("recalcd_bench_search").await;
    let mut config = Config::default();
    config.database.url = db.url.clone();
    let mut store = store::connect(&config).await.expect("connect");
    store.migrate().await.expect("migrate");
    drop(store);
    let client = connect(&db.url).await;
    let dir = std::env::temp_dir().join(format!("recalcd_bench_search_{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config_file = dir.join("recalcd.toml");
    std::fs::write(&config_file, CONFIG).expect("config file");
    let recalcd = Recalcd::new(
        std::path::Path::new(env!("CARGO_BIN_EXE_recalcd")),
        &config_file,
        &db.url,
    );

    // 1. Seed.
    let from = series::start();
    let end = from + Span::seconds(rows as i64);
    // Whole days: `--to` with a date alone takes the whole day.
    let last_day = (end - Span::microseconds(1)).date();
    let to = (last_day + Span::days(1))
        .and_hms_opt(0, 0, 0)
        .expect("midnight");
    let (from_arg, to_arg) = (from.date().to_string(), last_day.to_string());
    println!(
        "search benchmark: device {}, {rows} rows at 1 Hz from {from} to {end} (exclusive), \
         channel {CHANNEL}, index levels 1d/1h/10m/1m; search range --from {from_arg} --to {to_arg}",
        series::DEVICE
    );
    let start = Instant::now();
    let tenths = seed(&client, rows).await;
    let seeded = start.elapsed();
    let start = Instant::now();
    client
        .batch_execute("VACUUM ANALYZE data")
        .await
        .expect("VACUUM");
    let vacuum = start.elapsed();
    let sizes = table_sizes(&client).await;
    let data_size = sizes
        .iter()
        .find(|(n, _)| n == "data")
        .map_or(0, |(_, s)| *s);
    println!(
        "seeded {rows} rows with COPY in {} ({:.0} rows/s), VACUUM ANALYZE {}; data table {} \
         with its indexes ({:.0} bytes a row)",
        secs(seeded),
        rows as f64 / seeded.as_secs_f64(),
        secs(vacuum),
        mb(data_size),
        data_size as f64 / rows.max(1) as f64
    );

    // 2. Reading the rows the index is built from.
    let start = Instant::now();
    let bytes = read_rows(&client, from, to).await;
    let read = start.elapsed();
    println!(
        "read the same rows (COPY (SELECT datetime, recalc, conjoined …) TO STDOUT): {} ({:.0} MB)",
        secs(read),
        bytes as f64 / 1e6
    );

    // 3. The index build, its size.
    match recalcd.run(&[
        "index",
        "build",
        "--channel",
        CHANNEL,
        "--from",
        &from_arg,
        "--to",
        &to_arg,
    ]) {
        Ok(out) => {
            let x = out.wall.as_secs_f64() / read.as_secs_f64();
            println!(
                "recalcd index build: {} — {x:.2}× the read (target ≤ 1.5: {})",
                secs(out.wall),
                verdict(x <= 1.5)
            );
        }
        Err(e) => println!("recalcd index build: unavailable — {e}"),
    }
    match recalcd.run(&["index", "list"]) {
        Ok(out) => println!("recalcd index list:\n{}", out.stdout.trim_end()),
        Err(e) => println!("recalcd index list: unavailable — {e}"),
    }
    let sizes = table_sizes(&client).await;
    println!("tables (pg_total_relation_size):");
    for (name, size) in &sizes {
        let mark = if is_index_table(name) {
            "  (index)"
        } else {
            ""
        };
        println!("  {name}: {}{mark}", mb(*size));
    }
    let index_size: i64 = sizes
        .iter()
        .filter(|(n, _)| is_index_table(n))
        .map(|(_, s)| s)
        .sum();
    if index_size == 0 {
        println!("index tables: none found (no table named like *index*, *feature*, *bucket*)");
    } else {
        let x = index_size as f64 / data_size.max(1) as f64;
        println!(
            "index tables: {} = {:.2} % of the data table (target ≤ 2 %: {})",
            mb(index_size),
            x * 100.0,
            verdict(x <= 0.02)
        );
    }

    // 4. The conditions.
    let mut lines = Vec::new();
    for cond in reference::conditions() {
        lines.push(
            one_condition(
                &cond,
                &client,
                &recalcd,
                &tenths,
                (from, to),
                (&from_arg, &to_arg),
            )
            .await,
        );
    }
    println!("\nsummary ({rows} rows):");
    println!("| condition | matched | SQL | scan | auto | rows read (auto) | targets |");
    println!("|---|---|---|---|---|---|---|");
    for l in &lines {
        let opt = |d: Option<Duration>| d.map_or("–".to_string(), ms);
        println!(
            "| `{}` | {:.3} % | {} | {} | {} | {} | {} |",
            l.cond,
            l.matched * 100.0,
            opt(l.sql),
            opt(l.scan),
            opt(l.auto.as_ref().map(|a| a.wall)),
            l.auto.as_ref().map_or("–".to_string(), |a| format!(
                "{} of {}",
                a.rows_read, a.rows_in_range
            )),
            targets(l)
        );
    }

    let _ = std::fs::remove_dir_all(&dir);
    drop(client);
    db.drop_now().await;
}
