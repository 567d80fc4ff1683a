//! The expected schema, dialect-neutral: which columns each table must have, and the
//! comparison of what a server reports with it. Each dialect names its types and asks
//! its own catalogue; the verdict (missing table, the first differing column) is made
//! here, once.

use super::{Level, StoreError};
use crate::config::TableNames;

/// How a dialect's catalogue spells the column types recalcd uses.
pub(crate) struct TypeNames {
    /// A UTC timestamp without zone.
    pub timestamp: &'static str,
    /// A 32-bit integer.
    pub int: &'static str,
    /// A string.
    pub text: &'static str,
    /// A string with few distinct values (the errors' `level`).
    pub symbol: &'static str,
}

/// The columns one table must have: (name, type).
pub(crate) type Columns = Vec<(&'static str, &'static str)>;

/// Every table recalcd uses, with its required columns (extra columns are allowed).
pub(crate) fn expected<'a>(tables: &'a TableNames, ty: &TypeNames) -> Vec<(&'a str, Columns)> {
    let universal = || {
        vec![
            ("datetime", ty.timestamp),
            ("data_time", ty.timestamp),
            ("id", ty.int),
            ("state", ty.int),
            ("user", ty.text),
            ("gps", ty.text),
            ("recalc", ty.int),
            ("conjoined", ty.text),
        ]
    };
    let mut out: Vec<(&str, Columns)> = Level::ALL
        .iter()
        .map(|l| (l.table(tables), universal()))
        .collect();
    out.extend([
        (
            tables.constants.as_str(),
            vec![("id", ty.int), ("name", ty.text), ("value", ty.text)],
        ),
        (
            tables.equations.as_str(),
            vec![
                ("type", ty.int),
                ("id", ty.int),
                ("name", ty.text),
                ("eq", ty.text),
            ],
        ),
        (
            tables.errors.as_str(),
            vec![
                ("at", ty.timestamp),
                ("level", ty.symbol),
                ("id", ty.int),
                ("datetime", ty.timestamp),
                ("equation", ty.text),
                ("reason", ty.text),
            ],
        ),
        (
            tables.problems.as_str(),
            vec![
                ("at", ty.timestamp),
                ("type", ty.int),
                ("id", ty.int),
                ("name", ty.text),
                ("problem", ty.text),
            ],
        ),
        (
            tables.migrations.as_str(),
            vec![("version", ty.int), ("name", ty.text)],
        ),
        (
            tables.index.as_str(),
            vec![
                ("kind", ty.symbol),
                ("channel", ty.symbol),
                ("params", ty.text),
                ("bucket_table", ty.text),
            ],
        ),
        (
            tables.index_dirty.as_str(),
            vec![
                ("channel", ty.symbol),
                ("id", ty.int),
                ("start", ty.timestamp),
            ],
        ),
    ]);
    out
}

/// Checks the columns `found` (name, type) of `table` against `expected`.
///
/// # Errors
/// [`StoreError::Column`] naming the first missing or differently typed column.
pub(crate) fn check_columns(
    table: &str,
    expected: &Columns,
    found: &[(String, String)],
    type_matches: fn(&str, &str) -> bool,
) -> Result<(), StoreError> {
    for (column, ty) in expected {
        let problem = match found.iter().find(|(c, _)| c == column) {
            None => "is missing".to_string(),
            Some((_, f)) if !type_matches(ty, f) => format!("has type `{f}`, expected `{ty}`"),
            Some(_) => continue,
        };
        return Err(StoreError::Column {
            table: table.to_string(),
            column: column.to_string(),
            problem,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const TYPES: TypeNames = TypeNames {
        timestamp: "ts",
        int: "int",
        text: "text",
        symbol: "text",
    };

    #[test]
    fn every_configured_table_is_expected() {
        let tables = Config::default().tables;
        let names: Vec<&str> = expected(&tables, &TYPES).iter().map(|(t, _)| *t).collect();
        // The revision counter is PostgreSQL's alone (QuestDB has no triggers to bump
        // it); the PostgreSQL store checks it on top of these.
        let all: Vec<&str> = tables
            .all()
            .iter()
            .map(|(_, t)| *t)
            .filter(|t| *t != tables.revision)
            .collect();
        assert_eq!(names, all);
    }

    #[test]
    fn the_first_differing_column_is_named() {
        let cols: Columns = vec![("id", "int"), ("name", "text")];
        let eq = |a: &str, b: &str| a == b;
        let found = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert!(check_columns(
            "t",
            &cols,
            &found(&[("name", "text"), ("id", "int"), ("x", "y")]),
            eq
        )
        .is_ok());
        let e = check_columns("t", &cols, &found(&[("id", "bigint")]), eq).unwrap_err();
        assert_eq!(
            e.to_string(),
            "table `t`: column `id` has type `bigint`, expected `int`"
        );
        let e = check_columns("t", &cols, &found(&[("id", "int")]), eq).unwrap_err();
        assert_eq!(e.to_string(), "table `t`: column `name` is missing");
    }
}
