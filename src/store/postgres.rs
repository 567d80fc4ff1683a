//! The PostgreSQL dialect (TimescaleDB included).
//!
//! Reads batch many keys into one statement with `unnest` arrays (`LATERAL` for the
//! previous rows), so a batch costs a few round trips whatever its size.
//!
//! **Write-back** is one transaction per batch: each level's rows are streamed with
//! binary `COPY` into a session-local staging table (`ON COMMIT DELETE ROWS`, created
//! once per connection), then one set-based statement per level updates the rows whose
//! `xmin` still equals the version recalcd read, inserts the rows recalcd creates
//! (`ON CONFLICT DO NOTHING`), and counts what it did; when that falls short of the
//! staged rows, the staged rows whose `xmin` is not this transaction's are those the
//! guard skipped. Error records of written rows are copied into the
//! errors table in the same transaction. The transaction commits with
//! `synchronous_commit = off`: a batch lost in a crash is lost whole, its rows are still
//! flagged, and recomputing them gives the same result.
//!
//! **The guard** is atomic here: a row's `xmin` changes with every producer `UPDATE`
//! (even one that writes identical values, e.g. a re-flag). If a producer updates a row
//! between recalcd's read and its write, the `UPDATE`'s `xmin` condition no longer
//! holds; if the producer's transaction is still open, PostgreSQL waits for it and
//! re-checks the condition on the new row version (READ COMMITTED), so it is skipped too.
//! A producer writing after recalcd's commit simply overwrites recalcd's result, which
//! is the producer's right.
//!
//! **Several workers** lease their devices with advisory locks ([`lease`]).
//!
//! **Wake-ups**: the daemon `LISTEN`s on a connection of its own to the channel named
//! after the data table, notified by the triggers of migration 0003 after producer
//! statements; recalcd's own sessions set `recalcd.session = on` and notify nobody.

use std::collections::HashMap;
use std::pin::{pin, Pin};

use bytes::{BufMut, Bytes, BytesMut};
use chrono::NaiveDateTime;
use futures_util::SinkExt;
use tokio_postgres::types::{IsNull, ToSql, Type};
use tokio_postgres::{Client, CopyInSink};

use super::migrate::{migrations, render};
use super::schema::{self, TypeNames};
use super::{
    check_version, equation_problem, flag_from, open_client, row_from, stored_error, Backlog,
    Constant, Direction, Equation, EquationProblem, Flag, Lease, Level, MergedEquation,
    MigrateReport, ReflagRanges, Revision, Row, RowKey, RowVersion, Status, Store, StoreError,
    Sweep, TimeRange, Unsettled, Wakeups, WriteBatch, WriteOutcome, WrittenVersions, FLAG_COLUMNS,
    ROW_COLUMNS,
};
use crate::config::{Config, DatabaseConfig, Dialect, TableNames, WorkerConfig};

pub mod index;
pub mod lease;
mod listen;
mod reflag;
mod similarity;
mod subsequence;
mod vptree;

/// Serialises concurrent `recalcd migrate` runs (`pg_advisory_xact_lock`).
const MIGRATION_LOCK: i64 = 0x7265_6361_6c63_6401;

/// A PostgreSQL store: one connection and the configured table names.
pub struct PgStore {
    /// The connection; write-back takes it `&mut` for its transaction.
    client: Client,
    /// Table names from the configuration.
    tables: TableNames,
    /// Whether this session's staging tables exist yet.
    staging_ready: bool,
    /// The static split of the devices (`[worker]`), applied on top of the leases.
    worker: WorkerConfig,
    /// The advisory-lock namespace of this installation ([`lease::namespace`]).
    namespace: i32,
    /// How to open the listening connection of [`Store::wakeups`] and the writer's.
    database: DatabaseConfig,
    /// What the write-back's transaction sets first: `synchronous_commit` and, where
    /// the server has it, `enable_memoize`.
    write_settings: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("tables", &self.tables)
            .finish()
    }
}

/// The staging table of a level (a temporary table, private to the session).
fn staging(level: Level) -> &'static str {
    match level {
        Level::Data => "recalcd_stage_data",
        Level::Job => "recalcd_stage_job",
        Level::Day => "recalcd_stage_day",
    }
}

/// Column types of a staged row, in `COPY` order.
const STAGE_TYPES: [Type; 9] = [
    Type::TIMESTAMP,
    Type::TIMESTAMP,
    Type::INT4,
    Type::INT4,
    Type::TEXT,
    Type::TEXT,
    Type::INT4,
    Type::TEXT,
    Type::INT8,
];

/// How `information_schema.columns.data_type` spells recalcd's column types.
const TYPES: TypeNames = TypeNames {
    timestamp: "timestamp without time zone",
    int: "integer",
    text: "text",
    symbol: "text",
};

/// Rows in PostgreSQL's binary `COPY` format, handed to the server in pieces of about
/// [`COPY_PIECE`] bytes. (`tokio_postgres`'s `BinaryCopyInWriter` sends every 4 kB,
/// which costs a batch of 10,000 rows a few thousand hand-overs to the connection
/// task and as many small socket writes.)
struct CopyRows {
    buf: BytesMut,
    types: &'static [Type],
    /// What the rows are, for errors.
    what: String,
}

/// About how many bytes [`CopyRows`] sends at a time.
const COPY_PIECE: usize = 1 << 20;

impl CopyRows {
    /// The signature, flags and header extension of the format, then rows of `types`.
    fn new(types: &'static [Type], what: &str) -> CopyRows {
        let mut buf = BytesMut::with_capacity(COPY_PIECE + (COPY_PIECE >> 2));
        buf.put_slice(b"PGCOPY\n\xff\r\n\0");
        buf.put_i32(0);
        buf.put_i32(0);
        CopyRows {
            buf,
            types,
            what: what.to_string(),
        }
    }

    /// Appends a row: its field count, then each field's length (-1 for NULL) and bytes.
    fn row(&mut self, values: &[&(dyn ToSql + Sync)]) -> Result<(), StoreError> {
        let fields = i16::try_from(values.len()).unwrap_or(i16::MAX);
        self.buf.put_i16(fields);
        for (value, ty) in values.iter().zip(self.types) {
            let at = self.buf.len();
            self.buf.put_i32(0);
            let len = match value.to_sql_checked(ty, &mut self.buf) {
                Ok(IsNull::Yes) => -1,
                Ok(IsNull::No) => i32::try_from(self.buf.len() - at - 4).unwrap_or(i32::MAX),
                Err(e) => {
                    return Err(StoreError::Unexpected {
                        what: self.what.clone(),
                        detail: format!("a {ty} value could not be encoded: {e}"),
                    })
                }
            };
            self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
        Ok(())
    }

    /// The rows so far, once they fill a piece.
    fn piece(&mut self) -> Option<Bytes> {
        (self.buf.len() >= COPY_PIECE).then(|| self.buf.split().freeze())
    }

    /// Sends a full piece, if there is one.
    async fn send_full(&mut self, mut sink: Pin<&mut CopyInSink<Bytes>>) -> Result<(), StoreError> {
        if let Some(piece) = self.piece() {
            sink.send(piece)
                .await
                .map_err(StoreError::query(&self.what))?;
        }
        Ok(())
    }

    /// Sends the rest and the end marker, and ends the `COPY`.
    async fn finish(mut self, mut sink: Pin<&mut CopyInSink<Bytes>>) -> Result<u64, StoreError> {
        self.buf.put_i16(-1);
        let rest = self.buf.split().freeze();
        sink.send(rest)
            .await
            .map_err(StoreError::query(&self.what))?;
        sink.finish().await.map_err(StoreError::query(&self.what))
    }
}

/// Column types of an error record, in `COPY` order.
const ERROR_TYPES: [Type; 6] = [
    Type::TIMESTAMP,
    Type::TEXT,
    Type::INT4,
    Type::TIMESTAMP,
    Type::TEXT,
    Type::TEXT,
];

/// Text columns may also be `varchar`; the driver reads both as `String`.
fn type_matches(expected: &str, found: &str) -> bool {
    expected == found || (expected == "text" && found == "character varying")
}

impl PgStore {
    /// Wraps a connected client (see [`super::connect`]) and applies the session
    /// settings (`statement_timeout`, UTC).
    ///
    /// # Errors
    /// [`StoreError::Query`] if a setting is refused.
    pub async fn new(client: Client, config: &Config) -> Result<Self, StoreError> {
        Self::session(client, &config.database, &config.tables, config.worker).await
    }

    /// [`PgStore::new`] from the parts of the configuration a store keeps.
    async fn session(
        client: Client,
        database: &DatabaseConfig,
        tables: &TableNames,
        worker: WorkerConfig,
    ) -> Result<Self, StoreError> {
        // `recalcd.session` tells the notify trigger (migration 0003) that the write is
        // recalcd's own: nobody needs waking for it.
        // JIT compilation pays for itself on long analytic queries; recalcd's are many
        // short set-based ones, which it would only slow down.
        // A `SQL_ASCII` database stores any bytes; the server checks what it sends
        // against the client encoding and would refuse a whole read for one row that
        // is not UTF-8. With the client encoding `SQL_ASCII` too it sends the bytes as
        // stored, and the row decoder names such a row instead (`Row::unreadable`).
        let mut settings = String::from(
            "SET TIME ZONE 'UTC'; SET recalcd.session = 'on'; SET jit = off;
             SELECT set_config('client_encoding', 'SQL_ASCII', false)
              WHERE current_setting('server_encoding') = 'SQL_ASCII';",
        );
        if let Some(t) = database.statement_timeout {
            settings.push_str(&format!("SET statement_timeout = {};", t.as_millis()));
        }
        client
            .batch_execute(&settings)
            .await
            .map_err(StoreError::query("applying the session settings"))?;
        let version: String = client
            .query_one("SELECT current_setting('server_version_num')", &[])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(StoreError::query("reading the server version"))?;
        // The write-back's joins of the staged rows with their table are always best
        // as one probe of the key's index per staged row (a batch is small next to
        // the table), and the planner, knowing nothing of a staging table, would hash
        // the whole table instead: hash and merge joins are off in its transaction
        // (cheaper than an `ANALYZE` of the staged rows per batch, which did the same).
        // Memoize (PostgreSQL 14 and later) caches the inner side of a nested loop for
        // repeated keys; the write-back's keys never repeat, and the planner, misled by
        // the `xmin` condition, would still put one in (about 20% of the statement).
        let mut write_settings = String::from(
            "SET LOCAL synchronous_commit = off; SET LOCAL enable_hashjoin = off;
             SET LOCAL enable_mergejoin = off;",
        );
        if version.parse::<u32>().is_ok_and(|v| v >= 140_000) {
            write_settings.push_str(" SET LOCAL enable_memoize = off;");
        }
        Ok(PgStore {
            client,
            tables: tables.clone(),
            staging_ready: false,
            worker,
            namespace: lease::namespace(tables),
            database: database.clone(),
            write_settings,
        })
    }

    fn table(&self, level: Level) -> &str {
        level.table(&self.tables)
    }

    /// SQL that is true when the error record aliased `e` is current: its row is still at
    /// `recalc = -1` and no newer record of the row exists (see [`StoredError::current`]).
    ///
    /// [`StoredError::current`]: super::StoredError::current
    fn current_error(&self, e: &str) -> String {
        let failed = |level: Level| {
            format!(
                r#"EXISTS (SELECT 1 FROM "{}" r WHERE r.id = {e}.id AND r.datetime = {e}.datetime AND r.recalc < 0)"#,
                self.table(level)
            )
        };
        format!(
            r#"(CASE {e}.level WHEN 'data' THEN {} WHEN 'job' THEN {} WHEN 'day' THEN {} ELSE false END
                AND NOT EXISTS (SELECT 1 FROM "{}" n WHERE n.level = {e}.level AND n.id = {e}.id
                                  AND n.datetime = {e}.datetime AND n.at > {e}.at))"#,
            failed(Level::Data),
            failed(Level::Job),
            failed(Level::Day),
            self.tables.errors
        )
    }

    /// Inserts constants and equations (`recalcd demo` loads its definitions this way).
    ///
    /// # Errors
    /// [`StoreError::Query`] if an insert fails; nothing is inserted then.
    pub async fn insert_definitions(
        &mut self,
        constants: &[Constant],
        equations: &[Equation],
    ) -> Result<(), StoreError> {
        let what = "inserting constants and equations";
        let tx = self
            .client
            .transaction()
            .await
            .map_err(StoreError::query(what))?;
        let sql = format!(
            r#"INSERT INTO "{}" (id, name, value) VALUES ($1, $2, $3)"#,
            self.tables.constants
        );
        let stmt = tx.prepare(&sql).await.map_err(StoreError::query(what))?;
        for c in constants {
            tx.execute(&stmt, &[&c.id, &c.name, &c.value])
                .await
                .map_err(StoreError::query(what))?;
        }
        let sql = format!(
            r#"INSERT INTO "{}" ("type", id, name, eq) VALUES ($1, $2, $3, $4)"#,
            self.tables.equations
        );
        let stmt = tx.prepare(&sql).await.map_err(StoreError::query(what))?;
        for e in equations {
            tx.execute(&stmt, &[&e.kind, &e.id, &e.name, &e.eq])
                .await
                .map_err(StoreError::query(what))?;
        }
        tx.commit().await.map_err(StoreError::query(what))
    }

    /// The user tables (data, job, day, constants, equations) that hold at least one row.
    ///
    /// # Errors
    /// [`StoreError::Query`] if a query fails.
    pub async fn tables_holding_rows(&self) -> Result<Vec<String>, StoreError> {
        let t = &self.tables;
        let mut out = Vec::new();
        for table in [&t.data, &t.job, &t.day, &t.constants, &t.equations] {
            let sql = format!(r#"SELECT 1 FROM "{table}" LIMIT 1"#);
            let rows = self
                .client
                .query(&sql, &[])
                .await
                .map_err(StoreError::query(format!("looking into table `{table}`")))?;
            if !rows.is_empty() {
                out.push(table.clone());
            }
        }
        Ok(out)
    }

    /// The rows `sql` selects (as [`t_columns`]), in (id, datetime) order. Sorted here,
    /// not by an `ORDER BY`: the server would sort the whole rows, and a batch's worth
    /// of them (10,000 rows, a few MB) outgrows the default `work_mem` and goes to disk.
    async fn rows(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        what: &str,
    ) -> Result<Vec<Row>, StoreError> {
        let rows = self
            .client
            .query(sql, params)
            .await
            .map_err(StoreError::query(what))?;
        let mut rows = rows
            .iter()
            .map(|r| pg_row(r, what))
            .collect::<Result<Vec<Row>, StoreError>>()?;
        rows.sort_by_key(|r| (r.id, r.datetime));
        Ok(rows)
    }

    async fn schema_version(&self) -> Result<i32, StoreError> {
        let sql = format!(
            r#"SELECT coalesce(max(version), 0) FROM "{}""#,
            self.tables.migrations
        );
        let row = self
            .client
            .query_one(&sql, &[])
            .await
            .map_err(StoreError::query("reading the applied migrations"))?;
        row.try_get(0)
            .map_err(StoreError::query("reading the applied migrations"))
    }

    async fn ensure_staging(&mut self) -> Result<(), StoreError> {
        if self.staging_ready {
            return Ok(());
        }
        let mut sql = String::new();
        for level in Level::ALL {
            sql.push_str(&format!(
                r#"CREATE TEMP TABLE IF NOT EXISTS {} (
                    datetime timestamp NOT NULL, data_time timestamp NOT NULL,
                    id integer NOT NULL, state integer, "user" text, gps text,
                    recalc integer NOT NULL, conjoined text, version bigint
                ) ON COMMIT DELETE ROWS;"#,
                staging(level)
            ));
        }
        self.client
            .batch_execute(&sql)
            .await
            .map_err(StoreError::query("creating the staging tables"))?;
        self.staging_ready = true;
        Ok(())
    }

    /// `columns` of the `limit` oldest flagged rows of `level` (after `after`), of
    /// `devices` when given and of this worker's static share when one is configured,
    /// handed over in (id, datetime) order (sorted here, as in [`PgStore::rows`]).
    /// Oldest first: the partial index on (datetime, id) seeks straight to the cursor,
    /// and a batch's writes land on neighbouring pages (producers write in time order;
    /// one device's rows would touch a page per row).
    async fn poll_oldest<T: Polled>(
        &self,
        level: Level,
        columns: &str,
        devices: Option<&Vec<i32>>,
        after: Option<RowKey>,
        limit: usize,
    ) -> Result<Vec<T>, StoreError> {
        let what = format!("polling flagged {level} rows");
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&limit];
        let mut filter = lease::share_condition(&self.worker, "id");
        if let Some(devices) = &devices {
            params.push(devices);
            filter.push_str(&format!(" AND id = ANY(${})", params.len()));
        }
        if let Some(k) = &after {
            params.push(&k.datetime);
            params.push(&k.id);
            let n = params.len();
            filter.push_str(&format!(" AND (datetime, id) > (${}, ${n})", n - 1));
        }
        let sql = format!(
            r#"SELECT {columns} FROM "{}"
                WHERE recalc > 0{filter}
                ORDER BY datetime, id LIMIT $1"#,
            self.table(level)
        );
        let rows = self
            .client
            .query(&sql, &params)
            .await
            .map_err(StoreError::query(&what))?;
        let mut out = rows
            .iter()
            .map(|r| T::decode(r, &what))
            .collect::<Result<Vec<T>, StoreError>>()?;
        out.sort_by_key(T::key);
        Ok(out)
    }

    /// For each key, the row of `level` of the same device just before or after it.
    async fn neighbours(
        &self,
        level: Level,
        keys: &[RowKey],
        direction: Direction,
    ) -> Result<Vec<Option<Row>>, StoreError> {
        let (cmp, order) = direction.sql();
        let mut out = vec![None; keys.len()];
        if keys.is_empty() {
            return Ok(out);
        }
        let ids: Vec<i32> = keys.iter().map(|k| k.id).collect();
        let times: Vec<NaiveDateTime> = keys.iter().map(|k| k.datetime).collect();
        let sql = format!(
            r#"SELECT p.*, k_ord
                 FROM unnest($1::int4[], $2::timestamp[]) WITH ORDINALITY AS k(k_id, k_time, k_ord)
                CROSS JOIN LATERAL (
                      SELECT {} FROM "{}" t
                       WHERE t.id = k_id AND t.datetime {cmp} k_time
                       ORDER BY t.datetime {order} LIMIT 1) p"#,
            t_columns(),
            self.table(level)
        );
        let what = format!("loading the {} {level} rows", direction.word());
        let rows = self
            .client
            .query(&sql, &[&ids, &times])
            .await
            .map_err(StoreError::query(&what))?;
        for r in &rows {
            let ord: i64 = r.try_get(9).map_err(StoreError::query(&what))?;
            let slot = usize::try_from(ord - 1)
                .ok()
                .and_then(|i| out.get_mut(i))
                .ok_or_else(|| StoreError::Unexpected {
                    what: what.clone(),
                    detail: format!("ordinal {ord} out of range"),
                })?;
            *slot = Some(pg_row(r, &what)?);
        }
        Ok(out)
    }
}

/// What a poll reads: decoded from a row of its columns, handed over by key.
trait Polled: Sized {
    /// Decodes one row of the poll's answer (`what` names the poll in errors).
    fn decode(r: &tokio_postgres::Row, what: &str) -> Result<Self, StoreError>;
    /// The key the answer is sorted by.
    fn key(&self) -> RowKey;
}

impl Polled for Row {
    fn decode(r: &tokio_postgres::Row, what: &str) -> Result<Self, StoreError> {
        pg_row(r, what)
    }
    fn key(&self) -> RowKey {
        Row::key(self)
    }
}

impl Polled for Flag {
    fn decode(r: &tokio_postgres::Row, what: &str) -> Result<Self, StoreError> {
        flag_from(r, what)
    }
    fn key(&self) -> RowKey {
        self.key
    }
}

/// A row selected as `ROW_COLUMNS, xmin::text::bigint`.
fn pg_row(r: &tokio_postgres::Row, what: &str) -> Result<Row, StoreError> {
    let version: i64 = r.try_get(8).map_err(StoreError::query(what))?;
    row_from(r, RowVersion::of(version), what)
}

/// `ROW_COLUMNS` of alias `t` plus its version.
fn t_columns() -> String {
    let cols: Vec<String> = ROW_COLUMNS.split(", ").map(|c| format!("t.{c}")).collect();
    format!("{}, t.xmin::text::bigint", cols.join(", "))
}

/// Sorted, merged ranges: overlapping ranges of a device become one, so a join
/// returns every row once.
fn merge_ranges(ranges: &[TimeRange]) -> Vec<TimeRange> {
    let mut sorted: Vec<TimeRange> = ranges.iter().copied().filter(|r| r.from < r.to).collect();
    sorted.sort_by_key(|r| (r.id, r.from));
    let mut out: Vec<TimeRange> = Vec::with_capacity(sorted.len());
    for r in sorted {
        match out.last_mut() {
            Some(last) if last.id == r.id && r.from <= last.to => last.to = last.to.max(r.to),
            _ => out.push(r),
        }
    }
    out
}

/// Inserts `equations` into `table` with one statement.
async fn insert_equations<'a>(
    tx: &tokio_postgres::Transaction<'_>,
    table: &str,
    equations: impl Iterator<Item = &'a Equation>,
) -> Result<u64, tokio_postgres::Error> {
    let (mut kinds, mut ids, mut names, mut eqs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for e in equations {
        kinds.push(e.kind);
        ids.push(e.id);
        names.push(e.name.as_str());
        eqs.push(e.eq.as_str());
    }
    tx.execute(
        &format!(
            r#"INSERT INTO "{table}" ("type", id, name, eq)
               SELECT * FROM unnest($1::int4[], $2::int4[], $3::text[], $4::text[])"#
        ),
        &[&kinds, &ids, &names, &eqs],
    )
    .await
}

impl Store for PgStore {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn migrate(&mut self) -> Result<MigrateReport, StoreError> {
        let bookkeeping = format!(
            r#"CREATE TABLE IF NOT EXISTS "{}" (
                version integer PRIMARY KEY,
                name text NOT NULL,
                applied_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc'))"#,
            self.tables.migrations
        );
        let what = "creating the migrations table";
        let tx = self
            .client
            .transaction()
            .await
            .map_err(StoreError::query(what))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(StoreError::query(what))?;
        tx.batch_execute(&bookkeeping)
            .await
            .map_err(StoreError::query(what))?;
        tx.commit().await.map_err(StoreError::query(what))?;

        let mut applied = Vec::new();
        let is_applied = format!(
            r#"SELECT 1 FROM "{}" WHERE version = $1"#,
            self.tables.migrations
        );
        let record = format!(
            r#"INSERT INTO "{}" (version, name) VALUES ($1, $2)"#,
            self.tables.migrations
        );
        for m in migrations(Dialect::Postgres) {
            let what = format!("applying migration {:04}_{}", m.version, m.name);
            let tx = self
                .client
                .transaction()
                .await
                .map_err(StoreError::query(&what))?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await
                .map_err(StoreError::query(&what))?;
            let done = tx
                .query_opt(&is_applied, &[&m.version])
                .await
                .map_err(StoreError::query(&what))?;
            if done.is_some() {
                continue;
            }
            tx.batch_execute(&render(m, &self.tables))
                .await
                .map_err(StoreError::query(&what))?;
            tx.execute(&record, &[&m.version, &m.name])
                .await
                .map_err(StoreError::query(&what))?;
            tx.commit().await.map_err(StoreError::query(&what))?;
            tracing::info!(version = m.version, name = m.name, "migration applied");
            applied.push((m.version, m.name));
        }
        Ok(MigrateReport {
            applied,
            version: self.schema_version().await?,
        })
    }

    async fn check_schema(&self) -> Result<(), StoreError> {
        let mut expected = schema::expected(&self.tables, &TYPES);
        // PostgreSQL only: the revision counter its triggers bump (migration 2).
        expected.push((
            self.tables.revision.as_str(),
            vec![("one", "boolean"), ("revision", "bigint")],
        ));
        let names: Vec<&str> = expected.iter().map(|(t, _)| *t).collect();
        let what = "reading the table columns";
        let found = self
            .client
            .query(
                "SELECT table_name::text, column_name::text, data_type::text
                   FROM information_schema.columns
                  WHERE table_schema = current_schema() AND table_name = ANY($1)",
                &[&names],
            )
            .await
            .map_err(StoreError::query(what))?;
        let mut columns: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for r in &found {
            let table: String = r.try_get(0).map_err(StoreError::query(what))?;
            columns.entry(table).or_default().push((
                r.try_get(1).map_err(StoreError::query(what))?,
                r.try_get(2).map_err(StoreError::query(what))?,
            ));
        }
        for (table, _) in &expected {
            if !columns.contains_key(*table) {
                return Err(StoreError::MissingTable {
                    table: table.to_string(),
                });
            }
        }
        for (table, cols) in &expected {
            schema::check_columns(table, cols, &columns[*table], type_matches)?;
        }
        check_version(self.schema_version().await?, Dialect::Postgres)
    }

    async fn poll_flagged(
        &self,
        level: Level,
        after: Option<RowKey>,
        limit: usize,
    ) -> Result<Vec<Row>, StoreError> {
        let columns = format!("{ROW_COLUMNS}, xmin::text::bigint");
        self.poll_oldest::<Row>(level, &columns, None, after, limit)
            .await
    }

    async fn lease(&mut self, after: &Sweep, limit: usize) -> Result<Lease, StoreError> {
        lease::lease(
            &self.client,
            &self.tables,
            &self.worker,
            self.namespace,
            after,
            limit,
        )
        .await
    }

    async fn poll_leased(
        &self,
        level: Level,
        lease: &Lease,
        after: Option<RowKey>,
        limit: usize,
    ) -> Result<Vec<Flag>, StoreError> {
        let devices = match lease {
            Lease::Devices(devices) => Some(devices),
            Lease::Shard => None,
        };
        self.poll_oldest::<Flag>(level, FLAG_COLUMNS, devices, after, limit)
            .await
    }

    async fn release(&mut self, lease: Lease) -> Result<(), StoreError> {
        lease::release(&self.client, self.namespace, lease).await
    }

    async fn wakeups(&self) -> Result<Option<Wakeups>, StoreError> {
        listen::listen(&self.database, &self.tables).await.map(Some)
    }

    async fn open_writer(&self) -> Result<Option<Self>, StoreError> {
        let client = open_client(&self.database).await?;
        let writer = Self::session(client, &self.database, &self.tables, self.worker).await?;
        Ok(Some(writer))
    }

    async fn load_rows(&self, level: Level, keys: &[RowKey]) -> Result<Vec<Row>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut keys = keys.to_vec();
        keys.sort();
        keys.dedup();
        let ids: Vec<i32> = keys.iter().map(|k| k.id).collect();
        let times: Vec<NaiveDateTime> = keys.iter().map(|k| k.datetime).collect();
        let sql = format!(
            r#"SELECT {} FROM unnest($1::int4[], $2::timestamp[]) AS k(k_id, k_time)
                 JOIN "{}" t ON t.id = k_id AND t.datetime = k_time"#,
            t_columns(),
            self.table(level)
        );
        self.rows(&sql, &[&ids, &times], &format!("loading {level} rows"))
            .await
    }

    async fn load_job_rows(&self, jobs: &[(i32, NaiveDateTime)]) -> Result<Vec<Row>, StoreError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut jobs = jobs.to_vec();
        jobs.sort();
        jobs.dedup();
        let ids: Vec<i32> = jobs.iter().map(|j| j.0).collect();
        let starts: Vec<NaiveDateTime> = jobs.iter().map(|j| j.1).collect();
        let sql = format!(
            r#"SELECT {} FROM unnest($1::int4[], $2::timestamp[]) AS k(k_id, k_start)
                 JOIN "{}" t ON t.id = k_id AND t.data_time = k_start"#,
            t_columns(),
            self.tables.data
        );
        self.rows(&sql, &[&ids, &starts], "loading the data rows of jobs")
            .await
    }

    async fn load_in_ranges(
        &self,
        level: Level,
        ranges: &[TimeRange],
    ) -> Result<Vec<Row>, StoreError> {
        let ranges = merge_ranges(ranges);
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i32> = ranges.iter().map(|r| r.id).collect();
        let from: Vec<NaiveDateTime> = ranges.iter().map(|r| r.from).collect();
        let to: Vec<NaiveDateTime> = ranges.iter().map(|r| r.to).collect();
        let sql = format!(
            r#"SELECT {} FROM unnest($1::int4[], $2::timestamp[], $3::timestamp[])
                      AS k(k_id, k_from, k_to)
                 JOIN "{}" t ON t.id = k_id AND t.datetime >= k_from AND t.datetime < k_to"#,
            t_columns(),
            self.table(level)
        );
        self.rows(
            &sql,
            &[&ids, &from, &to],
            &format!("loading {level} rows in time ranges"),
        )
        .await
    }

    async fn flagged_jobs_in(
        &self,
        ranges: &[TimeRange],
        except: &[(i32, NaiveDateTime)],
    ) -> Result<Vec<(i32, NaiveDateTime)>, StoreError> {
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i32> = ranges.iter().map(|r| r.id).collect();
        let from: Vec<NaiveDateTime> = ranges.iter().map(|r| r.from).collect();
        let to: Vec<NaiveDateTime> = ranges.iter().map(|r| r.to).collect();
        let except_ids: Vec<i32> = except.iter().map(|j| j.0).collect();
        let except_starts: Vec<NaiveDateTime> = except.iter().map(|j| j.1).collect();
        // Per range, the flagged jobs' starts one after the other, each the least
        // `data_time` after the one before: one probe of the index on flagged rows
        // (migration 0004) per flagged job, not a read of every row of the range — and
        // only while the job found is one of `except`: the first other one answers.
        let sql = format!(
            r#"WITH RECURSIVE k AS (
                   SELECT * FROM unnest($1::int4[], $2::timestamp[], $3::timestamp[])
                          AS k(k_id, k_from, k_to)),
               x AS (
                   SELECT * FROM unnest($4::int4[], $5::timestamp[]) AS x(x_id, x_start)),
               flagged AS (
                   SELECT k_id, k_to,
                          (SELECT min(t.data_time) FROM "{data}" t
                            WHERE t.id = k_id AND t.recalc > 0
                              AND t.data_time >= k_from AND t.data_time < k_to) AS start
                     FROM k
                   UNION ALL
                   SELECT k_id, k_to,
                          (SELECT min(t.data_time) FROM "{data}" t
                            WHERE t.id = k_id AND t.recalc > 0
                              AND t.data_time > start AND t.data_time < k_to)
                     FROM flagged
                    WHERE start IS NOT NULL
                      AND EXISTS (SELECT 1 FROM x WHERE x_id = k_id AND x_start = start))
               SELECT k_id, start FROM flagged WHERE start IS NOT NULL
               UNION
               SELECT j.id, j.datetime FROM k
                 JOIN "{job}" j ON j.id = k_id AND j.datetime >= k_from AND j.datetime < k_to
                WHERE j.recalc > 0"#,
            data = self.tables.data,
            job = self.tables.job,
        );
        let what = "looking for flagged jobs in days";
        let rows = self
            .client
            .query(&sql, &[&ids, &from, &to, &except_ids, &except_starts])
            .await
            .map_err(StoreError::query(what))?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<Vec<_>, tokio_postgres::Error>>()
            .map_err(StoreError::query(what))
    }

    async fn load_between(
        &self,
        level: Level,
        from: NaiveDateTime,
        to: NaiveDateTime,
    ) -> Result<Vec<Row>, StoreError> {
        let sql = format!(
            r#"SELECT {} FROM "{}" t WHERE t.datetime >= $1 AND t.datetime < $2"#,
            t_columns(),
            self.table(level)
        );
        self.rows(
            &sql,
            &[&from, &to],
            &format!("loading {level} rows between two times"),
        )
        .await
    }

    async fn previous(
        &self,
        level: Level,
        keys: &[RowKey],
    ) -> Result<Vec<Option<Row>>, StoreError> {
        self.neighbours(level, keys, Direction::Before).await
    }

    async fn next(&self, level: Level, keys: &[RowKey]) -> Result<Vec<Option<Row>>, StoreError> {
        self.neighbours(level, keys, Direction::After).await
    }

    async fn load_constants(&self) -> Result<Vec<Constant>, StoreError> {
        let what = "loading the constants";
        let sql = format!(
            r#"SELECT id, name, coalesce(value, '') FROM "{}" ORDER BY id, name"#,
            self.tables.constants
        );
        let rows = self
            .client
            .query(&sql, &[])
            .await
            .map_err(StoreError::query(what))?;
        rows.iter()
            .map(|r| {
                Ok(Constant {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    value: r.try_get(2)?,
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(StoreError::query(what))
    }

    async fn load_equations(&self) -> Result<Vec<Equation>, StoreError> {
        let what = "loading the equations";
        let sql = format!(
            r#"SELECT "type", id, name, eq FROM "{}" ORDER BY "type", id, name"#,
            self.tables.equations
        );
        let rows = self
            .client
            .query(&sql, &[])
            .await
            .map_err(StoreError::query(what))?;
        rows.iter()
            .map(|r| {
                Ok(Equation {
                    kind: r.try_get(0)?,
                    id: r.try_get(1)?,
                    name: r.try_get(2)?,
                    eq: r.try_get(3)?,
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(StoreError::query(what))
    }

    /// `DELETE` and one `INSERT … SELECT FROM unnest(…)` in one transaction; each
    /// statement's trigger bumps the revision, visible with the new equations at commit.
    /// `DELETE` rather than `TRUNCATE`, whose exclusive lock would block the daemons'
    /// reads of the table until the commit.
    async fn replace_equations(&mut self, equations: &[Equation]) -> Result<(), StoreError> {
        let what = "replacing the equations";
        let tx = self
            .client
            .transaction()
            .await
            .map_err(StoreError::query(what))?;
        let table = &self.tables.equations;
        tx.execute(&format!(r#"DELETE FROM "{table}""#), &[])
            .await
            .map_err(StoreError::query(what))?;
        insert_equations(&tx, table, equations.iter())
            .await
            .map_err(StoreError::query(what))?;
        tx.commit().await.map_err(StoreError::query(what))
    }

    /// One `DELETE` of the replaced keys and one `INSERT`, in one transaction.
    async fn merge_equations(&mut self, equations: &[MergedEquation]) -> Result<(), StoreError> {
        let what = "merging the equations";
        let tx = self
            .client
            .transaction()
            .await
            .map_err(StoreError::query(what))?;
        let table = &self.tables.equations;
        let (mut kinds, mut ids, mut names) = (Vec::new(), Vec::new(), Vec::new());
        for m in equations {
            let e = &m.equation;
            for name in m.replaces.iter().chain(std::iter::once(&e.name)) {
                kinds.push(e.kind);
                ids.push(e.id);
                names.push(name.as_str());
            }
        }
        tx.execute(
            &format!(
                r#"DELETE FROM "{table}" e
                    USING unnest($1::int4[], $2::int4[], $3::text[]) AS k(k_type, k_id, k_name)
                    WHERE e."type" = k.k_type AND e.id = k.k_id AND e.name = k.k_name"#
            ),
            &[&kinds, &ids, &names],
        )
        .await
        .map_err(StoreError::query(what))?;
        insert_equations(&tx, table, equations.iter().map(|m| &m.equation))
            .await
            .map_err(StoreError::query(what))?;
        tx.commit().await.map_err(StoreError::query(what))
    }

    /// The counter of `tables.revision`, bumped by triggers on the equations and
    /// constants tables (migration 0002) in the changing transaction itself.
    async fn revision(&self) -> Result<Revision, StoreError> {
        let what = "reading the revision of the equations and constants";
        let sql = format!(r#"SELECT revision FROM "{}""#, self.tables.revision);
        let row = self
            .client
            .query_opt(&sql, &[])
            .await
            .map_err(StoreError::query(what))?;
        let value: i64 = match row {
            Some(r) => r.try_get(0).map_err(StoreError::query(what))?,
            // Someone deleted the row: the triggers then change nothing until the
            // next migration; report a fixed revision rather than fail every poll.
            None => 0,
        };
        Ok(Revision::of(value as u64))
    }

    #[tracing::instrument(skip_all, fields(data = batch.data.len(), jobs = batch.jobs.len(), days = batch.days.len(), errors = batch.errors.len()))]
    async fn write_back(&mut self, batch: &WriteBatch) -> Result<WriteOutcome, StoreError> {
        let mut outcome = WriteOutcome::default();
        if batch.is_empty() {
            return Ok(outcome);
        }
        self.ensure_staging().await?;
        let tables = self.tables.clone();
        let what = "writing back a batch";
        let tx = self
            .client
            .transaction()
            .await
            .map_err(StoreError::query(what))?;
        // recalcd's results can always be recomputed: a batch lost in a crash right
        // after its commit is lost whole and its rows are still flagged. So the commit
        // need not wait for the WAL flush.
        tx.batch_execute(&self.write_settings)
            .await
            .map_err(StoreError::query(what))?;
        // The id of this transaction, as `xmin` shows it (the low 32 bits): every row
        // it writes carries it as its new version.
        let xid: i64 = tx
            .query_one("SELECT txid_current() % 4294967296", &[])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(StoreError::query(what))?;
        outcome.version = Some(WrittenVersions::All(RowVersion::of(xid)));
        for level in Level::ALL {
            let rows = batch.rows(level);
            if rows.is_empty() {
                continue;
            }
            let what = format!("writing back {level} rows");
            let copy = format!(
                r#"COPY {} (datetime, data_time, id, state, "user", gps, recalc, conjoined, version)
                   FROM STDIN BINARY"#,
                staging(level)
            );
            let started = std::time::Instant::now();
            let sink = tx.copy_in(&copy).await.map_err(StoreError::query(&what))?;
            let mut sink = pin!(sink);
            let mut staged = CopyRows::new(&STAGE_TYPES, &what);
            for r in rows {
                let version = r.version.get();
                let [a, b, c, d, e, f, g, _] = r.params();
                // A row that could not be decoded is staged without content (NULL):
                // its flag is written, its stored bytes are kept.
                let content = r.unreadable.is_none().then_some(r.conjoined.as_str());
                staged.row(&[a, b, c, d, e, f, g, &content, &version])?;
                staged.send_full(sink.as_mut()).await?;
            }
            staged.finish(sink).await?;
            let copied = std::time::Instant::now();
            let sql = format!(
                r#"WITH updated AS (
                       UPDATE "{table}" t
                          SET recalc = s.recalc,
                              data_time = CASE WHEN s.conjoined IS NULL THEN t.data_time ELSE s.data_time END,
                              state = CASE WHEN s.conjoined IS NULL THEN t.state ELSE s.state END,
                              "user" = CASE WHEN s.conjoined IS NULL THEN t."user" ELSE s."user" END,
                              gps = CASE WHEN s.conjoined IS NULL THEN t.gps ELSE s.gps END,
                              conjoined = COALESCE(s.conjoined, t.conjoined)
                         FROM {stage} s
                        WHERE s.version IS NOT NULL
                          AND t.id = s.id AND t.datetime = s.datetime
                          AND t.xmin::text::bigint = s.version
                    RETURNING 1),
                   inserted AS (
                       INSERT INTO "{table}" (datetime, data_time, id, state, "user", gps, recalc, conjoined)
                       SELECT datetime, data_time, id, state, "user", gps, recalc, conjoined
                         FROM {stage} WHERE version IS NULL
                       ON CONFLICT (id, datetime) DO NOTHING
                    RETURNING 1)
                   SELECT (SELECT count(*) FROM updated) + (SELECT count(*) FROM inserted)"#,
                table = level.table(&tables),
                stage = staging(level),
            );
            let done: i64 = tx
                .query_one(&sql, &[])
                .await
                .and_then(|r| r.try_get(0))
                .map_err(StoreError::query(&what))?;
            // Rarely some staged row was neither updated nor inserted: those the guard
            // skipped are the ones this transaction did not write.
            let skipped = if usize::try_from(done).ok() == Some(rows.len()) {
                Vec::new()
            } else {
                let sql = format!(
                    r#"SELECT s.id, s.datetime FROM {stage} s
                         LEFT JOIN "{table}" t ON t.id = s.id AND t.datetime = s.datetime
                        WHERE t.xmin::text::bigint IS DISTINCT FROM $1"#,
                    table = level.table(&tables),
                    stage = staging(level),
                );
                tx.query(&sql, &[&xid])
                    .await
                    .map_err(StoreError::query(&what))?
            };
            for r in &skipped {
                let key = RowKey {
                    id: r.try_get(0).map_err(StoreError::query(&what))?,
                    datetime: r.try_get(1).map_err(StoreError::query(&what))?,
                };
                outcome.skipped.push((level, key));
            }
            outcome.written += rows.len() - skipped.len();
            let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
            tracing::trace!(
                %level,
                copy_ms = ms(copied - started),
                apply_ms = ms(copied.elapsed()),
                "staged rows applied"
            );
        }
        let marking = std::time::Instant::now();
        PgStore::index_mark(&tx, &tables.index_dirty, &batch.index_marks).await?;
        tracing::trace!(
            marks = batch.index_marks.len(),
            ms = marking.elapsed().as_secs_f64() * 1e3,
            "index buckets marked"
        );
        let errors = batch.errors_except(&outcome.skipped);
        if !errors.is_empty() {
            let what = "recording error records";
            let copy = format!(
                r#"COPY "{}" (at, level, id, datetime, equation, reason) FROM STDIN BINARY"#,
                tables.errors
            );
            let sink = tx.copy_in(&copy).await.map_err(StoreError::query(what))?;
            let mut sink = pin!(sink);
            let mut records = CopyRows::new(&ERROR_TYPES, what);
            let at = chrono::Utc::now().naive_utc();
            for e in &errors {
                records.row(&[
                    &at,
                    &e.level.as_str(),
                    &e.key.id,
                    &e.key.datetime,
                    &e.equation,
                    &e.reason,
                ])?;
                records.send_full(sink.as_mut()).await?;
            }
            records.finish(sink).await?;
            outcome.errors_written = errors.len();
        }
        tx.commit().await.map_err(StoreError::query(what))?;
        if !outcome.skipped.is_empty() {
            tracing::info!(
                skipped = outcome.skipped.len(),
                "rows changed by a producer since they were read were left to the producer"
            );
        }
        Ok(outcome)
    }

    async fn status(&self, latest_errors: usize) -> Result<Status, StoreError> {
        let mut backlog = Vec::new();
        for level in Level::ALL {
            let what = format!("counting flagged {level} rows");
            let sql = format!(
                r#"SELECT count(*), min(datetime) FROM "{}" WHERE recalc > 0"#,
                self.table(level)
            );
            let r = self
                .client
                .query_one(&sql, &[])
                .await
                .map_err(StoreError::query(&what))?;
            backlog.push(Backlog::from_row(level, self.table(level), &r)?);
        }
        let what = "counting equations and constants";
        let sql = format!(
            r#"SELECT (SELECT count(*) FROM "{}"), (SELECT count(*) FROM "{}")"#,
            self.tables.equations, self.tables.constants
        );
        let r = self
            .client
            .query_one(&sql, &[])
            .await
            .map_err(StoreError::query(what))?;
        let equations: i64 = r.try_get(0).map_err(StoreError::query(what))?;
        let constants: i64 = r.try_get(1).map_err(StoreError::query(what))?;
        let what = "reading the latest errors";
        let sql = format!(
            r#"SELECT e.at, e.level, e.id, e.datetime, e.equation, e.reason, {} FROM "{}" e
                ORDER BY e.at DESC LIMIT $1"#,
            self.current_error("e"),
            self.tables.errors
        );
        let limit = i64::try_from(latest_errors).unwrap_or(i64::MAX);
        let rows = self
            .client
            .query(&sql, &[&limit])
            .await
            .map_err(StoreError::query(what))?;
        let mut errors = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut e = stored_error(r, what)?;
            e.current = r.try_get(6).map_err(StoreError::query(what))?;
            errors.push(e);
        }
        let what = "counting the failed rows";
        let sql = format!(
            r#"SELECT (SELECT count(*) FROM "{}" WHERE recalc < 0),
                      (SELECT count(*) FROM "{}" WHERE recalc < 0),
                      (SELECT count(*) FROM "{}" WHERE recalc < 0)"#,
            self.tables.data, self.tables.job, self.tables.day
        );
        let r = self
            .client
            .query_one(&sql, &[])
            .await
            .map_err(StoreError::query(what))?;
        let mut failed = Vec::with_capacity(3);
        for (i, level) in Level::ALL.into_iter().enumerate() {
            let n: i64 = r.try_get(i).map_err(StoreError::query(what))?;
            failed.push((level, n.max(0) as u64));
        }
        let what = "reading the equation problems";
        let sql = format!(
            r#"SELECT at, "type", id, name, problem FROM "{}"
                ORDER BY "type", id, name, problem"#,
            self.tables.problems
        );
        let problems = self
            .client
            .query(&sql, &[])
            .await
            .map_err(StoreError::query(what))?
            .iter()
            .map(|r| equation_problem(r, what))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Status {
            dialect: Dialect::Postgres,
            schema_version: self.schema_version().await?,
            backlog,
            equations: equations.max(0) as u64,
            constants: constants.max(0) as u64,
            latest_errors: errors,
            failed,
            problems,
        })
    }

    async fn reflag(&mut self, level: Level, ranges: &ReflagRanges) -> Result<u64, StoreError> {
        reflag::reflag(&mut self.client, &self.tables, level, ranges).await
    }

    async fn record_problems(&self, problems: &[EquationProblem]) -> Result<(), StoreError> {
        let mut seen = std::collections::HashSet::new();
        let unique: Vec<&EquationProblem> = problems
            .iter()
            .filter(|p| seen.insert(p.problem.as_str()))
            .collect();
        let types: Vec<Option<i32>> = unique.iter().map(|p| p.ty).collect();
        let ids: Vec<Option<i32>> = unique.iter().map(|p| p.id).collect();
        let names: Vec<Option<&str>> = unique.iter().map(|p| p.name.as_deref()).collect();
        let texts: Vec<&str> = unique.iter().map(|p| p.problem.as_str()).collect();
        // One statement: workers loading at once neither lose nor double a problem.
        let sql = format!(
            r#"WITH gone AS (DELETE FROM "{t}" WHERE problem <> ALL ($4::text[]))
               INSERT INTO "{t}" ("type", id, name, problem)
               SELECT * FROM unnest($1::int[], $2::int[], $3::text[], $4::text[])
               ON CONFLICT (problem) DO NOTHING"#,
            t = self.tables.problems
        );
        self.client
            .execute(&sql, &[&types, &ids, &names, &texts])
            .await
            .map_err(StoreError::query("recording the equation problems"))?;
        Ok(())
    }

    async fn prune_errors(&self, before: NaiveDateTime) -> Result<u64, StoreError> {
        let sql = format!(
            r#"DELETE FROM "{}" e WHERE e.at < $1 AND NOT {}"#,
            self.tables.errors,
            self.current_error("e")
        );
        self.client
            .execute(&sql, &[&before])
            .await
            .map_err(StoreError::query("deleting old error records"))
    }

    async fn unsettled_between(
        &self,
        from: NaiveDateTime,
        to: NaiveDateTime,
        id: Option<i32>,
    ) -> Result<Vec<Unsettled>, StoreError> {
        let mut out = Vec::with_capacity(3);
        for level in Level::ALL {
            let what = format!("counting the unsettled {level} rows of a range");
            let range = "datetime >= $1 AND datetime < $2 AND ($3::int IS NULL OR id = $3)";
            let sql = format!(
                r#"SELECT (SELECT count(*) FROM "{t}" WHERE recalc > 0 AND {range}),
                          (SELECT count(*) FROM "{t}" WHERE recalc < 0 AND {range})"#,
                t = self.table(level)
            );
            let r = self
                .client
                .query_one(&sql, &[&from, &to, &id])
                .await
                .map_err(StoreError::query(&what))?;
            let flagged: i64 = r.try_get(0).map_err(StoreError::query(&what))?;
            let failed: i64 = r.try_get(1).map_err(StoreError::query(&what))?;
            out.push(Unsettled {
                level,
                flagged: flagged.max(0) as u64,
                failed: failed.max(0) as u64,
            });
        }
        Ok(out)
    }

    async fn device_known(&self, id: i32) -> Result<bool, StoreError> {
        let t = &self.tables;
        let sql = format!(
            r#"SELECT EXISTS (SELECT 1 FROM "{}" WHERE id = $1)
                   OR EXISTS (SELECT 1 FROM "{}" WHERE id = $1)
                   OR EXISTS (SELECT 1 FROM "{}" WHERE id = $1)
                   OR EXISTS (SELECT 1 FROM "{}" WHERE id = $1)
                   OR EXISTS (SELECT 1 FROM "{}" WHERE id = $1)"#,
            t.data, t.job, t.day, t.constants, t.equations
        );
        let r = self
            .client
            .query_one(&sql, &[&id])
            .await
            .map_err(StoreError::query("looking the device up"))?;
        r.try_get(0)
            .map_err(StoreError::query("looking the device up"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32) -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
            .unwrap()
            .and_hms_opt(h, 0, 0)
            .unwrap()
    }

    #[test]
    fn ranges_merge() {
        let r = |id, a, b| TimeRange {
            id,
            from: t(a),
            to: t(b),
        };
        assert_eq!(
            merge_ranges(&[
                r(2, 1, 3),
                r(1, 5, 6),
                r(1, 1, 3),
                r(1, 2, 4),
                r(1, 4, 5),
                r(3, 2, 2)
            ]),
            vec![r(1, 1, 6), r(2, 1, 3)]
        );
    }
}
