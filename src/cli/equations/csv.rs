//! The CSV form of the equations table, `type,id,name,eq`: written by `recalcd equations
//! export`, read by `recalcd check --file` and `recalcd equations import`.
//!
//! Reading accepts what a person or a spreadsheet writes: an optional first line
//! starting with `type` is a header; blank lines are skipped; a byte-order mark and
//! `\r\n` line ends are allowed. The first three commas split type, id and name; the
//! rest of the line is the equation, kept exactly as written, so it may contain commas
//! and apostrophes unquoted. Any field may also be wrapped in double quotes, with `""`
//! for a double quote; a quoted field may span lines. Writing quotes every name or
//! equation that needs it (a comma, a double quote, a line break, or spaces at either
//! end), so what is written reads back the same.

use std::io::{self, Write};

use recalcd::store;

/// What a CSV file holds.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The equations read, each with the line its record starts on.
    pub equations: Vec<(usize, store::Equation)>,
    /// (line, message) for every record that could not be read, in order.
    pub problems: Vec<(usize, String)>,
}

impl Parsed {
    /// The number of records (neither blank nor the header), read or not.
    pub fn records(&self) -> usize {
        self.equations.len() + self.problems.len()
    }
}

/// Reads a CSV file's text.
pub fn read(text: &str) -> Parsed {
    // A spreadsheet's export may start with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader {
        text,
        at: 0,
        line: 1,
    };
    let mut parsed = Parsed::default();
    let mut first = true;
    while !reader.done() {
        if reader.rest_of_line().trim().is_empty() {
            reader.skip_line();
            continue;
        }
        let line = reader.line;
        let record = reader.record();
        let is_header =
            first && matches!(&record, Ok(fields) if fields[0].trim().eq_ignore_ascii_case("type"));
        first = false;
        if is_header {
            continue;
        }
        match record.and_then(equation) {
            Ok(e) => parsed.equations.push((line, e)),
            Err(problem) => parsed.problems.push((line, problem)),
        }
    }
    parsed
}

/// Writes `equations` with a header line.
///
/// # Errors
/// Writing to `out` failed.
pub fn write(out: &mut impl Write, equations: &[store::Equation]) -> io::Result<()> {
    writeln!(out, "type,id,name,eq")?;
    for e in equations {
        writeln!(
            out,
            "{},{},{},{}",
            e.kind,
            e.id,
            field(&e.name),
            field(&e.eq)
        )?;
    }
    Ok(())
}

/// `text` as a CSV field: quoted when reading it back unquoted would change it.
fn field(text: &str) -> String {
    let plain = !text.contains([',', '"', '\n', '\r']) && text.trim() == text;
    if plain {
        text.to_owned()
    } else {
        format!("\"{}\"", text.replace('"', "\"\""))
    }
}

/// The equation of a record's four fields.
fn equation(fields: [String; 4]) -> Result<store::Equation, String> {
    let [ty, id, name, eq] = fields;
    let ty = ty.trim();
    let kind: i32 = ty
        .parse()
        .map_err(|_| format!("the type '{ty}' is not a whole number"))?;
    let id = id.trim();
    let id: i32 = match id.parse::<i64>() {
        Ok(n) => i32::try_from(n).map_err(|_| {
            format!("the id {n} is out of range (the id column is a 32-bit integer)")
        })?,
        Err(_) => return Err(format!("the id '{id}' is not a whole number")),
    };
    Ok(store::Equation { kind, id, name, eq })
}

/// A cursor over the text, counting lines.
struct Reader<'a> {
    text: &'a str,
    /// Byte offset of the next character.
    at: usize,
    /// The 1-based line `at` is on.
    line: usize,
}

impl Reader<'_> {
    fn done(&self) -> bool {
        self.at >= self.text.len()
    }

    fn rest_of_line(&self) -> &str {
        let rest = &self.text[self.at..];
        &rest[..rest.find('\n').unwrap_or(rest.len())]
    }

    /// Moves past the end of the current line.
    fn skip_line(&mut self) {
        let len = self.rest_of_line().len();
        self.at += len;
        if !self.done() {
            self.at += 1;
            self.line += 1;
        }
    }

    /// Reads one record's four fields; on a problem, moves to the next line.
    fn record(&mut self) -> Result<[String; 4], String> {
        let r = self.fields();
        if r.is_err() {
            self.skip_line();
        }
        r
    }

    fn fields(&mut self) -> Result<[String; 4], String> {
        let ty = self.field()?;
        let id = self.field()?;
        let name = self.field()?;
        let eq = self.last_field()?;
        Ok([ty, id, name, eq])
    }

    /// One of the first three fields and the comma after it (unquoted: trimmed).
    fn field(&mut self) -> Result<String, String> {
        let line = self.rest_of_line();
        let start = line.len() - line.trim_start().len();
        if line[start..].starts_with('"') {
            self.at += start;
            let value = self.quoted()?;
            let after = self.rest_of_line();
            let trimmed = after.trim_start();
            if !trimmed.starts_with(',') {
                return Err("expected type,id,name,eq: a comma must follow a quoted field".into());
            }
            self.at += after.len() - trimmed.len() + 1;
            return Ok(value);
        }
        match line.find(',') {
            Some(comma) => {
                let value = line[..comma].trim().to_owned();
                self.at += comma + 1;
                Ok(value)
            }
            None => Err("expected type,id,name,eq".into()),
        }
    }

    /// The equation: the rest of the line as written, or one quoted field.
    fn last_field(&mut self) -> Result<String, String> {
        let line = self.rest_of_line();
        if line.trim_start().starts_with('"') {
            self.at += line.len() - line.trim_start().len();
            let value = self.quoted()?;
            if !self.rest_of_line().trim().is_empty() {
                return Err("unexpected text after the quoted equation".into());
            }
            self.skip_line();
            return Ok(value);
        }
        let value = line.strip_suffix('\r').unwrap_or(line).to_owned();
        self.skip_line();
        Ok(value)
    }

    /// A field in double quotes starting at `at`, which may span lines.
    fn quoted(&mut self) -> Result<String, String> {
        let opened = self.line;
        let mut value = String::new();
        let mut chars = self.text[self.at + 1..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' if self.text[self.at + 1 + i + 1..].starts_with('"') => {
                    value.push('"');
                    chars.next();
                }
                '"' => {
                    let consumed = &self.text[self.at..self.at + 1 + i + 1];
                    self.line += consumed.matches('\n').count();
                    self.at += consumed.len();
                    return Ok(value);
                }
                c => value.push(c),
            }
        }
        self.at = self.text.len();
        Err(format!(
            "the double quote opened on line {opened} is never closed"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn e(kind: i32, id: i32, name: &str, src: &str) -> store::Equation {
        store::Equation::new(kind, id, name, src)
    }

    #[test]
    fn splits_at_the_first_three_commas() {
        let p = read("4, 17 ,tavg,SNRM VA '1,2'\n1,0,\"x\",\"ADDS 'a,\"\"b' 'c'\"\n");
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(
            p.equations,
            [
                (1, e(4, 17, "tavg", "SNRM VA '1,2'")),
                (2, e(1, 0, "x", "ADDS 'a,\"b' 'c'")),
            ]
        );
    }

    #[test]
    fn header_blank_lines_bom_and_crlf() {
        let p = read("\u{feff}type,id,name,eq\r\n\r\n1,0,a,+ 1 2\r\n  \n5,3,b,1");
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(
            p.equations,
            [(3, e(1, 0, "a", "+ 1 2")), (5, e(5, 3, "b", "1"))]
        );
    }

    #[test]
    fn bad_records_are_named_by_line_and_the_rest_is_read() {
        let p = read("1,2\nx,2,n,1\n1,99999999999,n,1\n1,0,\"a\nb\",\"open\n1,0,c,1\n");
        assert_eq!(
            p.problems,
            [
                (1, "expected type,id,name,eq".to_string()),
                (2, "the type 'x' is not a whole number".to_string()),
                (
                    3,
                    "the id 99999999999 is out of range (the id column is a 32-bit integer)"
                        .to_string()
                ),
                (
                    4,
                    "the double quote opened on line 5 is never closed".to_string()
                ),
            ]
        );
        assert_eq!(p.records(), 4);
        let p = read("1,0,a,1\n1,0,b,\"x\" y\n1,0,c,2\n");
        assert_eq!(
            p.problems,
            [(2, "unexpected text after the quoted equation".to_string())]
        );
        assert_eq!(p.equations.len(), 2);
    }

    #[test]
    fn a_quoted_field_spans_lines_and_the_next_record_has_its_own_line() {
        let p = read("1,0,\"two\nlines\",\"+ 1\n2\"\n4,0,B,3\n");
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(
            p.equations,
            [(1, e(1, 0, "two\nlines", "+ 1\n2")), (4, e(4, 0, "B", "3"))]
        );
    }

    #[test]
    fn writes_quotes_only_where_needed() {
        let mut out = Vec::new();
        write(
            &mut out,
            &[
                e(1, 0, "a", "+ $x 1"),
                e(4, 7, "a,b", "ADDS 'x' '\"y\"'"),
                e(2, 0, " sp", ""),
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "type,id,name,eq\n1,0,a,+ $x 1\n4,7,\"a,b\",\"ADDS 'x' '\"\"y\"\"'\"\n2,0,\" sp\",\n"
        );
    }

    proptest! {
        #[test]
        fn what_is_written_reads_back_the_same(
            rows in proptest::collection::vec(
                (any::<i32>(), any::<i32>(), "[ -~\n\r\t\"',=;\\\\é]{0,12}", "[ -~\n\r\t\"',é]{0,20}"),
                0..6,
            )
        ) {
            let equations: Vec<store::Equation> =
                rows.iter().map(|(k, i, n, q)| e(*k, *i, n, q)).collect();
            let mut out = Vec::new();
            write(&mut out, &equations).unwrap();
            let text = String::from_utf8(out).unwrap();
            let p = read(&text);
            prop_assert!(p.problems.is_empty(), "{:?} in {text:?}", p.problems);
            let back: Vec<store::Equation> = p.equations.into_iter().map(|(_, e)| e).collect();
            prop_assert_eq!(back, equations, "{:?}", text);
        }
    }
}
