//! The real `recalcd` binary against a real PostgreSQL: `migrate`, `status`, and the
//! one-line errors for bad input (exit code 2 for configuration, 1 for the rest).
//! `migrate` and `status` run on both stores (`cli_store::postgres::*`,
//! `cli_store::questdb::*`).

use std::process::{Command, Output};

use recalcd::config::Dialect;

use crate::support::{Harness, TestDb};

on_both_stores!(migrate_twice_then_status);

fn recalcd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_recalcd"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("RECALCD_CONFIG")
        .env("RECALCD__LOG__LEVEL", "warn")
        .output()
        .expect("run recalcd")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exactly one line, starting with `error:`, and no panic.
fn assert_one_line_error(o: &Output) {
    let err = stderr(o);
    assert!(!o.status.success());
    assert_eq!(err.lines().count(), 1, "one line expected, got: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

fn migrate_twice_then_status(h: &Harness) {
    let recalcd = |args: &[&str]| {
        h.command()
            .args(args)
            .args(["--database-url", h.url()])
            .env_remove("DATABASE_URL")
            .env("RECALCD__LOG__LEVEL", "warn")
            .output()
            .expect("run recalcd")
    };
    let dialect = if h.is_postgres() {
        Dialect::Postgres
    } else {
        Dialect::QuestDb
    };
    let latest = recalcd::store::migrate::latest_version(dialect);
    let first = recalcd(&["migrate"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stdout(&first).contains("applied 0001_schema"),
        "{}",
        stdout(&first)
    );
    let second = recalcd(&["migrate"]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        stdout(&second).contains(&format!(
            "schema is up to date (migration {latest}, {dialect})"
        )),
        "{}",
        stdout(&second)
    );
    h.exec(
        "INSERT INTO {data} (datetime, data_time, id, recalc, conjoined)
              VALUES ('2024-03-01 08:00', '2024-03-01 08:00', 7, 1, 'a=1;'),
                     ('2024-03-01 08:01', '2024-03-01 08:00', 7, 1, 'a=2;');
         INSERT INTO {equations} (\"type\", id, name, eq) VALUES (1, 0, 'b', '+ $a 1');
         INSERT INTO {errors} (at, level, id, datetime, equation, reason)
              VALUES ('2024-03-02 00:00', 'data', 7, '2024-03-01 08:00', 'b', 'division by zero');",
    );
    let status = recalcd(&["status"]);
    assert!(status.status.success(), "{}", stderr(&status));
    let out = stdout(&status);
    assert!(
        out.contains(&format!("dialect: {dialect} (schema migration {latest})")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("data") && l.contains("2 flagged, oldest 2024-03-01 08:00:00")),
        "{out}"
    );
    assert!(out.contains("equations: 1"), "{out}");
    assert!(out.contains("constants: 0"), "{out}");
    assert!(
        out.contains("data id=7 2024-03-01 08:00:00 b: division by zero"),
        "{out}"
    );
}

#[test]
fn missing_tables_say_run_migrate() {
    let db = TestDb::create_blocking();
    let o = recalcd(&["status", "--database-url", &db.url]);
    assert_one_line_error(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("run `recalcd migrate`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_differing_column_is_named() {
    let db = TestDb::create_blocking();
    assert!(recalcd(&["migrate", "--database-url", &db.url])
        .status
        .success());
    db.execute_blocking("ALTER TABLE day ALTER COLUMN recalc TYPE bigint");
    let o = recalcd(&["status", "--database-url", &db.url]);
    assert_one_line_error(&o);
    let err = stderr(&o);
    assert!(
        err.contains("table `day`: column `recalc` has type `bigint`"),
        "{err}"
    );
}

#[test]
fn unreachable_database_is_one_line_without_password() {
    let o = recalcd(&[
        "status",
        "--database-url",
        "postgres://postgres:s3cret-pw@127.0.0.1:1/nowhere",
    ]);
    assert_one_line_error(&o);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("cannot connect to postgres://postgres:***@127.0.0.1:1/nowhere"),
        "{err}"
    );
    assert!(!err.contains("s3cret-pw"), "{err}");
}

#[test]
fn bad_configuration_exits_2_naming_the_key() {
    let dir = std::env::temp_dir().join(crate::support::unique("recalcd-cli-"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("recalcd.toml");
    std::fs::write(&path, "[poll]\nbatch_sise = 10\n").unwrap();
    let o = recalcd(&["status", "--config", path.to_str().unwrap()]);
    assert_one_line_error(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("batch_sise"), "{}", stderr(&o));

    std::fs::write(&path, "[database]\nconnect_timeout = \"soon\"\n").unwrap();
    let o = recalcd(&["migrate", "--config", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("database.connect_timeout"),
        "{}",
        stderr(&o)
    );

    let o = Command::new(env!("CARGO_BIN_EXE_recalcd"))
        .args([
            "status",
            "--database-url",
            "postgres://u:pw-in-env@127.0.0.1:1/x",
        ])
        .env("RECALCD__DATABASE__DIALECT", "mysql")
        .output()
        .unwrap();
    assert_one_line_error(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("database.dialect"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("pw-in-env"));

    let o = recalcd(&["status", "--dialect", "mysql"]);
    assert_eq!(o.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn help_explains_the_commands() {
    let o = recalcd(&["--help"]);
    assert!(o.status.success());
    let out = stdout(&o);
    for word in [
        "migrate",
        "status",
        "--database-url",
        "--config",
        "--dialect",
    ] {
        assert!(out.contains(word), "{word} missing from --help:\n{out}");
    }
    let o = recalcd(&["status", "--help"]);
    assert!(stdout(&o).contains("backlog"));
}

#[test]
fn table_names_and_log_format_come_from_the_environment() {
    let db = TestDb::create_blocking();
    let o = Command::new(env!("CARGO_BIN_EXE_recalcd"))
        .args(["migrate", "--database-url", &db.url])
        .env("RECALCD__TABLES__DATA", "samples")
        .env("RECALCD__LOG__FORMAT", "json")
        .env("RECALCD__LOG__LEVEL", "info")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let logged = stderr(&o);
    let line = logged
        .lines()
        .find(|l| l.contains("migration applied"))
        .unwrap_or_else(|| panic!("no migration log line in: {logged}"));
    let json: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
    assert_eq!(json["fields"]["version"], 1);
    let o = Command::new(env!("CARGO_BIN_EXE_recalcd"))
        .args(["status", "--database-url", &db.url])
        .env("RECALCD__TABLES__DATA", "samples")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("data samples"), "{}", stdout(&o));
    // Without the override, `data` does not exist in this database.
    let o = recalcd(&["status", "--database-url", &db.url]);
    assert!(
        stderr(&o).contains("table `data` does not exist"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_wrong_password_is_one_line_without_the_password() {
    let server = recalcd::demo::TempServer::start_with_password("right-secret")
        .expect("the machine has PostgreSQL installed");
    let port = server
        .url()
        .rsplit(':')
        .next()
        .and_then(|rest| rest.split('/').next())
        .map(str::to_owned)
        .expect("a port in the URL");
    let url = |pw: &str| format!("postgres://postgres:{pw}@127.0.0.1:{port}/postgres");
    let wrong = recalcd(&["migrate", "--database-url", &url("wrong-secret")]);
    assert_eq!(wrong.status.code(), Some(1), "{}", stderr(&wrong));
    let err = stderr(&wrong);
    assert_eq!(err.lines().count(), 1, "one line expected, got: {err}");
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(
        !err.contains("wrong-secret") && !err.contains("right-secret"),
        "{err}"
    );
    assert!(err.contains("postgres:***@127.0.0.1"), "{err}");
    let right = recalcd(&["migrate", "--database-url", &url("right-secret")]);
    assert!(right.status.success(), "{}", stderr(&right));
    assert!(!stdout(&right).contains("right-secret"));
}
