//! The evaluator: a stack machine running a compiled [`Program`] against a [`Context`].
//!
//! A [`Machine`] keeps its value stack between evaluations, so evaluating a numeric
//! equation allocates nothing. Failures are values: a missing variable, a division by
//! zero or a function's complaint all end as [`Value::Empty`] with a [`Reason`].
//!
//! Two paths, one meaning: a purely numeric program (number literals, reads, `+ - * /`,
//! comparisons, `IF`) is first run on plain `f64`s; the first value that is not a
//! finite number sends it to the general stack machine, which starts over. The general
//! machine computes two-number arithmetic inline too and calls the library for the rest.
//! Property tests hold both shortcuts to the library's results.

use std::sync::Arc;

use super::compile::{Op, Program, NUMERIC_STACK};
use super::context::Context;
use super::error::EquationKey;
use super::function::{CallCx, EmptyRule, Function};
use super::functions::Memo;
use super::value::{Reason, Value};

/// Evaluates programs; reuse one per thread to keep its stack.
#[derive(Debug, Default)]
pub struct Machine {
    stack: Vec<Value>,
    /// Axes, points and lists read by earlier evaluations (lent to each one's [`CallCx`]).
    memo: Memo,
}

/// The result of one evaluation: the value and what `@name` outputs were written.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluated {
    /// The equation's value (empty when it could not be computed).
    pub value: Value,
    /// `@name` outputs written, in order.
    pub outputs: Vec<(Arc<str>, Value)>,
}

impl Machine {
    /// A machine with an empty stack.
    pub fn new() -> Machine {
        Machine::default()
    }

    /// Evaluates `program` against `ctx`; random numbers come from `seed` (see
    /// [`seed_for`]).
    pub fn eval<C: Context + ?Sized>(
        &mut self,
        program: &Program,
        ctx: &C,
        seed: u64,
    ) -> Evaluated {
        if let Some(n) = run_numeric(program, ctx) {
            return Evaluated {
                value: Value::Num(n),
                outputs: Vec::new(),
            };
        }
        let mut cx = CallCx::new(seed);
        cx.memo = std::mem::take(&mut self.memo);
        let value = self.run_general(program, ctx, &mut cx);
        self.memo = cx.memo;
        Evaluated {
            value,
            outputs: cx.outputs,
        }
    }

    /// Evaluates `program` with a caller-provided call context (its generator and its
    /// output list), for callers that reuse one.
    pub fn run<C: Context + ?Sized>(
        &mut self,
        program: &Program,
        ctx: &C,
        cx: &mut CallCx,
    ) -> Value {
        match run_numeric(program, ctx) {
            Some(n) => Value::Num(n),
            None => self.run_general(program, ctx, cx),
        }
    }

    /// The general path: any values, function calls, empty propagation.
    pub(crate) fn run_general<C: Context + ?Sized>(
        &mut self,
        program: &Program,
        ctx: &C,
        cx: &mut CallCx,
    ) -> Value {
        let stack = &mut self.stack;
        stack.clear();
        stack.reserve(program.max_stack);
        let ops = &program.ops[..];
        let mut pc = 0;
        while let Some(op) = ops.get(pc) {
            pc += 1;
            match op {
                Op::Push(v) => stack.push(v.clone()),
                Op::Var {
                    form,
                    slot,
                    missing,
                } => match ctx.var(*form, *slot) {
                    Some(v) => stack.push(v),
                    None => stack.push(Value::Empty(Reason::Missing(missing.clone()))),
                },
                Op::Const { slot, missing } => match ctx.constant(*slot) {
                    Some(v) => stack.push(v),
                    None => stack.push(Value::Empty(Reason::Missing(missing.clone()))),
                },
                Op::Pseudo { p, missing } => match ctx.pseudo(*p) {
                    Some(v) => stack.push(v),
                    None => stack.push(Value::Empty(Reason::Missing(missing.clone()))),
                },
                Op::Call { func, argc } => call(stack, func, *argc, cx),
                Op::Num2 { func, op } => {
                    let n = stack.len();
                    if n >= 2 {
                        if let (Value::Num(a), Value::Num(b)) = (&stack[n - 2], &stack[n - 1]) {
                            let r = op.apply(*a, *b);
                            // `truncate`, not `pop`: dropping in place reads only the tag
                            // (moving the value out stalled on store forwarding).
                            stack.truncate(n - 1);
                            stack[n - 2] = r;
                            continue;
                        }
                    }
                    call(stack, func, 2, cx);
                }
                Op::Branch { otherwise, end } => {
                    // Decided on the value in place (see `Num2`); only an empty or
                    // non-numeric condition stays as the result.
                    match stack.last().map(|c| (c.as_num(), c)) {
                        Some((Some(c), _)) => {
                            stack.truncate(stack.len() - 1);
                            if c == 0.0 {
                                pc = *otherwise;
                            }
                        }
                        Some((None, Value::Empty(_))) => pc = *end,
                        Some((None, Value::Nums(_) | Value::List(_))) => {
                            if let Some(top) = stack.last_mut() {
                                *top = Value::Empty(Reason::Invalid(
                                    "IF: the condition must be a number",
                                ));
                            }
                            pc = *end;
                        }
                        Some((None, _)) => {
                            if let Some(top) = stack.last_mut() {
                                *top = Value::Empty(Reason::NotANumber);
                            }
                            pc = *end;
                        }
                        None => {
                            stack.push(Value::Empty(Reason::Invalid("IF without a condition")));
                            pc = *end;
                        }
                    }
                }
                Op::Jump(target) => pc = *target,
            }
        }
        stack.pop().unwrap_or(Value::Empty(Reason::Invalid(
            "the equation computed nothing",
        )))
    }
}

/// The numeric path: a numeric program (see `Program::numeric`) run on `f64`s in a
/// fixed array. It gives up (`None`) as soon as anything is not a finite number — a
/// read that is a string, vector or missing, a division by zero, an overflow, an
/// operator with a different result — and the general path then evaluates the program
/// from the start, so results and reasons are exactly the general path's. Reads have no
/// side effects, so reading twice is harmless.
#[inline]
fn run_numeric<C: Context + ?Sized>(program: &Program, ctx: &C) -> Option<f64> {
    if !program.numeric {
        return None;
    }
    let mut stack = [0.0f64; NUMERIC_STACK];
    let mut sp = 0usize;
    let ops = &program.ops[..];
    let mut pc = 0;
    while let Some(op) = ops.get(pc) {
        pc += 1;
        let pushed = match op {
            Op::Push(Value::Num(n)) => *n,
            Op::Var { form, slot, .. } => match ctx.var(*form, *slot) {
                Some(Value::Num(n)) => n,
                _ => return None,
            },
            Op::Const { slot, .. } => match ctx.constant(*slot) {
                Some(Value::Num(n)) => n,
                _ => return None,
            },
            Op::Pseudo { p, .. } => match ctx.pseudo(*p) {
                Some(Value::Num(n)) => n,
                _ => return None,
            },
            Op::Num2 { op, .. } => {
                sp = sp.checked_sub(1)?;
                let b = *stack.get(sp)?;
                let a = stack.get_mut(sp.checked_sub(1)?)?;
                match op.apply(*a, b) {
                    Value::Num(r) => *a = r,
                    _ => return None,
                }
                continue;
            }
            Op::Branch { otherwise, .. } => {
                sp = sp.checked_sub(1)?;
                if *stack.get(sp)? == 0.0 {
                    pc = *otherwise;
                }
                continue;
            }
            Op::Jump(target) => {
                pc = *target;
                continue;
            }
            Op::Push(_) | Op::Call { .. } => return None,
        };
        *stack.get_mut(sp)? = pushed;
        sp += 1;
    }
    if sp == 1 {
        Some(stack[0])
    } else {
        None
    }
}

/// Calls `func` on the top `argc` values of the stack and replaces them by its result;
/// with [`EmptyRule::Propagate`] an empty operand is the result and `func` is not called.
#[inline]
fn call(stack: &mut Vec<Value>, func: &Function, argc: usize, cx: &mut CallCx) {
    let base = stack.len().saturating_sub(argc);
    let args = &stack[base..];
    let empty = match func.empty {
        EmptyRule::Propagate => args.iter().find(|a| a.is_empty()).cloned(),
        EmptyRule::Accept => None,
    };
    let result = match empty {
        Some(e) => e,
        None => (func.imp)(args, cx),
    };
    stack.truncate(base);
    stack.push(result);
}

/// The random seed of one evaluation: a stable hash (FNV-1a, then a SplitMix64 finish) of
/// the row key's parts and the equation key, the same on every machine and release.
///
/// The engine passes e.g. the device id and the row's timestamp as text.
pub fn seed_for(row_key_parts: &[&[u8]], equation: &EquationKey) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(PRIME);
        }
        // A separator that no part can fake: its length.
        for b in (bytes.len() as u64).to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
    };
    for part in row_key_parts {
        feed(part);
    }
    feed(&equation.ty.to_le_bytes());
    feed(&equation.id.to_le_bytes());
    feed(equation.name.as_bytes());
    let mut z = h;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::context::{Bindings, Level, Pseudo, Symbols, VarForm};
    use crate::lang::test_functions::table;

    fn run(src: &str, level: Level, set: impl FnOnce(&mut Symbols, &mut Bindings)) -> Evaluated {
        let mut s = Symbols::new();
        let p = match Program::compile(src, level, &mut s, table()) {
            Ok(p) => p,
            Err(e) => panic!("{src}: {e}"),
        };
        let mut b = Bindings::new();
        set(&mut s, &mut b);
        Machine::new().eval(&p, &b, 7)
    }

    fn value(src: &str) -> Value {
        run(src, Level::Data, |_, _| {}).value
    }

    #[test]
    fn arithmetic_and_literals() {
        assert_eq!(value("+ * 3 2 1"), Value::Num(7.0));
        assert_eq!(value("'x'"), Value::str("x"));
        assert_eq!(value("/ 1 0"), Value::Empty(Reason::DivisionByZero));
        // Operands other than two numbers leave the inline path for the function itself.
        assert_eq!(value("+ '1.5' 2"), Value::Num(3.5));
        assert_eq!(value("* 'x' 2"), Value::Empty(Reason::NotANumber));
        assert_eq!(value("> 1e308 -1e308"), Value::Num(1.0));
        assert_eq!(
            value("* 1e308 10"),
            Value::Empty(Reason::Invalid("the result is not a finite number"))
        );
    }

    #[test]
    fn variables_constants_and_pseudo_constants_come_from_the_context() {
        let v = run("IF > $tmp #TMAX + $TMP #MT 0", Level::Data, |s, b| {
            b.set_var(VarForm::Cur, s.channel("tmp"), Value::Num(21.0));
            b.set_var(VarForm::Up, s.channel("tmp"), Value::Num(100.0));
            b.set_constant(s.constant("TMAX"), Value::str("20"));
            b.set_pseudo(Pseudo::Mt, Value::Num(5.0));
        });
        assert_eq!(v.value, Value::Num(105.0));
    }

    #[test]
    fn missing_values_are_empty_with_their_name() {
        assert_eq!(
            value("+ 1 $$tmp"),
            Value::Empty(Reason::Missing("$$tmp".into()))
        );
        assert_eq!(
            value("+ #TMAX 1"),
            Value::Empty(Reason::Missing("#TMAX".into()))
        );
        assert_eq!(
            value("ABS #MT"),
            Value::Empty(Reason::Missing("#MT".into()))
        );
        assert_eq!(
            value("#NULL"),
            Value::Empty(Reason::Missing("#NULL".into()))
        );
        assert_eq!(value("IFNA #NULL 4"), Value::Num(4.0));
    }

    #[test]
    fn if_is_lazy() {
        assert_eq!(value("IF 1 2 $missing"), Value::Num(2.0));
        assert_eq!(value("IF 0 $missing 3"), Value::Num(3.0));
        assert_eq!(value("IF 0 / 1 0 + 1 IF 1 5 $m"), Value::Num(6.0));
        assert_eq!(
            value("IF $c 1 2"),
            Value::Empty(Reason::Missing("$c".into()))
        );
        assert_eq!(value("IF 'x' 1 2"), Value::Empty(Reason::NotANumber));
        assert_eq!(value("IF '1' 1 2"), Value::Num(1.0));
        assert_eq!(value("+ IF 0 1 2 IF 1 10 20"), Value::Num(12.0));
    }

    #[test]
    fn vectors_and_outputs() {
        let r = run("SDATCTRL 1 @flags $x 2", Level::Job, |s, b| {
            let x: Arc<[f64]> = Arc::from([1.0, 3.0, 5.0]);
            b.set_var(VarForm::Cur, s.channel("x"), Value::Nums(x));
        });
        assert_eq!(r.value, Value::Num(2.0));
        assert_eq!(
            r.outputs,
            vec![(Arc::from("flags"), Value::Nums(Arc::from([0.0, 1.0, 1.0])))]
        );
    }

    #[test]
    fn random_numbers_follow_the_seed() {
        let mut s = Symbols::new();
        let Ok(p) = Program::compile("+ RND RND", Level::Data, &mut s, table()) else {
            panic!()
        };
        let b = Bindings::new();
        let mut m = Machine::new();
        let a = m.eval(&p, &b, 1).value;
        assert_eq!(m.eval(&p, &b, 1).value, a);
        assert_ne!(m.eval(&p, &b, 2).value, a);
    }

    #[test]
    fn seeds_are_stable_and_distinguish_keys() {
        let key = EquationKey {
            ty: 1,
            id: 3,
            name: "x".into(),
        };
        let s = seed_for(&[b"3", b"2024-03-01T06:00:00"], &key);
        // Fixed so a change of the hash (which would change stored results) is noticed.
        assert_eq!(s, seed_for(&[b"3", b"2024-03-01T06:00:00"], &key));
        assert_eq!(s, 0x9260_490c_1776_628a);
        assert_ne!(s, seed_for(&[b"32", b"024-03-01T06:00:00"], &key));
        let other = EquationKey {
            name: "y".into(),
            ..key.clone()
        };
        assert_ne!(s, seed_for(&[b"3", b"2024-03-01T06:00:00"], &other));
    }
}
