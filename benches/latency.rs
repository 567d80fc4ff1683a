//! Wake-up latency of `recalcd run`: from a flagged insert to its result being written
//! (`recalc = 0` visible to another session), with notifications (`poll.notify`,
//! PostgreSQL `LISTEN`/`NOTIFY`) and with polling only (`poll.interval` = 1 s).
//!
//! Runs the daemon in-process against the PostgreSQL at `DATABASE_URL` (a database of
//! its own, dropped afterwards), inserts `RECALCD_BENCH_SAMPLES` (default 50) flagged
//! rows one at a time, each a job of its own, with pauses spread over 50-1050 ms between
//! them (so that polling is sampled at every phase of its interval rather than always
//! just after the daemon went to sleep), and watches each row from a second connection
//! every millisecond. Prints p50 / p90 / p99 / max.
//!
//! Then the price producers pay for the notify trigger (migration 0003): the time of
//! one `INSERT … SELECT` of `RECALCD_BENCH_BULK` (default 1,000,000) flagged rows into
//! the data table with the trigger and with it disabled, alternately, twice each.
//!
//! Prints figures; asserts nothing about time. `cargo bench --bench latency`.

use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveDateTime};
use recalcd::config::Config;
use recalcd::store::{self, Store};
use tokio_postgres::{Client, NoTls};

async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("the benchmark needs a PostgreSQL at DATABASE_URL");
    tokio::spawn(conn);
    client
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let rest = url.find("://").map_or(0, |i| i + 3);
    let query = url[rest..].find('?').map_or(url.len(), |i| rest + i);
    let path = url[rest..query].find('/').map_or(query, |i| rest + i);
    format!("{}/{}{}", &url[..path], name, &url[query..])
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Runs one daemon with `notify` and measures `samples` inserts; the sorted latencies.
async fn measure(url: &str, notify: bool, samples: usize, first: usize) -> Vec<Duration> {
    let mut config = Config::default();
    config.database.url = url.to_string();
    config.poll.interval = Duration::from_secs(1);
    config.poll.notify = notify;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(async move {
        recalcd::service::run(&config, async move {
            let _ = stopped.await;
        })
        .await
    });
    // Let it connect, listen and go idle.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let producer = connect(url).await;
    let watcher = connect(url).await;
    let insert = producer
        .prepare(
            "INSERT INTO data (datetime, data_time, id, recalc, conjoined)
             VALUES ($1, $1, 1, 1, 'x=3;')",
        )
        .await
        .expect("prepare");
    let done = watcher
        .prepare("SELECT recalc = 0 FROM data WHERE id = 1 AND datetime = $1")
        .await
        .expect("prepare");
    let base: NaiveDateTime = NaiveDate::from_ymd_opt(2024, 3, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let mut latencies = Vec::with_capacity(samples);
    for i in first..first + samples {
        let at = base + chrono::Duration::minutes(i as i64);
        let started = Instant::now();
        producer.execute(&insert, &[&at]).await.expect("insert");
        loop {
            let row = watcher.query_one(&done, &[&at]).await.expect("watch");
            if row.get::<_, bool>(0) {
                break;
            }
            if started.elapsed() > Duration::from_secs(10) {
                panic!("row {i} not computed within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push(started.elapsed());
        let pause = 50 + (i as u64 * 389) % 1000;
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    let _ = stop.send(());
    daemon
        .await
        .expect("daemon task")
        .expect("daemon stops cleanly");
    latencies.sort();
    latencies
}

#[tokio::main]
async fn main() {
    let server = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| recalcd::config::DEFAULT_DATABASE_URL.to_string());
    let samples: usize = std::env::var("RECALCD_BENCH_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
        .max(1);
    let name = format!("recalcd_bench_latency_{}", std::process::id());
    let admin = connect(&server).await;
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("CREATE DATABASE");
    let url = with_database(&server, &name);
    let mut config = Config::default();
    config.database.url = url.clone();
    let mut s = store::connect(&config).await.expect("connect");
    s.migrate().await.expect("migrate");
    drop(s);
    connect(&url)
        .await
        .batch_execute(
            r#"INSERT INTO equations ("type", id, name, eq) VALUES
                   (1, 0, 'y', '* $x 2'), (4, 0, 'S', 'SSUM $y');"#,
        )
        .await
        .expect("equations");

    println!("wake-up latency, flagged insert -> recalc = 0 visible, {samples} samples each");
    for (label, notify, first) in [
        ("LISTEN/NOTIFY (poll.interval 1s as fallback)", true, 0),
        ("polling only (poll.interval 1s)", false, samples),
    ] {
        let l = measure(&url, notify, samples, first).await;
        println!(
            "  {label:<46} p50 {:>9}  p90 {:>9}  p99 {:>9}  max {:>9}",
            ms(percentile(&l, 0.5)),
            ms(percentile(&l, 0.9)),
            ms(percentile(&l, 0.99)),
            ms(l[l.len() - 1]),
        );
    }
    let bulk: usize = std::env::var("RECALCD_BENCH_BULK")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let client = connect(&url).await;
    let insert = format!(
        "INSERT INTO data (datetime, data_time, id, recalc, conjoined)
         SELECT timestamp '2025-01-01' + g * interval '1 second', timestamp '2025-01-01',
                g % 100, 1, 'x=' || g || ';'
           FROM generate_series(1, {bulk}) g"
    );
    println!("bulk insert of {bulk} flagged rows (one statement)");
    let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for round in 0..4 {
        let with_trigger = round % 2 == 0;
        let toggle = if with_trigger { "ENABLE" } else { "DISABLE" };
        client
            .batch_execute(&format!(
                "TRUNCATE data; ALTER TABLE data {toggle} TRIGGER recalcd_notify"
            ))
            .await
            .expect("prepare the table");
        // On its own: VACUUM refuses to run inside the implicit multi-statement block.
        client
            .batch_execute("VACUUM ANALYZE data")
            .await
            .expect("vacuum");
        let started = Instant::now();
        client.batch_execute(&insert).await.expect("bulk insert");
        times[usize::from(with_trigger)].push(started.elapsed());
    }
    for (label, t) in [
        ("without the trigger", &times[0]),
        ("with the notify trigger", &times[1]),
    ] {
        let shown: Vec<String> = t.iter().map(|d| ms(*d)).collect();
        println!("  {label:<46} {}", shown.join(", "));
    }
    let _ = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await;
}
