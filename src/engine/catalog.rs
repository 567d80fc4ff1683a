//! The equations and constants as the engine uses them: compiled once per load, grouped
//! per device (a device's own equation or constant replaces the `id = 0` default of the
//! same name), each level in dependency order.
//!
//! What [`validation`](super::validation) finds wrong — bad names or bodies, duplicates,
//! cycles, and what depends on those — is reported once per load as [`Problem`]s and
//! left out; the device's other equations still run. `recalcd check` runs the same
//! validation, so it reports exactly what the loader leaves out.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono_tz::Tz;

use super::day::{parse_zone, DayBreak, DayClock};
use super::validation::{same_level_deps, validate_into};
use crate::lang::context::{fold, ConstSlot, Level, Slot, Symbols, VarForm};
use crate::lang::value::{parse_number, Value};
use crate::lang::Equation;
use crate::model;

pub use super::validation::{Problem, ProblemKind};

/// What a device's equations need loaded besides the rows they compute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// Data equations read the previous data row (`$$x`).
    pub prev_data_row: bool,
    /// Data or job equations read the previous job's value (`$$X`).
    pub prev_job: bool,
    /// Job equations read the previous job's data rows (`$$x`).
    pub prev_job_rows: bool,
    /// Day equations read the previous day's value (`$$X`).
    pub prev_day: bool,
    /// Day equations read the previous day's jobs (`$$x`).
    pub prev_day_jobs: bool,
    /// Day equations read all data rows of the day (`$d$x`).
    pub day_data: bool,
    /// Data equations read values computed later in the same pass (the job's `$X`,
    /// `$$X`, or a type 1 equation reading a type 2 result): the data and job levels must
    /// be iterated to a fixpoint.
    pub fixpoint: bool,
}

impl Needs {
    /// A changed job changes what the next job reads (`$$x` of its first row, `$$X`,
    /// the job level's `$$x`): the next job must follow.
    pub fn next_job_follows(&self) -> bool {
        self.prev_data_row || self.prev_job || self.prev_job_rows
    }

    /// A changed day changes what the next day reads.
    pub fn next_day_follows(&self) -> bool {
        self.prev_day || self.prev_day_jobs
    }
}

/// One device's equations, each level in evaluation order.
#[derive(Debug, Default)]
pub struct EquationSet {
    /// Types 1 then 2.
    pub data: Vec<Arc<Equation>>,
    /// Type 4.
    pub job: Vec<Arc<Equation>>,
    /// Type 5.
    pub day: Vec<Arc<Equation>>,
    /// Types 6 then 7.
    pub summary: Vec<Arc<Equation>>,
    /// What the equations need loaded.
    pub needs: Needs,
    /// The channels the day equations read over all data rows of the day (`$d$x`).
    pub day_data: Vec<Slot>,
    /// Per data equation (in `data` order): whether a later data ↔ job iteration can
    /// change its result (see [`EquationSet::rerun_data`]).
    rerun_data: Vec<bool>,
    /// Per job equation (in `job` order): the same for the job level.
    rerun_job: Vec<bool>,
}

impl EquationSet {
    /// The equations of a level.
    pub fn level(&self, level: Level) -> &[Arc<Equation>] {
        match level {
            Level::Data => &self.data,
            Level::Job => &self.job,
            Level::Day => &self.day,
            Level::Summary => &self.summary,
        }
    }

    /// Whether the `i`-th data equation must be evaluated again in the second and later
    /// data ↔ job iterations of the fixpoint.
    ///
    /// The first iteration evaluates every equation. Later ones only need those whose
    /// inputs can still change: an equation that reads a job value (`$X`, `$$X`), a data
    /// channel written by such an equation or by an equation evaluated after it, or —
    /// at the job level — data or job values of equations that are evaluated again.
    /// The others would compute exactly what they computed the first time.
    pub fn rerun_data(&self, i: usize) -> bool {
        self.rerun_data.get(i).copied().unwrap_or(true)
    }

    /// [`EquationSet::rerun_data`] for the `i`-th job equation.
    pub fn rerun_job(&self, i: usize) -> bool {
        self.rerun_job.get(i).copied().unwrap_or(true)
    }

    /// Every slot the equations of `level` write (their names and `@name` outputs).
    pub fn written(&self, level: Level) -> HashSet<Slot> {
        self.level(level).iter().flat_map(|e| e.writes()).collect()
    }
}

/// All equations of a load, compiled, with a set per device.
#[derive(Debug)]
pub struct Catalog {
    /// Every channel and constant name the equations use, with its slot.
    symbols: Symbols,
    /// The set for devices without equations of their own.
    default_set: Arc<EquationSet>,
    /// Sets of devices that have equations of their own.
    device_sets: HashMap<i32, Arc<EquationSet>>,
    /// What was left out, reported once per load.
    problems: Vec<Problem>,
}

impl Catalog {
    /// Validates and compiles the stored equations (each exactly once) and builds the
    /// sets, leaving out every equation with a [`Problem`].
    pub fn build(records: &[model::Equation]) -> Catalog {
        let mut symbols = Symbols::new();
        let validated = validate_into(records, &mut symbols);
        let default_set = Arc::new(order(validated.default_set));
        let device_sets = validated
            .device_sets
            .into_iter()
            .map(|(device, eqs)| (device, Arc::new(order(eqs))))
            .collect();
        Catalog {
            symbols,
            default_set,
            device_sets,
            problems: validated.problems,
        }
    }

    /// The equations of `device`.
    pub fn set_for(&self, device: i32) -> &Arc<EquationSet> {
        self.device_sets.get(&device).unwrap_or(&self.default_set)
    }

    /// The names the equations use.
    pub fn symbols(&self) -> &Symbols {
        &self.symbols
    }

    /// The equations left out, with why.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

/// Groups equations by level, orders each level, and works out what they need.
fn order(mut eqs: Vec<Arc<Equation>>) -> EquationSet {
    // Stable evaluation order whatever order the store answered in.
    eqs.sort_by(|a, b| {
        (a.key.ty, fold(&a.key.name), a.key.id).cmp(&(b.key.ty, fold(&b.key.name), b.key.id))
    });
    let of_type = |ty: i32| -> Vec<Arc<Equation>> {
        eqs.iter().filter(|e| e.key.ty == ty).cloned().collect()
    };
    let mut set = EquationSet::default();
    // Each type is ordered on its own; type 1 runs before 2 and 6 before 7 regardless.
    for ty in [1, 2] {
        set.data.extend(topo(of_type(ty)));
    }
    set.job = topo(of_type(4));
    set.day = topo(of_type(5));
    for ty in [6, 7] {
        set.summary.extend(topo(of_type(ty)));
    }
    set.needs = needs(&set);
    let mut day_data: Vec<Slot> = set
        .day
        .iter()
        .flat_map(|e| e.reads())
        .filter(|r| r.form == VarForm::DayData)
        .map(|r| r.slot)
        .collect();
    day_data.sort_unstable_by_key(|s| s.0);
    day_data.dedup();
    set.day_data = day_data;
    (set.rerun_data, set.rerun_job) = reruns(&set);
    set
}

/// Which data and job equations a later fixpoint iteration must evaluate again (see
/// [`EquationSet::rerun_data`]).
fn reruns(set: &EquationSet) -> (Vec<bool>, Vec<bool>) {
    let mut data = vec![false; set.data.len()];
    // Data slots whose value can change after the first iteration.
    let mut moving: HashSet<Slot> = HashSet::new();
    for (i, e) in set.data.iter().enumerate() {
        let later: HashSet<Slot> = set.data[i..].iter().flat_map(|l| l.writes()).collect();
        data[i] = e.reads().iter().any(|r| match r.form {
            VarForm::Up | VarForm::PrevUp => true,
            VarForm::Cur => moving.contains(&r.slot) || later.contains(&r.slot),
            VarForm::Prev => moving.contains(&r.slot),
            VarForm::DayData | VarForm::RangeJobs => false,
        });
        if data[i] {
            moving.extend(e.writes());
        }
    }
    let mut job = vec![false; set.job.len()];
    let mut moving_jobs: HashSet<Slot> = HashSet::new();
    for (i, e) in set.job.iter().enumerate() {
        let later: HashSet<Slot> = set.job[i..].iter().flat_map(|l| l.writes()).collect();
        job[i] = e.reads().iter().any(|r| match r.form {
            VarForm::Cur | VarForm::Prev => moving.contains(&r.slot),
            VarForm::Up => moving_jobs.contains(&r.slot) || later.contains(&r.slot),
            VarForm::PrevUp => moving_jobs.contains(&r.slot),
            VarForm::DayData | VarForm::RangeJobs => false,
        });
        if job[i] {
            moving_jobs.extend(e.writes());
        }
    }
    (data, job)
}

/// Orders equations of one type so that each runs after those whose results it reads
/// in its level's own form (`$x` at the data level, `$X` above it). The validation has
/// left out every cycle, so all of them are ordered.
fn topo(eqs: Vec<Arc<Equation>>) -> Vec<Arc<Equation>> {
    let deps = same_level_deps(&eqs.iter().map(|e| &**e).collect::<Vec<_>>());
    let mut done = vec![false; eqs.len()];
    let mut out = Vec::with_capacity(eqs.len());
    // Repeatedly take the first equation whose inputs are all done: stable and simple;
    // a level has a few dozen equations at most.
    while let Some(i) = (0..eqs.len()).find(|&i| !done[i] && deps[i].iter().all(|&d| done[d])) {
        done[i] = true;
        out.push(Arc::clone(&eqs[i]));
    }
    debug_assert_eq!(
        out.len(),
        eqs.len(),
        "a cycle the validation did not leave out"
    );
    out
}

fn needs(set: &EquationSet) -> Needs {
    let reads = |eqs: &[Arc<Equation>], form: VarForm| {
        eqs.iter().any(|e| e.reads().iter().any(|r| r.form == form))
    };
    let type2_writes: HashSet<Slot> = set
        .data
        .iter()
        .filter(|e| e.key.ty == 2)
        .flat_map(|e| e.writes())
        .collect();
    let type1_reads_type2 = set.data.iter().filter(|e| e.key.ty == 1).any(|e| {
        e.reads()
            .iter()
            .any(|r| r.form == VarForm::Cur && type2_writes.contains(&r.slot))
    });
    let data_reads_jobs = reads(&set.data, VarForm::Up) || reads(&set.data, VarForm::PrevUp);
    Needs {
        prev_data_row: reads(&set.data, VarForm::Prev),
        prev_job: reads(&set.data, VarForm::PrevUp) || reads(&set.job, VarForm::PrevUp),
        prev_job_rows: reads(&set.job, VarForm::Prev),
        prev_day: reads(&set.day, VarForm::PrevUp),
        prev_day_jobs: reads(&set.day, VarForm::Prev),
        day_data: reads(&set.day, VarForm::DayData),
        fixpoint: data_reads_jobs || type1_reads_type2,
    }
}

/// The constants of every device, by the slots the equations use, plus the day break
/// `#WB` and zone `#TZ` the engine itself reads.
#[derive(Debug, Default)]
pub struct Constants {
    /// Constants with `id = 0`.
    defaults: Arc<DeviceConstants>,
    /// Devices with constants of their own (defaults merged in).
    devices: HashMap<i32, Arc<DeviceConstants>>,
}

/// One device's constants.
#[derive(Debug, Default, Clone)]
pub struct DeviceConstants {
    /// Values by [`ConstSlot`].
    values: Vec<Option<Value>>,
    /// `#WB` as stored.
    pub day_break: Option<String>,
    /// `#TZ` as stored.
    pub zone: Option<String>,
}

impl DeviceConstants {
    /// The constant in `slot`.
    pub fn get(&self, slot: ConstSlot) -> Option<&Value> {
        self.values.get(slot.0 as usize)?.as_ref()
    }

    /// The device's day break as `#WB` reads (`HH:MM:SS`), when it has a valid one.
    pub fn day_break_text(&self) -> Option<String> {
        self.day_break
            .as_deref()
            .and_then(|b| b.parse::<DayBreak>().ok())
            .map(|b| b.to_string())
    }

    /// The device's day clock from `#WB` and `#TZ` (`default_zone` without `#TZ`).
    ///
    /// # Errors
    /// A sentence saying which constant is missing or wrong.
    pub fn day_clock(&self, default_zone: Tz) -> Result<DayClock, String> {
        let brk = self
            .day_break
            .as_deref()
            .ok_or_else(|| "the device has no day break: the constant #WB is missing".to_owned())?
            .parse::<DayBreak>()
            .map_err(|e| format!("constant #WB: {e}"))?;
        let zone = match self.zone.as_deref() {
            Some(name) => parse_zone(name).map_err(|e| format!("constant #TZ: {e}"))?,
            None => default_zone,
        };
        Ok(DayClock::new(brk, zone))
    }

    fn set(&mut self, symbols: &Symbols, name: &str, value: &str) {
        if name.eq_ignore_ascii_case("WB") {
            self.day_break = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("TZ") {
            self.zone = Some(value.to_owned());
        }
        if let Some(slot) = symbols.find_constant(name) {
            let i = slot.0 as usize;
            if self.values.len() <= i {
                self.values.resize(i + 1, None);
            }
            self.values[i] = Some(constant_value(value));
        }
    }
}

/// A stored constant's value: a number if it reads as one, else the string.
fn constant_value(text: &str) -> Value {
    match parse_number(text) {
        Some(n) => Value::Num(n),
        None => Value::str(text),
    }
}

impl Constants {
    /// Groups the stored constants by device, device values replacing the defaults.
    pub fn build(records: &[model::Constant], symbols: &Symbols) -> Constants {
        let mut defaults = DeviceConstants::default();
        for c in records.iter().filter(|c| c.id == 0) {
            defaults.set(symbols, &c.name, &c.value);
        }
        let mut devices: HashMap<i32, DeviceConstants> = HashMap::new();
        for c in records.iter().filter(|c| c.id != 0) {
            devices
                .entry(c.id)
                .or_insert_with(|| defaults.clone())
                .set(symbols, &c.name, &c.value);
        }
        Constants {
            defaults: Arc::new(defaults),
            devices: devices.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
        }
    }

    /// The constants of `device`.
    pub fn for_device(&self, device: i32) -> &Arc<DeviceConstants> {
        self.devices.get(&device).unwrap_or(&self.defaults)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(kind: i32, id: i32, name: &str, src: &str) -> model::Equation {
        model::Equation::new(kind, id, name, src)
    }

    fn names(eqs: &[Arc<Equation>]) -> Vec<&str> {
        eqs.iter().map(|e| e.key.name.as_str()).collect()
    }

    #[test]
    fn orders_each_level_by_what_it_reads() {
        let c = Catalog::build(&[
            eq(2, 0, "c", "+ $b 1"),
            eq(2, 0, "b", "* $a 2"),
            eq(1, 0, "a", "+ $raw 1"),
            eq(4, 0, "JB", "+ $JA 1"),
            eq(4, 0, "JA", "SSUM $a"),
        ]);
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        let set = c.set_for(5);
        assert_eq!(names(&set.data), ["a", "b", "c"]);
        assert_eq!(names(&set.job), ["JA", "JB"]);
        assert!(!set.needs.fixpoint);
    }

    #[test]
    fn a_device_equation_replaces_the_default_of_the_same_type_and_name() {
        let c = Catalog::build(&[
            eq(1, 0, "a", "1"),
            eq(1, 0, "b", "2"),
            eq(1, 7, "A", "3"),
            eq(4, 7, "a", "4"),
        ]);
        let own = c.set_for(7);
        let srcs: Vec<&str> = own.data.iter().map(|e| e.program.source()).collect();
        assert_eq!(srcs, ["3", "2"]);
        assert_eq!(names(&own.job), ["a"]);
        let other = c.set_for(8);
        let srcs: Vec<&str> = other.data.iter().map(|e| e.program.source()).collect();
        assert_eq!(srcs, ["1", "2"]);
        assert!(other.job.is_empty());
    }

    #[test]
    fn cycles_and_bad_equations_are_reported_once_and_skipped() {
        let c = Catalog::build(&[
            eq(1, 0, "a", "+ $b 1"),
            eq(1, 0, "b", "+ $a 1"),
            eq(1, 0, "self", "+ $self 1"),
            eq(1, 0, "ok", "5"),
            eq(1, 0, "bad", "SNRM"),
            eq(1, 3, "unrelated", "1"),
        ]);
        assert_eq!(names(&c.set_for(0).data), ["ok"]);
        assert_eq!(names(&c.set_for(3).data), ["ok", "unrelated"]);
        let text: Vec<String> = c.problems().iter().map(|p| p.to_string()).collect();
        assert_eq!(text.len(), 4, "{text:?}");
        assert!(text
            .iter()
            .any(|t| t.starts_with("equation (type 1, id 0, 'bad') column")));
        assert!(text
            .iter()
            .any(|t| t.contains("'a'): reads its own result through a cycle (a → b → a)")));
        assert!(text
            .iter()
            .any(|t| t.contains("'self'): reads its own result (self → self)")));
    }

    #[test]
    fn needs_follow_the_variable_forms() {
        let c = Catalog::build(&[
            eq(1, 0, "d", "+ $$x $TOTAL"),
            eq(4, 0, "TOTAL", "SSUM $$x"),
            eq(5, 0, "DAYSUM", "+ SSUM $d$x $$DAYSUM"),
        ]);
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        let n = c.set_for(1).needs;
        assert!(n.prev_data_row && n.prev_job_rows && n.day_data && n.prev_day && n.fixpoint);
        assert!(!n.prev_job && !n.prev_day_jobs);
    }

    #[test]
    fn later_iterations_rerun_only_what_reads_values_that_can_still_change() {
        let c = Catalog::build(&[
            eq(1, 0, "raw", "* $tmp 2"),
            eq(1, 0, "early", "+ $late 1"),
            eq(2, 0, "late", "+ $raw 1"),
            eq(2, 0, "dev", "- $tmp $TAVG"),
            eq(2, 0, "dev2", "* $dev 2"),
            eq(2, 0, "prevdev", "IFNA $$dev 0"),
            eq(2, 0, "prevraw", "IFNA $$raw 0"),
            eq(4, 0, "TAVG", "SNRM $tmp"),
            eq(4, 0, "DEVMAX", "SMAX $dev"),
            eq(4, 0, "NEXT", "+ $DEVMAX 1"),
            eq(4, 0, "RAWMAX", "SMAX $raw"),
        ]);
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        let set = c.set_for(1);
        fn rerun<'a>(eqs: &'a [Arc<Equation>], f: &dyn Fn(usize) -> bool) -> Vec<&'a str> {
            eqs.iter()
                .enumerate()
                .filter(|(i, _)| f(*i))
                .map(|(_, e)| e.key.name.as_str())
                .collect()
        }
        assert_eq!(
            rerun(&set.data, &|i| set.rerun_data(i)),
            ["early", "dev", "dev2", "prevdev"]
        );
        assert_eq!(rerun(&set.job, &|i| set.rerun_job(i)), ["DEVMAX", "NEXT"]);
    }

    #[test]
    fn device_constants_override_defaults() {
        let mut symbols = Symbols::new();
        let tmax = symbols.constant("TMAX");
        let label = symbols.constant("label");
        let consts = Constants::build(
            &[
                model::Constant {
                    id: 0,
                    name: "TMAX".into(),
                    value: "20".into(),
                },
                model::Constant {
                    id: 0,
                    name: "WB".into(),
                    value: "06:00".into(),
                },
                model::Constant {
                    id: 4,
                    name: "tmax".into(),
                    value: "25.5".into(),
                },
                model::Constant {
                    id: 4,
                    name: "LABEL".into(),
                    value: "boiler".into(),
                },
            ],
            &symbols,
        );
        assert_eq!(consts.for_device(1).get(tmax), Some(&Value::Num(20.0)));
        assert_eq!(consts.for_device(4).get(tmax), Some(&Value::Num(25.5)));
        assert_eq!(consts.for_device(4).get(label), Some(&Value::str("boiler")));
        assert_eq!(consts.for_device(1).get(label), None);
        assert_eq!(consts.for_device(4).day_break.as_deref(), Some("06:00"));
    }
}
