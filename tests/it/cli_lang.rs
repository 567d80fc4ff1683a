//! `recalcd eval` and `recalcd check`, run as the real binary.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

fn recalcd(args: &[&str]) -> Output {
    match Command::new(env!("CARGO_BIN_EXE_recalcd"))
        .args(args)
        .env_remove("RECALCD_CONFIG")
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!("cannot run recalcd: {e}"),
    }
}

/// (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = recalcd(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn eval(args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["eval"];
    all.extend_from_slice(args);
    run(&all)
}

/// A file in the temporary directory with a name no other test uses.
fn temp_file(content: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "recalcd-cli-lang-{}-{}.csv",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    if let Err(e) = std::fs::write(&path, content) {
        panic!("cannot write {}: {e}", path.display());
    }
    path
}

#[test]
fn eval_prints_a_value_and_exits_0() {
    let (code, out, _) = eval(&[
        "--var",
        "tmp=21.5",
        "--const",
        "TMAX=20",
        "IF > $tmp #TMAX 1 0",
    ]);
    assert_eq!((code, out.as_str()), (0, "1\n"));
    let (code, out, _) = eval(&[
        "--var",
        "tmp=19",
        "--const",
        "#TMAX=20",
        "IF > $tmp #TMAX 1 0",
    ]);
    assert_eq!((code, out.as_str()), (0, "0\n"));
    let (code, out, _) = eval(&["- 5 7.5"]);
    assert_eq!((code, out.as_str()), (0, "-2.5\n"));
}

#[test]
fn eval_of_an_empty_result_exits_1_with_the_reason() {
    let (code, out, err) = eval(&["+ 1 $x"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("$x has no value"), "{err}");
    let (code, out, err) = eval(&["--json", "/ 1 0"]);
    assert_eq!((code, out.as_str()), (1, "null\n"));
    assert!(err.contains("division by zero"), "{err}");
    let (code, _, err) = eval(&["IFNA #NULL #TMAX"]);
    assert_eq!(code, 1);
    assert!(err.contains("#TMAX has no value"), "{err}");
}

#[test]
fn eval_of_a_bad_equation_exits_2_with_the_column() {
    let (code, out, err) = eval(&["+ 1"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.contains("column 4: + expects 2 operands, the equation ends"),
        "{err}"
    );
    let (code, _, err) = eval(&["FOO 1"]);
    assert_eq!(code, 2);
    assert!(err.contains("column 1: unknown function 'FOO'"), "{err}");
    let (code, _, err) = eval(&["+ 1 2 3"]);
    assert_eq!(code, 2);
    assert!(err.contains("column 7: unexpected '3'"), "{err}");
    let (code, _, err) = eval(&["--var", "novalue", "1"]);
    assert_eq!(code, 2);
    assert!(err.contains("'novalue' is not NAME=VALUE"), "{err}");
    let (code, _, _) = eval(&["--level", "week", "1"]);
    assert_eq!(code, 2);
}

#[test]
fn eval_json_prints_numbers_strings_and_arrays() {
    let (code, out, _) = eval(&["--json", "* 2 21"]);
    assert_eq!((code, out.as_str()), (0, "42\n"));
    let (code, out, _) = eval(&["--json", "'it''s'"]);
    assert_eq!((code, out.as_str()), (0, "\"it's\"\n"));
    let (code, out, _) = eval(&[
        "--json",
        "--level",
        "job",
        "--var",
        "x=1,2.5,3",
        "IFNA $x 0",
    ]);
    assert_eq!((code, out.as_str()), (0, "[1,2.5,3]\n"));
    let (code, out, _) = eval(&["--json", "--level", "job", "--var", "x=1,a,", "IFNA $x 0"]);
    assert_eq!((code, out.as_str()), (0, "[1,\"a\",null]\n"));
}

#[test]
fn eval_prints_plain_values_and_the_stored_form_on_request() {
    let (code, out, _) = eval(&["--level", "job", "--var", "x=1,2,3", "IFNA $x 0"]);
    assert_eq!((code, out.as_str()), (0, "1,2,3\n"));
    let (code, out, _) = eval(&["'a;b=c,d'"]);
    assert_eq!((code, out.as_str()), (0, "a;b=c,d\n"));
    let (code, out, _) = eval(&["--conjoined", "'a;b=c,d'"]);
    assert_eq!((code, out.as_str()), (0, "a\\;b\\=c\\,d\n"));
    let (code, out, _) = eval(&["--var", "v=1,2,3,4", "SA $v"]);
    assert_eq!((code, out.as_str()), (0, "1,2,3,4\n"));
    let (code, out, _) = eval(&["--var", "v=1,2,3,4", "--conjoined", "SA $v"]);
    assert_eq!((code, out.as_str()), (0, "1\\,2\\,3\\,4\n"));
    let (code, _, _) = eval(&["--json", "--conjoined", "1"]);
    assert_eq!(code, 2, "--json and --conjoined exclude each other");
    // The gps column is "lat,lon": one string, not a vector.
    let (code, out, _) = eval(&["--json", "--var", "gps=49.1,16.6", "IFNA $gps 0"]);
    assert_eq!((code, out.as_str()), (0, "\"49.1,16.6\"\n"));
}

#[test]
fn eval_reads_variables_as_the_conjoined_codec_does() {
    // A data row's vector channel, as an earlier equation stores it.
    let (code, out, err) = eval(&["--var", "v=1,2,3,4", "SNRM $v"]);
    assert_eq!((code, out.as_str()), (0, "2.5\n"), "{err}");
    let (code, out, _) = eval(&["--prev", "v=1,2", "--json", "IFNA $$v 0"]);
    assert_eq!((code, out.as_str()), (0, "[1,2]\n"));
    let (code, out, _) = eval(&["--level", "job", "--var", "V=4,5", "--json", "IFNA $V 0"]);
    assert_eq!((code, out.as_str()), (0, "[4,5]\n"));
    // Escapes, spaces and numbers as a stored entry reads them.
    let (code, out, _) = eval(&["--json", "--var", "s=a\\,b\\;c", "$s"]);
    assert_eq!((code, out.as_str()), (0, "\"a,b;c\"\n"));
    let (code, out, _) = eval(&["--json", "--var", "n= 007 ;", "$n"]);
    assert_eq!((code, out.as_str()), (0, "7\n"));
    let (code, out, _) = eval(&["--var", "p=C:\\data\\", "$p"]);
    assert_eq!((code, out.as_str()), (0, "C:data\\\n"));
    // At a vector form the items are the rows' values.
    let (code, out, _) = eval(&[
        "--level",
        "job",
        "--json",
        "--var",
        "x=1\\,2,3",
        "IFNA $x 0",
    ]);
    assert_eq!((code, out.as_str()), (0, "[\"1,2\",3]\n"));
    // What the codec cannot read as one entry is a usage error naming the option.
    let (code, _, err) = eval(&["--var", "x=a;b", "$x"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--var: 'x=a;b' is more than one entry"),
        "{err}"
    );
    let (code, _, err) = eval(&["--prev", "=3", "$$x"]);
    assert_eq!(code, 2);
    assert!(err.contains("--prev: '=3' is not NAME=VALUE"), "{err}");
    let (code, _, err) = eval(&["--var", "state=on", "$state"]);
    assert_eq!(code, 2);
    assert!(err.contains("the state column holds an integer"), "{err}");
}

#[test]
fn eval_takes_a_devices_constants_from_the_store() {
    let db = crate::support::TestDb::create_blocking();
    let (code, _, err) = run(&["migrate", "--database-url", &db.url]);
    assert_eq!(code, 0, "{err}");
    db.execute_blocking(
        r"INSERT INTO constants (id, name, value) VALUES
             (0, 'TMAX', '20'), (0, 'WB', '06:00'), (5, 'TMAX', '30'),
             (5, 'WB', '07:30'), (5, 'NOTE', 'a\,b');",
    );
    let with = |args: &[&str]| {
        let mut all = vec!["eval", "--database-url", &db.url];
        all.extend_from_slice(args);
        run(&all)
    };
    let (code, out, err) = with(&["--id", "5", "--var", "tmp=25", "IF > $tmp #TMAX 1 0"]);
    assert_eq!((code, out.as_str()), (0, "0\n"), "{err}");
    let (code, out, _) = with(&["--id", "5", "#GID"]);
    assert_eq!((code, out.as_str()), (0, "5\n"));
    let (code, out, _) = with(&["--id", "5", "#WB"]);
    assert_eq!((code, out.as_str()), (0, "07:30:00\n"));
    // A constant is its text as stored (the constants table is not `conjoined`).
    let (_, out, _) = with(&["--id", "5", "#NOTE"]);
    assert_eq!(out, "a\\,b\n");
    // Another device gets the defaults, and is told so.
    let (code, out, err) = with(&["--id", "7", "--var", "tmp=25", "IF > $tmp #TMAX 1 0"]);
    assert_eq!((code, out.as_str()), (0, "1\n"), "{err}");
    assert!(
        err.contains("device 7 has no constants of its own"),
        "{err}"
    );
    // --const overrides what is stored.
    let (_, out, _) = with(&[
        "--id", "5", "--const", "TMAX=10", "--const", "WB=05:00", "#TMAX",
    ]);
    assert_eq!(out, "10\n");
    let (_, out, _) = with(&["--id", "5", "--const", "WB=05:00", "#WB"]);
    assert_eq!(out, "05:00:00\n");
    // Without --id no database is touched; with it an unreachable one is exit 1.
    let unreachable = "postgres://nobody:secret@127.0.0.1:1/none";
    let (code, out, _) = run(&["eval", "--database-url", unreachable, "+ 1 2"]);
    assert_eq!((code, out.as_str()), (0, "3\n"));
    let (code, _, err) = run(&["eval", "--database-url", unreachable, "--id", "5", "#TMAX"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with("error: ") && !err.contains("secret"),
        "{err}"
    );
}

#[test]
fn eval_at_each_level() {
    // Data: lowercase is the row, uppercase the job, --prev the previous row / job.
    let (code, out, _) = eval(&[
        "--var",
        "x=1",
        "--var",
        "X=10",
        "--prev",
        "x=100",
        "--prev",
        "X=1000",
        "+ + $x $X + $$x $$X",
    ]);
    assert_eq!((code, out.as_str()), (0, "1111\n"));
    let (code, out, _) = eval(&["--const", "REC=3", "--const", "MT=60", "* #REC #MT"]);
    assert_eq!((code, out.as_str()), (0, "180\n"));
    // Job: $x is a vector, $X the job's own value; #RECS exists, #REC does not.
    let (code, out, _) = eval(&[
        "--level",
        "job",
        "--var",
        "X=4",
        "--const",
        "RECS=2",
        "+ $X #RECS",
    ]);
    assert_eq!((code, out.as_str()), (0, "6\n"));
    let (code, _, err) = eval(&["--level", "job", "#REC"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("#REC does not exist at the job level"),
        "{err}"
    );
    // Day: $d$x exists.
    let (code, out, _) = eval(&["--level", "day", "--var", "$d$x=5,6", "IFNA $d$x 0"]);
    assert_eq!((code, out.as_str()), (0, "5,6\n"));
    let (code, _, err) = eval(&["--level", "job", "IFNA $d$x 0"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot be used at the job level"), "{err}");
    // Summary: $$x is one value, $j$x a vector, $$X does not exist.
    let (code, out, _) = eval(&["--level", "summary", "--prev", "x=7", "+ $$x 1"]);
    assert_eq!((code, out.as_str()), (0, "8\n"));
    let (code, out, _) = eval(&["--level", "summary", "--var", "$j$x=1,2", "IFNA $j$x 0"]);
    assert_eq!((code, out.as_str()), (0, "1,2\n"));
    let (code, _, _) = eval(&["--level", "summary", "ABS $$X"]);
    assert_eq!(code, 2);
}

#[test]
fn check_reads_the_stored_equations_from_the_database() {
    let db = crate::support::TestDb::create_blocking();
    let (code, _, err) = run(&["migrate", "--database-url", &db.url]);
    assert_eq!(code, 0, "{err}");
    db.execute_blocking(
        "INSERT INTO equations (\"type\", id, name, eq) VALUES
             (1, 0, 'hot', 'IF > $tmp #TMAX 1 0'),
             (4, 17, 'tavg', 'SNRM '),
             (4, 0, 'tavg', 'SNRM $tmp');",
    );
    let (code, out, err) = run(&["check", "--database-url", &db.url]);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(
        out,
        "equation (type 4, id 17, 'tavg') column 6: SNRM expects 1 operand, the equation ends\n\
         1 problem in 3 equations\n"
    );
    db.execute_blocking("DELETE FROM equations WHERE id = 17;");
    let (code, out, err) = run(&["check", "--database-url", &db.url]);
    assert_eq!((code, out.as_str()), (0, "2 equations OK\n"), "{err}");
}

/// What `check` reports of the stored equations is what the loader leaves out: an empty
/// name (which would write `=2;`, unreadable), names differing in case, a cycle, a
/// self-reference and what reads them; `once` then computes only the others.
#[test]
fn check_and_the_loader_leave_out_the_same_equations() {
    let db = crate::support::TestDb::create_blocking();
    let (code, _, err) = run(&["migrate", "--database-url", &db.url]);
    assert_eq!(code, 0, "{err}");
    db.execute_blocking(
        "INSERT INTO equations (\"type\", id, name, eq) VALUES
             (1, 0, '', '2'),
             (1, 0, 'hot', '1'),
             (2, 0, 'HOT', '2'),
             (1, 0, 'a', '+ $b 1'),
             (1, 0, 'b', '+ $a 1'),
             (1, 0, 'me', '+ $me 1'),
             (2, 0, 'after', '+ $a 1'),
             (2, 0, 'good', '* $x 2'),
             (4, 0, 'GOODSUM', 'SSUM $good');
         INSERT INTO constants (id, name, value) VALUES (0, 'WB', '00:00');
         INSERT INTO data (datetime, data_time, id, recalc, conjoined)
              VALUES ('2024-03-01 08:00', '2024-03-01 08:00', 1, 1, 'x=5;');",
    );
    let (code, out, err) = run(&["check", "--database-url", &db.url]);
    assert_eq!(code, 2, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "equation (type 1, id 0, ''): the name is empty; the name is the output channel, written into conjoined as name=value;",
            "equation (type 1, id 0, 'a'): reads its own result through a cycle (a → b → a); it is skipped",
            "equation (type 1, id 0, 'b'): reads its own result through a cycle (b → a → b); it is skipped",
            "equation (type 1, id 0, 'hot'): writes the data channel 'hot', as does equation (type 2, id 0, 'HOT') (names compare case-insensitively); both are skipped",
            "equation (type 1, id 0, 'me'): reads its own result (me → me); it is skipped",
            "equation (type 2, id 0, 'HOT'): writes the data channel 'HOT', as does equation (type 1, id 0, 'hot') (names compare case-insensitively); both are skipped",
            "equation (type 2, id 0, 'after'): reads the data channel 'a' written by equation (type 1, id 0, 'a'), which is skipped; it is skipped too",
            "7 problems in 9 equations",
        ],
        "{out}"
    );
    let (code, out, err) = run(&["once", "--database-url", &db.url]);
    assert_eq!(code, 3, "skipped equations: exit 3; {out}{err}");
    let rows = db.query_blocking("SELECT recalc, conjoined FROM data");
    assert_eq!(
        rows,
        [vec![
            Some("0".to_string()),
            Some("x=5;good=10;".to_string())
        ]],
        "only the equations check accepts ran"
    );
    let jobs = db.query_blocking("SELECT conjoined FROM job");
    assert_eq!(jobs, [vec![Some("GOODSUM=10;".to_string())]]);
}

#[test]
fn check_of_a_file_names_the_lines_of_cycles_and_duplicates() {
    let path = temp_file(
        "type,id,name,eq\n\
         4,0,A,+ $B 1\n\
         4,0,B,+ $A 1\n\
         4,0,C,+ $C 1\n\
         1,5,x,1\n\
         1,5,X,2\n\
         1,0,x,3\n\
         1,0,a\\b,3\n",
    );
    let shown = path.display().to_string();
    let (code, out, _) = run(&["check", "--file", &shown]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, 2, "{out}");
    let located: Vec<&str> = out
        .lines()
        .map(|l| l.strip_prefix(shown.as_str()).unwrap_or(l))
        .collect();
    assert_eq!(
        located,
        [
            ":2: equation (type 4, id 0, 'A'): reads its own result through a cycle (A → B → A); it is skipped",
            ":3: equation (type 4, id 0, 'B'): reads its own result through a cycle (B → A → B); it is skipped",
            ":4: equation (type 4, id 0, 'C'): reads its own result (C → C); it is skipped",
            ":5: equation (type 1, id 5, 'x'): writes the data channel 'x', as does equation (type 1, id 5, 'X') (names compare case-insensitively); both are skipped",
            ":6: equation (type 1, id 5, 'X'): writes the data channel 'X', as does equation (type 1, id 5, 'x') (names compare case-insensitively); both are skipped",
            ":8: equation (type 1, id 0, 'a\\b'): the name contains '\\\\', which an output channel cannot hold (names may not contain = ; , or \\)",
            "6 problems in 7 equations",
        ],
        "{out}"
    );
}

#[test]
fn check_of_an_unreachable_database_exits_1() {
    let (code, _, err) = run(&[
        "check",
        "--database-url",
        "postgres://nobody:secret@127.0.0.1:1/none",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("secret"), "{err}");
}

#[test]
fn check_of_a_good_file() {
    let path = temp_file(
        "type,id,name,eq\r\n\
         1,0,hot,IF > $tmp #TMAX 1 0\r\n\
         2,0,both,IF = 1 1 'a, b' 'it''s'\r\n\
         4,17,\"len\",\"IF > #MT 60 'long, ''really''' 'short'\"\r\n\
         \r\n\
         5,0,d,IFNA $d$tmp #NULL\n",
    );
    let shown = path.display().to_string();
    let (code, out, err) = run(&["check", "--file", &shown]);
    let _ = std::fs::remove_file(&path);
    assert_eq!((code, out.as_str()), (0, "4 equations OK\n"), "{err}");
}

#[test]
fn check_of_a_bad_file_prints_every_problem() {
    let path = temp_file(
        "1,0,a,+ 1\n\
         4,17,tavg,ABS \n\
         1,0,ok,1\n\
         3,0,b,1\n\
         1,0,c,+ 1 $d$x\n\
         nonsense\n",
    );
    let shown = path.display().to_string();
    let (code, out, _) = run(&["check", "--file", &shown]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, 2, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert_eq!(
        lines[0],
        format!("{shown}:1: equation (type 1, id 0, 'a') column 4: + expects 2 operands, the equation ends")
    );
    assert_eq!(
        lines[1],
        format!("{shown}:2: equation (type 4, id 17, 'tavg') column 5: ABS expects 1 operand, the equation ends")
    );
    assert!(lines[2].contains(":4: equation (type 3, id 0, 'b') column 1: type 3 is not a level"));
    assert!(lines[3].contains(":5: equation (type 1, id 0, 'c') column 5: $d$x variables"));
    assert!(lines[4].contains(":6: expected type,id,name,eq"));
    assert_eq!(lines[5], "5 problems in 6 equations");
}

#[test]
fn check_of_a_missing_file_exits_2() {
    let (code, _, err) = run(&["check", "--file", "/nonexistent/recalcd-equations.csv"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn eval_with_library_functions_on_vectors() {
    let (code, out, _) = eval(&["--level", "job", "--var", "tmp=1,2,3", "SNRM $tmp"]);
    assert_eq!((code, out.as_str()), (0, "2\n"));
    let (code, out, err) = eval(&[
        "--level",
        "job",
        "--var",
        "x=1,5,2,9",
        "SDATCTRL 1 @flags $x 3",
    ]);
    assert_eq!((code, out.as_str()), (0, "2\n"));
    assert!(err.contains("output @flags=0,1,0,1"), "{err}");
    let (code, out, _) = eval(&["--json", "VT 'a,b'"]);
    assert_eq!((code, out.as_str()), (0, "[\"a\",\"b\"]\n"));
    let (code, _, err) = eval(&["--level", "job", "--var", "tmp=", "SNRM $tmp"]);
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = eval(&["--level", "job", "SNRM "]);
    assert_eq!(code, 2);
    assert!(
        err.contains("column 6: SNRM expects 1 operand, the equation ends"),
        "{err}"
    );
}

#[test]
fn eval_random_numbers_follow_the_seed() {
    let (code, a, _) = eval(&["--seed", "5", "RND"]);
    assert_eq!(code, 0);
    let (_, b, _) = eval(&["--seed", "5", "RND"]);
    let (_, c, _) = eval(&["--seed", "6", "RND"]);
    assert_eq!(a, b);
    assert_ne!(a, c);
    let n: f64 = a.trim().parse().unwrap_or(-1.0);
    assert!((0.0..1.0).contains(&n), "{a}");
}
