//! Engine benchmark: `recalcd once` end to end on the demo's data set at bench scale —
//! 1,000,000 flagged data rows (100 devices, 10,000 jobs of 100 rows; the demo's 20
//! data, 10 job and 10 day equations) — against the store floor for the same rows, in
//! the same run, on the PostgreSQL at `DATABASE_URL` (a database of its own, dropped
//! afterwards). `RECALCD_BENCH_ROWS` for quick runs (rounded to whole jobs),
//! `RECALCD_BENCH_BATCH` for another `poll.batch_size`, `RECALCD_BENCH_SHAPE` for another
//! data shape: `jobs` (the default), `long-days` (140 devices, one day of 70 jobs of 100
//! rows each) or `short-jobs` (1,000 devices, 10 days of 10 jobs of 10 rows).
//!
//! 1. Not timed: migrate, insert the equations and constants, `COPY` the flagged rows in,
//!    `VACUUM ANALYZE`, `CHECKPOINT`.
//! 2. Timed: what `recalcd once` does — load the equations, then batches of poll, load,
//!    compute and write back until nothing is flagged (in process, the configured batch
//!    size). The peak RSS (`VmHWM`) is read right after.
//! 3. Not timed: save the rows recalcd wrote (data, job, day) with `COPY TO`, then reset
//!    the tables to step 1's state (data re-seeded flagged, no jobs or days; vacuumed
//!    and checkpointed).
//! 4. Timed, the floor: in one transaction, per table, a plain binary `COPY` of the
//!    saved rows into a staging table and one `INSERT … ON CONFLICT DO UPDATE`.
//!
//! `RECALCD_BENCH_DAEMON=1` then also times `recalcd run`'s loop (in process, without
//! its HTTP endpoint) draining the same re-seeded backlog until nothing is flagged.
//!
//! `RECALCD_BENCH_ROUNDS=N` repeats steps 2–4 N times (re-seeding in between) and prints
//! the median ratio: on a shared machine single runs vary widely. Each timed part also
//! reports the CPU time this process and the PostgreSQL server used during it.
//!
//! With `QUESTDB_URL` set, the same benchmark also runs on that QuestDB first (against
//! QuestDB's own floor, and the demo on both stores): see `engine_questdb/mod.rs`.
//! `RECALCD_BENCH_QUESTDB_ONLY=1` then skips the PostgreSQL part.
//!
//! `RECALCD_BENCH_INDEX=tmp` instead compares `recalcd once` (the binary) with a feature
//! index declared and built on that channel against the same without it, in alternating
//! rounds (issue 13: at most 10 % slower); see `engine_index/mod.rs`.
//!
//! Prints figures; asserts nothing about time. `cargo bench --bench engine`.

mod common;
#[path = "engine_questdb/mod.rs"]
mod on_questdb;
#[path = "engine_index/mod.rs"]
mod with_index;

use std::time::Instant;

use common::{
    begin_stage, commit, connect, copy_in_from_file, copy_out_to_file, copy_rows, cpu_seconds,
    cpu_since, env_usize, peak_rss_mb, print_median, secs, shape_for, upsert_from_stage, BenchDb,
};
use recalcd::config::Config;
use recalcd::demo::Dataset;
use recalcd::service::{run_until_idle, Recalculator};
use recalcd::store::{self, Store};
use tokio_postgres::Client;

/// Data re-seeded flagged from the generator, no jobs, days or errors; vacuumed.
async fn reset(client: &Client, set: &Dataset) -> usize {
    client
        .batch_execute("TRUNCATE data, job, day, recalcd_errors")
        .await
        .expect("TRUNCATE");
    let n = copy_rows(client, "data", set.jobs().flatten()).await;
    client
        .batch_execute("VACUUM ANALYZE data, job, day")
        .await
        .expect("VACUUM");
    // Both timed parts start from a fresh checkpoint, so that neither pays for the
    // other's dirty pages (it needs a superuser; without one, the figures are noisier).
    if let Err(e) = client.batch_execute("CHECKPOINT").await {
        eprintln!("CHECKPOINT refused ({e}); the figures will vary more");
    }
    n
}

/// The server's current WAL position.
async fn wal_lsn(client: &Client) -> String {
    client
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .and_then(|r| r.try_get(0))
        .expect("WAL position")
}

/// Megabytes of WAL written since `lsn`.
async fn wal_since(client: &Client, lsn: &str) -> f64 {
    client
        .query_one(
            "SELECT (pg_current_wal_lsn() - $1::text::pg_lsn)::float8 / 1e6",
            &[&lsn],
        )
        .await
        .and_then(|r| r.try_get(0))
        .expect("WAL written")
}

/// The allocator of the `recalcd` binary (`src/main.rs`), so that this measures what
/// `recalcd once` does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // `RUST_LOG=recalcd::service=debug` shows each batch's phases (poll, load, compute,
    // write).
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    // As `recalcd once` runs: a multi-threaded runtime with two workers.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}

/// One round: `recalcd once` on the seeded rows, then (after a reset) the floor for the
/// rows it wrote; prints the figures and returns the ratio.
async fn round_once_then_floor(
    config: &Config,
    store: &mut store::AnyStore,
    client: &Client,
    set: &Dataset,
    rows: usize,
) -> f64 {
    // recalcd once, end to end.
    let wal = wal_lsn(client).await;
    let cpu = cpu_seconds();
    let start = Instant::now();
    let recalc = Recalculator::load(&*store, config.engine.clone(), config.poll.batch_size)
        .await
        .expect("load equations");
    let (total, _) = run_until_idle(&recalc, store, |_| {})
        .await
        .expect("recalculate");
    let e2e = start.elapsed();
    let e2e_cpu = cpu_since(cpu);
    let e2e_wal = wal_since(client, &wal).await;
    let rss = peak_rss_mb();
    assert_eq!(total.data, rows, "every data row is written once");
    assert_eq!(total.failed_rows, 0, "the demo's equations all compute");
    let written = total.data + total.jobs + total.days;

    // The floor: the same rows, COPY + one upsert per table.
    let dir = std::env::temp_dir().join(format!("recalcd_bench_engine_{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let tables = ["data", "job", "day"];
    for t in tables {
        copy_out_to_file(client, t, &dir.join(t)).await;
    }
    reset(client, set).await;
    let wal = wal_lsn(client).await;
    let cpu = cpu_seconds();
    let start = Instant::now();
    for t in tables {
        let stage = format!("floor_{t}");
        begin_stage(client, &stage).await;
        copy_in_from_file(client, &stage, &dir.join(t)).await;
        upsert_from_stage(client, t, &stage).await;
        commit(client).await;
    }
    let floor = start.elapsed();
    let floor_cpu = cpu_since(cpu);
    let floor_wal = wal_since(client, &wal).await;
    let _ = std::fs::remove_dir_all(&dir);
    let check = client
        .query_one(
            "SELECT (SELECT count(*) FROM data WHERE recalc = 0), (SELECT count(*) FROM job)",
            &[],
        )
        .await
        .expect("check");
    assert_eq!(check.get::<_, i64>(0), rows as i64);
    assert_eq!(check.get::<_, i64>(1), total.jobs as i64);

    let per_sec = |d: std::time::Duration| rows as f64 / d.as_secs_f64();
    println!(
        "  recalcd once: {} ({:.0} data rows/s); wrote {} data rows, {} jobs, {} days ({written} rows)",
        secs(e2e),
        per_sec(e2e),
        total.data,
        total.jobs,
        total.days
    );
    println!(
        "  floor (COPY + INSERT ON CONFLICT of the same {written} rows): {} ({:.0} data rows/s)",
        secs(floor),
        per_sec(floor)
    );
    println!("  WAL written: recalcd once {e2e_wal:.0} MB, floor {floor_wal:.0} MB");
    println!("  recalcd once {e2e_cpu}; floor {floor_cpu}");
    println!(
        "  ratio end to end / floor: {:.2} (target <= 1.5)",
        e2e.as_secs_f64() / floor.as_secs_f64()
    );
    println!("  peak RSS after recalcd once: {rss:.0} MB (target <= 300 MB)");
    println!(
        "  the thesis: 5,000 rows in 151 s (33 rows/s); here {:.0}× that rate",
        per_sec(e2e) / (5000.0 / 151.0)
    );
    e2e.as_secs_f64() / floor.as_secs_f64()
}

/// `recalcd run`'s loop (without its HTTP endpoint) on the re-seeded rows, timed until
/// nothing is flagged and it has stopped on the shutdown that sees it.
async fn daemon_drain(config: &Config, client: &Client, rows: usize) {
    let idle = async {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let flagged: bool = client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM data WHERE recalc > 0)
                         OR EXISTS (SELECT 1 FROM job WHERE recalc > 0)
                         OR EXISTS (SELECT 1 FROM day WHERE recalc > 0)",
                    &[],
                )
                .await
                .and_then(|r| r.try_get(0))
                .expect("flags");
            if !flagged {
                return;
            }
        }
    };
    let cpu = cpu_seconds();
    let start = Instant::now();
    recalcd::service::run(config, idle).await.expect("daemon");
    let elapsed = start.elapsed();
    let done: i64 = client
        .query_one("SELECT count(*) FROM data WHERE recalc = 0", &[])
        .await
        .and_then(|r| r.try_get(0))
        .expect("count");
    assert_eq!(done, rows as i64, "the daemon computed every data row");
    println!(
        "recalcd run (the daemon, draining the same backlog): {} ({:.0} data rows/s); {}",
        secs(elapsed),
        rows as f64 / elapsed.as_secs_f64(),
        cpu_since(cpu)
    );
}

async fn bench() {
    if let Some(quest) = on_questdb::Quest::from_env() {
        on_questdb::bench(&quest).await;
        if std::env::var_os("RECALCD_BENCH_QUESTDB_ONLY").is_some() {
            return;
        }
    }
    let (shape, scale) = shape_for(env_usize("RECALCD_BENCH_ROWS").unwrap_or(1_000_000));
    let set = Dataset::new(scale, 1);
    let db = BenchDb::create("recalcd_bench_engine").await;
    let mut config = Config::default();
    config.database.url = db.url.clone();
    if let Some(b) = env_usize("RECALCD_BENCH_BATCH") {
        config.poll.batch_size = b;
    }
    let mut store = store::connect(&config).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
        .insert_definitions(&set.constants(), &set.equations())
        .await
        .expect("definitions");
    let client = connect(&db.url).await;

    let start = Instant::now();
    let rows = reset(&client, &set).await;
    println!(
        "engine benchmark, shape {shape}: {rows} flagged data rows, {} devices, {} days of {} jobs, \
         {} equations (20 data, 10 job, 10 day; two day equations read $d$x), batch {}; seeded in {}",
        scale.devices,
        scale.days,
        scale.jobs_per_day,
        set.equations().len(),
        config.poll.batch_size,
        secs(start.elapsed())
    );

    let rounds = env_usize("RECALCD_BENCH_ROUNDS").unwrap_or(1).max(1);
    if let Ok(channel) = std::env::var("RECALCD_BENCH_INDEX") {
        drop(store);
        let index = with_index::IndexBench::new(&channel, &db.url, config.poll.batch_size);
        index.run(&client, rounds, || reset(&client, &set)).await;
        drop(index);
        drop(client);
        db.drop_now().await;
        return;
    }
    let mut ratios = Vec::with_capacity(rounds);
    for round in 1..=rounds {
        if rounds > 1 {
            println!("round {round} of {rounds}:");
            if round > 1 {
                reset(&client, &set).await;
            }
        }
        ratios.push(round_once_then_floor(&config, &mut store, &client, &set, rows).await);
    }
    print_median("end to end / floor", &mut ratios);
    if std::env::var_os("RECALCD_BENCH_DAEMON").is_some() {
        reset(&client, &set).await;
        daemon_drain(&config, &client, rows).await;
    }

    drop(store);
    drop(client);
    db.drop_now().await;
}
