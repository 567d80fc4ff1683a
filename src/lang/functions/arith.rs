//! Arithmetic: `+ - * /`, `ABS`, `MOD`, `MAX`, `MIN`, `POW`, rounding, and the bitwise
//! `AND`, `OR`, `SHL`, `SHR`.
//!
//! All scalar and allocation-free. Results go through [`Value::num`], so an overflow or a
//! `NaN` becomes empty instead of reaching the store.

use crate::lang::function::{CallCx, Function};
use crate::lang::value::{Reason, Value};

use super::operand::{empty, num, pair, Res};

/// The arithmetic functions.
pub(super) static FUNCTIONS: &[Function] = &[
    entry!("ADD", ["+"], [N, N], Propagate, add),
    entry!("SUB", ["-"], [N, N], Propagate, sub),
    entry!("MUL", ["*"], [N, N], Propagate, mul),
    entry!("DIV", ["/"], [N, N], Propagate, div),
    entry!("ABS", [], [N], Propagate, abs),
    entry!("MOD", [], [N, N], Propagate, modulo),
    entry!("MAX", [], [N, N], Propagate, max),
    entry!("MIN", [], [N, N], Propagate, min),
    entry!("POW", [], [N, N], Propagate, pow),
    entry!("ROUND", [], [N], Propagate, round),
    entry!("ROUNDX", [], [N, N], Propagate, roundx),
    entry!("AND", [], [N, N], Propagate, and),
    entry!("OR", [], [N, N], Propagate, or),
    entry!("SHL", [], [N, N], Propagate, shl),
    entry!("SHR", [], [N, N], Propagate, shr),
];

fn add(a: &[Value], _: &mut CallCx) -> Res {
    let (x, y) = pair(a, "ADD: expects two numbers")?;
    Ok(Value::num(x + y))
}

fn sub(a: &[Value], _: &mut CallCx) -> Res {
    let (x, y) = pair(a, "SUB: expects two numbers")?;
    Ok(Value::num(x - y))
}

fn mul(a: &[Value], _: &mut CallCx) -> Res {
    let (x, y) = pair(a, "MUL: expects two numbers")?;
    Ok(Value::num(x * y))
}

fn div(a: &[Value], _: &mut CallCx) -> Res {
    let (x, y) = pair(a, "DIV: expects two numbers")?;
    if y == 0.0 {
        return Err(empty(Reason::DivisionByZero));
    }
    Ok(Value::num(x / y))
}

fn abs(a: &[Value], _: &mut CallCx) -> Res {
    Ok(Value::num(num(&a[0], "ABS: expects a number")?.abs()))
}

/// Truncated remainder (the sign of a), as Java's and Rust's `%`.
fn modulo(a: &[Value], _: &mut CallCx) -> Res {
    let (x, y) = pair(a, "MOD: expects two numbers")?;
    if y == 0.0 {
        return Err(empty(Reason::DivisionByZero));
    }
    Ok(Value::num(x % y))
}

fn max(a: &[Value], _: &mut CallCx) -> Res {
    let (x, y) = pair(a, "MAX: expects two numbers")?;
    Ok(Value::num(x.max(y)))
}

fn min(a: &[Value], _: &mut CallCx) -> Res {
    let (x, y) = pair(a, "MIN: expects two numbers")?;
    Ok(Value::num(x.min(y)))
}

fn pow(a: &[Value], _: &mut CallCx) -> Res {
    let (x, y) = pair(a, "POW: expects two numbers")?;
    Ok(Value::num(x.powf(y)))
}

/// Half away from zero.
fn round(a: &[Value], _: &mut CallCx) -> Res {
    Ok(Value::num(num(&a[0], "ROUND: expects a number")?.round()))
}

/// `round(a·10^b) / 10^b` (half away from zero, in binary floating point); b is truncated
/// toward zero and may be negative (`ROUNDX 1250 -2` → 1300).
fn roundx(a: &[Value], _: &mut CallCx) -> Res {
    let (x, b) = pair(a, "ROUNDX: expects two numbers")?;
    let b = b.trunc().clamp(-400.0, 400.0) as i32;
    if b >= 0 {
        let p = 10f64.powi(b);
        let scaled = x * p;
        if !scaled.is_finite() || scaled.abs() >= 4.5e15 {
            // Already exact to b decimals.
            return Ok(Value::num(x));
        }
        Ok(Value::num(scaled.round() / p))
    } else {
        let p = 10f64.powi(-b);
        let r = (x / p).round();
        Ok(if r == 0.0 {
            Value::Num(0.0)
        } else {
            Value::num(r * p)
        })
    }
}

/// A number as a 64-bit integer, truncated toward zero; out of range beyond i64.
fn int64(x: f64) -> Result<i64, Value> {
    let t = x.trunc();
    if (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&t) {
        Ok(t as i64)
    } else {
        Err(empty(Reason::OutOfRange))
    }
}

fn and(a: &[Value], _: &mut CallCx) -> Res {
    let (x, y) = pair(a, "AND: expects two numbers")?;
    Ok(Value::num((int64(x)? & int64(y)?) as f64))
}

fn or(a: &[Value], _: &mut CallCx) -> Res {
    let (x, y) = pair(a, "OR: expects two numbers")?;
    Ok(Value::num((int64(x)? | int64(y)?) as f64))
}

/// a truncated toward zero must lie in [0, 2^32); b truncated toward zero, taken
/// modulo 32 (a negative b rotates the other way).
fn rotation(x: f64, b: f64) -> Result<(u32, u32), Value> {
    let t = x.trunc();
    if !(0.0..=u32::MAX as f64).contains(&t) {
        return Err(empty(Reason::OutOfRange));
    }
    let bits = (b.trunc() as i64).rem_euclid(32) as u32;
    Ok((t as u32, bits))
}

fn shl(a: &[Value], _: &mut CallCx) -> Res {
    let (x, b) = pair(a, "SHL: expects two numbers")?;
    let (x, bits) = rotation(x, b)?;
    Ok(Value::Num(x.rotate_left(bits) as f64))
}

fn shr(a: &[Value], _: &mut CallCx) -> Res {
    let (x, b) = pair(a, "SHR: expects two numbers")?;
    let (x, bits) = rotation(x, b)?;
    Ok(Value::Num(x.rotate_right(bits) as f64))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{assert_invalid, call, e, n, ns, s};
    use crate::lang::value::Reason;

    #[test]
    fn basic_arithmetic_and_aliases() {
        assert_eq!(call("+", &[n(1.5), n(2.0)]), n(3.5));
        assert_eq!(call("ADD", &[s(" 2 "), n(2.0)]), n(4.0));
        assert_eq!(call("-", &[n(1.0), n(3.0)]), n(-2.0));
        assert_eq!(call("sub", &[n(1.0), n(3.0)]), n(-2.0));
        assert_eq!(call("*", &[n(3.0), n(-4.0)]), n(-12.0));
        assert_eq!(call("MUL", &[n(3.0), s("1e1")]), n(30.0));
        assert_eq!(call("/", &[n(7.0), n(2.0)]), n(3.5));
        assert_eq!(call("DIV", &[n(-1.0), n(4.0)]), n(-0.25));
    }

    #[test]
    fn arithmetic_edges() {
        assert_eq!(call("/", &[n(1.0), n(0.0)]), e(Reason::DivisionByZero));
        assert_eq!(call("/", &[n(0.0), s("0")]), e(Reason::DivisionByZero));
        assert_eq!(call("+", &[s("abc"), n(1.0)]), e(Reason::NotANumber));
        assert_eq!(call("*", &[n(1.0), s("")]), e(Reason::NotANumber));
        assert_invalid(call("+", &[ns(&[1.0]), n(1.0)]), "ADD");
        assert_invalid(call("-", &[n(1.0), ns(&[])]), "SUB");
        assert!(call("*", &[n(1e300), n(1e300)]).is_empty(), "overflow");
        let missing = e(Reason::Missing("x".into()));
        assert_eq!(call("+", &[missing.clone(), n(1.0)]), missing);
    }

    #[test]
    fn abs_mod_max_min() {
        assert_eq!(call("ABS", &[n(-2.5)]), n(2.5));
        assert_eq!(call("ABS", &[n(3.0)]), n(3.0));
        assert_eq!(call("ABS", &[s("x")]), e(Reason::NotANumber));
        assert_eq!(call("MOD", &[n(7.0), n(3.0)]), n(1.0));
        assert_eq!(call("MOD", &[n(-7.0), n(3.0)]), n(-1.0));
        assert_eq!(call("MOD", &[n(7.5), n(2.0)]), n(1.5));
        assert_eq!(call("MOD", &[n(7.0), n(0.0)]), e(Reason::DivisionByZero));
        assert_eq!(call("MAX", &[n(1.0), n(-2.0)]), n(1.0));
        assert_eq!(call("MIN", &[n(1.0), n(-2.0)]), n(-2.0));
        assert_eq!(call("MAX", &[s("5"), n(4.0)]), n(5.0));
        assert_invalid(call("MIN", &[ns(&[1.0]), n(4.0)]), "MIN");
    }

    #[test]
    fn pow() {
        assert_eq!(call("POW", &[n(2.0), n(10.0)]), n(1024.0));
        assert_eq!(call("POW", &[n(4.0), n(0.5)]), n(2.0));
        assert_eq!(call("POW", &[n(2.0), n(-1.0)]), n(0.5));
        assert!(call("POW", &[n(0.0), n(-1.0)]).is_empty(), "infinite");
        assert!(call("POW", &[n(-8.0), n(0.5)]).is_empty(), "NaN");
        assert_eq!(call("POW", &[s("a"), n(2.0)]), e(Reason::NotANumber));
    }

    #[test]
    fn rounding() {
        assert_eq!(call("ROUND", &[n(2.5)]), n(3.0));
        assert_eq!(call("ROUND", &[n(-2.5)]), n(-3.0));
        assert_eq!(call("ROUND", &[n(2.4)]), n(2.0));
        assert_eq!(call("ROUND", &[s("q")]), e(Reason::NotANumber));
        assert_eq!(call("ROUNDX", &[n(1.23456), n(2.0)]), n(1.23));
        assert_eq!(call("ROUNDX", &[n(-3.145), n(1.0)]), n(-3.1));
        assert_eq!(call("ROUNDX", &[n(1250.0), n(-2.0)]), n(1300.0));
        assert_eq!(call("ROUNDX", &[n(1234.5), n(0.0)]), n(1235.0));
        assert_eq!(call("ROUNDX", &[n(1.005), n(2.0)]), n(1.0));
        assert_eq!(call("ROUNDX", &[n(0.125), n(2.9)]), n(0.13));
        assert_eq!(call("ROUNDX", &[n(1.5e300), n(20.0)]), n(1.5e300));
        assert_eq!(call("ROUNDX", &[n(123.0), n(-500.0)]), n(0.0));
        assert_eq!(call("ROUNDX", &[n(1.0), s("b")]), e(Reason::NotANumber));
    }

    #[test]
    fn bitwise() {
        assert_eq!(call("AND", &[n(12.0), n(10.0)]), n(8.0));
        assert_eq!(call("OR", &[n(12.0), n(10.0)]), n(14.0));
        assert_eq!(call("AND", &[n(12.9), n(10.2)]), n(8.0));
        assert_eq!(call("AND", &[n(-1.0), n(6.0)]), n(6.0));
        assert_eq!(call("OR", &[n(-8.0), n(1.0)]), n(-7.0));
        assert_eq!(call("AND", &[n(1e19), n(1.0)]), e(Reason::OutOfRange));
        assert_eq!(call("OR", &[s("x"), n(1.0)]), e(Reason::NotANumber));
        assert_invalid(call("AND", &[n(1.0), ns(&[1.0])]), "AND");
    }

    #[test]
    fn rotation() {
        assert_eq!(call("SHL", &[n(1.0), n(4.0)]), n(16.0));
        assert_eq!(call("SHL", &[n(2147483648.0), n(1.0)]), n(1.0));
        assert_eq!(call("SHR", &[n(1.0), n(1.0)]), n(2147483648.0));
        assert_eq!(call("SHR", &[n(16.0), n(4.0)]), n(1.0));
        assert_eq!(call("SHL", &[n(1.0), n(33.0)]), n(2.0));
        assert_eq!(call("SHL", &[n(1.0), n(-1.0)]), n(2147483648.0));
        assert_eq!(call("SHR", &[n(4294967295.0), n(7.0)]), n(4294967295.0));
        assert_eq!(call("SHL", &[n(-1.0), n(1.0)]), e(Reason::OutOfRange));
        assert_eq!(
            call("SHL", &[n(4294967296.0), n(1.0)]),
            e(Reason::OutOfRange)
        );
        assert_eq!(call("SHR", &[n(1.0), s("z")]), e(Reason::NotANumber));
    }
}
