//! The embedded migrations: numbered SQL files per dialect under `migrations/`.
//!
//! Each file is `NNNN_name.sql`; the list below embeds them with `include_str!`, in
//! order. They are forward only. Placeholders `{data}`, `{job}`, `{day}`, `{constants}`,
//! `{equations}`, `{errors}`, `{problems}`, `{revision}`, `{index}`, `{index_dirty}` are replaced by the configured table names
//! (validated identifiers, so the substitution cannot inject SQL). Each dialect applies them in
//! its own way (one transaction each on PostgreSQL) and records every applied version
//! in the `tables.migrations` table, so running `migrate` twice changes nothing.

use crate::config::{Dialect, TableNames};

/// One embedded migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Its number: 1, 2, 3, … without gaps.
    pub version: i32,
    /// The file name without number and extension, recorded with the version.
    pub name: &'static str,
    /// The SQL text, with placeholders.
    pub sql: &'static str,
}

macro_rules! migration {
    ($dialect:literal, $version:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/migrations/",
                $dialect,
                "/",
                stringify!($version),
                "_",
                $name,
                ".sql"
            )),
        }
    };
}

// The file names carry four digits (`0001_schema.sql`); `stringify!` of the literal
// `0001` keeps them, and the numbering test reads the directory to check the list.
#[allow(clippy::zero_prefixed_literal)]
const POSTGRES: &[Migration] = &[
    migration!("postgres", 0001, "schema"),
    migration!("postgres", 0002, "revision"),
    migration!("postgres", 0003, "notify"),
    migration!("postgres", 0004, "flagged_jobs"),
    migration!("postgres", 0005, "problems"),
    migration!("postgres", 0006, "index"),
    migration!("postgres", 0007, "index_updated"),
];

#[allow(clippy::zero_prefixed_literal)]
const QUESTDB: &[Migration] = &[
    migration!("questdb", 0001, "schema"),
    migration!("questdb", 0002, "problems"),
    migration!("questdb", 0003, "index"),
];

/// The migrations of `dialect`, in order.
pub fn migrations(dialect: Dialect) -> &'static [Migration] {
    match dialect {
        Dialect::Postgres => POSTGRES,
        Dialect::QuestDb => QUESTDB,
    }
}

/// The version the schema has once every migration of `dialect` is applied.
pub fn latest_version(dialect: Dialect) -> i32 {
    migrations(dialect).last().map_or(0, |m| m.version)
}

/// The SQL of `migration` with table names substituted.
pub fn render(migration: &Migration, tables: &TableNames) -> String {
    migration
        .sql
        .replace("{data}", &tables.data)
        .replace("{job}", &tables.job)
        .replace("{day}", &tables.day)
        .replace("{constants}", &tables.constants)
        .replace("{equations}", &tables.equations)
        .replace("{errors}", &tables.errors)
        .replace("{problems}", &tables.problems)
        .replace("{revision}", &tables.revision)
        .replace("{index_dirty}", &tables.index_dirty)
        .replace("{index}", &tables.index)
}

/// Splits rendered SQL into statements: at `;` ending a line, dropping `--` comment
/// lines. (QuestDB migration files keep `;` out of string literals and comments; the
/// PostgreSQL ones are sent whole, so function bodies may hold `;`.)
pub fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") || trimmed.is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            let stmt = current.trim().trim_end_matches(';').trim().to_string();
            if !stmt.is_empty() {
                out.push(stmt);
            }
            current.clear();
        }
    }
    let rest = current.trim();
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn numbering_is_contiguous_and_matches_the_files() {
        for (dialect, dir) in [
            (Dialect::Postgres, "postgres"),
            (Dialect::QuestDb, "questdb"),
        ] {
            let list = migrations(dialect);
            for (i, m) in list.iter().enumerate() {
                assert_eq!(
                    m.version,
                    i as i32 + 1,
                    "{dir}: migration {} out of order",
                    m.name
                );
            }
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dir);
            let mut files: Vec<String> = std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|f| f.ends_with(".sql"))
                .collect();
            files.sort();
            let embedded: Vec<String> = list
                .iter()
                .map(|m| format!("{:04}_{}.sql", m.version, m.name))
                .collect();
            assert_eq!(
                files, embedded,
                "{dir}: every file is embedded, numbered once"
            );
        }
    }

    #[test]
    fn rendering_substitutes_every_placeholder() {
        let mut tables = Config::default().tables;
        tables.data = "samples".into();
        for dialect in [Dialect::Postgres, Dialect::QuestDb] {
            for m in migrations(dialect) {
                let sql = render(m, &tables);
                let stmts = statements(&sql); // without the comments
                assert!(
                    stmts.iter().all(|s| !s.contains('{')),
                    "{dialect} {}: placeholder left",
                    m.name
                );
                if dialect == Dialect::QuestDb {
                    // QuestDB's are sent statement by statement.
                    assert!(
                        stmts.iter().all(|s| !s.contains(';')),
                        "{dialect} {}: `;` inside a statement",
                        m.name
                    );
                }
                if m.sql.contains("{data}") {
                    assert!(sql.contains("\"samples\""));
                }
            }
        }
    }

    #[test]
    fn statements_split_at_line_ends() {
        let s = statements("-- c\nCREATE A (x);\n\nCREATE B\n  (y);\nSELECT 1");
        assert_eq!(s, vec!["CREATE A (x)", "CREATE B\n  (y)", "SELECT 1"]);
    }
}
