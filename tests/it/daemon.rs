//! `recalcd run` end to end: the real binary as a child process, against a fresh
//! PostgreSQL database per test (or a throwaway server the test stops and starts).
//! Every wait is bounded by [`DEADLINE`], so a failing test fails instead of hanging.
//! The tests of `recalcd run`'s user-facing paths run on both stores
//! (`daemon::postgres::*`, `daemon::questdb::*`); those that stop servers, count
//! pipelined batches or need PostgreSQL's SQL run on PostgreSQL only.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use recalcd::demo::TempServer;

use crate::support::{default_tables, Harness, TestDb};

on_both_stores!(
    run_computes_flagged_rows_and_exits_0_on_sigterm,
    a_producer_writing_during_the_run_loses_nothing,
    changed_equations_and_constants_are_reloaded_without_a_restart,
    a_bad_equation_or_malformed_row_never_stops_it,
);

/// The longest any condition is waited for.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

/// Polls `f` every 50 ms until it holds (`true`) or [`DEADLINE`] passes (`false`).
pub(crate) fn eventually(mut f: impl FnMut() -> bool) -> bool {
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

/// Runs `work` on a runtime of its own with a client connected to `url`.
pub(crate) fn with_client<T: Send + 'static>(
    url: &str,
    work: impl FnOnce(
            tokio_postgres::Client,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, tokio_postgres::Error>> + Send>,
        > + Send
        + 'static,
) -> Result<T, tokio_postgres::Error> {
    let url = url.to_string();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async move {
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
                tokio::spawn(conn);
                work(client).await
            })
    })
    .join()
    .expect("thread")
}

/// Runs statements on `url`.
pub(crate) fn execute(url: &str, sql: &str) {
    let sql = sql.to_string();
    with_client(url, move |c| {
        Box::pin(async move { c.batch_execute(&sql).await })
    })
    .unwrap_or_else(|e| panic!("statement failed: {e}"));
}

/// Runs a query on `url`; every column as text.
pub(crate) fn query(
    url: &str,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, tokio_postgres::Error> {
    let sql = sql.to_string();
    with_client(url, move |c| {
        Box::pin(async move {
            Ok(c.simple_query(&sql)
                .await?
                .into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => {
                        Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
                    }
                    _ => None,
                })
                .collect())
        })
    })
}

/// The single number a query returns.
pub(crate) fn number(url: &str, sql: &str) -> i64 {
    query(url, sql).expect("query")[0][0]
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{sql} returned no number"))
}

/// Rows still flagged in data, job and day together.
pub(crate) fn flagged(url: &str) -> i64 {
    number(
        url,
        "SELECT (SELECT count(*) FROM data WHERE recalc > 0)
              + (SELECT count(*) FROM job WHERE recalc > 0)
              + (SELECT count(*) FROM day WHERE recalc > 0)",
    )
}

/// `(id, datetime, conjoined, recalc)` of a table in key order.
pub(crate) fn rows(url: &str, table: &str) -> Vec<(String, String, String, String)> {
    query(
        url,
        &format!(
            "SELECT id, to_char(datetime, 'YYYY-MM-DD HH24:MI'), conjoined, recalc \
               FROM {table} ORDER BY id, datetime"
        ),
    )
    .expect("query")
    .into_iter()
    .map(|r| {
        let s = |i: usize| r[i].clone().unwrap_or_default();
        (s(0), s(1), s(2), s(3))
    })
    .collect()
}

/// Runs `recalcd once` on a store where some rows fail, and checks that it finished
/// with exit code 3 (done, but rows got `recalc = -1`).
pub(crate) fn once_leaving_failures(url: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_recalcd"))
        .args(["once", "--database-url", url])
        .env_remove("RECALCD_CONFIG")
        .output()
        .expect("run recalcd");
    assert_eq!(
        out.status.code(),
        Some(3),
        "recalcd once: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a recalcd command to completion and checks that it succeeded.
pub(crate) fn recalcd(url: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_recalcd"))
        .args(args)
        .arg("--database-url")
        .arg(url)
        .env_remove("RECALCD_CONFIG")
        .output()
        .expect("run recalcd");
    assert!(
        out.status.success(),
        "recalcd {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A running `recalcd run` with its stderr collected; killed if dropped while running.
pub(crate) struct Daemon {
    child: Child,
    log: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Daemon {
    /// Starts `recalcd run` against `url`, polling every 100 ms, backing off at most
    /// 1 s, without the HTTP endpoint, with extra environment `env`.
    pub(crate) fn start(url: &str, env: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_recalcd"));
        cmd.env_remove("RECALCD_CONFIG");
        Daemon::spawn(cmd, url, env)
    }

    /// [`Daemon::start`] on a test's store (its table names, see [`Harness::command`]).
    pub(crate) fn start_on(h: &Harness, env: &[(&str, &str)]) -> Daemon {
        Daemon::spawn(h.command(), h.url(), env)
    }

    fn spawn(mut cmd: Command, url: &str, env: &[(&str, &str)]) -> Daemon {
        cmd.arg("run")
            .arg("--database-url")
            .arg(url)
            .env("RECALCD__POLL__INTERVAL", "100ms")
            .env("RECALCD__POLL__MAX_BACKOFF", "1s")
            // Tests run in parallel: no endpoint on the default port (the HTTP tests
            // give each daemon a port of its own).
            .env("RECALCD__HTTP__LISTEN", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start recalcd run");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Daemon {
            child,
            log,
            reader: Some(reader),
        }
    }

    /// What it logged so far.
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// How many log lines contain `needle`.
    pub(crate) fn logged(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }

    pub(crate) fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Sends a signal with `kill -SIG pid`.
    pub(crate) fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits (bounded) for the process to exit; its status and whole log.
    pub(crate) fn wait(mut self) -> (ExitStatus, String) {
        let mut status = None;
        let exited = eventually(|| {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        if !exited {
            let _ = self.child.kill();
            panic!("recalcd run did not exit; log:\n{}", self.log());
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        (status.expect("exited"), self.log())
    }

    /// SIGTERM, then [`Daemon::wait`].
    pub(crate) fn terminate(self) -> (ExitStatus, String) {
        self.signal("TERM");
        self.wait()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `x` doubled per data row, summed per job, the job sums summed per day (break 00:00);
/// with table placeholders (see [`crate::support::substitute`]).
pub(crate) const EQUATIONS: &str = r#"
    INSERT INTO {constants} (id, name, value) VALUES (0, 'WB', '00:00');
    INSERT INTO {equations} ("type", id, name, eq) VALUES
        (1, 0, 'y', '* $x 2'),
        (4, 0, 'S', 'SSUM $x'),
        (5, 0, 'DS', 'SSUM $s');"#;

/// A migrated fresh database with [`EQUATIONS`].
pub(crate) fn setup() -> TestDb {
    let db = TestDb::create_blocking();
    recalcd(&db.url, &["migrate"]);
    db.execute_blocking(&default_tables(EQUATIONS));
    db
}

/// [`setup`] on a test's store.
fn setup_on(h: &Harness) {
    h.recalcd(&["migrate"]);
    h.exec(EQUATIONS);
}

/// 2024-03-01 00:00 plus `minutes`, as SQL text both stores read.
fn at(minutes: i32) -> String {
    format!("2024-03-01 {:02}:{:02}:00", minutes / 60, minutes % 60)
}

/// [`backlog_sql`] for both stores (the rows listed one by one), with the data rows
/// it must give: `(id, datetime, conjoined, recalc)` in key order.
fn backlog_rows(
    devices: std::ops::RangeInclusive<i32>,
    jobs: i32,
    per_job: i32,
) -> (String, Vec<(String, String, String, String)>) {
    let mut values = Vec::new();
    let mut expected = Vec::new();
    for d in devices {
        for j in 0..jobs {
            for r in 0..per_job {
                let minute = j * 10 + r;
                let x = d * 10000 + minute;
                values.push(format!(
                    "('{}', '{}', {d}, 1, 'x={x};')",
                    at(minute),
                    at(j * 10)
                ));
                expected.push((
                    d.to_string(),
                    at(minute)[..16].to_string(),
                    format!("x={x};y={};", 2 * x),
                    "0".to_string(),
                ));
            }
        }
    }
    (
        format!(
            "INSERT INTO {{data}} (datetime, data_time, id, recalc, conjoined) VALUES {}",
            values.join(", ")
        ),
        expected,
    )
}

/// Flagged data rows on 2024-03-01: devices `devices`, jobs `0..jobs` every 10 minutes,
/// `per_job` rows a minute apart, `x = device * 10000 + minute`.
pub(crate) fn backlog_sql(
    devices: std::ops::RangeInclusive<i32>,
    jobs: i32,
    per_job: i32,
) -> String {
    format!(
        "INSERT INTO data (datetime, data_time, id, recalc, conjoined)
         SELECT timestamp '2024-03-01' + (j * 10 + r) * interval '1 minute',
                timestamp '2024-03-01' + j * 10 * interval '1 minute',
                d, 1, 'x=' || (d * 10000 + j * 10 + r) || ';'
           FROM generate_series({}, {}) d, generate_series(0, {}) j, generate_series(0, {}) r",
        devices.start(),
        devices.end(),
        jobs - 1,
        per_job - 1
    )
}

/// Data rows whose content is not `x=…;y=2x;` with `x` from [`backlog_sql`].
pub(crate) fn wrong_data_rows(url: &str) -> i64 {
    number(
        url,
        "SELECT count(*) FROM (
            SELECT conjoined, recalc,
                   id * 10000 + (extract(epoch FROM datetime - timestamp '2024-03-01') / 60)::int AS x
              FROM data) t
          WHERE conjoined <> 'x=' || x || ';y=' || 2 * x || ';' OR recalc <> 0",
    )
}

/// Jobs written in part: some of their rows computed and others not, or the job row
/// not matching its rows' flags. Batches are written whole, so there are none.
pub(crate) fn jobs_written_in_part(url: &str) -> i64 {
    number(
        url,
        "SELECT count(*) FROM (
            SELECT d.id, d.data_time FROM data d
              LEFT JOIN job j ON j.id = d.id AND j.datetime = d.data_time
             GROUP BY d.id, d.data_time
            HAVING count(DISTINCT d.recalc > 0) > 1
                OR bool_or(d.recalc > 0) = (count(j.id) > 0 AND bool_and(j.recalc = 0))) t",
    )
}

/// A fresh `recalcd once` finishes what is left, with the results the rows sum to.
pub(crate) fn once_finishes_the_rest(url: &str) {
    recalcd(url, &["once"]);
    assert_eq!(flagged(url), 0);
    assert_eq!(wrong_data_rows(url), 0);
}

fn run_computes_flagged_rows_and_exits_0_on_sigterm(h: &Harness) {
    setup_on(h);
    let (backlog, data) = backlog_rows(1..=2, 3, 2);
    h.exec(&backlog);
    let daemon = Daemon::start_on(h, &[]);
    assert!(
        eventually(|| h.flagged() == 0 && h.count("SELECT count(*) FROM {day}") == 2),
        "not computed; log:\n{}",
        daemon.log()
    );
    assert_eq!(h.rows("{data}"), data);
    // Device 1, job at 00:10: x = 10010 and 10011.
    let jobs = h.rows("{job}");
    assert_eq!(jobs.len(), 6);
    assert_eq!(
        jobs[1],
        (
            "1".into(),
            "2024-03-01 00:10".into(),
            "S=20021;".into(),
            "0".into()
        )
    );
    // Device 2: 2 * (20000 + 20001 + 20010 + 20011 + 20020 + 20021).
    let days = h.rows("{day}");
    assert_eq!(days[1].2, "DS=120063;");

    let (status, log) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "log:\n{log}");
    assert!(log.contains("batch written"), "{log}");
    assert!(log.contains("shutting down"), "{log}");
    assert!(
        log.contains("signal=\"SIGTERM\"") || log.contains("SIGTERM"),
        "{log}"
    );
    assert!(log.contains("stopped"), "{log}");
    // Nothing left for a fresh `once`.
    let again = h.recalcd(&["once"]);
    assert!(String::from_utf8_lossy(&again.stdout)
        .contains("wrote 0 data rows, 0 job rows, 0 day rows"));
}

#[test]
fn sigterm_during_a_backlog_finishes_the_batch_in_flight_and_nothing_half_written() {
    let db = setup();
    db.execute_blocking(&backlog_sql(1..=40, 100, 4));
    let daemon = Daemon::start(&db.url, &[("RECALCD__POLL__BATCH_SIZE", "400")]);
    assert!(
        eventually(|| number(&db.url, "SELECT count(*) FROM data WHERE recalc = 0") > 0),
        "no progress; log:\n{}",
        daemon.log()
    );
    daemon.signal("INT");
    let (status, log) = daemon.wait();
    assert_eq!(status.code(), Some(0), "log:\n{log}");
    assert!(log.contains("SIGINT"), "{log}");
    let left = number(&db.url, "SELECT count(*) FROM data WHERE recalc > 0");
    assert!(
        left > 0,
        "the backlog was finished before the signal arrived"
    );
    // Whole batches only: every job is either computed with all its rows, or not at all.
    assert_eq!(jobs_written_in_part(&db.url), 0, "jobs written in part");
    once_finishes_the_rest(&db.url);
}

#[test]
fn a_backlog_is_drained_with_pipelined_batches_and_the_same_results() {
    let db = setup();
    // 5 devices × 20 jobs × 10 rows in batches of 100: full batches, so a drain.
    db.execute_blocking(&backlog_sql(1..=5, 20, 10));
    let daemon = Daemon::start(&db.url, &[("RECALCD__POLL__BATCH_SIZE", "100")]);
    assert!(
        eventually(|| flagged(&db.url) == 0
            && number(&db.url, "SELECT count(*) FROM job") == 100
            && number(&db.url, "SELECT count(*) FROM day") == 5),
        "not computed; log:\n{}",
        daemon.log()
    );
    let (status, log) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "log:\n{log}");
    assert!(
        log.contains("pipelined batches written"),
        "no drain; log:\n{log}"
    );
    assert_eq!(wrong_data_rows(&db.url), 0);
    // Every job and day is the sum of its rows' x, written once and done.
    let x = "d.id * 10000 + (extract(epoch FROM d.datetime - timestamp '2024-03-01') / 60)::int";
    let wrong_jobs = number(
        &db.url,
        &format!(
            "SELECT count(*) FROM job j
              WHERE j.recalc <> 0 OR j.conjoined <> 'S=' || (
                    SELECT sum({x}) FROM data d
                     WHERE d.id = j.id AND d.data_time = j.datetime) || ';'"
        ),
    );
    assert_eq!(wrong_jobs, 0);
    let wrong_days = number(
        &db.url,
        &format!(
            "SELECT count(*) FROM day y
              WHERE y.recalc <> 0 OR y.conjoined <> 'DS=' || (
                    SELECT sum({x}) FROM data d WHERE d.id = y.id) || ';'"
        ),
    );
    assert_eq!(wrong_days, 0);
    assert_eq!(number(&db.url, "SELECT count(*) FROM recalcd_errors"), 0);
}

/// On PostgreSQL nothing the producer wrote is lost. On QuestDB the guard is not atomic
/// (docs/store.md, "the guard"): a re-flag landing between recalcd's re-read of a chunk and its
/// write is overwritten with the value recalcd computed from what it read. What QuestDB
/// promises, and what is checked there: every row holds a value the producer wrote,
/// computed, with no flag left; a row holds an older value only if the producer
/// re-flagged it (the window); every job and day is the sum of its rows as they stand.
fn a_producer_writing_during_the_run_loses_nothing(h: &Harness) {
    setup_on(h);
    let daemon = Daemon::start_on(h, &[]);
    // The producer: 60 transactions, each a new job of 3 rows; every 4th also changes
    // and re-flags a row of an earlier job. `model` is every value it wrote per row,
    // the last one last.
    let mut model: BTreeMap<(i32, i32), Vec<i64>> = BTreeMap::new();
    let mut statements = Vec::new();
    for i in 0..60 {
        let (device, job) = (i % 3 + 1, i / 3);
        let mut sql = String::from("BEGIN;");
        for r in 0..3 {
            let minute = job * 10 + r;
            let x = i64::from(i * 10 + r);
            model.insert((device, minute), vec![x]);
            sql.push_str(&format!(
                "INSERT INTO {{data}} (datetime, data_time, id, recalc, conjoined)
                      VALUES ('{}', '{}', {device}, 1, 'x={x};');",
                at(minute),
                at(job * 10)
            ));
        }
        if i % 4 == 3 {
            let (device, minute) = ((i - 3) % 3 + 1, (i - 3) / 3 * 10 + 1);
            let written = model.get_mut(&(device, minute)).expect("an earlier row");
            let x = written[written.len() - 1] + 500;
            written.push(x);
            sql.push_str(&format!(
                "UPDATE {{data}} SET conjoined = 'x={x};', recalc = 2
                  WHERE id = {device} AND datetime = '{}';",
                at(minute)
            ));
        }
        sql.push_str("COMMIT;");
        statements.push(h.sub(&sql));
    }
    with_client(h.url(), move |c| {
        Box::pin(async move {
            for sql in statements {
                c.batch_execute(&sql).await?;
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            Ok(())
        })
    })
    .expect("producer");
    assert!(
        eventually(|| h.flagged() == 0
            && h.count("SELECT count(*) FROM {job}") == 60
            && h.count("SELECT count(*) FROM {day}") == 3),
        "not all computed; log:\n{}",
        daemon.log()
    );

    // What the rows must hold, and the values they hold.
    let data = h.rows("{data}");
    let mut held: BTreeMap<(i32, i32), i64> = BTreeMap::new();
    for (id, at, conjoined, recalc) in &data {
        let device: i32 = id.parse().expect("id");
        let minute = at[11..13].parse::<i32>().expect("hour") * 60
            + at[14..16].parse::<i32>().expect("minute");
        let x: i64 = conjoined
            .strip_prefix("x=")
            .and_then(|c| c.split(';').next())
            .and_then(|x| x.parse().ok())
            .unwrap_or_else(|| panic!("row {id} {at}: {conjoined}"));
        assert_eq!(conjoined, &format!("x={x};y={};", 2 * x), "row {id} {at}");
        assert_eq!(recalc, "0", "row {id} {at}");
        held.insert((device, minute), x);
    }
    assert_eq!(
        held.keys().collect::<Vec<_>>(),
        model.keys().collect::<Vec<_>>(),
        "the rows are the producer's"
    );
    let mut in_the_window = 0;
    for (key, written) in &model {
        let x = held[key];
        if x != written[written.len() - 1] {
            assert!(
                !h.is_postgres() && written.len() > 1 && written.contains(&x),
                "row {key:?} holds x={x}, the producer wrote {written:?}; log:\n{}",
                daemon.log()
            );
            in_the_window += 1;
        }
    }
    if in_the_window > 0 {
        eprintln!("{in_the_window} re-flags fell in the guard's window (QuestDB)");
    }
    // Every job and day is the sum of its rows as they stand.
    let mut jobs: BTreeMap<(i32, i32), i64> = BTreeMap::new();
    let mut days: BTreeMap<i32, i64> = BTreeMap::new();
    for (&(device, minute), &x) in &held {
        *jobs.entry((device, minute / 10 * 10)).or_default() += x;
        *days.entry(device).or_default() += x;
    }
    let jobs: Vec<_> = jobs
        .into_iter()
        .map(|((device, start), s)| {
            (
                device.to_string(),
                format!("2024-03-01 {:02}:{:02}", start / 60, start % 60),
                format!("S={s};"),
                "0".to_string(),
            )
        })
        .collect();
    assert_eq!(h.rows("{job}"), jobs);
    let days: Vec<_> = days
        .into_iter()
        .map(|(device, s)| {
            (
                device.to_string(),
                "2024-03-01 00:00".to_string(),
                format!("DS={s};"),
                "0".to_string(),
            )
        })
        .collect();
    assert_eq!(h.rows("{day}"), days);

    let (status, log) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "log:\n{log}");
}

#[test]
fn killed_mid_batch_and_restarted_loses_and_duplicates_nothing() {
    // A failing equation too, so that duplicated error records would show.
    let extra = r#"INSERT INTO equations ("type", id, name, eq) VALUES (2, 0, 'r', '/ $y $x');
                   INSERT INTO data (datetime, data_time, id, recalc, conjoined)
                        VALUES ('2024-03-01 23:00', '2024-03-01 23:00', 1, 1, 'x=0;');"#;
    let backlog = backlog_sql(1..=50, 100, 4);

    let clean = setup();
    clean.execute_blocking(&backlog);
    clean.execute_blocking(extra);
    once_leaving_failures(&clean.url);

    let db = setup();
    db.execute_blocking(&backlog);
    db.execute_blocking(extra);
    let env = [("RECALCD__POLL__BATCH_SIZE", "300")];
    let mut daemon = Daemon::start(&db.url, &env);
    assert!(
        eventually(|| number(&db.url, "SELECT count(*) FROM data WHERE recalc <= 0") > 0),
        "no progress; log:\n{}",
        daemon.log()
    );
    daemon.signal("KILL");
    assert!(
        eventually(|| !daemon.is_running()),
        "SIGKILL did not stop it"
    );
    drop(daemon);
    assert!(
        flagged(&db.url) > 0,
        "the backlog was finished before the kill"
    );

    let daemon = Daemon::start(&db.url, &env);
    assert!(
        eventually(|| flagged(&db.url) == 0),
        "not finished after the restart; log:\n{}",
        daemon.log()
    );
    let (status, log) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "log:\n{log}");

    for table in ["data", "job", "day"] {
        let dup = number(
            &db.url,
            &format!(
                "SELECT count(*) FROM (SELECT 1 FROM {table} GROUP BY id, datetime HAVING count(*) > 1) t"
            ),
        );
        assert_eq!(dup, 0, "duplicate {table} rows");
        assert_eq!(
            rows(&db.url, table),
            rows(&clean.url, table),
            "{table} differs"
        );
    }
    assert_eq!(
        number(&db.url, "SELECT count(*) FROM data"),
        50 * 100 * 4 + 1
    );
    let errors = "SELECT level, id, to_char(datetime, 'YYYY-MM-DD HH24:MI'), equation, reason
                    FROM recalcd_errors ORDER BY 1, 2, 3, 4";
    let got = query(&db.url, errors).unwrap();
    assert_eq!(got, query(&clean.url, errors).unwrap());
    assert_eq!(got.len(), 1, "one error record for the x=0 row: {got:?}");
}

#[test]
fn the_store_going_away_is_logged_waited_out_and_reconnected() {
    let server = TempServer::start().expect("the machine has PostgreSQL installed");
    let url = server.url();
    recalcd(&url, &["migrate"]);
    execute(&url, &default_tables(EQUATIONS));
    execute(&url, &backlog_sql(1..=1, 2, 2));
    let mut daemon = Daemon::start(&url, &[]);
    assert!(
        eventually(|| flagged(&url) == 0),
        "not computed; log:\n{}",
        daemon.log()
    );

    server.stop().expect("stop the server");
    assert!(
        eventually(|| daemon.logged("cannot use the store") >= 2),
        "no retries logged; log:\n{}",
        daemon.log()
    );
    assert!(daemon.is_running(), "it exited; log:\n{}", daemon.log());
    let log = daemon.log();
    assert!(log.contains("retry_in_ms"), "{log}");
    assert!(log.contains("transient=true"), "{log}");

    server.start_again().expect("start the server again");
    execute(&url, &backlog_sql(2..=2, 2, 2));
    assert!(
        eventually(|| flagged(&url) == 0),
        "new rows not computed after the server came back; log:\n{}",
        daemon.log()
    );
    assert_eq!(wrong_data_rows(&url), 0);
    let (status, log) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "log:\n{log}");
}

fn changed_equations_and_constants_are_reloaded_without_a_restart(h: &Harness) {
    h.recalcd(&["migrate"]);
    h.exec(
        r#"INSERT INTO {constants} (id, name, value) VALUES (0, 'K', '2');
           INSERT INTO {equations} ("type", id, name, eq) VALUES (1, 0, 'y', '* $x #K');
           INSERT INTO {data} (datetime, data_time, id, recalc, conjoined)
                VALUES ('2024-03-01 08:00', '2024-03-01 08:00', 1, 1, 'x=5;');"#,
    );
    let daemon = Daemon::start_on(h, &[]);
    let conjoined = |minute: &str| {
        h.query(
            &format!(
                "SELECT conjoined FROM {{data}} WHERE recalc = 0 AND datetime = '2024-03-01 08:{minute}'"
            ),
        )
        .first()
        .and_then(|r| r[0].clone())
    };
    assert!(
        eventually(|| conjoined("00").is_some()),
        "log:\n{}",
        daemon.log()
    );
    assert_eq!(conjoined("00").as_deref(), Some("x=5;y=10;"));

    h.exec("UPDATE {constants} SET value = '3' WHERE name = 'K'");
    assert!(
        eventually(|| daemon.logged("equations reloaded") == 1),
        "log:\n{}",
        daemon.log()
    );
    h.exec(
        "INSERT INTO {data} (datetime, data_time, id, recalc, conjoined)
              VALUES ('2024-03-01 08:01', '2024-03-01 08:01', 1, 1, 'x=5;')",
    );
    assert!(
        eventually(|| conjoined("01").is_some()),
        "log:\n{}",
        daemon.log()
    );
    assert_eq!(conjoined("01").as_deref(), Some("x=5;y=15;"));

    h.exec("UPDATE {equations} SET eq = '+ $x #K' WHERE name = 'y'");
    assert!(
        eventually(|| daemon.logged("equations reloaded") == 2),
        "log:\n{}",
        daemon.log()
    );
    h.exec(
        "INSERT INTO {data} (datetime, data_time, id, recalc, conjoined)
              VALUES ('2024-03-01 08:02', '2024-03-01 08:02', 1, 1, 'x=5;')",
    );
    assert!(
        eventually(|| conjoined("02").is_some()),
        "log:\n{}",
        daemon.log()
    );
    assert_eq!(conjoined("02").as_deref(), Some("x=5;y=8;"));
    // Rows computed before keep their values: a reload recomputes nothing by itself.
    assert_eq!(conjoined("00").as_deref(), Some("x=5;y=10;"));

    let (status, log) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "log:\n{log}");
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("equations reloaded"))
            .count(),
        2,
        "reloaded only when something changed:\n{log}"
    );
}

fn a_bad_equation_or_malformed_row_never_stops_it(h: &Harness) {
    h.recalcd(&["migrate"]);
    h.exec(
        r#"INSERT INTO {equations} ("type", id, name, eq) VALUES
               (1, 0, 'y', '* $x 2'),
               (1, 0, 'z', '+ 1'),
               (2, 0, 'r', '/ 10 $x');
           INSERT INTO {data} (datetime, data_time, id, recalc, conjoined) VALUES
               ('2024-03-01 08:00', '2024-03-01 08:00', 1, 1, 'x=5;'),
               ('2024-03-01 08:01', '2024-03-01 08:00', 1, 1, 'x=0;'),
               ('2024-03-01 09:00', '2024-03-01 09:00', 2, 1, 'x=abc;;==;\;x'),
               ('2024-03-01 09:01', '2024-03-01 09:00', 2, 1, ''),
               ('2024-03-01 10:00', '2024-03-01 10:00', 3, 1, 'x=4;');"#,
    );
    let mut daemon = Daemon::start_on(h, &[]);
    assert!(
        eventually(|| h.flagged() == 0),
        "not computed; log:\n{}",
        daemon.log()
    );
    let log = daemon.log();
    assert!(log.contains("equation skipped"), "{log}");
    let recalc = |at: &str| {
        h.query(&format!(
            "SELECT conjoined, recalc FROM {{data}} WHERE datetime = '2024-03-01 {at}'"
        ))[0]
            .iter()
            .map(|v| v.clone().unwrap_or_default())
            .collect::<Vec<_>>()
    };
    assert_eq!(recalc("08:00"), ["x=5;y=10;r=2;", "0"]);
    assert_eq!(recalc("08:01")[1], "-1", "division by zero is a failure");
    assert_eq!(recalc("09:00")[1], "-1", "x is not a number");
    assert_eq!(recalc("09:01")[1], "-1", "x is missing");
    assert_eq!(recalc("10:00"), ["x=4;y=8;r=2.5;", "0"]);
    assert!(h.count("SELECT count(*) FROM {errors}") >= 3);

    // Still running, still computing.
    assert!(daemon.is_running(), "{}", daemon.log());
    h.exec(
        "INSERT INTO {data} (datetime, data_time, id, recalc, conjoined)
              VALUES ('2024-03-01 11:00', '2024-03-01 11:00', 4, 1, 'x=1;')",
    );
    assert!(eventually(|| h.flagged() == 0), "log:\n{}", daemon.log());
    assert_eq!(recalc("11:00"), ["x=1;y=2;r=10;", "0"]);
    let (status, log) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "log:\n{log}");
}

#[test]
fn started_before_migrate_it_waits_for_the_schema() {
    let db = TestDb::create_blocking();
    let daemon = Daemon::start(&db.url, &[]);
    assert!(
        eventually(|| daemon.logged("run `recalcd migrate`") >= 2),
        "log:\n{}",
        daemon.log()
    );
    recalcd(&db.url, &["migrate"]);
    db.execute_blocking(&default_tables(EQUATIONS));
    db.execute_blocking(&backlog_sql(1..=1, 1, 2));
    assert!(
        eventually(|| flagged(&db.url) == 0),
        "log:\n{}",
        daemon.log()
    );
    assert_eq!(wrong_data_rows(&db.url), 0);
    let (status, log) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "log:\n{log}");
}

#[test]
fn a_schema_newer_than_this_recalcd_exits_1() {
    let db = TestDb::create_blocking();
    recalcd(&db.url, &["migrate"]);
    db.execute_blocking("INSERT INTO recalcd_migrations (version, name) VALUES (99, 'future')");
    let (status, log) = Daemon::start(&db.url, &[]).wait();
    assert_eq!(status.code(), Some(1), "log:\n{log}");
    assert!(log.contains("upgrade recalcd"), "{log}");
}
