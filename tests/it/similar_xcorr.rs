//! `recalcd similar --metric xcorr` through the real binary, on both stores
//! (`similar_xcorr::postgres::*`, `similar_xcorr::questdb::*`): the vantage-point tree's
//! answers and the scan's equal a brute-force xcorr the test computes itself over the
//! rows it reads back (the jobs of [`Setup::load`] and two of device 3, one a circular
//! shift of the other), and the tree follows recalculations.

use recalcd::index::similarity::vptree::brute_force;
use recalcd::index::similarity::xcorr::{Prepared, Xcorr};
use recalcd::index::similarity::Key;
use recalcd::index::{datetime, micros};

use crate::similar::{base, job_arg, same, stamp, Setup, LENGTH};
use crate::support::Harness;

on_both_stores!(
    xcorr_answers_equal_a_brute_force_with_and_without_the_tree,
    the_tree_follows_recalculations,
    gamma_out_of_range_is_refused,
);

/// The jobs of device 3: `LENGTH` rows 4 s apart (taken as they are), the second a
/// circular shift by 5 of the first, scaled and offset.
fn load_shifted(s: &Setup) -> [(Key, String); 2] {
    let walk: Vec<f64> = (0..LENGTH)
        .scan(0.0, |x, i| {
            *x += ((i * 37 % 11) as f64 - 5.0) / 3.0;
            Some(*x)
        })
        .collect();
    let shifted: Vec<f64> = (0..LENGTH)
        .map(|i| walk[(i + 5) % LENGTH] * 2.0 + 1.0)
        .collect();
    let mut out = Vec::new();
    let mut values = Vec::new();
    for (h, series) in [(40, &walk), (41, &shifted)] {
        let start = base() + chrono::Duration::hours(h);
        for (k, v) in series.iter().enumerate() {
            let t = start + chrono::Duration::seconds(4 * k as i64);
            values.push(format!(
                "('{}', '{}', 3, 1, 'tmp={v};')",
                t.format("%Y-%m-%d %H:%M:%S"),
                start.format("%Y-%m-%d %H:%M:%S")
            ));
        }
        out.push((
            Key {
                id: 3,
                start: micros(start),
            },
            format!("3@{}", start.format("%Y-%m-%dT%H:%M:%S")),
        ));
    }
    s.h.exec(&format!(
        "INSERT INTO {{data}} (datetime, data_time, id, recalc, conjoined) VALUES {};",
        values.join(",\n")
    ));
    s.ok(&["once"]);
    [out[0].clone(), out[1].clone()]
}

/// The test's own xcorr answer (γ = 5, the default).
fn oracle(
    s: &Setup,
    q: &[f64],
    k: Option<usize>,
    within: Option<f64>,
    accept: impl Fn(&Key) -> bool,
) -> Vec<(i32, String, f64)> {
    let mut xc = Xcorr::new(LENGTH, 5.0);
    let query = xc.prepare(q);
    let items: Vec<(Key, Prepared)> = s
        .jobs()
        .iter()
        .filter(|(k, _)| accept(k))
        .map(|(k, v)| (*k, xc.prepare(&v.0)))
        .collect();
    brute_force(
        &mut xc,
        &query,
        k,
        within,
        items.iter().map(|(k, p)| (*k, p)),
    )
    .iter()
    .map(|m| (m.key.id, stamp(m.key.start), m.distance))
    .collect()
}

/// Every case compared: arguments, query job, k, within, filter.
type Case = (
    Vec<String>,
    Key,
    Option<usize>,
    Option<f64>,
    Box<dyn Fn(&Key) -> bool>,
);

fn cases(shifted: &[(Key, String); 2]) -> Vec<Case> {
    let (k12, a12) = job_arg(1, 2);
    let (k3, a3) = shifted[0].clone();
    let mid = micros(base() + chrono::Duration::hours(6));
    let end = micros(base() + chrono::Duration::hours(20));
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    vec![
        (
            v(&["--job", &a3, "--k", "5"]),
            k3,
            Some(5),
            None,
            Box::new(move |k: &Key| *k != k3),
        ),
        (
            v(&["--job", &a12]),
            k12,
            Some(10),
            None,
            Box::new(move |k: &Key| *k != k12),
        ),
        (
            v(&["--job", &a12, "--within", "0.9"]),
            k12,
            None,
            Some(0.9),
            Box::new(move |k: &Key| *k != k12),
        ),
        (
            v(&[
                "--job",
                &a12,
                "--k",
                "3",
                "--id",
                "2",
                "--from",
                "2024-03-01T06:00:00",
                "--to",
                "2024-03-01T20:00:00",
            ]),
            k12,
            Some(3),
            None,
            Box::new(move |k: &Key| *k != k12 && k.id == 2 && k.start >= mid && k.start < end),
        ),
    ]
}

fn run_cases(s: &Setup, shifted: &[(Key, String); 2], indexed: bool) {
    let jobs = s.jobs();
    for (args, q, k, within, accept) in cases(shifted) {
        let mut a: Vec<&str> = vec!["--metric", "xcorr"];
        a.extend(args.iter().map(String::as_str));
        let (got, stats) = s.similar(&a);
        let method = stats["method"].as_str().unwrap();
        if indexed {
            assert_eq!(method, "index", "{stats}");
            let d = stats["distances"].as_u64().unwrap();
            assert!(d >= stats["refined"].as_u64().unwrap(), "{stats}");
        } else {
            assert!(method.starts_with("scan (no similarity index"), "{stats}");
            assert!(method.contains("recalcd index build"), "{stats}");
        }
        same(
            &got,
            &oracle(s, &jobs[&q].0, k, within, accept),
            &format!("xcorr {args:?} indexed {indexed}"),
        );
    }
    // The circular shift is found at distance ~0.
    let (got, _) = s.similar(&["--metric", "xcorr", "--job", &shifted[0].1, "--k", "1"]);
    assert_eq!(
        (got[0].0, got[0].1.as_str()),
        (3, stamp(shifted[1].0.start).as_str()),
        "{got:?}"
    );
    assert!(got[0].2 < 1e-6, "{got:?}");
}

fn xcorr_answers_equal_a_brute_force_with_and_without_the_tree(h: &Harness) {
    let s = Setup::new(h);
    s.load();
    let shifted = load_shifted(&s);
    run_cases(&s, &shifted, false);
    let built = s.ok(&["index", "build", "--kind", "similarity", "--channel", "tmp"]);
    assert!(
        built.contains("built its vantage-point tree (gamma 5): 24 job(s)"),
        "{built}"
    );
    run_cases(&s, &shifted, true);
    // The table output says how many distances were computed.
    let o = s.run(&[
        "similar",
        "--channel",
        "tmp",
        "--metric",
        "xcorr",
        "--job",
        &shifted[0].1,
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("distance(s) computed"), "{err}");
}

/// Rewrites the `tmp` values of job `key` (each row's `values(i, rows)`), flagged for
/// recalculation, and runs `once`.
fn rewrite(s: &Setup, key: Key, value: impl Fn(usize, usize) -> String) {
    let h = s.h;
    let job = datetime(key.start).format("%Y-%m-%d %H:%M:%S").to_string();
    let rows = h.query(&format!(
        "SELECT datetime FROM {{data}} WHERE id = {} AND data_time = '{job}' ORDER BY datetime",
        key.id
    ));
    for (i, r) in rows.iter().enumerate() {
        let t = r[0].as_deref().unwrap().replace('T', " ");
        let t = t.trim_end_matches('Z');
        let c = format!("tmp={};x={i};", value(i, rows.len()));
        if h.is_postgres() {
            h.exec(&format!(
                "UPDATE {{data}} SET conjoined = '{c}', recalc = 1 WHERE id = {} AND datetime = '{t}'",
                key.id
            ));
        } else {
            h.exec(&format!(
                "INSERT INTO {{data}} (datetime, data_time, id, recalc, conjoined) VALUES ('{t}', '{job}', {}, 1, '{c}')",
                key.id
            ));
        }
    }
    s.ok(&["once"]);
}

fn the_tree_follows_recalculations(h: &Harness) {
    let s = Setup::new(h);
    s.load();
    let shifted = load_shifted(&s);
    s.ok(&["index", "build", "--kind", "similarity", "--channel", "tmp"]);
    // Job 4 of device 1 becomes a smooth wave, job 6 of device 2 loses its numbers.
    let (k14, _) = job_arg(1, 4);
    rewrite(&s, k14, |i, n| {
        format!(
            "{}",
            (i as f64 * std::f64::consts::TAU / n as f64).sin() * 4.0
        )
    });
    let (k26, _) = job_arg(2, 6);
    rewrite(&s, k26, |_, _| "hot".into());
    let jobs = s.jobs();
    assert!(!jobs.contains_key(&k26));
    for (q, a) in [(k14, job_arg(1, 4).1), (shifted[0].0, shifted[0].1.clone())] {
        let (got, stats) = s.similar(&["--metric", "xcorr", "--job", &a, "--k", "23"]);
        assert_eq!(stats["method"], "index", "{stats}");
        assert_eq!(stats["total"], 23, "{stats}");
        same(
            &got,
            &oracle(&s, &jobs[&q].0, Some(23), None, |k| *k != q),
            "after the recalculations",
        );
        assert!(got
            .iter()
            .all(|m| (m.0, m.1.as_str()) != (2, stamp(k26.start).as_str())));
    }
    // Extended over the same range, the tree keeps the same answers.
    s.ok(&[
        "index",
        "extend",
        "--kind",
        "similarity",
        "--channel",
        "tmp",
        "--from",
        "2024-02-28",
        "--to",
        "2024-03-03",
    ]);
    let (got, stats) = s.similar(&["--metric", "xcorr", "--job", &shifted[0].1, "--k", "23"]);
    assert_eq!(stats["method"], "index", "{stats}");
    same(
        &got,
        &oracle(&s, &jobs[&shifted[0].0].0, Some(23), None, |k| {
            *k != shifted[0].0
        }),
        "after the extension",
    );
    // Dropped with the index: the tree's tables go too.
    s.ok(&["index", "drop", "--kind", "similarity", "--channel", "tmp"]);
    if h.is_postgres() {
        let left = h.query("SELECT count(*) FROM pg_tables WHERE tablename LIKE '%similarity%vp%'");
        assert_eq!(left[0][0].as_deref(), Some("0"));
    }
}

fn gamma_out_of_range_is_refused(h: &Harness) {
    let s = Setup::new(h);
    for gamma in ["0", "-1.5"] {
        std::fs::write(
            &s.path,
            format!(
                "[log]\nlevel = \"warn\"\n[[index.similarity]]\nchannel = \"tmp\"\ngamma = {gamma}\n"
            ),
        )
        .unwrap();
        let o = s.run(&[
            "similar",
            "--channel",
            "tmp",
            "--metric",
            "xcorr",
            "--job",
            "1@2024-03-01T03:00:00",
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{err}");
        assert!(err.contains("index.similarity.gamma"), "{err}");
    }
}
