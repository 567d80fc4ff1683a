//! The function library, one file per group (as `docs/language.md`
//! groups them), and the table of all of them.
//!
//! Each group file exports a `FUNCTIONS` table built with `entry!`; a function body has
//! the shape `fn(&[Value], &mut CallCx) -> Result<Value, Value>` where `Err` carries the
//! empty value, so operands are read with the `?` readers of `operand`. Adding a
//! function is one table entry, one small function and its entry in `docs/language.md`
//! (a test checks that the two agree).
//!
//! The groups: `arith` (`+ - * /`, `MOD`, rounding, bitwise), `logic` (comparisons, `IF`
//! and the tests for empty), `time`, `gps`, `random`, `histogram`, `aggregate`
//! (vector → value), `quality` (`SDATCTRL`), `text` (strings, `SLIST`, `SA`, `VT`, `VA`,
//! `VAN`) and `vector` (vector → vector). Tests: `reference` checks `docs/language.md`
//! (entries, signatures, and every example evaluated), `robustness` feeds every function
//! arbitrary operands.

use super::function::Function;

use gps::PointMemo;
use histogram::AxisMemo;
use text::ListMemo;

/// What functions read from strings and keep while a [`super::Machine`] runs: it lends
/// them to each evaluation's [`super::function::CallCx`] and takes them back, so a
/// constant or literal read on every row is read once.
#[derive(Debug, Default)]
pub(crate) struct Memo {
    /// Histogram axes (`HIIX`, `HIST`, …).
    pub(crate) axes: AxisMemo,
    /// GPS points (`GPSDIF`, `GPSST`).
    pub(crate) points: PointMemo,
    /// `&`-lists (`ENUM`).
    pub(crate) lists: ListMemo,
}

/// One row of a group table: name, aliases, operand kinds, empty rule, implementation.
///
/// `entry!("ADD", ["+"], [N, N], Propagate, add)`: the implementation returns
/// `Result<Value, Value>`; both sides are the function's result.
macro_rules! entry {
    ($name:literal, [$($alias:literal),*], [$($op:ident),*], $rule:ident, $imp:path) => {
        $crate::lang::function::Function {
            name: $name,
            aliases: &[$($alias),*],
            operands: &[$($crate::lang::function::Operand::$op),*],
            empty: $crate::lang::function::EmptyRule::$rule,
            imp: |a, cx| match $imp(a, cx) {
                Ok(v) | Err(v) => v,
            },
        }
    };
}

mod aggregate;
mod arith;
mod gps;
mod histogram;
mod logic;
mod operand;
mod quality;
mod random;
#[cfg(test)]
mod reference;
#[cfg(test)]
mod robustness;
#[cfg(test)]
mod testkit;
mod text;
mod time;
mod vector;

/// Every function of the language.
pub fn all() -> impl Iterator<Item = &'static Function> {
    [
        arith::FUNCTIONS,
        logic::FUNCTIONS,
        time::FUNCTIONS,
        gps::FUNCTIONS,
        random::FUNCTIONS,
        histogram::FUNCTIONS,
        aggregate::FUNCTIONS,
        quality::FUNCTIONS,
        text::FUNCTIONS,
        vector::FUNCTIONS,
    ]
    .into_iter()
    .flatten()
}

/// The function called `name` (canonical name or alias, case-insensitive).
///
/// A linear scan: the compiler resolves names once, when equations are loaded.
pub fn find(name: &str) -> Option<&'static Function> {
    all().find(|f| {
        f.name.eq_ignore_ascii_case(name) || f.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    })
}
