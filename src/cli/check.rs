//! `recalcd check`: parse and check every equation and print every problem.

use std::path::PathBuf;
use std::process::ExitCode;

use recalcd::lang::{Equation, EquationKey, Symbols};

use super::GlobalArgs;

/// Check every equation: parse it, resolve its functions and operands, and check its
/// variables and pseudo-constants against its level. Prints one line per problem and
/// exits 2 if there is any, else prints `N equations OK`.
#[derive(Debug, clap::Args)]
#[command(after_help = CHECK_HELP)]
pub struct Args {
    /// Read the equations from a CSV file instead of the database.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
}

const CHECK_HELP: &str = "\
The CSV file has one equation per line: type,id,name,eq. An optional first line
starting with `type` is a header; blank lines are skipped. The first three commas split
type, id and name; the rest of the line is the equation, so it may contain commas and
apostrophes unquoted. A field may also be wrapped in double quotes with \"\" for a
double quote, as a CSV export writes it.";

/// Runs `recalcd check`.
pub fn run(args: Args, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let Some(path) = args.file else {
        eprintln!(
            "error: reading the equations from the database is not available in this build; \
             use --file equations.csv (type,id,name,eq)"
        );
        return Ok(ExitCode::from(2));
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| super::as_usage(e.into(), format!("cannot read {}", path.display())))?;
    let shown = path.display().to_string();
    let report = check_csv(&text);
    for (line, problem) in &report.problems {
        println!("{shown}:{line}: {problem}");
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

/// What checking a CSV text found.
#[derive(Debug, Default)]
struct Report {
    /// The number of equation lines.
    equations: usize,
    /// (line number, message) per problem, in file order.
    problems: Vec<(usize, String)>,
}

fn check_csv(text: &str) -> Report {
    let mut report = Report::default();
    let mut symbols = Symbols::new();
    let mut seen: Vec<(i32, i64, String, usize)> = Vec::new();
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
        report.equations += 1;
        let (key, eq) = match split_line(line) {
            Ok(parts) => parts,
            Err(problem) => {
                report.problems.push((number, problem));
                continue;
            }
        };
        let folded = key.name.to_lowercase();
        if let Some((.., other)) = seen
            .iter()
            .find(|(t, id, n, _)| *t == key.ty && *id == key.id && *n == folded)
        {
            report.problems.push((
                number,
                format!("{key}: defined again (first on line {other})"),
            ));
        } else {
            seen.push((key.ty, key.id, folded, number));
        }
        if let Err(e) = Equation::compile(key, &eq, &mut symbols) {
            report.problems.push((number, e.to_string()));
        }
    }
    report
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
        let lines: Vec<usize> = r.problems.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![4, 5, 6], "{:?}", r.problems);
        assert_eq!(
            r.problems[0].1,
            "equation (type 4, id 17, 'tavg') column 5: ABS expects 1 operand, the equation ends"
        );
        assert!(r.problems[2].1.contains("defined again (first on line 2)"));
    }
}
