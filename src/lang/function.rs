//! The function table: what a function is (name, operands, how it treats empty) and the
//! context a function may use while it runs.
//!
//! Adding a function is one entry in one of the group tables under `functions/` plus its
//! documentation in `docs/language.md`.

use std::sync::Arc;

use super::functions::Memo;
use super::value::Value;

/// The implementation of a function: its evaluated operands in order, and the call context.
pub type Impl = fn(&[Value], &mut CallCx) -> Value;

/// What kind of value an operand is expected to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operand {
    /// N: a number (or a string that reads as one).
    N,
    /// S: a string.
    S,
    /// A: a numeric vector.
    A,
    /// T: a string or numeric vector.
    T,
    /// Any scalar or vector.
    Any,
    /// `@name`: an output channel the function writes to (e.g. `SDATCTRL`); it arrives in
    /// the operand list as a [`Value::Str`] holding the channel name.
    Output,
}

/// How a function treats empty operands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmptyRule {
    /// Any empty operand makes the result empty; the function is not called.
    Propagate,
    /// The function receives empty operands and decides (`IF`, `IFNA`, `ISA`, `SCNT0`, …).
    Accept,
}

/// One function of the language.
#[derive(Debug)]
pub struct Function {
    /// The canonical name, in capitals (`ADD`, `SNRM`, `IF`).
    pub name: &'static str,
    /// Other spellings, e.g. the operator symbol `+` for `ADD`.
    pub aliases: &'static [&'static str],
    /// The operands in order; their number is the function's arity.
    pub operands: &'static [Operand],
    /// How empty operands are treated.
    pub empty: EmptyRule,
    /// The implementation.
    pub imp: Impl,
}

/// What a running function may use besides its operands.
#[derive(Debug)]
pub struct CallCx {
    /// The random number generator, seeded by the caller from the row key and equation
    /// so that recalculating a row gives the same result.
    pub rng: Rng,
    /// Values written to `@name` output channels during this evaluation, in order.
    pub outputs: Vec<(Arc<str>, Value)>,
    /// Histogram axes, points and lists read so far; a [`super::Machine`] carries them
    /// from one evaluation to the next.
    pub(crate) memo: Memo,
}

impl CallCx {
    /// A context whose random numbers are derived from `seed`.
    pub fn new(seed: u64) -> CallCx {
        CallCx {
            rng: Rng::new(seed),
            outputs: Vec::new(),
            memo: Memo::default(),
        }
    }
}

/// A small, fast, reproducible random number generator (SplitMix64).
///
/// Not cryptographic: its only job is that the same seed gives the same sequence on
/// every machine and every version.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}
