//! Series files: the CSV a user hands to `similar --series` and `match --pattern`.
//!
//! Either one value per line, or `time,value` per line (time as
//! `YYYY-MM-DDTHH:MM:SS[.ffffff]`, UTC, or with a space for the `T`), with an optional
//! header line first (a first line whose value field is not a number). Blank lines are
//! skipped. Every other line must hold a number: a file is the user's own pattern, so a
//! value that is not a number is an error naming its line, never silently dropped.

use chrono::NaiveDateTime;

use super::{micros, Micros};

/// A parsed series file.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesFile {
    /// The values, in file order.
    pub values: Vec<f64>,
    /// The times, when the file gives `time,value` lines (non-decreasing).
    pub times: Option<Vec<Micros>>,
}

/// Why a series file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeriesFileError {
    /// A line that does not hold what the file's shape asks for.
    #[error("line {line}: {what}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong there.
        what: String,
    },
    /// No value at all.
    #[error("holds no values (one number per line, or `time,value` lines)")]
    Empty,
}

fn bad(line: usize, what: impl Into<String>) -> SeriesFileError {
    SeriesFileError::Line {
        line,
        what: what.into(),
    }
}

fn parse_time(s: &str) -> Option<Micros> {
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(micros)
}

fn parse_value(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Reads a series file's text.
///
/// # Errors
/// [`SeriesFileError`] naming the first bad line: a value that is not a finite number,
/// a time that cannot be read or goes backwards, a line with another number of fields
/// than the first; or [`SeriesFileError::Empty`].
pub fn parse(text: &str) -> Result<SeriesFile, SeriesFileError> {
    let mut values = Vec::new();
    let mut times: Option<Vec<Micros>> = None;
    let mut fields_per_line: Option<usize> = None;
    let mut first = true;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.trim();
        if content.is_empty() {
            continue;
        }
        let fields: Vec<&str> = content.split(',').map(str::trim).collect();
        if fields.len() > 2 {
            return Err(bad(
                line,
                format!(
                    "`{content}` has {} fields; expected a value or `time,value`",
                    fields.len()
                ),
            ));
        }
        let value_field = fields[fields.len() - 1];
        let header = first && parse_value(value_field).is_none();
        first = false;
        if header {
            continue;
        }
        match fields_per_line {
            None => fields_per_line = Some(fields.len()),
            Some(n) if n != fields.len() => {
                return Err(bad(
                    line,
                    format!(
                        "`{content}` has {} field(s) where the lines before have {n}",
                        fields.len()
                    ),
                ))
            }
            Some(_) => {}
        }
        let value = parse_value(value_field)
            .ok_or_else(|| bad(line, format!("`{value_field}` is not a number")))?;
        if fields.len() == 2 {
            let t = parse_time(fields[0]).ok_or_else(|| {
                bad(
                    line,
                    format!(
                        "`{}` is not a time YYYY-MM-DDTHH:MM:SS[.ffffff] (UTC)",
                        fields[0]
                    ),
                )
            })?;
            let times = times.get_or_insert_with(Vec::new);
            if times.last().is_some_and(|&last| t < last) {
                return Err(bad(
                    line,
                    format!("time `{}` is before the line above's", fields[0]),
                ));
            }
            times.push(t);
        }
        values.push(value);
    }
    if values.is_empty() {
        return Err(SeriesFileError::Empty);
    }
    Ok(SeriesFile { values, times })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_value_per_line_with_a_header_and_blank_lines() {
        let f = parse("value\n1\n\n2.5\n-3e2\n").unwrap();
        assert_eq!(f.values, vec![1.0, 2.5, -300.0]);
        assert_eq!(f.times, None);
    }

    #[test]
    fn time_value_lines() {
        let f = parse("time,value\n2024-01-01T00:00:00,1\n2024-01-01 00:00:01.5,2\n").unwrap();
        assert_eq!(f.values, vec![1.0, 2.0]);
        let t0 = micros(
            NaiveDateTime::parse_from_str("2024-01-01 00:00:00", "%Y-%m-%d %H:%M:%S").unwrap(),
        );
        assert_eq!(f.times, Some(vec![t0, t0 + 1_500_000]));
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            parse("1\n2\nabc\n").unwrap_err().to_string(),
            "line 3: `abc` is not a number"
        );
        assert_eq!(
            parse("1\nNaN\n").unwrap_err().to_string(),
            "line 2: `NaN` is not a number"
        );
        assert!(parse("1\n2024-01-01T00:00:00,2\n")
            .unwrap_err()
            .to_string()
            .starts_with("line 2:"));
        assert!(parse("2024-01-01T00:00:01,1\n2024-01-01T00:00:00,2\n")
            .unwrap_err()
            .to_string()
            .contains("before"));
        assert!(parse("yesterday,1\n")
            .unwrap_err()
            .to_string()
            .contains("not a time"));
        assert!(parse("1,2,3\n")
            .unwrap_err()
            .to_string()
            .contains("3 fields"));
        assert_eq!(parse("header\n\n").unwrap_err(), SeriesFileError::Empty);
        assert_eq!(parse("").unwrap_err(), SeriesFileError::Empty);
    }
}
