//! The feature index's storage, maintenance and `recalcd index` commands through the
//! real binary, on both stores (`index_store::postgres::*`, `index_store::questdb::*`).
//! The index lives in the data store; in a second PostgreSQL database in
//! `index_in_another_postgres_database`, and in PostgreSQL with the data in QuestDB in
//! `data_in_questdb_index_in_postgres`.
//!
//! Every comparison is with `index::feature::build` over the points the test reads
//! from the stored rows itself (its own small `conjoined` reader), not with what
//! recalcd read.

use std::path::PathBuf;
use std::process::Output;

use recalcd::config::index::{RawFeatureIndex, RawIndex};
use recalcd::config::Config;
use recalcd::index::feature::{build, Bucket, Levels};
use recalcd::index::{Micros, Point};
use recalcd::store::index::IndexStore;

use crate::support::{unique, Harness, TestDb};

on_both_stores!(
    build_stores_the_buckets_of_the_stored_rows,
    recomputed_rows_update_the_buckets_as_a_fresh_build,
    marks_survive_an_index_database_outage_and_are_recomputed_at_next_start,
    a_round_cut_short_between_levels_is_repaired_by_the_next,
    an_index_built_before_digests_gains_them,
    unchanged_hours_are_found_by_their_digests,
    list_and_drop,
    bad_index_input_is_a_usage_error,
    the_read_api_of_the_search,
);

const LEVELS: [&str; 4] = ["1d", "1h", "10m", "1m"];

/// A test's store, its index database (when not the data store) and config file.
struct Setup<'a> {
    h: &'a Harness,
    _index_db: Option<TestDb>,
    index_url: Option<String>,
    path: PathBuf,
}

impl Setup<'_> {
    /// Declares `tmp` (raw, every device) and `dbl` (computed, devices 5 and 7); `extra`
    /// is appended to the file.
    fn new<'h>(h: &'h Harness, separate: bool, extra: &str) -> Setup<'h> {
        let index_db = separate.then(TestDb::create_blocking);
        let index_url = index_db.as_ref().map(|d| d.url.clone());
        let dir = std::env::temp_dir().join(unique("recalcd-index-"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("recalcd.toml");
        let s = Setup {
            h,
            _index_db: index_db,
            index_url,
            path,
        };
        s.write_config(&LEVELS, extra);
        s
    }

    fn write_config(&self, tmp_levels: &[&str], extra: &str) {
        let mut text = String::from("[log]\nlevel = \"warn\"\n[index]\n");
        if let Some(u) = &self.index_url {
            text.push_str(&format!("database_url = \"{u}\"\n"));
        }
        let quoted: Vec<String> = tmp_levels.iter().map(|l| format!("\"{l}\"")).collect();
        text.push_str(&format!(
            "[[index.feature]]\nchannel = \"tmp\"\nlevels = [{}]\n",
            quoted.join(", ")
        ));
        text.push_str(
            "[[index.feature]]\nchannel = \"DBL\"\nlevels = [\"1d\", \"1h\", \"10m\", \"1m\"]\ndevices = [5, 7]\n",
        );
        text.push_str(extra);
        std::fs::write(&self.path, text).unwrap();
    }

    /// The configuration the binary reads (for the library calls of the test).
    fn config(&self) -> Config {
        let mut c = self.h.config.clone();
        c.index = RawIndex {
            database_url: self.index_url.clone(),
            feature: vec![
                RawFeatureIndex {
                    channel: "tmp".into(),
                    levels: LEVELS.iter().map(|s| s.to_string()).collect(),
                    unit: None,
                    devices: None,
                },
                RawFeatureIndex {
                    channel: "dbl".into(),
                    levels: LEVELS.iter().map(|s| s.to_string()).collect(),
                    unit: None,
                    devices: Some(vec![5, 7]),
                },
            ],
            ..RawIndex::default()
        }
        .validate()
        .unwrap();
        c
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.h
            .command()
            .args(args)
            .arg("--config")
            .arg(&self.path)
            .arg("--database-url")
            .arg(self.h.url())
            .envs(env.iter().copied())
            .output()
            .expect("run recalcd")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, &[]);
        assert!(
            out.status.success(),
            "recalcd {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Rows of devices 5, 7 and 9 over two days at irregular times: `x` always, `tmp`
    /// a number, a string (`hot`) or absent; `dbl = x * 2` computed by `once`.
    fn load(&self) {
        self.ok(&["migrate"]);
        let mut values = Vec::new();
        for id in [5, 7, 9] {
            for k in 0..700i64 {
                let t = chrono::NaiveDate::from_ymd_opt(2024, 3, 1)
                    .unwrap()
                    .and_hms_opt(0, 0, 0)
                    .unwrap()
                    + chrono::Duration::seconds(k * 251 + i64::from(id) * 7);
                let x = ((k * 37 + i64::from(id)) % 50) as f64 / 4.0;
                let tmp = match k % 13 {
                    0 => "tmp=hot;".to_string(),
                    5 => String::new(),
                    _ => format!("tmp={};", (k % 41) as f64 - 10.5),
                };
                let at = t.format("%Y-%m-%d %H:%M:%S");
                values.push(format!("('{at}', '{at}', {id}, 1, 'x={x};{tmp}')"));
            }
        }
        self.h.exec(&format!(
            r#"INSERT INTO {{equations}} ("type", id, name, eq) VALUES (1, 0, 'dbl', '* $x 2');
               INSERT INTO {{data}} (datetime, data_time, id, recalc, conjoined) VALUES {};"#,
            values.join(",\n")
        ));
        self.ok(&["once"]);
    }

    /// The points of `channel` of device `id`, read by the test from the stored rows.
    fn points(&self, channel: &str, id: i32) -> Vec<Point> {
        let rows = self.h.query(&format!(
            "SELECT datetime, conjoined FROM {{data}} WHERE id = {id} ORDER BY datetime"
        ));
        let mut out = Vec::new();
        for r in rows {
            let t = parse_time(r[0].as_deref().unwrap());
            let text = r[1].clone().unwrap_or_default();
            let last = text
                .split(';')
                .filter_map(|e| e.split_once('='))
                .rfind(|(n, _)| n.trim().eq_ignore_ascii_case(channel));
            if let Some((_, v)) = last {
                out.push(Point {
                    t,
                    v: v.trim().parse::<f64>().ok().filter(|v| v.is_finite()),
                });
            }
        }
        out
    }

    /// The stored buckets of every level of device `id`, as `build` lists them.
    fn stored(&self, channel: &str, id: i32) -> Vec<Vec<Bucket>> {
        let config = self.config();
        let channel = channel.to_string();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let index = IndexStore::connect(&config).await.expect("index store");
                    let built = index
                        .built(&channel)
                        .await
                        .expect("catalogue")
                        .expect("built");
                    let mut out = Vec::new();
                    for level in 0..LEVELS.len() {
                        out.push(
                            index
                                .load_buckets(&built, id, level, &[recalcd::store::index::ALL_TIME])
                                .await
                                .expect("buckets"),
                        );
                    }
                    out
                })
        })
        .join()
        .unwrap()
    }

    /// Asserts that the stored buckets of `channel` and device `id` are those of its
    /// stored rows.
    fn assert_exact(&self, channel: &str, id: i32) {
        let levels = levels();
        let want = build(&levels, &self.points(channel, id));
        let got = self.stored(channel, id);
        assert_eq!(got.len(), want.len());
        for (level, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g.len(),
                w.len(),
                "{channel} device {id} level {level}: bucket count"
            );
            for (a, b) in g.iter().zip(w) {
                assert_eq!((a.level, a.start), (b.level, b.start));
                let (fa, fb) = (a.features, b.features);
                assert_eq!((fa.count, fa.other), (fb.count, fb.other), "at {}", b.start);
                assert_eq!((fa.min, fa.max), (fb.min, fb.max), "at {}", b.start);
                assert_eq!((fa.first, fa.last), (fb.first, fb.last), "at {}", b.start);
                let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * (1.0 + y.abs());
                assert!(close(fa.sum, fb.sum) && close(fa.sum_sq, fb.sum_sq));
                assert_eq!(fa.digest, fb.digest, "digest at {}", b.start);
            }
        }
        assert!(
            want[3].len() > 100,
            "the data fill many finest buckets ({})",
            want[3].len()
        );
    }

    fn dirty(&self) -> i64 {
        let pending = if self.h.is_postgres() {
            ""
        } else {
            " WHERE pending"
        };
        self.h.count(&format!(
            "SELECT count(*) FROM {}{pending}",
            self.h.config.tables.index_dirty
        ))
    }

    /// Makes `dbl` triple `$x` instead of doubling it, reflags the days `from` to `to`
    /// and recalculates them with `once`, which clears every mark.
    fn triple_dbl(&self, from: &str, to: &str) {
        self.h
            .exec("UPDATE {equations} SET eq = '* $x 3' WHERE name = 'dbl'");
        self.ok(&["reflag", "--from", from, "--to", to]);
        self.ok(&["once"]);
        assert_eq!(self.dirty(), 0, "every mark was cleared");
    }
}

impl Drop for Setup<'_> {
    fn drop(&mut self) {
        // QuestDB has one database: the bucket tables go with the test's prefix.
        if !self.h.is_postgres() && self.index_url.is_none() {
            for channel in ["tmp", "dbl"] {
                let t = recalcd::store::index::bucket_table(&self.h.config.tables, channel);
                self.h.exec(&format!(r#"DROP TABLE IF EXISTS "{t}""#));
            }
        }
    }
}

fn levels() -> Levels {
    let s = recalcd::index::SECOND;
    Levels::new(vec![86_400 * s, 3_600 * s, 600 * s, 60 * s]).unwrap()
}

/// `2024-03-01 00:04:11` (PostgreSQL) or `2024-03-01T00:04:11.000000Z` (QuestDB).
fn parse_time(s: &str) -> Micros {
    let s = s.trim_end_matches('Z').replace('T', " ");
    let t = chrono::NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S%.f")
        .unwrap_or_else(|e| panic!("{s}: {e}"));
    recalcd::index::micros(t)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn build_stores_the_buckets_of_the_stored_rows(h: &Harness) {
    let s = Setup::new(h, false, "");
    s.load();
    let out = s.ok(&["index", "build", "--channel", "tmp"]);
    assert!(
        out.contains("built the feature index of `tmp` (1d/1h/10m/1m): 3 device(s)"),
        "{out}"
    );
    let out = s.ok(&["index", "build", "--channel", "dbl"]);
    assert!(out.contains("2 device(s)"), "{out}");
    for id in [5, 7, 9] {
        s.assert_exact("tmp", id);
    }
    s.assert_exact("dbl", 5);
    s.assert_exact("dbl", 7);
    // A rebuild of one day of one device changes nothing.
    s.ok(&[
        "index",
        "build",
        "--channel",
        "tmp",
        "--id",
        "7",
        "--from",
        "2024-03-02",
        "--to",
        "2024-03-02",
    ]);
    s.assert_exact("tmp", 7);
    // A row changed without a flag reaches the index through a rebuild of its range.
    h.exec("UPDATE {data} SET conjoined = 'x=1;tmp=999;' WHERE id = 9 AND datetime = '2024-03-01 00:01:03'");
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
    s.assert_exact("tmp", 9);
    assert_eq!(s.stored("tmp", 9)[0][0].features.max, 999.0);
}

fn recomputed_rows_update_the_buckets_as_a_fresh_build(h: &Harness) {
    let s = Setup::new(h, false, "");
    s.load();
    s.ok(&["index", "build", "--channel", "dbl"]);
    let before = s.stored("dbl", 5);
    s.triple_dbl("2024-03-02", "2024-03-02");
    // The catch-up reads the marked spans of all devices together: each one exact,
    // and none of a device the index does not cover.
    s.assert_exact("dbl", 5);
    s.assert_exact("dbl", 7);
    assert!(s.stored("dbl", 9).iter().all(Vec::is_empty));
    let after = s.stored("dbl", 5);
    assert_eq!(before[0][0], after[0][0], "March 1 untouched");
    assert_ne!(before[0][1], after[0][1], "March 2 recomputed");
}

fn marks_survive_an_index_database_outage_and_are_recomputed_at_next_start(h: &Harness) {
    let s = Setup::new(h, false, "");
    s.load();
    s.ok(&["index", "build", "--channel", "dbl"]);
    h.exec("UPDATE {equations} SET eq = '+ $x 1000' WHERE name = 'dbl'");
    s.ok(&["reflag", "--from", "2024-02-29", "--to", "2024-03-03"]);
    // The write-back happens; the index database is unreachable, so maintenance fails
    // and the marks stay.
    let down = [(
        "RECALCD__INDEX__DATABASE_URL",
        "postgres://postgres@127.0.0.1:1/nowhere",
    )];
    let out = s.run(&["once"], &down);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot bring the indexes up to date"),
        "{}",
        stderr(&out)
    );
    assert!(s.dirty() > 0, "the marks were kept");
    let list = s.ok(&["index", "list"]);
    let line = list.lines().find(|l| l.contains("DBL")).unwrap();
    assert!(line.contains(" buckets  "), "staleness shown: {list}");
    // The next start recomputes them.
    s.ok(&["once"]);
    assert_eq!(s.dirty(), 0);
    s.assert_exact("dbl", 5);
    s.assert_exact("dbl", 7);
    assert!(s.stored("dbl", 5)[0][0].features.min >= 1000.0);
}

/// A maintenance round that wrote a finest bucket and died before its parents and the
/// marked hour (written last): the mark stays, the finest bucket already equals its
/// rows, and the next round must still repair the parents (they are recomputed for
/// every marked bucket whose features or digest differ from the stored ones).
fn a_round_cut_short_between_levels_is_repaired_by_the_next(h: &Harness) {
    let s = Setup::new(h, false, "");
    s.load();
    s.ok(&["index", "build", "--channel", "tmp"]);
    let stored = s.stored("tmp", 7);
    // A finest bucket in the middle of the data, and its stale ancestors.
    let fine = stored[3][stored[3].len() / 2];
    let mut stale: Vec<(i32, Bucket)> = Vec::new();
    for (level, buckets) in stored.iter().enumerate().take(3) {
        let len = levels().length(level);
        let parent = levels().bucket_start(level, fine.start);
        let mut b = *buckets
            .iter()
            .find(|b| b.start == parent)
            .expect("the parent is stored");
        b.features.max = 1.0e6 + len as f64;
        b.features.count += 1;
        stale.push((7, b));
    }
    let config = s.config();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let mut index = IndexStore::connect(&config).await.expect("index store");
                let built = index.built("tmp").await.expect("catalogue").expect("built");
                index
                    .write_buckets(&built, &stale)
                    .await
                    .expect("stale parents written");
            })
    })
    .join()
    .unwrap();
    let start = chrono::DateTime::from_timestamp_micros(fine.start)
        .unwrap()
        .naive_utc()
        .format("%Y-%m-%dT%H:%M:%S");
    let dirty = &h.config.tables.index_dirty;
    if h.is_postgres() {
        h.exec(&format!(
            "INSERT INTO {dirty} (channel, id, start) VALUES ('tmp', 7, '{start}')"
        ));
    } else {
        h.exec(&format!(
            "INSERT INTO {dirty} (start, channel, id, pending, marked) VALUES ('{start}', 'tmp', 7, true, now())"
        ));
    }
    assert_eq!(s.dirty(), 1);
    assert_ne!(s.stored("tmp", 7)[0], stored[0], "the day bucket is stale");
    // `once` brings the indexes up to date at its start (nothing is flagged).
    s.ok(&["once"]);
    assert_eq!(s.dirty(), 0, "the mark was cleared");
    s.assert_exact("tmp", 7);
}

/// A bucket table of an older recalcd, without the `digest` column: the first
/// connection adds it, and the catch-up of a marked bucket compares its children and
/// writes every level with its digest.
fn an_index_built_before_digests_gains_them(h: &Harness) {
    let s = Setup::new(h, false, "");
    s.load();
    s.ok(&["index", "build", "--channel", "dbl"]);
    let table = recalcd::store::index::bucket_table(&h.config.tables, "dbl");
    h.exec(&format!(r#"ALTER TABLE "{table}" DROP COLUMN digest"#));
    s.triple_dbl("2024-02-29", "2024-03-03");
    s.assert_exact("dbl", 5);
    s.assert_exact("dbl", 7);
    // Reflagged again with nothing changed: each marked hour is found unchanged by its
    // digest, and every level stays as it is.
    let before = s.stored("dbl", 7);
    s.ok(&["reflag", "--from", "2024-03-01", "--to", "2024-03-01"]);
    s.ok(&["once"]);
    assert_eq!(s.dirty(), 0);
    assert_eq!(s.stored("dbl", 7), before);
}

/// A recalculation that leaves the indexed channels alone (`tmp` is raw, `dbl` comes
/// out the same): the catch-up finds every marked hour unchanged by its digest, reads
/// nothing below it and writes nothing; `recalcd once` logs how many. In one batch,
/// what the write-back wrote vouches for every hour without reading it back; in small
/// batches an hour split between two waits for the second (PostgreSQL's catch-up runs
/// between batches) or is read back, and the result is the same.
fn unchanged_hours_are_found_by_their_digests(h: &Harness) {
    let s = Setup::new(h, false, "");
    s.load();
    s.ok(&["index", "build", "--channel", "tmp"]);
    s.ok(&["index", "build", "--channel", "dbl"]);
    let before = (s.stored("tmp", 9), s.stored("dbl", 5));
    for batch in ["100000", "150"] {
        s.ok(&["reflag", "--from", "2024-03-01", "--to", "2024-03-02"]);
        let out = s.run(
            &["once"],
            &[
                ("RECALCD__LOG__LEVEL", "info"),
                ("RECALCD__POLL__BATCH_SIZE", batch),
            ],
        );
        let log = stderr(&out);
        assert!(out.status.success(), "{log}");
        // Summed over the catch-up's rounds (on PostgreSQL one a batch).
        let mut sum = std::collections::BTreeMap::<&str, usize>::new();
        for line in log
            .lines()
            .filter(|l| l.contains("indexes brought up to date"))
        {
            for name in ["marks", "buckets", "unchanged", "unread"] {
                let value = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or_else(|| panic!("no {name} in {line}"));
                *sum.entry(name).or_default() += value;
            }
        }
        let marks = sum.get("marks").copied().unwrap_or(0);
        assert!(marks > 40, "{log}");
        assert_eq!(sum.get("unchanged"), Some(&marks), "{log}");
        assert_eq!(sum.get("buckets"), Some(&0), "{log}");
        let unread = sum.get("unread").copied().unwrap_or(0);
        if batch == "100000" {
            assert_eq!(unread, marks, "one batch: {log}");
        } else {
            assert!(unread > 0 && unread <= marks, "{log}");
        }
        assert_eq!(s.dirty(), 0);
        assert_eq!((s.stored("tmp", 9), s.stored("dbl", 5)), before);
    }
}

fn list_and_drop(h: &Harness) {
    let s = Setup::new(
        h,
        false,
        "[[index.feature]]\nchannel = \"never\"\nlevels = [\"1h\"]\n",
    );
    s.load();
    s.ok(&["index", "build", "--channel", "TMP"]);
    let list = s.ok(&["index", "list"]);
    let line = |name: &str| {
        list.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("{name} in {list}"))
            .to_string()
    };
    let tmp = line("tmp");
    assert!(tmp.starts_with("feature"), "{tmp}");
    assert!(tmp.contains("1d/1h/10m/1m") && tmp.contains("all"), "{tmp}");
    assert!(
        tmp.contains("2024-03-01 00:00 .. 2024-03-04 00:00"),
        "{tmp}"
    );
    assert!(tmp.ends_with("built"), "{tmp}");
    // The strings `hot` of the three devices: k % 13 == 0 for k in 0..700.
    let hot = 3 * (0..700).filter(|k| k % 13 == 0).count();
    assert!(
        tmp.contains(&format!("  {hot}  ")),
        "{hot} not numbers: {tmp}"
    );
    if h.is_postgres() {
        assert!(tmp.contains(" kB") || tmp.contains(" MB"), "{tmp}");
    }
    assert!(line("DBL").ends_with("declared, not built"), "{list}");
    assert!(line("never").ends_with("declared, not built"), "{list}");
    // Declared with other levels now: list says so.
    s.write_config(&["1d", "1h"], "");
    let list = s.ok(&["index", "list"]);
    assert!(
        list.contains("built with other parameters (1d/1h/10m/1m)"),
        "{list}"
    );
    let out = s.ok(&["index", "drop", "--channel", "tmp"]);
    assert!(out.contains("dropped"), "{out}");
    let list = s.ok(&["index", "list"]);
    assert!(
        list.lines()
            .any(|l| l.contains("tmp") && l.ends_with("declared, not built")),
        "{list}"
    );
    let out = s.ok(&["index", "drop", "--channel", "tmp"]);
    assert!(out.contains("nothing to drop"), "{out}");
}

fn bad_index_input_is_a_usage_error(h: &Harness) {
    let s = Setup::new(h, false, "");
    s.ok(&["migrate"]);
    for (args, says) in [
        (
            vec!["index", "build", "--channel", "temp"],
            "--channel temp: no feature index is declared for it; declared: tmp, DBL",
        ),
        (
            vec!["index", "build", "--channel", "dbl", "--id", "9"],
            "--id 9: the index of `DBL` covers only devices 5,7",
        ),
        (
            vec![
                "index",
                "build",
                "--channel",
                "tmp",
                "--from",
                "2024-03-05",
                "--to",
                "2024-03-01",
            ],
            "--from 2024-03-05 is after --to 2024-03-01",
        ),
        (
            vec!["index", "build", "--channel", "tmp", "--from", "2024-03-05"],
            "--to",
        ),
        (
            vec!["index", "drop", "--channel", "temp"],
            "no feature index is declared or built for it; declared: tmp, DBL",
        ),
    ] {
        let out = s.run(&args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    // A bad declaration names the index and the level.
    s.write_config(&["1h", "7m"], "");
    let out = s.run(&["index", "list"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("index `tmp`: level `7m`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn data_in_questdb_index_in_postgres() {
    let Some(h) = Harness::questdb_blocking() else {
        eprintln!("skipped: QUESTDB_URL is not set");
        return;
    };
    index_in_another_database(&h);
}

#[test]
fn index_in_another_postgres_database() {
    index_in_another_database(&Harness::postgres_blocking());
}

fn index_in_another_database(h: &Harness) {
    let s = Setup::new(h, true, "");
    s.load();
    s.ok(&["index", "build", "--channel", "tmp"]);
    s.assert_exact("tmp", 5);
    // The catalogue and buckets are in the index database, not the data store.
    let index_db = s._index_db.as_ref().unwrap();
    let table = recalcd::store::index::bucket_table(&h.config.tables, "tmp");
    let n = index_db.query_blocking(&format!("SELECT count(*) FROM {table}"));
    assert_ne!(n[0][0].as_deref(), Some("0"));
    let in_data = if h.is_postgres() {
        "SELECT count(*) FROM information_schema.tables WHERE table_name = '{t}'"
    } else {
        "SELECT count() FROM tables() WHERE table_name = '{t}'"
    };
    assert_eq!(h.count(&in_data.replace("{t}", &table)), 0);
    // Maintenance writes there too.
    h.exec("UPDATE {equations} SET eq = '* $x 5' WHERE name = 'dbl'");
    s.ok(&["index", "build", "--channel", "dbl"]);
    s.ok(&["reflag", "--from", "2024-03-01", "--to", "2024-03-02"]);
    s.ok(&["once"]);
    assert_eq!(s.dirty(), 0);
    s.assert_exact("dbl", 7);
}

/// Runs `f` with the data store and the index database of `s`, on a runtime of its own.
fn with_stores<T: Send + 'static>(
    s: &Setup<'_>,
    f: impl FnOnce(
            recalcd::store::AnyStore,
            IndexStore,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>
        + Send
        + 'static,
) -> T {
    let config = s.config();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let data = recalcd::store::connect(&config).await.expect("data store");
                let index = IndexStore::connect(&config).await.expect("index store");
                f(data, index).await
            })
    })
    .join()
    .unwrap()
}

fn the_read_api_of_the_search(h: &Harness) {
    let s = Setup::new(h, false, "");
    s.load();
    s.ok(&["index", "build", "--channel", "tmp"]);
    let at = |d: u32, hh: u32, mm: u32| {
        recalcd::index::micros(
            chrono::NaiveDate::from_ymd_opt(2024, 3, d)
                .unwrap()
                .and_hms_opt(hh, mm, 0)
                .unwrap(),
        )
    };
    let minute = 60 * recalcd::index::SECOND;
    // Marks stand for hours (the mark level of 1d/1h/10m/1m), flagged rows for minutes.
    let lengths = (60 * minute, minute);
    let spans = vec![
        (at(1, 1, 0), at(1, 2, 0)),
        (at(1, 1, 30), at(1, 3, 0)),
        (at(2, 0, 0), at(2, 0, 10)),
    ];
    let want: Vec<Point> = s
        .points("tmp", 7)
        .into_iter()
        .filter(|p| {
            (at(1, 1, 0)..at(1, 3, 0)).contains(&p.t) || (at(2, 0, 0)..at(2, 0, 10)).contains(&p.t)
        })
        .collect();
    assert!(want.iter().any(|p| p.v.is_none()) && want.len() > 20);
    let range = (at(1, 0, 0), at(3, 0, 0));
    let (devices, points, trusted) = with_stores(&s, move |data, index| {
        Box::pin(async move {
            let built = index.built("TMP").await.unwrap().unwrap();
            (
                index.devices(&built).await.unwrap(),
                data.load_points("tmp", 7, &spans).await.unwrap(),
                data.untrusted("tmp", 7, lengths, range).await.unwrap(),
            )
        })
    });
    assert_eq!(devices, vec![5, 7, 9]);
    assert_eq!(points, want);
    assert_eq!(trusted, vec![], "nothing flagged or marked");

    // Rows still flagged are not trusted: their finest buckets.
    h.exec("UPDATE {data} SET recalc = 1 WHERE id = 7 AND datetime >= '2024-03-01 05:00' AND datetime < '2024-03-01 05:10'");
    let flagged: Vec<(Micros, Micros)> = s
        .points("x", 7)
        .iter()
        .filter(|p| (at(1, 5, 0)..at(1, 5, 10)).contains(&p.t))
        .map(|p| (p.t / minute * minute, p.t / minute * minute + minute))
        .collect();
    assert!(flagged.len() >= 2);
    let untrusted = with_stores(&s, move |data, _| {
        Box::pin(async move { data.untrusted("TMP", 7, lengths, range).await.unwrap() })
    });
    assert_eq!(untrusted, flagged);
    // Recomputed while the index database is down: no longer flagged, but marked (the
    // hour holding them).
    let down = [(
        "RECALCD__INDEX__DATABASE_URL",
        "postgres://postgres@127.0.0.1:1/nowhere",
    )];
    assert!(s.run(&["once"], &down).status.success());
    assert_eq!(h.count("SELECT count(*) FROM {data} WHERE recalc > 0"), 0);
    let untrusted = with_stores(&s, move |data, _| {
        Box::pin(async move { data.untrusted("tmp", 7, lengths, range).await.unwrap() })
    });
    assert_eq!(untrusted, vec![(at(1, 5, 0), at(1, 6, 0))]);
    // A range cutting a marked bucket cuts its span.
    let (a, b) = untrusted[0];
    let cut = with_stores(&s, move |data, _| {
        Box::pin(async move {
            data.untrusted("tmp", 7, lengths, (a + 1, b - 1))
                .await
                .unwrap()
        })
    });
    assert_eq!(cut, vec![(a + 1, b - 1)]);
    s.ok(&["once"]);
    let untrusted = with_stores(&s, move |data, _| {
        Box::pin(async move { data.untrusted("tmp", 7, lengths, range).await.unwrap() })
    });
    assert_eq!(untrusted, vec![]);
    s.assert_exact("tmp", 7);
}
