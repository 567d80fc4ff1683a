//! Faults around `recalcd run`, through the real binary: the server restarting in the
//! middle of a run, a server refusing connections at start, SIGTERM during a write-back;
//! and the notification wake-up (which must survive the restart).

use recalcd::demo::TempServer;

use crate::daemon::{
    backlog_sql, eventually, execute, flagged, jobs_written_in_part, number,
    once_finishes_the_rest, once_leaving_failures, query, recalcd, rows, setup, wrong_data_rows,
    Daemon, EQUATIONS,
};

/// A failing equation, so that duplicated error records would show.
const FAILING: &str = r#"INSERT INTO equations ("type", id, name, eq) VALUES (2, 0, 'r', '/ $y $x');
    INSERT INTO data (datetime, data_time, id, recalc, conjoined)
         VALUES ('2024-03-01 23:00', '2024-03-01 23:00', 1, 1, 'x=0;');"#;

/// Polls only every hour: anything computed within the tests' deadline after the first
/// idle poll was woken by a notification.
const HOURLY: (&str, &str) = ("RECALCD__POLL__INTERVAL", "1h");

/// The error records, in key order.
fn errors(url: &str) -> Vec<Vec<Option<String>>> {
    query(
        url,
        "SELECT level, id, to_char(datetime, 'YYYY-MM-DD HH24:MI'), equation, reason
           FROM recalcd_errors ORDER BY 1, 2, 3, 4",
    )
    .expect("query")
}

/// A port nothing listens on (bound, then freed).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[test]
fn a_notification_wakes_an_idle_daemon_at_once() {
    let db = setup();
    let daemon = Daemon::start(&db.url, &[HOURLY]);
    assert!(
        eventually(|| daemon.logged("connected") > 0),
        "log:\n{}",
        daemon.log()
    );
    // Idle now (or about to be): only a notification can get this computed in time.
    db.execute_blocking(&backlog_sql(1..=1, 1, 2));
    assert!(
        eventually(|| flagged(&db.url) == 0),
        "not woken; log:\n{}",
        daemon.log()
    );
    db.execute_blocking(&backlog_sql(2..=2, 1, 2));
    assert!(
        eventually(|| flagged(&db.url) == 0),
        "not woken a second time; log:\n{}",
        daemon.log()
    );
    assert_eq!(wrong_data_rows(&db.url), 0);
    let (status, log) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "log:\n{log}");
}

#[test]
fn the_server_restarting_mid_run_loses_and_doubles_nothing() {
    let backlog = backlog_sql(1..=50, 100, 4);
    let clean = setup();
    clean.execute_blocking(&backlog);
    clean.execute_blocking(FAILING);
    once_leaving_failures(&clean.url);

    let server = TempServer::start().expect("the machine has PostgreSQL installed");
    let url = server.url();
    recalcd(&url, &["migrate"]);
    execute(&url, &crate::support::default_tables(EQUATIONS));
    execute(&url, &backlog);
    execute(&url, FAILING);
    let daemon = Daemon::start(&url, &[("RECALCD__POLL__BATCH_SIZE", "300"), HOURLY]);
    assert!(
        eventually(|| number(&url, "SELECT count(*) FROM data WHERE recalc <= 0") > 0),
        "no progress; log:\n{}",
        daemon.log()
    );
    server.stop().expect("stop the server");
    let before = daemon.logged("cannot use the store") + daemon.logged("reconnecting");
    assert!(
        eventually(
            || daemon.logged("cannot use the store") + daemon.logged("reconnecting") > before
        ),
        "the failure was not logged; log:\n{}",
        daemon.log()
    );
    server.start_again().expect("start the server again");
    assert!(
        flagged(&url) > 0,
        "the backlog was finished before the restart"
    );
    assert!(
        eventually(|| flagged(&url) == 0),
        "not finished after the restart; log:\n{}",
        daemon.log()
    );
    for table in ["data", "job", "day"] {
        let dup = number(
            &url,
            &format!(
                "SELECT count(*) FROM (SELECT 1 FROM {table} GROUP BY id, datetime HAVING count(*) > 1) t"
            ),
        );
        assert_eq!(dup, 0, "duplicate {table} rows");
        assert_eq!(
            rows(&url, table),
            rows(&clean.url, table),
            "{table} differs"
        );
    }
    assert_eq!(
        errors(&url),
        errors(&clean.url),
        "error records lost or doubled"
    );
    // The listening connection came back with the main one: a new flag is noticed
    // although the next poll is an hour away.
    execute(&url, &backlog_sql(51..=51, 1, 2));
    assert!(
        eventually(|| flagged(&url) == 0),
        "not woken after the restart; log:\n{}",
        daemon.log()
    );
    let (status, log) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "log:\n{log}");
}

#[test]
fn refused_at_start_it_retries_with_back_off_until_the_server_answers() {
    let server = TempServer::start().expect("the machine has PostgreSQL installed");
    let url = server.url();
    recalcd(&url, &["migrate"]);
    execute(&url, &crate::support::default_tables(EQUATIONS));
    execute(&url, &backlog_sql(1..=2, 2, 2));
    server.stop().expect("stop the server");
    let mut daemon = Daemon::start(&url, &[]);
    assert!(
        eventually(|| daemon.logged("cannot use the store") >= 3),
        "no retries logged; log:\n{}",
        daemon.log()
    );
    assert!(daemon.is_running(), "it exited; log:\n{}", daemon.log());
    let log = daemon.log();
    let line = log
        .lines()
        .find(|l| l.contains("cannot use the store"))
        .expect("a failure line");
    assert!(line.contains("cannot connect to"), "{line}");
    assert!(line.contains("refused"), "{line}");
    assert!(line.contains("transient=true"), "{line}");
    // Back-off: 500 ms, then 1 s (the test's cap).
    assert!(line.contains("retry_in_ms=500"), "{line}");
    assert!(log.contains("retry_in_ms=1000"), "{log}");

    server.start_again().expect("start the server");
    assert!(
        eventually(|| flagged(&url) == 0),
        "not computed once the server answered; log:\n{}",
        daemon.log()
    );
    assert_eq!(wrong_data_rows(&url), 0);
    let (status, log) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "log:\n{log}");
}

#[test]
fn refused_for_longer_than_give_up_after_it_exits_non_zero() {
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", free_port());
    let daemon = Daemon::start(&url, &[("RECALCD__DATABASE__GIVE_UP_AFTER", "2s")]);
    let (status, log) = daemon.wait();
    assert_eq!(status.code(), Some(1), "log:\n{log}");
    assert!(log.matches("cannot use the store").count() >= 2, "{log}");
    let last = log.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: giving up"), "{log}");
    assert!(last.contains("database.give_up_after"), "{last}");
    assert!(last.contains("refused"), "{last}");
}

#[test]
fn sigterm_during_a_write_back_leaves_no_partial_batch() {
    let db = setup();
    // Three batches' worth, so that one is left whichever write-back is caught.
    db.execute_blocking(&backlog_sql(1..=50, 150, 4));
    let total = 50 * 150 * 4;
    let daemon = Daemon::start(
        &format!("{}?application_name=victim", db.url),
        &[("RECALCD__POLL__BATCH_SIZE", "10000")],
    );
    // Caught inside the write-back transaction (its statements use the staging tables);
    // the rows computed are counted just before, so that batch is not among them.
    let writing = "SELECT count(*) FROM pg_stat_activity
                    WHERE application_name = 'victim' AND state <> 'idle'
                      AND query LIKE '%recalcd_stage%'";
    let done_sql = "SELECT count(*) FROM data WHERE recalc = 0";
    let mut done_before = 0;
    assert!(
        eventually(|| {
            done_before = number(&db.url, done_sql);
            number(&db.url, writing) > 0
        }),
        "never caught writing back; log:\n{}",
        daemon.log()
    );
    let (status, log) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "log:\n{log}");
    assert!(log.contains("SIGTERM"), "{log}");
    let done = number(&db.url, done_sql);
    assert!(
        done > done_before,
        "the batch in flight was not finished:\n{log}"
    );
    assert!(
        done < total,
        "the whole backlog went before the signal:\n{log}"
    );
    // Whole jobs only: every job is computed with all its rows, or not at all.
    assert_eq!(jobs_written_in_part(&db.url), 0, "jobs written in part");
    once_finishes_the_rest(&db.url);
}
