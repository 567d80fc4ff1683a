//! `recalcd once` end to end, against hand-computed values, on both stores: a fresh
//! PostgreSQL database, and uniquely prefixed tables on the QuestDB at `QUESTDB_URL`
//! (`engine_once::postgres::*`, `engine_once::questdb::*`).

use std::process::Output;

use crate::support::Harness;

on_both_stores!(
    once_computes_data_jobs_and_days_and_a_second_run_changes_nothing,
    a_producer_change_is_followed_by_its_job_and_day,
    summary_prints_types_6_then_7_per_device_as_table_csv_and_json,
    a_changed_job_makes_the_next_job_follow_when_dollar_dollar_is_read,
    a_job_re_flagged_by_hand_is_recomputed_from_its_current_data,
    bad_equations_and_rows_are_recorded_and_the_rest_is_computed,
    a_day_break_before_midnight_in_another_zone,
);

fn row(id: &str, at: &str, conjoined: &str, recalc: &str) -> (String, String, String, String) {
    (id.into(), at.into(), conjoined.into(), recalc.into())
}

fn setup(h: &Harness) {
    h.recalcd(&["migrate"]);
    h.exec(
        r#"INSERT INTO {constants} (id, name, value) VALUES
               (0, 'WB', '06:00'), (0, 'TMAX', '20'), (5, 'TMAX', '30');
           INSERT INTO {equations} ("type", id, name, eq) VALUES
               (1, 0, 'hot', 'IF > $tmp #TMAX 1 0'),
               (2, 0, 'd', 'IFNA - $tmp $$tmp 0'),
               (2, 0, 'share', 'ROUNDX / $tmp $TSUM 4'),
               (4, 0, 'N', '#RECS'),
               (4, 0, 'TAVG', 'SNRM $tmp'),
               (4, 0, 'TSUM', 'SSUM $tmp'),
               (5, 0, 'DAVG', 'SNRM $tavg');
           INSERT INTO {data} (datetime, data_time, id, recalc, conjoined) VALUES
               ('2024-03-01 08:00', '2024-03-01 08:00', 5, 1, 'tmp=20;'),
               ('2024-03-01 08:10', '2024-03-01 08:00', 5, 1, 'tmp=40;'),
               ('2024-03-01 09:00', '2024-03-01 09:00', 5, 1, 'tmp=10;'),
               ('2024-03-01 05:00', '2024-03-01 05:00', 7, 1, 'tmp=25;');"#,
    );
}

fn once_computes_data_jobs_and_days_and_a_second_run_changes_nothing(h: &Harness) {
    setup(h);
    let out = h.recalcd(&["once"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("wrote 4 data rows, 3 job rows, 2 day rows"),
        "{text}"
    );
    let data = vec![
        row(
            "5",
            "2024-03-01 08:00",
            "tmp=20;hot=0;d=0;share=0.3333;",
            "0",
        ),
        row(
            "5",
            "2024-03-01 08:10",
            "tmp=40;hot=1;d=20;share=0.6667;",
            "0",
        ),
        row("5", "2024-03-01 09:00", "tmp=10;hot=0;d=-30;share=1;", "0"),
        // Device 7 uses the default TMAX = 20.
        row("7", "2024-03-01 05:00", "tmp=25;hot=1;d=0;share=1;", "0"),
    ];
    let jobs = vec![
        row("5", "2024-03-01 08:00", "N=2;TAVG=30;TSUM=60;", "0"),
        row("5", "2024-03-01 09:00", "N=1;TAVG=10;TSUM=10;", "0"),
        row("7", "2024-03-01 05:00", "N=1;TAVG=25;TSUM=25;", "0"),
    ];
    // 05:00 is before the 06:00 break: device 7's job belongs to the day before.
    let days = vec![
        row("5", "2024-03-01 06:00", "DAVG=20;", "0"),
        row("7", "2024-02-29 06:00", "DAVG=25;", "0"),
    ];
    assert_eq!(h.rows("{data}"), data);
    assert_eq!(h.rows("{job}"), jobs);
    assert_eq!(h.rows("{day}"), days);
    let ends = h.query(&format!(
        "SELECT {} FROM {{job}} WHERE id = 5 ORDER BY datetime",
        h.minute("data_time")
    ));
    assert_eq!(ends[0][0].as_deref(), Some("2024-03-01 08:10"));

    let again = h.recalcd(&["once"]);
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(
        text.contains("wrote 0 data rows, 0 job rows, 0 day rows"),
        "{text}"
    );
    assert_eq!(h.rows("{data}"), data);
    assert_eq!(h.rows("{job}"), jobs);
    assert_eq!(h.rows("{day}"), days);
}

fn a_producer_change_is_followed_by_its_job_and_day(h: &Harness) {
    setup(h);
    h.recalcd(&["once"]);
    h.exec(
        "UPDATE {data} SET conjoined = 'tmp=0;', recalc = 1
          WHERE id = 5 AND datetime = '2024-03-01 09:00'",
    );
    once_leaving_problems(h);
    let job = h.query("SELECT conjoined FROM {job} WHERE id = 5 AND datetime = '2024-03-01 09:00'");
    assert_eq!(job[0][0].as_deref(), Some("N=1;TAVG=0;TSUM=0;"));
    let day = h.query("SELECT conjoined FROM {day} WHERE id = 5");
    assert_eq!(day[0][0].as_deref(), Some("DAVG=15;"));
    // The row itself: 0 / TSUM 0 cannot be computed.
    let data = h.query(
        "SELECT conjoined, recalc FROM {data} WHERE id = 5 AND datetime = '2024-03-01 09:00'",
    );
    assert_eq!(data[0][0].as_deref(), Some("tmp=0;hot=0;d=-40;"));
    assert_eq!(data[0][1].as_deref(), Some("-1"));
    let errors = h.query("SELECT level, id, equation, reason FROM {errors}");
    assert_eq!(
        errors,
        vec![vec![
            Some("data".to_owned()),
            Some("5".to_owned()),
            Some("share".to_owned()),
            Some("division by zero".to_owned()),
        ]]
    );
}

/// `recalcd once` where rows fail or equations are skipped: it finishes, exit code 3.
fn once_leaving_problems(h: &Harness) -> Output {
    let out = h.recalcd_raw(&["once"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn summary_prints_types_6_then_7_per_device_as_table_csv_and_json(h: &Harness) {
    setup(h);
    h.recalcd(&["once"]);
    h.exec(
        r#"INSERT INTO {equations} ("type", id, name, eq) VALUES
               (6, 0, 'total', 'SSUM $davg'),
               (6, 0, 'days', '#RECS'),
               (7, 0, 'mean', '/ $TOTAL $DAYS');"#,
    );
    let range = ["summary", "--from", "2024-02-29", "--to", "2024-03-01"];
    let csv = h.recalcd(&[&range[..], &["--format", "csv"]].concat());
    assert_eq!(
        String::from_utf8_lossy(&csv.stdout),
        "id,days,total,mean\n5,1,20,20\n7,1,25,25\n"
    );
    let table = h.recalcd(&range);
    assert_eq!(
        String::from_utf8_lossy(&table.stdout),
        "id  days  total  mean\n--  ----  -----  ----\n 5     1     20    20\n 7     1     25    25\n"
    );
    let json = h.recalcd(&[&range[..], &["--format", "json", "--id", "7"]].concat());
    let parsed: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(
        parsed,
        serde_json::json!([{ "id": 7, "days": 1, "total": 25, "mean": 25 }])
    );
    // Only March 1: device 7's day (Feb 29) is outside; asked for by id, it has none.
    let none = h.recalcd(&[
        "summary",
        "--from",
        "2024-03-01",
        "--to",
        "2024-03-01",
        "--id",
        "7",
        "--format",
        "csv",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&none.stdout),
        "id,days,total,mean\n7,0,0,\n"
    );
    let err = String::from_utf8_lossy(&none.stderr);
    assert!(
        err.contains("device 7: 'mean' could not be computed: division by zero"),
        "{err}"
    );
    let backwards = h.recalcd_raw(&["summary", "--from", "2024-03-02", "--to", "2024-03-01"]);
    assert_eq!(backwards.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&backwards.stderr)
        .contains("--from 2024-03-02 is after --to 2024-03-01"));
}

fn a_changed_job_makes_the_next_job_follow_when_dollar_dollar_is_read(h: &Harness) {
    setup(h);
    h.recalcd(&["once"]);
    let next_row = "SELECT conjoined FROM {data} WHERE id = 5 AND datetime = '2024-03-01 09:00'";
    assert_eq!(h.one(next_row), "tmp=10;hot=0;d=-30;share=1;");
    // The last row of the 08:00 job changes; the 09:00 job's first row reads it as $$tmp.
    h.exec(
        "UPDATE {data} SET conjoined = 'tmp=50;', recalc = 1
          WHERE id = 5 AND datetime = '2024-03-01 08:10'",
    );
    h.recalcd(&["once"]);
    assert_eq!(
        h.one("SELECT conjoined FROM {job} WHERE id = 5 AND datetime = '2024-03-01 08:00'"),
        "N=2;TAVG=35;TSUM=70;"
    );
    assert_eq!(h.one(next_row), "tmp=10;hot=0;d=-40;share=1;");
    assert_eq!(h.one("SELECT count(*) FROM {data} WHERE recalc > 0"), "0");
    assert_eq!(h.one("SELECT count(*) FROM {job} WHERE recalc > 0"), "0");
    assert_eq!(
        h.one("SELECT conjoined FROM {day} WHERE id = 5"),
        "DAVG=22.5;"
    );
}

fn a_job_re_flagged_by_hand_is_recomputed_from_its_current_data(h: &Harness) {
    setup(h);
    h.recalcd(&["once"]);
    // A producer corrects a value without flagging it; a user then re-flags the job.
    h.exec(
        "UPDATE {data} SET conjoined = 'tmp=30;' WHERE id = 7 AND datetime = '2024-03-01 05:00';
         UPDATE {job} SET recalc = 1 WHERE id = 7;",
    );
    h.recalcd(&["once"]);
    assert_eq!(
        h.one("SELECT conjoined FROM {job} WHERE id = 7"),
        "N=1;TAVG=30;TSUM=30;"
    );
    assert_eq!(
        h.one("SELECT conjoined FROM {data} WHERE id = 7"),
        "tmp=30;hot=1;d=0;share=1;"
    );
    assert_eq!(
        h.one("SELECT conjoined FROM {day} WHERE id = 7"),
        "DAVG=30;"
    );
    assert_eq!(h.one("SELECT recalc FROM {job} WHERE id = 7"), "0");
}

fn bad_equations_and_rows_are_recorded_and_the_rest_is_computed(h: &Harness) {
    h.recalcd(&["migrate"]);
    h.exec(
        r#"INSERT INTO {constants} (id, name, value) VALUES (1, 'WB', '06:00');
           INSERT INTO {equations} ("type", id, name, eq) VALUES
               (1, 0, 'double', '* $x 2'),
               (1, 0, 'broken', '+ $x'),
               (4, 0, 'TOTAL', 'SSUMX $double'),
               (5, 0, 'DAYTOTAL', 'SSUM $total');
           INSERT INTO {data} (datetime, data_time, id, recalc, conjoined) VALUES
               ('2024-03-01 08:00', '2024-03-01 08:00', 1, 1, 'x=1;'),
               ('2024-03-01 08:01', '2024-03-01 08:00', 1, 1, 'x=2;oops;'),
               ('2024-03-01 08:02', '2024-03-01 08:00', 1, 1, 'x=3;'),
               ('2024-03-01 09:00', '2024-03-01 09:00', 2, 1, 'x=4;');"#,
    );
    let out = once_leaving_problems(h);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        log.matches("equation (type 1, id 0, 'broken') column 5")
            .count(),
        1,
        "reported once, with its key and column: {log}"
    );
    let data = h.query("SELECT id, conjoined, recalc FROM {data} ORDER BY id, datetime");
    let data: Vec<(String, String, String)> = data
        .into_iter()
        .map(|r| {
            (
                r[0].clone().unwrap(),
                r[1].clone().unwrap(),
                r[2].clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        data,
        [
            ("1", "x=1;double=2;", "0"),
            ("1", "x=2;oops;", "-1"),
            ("1", "x=3;double=6;", "0"),
            ("2", "x=4;double=8;", "0"),
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    );
    // Device 1's job and day; device 2 has no #WB: its job is computed, its day cannot be.
    assert_eq!(
        h.one("SELECT conjoined FROM {job} WHERE id = 1"),
        "TOTAL=8;"
    );
    assert_eq!(
        h.one("SELECT conjoined FROM {day} WHERE id = 1"),
        "DAYTOTAL=8;"
    );
    assert_eq!(
        h.one("SELECT conjoined || ' ' || recalc FROM {job} WHERE id = 2"),
        "TOTAL=8; -1"
    );
    assert_eq!(h.one("SELECT count(*) FROM {day} WHERE id = 2"), "0");
    let errors = h.query("SELECT level, id, equation, reason FROM {errors} ORDER BY id, level");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0][0].as_deref(), Some("data"));
    assert_eq!(errors[0][2].as_deref(), Some("conjoined"));
    assert!(
        errors[0][3]
            .as_deref()
            .unwrap()
            .contains("'oops' has no '='"),
        "{errors:?}"
    );
    assert_eq!(errors[1][0].as_deref(), Some("job"));
    assert_eq!(errors[1][2].as_deref(), Some("#WB"));
    assert!(
        errors[1][3].as_deref().unwrap().contains("#WB is missing"),
        "{errors:?}"
    );
}

fn a_day_break_before_midnight_in_another_zone(h: &Harness) {
    h.recalcd(&["migrate"]);
    // New York is UTC-5 in January: a 22:00 break is 03:00 UTC the next calendar day.
    h.exec(
        r#"INSERT INTO {constants} (id, name, value) VALUES
               (3, 'WB', '22:00'), (3, 'TZ', 'America/New_York');
           INSERT INTO {equations} ("type", id, name, eq) VALUES
               (4, 0, 'N', '#RECS'), (5, 0, 'JOBS', '#RECS');
           INSERT INTO {data} (datetime, data_time, id, recalc, conjoined) VALUES
               ('2024-01-11 02:59', '2024-01-11 02:59', 3, 1, 'x=1;'),
               ('2024-01-11 03:00', '2024-01-11 03:00', 3, 1, 'x=2;'),
               ('2024-01-11 04:30', '2024-01-11 04:30', 3, 1, 'x=3;');"#,
    );
    h.recalcd(&["once"]);
    let days = h.query(&format!(
        "SELECT {}, {}, conjoined FROM {{day}} ORDER BY datetime",
        h.minute("datetime"),
        h.minute("data_time")
    ));
    assert_eq!(
        days,
        vec![
            // 21:59 local on Jan 10: the day that began at 22:00 on Jan 9.
            vec![
                Some("2024-01-10 03:00".to_owned()),
                Some("2024-01-11 03:00".to_owned()),
                Some("JOBS=1;".to_owned())
            ],
            vec![
                Some("2024-01-11 03:00".to_owned()),
                Some("2024-01-12 03:00".to_owned()),
                Some("JOBS=2;".to_owned())
            ],
        ]
    );
}
