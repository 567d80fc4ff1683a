//! Any text: parse, compile at every level, evaluate against a context where every name
//! has a value and against an empty one. Nothing may panic; a program that compiles must
//! print back to source that parses to the same tree.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use recalcd::lang::{parse, Bindings, FunctionTable, Level, Machine, Program, Symbols, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let table = FunctionTable::standard();
    if let Ok(tree) = parse(src, table) {
        let printed = tree.to_string();
        let again = parse(&printed, table).map(|t| t.without_spans());
        assert_eq!(again, Ok(tree.without_spans()), "{printed}");
    }
    let values = [
        Value::Num(2.5),
        Value::Nums(Arc::from([1.0, -2.0, 3.0, 1e300])),
        Value::str("2024-03-01T06:00:00"),
        Value::Num(0.0),
        Value::Nums(Arc::from([])),
        Value::List(Arc::from([Value::Num(1.0), Value::str("a")])),
        Value::str("0,10,20"),
        Value::Num(-1e308),
    ];
    for level in Level::ALL {
        let mut symbols = Symbols::new();
        let Ok(program) = Program::compile(src, level, &mut symbols, table) else {
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
        let mut m = Machine::new();
        let _ = m.eval(&program, &b, 1);
        let _ = m.eval(&program, &Bindings::new(), 2);
    }
});
