//! `recalcd check`: parse and check every equation and print every problem.

use std::path::PathBuf;
use std::process::ExitCode;

use std::collections::HashMap;

use recalcd::lang::{Equation, EquationKey, Symbols};
use recalcd::store::{self, Store};

use super::GlobalArgs;

/// Check every stored equation (or those of a CSV file): parse it, resolve its functions and operands, and check its
/// variables and pseudo-constants against its level. Prints one line per problem and
/// exits 2 if there is any, else prints `N equations OK`.
#[derive(Debug, clap::Args)]
#[command(after_help = CHECK_HELP)]
pub struct Args {
    /// Read the equations from a CSV file instead of the configured database.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
}

const CHECK_HELP: &str = "\
Without --file the equations are read from the configured database (--config,
--database-url); a connection or schema problem exits 1.

The CSV file has one equation per line: type,id,name,eq. An optional first line
starting with `type` is a header; blank lines are skipped. The first three commas split
type, id and name; the rest of the line is the equation, so it may contain commas and
apostrophes unquoted. A field may also be wrapped in double quotes with \"\" for a
double quote, as a CSV export writes it.";

/// Runs `recalcd check`.
pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let (source, report) = match &args.file {
        Some(path) => {
            let text = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) => {
                    eprintln!("error: cannot read {}: {e}", path.display());
                    return Ok(ExitCode::from(2));
                }
            };
            (path.display().to_string(), check_csv(&text))
        }
        None => ("equations".to_string(), check_stored(global)?),
    };
    for (line, problem) in &report.problems {
        match line {
            Some(line) => println!("{source}:{line}: {problem}"),
            None => println!("{problem}"),
        }
    }
    if report.problems.is_empty() {
        println!("{} equations OK", report.equations);
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "{} problem{} in {} equations",
            report.problems.len(),
            if report.problems.len() == 1 { "" } else { "s" },
            report.equations
        );
        Ok(ExitCode::from(2))
    }
}

/// Loads the stored equations from the configured database and checks them.
fn check_stored(global: &GlobalArgs) -> anyhow::Result<Report> {
    let config = global.load_config()?;
    super::init_logging(&config.log);
    let stored = super::runtime()?.block_on(async {
        let store = store::connect(&config).await?;
        store.check_schema().await?;
        store.load_equations().await
    })?;
    let mut checker = Checker::default();
    for e in stored {
        let key = EquationKey {
            ty: e.kind,
            id: i64::from(e.id),
            name: e.name,
        };
        checker.check(None, key, &e.eq);
    }
    Ok(checker.report)
}

/// What checking found.
#[derive(Debug, Default)]
struct Report {
    /// The number of equations (CSV: lines that are not blank or the header).
    equations: usize,
    /// (CSV line number, message) per problem, in order.
    problems: Vec<(Option<usize>, String)>,
}

/// Checks equations one by one against a shared symbol table, noting duplicates.
#[derive(Debug, Default)]
struct Checker {
    report: Report,
    symbols: Symbols,
    /// (type, id, folded name) → where it was first seen.
    seen: HashMap<(i32, i64, String), Option<usize>>,
}

impl Checker {
    fn check(&mut self, line: Option<usize>, key: EquationKey, eq: &str) {
        self.report.equations += 1;
        let folded = (key.ty, key.id, key.name.to_lowercase());
        match self.seen.get(&folded) {
            Some(first) => {
                let first = first.map_or(String::new(), |l| format!(" (first on line {l})"));
                self.report
                    .problems
                    .push((line, format!("{key}: defined again{first}")));
            }
            None => {
                self.seen.insert(folded, line);
            }
        }
        if let Err(e) = Equation::compile(key, eq, &mut self.symbols) {
            self.report.problems.push((line, e.to_string()));
        }
    }
}

fn check_csv(text: &str) -> Report {
    // A spreadsheet's export may start with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut checker = Checker::default();
    let mut first = true;
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let is_header = first
            && unquote(line.split(',').next().unwrap_or(""))
                .trim()
                .eq_ignore_ascii_case("type");
        first = false;
        if is_header {
            continue;
        }
        match split_line(line) {
            Ok((key, eq)) => checker.check(Some(number), key, &eq),
            Err(problem) => {
                checker.report.equations += 1;
                checker.report.problems.push((Some(number), problem));
            }
        }
    }
    checker.report
}

/// Splits `type,id,name,eq` into the key and the equation.
fn split_line(line: &str) -> Result<(EquationKey, String), String> {
    let mut parts = line.splitn(4, ',');
    let (Some(ty), Some(id), Some(name), Some(eq)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("expected type,id,name,eq".to_string());
    };
    let ty = unquote(ty.trim());
    let ty: i32 = ty
        .trim()
        .parse()
        .map_err(|_| format!("the type '{ty}' is not a whole number"))?;
    let id = unquote(id.trim());
    let id: i64 = id
        .trim()
        .parse()
        .map_err(|_| format!("the id '{id}' is not a whole number"))?;
    let name = unquote(name.trim()).trim().to_string();
    if name.is_empty() {
        return Err("the equation has no name".to_string());
    }
    // The equation is kept as stored (columns count from its first character) unless
    // it is quoted.
    let quoted = eq.trim();
    let eq = if quoted.len() >= 2 && quoted.starts_with('"') && quoted.ends_with('"') {
        unquote(quoted)
    } else {
        eq.to_string()
    };
    Ok((EquationKey { ty, id, name }, eq))
}

/// A field without its CSV double quotes (`"a ""b"""` → `a "b"`); other text unchanged.
fn unquote(field: &str) -> String {
    match field.strip_prefix('"').and_then(|f| f.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => field.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_first_three_commas() {
        let r = split_line("4, 17 ,tavg,SNRM VA '1,2'");
        let Ok((key, eq)) = r else { panic!("{r:?}") };
        assert_eq!((key.ty, key.id, key.name.as_str()), (4, 17, "tavg"));
        assert_eq!(eq, "SNRM VA '1,2'");
        let Ok((_, eq)) = split_line("1,0,\"x\",\"ADDS 'a,\"\"b' 'c'\"") else {
            panic!()
        };
        assert_eq!(eq, "ADDS 'a,\"b' 'c'");
        assert_eq!(
            split_line("1,2").err().as_deref(),
            Some("expected type,id,name,eq")
        );
        assert_eq!(
            split_line("x,2,n,1").err().as_deref(),
            Some("the type 'x' is not a whole number")
        );
    }

    #[test]
    fn reports_every_problem_with_its_line() {
        let r = check_csv("type,id,name,eq\n1,0,a,+ 1 2\n\n4,17,tavg,ABS \n3,0,b,1\n1,0,A,2\n");
        assert_eq!(r.equations, 4);
        let lines: Vec<Option<usize>> = r.problems.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![Some(4), Some(5), Some(6)], "{:?}", r.problems);
        assert_eq!(
            r.problems[0].1,
            "equation (type 4, id 17, 'tavg') column 5: ABS expects 1 operand, the equation ends"
        );
        assert!(r.problems[2].1.contains("defined again (first on line 2)"));
        let r = check_csv("\u{feff}type,id,name,eq\r\n1,0,a,+ 1 2\r\n");
        assert_eq!((r.equations, r.problems.len()), (1, 0), "{:?}", r.problems);
    }
}
