//! The engine against hand-computed values, in memory.

use std::collections::BTreeSet;

use chrono::NaiveDateTime;

use super::catalog::{Catalog, Constants};
use super::compute::{compute, DeviceBatch, Options, Outcome};
use crate::model::{Constant, Equation, Row, RowVersion};

fn t(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
}

fn row(id: i32, at: &str, job: &str, conjoined: &str) -> Row {
    Row {
        datetime: t(at),
        data_time: t(job),
        id,
        state: Some(1),
        user: Some("eva".into()),
        gps: None,
        recalc: 1,
        conjoined: conjoined.into(),
        version: RowVersion::ABSENT,
        unreadable: None,
    }
}

fn eqs(list: &[(i32, i32, &str, &str)]) -> Catalog {
    let records: Vec<Equation> = list
        .iter()
        .map(|(kind, id, name, eq)| Equation {
            kind: *kind,
            id: *id,
            name: (*name).into(),
            eq: (*eq).into(),
        })
        .collect();
    let c = Catalog::build(&records);
    assert!(c.problems().is_empty(), "{:?}", c.problems());
    c
}

fn consts(c: &Catalog, list: &[(i32, &str, &str)]) -> Constants {
    let records: Vec<Constant> = list
        .iter()
        .map(|(id, name, value)| Constant {
            id: *id,
            name: (*name).into(),
            value: (*value).into(),
        })
        .collect();
    Constants::build(&records, c.symbols())
}

fn run(c: &Catalog, k: &Constants, batch: DeviceBatch) -> Outcome {
    compute(batch, c, k, &Options::default())
}

fn targets(jobs: &[&str]) -> BTreeSet<NaiveDateTime> {
    jobs.iter().map(|s| t(s)).collect()
}

fn conj(rows: &[Row]) -> Vec<&str> {
    rows.iter().map(|r| r.conjoined.as_str()).collect()
}

#[test]
fn data_equations_see_the_previous_row_and_pseudo_constants() {
    let c = eqs(&[
        (1, 0, "d", "- $tmp $$tmp"),
        (1, 0, "mt", "#MT"),
        (1, 0, "rec", "#REC"),
        (2, 0, "hot", "IF > $tmp #TMAX 1 0"),
        (2, 0, "jt", "#JT"),
    ]);
    let k = consts(&c, &[(0, "TMAX", "20"), (7, "TMAX", "21")]);
    let job = "2024-03-01 08:00:00";
    let batch = DeviceBatch {
        id: 7,
        data: vec![
            row(7, "2024-03-01 08:00:10", job, "tmp=20.5;"),
            row(7, "2024-03-01 08:00:00", job, "tmp=19;"),
            row(7, "2024-03-01 08:01:00", job, "tmp=22;"),
        ],
        target_jobs: targets(&[job]),
        ..DeviceBatch::default()
    };
    let out = run(&c, &k, batch);
    assert_eq!(
        conj(&out.data),
        [
            // The first row has no previous row: `d` fails, the rest is computed.
            "tmp=19;mt=0;rec=1;hot=0;jt=0;",
            "tmp=20.5;d=1.5;mt=10;rec=2;hot=0;jt=10;",
            "tmp=22;d=1.5;mt=50;rec=3;hot=1;jt=60;",
        ]
    );
    assert_eq!(
        out.data.iter().map(|r| r.recalc).collect::<Vec<_>>(),
        [-1, 0, 0]
    );
    assert_eq!(out.errors.len(), 1);
    assert_eq!(out.errors[0].equation, "d");
    assert_eq!(out.errors[0].reason, "$$tmp has no value");
    assert_eq!(out.iterations, 1);
    // The job row: start, end, the last row's facts; no job equations.
    assert_eq!(out.jobs.len(), 1);
    assert_eq!(out.jobs[0].datetime, t(job));
    assert_eq!(out.jobs[0].data_time, t("2024-03-01 08:01:00"));
    assert_eq!(out.jobs[0].recalc, 0);
    assert!(out.jobs[0].version.is_absent());
}

#[test]
fn job_equations_read_vectors_and_the_previous_job() {
    let c = eqs(&[
        (4, 0, "SUM", "SSUM $x"),
        (4, 0, "N", "#RECS"),
        (4, 0, "DUR", "#MT"),
        (4, 0, "GROWTH", "- $SUM $$SUM"),
        (4, 0, "PREVN", "SCNT $$x"),
    ]);
    let k = consts(&c, &[]);
    let prev = "2024-03-01 06:00:00";
    let job = "2024-03-01 08:00:00";
    let mut stored_prev = row(3, prev, "2024-03-01 06:30:00", "SUM=10;N=2;");
    stored_prev.recalc = 0;
    let batch = DeviceBatch {
        id: 3,
        data: vec![
            row(3, "2024-03-01 06:00:00", prev, "x=4;"),
            row(3, "2024-03-01 06:30:00", prev, "x=6;"),
            row(3, "2024-03-01 08:00:00", job, "x=1;"),
            row(3, "2024-03-01 08:30:00", job, "x=2;"),
            row(3, "2024-03-01 09:00:00", job, "x=4.5;"),
        ],
        jobs: vec![stored_prev],
        target_jobs: targets(&[job]),
        ..DeviceBatch::default()
    };
    let out = run(&c, &k, batch);
    assert_eq!(out.data.len(), 3, "only the target job's rows are written");
    assert_eq!(
        conj(&out.jobs),
        ["DUR=3600;N=3;PREVN=2;SUM=7.5;GROWTH=-2.5;"]
    );
    assert!(out.errors.is_empty(), "{:?}", out.errors);
}

#[test]
fn a_data_equation_reading_its_job_iterates_to_a_fixpoint() {
    let c = eqs(&[
        (1, 0, "share", "/ $x $TOTAL"),
        (4, 0, "TOTAL", "SSUM $x"),
        (4, 0, "MAXSHARE", "SMAX $share"),
    ]);
    let k = consts(&c, &[]);
    let job = "2024-03-01 08:00:00";
    let batch = DeviceBatch {
        id: 1,
        data: vec![
            row(1, "2024-03-01 08:00:00", job, "x=1;"),
            row(1, "2024-03-01 08:10:00", job, "x=3;"),
        ],
        target_jobs: targets(&[job]),
        ..DeviceBatch::default()
    };
    let out = run(&c, &k, batch);
    assert_eq!(conj(&out.data), ["x=1;share=0.25;", "x=3;share=0.75;"]);
    assert_eq!(conj(&out.jobs), ["MAXSHARE=0.75;TOTAL=4;"]);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(out.iterations, 3, "fill, settle, confirm");
}

#[test]
fn days_break_at_wb_in_the_device_zone() {
    let c = eqs(&[
        (4, 0, "TOTAL", "SSUM $x"),
        (5, 0, "DAYTOTAL", "SSUM $total"),
        (5, 0, "JOBS", "#RECS"),
        (5, 0, "ROWS", "SCNT $d$x"),
        (5, 0, "LEN", "#MT"),
    ]);
    // Prague is UTC+1 in January: a 06:00 break is 05:00 UTC.
    let k = consts(&c, &[(0, "WB", "06:00"), (0, "TZ", "Europe/Prague")]);
    let (a, b, d) = (
        "2024-01-10 04:59:00",
        "2024-01-10 05:00:00",
        "2024-01-10 20:00:00",
    );
    let batch = DeviceBatch {
        id: 2,
        data: vec![
            row(2, a, a, "x=1;"),
            row(2, b, b, "x=2;"),
            row(2, "2024-01-10 05:30:00", b, "x=3;"),
            row(2, d, d, "x=10;"),
        ],
        target_jobs: targets(&[a, b, d]),
        ..DeviceBatch::default()
    };
    let out = run(&c, &k, batch);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let days: Vec<(NaiveDateTime, NaiveDateTime, &str)> = out
        .days
        .iter()
        .map(|r| (r.datetime, r.data_time, r.conjoined.as_str()))
        .collect();
    assert_eq!(
        days,
        [
            (
                t("2024-01-09 05:00:00"),
                t("2024-01-10 05:00:00"),
                "DAYTOTAL=1;JOBS=1;LEN=86400;ROWS=1;"
            ),
            (
                t("2024-01-10 05:00:00"),
                t("2024-01-11 05:00:00"),
                "DAYTOTAL=15;JOBS=2;LEN=86400;ROWS=3;"
            ),
        ]
    );
}

#[test]
fn missing_day_break_fails_the_jobs_but_computes_them() {
    let c = eqs(&[
        (4, 0, "TOTAL", "SSUM $x"),
        (5, 0, "DAYTOTAL", "SSUM $total"),
    ]);
    let k = consts(&c, &[]);
    let job = "2024-03-01 08:00:00";
    let batch = DeviceBatch {
        id: 9,
        data: vec![row(9, job, job, "x=2;")],
        target_jobs: targets(&[job]),
        ..DeviceBatch::default()
    };
    let out = run(&c, &k, batch);
    assert_eq!(conj(&out.jobs), ["TOTAL=2;"]);
    assert_eq!(out.jobs[0].recalc, -1);
    assert!(out.days.is_empty());
    assert_eq!(out.errors.len(), 1);
    assert_eq!(out.errors[0].equation, "#WB");
    assert!(
        out.errors[0].reason.contains("#WB is missing"),
        "{}",
        out.errors[0].reason
    );
}

#[test]
fn a_malformed_row_keeps_its_content_and_the_others_compute() {
    let c = eqs(&[(1, 0, "y", "* $x 2"), (4, 0, "N", "SCNT $y")]);
    let k = consts(&c, &[]);
    let job = "2024-03-01 08:00:00";
    let batch = DeviceBatch {
        id: 4,
        data: vec![
            row(4, job, job, "x=1;garbage;"),
            row(4, "2024-03-01 08:00:01", job, "x=2;"),
        ],
        target_jobs: targets(&[job]),
        ..DeviceBatch::default()
    };
    let out = run(&c, &k, batch);
    assert_eq!(conj(&out.data), ["x=1;garbage;", "x=2;y=4;"]);
    assert_eq!(out.data[0].recalc, -1);
    assert_eq!(out.data[1].recalc, 0);
    assert_eq!(out.errors.len(), 1);
    assert_eq!(out.errors[0].equation, "conjoined");
    // The job leaves the row that cannot be read out.
    assert_eq!(conj(&out.jobs), ["N=1;"]);
    assert_eq!(out.jobs[0].recalc, 0);
}

#[test]
fn computing_the_written_rows_again_changes_nothing() {
    let c = eqs(&[
        (1, 0, "share", "/ $x $TOTAL"),
        (2, 0, "r", "ROUNDX * RND 100 2"),
        (4, 0, "TOTAL", "SSUM $x"),
        (5, 0, "DAYTOTAL", "SSUM $total"),
    ]);
    let k = consts(&c, &[(0, "WB", "00:00")]);
    let job = "2024-03-01 08:00:00";
    let first = DeviceBatch {
        id: 5,
        data: vec![
            row(5, job, job, "x=1;"),
            row(5, "2024-03-01 08:05:00", job, "x=4;"),
        ],
        target_jobs: targets(&[job]),
        ..DeviceBatch::default()
    };
    let once = run(&c, &k, first.clone());
    let again = DeviceBatch {
        data: once.data.clone(),
        jobs: once.jobs.clone(),
        days: once.days.clone(),
        ..first
    };
    let twice = run(&c, &k, again);
    assert_eq!(conj(&once.data), conj(&twice.data));
    assert_eq!(conj(&once.jobs), conj(&twice.jobs));
    assert_eq!(conj(&once.days), conj(&twice.days));
    assert!(once.errors.is_empty() && twice.errors.is_empty());
}

#[test]
fn an_unreadable_row_is_read_by_no_other_row() {
    let c = eqs(&[
        (1, 0, "d", "IFNA - $tmp $$tmp 0"),
        (4, 0, "avg", "SNRM $tmp"),
        (4, 0, "n", "SCNT $tmp"),
        (5, 0, "dn", "SCNT $d$tmp"),
    ]);
    let k = consts(&c, &[(0, "WB", "00:00")]);
    let job = "2024-03-01 08:00:00";
    let batch = DeviceBatch {
        id: 1,
        data: vec![
            row(1, "2024-03-01 08:00:00", job, "tmp=1;"),
            row(1, "2024-03-01 08:01:00", job, "tmp=1000;garbage;"),
            row(1, "2024-03-01 08:02:00", job, "tmp=4;"),
        ],
        target_jobs: targets(&[job]),
        ..DeviceBatch::default()
    };
    let out = run(&c, &k, batch);
    // The unreadable row keeps its content and its failure.
    assert_eq!(out.data[1].conjoined, "tmp=1000;garbage;");
    assert_eq!(out.data[1].recalc, -1);
    assert!(
        out.errors.iter().all(|e| e.key == out.data[1].key()),
        "{:?}",
        out.errors
    );
    // Nothing else reads it: the next row's `$$tmp` is the row before it, the job's and
    // the day's vectors leave it out, and they compute cleanly.
    assert_eq!(out.data[2].conjoined, "tmp=4;d=3;");
    assert_eq!(out.data[2].recalc, 0);
    assert_eq!(conj(&out.jobs), ["avg=2.5;n=2;"]);
    assert_eq!(out.jobs[0].recalc, 0);
    assert_eq!(conj(&out.days), ["dn=2;"]);
    assert_eq!(out.days[0].recalc, 0);
}

#[test]
fn a_day_reads_the_jobs_it_does_not_compute_from_their_columns_as_from_their_rows() {
    use super::columns::JobColumns;
    use super::record::Columns;
    let c = eqs(&[
        (1, 0, "y", "* $x 2"),
        (4, 0, "N", "SCNT $x"),
        (5, 0, "dmax", "SMAX $d$y"),
        (5, 0, "dn", "SCNT $d$x"),
        (5, 0, "dlist", "SA $d$note"),
    ]);
    let k = consts(&c, &[(0, "WB", "00:00")]);
    let (j1, j2) = ("2024-03-01 08:00:00", "2024-03-01 12:00:00");
    let mut stored_j1 = row(1, j1, j1, "N=2;");
    stored_j1.data_time = t("2024-03-01 08:01:00");
    stored_j1.recalc = 0;
    let j1_rows = vec![
        row(1, j1, j1, "x=1;y=2;note=a;"),
        row(1, "2024-03-01 08:01:00", j1, "x=5;y=10;"),
        row(1, "2024-03-01 08:02:00", j1, "x=7;bad;"),
    ];
    let j2_rows = [
        row(1, j2, j2, "x=3;note=b;"),
        row(1, "2024-03-01 12:01:00", j2, "x=4;"),
    ];
    let batch = |day_data: Vec<JobColumns>, with_rows: bool| DeviceBatch {
        id: 1,
        data: j2_rows
            .iter()
            .chain(j1_rows.iter().filter(|_| with_rows))
            .cloned()
            .collect(),
        jobs: vec![stored_j1.clone()],
        target_jobs: targets(&[j2]),
        day_data,
        ..DeviceBatch::default()
    };
    let from_rows = run(&c, &k, batch(Vec::new(), true));
    let symbols = c.symbols();
    let slots = &c.set_for(1).day_data;
    assert_eq!(slots.len(), 3, "y, x and note");
    let columns = JobColumns::of_rows(
        1,
        t(j1),
        j1_rows.clone(),
        symbols,
        &Columns::new(symbols),
        slots,
    );
    let from_columns = run(&c, &k, batch(vec![columns], false));
    // Rows without `note` give empty items; the unreadable row is left out.
    assert_eq!(conj(&from_rows.days), ["dlist=a\\,\\,b\\,;dmax=10;dn=4;"]);
    assert_eq!(conj(&from_columns.days), conj(&from_rows.days));
    // The computed job's columns come back as written.
    assert_eq!(from_columns.day_columns.len(), 1);
    assert_eq!(from_columns.day_columns[0].start, t(j2));
}
