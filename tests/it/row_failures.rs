//! A row's failure stays the row's: a row whose `conjoined` cannot be read feeds no
//! other row, and a row the server cannot even send as text (bytes that are not UTF-8
//! in a `SQL_ASCII` database) is named in an error and kept byte for byte while the
//! rest is computed — by `recalcd once` and by the daemon. The first runs on both
//! stores (`row_failures::postgres::*`, `row_failures::questdb::*`); bytes that are not
//! UTF-8 need PostgreSQL's `SQL_ASCII` (QuestDB stores only valid UTF-8).

use std::process::Command;

use crate::daemon::{eventually, execute, flagged, number, query, Daemon};
use crate::support::{default_tables, Harness, TestDb};

on_both_stores!(a_row_whose_conjoined_cannot_be_read_feeds_no_other_row);

/// Runs `recalcd` with `args` on `url`; its exit code and stderr.
fn recalcd(url: &str, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_recalcd"))
        .args(args)
        .args(["--database-url", url])
        .env_remove("RECALCD_CONFIG")
        .output()
        .expect("run recalcd");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn migrate(url: &str) {
    let (code, err) = recalcd(url, &["migrate"]);
    assert_eq!(code, Some(0), "{err}");
}

/// A single text value a query returns.
fn text(url: &str, sql: &str) -> String {
    query(url, sql).expect("query")[0][0]
        .clone()
        .unwrap_or_default()
}

/// With table placeholders (see [`crate::support::substitute`]).
const DEFINITIONS: &str = "
    INSERT INTO {constants} (id, name, value) VALUES (0, 'WB', '00:00');
    INSERT INTO {equations} (type, id, name, eq) VALUES
        (1, 0, 'd', 'IFNA - $tmp $$tmp 0'),
        (4, 0, 'avg', 'SNRM $tmp'),
        (4, 0, 'n', 'SCNT $tmp'),
        (5, 0, 'dn', 'SCNT $d$tmp');";

fn a_row_whose_conjoined_cannot_be_read_feeds_no_other_row(h: &Harness) {
    h.recalcd(&["migrate"]);
    h.exec(DEFINITIONS);
    h.exec(
        "INSERT INTO {data} (id, datetime, data_time, recalc, conjoined) VALUES
            (1, '2024-04-01 08:00', '2024-04-01 08:00', 1, 'tmp=1;'),
            (1, '2024-04-01 08:01', '2024-04-01 08:00', 1, 'tmp=1000;garbage;'),
            (1, '2024-04-01 08:02', '2024-04-01 08:00', 1, 'tmp=4;');",
    );
    let out = h.recalcd_raw(&["once"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(1), "{err}");
    assert_ne!(out.status.code(), Some(2), "{err}");
    let bad = h.query("SELECT conjoined, recalc FROM {data} WHERE datetime = '2024-04-01 08:01'");
    assert_eq!(bad[0][0].as_deref(), Some("tmp=1000;garbage;"));
    assert_eq!(bad[0][1].as_deref(), Some("-1"));
    assert_eq!(
        h.one("SELECT conjoined || ' ' || recalc FROM {job}"),
        "avg=2.5;n=2; 0"
    );
    assert_eq!(
        h.one("SELECT conjoined || ' ' || recalc FROM {day}"),
        "dn=2; 0"
    );
    assert_eq!(
        h.one("SELECT conjoined FROM {data} WHERE datetime = '2024-04-01 08:02'"),
        "tmp=4;d=3;"
    );
    assert_eq!(
        h.count("SELECT count(*) FROM {errors}"),
        1,
        "one error, the bad row's"
    );
}

/// Device 1 has a row with a byte that is not UTF-8 in `conjoined` and one in `user`;
/// device 2 is clean.
const UNREADABLE: &str = "
    INSERT INTO data (id, datetime, data_time, recalc, \"user\", conjoined) VALUES
        (1, '2024-04-01 08:00', '2024-04-01 08:00', 1, 'eva', 'tmp=1;'),
        (1, '2024-04-01 08:01', '2024-04-01 08:00', 1, 'eva', E'tmp=2;note=\\\\x;bad=\\xff;'),
        (1, '2024-04-01 08:02', '2024-04-01 08:00', 1, E'\\xfe', 'tmp=4;'),
        (2, '2024-04-01 09:00', '2024-04-01 09:00', 1, 'jan', 'tmp=10;'),
        (2, '2024-04-01 09:01', '2024-04-01 09:00', 1, 'jan', 'tmp=20;');";

/// Checks that the two unreadable rows keep their bytes, are at -1 and named in an
/// error, and that everything else was computed.
fn assert_isolated(url: &str) {
    assert_eq!(flagged(url), 0, "nothing is left flagged");
    assert_eq!(
        text(
            url,
            "SELECT (conjoined = E'tmp=2;note=\\\\x;bad=\\xff;' AND \"user\" = 'eva')::text
               FROM data WHERE id = 1 AND datetime = '2024-04-01 08:01'"
        ),
        "true",
        "the producer's bytes are kept"
    );
    assert_eq!(
        text(
            url,
            "SELECT (\"user\" = E'\\xfe' AND conjoined = 'tmp=4;')::text
               FROM data WHERE id = 1 AND datetime = '2024-04-01 08:02'"
        ),
        "true"
    );
    assert_eq!(
        number(
            url,
            "SELECT count(*) FROM data WHERE recalc = -1 AND id = 1
                AND datetime IN ('2024-04-01 08:01', '2024-04-01 08:02')"
        ),
        2
    );
    let errors = query(
        url,
        "SELECT datetime::text, reason FROM recalcd_errors WHERE id = 1 ORDER BY datetime",
    )
    .expect("errors");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0][1]
        .as_deref()
        .is_some_and(|r| r.contains("`conjoined` is not valid UTF-8")));
    assert!(errors[1][1]
        .as_deref()
        .is_some_and(|r| r.contains("`user` is not valid UTF-8")));
    // The rest is computed: device 1's job over its readable row, device 2 whole.
    assert_eq!(
        text(url, "SELECT conjoined FROM job WHERE id = 1"),
        "avg=1;n=1;"
    );
    assert_eq!(
        text(url, "SELECT conjoined FROM job WHERE id = 2"),
        "avg=15;n=2;"
    );
    assert_eq!(
        number(url, "SELECT count(*) FROM data WHERE id = 2 AND recalc = 0"),
        2
    );
}

#[test]
fn a_row_the_server_cannot_send_as_text_is_isolated_named_and_kept() {
    let db = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(TestDb::create_with(
            "ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'",
        ));
    migrate(&db.url);
    execute(&db.url, &default_tables(DEFINITIONS));
    execute(&db.url, UNREADABLE);

    let (code, err) = recalcd(&db.url, &["once"]);
    assert_ne!(code, Some(1), "once must not fail on one row: {err}");
    assert_isolated(&db.url);

    // The daemon, from the same start: it computes the rest and does not reconnect.
    execute(
        &db.url,
        "TRUNCATE job, day, recalcd_errors; UPDATE data SET recalc = 1;",
    );
    let daemon = Daemon::start(&db.url, &[]);
    assert!(
        eventually(|| flagged(&db.url) == 0),
        "the daemon computes everything: {}",
        daemon.log()
    );
    assert_isolated(&db.url);
    let log = daemon.log();
    assert!(!log.contains("retry_in_ms"), "no reconnect loop: {log}");
}
