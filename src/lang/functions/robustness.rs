//! Every function, fed arbitrary operands of every kind: it must not panic and must never
//! return a number that is not finite (failures are empty values).

use std::sync::Arc;

use proptest::prelude::*;

use crate::lang::function::CallCx;
use crate::lang::value::{Reason, Value};

use super::testkit::call_cx;

/// Numbers as the evaluator can produce them: always finite, often small or special.
fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-5i32..40).prop_map(f64::from),
        Just(0.5),
        Just(-0.0),
        Just(1e300),
        Just(-1e300),
        Just(f64::MIN_POSITIVE),
        Just(4294967295.0),
        Just(9.3e18),
        any::<f64>().prop_filter("finite", |n| n.is_finite()),
    ]
}

/// Strings that look like what the functions read, and some that almost do.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            " ",
            "abc",
            "1",
            "-2.5",
            "1e400",
            "0,10,20",
            "0:10,10:25,25:40",
            "5:1",
            "2024-03-01T06:00:00",
            "2024-02-30",
            "9999-12-31T23:59:59.999999999+23:59",
            "49.2,16.6",
            "91,0",
            "red&green",
            "0:0,10:100",
            "#NULL",
        ])
        .prop_map(String::from),
        "[0-9a-z,:;&. +-]{0,14}",
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        number().prop_map(Value::Num),
        text().prop_map(Value::str),
        Just(Value::Empty(Reason::NotANumber)),
        Just(Value::Empty(Reason::Missing(Arc::from("#NULL")))),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => scalar(),
        2 => prop::collection::vec(number(), 0..8).prop_map(|v| Value::Nums(v.into())),
        1 => prop::collection::vec(scalar(), 0..8).prop_map(|v| Value::List(v.into())),
    ]
}

/// No number anywhere in `v` is NaN or infinite.
fn finite(v: &Value) -> bool {
    match v {
        Value::Num(n) => n.is_finite(),
        Value::Nums(items) => items.iter().all(|n| n.is_finite()),
        Value::List(items) => items.iter().all(finite),
        Value::Str(_) | Value::Empty(_) => true,
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_function_panics_or_returns_a_non_finite_number(
        ops in prop::collection::vec(value(), 5),
        seed in any::<u64>(),
    ) {
        let mut cx = CallCx::new(seed);
        for f in super::all() {
            let args = &ops[..f.operands.len()];
            let result = call_cx(f.name, args, &mut cx);
            prop_assert!(finite(&result), "{} {:?} gave {:?}", f.name, args, result);
        }
        for (name, out) in &cx.outputs {
            prop_assert!(finite(out), "output {} = {:?}", name, out);
        }
    }
}

/// Operands of the right kind for every position: numbers, strings and equally long
/// vectors, so that the functions get past their operand checks.
fn typed_pool() -> impl Strategy<Value = (Vec<f64>, Vec<String>, Vec<Vec<f64>>)> {
    (
        prop::collection::vec(number(), 5),
        prop::collection::vec(text(), 5),
        (0usize..7)
            .prop_flat_map(|len| prop::collection::vec(prop::collection::vec(number(), len), 5)),
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_function_panics_on_operands_of_the_right_kind(
        (numbers, texts, vectors) in typed_pool(),
        seed in any::<u64>(),
    ) {
        use crate::lang::function::Operand;
        let mut cx = CallCx::new(seed);
        for f in super::all() {
            let args: Vec<Value> = f
                .operands
                .iter()
                .enumerate()
                .map(|(i, kind)| match kind {
                    Operand::N => Value::Num(numbers[i]),
                    Operand::S => Value::str(texts[i].as_str()),
                    Operand::A => Value::Nums(vectors[i].as_slice().into()),
                    Operand::T => Value::List(
                        vectors[i].iter().map(|n| Value::Num(*n)).collect(),
                    ),
                    Operand::Any => Value::Num(numbers[i]),
                    Operand::Output => Value::str("out"),
                })
                .collect();
            let result = call_cx(f.name, &args, &mut cx);
            prop_assert!(finite(&result), "{} {:?} gave {:?}", f.name, args, result);
        }
    }
}
