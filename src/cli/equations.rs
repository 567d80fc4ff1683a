//! `recalcd equations export` and `recalcd equations import`: the equations table as CSV.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use recalcd::config::Dialect;
use recalcd::engine::validation::{same_name, validate};
use recalcd::store::{self, MergedEquation, Store};

use super::check::{print_problems, problems_of_file, read_file, Located};
use super::GlobalArgs;

pub mod csv;

/// Export the stored equations as CSV, or import them from a CSV file.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Print every stored equation as CSV on standard output.
    ///
    /// One line per equation, `type,id,name,eq`, after a header line, ordered by type, id
    /// and name: the format `recalcd check --file` and `recalcd equations import` read.
    /// Names and equations holding a comma, a double quote, a line break or spaces at
    /// either end are quoted ("" for a double quote), so the file reads back the same.
    Export,
    /// Replace the stored equations by those of a CSV file (or merge them, --merge).
    ///
    /// The file (as `recalcd equations export` writes it; see `recalcd check --help` for
    /// the format) is validated whole first, exactly as `recalcd check --file` does
    /// (with --merge: the set the merge would leave). If there is any problem, every one
    /// is printed, nothing is changed, and the exit code is 2. Otherwise the stored
    /// equations are replaced by the file's in one transaction (PostgreSQL): a running
    /// daemon sees the old set or the new one, never a mix, and reloads before its next
    /// batch. Rows already computed keep their values until they are flagged again.
    ///
    /// With --merge the file's equations are added, each replacing the stored equation of
    /// the same type, id and name (names compare case-insensitively), and the others are
    /// kept. QuestDB has neither DELETE nor transactions across statements, so it offers
    /// --merge only, applied one equation at a time (a failure midway leaves the earlier
    /// ones merged; importing the same file again completes it).
    Import(ImportArgs),
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    /// The CSV file: `type,id,name,eq`.
    #[arg(value_name = "FILE.csv")]
    file: PathBuf,
    /// Add or replace by key (type, id, name) instead of replacing the whole table.
    #[arg(long)]
    merge: bool,
}

/// Runs `recalcd equations`.
pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::Export => export(global),
        Action::Import(import_args) => import(import_args, global),
    }
}

/// Connects to the configured store; `check` runs on it before its schema is checked.
fn connect(
    global: &GlobalArgs,
    check: impl FnOnce(&store::AnyStore) -> anyhow::Result<()>,
) -> anyhow::Result<(tokio::runtime::Runtime, store::AnyStore)> {
    let config = global.load_config()?;
    super::init_logging(&config.log);
    let runtime = super::runtime()?;
    let store = runtime.block_on(store::connect(&config))?;
    check(&store)?;
    runtime.block_on(store.check_schema())?;
    Ok((runtime, store))
}

fn export(global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let (runtime, store) = connect(global, |_| Ok(()))?;
    let mut equations = runtime.block_on(store.load_equations())?;
    equations.sort_by(|a, b| (a.kind, a.id, &a.name).cmp(&(b.kind, b.id, &b.name)));
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    csv::write(&mut out, &equations)?;
    out.flush()?;
    eprintln!("exported {} equations", equations.len());
    Ok(ExitCode::SUCCESS)
}

fn import(args: ImportArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let Some(parsed) = read_file(&args.file) else {
        return Ok(ExitCode::from(2));
    };
    let source = args.file.display().to_string();
    let (runtime, mut store) = connect(global, |store| {
        if store.dialect() == Dialect::QuestDb && !args.merge {
            return Err(super::usage(
                "`recalcd equations import` without --merge replaces the whole equations \
                 table at once, which QuestDB cannot do (it has neither DELETE nor \
                 transactions across statements); use --merge to add or replace equations \
                 by type, id and name",
            ));
        }
        Ok(())
    })?;
    let file: Vec<store::Equation> = parsed.equations.iter().map(|(_, e)| e.clone()).collect();
    if !args.merge {
        let problems = problems_of_file(&parsed);
        if !problems.is_empty() {
            return Ok(refuse(&source, &problems, parsed.records()));
        }
        runtime.block_on(store.replace_equations(&file))?;
        println!(
            "imported {} equations from {source}; they replace the stored equations",
            file.len()
        );
        return Ok(ExitCode::SUCCESS);
    }

    let stored = runtime.block_on(store.load_equations())?;
    let plan = merge_plan(&stored, &file);
    // The set the merge would leave: the stored equations it keeps, then the file's.
    let mut result: Vec<store::Equation> = plan.kept.iter().map(|&i| stored[i].clone()).collect();
    result.extend(file.iter().cloned());
    let mut problems: Vec<Located> = parsed
        .problems
        .iter()
        .map(|(l, m)| (Some(*l), m.clone()))
        .collect();
    for p in validate(&result) {
        let line = p
            .record
            .checked_sub(plan.kept.len())
            .map(|i| parsed.equations[i].0);
        problems.push((line, p.to_string()));
    }
    if !problems.is_empty() {
        problems.sort_by_key(|(line, _)| line.unwrap_or(0));
        return Ok(refuse(&source, &problems, parsed.records()));
    }
    let replaced = plan
        .merged
        .iter()
        .filter(|m| !m.replaces.is_empty())
        .count();
    runtime.block_on(store.merge_equations(&plan.merged))?;
    println!(
        "merged {} equations from {source}: {} added, {replaced} replaced, {} stored now",
        file.len(),
        file.len() - replaced,
        result.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Prints every problem and says nothing was imported: exit code 2.
fn refuse(source: &str, problems: &[Located], records: usize) -> ExitCode {
    print_problems(source, problems);
    println!(
        "{} problem{} in {records} equations of {source}; nothing was imported",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
    );
    ExitCode::from(2)
}

/// How a merge changes the stored equations.
#[derive(Debug, PartialEq)]
struct MergePlan {
    /// The stored equations no equation of the file replaces (indexes).
    kept: Vec<usize>,
    /// The file's equations, each with the stored names it replaces.
    merged: Vec<MergedEquation>,
}

/// Matches each equation of `file` with the stored equations of the same type, id and
/// name (case-insensitively).
fn merge_plan(stored: &[store::Equation], file: &[store::Equation]) -> MergePlan {
    let same_key = |s: &store::Equation, f: &store::Equation| {
        s.kind == f.kind && s.id == f.id && same_name(&s.name, &f.name)
    };
    let kept = (0..stored.len())
        .filter(|&i| !file.iter().any(|f| same_key(&stored[i], f)))
        .collect();
    let merged = file
        .iter()
        .map(|f| MergedEquation {
            equation: f.clone(),
            replaces: stored
                .iter()
                .filter(|s| same_key(s, f))
                .map(|s| s.name.clone())
                .collect(),
        })
        .collect();
    MergePlan { kept, merged }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(kind: i32, id: i32, name: &str, src: &str) -> store::Equation {
        store::Equation::new(kind, id, name, src)
    }

    #[test]
    fn a_merge_replaces_by_type_id_and_name_in_any_case() {
        let stored = [
            e(1, 0, "hot", "1"),
            e(1, 5, "hot", "2"),
            e(4, 0, "HOT", "3"),
        ];
        let file = [e(1, 0, "HOT", "4"), e(2, 0, "new", "5")];
        let plan = merge_plan(&stored, &file);
        assert_eq!(plan.kept, [1, 2]);
        assert_eq!(plan.merged[0].replaces, ["hot"]);
        assert!(plan.merged[1].replaces.is_empty());
    }
}
