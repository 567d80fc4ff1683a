//! Calling functions in unit tests exactly as the evaluator will: looked up by name or
//! alias, arity checked, `EmptyRule::Propagate` applied before the call.

use std::sync::Arc;

use crate::lang::function::{CallCx, EmptyRule};
use crate::lang::value::{Reason, Value};

/// Calls `name` with `ops` and a context seeded with 1.
pub(super) fn call(name: &str, ops: &[Value]) -> Value {
    call_cx(name, ops, &mut CallCx::new(1))
}

/// Calls `name` with `ops` in the context `cx`.
pub(super) fn call_cx(name: &str, ops: &[Value], cx: &mut CallCx) -> Value {
    let f = super::find(name).unwrap_or_else(|| panic!("no function {name}"));
    assert_eq!(f.operands.len(), ops.len(), "arity of {name}");
    if f.empty == EmptyRule::Propagate {
        if let Some(e) = ops.iter().find(|v| v.is_empty()) {
            return e.clone();
        }
    }
    (f.imp)(ops, cx)
}

/// A number.
pub(super) fn n(x: f64) -> Value {
    Value::Num(x)
}

/// A string.
pub(super) fn s(x: &str) -> Value {
    Value::str(x)
}

/// A numeric vector.
pub(super) fn ns(x: &[f64]) -> Value {
    Value::Nums(Arc::from(x))
}

/// A general vector.
pub(super) fn list(x: &[Value]) -> Value {
    Value::List(Arc::from(x))
}

/// An empty value with `reason`.
pub(super) fn e(reason: Reason) -> Value {
    Value::Empty(reason)
}

/// The `#NULL` operand.
pub(super) fn null() -> Value {
    Value::Empty(Reason::Missing(Arc::from("#NULL")))
}

/// Asserts that `v` is empty with an `Invalid` reason naming `fname`.
pub(super) fn assert_invalid(v: Value, fname: &str) {
    match v {
        Value::Empty(Reason::Invalid(why)) => {
            assert!(why.starts_with(fname), "{why:?} should name {fname}")
        }
        other => panic!("expected an invalid-kind empty from {fname}, got {other:?}"),
    }
}

/// Calls a one-operand function.
pub(super) fn call1(name: &str, op: &Value) -> Value {
    call(name, std::slice::from_ref(op))
}
