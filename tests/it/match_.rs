//! `recalcd match` through the real binary, on both stores (`match_::postgres::*`,
//! `match_::questdb::*`): top-k, radius, exclusion zones, both metrics and `--like`
//! against the brute-force oracle over the stored rows (read by the test itself), on
//! data with values that are not numbers, absent values, plateaus and planted copies of
//! the pattern; the output formats; and bad input.

use std::path::PathBuf;
use std::process::Output;

use recalcd::index::micros;
use recalcd::index::subsequence::exact::{brute_force, Pattern};
use recalcd::index::subsequence::{Metric, Query};
use recalcd::index::Micros;

use crate::support::{unique, Harness};

on_both_stores!(
    matches_answer_as_the_oracle,
    like_leaves_out_its_own_occurrence,
    output_formats_and_notes,
    bad_match_input_is_a_usage_error,
);

const ID: i32 = 5;
const FROM: &str = "2024-03-01";
const TO: &str = "2024-03-02";

/// The test's files and the loaded rows.
struct Setup<'a> {
    h: &'a Harness,
    dir: PathBuf,
}

impl Setup<'_> {
    /// Device 5 over two days from 2024-03-01, a row every 20 s: `tmp` a random walk
    /// with plateaus and three planted copies of a shape (scaled and shifted), sometimes
    /// `hot` or absent.
    fn new(h: &Harness) -> Setup<'_> {
        let dir = std::env::temp_dir().join(unique("recalcd-match-"));
        std::fs::create_dir_all(&dir).unwrap();
        h.recalcd(&["migrate"]);
        let origin = chrono::NaiveDate::from_ymd_opt(2024, 3, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let shape: Vec<f64> = (0..40).map(|i| ((i as f64) / 4.0).sin() * 6.0).collect();
        let mut level = 20.0f64;
        let mut values = Vec::new();
        let rows = 2 * 86_400 / 20;
        let mut i = 0;
        let mut planted = 0;
        while i < rows {
            let t = origin + chrono::Duration::seconds(20 * i as i64);
            let plant = (planted < 3 && i >= [900usize, 3000, 7000][planted]).then(|| {
                planted += 1;
                planted - 1
            });
            let tmp: Vec<String> = if let Some(k) = plant {
                shape
                    .iter()
                    .map(|v| format!("tmp={:.4};", v * (1.0 + k as f64) + level))
                    .collect()
            } else if next() % 50 == 0 {
                vec!["tmp=hot;".to_string()]
            } else if next() % 50 == 0 {
                vec![String::new()]
            } else if next() % 200 == 0 {
                vec![format!("tmp={level:.4};"); 30]
            } else {
                level += (next() % 201) as f64 / 100.0 - 1.0;
                vec![format!("tmp={level:.4};")]
            };
            for (k, text) in tmp.into_iter().enumerate() {
                let t = t + chrono::Duration::seconds(20 * k as i64);
                let at = t.format("%Y-%m-%d %H:%M:%S");
                values.push(format!("('{at}', '{at}', {ID}, 0, 'x=1;{text}')"));
            }
            i = values.len();
        }
        for chunk in values.chunks(2000) {
            h.exec(&format!(
                "INSERT INTO {{data}} (datetime, data_time, id, recalc, conjoined) VALUES {};",
                chunk.join(",\n")
            ));
        }
        h.settle();
        let s = Setup { h, dir };
        s.file("shape.csv", &format!("value\n{}", join(&shape)));
        s
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["match", "--channel", "tmp", "--id", "5"];
        all.extend_from_slice(args);
        self.raw(&all)
    }

    /// `recalcd ARGS` on the test's store, logging warnings only (stderr holds the
    /// command's own lines).
    fn raw(&self, args: &[&str]) -> Output {
        self.h
            .command()
            .env("RECALCD__LOG__LEVEL", "warn")
            .args(args)
            .arg("--database-url")
            .arg(self.h.url())
            .output()
            .expect("run recalcd")
    }

    /// `recalcd match … --format json`: (from, to, distance) per match, and the stats.
    fn json(&self, args: &[&str]) -> (Vec<(Micros, Micros, f64)>, serde_json::Value) {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--format", "json"]);
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "recalcd match {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let matches = v["matches"]
            .as_array()
            .expect("matches")
            .iter()
            .map(|m| {
                assert_eq!(m["id"], 5);
                (
                    parse_time(m["from"].as_str().unwrap()),
                    parse_time(m["to"].as_str().unwrap()),
                    m["distance"].as_f64().unwrap(),
                )
            })
            .collect();
        (matches, v["stats"].clone())
    }

    /// The numbers of `tmp` in `[from, to)` with their times, read by the test itself.
    fn numbers(&self, from: Micros, to: Micros) -> (Vec<Micros>, Vec<f64>, u64) {
        let rows = self.h.query(&format!(
            "SELECT datetime, conjoined FROM {{data}} WHERE id = {ID} ORDER BY datetime"
        ));
        let (mut times, mut values, mut dropped) = (Vec::new(), Vec::new(), 0);
        for r in rows {
            let t = parse_time(r[0].as_deref().unwrap());
            if !(from <= t && t < to) {
                continue;
            }
            let text = r[1].clone().unwrap_or_default();
            let Some((_, v)) = text
                .split(';')
                .filter_map(|e| e.split_once('='))
                .rfind(|(n, _)| n.trim().eq_ignore_ascii_case("tmp"))
            else {
                continue;
            };
            match v.trim().parse::<f64>().ok().filter(|v| v.is_finite()) {
                Some(v) => {
                    times.push(t);
                    values.push(v);
                }
                None => dropped += 1,
            }
        }
        (times, values, dropped)
    }

    /// The oracle's answer as (from, to, distance).
    fn oracle(
        &self,
        range: (Micros, Micros),
        pattern: &[f64],
        query: &Query,
        forbidden_at: Option<usize>,
    ) -> Vec<(Micros, Micros, f64)> {
        let (times, values, _) = self.numbers(range.0, range.1);
        let p = Pattern::new(pattern, query.metric);
        let m = pattern.len();
        let forbidden = forbidden_at.map(|a| {
            (
                a.saturating_sub(query.exclusion - 1),
                a + query.exclusion - 1,
            )
        });
        brute_force(&p, &values, query, forbidden)
            .iter()
            .map(|f| (times[f.start], times[f.start + m - 1], f.distance))
            .collect()
    }
}

/// The same matches: times exactly, distances as exactly as JSON carries them
/// (`serde_json` parses floats to within an ulp or two, not always the nearest).
fn same(got: &[(Micros, Micros, f64)], want: &[(Micros, Micros, f64)]) {
    let times = |v: &[(Micros, Micros, f64)]| v.iter().map(|m| (m.0, m.1)).collect::<Vec<_>>();
    assert_eq!(times(got), times(want), "{got:?}\n{want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g.2 - w.2).abs() <= 1e-14 * w.2.abs(), "{} vs {}", g.2, w.2);
    }
}

fn join(values: &[f64]) -> String {
    values.iter().map(|v| format!("{v}\n")).collect()
}

fn parse_time(s: &str) -> Micros {
    let s = s.trim_end_matches('Z').replace('T', " ");
    let t = chrono::NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S%.f")
        .unwrap_or_else(|e| panic!("{s}: {e}"));
    micros(t)
}

fn at(s: &str) -> Micros {
    parse_time(&format!("{s} 00:00:00"))
}

fn range() -> (Micros, Micros) {
    (at(FROM), at("2024-03-03"))
}

fn shape() -> Vec<f64> {
    (0..40).map(|i| ((i as f64) / 4.0).sin() * 6.0).collect()
}

fn matches_answer_as_the_oracle(h: &Harness) {
    let s = Setup::new(h);
    let shape_file = s.dir.join("shape.csv").to_string_lossy().into_owned();
    let (_, values, dropped) = s.numbers(range().0, range().1);
    // Top-5, z-normalised: the three planted copies first, at distance 0 (their scale
    // and offset do not count), then the best of the rest.
    let (got, stats) = s.json(&["--from", FROM, "--to", TO, "--pattern", &shape_file]);
    let q = Query {
        k: Some(5),
        within: None,
        exclusion: 40,
        metric: Metric::ZNorm,
    };
    same(&got, &s.oracle(range(), &shape(), &q, None));
    assert_eq!(got.len(), 5);
    assert!(got[..3].iter().all(|m| m.2 < 1e-3), "{got:?}");
    assert_eq!(stats["method"], "profile");
    assert_eq!(stats["total"], values.len() - 40 + 1);
    assert_eq!(stats["dropped"], dropped);
    assert!(dropped > 0);
    assert!(stats["refined"].as_u64().unwrap() < stats["total"].as_u64().unwrap());
    // A range cutting the data, another exclusion zone, more matches.
    let cut = (
        parse_time("2024-03-01 06:30:00"),
        parse_time("2024-03-02 03:10:00"),
    );
    let (got, _) = s.json(&[
        "--from",
        "2024-03-01T06:30:00",
        "--to",
        "2024-03-02T03:10:00",
        "--pattern",
        &shape_file,
        "--k",
        "12",
        "--exclusion",
        "7",
    ]);
    let q = Query {
        k: Some(12),
        within: None,
        exclusion: 7,
        metric: Metric::ZNorm,
    };
    same(&got, &s.oracle(cut, &shape(), &q, None));
    // Euclidean, within a radius (at the oracle's 20th distance), every method.
    let all = s.oracle(
        range(),
        &shape(),
        &Query {
            k: None,
            within: Some(f64::MAX),
            exclusion: 1,
            metric: Metric::Euclid,
        },
        None,
    );
    let mut ds: Vec<f64> = all.iter().map(|m| m.2).collect();
    ds.sort_by(f64::total_cmp);
    let radius = format!("{:e}", ds[19]);
    let q = Query {
        k: None,
        within: Some(radius.parse().unwrap()),
        exclusion: 40,
        metric: Metric::Euclid,
    };
    let want = s.oracle(range(), &shape(), &q, None);
    assert!(!want.is_empty());
    for method in ["auto", "profile", "index"] {
        let (got, stats) = s.json(&[
            "--from",
            FROM,
            "--to",
            TO,
            "--pattern",
            &shape_file,
            "--metric",
            "euclid",
            "--within",
            &radius,
            "--method",
            method,
        ]);
        same(&got, &want);
        assert_eq!(stats["method"], "profile");
        assert_eq!(stats["metric"], "euclid");
    }
}

fn like_leaves_out_its_own_occurrence(h: &Harness) {
    let s = Setup::new(h);
    // The second planted copy's span as the pattern.
    let (times, values, _) = s.numbers(range().0, range().1);
    let a = times
        .iter()
        .position(|&t| t >= parse_time("2024-03-01 16:40:00"))
        .unwrap();
    let span = format!(
        "{}..{}",
        recalcd::index::datetime(times[a]).format("%Y-%m-%dT%H:%M:%S"),
        recalcd::index::datetime(times[a + 40]).format("%Y-%m-%dT%H:%M:%S"),
    );
    let pattern = values[a..a + 40].to_vec();
    let (got, _) = s.json(&["--from", FROM, "--to", TO, "--like", &span, "--k", "4"]);
    let q = Query {
        k: Some(4),
        within: None,
        exclusion: 40,
        metric: Metric::ZNorm,
    };
    let want = s.oracle(range(), &pattern, &q, Some(a));
    same(&got, &want);
    assert!(
        got.iter().all(|m| m.0 != times[a]),
        "its own occurrence is not a match"
    );
    // Outside the range, the span is an ordinary pattern.
    let later = (parse_time("2024-03-01 17:00:00"), range().1);
    let (got, _) = s.json(&["--from", "2024-03-01T17:00:00", "--to", TO, "--like", &span]);
    let q = Query {
        k: Some(5),
        within: None,
        exclusion: 40,
        metric: Metric::ZNorm,
    };
    same(&got, &s.oracle(later, &pattern, &q, None));
}

fn output_formats_and_notes(h: &Harness) {
    let s = Setup::new(h);
    let shape_file = s.dir.join("shape.csv").to_string_lossy().into_owned();
    let (json, _) = s.json(&[
        "--from",
        FROM,
        "--to",
        TO,
        "--pattern",
        &shape_file,
        "--k",
        "3",
    ]);
    let csv = s.run(&[
        "--from",
        FROM,
        "--to",
        TO,
        "--pattern",
        &shape_file,
        "--k",
        "3",
        "--format",
        "csv",
    ]);
    assert!(csv.status.success());
    let text = String::from_utf8(csv.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("id,from,to,distance"));
    let rows: Vec<(Micros, Micros, f64)> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f[0], "5");
            (parse_time(f[1]), parse_time(f[2]), f[3].parse().unwrap())
        })
        .collect();
    same(&rows, &json);
    let stderr = String::from_utf8(csv.stderr).unwrap();
    assert!(stderr.contains("3 match(es); method profile"), "{stderr}");
    let table = s.run(&[
        "--from",
        FROM,
        "--to",
        TO,
        "--pattern",
        &shape_file,
        "--k",
        "3",
    ]);
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.lines().next().unwrap().contains("distance"), "{text}");
    assert_eq!(text.lines().count(), 4);
    // Asking for the window index: told that none is built, and what ran instead.
    let out = s.run(&[
        "--from",
        FROM,
        "--to",
        TO,
        "--pattern",
        &shape_file,
        "--metric",
        "euclid",
        "--within",
        "5",
        "--method",
        "index",
    ]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success());
    assert!(
        stderr.contains("no subsequence index of `tmp` is built") && stderr.contains("profile"),
        "{stderr}"
    );
    let out = s.run(&[
        "--from",
        FROM,
        "--to",
        TO,
        "--pattern",
        &shape_file,
        "--method",
        "index",
    ]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("not z-normalised"), "{stderr}");
}

fn bad_match_input_is_a_usage_error(h: &Harness) {
    let s = Setup::new(h);
    let shape_file = s.dir.join("shape.csv").to_string_lossy().into_owned();
    let short = s.file("short.csv", "1\n2\n3\n");
    let words = s.file("words.csv", "1\n2\nthree\n4\n5\n");
    let binary = s.file("binary.csv", "");
    std::fs::write(&binary, [0u8, 159, 146, 150, 0, 1]).unwrap();
    let cases: [(Vec<&str>, &str); 8] = [
        (
            vec![
                "--from",
                "2024-03-01T00:00:00",
                "--to",
                "2024-03-01T00:05:00",
                "--pattern",
                &shape_file,
            ],
            "only",
        ),
        (
            vec!["--from", FROM, "--to", TO, "--pattern", &short],
            "at least 4",
        ),
        (
            vec!["--from", FROM, "--to", TO, "--pattern", &words],
            "line 3",
        ),
        (
            vec![
                "--from",
                FROM,
                "--to",
                TO,
                "--pattern",
                &shape_file,
                "--k",
                "0",
            ],
            "--k 0",
        ),
        (
            vec!["--from", FROM, "--to", TO, "--pattern", &binary],
            "not a CSV",
        ),
        (
            vec!["--from", FROM, "--to", TO, "--pattern", "/nonexistent.csv"],
            "/nonexistent.csv",
        ),
        (
            vec![
                "--from",
                FROM,
                "--to",
                TO,
                "--like",
                "2024-03-05..2024-03-06",
            ],
            "--like",
        ),
        (
            vec!["--from", FROM, "--to", TO, "--like", "yesterday"],
            "FROM..TO",
        ),
    ];
    for (args, says) in cases {
        let out = s.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(says),
            "{args:?}: {stderr}"
        );
    }
    let out = s.raw(&[
        "match",
        "--channel",
        "nothing",
        "--id",
        "5",
        "--from",
        FROM,
        "--to",
        TO,
        "--pattern",
        &shape_file,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds `nothing`"));
}

/// The test-only `--series` mode the stumpy check script uses: the same answer as the
/// oracle by row number, and MASS's profile within the stated tolerance of the exact
/// distances (no store involved).
#[test]
fn series_file_mode_answers_as_the_oracle() {
    let dir = std::env::temp_dir().join(unique("recalcd-match-series-"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut x = 50.0f64;
    let mut seed = 7u64;
    let series: Vec<f64> = (0..3000)
        .map(|_| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            x += ((seed >> 33) % 2001) as f64 / 1000.0 - 1.0;
            x
        })
        .collect();
    let pattern = series[1200..1232].to_vec();
    let (s_path, p_path, prof) = (dir.join("s.csv"), dir.join("p.csv"), dir.join("prof.txt"));
    std::fs::write(&s_path, join(&series)).unwrap();
    std::fs::write(&p_path, join(&pattern)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_recalcd"))
        .args(["match", "--k", "4", "--exclusion", "33", "--series"])
        .arg(&s_path)
        .arg("--pattern")
        .arg(&p_path)
        .arg("--profile-out")
        .arg(&prof)
        .output()
        .expect("run recalcd");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = Pattern::new(&pattern, Metric::ZNorm);
    let q = Query {
        k: Some(4),
        within: None,
        exclusion: 33,
        metric: Metric::ZNorm,
    };
    let want = brute_force(&p, &series, &q, None);
    let got: Vec<(usize, f64)> = v["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["start"].as_u64().unwrap() as usize,
                m["distance"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got.len(), 4);
    assert_eq!(got[0], (1200, 0.0));
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.0, w.start);
        assert!((g.1 - w.distance).abs() <= 1e-14 * w.distance);
    }
    let profile: Vec<f64> = std::fs::read_to_string(&prof)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(profile.len(), series.len() - 32 + 1);
    let mut scratch = vec![0.0; 32];
    for (j, d) in profile.iter().enumerate() {
        let exact =
            recalcd::index::subsequence::exact::distance_sq(&p, &series[j..j + 32], &mut scratch);
        assert!((d * d - exact).abs() < 1e-6, "window {j}: {d}² vs {exact}");
    }
}
