//! `recalcd reflag` through the real binary, on both stores (`cli_reflag::postgres::*`,
//! `cli_reflag::questdb::*`): after an equation changed, the flagged range (and only
//! it) is recomputed by the next `recalcd once`.

use std::process::Output;

use crate::support::Harness;

on_both_stores!(
    reflag_recomputes_the_range_after_an_equation_changed_and_nothing_else,
    reflag_by_device_and_level,
    bad_reflag_input_is_a_usage_error_and_flags_nothing,
);

fn recalcd(h: &Harness, args: &[&str]) -> Output {
    h.command()
        .args(args)
        .arg("--database-url")
        .arg(h.url())
        .env("RECALCD__LOG__LEVEL", "warn")
        .output()
        .expect("run recalcd")
}

fn ok(h: &Harness, args: &[&str]) -> String {
    let out = recalcd(h, args);
    assert!(
        out.status.success(),
        "recalcd {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `(id, datetime as MM-DD HH:MI, conjoined, version)` of a table, in key order. The
/// version is PostgreSQL's `xmin`, which changes whenever a row is written; QuestDB
/// has no row version, so there it is empty and only the content tells.
fn rows(h: &Harness, table: &str) -> Vec<[String; 4]> {
    let version = if h.is_postgres() { "xmin::text" } else { "''" };
    h.query(&format!(
        "SELECT id, {}, conjoined, {version} FROM {table} ORDER BY id, datetime",
        h.minute("datetime")
    ))
    .into_iter()
    .map(|r| {
        let mut row: [String; 4] = std::array::from_fn(|i| r[i].clone().unwrap_or_default());
        row[1] = row[1].split_off(5);
        row
    })
    .collect()
}

/// Device 5 breaks its days at 06:00 (the default), device 7 at 00:00 (its own `#WB`);
/// each has one job a day on March 1, 2 and 3.
fn setup(h: &Harness) {
    ok(h, &["migrate"]);
    h.exec(
        r#"INSERT INTO {constants} (id, name, value) VALUES (0, 'WB', '06:00'), (7, 'WB', '00:00');
           INSERT INTO {equations} ("type", id, name, eq) VALUES
               (1, 0, 'hot', 'IF > $tmp 20 1 0'),
               (4, 0, 'HOT', 'SSUM $hot'),
               (5, 0, 'DHOT', 'SSUM $hot');
           INSERT INTO {data} (datetime, data_time, id, recalc, conjoined) VALUES
               ('2024-03-01 08:00', '2024-03-01 08:00', 5, 1, 'tmp=25;'),
               ('2024-03-01 08:10', '2024-03-01 08:00', 5, 1, 'tmp=35;'),
               ('2024-03-02 08:00', '2024-03-02 08:00', 5, 1, 'tmp=25;'),
               ('2024-03-02 08:10', '2024-03-02 08:00', 5, 1, 'tmp=35;'),
               ('2024-03-03 05:00', '2024-03-03 05:00', 5, 1, 'tmp=25;'),
               ('2024-03-01 03:00', '2024-03-01 03:00', 7, 1, 'tmp=25;'),
               ('2024-03-02 03:00', '2024-03-02 03:00', 7, 1, 'tmp=25;'),
               ('2024-03-03 03:00', '2024-03-03 03:00', 7, 1, 'tmp=25;');"#,
    );
    ok(h, &["once"]);
}

fn reflag_recomputes_the_range_after_an_equation_changed_and_nothing_else(h: &Harness) {
    setup(h);
    let before = [rows(h, "{data}"), rows(h, "{job}"), rows(h, "{day}")];
    assert_eq!(before[0][0][2], "tmp=25;hot=1;");
    // The threshold moves: nothing changes until rows are flagged.
    h.exec("UPDATE {equations} SET eq = 'IF > $tmp 30 1 0' WHERE name = 'hot'");
    let out = ok(h, &["reflag", "--from", "2024-03-02", "--to", "2024-03-02"]);
    // Device 5's March 2 runs 06:00 .. March 3 06:00 (two rows and the 05:00 one);
    // device 7's March 2 runs 00:00 .. 24:00 (one row).
    assert!(out.contains("data rows flagged: 4"), "{out}");
    assert_eq!(h.flagged(), 4);
    let in_range = |id: &str, at: &str| match id {
        "5" => ("03-02 06:00".."03-03 06:00").contains(&at),
        _ => ("03-02 00:00".."03-03 00:00").contains(&at),
    };
    // Exactly the range's data rows are flagged.
    let flagged: Vec<(String, String)> = h
        .query(&format!(
            "SELECT id, {} FROM {{data}} WHERE recalc <> 0 ORDER BY id, datetime",
            h.minute("datetime")
        ))
        .into_iter()
        .map(|r| {
            let s = |i: usize| r[i].clone().unwrap_or_default();
            (s(0), s(1).split_off(5))
        })
        .collect();
    let expected: Vec<(String, String)> = before[0]
        .iter()
        .filter(|r| in_range(&r[0], &r[1]))
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    assert_eq!(flagged, expected);
    let out = ok(h, &["once"]);
    // The 4 rows, their 3 jobs and their 2 days.
    assert!(
        out.contains("wrote 4 data rows, 3 job rows, 2 day rows"),
        "{out}"
    );
    let after = [rows(h, "{data}"), rows(h, "{job}"), rows(h, "{day}")];
    for (level, (old, new)) in ["data", "job", "day"].iter().zip(before.iter().zip(&after)) {
        assert_eq!(old.len(), new.len(), "{level}");
        for (o, n) in old.iter().zip(new) {
            // A day row's `datetime` is its day break, so it lies in the range too.
            if h.is_postgres() {
                let touched = o[3] != n[3];
                assert_eq!(touched, in_range(&o[0], &o[1]), "{level} {o:?} → {n:?}");
            }
            // Outside the range nothing changes (on QuestDB, with no row version, this
            // and the counts `once` reports are what tell that nothing else was written).
            if !in_range(&o[0], &o[1]) {
                assert_eq!(o, n, "{level}");
            }
        }
    }
    let conjoined = |rows: &[[String; 4]], id: &str, at: &str| {
        rows.iter()
            .find(|r| r[0] == id && r[1] == at)
            .map(|r| r[2].clone())
            .unwrap_or_else(|| panic!("no row {id} {at}"))
    };
    // Recomputed with the new threshold...
    assert_eq!(conjoined(&after[0], "5", "03-02 08:00"), "tmp=25;hot=0;");
    assert_eq!(conjoined(&after[0], "5", "03-03 05:00"), "tmp=25;hot=0;");
    assert_eq!(conjoined(&after[1], "5", "03-02 08:00"), "HOT=1;");
    assert_eq!(conjoined(&after[2], "5", "03-02 06:00"), "DHOT=1;");
    assert_eq!(conjoined(&after[2], "7", "03-02 00:00"), "DHOT=0;");
    // ... and outside the range still with the old one.
    assert_eq!(conjoined(&after[0], "5", "03-01 08:00"), "tmp=25;hot=1;");
    assert_eq!(conjoined(&after[2], "5", "03-01 06:00"), "DHOT=2;");
    assert_eq!(conjoined(&after[2], "7", "03-03 00:00"), "DHOT=1;");
    assert_eq!(h.flagged(), 0);
}

fn reflag_by_device_and_level(h: &Harness) {
    setup(h);
    h.exec("UPDATE {equations} SET eq = '+ SSUM $hot 100' WHERE name = 'DHOT'");
    let out = ok(
        h,
        &[
            "reflag",
            "--from",
            "2024-03-01",
            "--to",
            "2024-03-03",
            "--id",
            "7",
            "--level",
            "day",
        ],
    );
    assert!(out.contains("day rows flagged: 3"), "{out}");
    assert!(!out.contains("data rows flagged"), "{out}");
    let out = ok(h, &["once"]);
    assert!(
        out.contains("wrote 0 data rows, 0 job rows, 3 day rows"),
        "{out}"
    );
    let days = h.query("SELECT id, conjoined FROM {day} ORDER BY id, datetime");
    let days: Vec<(String, String)> = days
        .into_iter()
        .map(|r| {
            (
                r[0].clone().unwrap_or_default(),
                r[1].clone().unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        days.iter()
            .all(|(id, c)| (id == "7") == c.starts_with("DHOT=10")),
        "{days:?}"
    );
    // Several levels at once, counted each.
    let out = ok(
        h,
        &[
            "reflag",
            "--from",
            "2024-03-01",
            "--to",
            "2024-03-01",
            "--level",
            "job,day",
        ],
    );
    assert!(out.contains("job rows flagged: 2"), "{out}");
    assert!(out.contains("day rows flagged: 2"), "{out}");
}

fn bad_reflag_input_is_a_usage_error_and_flags_nothing(h: &Harness) {
    setup(h);
    for (args, message) in [
        (
            vec!["--from", "2024-03-01", "--to", "2024-03-01", "--id", "99"],
            "--id 99: device 99 has no rows in the data, job or day table",
        ),
        (
            vec!["--from", "2024-03-03", "--to", "2024-03-01"],
            "--from 2024-03-03 is after --to 2024-03-01",
        ),
        (
            vec!["--from", "2024-02-30", "--to", "2024-03-01"],
            "'2024-02-30' is not a date YYYY-MM-DD",
        ),
        (
            vec![
                "--from",
                "2024-03-01",
                "--to",
                "2024-03-01",
                "--level",
                "week",
            ],
            "invalid value 'week' for '--level <LEVEL>'",
        ),
    ] {
        let mut all = vec!["reflag"];
        all.extend(&args);
        let out = recalcd(h, &all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    assert_eq!(h.flagged(), 0);
}
