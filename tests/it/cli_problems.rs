//! Problems are visible where users look, through the real binary on a real PostgreSQL:
//! `status` shows skipped equations, failed rows and whether each error is still
//! current; `once` exits 3 when it left problems; `summary` notes unsettled rows and
//! refuses an unknown device; `prune` keeps the errors table bounded.

use std::process::{Command, Output};

use crate::support::TestDb;

fn recalcd(db: &TestDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_recalcd"))
        .args(args)
        .arg("--database-url")
        .arg(&db.url)
        .env_remove("RECALCD_CONFIG")
        .env("RECALCD__LOG__LEVEL", "warn")
        .output()
        .expect("run recalcd")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn migrated() -> TestDb {
    let db = TestDb::create_blocking();
    let o = recalcd(&db, &["migrate"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    db
}

/// The line of `out` that starts (after indentation) with `prefix`.
fn line<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find(|l| l.trim_start().starts_with(prefix))
        .unwrap_or_else(|| panic!("no line `{prefix}…` in:\n{out}"))
}

#[test]
fn status_shows_skipped_equations_failed_rows_and_current_errors() {
    let db = migrated();
    db.execute_blocking(
        r#"INSERT INTO equations ("type", id, name, eq) VALUES
               (1, 0, 'double', '* $x 2'),
               (1, 0, 'broken', '+ $x'),
               (1, 0, 'a', '+ $b 1'),
               (1, 0, 'b', '+ $a 1');
           INSERT INTO data (datetime, data_time, id, recalc, conjoined) VALUES
               ('2024-03-01 08:00', '2024-03-01 08:00', 1, 1, 'x=1;'),
               ('2024-03-01 08:01', '2024-03-01 08:00', 1, 1, 'x=two;');"#,
    );
    let once = recalcd(&db, &["once"]);
    let out = text(&once.stdout);
    assert_eq!(once.status.code(), Some(3), "{out}\n{}", text(&once.stderr));
    assert!(out.contains("1 rows with failures"), "{out}");
    assert!(out.contains("3 of 4 equations skipped"), "{out}");

    let status = recalcd(&db, &["status"]);
    assert!(status.status.success(), "{}", text(&status.stderr));
    let out = text(&status.stdout);
    assert!(out.contains("equations: 4 (3 skipped)"), "{out}");
    let skipped: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("skipped equations"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert_eq!(skipped.len(), 3, "{out}");
    assert!(skipped.iter().any(|l| l.contains("'broken'")), "{out}");
    assert!(
        skipped
            .iter()
            .any(|l| l.contains("'a'") && l.contains("cycle")),
        "{out}"
    );
    let failed = line(&out, "data data");
    let failed_line = out
        .lines()
        .skip_while(|l| !l.starts_with("failed rows"))
        .nth(1)
        .unwrap_or_default();
    assert!(failed_line.contains("1 failed"), "{out}");
    assert!(failed.contains("0 flagged"), "{out}");
    let error = line(&out, "current");
    assert!(
        error.contains("data id=1 2024-03-01 08:01:00 double"),
        "{out}"
    );

    // The producer fixes the row; once the row computes, its error is past. The broken
    // equations are still skipped: once still exits 3.
    db.execute_blocking(
        "UPDATE data SET conjoined = 'x=2;', recalc = 1 WHERE conjoined = 'x=two;'",
    );
    let once = recalcd(&db, &["once"]);
    assert_eq!(once.status.code(), Some(3), "{}", text(&once.stdout));
    let out = text(&recalcd(&db, &["status"]).stdout);
    assert!(
        line(&out, "past").contains("data id=1 2024-03-01 08:01:00 double"),
        "{out}"
    );
    assert!(
        !out.lines().any(|l| l.trim_start().starts_with("current")),
        "{out}"
    );

    // Fixed equations: the next load records no problem, and once exits 0.
    db.execute_blocking("DELETE FROM equations WHERE name <> 'double'");
    db.execute_blocking("UPDATE data SET recalc = 1");
    let once = recalcd(&db, &["once"]);
    assert_eq!(once.status.code(), Some(0), "{}", text(&once.stdout));
    assert!(text(&once.stdout).contains("0 of 1 equations skipped"));
    let out = text(&recalcd(&db, &["status"]).stdout);
    assert!(out.contains("skipped equations: none"), "{out}");
    assert!(out.contains("equations: 1 (0 skipped)"), "{out}");
}

#[test]
fn status_escapes_control_characters_from_the_data() {
    let db = migrated();
    db.execute_blocking(
        r#"INSERT INTO data (datetime, data_time, id, recalc, conjoined)
                VALUES ('2024-03-01 08:00', '2024-03-01 08:00', 1, -1, 'x=1;');
           INSERT INTO recalcd_errors (level, id, datetime, equation, reason)
                VALUES ('data', 1, '2024-03-01 08:00', E'na\x1b[2Jme', E'bad\nline\x07 \u202Eevil');
           INSERT INTO equations ("type", id, name, eq) VALUES (1, 0, E'x\x1bq', '+ 1');"#,
    );
    let o = recalcd(&db, &["once"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let o = recalcd(&db, &["status"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        !o.stdout.iter().any(|b| *b == 0x1b || *b == 0x07),
        "raw control bytes in: {:?}",
        text(&o.stdout)
    );
    let out = text(&o.stdout);
    assert!(!out.contains('\u{202e}'), "{out}");
    assert!(
        out.contains(r"na\u{1b}[2Jme: bad\nline\u{7} \u{202e}evil"),
        "{out}"
    );
    assert!(line(&out, "current").contains("data id=1"), "{out}");
    // The skipped equation's name comes from the data too.
    assert!(out.contains(r"x\u{1b}q"), "{out}");
}

#[test]
fn once_exits_0_when_everything_computed() {
    let db = migrated();
    db.execute_blocking(
        r#"INSERT INTO equations ("type", id, name, eq) VALUES (1, 0, 'double', '* $x 2');
           INSERT INTO data (datetime, data_time, id, recalc, conjoined)
                VALUES ('2024-03-01 08:00', '2024-03-01 08:00', 1, 1, 'x=1;');"#,
    );
    let o = recalcd(&db, &["once"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("0 rows with failures"));
    let help = Command::new(env!("CARGO_BIN_EXE_recalcd"))
        .args(["once", "--help"])
        .output()
        .expect("run recalcd");
    assert!(text(&help.stdout).contains("3 when it finished but rows got"));
}

#[test]
fn summary_refuses_an_unknown_device_and_notes_unsettled_rows() {
    let db = migrated();
    db.execute_blocking(
        r#"INSERT INTO equations ("type", id, name, eq) VALUES (6, 0, 'days', 'NUM $X');
           INSERT INTO day (datetime, data_time, id, recalc, conjoined) VALUES
               ('2024-03-01 00:00', '2024-03-02 00:00', 5, 1, 'X=1;'),
               ('2024-03-02 00:00', '2024-03-03 00:00', 5, -1, 'X=2;'),
               ('2024-03-10 00:00', '2024-03-11 00:00', 6, 1, 'X=1;');"#,
    );
    let o = recalcd(
        &db,
        &[
            "summary",
            "--from",
            "2024-03-01",
            "--to",
            "2024-03-02",
            "--id",
            "77",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stdout));
    let err = text(&o.stderr);
    assert!(
        err.contains("--id 77") && err.contains("no device 77"),
        "{err}"
    );
    assert!(o.stdout.is_empty());

    let o = recalcd(
        &db,
        &["summary", "--from", "2024-03-01", "--to", "2024-03-02"],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("note: rows between 2024-03-01 and 2024-03-02 are still flagged or failed (day rows: 1 flagged, 1 failed)"),
        "{err}"
    );
    // Device 6's flagged day is outside the range; device 5 is in it.
    let o = recalcd(
        &db,
        &[
            "summary",
            "--from",
            "2024-03-10",
            "--to",
            "2024-03-10",
            "--id",
            "5",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(!err.contains("note:"), "{err}");
    let o = recalcd(
        &db,
        &["summary", "--from", "2024-03-10", "--to", "2024-03-10"],
    );
    assert!(
        text(&o.stderr).contains("day rows: 1 flagged, 0 failed"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn prune_deletes_old_errors_but_the_current_ones() {
    let db = migrated();
    db.execute_blocking(
        r#"INSERT INTO data (datetime, data_time, id, recalc, conjoined) VALUES
               ('2024-03-01 08:00', '2024-03-01 08:00', 1, -1, 'x=1;'),
               ('2024-03-01 08:01', '2024-03-01 08:00', 1, 0, 'x=2;');
           INSERT INTO recalcd_errors (at, level, id, datetime, equation, reason) VALUES
               (now() - interval '40 days', 'data', 1, '2024-03-01 08:00', 'a', 'still failing'),
               (now() - interval '40 days', 'data', 1, '2024-03-01 08:01', 'a', 'computed since'),
               (now() - interval '50 days', 'data', 1, '2024-03-01 08:01', 'a', 'older still'),
               (now() - interval '1 day', 'data', 1, '2024-03-01 08:01', 'a', 'recent');"#,
    );
    let o = recalcd(&db, &["prune", "--older-than", "30d"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).starts_with("deleted 2 error records"),
        "{}",
        text(&o.stdout)
    );
    let left: Vec<String> = db
        .query_blocking("SELECT reason FROM recalcd_errors ORDER BY at")
        .into_iter()
        .filter_map(|r| r[0].clone())
        .collect();
    assert_eq!(left, ["still failing", "recent"]);
    let o = recalcd(&db, &["prune", "--older-than", "soon"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("--older-than"),
        "{}",
        text(&o.stderr)
    );
}
