//! The README's "Your own data" section, run as it stands: its SQL on a fresh database
//! migrated by `recalcd migrate`, then `recalcd once`, whose job and day rows must read
//! as the section shows them; its CSV through `recalcd check --file`; its `reflag`
//! commands through the binary. The README cannot drift from what recalcd does.

use std::process::{Command, Output};

use crate::support::TestDb;

/// The fenced blocks of the README's section `heading`, as (info string, body).
fn blocks(heading: &str) -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let start = readme
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("README has no section `{heading}`"));
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    let mut out = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        if let Some(info) = line.strip_prefix("```") {
            let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            out.push((info.trim().to_owned(), body.join("\n")));
        }
    }
    out
}

fn of_kind(blocks: &[(String, String)], kind: &str) -> Vec<String> {
    blocks
        .iter()
        .filter(|(info, _)| info == kind)
        .map(|(_, body)| body.clone())
        .collect()
}

fn recalcd(db: &TestDb, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_recalcd"))
        .args(args)
        .arg("--database-url")
        .arg(&db.url)
        .env_remove("RECALCD_CONFIG")
        .env("RECALCD__LOG__LEVEL", "warn")
        .output()
        .expect("run recalcd");
    assert!(
        out.status.success(),
        "recalcd {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A table's rows as `psql -At -F ' | '` prints `id, datetime, data_time, conjoined`.
fn table(db: &TestDb, name: &str) -> String {
    db.query_blocking(&format!(
        "SELECT id || ' | ' || to_char(datetime, 'YYYY-MM-DD HH24:MI:SS') || ' | '
                || to_char(data_time, 'YYYY-MM-DD HH24:MI:SS') || ' | ' || conjoined
           FROM {name} ORDER BY id, datetime"
    ))
    .into_iter()
    .map(|r| r[0].clone().unwrap_or_default())
    .collect::<Vec<_>>()
    .join("\n")
}

#[test]
fn the_readme_own_data_sql_works_as_shown() {
    let section = blocks("Your own data");
    let sql = of_kind(&section, "sql");
    let shown = of_kind(&section, "text");
    assert_eq!(
        (sql.len(), shown.len()),
        (3, 2),
        "constants, equations, data; job and day rows"
    );
    let db = TestDb::create_blocking();
    recalcd(&db, &["migrate"]);
    for block in &sql {
        db.execute_blocking(block);
    }
    let out = recalcd(&db, &["once"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("wrote 5 data rows, 3 job rows, 2 day rows"),
        "{text}"
    );
    assert!(text.contains("0 rows with failures"), "{text}");
    assert_eq!(table(&db, "job"), shown[0].trim_end());
    assert_eq!(table(&db, "day"), shown[1].trim_end());
    // The data row the prose quotes, and the escaped value kept as written.
    let data = db.query_blocking(
        "SELECT conjoined FROM data WHERE id = 17 ORDER BY datetime OFFSET 1 LIMIT 2",
    );
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let second = data[0][0].clone().unwrap_or_default();
    assert!(readme.contains(&format!("(`{second}`)")), "{second}");
    assert_eq!(
        data[1][0].as_deref(),
        Some(r"tmp=88;place=Brno\, hall 2;hot=1;dtmp=-5.5;")
    );

    // The CSV holds the same equations, and `check --file` accepts it.
    let csv = of_kind(&section, "csv");
    assert_eq!(csv.len(), 1);
    let mut from_csv: Vec<String> = csv[0].lines().skip(1).map(str::to_owned).collect();
    from_csv.sort();
    let mut stored: Vec<String> = db
        .query_blocking(r#"SELECT "type" || ',' || id || ',' || name || ',' || eq FROM equations"#)
        .into_iter()
        .map(|r| r[0].clone().unwrap_or_default())
        .collect();
    stored.sort();
    assert_eq!(from_csv, stored);
    let file = std::env::temp_dir().join(format!("{}.csv", crate::support::unique("readme_")));
    std::fs::write(&file, &csv[0]).expect("write the CSV");
    let out = Command::new(env!("CARGO_BIN_EXE_recalcd"))
        .args(["check", "--file"])
        .arg(&file)
        .output()
        .expect("run recalcd");
    let _ = std::fs::remove_file(&file);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("6 equations OK"));

    // The `reflag` lines, as shown, then `once`: the same rows again.
    let mut reflags = 0;
    for block in of_kind(&section, "sh") {
        for line in block.lines() {
            let command = line.split('#').next().unwrap_or("").trim();
            let Some(args) = command.strip_prefix("recalcd ") else {
                continue;
            };
            let args: Vec<&str> = args.split_whitespace().collect();
            if args[0] == "reflag" {
                reflags += 1;
            }
            recalcd(&db, &args);
        }
    }
    assert_eq!(reflags, 3);
    assert_eq!(table(&db, "job"), shown[0].trim_end());
    assert_eq!(table(&db, "day"), shown[1].trim_end());
    let flagged = db.query_blocking("SELECT count(*) FROM data WHERE recalc <> 0");
    assert_eq!(flagged[0][0].as_deref(), Some("0"));
}
