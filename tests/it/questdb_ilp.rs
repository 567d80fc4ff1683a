//! QuestDB's write-back through the line protocol (ILP over HTTP), end to end with the
//! real binary on the real QuestDB at `QUESTDB_URL` (skipped without it; `QUESTDB_ILP`
//! names its HTTP port when that is not the URL host's 9000): the same rows as PG-wire
//! inserts, a refused ILP address stops recalcd or falls back as configured, and a
//! batch cut short — recalcd killed, or the server killed, in the middle of a request —
//! is recomputed on the next run to exactly the rows an uninterrupted run writes.
//!
//! The kills are exact, not timed: recalcd's ILP traffic goes through [`Cut`], a proxy
//! that counts the `/write` requests and, at the chosen one, forwards half of its body
//! and then kills recalcd (or the server). Killing the server needs one the test may
//! kill and restart: `QUESTDB_KILL_DIR` is the directory `start.sh` was given (its
//! `QDB_*_PORT` variables in the environment too); without it that test is skipped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use recalcd::config::IlpChoice;
use recalcd::demo::{Dataset, Scale};
use recalcd::store::{Store, WriteBatch};

use crate::support::{unique, Harness};

/// 12 jobs of 1,000 rows: 12,000 data rows in one batch, so two ILP requests of data
/// rows (10,000 each at most) after one of days and one of jobs.
const SCALE: Scale = Scale {
    devices: 2,
    days: 3,
    jobs_per_day: 2,
    rows_per_job: Some(1000),
};

/// A QuestDB harness with the demo's equations, constants and flagged data rows,
/// written with `ilp` (`None`: as `QUESTDB_ILP` says).
async fn seeded() -> Option<Harness> {
    let h = Harness::questdb().await?;
    let set = Dataset::new(SCALE, 1);
    let mut store = h.migrated().await;
    if let recalcd::store::AnyStore::QuestDb(q) = &mut store {
        q.insert_definitions(&set.constants(), &set.equations())
            .await
            .expect("definitions");
    }
    let out = store
        .write_back(&WriteBatch {
            data: set.jobs().flatten().collect(),
            ..WriteBatch::default()
        })
        .await
        .expect("seed");
    assert!(out.skipped.is_empty());
    // Applied before recalcd (another process) polls, so that it sees one batch.
    h.sql("SELECT 1", Some(&h.config.tables.data)).await;
    Some(h)
}

/// A configuration file, removed when dropped.
struct ConfigFile(PathBuf);

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl std::ops::Deref for ConfigFile {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

/// The TOML of `h`'s configuration (URL, tables) with `database.questdb_ilp = ilp`.
fn config_file(h: &Harness, ilp: &str, url: Option<&str>) -> ConfigFile {
    let c = &h.config;
    let tables: String = c
        .tables
        .all()
        .iter()
        .map(|(key, name)| format!("{} = \"{name}\"\n", key.trim_start_matches("tables.")))
        .collect();
    let text = format!(
        "[database]\nurl = \"{}\"\nquestdb_ilp = \"{ilp}\"\n[tables]\n{tables}\
         [http]\nlisten = \"off\"\n",
        url.unwrap_or(&c.database.url),
    );
    let path = std::env::temp_dir().join(format!("{}.toml", unique("recalcd_ilp")));
    std::fs::write(&path, text).expect("write the configuration");
    ConfigFile(path)
}

fn command(config: &PathBuf, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_recalcd"));
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("RECALCD_CONFIG")
        .env("RUST_LOG", "info");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("RECALCD__") {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn recalcd(config: &PathBuf, args: &[&str]) -> Output {
    command(config, args).output().expect("run recalcd")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The configured ILP address of the QuestDB under test.
fn ilp_address() -> String {
    match std::env::var("QUESTDB_ILP")
        .ok()
        .map(|a| IlpChoice::parse(&a))
    {
        Some(Ok(IlpChoice::Address(a))) => a,
        _ => {
            let h = url_host_port(&std::env::var("QUESTDB_URL").unwrap_or_default());
            format!("{}:9000", h.0)
        }
    }
}

fn url_host_port(url: &str) -> (String, u16) {
    let pg: tokio_postgres::Config = url.parse().expect("QUESTDB_URL");
    let host = match &pg.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        #[allow(unreachable_patterns)]
        _ => panic!("QUESTDB_URL needs a TCP host"),
    };
    (host, pg.get_ports().first().copied().unwrap_or(8812))
}

/// Every row of data, job and day (all columns), in key order, after the WAL applied.
async fn contents(h: &Harness) -> Vec<Vec<String>> {
    let (client, conn) = tokio_postgres::connect(&h.config.database.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let t = &h.config.tables;
    let mut out = Vec::new();
    for (label, table) in [("data", &t.data), ("job", &t.job), ("day", &t.day)] {
        client
            .batch_execute(&format!("SELECT wait_wal_table('{table}')"))
            .await
            .expect("wait_wal_table");
        let rows = client
            .simple_query(&format!(
                r#"SELECT datetime, data_time, id, state, "user", gps, recalc, conjoined
                     FROM "{table}" ORDER BY id, datetime"#
            ))
            .await
            .expect("read");
        for m in rows {
            if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                let mut line = vec![label.to_string()];
                line.extend((0..8).map(|i| r.get(i).unwrap_or("NULL").to_string()));
                out.push(line);
            }
        }
    }
    out
}

/// Counts of (day rows, job rows, flagged data rows, data rows).
async fn progress(h: &Harness) -> (i64, i64, i64, i64) {
    let (client, conn) = tokio_postgres::connect(&h.config.database.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let t = &h.config.tables;
    let mut n = Vec::new();
    for (table, filter) in [
        (&t.day, ""),
        (&t.job, ""),
        (&t.data, " WHERE recalc > 0"),
        (&t.data, ""),
    ] {
        client
            .batch_execute(&format!("SELECT wait_wal_table('{table}')"))
            .await
            .expect("wait_wal_table");
        let r = client
            .query_one(&format!(r#"SELECT count(*) FROM "{table}"{filter}"#), &[])
            .await
            .expect("count");
        n.push(r.get::<_, i64>(0));
    }
    (n[0], n[1], n[2], n[3])
}

/// A reference: the rows an uninterrupted `recalcd once` writes, over PG wire.
async fn reference() -> Vec<Vec<String>> {
    let h = seeded().await.expect("QUESTDB_URL");
    let out = recalcd(&config_file(&h, "off", None), &["once"]);
    assert!(out.status.success(), "{}", text(&out));
    contents(&h).await
}

#[tokio::test]
async fn ilp_writes_the_same_rows_as_pg_wire_inserts() {
    let Some(h) = seeded().await else {
        eprintln!("QUESTDB_URL not set: skipped");
        return;
    };
    let out = recalcd(&config_file(&h, &ilp_address(), None), &["once"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("writing back through the line protocol"),
        "{log}"
    );
    assert!(
        log.contains("wrote 12000 data rows, 12 job rows, 6 day rows"),
        "{log}"
    );
    let via_ilp = contents(&h).await;
    assert_eq!(via_ilp.len(), 12000 + 12 + 6);
    assert!(via_ilp.iter().all(|r| r[7] == "0"), "every flag is cleared");
    assert_eq!(via_ilp, reference().await);
}

#[tokio::test]
async fn an_explicit_ilp_address_that_refuses_stops_recalcd_with_one_message() {
    let Some(h) = seeded().await else {
        eprintln!("QUESTDB_URL not set: skipped");
        return;
    };
    // A closed port, and a server that refuses the credentials (401).
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_addr = closed.local_addr().expect("addr").to_string();
    drop(closed);
    let refusing = TcpListener::bind("127.0.0.1:0").expect("bind");
    let refusing_addr = refusing.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for mut s in refusing.incoming().flatten() {
            let mut head = [0u8; 4096];
            let _ = s.read(&mut head);
            let _ = s.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    for (addr, why) in [
        (&closed_addr, "Connection refused"),
        (&refusing_addr, "401"),
    ] {
        let out = recalcd(&config_file(&h, addr, None), &["once"]);
        let log = text(&out);
        assert!(!out.status.success(), "{log}");
        // (The CLI scrubs the password, `quest`, from every message: `questdb_ilp`
        // shows as `***db_ilp`.)
        assert!(
            log.contains(&format!("line protocol at {addr} (database."))
                && log.contains("db_ilp) refused recalcd"),
            "{log}"
        );
        assert!(log.contains(why), "{why}: {log}");
        assert_eq!(log.matches("refused recalcd").count(), 1, "{log}");
        assert!(
            !log.contains("quest@") && !log.contains("password=quest"),
            "{log}"
        );
        // Stopped before touching anything: every data row still flagged.
        assert_eq!(progress(&h).await, (0, 0, 12000, 12000), "{log}");
    }
}

/// A TCP proxy forwarding one address to another, both ways.
fn forward(to: String) -> String {
    let listener = TcpListener::bind("127.0.0.3:0")
        .or_else(|_| TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&to) else {
                continue;
            };
            pipe(&client, &server);
            pipe(&server, &client);
        }
    });
    addr
}

fn pipe(from: &TcpStream, to: &TcpStream) {
    let (mut from, mut to) = (
        from.try_clone().expect("clone"),
        to.try_clone().expect("clone"),
    );
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
    });
}

#[tokio::test]
async fn auto_falls_back_to_pg_wire_with_one_warning_where_ilp_is_refused() {
    let Some(h) = seeded().await else {
        eprintln!("QUESTDB_URL not set: skipped");
        return;
    };
    // The URL's host is a proxy on 127.0.0.3, where nothing listens on port 9000.
    let (host, port) = url_host_port(&h.config.database.url);
    let proxy = forward(format!("{host}:{port}"));
    if !proxy.starts_with("127.0.0.3:") {
        eprintln!("cannot bind 127.0.0.3: skipped");
        return;
    }
    let url = format!("postgres://admin:quest@{proxy}/qdb");
    let out = recalcd(&config_file(&h, "auto", Some(&url)), &["once"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert_eq!(
        log.matches("line protocol (ILP over HTTP) is refused")
            .count(),
        1,
        "{log}"
    );
    assert!(log.contains("127.0.0.3:9000"), "{log}");
    assert!(!log.contains("quest@"), "{log}");
    assert_eq!(progress(&h).await, (6, 12, 0, 12000));
}

/// What [`Cut`] does at its request.
#[derive(Clone, Copy)]
enum Victim {
    Recalcd,
    Server,
}

/// A proxy for ILP over HTTP that forwards requests until the `at`-th `/write`, sends
/// half of that one's body, then kills the victim and forwards nothing more.
struct Cut {
    addr: String,
    pid: Arc<AtomicU32>,
    writes: Arc<AtomicUsize>,
    cut: Arc<AtomicBool>,
}

impl Cut {
    fn new(to: String, at: usize, victim: Victim, kill_dir: Option<PathBuf>) -> Cut {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let pid = Arc::new(AtomicU32::new(0));
        let writes = Arc::new(AtomicUsize::new(0));
        let cut = Arc::new(AtomicBool::new(false));
        let (p, w, c) = (pid.clone(), writes.clone(), cut.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if c.load(Ordering::SeqCst) {
                    continue; // dropped: nothing more reaches the server
                }
                let Ok(server) = TcpStream::connect(&to) else {
                    continue;
                };
                pipe(&server, &client);
                let (p, w, c, dir) = (p.clone(), w.clone(), c.clone(), kill_dir.clone());
                std::thread::spawn(move || {
                    requests(client, server, at, victim, &p, &w, &c, dir.as_deref())
                });
            }
        });
        Cut {
            addr,
            pid,
            writes,
            cut,
        }
    }
}

/// Forwards the HTTP requests of one connection (headers, then `Content-Length` bytes).
#[allow(clippy::too_many_arguments)]
fn requests(
    client: TcpStream,
    mut server: TcpStream,
    at: usize,
    victim: Victim,
    pid: &AtomicU32,
    writes: &AtomicUsize,
    cut: &AtomicBool,
    kill_dir: Option<&std::path::Path>,
) {
    let mut reader = BufReader::new(client.try_clone().expect("clone"));
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let length = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() || cut.load(Ordering::SeqCst) {
            return;
        }
        let n = if head.starts_with("POST /write") {
            writes.fetch_add(1, Ordering::SeqCst) + 1
        } else {
            0
        };
        if n == at {
            cut.store(true, Ordering::SeqCst);
            let _ = server.write_all(head.as_bytes());
            let _ = server.write_all(&body[..length / 2]);
            let _ = server.flush();
            std::thread::sleep(Duration::from_millis(200));
            match victim {
                Victim::Recalcd => kill(pid.load(Ordering::SeqCst)),
                Victim::Server => {
                    let dir = kill_dir.expect("QUESTDB_KILL_DIR");
                    let pid = std::fs::read_to_string(dir.join("questdb.pid")).expect("pid");
                    kill(pid.trim().parse().expect("pid"));
                }
            }
            let _ = server.shutdown(Shutdown::Both);
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
        if server.write_all(head.as_bytes()).is_err() || server.write_all(&body).is_err() {
            return;
        }
    }
}

fn kill(pid: u32) {
    assert!(pid > 0, "no process to kill");
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -9 {pid}");
}

/// Runs `recalcd once` through a [`Cut`] at the `at`-th write, checks the batch was
/// cut short as `expected` says (days, jobs, flagged data rows), then — after
/// `between` — runs it again directly and compares with an uninterrupted run.
async fn cut_then_rerun(
    victim: Victim,
    at: usize,
    expected: (i64, i64, i64),
    kill_dir: Option<PathBuf>,
    between: impl FnOnce(),
) {
    let Some(h) = seeded().await else {
        eprintln!("QUESTDB_URL not set: skipped");
        return;
    };
    let cut = Cut::new(ilp_address(), at, victim, kill_dir);
    let config = config_file(&h, &cut.addr, None);
    let mut child: Child = command(&config, &["once"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn recalcd");
    cut.pid.store(child.id(), Ordering::SeqCst);
    let status = child.wait().expect("wait");
    let mut log = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut log);
    }
    assert!(!status.success(), "the cut ended recalcd: {log}");
    assert!(cut.cut.load(Ordering::SeqCst), "the cut happened: {log}");
    assert_eq!(cut.writes.load(Ordering::SeqCst), at);
    between();
    let (days, jobs, flagged, all) = progress(&h).await;
    assert_eq!(
        (days, jobs, flagged, all),
        (expected.0, expected.1, expected.2, 12000),
        "half-applied as planned: {log}"
    );
    let out = recalcd(&config_file(&h, &ilp_address(), None), &["once"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(contents(&h).await, reference().await);
}

#[tokio::test]
async fn recalcd_killed_mid_write_leaves_data_flagged_and_the_next_run_completes_the_batch() {
    // Request 1 is the days, 2 the jobs, 3 the first 10,000 data rows, 4 the other 2,000:
    // killed in the middle of the 4th, the days, jobs and 10,000 data rows are written,
    // 2,000 data rows still flagged.
    cut_then_rerun(Victim::Recalcd, 4, (6, 12, 2000), None, || {}).await;
}

#[tokio::test]
async fn recalcd_killed_mid_write_of_the_jobs_leaves_every_data_row_flagged() {
    cut_then_rerun(Victim::Recalcd, 2, (6, 0, 12000), None, || {}).await;
}

#[tokio::test]
async fn server_killed_mid_write_leaves_data_flagged_and_the_next_run_completes_the_batch() {
    let Some(dir) = std::env::var_os("QUESTDB_KILL_DIR").map(PathBuf::from) else {
        eprintln!("QUESTDB_KILL_DIR not set (a QuestDB this test may kill): skipped");
        return;
    };
    let restart = dir.clone();
    cut_then_rerun(Victim::Server, 3, (6, 12, 12000), Some(dir), move || {
        let start = PathBuf::from(
            std::env::var("QUESTDB_START").unwrap_or_else(|_| "../shared/questdb/start.sh".into()),
        );
        let out = Command::new(&start)
            .arg(&restart)
            .output()
            .expect("restart QuestDB");
        assert!(out.status.success(), "{}", text(&out));
    })
    .await;
}

/// What the pipeline of `recalcd once` relies on to overlap a batch's write-back with
/// the preparation of the next: a row written back reads back with the version
/// [`WrittenVersions::of`] gives it from the written content — through the line
/// protocol and through PG-wire inserts, for NULLs, empty and non-ASCII texts,
/// negative flags and sub-second times.
#[tokio::test]
async fn written_rows_read_back_with_the_version_the_write_back_announces() {
    use recalcd::config::IlpChoice;
    use recalcd::store::{Level, Row, RowKey, RowVersion, WrittenVersions};
    let Some(mut h) = Harness::questdb().await else {
        eprintln!("QUESTDB_URL not set: skipped");
        return;
    };
    let at = |s: i64| {
        chrono::DateTime::from_timestamp_micros(1_767_225_600_000_000 + s * 1_234_567)
            .expect("a time")
            .naive_utc()
    };
    let row = |i: i64, state, user: Option<&str>, gps: Option<&str>, recalc, conjoined: &str| Row {
        datetime: at(i),
        data_time: at(i - i % 3),
        id: 7,
        state,
        user: user.map(String::from),
        gps: gps.map(String::from),
        recalc,
        conjoined: conjoined.into(),
        version: RowVersion::ABSENT,
        unreadable: None,
    };
    let rows = |base: i64| {
        vec![
            row(base, None, None, None, 0, ""),
            row(base + 1, Some(-3), Some(""), Some(""), -1, "a=1;"),
            row(
                base + 2,
                Some(2),
                Some("Zoë ü 東京"),
                Some("1.5 -2.25"),
                2,
                "x=\"q\";y=1e-7;",
            ),
            row(
                base + 3,
                Some(i32::MAX),
                Some("a,b c=d"),
                None,
                1,
                "t=2026-01-01 00:00:00;",
            ),
        ]
    };
    for (ilp, base) in [(None, 0), (Some(IlpChoice::Off), 10)] {
        if let Some(choice) = &ilp {
            h.config.database.questdb_ilp = choice.clone();
        }
        let mut store = h.migrated().await;
        let written = rows(base);
        let outcome = store
            .write_back(&WriteBatch {
                data: written.clone(),
                ..WriteBatch::default()
            })
            .await
            .expect("write back");
        assert!(outcome.skipped.is_empty());
        let versions = outcome.version.expect("QuestDB announces the versions");
        assert_eq!(versions, WrittenVersions::Content);
        let keys: Vec<RowKey> = written.iter().map(Row::key).collect();
        let read = store
            .load_rows(Level::Data, &keys)
            .await
            .expect("read back");
        assert_eq!(read.len(), written.len(), "via {ilp:?}");
        for (w, r) in written.iter().zip(&read) {
            assert_eq!(r.key(), w.key());
            assert_eq!(
                r.version,
                versions.of(w),
                "via {ilp:?}: {w:?} read as {r:?}"
            );
        }
    }
}

/// The guard's re-read of a level runs after that level's `wait_wal_table` (the two are
/// pipelined on one connection: one round trip, the server runs them in order). A
/// producer's write committed just before a write-back — committed, usually not yet
/// applied, since QuestDB applies WAL transactions asynchronously — is therefore seen,
/// and the row is left to the producer. Twenty rows, each written by the producer and
/// at once by recalcd with the content it read before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_write_committed_just_before_the_write_back_is_left_to_the_producer() {
    use questdb::ingress::{Sender, TimestampMicros};
    use recalcd::store::{Level, Row, RowKey, RowVersion};
    let Some(h) = Harness::questdb().await else {
        eprintln!("QUESTDB_URL not set: skipped");
        return;
    };
    let mut store = h.migrated().await;
    let table = h.config.tables.data.clone();
    let at = |i: i64| {
        chrono::DateTime::from_timestamp(1_767_225_600 + i * 60, 0)
            .expect("a time")
            .naive_utc()
    };
    let seeded: Vec<Row> = (0..20)
        .map(|i| Row {
            datetime: at(i),
            data_time: at(i),
            id: 3,
            state: Some(1),
            user: None,
            gps: None,
            recalc: 1,
            conjoined: format!("v={i};"),
            version: RowVersion::ABSENT,
            unreadable: None,
        })
        .collect();
    let out = store
        .write_back(&WriteBatch {
            data: seeded.clone(),
            ..WriteBatch::default()
        })
        .await
        .expect("seed");
    assert!(out.skipped.is_empty());
    let keys: Vec<RowKey> = seeded.iter().map(Row::key).collect();
    // What recalcd loads (applied first: the store waits before it reads).
    let loaded = store.load_rows(Level::Data, &keys).await.expect("load");
    assert_eq!(loaded.len(), seeded.len());
    let mut producer =
        Sender::from_conf(format!("http::addr={};", ilp_address())).expect("ILP sender");
    let micros = |t: chrono::NaiveDateTime| TimestampMicros::new(t.and_utc().timestamp_micros());
    for r in &loaded {
        let mut buffer = producer.new_buffer();
        buffer
            .table(table.as_str())
            .and_then(|b| b.column_ts("data_time", micros(r.data_time)))
            .and_then(|b| b.column_i64("id", r.id.into()))
            .and_then(|b| b.column_i64("state", 1))
            .and_then(|b| b.column_i64("recalc", 2))
            .and_then(|b| b.column_str("conjoined", "producer;"))
            .and_then(|b| b.at(micros(r.datetime)))
            .expect("ILP row");
        // Returns once QuestDB has committed the row (not applied it).
        tokio::task::block_in_place(|| producer.flush_and_keep_with_flags(&buffer, true))
            .expect("producer's write");
        let mut computed = r.clone();
        computed.recalc = 0;
        computed.conjoined = "recalcd;".into();
        let out = store
            .write_back(&WriteBatch {
                data: vec![computed],
                ..WriteBatch::default()
            })
            .await
            .expect("write back");
        assert_eq!(out.skipped, vec![(Level::Data, r.key())], "{r:?}");
        assert_eq!(out.written, 0);
    }
    let after = store
        .load_rows(Level::Data, &keys)
        .await
        .expect("read back");
    assert_eq!(after.len(), keys.len());
    for r in &after {
        assert_eq!((r.conjoined.as_str(), r.recalc), ("producer;", 2), "{r:?}");
    }
}
