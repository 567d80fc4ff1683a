//! Plot benchmark (issue 14, point 5): the search benchmark's data — one device, one
//! year at 1 Hz (31,536,000 rows; `RECALCD_BENCH_ROWS` for a quick run) — in a
//! PostgreSQL database of its own at `DATABASE_URL`, the feature index on `tmp` with
//! levels `1d/1h/10m/1m` (`RECALCD_BENCH_LEVELS=1d,1h,10m,1m,10s` for others) built by
//! the real binary; plots 1,200 pixel columns wide.
//!
//! 1. Seed with the search benchmark's loader (`search/seed.rs`), `VACUUM ANALYZE`,
//!    `recalcd index build --channel tmp`.
//! 2. The whole range, its ends aligned with no bucket, through the library's plot API
//!    (`recalcd::service::plot::plot`, what `recalcd plot` and `recalcd serve` call):
//!    the first (coarsest) frame and the final exact frame, each the best of
//!    `RECALCD_BENCH_ROUNDS` (default 3) runs, rows and buckets read (against the rows
//!    in the range), the memory allocated while plotting (peak above what was held
//!    before, counted by this benchmark's allocator). The final frame is checked
//!    against M4 computed in Rust over the generated values.
//! 3. The baseline: M4 in SQL over the raw rows of the same range (the value extracted
//!    from `conjoined` with a regular expression, `GROUP BY` pixel column for min, max,
//!    first and last time and value) — checked against the
//!    same reference and timed in the same run (`RECALCD_BENCH_SQL=0` skips it).
//! 4. A one-day zoom (ends aligned with no bucket) in the middle: first and final frame;
//!    and the client's share of its raw read: finding `tmp` in every row's `conjoined`
//!    text as the raw reads do, against iterating every entry, in the same run.
//! 5. `recalcd plot … --out FILE.png` of the whole range through the real binary (wall
//!    time, process start and PNG encoding included).
//! 6. The same through `recalcd serve`'s API with 8 concurrent viewers: latency p50 and
//!    p99 of the first and the final frame (`plot/serve.rs`; `RECALCD_BENCH_VIEWERS`,
//!    `RECALCD_BENCH_VIEWS`; `RECALCD_BENCH_SERVE=0` skips it).
//!
//! Prints figures next to the targets; the checks never stop the run.
//! `cargo bench --bench plot`.

mod common;
#[path = "search/seed.rs"]
mod seed;
#[path = "search/series.rs"]
mod series;
#[path = "plot/serve.rs"]
mod serve;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use common::{connect, env_usize, secs, BenchDb};
use recalcd::config::Config;
use recalcd::index::m4::{m4, Column, Columns};
use recalcd::index::{micros, Micros, Point, SECOND};
use recalcd::service::plot::{plot, Plot, PlotRequest};
use recalcd::store::index::IndexStore;
use recalcd::store::{self, AnyStore, Store};
use tokio_postgres::Client;

/// Counts the bytes allocated now and at the peak, for the plotting memory.
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; the counters are
// only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let now = CURRENT.fetch_add(new_size - layout.size(), Ordering::Relaxed)
                    + (new_size - layout.size());
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The indexed channel.
const CHANNEL: &str = "tmp";

/// The index's levels (as the search benchmark's); `RECALCD_BENCH_LEVELS` (e.g.
/// `1d,1h,10m,1m,10s`) for others.
const LEVELS: &str = "1d,1h,10m,1m";

/// The index's configuration for `levels`.
fn config_text(levels: &[String]) -> String {
    let quoted: Vec<String> = levels.iter().map(|l| format!("\"{l}\"")).collect();
    format!(
        "[[index.feature]]\nchannel = \"tmp\"\nlevels = [{}]\nunit = \"°C\"\n",
        quoted.join(", ")
    )
}

/// Pixel columns.
const WIDTH: u32 = 1_200;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

/// M4 over the generated values (the reference).
fn reference(t0: Micros, tenths: &[i32], cols: &Columns) -> Vec<Option<Column>> {
    let first = ((cols.from - t0).max(0) / SECOND) as usize;
    let last = (((cols.to - t0 + SECOND - 1) / SECOND) as usize).min(tenths.len());
    m4(
        cols,
        (first..last).map(|i| Point {
            t: t0 + i as Micros * SECOND,
            v: Some(f64::from(tenths[i]) / 10.0),
        }),
    )
}

/// The first difference between two M4 answers, as text.
fn check(got: &[Option<Column>], want: &[Option<Column>]) -> String {
    if got.len() != want.len() {
        return format!("DIFFERS: {} columns, want {}", got.len(), want.len());
    }
    match got.iter().zip(want).position(|(a, b)| a != b) {
        None => format!(
            "equal to M4 over every generated value ({} columns with data)",
            want.iter().flatten().count()
        ),
        Some(c) => format!("DIFFERS at column {c}: {:?}, want {:?}", got[c], want[c]),
    }
}

/// What one timed plot gave.
struct Timed {
    best: Duration,
    plot: Plot,
    /// Bytes allocated at the peak above what was held before the call.
    peak: usize,
}

/// The best of `rounds` runs of the plot API.
async fn timed(
    data: &AnyStore,
    index: &IndexStore,
    config: &Config,
    req: &PlotRequest,
    stop_after: Option<usize>,
    rounds: usize,
) -> Timed {
    let mut best = Duration::MAX;
    let mut peak = 0;
    let mut last = None;
    for _ in 0..rounds.max(1) {
        let before = CURRENT.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let start = Instant::now();
        let p = plot(data, Some(index), &config.index, req, stop_after)
            .await
            .expect("plot");
        best = best.min(start.elapsed());
        peak = peak.max(PEAK.load(Ordering::Relaxed).saturating_sub(before));
        last = Some(p);
    }
    Timed {
        best,
        plot: last.expect("a round"),
        peak,
    }
}

/// M4 in SQL over the raw rows of `[from, to)`: the columns and the wall time.
async fn sql_m4(
    client: &Client,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> (Vec<Option<Column>>, Duration) {
    let span = micros(to) - micros(from);
    // Of the plain forms tried on 580,000 rows, the fastest: one pass grouping by
    // column, the first and last values from ordered arrays (5.4 s under load, against
    // 9.1 s for the M4 paper's form joining the extremes' times back to the rows and
    // 9.4 s for window functions with DISTINCT ON).
    let sql = format!(
        "SELECT c, min(v), max(v), min(t), (array_agg(v ORDER BY t))[1],
                max(t), (array_agg(v ORDER BY t DESC))[1]
           FROM (SELECT t, v,
                        ((extract(epoch FROM t - $2::timestamp) * 1000000)::bigint * $4 / $5)::int AS c
                   FROM (SELECT datetime AS t,
                                substring(conjoined FROM '(?:^|;){CHANNEL}=([^;]*)')::float8 AS v
                           FROM data WHERE id = $1 AND datetime >= $2 AND datetime < $3) e
                  WHERE v IS NOT NULL) p
          GROUP BY c ORDER BY c"
    );
    let start = Instant::now();
    let rows = client
        .query(
            &sql,
            &[&series::DEVICE, &from, &to, &i64::from(WIDTH), &span],
        )
        .await
        .expect("the SQL M4");
    let took = start.elapsed();
    let mut out = vec![None; WIDTH as usize];
    for r in rows {
        let c: i32 = r.get(0);
        let point = |t: NaiveDateTime, v: f64| Point {
            t: micros(t),
            v: Some(v),
        };
        if let Some(slot) = out.get_mut(c as usize) {
            *slot = Some(Column {
                min: r.get(1),
                max: r.get(2),
                first: point(r.get(3), r.get(4)),
                last: point(r.get(5), r.get(6)),
            });
        }
    }
    (out, took)
}

/// The client's share of a raw read: finding `tmp` in the `conjoined` text of every row
/// of `span`, by the reader raw reads use (`conjoined::last_entry`) and by iterating
/// every entry (what they did before), in the same run; best of 5 each.
async fn parse_figures(client: &Client, span: (Micros, Micros)) -> (Duration, Duration, usize) {
    let rows = client
        .query(
            "SELECT conjoined FROM data WHERE id = $1 AND datetime >= $2 AND datetime < $3",
            &[
                &series::DEVICE,
                &recalcd::index::datetime(span.0),
                &recalcd::index::datetime(span.1),
            ],
        )
        .await
        .expect("the zoom's rows");
    let texts: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let best = |f: &dyn Fn(&str) -> Option<f64>| {
        (0..5)
            .map(|_| {
                let start = Instant::now();
                let sum: f64 = texts.iter().filter_map(|t| f(t)).sum();
                std::hint::black_box(sum);
                start.elapsed()
            })
            .min()
            .expect("rounds")
    };
    let number = |v: recalcd::lang::value::Value| match v {
        recalcd::lang::value::Value::Num(n) => Some(n),
        _ => None,
    };
    let fast =
        best(&|t| recalcd::conjoined::last_entry(t, CHANNEL).and_then(|e| number(e.value())));
    let slow = best(&|t| {
        recalcd::conjoined::entries(t)
            .flatten()
            .filter(|e| recalcd::conjoined::same_name(&e.name, CHANNEL))
            .last()
            .and_then(|e| number(e.value()))
    });
    println!(
        "  reading `{CHANNEL}` out of the {} rows' conjoined text: {} (every entry iterated: {})",
        texts.len(),
        ms(fast),
        ms(slow)
    );
    (fast, slow, texts.len())
}

/// One range: the first and final frame through the API, checked.
async fn one_range(
    what: &str,
    (data, index, config): (&AnyStore, &IndexStore, &Config),
    (t0, tenths): (Micros, &[i32]),
    (from, to): (Micros, Micros),
    rounds: usize,
) -> (Timed, Timed) {
    let req = PlotRequest {
        channel: CHANNEL.into(),
        id: series::DEVICE,
        range: (from, to),
        width: WIDTH,
    };
    let first = timed(data, index, config, &req, Some(0), rounds).await;
    let full = timed(data, index, config, &req, None, rounds).await;
    let cols = Columns::new(from, to, WIDTH).expect("a range");
    let want = reference(t0, tenths, &cols);
    let rows_in_range = ((to - t0 + SECOND - 1) / SECOND).min(tenths.len() as Micros)
        - ((from - t0 + SECOND - 1) / SECOND).max(0);
    let f = full.plot.frames.last().expect("a frame");
    let share = f.rows_read as f64 / rows_in_range.max(1) as f64;
    println!(
        "\n{what}: {} to {} ({rows_in_range} rows, {WIDTH} columns)",
        recalcd::index::datetime(from),
        recalcd::index::datetime(to)
    );
    println!(
        "  first frame (level {}): {}; {} buckets read; memory {:.2} MB",
        first.plot.frames[0]
            .level
            .map_or("raw".into(), |l| format!("{} s", l / SECOND)),
        ms(first.best),
        first.plot.frames[0].buckets_read,
        first.peak as f64 / 1e6
    );
    println!(
        "  final exact frame ({} frames): {}; rows read {} = {:.4} % of the range, buckets read {}; \
         memory {:.2} MB; {}",
        full.plot.frames.len(),
        ms(full.best),
        f.rows_read,
        share * 100.0,
        f.buckets_read,
        full.peak as f64 / 1e6,
        check(&f.columns, &want)
    );
    (first, full)
}

async fn bench() {
    let rows = env_usize("RECALCD_BENCH_ROWS").unwrap_or(series::YEAR_ROWS);
    let rounds = env_usize("RECALCD_BENCH_ROUNDS").unwrap_or(3);
    let db = BenchDb::create("recalcd_bench_plot").await;
    let mut config = Config::default();
    config.database.url = db.url.clone();
    let mut store = store::connect(&config).await.expect("connect");
    store.migrate().await.expect("migrate");
    drop(store);
    let client = connect(&db.url).await;
    let dir = std::env::temp_dir().join(format!("recalcd_bench_plot_{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config_file = dir.join("recalcd.toml");
    let levels: Vec<String> = std::env::var("RECALCD_BENCH_LEVELS")
        .unwrap_or_else(|_| LEVELS.into())
        .split(',')
        .map(|l| l.trim().to_string())
        .collect();
    std::fs::write(&config_file, config_text(&levels)).expect("config file");
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_recalcd"));
    let recalcd = |args: &[&str]| {
        let start = Instant::now();
        let out = std::process::Command::new(exe)
            .arg("--config")
            .arg(&config_file)
            .arg("--database-url")
            .arg(&db.url)
            .args(args)
            .output()
            .expect("run recalcd");
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        (start.elapsed(), out.status.success(), err)
    };

    // 1. Seed, index.
    let start_t = series::start();
    let t0 = micros(start_t);
    println!(
        "plot benchmark: device {}, {rows} rows at 1 Hz from {start_t}, channel {CHANNEL}, \
         index levels {}, {WIDTH} columns, best of {rounds} rounds",
        series::DEVICE,
        levels.join("/")
    );
    let start = Instant::now();
    let tenths = seed::seed(&client, rows).await;
    client
        .batch_execute("VACUUM ANALYZE data")
        .await
        .expect("VACUUM");
    println!("seeded and analysed in {}", secs(start.elapsed()));
    let days = (rows as i64 + 86_399) / 86_400;
    let last_day = (start_t + chrono::Duration::days(days - 1))
        .date()
        .to_string();
    let (took, ok, err) = recalcd(&[
        "index",
        "build",
        "--channel",
        CHANNEL,
        "--from",
        &start_t.date().to_string(),
        "--to",
        &last_day,
    ]);
    println!(
        "recalcd index build: {} ({})",
        secs(took),
        if ok {
            "ok".into()
        } else {
            format!("FAILED: {err}")
        }
    );

    let data = store::connect(&config).await.expect("data store");
    let mut index_config = config.clone();
    index_config.index = recalcd::config::index::RawIndex {
        database_url: None,
        feature: vec![recalcd::config::index::RawFeatureIndex {
            channel: CHANNEL.into(),
            levels: levels.clone(),
            unit: Some("°C".into()),
            devices: None,
        }],
        ..recalcd::config::index::RawIndex::default()
    }
    .validate()
    .expect("the index's configuration");
    let index = IndexStore::connect(&index_config)
        .await
        .expect("index store");
    let stores = (&data, &index, &index_config);

    // 2. The whole range, its ends aligned with no bucket.
    let n = rows as Micros;
    let from = t0 + (n / 97) * SECOND + 123_457;
    let to = t0 + (n - n / 89) * SECOND - 654_321;
    let (first, full) = one_range("whole range", stores, (t0, &tenths), (from, to), rounds).await;

    // 3. The SQL baseline.
    let sql = if std::env::var("RECALCD_BENCH_SQL").as_deref() == Ok("0") {
        println!("  M4 in SQL: skipped (RECALCD_BENCH_SQL=0)");
        None
    } else {
        let (cols, took) = sql_m4(
            &client,
            recalcd::index::datetime(from),
            recalcd::index::datetime(to),
        )
        .await;
        let want = reference(
            t0,
            &tenths,
            &Columns::new(from, to, WIDTH).expect("a range"),
        );
        println!(
            "  M4 in SQL over the raw rows: {}; {}",
            ms(took),
            check(&cols, &want)
        );
        Some(took)
    };

    // 4. A one-day zoom in the middle.
    let mid = t0 + (n / 2) * SECOND + 12_345_678;
    let (zoom_first, zoom) = one_range(
        "one-day zoom",
        stores,
        (t0, &tenths),
        (mid, mid + 86_400 * SECOND),
        rounds,
    )
    .await;

    let parse = parse_figures(&client, (mid, mid + 86_400 * SECOND)).await;

    // 5. Through the binary.
    let png = dir.join("plot.png");
    let (took, ok, err) = recalcd(&[
        "plot",
        "--channel",
        CHANNEL,
        "--id",
        &series::DEVICE.to_string(),
        "--from",
        &recalcd::index::datetime(from)
            .format("%Y-%m-%dT%H:%M:%S%.6f")
            .to_string(),
        "--to",
        &recalcd::index::datetime(to)
            .format("%Y-%m-%dT%H:%M:%S%.6f")
            .to_string(),
        "--width",
        "1292",
        "--height",
        "400",
        "--out",
        png.to_str().expect("a path"),
    ]);
    println!(
        "\nrecalcd plot --width 1292 (1,200 columns) --out plot.png: {} wall ({})",
        ms(took),
        if ok { err } else { format!("FAILED: {err}") }
    );

    // 6. Through `recalcd serve`'s API, several viewers at once.
    let served = if std::env::var("RECALCD_BENCH_SERVE").as_deref() == Ok("0") {
        println!("\nrecalcd serve: skipped (RECALCD_BENCH_SERVE=0)");
        None
    } else {
        println!("\nrecalcd serve, /api/plot:");
        serve::viewers(
            exe,
            &config_file,
            &db.url,
            series::DEVICE,
            (from, to),
            WIDTH,
        )
    };

    // Summary against the targets.
    let f = full.plot.frames.last().expect("a frame");
    let in_range = (to - from) / SECOND;
    let peak = first
        .peak
        .max(full.peak)
        .max(zoom.peak)
        .max(zoom_first.peak) as f64
        / 1e6;
    println!("\nsummary ({rows} rows, {WIDTH} columns; targets of issue 14):");
    println!("| figure | measured | target |");
    println!("|---|---|---|");
    println!(
        "| first frame | {} | ≤ 50 ms: {} |",
        ms(first.best),
        verdict(first.best <= Duration::from_millis(50))
    );
    println!(
        "| final exact frame | {} | ≤ 500 ms: {} |",
        ms(full.best),
        verdict(full.best <= Duration::from_millis(500))
    );
    println!(
        "| rows read (index + raw) | {} rows + {} buckets = {:.4} % of the range | ≤ 0.2 %: {} |",
        f.rows_read,
        f.buckets_read,
        (f.rows_read + f.buckets_read) as f64 / in_range.max(1) as f64 * 100.0,
        verdict((f.rows_read + f.buckets_read) as f64 / in_range.max(1) as f64 <= 0.002)
    );
    match sql {
        Some(sql) => {
            let x = sql.as_secs_f64() / full.best.as_secs_f64();
            println!(
                "| vs M4 in SQL | {} vs {} = {x:.0}× | ≥ 30×: {} |",
                ms(full.best),
                ms(sql),
                verdict(x >= 30.0)
            );
        }
        None => println!("| vs M4 in SQL | skipped | ≥ 30× |"),
    }
    println!(
        "| plotting memory (peak allocated) | {peak:.2} MB | ≤ 50 MB: {} |",
        verdict(peak <= 50.0)
    );
    println!(
        "| one-day zoom, final frame | {} (first {}) | ≤ 100 ms: {} |",
        ms(zoom.best),
        ms(zoom_first.best),
        verdict(zoom.best <= Duration::from_millis(100))
    );

    println!(
        "| one-day zoom: `{CHANNEL}` out of {} rows' text (client CPU of the raw read) | {} (every entry iterated: {}) | — |",
        parse.2,
        ms(parse.0),
        ms(parse.1)
    );
    if let Some((coarse, fine, viewers)) = &served {
        for l in [coarse, fine] {
            println!(
                "| serve API, {viewers} viewers: {} | p50 {}, p99 {} ({} requests) | — |",
                l.what,
                ms(l.quantile(0.5)),
                ms(l.quantile(0.99)),
                l.times.len()
            );
        }
    }

    drop(index);
    drop(data);
    let _ = std::fs::remove_dir_all(&dir);
    drop(client);
    db.drop_now().await;
}
