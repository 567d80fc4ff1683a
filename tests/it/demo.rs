//! `recalcd demo` end to end: the real binary, with a throwaway server and with a
//! database of the test's own, on both stores (`demo::postgres::*`, `demo::questdb::*`).

use std::path::PathBuf;
use std::process::{Command, Output};

use recalcd::demo::{Dataset, Scale};

use crate::support::Harness;

on_both_stores!(demo_with_a_database_keeps_the_data_and_refuses_a_database_with_data);

/// The small scale the tests run at (the debug binary).
const SCALE: Scale = Scale {
    devices: 2,
    days: 3,
    jobs_per_day: 2,
    rows_per_job: None,
};

/// `recalcd demo` at [`SCALE`] with no database in the environment, plus `args`.
fn demo(args: &[&str]) -> Output {
    demo_with(args, &[])
}

/// [`demo`] with the environment `env` (e.g. [`Harness::table_env`]).
fn demo_with(args: &[&str], env: &[(String, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_recalcd"));
    cmd.args([
        "demo",
        "--devices",
        "2",
        "--days",
        "3",
        "--jobs-per-day",
        "2",
    ])
    .args(args)
    .env_remove("DATABASE_URL")
    .env_remove("RECALCD_CONFIG");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("RECALCD__") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd.output().expect("run recalcd demo")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The summary table's header and one line per device.
fn assert_summary_table(stdout: &str) {
    let header = stdout
        .lines()
        .find(|l| l.starts_with("id  days"))
        .unwrap_or_else(|| panic!("no summary table in:\n{stdout}"));
    for column in ["km", "litres", "l_100km", "util"] {
        assert!(header.contains(column), "{header}");
    }
    let rows: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("id  days"))
        .skip(2)
        .take_while(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(rows[0].trim_start().starts_with("1 "), "{}", rows[0]);
    assert!(
        !rows[0].contains(" - "),
        "a summary could not be computed: {}",
        rows[0]
    );
}

#[test]
fn demo_without_a_database_runs_on_a_throwaway_server_and_removes_it() {
    let out = demo(&[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let rows = Dataset::new(SCALE, 1).row_count();
    // 2 devices × 3 days × 2 jobs, and a day per device and date.
    assert!(
        stdout.contains(&format!("wrote {rows} data rows, 12 job rows, 6 day rows")),
        "{stdout}"
    );
    assert!(
        stdout.contains("0 rows with failures, 0 error records"),
        "{stdout}"
    );
    assert_summary_table(&stdout);
    let dir = stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("recalcd demo: a throwaway PostgreSQL in ")
                .and_then(|rest| rest.split(" on ").next())
        })
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("the server's directory is not printed:\n{stdout}"));
    assert!(dir.starts_with(std::env::temp_dir()), "{}", dir.display());
    assert!(!dir.exists(), "{} was not removed", dir.display());
    assert!(stdout.contains("are removed"), "{stdout}");
}

fn demo_with_a_database_keeps_the_data_and_refuses_a_database_with_data(h: &Harness) {
    let out = demo_with(&["--database-url", h.url()], &h.table_env());
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("the demo data stays there"), "{stdout}");
    assert!(
        stdout.contains("summary --from 2024-04-01 --to 2024-04-03"),
        "{stdout}"
    );
    assert_summary_table(&stdout);

    let set = Dataset::new(SCALE, 1);
    let count = |sql: &str| h.count(sql);
    assert_eq!(count("SELECT count(*) FROM {data}"), set.row_count() as i64);
    assert_eq!(count("SELECT count(*) FROM {data} WHERE recalc <> 0"), 0);
    assert_eq!(count("SELECT count(*) FROM {job}"), set.scale.jobs() as i64);
    assert_eq!(count("SELECT count(*) FROM {job} WHERE recalc <> 0"), 0);
    // Each device's jobs start on each of the 3 days, after its day break.
    assert_eq!(count("SELECT count(*) FROM {day}"), 6);
    assert_eq!(count("SELECT count(*) FROM {day} WHERE recalc <> 0"), 0);
    assert_eq!(count("SELECT count(*) FROM {errors}"), 0);
    assert_eq!(
        count("SELECT count(*) FROM {equations}"),
        set.equations().len() as i64
    );
    // Values of every level were written: a data row reads its job's mean back.
    assert_eq!(
        count("SELECT count(*) FROM {data} WHERE conjoined NOT LIKE '%tdev=%'"),
        0
    );
    assert_eq!(
        count("SELECT count(*) FROM {job} WHERE conjoined NOT LIKE '%TSPIKE=%'"),
        0
    );
    assert_eq!(
        count("SELECT count(*) FROM {day} WHERE conjoined NOT LIKE '%DTMAX=%'"),
        0
    );

    let again = demo_with(&["--database-url", h.url()], &h.table_env());
    assert_eq!(again.status.code(), Some(2), "{}", text(&again.stdout));
    let err = text(&again.stderr);
    assert!(err.contains("already holds data"), "{err}");
    assert_eq!(count("SELECT count(*) FROM {data}"), set.row_count() as i64);
}

#[test]
fn demo_without_postgresql_programs_says_what_to_install() {
    let missing = std::env::temp_dir().join("recalcd-no-such-pg-bin");
    let out = Command::new(env!("CARGO_BIN_EXE_recalcd"))
        .args(["demo", "--devices", "1", "--days", "1"])
        .env_remove("DATABASE_URL")
        .env_remove("RECALCD_CONFIG")
        .env_remove("RECALCD__DATABASE__URL")
        .env("RECALCD_PG_BIN", &missing)
        .output()
        .expect("run recalcd demo");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("no PostgreSQL server programs") && err.contains("apt-get install postgresql"),
        "{err}"
    );
    assert!(err.contains("--database-url"), "{err}");
}

#[test]
fn every_demo_equation_passes_recalcd_check() {
    let set = Dataset::new(SCALE, 1);
    let mut csv = String::from("type,id,name,eq\n");
    for e in set.equations() {
        csv.push_str(&format!("{},{},{},{}\n", e.kind, e.id, e.name, e.eq));
    }
    let path = std::env::temp_dir().join(format!("recalcd-demo-eqs-{}.csv", std::process::id()));
    std::fs::write(&path, csv).expect("write the CSV");
    let out = Command::new(env!("CARGO_BIN_EXE_recalcd"))
        .args(["check", "--file"])
        .arg(&path)
        .output()
        .expect("run recalcd check");
    let _ = std::fs::remove_file(&path);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert_eq!(stdout.trim(), "50 equations OK");
}
