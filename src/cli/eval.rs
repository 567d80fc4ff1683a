//! `recalcd eval`: evaluate one equation against values given on the command line, read
//! as the engine reads them: variables as the `conjoined` codec reads a stored channel
//! (or as the engine reads a column such as `gps`), constants as it reads the
//! `constants` table, with `--id N` the device's stored constants first.

use std::process::ExitCode;

use anyhow::{bail, Context as _};
use recalcd::conjoined;
use recalcd::engine::catalog::Constants;
use recalcd::lang::{
    parse, Bindings, ConstSlot, EquationError, ExprKind, FunctionTable, Level, Machine, Program,
    Pseudo, Symbols, Value, VarForm,
};
use recalcd::store::{self, Store as _};

use super::GlobalArgs;

/// Evaluate one equation and print its value.
///
/// Exit codes: 0 a value was printed; 1 the result is empty (the reason is printed on
/// stderr), or the database of `--id` cannot be read; 2 a usage, parse or check error
/// (printed with its column).
#[derive(Debug, clap::Args)]
#[command(after_help = EVAL_HELP)]
pub struct Args {
    /// The level the equation is evaluated at (which variable forms and pseudo-constants
    /// exist and which of them are vectors).
    #[arg(long, value_enum, default_value_t = LevelArg::Data)]
    level: LevelArg,

    /// A variable: `tmp=21.5` sets `$tmp`, `TMP=3` sets `$TMP`; a name written with its
    /// prefix (`'$$tmp=20'`, `'$d$tmp=1,2'`, `'$j$x=1,2'`) sets exactly that form. The
    /// value is read as a stored `conjoined` entry is (`v=1,2,3` is a vector).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,

    /// A previous value: `tmp=20` sets `$$tmp`, `TMP=3` sets `$$TMP`.
    #[arg(long = "prev", value_name = "NAME=VALUE")]
    prev: Vec<String>,

    /// A constant (`TMAX=20` for `#TMAX`) or a pseudo-constant (`MT=5` for `#MT`,
    /// `VMT=1,2,3`, `JB=2024-03-01T06:00:00`); the `#` is optional. Overrides the
    /// stored constant of `--id`.
    #[arg(long = "const", value_name = "NAME=VALUE")]
    consts: Vec<String>,

    /// Take device N's constants (and its `id = 0` defaults) from the configured
    /// database (`--database-url`, `--config`), and N as `#GID`. Without it `eval`
    /// touches no database.
    #[arg(long, value_name = "N")]
    id: Option<i32>,

    /// The random seed for `RND` / `RNDN` (the engine derives it from the row key).
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Print the value as JSON: a number, a string, an array, or `null` when empty.
    #[arg(long, conflicts_with = "conjoined")]
    json: bool,

    /// Print the value (and the `@name` outputs) as stored in `conjoined`, escaped.
    #[arg(long)]
    conjoined: bool,

    /// The equation, e.g. `IF > $tmp #TMAX 1 0` (quote it for the shell).
    #[arg(allow_hyphen_values = true)]
    equation: String,
}

const EVAL_HELP: &str = "\
Prints the value plain (vectors comma-separated, strings as they are); --conjoined prints
it as stored in `conjoined` (escaped), --json as JSON. Exit codes: 0 a value was printed;
1 the result is empty (the reason is on stderr) or the database of --id cannot be read;
2 a usage, parse or check error (printed with its column). `@name` outputs that the
equation writes are printed on stderr as `output @name=value`.

Values are read as the engine reads them. A --var or --prev is one `conjoined` entry: a
value with an unescaped comma is a vector (--var v=1,2,3 at the data level is a data
row's vector channel), otherwise a number if it reads as one, else a string; write \\, \\;
\\= and \\\\ for those characters inside a value. Where a form reads one value per row (at
the job, day and summary levels $x, $$x at job and day, $d$x, $j$x) the items separated
by commas are the rows' values. The columns gps, user, datetime and data_time are taken
whole as text (--var gps=49.1,16.6 is one string), id and state as integers. At the data
level an uppercase --var X=... is the current job's value, at the other levels the
current row's own value. A --const is read as the `constants` table is: a number if it
reads as one, else the text as it is (#WB as a day break HH:MM[:SS]).

With --id N the constants of device N (its own over the `id = 0` defaults) are read from
the configured database (--database-url, DATABASE_URL or --config), #GID is N and #WB its
day break; every --const overrides them.

Examples:
  recalcd eval --var tmp=21.5 --const TMAX=20 'IF > $tmp #TMAX 1 0'
  recalcd eval --var v=1,2,3,4 'SNRM $v'
  recalcd eval --level job --var tmp=1,2,3 'SNRM $tmp'
  recalcd eval --var v=1,2,3,4 --conjoined 'SA $v'
  recalcd eval --database-url postgres://postgres@localhost/recalcd --id 5 --var tmp=25 \\
      'IF > $tmp #TMAX 1 0'
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

/// Runs `recalcd eval`. A bad value or equation is a usage error (exit 2); a database
/// that `--id` cannot read is a runtime error (exit 1).
pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
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
    for spec in &args.vars {
        bind_var(spec, false, level, &program, &mut symbols, &mut bindings)
            .map_err(|e| super::as_usage(e, "--var"))?;
    }
    for spec in &args.prev {
        bind_var(spec, true, level, &program, &mut symbols, &mut bindings)
            .map_err(|e| super::as_usage(e, "--prev"))?;
    }
    let stored = match args.id {
        Some(id) => stored_constants(global, id)?,
        None => Vec::new(),
    };
    bind_constants(&args.consts, stored, args.id, &symbols, &mut bindings)?;

    let result = Machine::new().eval(&program, &bindings, args.seed);
    let print = |v: &Value| {
        if args.conjoined {
            stored_form(v)
        } else {
            v.to_string()
        }
    };
    for (name, value) in &result.outputs {
        eprintln!("output @{name}={}", print(value));
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
        println!("{}", print(&result.value));
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

/// Splits `NAME=VALUE` at its first `=` (constants: their values are not escaped).
fn split_spec(spec: &str) -> anyhow::Result<(&str, &str)> {
    match spec.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim(), value)),
        _ => bail!("'{spec}' is not NAME=VALUE"),
    }
}

/// Reads `NAME=VALUE` as the `conjoined` codec reads one stored entry: the name
/// unescaped and trimmed, the value's stored text trimmed.
fn read_entry(spec: &str) -> anyhow::Result<conjoined::Entry<'_>> {
    let mut entries = conjoined::entries(spec);
    let entry = match entries.next() {
        Some(Ok(entry)) => entry,
        Some(Err(_)) | None => bail!("'{spec}' is not NAME=VALUE"),
    };
    if entries.next().is_some() {
        bail!(
            "'{spec}' is more than one entry: an unescaped ';' ends a value (write \\; for \
             a ';' inside it)"
        );
    }
    Ok(entry)
}

/// The row columns readable as channels: the engine reads them from the
/// row's columns, not from `conjoined`.
const COLUMNS: [&str; 6] = ["id", "state", "user", "gps", "datetime", "data_time"];

/// Binds one `--var` / `--prev` value, read as the engine reads the channel.
fn bind_var(
    spec: &str,
    previous: bool,
    level: Level,
    program: &Program,
    symbols: &mut Symbols,
    bindings: &mut Bindings,
) -> anyhow::Result<()> {
    let entry = read_entry(spec)?;
    let name = entry.name.as_ref();
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
    let column = COLUMNS.iter().find(|c| c.eq_ignore_ascii_case(&channel));
    let value = if level.is_vector(form) {
        // One item per row, each as a row's value reads.
        conjoined::decode_vector(entry.raw)
    } else if let Some(column) = column {
        column_value(column, spec)?
    } else {
        entry.value()
    };
    bindings.set_var(form, slot, value);
    Ok(())
}

/// A column's value as the engine reads it from a row: `id` and `state` are integers,
/// the others text taken whole (not `conjoined`: `gps=49.1,16.6` is one string).
fn column_value(column: &str, spec: &str) -> anyhow::Result<Value> {
    let (_, text) = split_spec(spec)?;
    if matches!(column, "id" | "state") {
        let n: i32 = text
            .trim()
            .parse()
            .ok()
            .with_context(|| format!("'{spec}': the {column} column holds an integer"))?;
        Ok(Value::Num(f64::from(n)))
    } else {
        Ok(Value::str(text))
    }
}

/// Device `id`'s constants (its own and the `id = 0` defaults) from the configured
/// database.
fn stored_constants(global: &GlobalArgs, id: i32) -> anyhow::Result<Vec<store::Constant>> {
    let config = global.load_config()?;
    super::init_logging(&config.log);
    let all = super::runtime()?.block_on(async {
        let store = store::connect(&config).await?;
        store.check_schema().await?;
        store.load_constants().await
    })?;
    if !all.iter().any(|c| c.id == id) {
        eprintln!("note: device {id} has no constants of its own; the defaults (id = 0) apply");
    }
    Ok(all
        .into_iter()
        .filter(|c| c.id == 0 || c.id == id)
        .collect())
}

/// Binds the constants: `stored` (of device `id`), then every `--const` over them, read as
/// the engine reads the `constants` table; pseudo-constants given with `--const` are set
/// as given, `#GID` and `#WB` come from `--id` unless given.
fn bind_constants(
    specs: &[String],
    mut records: Vec<store::Constant>,
    id: Option<i32>,
    symbols: &Symbols,
    bindings: &mut Bindings,
) -> anyhow::Result<()> {
    let device = id.unwrap_or(0);
    let mut pseudos = Vec::new();
    for spec in specs {
        let (name, raw) = split_spec(spec).map_err(|e| super::as_usage(e, "--const"))?;
        let name = name.strip_prefix('#').unwrap_or(name);
        if parse(&format!("#{name}"), FunctionTable::standard()).is_err() {
            return Err(super::usage(format!(
                "--const: '{name}' is not a valid constant name (letters, digits and _)"
            )));
        }
        match Pseudo::from_name(name) {
            Some(Pseudo::Null) => {
                return Err(super::usage(
                    "--const: #NULL is always empty and cannot be set",
                ))
            }
            // The day break is a stored constant the engine reads as one.
            Some(Pseudo::Wb) | None => {
                if symbols.find_constant(name).is_none() && Pseudo::from_name(name).is_none() {
                    eprintln!("note: the equation does not read #{name}");
                }
                records.push(store::Constant {
                    id: device,
                    name: name.to_owned(),
                    value: raw.to_owned(),
                });
            }
            Some(Pseudo::Vmt) => pseudos.push((Pseudo::Vmt, conjoined::decode_vector(raw))),
            Some(p) => pseudos.push((p, conjoined::decode_scalar(raw))),
        }
    }
    let constants = Constants::build(&records, symbols);
    let mine = constants.for_device(device);
    for slot in (0..symbols.constant_count() as u32).map(ConstSlot) {
        if let Some(v) = mine.get(slot) {
            bindings.set_constant(slot, v.clone());
        }
    }
    if let Some(id) = id {
        bindings.set_pseudo(Pseudo::Gid, Value::Num(f64::from(id)));
    }
    if let Some(text) = &mine.day_break {
        match mine.day_break_text() {
            Some(brk) => bindings.set_pseudo(Pseudo::Wb, Value::str(brk)),
            None => eprintln!("note: #WB '{text}' is not a day break HH:MM[:SS]; #WB has no value"),
        }
    }
    for (p, v) in pseudos {
        bindings.set_pseudo(p, v);
    }
    Ok(())
}

/// A value as written into `conjoined`.
fn stored_form(v: &Value) -> String {
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
