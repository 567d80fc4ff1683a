//! `recalcd eval`: evaluate one equation against values given on the command line.

use std::process::ExitCode;

use anyhow::{bail, Context as _};
use recalcd::conjoined;
use recalcd::lang::{
    parse, Bindings, EquationError, ExprKind, FunctionTable, Level, Machine, Program, Pseudo,
    Symbols, Value, VarForm,
};

use super::GlobalArgs;

/// Evaluate one equation and print its value as it would be written into `conjoined`.
///
/// Exit codes: 0 a value was printed; 1 the result is empty (the reason is printed on
/// stderr); 2 a usage, parse or check error (printed with its column).
#[derive(Debug, clap::Args)]
#[command(after_help = EVAL_HELP)]
pub struct Args {
    /// The level the equation is evaluated at (which variable forms and pseudo-constants
    /// exist and which of them are vectors).
    #[arg(long, value_enum, default_value_t = LevelArg::Data)]
    level: LevelArg,

    /// A variable: `tmp=21.5` sets `$tmp`, `TMP=3` sets `$TMP`; a name written with its
    /// prefix (`'$$tmp=20'`, `'$d$tmp=1,2'`, `'$j$x=1,2'`) sets exactly that form.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,

    /// A previous value: `tmp=20` sets `$$tmp`, `TMP=3` sets `$$TMP`.
    #[arg(long = "prev", value_name = "NAME=VALUE")]
    prev: Vec<String>,

    /// A constant (`TMAX=20` for `#TMAX`) or a pseudo-constant (`MT=5` for `#MT`,
    /// `VMT=1,2,3`, `JB=2024-03-01T06:00:00`); the `#` is optional.
    #[arg(long = "const", value_name = "NAME=VALUE")]
    consts: Vec<String>,

    /// The random seed for `RND` / `RNDN` (the engine derives it from the row key).
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Print the value as JSON: a number, a string, an array, or `null` when empty.
    #[arg(long)]
    json: bool,

    /// The equation, e.g. `IF > $tmp #TMAX 1 0` (quote it for the shell).
    #[arg(allow_hyphen_values = true)]
    equation: String,
}

const EVAL_HELP: &str = "\
Prints the value as it would be written into `conjoined` (vectors comma-separated).
Exit codes: 0 a value was printed; 1 the result is empty (the reason is on stderr);
2 a usage, parse or check error (printed with its column). `@name` outputs that the
equation writes are printed on stderr as `output @name=value`.

Values: a number, or text. Vectors are comma-separated (--var tmp=1,2,3); write \\, for a
comma inside an item. Which forms are vectors depends on the level: at the job, day and
summary levels $x (and $$x at job and day), $d$x and $j$x are vectors; $X, $$X and every
form at the data level are single values. At the data level an uppercase --var X=... is
the current job's value, at the other levels the current row's own value.

Examples:
  recalcd eval --var tmp=21.5 --const TMAX=20 'IF > $tmp #TMAX 1 0'
  recalcd eval --level job --var tmp=1,2,3 'SNRM $tmp'
  recalcd eval --level job --const MT=3600 --json '/ #MT 60'";

/// The `--level` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LevelArg {
    /// Types 1 and 2: a data row.
    Data,
    /// Type 4: a job.
    Job,
    /// Type 5: a day.
    Day,
    /// Types 6 and 7: a summary over a date range.
    Summary,
}

impl From<LevelArg> for Level {
    fn from(l: LevelArg) -> Level {
        match l {
            LevelArg::Data => Level::Data,
            LevelArg::Job => Level::Job,
            LevelArg::Day => Level::Day,
            LevelArg::Summary => Level::Summary,
        }
    }
}

/// Runs `recalcd eval`. Every error here is a usage error (exit 2): `eval` touches no
/// database or file.
pub fn run(args: Args, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    match evaluate(args) {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            Ok(ExitCode::from(2))
        }
    }
}

fn evaluate(args: Args) -> anyhow::Result<ExitCode> {
    let level = Level::from(args.level);
    let table = FunctionTable::standard();
    let mut symbols = Symbols::new();
    let program = match Program::compile(&args.equation, level, &mut symbols, table) {
        Ok(p) => p,
        Err(e) => {
            report_compile_error(&args.equation, &e);
            return Ok(ExitCode::from(2));
        }
    };
    let mut bindings = Bindings::new();
    // A value the user gave that cannot be bound is a usage error (exit 2).
    for spec in &args.vars {
        bind_var(spec, false, level, &program, &mut symbols, &mut bindings)
            .map_err(|e| super::as_usage(e, "--var"))?;
    }
    for spec in &args.prev {
        bind_var(spec, true, level, &program, &mut symbols, &mut bindings)
            .map_err(|e| super::as_usage(e, "--prev"))?;
    }
    for spec in &args.consts {
        bind_const(spec, &mut symbols, &mut bindings).map_err(|e| super::as_usage(e, "--const"))?;
    }

    let result = Machine::new().eval(&program, &bindings, args.seed);
    for (name, value) in &result.outputs {
        eprintln!("output @{name}={}", stored(value));
    }
    if let Value::Empty(reason) = &result.value {
        if args.json {
            println!("null");
        }
        eprintln!("empty: {reason}");
        return Ok(ExitCode::from(1));
    }
    if args.json {
        println!("{}", to_json(&result.value));
    } else {
        println!("{}", stored(&result.value));
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a compile error with a caret under its column.
fn report_compile_error(src: &str, e: &EquationError) {
    eprintln!("error: {e}");
    if !src.contains(['\n', '\r']) {
        eprintln!("  {src}");
        eprintln!("  {}^", " ".repeat(e.column.saturating_sub(1)));
    }
}

/// Splits `NAME=VALUE`.
fn split_spec(spec: &str) -> anyhow::Result<(&str, &str)> {
    match spec.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim(), value)),
        _ => bail!("'{spec}' is not NAME=VALUE"),
    }
}

/// Binds one `--var` / `--prev` value.
fn bind_var(
    spec: &str,
    previous: bool,
    level: Level,
    program: &Program,
    symbols: &mut Symbols,
    bindings: &mut Bindings,
) -> anyhow::Result<()> {
    let (name, raw) = split_spec(spec)?;
    let (form, channel) = if name.starts_with('$') {
        let what = || format!("'{name}' is not a variable such as $x, $$X or $d$x");
        let expr = parse(name, FunctionTable::standard())
            .ok()
            .with_context(what)?;
        let ExprKind::Var(form, channel) = expr.kind else {
            bail!(what());
        };
        if previous && !matches!(form, VarForm::Prev | VarForm::PrevUp) {
            bail!("--prev takes a bare name; '{name}' already says its form (use --var)");
        }
        (form, channel)
    } else {
        if parse(&format!("${name}"), FunctionTable::standard()).is_err() {
            bail!("'{name}' is not a valid channel name (letters, digits and _)");
        }
        (VarForm::for_name(previous, name), name.to_string())
    };
    if !level.allows(form) {
        bail!(
            "{} variables do not exist at the {level} level ('{spec}')",
            form.describe()
        );
    }
    let slot = symbols.channel(&channel);
    if !program
        .reads()
        .iter()
        .any(|r| r.form == form && r.slot == slot)
    {
        eprintln!(
            "note: the equation does not read {}{channel}",
            form.prefix()
        );
    }
    let value = if level.is_vector(form) {
        conjoined::decode_vector(raw)
    } else {
        conjoined::decode_scalar(raw)
    };
    bindings.set_var(form, slot, value);
    Ok(())
}

/// Binds one `--const` value: a pseudo-constant if the name is one, else a constant.
fn bind_const(spec: &str, symbols: &mut Symbols, bindings: &mut Bindings) -> anyhow::Result<()> {
    let (name, raw) = split_spec(spec)?;
    let name = name.strip_prefix('#').unwrap_or(name);
    if parse(&format!("#{name}"), FunctionTable::standard()).is_err() {
        bail!("'{name}' is not a valid constant name (letters, digits and _)");
    }
    match Pseudo::from_name(name) {
        Some(Pseudo::Null) => bail!("#NULL is always empty and cannot be set"),
        Some(Pseudo::Vmt) => bindings.set_pseudo(Pseudo::Vmt, conjoined::decode_vector(raw)),
        Some(p) => bindings.set_pseudo(p, conjoined::decode_scalar(raw)),
        None => {
            let slot = symbols.constant(name);
            bindings.set_constant(slot, conjoined::decode_scalar(raw));
        }
    }
    Ok(())
}

/// A value as written into `conjoined`.
fn stored(v: &Value) -> String {
    let mut s = String::new();
    conjoined::write_value(&mut s, v);
    s
}

/// A value as JSON: number, string, array (items: number, string or null), or null.
fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Empty(_) => J::Null,
        // Whole numbers as JSON integers (`3`, not `3.0`), as they are written back.
        Value::Num(n) if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 => {
            J::Number((*n as i64).into())
        }
        Value::Num(n) => serde_json::Number::from_f64(*n).map_or(J::Null, J::Number),
        Value::Str(s) => J::String(s.to_string()),
        Value::Nums(items) => J::Array(items.iter().map(|n| to_json(&Value::Num(*n))).collect()),
        Value::List(items) => J::Array(items.iter().map(to_json).collect()),
    }
}
