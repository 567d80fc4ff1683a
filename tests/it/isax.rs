//! The iSAX tree of the similarity index through the real binary, on both stores
//! (`isax::postgres::*`, `isax::questdb::*`): `recalcd similar --approx` against the
//! test's own brute force, and `recalcd index show --tree` against the jobs stored.

use std::collections::BTreeSet;

use recalcd::index::similarity::{Key, Metric, Query};

use crate::similar::{job_arg, same, stamp, Setup, LENGTH};
use crate::support::Harness;

on_both_stores!(
    approx_answers_and_the_tree_match_the_jobs,
    a_recalculated_job_moves_in_the_tree,
    bad_isax_input_is_refused_with_the_key_named,
);

/// Small words and leaves, so 22 jobs make a tree with splits.
const TREE: &str = "word_length = 4\ncardinality = 2\nleaf_capacity = 2\nsplit = \"balanced\"\n";

/// One line of the printout: depth, word, count, keys.
type Line = (usize, Vec<String>, usize, Vec<String>);

fn parse_tree(text: &str) -> Vec<Line> {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("root"), "{text}");
    let list = |s: &str| -> Vec<String> {
        let s = s.trim().trim_start_matches('[').trim_end_matches(']');
        if s.is_empty() {
            return Vec::new();
        }
        s.split(", ")
            .map(|x| x.trim_matches('\'').to_string())
            .collect()
    };
    lines
        .map(|l| {
            let dashes = l.find('>').unwrap_or_else(|| panic!("{l}"));
            assert_eq!(dashes % 3, 0, "{l}");
            assert!(l[..dashes].chars().all(|c| c == '-'), "{l}");
            let rest = &l[dashes + 1..];
            let (word, tail) = rest.split_once("]: ").unwrap_or_else(|| panic!("{l}"));
            let (count, keys) = tail.split_once(' ').unwrap_or_else(|| panic!("{l}"));
            (dashes / 3, list(word), count.parse().unwrap(), list(keys))
        })
        .collect()
}

/// Checks the counts of a printout: each internal node's count is its children's sum,
/// and returns the keys at the leaves.
fn check_counts(lines: &[Line]) -> Vec<String> {
    let mut keys = Vec::new();
    for (i, (depth, word, count, ks)) in lines.iter().enumerate() {
        let children: Vec<&Line> = lines[i + 1..]
            .iter()
            .take_while(|l| l.0 > *depth)
            .filter(|l| l.0 == depth + 1)
            .collect();
        if children.is_empty() {
            assert_eq!(*count, ks.len(), "leaf {word:?}");
            keys.extend(ks.iter().cloned());
        } else {
            assert!(ks.is_empty(), "internal {word:?} lists keys");
            assert_eq!(
                *count,
                children.iter().map(|c| c.2).sum::<usize>(),
                "{word:?}"
            );
            // A child's word refines its parent's on exactly one segment by one bit.
            for c in children {
                let longer: Vec<usize> = (0..word.len())
                    .filter(|&s| c.1[s].len() != word[s].len())
                    .collect();
                assert_eq!(longer.len(), 1, "{word:?} -> {:?}", c.1);
                let s = longer[0];
                assert_eq!(c.1[s].len(), word[s].len() + 1);
                assert!(c.1[s].starts_with(&word[s]));
            }
        }
    }
    keys
}

/// Checks that every job's leaf word is a prefix, segment by segment, of the word the
/// test computes from the job's stored rows (the stored words are current).
fn check_words(s: &Setup, lines: &[Line]) {
    let jobs = s.jobs();
    let by_name: std::collections::BTreeMap<String, &Vec<f64>> = jobs
        .iter()
        .map(|(k, v)| (format!("{}@{}", k.id, stamp(k.start)), &v.0))
        .collect();
    for (_, word, _, keys) in lines {
        for k in keys {
            let values = by_name.get(k).unwrap_or_else(|| panic!("{k} is not a job"));
            let full = recalcd::index::similarity::isax::word(values, word.len());
            for (sym, prefix) in full.iter().zip(word) {
                assert!(
                    format!("{sym:08b}").starts_with(prefix.as_str()),
                    "{k}: symbol {sym:08b} outside its leaf's {word:?}"
                );
            }
        }
    }
}

fn show(s: &Setup, args: &[&str]) -> String {
    let mut all = vec!["index", "show", "--channel", "tmp"];
    all.extend_from_slice(args);
    s.ok(&all)
}

fn approx_answers_and_the_tree_match_the_jobs(h: &Harness) {
    let s = Setup::with(h, TREE);
    s.load();
    let jobs = s.jobs();
    let (k12, a12) = job_arg(1, 2);
    let q12 = jobs[&k12].0.clone();
    let z = |k: Option<usize>, within: Option<f64>| Query {
        metric: Metric::ZNorm,
        k,
        within,
    };
    // Without the index: exact, by a scan, saying how to build it.
    let o = s.run(&[
        "similar",
        "--channel",
        "tmp",
        "--job",
        &a12,
        "--approx",
        "--format",
        "json",
    ]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("answered exactly") && err.contains("recalcd index build --kind similarity"),
        "{err}"
    );
    let (got, stats) = s.similar(&["--job", &a12, "--approx"]);
    assert!(
        stats["method"].as_str().unwrap().starts_with("scan"),
        "{stats}"
    );
    assert_eq!(stats["exact"], true, "{stats}");
    same(
        &got,
        &s.oracle(&q12, &z(Some(10), None), |k| *k != k12),
        "scan",
    );

    s.ok(&["index", "build", "--kind", "similarity", "--channel", "tmp"]);
    // An unlimited budget: the exact answer, proven.
    for (args, query) in [
        (vec!["--k", "10"], z(Some(10), None)),
        (vec!["--k", "3"], z(Some(3), None)),
        (vec!["--within", "4.5"], z(None, Some(4.5))),
        (vec!["--k", "2", "--within", "6"], z(Some(2), Some(6.0))),
    ] {
        let mut all = vec!["--job", a12.as_str(), "--approx", "--examine", "0"];
        all.extend_from_slice(&args);
        let (got, stats) = s.similar(&all);
        assert_eq!(stats["method"], "isax", "{stats}");
        assert_eq!(stats["exact"], true, "{stats}");
        assert_eq!(stats["total"], 22, "{stats}");
        same(
            &got,
            &s.oracle(&q12, &query, |k| *k != k12),
            &format!("{args:?}"),
        );
    }
    // A budget of one series: still k answers, and the statistics say what it cost.
    let (got, stats) = s.similar(&["--job", &a12, "--approx", "--examine", "1", "--k", "3"]);
    assert_eq!(got.len(), 3, "{stats}");
    let examined = stats["examined"].as_u64().unwrap();
    assert!((1..=22).contains(&examined), "{stats}");
    assert!(stats["leaves"].as_u64().unwrap() >= 1, "{stats}");
    // The stats line on stderr for people.
    let o = s.run(&["similar", "--channel", "tmp", "--job", &a12, "--approx"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("method isax") && err.contains("examined"),
        "{err}"
    );
    // Duplicates by value are two entries: a series equal to job 2 of device 1 finds it
    // and its scaled twin (job 7 of device 2), both at distance ~0.
    let file = s.dir.join("q12.csv");
    let text: Vec<String> = q12.iter().map(f64::to_string).collect();
    std::fs::write(&file, text.join("\n")).unwrap();
    let (got, _) = s.similar(&["--series", file.to_str().unwrap(), "--approx", "--k", "2"]);
    let found: BTreeSet<(i32, String)> = got.iter().map(|m| (m.0, m.1.clone())).collect();
    let want: BTreeSet<(i32, String)> = [(1, stamp(k12.start)), (2, stamp(job_arg(2, 7).0.start))]
        .into_iter()
        .collect();
    assert_eq!(found, want, "{got:?}");
    assert!(got.iter().all(|m| m.2 < 1e-9), "{got:?}");

    // The tree: every indexed job once at a leaf, counts adding up.
    let text = show(&s, &["--tree"]);
    eprintln!("{text}");
    let lines = parse_tree(&text);
    let keys = check_counts(&lines);
    check_words(&s, &lines);
    let want: BTreeSet<String> = jobs
        .keys()
        .map(|k: &Key| format!("{}@{}", k.id, stamp(k.start)))
        .collect();
    assert_eq!(keys.len(), 22, "{text}");
    assert_eq!(
        keys.iter().cloned().collect::<BTreeSet<_>>(),
        want,
        "{text}"
    );
    let top: usize = lines.iter().filter(|l| l.0 == 1).map(|l| l.2).sum();
    assert_eq!(top, 22, "{text}");
    assert!(
        lines.iter().any(|l| l.0 >= 2),
        "no split with leaf capacity 2: {text}"
    );
    assert!(lines.iter().all(|l| l.1.len() == 4), "{text}");
    // Down to depth 1 only.
    let shallow = parse_tree(&show(&s, &["--tree", "--max-depth", "1"]));
    assert!(shallow.iter().all(|l| l.0 == 1));
    assert_eq!(shallow.iter().map(|l| l.2).sum::<usize>(), 22);
    // JSON for programs.
    let v: serde_json::Value =
        serde_json::from_str(&show(&s, &["--tree", "--format", "json"])).unwrap();
    assert_eq!(v["count"], 22, "{v}");
    assert_eq!(v["word_length"], 4, "{v}");
    assert_eq!(
        v["children"].as_array().unwrap().len(),
        shallow.len(),
        "{v}"
    );
    // Without --tree: the catalogue record with the iSAX parameters.
    let record = show(&s, &[]);
    assert!(
        record.contains("word_length=4 cardinality=2 leaf_capacity=2 split=balanced"),
        "{record}"
    );
    // An index recorded before iSAX words were stored (its parameter text has none, as
    // an older recalcd wrote it): `--approx` answers exactly through the DFT index and
    // says to rebuild; the tree cannot be shown.
    if h.is_postgres() {
        h.exec(&format!(
            "UPDATE {} SET params = 'length={LENGTH} coefficients=4' WHERE kind = 'similarity'",
            h.config.tables.index
        ));
        let (got, stats) = s.similar(&["--job", &a12, "--approx"]);
        let method = stats["method"].as_str().unwrap();
        assert!(
            method.starts_with("index (") && method.contains("without iSAX words"),
            "{stats}"
        );
        assert!(
            method.contains("recalcd index rebuild --kind similarity"),
            "{stats}"
        );
        assert_eq!(stats["exact"], true, "{stats}");
        same(
            &got,
            &s.oracle(&q12, &z(Some(10), None), |k| *k != k12),
            "old",
        );
        let o = s.run(&["index", "show", "--channel", "tmp", "--tree"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("without iSAX words"), "{err}");
        let list = s.ok(&["index", "list"]);
        assert!(list.contains("built with other parameters"), "{list}");
        s.ok(&[
            "index",
            "rebuild",
            "--kind",
            "similarity",
            "--channel",
            "tmp",
        ]);
    }
    // Declared with other iSAX parameters: `index list` says it was built otherwise.
    let other = Setup::with(h, "word_length = 8\n");
    let list = other.ok(&["index", "list"]);
    assert!(list.contains("built with other parameters"), "{list}");
}

fn a_recalculated_job_moves_in_the_tree(h: &Harness) {
    let s = Setup::with(h, TREE);
    s.load();
    s.ok(&["index", "build", "--kind", "similarity", "--channel", "tmp"]);
    // Job 4 of device 1 becomes the negation of job 2 of device 1.
    let jobs = s.jobs();
    let (k14, a14) = job_arg(1, 4);
    let (k12, _) = job_arg(1, 2);
    let rows = h.query(&format!(
        "SELECT datetime FROM {{data}} WHERE id = 1 AND data_time = '{}' ORDER BY datetime",
        recalcd::index::datetime(k14.start).format("%Y-%m-%d %H:%M:%S")
    ));
    let target = &jobs[&k12].0;
    for (i, r) in rows.iter().enumerate() {
        let t = r[0].as_deref().unwrap().replace('T', " ");
        let v = -target[i * (LENGTH - 1) / (rows.len() - 1).max(1)];
        let c = format!("tmp={v};x={i};");
        if h.is_postgres() {
            h.exec(&format!(
                "UPDATE {{data}} SET conjoined = '{c}', recalc = 1 WHERE id = 1 AND datetime = '{t}'"
            ));
        } else {
            h.exec(&format!(
                "INSERT INTO {{data}} (datetime, data_time, id, recalc, conjoined) VALUES ('{t}', '{}', 1, 1, '{c}')",
                recalcd::index::datetime(k14.start).format("%Y-%m-%d %H:%M:%S")
            ));
        }
    }
    s.ok(&["once"]);
    let jobs = s.jobs();
    let q = jobs[&k14].0.clone();
    let query = Query {
        metric: Metric::ZNorm,
        k: Some(5),
        within: None,
    };
    let (got, stats) = s.similar(&["--job", &a14, "--approx", "--examine", "0", "--k", "5"]);
    assert_eq!(stats["method"], "isax", "{stats}");
    assert_eq!(stats["exact"], true, "{stats}");
    same(
        &got,
        &s.oracle(&q, &query, |k| *k != k14),
        "after the recalculation",
    );
    // The tree holds the job once, with its new word; nothing is stale.
    let text = show(&s, &["--tree"]);
    let lines = parse_tree(&text);
    let keys = check_counts(&lines);
    // The recalculated job's word is its new rows' (the write-back rewrote it).
    check_words(&s, &lines);
    let name = format!("1@{}", stamp(k14.start));
    assert_eq!(keys.iter().filter(|k| **k == name).count(), 1, "{text}");
    assert_eq!(keys.len(), 22, "{text}");
    let v: serde_json::Value =
        serde_json::from_str(&show(&s, &["--tree", "--format", "json"])).unwrap();
    assert_eq!(v["stale"], 0, "{v}");
}

fn bad_isax_input_is_refused_with_the_key_named(h: &Harness) {
    for (extra, key) in [
        ("word_length = 5\n", "index.similarity.word_length"),
        ("cardinality = 3\n", "index.similarity.cardinality"),
        ("cardinality = 512\n", "index.similarity.cardinality"),
        ("leaf_capacity = 0\n", "index.similarity.leaf_capacity"),
        ("split = \"even\"\n", "index.similarity.split"),
    ] {
        let s = Setup::with(h, extra);
        let o = s.run(&["index", "list"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{extra}");
        assert!(err.contains(key), "{extra}: {err}");
    }
    let s = Setup::new(h);
    s.load();
    let a12 = job_arg(1, 2).1;
    for (args, says) in [
        (
            vec![
                "similar",
                "--channel",
                "tmp",
                "--job",
                &a12,
                "--approx",
                "--metric",
                "euclid",
            ],
            "z-normalised",
        ),
        (
            vec![
                "similar",
                "--channel",
                "tmp",
                "--job",
                &a12,
                "--examine",
                "5",
            ],
            "--approx",
        ),
        (
            vec!["index", "show", "--channel", "tmp", "--tree"],
            "recalcd index build --kind similarity --channel tmp",
        ),
        (
            vec![
                "index",
                "show",
                "--kind",
                "feature",
                "--channel",
                "tmp",
                "--tree",
            ],
            "only a similarity index has a tree",
        ),
        (
            vec!["index", "show", "--channel", "tmp", "--max-depth", "2"],
            "--tree",
        ),
    ] {
        let o = s.run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
