//! What the benchmarks share: a database of their own on the PostgreSQL at
//! `DATABASE_URL`, binary `COPY` of rows, the store floor (`COPY` into a staging table
//! plus one `INSERT … ON CONFLICT DO UPDATE`), and the peak RSS.
#![allow(dead_code)] // each benchmark uses a part

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::{pin_mut, SinkExt, StreamExt};
use recalcd::demo::Scale;
use recalcd::store::Row;
use std::io::{Read, Write};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls};

/// The columns of a data, job or day row, in `COPY` order.
pub const COLUMNS: &str = r#"datetime, data_time, id, state, "user", gps, recalc, conjoined"#;

/// Their types, for binary `COPY`.
pub const ROW_TYPES: [Type; 8] = [
    Type::TIMESTAMP,
    Type::TIMESTAMP,
    Type::INT4,
    Type::INT4,
    Type::TEXT,
    Type::TEXT,
    Type::INT4,
    Type::TEXT,
];

/// An environment variable as a count (`1_000_000` is read too).
pub fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
}

/// The process's peak resident set size (`VmHWM`) in MB.
pub fn peak_rss_mb() -> f64 {
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

/// Prints the median of the rounds' `ratios` of `what` (and their range) when there
/// was more than one round.
pub fn print_median(what: &str, ratios: &mut [f64]) {
    if ratios.len() < 2 {
        return;
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "median ratio {what} over {} rounds: {:.2} (min {:.2}, max {:.2})",
        ratios.len(),
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1]
    );
}

/// CPU seconds used so far by this process (user, system) and by the local PostgreSQL
/// server, read
/// from `/proc` (in clock ticks of 1/100 s, Linux's `USER_HZ`). The server's figure
/// sums every process named `postgres` plus, for the postmaster, its reaped children,
/// so sessions that ended in between still count. `None` where `/proc` is not there.
pub fn cpu_seconds() -> Option<(f64, f64, f64)> {
    /// Fields after the command: state, ppid, …; `utime` is field 14 of the line.
    fn stat(path: &Path) -> Option<(String, i64, [f64; 4])> {
        let text = std::fs::read_to_string(path).ok()?;
        let open = text.find('(')?;
        let close = text.rfind(')')?;
        let comm = text[open + 1..close].to_string();
        let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
        let ppid = rest.get(1)?.parse().ok()?;
        let tick = |i: usize| rest.get(i).and_then(|v| v.parse::<f64>().ok());
        // utime, stime, cutime, cstime are fields 14–17, i.e. 11–14 after the command.
        Some((comm, ppid, [tick(11)?, tick(12)?, tick(13)?, tick(14)?]))
    }
    let own = stat(Path::new("/proc/self/stat"))?.2;
    let mut procs = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            if let Some((comm, ppid, t)) = stat(&entry.path().join("stat")) {
                if comm == "postgres" {
                    let pid: i64 = name.to_string_lossy().parse().unwrap_or(-1);
                    procs.push((pid, ppid, t));
                }
            }
        }
    }
    let pids: std::collections::HashSet<i64> = procs.iter().map(|p| p.0).collect();
    let server: f64 = procs
        .iter()
        .map(|(_, ppid, t)| {
            let reaped = if pids.contains(ppid) {
                0.0
            } else {
                t[2] + t[3]
            };
            t[0] + t[1] + reaped
        })
        .sum();
    Some((own[0] / 100.0, own[1] / 100.0, server / 100.0))
}

/// CPU seconds (user and kernel) used by this process's children it has waited for.
pub fn children_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    // cutime and cstime are fields 16 and 17, i.e. 13 and 14 after the command.
    let tick = |i: usize| rest.get(i).and_then(|v| v.parse::<f64>().ok());
    Some((tick(13)? + tick(14)?) / 100.0)
}

/// CPU seconds used by this process and the server since `before` (from
/// [`cpu_seconds`]), as text for a report line.
pub fn cpu_since(before: Option<(f64, f64, f64)>) -> String {
    match (before, cpu_seconds()) {
        (Some(b), Some(a)) => format!(
            "CPU: this process {:.1} s ({:.1} s in the kernel), PostgreSQL {:.1} s",
            a.0 + a.1 - b.0 - b.1,
            a.1 - b.1,
            a.2 - b.2
        ),
        _ => "CPU: not measured (no /proc)".to_string(),
    }
}

/// The data shape of `RECALCD_BENCH_SHAPE` at about `rows` rows (fewer devices for
/// fewer rows): `jobs` (the default: 100 devices, 25 days of 4 jobs of 100 rows),
/// `long-days` (140 devices, one day of 70 jobs of 100 rows) or `short-jobs` (1,000
/// devices, 10 days of 10 jobs of 10 rows).
///
/// # Panics
/// On an unknown shape name.
pub fn shape_for(rows: usize) -> (&'static str, Scale) {
    let name = std::env::var("RECALCD_BENCH_SHAPE").unwrap_or_else(|_| "jobs".into());
    let per_device = |s: Scale| {
        u64::from(s.days) * u64::from(s.jobs_per_day) * u64::from(s.rows_per_job.unwrap_or(100))
    };
    let scaled = |full: Scale| Scale {
        devices: ((rows as u64 / per_device(full)).max(1) as u32).min(full.devices),
        ..full
    };
    match name.as_str() {
        "jobs" => ("jobs", scale_for(rows)),
        "long-days" => (
            "long-days",
            scaled(Scale {
                devices: 140,
                days: 1,
                jobs_per_day: 70,
                rows_per_job: Some(100),
            }),
        ),
        "short-jobs" => (
            "short-jobs",
            scaled(Scale {
                devices: 1000,
                days: 10,
                jobs_per_day: 10,
                rows_per_job: Some(10),
            }),
        ),
        other => panic!("RECALCD_BENCH_SHAPE {other:?}: expected jobs, long-days or short-jobs"),
    }
}

/// The bench scale, or a smaller one of about `rows` rows (whole jobs of 100 rows).
pub fn scale_for(rows: usize) -> Scale {
    let full = Scale::BENCH;
    let jobs = (rows / 100).max(1) as u32;
    let devices = jobs.min(full.devices);
    let per_device = (jobs / devices).max(1);
    let jobs_per_day = if per_device.is_multiple_of(full.jobs_per_day) {
        full.jobs_per_day
    } else {
        1
    };
    Scale {
        devices,
        days: per_device / jobs_per_day,
        jobs_per_day,
        rows_per_job: Some(100),
    }
}

/// One plain connection.
pub async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("the benchmark needs a PostgreSQL at DATABASE_URL");
    tokio::spawn(conn);
    client
}

/// A database created for one benchmark run; [`BenchDb::drop_now`] drops it.
pub struct BenchDb {
    /// Its URL.
    pub url: String,
    name: String,
    admin: Client,
}

impl BenchDb {
    /// Creates `<prefix>_<pid>` on the server at `DATABASE_URL` (default: local).
    pub async fn create(prefix: &str) -> BenchDb {
        let server = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| recalcd::config::DEFAULT_DATABASE_URL.to_string());
        let name = format!("{prefix}_{}", std::process::id());
        let admin = connect(&server).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("CREATE DATABASE");
        let rest = server.find("://").map_or(0, |i| i + 3);
        let q = server[rest..].find('?').map_or(server.len(), |i| rest + i);
        let p = server[rest..q].find('/').map_or(q, |i| rest + i);
        let url = format!("{}/{}{}", &server[..p], name, &server[q..]);
        BenchDb { url, name, admin }
    }

    /// Drops the database (closing the other connections to it).
    pub async fn drop_now(self) {
        self.admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await
            .expect("DROP DATABASE");
    }
}

/// Streams `rows` into `table` (binary `COPY`); returns how many.
pub async fn copy_rows(client: &Client, table: &str, rows: impl Iterator<Item = Row>) -> usize {
    let sink = client
        .copy_in(&format!("COPY {table} ({COLUMNS}) FROM STDIN BINARY"))
        .await
        .expect("COPY");
    let writer = BinaryCopyInWriter::new(sink, &ROW_TYPES);
    pin_mut!(writer);
    let mut n = 0;
    for r in rows {
        writer.as_mut().write(&r.params()).await.expect("COPY row");
        n += 1;
    }
    writer.finish().await.expect("COPY finish");
    n
}

/// Saves `table` to `path` in `COPY`'s binary format.
pub async fn copy_out_to_file(client: &Client, table: &str, path: &Path) {
    let stream = client
        .copy_out(&format!("COPY {table} ({COLUMNS}) TO STDOUT BINARY"))
        .await
        .expect("COPY TO");
    pin_mut!(stream);
    // Blocking file I/O: the benchmark does nothing else meanwhile.
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("create file"));
    while let Some(chunk) = stream.next().await {
        file.write_all(&chunk.expect("COPY TO chunk"))
            .expect("write file");
    }
    file.flush().expect("flush file");
}

/// Streams a file written by [`copy_out_to_file`] into `table`.
pub async fn copy_in_from_file(client: &Client, table: &str, path: &Path) {
    let sink = client
        .copy_in::<_, bytes::Bytes>(&format!("COPY {table} ({COLUMNS}) FROM STDIN BINARY"))
        .await
        .expect("COPY FROM");
    pin_mut!(sink);
    let mut file = std::fs::File::open(path).expect("open file");
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).expect("read file");
        if n == 0 {
            break;
        }
        sink.send(bytes::Bytes::copy_from_slice(&buf[..n]))
            .await
            .expect("COPY FROM chunk");
    }
    sink.finish().await.expect("COPY FROM finish");
}

/// Starts the floor's transaction and creates the staging table `stage`.
pub async fn begin_stage(client: &Client, stage: &str) {
    client
        .batch_execute(&format!(
            r#"BEGIN;
               CREATE TEMP TABLE {stage} (datetime timestamp, data_time timestamp, id integer,
                   state integer, "user" text, gps text, recalc integer, conjoined text)
                   ON COMMIT DROP;"#
        ))
        .await
        .expect("staging table");
}

/// The floor's upsert of what is staged in `stage` into `table` (inside the
/// transaction of [`begin_stage`]).
pub async fn upsert_from_stage(client: &Client, table: &str, stage: &str) {
    client
        .batch_execute(&format!(
            r#"INSERT INTO {table} ({COLUMNS})
               SELECT {COLUMNS} FROM {stage}
               ON CONFLICT (id, datetime) DO UPDATE SET data_time = EXCLUDED.data_time,
                   state = EXCLUDED.state, "user" = EXCLUDED."user", gps = EXCLUDED.gps,
                   recalc = EXCLUDED.recalc, conjoined = EXCLUDED.conjoined;"#
        ))
        .await
        .expect("upsert");
}

/// Commits the floor's transaction.
pub async fn commit(client: &Client) {
    client.batch_execute("COMMIT").await.expect("COMMIT");
}

/// Seconds as `12.34 s`.
pub fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// How long `f` took.
pub async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let out = f.await;
    (out, start.elapsed())
}

/// A `recalcd serve` of the real binary, on a free local port; stopped (SIGTERM) when
/// dropped.
pub struct Served {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Served {
    /// Starts `exe serve --listen 127.0.0.1:0 --config CONFIG --database-url URL` and
    /// waits for the address it listens on; `None` when it did not start (said on
    /// stdout).
    pub fn start(exe: &Path, config: &Path, url: &str) -> Option<Served> {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let mut child = Command::new(exe)
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            .arg("--database-url")
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start recalcd serve");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let base = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(rest) = line.split("listening on ").nth(1) {
                        break rest.trim().trim_end_matches('/').to_string();
                    }
                }
                _ => {
                    println!("  recalcd serve did not start: skipped");
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
            }
        };
        // Keep reading what it logs so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Some(Served { child, base })
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}
