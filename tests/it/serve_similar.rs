//! `recalcd serve`'s similarity endpoints through the real binary, on both stores
//! (`serve_similar::postgres::*`, `serve_similar::questdb::*`): `/api/similar` and
//! `/api/match` answer the JSON of `recalcd similar` and `recalcd match` with `--format
//! json` on the same store (with and without a built index, every option; `/api/match`
//! also through the stored window index), and bad
//! parameters get a 4xx with a JSON message naming them.

use std::path::{Path, PathBuf};

use crate::serve::{recalcd_ok, Server};
use crate::support::{unique, Harness};

on_both_stores!(
    similarity_answers_as_the_command_line,
    a_kept_index_follows_recalculations,
    bad_similarity_requests_name_the_parameter,
);

/// A config file: `tmp` with a similarity index (jobs resampled to 16 values).
fn config_file(dir: &Path) -> PathBuf {
    let path = dir.join("recalcd.toml");
    std::fs::write(
        &path,
        "[log]\nlevel = \"warn\"\n[[index.similarity]]\nchannel = \"tmp\"\nlength = 16\n\
         coefficients = 4\n[[index.subsequence]]\nchannel = \"tmp\"\nwindow = 3\n\
         coefficients = 1\ngroup = 4\n",
    )
    .unwrap();
    path
}

/// Devices 5 and 7: a job every hour of 2024-03-01 (its rows share the job start as
/// `data_time`), 24 to 40 rows 20 s apart, `tmp` a wave whose shape changes from job to
/// job (now and then `hot`); job 9 of device 7 repeats job 3 of device 5 scaled.
fn load(h: &Harness, config: &Path) {
    recalcd_ok(h, config, &["migrate"]);
    let origin = chrono::NaiveDate::from_ymd_opt(2024, 3, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let shape = |id: i32, j: i64, k: i64| -> f64 {
        let (id, j, k) = (f64::from(id), j as f64, k as f64);
        (k / (3.0 + j % 5.0)).sin() * (1.0 + j / 7.0) + (k * id * 0.37).cos() * 0.3 + j
    };
    let mut values = Vec::new();
    for id in [5, 7] {
        for j in 0..24i64 {
            let start =
                origin + chrono::Duration::hours(j) + chrono::Duration::seconds(i64::from(id));
            // The twin takes its rows' count, values and `hot` places from its original.
            let twin = id == 7 && j == 9;
            let (sid, sj) = if twin { (5, 3) } else { (id, j) };
            let rows = 24 + (sj * 5 + i64::from(sid)) % 17;
            for k in 0..rows {
                let t = start + chrono::Duration::seconds(20 * k);
                let v = shape(sid, sj, k);
                let v = if twin { v * 2.0 + 4.0 } else { v };
                let tmp = if (k + sj) % 13 == 6 {
                    "tmp=hot;".to_string()
                } else {
                    format!("tmp={v:.4};")
                };
                let (at, job) = (
                    t.format("%Y-%m-%d %H:%M:%S"),
                    start.format("%Y-%m-%d %H:%M:%S"),
                );
                values.push(format!("('{at}', '{job}', {id}, 1, 'x={k};{tmp}')"));
            }
        }
    }
    h.exec(&format!(
        "INSERT INTO {{data}} (datetime, data_time, id, recalc, conjoined) VALUES {};",
        values.join(",\n")
    ));
    recalcd_ok(h, config, &["once"]);
}

/// The JSON without what differs from run to run (the times taken).
fn without_times(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(stats) = v.get_mut("stats").and_then(|s| s.as_object_mut()) {
        stats.remove("elapsed_ms");
        stats.remove("load_ms");
        stats.remove("tree_ms");
        // Whether `serve` used the copy it keeps: the command line keeps none.
        stats.remove("kept");
    }
    v
}

/// The API's answer to `path?params` and the command line's to `args`, compared.
fn same_as_cli(
    h: &Harness,
    server: &Server,
    config: &Path,
    (path, params): (&str, &[(&str, &str)]),
    args: &[&str],
) -> serde_json::Value {
    let api = server.json(path, params, 200);
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let cli: serde_json::Value =
        serde_json::from_str(&recalcd_ok(h, config, &all)).expect("the CLI's JSON");
    assert_eq!(
        without_times(api.clone()),
        without_times(cli),
        "{path} {params:?}"
    );
    assert!(api["stats"]["elapsed_ms"].is_u64(), "{api}");
    api
}

const JOB: &str = "5@2024-03-01T03:00:05";

/// The same query as the API's parameters and as the command line's arguments.
type Pair<'a> = (Vec<(&'a str, &'a str)>, Vec<&'a str>);

fn similarity_answers_as_the_command_line(h: &Harness) {
    let dir = std::env::temp_dir().join(unique("recalcd-serve-similar-"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = config_file(&dir);
    load(h, &config);
    let series = [1.0, 2.5, 2.0, 4.0, 3.5, 5.0, 4.0, 6.5];
    let series_text: Vec<String> = series.iter().map(f64::to_string).collect();
    let series_file = dir.join("series.csv");
    std::fs::write(&series_file, series_text.join("\n")).unwrap();
    let series_file = series_file.to_str().unwrap();
    let series_param = series_text.join(",");
    // (API parameters, CLI arguments): the same query both ways.
    let cases: Vec<Pair> = vec![
        (vec![("job", JOB)], vec!["--job", JOB]),
        (
            vec![("job", JOB), ("k", "3"), ("metric", "euclid")],
            vec!["--job", JOB, "--k", "3", "--metric", "euclid"],
        ),
        (
            vec![("job", JOB), ("within", "2.5")],
            vec!["--job", JOB, "--within", "2.5"],
        ),
        (
            vec![
                ("job", JOB),
                ("id", "7"),
                ("from", "2024-03-01T05:00:00"),
                ("to", "2024-03-01T20:00:00"),
            ],
            vec![
                "--job",
                JOB,
                "--id",
                "7",
                "--from",
                "2024-03-01T05:00:00",
                "--to",
                "2024-03-01T20:00:00",
            ],
        ),
        (
            vec![("series", series_param.as_str()), ("k", "4")],
            vec!["--series", series_file, "--k", "4"],
        ),
    ];
    let server = Server::start(h, &config);
    let run_all = |server: &Server, method: &str| {
        for (params, args) in &cases {
            let mut p = vec![("channel", "tmp")];
            p.extend(params.iter().copied());
            let mut a = vec!["similar", "--channel", "tmp"];
            a.extend(args.iter().copied());
            let api = same_as_cli(h, server, &config, ("/api/similar", &p), &a);
            let m = api["stats"]["method"].as_str().unwrap();
            assert!(m.starts_with(method), "{p:?}: {api}");
            assert!(
                !api["matches"].as_array().unwrap().is_empty(),
                "{p:?}: {api}"
            );
        }
    };
    // No index built yet: both scan, and say why alike.
    run_all(&server, "scan (no similarity index");
    server.stop();
    let built = recalcd_ok(
        h,
        &config,
        &["index", "build", "--kind", "similarity", "--channel", "tmp"],
    );
    assert!(built.contains("48 job(s) indexed"), "{built}");
    recalcd_ok(
        h,
        &config,
        &[
            "index",
            "build",
            "--kind",
            "subsequence",
            "--channel",
            "tmp",
        ],
    );
    let server = Server::start(h, &config);
    run_all(&server, "index");
    // The scaled twin is the nearest job, at z-normalised distance ~0.
    let twin = server.json(
        "/api/similar",
        &[("channel", "tmp"), ("job", JOB), ("k", "1")],
        200,
    );
    assert_eq!(twin["matches"][0]["id"], 7, "{twin}");
    assert_eq!(twin["matches"][0]["job"], "2024-03-01T09:00:07", "{twin}");
    // The shift-blind distance (the vantage-point tree) and the iSAX tree, both ways.
    for (params, args, method) in [
        (
            vec![("job", JOB), ("k", "4"), ("metric", "xcorr")],
            vec!["--job", JOB, "--k", "4", "--metric", "xcorr"],
            "index",
        ),
        (
            vec![
                ("job", JOB),
                ("k", "4"),
                ("approx", "true"),
                ("examine", "0"),
            ],
            vec!["--job", JOB, "--k", "4", "--approx", "--examine", "0"],
            "isax",
        ),
    ] {
        let mut p = vec![("channel", "tmp")];
        p.extend(params);
        let mut a = vec!["similar", "--channel", "tmp"];
        a.extend(args);
        let api = same_as_cli(h, &server, &config, ("/api/similar", &p), &a);
        assert_eq!(api["stats"]["method"], method, "{p:?}: {api}");
        assert_eq!(api["matches"].as_array().unwrap().len(), 4, "{api}");
        if method == "isax" {
            assert_eq!(api["stats"]["exact"], true, "{api}");
        } else {
            assert!(api["stats"]["distances"].is_u64(), "{api}");
        }
    }

    // Subsequences: a pattern given inline and a span of the device's own rows.
    let pattern = "20.5,21,22,21.5,20,19.5";
    let pattern_file = dir.join("pattern.csv");
    std::fs::write(&pattern_file, pattern.replace(',', "\n")).unwrap();
    let pattern_file = pattern_file.to_str().unwrap();
    let like = "2024-03-01T03:00:05..2024-03-01T03:04:00";
    let cases: Vec<Pair> = vec![
        (vec![("pattern", pattern)], vec!["--pattern", pattern_file]),
        (
            vec![
                ("pattern", pattern),
                ("k", "7"),
                ("exclusion", "3"),
                ("metric", "euclid"),
                ("method", "profile"),
            ],
            vec![
                "--pattern",
                pattern_file,
                "--k",
                "7",
                "--exclusion",
                "3",
                "--metric",
                "euclid",
                "--method",
                "profile",
            ],
        ),
        (
            vec![("like", like), ("within", "4"), ("method", "index")],
            vec!["--like", like, "--within", "4", "--method", "index"],
        ),
        // Through the stored window index (6 values = 2 windows of 3).
        (
            vec![("pattern", pattern), ("within", "30"), ("metric", "euclid")],
            vec![
                "--pattern",
                pattern_file,
                "--within",
                "30",
                "--metric",
                "euclid",
            ],
        ),
    ];
    for (id, from, to) in [
        ("5", "2024-03-01", "2024-03-01"),
        ("7", "2024-03-01T02:10:00", "2024-03-01T17:45:30.5"),
    ] {
        for (params, args) in &cases {
            let mut p = vec![("channel", "tmp"), ("id", id), ("from", from), ("to", to)];
            p.extend(params.iter().copied());
            let mut a = vec![
                "match",
                "--channel",
                "tmp",
                "--id",
                id,
                "--from",
                from,
                "--to",
                to,
            ];
            a.extend(args.iter().copied());
            let api = same_as_cli(h, &server, &config, ("/api/match", &p), &a);
            if params.contains(&("metric", "euclid")) && params.iter().any(|(k, _)| *k == "within")
            {
                assert_eq!(api["stats"]["method"], "index", "{p:?}: {api}");
                assert!(
                    !api["matches"].as_array().unwrap().is_empty(),
                    "{p:?}: {api}"
                );
            }
            if !params.iter().any(|(k, _)| *k == "within") {
                assert!(
                    !api["matches"].as_array().unwrap().is_empty(),
                    "{p:?}: {api}"
                );
            }
        }
    }
    server.stop();
}

/// `serve` keeps the index loaded between queries and answers as the command line
/// (which reads it afresh) while a job changes: flagged (compared directly, the copy
/// kept), recalculated (the catch-up rewrote its entry: the copy read again).
fn a_kept_index_follows_recalculations(h: &Harness) {
    let dir = std::env::temp_dir().join(unique("recalcd-serve-kept-"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = config_file(&dir);
    load(h, &config);
    recalcd_ok(
        h,
        &config,
        &["index", "build", "--kind", "similarity", "--channel", "tmp"],
    );
    let server = Server::start(h, &config);
    // Every job (within a wide radius; the iSAX tree with no budget: exact), so that
    // the changed job's distance shows.
    let exact = (
        vec![("channel", "tmp"), ("job", JOB), ("within", "100")],
        vec![
            "similar",
            "--channel",
            "tmp",
            "--job",
            JOB,
            "--within",
            "100",
        ],
        "index",
    );
    let approx = (
        vec![
            ("channel", "tmp"),
            ("job", JOB),
            ("k", "47"),
            ("approx", "true"),
            ("examine", "0"),
        ],
        vec![
            "similar",
            "--channel",
            "tmp",
            "--job",
            JOB,
            "--k",
            "47",
            "--approx",
            "--examine",
            "0",
        ],
        "isax",
    );
    let ask = |what: &str, kept: bool| -> Vec<serde_json::Value> {
        [&exact, &approx]
            .iter()
            .map(|(params, args, method)| {
                let api = same_as_cli(h, &server, &config, ("/api/similar", params), args);
                assert_eq!(api["stats"]["method"], *method, "{what}: {api}");
                assert_eq!(api["stats"]["kept"], kept, "{what}: {api}");
                assert_eq!(
                    api["matches"].as_array().unwrap().len(),
                    47,
                    "{what}: {api}"
                );
                api
            })
            .collect()
    };
    let changed = "2024-03-01T15:00:07";
    let distance = |api: &serde_json::Value| -> f64 {
        api["matches"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == 7 && m["job"] == changed)
            .and_then(|m| m["distance"].as_f64())
            .unwrap_or_else(|| panic!("job 7@{changed} missing: {api}"))
    };
    let first = ask("first query", false);
    let again = ask("second query", true);
    for (a, b) in first.iter().zip(&again) {
        assert_eq!(without_times(a.clone()), without_times(b.clone()));
    }
    // A producer rewrites job 7@15:00:07 as a parabola and flags it.
    let rows = h.query(&format!(
        "SELECT datetime FROM {{data}} WHERE id = 7 AND data_time = '{}' ORDER BY datetime",
        changed.replace('T', " ")
    ));
    assert!(rows.len() >= 24, "{rows:?}");
    for (i, r) in rows.iter().enumerate() {
        let t = r[0].as_deref().unwrap().replace('T', " ");
        let c = format!("x={i};tmp={};", (i * i) as f64 * 0.5);
        if h.is_postgres() {
            h.exec(&format!(
                "UPDATE {{data}} SET conjoined = '{c}', recalc = 1 WHERE id = 7 AND datetime = '{t}'"
            ));
        } else {
            h.exec(&format!(
                "INSERT INTO {{data}} (datetime, data_time, id, recalc, conjoined) VALUES ('{t}', '{}', 7, 1, '{c}')",
                changed.replace('T', " ")
            ));
        }
    }
    // Flagged: the kept entry is stale, but the job is compared from its rows.
    let flagged = ask("flagged", true);
    for (f, a) in flagged.iter().zip(&first) {
        assert!(
            (distance(f) - distance(a)).abs() > 1e-6,
            "the changed job's distance did not change: {a} {f}"
        );
    }
    // Recalculated: the catch-up rewrote the entry, so the copy is read again.
    recalcd_ok(h, &config, &["once"]);
    let after = ask("after the recalculation", false);
    for (a, f) in after.iter().zip(&flagged) {
        assert!((distance(a) - distance(f)).abs() < 1e-9, "{a}");
    }
    ask("kept again", true);
    server.stop();
}

/// A bad request: the path, its parameters, the status and a part of the message.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str);

fn bad_similarity_requests_name_the_parameter(h: &Harness) {
    let dir = std::env::temp_dir().join(unique("recalcd-serve-similar-"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = config_file(&dir);
    load(h, &config);
    let server = Server::start(h, &config);
    let s = |extra: &[(&'static str, &'static str)]| {
        let mut p = vec![("channel", "tmp")];
        p.extend_from_slice(extra);
        p
    };
    let m = |extra: &[(&'static str, &'static str)]| {
        let mut p = vec![
            ("channel", "tmp"),
            ("id", "5"),
            ("from", "2024-03-01"),
            ("to", "2024-03-01"),
        ];
        p.extend_from_slice(extra);
        p
    };
    let cases: Vec<Case> = vec![
        ("/api/similar", s(&[]), 400, "missing parameter `job`"),
        (
            "/api/similar",
            vec![("job", JOB)],
            400,
            "missing parameter `channel`",
        ),
        (
            "/api/similar",
            s(&[("job", JOB), ("series", "1,2,3,4")]),
            400,
            "`job` and `series` exclude each other",
        ),
        (
            "/api/similar",
            s(&[("job", "5-2024")]),
            400,
            "`job`: '5-2024'",
        ),
        (
            "/api/similar",
            s(&[("job", JOB), ("k", "0")]),
            400,
            "`k`: '0'",
        ),
        (
            "/api/similar",
            s(&[("job", JOB), ("within", "-1")]),
            400,
            "`within`: '-1'",
        ),
        (
            "/api/similar",
            s(&[("job", JOB), ("metric", "cosine")]),
            400,
            "`metric`: 'cosine'",
        ),
        (
            "/api/similar",
            s(&[("job", JOB), ("approx", "maybe")]),
            400,
            "`approx`: 'maybe'",
        ),
        (
            "/api/similar",
            s(&[("job", JOB), ("examine", "10")]),
            400,
            "`examine` needs `approx=true`",
        ),
        (
            "/api/similar",
            s(&[("job", JOB), ("approx", "true"), ("examine", "many")]),
            400,
            "`examine`: 'many'",
        ),
        (
            "/api/similar",
            s(&[("job", JOB), ("approx", "true"), ("metric", "euclid")]),
            400,
            "`approx` answers z-normalised distances only",
        ),
        (
            "/api/similar",
            s(&[
                ("job", JOB),
                ("from", "2024-03-02"),
                ("to", "2024-03-01T00:00:00"),
            ]),
            400,
            "`to` 2024-03-01T00:00:00 is not after `from`",
        ),
        (
            "/api/similar",
            s(&[("job", JOB), ("to", "tomorrow")]),
            400,
            "`to`: 'tomorrow'",
        ),
        (
            "/api/similar",
            s(&[("job", "999@2024-03-01T03:00:05")]),
            404,
            "`job`: device 999 is unknown",
        ),
        (
            "/api/similar",
            s(&[("job", JOB), ("id", "998")]),
            404,
            "`id`: device 998 is unknown",
        ),
        (
            "/api/similar",
            s(&[("job", "5@2024-03-01T03:00:06")]),
            400,
            "`job` 5@2024-03-01T03:00:06: no such job",
        ),
        (
            "/api/similar",
            s(&[("series", "1,2,x,4")]),
            400,
            "`series`: value 3 'x'",
        ),
        (
            "/api/similar",
            s(&[("series", "1,2,3")]),
            400,
            "`series`: the file holds 3 value(s); at least 4 are needed",
        ),
        (
            "/api/similar",
            s(&[("job", JOB), ("approximately", "1")]),
            400,
            "unknown parameter `approximately`",
        ),
        ("/api/match", m(&[]), 400, "missing parameter `pattern`"),
        (
            "/api/match",
            vec![
                ("channel", "tmp"),
                ("from", "2024-03-01"),
                ("to", "2024-03-01"),
                ("pattern", "1,2,3,4"),
            ],
            400,
            "missing parameter `id`",
        ),
        (
            "/api/match",
            vec![("channel", "tmp"), ("id", "5"), ("pattern", "1,2,3,4")],
            400,
            "missing parameter `from`",
        ),
        (
            "/api/match",
            m(&[("pattern", "1,2,3")]),
            400,
            "`pattern`: the pattern has 3 value(s)",
        ),
        (
            "/api/match",
            m(&[("pattern", "1,2,3,inf")]),
            400,
            "`pattern`: value 4 'inf'",
        ),
        (
            "/api/match",
            m(&[("pattern", "1,2,3,4"), ("like", "2024-03-01..2024-03-01")]),
            400,
            "`pattern` and `like` exclude each other",
        ),
        (
            "/api/match",
            m(&[("like", "2024-03-01")]),
            400,
            "`like` 2024-03-01: expected FROM..TO",
        ),
        (
            "/api/match",
            m(&[("like", "2024-03-01T05:00:00..2024-03-01T05:00:00")]),
            400,
            "TO is not after FROM",
        ),
        (
            "/api/match",
            m(&[("like", "2024-03-01T05:00:00..2024-03-01T05:00:30")]),
            400,
            "`like`: the pattern has",
        ),
        (
            "/api/match",
            m(&[("pattern", "1,2,3,4"), ("exclusion", "0")]),
            400,
            "`exclusion`: '0'",
        ),
        (
            "/api/match",
            m(&[("pattern", "1,2,3,4"), ("method", "fast")]),
            400,
            "`method`: 'fast'",
        ),
        (
            "/api/match",
            m(&[("pattern", "1,2,3,4"), ("metric", "xcorr2")]),
            400,
            "`metric`: 'xcorr2'",
        ),
        (
            "/api/match",
            vec![
                ("channel", "tmp"),
                ("id", "5"),
                ("from", "2024-03-01T05:00:05"),
                ("to", "2024-03-01T05:01:00"),
                ("pattern", "1,2,3,4,5,6,7,8"),
            ],
            400,
            "`pattern` against `from`..`to`: the pattern has 8 values",
        ),
        (
            "/api/match",
            vec![
                ("channel", "tmp"),
                ("id", "999"),
                ("from", "2024-03-01"),
                ("to", "2024-03-01"),
                ("pattern", "1,2,3,4"),
            ],
            404,
            "`id`: device 999 is unknown",
        ),
        (
            "/api/match",
            vec![
                ("channel", "nosuch'; DROP TABLE data; --"),
                ("id", "5"),
                ("from", "2024-03-01"),
                ("to", "2024-03-01"),
                ("pattern", "1,2,3,4"),
            ],
            404,
            "`channel`: no row of device 5 in the range holds `nosuch'; DROP TABLE data; --`",
        ),
    ];
    for (path, params, status, message) in cases {
        let body = server.json(path, &params, status);
        let error = body["error"].as_str().unwrap_or_else(|| panic!("{body}"));
        assert!(error.contains(message), "{path} {params:?}: {error}");
        assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    }
    server.stop();
}
