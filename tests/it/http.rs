//! The HTTP endpoint and the systemd notifications of `recalcd run`, end to end: the
//! real binary with `RECALCD__HTTP__LISTEN` on a free port, asked with plain HTTP/1.1
//! requests, against a fresh PostgreSQL database (or a throwaway server the test stops
//! and starts). Every wait is bounded by [`DEADLINE`].

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use recalcd::demo::TempServer;

use crate::support::TestDb;

/// The longest any condition is waited for.
const DEADLINE: Duration = Duration::from_secs(30);

/// Polls `f` every 50 ms until it holds (`true`) or [`DEADLINE`] passes (`false`).
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + DEADLINE;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An address on the loopback nothing listens on (the port the system just gave out).
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// `GET path` as a plain HTTP/1.1 request: the status code and the body, or `None`
/// when nothing answers.
fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let status = answer.get(9..12)?.parse().ok()?;
    let (_, body) = answer.split_once("\r\n\r\n")?;
    Some((status, body.to_string()))
}

/// The value of the sample `series` (name and labels, as rendered) in `/metrics`.
fn metric(addr: SocketAddr, series: &str) -> Option<f64> {
    let (status, body) = get(addr, "/metrics")?;
    assert_eq!(status, 200);
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

/// Runs a recalcd command to completion; its exit status, stdout and stderr.
fn recalcd(args: &[&str]) -> (ExitStatus, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_recalcd"))
        .args(args)
        .env_remove("RECALCD_CONFIG")
        .output()
        .expect("run recalcd");
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs statements on `url` on a runtime of its own.
fn execute(url: &str, sql: &str) {
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async {
                let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
                tokio::spawn(conn);
                c.batch_execute(&sql).await
            })
    })
    .join()
    .expect("thread")
    .expect("statement");
}

/// The single number a query returns.
fn number(url: &str, sql: &str) -> f64 {
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async {
                let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
                tokio::spawn(conn);
                c.simple_query(&sql).await
            })
    })
    .join()
    .expect("thread")
    .expect("query")
    .into_iter()
    .find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.parse().ok()),
        _ => None,
    })
    .expect("a number")
}

/// `x` doubled per data row, summed per job, the job sums summed per day.
const EQUATIONS: &str = r#"
    INSERT INTO constants (id, name, value) VALUES (0, 'WB', '00:00');
    INSERT INTO equations ("type", id, name, eq) VALUES
        (1, 0, 'y', '* $x 2'),
        (4, 0, 'S', 'SSUM $x'),
        (5, 0, 'DS', 'SSUM $s');"#;

/// Flagged data rows on 2024-03-01 of devices 1 and 2: 3 jobs each, 2 rows a job.
/// Device 2's first row has no number in `x`, so its `y` cannot be computed.
const WORKLOAD: &str = "
    INSERT INTO data (datetime, data_time, id, recalc, conjoined)
    SELECT timestamp '2024-03-01' + (j * 10 + r) * interval '1 minute',
           timestamp '2024-03-01' + j * 10 * interval '1 minute',
           d, 1,
           CASE WHEN d = 2 AND j = 0 AND r = 0 THEN 'x=oops;' ELSE 'x=' || (j * 10 + r) || ';' END
      FROM generate_series(1, 2) d, generate_series(0, 2) j, generate_series(0, 1) r";

/// A transaction holding `LOCK TABLE job IN EXCLUSIVE MODE` (reads pass, writes wait),
/// so that the daemon's first batch hangs at its write-back until [`JobLock::release`].
struct JobLock {
    release: std::sync::mpsc::Sender<()>,
    holder: std::thread::JoinHandle<()>,
}

impl JobLock {
    /// Takes the lock on `url`'s job table; returns once it is held.
    fn hold(url: &str) -> JobLock {
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (locked, is_locked) = std::sync::mpsc::channel::<()>();
        let url = url.to_string();
        let holder = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(async move {
                    let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                        .await
                        .expect("connect");
                    let conn = tokio::spawn(conn);
                    c.batch_execute("BEGIN; LOCK TABLE job IN EXCLUSIVE MODE")
                        .await
                        .expect("lock");
                    locked.send(()).expect("the test waits");
                    let _ = tokio::task::spawn_blocking(move || released.recv()).await;
                    c.batch_execute("COMMIT").await.expect("commit");
                    drop(c);
                    let _ = conn.await;
                });
        });
        is_locked.recv().expect("locked");
        JobLock { release, holder }
    }

    /// Commits, releasing the lock.
    fn release(self) {
        self.release.send(()).expect("the holder waits");
        self.holder.join().expect("holder");
    }
}

/// A datagram socket standing in for systemd's notification socket.
struct NotifySocket {
    dir: std::path::PathBuf,
    socket: UnixDatagram,
    /// Every message received so far.
    heard: Vec<String>,
}

impl NotifySocket {
    fn bind() -> NotifySocket {
        let dir = std::env::temp_dir().join(crate::support::unique("recalcd-notify-"));
        std::fs::create_dir_all(&dir).expect("dir");
        let socket = UnixDatagram::bind(dir.join("notify.sock")).expect("bind the socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        NotifySocket {
            dir,
            socket,
            heard: Vec::new(),
        }
    }

    /// The environment systemd gives a `Type=notify` service with `WatchdogSec=`.
    fn env(&self, watchdog: Duration) -> [(&'static str, String); 2] {
        let path = self.dir.join("notify.sock");
        [
            (
                "NOTIFY_SOCKET",
                path.to_str().expect("utf-8 path").to_string(),
            ),
            ("WATCHDOG_USEC", watchdog.as_micros().to_string()),
        ]
    }

    /// Receives for at most `wait`, or until a message has the line `line`; whether one
    /// has (among every message heard so far).
    fn hear_within(&mut self, line: &str, wait: Duration) -> bool {
        let end = Instant::now() + wait;
        let mut buf = [0u8; 4096];
        while !self.has_heard(line) && Instant::now() < end {
            if let Ok(n) = self.socket.recv(&mut buf) {
                self.heard
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        self.has_heard(line)
    }

    /// [`NotifySocket::hear_within`] the [`DEADLINE`].
    fn hear(&mut self, line: &str) -> bool {
        self.hear_within(line, DEADLINE)
    }

    fn has_heard(&self, line: &str) -> bool {
        self.heard.iter().any(|m| m.lines().any(|l| l == line))
    }

    /// Receives what is waiting, without waiting for more.
    fn drain(&mut self) {
        let mut buf = [0u8; 4096];
        self.socket.set_nonblocking(true).expect("non-blocking");
        while let Ok(n) = self.socket.recv(&mut buf) {
            self.heard
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        self.socket.set_nonblocking(false).expect("blocking");
    }

    /// Forgets what was heard and what is waiting.
    fn forget(&mut self) {
        self.drain();
        self.heard.clear();
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running `recalcd run` serving HTTP on `addr`, its stderr collected; killed if
/// dropped while running.
struct Daemon {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    /// Starts `recalcd run` against `url` (polling every 100 ms, backing off at most
    /// 1 s) with its endpoint on a free port and extra environment `env`.
    fn start(url: &str, env: &[(&str, &str)]) -> Daemon {
        let addr = free_addr();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_recalcd"));
        cmd.arg("run")
            .arg("--database-url")
            .arg(url)
            .env_remove("RECALCD_CONFIG")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env("RECALCD__POLL__INTERVAL", "100ms")
            .env("RECALCD__POLL__MAX_BACKOFF", "1s")
            .env("RECALCD__HTTP__LISTEN", addr.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start recalcd run");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let daemon = Daemon { child, addr, log };
        assert!(
            eventually(|| get(addr, "/healthz").is_some()),
            "the endpoint never answered; log:\n{}",
            daemon.log()
        );
        daemon
    }

    /// What it logged so far.
    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// `/readyz`'s status and body.
    fn readyz(&self) -> (u16, String) {
        get(self.addr, "/readyz").expect("/readyz answers")
    }

    /// The value of a metric.
    fn metric(&self, series: &str) -> Option<f64> {
        metric(self.addr, series)
    }

    /// Sends SIGTERM.
    fn sigterm(&self) {
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -TERM failed");
    }

    /// SIGTERM, then [`Daemon::wait`].
    fn terminate(self) -> ExitStatus {
        self.sigterm();
        self.wait()
    }

    /// Waits (bounded) for the exit status.
    fn wait(mut self) -> ExitStatus {
        let mut status = None;
        let exited = eventually(|| {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        assert!(exited, "recalcd run did not exit; log:\n{}", self.log());
        status.expect("exited")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn healthz_answers_and_readyz_waits_for_the_migration() {
    let db = TestDb::create_blocking();
    let daemon = Daemon::start(&db.url, &[]);
    assert_eq!(get(daemon.addr, "/healthz"), Some((200, "ok\n".into())));
    assert_eq!(get(daemon.addr, "/nothing").map(|(s, _)| s), Some(404));
    assert!(
        eventually(|| daemon.readyz().1.contains("schema not current")),
        "{:?}; log:\n{}",
        daemon.readyz(),
        daemon.log()
    );
    let (status, body) = daemon.readyz();
    assert_eq!(status, 503);
    assert!(
        body.starts_with("not ready: schema not current: "),
        "{body}"
    );
    assert!(body.contains("recalcd migrate"), "{body}");
    assert_eq!(body.lines().count(), 1, "{body}");
    // What a container health check runs.
    let addr = daemon.addr.to_string();
    let (check, out, _) = recalcd(&["healthcheck", "--addr", &addr]);
    assert_eq!(check.code(), Some(1));
    assert!(out.starts_with("not ready: schema not current"), "{out}");
    assert!(
        daemon
            .metric(r#"recalcd_store_errors_total{kind="schema"}"#)
            .is_some_and(|n| n >= 1.0),
        "no schema error counted"
    );

    let (migrated, _, err) = recalcd(&["migrate", "--database-url", &db.url]);
    assert!(migrated.success(), "{err}");
    assert!(
        eventually(|| daemon.readyz() == (200, "ready\n".into())),
        "{:?}; log:\n{}",
        daemon.readyz(),
        daemon.log()
    );
    let (check, out, _) = recalcd(&["healthcheck", "--addr", &addr]);
    assert_eq!((check.code(), out.as_str()), (Some(0), "ready\n"));

    let addr = daemon.addr;
    let status = daemon.terminate();
    assert_eq!(status.code(), Some(0));
    // The endpoint stopped with the daemon.
    assert_eq!(get(addr, "/healthz"), None);
}

#[test]
fn metrics_count_what_was_processed() {
    let db = TestDb::create_blocking();
    let (migrated, _, err) = recalcd(&["migrate", "--database-url", &db.url]);
    assert!(migrated.success(), "{err}");
    execute(&db.url, EQUATIONS);
    execute(&db.url, WORKLOAD);
    // Hold the job table against writes: the daemon reads the backlog, polls, computes,
    // and then waits to write its first batch back.
    let lock = JobLock::hold(&db.url);
    let daemon = Daemon::start(&db.url, &[]);

    // The backlog was read before the first batch: 12 flagged data rows, the oldest of
    // 2024-03-01 (more than 600 days ago), nothing else.
    assert!(
        eventually(|| daemon.metric(r#"recalcd_backlog_rows{level="data"}"#) == Some(12.0)),
        "backlog not read; log:\n{}",
        daemon.log()
    );
    assert_eq!(
        daemon.metric(r#"recalcd_backlog_rows{level="job"}"#),
        Some(0.0)
    );
    let age = daemon
        .metric(r#"recalcd_oldest_flag_age_seconds{level="data"}"#)
        .expect("age");
    assert!(age > 600.0 * 86_400.0, "{age}");
    // No poll has succeeded yet: the batch waits for the lock.
    let (status, body) = daemon.readyz();
    assert_eq!(
        (status, body.as_str()),
        (503, "not ready: no successful poll yet\n")
    );
    assert_eq!(
        daemon.metric(r#"recalcd_rows_processed_total{level="data"}"#),
        Some(0.0)
    );
    assert_eq!(daemon.metric("recalcd_ready"), Some(0.0));

    lock.release();
    assert!(
        eventually(
            || daemon.metric(r#"recalcd_backlog_rows{level="data"}"#) == Some(0.0)
                && daemon.readyz().0 == 200
        ),
        "not processed; log:\n{}",
        daemon.log()
    );
    let m = |series: &str| daemon.metric(series);
    assert_eq!(
        m(r#"recalcd_rows_processed_total{level="data"}"#),
        Some(12.0)
    );
    assert_eq!(m(r#"recalcd_rows_processed_total{level="job"}"#), Some(6.0));
    assert_eq!(m(r#"recalcd_rows_processed_total{level="day"}"#), Some(2.0));
    assert_eq!(m("recalcd_rows_flagged_total"), Some(12.0));
    assert_eq!(
        m(r#"recalcd_oldest_flag_age_seconds{level="data"}"#),
        Some(0.0)
    );
    // The failures are what the tables say they are.
    let failed_rows = number(
        &db.url,
        "SELECT (SELECT count(*) FROM data WHERE recalc < 0)
              + (SELECT count(*) FROM job WHERE recalc < 0)
              + (SELECT count(*) FROM day WHERE recalc < 0)",
    );
    assert!(failed_rows >= 1.0, "the bad row was not recorded as failed");
    assert_eq!(
        m(r#"recalcd_failures_total{kind="row"}"#),
        Some(failed_rows)
    );
    let errors = number(&db.url, "SELECT count(*) FROM recalcd_errors");
    assert_eq!(
        m(r#"recalcd_failures_total{kind="equation"}"#),
        Some(errors)
    );
    assert_eq!(m(r#"recalcd_failures_total{kind="panic"}"#), Some(0.0));
    assert!(m("recalcd_batch_duration_seconds_count").is_some_and(|n| n >= 1.0));
    assert!(m("recalcd_last_poll_timestamp_seconds").is_some_and(|t| t > 1.7e9));
    assert_eq!(m("recalcd_reconnects_total"), Some(0.0));
    assert_eq!(m("recalcd_ready"), Some(1.0));
    let (_, body) = get(daemon.addr, "/metrics").expect("metrics");
    assert!(body.ends_with("# EOF\n"));
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.starts_with("recalcd_"), "{line}");
    }
    assert_eq!(daemon.terminate().code(), Some(0));
}

#[test]
fn readyz_follows_the_database_going_away_and_coming_back() {
    let server = TempServer::start().expect("the machine has PostgreSQL installed");
    let url = server.url();
    let (migrated, _, err) = recalcd(&["migrate", "--database-url", &url]);
    assert!(migrated.success(), "{err}");
    let daemon = Daemon::start(&url, &[]);
    assert!(
        eventually(|| daemon.readyz().0 == 200),
        "{:?}; log:\n{}",
        daemon.readyz(),
        daemon.log()
    );

    server.stop().expect("stop the server");
    assert!(
        eventually(|| daemon
            .readyz()
            .1
            .starts_with("not ready: store unavailable: ")),
        "{:?}; log:\n{}",
        daemon.readyz(),
        daemon.log()
    );
    assert_eq!(daemon.readyz().0, 503);
    assert_eq!(get(daemon.addr, "/healthz").map(|(s, _)| s), Some(200));

    server.start_again().expect("start the server again");
    assert!(
        eventually(|| daemon.readyz().0 == 200),
        "{:?}; log:\n{}",
        daemon.readyz(),
        daemon.log()
    );
    assert!(daemon
        .metric("recalcd_reconnects_total")
        .is_some_and(|n| n >= 1.0));
    let store_errors: f64 = ["connect", "query", "connect_timeout", "unexpected"]
        .iter()
        .filter_map(|k| daemon.metric(&format!(r#"recalcd_store_errors_total{{kind="{k}"}}"#)))
        .sum();
    assert!(store_errors >= 1.0, "no store error counted");
    assert_eq!(daemon.terminate().code(), Some(0));
}

#[test]
fn a_taken_port_stops_run_at_start_with_one_line() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_recalcd"))
        .args(["run", "--database-url", "postgres://u@127.0.0.1:1/none"])
        .env_remove("RECALCD_CONFIG")
        .env("RECALCD__HTTP__LISTEN", &addr)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let mut status = None;
    let exited = eventually(|| {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    if !exited {
        let _ = child.kill();
        panic!("recalcd run kept running on a taken port");
    }
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read");
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].contains(&format!("cannot listen on {addr}")),
        "{err}"
    );
    assert!(errors[0].contains("in use"), "{err}");
}

#[test]
fn systemd_hears_ready_watchdog_and_stopping() {
    let db = TestDb::create_blocking();
    let (migrated, _, err) = recalcd(&["migrate", "--database-url", &db.url]);
    assert!(migrated.success(), "{err}");
    let mut systemd = NotifySocket::bind();
    let env = systemd.env(Duration::from_millis(200));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let daemon = Daemon::start(&db.url, &env);
    assert!(
        systemd.hear("READY=1"),
        "{:?}; log:\n{}",
        systemd.heard,
        daemon.log()
    );
    // READY=1 comes after the first successful poll.
    assert_eq!(daemon.readyz().0, 200);
    systemd.forget();
    assert!(systemd.hear("WATCHDOG=1"), "{:?}", systemd.heard);
    assert!(daemon.log().contains("systemd watchdog enabled"));

    systemd.forget();
    daemon.sigterm();
    assert!(
        systemd.hear("STOPPING=1"),
        "{:?}; log:\n{}",
        systemd.heard,
        daemon.log()
    );
    assert_eq!(daemon.wait().code(), Some(0));
}

#[test]
fn the_watchdog_goes_quiet_while_a_batch_hangs() {
    let db = TestDb::create_blocking();
    let (migrated, _, err) = recalcd(&["migrate", "--database-url", &db.url]);
    assert!(migrated.success(), "{err}");
    execute(&db.url, EQUATIONS);
    execute(&db.url, WORKLOAD);
    let lock = JobLock::hold(&db.url);
    let mut systemd = NotifySocket::bind();
    let watchdog = Duration::from_millis(300);
    let env = systemd.env(watchdog);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let daemon = Daemon::start(&db.url, &env);

    // The first batch waits for the lock longer than the watchdog period.
    assert!(
        eventually(|| daemon
            .log()
            .contains("no longer pinging the systemd watchdog")),
        "log:\n{}",
        daemon.log()
    );
    systemd.drain();
    assert!(systemd.has_heard("WATCHDOG=1"), "{:?}", systemd.heard);
    assert!(!systemd.has_heard("READY=1"), "{:?}", systemd.heard);
    // Stuck: not one ping over several periods (a ping sent before is dropped first).
    systemd.forget();
    assert!(
        !systemd.hear_within("WATCHDOG=1", watchdog * 4),
        "{:?}",
        systemd.heard
    );
    assert!(!systemd.has_heard("READY=1"), "{:?}", systemd.heard);

    lock.release();
    assert!(systemd.hear("READY=1"), "{:?}", systemd.heard);
    assert!(systemd.hear("WATCHDOG=1"), "{:?}", systemd.heard);
    assert_eq!(daemon.terminate().code(), Some(0));
}

#[test]
fn healthcheck_without_an_endpoint_fails() {
    // Nothing listens there: unhealthy (1), with the address asked.
    let addr = free_addr();
    let out = Command::new(env!("CARGO_BIN_EXE_recalcd"))
        .arg("healthcheck")
        .env_remove("RECALCD_CONFIG")
        .env("RECALCD__HTTP__LISTEN", format!("0.0.0.0:{}", addr.port()))
        .output()
        .expect("run recalcd");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot ask 127.0.0.1:{}/readyz", addr.port())),
        "{err}"
    );
    // The endpoint is switched off: a usage error (2).
    let out = Command::new(env!("CARGO_BIN_EXE_recalcd"))
        .arg("healthcheck")
        .env_remove("RECALCD_CONFIG")
        .env("RECALCD__HTTP__LISTEN", "off")
        .output()
        .expect("run recalcd");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("http.listen"), "{err}");
}

#[test]
fn skipped_equations_are_a_metric_that_follows_the_reloads() {
    let db = TestDb::create_blocking();
    let (migrated, _, err) = recalcd(&["migrate", "--database-url", &db.url]);
    assert!(migrated.success(), "{err}");
    execute(&db.url, EQUATIONS);
    execute(
        &db.url,
        r#"INSERT INTO equations ("type", id, name, eq) VALUES
               (1, 0, 'broken', '+ $x'),
               (1, 0, 'p', '+ $q 1'),
               (1, 0, 'q', '+ $p 1');"#,
    );
    let daemon = Daemon::start(&db.url, &[]);
    assert!(
        eventually(|| daemon.metric("recalcd_equations_skipped") == Some(3.0)),
        "log:\n{}",
        daemon.log()
    );
    assert_eq!(
        number(&db.url, "SELECT count(*) FROM recalcd_equation_problems"),
        3.0
    );
    // Fixing the equations bumps the revision: the daemon reloads them.
    execute(
        &db.url,
        "DELETE FROM equations WHERE name IN ('broken', 'p')",
    );
    assert!(
        eventually(|| daemon.metric("recalcd_equations_skipped") == Some(0.0)),
        "log:\n{}",
        daemon.log()
    );
    assert!(eventually(|| number(
        &db.url,
        "SELECT count(*) FROM recalcd_equation_problems"
    ) == 0.0));
    assert!(daemon.terminate().success());
}
