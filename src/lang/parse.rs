//! The parser: source text → [`Expr`], with positions.
//!
//! Prefix notation has no delimiters, so the parser needs every function's number of
//! operands: it reads a name, looks it up in the [`FunctionTable`] and then reads exactly
//! that many operands. Tokens are recognised with `nom`; the structure is a small
//! recursive descent with a depth limit, so no input can overflow the stack.

use nom::branch::alt;
use nom::bytes::complete::{take_till1, take_while, take_while1};
use nom::character::complete::{char, digit0, digit1, one_of};
use nom::combinator::{all_consuming, opt, recognize};
use nom::sequence::{pair, tuple};
use nom::IResult;

use super::ast::{Expr, ExprKind, FnRef, Span};
use super::context::{Pseudo, VarForm};
use super::error::{EquationError, ErrorKind};
use super::table::FunctionTable;

/// How deeply expressions (calls and parentheses) may nest.
pub const MAX_DEPTH: usize = 200;

/// Parses an equation into its syntax tree.
///
/// # Errors
/// An [`EquationError`] (without key) naming the column of the first problem: an unknown
/// function, a missing operand, a bad token, unbalanced parentheses or trailing tokens.
pub fn parse(src: &str, table: &FunctionTable) -> Result<Expr, EquationError> {
    let mut p = Parser {
        src,
        pos: 0,
        table,
        depth: 0,
    };
    let first = p.peek()?;
    match first.tok {
        Tok::End => return Err(p.err(first.span.start, ErrorKind::EmptyEquation)),
        Tok::Close => return Err(p.err(first.span.start, ErrorKind::UnmatchedClose)),
        _ => {}
    }
    let expr = p.expr()?;
    let next = p.next()?;
    match next.tok {
        Tok::End => Ok(expr),
        Tok::Close => Err(p.err(next.span.start, ErrorKind::UnmatchedClose)),
        _ => Err(p.err(next.span.start, ErrorKind::Trailing(p.text(next.span)))),
    }
}

/// A token and where it is.
#[derive(Debug)]
struct Token<'a> {
    tok: Tok<'a>,
    span: Span,
}

#[derive(Debug)]
enum Tok<'a> {
    Open,
    Close,
    /// A string literal, decoded.
    Str(String),
    /// Anything else up to whitespace or a parenthesis.
    Word(&'a str),
    End,
}

struct Parser<'s, 't> {
    src: &'s str,
    /// The byte offset of the next unread character.
    pos: usize,
    table: &'t FunctionTable,
    /// The current nesting of calls and parentheses.
    depth: usize,
}

impl<'s> Parser<'s, '_> {
    fn err(&self, at: usize, kind: ErrorKind) -> EquationError {
        EquationError::at(self.src, at, kind)
    }

    /// The source of a span, shortened for messages.
    fn text(&self, span: Span) -> String {
        let t = self.src.get(span.start..span.end).unwrap_or("");
        match t.char_indices().nth(40) {
            Some((i, _)) => format!("{}…", &t[..i]),
            None => t.to_string(),
        }
    }

    /// The next token without consuming it.
    fn peek(&mut self) -> Result<Token<'s>, EquationError> {
        let pos = self.pos;
        let t = self.next();
        self.pos = pos;
        t
    }

    /// Reads the next token.
    fn next(&mut self) -> Result<Token<'s>, EquationError> {
        let rest = &self.src[self.pos..];
        let (after_space, _) = spaces(rest).unwrap_or((rest, ""));
        let start = self.src.len() - after_space.len();
        let mut chars = after_space.chars();
        let (tok, len) = match chars.next() {
            None => (Tok::End, 0),
            Some('(') => (Tok::Open, 1),
            Some(')') => (Tok::Close, 1),
            Some('\'') => {
                let (text, len) = string_literal(after_space)
                    .ok_or_else(|| self.err(start, ErrorKind::UnterminatedString))?;
                (Tok::Str(text), len)
            }
            Some(_) => {
                let (_, w) = word(after_space).map_err(|_| {
                    self.err(
                        start,
                        ErrorKind::Trailing(after_space.chars().take(1).collect()),
                    )
                })?;
                (Tok::Word(w), w.len())
            }
        };
        let end = start + len;
        if matches!(tok, Tok::Str(_)) {
            if let Some(c) = self.src[end..].chars().next() {
                if !(c.is_whitespace() || c == '(' || c == ')') {
                    return Err(self.err(end, ErrorKind::NoSeparator("string")));
                }
            }
        }
        self.pos = end;
        Ok(Token {
            tok,
            span: Span { start, end },
        })
    }

    /// Parses one expression; the caller has made sure a token other than `)` or the end
    /// comes next.
    fn expr(&mut self) -> Result<Expr, EquationError> {
        let t = self.next()?;
        let span = t.span;
        let at = span.start;
        let kind = match t.tok {
            Tok::Open => return self.parenthesised(at),
            Tok::Close => return Err(self.err(at, ErrorKind::UnmatchedClose)),
            Tok::End => return Err(self.err(at, ErrorKind::EmptyEquation)),
            Tok::Str(s) => ExprKind::Str(s),
            Tok::Word(w) => match w.as_bytes()[0] {
                b'$' => {
                    variable(w).ok_or_else(|| self.err(at, ErrorKind::BadName(w.into(), "$")))?
                }
                b'#' => {
                    let name = valid_name(&w[1..])
                        .ok_or_else(|| self.err(at, ErrorKind::BadName(w.into(), "#")))?;
                    match Pseudo::from_name(name) {
                        Some(p) => ExprKind::Pseudo(p),
                        None => ExprKind::Const(name.into()),
                    }
                }
                b'@' => {
                    let name = valid_name(&w[1..])
                        .ok_or_else(|| self.err(at, ErrorKind::BadName(w.into(), "@")))?;
                    ExprKind::Output(name.into())
                }
                _ if starts_like_number(w) => ExprKind::Num(
                    number(w).ok_or_else(|| self.err(at, ErrorKind::BadNumber(w.into())))?,
                ),
                _ => return self.call(w, span),
            },
        };
        Ok(Expr { kind, span })
    }

    /// After `(` at `open`: one expression, then `)`.
    fn parenthesised(&mut self, open: usize) -> Result<Expr, EquationError> {
        self.enter(open)?;
        let next = self.peek()?;
        match next.tok {
            Tok::End => return Err(self.err(open, ErrorKind::UnclosedParen)),
            Tok::Close => {
                self.pos = next.span.start;
                return Err(self.err(open, ErrorKind::EmptyParens));
            }
            _ => {}
        }
        let inner = self.expr()?;
        let close = self.next()?;
        self.depth -= 1;
        match close.tok {
            Tok::Close => Ok(inner),
            Tok::End => Err(self.err(open, ErrorKind::UnclosedParen)),
            _ => Err(self.err(
                close.span.start,
                ErrorKind::ExpectedClose(self.text(close.span)),
            )),
        }
    }

    /// A function name at `span`, then its operands.
    fn call(&mut self, name: &str, span: Span) -> Result<Expr, EquationError> {
        let func = self
            .table
            .get(name)
            .ok_or_else(|| self.err(span.start, ErrorKind::UnknownFunction(name.into())))?;
        self.enter(span.start)?;
        let arity = func.operands.len();
        let mut args = Vec::with_capacity(arity);
        for _ in 0..arity {
            let next = self.peek()?;
            let found = match next.tok {
                Tok::End => Some("the equation ends".to_string()),
                Tok::Close => Some("found ')'".to_string()),
                _ => None,
            };
            if let Some(found) = found {
                return Err(self.err(
                    next.span.start,
                    ErrorKind::MissingOperand {
                        function: name.into(),
                        expected: arity,
                        found,
                    },
                ));
            }
            args.push(self.expr()?);
        }
        self.depth -= 1;
        Ok(Expr {
            kind: ExprKind::Call(FnRef(func), args),
            span,
        })
    }

    fn enter(&mut self, at: usize) -> Result<(), EquationError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(at, ErrorKind::TooDeep(MAX_DEPTH)));
        }
        Ok(())
    }
}

fn spaces(input: &str) -> IResult<&str, &str> {
    take_while(char::is_whitespace)(input)
}

/// A bare token: everything up to whitespace or a parenthesis.
fn word(input: &str) -> IResult<&str, &str> {
    take_till1(|c: char| c.is_whitespace() || c == '(' || c == ')')(input)
}

/// A string literal at the start of `input` (which starts with `'`): its decoded text
/// and its length in bytes, or `None` when it is not closed.
fn string_literal(input: &str) -> Option<(String, usize)> {
    let mut text = String::new();
    let mut rest = &input[1..];
    loop {
        let i = rest.find('\'')?;
        text.push_str(&rest[..i]);
        if rest[i + 1..].starts_with('\'') {
            text.push('\'');
            rest = &rest[i + 2..];
        } else {
            let consumed = input.len() - rest.len() + i + 1;
            return Some((text, consumed));
        }
    }
}

/// Whether a word is meant as a number: a digit first, or `.`/sign followed by one.
fn starts_like_number(w: &str) -> bool {
    let b = w.as_bytes();
    let digit_at = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    match b[0] {
        b'0'..=b'9' => true,
        b'.' => digit_at(1),
        b'+' | b'-' => digit_at(1) || (b.get(1) == Some(&b'.')),
        _ => false,
    }
}

/// The number syntax: `[+-] (digits [. digits] | . digits) [e [+-] digits]`.
fn number_syntax(input: &str) -> IResult<&str, &str> {
    recognize(tuple((
        opt(one_of("+-")),
        alt((
            recognize(pair(digit1, opt(pair(char('.'), digit0)))),
            recognize(pair(char('.'), digit1)),
        )),
        opt(tuple((one_of("eE"), opt(one_of("+-")), digit1))),
    )))(input)
}

/// A finite number, or `None` when `w` is not exactly a number.
fn number(w: &str) -> Option<f64> {
    let (_, text) = all_consuming(number_syntax)(w).ok()?;
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// `name` when it is a valid channel or constant name: letters, digits and `_`.
fn valid_name(name: &str) -> Option<&str> {
    let r: IResult<&str, &str> =
        all_consuming(take_while1(|c: char| c.is_alphanumeric() || c == '_'))(name);
    r.ok().map(|(_, n)| n)
}

/// A variable token (starting with `$`).
fn variable(w: &str) -> Option<ExprKind> {
    let rest = &w[1..];
    let (form, name) = if let Some(name) = rest.strip_prefix('$') {
        let name = valid_name(name)?;
        (VarForm::for_name(true, name), name)
    } else if let Some(name) = rest.strip_prefix("d$").or_else(|| rest.strip_prefix("D$")) {
        (VarForm::DayData, valid_name(name)?)
    } else if let Some(name) = rest.strip_prefix("j$").or_else(|| rest.strip_prefix("J$")) {
        (VarForm::RangeJobs, valid_name(name)?)
    } else {
        let name = valid_name(rest)?;
        (VarForm::for_name(false, name), name)
    };
    Some(ExprKind::Var(form, name.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::test_functions::table;

    fn p(src: &str) -> Result<Expr, EquationError> {
        parse(src, table())
    }

    fn ok(src: &str) -> String {
        match p(src) {
            Ok(e) => e.to_string(),
            Err(e) => panic!("{src}: {e}"),
        }
    }

    fn err(src: &str) -> String {
        match p(src) {
            Ok(e) => panic!("{src} parsed as {e}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn operators_names_and_case() {
        assert_eq!(ok("+ 1 2"), "ADD 1 2");
        assert_eq!(ok("add 1 2"), "ADD 1 2");
        assert_eq!(ok(">= 1 2"), "GET 1 2");
        assert_eq!(ok("  IF > $tmp #TMAX 1 0  "), "IF GT $tmp #TMAX 1 0");
        assert_eq!(ok("- -3 2"), "SUB -3 2");
    }

    #[test]
    fn numbers() {
        assert_eq!(ok("12"), "12");
        assert_eq!(ok("-3.5"), "-3.5");
        assert_eq!(ok("1e-3"), "0.001");
        assert_eq!(ok("+.5"), "0.5");
        assert_eq!(ok("2."), "2");
        assert_eq!(ok("1E3"), "1000");
        assert_eq!(err("12abc"), "column 1: '12abc' is not a number");
        assert_eq!(err("1.2.3"), "column 1: '1.2.3' is not a number");
        assert_eq!(err("1e999"), "column 1: '1e999' is not a number");
        assert_eq!(err("+ 1 -."), "column 5: '-.' is not a number");
    }

    #[test]
    fn strings() {
        assert_eq!(p("'a b'").map(|e| e.kind), Ok(ExprKind::Str("a b".into())));
        assert_eq!(
            p("'it''s'").map(|e| e.kind),
            Ok(ExprKind::Str("it's".into()))
        );
        assert_eq!(p("''").map(|e| e.kind), Ok(ExprKind::Str(String::new())));
        assert_eq!(p("('x')").map(|e| e.kind), Ok(ExprKind::Str("x".into())));
        assert!(err("'abc").contains("column 1: the string is not closed"));
        assert!(err("+ 1 'a''").contains("column 5: the string is not closed"));
        assert_eq!(
            err("'a'b"),
            "column 4: expected a space or parenthesis after the string"
        );
    }

    #[test]
    fn variables() {
        let var = |src: &str| p(src).map(|e| e.kind);
        let v = |f, n: &str| Ok(ExprKind::Var(f, n.into()));
        assert_eq!(var("$tmp"), v(VarForm::Cur, "tmp"));
        assert_eq!(var("$$tmp"), v(VarForm::Prev, "tmp"));
        assert_eq!(var("$TMP"), v(VarForm::Up, "TMP"));
        assert_eq!(var("$T_2"), v(VarForm::Up, "T_2"));
        assert_eq!(var("$Tmp"), v(VarForm::Cur, "Tmp"));
        assert_eq!(var("$$TMP"), v(VarForm::PrevUp, "TMP"));
        assert_eq!(var("$d$tmp"), v(VarForm::DayData, "tmp"));
        assert_eq!(var("$J$x"), v(VarForm::RangeJobs, "x"));
        assert_eq!(var("$d"), v(VarForm::Cur, "d"));
        assert_eq!(var("$teplota_č"), v(VarForm::Cur, "teplota_č"));
        assert!(err("$").contains("'$' is not a valid name"));
        assert!(err("$$$x").contains("is not a valid name"));
        assert!(err("+ 1 $a-b").contains("column 5: '$a-b' is not a valid name"));
    }

    #[test]
    fn constants_pseudo_constants_and_outputs() {
        assert_eq!(p("#MT").map(|e| e.kind), Ok(ExprKind::Pseudo(Pseudo::Mt)));
        assert_eq!(
            p("#null").map(|e| e.kind),
            Ok(ExprKind::Pseudo(Pseudo::Null))
        );
        assert_eq!(
            p("#TMAX").map(|e| e.kind),
            Ok(ExprKind::Const("TMAX".into()))
        );
        assert_eq!(
            p("@flags").map(|e| e.kind),
            Ok(ExprKind::Output("flags".into()))
        );
        assert!(err("#").contains("'#' is not a valid name"));
        assert!(err("@").contains("'@' is not a valid name"));
    }

    #[test]
    fn parentheses_are_optional_and_must_match() {
        assert_eq!(ok("( + 1 2 )"), "ADD 1 2");
        assert_eq!(ok("(+ (1) ((2)))"), "ADD 1 2");
        assert_eq!(ok("+(1)(2)"), "ADD 1 2");
        assert_eq!(err("(+ 1 2"), "column 1: '(' is not closed");
        assert_eq!(err("+ 1 2)"), "column 6: ')' without a matching '('");
        assert_eq!(err(")"), "column 1: ')' without a matching '('");
        assert_eq!(
            err("(+ 1 2 3)"),
            "column 8: expected ')' after one expression, found '3'"
        );
        assert_eq!(err("+ () 1"), "column 3: '()' holds no expression");
        assert_eq!(
            err("(+ 1)"),
            "column 5: ADD expects 2 operands, found ')'".replace("ADD", "+")
        );
    }

    #[test]
    fn missing_operands_unknown_names_and_trailing_tokens() {
        assert_eq!(
            err("SNRM "),
            "column 6: SNRM expects 1 operand, the equation ends"
        );
        assert_eq!(
            err("snrm"),
            "column 5: snrm expects 1 operand, the equation ends"
        );
        assert_eq!(err("FOO 1"), "column 1: unknown function 'FOO'");
        assert_eq!(
            err("+ 1 2 3"),
            "column 7: unexpected '3' after the end of the expression"
        );
        assert_eq!(err(""), "column 1: the equation is empty");
        assert_eq!(err("   "), "column 4: the equation is empty");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "(".repeat(10_000) + "1" + &")".repeat(10_000);
        assert!(err(&deep).contains("nests deeper than 200"));
        let calls = "ABS ".repeat(10_000) + "1";
        assert!(err(&calls).contains("nests deeper than 200"));
        let ok_depth = "ABS ".repeat(150) + "1";
        assert!(p(&ok_depth).is_ok());
    }

    #[test]
    fn positions_are_recorded() {
        let e = p("  + $a  'x'").map(|e| e.without_spans());
        assert!(e.is_ok());
        let Ok(Expr {
            kind: ExprKind::Call(_, args),
            span,
        }) = p("  + $a  'x'")
        else {
            panic!("not a call")
        };
        assert_eq!(span, Span { start: 2, end: 3 });
        assert_eq!(args[0].span, Span { start: 4, end: 6 });
        assert_eq!(args[1].span, Span { start: 8, end: 11 });
    }
}
