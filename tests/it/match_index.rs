//! `recalcd match` through the stored sliding-window DFT index (`[[index.subsequence]]`)
//! on both stores (`match_index::postgres::*`, `match_index::questdb::*`): the index
//! path equals the exhaustive profile and the brute-force oracle over the stored rows
//! on random data (several radii, a boundary tie among them, patterns of 3 windows,
//! ranges cutting boxes, top-k and `--like`, a device not built, rows recalculated
//! after the build, rows added after it); the index commands on the new kind; bad
//! configuration keys.

use std::path::PathBuf;
use std::process::Output;

use recalcd::index::subsequence::exact::{brute_force, Pattern};
use recalcd::index::subsequence::{Metric, Query};
use recalcd::index::{datetime, Micros};

use crate::support::{unique, Harness};

on_both_stores!(
    the_index_answers_as_the_profile_and_the_oracle,
    subsequence_index_commands,
);

/// Window, coefficients, group of the declared index (small: many boxes).
const W: usize = 8;
const CONFIG: &str = "[log]\nlevel = \"warn\"\n[[index.subsequence]]\nchannel = \"TMP\"\nwindow = 8\ncoefficients = 2\ngroup = 5\n";
const ROWS: usize = 2400;
const STEP: i64 = 10;

struct Setup<'a> {
    h: &'a Harness,
    dir: PathBuf,
    config: PathBuf,
}

fn origin() -> chrono::NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(2024, 5, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
}

fn stamp(t: chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// xorshift
fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

impl Setup<'_> {
    fn new(h: &Harness) -> Setup<'_> {
        let dir = std::env::temp_dir().join(unique("recalcd-match-index-"));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("recalcd.toml");
        std::fs::write(&config, CONFIG).unwrap();
        let s = Setup { h, dir, config };
        s.ok(&["migrate"]);
        s
    }

    /// Devices 5 and 6: a row every 10 s from 2024-05-01, `tmp` a random walk with
    /// planted copies of `shape()` (shifted), sometimes `hot` or absent.
    fn load(&self, id: i32, seed: u64, first: usize, rows: usize) {
        let mut next = rng(seed);
        let mut level = 0.0f64;
        let mut values = Vec::new();
        let shape = shape();
        let mut i = first;
        while i < first + rows {
            let t = origin() + chrono::Duration::seconds(STEP * i as i64);
            let at = t.format("%Y-%m-%d %H:%M:%S");
            let text = if i % 397 == 100 {
                // A copy of the shape, shifted (its rows one by one below).
                for (k, v) in shape.iter().enumerate() {
                    let t = origin() + chrono::Duration::seconds(STEP * (i + k) as i64);
                    let at = t.format("%Y-%m-%d %H:%M:%S");
                    let noise = (next() % 100) as f64 / 1000.0;
                    values.push(format!(
                        "('{at}', '{at}', {id}, 0, 'x=1;tmp={:.4};')",
                        v + level + noise
                    ));
                }
                i += shape.len();
                continue;
            } else if next().is_multiple_of(40) {
                "tmp=hot;".to_string()
            } else if next().is_multiple_of(40) {
                String::new()
            } else {
                level += (next() % 201) as f64 / 100.0 - 1.0;
                format!("tmp={level:.4};")
            };
            values.push(format!("('{at}', '{at}', {id}, 0, 'x=1;{text}')"));
            i += 1;
        }
        for chunk in values.chunks(2000) {
            self.h.exec(&format!(
                "INSERT INTO {{data}} (datetime, data_time, id, recalc, conjoined) VALUES {};",
                chunk.join(",\n")
            ));
        }
        self.h.settle();
    }

    fn run(&self, args: &[&str]) -> Output {
        self.h.run_with(&self.config, args)
    }

    fn ok(&self, args: &[&str]) -> String {
        self.h.ok_with(&self.config, args)
    }

    fn file(&self, name: &str, values: &[f64]) -> String {
        let path = self.dir.join(name);
        let text: String = values.iter().map(|v| format!("{v}\n")).collect();
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }

    /// `recalcd match --format json` on `tmp` of device `id`: (from, to, distance) per
    /// match, and the stats.
    fn json(&self, id: i32, args: &[&str]) -> (Vec<(Micros, Micros, f64)>, serde_json::Value) {
        let ids = id.to_string();
        let mut all = vec![
            "match",
            "--channel",
            "tmp",
            "--id",
            &ids,
            "--format",
            "json",
        ];
        all.extend_from_slice(args);
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "recalcd {all:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let matches = v["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    parse_time(m["from"].as_str().unwrap()),
                    parse_time(m["to"].as_str().unwrap()),
                    m["distance"].as_f64().unwrap(),
                )
            })
            .collect();
        (matches, v["stats"].clone())
    }

    /// The numbers of `tmp` of device `id` in `[from, to)` with their times, read by
    /// the test.
    fn numbers(&self, id: i32, (from, to): (Micros, Micros)) -> (Vec<Micros>, Vec<f64>) {
        self.h.settle();
        let rows = self.h.query(&format!(
            "SELECT datetime, conjoined FROM {{data}} WHERE id = {id} ORDER BY datetime"
        ));
        let (mut times, mut values) = (Vec::new(), Vec::new());
        for r in rows {
            let t = parse_time(r[0].as_deref().unwrap());
            if !(from <= t && t < to) {
                continue;
            }
            let text = r[1].clone().unwrap_or_default();
            let v = text
                .split(';')
                .filter_map(|e| e.split_once('='))
                .rfind(|(n, _)| n.trim().eq_ignore_ascii_case("tmp"))
                .and_then(|(_, v)| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite());
            if let Some(v) = v {
                times.push(t);
                values.push(v);
            }
        }
        (times, values)
    }

    /// Checks `match` with `--method index`, `auto` and `profile` against the oracle
    /// for `pattern` over `range` of device `id` at several radii (by rank among every
    /// window's distance: the radius is a distance itself, a tie at the boundary);
    /// returns the rows read by the index and by the profile at the smallest radius.
    fn check(
        &self,
        id: i32,
        range: (Micros, Micros),
        pattern: &[f64],
        like: Option<&str>,
    ) -> (u64, u64) {
        let (times, values) = self.numbers(id, range);
        let m = pattern.len();
        let p = Pattern::new(pattern, Metric::Euclid);
        let all = brute_force(
            &p,
            &values,
            &Query {
                k: None,
                within: Some(f64::MAX),
                exclusion: 1,
                metric: Metric::Euclid,
            },
            None,
        );
        let mut ds: Vec<f64> = all.iter().map(|m| m.distance).collect();
        ds.sort_by(f64::total_cmp);
        let forbidden_at = like.map(|_| times.partition_point(|&t| t < parse_like(like).0));
        let file = self.file("pattern.csv", pattern);
        let (from, to) = (stamp(datetime(range.0)), stamp(datetime(range.1)));
        let mut saving = (0, 0);
        for (n, rank) in [0usize, 3, 40, 400].into_iter().enumerate() {
            let radius = ds[rank.min(ds.len() - 1)];
            let text = format!("{radius:e}");
            let radius: f64 = text.parse().unwrap();
            for (k, exclusion) in [(None, m), (Some(3), 5)] {
                let q = Query {
                    k,
                    within: Some(radius),
                    exclusion,
                    metric: Metric::Euclid,
                };
                let forbidden =
                    forbidden_at.map(|a| (a.saturating_sub(exclusion - 1), a + exclusion - 1));
                let forbidden =
                    forbidden.filter(|_| forbidden_at.is_some_and(|a| a + m <= values.len()));
                let want: Vec<(Micros, Micros, f64)> = brute_force(&p, &values, &q, forbidden)
                    .iter()
                    .map(|f| (times[f.start], times[f.start + m - 1], f.distance))
                    .collect();
                let ex = exclusion.to_string();
                let ks = k.map(|k| k.to_string());
                let mut rows = (0, 0);
                for method in ["index", "auto", "profile"] {
                    let mut args = vec![
                        "--from",
                        &from,
                        "--to",
                        &to,
                        "--metric",
                        "euclid",
                        "--within",
                        &text,
                        "--exclusion",
                        &ex,
                        "--method",
                        method,
                    ];
                    match like {
                        Some(span) => args.extend_from_slice(&["--like", span]),
                        None => args.extend_from_slice(&["--pattern", &file]),
                    }
                    if let Some(k) = &ks {
                        args.extend_from_slice(&["--k", k]);
                    }
                    let (got, stats) = self.json(id, &args);
                    same(
                        &got,
                        &want,
                        &format!("{method} radius {radius} k {k:?} id {id}"),
                    );
                    let expected = if method == "profile" {
                        "profile"
                    } else {
                        "index"
                    };
                    assert_eq!(stats["method"], expected, "{stats}");
                    if method == "index" {
                        rows.0 = stats["rows_read"].as_u64().unwrap();
                        assert!(stats.get("note").is_none(), "{stats}");
                    } else if method == "profile" {
                        rows.1 = stats["rows_read"].as_u64().unwrap();
                    }
                }
                if n == 0 && k.is_none() {
                    saving = rows;
                }
            }
        }
        saving
    }
}

/// A shape of three windows.
fn shape() -> Vec<f64> {
    (0..3 * W).map(|i| ((i as f64) / 3.0).sin() * 8.0).collect()
}

fn parse_like(like: Option<&str>) -> (Micros, Micros) {
    let (a, b) = like.unwrap().split_once("..").unwrap();
    (parse_time(a), parse_time(b))
}

fn same(got: &[(Micros, Micros, f64)], want: &[(Micros, Micros, f64)], what: &str) {
    let times = |v: &[(Micros, Micros, f64)]| v.iter().map(|m| (m.0, m.1)).collect::<Vec<_>>();
    assert_eq!(times(got), times(want), "{what}\n{got:?}\n{want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g.2 - w.2).abs() <= 1e-14 * w.2.abs(),
            "{what}: {} vs {}",
            g.2,
            w.2
        );
    }
}

fn parse_time(s: &str) -> Micros {
    let s = s.trim_end_matches('Z').replace('T', " ");
    let t = chrono::NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S"))
        .unwrap_or_else(|e| panic!("{s}: {e}"));
    recalcd::index::micros(t)
}

fn at(seconds: i64) -> Micros {
    recalcd::index::micros(origin() + chrono::Duration::seconds(seconds))
}

fn the_index_answers_as_the_profile_and_the_oracle(h: &Harness) {
    let s = Setup::new(h);
    s.load(5, 11, 0, ROWS);
    s.load(6, 12, 0, ROWS);
    let out = s.ok(&[
        "index",
        "build",
        "--kind",
        "subsequence",
        "--channel",
        "tmp",
        "--id",
        "5",
    ]);
    assert!(out.contains("1 device(s)"), "{out}");
    let whole = (at(0), at(STEP * ROWS as i64 + 60));
    let noisy: Vec<f64> = {
        let mut next = rng(99);
        shape()
            .iter()
            .map(|v| v + 3.0 + (next() % 100) as f64 / 200.0)
            .collect()
    };
    // The whole range: the index reads fewer rows than the profile at a tight radius.
    let (index_rows, profile_rows) = s.check(5, whole, &noisy, None);
    assert!(index_rows < profile_rows, "{index_rows} vs {profile_rows}");
    // A range cutting boxes at both ends.
    s.check(5, (at(1234), at(STEP * ROWS as i64 - 777)), &noisy, None);
    // A device not built: every window unvouched, still exact.
    s.check(6, whole, &noisy, None);
    // --like: the span of a planted copy, its own occurrence left out.
    let (times, _) = s.numbers(5, whole);
    let a = times.partition_point(|&t| t < at(STEP * 497));
    let like = format!(
        "{}..{}",
        stamp(datetime(times[a])),
        stamp(datetime(times[a + 3 * W - 1] + 1_000_000))
    );
    let (_, values) = s.numbers(5, whole);
    s.check(5, whole, &values[a..a + 3 * W], Some(&like));
    // Rows recalculated after the build: flagged, then written back (marked).
    let (times, _) = s.numbers(5, whole);
    let mut next = rng(7);
    let changed: Vec<(Micros, f64)> = (0..3 * W)
        .map(|k| {
            (
                times[1500 + k],
                shape()[k] + 50.0 + (next() % 10) as f64 / 100.0,
            )
        })
        .collect();
    for (t, v) in &changed {
        let at = datetime(*t).format("%Y-%m-%d %H:%M:%S");
        if h.is_postgres() {
            h.exec(&format!("UPDATE {{data}} SET conjoined = 'x=1;tmp={v};', recalc = 1 WHERE id = 5 AND datetime = '{at}'"));
        } else {
            h.exec(&format!("INSERT INTO {{data}} (datetime, data_time, id, recalc, conjoined) VALUES ('{at}', '{at}', 5, 1, 'x=1;tmp={v};')"));
        }
    }
    h.settle();
    let moved: Vec<f64> = shape().iter().map(|v| v + 50.0).collect();
    s.check(5, whole, &moved, None);
    s.ok(&["once"]);
    s.check(5, whole, &moved, None);
    let list = s.ok(&["index", "list"]);
    assert!(
        list.contains("subsequence") && list.contains("minutes"),
        "{list}"
    );
    // Rows added after the build, after the last one (read raw).
    s.load(5, 13, ROWS + 10, 300);
    let longer = (at(0), at(STEP * (ROWS as i64 + 400)));
    s.check(5, longer, &noisy, None);
    // Built again: the marks are cleared, the answers the same.
    s.ok(&[
        "index",
        "build",
        "--kind",
        "subsequence",
        "--channel",
        "tmp",
    ]);
    let list = s.ok(&["index", "list"]);
    let line = list.lines().find(|l| l.starts_with("subsequence")).unwrap();
    assert!(!line.contains("minutes"), "{list}");
    s.check(5, longer, &moved, None);
}

/// `index COMMAND --kind subsequence --channel tmp EXTRA` with `config`.
fn kind_args<'a>(command: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec![
        "index",
        command,
        "--kind",
        "subsequence",
        "--channel",
        "tmp",
    ];
    all.extend_from_slice(extra);
    all
}

/// `match` on device 5 over 2024-05-01 with `pattern`, Euclidean, `--within 1`, EXTRA.
fn day_match<'a>(pattern: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec![
        "match",
        "--channel",
        "tmp",
        "--id",
        "5",
        "--from",
        "2024-05-01",
        "--to",
        "2024-05-02",
        "--pattern",
        pattern,
        "--within",
        "1",
    ];
    all.extend_from_slice(extra);
    all
}

const MAY: [&str; 4] = ["--from", "2024-05-01", "--to", "2024-05-02"];

fn subsequence_index_commands(h: &Harness) {
    let s = Setup::new(h);
    s.load(5, 21, 0, 600);
    let list = s.ok(&["index", "list"]);
    assert!(
        list.contains("subsequence") && list.contains("declared, not built"),
        "{list}"
    );
    s.ok(&kind_args("build", &[]));
    let list = s.ok(&["index", "list"]);
    let line = list.lines().find(|l| l.starts_with("subsequence")).unwrap();
    assert!(
        line.contains("boxes of") && line.contains("window=8 coefficients=2 group=5"),
        "{list}"
    );
    let show = s.ok(&["index", "show", "--kind", "subsequence", "--channel", "tmp"]);
    assert!(show.contains("kind:        subsequence"), "{show}");
    let out = s.ok(&kind_args("extend", &MAY));
    assert!(out.contains("built the subsequence index"), "{out}");
    // Other parameters declared: extend refuses, rebuild applies them.
    let other = s.dir.join("other.toml");
    std::fs::write(&other, CONFIG.replace("group = 5", "group = 7")).unwrap();
    let out = h.run_with(&other, &kind_args("extend", &MAY));
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = h.ok_with(&other, &kind_args("rebuild", &[]));
    assert!(out.contains("group=7"), "{out}");
    let list = h.ok_with(&other, &["index", "list"]);
    let line = list.lines().find(|l| l.starts_with("subsequence")).unwrap();
    assert!(line.contains("built 2"), "{list}");
    // The index answers with the parameters it was built with.
    let file = s.file("p.csv", &shape());
    let mut args = day_match(&file, &["--metric", "euclid", "--method", "index"]);
    args.drain(..5);
    let (_, stats) = s.json(5, &args);
    assert_eq!(stats["method"], "index", "{stats}");
    let out = s.ok(&kind_args("drop", &[]));
    assert!(out.contains("dropped the subsequence index"), "{out}");
    let list = s.ok(&["index", "list"]);
    assert!(list.contains("declared, not built"), "{list}");
    // --method index without a built index, on a z-normalised query, with a pattern
    // length not a multiple of the window: says why and runs the profile.
    let out = s.run(&day_match(
        &file,
        &["--metric", "euclid", "--method", "index"],
    ));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.contains("no subsequence index of `tmp` is built"),
        "{stderr}"
    );
    s.ok(&kind_args("build", &[]));
    let out = s.run(&day_match(&file, &["--method", "index"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not z-normalised"), "{stderr}");
    let short = s.file("short.csv", &shape()[..W + 3]);
    let out = s.run(&day_match(
        &short,
        &[
            "--metric", "euclid", "--method", "index", "--format", "json",
        ],
    ));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["stats"]["method"], "profile");
    let note = v["stats"]["note"].as_str().unwrap_or_default();
    assert!(note.contains("not a multiple of the index window 8"), "{v}");
    let out = s.ok(&["index", "cleanup"]);
    assert!(out.contains("dropped the subsequence index"), "{out}");
    // Bad keys are refused by name.
    for (bad, key) in [
        ("window = 1", "index.subsequence.window"),
        ("coefficients = 5", "index.subsequence.coefficients"),
        ("group = 0", "index.subsequence.group"),
        ("size = 3", "size"),
    ] {
        let path = s.dir.join("bad.toml");
        let name = bad.split(' ').next().unwrap();
        let text: String = CONFIG
            .lines()
            .filter(|l| !l.starts_with(name))
            .chain([bad])
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&path, text).unwrap();
        let out = h.run_with(&path, &["index", "list"]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "{bad}: {stderr}");
    }
}
