//! The equation language: parser, checker/compiler, value model and function library.
//!
//! Pure: no I/O, no async. See `docs/language.md` for the user's reference.

pub mod function;
pub mod functions;
pub mod value;

pub use function::{CallCx, EmptyRule, Function, Operand};
pub use value::{Reason, Value};
