//! The row model: what the store, the engine and the indexes all speak of — the three
//! levels, a row and its key, the version the store's guard compares, constants,
//! equations and the records of outputs that could not be computed.
//!
//! Plain data, free of any driver or SQL: the store maps it to its dialects (and a
//! level to its configured table), the engine computes on it.

use std::fmt;

use chrono::NaiveDateTime;

/// The three stored levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// Data rows (`tables.data`).
    Data,
    /// Job rows (`tables.job`).
    Job,
    /// Day rows (`tables.day`).
    Day,
}

impl Level {
    /// All levels, in processing order.
    pub const ALL: [Level; 3] = [Level::Data, Level::Job, Level::Day];

    /// The name stored in the errors table and shown by `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Data => "data",
            Level::Job => "job",
            Level::Day => "day",
        }
    }

    /// Parses [`Level::as_str`].
    pub fn parse(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The key of a data, job or day row: device and (start) time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowKey {
    /// Device id.
    pub id: i32,
    /// `datetime`: measurement time, or job / day start.
    pub datetime: NaiveDateTime,
}

/// What the guard compares: the version of a stored row as recalcd read it.
///
/// Opaque to the engine: it copies the version of the row it loaded into the row it
/// writes back, and uses [`RowVersion::ABSENT`] for rows it creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RowVersion(Option<i64>);

impl RowVersion {
    /// The row did not exist when recalcd looked: write it only if it still does not.
    pub const ABSENT: RowVersion = RowVersion(None);

    /// A version as a dialect computes it (PostgreSQL: `xmin`; QuestDB: a content hash).
    pub(crate) fn of(v: i64) -> RowVersion {
        RowVersion(Some(v))
    }

    /// Whether this is [`RowVersion::ABSENT`].
    pub fn is_absent(self) -> bool {
        self.0.is_none()
    }

    pub(crate) fn get(self) -> Option<i64> {
        self.0
    }
}

/// One data, job or day row (the data, job and day tables share one schema).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Measurement time, or job / day start. With `id`, the key.
    pub datetime: NaiveDateTime,
    /// Start of the row's job (data), or end of the job / day.
    pub data_time: NaiveDateTime,
    /// Device id.
    pub id: i32,
    /// Device state.
    pub state: Option<i32>,
    /// User name (column `"user"`).
    pub user: Option<String>,
    /// GPS position `"lat,lon"`.
    pub gps: Option<String>,
    /// `> 0` flagged, `0` done, `< 0` done with failures.
    pub recalc: i32,
    /// The other values, `name=value;` pairs.
    pub conjoined: String,
    /// The version read; the guard writes the row only if it is still current.
    pub version: RowVersion,
    /// Why the stored row could not be decoded, if it could not: a text column that is
    /// not valid UTF-8 (possible in a `SQL_ASCII` PostgreSQL database). Its text columns
    /// then hold a lossy copy, for messages only: the row is not computed, and its write-back
    /// sets its flag and never its content, so the producer's bytes stay as written.
    pub unreadable: Option<String>,
}

impl Row {
    /// The row's key.
    pub fn key(&self) -> RowKey {
        RowKey {
            id: self.id,
            datetime: self.datetime,
        }
    }
}

/// A per-device constant (`#NAME`); `id = 0` is the default for every device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constant {
    /// Device id, 0 for all.
    pub id: i32,
    /// Name without `#`.
    pub name: String,
    /// Value as stored (empty when NULL).
    pub value: String,
}

/// A stored equation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Equation {
    /// The level (`type` column: 1, 2, 4, 5, 6, 7).
    pub kind: i32,
    /// Device id, 0 for all.
    pub id: i32,
    /// Output channel.
    pub name: String,
    /// The prefix expression.
    pub eq: String,
}

impl Equation {
    /// The equation of type `kind` for device `id` (0: every device) writing `name`.
    pub fn new(kind: i32, id: i32, name: &str, eq: &str) -> Equation {
        Equation {
            kind,
            id,
            name: name.to_owned(),
            eq: eq.to_owned(),
        }
    }
}

/// An output that could not be computed, to be recorded with the row's write-back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRecord {
    /// The level of the row.
    pub level: Level,
    /// The row.
    pub key: RowKey,
    /// The equation's output name.
    pub equation: String,
    /// Why it could not be computed.
    pub reason: String,
}
