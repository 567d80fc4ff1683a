//! The equation language: parser, checker/compiler, evaluator, value model and function
//! library.
//!
//! Pure: no I/O, no async. An equation is parsed and checked once into a [`Program`]
//! (or, with its key, an [`Equation`]) and then evaluated any number of times by a
//! [`Machine`] against a [`Context`] that the engine implements. Names are resolved to
//! slots of a [`Symbols`] table at compile time, so evaluation never looks a name up.
//! See `docs/language.md` for the user's reference.
//!
//! # Grammar
//!
//! ```text
//! equation  = space* expr space* END
//! expr      = "(" space* expr space* ")"          parentheses: optional, must match
//!           | NUMBER | STRING | VARIABLE | CONSTANT
//!           | FUNCTION (space+ operand){arity}     exactly the function's arity
//! operand   = expr | OUTPUT                        OUTPUT only where the function
//!                                                  declares an output operand
//! NUMBER    = [+-]? (DIGIT+ ("." DIGIT*)? | "." DIGIT+) ([eE] [+-]? DIGIT+)?
//! STRING    = "'" (any character but "'" | "''")* "'"      '' is one apostrophe
//! VARIABLE  = "$" NAME | "$$" NAME | "$d$" NAME | "$j$" NAME   ($D$, $J$ also read)
//! CONSTANT  = "#" NAME               a pseudo-constant (#MT, #NULL, …) or a stored constant
//! OUTPUT    = "@" NAME
//! NAME      = (letter | DIGIT | "_")+            letters in any script
//! FUNCTION  = a name or symbol of the function table, any case (IF, +, >=, SNRM)
//! ```
//!
//! Tokens are separated by whitespace; `(` and `)` separate themselves. A string must be
//! followed by whitespace, a parenthesis or the end. A token that starts with a digit,
//! or with `.`, `+` or `-` followed by a digit (or `.`), is a number and must be one
//! entirely; a lone `-` or `+` is the operator. Whether `$NAME` / `$$NAME` means the
//! level's own value (`$X`) or the children's (`$x`) is decided by [`is_capitals`].

pub mod ast;
pub mod compile;
pub mod context;
pub mod error;
pub mod eval;
pub mod function;
pub mod functions;
pub mod parse;
pub mod table;
pub mod value;

#[cfg(test)]
mod proptests;
#[cfg(test)]
pub(crate) mod test_functions;

pub use ast::{Expr, ExprKind, Span};
pub use compile::{Equation, Program, Read};
pub use context::{
    is_capitals, Bindings, ConstSlot, Context, Level, Pseudo, Slot, Symbols, VarForm,
};
pub use error::{EquationError, EquationKey, ErrorKind};
pub use eval::{seed_for, Evaluated, Machine};
pub use function::{CallCx, EmptyRule, Function, Operand};
pub use parse::parse;
pub use table::FunctionTable;
pub use value::{Reason, Value};
