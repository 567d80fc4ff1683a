//! The storage interface and its dialects.
//!
//! recalcd talks to its store through one interface, [`Store`]: poll flagged rows in
//! bounded batches, load what the engine needs for them in a few round trips, and write
//! a whole batch back ([`Store::write_back`]). There is one implementation per dialect —
//! [`postgres::PgStore`] and [`questdb::QuestStore`] — and [`AnyStore`] dispatches over
//! the dialect detected at [`connect`]. All SQL of a dialect lives in its module; the
//! migrations live in `migrations/<dialect>/` ([`migrate`]).
//!
//! **The guard**: nothing a producer writes is lost. Every loaded [`Row`] carries a
//! [`RowVersion`]; the write-back of a row only happens if the stored row still has
//! that version, so a row a producer changed or re-flagged after recalcd read it keeps
//! the producer's content and flag. Rows recalcd creates (a job or day that did not
//! exist) carry [`RowVersion::ABSENT`] and are only inserted if still absent. Rows the
//! guard skips are reported in [`WriteOutcome::skipped`] and get no error records.
//! PostgreSQL makes this atomic (the version is the row's `xmin`); QuestDB cannot, see
//! [`questdb`].
//!
//! **Several workers.** A batch first takes a [`Lease`] on the devices it will
//! process ([`Store::lease`]), polls only their flagged rows ([`Store::poll_leased`]),
//! and gives the lease back after its write-back ([`Store::release`]); no device is
//! ever processed by two workers at once. PostgreSQL leases devices dynamically with
//! session-level advisory locks (they vanish with a dead worker's session, so its
//! devices pass to the others); QuestDB has no locks and splits the devices statically
//! (`worker.shard` / `worker.shards`), see [`postgres`] and [`questdb`].
//!
//! **Pipelining.** Where the dialect allows it, a run writes each batch on a second
//! session ([`Store::open_writer`]) while it prepares the next on the first; the lease
//! stays with the first session, whose locks stack, and [`WriteOutcome::version`] tells
//! the next batch the version of the rows it takes over.
//!
//! Timestamps are UTC [`NaiveDateTime`] everywhere.

use std::future::Future;
use std::time::Duration;

use chrono::NaiveDateTime;

use crate::config::{Config, Dialect, DialectChoice};

/// A `match` over the dialects of an [`AnyStore`], binding the dialect's store as `$s`.
macro_rules! data_dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            AnyStore::Postgres($s) => $e,
            AnyStore::QuestDb($s) => $e,
        }
    };
}

/// A `match` over the dialects of an [`index::IndexStore`], binding its store as `$s`.
macro_rules! index_dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            IndexStore::Postgres($s) => $e,
            IndexStore::QuestDb($s) => $e,
        }
    };
}

pub mod index;
pub mod migrate;
pub mod postgres;
pub mod questdb;
mod schema;
pub mod similarity;
pub mod subsequence;
pub mod vptree;
mod wakeups;

pub use crate::model::{Constant, Equation, ErrorRecord, Level, Row, RowKey, RowVersion};
pub use postgres::PgStore;
pub use questdb::QuestStore;
pub use wakeups::Wakeups;

impl Level {
    /// The configured table of this level.
    pub fn table(self, tables: &crate::config::TableNames) -> &str {
        match self {
            Level::Data => &tables.data,
            Level::Job => &tables.job,
            Level::Day => &tables.day,
        }
    }
}

impl Row {
    /// The row's columns as statement parameters: `datetime, data_time, id, state, user,
    /// gps, recalc, conjoined`, the order of the dialects' row statements.
    pub fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 8] {
        [
            &self.datetime,
            &self.data_time,
            &self.id,
            &self.state,
            &self.user,
            &self.gps,
            &self.recalc,
            &self.conjoined,
        ]
    }
}

/// A flagged row as [`Store::poll_leased`] finds it: its key and its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag {
    /// The row's key.
    pub key: RowKey,
    /// Its `data_time`: the start of its job (for a data row).
    pub data_time: NaiveDateTime,
}

/// An equation to add by [`Store::merge_equations`], with the stored equations it
/// replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedEquation {
    /// The equation as it is to be stored.
    pub equation: Equation,
    /// The names of the stored equations of the same type and device that it replaces
    /// (names compare case-insensitively, so `HOT` replaces `hot`); empty when it is new.
    pub replaces: Vec<String>,
}

/// An [`ErrorRecord`] as stored, with the time it was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredError {
    /// When it was recorded (UTC).
    pub at: NaiveDateTime,
    /// What was recorded.
    pub record: ErrorRecord,
    /// Whether it still describes its row: the row is still at `recalc = -1` and this
    /// record is of its latest failing computation. `false` once the row was computed
    /// cleanly, re-flagged, or failed again (with newer records).
    pub current: bool,
}

/// An equation left out when the equations were loaded, as recorded for `recalcd status`
/// (the `tables.problems` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EquationProblem {
    /// The equation's type; `None` when the problem names no single equation.
    pub ty: Option<i32>,
    /// The equation's device id (0: the default for every device).
    pub id: Option<i32>,
    /// The equation's output name.
    pub name: Option<String>,
    /// What is wrong, as the loader says it (it names the equation).
    pub problem: String,
    /// When it was first recorded (UTC); `None` before it is stored.
    pub at: Option<NaiveDateTime>,
}

/// Rows of one level within a time range that are not computed: still flagged, or
/// failed (`recalc = -1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsettled {
    /// The level.
    pub level: Level,
    /// Rows with `recalc > 0`.
    pub flagged: u64,
    /// Rows with `recalc = -1`.
    pub failed: u64,
}

/// Which neighbour of a row: the one before or the one after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// The row just before (`previous`).
    Before,
    /// The row just after (`next`).
    After,
}

impl Direction {
    /// The SQL comparison and order that find the neighbour.
    pub(crate) fn sql(self) -> (&'static str, &'static str) {
        match self {
            Direction::Before => ("<", "DESC"),
            Direction::After => (">", "ASC"),
        }
    }

    /// "previous" or "next", for messages.
    pub(crate) fn word(self) -> &'static str {
        match self {
            Direction::Before => "previous",
            Direction::After => "next",
        }
    }
}

/// Device and half-open time range `[from, to)` of `datetime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// Device id.
    pub id: i32,
    /// First `datetime` included.
    pub from: NaiveDateTime,
    /// First `datetime` excluded.
    pub to: NaiveDateTime,
}

/// The rows [`Store::reflag`] flags: time ranges of `datetime` for some devices, and one
/// range for every other device.
///
/// `recalcd reflag` gives the devices with constants of their own (their day break may
/// differ) a range each and every other device the range of the default day break, so
/// that flagging all devices needs no list of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReflagRanges {
    /// Devices with a range of their own (half-open, as [`TimeRange`]).
    pub devices: Vec<TimeRange>,
    /// `[from, to)` for every device not in `devices`; `None` for no other device.
    pub others: Option<(NaiveDateTime, NaiveDateTime)>,
}

/// Everything one batch writes back, applied together (one transaction on PostgreSQL).
///
/// Within a level each key appears once; a row carries the [`RowVersion`] it was loaded
/// with, or [`RowVersion::ABSENT`] if recalcd creates it.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    /// Data rows, with their new content and `recalc`.
    pub data: Vec<Row>,
    /// Job rows (updated, or created with [`RowVersion::ABSENT`]).
    pub jobs: Vec<Row>,
    /// Day rows (updated, or created with [`RowVersion::ABSENT`]).
    pub days: Vec<Row>,
    /// Outputs that could not be computed; dropped for rows the guard skips.
    pub errors: Vec<ErrorRecord>,
    /// The index buckets the data rows touch, recorded in the dirty log with the rows
    /// (PostgreSQL: in the same transaction; QuestDB: before the rows). Each once.
    pub index_marks: Vec<IndexMark>,
}

/// A finest bucket of a declared index that a written data row falls in: recorded in
/// the dirty log, so that the index is brought up to date (and until then not trusted)
/// there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IndexMark {
    /// The indexed channel, lower-case.
    pub channel: String,
    /// The row's device.
    pub id: i32,
    /// The start of the finest bucket holding the row.
    pub start: NaiveDateTime,
}

impl WriteBatch {
    /// The rows of one level.
    pub fn rows(&self, level: Level) -> &[Row] {
        match level {
            Level::Data => &self.data,
            Level::Job => &self.jobs,
            Level::Day => &self.days,
        }
    }

    /// The rows of one level, to change.
    pub fn rows_mut(&mut self, level: Level) -> &mut Vec<Row> {
        match level {
            Level::Data => &mut self.data,
            Level::Job => &mut self.jobs,
            Level::Day => &mut self.days,
        }
    }

    /// The error records of rows not in `skipped` (the guard drops the others).
    pub fn errors_except(&self, skipped: &[(Level, RowKey)]) -> Vec<&ErrorRecord> {
        let skipped: std::collections::HashSet<&(Level, RowKey)> = skipped.iter().collect();
        self.errors
            .iter()
            .filter(|e| !skipped.contains(&(e.level, e.key)))
            .collect()
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.jobs.is_empty()
            && self.days.is_empty()
            && self.errors.is_empty()
    }
}

/// What [`Store::write_back`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Rows written.
    pub written: usize,
    /// Rows the guard skipped: a producer changed, re-flagged or created them after
    /// recalcd read them. They keep the producer's content and flag.
    pub skipped: Vec<(Level, RowKey)>,
    /// Error records written.
    pub errors_written: usize,
    /// The versions the rows written now carry, where the dialect knows them at commit;
    /// a batch prepared while this one was being written takes its rows over with them.
    pub version: Option<WrittenVersions>,
    /// The guard's window in this write-back: the longest time between the moment a
    /// row's current content was last made visible to the guard and the commit of the
    /// row's rewrite — a producer write committed in it can be overwritten. Zero where
    /// the guard is atomic (PostgreSQL: row locks in one transaction).
    pub guard_window: std::time::Duration,
}

/// The revision of the equations and constants: it changes whenever either table does.
///
/// Opaque; only compared with an earlier one from the same store, to decide whether the
/// compiled equations must be reloaded ([`Store::revision`]). A change may be reported
/// when nothing changed (a rolled-back write, a restarted server): that only costs one
/// reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Revision(u64);

impl Revision {
    /// A revision as a dialect computes it (PostgreSQL: a counter; QuestDB: a hash).
    pub(crate) fn of(v: u64) -> Revision {
        Revision(v)
    }
}

/// The devices one batch may process, taken by [`Store::lease`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// These devices, held by this worker alone until [`Store::release`] (PostgreSQL).
    /// Empty when no device with flagged rows was free.
    Devices(Vec<i32>),
    /// Every device of this worker's static share (`worker.shard`): the dialect has no
    /// dynamic leases (QuestDB), so the configuration must give each worker its own share.
    Shard,
}

impl Lease {
    /// Whether the lease holds no device at all (nothing to poll).
    pub fn is_empty(&self) -> bool {
        matches!(self, Lease::Devices(d) if d.is_empty())
    }
}

/// What `migrate` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateReport {
    /// Migrations applied now (version, name); empty when the schema was up to date.
    pub applied: Vec<(i32, &'static str)>,
    /// The schema version now.
    pub version: i32,
}

/// The backlog of one level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backlog {
    /// The level.
    pub level: Level,
    /// Its table.
    pub table: String,
    /// Rows with `recalc > 0`.
    pub flagged: u64,
    /// The oldest `datetime` among them.
    pub oldest: Option<NaiveDateTime>,
}

impl Backlog {
    /// Decodes a `SELECT count(*), min(datetime) … WHERE recalc > 0` answer.
    pub(crate) fn from_row(
        level: Level,
        table: &str,
        r: &tokio_postgres::Row,
    ) -> Result<Backlog, StoreError> {
        let what = || format!("counting flagged {level} rows");
        let flagged: i64 = r.try_get(0).map_err(StoreError::query(what()))?;
        Ok(Backlog {
            level,
            table: table.to_string(),
            flagged: flagged.max(0) as u64,
            oldest: r.try_get(1).map_err(StoreError::query(what()))?,
        })
    }
}

/// What `recalcd status` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The dialect spoken.
    pub dialect: Dialect,
    /// The applied schema version.
    pub schema_version: i32,
    /// Flagged rows per level.
    pub backlog: Vec<Backlog>,
    /// Rows in the equations table.
    pub equations: u64,
    /// Rows in the constants table.
    pub constants: u64,
    /// The latest error records, newest first.
    pub latest_errors: Vec<StoredError>,
    /// Rows at `recalc = -1` (some output could not be computed), per level.
    pub failed: Vec<(Level, u64)>,
    /// The equations left out by the latest load, in key order.
    pub problems: Vec<EquationProblem>,
}

/// Why a store operation failed.
///
/// Messages never contain a password: URLs are redacted before they are stored here.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL could not be parsed.
    #[error("invalid database URL `{url}`")]
    BadUrl {
        /// The redacted URL.
        url: String,
        /// The parser's complaint.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The server could not be reached or refused the connection.
    #[error("cannot connect to {url}")]
    Connect {
        /// The redacted URL.
        url: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// No connection within `database.connect_timeout`.
    #[error("cannot connect to {url}: no answer within {timeout:?}")]
    ConnectTimeout {
        /// The redacted URL.
        url: String,
        /// The configured timeout.
        timeout: Duration,
    },
    /// A table recalcd needs does not exist.
    #[error("table `{table}` does not exist: run `recalcd migrate`")]
    MissingTable {
        /// The table.
        table: String,
    },
    /// A table's columns differ from the schema.
    #[error("table `{table}`: column `{column}` {problem}")]
    Column {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// What differs (missing, or its type).
        problem: String,
    },
    /// The schema is older than this recalcd.
    #[error(
        "the schema is at migration {found}, this recalcd needs {needed}: run `recalcd migrate`"
    )]
    Outdated {
        /// Applied version.
        found: i32,
        /// Latest embedded version.
        needed: i32,
    },
    /// The schema is newer than this recalcd knows.
    #[error("the schema is at migration {found}, newer than this recalcd knows ({known}): upgrade recalcd")]
    TooNew {
        /// Applied version.
        found: i32,
        /// Latest embedded version.
        known: i32,
    },
    /// A statement failed; `what` says what recalcd was doing (QuestDB's own messages
    /// can mislead, e.g. a syntax error reported as a missing table).
    #[error("{what}")]
    Query {
        /// What recalcd was doing.
        what: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The server ended the connection (it is shutting down, or the session was
    /// terminated) while recalcd was `what`.
    #[error("the server closed the connection while {what}")]
    Closed {
        /// What recalcd was doing.
        what: String,
    },
    /// The dialect cannot do what was asked with the guarantees recalcd promises.
    #[error("{what}: {why}")]
    Unsupported {
        /// What was asked.
        what: String,
        /// Why the dialect cannot, and what to do instead.
        why: String,
    },
    /// QuestDB's line protocol (ILP over HTTP, `database.questdb_ilp`) refused or failed
    /// while recalcd was `what`.
    #[error("{what}: {source}")]
    Ilp {
        /// What recalcd was doing, naming the address (never the credentials).
        what: String,
        /// The client's error.
        #[source]
        source: ::questdb::Error,
    },
    /// The line protocol address configured explicitly (`database.questdb_ilp =
    /// "host:port"`) refused recalcd at start-up; nothing waiting can cure that.
    #[error("QuestDB's line protocol at {addr} (database.questdb_ilp) refused recalcd: {source}; fix the address or credentials, or set database.questdb_ilp = \"auto\" or \"off\" to write over PG wire")]
    IlpRefused {
        /// The address (never the credentials).
        addr: String,
        /// The client's error.
        #[source]
        source: ::questdb::Error,
    },
    /// The server answered something recalcd cannot use.
    #[error("{what}: {detail}")]
    Unexpected {
        /// What recalcd was doing.
        what: String,
        /// What was wrong with the answer.
        detail: String,
    },
}

impl StoreError {
    /// Whether retrying later may succeed (lost connection, server shutting down,
    /// serialization failure, resource shortage), as opposed to a problem a person must
    /// fix (bad URL, wrong password, missing tables, wrong schema, bad SQL).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Connect { source, .. } | StoreError::Query { source, .. } => {
                driver_error_is_transient(source)
            }
            StoreError::ConnectTimeout { .. } | StoreError::Closed { .. } => true,
            // The server went away mid-request (restart, network); refusals, bad
            // credentials and rejected rows need a person.
            StoreError::Ilp { source, .. } => matches!(
                source.code(),
                ::questdb::ErrorCode::SocketError | ::questdb::ErrorCode::ConnectTimeout
            ),
            _ => false,
        }
    }

    pub(crate) fn query(what: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> Self {
        let what = what.into();
        move |source| StoreError::Query { what, source }
    }
}

fn driver_error_is_transient(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        // No SQLSTATE: an I/O or protocol failure on the connection.
        None => e.as_db_error().is_none(),
        Some(code) => {
            let c = code.code();
            c.starts_with("08") // connection exception
                || c.starts_with("53") // insufficient resources
                || c == "40001" // serialization failure
                || c == "40P01" // deadlock
                || c == "57P01" // admin shutdown
                || c == "57P02" // crash shutdown
                || c == "57P03" // cannot connect now
                || c == "57014" // statement cancelled (statement_timeout)
                || c == "55P03" // lock not available
        }
    }
}

/// The storage interface. One implementation per dialect; [`AnyStore`] picks one.
///
/// Batch methods take many keys and answer in a few round trips, whatever the number
/// of keys; results are ordered by `(id, datetime)` unless said otherwise.
pub trait Store {
    /// The dialect this store speaks.
    fn dialect(&self) -> Dialect;

    /// Creates or upgrades the schema; running it again changes nothing.
    ///
    /// # Errors
    /// [`StoreError`] if a statement fails (the failing migration is not recorded).
    fn migrate(&mut self) -> impl Future<Output = Result<MigrateReport, StoreError>> + Send;

    /// Checks that every table exists with the expected columns and the schema is
    /// migrated; extra columns are allowed.
    ///
    /// # Errors
    /// [`StoreError::MissingTable`], [`StoreError::Column`], [`StoreError::Outdated`], …
    fn check_schema(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The `limit` oldest flagged rows (`recalc > 0`) of `level` — oldest by
    /// `(datetime, id)`, after the cursor `after` when given — ordered by id, datetime.
    ///
    /// Taking the oldest rows keeps a batch's writes on neighbouring pages (producers
    /// write in time order; a batch of one device's rows would touch a page per row)
    /// and serves every device in turn. A poller passes [`sweep_cursor`] of its previous
    /// batch as `after`, and `None` again once a poll comes back empty, so it does not
    /// rescan the rows it has just cleared and picks up older re-flagged rows on the
    /// next sweep.
    ///
    /// Batches use [`Store::poll_leased`], which also takes the device lease.
    ///
    /// # Errors
    /// [`StoreError`] if the query fails.
    fn poll_flagged(
        &self,
        level: Level,
        after: Option<RowKey>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Row>, StoreError>> + Send;

    /// Takes the devices the next batch will process: devices of this worker's share
    /// with flagged rows (at any level) that no other worker holds, chosen among the
    /// first `limit` flagged rows of each level after that level's cursor in `after`
    /// (the rows the batch's polls will then take; all of them for `None`). Hold the
    /// lease for the whole batch, including its write-back, then [`Store::release`] it.
    ///
    /// # Errors
    /// [`StoreError`] if the query fails.
    fn lease(
        &mut self,
        after: &Sweep,
        limit: usize,
    ) -> impl Future<Output = Result<Lease, StoreError>> + Send;

    /// The `limit` oldest flagged rows of `level` of the leased devices (after the
    /// cursor `after`, as [`Store::poll_flagged`]), ordered by id, datetime: only their
    /// keys and jobs, since a batch loads whole jobs and days around them anyway. Polled
    /// after the lease is taken, so no other worker is changing them.
    ///
    /// # Errors
    /// [`StoreError`] if the query fails.
    fn poll_leased(
        &self,
        level: Level,
        lease: &Lease,
        after: Option<RowKey>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Flag>, StoreError>> + Send;

    /// Opens the store's wake-up channel: notifications that rows were flagged, so the
    /// daemon need not wait a whole poll interval. `None` when the dialect has none
    /// (QuestDB: polling only). Open it before the first poll, so that nothing flagged
    /// in between is missed.
    ///
    /// # Errors
    /// [`StoreError`] if the channel cannot be opened.
    fn wakeups(&self) -> impl Future<Output = Result<Option<Wakeups>, StoreError>> + Send;

    /// Gives the lease back once the batch is written (or abandoned), so that other
    /// workers may take its devices.
    ///
    /// # Errors
    /// [`StoreError`] if the statement fails (the lease then ends with the session).
    fn release(&mut self, lease: Lease) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Opens a second session of this store to write batches back on while this one
    /// prepares the next batch (the pipeline of `recalcd once`). `None` when the dialect
    /// cannot overlap the two safely. The batch prepared meanwhile reads the rows of the
    /// batch being written from memory, so a store whose writes show half-done
    /// (QuestDB: no transactions across tables, WAL applied asynchronously) can offer
    /// one too, as long as its [`WriteOutcome::version`] says what the written rows
    /// read back as.
    ///
    /// # Errors
    /// [`StoreError`] if the connection cannot be opened.
    fn open_writer(&self) -> impl Future<Output = Result<Option<Self>, StoreError>> + Send
    where
        Self: Sized;

    /// The rows of `level` with these keys (those that exist), in (id, datetime) order.
    ///
    /// # Errors
    /// [`StoreError`] if the query fails.
    fn load_rows(
        &self,
        level: Level,
        keys: &[RowKey],
    ) -> impl Future<Output = Result<Vec<Row>, StoreError>> + Send;

    /// All data rows of these jobs, each given as (device id, job start = `data_time`),
    /// in (id, datetime) order.
    ///
    /// # Errors
    /// [`StoreError`] if the query fails.
    fn load_job_rows(
        &self,
        jobs: &[(i32, NaiveDateTime)],
    ) -> impl Future<Output = Result<Vec<Row>, StoreError>> + Send;

    /// The rows of `level` whose `datetime` lies in one of the ranges (e.g. the jobs of
    /// a day, or all data rows of a day), in (id, datetime) order.
    ///
    /// # Errors
    /// [`StoreError`] if the query fails.
    fn load_in_ranges(
        &self,
        level: Level,
        ranges: &[TimeRange],
    ) -> impl Future<Output = Result<Vec<Row>, StoreError>> + Send;

    /// The jobs, as (device, job start), with flagged data rows or a flagged job row
    /// that start in one of the ranges (e.g. the days a batch is about to compute: a day
    /// whose other jobs are still flagged is better computed after them).
    ///
    /// Only whether a range holds a flagged job besides those of `except` (the jobs the
    /// batch computes) is asked: a dialect may stop looking in a range once it found one
    /// (a long day then costs a probe or two, not one per flagged job). Every range
    /// that holds such a job has at least one in the answer; `except` jobs may be in it.
    ///
    /// # Errors
    /// [`StoreError`] if the query fails.
    fn flagged_jobs_in(
        &self,
        ranges: &[TimeRange],
        except: &[(i32, NaiveDateTime)],
    ) -> impl Future<Output = Result<Vec<(i32, NaiveDateTime)>, StoreError>> + Send;

    /// The rows of `level` of every device whose `datetime` lies in `[from, to)`
    /// (e.g. all days of a summary's range), in (id, datetime) order.
    ///
    /// # Errors
    /// [`StoreError`] if the query fails.
    fn load_between(
        &self,
        level: Level,
        from: NaiveDateTime,
        to: NaiveDateTime,
    ) -> impl Future<Output = Result<Vec<Row>, StoreError>> + Send;

    /// For each key, the row of `level` of the same device just before it (the previous
    /// data row, job or day), in the order of `keys`.
    ///
    /// # Errors
    /// [`StoreError`] if the query fails.
    fn previous(
        &self,
        level: Level,
        keys: &[RowKey],
    ) -> impl Future<Output = Result<Vec<Option<Row>>, StoreError>> + Send;

    /// For each key, the row of `level` of the same device just after it (the next
    /// data row, job or day), in the order of `keys`.
    ///
    /// # Errors
    /// [`StoreError`] if the query fails.
    fn next(
        &self,
        level: Level,
        keys: &[RowKey],
    ) -> impl Future<Output = Result<Vec<Option<Row>>, StoreError>> + Send;

    /// Every constant.
    ///
    /// # Errors
    /// [`StoreError`] if the query fails.
    fn load_constants(&self) -> impl Future<Output = Result<Vec<Constant>, StoreError>> + Send;

    /// Every equation.
    ///
    /// # Errors
    /// [`StoreError`] if the query fails.
    fn load_equations(&self) -> impl Future<Output = Result<Vec<Equation>, StoreError>> + Send;

    /// Replaces every stored equation by `equations`, all at once: on PostgreSQL in one
    /// transaction (a reader sees the old set or the new one, never a mix).
    ///
    /// # Errors
    /// [`StoreError::Unsupported`] on QuestDB, which has neither `DELETE` nor
    /// transactions across statements (use [`Store::merge_equations`]);
    /// [`StoreError::Query`] if a statement fails, and then nothing is changed.
    fn replace_equations(
        &mut self,
        equations: &[Equation],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Adds each equation, first removing the stored equations it replaces: on
    /// PostgreSQL in one transaction; on QuestDB one equation at a time (a replaced
    /// equation is updated in place), so a failure midway leaves the equations before it
    /// merged, and running the same merge again completes it.
    ///
    /// # Errors
    /// [`StoreError::Query`] if a statement fails.
    fn merge_equations(
        &mut self,
        equations: &[MergedEquation],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The current [`Revision`] of the equations and constants: cheap (one tiny query),
    /// so the daemon asks before every batch and reloads only when it changed. Read it
    /// *before* loading the equations, so a change made meanwhile is seen next time.
    ///
    /// # Errors
    /// [`StoreError`] if the query fails.
    fn revision(&self) -> impl Future<Output = Result<Revision, StoreError>> + Send;

    /// Writes a batch back under the guard (see the module docs).
    ///
    /// # Errors
    /// [`StoreError`] if a statement fails; on PostgreSQL nothing of the batch is then
    /// written.
    fn write_back(
        &mut self,
        batch: &WriteBatch,
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;

    /// Backlog, counts and the `latest_errors` newest error records.
    ///
    /// # Errors
    /// [`StoreError`] if a query fails.
    fn status(
        &self,
        latest_errors: usize,
    ) -> impl Future<Output = Result<Status, StoreError>> + Send;

    /// Sets `recalc = 1` on the rows of `level` in `ranges` that are not flagged already
    /// (`recalc <= 0`, or NULL on QuestDB), so that the next batch recomputes them as if
    /// a producer had flagged them (`recalcd reflag`); rows already flagged keep their
    /// value. Returns how many rows it flagged.
    ///
    /// # Errors
    /// [`StoreError`] if a statement fails; on PostgreSQL nothing is flagged then.
    fn reflag(
        &mut self,
        level: Level,
        ranges: &ReflagRanges,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Replaces the recorded equation problems with `problems` (what a load left out);
    /// a problem recorded before keeps its first `at`.
    ///
    /// # Errors
    /// [`StoreError`] if a statement fails.
    fn record_problems(
        &self,
        problems: &[EquationProblem],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes the error records older than `before` (UTC), except each failed row's
    /// current ones (see [`StoredError::current`]); returns how many were deleted.
    ///
    /// # Errors
    /// [`StoreError`] if the statement fails, or the dialect cannot delete rows.
    fn prune_errors(
        &self,
        before: NaiveDateTime,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Rows flagged or failed with `datetime` in `from .. to`, of device `id` or all,
    /// per level.
    ///
    /// # Errors
    /// [`StoreError`] if a query fails.
    fn unsettled_between(
        &self,
        from: NaiveDateTime,
        to: NaiveDateTime,
        id: Option<i32>,
    ) -> impl Future<Output = Result<Vec<Unsettled>, StoreError>> + Send;

    /// Whether device `id` has any row, constant or own equation.
    ///
    /// # Errors
    /// [`StoreError`] if a query fails.
    fn device_known(&self, id: i32) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// A store of the dialect detected (or forced) at [`connect`].
#[derive(Debug)]
pub enum AnyStore {
    /// PostgreSQL.
    Postgres(PgStore),
    /// QuestDB.
    QuestDb(QuestStore),
}

impl AnyStore {
    /// Inserts constants and equations (see [`PgStore::insert_definitions`]).
    ///
    /// # Errors
    /// [`StoreError::Query`] if an insert fails.
    pub async fn insert_definitions(
        &mut self,
        constants: &[Constant],
        equations: &[Equation],
    ) -> Result<(), StoreError> {
        data_dispatch!(self, s => s.insert_definitions(constants, equations).await)
    }

    /// The user tables (data, job, day, constants, equations) that hold at least one row.
    ///
    /// # Errors
    /// [`StoreError::Query`] if a query fails.
    pub async fn tables_holding_rows(&self) -> Result<Vec<String>, StoreError> {
        data_dispatch!(self, s => s.tables_holding_rows().await)
    }
}

impl Store for AnyStore {
    fn dialect(&self) -> Dialect {
        data_dispatch!(self, s => s.dialect())
    }
    async fn migrate(&mut self) -> Result<MigrateReport, StoreError> {
        data_dispatch!(self, s => s.migrate().await)
    }
    async fn check_schema(&self) -> Result<(), StoreError> {
        data_dispatch!(self, s => s.check_schema().await)
    }
    async fn poll_flagged(
        &self,
        level: Level,
        after: Option<RowKey>,
        limit: usize,
    ) -> Result<Vec<Row>, StoreError> {
        data_dispatch!(self, s => s.poll_flagged(level, after, limit).await)
    }
    async fn lease(&mut self, after: &Sweep, limit: usize) -> Result<Lease, StoreError> {
        data_dispatch!(self, s => s.lease(after, limit).await)
    }
    async fn poll_leased(
        &self,
        level: Level,
        lease: &Lease,
        after: Option<RowKey>,
        limit: usize,
    ) -> Result<Vec<Flag>, StoreError> {
        data_dispatch!(self, s => s.poll_leased(level, lease, after, limit).await)
    }
    async fn release(&mut self, lease: Lease) -> Result<(), StoreError> {
        data_dispatch!(self, s => s.release(lease).await)
    }
    async fn wakeups(&self) -> Result<Option<Wakeups>, StoreError> {
        data_dispatch!(self, s => s.wakeups().await)
    }
    async fn open_writer(&self) -> Result<Option<Self>, StoreError> {
        Ok(match self {
            AnyStore::Postgres(s) => s.open_writer().await?.map(AnyStore::Postgres),
            AnyStore::QuestDb(s) => s.open_writer().await?.map(AnyStore::QuestDb),
        })
    }
    async fn load_rows(&self, level: Level, keys: &[RowKey]) -> Result<Vec<Row>, StoreError> {
        data_dispatch!(self, s => s.load_rows(level, keys).await)
    }
    async fn load_job_rows(&self, jobs: &[(i32, NaiveDateTime)]) -> Result<Vec<Row>, StoreError> {
        data_dispatch!(self, s => s.load_job_rows(jobs).await)
    }
    async fn load_in_ranges(
        &self,
        level: Level,
        ranges: &[TimeRange],
    ) -> Result<Vec<Row>, StoreError> {
        data_dispatch!(self, s => s.load_in_ranges(level, ranges).await)
    }
    async fn flagged_jobs_in(
        &self,
        ranges: &[TimeRange],
        except: &[(i32, NaiveDateTime)],
    ) -> Result<Vec<(i32, NaiveDateTime)>, StoreError> {
        data_dispatch!(self, s => s.flagged_jobs_in(ranges, except).await)
    }
    async fn load_between(
        &self,
        level: Level,
        from: NaiveDateTime,
        to: NaiveDateTime,
    ) -> Result<Vec<Row>, StoreError> {
        data_dispatch!(self, s => s.load_between(level, from, to).await)
    }
    async fn previous(
        &self,
        level: Level,
        keys: &[RowKey],
    ) -> Result<Vec<Option<Row>>, StoreError> {
        data_dispatch!(self, s => s.previous(level, keys).await)
    }
    async fn next(&self, level: Level, keys: &[RowKey]) -> Result<Vec<Option<Row>>, StoreError> {
        data_dispatch!(self, s => s.next(level, keys).await)
    }
    async fn load_constants(&self) -> Result<Vec<Constant>, StoreError> {
        data_dispatch!(self, s => s.load_constants().await)
    }
    async fn load_equations(&self) -> Result<Vec<Equation>, StoreError> {
        data_dispatch!(self, s => s.load_equations().await)
    }
    async fn replace_equations(&mut self, equations: &[Equation]) -> Result<(), StoreError> {
        data_dispatch!(self, s => s.replace_equations(equations).await)
    }
    async fn merge_equations(&mut self, equations: &[MergedEquation]) -> Result<(), StoreError> {
        data_dispatch!(self, s => s.merge_equations(equations).await)
    }
    async fn revision(&self) -> Result<Revision, StoreError> {
        data_dispatch!(self, s => s.revision().await)
    }
    async fn write_back(&mut self, batch: &WriteBatch) -> Result<WriteOutcome, StoreError> {
        data_dispatch!(self, s => s.write_back(batch).await)
    }
    async fn status(&self, latest_errors: usize) -> Result<Status, StoreError> {
        data_dispatch!(self, s => s.status(latest_errors).await)
    }
    async fn reflag(&mut self, level: Level, ranges: &ReflagRanges) -> Result<u64, StoreError> {
        data_dispatch!(self, s => s.reflag(level, ranges).await)
    }
    async fn record_problems(&self, problems: &[EquationProblem]) -> Result<(), StoreError> {
        data_dispatch!(self, s => s.record_problems(problems).await)
    }
    async fn prune_errors(&self, before: NaiveDateTime) -> Result<u64, StoreError> {
        data_dispatch!(self, s => s.prune_errors(before).await)
    }
    async fn unsettled_between(
        &self,
        from: NaiveDateTime,
        to: NaiveDateTime,
        id: Option<i32>,
    ) -> Result<Vec<Unsettled>, StoreError> {
        data_dispatch!(self, s => s.unsettled_between(from, to, id).await)
    }
    async fn device_known(&self, id: i32) -> Result<bool, StoreError> {
        data_dispatch!(self, s => s.device_known(id).await)
    }
}

/// Connects to the configured store and detects its dialect (unless forced).
///
/// QuestDB is recognised by `SELECT version()` ending in `QuestDB`.
///
/// # Errors
/// [`StoreError::BadUrl`], [`StoreError::Connect`], [`StoreError::ConnectTimeout`], or
/// a failing detection query.
pub async fn connect(config: &Config) -> Result<AnyStore, StoreError> {
    let client = open_client(&config.database).await?;
    let dialect = match config.database.dialect {
        DialectChoice::Forced(d) => d,
        DialectChoice::Auto => {
            let row =
                client
                    .query_one("SELECT version()", &[])
                    .await
                    .map_err(StoreError::query(
                        "detecting the dialect (SELECT version())",
                    ))?;
            let version: String = row.try_get(0).map_err(StoreError::query(
                "detecting the dialect (SELECT version())",
            ))?;
            detect_dialect(&version)
        }
    };
    tracing::debug!(dialect = %dialect, url = %config.database.redacted_url(), "connected");
    Ok(match dialect {
        Dialect::Postgres => AnyStore::Postgres(PgStore::new(client, config).await?),
        Dialect::QuestDb => AnyStore::QuestDb(QuestStore::open(client, config).await?),
    })
}

/// The dialect a `version()` string belongs to.
pub fn detect_dialect(version: &str) -> Dialect {
    if version.trim_end().to_ascii_lowercase().ends_with("questdb") {
        Dialect::QuestDb
    } else {
        Dialect::Postgres
    }
}

/// Opens one connection (no TLS) and drives it on a background task.
pub(crate) async fn open_client(
    database: &crate::config::DatabaseConfig,
) -> Result<tokio_postgres::Client, StoreError> {
    let (client, connection) = open_connection(database).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "database connection closed");
        }
    });
    Ok(client)
}

/// Where each level's sweep over the flagged rows continues (data, job, day; see
/// [`Store::poll_flagged`]); `None` to start from the oldest flag.
pub type Sweep = [Option<RowKey>; 3];

/// Where the sweep of [`Store::poll_flagged`] continues after a batch with these keys:
/// its latest by `(datetime, id)`.
pub fn sweep_cursor(keys: impl IntoIterator<Item = RowKey>) -> Option<RowKey> {
    keys.into_iter().max_by_key(|k| (k.datetime, k.id))
}

/// Compares the applied schema version with the latest embedded one.
pub(crate) fn check_version(found: i32, dialect: Dialect) -> Result<(), StoreError> {
    let needed = migrate::latest_version(dialect);
    if found < needed {
        Err(StoreError::Outdated { found, needed })
    } else if found > needed {
        Err(StoreError::TooNew {
            found,
            known: needed,
        })
    } else {
        Ok(())
    }
}

/// A connection to drive: await it, or poll its messages (notifications).
pub(crate) type Connection =
    tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>;

/// Opens one connection (no TLS); the caller drives it.
pub(crate) async fn open_connection(
    database: &crate::config::DatabaseConfig,
) -> Result<(tokio_postgres::Client, Connection), StoreError> {
    let url = database.redacted_url();
    let mut pg: tokio_postgres::Config =
        database.url.parse().map_err(|source| StoreError::BadUrl {
            url: url.clone(),
            source,
        })?;
    let timeout = database.connect_timeout;
    pg.connect_timeout(timeout);
    let connecting = pg.connect(tokio_postgres::NoTls);
    match tokio::time::timeout(timeout, connecting).await {
        Err(_) => Err(StoreError::ConnectTimeout { url, timeout }),
        Ok(Err(source)) => Err(StoreError::Connect { url, source }),
        Ok(Ok(c)) => Ok(c),
    }
}

/// Decodes `at, type, id, name, problem` (shared by both dialects).
pub(crate) fn equation_problem(
    r: &tokio_postgres::Row,
    what: &str,
) -> Result<EquationProblem, StoreError> {
    let q = StoreError::query;
    Ok(EquationProblem {
        at: r.try_get(0).map_err(q(what))?,
        ty: r.try_get(1).map_err(q(what))?,
        id: r.try_get(2).map_err(q(what))?,
        name: r.try_get(3).map_err(q(what))?,
        problem: r.try_get(4).map_err(q(what))?,
    })
}

/// Columns read for a [`Flag`], in [`flag_from`]'s order (and [`row_from`]'s).
pub(crate) const FLAG_COLUMNS: &str = "datetime, data_time, id";

/// A [`Flag`] from a row selected as [`FLAG_COLUMNS`].
pub(crate) fn flag_from(r: &tokio_postgres::Row, what: &str) -> Result<Flag, StoreError> {
    let bad = |e| StoreError::Query {
        what: what.to_string(),
        source: e,
    };
    let datetime: Option<NaiveDateTime> = r.try_get(0).map_err(bad)?;
    let id: Option<i32> = r.try_get(2).map_err(bad)?;
    let (Some(datetime), Some(id)) = (datetime, id) else {
        return Err(StoreError::Unexpected {
            what: what.to_string(),
            detail: "a row has no `datetime` or `id`".into(),
        });
    };
    let data_time: Option<NaiveDateTime> = r.try_get(1).map_err(bad)?;
    Ok(Flag {
        key: RowKey { id, datetime },
        data_time: data_time.unwrap_or(datetime),
    })
}

/// The version each row of a committed write-back carries, as the store will read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrittenVersions {
    /// Every row written carries this one (PostgreSQL: the writing transaction's id,
    /// which is each row's new `xmin`).
    All(RowVersion),
    /// Each row's version is a hash of its content as written (QuestDB, whose rows
    /// have no version of their own: see [`content_version`]).
    Content,
}

impl WrittenVersions {
    /// The version `row`, as written by this write-back, carries now.
    pub fn of(self, row: &Row) -> RowVersion {
        match self {
            WrittenVersions::All(v) => v,
            WrittenVersions::Content => content_version(row),
        }
    }
}

/// The version of a row where the store keeps none (QuestDB): a hash of everything but
/// its key and its version — `data_time`, `state`, `user`, `gps`, `recalc`, `conjoined`.
/// Stable within one build of recalcd (the hasher has fixed keys), which is all the
/// guard needs: versions are compared within one process.
pub fn content_version(r: &Row) -> RowVersion {
    content_hash(
        r.data_time,
        r.state,
        r.user.as_deref(),
        r.gps.as_deref(),
        r.recalc,
        &r.conjoined,
    )
}

/// [`content_version`] of a row's content given column by column, borrowed.
fn content_hash(
    data_time: NaiveDateTime,
    state: Option<i32>,
    user: Option<&str>,
    gps: Option<&str>,
    recalc: i32,
    conjoined: &str,
) -> RowVersion {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    (data_time, state, user, gps, recalc, conjoined).hash(&mut h);
    RowVersion::of(h.finish() as i64)
}

/// The key and [`content_version`] of a row selected with [`ROW_COLUMNS`], read as
/// [`row_from`] reads it (NULLs as 0 / empty, text lossy where it is not UTF-8) but
/// without building the row: the text is hashed where it lies in the driver's buffer.
pub(crate) fn content_version_from(
    r: &tokio_postgres::Row,
    what: &str,
) -> Result<(RowKey, RowVersion), StoreError> {
    let bad = |e| StoreError::Query {
        what: what.to_string(),
        source: e,
    };
    let Flag { key, data_time } = flag_from(r, what)?;
    let text = |i: usize| -> Result<Option<std::borrow::Cow<'_, str>>, StoreError> {
        let raw: Option<RawText> = r.try_get(i).map_err(bad)?;
        Ok(raw.map(|t| String::from_utf8_lossy(t.0)))
    };
    let (user, gps, conjoined) = (text(4)?, text(5)?, text(7)?);
    let version = content_hash(
        data_time,
        r.try_get(3).map_err(bad)?,
        user.as_deref(),
        gps.as_deref(),
        r.try_get::<_, Option<i32>>(6).map_err(bad)?.unwrap_or(0),
        conjoined.as_deref().unwrap_or_default(),
    );
    Ok((key, version))
}

/// Columns read for every data, job and day row, in [`row_from`]'s order.
pub(crate) const ROW_COLUMNS: &str =
    r#"datetime, data_time, id, state, "user", gps, recalc, conjoined"#;

/// Decodes a row selected with [`ROW_COLUMNS`] first; NULLs the universal schema does
/// not expect (QuestDB has no NOT NULL) read as 0 / empty.
pub(crate) fn row_from(
    r: &tokio_postgres::Row,
    version: RowVersion,
    what: &str,
) -> Result<Row, StoreError> {
    let bad = |e| StoreError::Query {
        what: what.to_string(),
        source: e,
    };
    let Flag { key, data_time } = flag_from(r, what)?;
    let mut unreadable = None;
    let mut text = |i: usize, column: &str| -> Result<Option<String>, StoreError> {
        let t: Option<LenientText> = r.try_get(i).map_err(bad)?;
        Ok(t.map(|t| {
            if let (Some(at), None) = (t.invalid_at, &unreadable) {
                unreadable = Some(format!(
                    "column `{column}` is not valid UTF-8 (byte {at}); the row is kept as it is"
                ));
            }
            t.text
        }))
    };
    let user = text(4, "user")?;
    let gps = text(5, "gps")?;
    let conjoined = text(7, "conjoined")?.unwrap_or_default();
    Ok(Row {
        datetime: key.datetime,
        data_time,
        id: key.id,
        state: r.try_get(3).map_err(bad)?,
        user,
        gps,
        recalc: r.try_get::<_, Option<i32>>(6).map_err(bad)?.unwrap_or(0),
        conjoined,
        version,
        unreadable,
    })
}

/// A text column decoded without failing on bytes that are not UTF-8 (a `SQL_ASCII`
/// database stores any bytes): one such row must not fail every read that meets it.
struct LenientText {
    /// The text, lossy where the bytes are not UTF-8.
    text: String,
    /// The offset of the first byte that is not UTF-8, if any.
    invalid_at: Option<usize>,
}

impl<'a> tokio_postgres::types::FromSql<'a> for LenientText {
    fn from_sql(
        _: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(match std::str::from_utf8(raw) {
            Ok(text) => LenientText {
                text: text.to_owned(),
                invalid_at: None,
            },
            Err(e) => LenientText {
                text: String::from_utf8_lossy(raw).into_owned(),
                invalid_at: Some(e.valid_up_to()),
            },
        })
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        <String as tokio_postgres::types::FromSql>::accepts(ty)
    }
}

/// A text column's bytes as the driver holds them (decoded by the reader: see
/// [`content_version_from`]).
struct RawText<'a>(&'a [u8]);

impl<'a> tokio_postgres::types::FromSql<'a> for RawText<'a> {
    fn from_sql(
        _: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawText(raw))
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        <String as tokio_postgres::types::FromSql>::accepts(ty)
    }
}

/// Decodes `at, level, id, datetime, equation, reason` (shared by both dialects);
/// [`StoredError::current`] is left `false` for the dialect to work out.
pub(crate) fn stored_error(r: &tokio_postgres::Row, what: &str) -> Result<StoredError, StoreError> {
    let q = StoreError::query;
    let level: String = r.try_get(1).map_err(q(what))?;
    Ok(StoredError {
        at: r.try_get(0).map_err(q(what))?,
        current: false,
        record: ErrorRecord {
            level: Level::parse(&level).ok_or_else(|| StoreError::Unexpected {
                what: what.to_string(),
                detail: format!("unknown level `{level}`"),
            })?,
            key: RowKey {
                id: r.try_get(2).map_err(q(what))?,
                datetime: r.try_get(3).map_err(q(what))?,
            },
            equation: r.try_get(4).map_err(q(what))?,
            reason: r.try_get(5).map_err(q(what))?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialect_detection() {
        assert_eq!(
            detect_dialect("PostgreSQL 12.3, compiled by Visual C++ build 1914, 64-bit, QuestDB"),
            Dialect::QuestDb
        );
        assert_eq!(
            detect_dialect("PostgreSQL 15.20 (Debian 15.20-0+deb12u1) on x86_64-pc-linux-gnu"),
            Dialect::Postgres
        );
    }

    #[test]
    fn levels_round_trip() {
        for l in Level::ALL {
            assert_eq!(Level::parse(l.as_str()), Some(l));
        }
        assert_eq!(Level::parse("week"), None);
    }
}
