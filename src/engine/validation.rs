//! The one validation of a load's equations, shared by the loader ([`Catalog::build`]),
//! `recalcd check` (stored equations or a CSV file) and `recalcd equations import`: what
//! it reports is exactly what the loader leaves out.
//!
//! Each equation is checked on its own — its name (not empty, none of `=` `;` `,` `\`,
//! which `conjoined`'s `name=value;` entries cannot hold), its type, its tokens,
//! operands, variable forms and pseudo-constants (see [`crate::lang`]) — and then within
//! the set of equations each device runs (the `id = 0` defaults it does not override by
//! type and name, plus its own), where three more problems can arise:
//!
//! - **duplicates**: two equations writing the same output channel (their name or an
//!   `@name` output, compared case-insensitively) of the same row — types 1 and 2 both
//!   write the data row, 6 and 7 the summary. All of them are left out: none wins
//!   silently. A device's own equation replacing the default of the same type and name
//!   is an override, not a duplicate.
//! - **cycles**: equations of one type reading each other's results in the level's own
//!   form (`$x` at the data level, `$X` above it), an equation reading itself included.
//! - **dependents**: an equation reading (in any form) a channel that a left-out
//!   equation writes is left out too, since it would read a value nothing computes.
//!
//! A problem of a default equation that arises only in one device's set (the device
//! overrides an equation it depends on) names that device.
//!
//! [`Catalog::build`]: super::catalog::Catalog::build

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::Arc;

use crate::lang::context::{fold, Level, Symbols, VarForm};
use crate::lang::{Equation, EquationError, EquationKey};
use crate::model;

/// The characters an equation's name (its output channel) cannot contain: `conjoined`
/// entries are `name=value;` with `\` escapes, and CSV fields are split at `,`.
pub const NAME_FORBIDDEN: [char; 4] = ['=', ';', ',', '\\'];

/// An equation left out of a load, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The equation.
    pub key: EquationKey,
    /// Its position in the records given to the validation (a CSV file's caller maps it
    /// to the line).
    pub record: usize,
    /// The device whose set of equations the problem arises in, when the equation is an
    /// `id = 0` default that is fine elsewhere.
    pub device: Option<i32>,
    /// What is wrong.
    pub kind: ProblemKind,
}

/// What is wrong with an equation.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The name is empty.
    EmptyName,
    /// The name contains one of [`NAME_FORBIDDEN`].
    NameCharacter(char),
    /// It does not parse or check (its type, tokens, operands, variable forms or
    /// pseudo-constants).
    Invalid(EquationError),
    /// Another equation writes the same channel of the same row.
    Duplicate {
        /// The row it writes.
        row: Level,
        /// The channel as this equation writes it.
        channel: String,
        /// The other equation.
        other: EquationKey,
    },
    /// It reads its own result through a cycle of equations of its type.
    Cycle {
        /// The names along the cycle, from this equation back to it.
        path: Vec<String>,
    },
    /// It reads a channel that a left-out equation writes.
    DependsOn {
        /// The row read.
        row: Level,
        /// The channel as this equation reads it.
        channel: String,
        /// The left-out equation.
        on: EquationKey,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.key)?;
        if let Some(device) = self.device {
            write!(f, " for device {device}")?;
        }
        match &self.kind {
            // The language's own form: `equation (…) column 6: …`.
            ProblemKind::Invalid(e) => write!(f, " column {}: {}", e.column, e.kind),
            kind => write!(f, ": {kind}"),
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProblemKind::EmptyName => write!(
                f,
                "the name is empty; the name is the output channel, written into \
                 conjoined as name=value;"
            ),
            ProblemKind::NameCharacter(c) => write!(
                f,
                "the name contains '{}', which an output channel cannot hold \
                 (names may not contain = ; , or \\)",
                c.escape_default()
            ),
            ProblemKind::Invalid(e) => write!(f, "column {}: {}", e.column, e.kind),
            ProblemKind::Duplicate {
                row,
                channel,
                other,
            } => write!(
                f,
                "writes the {} channel '{channel}', as does {other} (names compare \
                 case-insensitively); both are skipped",
                row.name()
            ),
            ProblemKind::Cycle { path } => {
                if path.len() <= 2 {
                    write!(
                        f,
                        "reads its own result ({}); it is skipped",
                        path.join(" → ")
                    )
                } else {
                    write!(
                        f,
                        "reads its own result through a cycle ({}); it is skipped",
                        path.join(" → ")
                    )
                }
            }
            ProblemKind::DependsOn { row, channel, on } => write!(
                f,
                "reads the {} channel '{channel}' written by {on}, which is skipped; \
                 it is skipped too",
                row.name()
            ),
        }
    }
}

impl std::error::Error for Problem {}

/// What the validation of a load found, and the equations each set keeps.
#[derive(Debug)]
pub(crate) struct Validated {
    /// Every problem, in record order.
    pub problems: Vec<Problem>,
    /// The equations of devices without equations of their own, in record order.
    pub default_set: Vec<Arc<Equation>>,
    /// Per device with equations of its own, the equations it runs.
    pub device_sets: Vec<(i32, Vec<Arc<Equation>>)>,
}

/// Checks `name` as an equation's output channel.
///
/// # Errors
/// [`ProblemKind::EmptyName`] or [`ProblemKind::NameCharacter`].
pub fn check_name(name: &str) -> Result<(), ProblemKind> {
    if name.is_empty() {
        return Err(ProblemKind::EmptyName);
    }
    match name.chars().find(|c| NAME_FORBIDDEN.contains(c)) {
        Some(c) => Err(ProblemKind::NameCharacter(c)),
        None => Ok(()),
    }
}

/// Whether two equation names are the same output channel (names compare
/// case-insensitively).
pub fn same_name(a: &str, b: &str) -> bool {
    fold(a) == fold(b)
}

/// Every problem of `records` — names, parsing and checking, duplicates, cycles and what
/// depends on a left-out equation — in record order: exactly what [`Catalog::build`]
/// leaves out.
///
/// [`Catalog::build`]: super::catalog::Catalog::build
pub fn validate(records: &[model::Equation]) -> Vec<Problem> {
    validate_into(records, &mut Symbols::new()).problems
}

/// [`validate`], compiling into `symbols` and keeping the sets (for the loader).
pub(crate) fn validate_into(records: &[model::Equation], symbols: &mut Symbols) -> Validated {
    let mut report = Report::default();
    let entries: Vec<Entry> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Entry::compile(i, r, symbols, &mut report))
        .collect();

    let defaults: Vec<usize> = (0..entries.len()).filter(|&i| records[i].id == 0).collect();
    let default_set = analyze(&entries, &defaults, None, &mut report);
    let mut devices: Vec<i32> = records.iter().map(|r| r.id).filter(|&d| d != 0).collect();
    devices.sort_unstable();
    devices.dedup();
    let mut device_sets = Vec::with_capacity(devices.len());
    for device in devices {
        let own: Vec<usize> = (0..entries.len())
            .filter(|&i| records[i].id == device)
            .collect();
        let overridden: HashSet<(i32, String)> = own
            .iter()
            .map(|&i| (records[i].kind, fold(&records[i].name)))
            .collect();
        let members: Vec<usize> = defaults
            .iter()
            .copied()
            .filter(|&i| !overridden.contains(&(records[i].kind, fold(&records[i].name))))
            .chain(own)
            .collect();
        let kept = analyze(&entries, &members, Some(device), &mut report);
        device_sets.push((device, kept));
    }
    let mut problems = report.problems;
    problems.sort_by_key(|p| p.record);
    Validated {
        problems,
        default_set,
        device_sets,
    }
}

/// One record as the validation sees it.
struct Entry {
    key: EquationKey,
    /// The compiled equation, when its name and body are valid.
    eq: Option<Arc<Equation>>,
    /// The channels it writes: (row, folded name), its name first when valid.
    writes: Vec<(Level, String)>,
    /// The channels it reads: (row, folded name, name as written).
    reads: Vec<(Level, String, Arc<str>)>,
}

impl Entry {
    fn compile(
        record: usize,
        r: &model::Equation,
        symbols: &mut Symbols,
        report: &mut Report,
    ) -> Entry {
        let key = EquationKey {
            ty: r.kind,
            id: i64::from(r.id),
            name: r.name.clone(),
        };
        let name_ok = match check_name(&r.name) {
            Ok(()) => true,
            Err(kind) => {
                report.push(record, &key, None, kind);
                false
            }
        };
        // An equation with a bad name is still checked (so that every problem is
        // reported at once), against a table of its own that the load does not keep.
        let mut scratch = Symbols::new();
        let table = if name_ok { symbols } else { &mut scratch };
        let compiled = match Equation::compile(key.clone(), &r.eq, table) {
            Ok(eq) => Some(eq),
            Err(e) => {
                report.push(record, &key, None, ProblemKind::Invalid(e));
                None
            }
        };
        let level = Level::from_type(r.kind);
        let mut writes = Vec::new();
        if let (true, Some(level)) = (name_ok, level) {
            writes.push((level, fold(&r.name)));
        }
        let mut reads = Vec::new();
        let eq = match compiled {
            Some(eq) if name_ok => {
                for (_, output) in eq.program.outputs() {
                    writes.push((eq.level, fold(output)));
                }
                for read in eq.reads() {
                    if let Some(row) = row_read(eq.level, read.form) {
                        reads.push((row, fold(&read.name), Arc::clone(&read.name)));
                    }
                }
                Some(Arc::new(eq))
            }
            _ => None,
        };
        writes.dedup();
        Entry {
            key,
            eq,
            writes,
            reads,
        }
    }
}

/// The row whose channel a variable of `form` reads in an equation of `level`.
fn row_read(level: Level, form: VarForm) -> Option<Level> {
    use VarForm::*;
    Some(match (level, form) {
        (Level::Data | Level::Job, Cur | Prev) => Level::Data,
        (Level::Data | Level::Job, Up | PrevUp) => Level::Job,
        (Level::Day, Cur | Prev) => Level::Job,
        (Level::Day, Up | PrevUp) => Level::Day,
        (Level::Day, DayData) => Level::Data,
        (Level::Summary, Cur | Prev) => Level::Day,
        (Level::Summary, Up | PrevUp) => Level::Summary,
        (Level::Summary, RangeJobs) => Level::Job,
        _ => return None,
    })
}

/// The problems found so far, each reported once: a default's problem found in its own
/// set is not repeated for every device whose set contains it.
#[derive(Default)]
struct Report {
    problems: Vec<Problem>,
    /// (record, device, message) of every problem reported.
    seen: HashSet<(usize, Option<i32>, String)>,
}

impl Report {
    fn push(&mut self, record: usize, key: &EquationKey, device: Option<i32>, kind: ProblemKind) {
        let text = kind.to_string();
        if self.seen.contains(&(record, None, text.clone())) {
            return;
        }
        if self.seen.insert((record, device, text)) {
            self.problems.push(Problem {
                key: key.clone(),
                record,
                device,
                kind,
            });
        }
    }
}

/// Checks one set of equations (`members`, indexes into `entries`) and returns those it
/// keeps, in `members` order.
fn analyze(
    entries: &[Entry],
    members: &[usize],
    device: Option<i32>,
    report: &mut Report,
) -> Vec<Arc<Equation>> {
    // A default's problem within a device's set names the device.
    let context = |i: usize| match device {
        Some(d) if entries[i].key.id == 0 => Some(d),
        _ => None,
    };
    let mut skipped: HashSet<usize> = members
        .iter()
        .copied()
        .filter(|&i| entries[i].eq.is_none())
        .collect();

    // Duplicates: every writer of a channel written more than once.
    let mut writers: HashMap<&(Level, String), Vec<usize>> = HashMap::new();
    for &i in members {
        for w in &entries[i].writes {
            writers.entry(w).or_default().push(i);
        }
    }
    let mut clashes: Vec<(usize, ProblemKind)> = Vec::new();
    for &i in members {
        for w in &entries[i].writes {
            let others = &writers[w];
            if let Some(&other) = others.iter().find(|&&o| o != i) {
                clashes.push((
                    i,
                    ProblemKind::Duplicate {
                        row: w.0,
                        channel: written_as(&entries[i], w),
                        other: entries[other].key.clone(),
                    },
                ));
            }
        }
    }
    for (i, kind) in clashes {
        skipped.insert(i);
        report.push(i, &entries[i].key, context(i), kind);
    }

    // Cycles, per type, among what is still kept.
    for ty in [1, 2, 4, 5, 6, 7] {
        // (member, its compiled equation): every member not yet skipped compiled.
        let nodes: Vec<(usize, &Equation)> = members
            .iter()
            .filter(|i| entries[**i].key.ty == ty && !skipped.contains(*i))
            .filter_map(|&i| Some((i, entries[i].eq.as_deref()?)))
            .collect();
        let eqs: Vec<&Equation> = nodes.iter().map(|(_, e)| *e).collect();
        let deps = same_level_deps(&eqs);
        let mut cyclic = Vec::new();
        for (n, (i, _)) in nodes.iter().enumerate() {
            if let Some(path) = cycle_through(n, &deps) {
                let names = path.iter().map(|&p| eqs[p].key.name.clone()).collect();
                cyclic.push((*i, ProblemKind::Cycle { path: names }));
            }
        }
        for (i, kind) in cyclic {
            skipped.insert(i);
            report.push(i, &entries[i].key, context(i), kind);
        }
    }

    // What reads a channel only a left-out equation writes, until nothing more is.
    loop {
        let mut newly = Vec::new();
        for &i in members {
            if skipped.contains(&i) {
                continue;
            }
            let on = entries[i].reads.iter().find_map(|(row, folded, name)| {
                let w = writers.get(&(*row, folded.clone()))?;
                let &by = w.iter().find(|&&w| w != i && skipped.contains(&w))?;
                Some((*row, name, by))
            });
            if let Some((row, name, by)) = on {
                newly.push((
                    i,
                    ProblemKind::DependsOn {
                        row,
                        channel: name.to_string(),
                        on: entries[by].key.clone(),
                    },
                ));
            }
        }
        if newly.is_empty() {
            break;
        }
        for (i, kind) in newly {
            skipped.insert(i);
            report.push(i, &entries[i].key, context(i), kind);
        }
    }

    members
        .iter()
        .filter(|i| !skipped.contains(i))
        .filter_map(|&i| entries[i].eq.clone())
        .collect()
}

/// The channel `w` as `entry` spells it (its name or the output's spelling).
fn written_as(entry: &Entry, w: &(Level, String)) -> String {
    if fold(&entry.key.name) == w.1 {
        return entry.key.name.clone();
    }
    entry
        .eq
        .as_ref()
        .and_then(|eq| {
            eq.program
                .outputs()
                .iter()
                .find(|(_, n)| fold(n) == w.1)
                .map(|(_, n)| n.to_string())
        })
        .unwrap_or_else(|| w.1.clone())
}

/// For equations of one type: `deps[i]` are the equations whose results equation `i`
/// reads in its level's own form (`$x` at the data level, `$X` above it), so must run
/// before it. The loader orders by this and the validation finds cycles in it.
pub(crate) fn same_level_deps(eqs: &[&Equation]) -> Vec<Vec<usize>> {
    let writer: HashMap<crate::lang::Slot, usize> = eqs
        .iter()
        .enumerate()
        .flat_map(|(i, e)| e.writes().map(move |s| (s, i)))
        .collect();
    eqs.iter()
        .map(|e| {
            let same_level = if e.level == Level::Data {
                VarForm::Cur
            } else {
                VarForm::Up
            };
            let mut d: Vec<usize> = e
                .reads()
                .iter()
                .filter(|r| r.form == same_level)
                .filter_map(|r| writer.get(&r.slot).copied())
                .collect();
            d.sort_unstable();
            d.dedup();
            d
        })
        .collect()
}

/// The shortest path of dependencies from `start` back to itself, as
/// `[start, …, start]`, if there is one.
fn cycle_through(start: usize, deps: &[Vec<usize>]) -> Option<Vec<usize>> {
    let mut parent: Vec<Option<usize>> = vec![None; deps.len()];
    let mut queue = VecDeque::from([start]);
    let mut seen = vec![false; deps.len()];
    while let Some(n) = queue.pop_front() {
        for &d in &deps[n] {
            if d == start {
                // Back from `n` to `start` (which has no parent), then turned around.
                let mut path = vec![n];
                let mut at = n;
                while let Some(p) = parent[at] {
                    path.push(p);
                    at = p;
                }
                path.reverse();
                path.push(start);
                return Some(path);
            }
            if !seen[d] {
                seen[d] = true;
                parent[d] = Some(n);
                queue.push_back(d);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(kind: i32, id: i32, name: &str, src: &str) -> model::Equation {
        model::Equation::new(kind, id, name, src)
    }

    /// (record, device, message) of every problem.
    fn found(records: &[model::Equation]) -> Vec<(usize, Option<i32>, String)> {
        validate(records)
            .into_iter()
            .map(|p| (p.record, p.device, p.to_string()))
            .collect()
    }

    /// The names each set keeps: the default set, then each device's.
    fn kept(records: &[model::Equation]) -> Vec<(i32, Vec<String>)> {
        let v = validate_into(records, &mut Symbols::new());
        let names = |eqs: &[Arc<Equation>]| eqs.iter().map(|e| e.key.name.clone()).collect();
        std::iter::once((0, names(&v.default_set)))
            .chain(v.device_sets.iter().map(|(d, eqs)| (*d, names(eqs))))
            .collect()
    }

    #[test]
    fn a_valid_set_has_no_problem() {
        assert!(found(&[
            eq(1, 0, "a", "+ $tmp 1"),
            eq(2, 0, "b", "* $a 2"),
            eq(4, 0, "A", "SNRM $a"),
            eq(1, 3, "a", "+ $tmp 2"),
        ])
        .is_empty());
    }

    #[test]
    fn names_must_be_writable_into_conjoined() {
        let p = found(&[
            eq(1, 0, "", "1"),
            eq(1, 0, "a=b", "1"),
            eq(1, 0, "a;b", "1"),
            eq(1, 0, "a,b", "1"),
            eq(1, 0, "a\\b", "1"),
            eq(1, 0, "ok", "1"),
        ]);
        let messages: Vec<&str> = p.iter().map(|(_, _, m)| m.as_str()).collect();
        assert_eq!(
            messages,
            [
                "equation (type 1, id 0, ''): the name is empty; the name is the output \
                 channel, written into conjoined as name=value;",
                "equation (type 1, id 0, 'a=b'): the name contains '=', which an output \
                 channel cannot hold (names may not contain = ; , or \\)",
                "equation (type 1, id 0, 'a;b'): the name contains ';', which an output \
                 channel cannot hold (names may not contain = ; , or \\)",
                "equation (type 1, id 0, 'a,b'): the name contains ',', which an output \
                 channel cannot hold (names may not contain = ; , or \\)",
                "equation (type 1, id 0, 'a\\b'): the name contains '\\\\', which an output \
                 channel cannot hold (names may not contain = ; , or \\)",
            ]
        );
        assert_eq!(
            kept(&[eq(1, 0, "", "1"), eq(1, 0, "ok", "1")]),
            [(0, vec!["ok".into()])]
        );
    }

    #[test]
    fn a_bad_name_and_a_bad_body_are_both_reported() {
        let p = found(&[eq(1, 0, "", "SNRM")]);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[1]
            .2
            .ends_with("column 5: SNRM expects 1 operand, the equation ends"));
    }

    #[test]
    fn operand_level_and_type_errors_name_the_equation_and_column() {
        let p = found(&[
            eq(4, 17, "tavg", "SNRM "),
            eq(1, 0, "x", "SSUM $d$tmp"),
            eq(3, 0, "y", "1"),
        ]);
        let messages: Vec<&str> = p.iter().map(|(_, _, m)| m.as_str()).collect();
        assert_eq!(
            messages,
            [
                "equation (type 4, id 17, 'tavg') column 6: SNRM expects 1 operand, the \
                 equation ends",
                "equation (type 1, id 0, 'x') column 6: $d$x variables ('$d$tmp') cannot be \
                 used at the data level",
                "equation (type 3, id 0, 'y') column 1: type 3 is not a level (1, 2: data; \
                 4: job; 5: day; 6, 7: summary)",
            ]
        );
    }

    #[test]
    fn names_differing_in_case_are_duplicates_and_neither_runs() {
        let records = [
            eq(1, 0, "hot", "1"),
            eq(1, 0, "HOT", "2"),
            eq(1, 0, "ok", "3"),
        ];
        let p = found(&records);
        assert_eq!(
            p,
            [
                (
                    0,
                    None,
                    "equation (type 1, id 0, 'hot'): writes the data channel 'hot', as does \
                     equation (type 1, id 0, 'HOT') (names compare case-insensitively); both \
                     are skipped"
                        .to_string()
                ),
                (
                    1,
                    None,
                    "equation (type 1, id 0, 'HOT'): writes the data channel 'HOT', as does \
                     equation (type 1, id 0, 'hot') (names compare case-insensitively); both \
                     are skipped"
                        .to_string()
                ),
            ]
        );
        assert_eq!(kept(&records), [(0, vec!["ok".to_string()])]);
    }

    #[test]
    fn types_1_and_2_write_the_same_data_row() {
        let p = found(&[eq(1, 0, "a", "1"), eq(2, 0, "A", "2"), eq(4, 0, "a", "3")]);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].2.contains("as does equation (type 2, id 0, 'A')"),
            "{p:?}"
        );
        // The job's `a` is another row's channel.
        assert!(p.iter().all(|(r, _, _)| *r != 2), "{p:?}");
    }

    #[test]
    fn an_output_operand_collides_with_a_name() {
        let p = found(&[
            eq(4, 0, "flags", "SDATCTRL 1 @SPIKE $x 3"),
            eq(4, 0, "spike", "1"),
        ]);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0]
            .2
            .contains("writes the job channel 'SPIKE', as does equation (type 4, id 0, 'spike')"));
    }

    #[test]
    fn a_device_equation_overrides_its_default_and_is_no_duplicate() {
        let records = [
            eq(1, 0, "hot", "1"),
            eq(1, 5, "HOT", "2"),
            eq(2, 5, "hot", "3"),
        ];
        // The device's own type 2 `hot` does not override the type 1 default: both write
        // the data channel `hot` of device 5 (overrides go by type and name).
        let p = found(&records);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p.iter().all(|(_, d, _)| d.is_none()), "{p:?}");
        assert_eq!(p[0].0, 1);
        assert!(p[0].2.contains("as does equation (type 2, id 5, 'hot')"));
        let records = [eq(1, 0, "hot", "1"), eq(1, 5, "HOT", "2")];
        assert!(found(&records).is_empty());
        assert_eq!(
            kept(&records),
            [(0, vec!["hot".to_string()]), (5, vec!["HOT".to_string()])]
        );
    }

    #[test]
    fn cycles_and_self_references_are_found() {
        let records = [
            eq(1, 0, "a", "+ $b 1"),
            eq(1, 0, "b", "+ $a 1"),
            eq(4, 0, "S", "+ $S 1"),
            eq(1, 0, "prev", "IFNA $$prev 0"),
            eq(4, 0, "T", "IFNA $$T 0"),
        ];
        let p = found(&records);
        let messages: Vec<&str> = p.iter().map(|(_, _, m)| m.as_str()).collect();
        assert_eq!(
            messages,
            [
                "equation (type 1, id 0, 'a'): reads its own result through a cycle \
                 (a → b → a); it is skipped",
                "equation (type 1, id 0, 'b'): reads its own result through a cycle \
                 (b → a → b); it is skipped",
                "equation (type 4, id 0, 'S'): reads its own result (S → S); it is skipped",
            ]
        );
        assert_eq!(kept(&records), [(0, vec!["prev".into(), "T".into()])]);
    }

    #[test]
    fn what_reads_a_skipped_equation_is_skipped_too_at_every_level() {
        let records = [
            eq(1, 0, "bad", "SNRM"),
            eq(2, 0, "next", "+ $bad 1"),
            eq(4, 0, "JOB", "SSUM $next"),
            eq(5, 0, "DAY", "SSUM $d$bad"),
            eq(6, 0, "SUM", "SSUM $j$JOB"),
            eq(1, 0, "fine", "+ $JOBX 1"),
            eq(4, 0, "JOBX", "SSUM $tmp"),
        ];
        let p = found(&records);
        let messages: Vec<&str> = p.iter().map(|(_, _, m)| m.as_str()).collect();
        assert_eq!(messages.len(), 5, "{messages:?}");
        assert_eq!(
            messages[1],
            "equation (type 2, id 0, 'next'): reads the data channel 'bad' written by \
             equation (type 1, id 0, 'bad'), which is skipped; it is skipped too"
        );
        assert!(messages[2].contains("'JOB'): reads the data channel 'next'"));
        assert!(messages[3].contains("'DAY'): reads the data channel 'bad'"));
        assert!(messages[4].contains("'SUM'): reads the job channel 'JOB'"));
        assert_eq!(kept(&records), [(0, vec!["fine".into(), "JOBX".into()])]);
    }

    #[test]
    fn a_problem_only_one_device_has_names_the_device() {
        let records = [
            eq(1, 0, "a", "+ $b 1"),
            eq(1, 0, "b", "2"),
            eq(1, 5, "b", "+ $a 1"),
            eq(1, 6, "c", "1"),
        ];
        let p = found(&records);
        let messages: Vec<(usize, Option<i32>, &str)> =
            p.iter().map(|(r, d, m)| (*r, *d, m.as_str())).collect();
        assert_eq!(
            messages,
            [
                (
                    0,
                    Some(5),
                    "equation (type 1, id 0, 'a') for device 5: reads its own result through \
                     a cycle (a → b → a); it is skipped"
                ),
                (
                    2,
                    None,
                    "equation (type 1, id 5, 'b'): reads its own result through a cycle \
                     (b → a → b); it is skipped"
                ),
            ]
        );
        assert_eq!(
            kept(&records),
            [
                (0, vec!["a".into(), "b".into()]),
                (5, vec![]),
                (6, vec!["a".into(), "b".into(), "c".into()]),
            ]
        );
    }

    #[test]
    fn a_default_problem_is_reported_once_not_per_device() {
        let records = [
            eq(1, 0, "bad", "SNRM"),
            eq(1, 0, "x", "+ $bad 1"),
            eq(1, 1, "o1", "1"),
            eq(1, 2, "o2", "1"),
        ];
        assert_eq!(found(&records).len(), 2, "{:?}", found(&records));
    }

    #[test]
    fn a_broken_device_equation_still_replaces_the_default() {
        // Running the default instead would compute what the device's equation replaced.
        let records = [
            eq(1, 0, "a", "1"),
            eq(1, 5, "a", "SNRM"),
            eq(1, 0, "b", "+ $a 1"),
        ];
        let p = found(&records);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!((p[1].0, p[1].1), (2, Some(5)));
        assert_eq!(
            kept(&records),
            [(0, vec!["a".into(), "b".into()]), (5, vec![])]
        );
    }
}
