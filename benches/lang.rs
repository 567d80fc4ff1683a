//! Language benchmark: compiled equations evaluated over rows held in memory, and
//! parse + check throughput. One thread. Prints the median of several repetitions after
//! a warm-up; asserts nothing (figures go into the README).
//!
//! Run with `cargo bench --bench lang`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use recalcd::lang::{
    ConstSlot, Context, Equation, EquationKey, FunctionTable, Level, Machine, Program, Pseudo,
    Slot, Symbols, Value, VarForm,
};

const ROWS: usize = 1_000_000;
const REPETITIONS: usize = 7;

/// A context over columns held in memory: `columns[slot][row]`, constants by slot.
struct RowContext<'a> {
    columns: &'a [Vec<Value>],
    row: usize,
    constants: &'a [Value],
}

impl Context for RowContext<'_> {
    fn var(&self, _form: VarForm, slot: Slot) -> Option<Value> {
        self.columns.get(slot.0 as usize)?.get(self.row).cloned()
    }

    fn constant(&self, slot: ConstSlot) -> Option<Value> {
        self.constants.get(slot.0 as usize).cloned()
    }

    fn pseudo(&self, _p: Pseudo) -> Option<Value> {
        None
    }
}

/// The time this thread has spent on a CPU, from `/proc/thread-self/schedstat` (Linux);
/// `None` elsewhere. The machine is shared, so rates are computed from on-CPU time when
/// it is available: time spent waiting for a core is not the evaluator's.
fn cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Runs `f` once to warm up, then `REPETITIONS` times; the median duration (on-CPU time
/// if available, else wall-clock) and the median wall-clock duration.
fn median(mut f: impl FnMut()) -> Duration {
    f();
    let mut cpu = Vec::new();
    let mut wall = Vec::new();
    for _ in 0..REPETITIONS {
        let (c, t) = (cpu_time(), Instant::now());
        f();
        wall.push(t.elapsed());
        if let (Some(c0), Some(c1)) = (c, cpu_time()) {
            cpu.push(c1.saturating_sub(c0));
        }
    }
    wall.sort();
    cpu.sort();
    let wall = wall[REPETITIONS / 2];
    match cpu.get(REPETITIONS / 2) {
        Some(c) if cpu.len() == REPETITIONS => {
            WALL.with(|w| w.set(wall));
            *c
        }
        _ => {
            WALL.with(|w| w.set(wall));
            wall
        }
    }
}

thread_local! {
    /// The wall-clock median of the last [`median`] call, for the printed line.
    static WALL: std::cell::Cell<Duration> = const { std::cell::Cell::new(Duration::ZERO) };
}

/// The wall-clock median of the last measurement, in ms.
fn wall_ms() -> f64 {
    WALL.with(|w| w.get()).as_secs_f64() * 1e3
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn compile(src: &str, level: Level, symbols: &mut Symbols) -> Option<Program> {
    match Program::compile(src, level, symbols, FunctionTable::standard()) {
        Ok(p) => Some(p),
        Err(e) => {
            println!("{src:<28} skipped: {e}");
            None
        }
    }
}

/// Evaluates `src` once per row over `columns`; prints evaluations per second.
fn rows_case(src: &str, symbols: &mut Symbols, columns: &[Vec<Value>], constants: &[Value]) {
    let Some(program) = compile(src, Level::Data, symbols) else {
        return;
    };
    let mut machine = Machine::new();
    let mut check = 0.0;
    let d = median(|| {
        let mut sum = 0.0;
        for row in 0..ROWS {
            let ctx = RowContext {
                columns,
                row,
                constants,
            };
            let r = machine.eval(black_box(&program), &ctx, row as u64);
            if let Value::Num(n) = r.value {
                sum += n;
            }
        }
        check = black_box(sum);
    });
    println!(
        "{src:<28} {:>8.1} M evaluations/s  ({ROWS} rows, median {:.1} ms on CPU, {:.1} ms wall, checksum {check})",
        rate(ROWS, d) / 1e6,
        d.as_secs_f64() * 1e3,
        wall_ms()
    );
}

fn main() {
    println!(
        "recalcd language benchmark: one thread, median of {REPETITIONS} runs after a warm-up;\n\
         rates from the thread's on-CPU time ({}), wall-clock medians shown too\n",
        if cpu_time().is_some() {
            "/proc/thread-self/schedstat"
        } else {
            "not available: wall-clock"
        }
    );
    let mut symbols = Symbols::new();
    let a = symbols.channel("a");
    let b = symbols.channel("b");
    let tmp = symbols.channel("tmp");
    let tmax = symbols.constant("TMAX");
    let width = [a, b, tmp].iter().map(|s| s.0 as usize).max().unwrap_or(0) + 1;
    let mut columns: Vec<Vec<Value>> = vec![Vec::new(); width];
    columns[a.0 as usize] = (0..ROWS).map(|i| Value::Num(i as f64 * 0.5)).collect();
    columns[b.0 as usize] = (0..ROWS).map(|i| Value::Num((i % 97) as f64)).collect();
    columns[tmp.0 as usize] = (0..ROWS).map(|i| Value::Num((i % 50) as f64)).collect();
    let mut constants = vec![Value::Num(0.0); tmax.0 as usize + 1];
    constants[tmax.0 as usize] = Value::Num(25.0);

    rows_case("+ * $a 2 $b", &mut symbols, &columns, &constants);
    rows_case("IF > $tmp #TMAX 1 0", &mut symbols, &columns, &constants);
    // Not purely numeric (a function call, a string result): the general stack machine.
    rows_case("ABS - $a $b", &mut symbols, &columns, &constants);
    rows_case(
        "IF > $tmp #TMAX 'hot' 'ok'",
        &mut symbols,
        &columns,
        &constants,
    );
    drop(columns);

    vector_case(&mut symbols);
    compile_case();
    conjoined_case();
}

/// Reading and writing a typical `conjoined` value of ten channels.
fn conjoined_case() {
    const TEXTS: usize = 200_000;
    let text = "tmp=21.5;hum=40.25;gps=49.1951\\,16.6068;mode=auto;flags=0,1,0,0,1;\
                speed=12.75;dist=1234.5;note=it's \\; fine;hot=1;tavg=20.125;";
    let mut pairs = Vec::new();
    let d = median(|| {
        for _ in 0..TEXTS {
            pairs = recalcd::conjoined::parse(black_box(text)).unwrap_or_default();
        }
    });
    println!(
        "{:<28} {:>8.2} M rows/s        ({} bytes, 10 channels, {:.0} MB/s)",
        "conjoined read",
        rate(TEXTS, d) / 1e6,
        text.len(),
        rate(TEXTS * text.len(), d) / 1e6
    );
    let d = median(|| {
        for _ in 0..TEXTS {
            black_box(recalcd::conjoined::write(
                pairs.iter().map(|(n, v)| (n.as_str(), v)),
            ));
        }
    });
    println!(
        "{:<28} {:>8.2} M rows/s",
        "conjoined write",
        rate(TEXTS, d) / 1e6
    );
}

/// `SNRM $x` over 1,000-item vectors; prints vector items per second.
fn vector_case(symbols: &mut Symbols) {
    const ITEMS: usize = 1_000;
    const VECTORS: usize = 1_000;
    const EVALS: usize = 20_000;
    let src = "SNRM $x";
    let Some(program) = compile(src, Level::Job, symbols) else {
        return;
    };
    let x = symbols.channel("x");
    let vectors: Vec<Value> = (0..VECTORS)
        .map(|v| {
            Value::Nums(
                (0..ITEMS)
                    .map(|i| ((i * 7 + v) % 101) as f64)
                    .collect::<Arc<[f64]>>(),
            )
        })
        .collect();
    let mut column = vec![Vec::new(); x.0 as usize + 1];
    let mut machine = Machine::new();
    let mut check = 0.0;
    let d = median(|| {
        let mut sum = 0.0;
        for e in 0..EVALS {
            column[x.0 as usize].clear();
            column[x.0 as usize].push(vectors[e % VECTORS].clone());
            let ctx = RowContext {
                columns: &column,
                row: 0,
                constants: &[],
            };
            if let Value::Num(n) = machine.eval(black_box(&program), &ctx, 0).value {
                sum += n;
            }
        }
        check = black_box(sum);
    });
    println!(
        "{src:<28} {:>8.1} M items/s        ({EVALS} vectors of {ITEMS}, {:.2} M evaluations/s, {:.1} ms wall, checksum {check:.1})",
        rate(EVALS * ITEMS, d) / 1e6,
        rate(EVALS, d) / 1e6,
        wall_ms()
    );
}

/// Parse + check of typical equations, each into a fresh equation key.
fn compile_case() {
    const EQUATIONS: &[(i32, &str)] = &[
        (1, "+ * $a 2 $b"),
        (1, "IF > $tmp #TMAX 1 0"),
        (2, "IF AND > $tmp #TMAX < $$tmp #TMAX 1 0"),
        (2, "( / - $tmp $$tmp #MT )"),
        (4, "SNRM $tmp"),
        (4, "IF > SMAX $tmp #TMAX 'hot' 'ok'"),
        (5, "- SMAX $d$tmp SMIN $d$tmp"),
        (1, "ROUNDX * / $dist #MT 3.6 2"),
        (6, "SSUM $j$len"),
        (2, "IFNA $speed 0"),
    ];
    const TOTAL: usize = 200_000;
    let mut failed = None;
    let d = median(|| {
        let mut symbols = Symbols::new();
        for i in 0..TOTAL {
            let (ty, src) = EQUATIONS[i % EQUATIONS.len()];
            let key = EquationKey {
                ty,
                id: (i / EQUATIONS.len()) as i64,
                name: "out".to_string(),
            };
            match Equation::compile(key, black_box(src), &mut symbols) {
                Ok(eq) => {
                    black_box(eq);
                }
                Err(e) => failed = Some(e),
            }
        }
    });
    let note = failed.map_or(String::new(), |e| format!(" (some failed, e.g. {e})"));
    println!(
        "{:<28} {:>8.1} k equations/s  ({TOTAL} equations, median {:.1} ms on CPU, {:.1} ms wall){note}",
        "parse + check",
        rate(TOTAL, d) / 1e3,
        d.as_secs_f64() * 1e3,
        wall_ms()
    );
}
