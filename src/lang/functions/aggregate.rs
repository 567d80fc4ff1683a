//! Aggregates: a vector in, one value out.

use crate::lang::function::Function;

/// The aggregate functions.
pub(super) static FUNCTIONS: &[Function] = &[];
