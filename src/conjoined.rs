//! The `conjoined` column codec: `name=value;name=value;`.
//!
//! Inside names and values the characters `;`, `=`, `,` and `\` are escaped with a
//! backslash; an unescaped `,` separates the items of a vector. Reading is tolerant: a
//! missing final `;`, spaces around names and values, empty entries (`;;`) and repeated
//! names (the last one wins, compared case-insensitively) are accepted, a backslash
//! before any other character stands for that character, and a backslash at the very
//! end for itself. An entry without `=` or with an empty name is an error, because
//! writing such a row back would lose it.
//!
//! Both directions are one pass over the bytes without regular expressions; reading
//! borrows from the input unless a name or value holds an escape.
//!
//! Writing a row back (see [`Kept`]): whatever a producer wrote reads back the same
//! after recalcd rewrites the row — the same names with the same values, and the same
//! unreadable segments. Every entry recalcd does not replace is written `name=value;`
//! (the name escaped, the value's stored text as read, trimmed); a segment that cannot
//! be read (no `=`, no name) is kept byte for byte with its `;`; blank segments (`;;`)
//! are dropped. The one text that cannot be followed by anything is an *open tail*: a
//! text ending in a backslash that escapes nothing (`path=C:\data\`). That backslash
//! stands for itself only because nothing follows it; a `;` written after it would be
//! escaped and join the next entry to the value. So the open tail — the segment after
//! the last unescaped `;` — is kept byte for byte and written last, after the entries
//! recalcd writes: `tmp=4;path=C:\data\` with an output `plen` becomes
//! `tmp=4;plen=1;path=C:\data\`, and rewriting that again changes nothing.
//!
//! Decoding a value (see [`decode`]): a value with an unescaped `,` is a vector — a
//! numeric vector if every item is a number, otherwise a general vector whose items are
//! numbers, strings, or empty for an empty item; any other value is a number if it reads
//! as one (`007` reads as 7), else a string. A one-item vector therefore reads back as a
//! scalar and an empty vector as the empty string; engines that must keep an untouched
//! value byte for byte copy [`Entry::raw`].

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

use thiserror::Error;

use crate::lang::value::{format_number, has_plain_ends, parse_number, Reason, Value};

/// A `conjoined` text that cannot be read without losing part of it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConjoinedError {
    /// An entry has no `=`.
    #[error("conjoined byte {at}: the entry '{entry}' has no '='")]
    MissingEquals {
        /// Byte offset of the entry.
        at: usize,
        /// The entry's text.
        entry: String,
    },
    /// An entry has nothing before its `=`.
    #[error("conjoined byte {at}: an entry has no name before '='")]
    EmptyName {
        /// Byte offset of the entry.
        at: usize,
    },
    /// The stored row could not be decoded at all (its text is not UTF-8).
    #[error("{0}")]
    Undecodable(String),
}

/// One `name=value` entry as read: the name unescaped, the value still escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The name, unescaped and trimmed.
    pub name: Cow<'a, str>,
    /// The value exactly as stored (escaped), trimmed of surrounding spaces.
    pub raw: &'a str,
    /// The value has neither an escape nor a `,`: it is one scalar, as it stands.
    plain: bool,
}

impl Entry<'_> {
    /// The value, decoded by [`decode`].
    pub fn value(&self) -> Value {
        if self.plain {
            // What `decode` makes of it, without looking for escapes and commas again.
            return match parse_number(self.raw) {
                Some(n) => Value::Num(n),
                None => Value::Str(Arc::from(self.raw)),
            };
        }
        decode(self.raw)
    }
}

/// The entries of a `conjoined` text in order, repeated names included.
pub fn entries(text: &str) -> Entries<'_> {
    Entries {
        text,
        pos: 0,
        segment: 0..0,
        open: false,
    }
}

/// An iterator over the entries of a `conjoined` text; see [`entries`].
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    text: &'a str,
    pos: usize,
    /// The bytes of the segment last returned, without its `;`.
    segment: std::ops::Range<usize>,
    /// The segment last returned is the text's open tail.
    open: bool,
}

impl<'a> Entries<'a> {
    /// The segment last returned by `next` exactly as it stands in the text: untrimmed,
    /// escapes included, without its `;` (empty before the first call).
    pub fn segment(&self) -> &'a str {
        &self.text[self.segment.clone()]
    }

    /// Whether the segment last returned is the text's *open tail*: it ends the text
    /// with a backslash that escapes nothing, so whatever were written after it would be
    /// escaped by that backslash and join it (see the module docs).
    pub fn at_open_tail(&self) -> bool {
        self.open
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, ConjoinedError>;

    fn next(&mut self) -> Option<Self::Item> {
        let bytes = self.text.as_bytes();
        loop {
            if self.pos >= bytes.len() {
                return None;
            }
            let start = self.pos;
            let mut eq = None;
            // Noted on the way, so the usual entry is not scanned again: whether the
            // name has an escape, and whether the value has an escape or a `,`.
            let (mut name_escaped, mut value_plain) = (false, true);
            let mut i = start;
            while i < bytes.len() {
                match bytes[i] {
                    b'\\' => {
                        if eq.is_none() {
                            name_escaped = true;
                        } else {
                            value_plain = false;
                        }
                        i += 1;
                    }
                    b'=' if eq.is_none() => eq = Some(i),
                    b',' if eq.is_some() => value_plain = false,
                    b';' => break,
                    _ => {}
                }
                i += 1;
            }
            let end = i.min(bytes.len());
            self.pos = end + 1;
            // A last backslash skips past the end: it escapes nothing.
            self.open = i > bytes.len();
            self.segment = start..end;
            let segment = &self.text[start..end];
            // A segment with `=` is never blank: only one without needs trimming.
            let Some(eq) = eq else {
                if segment.trim().is_empty() {
                    continue;
                }
                return Some(Err(ConjoinedError::MissingEquals {
                    at: start,
                    entry: segment.trim().to_string(),
                }));
            };
            let name = trim_escaped(&self.text[start..eq]);
            if name.is_empty() {
                return Some(Err(ConjoinedError::EmptyName { at: start }));
            }
            return Some(Ok(Entry {
                name: if name_escaped {
                    unescape(name)
                } else {
                    Cow::Borrowed(name)
                },
                raw: trim_escaped(&self.text[eq + 1..end]),
                plain: value_plain,
            }));
        }
    }
}

/// The last entry named `name` (compared as [`same_name`] does) in a `conjoined` text:
/// what iterating [`entries`] and keeping the last match gives (entries that cannot be
/// read are skipped), found faster.
///
/// Readers of one channel of many rows (the index's raw reads) call this per row. In a
/// text without a backslash — the usual one — every `;` ends an entry and the first `=`
/// ends its name, so only those bytes matter, found with `memchr`'s vectorised search;
/// in an ASCII text only the entries holding the name's first byte (in either case) are
/// looked at. On the plot benchmark's rows (26 entries, about 300 bytes) this takes a
/// sixth of the time of iterating. An ASCII text with a backslash (the demo's computed
/// rows: their `pos` holds `\,`) is cut in one pass that skips escaped bytes, about two
/// thirds of the time of iterating; any other text with a backslash is read by
/// [`entries`].
pub fn last_entry<'a>(text: &'a str, name: &str) -> Option<Entry<'a>> {
    let bytes = text.as_bytes();
    let escaped = memchr::memchr(b'\\', bytes).is_some();
    if text.is_ascii() && name.is_ascii() {
        if let Some(&first) = name.as_bytes().first() {
            return if escaped {
                last_escaped_ascii_entry(text, name)
            } else {
                last_ascii_entry(text, name, first)
            };
        }
    }
    if escaped {
        return entries(text)
            .flatten()
            .filter(|e| same_name(&e.name, name))
            .last();
    }
    // The last match: its start, its `=`, its end.
    let mut found: Option<(usize, usize, usize)> = None;
    let (mut start, mut eq) = (0, None);
    for i in memchr::memchr2_iter(b';', b'=', bytes).chain(std::iter::once(bytes.len())) {
        if i < bytes.len() && bytes[i] == b'=' {
            eq = eq.or(Some(i));
            continue;
        }
        if let Some(e) = eq {
            let n = trim_escaped(&text[start..e]);
            if !n.is_empty() && same_name(n, name) {
                found = Some((start, e, i));
            }
        }
        (start, eq) = (i + 1, None);
    }
    let (start, e, end) = found?;
    let value = &text[e + 1..end];
    Some(Entry {
        name: Cow::Borrowed(trim_escaped(&text[start..e])),
        raw: trim_escaped(value),
        plain: memchr::memchr(b',', value.as_bytes()).is_none(),
    })
}

/// [`last_entry`] in an ASCII text without a backslash, for an ASCII `name` starting
/// with `first`: a matching entry's trimmed name starts with `first` in either case, so
/// only the entries holding that byte are looked at, each as [`last_entry`] does.
fn last_ascii_entry<'a>(text: &'a str, name: &str, first: u8) -> Option<Entry<'a>> {
    let bytes = text.as_bytes();
    let (lower, upper) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    let mut found: Option<Entry<'a>> = None;
    let mut checked_to = 0; // entries ending before this were looked at
    for p in memchr::memchr2_iter(lower, upper, bytes) {
        if p < checked_to
            || !bytes
                .get(p..p + name.len())
                .is_some_and(|b| b.eq_ignore_ascii_case(name.as_bytes()))
        {
            continue;
        }
        let start = memchr::memrchr(b';', &bytes[..p]).map_or(0, |i| i + 1);
        let end = memchr::memchr(b';', &bytes[p..]).map_or(bytes.len(), |i| p + i);
        checked_to = end;
        let Some(e) = memchr::memchr(b'=', &bytes[start..end]).map(|i| start + i) else {
            continue;
        };
        let n = trim_escaped(&text[start..e]);
        if !n.is_empty() && same_name(n, name) {
            let value = &text[e + 1..end];
            found = Some(Entry {
                name: Cow::Borrowed(n),
                raw: trim_escaped(value),
                plain: memchr::memchr(b',', value.as_bytes()).is_none(),
            });
        }
    }
    found
}

/// [`last_entry`] in an ASCII text with backslashes, for an ASCII `name`: one pass over
/// the bytes cuts the text at its unescaped `;` (a backslash escapes the byte after it,
/// as [`entries`] reads) and notes each segment's first `=`; a segment whose name has no
/// backslash (the usual one: escapes are mostly in values) is compared where it
/// stands, and only one with an escaped name is read by [`entries`].
fn last_escaped_ascii_entry<'a>(text: &'a str, name: &str) -> Option<Entry<'a>> {
    let bytes = text.as_bytes();
    let mut found: Option<Entry<'a>> = None;
    // The segment `start..end`, its first `=`, whether its name holds a backslash.
    let mut look = |start: usize, end: usize, eq: Option<usize>, escaped_name: bool| {
        let Some(eq) = eq else {
            return; // blank, or an entry that cannot be read (skipped)
        };
        if escaped_name {
            if let Some(Ok(e)) = entries(&text[start..end]).next() {
                if same_name(&e.name, name) {
                    found = Some(e);
                }
            }
            return;
        }
        let n = trim_escaped(&text[start..eq]);
        // Both ASCII: `same_name` is this.
        if n.len() == name.len() && n.eq_ignore_ascii_case(name) {
            let value = &text[eq + 1..end];
            found = Some(Entry {
                name: Cow::Borrowed(n),
                raw: trim_escaped(value),
                plain: !value.bytes().any(|b| b == b',' || b == b'\\'),
            });
        }
    };
    let (mut start, mut eq, mut escaped_name) = (0, None, false);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                escaped_name |= eq.is_none();
                i += 1;
            }
            b'=' if eq.is_none() => eq = Some(i),
            b';' => {
                look(start, i, eq, escaped_name);
                (start, eq, escaped_name) = (i + 1, None, false);
            }
            _ => {}
        }
        i += 1;
    }
    if start < bytes.len() {
        look(start, bytes.len(), eq, escaped_name);
    }
    found
}

/// Trims whitespace at both ends, keeping a space that an escape makes part of the text.
fn trim_escaped(s: &str) -> &str {
    if has_plain_ends(s) {
        return s; // the usual case: nothing to trim
    }
    let s = s.trim_start();
    let trimmed = s.trim_end();
    let backslashes = trimmed.bytes().rev().take_while(|b| *b == b'\\').count();
    if backslashes % 2 == 1 && trimmed.len() < s.len() {
        // `\ ` at the end: the escaped space belongs to the value.
        let next = s[trimmed.len()..].chars().next().map_or(0, char::len_utf8);
        &s[..trimmed.len() + next]
    } else {
        trimmed
    }
}

/// Reads a `conjoined` text into `(name, value)` pairs, one per name (the last one wins,
/// names compared case-insensitively, the position of the first kept).
///
/// # Errors
/// A [`ConjoinedError`] for an entry without `=` or without a name.
pub fn parse(text: &str) -> Result<Vec<(String, Value)>, ConjoinedError> {
    let mut out: Vec<(String, Value)> =
        Vec::with_capacity(text.bytes().filter(|b| *b == b';').count() + 1);
    for entry in entries(text) {
        let entry = entry?;
        let value = entry.value();
        match out.iter_mut().find(|(n, _)| same_name(n, &entry.name)) {
            Some(slot) => slot.1 = value,
            None => out.push((entry.name.into_owned(), value)),
        }
    }
    Ok(out)
}

/// Whether two channel names are the same (case-insensitive).
pub fn same_name(a: &str, b: &str) -> bool {
    if a.len() == b.len() && a.eq_ignore_ascii_case(b) {
        return true;
    }
    if a.is_ascii() && b.is_ascii() {
        return false;
    }
    a.to_lowercase() == b.to_lowercase()
}

/// Removes the escapes of a name or of one value item; borrows when there are none.
pub fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(chars.next().unwrap_or('\\'));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Splits an escaped value at its unescaped commas (the items stay escaped).
fn split_items(raw: &str) -> impl Iterator<Item = &str> {
    let bytes = raw.as_bytes();
    let mut start = 0;
    let mut i = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b',' => {
                    let item = &raw[start..i];
                    i += 1;
                    start = i;
                    return Some(item);
                }
                _ => i += 1,
            }
        }
        done = true;
        Some(&raw[start.min(raw.len())..])
    })
}

/// Whether an escaped value holds an unescaped comma, i.e. is a vector.
fn has_separator(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b',' => return true,
            _ => i += 1,
        }
    }
    false
}

/// Decodes an escaped value: a vector if it has an unescaped `,`, else a scalar.
pub fn decode(raw: &str) -> Value {
    if has_separator(raw) {
        decode_vector(raw)
    } else {
        decode_scalar(raw)
    }
}

/// Decodes an escaped value as one scalar: a number if it reads as one, else a string.
pub fn decode_scalar(raw: &str) -> Value {
    let text = unescape(raw);
    match parse_number(&text) {
        Some(n) => Value::Num(n),
        None => Value::Str(Arc::from(text.as_ref())),
    }
}

/// Decodes an escaped value as a vector (an empty text is a vector with no items).
pub fn decode_vector(raw: &str) -> Value {
    if raw.trim().is_empty() {
        return Value::Nums(Arc::from([]));
    }
    let nums: Option<Vec<f64>> = split_items(raw)
        .map(|item| parse_number(&unescape(item)))
        .collect();
    match nums {
        Some(v) => Value::Nums(v.into()),
        None => Value::List(
            split_items(raw)
                .map(|item| {
                    let item = trim_escaped(item);
                    if item.is_empty() {
                        Value::Empty(Reason::Invalid("an empty vector item"))
                    } else {
                        decode_scalar(item)
                    }
                })
                .collect(),
        ),
    }
}

/// Appends `s` with `;`, `=`, `,` and `\` escaped, and a space (any whitespace) at
/// either end escaped too, so that reading, which trims, keeps it.
pub fn escape_into(out: &mut String, s: &str) {
    // Nearly every name and value has nothing to escape: copy it at once.
    let special = |b: &u8| matches!(b, b';' | b'=' | b',' | b'\\');
    if !s.as_bytes().iter().any(special)
        && !s.starts_with(char::is_whitespace)
        && !s.ends_with(char::is_whitespace)
    {
        out.push_str(s);
        return;
    }
    let last_ws = s
        .char_indices()
        .next_back()
        .filter(|(_, c)| c.is_whitespace())
        .map(|(i, _)| i);
    let mut from = 0;
    for (i, c) in s.char_indices() {
        let edge_space = c.is_whitespace() && (i == 0 || Some(i) == last_ws);
        if edge_space || matches!(c, ';' | '=' | ',' | '\\') {
            out.push_str(&s[from..i]);
            out.push('\\');
            from = i;
        }
    }
    out.push_str(&s[from..]);
}

/// Appends a value as stored: numbers in their shortest exact form, strings escaped,
/// vectors with their items separated by `,`; an empty value writes nothing.
pub fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Empty(_) => {}
        Value::Num(n) => {
            let _ = format_number(*n, out);
        }
        Value::Str(s) => escape_into(out, s),
        Value::Nums(items) => {
            for (i, n) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = format_number(*n, out);
            }
        }
        Value::List(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match item {
                    Value::Nums(_) | Value::List(_) => {
                        let mut s = String::new();
                        let _ = write!(s, "{item}");
                        escape_into(out, &s);
                    }
                    scalar => write_value(out, scalar),
                }
            }
        }
    }
}

/// Appends one entry `name=value;`. An empty value is not written at all: the channel
/// is then absent, which is how "not computed" reads back.
pub fn write_entry(out: &mut String, name: &str, v: &Value) {
    if v.is_empty() {
        return;
    }
    escape_into(out, name);
    out.push('=');
    write_value(out, v);
    out.push(';');
}

/// The part of a producer's text that is written back when recalcd rewrites the row:
/// every entry it does not replace, kept so that it reads back the same (the rewrite
/// rule in the module docs).
///
/// Fed the items of [`entries`] one by one ([`Kept::keep`]), then finished with the
/// entries recalcd writes ([`Kept::finish`]).
#[derive(Debug, Clone, Default)]
pub struct Kept {
    /// The kept entries and unreadable segments, each ending with its `;`.
    text: String,
    /// Where the open tail starts in the source text, when it is kept.
    tail: Option<usize>,
}

impl Kept {
    /// Nothing kept yet, with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Kept {
        Kept {
            text: String::with_capacity(capacity),
            tail: None,
        }
    }

    /// Keeps the item `entries` returned last: an entry as `name=value;` (the name
    /// escaped as [`escape_into`] writes it, the value's stored text as read), a segment
    /// that cannot be read byte for byte with its `;`, and the open tail, whatever it
    /// holds, byte for byte after everything else.
    pub fn keep(&mut self, entries: &Entries<'_>, item: &Result<Entry<'_>, ConjoinedError>) {
        if entries.at_open_tail() {
            self.tail = Some(entries.segment.start);
            return;
        }
        match item {
            Ok(e) => {
                escape_into(&mut self.text, &e.name);
                self.text.push('=');
                self.text.push_str(e.raw);
            }
            Err(_) => self.text.push_str(entries.segment()),
        }
        self.text.push(';');
    }

    /// The text to store: what was kept, then what `append` writes (complete entries,
    /// each ending with `;`), then the open tail of `source` (the text the items were
    /// read from), if it was kept.
    pub fn finish(self, source: &str, append: impl FnOnce(&mut String)) -> String {
        let Kept { mut text, tail } = self;
        append(&mut text);
        if let Some(tail) = tail.and_then(|start| source.get(start..)) {
            text.push_str(tail);
        }
        text
    }
}

/// Writes pairs as a `conjoined` text.
pub fn write<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a Value)>) -> String {
    let mut out = String::new();
    for (name, v) in pairs {
        write_entry(&mut out, name, v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nums(v: &[f64]) -> Value {
        Value::Nums(Arc::from(v))
    }

    #[test]
    fn reads_numbers_strings_and_vectors() {
        let got = parse("tmp=21.5;name=abc;v=1.5,2,3;gps=49\\,16;").map_err(|e| e.to_string());
        assert_eq!(
            got,
            Ok(vec![
                ("tmp".into(), Value::Num(21.5)),
                ("name".into(), Value::str("abc")),
                ("v".into(), nums(&[1.5, 2.0, 3.0])),
                ("gps".into(), Value::str("49,16")),
            ])
        );
    }

    #[test]
    fn is_tolerant() {
        let got = parse(" a = 1 ;; B=2; A=3 ;b=x").map_err(|e| e.to_string());
        assert_eq!(
            got,
            Ok(vec![
                ("a".into(), Value::Num(3.0)),
                ("B".into(), Value::str("x"))
            ])
        );
        assert_eq!(parse(""), Ok(vec![]));
        assert_eq!(parse(" ; ;"), Ok(vec![]));
        assert_eq!(parse("a=\\q"), Ok(vec![("a".into(), Value::str("q"))]));
        assert_eq!(parse("a=x\\"), Ok(vec![("a".into(), Value::str("x\\"))]));
        assert_eq!(parse("a=x\\ ;"), Ok(vec![("a".into(), Value::str("x "))]));
        assert_eq!(parse("a=b=c"), Ok(vec![("a".into(), Value::str("b=c"))]));
        assert_eq!(
            parse("Úhel=1;úHEL=2"),
            Ok(vec![("Úhel".into(), Value::Num(2.0))])
        );
    }

    #[test]
    fn rejects_what_it_would_lose() {
        assert_eq!(
            parse("a=1;junk;").map_err(|e| e.to_string()),
            Err("conjoined byte 4: the entry 'junk' has no '='".into())
        );
        assert_eq!(parse("a=1; =2"), Err(ConjoinedError::EmptyName { at: 4 }));
    }

    #[test]
    fn mixed_vectors_keep_their_items() {
        assert_eq!(
            decode("1,a\\,b,,x"),
            Value::List(Arc::from([
                Value::Num(1.0),
                Value::str("a,b"),
                Value::Empty(Reason::Invalid("an empty vector item")),
                Value::str("x"),
            ]))
        );
        assert_eq!(decode_vector(""), nums(&[]));
        assert_eq!(
            decode("a\\ , b"),
            Value::List(Arc::from([Value::str("a "), Value::str("b")]))
        );
        assert_eq!(decode_vector("5"), nums(&[5.0]));
        assert_eq!(decode(""), Value::str(""));
    }

    #[test]
    fn escapes_on_write() {
        let v = Value::str("a;b=c,d\\e");
        let text = write([
            ("we;ird", &v),
            ("n", &Value::Num(-0.5)),
            ("e", &Value::Empty(Reason::NotANumber)),
        ]);
        assert_eq!(text, "we\\;ird=a\\;b\\=c\\,d\\\\e;n=-0.5;");
        assert_eq!(
            parse(&text),
            Ok(vec![("we;ird".into(), v), ("n".into(), Value::Num(-0.5))])
        );
    }

    #[test]
    fn round_trips() {
        let values = [
            Value::Num(0.1),
            Value::Num(1e-7),
            Value::Num(-123456789.125),
            Value::str("it's ; = , \\ done"),
            Value::str("čeština"),
            Value::str(" padded\t"),
            Value::str(" "),
            nums(&[1.0, 2.5, -3.0]),
            Value::List(Arc::from([
                Value::Num(1.0),
                Value::str("x,y"),
                Value::str("z"),
            ])),
        ];
        for v in values {
            let text = write([("k", &v)]);
            assert_eq!(parse(&text), Ok(vec![("k".into(), v.clone())]), "{text}");
        }
    }

    #[test]
    fn the_last_entry_of_a_name_is_found() {
        let e = last_entry("a=1;TMP = 2.5 ;b=x;tmp=hot;", "tmp").unwrap();
        assert_eq!((e.name.as_ref(), e.raw), ("tmp", "hot"));
        let e = last_entry("a=1;T\\MP=2\\,5;b=x", "tmp").unwrap();
        assert_eq!(e.value(), Value::str("2,5"));
        assert!(last_entry("a=1;tmp;=4", "tmp").is_none());
        assert_eq!(
            last_entry(" tmp= 4,5 ", "TMP").unwrap().value(),
            nums(&[4.0, 5.0])
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// The fast search gives what iterating the entries gives, on texts made of the
        /// characters that matter (separators, escapes, spaces, case, non-ASCII).
        #[test]
        fn last_entry_is_the_last_of_the_entries(
            text in "[;=,\\\\ \u{a0}aAtTmMpP1é.-]{0,40}",
            name in proptest::sample::select(vec!["tmp", "TMP", "a", "t", "é", "tmp ", "p1"]),
        ) {
            let slow = entries(&text).flatten().filter(|e| same_name(&e.name, name)).last();
            proptest::prop_assert_eq!(last_entry(&text, name), slow);
        }

        /// The same on ASCII texts (the fast search's usual case).
        #[test]
        fn last_entry_in_ascii_is_the_last_of_the_entries(
            text in "[;=, \t\\\\aAtTmMpP1.-]{0,40}",
            name in proptest::sample::select(vec!["tmp", "TMP", "a", "t", "tmp ", "p1", "=", ";"]),
        ) {
            let slow = entries(&text).flatten().filter(|e| same_name(&e.name, name)).last();
            proptest::prop_assert_eq!(last_entry(&text, name), slow);
        }
    }

    proptest::proptest! {
        /// What is read, written and read again is what was read first.
        #[test]
        fn read_write_read_is_stable(text in "[a-cA-C0-9 ;=,.\\\\eé-]{0,40}") {
            if let Ok(pairs) = parse(&text) {
                let written = write(pairs.iter().map(|(n, v)| (n.as_str(), v)));
                proptest::prop_assert_eq!(parse(&written), Ok(pairs), "{}", written);
            }
        }

        /// Written values read back as themselves.
        #[test]
        fn values_round_trip(
            name in "[a-zé;=, ]{1,6}",
            s in "[a-z;=,\\\\ é]{1,8}",
            n in proptest::num::f64::NORMAL,
            items in proptest::collection::vec(-1e6f64..1e6, 2..5),
        ) {
            let name = name.trim().to_string();
            proptest::prop_assume!(!name.is_empty() && parse_number(&s).is_none());
            for v in [Value::str(s.as_str()), Value::Num(n), nums(&items)] {
                let text = write([(name.as_str(), &v)]);
                proptest::prop_assert_eq!(parse(&text), Ok(vec![(name.clone(), v)]), "{}", text);
            }
        }
    }

    #[test]
    fn plain_ends_are_what_trim_leaves_alone() {
        for s in [
            "",
            "a",
            " a",
            "a ",
            "\u{b}a",
            "a\u{b}",
            "\u{a0}a",
            "a\u{3000}",
            "é",
            "ab",
            "a b",
            "\\",
        ] {
            if has_plain_ends(s) {
                assert_eq!(s.trim(), s, "{s:?}");
            }
        }
        assert!(has_plain_ends("a b") && !has_plain_ends("a\u{b}") && !has_plain_ends("é"));
    }

    /// `text` kept whole (nothing replaced), then `appended`.
    fn kept(text: &str, appended: &str) -> String {
        let mut kept = Kept::default();
        let mut it = entries(text);
        while let Some(item) = it.next() {
            kept.keep(&it, &item);
        }
        kept.finish(text, |out| out.push_str(appended))
    }

    #[test]
    fn the_open_tail_is_the_segment_a_last_backslash_ends() {
        let mut it = entries(r"a=1; b = x\;y ;c=C:\d\");
        let mut seen = Vec::new();
        while let Some(item) = it.next() {
            seen.push((it.segment(), it.at_open_tail(), item.is_ok()));
        }
        assert_eq!(
            seen,
            [
                ("a=1", false, true),
                (r" b = x\;y ", false, true),
                (r"c=C:\d\", true, true)
            ]
        );
        for (text, open) in [
            (r"x\", true),
            (r"x\\", false),
            (r"x\\\", true),
            (r"x\;", false),
            ("x\\\u{e9}", false),
            (r"a=1;\", true),
        ] {
            let mut it = entries(text);
            let mut last = false;
            while it.next().is_some() {
                last = it.at_open_tail();
            }
            assert_eq!(last, open, "{text:?}");
        }
    }

    #[test]
    fn kept_text_reads_back_the_same() {
        assert_eq!(
            kept(r"tmp=4;path=C:\data\", "n=1;"),
            r"tmp=4;n=1;path=C:\data\"
        );
        assert_eq!(
            kept(" a = 1 ;;junk; =x;b=2", "n=1;"),
            "a=1;junk; =x;b=2;n=1;"
        );
        assert_eq!(kept(r"a\ \ =\ x\ ;", ""), r"a \ =\ x\ ;");
        assert_eq!(kept(r"bad\", "n=1;"), r"n=1;bad\");
        for text in [
            r"tmp=4;path=C:\data\",
            " a = 1 ;;junk; =x;b=2",
            r"bad\",
            "č=\\ ;",
        ] {
            let once = kept(text, "n=1;");
            assert_eq!(kept(&once, ""), once, "{text:?}");
            let (read, again): (Vec<_>, Vec<_>) =
                (entries(text).collect(), entries(&once).collect());
            let values = |v: Vec<Result<Entry<'_>, ConjoinedError>>| {
                v.into_iter()
                    .map(|e| {
                        e.map(|e| {
                            let value = e.value();
                            (e.name.into_owned(), value)
                        })
                        .map_err(|_| ())
                    })
                    .filter(|e| !matches!(e, Ok((n, _)) if n == "n"))
                    .collect::<Vec<_>>()
            };
            // The open tail was last already: the order is the same too.
            assert_eq!(values(read), values(again), "{text:?} -> {once:?}");
        }
    }

    #[test]
    fn entries_borrow_and_keep_the_raw_text() {
        let e: Vec<Entry<'_>> = entries("a=1\\,5;b=2").filter_map(Result::ok).collect();
        assert!(matches!(e[0].name, Cow::Borrowed("a")));
        assert_eq!(e[0].raw, "1\\,5");
        assert_eq!(e[1].value(), Value::Num(2.0));
    }
}
