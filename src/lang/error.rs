//! Load-time errors of an equation: what is wrong, where (a 1-based column in
//! characters), and which stored equation it is.

use std::fmt;

use thiserror::Error;

/// The key of a stored equation: its `type`, device `id` and output `name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EquationKey {
    /// The level number (1, 2, 4, 5, 6, 7).
    pub ty: i32,
    /// The device id (0: the default for every device).
    pub id: i64,
    /// The output channel.
    pub name: String,
}

impl fmt::Display for EquationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "equation (type {}, id {}, '{}')",
            self.ty,
            self.id,
            self.name.replace('\'', "''")
        )
    }
}

/// An equation that cannot be loaded: the message a user reads is
/// `equation (type 4, id 17, 'tavg') column 6: SNRM expects 1 operand, the equation ends`.
#[derive(Debug, Clone, PartialEq, Error)]
pub struct EquationError {
    /// The equation, when the caller knows it (the CLI's `eval` does not).
    pub key: Option<EquationKey>,
    /// 1-based column in characters where the problem is; one past the end when the
    /// equation ends too early.
    pub column: usize,
    /// What is wrong.
    #[source]
    pub kind: ErrorKind,
}

impl EquationError {
    /// An error at byte offset `at` of `src`, without a key.
    pub(crate) fn at(src: &str, at: usize, kind: ErrorKind) -> EquationError {
        EquationError {
            key: None,
            column: column_of(src, at),
            kind,
        }
    }

    /// The same error naming the equation it belongs to.
    pub fn with_key(mut self, key: EquationKey) -> EquationError {
        self.key = Some(key);
        self
    }
}

impl fmt::Display for EquationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(key) = &self.key {
            write!(f, "{key} ")?;
        }
        write!(f, "column {}: {}", self.column, self.kind)
    }
}

/// The 1-based character column of byte offset `at` in `src` (clamped to one past the end).
pub fn column_of(src: &str, at: usize) -> usize {
    let mut at = at.min(src.len());
    while !src.is_char_boundary(at) {
        at -= 1;
    }
    src[..at].chars().count() + 1
}

/// What is wrong with an equation. Each message is a sentence fragment a user
/// understands; [`EquationError`] adds the key and column.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The equation has no tokens at all.
    #[error("the equation is empty")]
    EmptyEquation,
    /// A function was given too few operands before the equation (or a parenthesis) ended.
    #[error("{function} expects {expected} operand{}, {found}", plural(*expected))]
    MissingOperand {
        /// The function's name as written.
        function: String,
        /// Its number of operands.
        expected: usize,
        /// What came instead: "the equation ends" or "found ')'".
        found: String,
    },
    /// A name that is no function of the language.
    #[error("unknown function '{0}'")]
    UnknownFunction(String),
    /// A token that starts like a number but is not one.
    #[error("'{0}' is not a number")]
    BadNumber(String),
    /// A string without its closing apostrophe.
    #[error("the string is not closed (a missing apostrophe; write '' for one apostrophe)")]
    UnterminatedString,
    /// Something glued to a token that must be followed by a space or parenthesis.
    #[error("expected a space or parenthesis after the {0}")]
    NoSeparator(&'static str),
    /// `$`, `#` or `@` without a valid name after it.
    #[error("'{0}' is not a valid name (letters, digits and _ after {1})")]
    BadName(String, &'static str),
    /// A `)` with no `(` before it.
    #[error("')' without a matching '('")]
    UnmatchedClose,
    /// A `(` whose `)` never comes.
    #[error("'(' is not closed")]
    UnclosedParen,
    /// `()` with nothing inside.
    #[error("'()' holds no expression")]
    EmptyParens,
    /// A parenthesis holding more than one expression.
    #[error("expected ')' after one expression, found '{0}'")]
    ExpectedClose(String),
    /// Tokens after the complete expression.
    #[error("unexpected '{0}' after the end of the expression")]
    Trailing(String),
    /// The nesting is deeper than the parser accepts.
    #[error("the equation nests deeper than {0} levels")]
    TooDeep(usize),
    /// An equation type that is no level.
    #[error("type {0} is not a level (1, 2: data; 4: job; 5: day; 6, 7: summary)")]
    UnknownType(i32),
    /// A variable form that does not exist at this level.
    #[error("{form} variables ('{written}') cannot be used at the {level} level")]
    FormNotAtLevel {
        /// The form, e.g. `$d$x`.
        form: &'static str,
        /// The variable as written.
        written: String,
        /// The level's name.
        level: &'static str,
    },
    /// A pseudo-constant that does not exist at this level.
    #[error("the pseudo-constant #{name} does not exist at the {level} level")]
    PseudoNotAtLevel {
        /// The pseudo-constant's name.
        name: &'static str,
        /// The level's name.
        level: &'static str,
    },
    /// `@name` where no function writes an output channel.
    #[error("'@{0}' can only be an output operand (such as SDATCTRL's second)")]
    OutputNotAllowed(String),
    /// An output operand that is not `@name`.
    #[error("operand {position} of {function} must be an output channel '@name'")]
    OutputExpected {
        /// The function's canonical name.
        function: &'static str,
        /// The 1-based operand position.
        position: usize,
    },
    /// The compiled program would exceed an internal limit.
    #[error("the equation is too long")]
    TooLong,
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_key_column_and_problem() {
        let e = EquationError::at(
            "SNRM ",
            5,
            ErrorKind::MissingOperand {
                function: "SNRM".into(),
                expected: 1,
                found: "the equation ends".into(),
            },
        )
        .with_key(EquationKey {
            ty: 4,
            id: 17,
            name: "tavg".into(),
        });
        assert_eq!(
            e.to_string(),
            "equation (type 4, id 17, 'tavg') column 6: SNRM expects 1 operand, the equation ends"
        );
    }

    #[test]
    fn columns_count_characters() {
        assert_eq!(column_of("ščř x", 0), 1);
        assert_eq!(column_of("ščř x", 7), 5);
        assert_eq!(column_of("ab", 99), 3);
        assert_eq!(column_of("šb", 1), 1);
    }
}
