//! Property tests of the language: printed trees parse back to themselves, and no input
//! makes the parser, the compiler or the evaluator panic.

use std::sync::{Arc, LazyLock};

use proptest::prelude::*;
use proptest::sample::select;

use super::ast::{Expr, ExprKind, FnRef};
use super::context::{Bindings, Level, Pseudo, Symbols, VarForm};
use super::table::FunctionTable;
use super::{parse, Machine, Program, Value};

/// The library's functions, plus those of the test table the library does not have
/// (yet), so trees use every shape of operand list.
static COMBINED: LazyLock<FunctionTable> = LazyLock::new(|| {
    let test = super::test_functions::table().functions();
    FunctionTable::from_functions(
        test.into_iter()
            .chain(FunctionTable::standard().functions()),
    )
});

fn name(capitals: bool) -> BoxedStrategy<String> {
    if capitals {
        prop_oneof!["[A-Z][A-Z0-9_]{0,6}", "_[0-9]?[ÚČA-Z]"].boxed()
    } else {
        prop_oneof![
            "[a-z][a-z0-9_]{0,6}",
            "[0-9_]{1,3}",
            "[A-Z]?[čša-z][A-Za-z]{0,3}"
        ]
        .boxed()
    }
}

fn var() -> impl Strategy<Value = ExprKind> {
    select(VarForm::ALL.to_vec()).prop_flat_map(|form| {
        let capitals = matches!(form, VarForm::Up | VarForm::PrevUp);
        let any_case = matches!(form, VarForm::DayData | VarForm::RangeJobs);
        let n = if any_case {
            prop_oneof![name(true), name(false)].boxed()
        } else {
            name(capitals)
        };
        n.prop_map(move |n| ExprKind::Var(form, n))
    })
}

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        any::<f64>()
            .prop_filter("finite", |n| n.is_finite())
            .prop_map(ExprKind::Num),
        (-1000i32..1000).prop_map(|n| ExprKind::Num(f64::from(n) / 8.0)),
        "[a-z' ()$#@,;=\\\\]{0,10}".prop_map(ExprKind::Str),
        "\\PC{0,6}".prop_map(ExprKind::Str),
        var(),
        select(Pseudo::ALL.to_vec()).prop_map(ExprKind::Pseudo),
        "[A-Za-z_][A-Za-z0-9_]{0,6}"
            .prop_filter("not a pseudo-constant", |n| Pseudo::from_name(n).is_none())
            .prop_map(ExprKind::Const),
        "[a-z][a-z0-9_]{0,5}".prop_map(ExprKind::Output),
    ]
    .prop_map(Expr::new)
}

fn expr() -> impl Strategy<Value = Expr> {
    let fns = COMBINED.functions();
    leaf().prop_recursive(5, 48, 5, move |inner| {
        select(fns.clone()).prop_flat_map(move |f| {
            proptest::collection::vec(inner.clone(), f.operands.len())
                .prop_map(move |args| Expr::new(ExprKind::Call(FnRef(f), args)))
        })
    })
}

/// Prints a tree with every sub-expression in parentheses, odd spacing and aliases.
fn decorated(e: &Expr, out: &mut String) {
    match &e.kind {
        ExprKind::Call(f, args) => {
            out.push_str("(\t");
            out.push_str(&f.0.aliases.first().unwrap_or(&f.0.name).to_lowercase());
            for a in args {
                out.push_str("\n ");
                decorated(a, out);
            }
            out.push_str(" )");
        }
        _ => {
            out.push('(');
            out.push_str(&e.to_string());
            out.push(')');
        }
    }
}

/// Words that make random input reach deep into the parser.
const VOCABULARY: &[&str] = &[
    "(", ")", "+", "-", "IF", "if", "SNRM", "SDATCTRL", "ABS", "IFNA", "VSEL", "HIST", "$x", "$X",
    "$$x", "$$X", "$d$x", "$j$x", "$", "#MT", "#VMT", "#NULL", "#REC", "#TMAX", "@o", "'a b'", "'",
    "''", "'it''s'", "1", "-2.5", "1e300", "0", "1e", ".", "@", "#", ">=", "/", "RND", "SCNT",
    "VA", "'1,2,3'", " ", "\t",
];

fn soup() -> impl Strategy<Value = String> {
    proptest::collection::vec(select(VOCABULARY), 0..24).prop_map(|w| w.join(" "))
}

/// Parses, compiles at every level and evaluates against a context where every name
/// has some value; must never panic.
fn exercise(src: &str, values: &[Value]) {
    for level in Level::ALL {
        let mut symbols = Symbols::new();
        let Ok(program) = Program::compile(src, level, &mut symbols, FunctionTable::standard())
        else {
            continue;
        };
        let mut b = Bindings::new();
        for (i, read) in program.reads().iter().enumerate() {
            b.set_var(read.form, read.slot, values[i % values.len()].clone());
        }
        for (i, slot) in program.constants().iter().enumerate() {
            b.set_constant(*slot, values[(i + 1) % values.len()].clone());
        }
        for (i, p) in program.pseudos().iter().enumerate() {
            b.set_pseudo(*p, values[(i + 2) % values.len()].clone());
        }
        let _ = Machine::new().eval(&program, &b, 1);
        let _ = Machine::new().eval(&program, &Bindings::new(), 2);
    }
}

fn sample_values() -> Vec<Value> {
    vec![
        Value::Num(2.5),
        Value::Nums(Arc::from([1.0, -2.0, 3.0, 1e300])),
        Value::str("2024-03-01T06:00:00"),
        Value::Num(0.0),
        Value::Nums(Arc::from([])),
        Value::List(Arc::from([Value::Num(1.0), Value::str("a")])),
        Value::str("0,10,20"),
        Value::Num(-1e308),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn printed_trees_parse_back(e in expr()) {
        let table = &*COMBINED;
        let src = e.to_string();
        let parsed = parse(&src, table).map(|p| p.without_spans());
        prop_assert_eq!(parsed, Ok(e.clone()), "source: {}", src);
        let mut fancy = String::new();
        decorated(&e, &mut fancy);
        let parsed = parse(&fancy, table).map(|p| p.without_spans());
        prop_assert_eq!(parsed, Ok(e), "source: {}", fancy);
    }

    #[test]
    fn arbitrary_text_never_panics(src in "\\PC{0,40}") {
        exercise(&src, &sample_values());
    }

    #[test]
    fn token_soup_never_panics(src in soup()) {
        exercise(&src, &sample_values());
    }

    #[test]
    fn generated_trees_never_panic_when_evaluated(e in expr()) {
        exercise(&e.to_string(), &sample_values());
    }
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |n| n.is_finite()),
        (-4i32..4).prop_map(f64::from),
        Just(0.0),
        Just(-0.0),
        Just(f64::MAX),
    ]
}

proptest! {
    /// The evaluator's inline arithmetic gives exactly what the library's functions give.
    #[test]
    fn the_fast_path_agrees_with_the_library(a in number(), b in number()) {
        use super::compile::Num2;
        use super::function::CallCx;
        for name in ["ADD", "SUB", "MUL", "DIV", "EQ", "GT", "GET", "LT", "LET"] {
            let (Some(op), Some(f)) = (Num2::of(name), FunctionTable::standard().get(name)) else {
                return Err(TestCaseError::fail(format!("{name} is missing")));
            };
            let slow = (f.imp)(&[Value::Num(a), Value::Num(b)], &mut CallCx::new(0));
            prop_assert_eq!(op.apply(a, b), slow, "{} {} {}", name, a, b);
        }
    }
}

/// Equations of numbers, three variables, arithmetic, comparisons and `IF`.
fn numeric_source() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        number().prop_map(|n| Expr::new(ExprKind::Num(n)).to_string()),
        select(vec!["$a", "$b", "$c", "#K"]).prop_map(String::from),
    ];
    leaf.prop_recursive(5, 40, 3, |inner| {
        prop_oneof![
            (
                select(vec!["+", "-", "*", "/", ">", ">=", "<", "<=", "="]),
                inner.clone(),
                inner.clone()
            )
                .prop_map(|(f, a, b)| format!("{f} {a} {b}")),
            (inner.clone(), inner.clone(), inner).prop_map(|(c, a, b)| format!("IF {c} {a} {b}")),
        ]
    })
}

fn operand_value() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        4 => number().prop_map(|n| Some(Value::Num(n))),
        1 => Just(None),
        1 => Just(Some(Value::str("2.5"))),
        1 => Just(Some(Value::str("x"))),
        1 => Just(Some(Value::Nums(Arc::from([1.0, 2.0])))),
    ]
}

proptest! {
    /// The numeric path gives exactly what the general path gives, reasons included.
    #[test]
    fn the_numeric_path_agrees_with_the_general_path(
        src in numeric_source(),
        values in proptest::collection::vec(operand_value(), 4),
    ) {
        use super::function::CallCx;
        let mut symbols = Symbols::new();
        let program = Program::compile(&src, Level::Data, &mut symbols, FunctionTable::standard());
        let Ok(program) = program else {
            return Err(TestCaseError::fail(format!("{src} does not compile")));
        };
        let mut b = Bindings::new();
        for (name, v) in ["a", "b", "c"].iter().zip(&values) {
            if let Some(v) = v {
                b.set_var(VarForm::Cur, symbols.channel(name), v.clone());
            }
        }
        if let Some(v) = &values[3] {
            b.set_constant(symbols.constant("K"), v.clone());
        }
        let mut m = Machine::new();
        let fast = m.eval(&program, &b, 0).value;
        let general = m.run_general(&program, &b, &mut CallCx::new(0));
        prop_assert_eq!(fast, general, "{}", src);
    }
}
