//! Write-back benchmark: recalcd's batched write-back of N flagged data rows (default
//! 1,000,000; `RECALCD_BENCH_ROWS` for quick runs) against the floor for the same rows
//! — one plain binary `COPY` into a staging table plus one
//! `INSERT … ON CONFLICT DO UPDATE` — in the same run, on the PostgreSQL at
//! `DATABASE_URL` (a database of its own, dropped afterwards).
//!
//! Both phases start from the same state: the table is truncated, re-seeded with the
//! same flagged rows (~20-channel `conjoined`), `VACUUM ANALYZE`d and checkpointed. Both write the
//! same new content with `recalc = 0`. recalcd's phase polls and writes in batches of
//! `poll.batch_size` (the default, or `RECALCD_BENCH_BATCH`), exactly as the daemon
//! does; its write-back time excludes the polls, its total includes them.
//!
//! `RECALCD_BENCH_ROUNDS=N` repeats both phases N times, alternating, and prints the
//! median ratio: on a shared machine single runs vary widely.
//!
//! Prints figures; asserts nothing about time. `cargo bench --bench writeback`.

mod common;

use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveDateTime};
use common::print_median;
use futures_util::pin_mut;
use recalcd::config::Config;
use recalcd::store::{self, AnyStore, Level, Row, Store, WriteBatch};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls};

const DEVICES: usize = 100;
const ROWS_PER_JOB: usize = 100;
const CHANNELS: usize = 20;

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
}

fn base() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2024, 3, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
}

/// Row `i` as a producer wrote it: (id, datetime, data_time, conjoined).
fn seed_row(i: usize) -> (i32, NaiveDateTime, NaiveDateTime, String) {
    let id = (i % DEVICES) as i32 + 1;
    let n = i / DEVICES;
    let datetime = base() + chrono::Duration::seconds(10 * n as i64);
    let data_time = base() + chrono::Duration::seconds(10 * (n - n % ROWS_PER_JOB) as i64);
    let mut conjoined = String::with_capacity(CHANNELS * 14);
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for c in 0..CHANNELS {
        x ^= x >> 29;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        conjoined.push_str(&format!("ch{c:02}={:.3};", (x % 100_000) as f64 / 100.0));
    }
    (id, datetime, data_time, conjoined)
}

/// What the "engine" computes for a row: its content plus two derived channels.
fn computed(conjoined: &str) -> String {
    format!("{conjoined}sum={};flag=1;", conjoined.len())
}

/// The machine's 1-minute load average (other work on the machine skews the figures).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("the benchmark needs a PostgreSQL at DATABASE_URL");
    tokio::spawn(conn);
    client
}

const ROW_TYPES: [Type; 8] = [
    Type::TIMESTAMP,
    Type::TIMESTAMP,
    Type::INT4,
    Type::INT4,
    Type::TEXT,
    Type::TEXT,
    Type::INT4,
    Type::TEXT,
];

/// Streams rows `0..n` into `copy` (binary), `recalc` and content as given.
async fn copy_rows(
    client: &Client,
    copy: &str,
    n: usize,
    recalc: i32,
    transform: fn(&str) -> String,
) {
    let sink = client.copy_in(copy).await.expect("COPY");
    let writer = BinaryCopyInWriter::new(sink, &ROW_TYPES);
    pin_mut!(writer);
    let (state, user, gps) = (
        Some(1i32),
        Some("operator".to_string()),
        Some("50.0810,14.4280".to_string()),
    );
    for i in 0..n {
        let (id, datetime, data_time, conjoined) = seed_row(i);
        let conjoined = transform(&conjoined);
        writer
            .as_mut()
            .write(&[
                &datetime, &data_time, &id, &state, &user, &gps, &recalc, &conjoined,
            ])
            .await
            .expect("COPY row");
    }
    writer.finish().await.expect("COPY finish");
}

async fn reseed(client: &Client, n: usize) -> Duration {
    let start = Instant::now();
    client.batch_execute("TRUNCATE data").await.unwrap();
    copy_rows(
        client,
        r#"COPY data (datetime, data_time, id, state, "user", gps, recalc, conjoined) FROM STDIN BINARY"#,
        n,
        1,
        str::to_string,
    )
    .await;
    client.batch_execute("VACUUM ANALYZE data").await.unwrap();
    // Start each phase with no checkpoint pending (needs superuser; skipped otherwise).
    let _ = client.batch_execute("CHECKPOINT").await;
    start.elapsed()
}

/// (a) recalcd: poll a batch, compute, write it back, until nothing is flagged.
/// Returns the write-back time and the total including the polls.
async fn recalcd_phase(
    store: &mut AnyStore,
    rows: usize,
    batch_size: usize,
) -> (Duration, Duration) {
    let mut write_time = Duration::ZERO;
    let mut written = 0usize;
    let mut after = None;
    let start = Instant::now();
    loop {
        let mut batch = store
            .poll_flagged(Level::Data, after, batch_size)
            .await
            .expect("poll");
        if batch.is_empty() {
            // End of a sweep: start again from the first device; done when that is
            // empty too (as the daemon polls).
            if after.take().is_none() {
                break;
            }
            continue;
        }
        after = store::sweep_cursor(batch.iter().map(Row::key));
        for r in &mut batch {
            r.conjoined = computed(&r.conjoined);
            r.recalc = 0;
        }
        let w = Instant::now();
        let outcome = store
            .write_back(&WriteBatch {
                data: batch,
                ..Default::default()
            })
            .await
            .expect("write back");
        write_time += w.elapsed();
        assert!(outcome.skipped.is_empty());
        written += outcome.written;
    }
    assert_eq!(written, rows);
    (write_time, start.elapsed())
}

/// (b) the floor: the same rows, one binary COPY into a staging table plus one
/// `INSERT … ON CONFLICT DO UPDATE`, in one transaction.
async fn floor_phase(client: &Client, rows: usize) -> Duration {
    let start = Instant::now();
    client
        .batch_execute(
            r#"BEGIN;
               CREATE TEMP TABLE floor_stage (datetime timestamp, data_time timestamp, id integer,
                   state integer, "user" text, gps text, recalc integer, conjoined text)
                   ON COMMIT DROP;"#,
        )
        .await
        .unwrap();
    copy_rows(
        client,
        r#"COPY floor_stage (datetime, data_time, id, state, "user", gps, recalc, conjoined) FROM STDIN BINARY"#,
        rows,
        0,
        computed,
    )
    .await;
    client
        .batch_execute(
            r#"INSERT INTO data (datetime, data_time, id, state, "user", gps, recalc, conjoined)
               SELECT datetime, data_time, id, state, "user", gps, recalc, conjoined FROM floor_stage
               ON CONFLICT (id, datetime) DO UPDATE SET data_time = EXCLUDED.data_time,
                   state = EXCLUDED.state, "user" = EXCLUDED."user", gps = EXCLUDED.gps,
                   recalc = EXCLUDED.recalc, conjoined = EXCLUDED.conjoined;
               COMMIT;"#,
        )
        .await
        .unwrap();
    let elapsed = start.elapsed();
    let check = client
        .query_one("SELECT count(*) FILTER (WHERE recalc = 0) FROM data", &[])
        .await
        .unwrap();
    assert_eq!(check.get::<_, i64>(0), rows as i64);
    elapsed
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let rows = env_usize("RECALCD_BENCH_ROWS").unwrap_or(1_000_000);
    let server = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| recalcd::config::DEFAULT_DATABASE_URL.to_string());
    let name = format!("recalcd_bench_{}", std::process::id());
    let admin = connect(&server).await;
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let url = recalcd::config::url_with_database(&server, &name);
    let mut config = Config::default();
    config.database.url = url.clone();
    if let Some(b) = env_usize("RECALCD_BENCH_BATCH") {
        config.poll.batch_size = b;
    }
    let batch_size = config.poll.batch_size;

    let mut store = store::connect(&config).await.expect("connect");
    store.migrate().await.expect("migrate");
    let client = connect(&url).await;
    println!(
        "write-back benchmark: {rows} data rows, {DEVICES} devices, {CHANNELS}-channel conjoined, batch {batch_size}, load average {}",
        load_average()
    );

    let rounds = env_usize("RECALCD_BENCH_ROUNDS").unwrap_or(1).max(1);
    let mut ratios = Vec::with_capacity(rounds);
    for round in 1..=rounds {
        if rounds > 1 {
            println!("round {round} of {rounds}:");
        }
        reseed(&client, rows).await;
        let (write_time, total) = recalcd_phase(&mut store, rows, batch_size).await;
        let rss_recalcd = peak_rss_mb();
        reseed(&client, rows).await;
        let floor = floor_phase(&client, rows).await;
        let rss_after = peak_rss_mb();
        let ratio = write_time.as_secs_f64() / floor.as_secs_f64();
        ratios.push(ratio);
        println!(
            "  recalcd write-back: {:.2} s ({:.0} rows/s); with polling: {:.2} s",
            write_time.as_secs_f64(),
            rows as f64 / write_time.as_secs_f64(),
            total.as_secs_f64()
        );
        println!(
            "  floor (COPY + INSERT ON CONFLICT): {:.2} s ({:.0} rows/s)",
            floor.as_secs_f64(),
            rows as f64 / floor.as_secs_f64()
        );
        println!(
            "  ratio write-back / floor: {ratio:.2} (target <= 1.2); with polling: {:.2}",
            total.as_secs_f64() / floor.as_secs_f64()
        );
        println!("  peak RSS: {rss_recalcd:.0} MB after recalcd's phase, {rss_after:.0} MB after the floor (target <= 300 MB)");
        println!("  load average now: {}", load_average());
    }
    print_median("write-back / floor", &mut ratios);

    drop(store);
    drop(client);
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .unwrap();
}
