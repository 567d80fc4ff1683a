//! `recalcd equations export` and `recalcd equations import`, run as the real binary on
//! a real PostgreSQL.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::daemon::{eventually, query, recalcd, Daemon};
use crate::support::TestDb;

/// (exit code, stdout, stderr) of `recalcd ARGS --database-url URL`.
fn run(url: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_recalcd"))
        .args(args)
        .arg("--database-url")
        .arg(url)
        .env_remove("RECALCD_CONFIG")
        .env("RECALCD__LOG__LEVEL", "warn")
        .output()
        .expect("run recalcd");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A file in the temporary directory with a name no other test uses, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(content: &str) -> TempFile {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "recalcd-cli-equations-{}-{}.csv",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, content).expect("write the CSV file");
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temporary path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The equations table, ordered.
fn table(db: &TestDb) -> Vec<Vec<Option<String>>> {
    db.query_blocking(r#"SELECT "type", id, name, eq FROM equations ORDER BY 1, 2, 3"#)
}

fn revision(db: &TestDb) -> Vec<Vec<Option<String>>> {
    db.query_blocking("SELECT revision FROM recalcd_revision")
}

fn migrated() -> TestDb {
    let db = TestDb::create_blocking();
    recalcd(&db.url, &["migrate"]);
    db
}

/// Equations whose text needs CSV quoting: commas, double quotes, apostrophes, a line
/// break, spaces at the ends.
const TRICKY: &str = r#"
    INSERT INTO equations ("type", id, name, eq) VALUES
        (1, 0, 'hot', 'IF > $tmp #TMAX 1 0'),
        (2, 0, 'label', 'ADDS ''a, "b"'' ''it''''s'''),
        (2, 7, 'label', E'IF > $tmp 1\n  ''x'' ''y'''),
        (4, 0, 'TAVG', ' SNRM $tmp '),
        (5, 0, 'DAY', 'SSUM $TAVG');"#;

#[test]
fn export_then_import_gives_the_same_table() {
    let db = migrated();
    db.execute_blocking(TRICKY);
    let before = table(&db);
    let (code, csv, err) = run(&db.url, &["equations", "export"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("exported 5 equations"), "{err}");
    assert!(
        csv.starts_with("type,id,name,eq\n1,0,hot,IF > $tmp #TMAX 1 0\n"),
        "{csv}"
    );
    assert!(
        csv.contains("2,7,label,\"IF > $tmp 1\n  'x' 'y'\"\n"),
        "{csv}"
    );
    assert!(csv.contains("4,0,TAVG,\" SNRM $tmp \"\n"), "{csv}");
    let file = TempFile::new(&csv);

    // What `check --file` reads.
    let (code, out, err) = run(&db.url, &["check", "--file", file.path()]);
    assert_eq!((code, out.as_str()), (0, "5 equations OK\n"), "{err}");

    // Into an empty database, and back over the same table.
    let other = migrated();
    let (code, out, err) = run(&other.url, &["equations", "import", file.path()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("imported 5 equations"), "{out}");
    assert_eq!(table(&other), before);
    let revision_before = revision(&db);
    db.execute_blocking("UPDATE equations SET eq = '1' WHERE name = 'hot'");
    let (code, out, err) = run(&db.url, &["equations", "import", file.path()]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(table(&db), before);
    assert_ne!(
        revision(&db),
        revision_before,
        "the daemons' reload counter moved"
    );
    let (_, again, _) = run(&other.url, &["equations", "export"]);
    assert_eq!(again, csv);
}

#[test]
fn an_import_with_a_problem_changes_nothing_and_exits_2() {
    let db = migrated();
    db.execute_blocking(TRICKY);
    let before = (table(&db), revision(&db));
    let file = TempFile::new(
        "type,id,name,eq\n\
         1,0,a,+ $b 1\n\
         1,0,b,+ $a 1\n\
         1,0,,2\n\
         1,0,ok,1\n\
         1,0,OK,2\n\
         4,0,T,SNRM\n\
         x,0,y,1\n",
    );
    for args in [
        vec!["equations", "import", file.path()],
        vec!["equations", "import", "--merge", file.path()],
    ] {
        let (code, out, err) = run(&db.url, &args);
        assert_eq!(code, 2, "{out}{err}");
        let shown = file.path();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines,
            [
                format!("{shown}:2: equation (type 1, id 0, 'a'): reads its own result through a cycle (a → b → a); it is skipped"),
                format!("{shown}:3: equation (type 1, id 0, 'b'): reads its own result through a cycle (b → a → b); it is skipped"),
                format!("{shown}:4: equation (type 1, id 0, ''): the name is empty; the name is the output channel, written into conjoined as name=value;"),
                format!("{shown}:5: equation (type 1, id 0, 'ok'): writes the data channel 'ok', as does equation (type 1, id 0, 'OK') (names compare case-insensitively); both are skipped"),
                format!("{shown}:6: equation (type 1, id 0, 'OK'): writes the data channel 'OK', as does equation (type 1, id 0, 'ok') (names compare case-insensitively); both are skipped"),
                format!("{shown}:7: equation (type 4, id 0, 'T') column 5: SNRM expects 1 operand, the equation ends"),
                format!("{shown}:8: the type 'x' is not a whole number"),
                format!("7 problems in 7 equations of {shown}; nothing was imported"),
            ],
            "{args:?}"
        );
        assert_eq!((table(&db), revision(&db)), before, "{args:?}");
    }

    let (code, _, err) = run(
        &db.url,
        &["equations", "import", "/nonexistent/recalcd.csv"],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot read /nonexistent/recalcd.csv"),
        "{err}"
    );
    assert_eq!((table(&db), revision(&db)), before);
}

#[test]
fn merge_adds_or_replaces_by_key_and_keeps_the_rest() {
    let db = migrated();
    db.execute_blocking(TRICKY);
    let file = TempFile::new("1,0,HOT,IF > $tmp 30 1 0\n1,3,extra,* $tmp 2\n");
    let (code, out, err) = run(&db.url, &["equations", "import", "--merge", file.path()]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.trim(),
        format!(
            "merged 2 equations from {}: 1 added, 1 replaced, 6 stored now",
            file.path()
        )
    );
    let names: Vec<(String, String, String)> = table(&db)
        .into_iter()
        .map(|r| {
            let s = |i: usize| r[i].clone().unwrap_or_default();
            (s(0), s(1), s(2))
        })
        .collect();
    let expect = |t: &str, i: &str, n: &str| (t.to_string(), i.to_string(), n.to_string());
    assert_eq!(
        names,
        [
            expect("1", "0", "HOT"),
            expect("1", "3", "extra"),
            expect("2", "0", "label"),
            expect("2", "7", "label"),
            expect("4", "0", "TAVG"),
            expect("5", "0", "DAY"),
        ]
    );
    assert_eq!(
        db.query_blocking("SELECT eq FROM equations WHERE name = 'HOT'")[0][0].as_deref(),
        Some("IF > $tmp 30 1 0")
    );

    // A merge is validated with what it keeps: here a cycle through a stored equation.
    let before = table(&db);
    let file = TempFile::new("4,0,TAVG,+ $DAY 1\n4,0,DAY,1\n");
    let (code, out, _) = run(&db.url, &["equations", "import", "--merge", file.path()]);
    assert_eq!(
        code, 0,
        "a job DAY is another row's channel than the day's: {out}"
    );
    let file = TempFile::new("5,0,total,+ $DAY 1\n5,0,DAY,+ $TOTAL 1\n");
    let (code, out, _) = run(&db.url, &["equations", "import", "--merge", file.path()]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(":2: equation (type 5, id 0, 'DAY'): reads its own result through a cycle"),
        "{out}"
    );
    assert!(out.contains("nothing was imported"), "{out}");
    let after: Vec<_> = table(&db);
    assert_eq!(
        after.len(),
        before.len() + 1,
        "only the first merge changed it"
    );
}

#[test]
fn a_running_daemon_computes_with_the_imported_equations() {
    let db = migrated();
    db.execute_blocking(
        r#"INSERT INTO equations ("type", id, name, eq) VALUES (1, 0, 'y', '* $x 2');
           INSERT INTO data (datetime, data_time, id, recalc, conjoined)
                VALUES ('2024-03-01 08:00', '2024-03-01 08:00', 1, 1, 'x=5;');"#,
    );
    let daemon = Daemon::start(&db.url, &[]);
    let conjoined = |minute: &str| {
        query(
            &db.url,
            &format!(
                "SELECT conjoined FROM data WHERE recalc = 0 AND datetime = '2024-03-01 08:{minute}'"
            ),
        )
        .unwrap()
        .first()
        .and_then(|r| r[0].clone())
    };
    assert!(
        eventually(|| conjoined("00").is_some()),
        "log:\n{}",
        daemon.log()
    );
    assert_eq!(conjoined("00").as_deref(), Some("x=5;y=10;"));

    let file = TempFile::new("type,id,name,eq\n1,0,y,+ $x 1\n");
    let (code, out, err) = run(&db.url, &["equations", "import", file.path()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        eventually(|| daemon.logged("equations reloaded") == 1),
        "log:\n{}",
        daemon.log()
    );
    db.execute_blocking(
        "INSERT INTO data (datetime, data_time, id, recalc, conjoined)
              VALUES ('2024-03-01 08:01', '2024-03-01 08:01', 1, 1, 'x=5;')",
    );
    assert!(
        eventually(|| conjoined("01").is_some()),
        "log:\n{}",
        daemon.log()
    );
    assert_eq!(conjoined("01").as_deref(), Some("x=5;y=6;"));
    let (status, log) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "log:\n{log}");
}

#[test]
fn questdb_offers_merge_only() {
    let db = migrated();
    let file = TempFile::new("1,0,y,1\n");
    let (code, out, err) = run(
        &db.url,
        &["equations", "import", "--dialect", "questdb", file.path()],
    );
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(
        err.trim(),
        "error: `recalcd equations import` without --merge replaces the whole equations table \
         at once, which QuestDB cannot do (it has neither DELETE nor transactions across \
         statements); use --merge to add or replace equations by type, id and name"
    );
    assert!(table(&db).is_empty());
}
