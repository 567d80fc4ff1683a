//! Every variable form and pseudo-constant at the data, job and day levels, on both
//! stores (`engine_forms::postgres::*`, `engine_forms::questdb::*`), against
//! hand-computed values. Device 1 is in Prague (UTC+1 in January)
//! with a 06:00 day break (05:00 UTC). Batches of two flagged rows make most neighbours
//! (previous row, job and day) come from the store rather than from the same batch.

use std::collections::BTreeMap;

use crate::support::Harness;

on_both_stores!(every_form_and_pseudo_constant_at_every_level);

fn recalcd(h: &Harness, args: &[&str]) -> String {
    let out = h
        .command()
        .args(args)
        .arg("--database-url")
        .arg(h.url())
        .env("RECALCD__POLL__BATCH_SIZE", "2")
        .output()
        .expect("run recalcd");
    assert!(
        out.status.success(),
        "recalcd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `conjoined` of every row of `table` by `datetime`, as name → value.
fn values(h: &Harness, table: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    h.query(&format!(
        "SELECT {}, conjoined, recalc FROM {table} ORDER BY datetime",
        h.minute("datetime")
    ))
    .into_iter()
    .map(|r| {
        // `MM-DD HH:MI`
        let at = r[0].clone().unwrap_or_default().split_off(5);
        assert_eq!(
            r[2].as_deref(),
            Some("0"),
            "{table} {at} has recalc {:?}",
            r[2]
        );
        let pairs = r[1]
            .clone()
            .unwrap_or_default()
            .split(';')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (n, v) = p.split_once('=').expect("name=value");
                (n.to_owned(), v.to_owned())
            })
            .collect();
        (at, pairs)
    })
    .collect()
}

fn expect(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

const EQUATIONS: &str = r#"INSERT INTO {equations} ("type", id, name, eq) VALUES
    (1, 0, 'prev', 'IFNA $$x -1'),
    (1, 0, 'mt', '#MT'), (1, 0, 'jt', '#JT'), (1, 0, 'rec', '#REC'),
    (1, 0, 'gid', '#GID'), (1, 0, 'jb', '#JB'), (1, 0, 'je', '#JE'),
    (1, 0, 'wb', '#WB'), (1, 0, 'we', '#WE'),
    (2, 0, 'up', 'IFNA $JSUM -1'), (2, 0, 'pup', 'IFNA $$JSUM -1'),
    (4, 0, 'JSUM', 'SSUM $x'), (4, 0, 'JPREV', 'IFNA SSUM $$x -1'),
    (4, 0, 'JPUP', 'IFNA $$JSUM -1'), (4, 0, 'JUP', '* $JSUM 2'),
    (4, 0, 'JMT', '#MT'), (4, 0, 'JVMT', '#VMT'), (4, 0, 'JRECS', '#RECS'),
    (4, 0, 'JB', '#JB'), (4, 0, 'JE', '#JE'), (4, 0, 'JWE', '#WE'),
    (5, 0, 'DSUM', 'SSUM $jsum'), (5, 0, 'DPREV', 'IFNA SSUM $$jsum -1'),
    (5, 0, 'DUP', '+ $DSUM 0'), (5, 0, 'DPUP', 'IFNA $$DSUM -1'),
    (5, 0, 'DD', 'SCNT $d$x'), (5, 0, 'DMT', '#MT'), (5, 0, 'DRECS', '#RECS'),
    (5, 0, 'DJB', '#JB'), (5, 0, 'DJE', '#JE'), (5, 0, 'DVMT', '#VMT');
  INSERT INTO {constants} (id, name, value) VALUES
    (0, 'WB', '06:00'), (1, 'TZ', 'Europe/Prague');
  INSERT INTO {data} (datetime, data_time, id, recalc, conjoined) VALUES
    ('2024-01-10 05:30', '2024-01-10 05:30', 1, 1, 'x=1;'),
    ('2024-01-10 05:31', '2024-01-10 05:30', 1, 1, 'x=3;'),
    ('2024-01-10 05:33', '2024-01-10 05:30', 1, 1, 'x=8;'),
    ('2024-01-10 07:00', '2024-01-10 07:00', 1, 1, 'x=2;'),
    ('2024-01-10 07:02', '2024-01-10 07:00', 1, 1, 'x=4;'),
    ('2024-01-11 04:59', '2024-01-11 04:59', 1, 1, 'x=5;'),
    ('2024-01-11 05:00', '2024-01-11 05:00', 1, 1, 'x=7;');"#;

#[allow(clippy::too_many_arguments)]
fn data_row(
    x: &str,
    prev: &str,
    mt: &str,
    jt: &str,
    rec: &str,
    job: (&str, &str),
    we: &str,
    up: &str,
    pup: &str,
) -> BTreeMap<String, String> {
    expect(&[
        ("x", x),
        ("prev", prev),
        ("mt", mt),
        ("jt", jt),
        ("rec", rec),
        ("gid", "1"),
        ("jb", job.0),
        ("je", job.1),
        ("wb", "06:00:00"),
        ("we", we),
        ("up", up),
        ("pup", pup),
    ])
}

fn every_form_and_pseudo_constant_at_every_level(h: &Harness) {
    recalcd(h, &["migrate"]);
    h.exec(EQUATIONS);
    let report = recalcd(h, &["once"]);
    // Batches of two flagged rows split the first day's jobs over several batches; the
    // day waits for the last of them instead of being rewritten by each.
    assert!(
        report.contains("wrote 7 data rows, 4 job rows, 2 day rows"),
        "{report}"
    );

    let j1 = ("2024-01-10T05:30:00", "2024-01-10T05:33:00");
    let j2 = ("2024-01-10T07:00:00", "2024-01-10T07:02:00");
    let j3 = ("2024-01-11T04:59:00", "2024-01-11T04:59:00");
    let j4 = ("2024-01-11T05:00:00", "2024-01-11T05:00:00");
    let (we1, we2) = ("2024-01-11T05:00:00", "2024-01-12T05:00:00");
    let data = values(h, "{data}");
    let want_data = [
        (
            "01-10 05:30",
            data_row("1", "-1", "0", "0", "1", j1, we1, "12", "-1"),
        ),
        (
            "01-10 05:31",
            data_row("3", "1", "60", "60", "2", j1, we1, "12", "-1"),
        ),
        (
            "01-10 05:33",
            data_row("8", "3", "120", "180", "3", j1, we1, "12", "-1"),
        ),
        (
            "01-10 07:00",
            data_row("2", "8", "0", "0", "1", j2, we1, "6", "12"),
        ),
        (
            "01-10 07:02",
            data_row("4", "2", "120", "120", "2", j2, we1, "6", "12"),
        ),
        // 05:59 in Prague: still the working day of January 10.
        (
            "01-11 04:59",
            data_row("5", "4", "0", "0", "1", j3, we1, "5", "6"),
        ),
        (
            "01-11 05:00",
            data_row("7", "5", "0", "0", "1", j4, we2, "7", "5"),
        ),
    ];
    for (at, want) in &want_data {
        assert_eq!(&data[*at], want, "data row {at}");
    }

    let job = |sum: &str,
               prev: &str,
               up: &str,
               mt: &str,
               vmt: &str,
               recs: &str,
               t: (&str, &str),
               we: &str| {
        expect(&[
            ("JSUM", sum),
            ("JPREV", prev),
            ("JPUP", prev),
            ("JUP", up),
            ("JMT", mt),
            ("JVMT", vmt),
            ("JRECS", recs),
            ("JB", t.0),
            ("JE", t.1),
            ("JWE", we),
        ])
    };
    let jobs = values(h, "{job}");
    assert_eq!(
        jobs["01-10 05:30"],
        job("12", "-1", "24", "180", "0,60,120", "3", j1, we1)
    );
    assert_eq!(
        jobs["01-10 07:00"],
        job("6", "12", "12", "120", "0,120", "2", j2, we1)
    );
    assert_eq!(
        jobs["01-11 04:59"],
        job("5", "6", "10", "0", "0", "1", j3, we1)
    );
    assert_eq!(
        jobs["01-11 05:00"],
        job("7", "5", "14", "0", "0", "1", j4, we2)
    );

    let day = |sum: &str, prev: &str, rows: &str, recs: &str, t: (&str, &str), vmt: &str| {
        expect(&[
            ("DSUM", sum),
            ("DPREV", prev),
            ("DUP", sum),
            ("DPUP", prev),
            ("DD", rows),
            ("DMT", "86400"),
            ("DRECS", recs),
            ("DJB", t.0),
            ("DJE", t.1),
            ("DVMT", vmt),
        ])
    };
    let days = values(h, "{day}");
    let d1 = ("2024-01-10T05:00:00", we1);
    let d2 = ("2024-01-11T05:00:00", we2);
    assert_eq!(days.len(), 2, "{days:?}");
    assert_eq!(
        days["01-10 05:00"],
        day("23", "-1", "6", "3", d1, "180,120,0")
    );
    assert_eq!(days["01-11 05:00"], day("7", "23", "1", "1", d2, "0"));

    // One row changes: its neighbours (row, job, day before) all come from the store.
    h.exec("UPDATE {data} SET conjoined = 'x=9;', recalc = 1 WHERE datetime = '2024-01-11 05:00'");
    recalcd(h, &["once"]);
    let data = values(h, "{data}");
    assert_eq!(
        data["01-11 05:00"],
        data_row("9", "5", "0", "0", "1", j4, we2, "9", "5")
    );
    let jobs = values(h, "{job}");
    assert_eq!(
        jobs["01-11 05:00"],
        job("9", "5", "18", "0", "0", "1", j4, we2)
    );
    let days = values(h, "{day}");
    assert_eq!(days["01-11 05:00"], day("9", "23", "1", "1", d2, "0"));
    // Nothing before it was touched.
    assert_eq!(
        days["01-10 05:00"],
        day("23", "-1", "6", "3", d1, "180,120,0")
    );
}
