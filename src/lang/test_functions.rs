//! A tiny function table for the language's own unit tests, so that the parser, compiler
//! and evaluator are tested independently of the function library.

use std::sync::{Arc, LazyLock};

use super::function::{CallCx, EmptyRule, Function, Operand};
use super::table::FunctionTable;
use super::value::{Reason, Value};

use EmptyRule::{Accept, Propagate};
use Operand::{Any, Output, A, N};

fn num2(args: &[Value], f: fn(f64, f64) -> Value) -> Value {
    match (args[0].as_num(), args[1].as_num()) {
        (Some(a), Some(b)) => f(a, b),
        _ => Value::Empty(Reason::NotANumber),
    }
}

fn bool_num(b: bool) -> Value {
    Value::Num(if b { 1.0 } else { 0.0 })
}

static FUNCTIONS: &[Function] = &[
    Function {
        name: "ADD",
        aliases: &["+"],
        operands: &[N, N],
        empty: Propagate,
        imp: |a, _| num2(a, |a, b| Value::num(a + b)),
    },
    Function {
        name: "SUB",
        aliases: &["-"],
        operands: &[N, N],
        empty: Propagate,
        imp: |a, _| num2(a, |a, b| Value::num(a - b)),
    },
    Function {
        name: "MUL",
        aliases: &["*"],
        operands: &[N, N],
        empty: Propagate,
        imp: |a, _| num2(a, |a, b| Value::num(a * b)),
    },
    Function {
        name: "DIV",
        aliases: &["/"],
        operands: &[N, N],
        empty: Propagate,
        imp: |a, _| {
            num2(a, |a, b| {
                if b == 0.0 {
                    Value::Empty(Reason::DivisionByZero)
                } else {
                    Value::num(a / b)
                }
            })
        },
    },
    Function {
        name: "GT",
        aliases: &[">"],
        operands: &[N, N],
        empty: Propagate,
        imp: |a, _| num2(a, |a, b| bool_num(a > b)),
    },
    Function {
        name: "GET",
        aliases: &[">="],
        operands: &[N, N],
        empty: Propagate,
        imp: |a, _| num2(a, |a, b| bool_num(a >= b)),
    },
    Function {
        name: "ABS",
        aliases: &[],
        operands: &[N],
        empty: Propagate,
        imp: |a, _| {
            a[0].as_num()
                .map_or(Value::Empty(Reason::NotANumber), |n| Value::Num(n.abs()))
        },
    },
    Function {
        name: "IF",
        aliases: &[],
        operands: &[N, Any, Any],
        empty: Accept,
        imp: |a, _| match a[0].as_num() {
            Some(c) if c != 0.0 => a[1].clone(),
            Some(_) => a[2].clone(),
            None => Value::Empty(Reason::NotANumber),
        },
    },
    Function {
        name: "IFNA",
        aliases: &[],
        operands: &[Any, Any],
        empty: Accept,
        imp: |a, _| {
            if a[0].is_empty() {
                a[1].clone()
            } else {
                a[0].clone()
            }
        },
    },
    Function {
        name: "SNRM",
        aliases: &[],
        operands: &[A],
        empty: Propagate,
        imp: |a, _| match a[0].to_nums() {
            Some(v) if !v.is_empty() => Value::num(v.iter().sum::<f64>() / v.len() as f64),
            Some(_) => Value::Empty(Reason::EmptyVector),
            None => Value::Empty(Reason::NotANumber),
        },
    },
    Function {
        name: "SDATCTRL",
        aliases: &[],
        operands: &[N, Output, A, N],
        empty: Propagate,
        imp: |a, cx: &mut CallCx| {
            let (Some(v), Some(d), Value::Str(out)) = (a[2].to_nums(), a[3].as_num(), &a[1]) else {
                return Value::Empty(Reason::NotANumber);
            };
            let flags: Arc<[f64]> = v.iter().map(|x| if *x > d { 1.0 } else { 0.0 }).collect();
            let n = flags.iter().sum();
            cx.outputs.push((out.clone(), Value::Nums(flags)));
            Value::Num(n)
        },
    },
    Function {
        name: "RND",
        aliases: &[],
        operands: &[],
        empty: Propagate,
        imp: |_, cx| Value::Num(cx.rng.next_f64()),
    },
];

static TABLE: LazyLock<FunctionTable> = LazyLock::new(|| FunctionTable::from_functions(FUNCTIONS));

/// The test table.
pub fn table() -> &'static FunctionTable {
    &TABLE
}
