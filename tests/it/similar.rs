//! The similarity index and `recalcd similar` through the real binary, on both stores
//! (`similar::postgres::*`, `similar::questdb::*`).
//!
//! Every answer is compared with a brute force the test computes itself over the rows
//! it reads back from the data table (its own small `conjoined` reader, grouped into
//! jobs by `data_time`), resampled and compared by the library's pure functions.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Output;

use recalcd::index::similarity::series::resample;
use recalcd::index::similarity::{brute_force, Key, Metric, Query};
use recalcd::index::{datetime, micros, Micros, Point};

use crate::support::{unique, Harness};

on_both_stores!(
    answers_equal_a_brute_force_with_and_without_the_index,
    a_recalculated_job_updates_its_entry,
    list_extend_rebuild_drop_cleanup,
    bad_similar_input_is_a_usage_error,
);

/// The resampled length the tests declare (short jobs keep the tests fast).
pub(crate) const LENGTH: usize = 32;

pub(crate) struct Setup<'a> {
    pub(crate) h: &'a Harness,
    pub(crate) dir: PathBuf,
    pub(crate) path: PathBuf,
}

impl Setup<'_> {
    pub(crate) fn new(h: &Harness) -> Setup<'_> {
        Setup::with(h, "")
    }

    /// With `extra` keys in the `[[index.similarity]]` table.
    pub(crate) fn with<'a>(h: &'a Harness, extra: &str) -> Setup<'a> {
        let dir = std::env::temp_dir().join(unique("recalcd-similar-"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("recalcd.toml");
        std::fs::write(
            &path,
            format!(
                "[log]\nlevel = \"warn\"\n[[index.similarity]]\nchannel = \"TMP\"\nlength = {LENGTH}\ncoefficients = 4\n{extra}"
            ),
        )
        .unwrap();
        Setup { h, dir, path }
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.h.run_with(&self.path, args)
    }

    pub(crate) fn ok(&self, args: &[&str]) -> String {
        self.h.ok_with(&self.path, args)
    }

    /// Jobs of devices 1 and 2 (12 each, 2 hours apart from 2024-03-01): 20 to 40 rows
    /// a few seconds apart, `tmp` a random walk; some rows hold `tmp=hot`, job 3 is
    /// constant, job 5 holds 3 numbers only (left out of the index), job 7 of device 2
    /// repeats job 2 of device 1 scaled (a z-normalised twin).
    pub(crate) fn load(&self) {
        self.ok(&["migrate"]);
        let mut values = Vec::new();
        let mut seed: u64 = 42;
        let mut rnd = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((seed >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        };
        let mut twin: Vec<(i64, f64)> = Vec::new();
        for id in [1, 2] {
            for j in 0..12i64 {
                let start = base() + chrono::Duration::hours(2 * j + i64::from(id));
                let rows = if j == 5 { 3 } else { 20 + (j * 7 % 21) };
                let mut x = rnd() * 5.0;
                let mut series: Vec<(i64, f64)> = Vec::new();
                for k in 0..rows {
                    x += rnd();
                    let v = if j == 3 { 2.5 } else { x };
                    series.push((k * 4 + (k % 3), v));
                }
                if id == 1 && j == 2 {
                    twin = series.clone();
                }
                if id == 2 && j == 7 {
                    series = twin.iter().map(|&(t, v)| (t, v * 3.0 + 10.0)).collect();
                }
                for (k, (dt, v)) in series.iter().enumerate() {
                    let t = start + chrono::Duration::seconds(*dt);
                    let tmp = if k % 9 == 4 {
                        "tmp=hot;".to_string()
                    } else {
                        format!("tmp={v};")
                    };
                    values.push(format!(
                        "('{}', '{}', {id}, 1, '{tmp}x={k};')",
                        t.format("%Y-%m-%d %H:%M:%S"),
                        start.format("%Y-%m-%d %H:%M:%S")
                    ));
                }
            }
        }
        self.h.exec(&format!(
            "INSERT INTO {{data}} (datetime, data_time, id, recalc, conjoined) VALUES {};",
            values.join(",\n")
        ));
        self.ok(&["once"]);
    }

    /// Every job's resampled series, read by the test from the stored rows.
    pub(crate) fn jobs(&self) -> BTreeMap<Key, (Vec<f64>, u64)> {
        let rows = self.h.query(
            "SELECT id, data_time, datetime, conjoined FROM {data} ORDER BY id, data_time, datetime",
        );
        let mut points: BTreeMap<Key, Vec<Point>> = BTreeMap::new();
        for r in rows {
            let key = Key {
                id: r[0].as_deref().unwrap().parse().unwrap(),
                start: parse_time(r[1].as_deref().unwrap()),
            };
            let t = parse_time(r[2].as_deref().unwrap());
            let text = r[3].clone().unwrap_or_default();
            let last = text
                .split(';')
                .filter_map(|e| e.split_once('='))
                .rfind(|(n, _)| n.trim().eq_ignore_ascii_case("tmp"));
            if let Some((_, v)) = last {
                points.entry(key).or_default().push(Point {
                    t,
                    v: v.trim().parse::<f64>().ok().filter(|v| v.is_finite()),
                });
            }
        }
        points
            .into_iter()
            .filter_map(|(k, p)| {
                resample(&p, LENGTH)
                    .ok()
                    .map(|r| (k, (r.values, r.dropped)))
            })
            .collect()
    }

    /// The test's own answer.
    pub(crate) fn oracle(
        &self,
        q: &[f64],
        query: &Query,
        accept: impl Fn(&Key) -> bool,
    ) -> Vec<(i32, String, f64)> {
        let jobs = self.jobs();
        let out = brute_force(
            q,
            query,
            jobs.iter().map(|(k, v)| (*k, v.0.as_slice())),
            accept,
        );
        out.matches
            .iter()
            .map(|m| (m.key.id, stamp(m.key.start), m.distance))
            .collect()
    }

    /// `recalcd similar ARGS --format json`: the matches and the stats.
    pub(crate) fn similar(&self, args: &[&str]) -> (Vec<(i32, String, f64)>, serde_json::Value) {
        let mut all = vec!["similar", "--channel", "tmp", "--format", "json"];
        all.extend_from_slice(args);
        let v: serde_json::Value = serde_json::from_str(&self.ok(&all)).unwrap();
        let matches = v["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["id"].as_i64().unwrap() as i32,
                    m["job"].as_str().unwrap().to_string(),
                    m["distance"].as_f64().unwrap(),
                )
            })
            .collect();
        (matches, v["stats"].clone())
    }
}

pub(crate) fn base() -> chrono::NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(2024, 3, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
}

fn parse_time(s: &str) -> Micros {
    let s = s.trim_end_matches('Z').replace('T', " ");
    let t = chrono::NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S%.f")
        .unwrap_or_else(|e| panic!("{s}: {e}"));
    micros(t)
}

pub(crate) fn stamp(t: Micros) -> String {
    datetime(t).format("%Y-%m-%dT%H:%M:%S").to_string()
}

pub(crate) fn same(got: &[(i32, String, f64)], want: &[(i32, String, f64)], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.0, &g.1), (w.0, &w.1), "{what}: {got:?} vs {want:?}");
        assert!(
            (g.2 - w.2).abs() <= 1e-9 * w.2.max(1.0),
            "{what}: {got:?} vs {want:?}"
        );
    }
}

pub(crate) fn job_arg(id: i32, j: i64) -> (Key, String) {
    let start = base() + chrono::Duration::hours(2 * j + i64::from(id));
    (
        Key {
            id,
            start: micros(start),
        },
        format!("{id}@{}", start.format("%Y-%m-%dT%H:%M:%S")),
    )
}

/// One query compared: the arguments, the query series, the query and the filter.
type Case = (Vec<String>, Vec<f64>, Query, Box<dyn Fn(&Key) -> bool>);

/// The queries compared.
fn cases(s: &Setup) -> Vec<Case> {
    let jobs = s.jobs();
    let (k12, a12) = job_arg(1, 2);
    let q12 = jobs[&k12].0.clone();
    let (k04, a04) = job_arg(2, 4);
    let q04 = jobs[&k04].0.clone();
    let z = |k: Option<usize>, within: Option<f64>| Query {
        metric: Metric::ZNorm,
        k,
        within,
    };
    let e = |k: Option<usize>, within: Option<f64>| Query {
        metric: Metric::Euclid,
        k,
        within,
    };
    let mid = micros(base() + chrono::Duration::hours(6));
    let end = micros(base() + chrono::Duration::hours(20));
    let series_path = s.dir.join("pattern.csv");
    let pattern: Vec<f64> = (0..50).map(|i| (f64::from(i) / 5.0).sin() * 3.0).collect();
    let text: Vec<String> = pattern.iter().map(f64::to_string).collect();
    std::fs::write(&series_path, format!("value\n{}\n", text.join("\n"))).unwrap();
    let pq = recalcd::index::similarity::series::resample_even(&pattern, LENGTH).unwrap();
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    vec![
        (
            v(&["--job", &a12]),
            q12.clone(),
            z(Some(10), None),
            Box::new(move |k: &Key| *k != k12),
        ),
        (
            v(&["--job", &a12, "--k", "3"]),
            q12.clone(),
            z(Some(3), None),
            Box::new(move |k: &Key| *k != k12),
        ),
        (
            v(&["--job", &a12, "--within", "4.5"]),
            q12.clone(),
            z(None, Some(4.5)),
            Box::new(move |k: &Key| *k != k12),
        ),
        (
            v(&["--job", &a12, "--within", "6", "--k", "2"]),
            q12.clone(),
            z(Some(2), Some(6.0)),
            Box::new(move |k: &Key| *k != k12),
        ),
        (
            v(&["--job", &a04, "--metric", "euclid", "--k", "5"]),
            q04.clone(),
            e(Some(5), None),
            Box::new(move |k: &Key| *k != k04),
        ),
        (
            v(&[
                "--job",
                &a04,
                "--id",
                "1",
                "--from",
                "2024-03-01T06:00:00",
                "--to",
                "2024-03-01T20:00:00",
            ]),
            q04,
            z(Some(10), None),
            Box::new(move |k: &Key| *k != k04 && k.id == 1 && k.start >= mid && k.start < end),
        ),
        (
            v(&["--series", series_path.to_str().unwrap(), "--k", "4"]),
            pq,
            z(Some(4), None),
            Box::new(|_: &Key| true),
        ),
    ]
}

fn answers_equal_a_brute_force_with_and_without_the_index(h: &Harness) {
    let s = Setup::new(h);
    s.load();
    let cases = cases(&s);
    for (args, q, query, accept) in &cases {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let (got, stats) = s.similar(&a);
        assert!(
            stats["method"]
                .as_str()
                .unwrap()
                .starts_with("scan (no similarity index"),
            "{stats}"
        );
        same(&got, &s.oracle(q, query, accept), &format!("scan {args:?}"));
    }
    let built = s.ok(&["index", "build", "--kind", "similarity", "--channel", "tmp"]);
    assert!(
        built.contains("22 job(s) indexed, 2 with fewer than 4 numbers left out"),
        "{built}"
    );
    for (args, q, query, accept) in &cases {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let (got, stats) = s.similar(&a);
        assert_eq!(stats["method"], "index", "{stats}");
        assert_eq!(stats["total"], 22, "{stats}");
        assert!(stats["refined"].as_u64().unwrap() <= 22, "{stats}");
        same(
            &got,
            &s.oracle(q, query, accept),
            &format!("index {args:?}"),
        );
    }
    // The twin (scaled copy) of job 2 of device 1 is at z-normalised distance ~0.
    let (got, stats) = s.similar(&["--job", &job_arg(1, 2).1, "--k", "1"]);
    assert_eq!(
        (got[0].0, got[0].1.as_str()),
        (2, stamp(job_arg(2, 7).0.start).as_str())
    );
    assert!(got[0].2 < 1e-9, "{got:?}");
    // The query's own `hot` values are counted as dropped.
    assert!(stats["dropped"].as_u64().unwrap() >= 1, "{stats}");
    // A build without a range covers every job, whatever the range asked for.
    let (_, stats) = s.similar(&["--job", &job_arg(1, 2).1, "--from", "2023-01-01"]);
    assert_eq!(stats["method"], "index", "{stats}");
}

fn a_recalculated_job_updates_its_entry(h: &Harness) {
    let s = Setup::new(h);
    s.load();
    s.ok(&["index", "build", "--kind", "similarity", "--channel", "tmp"]);
    // Job 4 of device 1 becomes a copy of job 2 of device 1 shifted by a constant.
    let jobs = s.jobs();
    let (k14, _) = job_arg(1, 4);
    let rows = h.query(&format!(
        "SELECT datetime, conjoined FROM {{data}} WHERE id = 1 AND data_time = '{}' ORDER BY datetime",
        datetime(k14.start).format("%Y-%m-%d %H:%M:%S")
    ));
    let (k12, a12) = job_arg(1, 2);
    let target = &jobs[&k12].0;
    let mut values = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let t = r[0].as_deref().unwrap().replace('T', " ");
        let v = target[i * (LENGTH - 1) / (rows.len() - 1).max(1)] + 100.0;
        values.push((t, format!("tmp={v};x={i};")));
    }
    for (t, c) in &values {
        if h.is_postgres() {
            h.exec(&format!("UPDATE {{data}} SET conjoined = '{c}', recalc = 1 WHERE id = 1 AND datetime = '{t}'"));
        } else {
            h.exec(&format!(
                "INSERT INTO {{data}} (datetime, data_time, id, recalc, conjoined) VALUES ('{t}', '{}', 1, 1, '{c}')",
                datetime(k14.start).format("%Y-%m-%d %H:%M:%S")
            ));
        }
    }
    s.ok(&["once"]);
    // The entry now is the one of the new rows, and the answers follow it.
    let jobs = s.jobs();
    let q = jobs[&k12].0.clone();
    let query = Query {
        metric: Metric::ZNorm,
        k: Some(3),
        within: None,
    };
    let (got, stats) = s.similar(&["--job", &a12, "--k", "3"]);
    assert_eq!(stats["method"], "index", "{stats}");
    same(
        &got,
        &s.oracle(&q, &query, |k| *k != k12),
        "after the recalculation",
    );
    assert!(
        got.iter().any(|m| m.0 == 1 && m.1 == stamp(k14.start)),
        "{got:?}"
    );
    // Nothing is left to catch up: the entry was rewritten by the write-back's marks.
    let list = s.ok(&["index", "list"]);
    let line = list.lines().find(|l| l.starts_with("similarity")).unwrap();
    assert!(line.contains("22 jobs"), "{list}");
    let stale: Vec<&str> = line
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert!(stale.contains(&"0"), "{list}");
}

fn list_extend_rebuild_drop_cleanup(h: &Harness) {
    let s = Setup::new(h);
    s.load();
    // A feature index beside it: extend, rebuild and cleanup serve both kinds.
    let feature = "[[index.feature]]\nchannel = \"tmp\"\nlevels = [\"1d\", \"1h\"]\n";
    let text = std::fs::read_to_string(&s.path).unwrap();
    std::fs::write(&s.path, format!("{text}{feature}")).unwrap();
    s.ok(&[
        "index",
        "build",
        "--channel",
        "tmp",
        "--from",
        "2024-03-01",
        "--to",
        "2024-03-01",
    ]);
    let o = s.run(&[
        "index",
        "extend",
        "--channel",
        "tmp",
        "--from",
        "2024-03-03",
        "--to",
        "2024-03-04",
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = s.ok(&[
        "index",
        "extend",
        "--channel",
        "tmp",
        "--from",
        "2024-03-01",
        "--to",
        "2024-03-02",
    ]);
    assert!(out.contains("built the feature index"), "{out}");
    let list = s.ok(&["index", "list"]);
    assert!(
        list.contains("2024-03-01 00:00 .. 2024-03-03 00:00"),
        "{list}"
    );
    let out = s.ok(&["index", "rebuild", "--channel", "tmp"]);
    assert!(out.contains("built the feature index"), "{out}");
    let list = s.ok(&["index", "list"]);
    assert!(
        list.contains("similarity") && list.contains("declared, not built"),
        "{list}"
    );
    let out = s.ok(&[
        "index",
        "build",
        "--kind",
        "similarity",
        "--channel",
        "tmp",
        "--from",
        "2024-03-01",
        "--to",
        "2024-03-01",
    ]);
    assert!(
        out.contains("2024-03-01 00:00 .. 2024-03-02 00:00"),
        "{out}"
    );
    // A range outside the indexed one scans and says so, with the same answer.
    let (got, stats) = s.similar(&["--job", &job_arg(1, 2).1, "--from", "2024-02-01"]);
    assert!(
        stats["method"]
            .as_str()
            .unwrap()
            .contains("not inside the indexed range"),
        "{stats}"
    );
    let (k12, _) = job_arg(1, 2);
    let q = s.jobs()[&k12].0.clone();
    let query = Query {
        metric: Metric::ZNorm,
        k: Some(10),
        within: None,
    };
    same(
        &got,
        &s.oracle(&q, &query, |k| *k != k12),
        "a scan outside the range",
    );
    // Not overlapping: refused.
    let o = s.run(&[
        "index",
        "extend",
        "--kind",
        "similarity",
        "--channel",
        "tmp",
        "--from",
        "2024-03-05",
        "--to",
        "2024-03-06",
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("must overlap"));
    let out = s.ok(&[
        "index",
        "extend",
        "--kind",
        "similarity",
        "--channel",
        "tmp",
        "--from",
        "2024-02-28",
        "--to",
        "2024-03-02",
    ]);
    assert!(
        out.contains("2024-02-28 00:00 .. 2024-03-03 00:00"),
        "{out}"
    );
    let list = s.ok(&["index", "list"]);
    assert!(
        list.contains("length=32 coefficients=4") && list.contains("22 jobs"),
        "{list}"
    );
    // Rebuilt with new parameters from the configuration.
    std::fs::write(
        &s.path,
        format!("[log]\nlevel = \"warn\"\n[[index.similarity]]\nchannel = \"tmp\"\nlength = 16\ncoefficients = 2\n{feature}"),
    )
    .unwrap();
    let list = s.ok(&["index", "list"]);
    assert!(list.contains("built with other parameters"), "{list}");
    let out = s.ok(&[
        "index",
        "rebuild",
        "--kind",
        "similarity",
        "--channel",
        "tmp",
    ]);
    assert!(out.contains("length=16 coefficients=2"), "{out}");
    let (_, stats) = s.similar(&["--job", &job_arg(1, 2).1]);
    assert_eq!(stats["method"], "index", "{stats}");
    let out = s.ok(&["index", "drop", "--kind", "similarity", "--channel", "tmp"]);
    assert!(out.contains("dropped"), "{out}");
    let (_, stats) = s.similar(&["--job", &job_arg(1, 2).1]);
    assert!(
        stats["method"].as_str().unwrap().starts_with("scan"),
        "{stats}"
    );
    s.ok(&["index", "build", "--kind", "similarity", "--channel", "tmp"]);
    let out = s.ok(&["index", "cleanup"]);
    assert!(out.contains("2 index(es) dropped"), "{out}");
    let list = s.ok(&["index", "list"]);
    assert!(list.contains("declared, not built"), "{list}");
}

fn bad_similar_input_is_a_usage_error(h: &Harness) {
    let s = Setup::new(h);
    s.load();
    let bin = s.dir.join("binary.csv");
    std::fs::write(&bin, [0xff, 0xfe, 0x00, 0x01]).unwrap();
    let short = s.dir.join("short.csv");
    std::fs::write(&short, "1\n2\n3\n").unwrap();
    let words = s.dir.join("words.csv");
    std::fs::write(&words, "a\n1\nb\n").unwrap();
    let a12 = job_arg(1, 2).1;
    let a15 = job_arg(1, 5).1;
    for (args, says) in [
        (vec!["--job", a12.as_str(), "--k", "0"], "--k 0"),
        (vec!["--job", "1@2030-01-01T00:00:00"], "no such job"),
        (vec!["--job", "1-2030"], "ID@START"),
        (vec!["--series", bin.to_str().unwrap()], "not a CSV"),
        (
            vec!["--series", words.to_str().unwrap()],
            "line 3: `b` is not a number",
        ),
        (vec!["--series", short.to_str().unwrap()], "at least 4"),
        (vec!["--job", a15.as_str()], "at least 4"),
    ] {
        let mut all = vec!["similar", "--channel", "tmp"];
        all.extend_from_slice(&args);
        let o = s.run(&all);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        // One line (clap adds its usual pointer to --help).
        let lines = err
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with("For more information"))
            .count();
        assert_eq!(lines, 1, "{args:?}: {err}");
    }
}
