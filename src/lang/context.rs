//! What an equation reads: the levels, the variable forms, the pseudo-constants, and the
//! [`Context`] interface the engine implements.
//!
//! Everything an equation names is resolved when it is compiled: channels and constants
//! become slots in a [`Symbols`] table, pseudo-constants become a [`Pseudo`]. At
//! evaluation time the context is asked by slot, never by name.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use super::value::Value;

/// The level an equation is evaluated at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// Types 1 and 2: once per data row.
    Data,
    /// Type 4: once per job.
    Job,
    /// Type 5: once per day.
    Day,
    /// Types 6 and 7: once per device over a date range.
    Summary,
}

impl Level {
    /// The level of an equation `type`; `None` for a type that is no level.
    pub fn from_type(ty: i32) -> Option<Level> {
        match ty {
            1 | 2 => Some(Level::Data),
            4 => Some(Level::Job),
            5 => Some(Level::Day),
            6 | 7 => Some(Level::Summary),
            _ => None,
        }
    }

    /// The lowercase name used on the command line and in messages (`data`, `job`, …).
    pub fn name(self) -> &'static str {
        match self {
            Level::Data => "data",
            Level::Job => "job",
            Level::Day => "day",
            Level::Summary => "summary",
        }
    }

    /// Every level, in processing order.
    pub const ALL: [Level; 4] = [Level::Data, Level::Job, Level::Day, Level::Summary];

    /// Whether a variable form may be used at this level (the variable table of
    /// `docs/language.md`; its "—" cells are `false`).
    pub fn allows(self, form: VarForm) -> bool {
        use VarForm::*;
        match form {
            Cur | Prev | Up => true,
            PrevUp => self != Level::Summary,
            DayData => self == Level::Day,
            RangeJobs => self == Level::Summary,
        }
    }

    /// Whether `form` reads a vector at this level (the other forms read one value).
    pub fn is_vector(self, form: VarForm) -> bool {
        use VarForm::*;
        match form {
            Cur => self != Level::Data,
            Prev => matches!(self, Level::Job | Level::Day),
            Up | PrevUp => false,
            DayData | RangeJobs => true,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The form of a variable: how many `$`, capitals or not, and the `$d$` / `$j$` prefixes.
///
/// What each form means depends on the level (`docs/language.md`, *Variables*); the
/// engine's [`Context`] answers for its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VarForm {
    /// `$x`: the current row (data) or the vector over the level's children.
    Cur,
    /// `$$x`: the previous row, or the vector over the previous job's or day's children.
    Prev,
    /// `$X`: the value of the current row of the level (data: its job's).
    Up,
    /// `$$X`: the value of the previous job (data, job) or day.
    PrevUp,
    /// `$d$x`: the vector over all data rows of the current day (day level only).
    DayData,
    /// `$j$x`: the vector over all jobs in the range (summary level only).
    RangeJobs,
}

impl VarForm {
    /// Every form.
    pub const ALL: [VarForm; 6] = [
        VarForm::Cur,
        VarForm::Prev,
        VarForm::Up,
        VarForm::PrevUp,
        VarForm::DayData,
        VarForm::RangeJobs,
    ];

    /// The prefix written before the name: `$`, `$$`, `$d$` or `$j$`.
    pub fn prefix(self) -> &'static str {
        match self {
            VarForm::Cur | VarForm::Up => "$",
            VarForm::Prev | VarForm::PrevUp => "$$",
            VarForm::DayData => "$d$",
            VarForm::RangeJobs => "$j$",
        }
    }

    /// The form a `$` / `$$` prefix selects for `name` (capitals select `Up` / `PrevUp`).
    pub fn for_name(previous: bool, name: &str) -> VarForm {
        match (previous, is_capitals(name)) {
            (false, false) => VarForm::Cur,
            (false, true) => VarForm::Up,
            (true, false) => VarForm::Prev,
            (true, true) => VarForm::PrevUp,
        }
    }

    /// A short description for messages, e.g. "`$$X` (the previous job's or day's value)".
    pub fn describe(self) -> &'static str {
        match self {
            VarForm::Cur => "$x",
            VarForm::Prev => "$$x",
            VarForm::Up => "$X",
            VarForm::PrevUp => "$$X",
            VarForm::DayData => "$d$x",
            VarForm::RangeJobs => "$j$x",
        }
    }
}

/// Whether a name is "written in capitals": ignoring digits and `_`, it has at least one
/// letter and every letter is upper case.
pub fn is_capitals(name: &str) -> bool {
    let mut letters = name.chars().filter(|c| c.is_alphabetic()).peekable();
    letters.peek().is_some() && letters.all(|c| !c.is_lowercase())
}

/// A pseudo-constant (`#MT`, `#RECS`, …; `docs/language.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pseudo {
    /// `#GID`: the device id.
    Gid,
    /// `#MT`: seconds since the previous row, or the duration of the job / day / range.
    Mt,
    /// `#VMT`: the vector of the children's `#MT`.
    Vmt,
    /// `#JT`: seconds since the job started (data), total job time (summary).
    Jt,
    /// `#REC`: the 1-based ordinal of the data row in its job.
    Rec,
    /// `#RECS`: the number of children (rows in the job, jobs in the day, days in the range).
    Recs,
    /// `#JB`: the start of the job / day / range.
    Jb,
    /// `#JE`: the end of the job / day / range.
    Je,
    /// `#WB`: the device's day break.
    Wb,
    /// `#WE`: the next day break after the row's day start.
    We,
    /// `#NULL`: an absent operand; evaluates to empty without asking the context.
    Null,
}

impl Pseudo {
    /// Every pseudo-constant.
    pub const ALL: [Pseudo; 11] = [
        Pseudo::Gid,
        Pseudo::Mt,
        Pseudo::Vmt,
        Pseudo::Jt,
        Pseudo::Rec,
        Pseudo::Recs,
        Pseudo::Jb,
        Pseudo::Je,
        Pseudo::Wb,
        Pseudo::We,
        Pseudo::Null,
    ];

    /// The name without `#`, in capitals.
    pub fn name(self) -> &'static str {
        match self {
            Pseudo::Gid => "GID",
            Pseudo::Mt => "MT",
            Pseudo::Vmt => "VMT",
            Pseudo::Jt => "JT",
            Pseudo::Rec => "REC",
            Pseudo::Recs => "RECS",
            Pseudo::Jb => "JB",
            Pseudo::Je => "JE",
            Pseudo::Wb => "WB",
            Pseudo::We => "WE",
            Pseudo::Null => "NULL",
        }
    }

    /// The pseudo-constant named `name` (without `#`, case-insensitive).
    pub fn from_name(name: &str) -> Option<Pseudo> {
        Pseudo::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// Whether the pseudo-constant exists at `level` (the table of `docs/language.md`;
    /// its "—" cells are `false`).
    pub fn allowed_at(self, level: Level) -> bool {
        match self {
            Pseudo::Vmt | Pseudo::Recs => level != Level::Data,
            Pseudo::Jt => matches!(level, Level::Data | Level::Summary),
            Pseudo::Rec => level == Level::Data,
            _ => true,
        }
    }

    /// The position of this pseudo-constant in [`Pseudo::ALL`], for tables indexed by it.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A channel's slot: its index in the [`Symbols`] channel table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot(pub u32);

/// A constant's slot: its index in the [`Symbols`] constant table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConstSlot(pub u32);

/// What an equation is evaluated against. The engine implements it once per level; the
/// CLI and the tests use [`Bindings`].
///
/// Every method answers by slot or enum, so an implementation can keep its values in
/// plain vectors indexed by [`Slot::0`]. `None` means "no value": the evaluator turns it
/// into an empty value naming what was missing.
pub trait Context {
    /// The value of channel `slot` read in variable form `form`. Vector forms
    /// (see [`Level::is_vector`]) answer a vector in time order.
    fn var(&self, form: VarForm, slot: Slot) -> Option<Value>;
    /// The device's constant in `slot`.
    fn constant(&self, slot: ConstSlot) -> Option<Value>;
    /// The value of a pseudo-constant; never asked for [`Pseudo::Null`].
    fn pseudo(&self, p: Pseudo) -> Option<Value>;
}

/// The names an equation set uses, each with its slot: one table for channels, one for
/// constants. Names are compared case-insensitively; the first spelling seen is kept.
#[derive(Debug, Default, Clone)]
pub struct Symbols {
    channels: Interner,
    constants: Interner,
}

impl Symbols {
    /// An empty table.
    pub fn new() -> Symbols {
        Symbols::default()
    }

    /// The slot of channel `name`, adding it if it is new.
    pub fn channel(&mut self, name: &str) -> Slot {
        Slot(self.channels.intern(name))
    }

    /// The slot of constant `name` (without `#`), adding it if it is new.
    pub fn constant(&mut self, name: &str) -> ConstSlot {
        ConstSlot(self.constants.intern(name))
    }

    /// The slot of channel `name` if it is known.
    pub fn find_channel(&self, name: &str) -> Option<Slot> {
        self.channels.find(name).map(Slot)
    }

    /// The slot of constant `name` if it is known.
    pub fn find_constant(&self, name: &str) -> Option<ConstSlot> {
        self.constants.find(name).map(ConstSlot)
    }

    /// The spelling of channel `slot`.
    pub fn channel_name(&self, slot: Slot) -> Option<&Arc<str>> {
        self.channels.names.get(slot.0 as usize)
    }

    /// The spelling of constant `slot`.
    pub fn constant_name(&self, slot: ConstSlot) -> Option<&Arc<str>> {
        self.constants.names.get(slot.0 as usize)
    }

    /// The number of channel slots (slots are `0..channel_count()`).
    pub fn channel_count(&self) -> usize {
        self.channels.names.len()
    }

    /// The number of constant slots (slots are `0..constant_count()`).
    pub fn constant_count(&self) -> usize {
        self.constants.names.len()
    }
}

/// A case-insensitive name table.
#[derive(Debug, Default, Clone)]
struct Interner {
    /// Lowercased name (its UTF-8 bytes, so a name folded on the stack is looked up
    /// without checking it again) → index into `names`.
    index: HashMap<Box<[u8]>, u32, NameHash>,
    /// The spellings, in slot order.
    names: Vec<Arc<str>>,
}

impl Interner {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(i) = self.find(name) {
            return i;
        }
        let i = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.index.insert(fold(name).into_bytes().into(), i);
        self.names.push(name.into());
        i
    }

    /// The index of `name`. Every entry of every row's `conjoined` is looked up here, so
    /// short ASCII names (all the usual ones) are folded on the stack, not allocated.
    fn find(&self, name: &str) -> Option<u32> {
        let mut buf = [0u8; 32];
        if name.len() <= buf.len() && name.is_ascii() {
            let folded = &mut buf[..name.len()];
            folded.copy_from_slice(name.as_bytes());
            folded.make_ascii_lowercase();
            return self.index.get(&*folded).copied();
        }
        self.index.get(fold(name).as_bytes()).copied()
    }
}

/// The hasher of the name tables: FNV-1a, several times cheaper than the default SipHash
/// on short names. Flooding is no concern: the keys are the equations' names, and a
/// name looked up (from a row's `conjoined`) is never inserted.
#[derive(Debug, Default, Clone, Copy)]
struct NameHash;

impl BuildHasher for NameHash {
    type Hasher = Fnv1a;

    fn build_hasher(&self) -> Fnv1a {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

/// A 64-bit FNV-1a hash state.
struct Fnv1a(u64);

impl Hasher for Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The case-folded form names are compared in.
pub(crate) fn fold(name: &str) -> String {
    if name.is_ascii() {
        name.to_ascii_lowercase()
    } else {
        name.to_lowercase()
    }
}

/// A [`Context`] holding its values in tables indexed by slot: what the CLI and the tests
/// evaluate against. The engine has its own, reading its loaded rows directly.
#[derive(Debug, Default, Clone)]
pub struct Bindings {
    /// One table per variable form (indexed by `VarForm as usize`), indexed by slot.
    vars: [Vec<Option<Value>>; 6],
    /// Constants, indexed by slot.
    constants: Vec<Option<Value>>,
    /// Pseudo-constants, indexed by [`Pseudo::index`].
    pseudos: [Option<Value>; 11],
}

impl Bindings {
    /// No values at all.
    pub fn new() -> Bindings {
        Bindings::default()
    }

    /// Sets what `form` of channel `slot` reads.
    pub fn set_var(&mut self, form: VarForm, slot: Slot, value: Value) {
        set(&mut self.vars[form as usize], slot.0 as usize, value);
    }

    /// Sets constant `slot`.
    pub fn set_constant(&mut self, slot: ConstSlot, value: Value) {
        set(&mut self.constants, slot.0 as usize, value);
    }

    /// Sets a pseudo-constant.
    pub fn set_pseudo(&mut self, p: Pseudo, value: Value) {
        self.pseudos[p.index()] = Some(value);
    }
}

fn set(table: &mut Vec<Option<Value>>, i: usize, value: Value) {
    if table.len() <= i {
        table.resize(i + 1, None);
    }
    table[i] = Some(value);
}

impl Context for Bindings {
    fn var(&self, form: VarForm, slot: Slot) -> Option<Value> {
        self.vars[form as usize].get(slot.0 as usize)?.clone()
    }

    fn constant(&self, slot: ConstSlot) -> Option<Value> {
        self.constants.get(slot.0 as usize)?.clone()
    }

    fn pseudo(&self, p: Pseudo) -> Option<Value> {
        self.pseudos[p.index()].clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capitals_ignore_digits_and_underscores() {
        assert!(is_capitals("TMP"));
        assert!(is_capitals("T_2"));
        assert!(is_capitals("ÚHEL"));
        assert!(!is_capitals("Tmp"));
        assert!(!is_capitals("tmp"));
        assert!(!is_capitals("_12"));
        assert!(!is_capitals(""));
    }

    #[test]
    fn levels_follow_the_spec_tables() {
        assert_eq!(Level::from_type(2), Some(Level::Data));
        assert_eq!(Level::from_type(7), Some(Level::Summary));
        assert_eq!(Level::from_type(3), None);
        assert!(!Level::Data.allows(VarForm::DayData));
        assert!(Level::Day.allows(VarForm::DayData));
        assert!(!Level::Summary.allows(VarForm::PrevUp));
        assert!(Level::Summary.allows(VarForm::RangeJobs));
        assert!(!Level::Job.allows(VarForm::RangeJobs));
        assert!(!Pseudo::Rec.allowed_at(Level::Job));
        assert!(!Pseudo::Vmt.allowed_at(Level::Data));
        assert!(!Pseudo::Jt.allowed_at(Level::Day));
        assert!(Pseudo::Jt.allowed_at(Level::Summary));
        assert!(Level::Summary.is_vector(VarForm::Cur));
        assert!(!Level::Summary.is_vector(VarForm::Prev));
    }

    #[test]
    fn symbols_are_case_insensitive_and_keep_the_first_spelling() {
        let mut s = Symbols::new();
        let a = s.channel("Tmp");
        assert_eq!(s.channel("TMP"), a);
        assert_eq!(s.find_channel("tmp"), Some(a));
        assert_ne!(s.channel("other"), a);
        assert_eq!(s.channel_name(a).map(|n| &**n), Some("Tmp"));
        assert_eq!(s.constant("tmax"), ConstSlot(0));
        assert_eq!(s.channel_count(), 2);
        let long = "A_channel_name_longer_than_thirty_two_bytes";
        let l = s.channel(long);
        assert_eq!(s.find_channel(&long.to_lowercase()), Some(l));
        let u = s.channel("Úhel");
        assert_eq!(s.find_channel("úHEL"), Some(u));
        assert_eq!(s.find_channel("uhel"), None);
        assert_eq!(Pseudo::from_name("recs"), Some(Pseudo::Recs));
        for (i, p) in Pseudo::ALL.into_iter().enumerate() {
            assert_eq!(p.index(), i);
        }
    }

    #[test]
    fn bindings_answer_by_slot() {
        let mut b = Bindings::new();
        b.set_var(VarForm::Up, Slot(3), Value::Num(2.0));
        assert_eq!(b.var(VarForm::Up, Slot(3)), Some(Value::Num(2.0)));
        assert_eq!(b.var(VarForm::Cur, Slot(3)), None);
        assert_eq!(b.var(VarForm::Up, Slot(9)), None);
        b.set_pseudo(Pseudo::Mt, Value::Num(5.0));
        assert_eq!(b.pseudo(Pseudo::Mt), Some(Value::Num(5.0)));
    }
}
