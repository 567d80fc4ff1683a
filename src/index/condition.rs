//! Search conditions: `AVG(w) op X`, `MIN(w) op X`, `MAX(w) op X`, `SUM(w) op X` over a
//! sliding window `w`, and `RUN(op X, d)`, with `op` one of `> >= < <=`.
//!
//! Names are case-insensitive and spaces are free between tokens. Durations are written
//! with a unit (`250ms`, `5s`, `10m`, `1h`, `1d`); `X` is any finite number (`-3`,
//! `1.5`, `2e3`). A parse error names the 1-based column where the text went wrong and
//! what was expected there.

use std::fmt;

use super::Micros;

/// A comparison with a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

impl Op {
    /// Whether `v op x` holds (false when either is NaN).
    pub fn holds(self, v: f64, x: f64) -> bool {
        match self {
            Op::Gt => v > x,
            Op::Ge => v >= x,
            Op::Lt => v < x,
            Op::Le => v <= x,
        }
    }

    /// Whether a value `v` with `v.cmp(x) == ord` satisfies the comparison.
    pub fn holds_ordering(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Op::Gt => ord == Greater,
            Op::Ge => ord != Less,
            Op::Lt => ord == Less,
            Op::Le => ord != Greater,
        }
    }

    /// Whether the comparison asks for large values (`>`, `>=`).
    pub fn is_upward(self) -> bool {
        matches!(self, Op::Gt | Op::Ge)
    }

    fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }
}

/// The aggregate of a window condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    /// The mean of the window's values (compared exactly, without rounding).
    Avg,
    /// The smallest value.
    Min,
    /// The largest value.
    Max,
    /// The sum of the values (compared exactly, without rounding).
    Sum,
}

impl Agg {
    fn as_str(self) -> &'static str {
        match self {
            Agg::Avg => "AVG",
            Agg::Min => "MIN",
            Agg::Max => "MAX",
            Agg::Sum => "SUM",
        }
    }
}

/// What a condition asks of the rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// `AGG(window) op x`: a window opened by each numeric row.
    Window {
        /// The aggregate.
        agg: Agg,
        /// The window's length (positive).
        window: Micros,
    },
    /// `RUN(op x, min_span)`: consecutive rows all satisfying `op x`.
    Run {
        /// The shortest span (last − first row time) of a matching run.
        min_span: Micros,
        /// Runs break at gaps longer than this, when set (`--max-gap`).
        max_gap: Option<Micros>,
    },
}

/// A parsed search condition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Condition {
    /// What is asked.
    pub kind: Kind,
    /// The comparison.
    pub op: Op,
    /// The threshold (finite).
    pub x: f64,
}

/// Why a condition was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    /// The text does not follow the grammar.
    #[error("condition, column {column}: expected {expected}, found {found}")]
    Syntax {
        /// 1-based column (in characters) where the text went wrong.
        column: usize,
        /// What was expected there.
        expected: &'static str,
        /// What was found (quoted text or "the end").
        found: String,
    },
    /// A window or span of zero length.
    #[error("condition, column {column}: the window must be longer than zero")]
    ZeroWindow {
        /// 1-based column of the duration.
        column: usize,
    },
    /// `--max-gap` given for a window condition.
    #[error("--max-gap applies to RUN conditions only")]
    MaxGapWithoutRun,
}

impl Condition {
    /// Parses `text`.
    ///
    /// # Errors
    /// [`ConditionError::Syntax`] naming the column and what was expected there, or
    /// [`ConditionError::ZeroWindow`] for `AVG(0s) …`.
    pub fn parse(text: &str) -> Result<Condition, ConditionError> {
        let mut p = Parser::new(text);
        let name_col = p.column();
        let name = p.word();
        let cond = match name.to_ascii_uppercase().as_str() {
            "RUN" => {
                p.expect("(", "`(`")?;
                let op = p.op()?;
                let x = p.number()?;
                p.expect(",", "`,` and a duration such as 5s")?;
                let (min_span, _) = p.duration()?;
                p.expect(")", "`)`")?;
                Condition {
                    kind: Kind::Run {
                        min_span,
                        max_gap: None,
                    },
                    op,
                    x,
                }
            }
            upper => {
                let agg = match upper {
                    "AVG" => Agg::Avg,
                    "MIN" => Agg::Min,
                    "MAX" => Agg::Max,
                    "SUM" => Agg::Sum,
                    _ => {
                        return Err(ConditionError::Syntax {
                            column: name_col,
                            expected: "AVG, MIN, MAX, SUM or RUN",
                            found: p.found_at(&name),
                        })
                    }
                };
                p.expect("(", "`(`")?;
                let (window, column) = p.duration()?;
                if window == 0 {
                    return Err(ConditionError::ZeroWindow { column });
                }
                p.expect(")", "`)`")?;
                let op = p.op()?;
                let x = p.number()?;
                Condition {
                    kind: Kind::Window { agg, window },
                    op,
                    x,
                }
            }
        };
        p.end()?;
        Ok(cond)
    }

    /// Sets `--max-gap` (RUN only).
    ///
    /// # Errors
    /// [`ConditionError::MaxGapWithoutRun`] for a window condition.
    pub fn with_max_gap(mut self, gap: Option<Micros>) -> Result<Condition, ConditionError> {
        match (&mut self.kind, gap) {
            (_, None) => Ok(self),
            (Kind::Run { max_gap, .. }, Some(g)) => {
                *max_gap = Some(g);
                Ok(self)
            }
            (Kind::Window { .. }, Some(_)) => Err(ConditionError::MaxGapWithoutRun),
        }
    }

    /// The window of a window condition, the shortest span of a RUN: the length the
    /// search compares bucket lengths with.
    pub fn length(&self) -> Micros {
        match self.kind {
            Kind::Window { window, .. } => window,
            Kind::Run { min_span, .. } => min_span,
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::Window { agg, window } => {
                write!(f, "{}(", agg.as_str())?;
                super::feature::write_length(f, window)?;
                write!(f, ") {} {}", self.op.as_str(), self.x)
            }
            Kind::Run { min_span, max_gap } => {
                write!(f, "RUN({} {}, ", self.op.as_str(), self.x)?;
                super::feature::write_length(f, min_span)?;
                f.write_str(")")?;
                if let Some(g) = max_gap {
                    f.write_str(" --max-gap ")?;
                    super::feature::write_length(f, g)?;
                }
                Ok(())
            }
        }
    }
}

/// A cursor over the condition's characters.
struct Parser<'a> {
    chars: Vec<(usize, char)>,
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Parser<'a> {
        Parser {
            chars: text.char_indices().collect(),
            text,
            pos: 0,
        }
    }

    fn skip_spaces(&mut self) {
        while self
            .chars
            .get(self.pos)
            .is_some_and(|(_, c)| c.is_whitespace())
        {
            self.pos += 1;
        }
    }

    /// The 1-based column of the next token.
    fn column(&mut self) -> usize {
        self.skip_spaces();
        self.pos + 1
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_spaces();
        self.chars.get(self.pos).map(|(_, c)| *c)
    }

    /// The text from the current position to the next space or punctuation.
    fn found(&mut self) -> String {
        self.skip_spaces();
        self.rest_word()
    }

    /// The word at the current position, quoted, or `the end`.
    fn rest_word(&self) -> String {
        let rest: String = self.chars[self.pos..]
            .iter()
            .map(|(_, c)| *c)
            .take_while(|c| !c.is_whitespace())
            .collect();
        if rest.is_empty() {
            "the end".to_string()
        } else {
            format!("`{rest}`")
        }
    }

    fn found_at(&self, word: &str) -> String {
        if word.is_empty() {
            self.rest_word()
        } else {
            format!("`{word}`")
        }
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> String {
        self.skip_spaces();
        let start = self.pos;
        while self.chars.get(self.pos).is_some_and(|(_, c)| f(*c)) {
            self.pos += 1;
        }
        self.slice(start, self.pos).to_string()
    }

    fn slice(&self, from: usize, to: usize) -> &'a str {
        let byte = |i: usize| self.chars.get(i).map_or(self.text.len(), |(b, _)| *b);
        &self.text[byte(from)..byte(to)]
    }

    fn word(&mut self) -> String {
        self.take_while(|c| c.is_ascii_alphabetic())
    }

    fn syntax(&mut self, expected: &'static str) -> ConditionError {
        let column = self.column();
        ConditionError::Syntax {
            column,
            expected,
            found: self.found(),
        }
    }

    fn expect(&mut self, token: &str, expected: &'static str) -> Result<(), ConditionError> {
        self.skip_spaces();
        let mut i = self.pos;
        for t in token.chars() {
            if self.chars.get(i).map(|(_, c)| *c) != Some(t) {
                return Err(self.syntax(expected));
            }
            i += 1;
        }
        self.pos = i;
        Ok(())
    }

    fn op(&mut self) -> Result<Op, ConditionError> {
        const EXPECTED: &str = "a comparison (`>`, `>=`, `<` or `<=`)";
        let op = match self.peek() {
            Some('>') => Op::Gt,
            Some('<') => Op::Lt,
            _ => return Err(self.syntax(EXPECTED)),
        };
        self.pos += 1;
        if self.chars.get(self.pos).map(|(_, c)| *c) == Some('=') {
            self.pos += 1;
            return Ok(if op == Op::Gt { Op::Ge } else { Op::Le });
        }
        Ok(op)
    }

    fn number(&mut self) -> Result<f64, ConditionError> {
        const EXPECTED: &str = "a number such as 1500, -2.5 or 1e3";
        let column = self.column();
        let start = self.pos;
        let text =
            self.take_while(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
        match text.parse::<f64>() {
            Ok(x) if x.is_finite() && !text.is_empty() => Ok(x),
            _ => {
                self.pos = start;
                Err(ConditionError::Syntax {
                    column,
                    expected: EXPECTED,
                    found: self.found(),
                })
            }
        }
    }

    fn duration(&mut self) -> Result<(Micros, usize), ConditionError> {
        const EXPECTED: &str = "a duration such as 5s, 250ms, 10m, 1h or 1d";
        let column = self.column();
        let start = self.pos;
        let text = self.take_while(|c| c.is_ascii_alphanumeric());
        match crate::duration::parse_micros(&text) {
            Ok(d) if !text.is_empty() => Ok((Micros::try_from(d).unwrap_or(Micros::MAX), column)),
            _ => {
                self.pos = start;
                Err(ConditionError::Syntax {
                    column,
                    expected: EXPECTED,
                    found: self.found(),
                })
            }
        }
    }

    fn end(&mut self) -> Result<(), ConditionError> {
        if self.peek().is_some() {
            return Err(self.syntax("the end of the condition"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::SECOND;

    fn syntax(text: &str) -> (usize, &'static str) {
        match Condition::parse(text) {
            Err(ConditionError::Syntax {
                column, expected, ..
            }) => (column, expected),
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn conditions_parse() {
        let c = Condition::parse("avg( 5m ) > 1500").unwrap();
        assert_eq!(
            c,
            Condition {
                kind: Kind::Window {
                    agg: Agg::Avg,
                    window: 300 * SECOND
                },
                op: Op::Gt,
                x: 1500.0
            }
        );
        let c = Condition::parse("  RUN(>=20,5s)").unwrap();
        assert_eq!(
            c.kind,
            Kind::Run {
                min_span: 5 * SECOND,
                max_gap: None
            }
        );
        assert_eq!((c.op, c.x), (Op::Ge, 20.0));
        let c = Condition::parse("Sum(250ms)<=-1.5e-3").unwrap();
        assert_eq!((c.op, c.x, c.length()), (Op::Le, -1.5e-3, 250_000));
        assert_eq!(
            Condition::parse("MIN(1d) < 0").unwrap().to_string(),
            "MIN(1d) < 0"
        );
        assert_eq!(Condition::parse("max(10m)>=7.5").unwrap().op, Op::Ge);
    }

    #[test]
    fn errors_name_the_column() {
        assert_eq!(syntax("AVG(5) > x").0, 5);
        assert!(syntax("AVG(5) > x").1.contains("a duration such as 5s"));
        assert_eq!(syntax("AVG(5s) > x").0, 11);
        assert!(syntax("AVG(5s) > x").1.contains("a number"));
        assert_eq!(syntax("RUN(> 3)").0, 8);
        assert!(syntax("RUN(> 3)").1.contains("duration"));
        assert_eq!(syntax("MEDIAN(5s) > 1").0, 1);
        assert_eq!(syntax("AVG(5s) = 1").0, 9);
        assert_eq!(syntax("AVG(5s) > 1 extra").0, 13);
        assert_eq!(syntax("AVG(5s > 1").0, 8);
        assert_eq!(syntax("").0, 1);
        assert_eq!(
            Condition::parse("AVG(0s) > 1"),
            Err(ConditionError::ZeroWindow { column: 5 })
        );
        let e = Condition::parse("AVG(5) > x").unwrap_err().to_string();
        assert!(e.contains("column 5"), "{e}");
    }

    #[test]
    fn max_gap_is_for_runs_only() {
        let run = Condition::parse("RUN(> 1, 5s)").unwrap();
        let run = run.with_max_gap(Some(2 * SECOND)).unwrap();
        assert_eq!(
            run.kind,
            Kind::Run {
                min_span: 5 * SECOND,
                max_gap: Some(2 * SECOND)
            }
        );
        let avg = Condition::parse("AVG(5s) > 1").unwrap();
        assert_eq!(
            avg.with_max_gap(Some(SECOND)),
            Err(ConditionError::MaxGapWithoutRun)
        );
    }
}
