//! A loaded row as the engine works on it: the stored row, the values of the channels
//! the equations use (by slot), and how its `conjoined` is written back.

use std::sync::Arc;

use chrono::NaiveDateTime;

use crate::conjoined::{self, ConjoinedError, Kept};
use crate::lang::context::{Slot, Symbols};
use crate::lang::value::Value;
use crate::model::{Row, RowVersion};

/// The slots of the columns that are readable as channels (`$gps` reads the
/// `gps` column, not `conjoined`), for the names the equations use.
#[derive(Debug, Clone, Copy, Default)]
pub struct Columns {
    id: Option<Slot>,
    state: Option<Slot>,
    user: Option<Slot>,
    gps: Option<Slot>,
    datetime: Option<Slot>,
    data_time: Option<Slot>,
}

impl Columns {
    /// Looks the column names up among the channels the equations use.
    pub fn new(symbols: &Symbols) -> Columns {
        Columns {
            id: symbols.find_channel("id"),
            state: symbols.find_channel("state"),
            user: symbols.find_channel("user"),
            gps: symbols.find_channel("gps"),
            datetime: symbols.find_channel("datetime"),
            data_time: symbols.find_channel("data_time"),
        }
    }
}

/// A timestamp as the language reads it: ISO 8601 in UTC, `YYYY-MM-DDTHH:MM:SS` with
/// the fraction of a second only when there is one (3, 6 or 9 digits, as chrono's `%.f`).
///
/// Written by hand, digit by digit: every data row's `$datetime` goes through here, and
/// both chrono's format strings and `write!` cost many times more.
pub fn time_value(t: NaiveDateTime) -> Value {
    use chrono::{Datelike, Timelike};
    let (date, time) = (t.date(), t.time());
    if !(0..=9999).contains(&date.year()) || time.nanosecond() >= 1_000_000_000 {
        return Value::str(t.format("%Y-%m-%dT%H:%M:%S%.f").to_string());
    }
    let mut s = Digits::default();
    // The year is in 0..=9999 (checked above), the other fields are in range by type.
    s.number(date.year().unsigned_abs(), 4);
    s.push(b'-');
    s.number(date.month(), 2);
    s.push(b'-');
    s.number(date.day(), 2);
    s.push(b'T');
    s.number(time.hour(), 2);
    s.push(b':');
    s.number(time.minute(), 2);
    s.push(b':');
    s.number(time.second(), 2);
    match time.nanosecond() {
        0 => {}
        n if n % 1_000_000 == 0 => {
            s.push(b'.');
            s.number(n / 1_000_000, 3);
        }
        n if n % 1_000 == 0 => {
            s.push(b'.');
            s.number(n / 1_000, 6);
        }
        n => {
            s.push(b'.');
            s.number(n, 9);
        }
    }
    // Written on the stack and copied once into the value's own allocation.
    Value::Str(Arc::from(s.as_str()))
}

/// The text of [`time_value`], built on the stack: `YYYY-MM-DDTHH:MM:SS.fffffffff` at most.
#[derive(Default)]
struct Digits {
    buf: [u8; 29],
    len: usize,
}

impl Digits {
    fn push(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    /// Appends the last `width` decimal digits of `n`, zero-padded (`n < 10^width`).
    fn number(&mut self, n: u32, width: u32) {
        for k in (0..width).rev() {
            self.push(b'0' + (n / 10u32.pow(k) % 10) as u8);
        }
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits and separators are pushed.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

/// A new job or day row (recalcd creates it; the guard inserts it only if still absent).
pub(crate) fn new_row(id: i32, datetime: NaiveDateTime, data_time: NaiveDateTime) -> Row {
    Row {
        datetime,
        data_time,
        id,
        state: None,
        user: None,
        gps: None,
        recalc: 0,
        conjoined: String::new(),
        version: RowVersion::ABSENT,
        unreadable: None,
    }
}

/// An output channel as [`Record::rewrite`] writes it: its slot, and its `name=` escaped
/// once for all rows instead of for every row.
#[derive(Debug, Clone)]
pub struct Output {
    /// The channel.
    pub slot: Slot,
    /// `name=`, the name escaped.
    prefix: String,
}

impl Output {
    /// The output `slot`, written under `name` (the equation's spelling).
    pub fn new(name: &str, slot: Slot) -> Output {
        let mut prefix = String::with_capacity(name.len() + 1);
        conjoined::escape_into(&mut prefix, name);
        prefix.push('=');
        Output { slot, prefix }
    }
}

/// A row with its channel values resolved to slots.
#[derive(Debug, Clone)]
pub struct Record {
    /// The row as loaded (its `conjoined` is the producer's text, kept for write-back).
    pub row: Row,
    /// Channel values by slot; `None` when the row has no such channel.
    vals: Vec<Option<Value>>,
    /// The stored entries that are not outputs, as [`Record::rewrite`] writes them back:
    /// kept while [`Record::load`] reads them, so they are not parsed and looked up a
    /// second time. `None` for a row only read ([`Record::read`]).
    kept: Option<Kept>,
    /// Why the row's `conjoined` could not be read (its first unreadable entry), if it
    /// could not.
    pub malformed: Option<ConjoinedError>,
}

/// Reads the entries of `text` into `vals` by slot (a slot beyond `vals` is not read)
/// and, with `keep`, keeps every entry that is not one of the outputs, and every
/// segment that cannot be read, as [`Kept::keep`] does. Returns the first unreadable
/// entry; the entries after it are read (and kept) all the same.
fn scan_entries(
    text: &str,
    symbols: &Symbols,
    vals: &mut [Option<Value>],
    mut keep: Option<(&mut Kept, &[Output])>,
) -> Option<ConjoinedError> {
    let mut malformed = None;
    let mut entries = conjoined::entries(text);
    while let Some(item) = entries.next() {
        let replaced = match &item {
            Ok(e) => {
                let slot = symbols.find_channel(&e.name);
                if let Some(v) = slot.and_then(|s| vals.get_mut(s.0 as usize)) {
                    *v = Some(e.value());
                }
                // A few dozen outputs at most: a scan is cheaper than a set per row.
                keep.as_ref().is_some_and(|(_, outputs)| {
                    slot.is_some_and(|s| outputs.iter().any(|o| o.slot == s))
                })
            }
            Err(_) => false,
        };
        if let Some((kept, _)) = keep.as_mut() {
            if !replaced {
                kept.keep(&entries, &item);
            }
        }
        if let Err(e) = item {
            malformed.get_or_insert(e);
        }
    }
    malformed
}

impl Record {
    /// Reads the row's `conjoined` and columns into slots. Channels no equation uses are
    /// not decoded; they stay in the text and are written back untouched. `outputs` are
    /// the channels [`Record::rewrite`] will write (none when the row is only read).
    pub fn load(row: Row, symbols: &Symbols, columns: &Columns, outputs: &[Output]) -> Record {
        let kept = Kept::with_capacity(row.conjoined.len() + 16 * outputs.len());
        Record::scan(row, symbols, columns, Some((kept, outputs)))
    }

    /// [`Record::load`] for a row that is read but not written back (a data row of a
    /// job that is not computed, read by its day): the text of its entries is not copied
    /// aside. Should it be rewritten after all, [`Record::rewrite`] reads it again.
    pub fn read(row: Row, symbols: &Symbols, columns: &Columns) -> Record {
        Record::scan(row, symbols, columns, None)
    }

    /// Reads `row` into slots and, with `keep`, copies every entry that is not one of
    /// its outputs to its text.
    fn scan(
        row: Row,
        symbols: &Symbols,
        columns: &Columns,
        mut keep: Option<(Kept, &[Output])>,
    ) -> Record {
        let mut vals: Vec<Option<Value>> = std::iter::repeat_with(|| None)
            .take(symbols.channel_count())
            .collect();
        let malformed = match &row.unreadable {
            Some(why) => Some(ConjoinedError::Undecodable(why.clone())),
            None => scan_entries(
                &row.conjoined,
                symbols,
                &mut vals,
                keep.as_mut().map(|(kept, outputs)| (kept, *outputs)),
            ),
        };
        // Only the columns the equations read are made values (texts and times cost).
        let mut column = |slot: Option<Slot>, value: fn(&Row) -> Option<Value>| {
            if let Some(slot) = slot {
                vals[slot.0 as usize] = value(&row);
            }
        };
        column(columns.id, |r| Some(Value::Num(f64::from(r.id))));
        column(columns.state, |r| r.state.map(|s| Value::Num(f64::from(s))));
        column(columns.user, |r| r.user.as_deref().map(Value::str));
        column(columns.gps, |r| r.gps.as_deref().map(Value::str));
        column(columns.datetime, |r| Some(time_value(r.datetime)));
        column(columns.data_time, |r| Some(time_value(r.data_time)));
        if malformed.is_some() {
            // A row that cannot be read is read by no one: it has no values at all
            // (not even those of the entries before the bad one), and vectors over
            // rows leave it out (`context::vector`).
            vals.iter_mut().for_each(|v| *v = None);
        }
        Record {
            vals,
            kept: keep.map(|(kept, _)| kept),
            malformed,
            row,
        }
    }

    /// The value of channel `slot`.
    pub fn get(&self, slot: Slot) -> Option<&Value> {
        self.vals.get(slot.0 as usize)?.as_ref()
    }

    /// Sets channel `slot`.
    pub fn set(&mut self, slot: Slot, value: Value) {
        if let Some(v) = self.vals.get_mut(slot.0 as usize) {
            *v = Some(value);
        }
    }

    /// Forgets channel `slot` (a result about to be computed anew must not be read stale).
    pub fn clear(&mut self, slot: Slot) {
        if let Some(v) = self.vals.get_mut(slot.0 as usize) {
            *v = None;
        }
    }

    /// The row and the `conjoined` to write back: every stored entry that is not one of
    /// `outputs` (those given to [`Record::load`]) and every segment that cannot be
    /// read, as [`Kept`] keeps them, then the outputs in order, each as
    /// [`conjoined::write_entry`] writes it, then the producer's open tail if there is
    /// one. Whatever the producer wrote reads back the same (see [`conjoined`]). An
    /// output that is empty is left out — a stale value from an earlier run is not kept.
    pub fn rewrite(self, symbols: &Symbols, outputs: &[Output]) -> (Row, String) {
        let Record {
            row, vals, kept, ..
        } = self;
        let kept = kept.unwrap_or_else(|| {
            let mut kept = Kept::with_capacity(row.conjoined.len() + 16 * outputs.len());
            scan_entries(&row.conjoined, symbols, &mut [], Some((&mut kept, outputs)));
            kept
        });
        let out = kept.finish(&row.conjoined, |out| {
            for o in outputs {
                let value = vals.get(o.slot.0 as usize).and_then(Option::as_ref);
                if let Some(v) = value.filter(|v| !v.is_empty()) {
                    out.push_str(&o.prefix);
                    conjoined::write_value(out, v);
                    out.push(';');
                }
            }
        });
        (row, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RowVersion;

    fn row(conjoined: &str) -> Row {
        let t = NaiveDateTime::parse_from_str("2024-03-01 06:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
        Row {
            datetime: t,
            data_time: t,
            id: 3,
            state: Some(2),
            user: Some("eva".into()),
            gps: Some("50.1,14.4".into()),
            recalc: 1,
            conjoined: conjoined.into(),
            version: RowVersion::ABSENT,
            unreadable: None,
        }
    }

    #[test]
    fn reads_the_channels_the_equations_use_and_the_columns() {
        let mut s = Symbols::new();
        let tmp = s.channel("TMP");
        let gps = s.channel("gps");
        let state = s.channel("state");
        let absent = s.channel("absent");
        let cols = Columns::new(&s);
        let r = Record::load(row("tmp=21.5; other=x;gps=overridden;"), &s, &cols, &[]);
        assert!(r.malformed.is_none());
        assert_eq!(r.get(tmp), Some(&Value::Num(21.5)));
        assert_eq!(r.get(gps), Some(&Value::str("50.1,14.4")));
        assert_eq!(r.get(state), Some(&Value::Num(2.0)));
        assert_eq!(r.get(absent), None);
    }

    #[test]
    fn times_are_written_as_chrono_writes_them() {
        let base =
            NaiveDateTime::parse_from_str("2024-03-01 06:05:09", "%Y-%m-%d %H:%M:%S").unwrap();
        for nanos in [0, 250_000_000, 1_000_000, 123_456_000, 5, 999_999_999] {
            let t = base + chrono::Duration::nanoseconds(nanos);
            let expected = t.format("%Y-%m-%dT%H:%M:%S%.f").to_string();
            assert_eq!(time_value(t), Value::str(expected.as_str()), "{nanos}");
        }
        assert_eq!(time_value(base), Value::str("2024-03-01T06:05:09"));
        let early =
            NaiveDateTime::parse_from_str("0001-01-01 00:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(time_value(early), Value::str("0001-01-01T00:00:00"));
        for (y, m, d) in [(0, 1, 1), (9999, 12, 31), (10000, 1, 1), (-1, 12, 31)] {
            let t = chrono::NaiveDate::from_ymd_opt(y, m, d)
                .unwrap()
                .and_hms_micro_opt(23, 59, 58, 7)
                .unwrap();
            let expected = t.format("%Y-%m-%dT%H:%M:%S%.f").to_string();
            assert_eq!(time_value(t), Value::str(expected.as_str()), "{y}");
        }
    }

    #[test]
    fn a_malformed_conjoined_is_reported() {
        let mut s = Symbols::new();
        let a = s.channel("a");
        let r = Record::load(row("a=1;broken;"), &s, &Columns::new(&s), &[]);
        assert!(r.malformed.is_some());
        assert_eq!(r.get(a), None, "an unreadable row has no values");
    }

    #[test]
    fn rewrite_keeps_producer_entries_and_replaces_outputs() {
        let mut s = Symbols::new();
        let avg = s.channel("avg");
        let flag = s.channel("flag");
        let outputs = [Output::new("avg", avg), Output::new("flag", flag)];
        let mut r = Record::load(
            row("tmp=1\\,5 ; AVG=old;note=a\\;b;flag=1;"),
            &s,
            &Columns::new(&s),
            &outputs,
        );
        r.set(avg, Value::Num(2.25));
        r.set(flag, Value::Empty(crate::lang::Reason::DivisionByZero));
        assert_eq!(r.rewrite(&s, &outputs).1, "tmp=1\\,5;note=a\\;b;avg=2.25;");
        // A name that needs escaping is written as write_entry writes it.
        let odd = s.channel("odd");
        let outputs = [Output::new("o=dd ", odd)];
        let mut r = Record::load(row("tmp=1;"), &s, &Columns::new(&s), &outputs);
        r.set(odd, Value::str(" x;y"));
        let mut expected = "tmp=1;".to_owned();
        conjoined::write_entry(&mut expected, "o=dd ", &Value::str(" x;y"));
        assert_eq!(r.rewrite(&s, &outputs).1, expected);
    }

    #[test]
    fn a_row_only_read_has_the_same_values_and_rewrites_the_same() {
        let mut s = Symbols::new();
        let tmp = s.channel("tmp");
        let avg = s.channel("avg");
        let outputs = [Output::new("avg", avg)];
        let text = "tmp=1\\,5 ; AVG=old;note=a\\;b;";
        let loaded = Record::load(row(text), &s, &Columns::new(&s), &outputs);
        let read = Record::read(row(text), &s, &Columns::new(&s));
        assert_eq!(read.get(tmp), loaded.get(tmp));
        assert_eq!(read.get(avg), Some(&Value::str("old")));
        assert!(read.kept.is_none(), "a row only read copies nothing aside");
        let (mut loaded, mut read) = (loaded, read);
        loaded.set(avg, Value::Num(2.0));
        read.set(avg, Value::Num(2.0));
        let expected = "tmp=1\\,5;note=a\\;b;avg=2;";
        assert_eq!(loaded.rewrite(&s, &outputs).1, expected);
        assert_eq!(read.rewrite(&s, &outputs).1, expected);
        // A malformed text stops the read at the same entry.
        let bad = Record::read(row("a=1;broken;"), &s, &Columns::new(&s));
        assert!(bad.malformed.is_some());
    }

    /// Rewrites `text` with `outputs` set to `values`, through [`Record::load`].
    fn rewritten(s: &Symbols, text: &str, outputs: &[Output], values: &[Value]) -> String {
        let mut r = Record::load(row(text), s, &Columns::new(s), outputs);
        for (o, v) in outputs.iter().zip(values) {
            r.set(o.slot, v.clone());
        }
        r.rewrite(s, outputs).1
    }

    #[test]
    fn a_value_ending_in_a_backslash_reads_the_same_after_two_rewrites() {
        let mut s = Symbols::new();
        let path = s.channel("path");
        let plen = s.channel("plen");
        let outputs = [Output::new("plen", plen)];
        let producer = r"tmp=4;path=C:\data\";
        let once = rewritten(&s, producer, &outputs, &[Value::Num(1.0)]);
        // The open tail is kept byte for byte, after what recalcd writes.
        assert_eq!(once, r"tmp=4;plen=1;path=C:\data\");
        let twice = rewritten(&s, &once, &outputs, &[Value::Num(1.0)]);
        assert_eq!(twice, once);
        let read = Record::read(row(&twice), &s, &Columns::new(&s));
        assert!(read.malformed.is_none());
        assert_eq!(read.get(path), Some(&Value::str(r"C:data\")));
        assert_eq!(read.get(plen), Some(&Value::Num(1.0)));
        assert_eq!(
            conjoined::parse(&twice).map(|p| p.len()),
            Ok(3),
            "no entry is duplicated: {twice}"
        );
    }

    #[test]
    fn unreadable_segments_are_kept_byte_for_byte_and_so_is_the_rest() {
        let mut s = Symbols::new();
        let b = s.channel("b");
        let avg = s.channel("avg");
        let outputs = [Output::new("avg", avg)];
        let text = " junk ;a=1; =2;b=3;avg=old;last\\";
        let r = Record::load(row(text), &s, &Columns::new(&s), &outputs);
        assert_eq!(
            r.malformed,
            Some(ConjoinedError::MissingEquals {
                at: 0,
                entry: "junk".into()
            })
        );
        // Entries after it are read (and kept), but a row that cannot be read gives
        // no one its values.
        assert_eq!(r.get(b), None);
        let once = rewritten(&s, text, &outputs, &[Value::Num(2.0)]);
        assert_eq!(once, " junk ;a=1; =2;b=3;avg=2;last\\");
        assert_eq!(rewritten(&s, &once, &outputs, &[Value::Num(2.0)]), once);
    }

    mod rewrite_property {
        use std::collections::BTreeMap;

        use proptest::prelude::*;

        use super::*;
        use crate::lang::context::fold;
        use crate::lang::Reason;

        /// The channels the equations use; the outputs are some of them.
        const CHANNELS: [&str; 5] = ["tmp", "path", "avg", "plen", "b"];

        /// What a text reads as: its entries by folded name (first spelling, last
        /// value), and the segments that cannot be read, byte for byte, in order.
        type Reading = (BTreeMap<String, (String, Value)>, Vec<String>);

        fn reading(text: &str) -> Reading {
            let (mut map, mut bad) = (BTreeMap::new(), Vec::new());
            let mut entries = conjoined::entries(text);
            while let Some(item) = entries.next() {
                match item {
                    Ok(e) => {
                        let value = e.value();
                        map.entry(fold(&e.name))
                            .and_modify(|(_, v)| *v = value.clone())
                            .or_insert((e.name.into_owned(), value));
                    }
                    Err(_) => bad.push(entries.segment().to_owned()),
                }
            }
            (map, bad)
        }

        fn name() -> impl Strategy<Value = String> {
            prop_oneof![
                proptest::sample::select(vec![
                    "tmp", "TMP", "path", "Path", "avg", "AVG", "plen", "b", "note", "x"
                ])
                .prop_map(str::to_owned),
                "[a-zé;=,\\\\ ]{0,5}",
            ]
        }

        fn value_text() -> impl Strategy<Value = String> {
            prop_oneof![
                "[0-9.,-]{0,8}",
                "[a-zC:;=,\\\\ \t\u{a0}\u{3000}é]{0,10}",
                "\\PC{0,8}",
            ]
        }

        /// Producer text: entries with odd spacing, escapes, missing and repeated `;`,
        /// or any text at all.
        fn producer() -> impl Strategy<Value = String> {
            let entry = (
                name(),
                prop_oneof![Just("="), Just(" = "), Just(""), Just("==")],
                value_text(),
                prop_oneof![Just(";"), Just(""), Just(";;"), Just(" ; "), Just("\\")],
            )
                .prop_map(|(n, eq, v, sep)| format!("{n}{eq}{v}{sep}"));
            prop_oneof![
                proptest::collection::vec(entry, 0..6).prop_map(|e| e.concat()),
                "[abpt=; ,\\\\\t\u{a0}é]{0,30}",
                any::<String>(),
            ]
        }

        fn output_value() -> impl Strategy<Value = Value> {
            prop_oneof![
                any::<f64>()
                    .prop_filter("finite", |n| n.is_finite())
                    .prop_map(Value::Num),
                value_text().prop_map(|s| Value::str(s.as_str())),
                proptest::collection::vec(-1e3f64..1e3, 0..4).prop_map(|v| Value::Nums(v.into())),
                Just(Value::Empty(Reason::DivisionByZero)),
            ]
        }

        /// Some of the channels as outputs, each spelled as an equation might, with
        /// its value.
        fn outputs() -> impl Strategy<Value = Vec<(String, Value)>> {
            proptest::collection::vec(
                (
                    proptest::sample::select(CHANNELS.to_vec()),
                    any::<bool>(),
                    output_value(),
                ),
                0..4,
            )
            .prop_map(|picked| {
                let mut out: Vec<(String, Value)> = Vec::new();
                for (name, upper, v) in picked {
                    if !out.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                        let name = if upper {
                            name.to_uppercase()
                        } else {
                            name.into()
                        };
                        out.push((name, v));
                    }
                }
                out
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// `read(rewrite(x, outputs))` is `read(x)` with the outputs set, unreadable
            /// segments included, through both ways a row is loaded; and rewriting the
            /// result again changes nothing.
            #[test]
            fn a_rewrite_changes_nothing_the_producer_wrote(
                text in producer(),
                outs in outputs(),
            ) {
                let mut s = Symbols::new();
                for c in CHANNELS {
                    s.channel(c);
                }
                let outputs: Vec<Output> = outs
                    .iter()
                    .map(|(n, _)| Output::new(n, s.channel(n)))
                    .collect();
                let values: Vec<Value> = outs.iter().map(|(_, v)| v.clone()).collect();
                let once = rewritten(&s, &text, &outputs, &values);

                let (mut expected, bad) = reading(&text);
                for (n, v) in &outs {
                    expected.remove(&fold(n));
                    let mut entry = String::new();
                    conjoined::write_entry(&mut entry, n, v);
                    if let Ok([(_, read)]) = conjoined::parse(&entry).as_deref() {
                        expected.insert(fold(n), (n.clone(), read.clone()));
                    }
                }
                prop_assert_eq!(reading(&once), (expected, bad), "{:?} -> {:?}", text, once);

                // The engine's own read of the rows: every channel the same.
                let before = Record::read(row(&text), &s, &Columns::new(&s));
                let after = Record::read(row(&once), &s, &Columns::new(&s));
                prop_assert_eq!(before.malformed.is_some(), after.malformed.is_some());
                for c in CHANNELS {
                    let slot = s.channel(c);
                    if !outputs.iter().any(|o| o.slot == slot) {
                        prop_assert_eq!(before.get(slot), after.get(slot), "{}", c);
                    }
                }

                // A row only read rewrites the same, and a second rewrite is the first.
                let mut read = Record::read(row(&text), &s, &Columns::new(&s));
                for (o, v) in outputs.iter().zip(&values) {
                    read.set(o.slot, v.clone());
                }
                prop_assert_eq!(&read.rewrite(&s, &outputs).1, &once);
                prop_assert_eq!(rewritten(&s, &once, &outputs, &values), once);
            }
        }
    }
}
