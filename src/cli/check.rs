//! `recalcd check`: validate every equation and print every problem.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use recalcd::engine::validation::validate;
use recalcd::store::{self, Store};

use super::equations::csv;
use super::GlobalArgs;

/// Check every stored equation (or those of a CSV file) exactly as the daemon loads them:
/// names, types, functions and operands, variables and pseudo-constants against the
/// level, duplicate outputs, cycles, and what reads a skipped equation. Prints one line per
/// problem and exits 2 if there is any, else prints `N equations OK`.
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

Every problem names the equation (type, id, name) and, with --file, the line:
  equations.csv:4: equation (type 4, id 17, 'tavg') column 6: SNRM expects 1 operand, ...
A name must not be empty nor contain = ; , or \\. Two equations must not write the same
channel of the same row (types 1 and 2 both write the data row; names compare
case-insensitively); a device's equation replacing the id 0 default of the same type and
name is an override. An equation reading its own result, directly or through others of
its type, is a cycle; an equation reading what a skipped equation writes is skipped too.
The daemon leaves out exactly the equations reported here.

The CSV file has one equation per line: type,id,name,eq (as `recalcd equations export`
writes it). An optional first line starting with `type` is a header; blank lines are
skipped. The first three commas split type, id and name; the rest of the line is the
equation, so it may contain commas and apostrophes unquoted. A field may also be wrapped
in double quotes with \"\" for a double quote (and then span lines), as a CSV export
writes it.";

/// Runs `recalcd check`.
pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let (source, equations, problems) = match &args.file {
        Some(path) => {
            let Some(parsed) = read_file(path) else {
                return Ok(ExitCode::from(2));
            };
            let problems = problems_of_file(&parsed);
            (path.display().to_string(), parsed.records(), problems)
        }
        None => {
            let stored = load_stored(global)?;
            let problems = validate(&stored)
                .into_iter()
                .map(|p| (None, p.to_string()))
                .collect();
            ("equations".to_string(), stored.len(), problems)
        }
    };
    print_problems(&source, &problems);
    if problems.is_empty() {
        println!("{equations} equations OK");
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "{} problem{} in {equations} equations",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
        );
        Ok(ExitCode::from(2))
    }
}

/// A problem, with the CSV line it is on when it comes from a file.
pub type Located = (Option<usize>, String);

/// Reads and parses a CSV file; `None` (after saying why on stderr) when it cannot be read.
pub fn read_file(path: &Path) -> Option<csv::Parsed> {
    match std::fs::read_to_string(path) {
        Ok(text) => Some(csv::read(&text)),
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", path.display());
            None
        }
    }
}

/// Every problem of a CSV file — records that cannot be read, then what the validation
/// finds in the others — in line order.
pub fn problems_of_file(parsed: &csv::Parsed) -> Vec<Located> {
    let records: Vec<store::Equation> = parsed.equations.iter().map(|(_, e)| e.clone()).collect();
    let mut problems: Vec<(usize, String)> = parsed.problems.clone();
    problems.extend(
        validate(&records)
            .into_iter()
            .map(|p| (parsed.equations[p.record].0, p.to_string())),
    );
    problems.sort_by_key(|(line, _)| *line);
    problems.into_iter().map(|(l, m)| (Some(l), m)).collect()
}

/// Prints each problem on its own line: `SOURCE:LINE: problem`, or the problem alone.
pub fn print_problems(source: &str, problems: &[Located]) {
    for (line, problem) in problems {
        match line {
            Some(line) => println!("{source}:{line}: {problem}"),
            None => println!("{problem}"),
        }
    }
}

/// Loads the stored equations from the configured database.
fn load_stored(global: &GlobalArgs) -> anyhow::Result<Vec<store::Equation>> {
    let config = global.load_config()?;
    super::init_logging(&config.log);
    Ok(super::runtime()?.block_on(async {
        let store = store::connect(&config).await?;
        store.check_schema().await?;
        store.load_equations().await
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_problem_with_its_line() {
        let parsed = csv::read(
            "type,id,name,eq\n1,0,a,+ 1 2\n\n4,17,tavg,ABS \n3,0,b,1\n1,0,A,2\nx,0,c,1\n1,0,,1\n",
        );
        assert_eq!(parsed.records(), 6);
        let problems = problems_of_file(&parsed);
        let lines: Vec<Option<usize>> = problems.iter().map(|(l, _)| *l).collect();
        assert_eq!(
            lines,
            [Some(2), Some(4), Some(5), Some(6), Some(7), Some(8)],
            "{problems:?}"
        );
        assert_eq!(
            problems[1].1,
            "equation (type 4, id 17, 'tavg') column 5: ABS expects 1 operand, the equation ends"
        );
        assert!(problems[0]
            .1
            .contains("as does equation (type 1, id 0, 'A')"));
        assert_eq!(problems[4].1, "the type 'x' is not a whole number");
        assert!(problems[5]
            .1
            .starts_with("equation (type 1, id 0, ''): the name is empty"));
    }
}
