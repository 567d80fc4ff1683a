//! Write-back benchmark: recalcd's batched write-back of N flagged data rows (default
//! 1,000,000; `RECALCD_BENCH_ROWS` for quick runs) against the floor for the same rows
//! — one plain binary `COPY` into a staging table plus one
//! `INSERT … ON CONFLICT DO UPDATE` — in the same run, on the PostgreSQL at
//! `DATABASE_URL` (a database of its own, dropped afterwards).
//!
//! Both phases start from the same state: the table is truncated, re-seeded with the
//! same flagged rows (~20-channel `conjoined`) and `VACUUM ANALYZE`d. Both write the
//! same new content with `recalc = 0`. recalcd's phase polls and writes in batches of
//! `poll.batch_size` (the default, or `RECALCD_BENCH_BATCH`), exactly as the daemon
//! does; its write-back time excludes the polls, its total includes them.
//!
//! Prints figures; asserts nothing about time. `cargo bench --bench writeback`.

mod common;

use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveDateTime};
use common::{
    begin_stage, commit, connect, copy_rows, env_usize, peak_rss_mb, upsert_from_stage, BenchDb,
};
use recalcd::config::Config;
use recalcd::store::{self, Level, Row, RowVersion, Store, WriteBatch};
use tokio_postgres::Client;

const DEVICES: usize = 100;
const ROWS_PER_JOB: usize = 100;
const CHANNELS: usize = 20;

fn base() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2024, 3, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
}

/// Row `i` as a producer wrote it, with `recalc` and its content passed through `transform`.
fn seed_row(i: usize, recalc: i32, transform: fn(&str) -> String) -> Row {
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
    Row {
        datetime,
        data_time,
        id,
        state: Some(1),
        user: Some("operator".to_string()),
        gps: Some("50.0810,14.4280".to_string()),
        recalc,
        conjoined: transform(&conjoined),
        version: RowVersion::ABSENT,
    }
}

/// What the "engine" computes for a row: its content plus two derived channels.
fn computed(conjoined: &str) -> String {
    format!("{conjoined}sum={};flag=1;", conjoined.len())
}

async fn reseed(client: &Client, n: usize) -> Duration {
    let start = Instant::now();
    client.batch_execute("TRUNCATE data").await.unwrap();
    copy_rows(
        client,
        "data",
        (0..n).map(|i| seed_row(i, 1, str::to_string)),
    )
    .await;
    client.batch_execute("VACUUM ANALYZE data").await.unwrap();
    start.elapsed()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let rows = env_usize("RECALCD_BENCH_ROWS").unwrap_or(1_000_000);
    let db = BenchDb::create("recalcd_bench").await;
    let url = db.url.clone();
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
        "write-back benchmark: {rows} data rows, {DEVICES} devices, {CHANNELS}-channel conjoined, batch {batch_size}"
    );

    // (a) recalcd: poll a batch, compute, write it back; until nothing is flagged.
    let seeded = reseed(&client, rows).await;
    println!("  seeded in {:.1} s", seeded.as_secs_f64());
    let mut write_time = Duration::ZERO;
    let mut written = 0usize;
    let start = Instant::now();
    loop {
        let mut batch = store
            .poll_flagged(Level::Data, batch_size)
            .await
            .expect("poll");
        if batch.is_empty() {
            break;
        }
        for r in &mut batch {
            r.conjoined = computed(&r.conjoined);
            r.recalc = 0;
        }
        let w = Instant::now();
        let outcome = store
            .write_back(WriteBatch {
                data: batch,
                ..Default::default()
            })
            .await
            .expect("write back");
        write_time += w.elapsed();
        assert!(outcome.skipped.is_empty());
        written += outcome.written;
    }
    let total = start.elapsed();
    assert_eq!(written, rows);
    let rss_recalcd = peak_rss_mb();

    // (b) the floor: the same rows, one COPY + one INSERT … ON CONFLICT DO UPDATE.
    reseed(&client, rows).await;
    let start = Instant::now();
    begin_stage(&client, "floor_stage").await;
    copy_rows(
        &client,
        "floor_stage",
        (0..rows).map(|i| seed_row(i, 0, computed)),
    )
    .await;
    upsert_from_stage(&client, "data", "floor_stage").await;
    commit(&client).await;
    let floor = start.elapsed();
    let rss_after = peak_rss_mb();
    let check = client
        .query_one(
            "SELECT count(*) FILTER (WHERE recalc = 0), count(*) FROM data",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(check.get::<_, i64>(0), rows as i64);

    let ratio = write_time.as_secs_f64() / floor.as_secs_f64();
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

    drop(store);
    drop(client);
    db.drop_now().await;
}
