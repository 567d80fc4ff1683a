//! `recalcd search` through the real binary, on both stores (`search::postgres::*`,
//! `search::questdb::*`): every condition kind and every method against a brute-force
//! scan of the stored rows (read by the test itself), over data with gaps, values that
//! are not numbers, absent values, ranges cutting buckets and rows still flagged whose
//! buckets are stale; the output formats; and bad input.

use std::path::PathBuf;
use std::process::Output;

use recalcd::index::condition::Condition;
use recalcd::index::scan::brute_force;
use recalcd::index::{micros, Micros, Point};

use crate::support::{unique, Harness};

on_both_stores!(
    every_method_answers_as_a_brute_force_scan,
    random_series_and_conditions_answer_as_a_brute_force_scan,
    output_formats_and_limit,
    bad_search_input_is_a_usage_error,
);

/// The test's config file: `tmp` indexed with 1d/1h/10m/1m.
struct Setup<'a> {
    h: &'a Harness,
    path: PathBuf,
}

impl Setup<'_> {
    fn new(h: &Harness) -> Setup<'_> {
        let dir = std::env::temp_dir().join(unique("recalcd-search-"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("recalcd.toml");
        std::fs::write(
            &path,
            "[log]\nlevel = \"warn\"\n[[index.feature]]\nchannel = \"tmp\"\n\
             levels = [\"1d\", \"1h\", \"10m\", \"1m\"]\n",
        )
        .unwrap();
        Setup { h, path }
    }

    fn run(&self, args: &[&str]) -> Output {
        self.h.run_with(&self.path, args)
    }

    fn ok(&self, args: &[&str]) -> String {
        self.h.ok_with(&self.path, args)
    }

    /// Devices 5 and 7 over three days from 2024-03-01 in the default [`Shape`].
    fn load(&self) {
        self.load_shaped(&Shape::DEFAULT, 0x9e37_79b9_7f4a_7c15, start());
    }

    /// Devices 5 and 7 over `shape.days` days from `origin`, a row every
    /// `shape.step` (± random) with random gaps: `tmp` a wandering number with bursts,
    /// sometimes `hot` or absent; `x` always. Computed by `once`, then indexed.
    fn load_shaped(&self, shape: &Shape, seed: u64, origin: chrono::NaiveDateTime) {
        self.ok(&["migrate"]);
        let mut values = Vec::new();
        let mut rng = Lcg(seed);
        for id in [5, 7] {
            let mut t = origin + chrono::Duration::seconds(i64::from(id));
            let end = origin + chrono::Duration::days(shape.days);
            let mut level = 20.0f64;
            while t < end {
                level += (rng.next() % 21 - 10) as f64 / 10.0;
                let burst = if rng.next() % 97 == 0 { 25.0 } else { 0.0 };
                let tmp = match rng.next() % shape.odd_in {
                    0 => "tmp=hot;".to_string(),
                    1 => String::new(),
                    _ => format!("tmp={:.1};", level + burst),
                };
                let at = t.format("%Y-%m-%d %H:%M:%S%.3f");
                values.push(format!("('{at}', '{at}', {id}, 1, 'x=1;{tmp}')"));
                let jitter = rng.next() % (shape.step_ms / 2 + 1);
                t += chrono::Duration::milliseconds(shape.step_ms / 2 + jitter * 2);
                if rng.next() % shape.gap_in == 0 {
                    t += chrono::Duration::minutes(5 + rng.next() % 180);
                }
            }
        }
        for chunk in values.chunks(2000) {
            self.h.exec(&format!(
                "INSERT INTO {{data}} (datetime, data_time, id, recalc, conjoined) VALUES {};",
                chunk.join(",\n")
            ));
        }
        self.ok(&["once"]);
        self.ok(&["index", "build", "--channel", "tmp"]);
    }

    /// The points of `tmp` of device `id` in `[from, to)`, read by the test from the
    /// stored rows with its own reader.
    fn points(&self, id: i32, from: Micros, to: Micros) -> Vec<Point> {
        let rows = self.h.query(&format!(
            "SELECT datetime, conjoined FROM {{data}} WHERE id = {id} ORDER BY datetime"
        ));
        rows.into_iter()
            .filter_map(|r| {
                let t = parse_time(r[0].as_deref().unwrap());
                let text = r[1].clone().unwrap_or_default();
                let (_, v) = text
                    .split(';')
                    .filter_map(|e| e.split_once('='))
                    .rfind(|(n, _)| n.trim().eq_ignore_ascii_case("tmp"))?;
                let v = v.trim().parse::<f64>().ok().filter(|v| v.is_finite());
                (from <= t && t < to).then_some(Point { t, v })
            })
            .collect()
    }

    /// `recalcd search … --format json`: the matches as (id, from, to) and the stats.
    fn search(
        &self,
        cond: &str,
        method: &str,
        range: (&str, &str),
        extra: &[&str],
    ) -> (Vec<(i32, Micros, Micros)>, serde_json::Value) {
        let mut args = vec![
            "search",
            "--channel",
            "tmp",
            "--from",
            range.0,
            "--to",
            range.1,
            "--where",
            cond,
            "--method",
            method,
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let out: serde_json::Value = serde_json::from_str(&self.ok(&args)).expect("JSON");
        let matches = out["matches"]
            .as_array()
            .expect("matches")
            .iter()
            .map(|m| {
                (
                    m["id"].as_i64().unwrap() as i32,
                    parse_time(m["from"].as_str().unwrap()),
                    parse_time(m["to"].as_str().unwrap()),
                )
            })
            .collect();
        (matches, out["stats"].clone())
    }
}

/// How a data set looks.
struct Shape {
    /// Days of rows.
    days: i64,
    /// Mean time between rows, in milliseconds.
    step_ms: i64,
    /// One row in this many is `hot` or has no `tmp` (each half of the time).
    odd_in: i64,
    /// One row in this many is followed by a gap of 5 minutes to 3 hours.
    gap_in: i64,
}

impl Shape {
    const DEFAULT: Shape = Shape {
        days: 3,
        step_ms: 45_000,
        odd_in: 40,
        gap_in: 1500,
    };
}

/// A small deterministic generator (the test's data are the same on every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> i64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as i64
    }
}

fn start() -> chrono::NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(2024, 3, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
}

/// `2024-03-01 00:04:11` (PostgreSQL), `2024-03-01T00:04:11.000000Z` (QuestDB) or
/// `2024-03-01T00:04:11` (recalcd's output).
fn parse_time(s: &str) -> Micros {
    let s = s.trim_end_matches('Z').replace('T', " ");
    let t = chrono::NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S%.f")
        .unwrap_or_else(|e| panic!("{s}: {e}"));
    micros(t)
}

/// The conditions: every kind, selective and not, windows shorter and longer than
/// buckets, RUNs with and without a maximal gap.
const CONDITIONS: [(&str, Option<&str>); 9] = [
    ("AVG(5m) > 30", None),
    ("AVG(2h) < 18", None),
    ("SUM(10m) >= 600", None),
    ("MIN(2m) >= 24", None),
    ("MAX(90s) < 12", None),
    ("MAX(1m) > 40", None),
    ("RUN(>= 25, 5m)", None),
    ("RUN(< 15, 3m)", Some("90s")),
    ("AVG(30s) > 0", None),
];

fn every_method_answers_as_a_brute_force_scan(h: &Harness) {
    let s = Setup::new(h);
    s.load();
    // Rows still flagged, with values the index never saw: they must be read raw.
    h.exec(
        "UPDATE {data} SET conjoined = 'x=1;tmp=99.5;', recalc = 1 \
         WHERE id = 5 AND datetime >= '2024-03-02 10:00:00' AND datetime < '2024-03-02 10:07:00'",
    );
    let ranges = [
        ("2024-03-01", "2024-03-03"),
        ("2024-03-01T05:17:23", "2024-03-02T13:02:11.500000"),
    ];
    let mut seen_matches = 0;
    for (from, to) in ranges {
        let a = micros(super_time(from, false));
        let b = micros(super_time(to, true));
        let points: Vec<(i32, Vec<Point>)> = [5, 7].map(|id| (id, s.points(id, a, b))).into();
        for (cond, gap) in CONDITIONS {
            let parsed = Condition::parse(cond)
                .unwrap()
                .with_max_gap(gap.map(|g| recalcd::duration::parse_micros(g).unwrap() as i64))
                .unwrap();
            let mut want = Vec::new();
            let mut in_range = 0;
            for (id, points) in &points {
                in_range += points.len() as u64;
                want.extend(
                    brute_force(&parsed, points)
                        .into_iter()
                        .map(|m| (*id, m.from, m.to)),
                );
            }
            seen_matches += want.len();
            let extra: Vec<&str> = gap.map(|g| vec!["--max-gap", g]).unwrap_or_default();
            for method in ["auto", "filtering", "fixed", "scan"] {
                let (got, stats) = s.search(cond, method, (from, to), &extra);
                assert_eq!(got, want, "{cond} by {method} over {from} .. {to}");
                assert_eq!(stats["rows_in_range"], in_range, "{cond} by {method}");
                assert_eq!(stats["matches"], want.len(), "{cond} by {method}");
                if method != "auto" {
                    assert_eq!(stats["method"], method, "{cond}");
                }
            }
        }
    }
    assert!(
        seen_matches > 20,
        "the conditions find something ({seen_matches})"
    );
    // A selective condition reads a fraction of the rows through the index.
    let (_, stats) = s.search("MAX(1m) > 40", "filtering", ranges[0], &[]);
    let (read, all) = (
        stats["rows_read"].as_u64().unwrap(),
        stats["rows_in_range"].as_u64().unwrap(),
    );
    assert!(read * 4 < all, "read {read} of {all}");
    assert!(stats["buckets_read"]["1d"].as_u64().unwrap() > 0, "{stats}");
}

/// Random data sets (dense, sparse, many values that are not numbers, many gaps) and
/// random conditions of every kind over random ranges: every method against the
/// brute-force scan. `RECALCD_SEARCH_CASES` sets the number of cases (default 2).
fn random_series_and_conditions_answer_as_a_brute_force_scan(h: &Harness) {
    let cases: u64 = std::env::var("RECALCD_SEARCH_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let s = Setup::new(h);
    for case in 0..cases {
        let mut rng = Lcg(0x5eed ^ (case * 7919));
        let step_ms = [2_000, 5_000, 30_000, 120_000][(rng.next() % 4) as usize];
        let shape = Shape {
            // At most about 45,000 rows per device: the suite stays quick.
            days: if step_ms < 30_000 {
                1
            } else {
                1 + rng.next() % 2
            },
            step_ms,
            odd_in: 3 + rng.next() % 60,
            gap_in: 20 + rng.next() % 2000,
        };
        // Each case a week of its own (QuestDB has no DELETE to empty the tables).
        let origin = start() + chrono::Duration::days(7 * case as i64);
        s.load_shaped(&shape, rng.next() as u64, origin);
        let day = chrono::Duration::days(shape.days);
        for _ in 0..3 {
            let a = origin + chrono::Duration::seconds(rng.next() % 40_000);
            let b = origin + day - chrono::Duration::milliseconds(rng.next() % 30_000_000);
            let (from, to) = (
                a.format("%Y-%m-%dT%H:%M:%S").to_string(),
                b.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
            );
            let window = [500, 20_000, 90_000, 600_000, 3_600_000][(rng.next() % 5) as usize];
            let w = format!("{window}ms");
            let x = 10 + rng.next() % 25;
            let op = [">", ">=", "<", "<="][(rng.next() % 4) as usize];
            let (cond, gap) = match rng.next() % 5 {
                0 => (format!("AVG({w}) {op} {x}"), None),
                1 => (format!("MIN({w}) {op} {x}"), None),
                2 => (format!("MAX({w}) {op} {x}"), None),
                3 => (format!("SUM({w}) {op} {}", x * 20), None),
                _ => (
                    format!("RUN({op} {x}, {w})"),
                    (rng.next() % 2 == 0).then(|| format!("{}s", 1 + rng.next() % 300)),
                ),
            };
            let parsed = Condition::parse(&cond)
                .unwrap()
                .with_max_gap(
                    gap.as_deref()
                        .map(|g| recalcd::duration::parse_micros(g).unwrap() as i64),
                )
                .unwrap();
            let mut want = Vec::new();
            for id in [5, 7] {
                let points = s.points(id, micros(a), micros(b));
                want.extend(
                    brute_force(&parsed, &points)
                        .into_iter()
                        .map(|m| (id, m.from, m.to)),
                );
            }
            let extra: Vec<&str> = gap
                .as_deref()
                .map(|g| vec!["--max-gap", g])
                .unwrap_or_default();
            for method in ["auto", "filtering", "fixed", "scan"] {
                let (got, _) = s.search(&cond, method, (&from, &to), &extra);
                assert_eq!(
                    got, want,
                    "case {case}: {cond} {extra:?} by {method} over {from} .. {to}"
                );
            }
        }
    }
}

/// A range end as the binary reads it: a date alone is midnight (`--from`) or the next
/// midnight (`--to`).
fn super_time(s: &str, end: bool) -> chrono::NaiveDateTime {
    match chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        Ok(d) => (if end { d.succ_opt().unwrap() } else { d })
            .and_hms_opt(0, 0, 0)
            .unwrap(),
        Err(_) => chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").unwrap(),
    }
}

fn output_formats_and_limit(h: &Harness) {
    let s = Setup::new(h);
    s.load();
    let range = ("2024-03-01", "2024-03-03");
    let (all, _) = s.search("AVG(30s) > 0", "auto", range, &[]);
    assert!(all.len() > 3, "{all:?}");
    let (two, stats) = s.search("AVG(30s) > 0", "auto", range, &["--limit", "2"]);
    assert_eq!(two, all[..2].to_vec());
    assert_eq!(stats["matches"], all.len());
    let common = [
        "search",
        "--channel",
        "tmp",
        "--from",
        "2024-03-01",
        "--to",
        "2024-03-03",
        "--where",
        "AVG(30s) > 0",
    ];
    let csv = s.ok(&[&common[..], &["--format", "csv"]].concat());
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "id,from,to");
    assert_eq!(lines.len(), all.len() + 1);
    let first: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(first[0], all[0].0.to_string());
    assert_eq!(parse_time(first[1]), all[0].1);
    let out = s.run(&common);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(table.lines().count(), all.len() + 1, "{table}");
    let stats = String::from_utf8_lossy(&out.stderr);
    assert!(
        stats.contains(&format!("{} match(es)", all.len())),
        "{stats}"
    );
    assert!(stats.contains("rows"), "{stats}");
}

fn bad_search_input_is_a_usage_error(h: &Harness) {
    let s = Setup::new(h);
    s.load();
    let search = |channel: &str, from: &str, to: &str, cond: &str, extra: &[&str]| {
        let mut args = vec![
            "search",
            "--channel",
            channel,
            "--from",
            from,
            "--to",
            to,
            "--where",
            cond,
        ];
        args.extend_from_slice(extra);
        let out = s.run(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        err
    };
    let day = ("2024-03-01", "2024-03-02");
    let e = search("tmp", day.0, day.1, "AVG(5) > x", &[]);
    assert!(e.contains("column 5"), "{e}");
    let e = search("tmp", day.0, day.1, "RUN(> 3)", &[]);
    assert!(e.contains("column"), "{e}");
    let e = search("tmp", "2024-03-02", "2024-03-01", "MAX(1m) > 3", &[]);
    assert!(e.contains("--to"), "{e}");
    let e = search(
        "tmp",
        "2024-03-01T00:00:00",
        "2024-03-01T00:10:00",
        "AVG(1h) > 3",
        &[],
    );
    assert!(e.contains("longer than the range"), "{e}");
    let e = search("x", day.0, day.1, "MAX(1m) > 3", &["--method", "filtering"]);
    assert!(e.contains("recalcd index build"), "{e}");
    let e = search("tpm", day.0, day.1, "MAX(1m) > 3", &[]);
    assert!(e.contains("tpm") && e.contains("tmp"), "{e}");
    let e = search("tmp", day.0, day.1, "MAX(1m) > 3", &["--max-gap", "10s"]);
    assert!(e.contains("RUN"), "{e}");
    // An undeclared channel that rows do hold is scanned, and the output says so.
    let out = s.run(&[
        "search",
        "--channel",
        "x",
        "--from",
        day.0,
        "--to",
        day.1,
        "--where",
        "MAX(1m) > 3",
    ]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("scanned"));
}
