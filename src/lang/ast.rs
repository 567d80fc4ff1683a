//! The syntax tree of an equation, with source positions, and the printer that writes a
//! tree back as canonical source.
//!
//! Canonical source: function names in their canonical spelling (`ADD`, not `+`), one
//! space between tokens, no parentheses, strings in apostrophes with `''` for an
//! apostrophe, numbers in their shortest exact form. Parsing canonical source gives the
//! same tree back (positions aside).

use std::fmt;

use super::context::{Pseudo, VarForm};
use super::function::Function;
use super::value::format_number;

/// A byte range in the equation's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// The first byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// A reference to a function of the table; two are equal when they are the same function.
#[derive(Debug, Clone, Copy)]
pub struct FnRef(pub &'static Function);

impl PartialEq for FnRef {
    fn eq(&self, other: &FnRef) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

/// An expression and where it is in the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What the expression is.
    pub kind: ExprKind,
    /// Where its first token is (for a call: the function name).
    pub span: Span,
}

/// The kinds of expression.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// A number literal.
    Num(f64),
    /// A string literal, with `''` already turned into `'`.
    Str(String),
    /// A variable: its form and its name as written (without the prefix).
    Var(VarForm, String),
    /// A pseudo-constant such as `#MT`.
    Pseudo(Pseudo),
    /// A constant of the `constants` table, `#NAME` (name as written, without `#`).
    Const(String),
    /// An output channel `@name` (name without `@`).
    Output(String),
    /// A function call with its operands.
    Call(FnRef, Vec<Expr>),
}

impl Expr {
    /// An expression at the default position (for building trees in code).
    pub fn new(kind: ExprKind) -> Expr {
        Expr {
            kind,
            span: Span::default(),
        }
    }

    /// The same tree with every position reset, for comparing trees by shape.
    pub fn without_spans(&self) -> Expr {
        let kind = match &self.kind {
            ExprKind::Call(f, args) => {
                ExprKind::Call(*f, args.iter().map(Expr::without_spans).collect())
            }
            other => other.clone(),
        };
        Expr::new(kind)
    }
}

impl fmt::Display for Expr {
    /// Writes the canonical source of the expression.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Num(n) => format_number(*n, f),
            ExprKind::Str(s) => {
                f.write_str("'")?;
                for part in s.split_inclusive('\'') {
                    f.write_str(part)?;
                    if part.ends_with('\'') {
                        f.write_str("'")?;
                    }
                }
                f.write_str("'")
            }
            ExprKind::Var(form, name) => write!(f, "{}{name}", form.prefix()),
            ExprKind::Pseudo(p) => write!(f, "#{}", p.name()),
            ExprKind::Const(name) => write!(f, "#{name}"),
            ExprKind::Output(name) => write!(f, "@{name}"),
            ExprKind::Call(func, args) => {
                f.write_str(func.0.name)?;
                for a in args {
                    write!(f, " {a}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_double_their_apostrophes() {
        let e = Expr::new(ExprKind::Str("it's 'x'".into()));
        assert_eq!(e.to_string(), "'it''s ''x'''");
        assert_eq!(Expr::new(ExprKind::Str(String::new())).to_string(), "''");
    }

    #[test]
    fn variables_and_constants_keep_their_prefix() {
        let v = |form, n: &str| Expr::new(ExprKind::Var(form, n.into())).to_string();
        assert_eq!(v(VarForm::Cur, "tmp"), "$tmp");
        assert_eq!(v(VarForm::PrevUp, "TMP"), "$$TMP");
        assert_eq!(v(VarForm::DayData, "x"), "$d$x");
        assert_eq!(v(VarForm::RangeJobs, "x"), "$j$x");
        assert_eq!(
            Expr::new(ExprKind::Pseudo(Pseudo::Null)).to_string(),
            "#NULL"
        );
        assert_eq!(Expr::new(ExprKind::Num(-0.5)).to_string(), "-0.5");
        assert_eq!(Expr::new(ExprKind::Output("f".into())).to_string(), "@f");
    }
}
