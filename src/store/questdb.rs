//! The QuestDB dialect, over QuestDB's PostgreSQL wire protocol (port 8812).
//!
//! **Schema.** `data`, `job` and `day` have `datetime` as designated timestamp, are
//! `WAL`, `PARTITION BY DAY` and `DEDUP UPSERT KEYS(datetime, id)`: re-inserting a row
//! with an existing key replaces it, which is how recalcd writes back (QuestDB has no
//! `DELETE`, no `ON CONFLICT`, no `COPY FROM STDIN`, and `UPDATE` rewrites whole column
//! files and reports wrong row counts). Timestamps are bound and read as
//! [`NaiveDateTime`] in UTC, as QuestDB sends them.
//!
//! **Write path: the line protocol over HTTP** (`questdb/ilp.rs`, `database.questdb_ilp`), one
//! request per chunk of 10,000 rows of one table, committed by QuestDB as
//! one transaction of that table; where ILP is switched off (or refused under `auto`),
//! multi-row `INSERT … VALUES (…), (…)` over PG wire, [`INSERT_CHUNK`] rows per
//! statement. PG-wire inserts are applied at 10–30 k rows/s, the line protocol at
//! several hundred thousand (`cargo bench --bench engine` with `QUESTDB_URL`). Days are
//! written first, then jobs, then data rows, each level in time order: a batch cut
//! short leaves data rows flagged and is recomputed (see `questdb/write.rs`).
//!
//! **The guard is not atomic on QuestDB** (no row locks, no conditional writes). For
//! each level recalcd first waits until the table has applied its WAL
//! (`wait_wal_table`), then per chunk re-reads the current rows of the chunk's keys,
//! and writes only rows whose content (`data_time`, `state`, `user`, `gps`, `recalc`,
//! `conjoined`) still equals what it loaded — the [`RowVersion`] is a hash of that
//! content — and rows it creates only if they are still absent. The remaining window
//! runs from that `wait_wal_table` (a producer write committed after it may not be
//! applied yet when the chunk is re-read) to the commit of the chunk's write
//! ([`WriteOutcome::guard_window`]); a producer write committed in it is overwritten.
//! A producer "re-flag" that writes exactly the content recalcd read (same `recalc`
//! value) cannot be told apart and is also overwritten; producers should re-flag with
//! a different `recalc`.
//!
//! **Read-after-write.** WAL tables apply writes asynchronously; before reading a table
//! recalcd wrote since its last read, it calls `wait_wal_table`, so a poll never returns
//! rows recalcd has just cleared. A writer session ([`Store::open_writer`]) instead
//! waits for what it wrote before each write-back returns.
//!
//! There are no transactions across tables: a failed write-back may leave some levels
//! written; the write order makes sure the data rows that cause their recomputation
//! are still flagged, and re-running is idempotent (dedup).
//!
//! **Several workers: a static split, no dynamic leases.** QuestDB has no row locks, no
//! advisory locks and no conditional writes, so workers cannot lease devices. Each
//! worker instead takes the devices with `id mod worker.shards = worker.shard`
//! ([`Lease::Shard`]); run exactly one worker per share. Two workers configured with
//! the same share would process the same devices at once (the guard narrows, but cannot
//! close, the window); a dead worker's share is not taken over — it waits, still
//! flagged, until that worker is restarted (e.g. by systemd).
//!
//! **Replacing the equations.** Without `DELETE` or transactions the whole set cannot be
//! swapped at once ([`Store::replace_equations`] refuses); [`Store::merge_equations`]
//! updates each replaced equation in place and inserts the new ones, one statement each.
//!
//! **Revision of the equations and constants** ([`Store::revision`]). QuestDB has no
//! triggers, and its table transaction numbers (`tables().table_txn`) are documented as
//! approximate and null for tables not written since the server started, so the
//! revision is a fingerprint the server computes: per table, the row count and the
//! `md5` of all rows concatenated (`string_agg`), one row back per table. It sees every
//! insert, update and truncate, including an edit that keeps a value's length. Limits:
//! the server still reads both (small) tables each poll; `string_agg` has no defined
//! order, so a server that returned the rows in another order would cause one needless
//! reload; the concatenation is bounded by QuestDB's string buffer
//! (`cairo.sql.string.function.buffer.max.size`), so very large tables make the query
//! fail — the daemon then logs it and keeps running with the equations it has.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::NaiveDateTime;
use futures_util::future::try_join_all;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;

use super::migrate::{migrations, render, statements};
use super::schema::{self, TypeNames};
use super::{
    check_version, content_version, content_version_from, equation_problem, open_client, row_from,
    stored_error, Backlog, Constant, Direction, Equation, EquationProblem, Flag, Lease, Level,
    MergedEquation, MigrateReport, ReflagRanges, Revision, Row, RowKey, RowVersion, Status, Store,
    StoreError, Sweep, TimeRange, Unsettled, Wakeups, WriteBatch, WriteOutcome, ROW_COLUMNS,
};
use crate::config::{Config, DatabaseConfig, Dialect, TableNames, WorkerConfig};

mod ilp;
pub mod index;
mod jobs;
mod poll;
mod reflag;
mod similarity;
mod subsequence;
mod vptree;
mod write;

/// Rows per multi-row `INSERT` (8 bound parameters each: 4,000 per statement, far below
/// the protocol's 65,535).
pub const INSERT_CHUNK: usize = 500;

/// A QuestDB store: one PG-wire connection and the configured table names.
pub struct QuestStore {
    /// The connection.
    client: Client,
    /// Table names from the configuration.
    tables: TableNames,
    /// Per level (and errors): written since the last `wait_wal_table`.
    dirty: [AtomicBool; 4],
    /// A writer session ([`Store::open_writer`]): each write-back waits until QuestDB
    /// has applied what it wrote before it returns, so that the other session, which
    /// reads the batch being written from memory, finds every batch written before it
    /// applied — while this one waits, that one prepares the next batch.
    applies_before_returning: bool,
    /// The connection settings, for the writer session.
    database: DatabaseConfig,
    /// This worker's static share of the devices (`[worker]`): QuestDB has no locks to
    /// lease devices with.
    worker: WorkerConfig,
    /// Write-back over the line protocol; `None`: PG-wire inserts.
    ilp: Option<ilp::Ilp>,
}

impl std::fmt::Debug for QuestStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuestStore")
            .field("tables", &self.tables)
            .finish()
    }
}

const ERRORS_SLOT: usize = 3;

fn slot(level: Level) -> usize {
    match level {
        Level::Data => 0,
        Level::Job => 1,
        Level::Day => 2,
    }
}

fn quest_row(r: &tokio_postgres::Row, what: &str) -> Result<Row, StoreError> {
    let mut row = row_from(r, RowVersion::ABSENT, what)?;
    row.version = content_version(&row);
    Ok(row)
}

/// How `table_columns()` spells recalcd's column types.
const TYPES: TypeNames = TypeNames {
    timestamp: "TIMESTAMP",
    int: "INT",
    text: "VARCHAR",
    symbol: "SYMBOL",
};

/// `VARCHAR`, `STRING` and `SYMBOL` all read as strings.
fn type_matches(expected: &str, found: &str) -> bool {
    let text = |t: &str| matches!(t, "VARCHAR" | "STRING" | "SYMBOL");
    expected.eq_ignore_ascii_case(found) || (text(expected) && text(&found.to_ascii_uppercase()))
}

const ROW_TYPES: [Type; 8] = [
    Type::TIMESTAMP,
    Type::TIMESTAMP,
    Type::INT4,
    Type::INT4,
    Type::VARCHAR,
    Type::VARCHAR,
    Type::INT4,
    Type::VARCHAR,
];

/// How to read the rows of a set of keys.
#[derive(Debug, PartialEq)]
enum KeyRanges {
    /// No keys.
    Empty,
    /// One query over `[from, to]` for all `ids`: their ranges overlap.
    Together {
        ids: Vec<i32>,
        from: NaiveDateTime,
        to: NaiveDateTime,
    },
    /// One query per device over its own `[first, last]` key.
    PerDevice(BTreeMap<i32, (NaiveDateTime, NaiveDateTime)>),
}

/// Reads all devices together when the common range is no longer than their own ranges
/// added up (they overlap, so it reads few extra rows), else device by device.
fn key_ranges(keys: &[RowKey]) -> KeyRanges {
    let mut per_device: BTreeMap<i32, (NaiveDateTime, NaiveDateTime)> = BTreeMap::new();
    for k in keys {
        per_device
            .entry(k.id)
            .and_modify(|(lo, hi)| {
                *lo = (*lo).min(k.datetime);
                *hi = (*hi).max(k.datetime);
            })
            .or_insert((k.datetime, k.datetime));
    }
    let (Some(from), Some(to)) = (
        per_device.values().map(|r| r.0).min(),
        per_device.values().map(|r| r.1).max(),
    ) else {
        return KeyRanges::Empty;
    };
    let own: chrono::TimeDelta = per_device.values().map(|(lo, hi)| *hi - *lo).sum();
    if per_device.len() > 1 && to - from <= own {
        KeyRanges::Together {
            ids: per_device.into_keys().collect(),
            from,
            to,
        }
    } else {
        KeyRanges::PerDevice(per_device)
    }
}

/// `INSERT INTO "table" (columns) VALUES ($1, …), (…)` for `rows` rows of `width`.
fn multi_insert(table: &str, columns: &str, rows: usize, width: usize) -> String {
    let mut sql = format!(r#"INSERT INTO "{table}" ({columns}) VALUES "#);
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..width {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", r * width + c + 1));
        }
        sql.push(')');
    }
    sql
}

/// One multi-row `INSERT` into `table` (`columns`) of `params`: rows of `types.len()`
/// values laid end to end, prepared with their types (QuestDB infers none for `$n`).
pub(super) async fn insert_many(
    client: &Client,
    table: &str,
    columns: &str,
    types: &[Type],
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    what: &str,
) -> Result<(), StoreError> {
    let rows = params.len() / types.len().max(1);
    let sql = multi_insert(table, columns, rows, types.len());
    let all: Vec<Type> = types.iter().cycle().take(params.len()).cloned().collect();
    let stmt = client
        .prepare_typed(&sql, &all)
        .await
        .map_err(StoreError::query(what))?;
    client
        .execute(&stmt, params)
        .await
        .map_err(StoreError::query(what))?;
    Ok(())
}

/// Whether the server says it is QuestDB (`version()`); assumed when it cannot say.
async fn is_questdb(client: &Client) -> bool {
    match client.query_one("SELECT version()", &[]).await {
        Ok(row) => row
            .try_get::<_, String>(0)
            .is_ok_and(|v| super::detect_dialect(&v) == Dialect::QuestDb),
        Err(_) => true,
    }
}

impl QuestStore {
    /// Wraps a connected client (see [`super::connect`]), opens the line protocol
    /// sender as `database.questdb_ilp` says, and logs what this dialect cannot do.
    ///
    /// # Errors
    /// [`StoreError::IlpRefused`] when an explicitly configured ILP address refuses
    /// recalcd (with `auto`, a refusal falls back to PG-wire inserts with a warning).
    pub async fn open(client: Client, config: &Config) -> Result<Self, StoreError> {
        if config.database.statement_timeout.is_some() {
            tracing::warn!("database.statement_timeout is ignored on QuestDB");
        }
        tracing::info!(
            "QuestDB: write-back re-reads rows before re-inserting them; a producer write \
             landing between that read and the insert can be overwritten (no row locks)"
        );
        let target = match ilp::target(&config.database) {
            // `auto` with the dialect forced on a server that is not QuestDB (a
            // PostgreSQL standing in for one): nothing to probe, PG wire it is.
            Some((_, false)) if !is_questdb(&client).await => {
                tracing::info!("not a QuestDB server: writing back with PG-wire inserts");
                None
            }
            t => t,
        };
        let ilp = match target {
            None => None,
            Some((addr, explicit)) => match ilp::Ilp::open(&addr, &config.database).await {
                Ok(sender) => {
                    tracing::info!(addr = %sender.addr(), "QuestDB: writing back through the line protocol over HTTP");
                    Some(sender)
                }
                Err(source) if explicit => return Err(StoreError::IlpRefused { addr, source }),
                Err(e) => {
                    tracing::warn!(
                        addr = %addr,
                        reason = %e,
                        "QuestDB's line protocol (ILP over HTTP) is refused; writing back \
                         with PG-wire inserts, several times slower (set database.questdb_ilp \
                         to the right host:port, or to \"off\" to silence this)"
                    );
                    None
                }
            },
        };
        Ok(QuestStore {
            client,
            tables: config.tables.clone(),
            dirty: Default::default(),
            applies_before_returning: false,
            database: config.database.clone(),
            worker: config.worker,
            ilp,
        })
    }

    fn table(&self, level: Level) -> &str {
        level.table(&self.tables)
    }

    /// Inserts constants and equations (`recalcd demo` loads its definitions this way).
    /// The tables are not WAL tables, so the rows are visible at once.
    ///
    /// # Errors
    /// [`StoreError::Query`] if an insert fails (QuestDB has no transaction here: the
    /// rows inserted before stay).
    pub async fn insert_definitions(
        &mut self,
        constants: &[Constant],
        equations: &[Equation],
    ) -> Result<(), StoreError> {
        let what = "inserting constants and equations";
        let sql = format!(
            r#"INSERT INTO "{}" (id, name, value) VALUES ($1, $2, $3)"#,
            self.tables.constants
        );
        let stmt = self
            .client
            .prepare_typed(&sql, &[Type::INT4, Type::VARCHAR, Type::VARCHAR])
            .await
            .map_err(StoreError::query(what))?;
        for c in constants {
            self.client
                .execute(&stmt, &[&c.id, &c.name, &c.value])
                .await
                .map_err(StoreError::query(what))?;
        }
        let sql = format!(
            r#"INSERT INTO "{}" ("type", id, name, eq) VALUES ($1, $2, $3, $4)"#,
            self.tables.equations
        );
        let stmt = self
            .client
            .prepare_typed(
                &sql,
                &[Type::INT4, Type::INT4, Type::VARCHAR, Type::VARCHAR],
            )
            .await
            .map_err(StoreError::query(what))?;
        for e in equations {
            self.client
                .execute(&stmt, &[&e.kind, &e.id, &e.name, &e.eq])
                .await
                .map_err(StoreError::query(what))?;
        }
        Ok(())
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

    /// Waits until `table` has applied every committed WAL transaction: one round trip
    /// (the simple query protocol; `execute` with SQL text would prepare first). The
    /// request is sent when the future is first polled, so a query whose future is
    /// first polled after it runs on the server after the wait (see
    /// [`QuestStore::current_after_wait`]).
    async fn wait_wal(&self, table: &str) -> Result<(), StoreError> {
        self.client
            .batch_execute(&format!("SELECT wait_wal_table('{table}')"))
            .await
            .map_err(StoreError::query(format!(
                "waiting for table `{table}` to apply its WAL (wait_wal_table)"
            )))
    }

    /// Runs `sql` once with `params` of the given `types` in one round trip (parse,
    /// bind and execute sent together, unnamed): a statement run once needs no separate
    /// prepare. The request is sent when the future is first polled.
    async fn typed_query(
        &self,
        sql: &str,
        types: &[Type],
        params: &[&(dyn ToSql + Sync)],
        what: &str,
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let typed: Vec<(&(dyn ToSql + Sync), Type)> =
            params.iter().copied().zip(types.iter().cloned()).collect();
        self.client
            .query_typed(sql, &typed)
            .await
            .map_err(StoreError::query(what))
    }

    /// The recorded equation problems, in key order, each once (two workers loading at
    /// once may both have written it).
    async fn read_problems(&self) -> Result<Vec<EquationProblem>, StoreError> {
        let what = "reading the equation problems";
        let sql = format!(
            r#"SELECT at, "type", id, name, problem FROM "{}" ORDER BY "type", id, name, problem"#,
            self.tables.problems
        );
        let mut seen = HashSet::new();
        let mut problems = Vec::new();
        for r in &self
            .client
            .query(&sql, &[])
            .await
            .map_err(StoreError::query(what))?
        {
            let p = equation_problem(r, what)?;
            if seen.insert(p.problem.clone()) {
                problems.push(p);
            }
        }
        Ok(problems)
    }

    /// Sets [`StoredError::current`] of `errors` (newest first): a record is current when
    /// its row is still at `recalc = -1` and no newer record of the row is among them.
    ///
    /// [`StoredError::current`]: super::StoredError::current
    async fn mark_current(&self, errors: &mut [super::StoredError]) -> Result<(), StoreError> {
        for level in Level::ALL {
            let keys: Vec<RowKey> = errors
                .iter()
                .filter(|e| e.record.level == level)
                .map(|e| e.record.key)
                .collect();
            if keys.is_empty() {
                continue;
            }
            let failed: HashSet<RowKey> = self
                .load_rows(level, &keys)
                .await?
                .iter()
                .filter(|r| r.recalc < 0)
                .map(Row::key)
                .collect();
            // The records of one write-back share their `at`.
            let mut newest: HashMap<RowKey, NaiveDateTime> = HashMap::new();
            for e in errors.iter_mut().filter(|e| e.record.level == level) {
                let at = *newest.entry(e.record.key).or_insert(e.at);
                e.current = at == e.at && failed.contains(&e.record.key);
            }
        }
        Ok(())
    }

    /// Waits for the WAL of a table this store wrote since it last waited.
    async fn settle(&self, slot: usize, table: &str) -> Result<(), StoreError> {
        if self.dirty[slot].swap(false, Ordering::AcqRel) {
            if let Err(e) = self.wait_wal(table).await {
                self.dirty[slot].store(true, Ordering::Release);
                return Err(e);
            }
        }
        Ok(())
    }

    /// The current rows of `keys`.
    async fn current(
        &self,
        level: Level,
        keys: &[RowKey],
    ) -> Result<HashMap<RowKey, Row>, StoreError> {
        let what = format!("reading {level} rows by key");
        self.keyed(level, keys, &what, |r, what| {
            let row = quest_row(r, what)?;
            Ok((row.key(), row))
        })
        .await
    }

    /// The [`RowVersion`]s of the current rows of `keys` (what the guard compares),
    /// without building the rows.
    async fn current_versions(
        &self,
        level: Level,
        keys: &[RowKey],
    ) -> Result<HashMap<RowKey, RowVersion>, StoreError> {
        let what = format!("re-reading {level} rows by key");
        self.keyed(level, keys, &what, content_version_from).await
    }

    /// What `decode` makes of each current row of `keys` (the rows around them that
    /// [`Self::rows_around`] also reads are left out), by key.
    async fn keyed<T>(
        &self,
        level: Level,
        keys: &[RowKey],
        what: &str,
        decode: impl Fn(&tokio_postgres::Row, &str) -> Result<(RowKey, T), StoreError>,
    ) -> Result<HashMap<RowKey, T>, StoreError> {
        let wanted: HashSet<&RowKey> = keys.iter().collect();
        let mut out = HashMap::with_capacity(keys.len());
        for r in self.rows_around(level, keys, what).await?.iter().flatten() {
            let (key, value) = decode(r, what)?;
            if wanted.contains(&key) {
                out.insert(key, value);
            }
        }
        Ok(out)
    }

    /// The stored rows of `keys` ([`ROW_COLUMNS`]), and others around them, in one
    /// round trip: one time-range query per device, pipelined — or, when the devices'
    /// ranges overlap (a batch of the oldest flagged rows of many devices), one query
    /// over the common range for all of them.
    async fn rows_around(
        &self,
        level: Level,
        keys: &[RowKey],
        what: &str,
    ) -> Result<Vec<Vec<tokio_postgres::Row>>, StoreError> {
        let results =
            match key_ranges(keys) {
                KeyRanges::Empty => Vec::new(),
                KeyRanges::Together { ids, from, to } => {
                    let ids: Vec<String> = ids.iter().map(i32::to_string).collect();
                    let sql = format!(
                        r#"SELECT {ROW_COLUMNS} FROM "{}"
                        WHERE datetime >= $1 AND datetime <= $2 AND id IN ({})"#,
                        self.table(level),
                        ids.join(", ")
                    );
                    vec![
                        self.typed_query(
                            &sql,
                            &[Type::TIMESTAMP, Type::TIMESTAMP],
                            &[&from, &to],
                            what,
                        )
                        .await?,
                    ]
                }
                KeyRanges::PerDevice(ranges) => {
                    let sql = format!(
                        r#"SELECT {ROW_COLUMNS} FROM "{}"
                        WHERE id = $1 AND datetime >= $2 AND datetime <= $3"#,
                        self.table(level)
                    );
                    let stmt = self
                        .client
                        .prepare_typed(&sql, &[Type::INT4, Type::TIMESTAMP, Type::TIMESTAMP])
                        .await
                        .map_err(StoreError::query(what))?;
                    try_join_all(ranges.iter().map(|(id, (lo, hi))| async {
                        self.client.query(&stmt, &[id, lo, hi]).await
                    }))
                    .await
                    .map_err(StoreError::query(what))?
                }
            };
        Ok(results)
    }

    /// [`QuestStore::wait_wal`] on `level`'s table, then [`QuestStore::current_versions`] of
    /// `keys`, pipelined: both requests leave together and the server runs them in
    /// order on this one connection, so the re-read sees everything applied by the wait
    /// — as if awaited one after the other, without waiting a round trip in between.
    /// `try_join` polls the wait first, and each sends its request on its first poll.
    async fn current_after_wait(
        &self,
        level: Level,
        keys: &[RowKey],
    ) -> Result<HashMap<RowKey, RowVersion>, StoreError> {
        let (_, current) = futures_util::future::try_join(
            self.wait_wal(self.table(level)),
            self.current_versions(level, keys),
        )
        .await?;
        Ok(current)
    }

    async fn schema_version(&self) -> Result<i32, StoreError> {
        let what = "reading the applied migrations";
        let sql = format!(r#"SELECT max(version) FROM "{}""#, self.tables.migrations);
        let row = self
            .client
            .query_one(&sql, &[])
            .await
            .map_err(StoreError::query(what))?;
        let v: Option<i32> = row.try_get(0).map_err(StoreError::query(what))?;
        Ok(v.unwrap_or(0))
    }

    /// Runs `sql` (parameters: device id, from, to) once per range, prepared once and
    /// pipelined, and returns every row of every answer.
    async fn per_range(
        &self,
        sql: &str,
        ranges: &[TimeRange],
        what: &str,
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let stmt = self
            .client
            .prepare_typed(sql, &[Type::INT4, Type::TIMESTAMP, Type::TIMESTAMP])
            .await
            .map_err(StoreError::query(what))?;
        let results = try_join_all(
            ranges
                .iter()
                .map(|r| async { self.client.query(&stmt, &[&r.id, &r.from, &r.to]).await }),
        )
        .await
        .map_err(StoreError::query(what))?;
        Ok(results.into_iter().flatten().collect())
    }

    /// For each key, the row of `level` of the same device just before or after it.
    async fn neighbours(
        &self,
        level: Level,
        keys: &[RowKey],
        direction: Direction,
    ) -> Result<Vec<Option<Row>>, StoreError> {
        let (cmp, order) = direction.sql();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.settle(slot(level), self.table(level)).await?;
        let what = format!("loading the {} {level} rows", direction.word());
        let sql = format!(
            r#"SELECT {ROW_COLUMNS} FROM "{}" WHERE id = $1 AND datetime {cmp} $2
                ORDER BY datetime {order} LIMIT 1"#,
            self.table(level)
        );
        let stmt = self
            .client
            .prepare_typed(&sql, &[Type::INT4, Type::TIMESTAMP])
            .await
            .map_err(StoreError::query(&what))?;
        let results = try_join_all(
            keys.iter()
                .map(|k| async { self.client.query(&stmt, &[&k.id, &k.datetime]).await }),
        )
        .await
        .map_err(StoreError::query(&what))?;
        results
            .iter()
            .map(|rows| rows.first().map(|r| quest_row(r, &what)).transpose())
            .collect()
    }
}

impl Store for QuestStore {
    fn dialect(&self) -> Dialect {
        Dialect::QuestDb
    }

    async fn migrate(&mut self) -> Result<MigrateReport, StoreError> {
        // Not partitioned, hence not WAL: its writes are visible at once.
        let bookkeeping = format!(
            r#"CREATE TABLE IF NOT EXISTS "{}" (version INT, name VARCHAR, applied_at TIMESTAMP)"#,
            self.tables.migrations
        );
        self.client
            .execute(&bookkeeping, &[])
            .await
            .map_err(StoreError::query("creating the migrations table"))?;
        let what = "reading the applied migrations";
        let sql = format!(r#"SELECT version FROM "{}""#, self.tables.migrations);
        let done: HashSet<i32> = self
            .client
            .query(&sql, &[])
            .await
            .map_err(StoreError::query(what))?
            .iter()
            .map(|r| r.try_get::<_, Option<i32>>(0).map(|v| v.unwrap_or(0)))
            .collect::<Result<_, _>>()
            .map_err(StoreError::query(what))?;
        let record = format!(
            r#"INSERT INTO "{}" (version, name, applied_at) VALUES ($1, $2, $3)"#,
            self.tables.migrations
        );
        let mut applied = Vec::new();
        for m in migrations(Dialect::QuestDb) {
            if done.contains(&m.version) {
                continue;
            }
            // DDL is not transactional here; every statement is `IF NOT EXISTS`, so a
            // migration interrupted half-way is simply applied again.
            let what = format!("applying migration {:04}_{}", m.version, m.name);
            for stmt in statements(&render(m, &self.tables)) {
                self.client
                    .execute(&stmt, &[])
                    .await
                    .map_err(StoreError::query(&what))?;
            }
            let now = chrono::Utc::now().naive_utc();
            let name = m.name.to_string();
            self.client
                .execute(&record, &[&m.version, &name, &now])
                .await
                .map_err(StoreError::query(&what))?;
            tracing::info!(version = m.version, name = m.name, "migration applied");
            applied.push((m.version, m.name));
        }
        Ok(MigrateReport {
            applied,
            version: self.schema_version().await?,
        })
    }

    async fn check_schema(&self) -> Result<(), StoreError> {
        let what = "listing the tables (tables())";
        let existing: HashSet<String> = self
            .client
            .query("SELECT table_name FROM tables()", &[])
            .await
            .map_err(StoreError::query(what))?
            .iter()
            .map(|r| r.try_get::<_, String>(0))
            .collect::<Result<_, _>>()
            .map_err(StoreError::query(what))?;
        let expected = schema::expected(&self.tables, &TYPES);
        for (table, _) in &expected {
            if !existing.contains(*table) {
                return Err(StoreError::MissingTable {
                    table: table.to_string(),
                });
            }
        }
        for (table, cols) in &expected {
            let what = format!("reading the columns of `{table}` (table_columns())");
            let found = self
                .client
                .query(
                    &format!(
                        r#"SELECT "column", "type", designated FROM table_columns('{table}')"#
                    ),
                    &[],
                )
                .await
                .map_err(StoreError::query(&what))?;
            let mut columns = Vec::with_capacity(found.len());
            let mut designated = None;
            for r in &found {
                let name: String = r.try_get(0).map_err(StoreError::query(&what))?;
                let ty: String = r.try_get(1).map_err(StoreError::query(&what))?;
                if r.try_get::<_, bool>(2).map_err(StoreError::query(&what))? {
                    designated = Some(name.clone());
                }
                columns.push((name, ty));
            }
            schema::check_columns(table, cols, &columns, type_matches)?;
            // Dedup and partitioning hang on the designated timestamp of each level.
            let level_table = Level::ALL.iter().any(|l| l.table(&self.tables) == *table);
            if level_table && designated.as_deref() != Some("datetime") {
                return Err(StoreError::Column {
                    table: table.to_string(),
                    column: "datetime".into(),
                    problem: "is not the designated timestamp".into(),
                });
            }
        }
        check_version(self.schema_version().await?, Dialect::QuestDb)
    }

    async fn poll_flagged(
        &self,
        level: Level,
        after: Option<RowKey>,
        limit: usize,
    ) -> Result<Vec<Row>, StoreError> {
        self.poll_oldest::<Row>(level, String::new(), after, limit)
            .await
    }

    /// No dynamic leases on QuestDB: the worker's static share ([`Lease::Shard`]).
    async fn lease(&mut self, _after: &Sweep, _limit: usize) -> Result<Lease, StoreError> {
        Ok(Lease::Shard)
    }

    /// The flagged rows of this worker's share (`id mod shards = shard`).
    async fn poll_leased(
        &self,
        level: Level,
        lease: &Lease,
        after: Option<RowKey>,
        limit: usize,
    ) -> Result<Vec<Flag>, StoreError> {
        let mut filter = String::new();
        if let Lease::Devices(devices) = lease {
            // Not produced by this dialect, but honoured (ids are integers).
            let ids: Vec<String> = devices.iter().map(i32::to_string).collect();
            filter.push_str(&format!(" AND id IN ({})", ids.join(", ")));
        }
        if self.worker.is_split() {
            let n = self.worker.shards;
            filter.push_str(&format!(
                " AND ((id % {n}) + {n}) % {n} = {}",
                self.worker.shard
            ));
        }
        self.poll_oldest::<Flag>(level, filter, after, limit).await
    }

    /// No notifications on QuestDB (no triggers, no `LISTEN`): polling only.
    async fn wakeups(&self) -> Result<Option<Wakeups>, StoreError> {
        Ok(None)
    }

    /// Nothing to give back: the share is static.
    async fn release(&mut self, _lease: Lease) -> Result<(), StoreError> {
        Ok(())
    }

    /// A second connection that shares this one's line protocol sender. Safe without
    /// transactions: the batch prepared meanwhile reads the rows of the batch being
    /// written from memory (`service::inflight`), whatever part of it QuestDB has
    /// applied; the batches written before it were applied before their write-back
    /// returned (`applies_before_returning`); and the rows it takes over carry the
    /// content hash of what was written ([`super::WrittenVersions::Content`]), which is
    /// what the guard reads back.
    async fn open_writer(&self) -> Result<Option<Self>, StoreError> {
        let client = open_client(&self.database).await?;
        Ok(Some(QuestStore {
            client,
            tables: self.tables.clone(),
            dirty: Default::default(),
            applies_before_returning: true,
            database: self.database.clone(),
            worker: self.worker,
            ilp: self.ilp.clone(),
        }))
    }

    async fn load_rows(&self, level: Level, keys: &[RowKey]) -> Result<Vec<Row>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.settle(slot(level), self.table(level)).await?;
        let mut rows: Vec<Row> = self.current(level, keys).await?.into_values().collect();
        rows.sort_by_key(Row::key);
        Ok(rows)
    }

    async fn load_job_rows(&self, jobs: &[(i32, NaiveDateTime)]) -> Result<Vec<Row>, StoreError> {
        self.job_rows(jobs).await
    }

    async fn load_in_ranges(
        &self,
        level: Level,
        ranges: &[TimeRange],
    ) -> Result<Vec<Row>, StoreError> {
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        self.settle(slot(level), self.table(level)).await?;
        let what = format!("loading {level} rows in time ranges");
        let sql = format!(
            r#"SELECT {ROW_COLUMNS} FROM "{}" WHERE id = $1 AND datetime >= $2 AND datetime < $3"#,
            self.table(level)
        );
        let mut rows = self
            .per_range(&sql, ranges, &what)
            .await?
            .iter()
            .map(|r| quest_row(r, &what))
            .collect::<Result<Vec<_>, _>>()?;
        rows.sort_by_key(Row::key);
        rows.dedup_by_key(|r| r.key());
        Ok(rows)
    }

    async fn flagged_jobs_in(
        &self,
        ranges: &[TimeRange],
        _except: &[(i32, NaiveDateTime)],
    ) -> Result<Vec<(i32, NaiveDateTime)>, StoreError> {
        self.flagged_jobs(ranges).await
    }

    async fn load_between(
        &self,
        level: Level,
        from: NaiveDateTime,
        to: NaiveDateTime,
    ) -> Result<Vec<Row>, StoreError> {
        self.settle(slot(level), self.table(level)).await?;
        let sql = format!(
            r#"SELECT {ROW_COLUMNS} FROM "{}" WHERE datetime >= $1 AND datetime < $2"#,
            self.table(level)
        );
        let what = format!("loading {level} rows between two times");
        let mut rows = self
            .typed_query(
                &sql,
                &[Type::TIMESTAMP, Type::TIMESTAMP],
                &[&from, &to],
                &what,
            )
            .await?
            .iter()
            .map(|r| quest_row(r, &what))
            .collect::<Result<Vec<_>, _>>()?;
        rows.sort_by_key(Row::key);
        Ok(rows)
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
        let sql = format!(r#"SELECT id, name, value FROM "{}""#, self.tables.constants);
        let rows = self
            .client
            .query(&sql, &[])
            .await
            .map_err(StoreError::query(what))?;
        // Without keys, duplicates may exist: the row read last wins.
        let mut by_key: BTreeMap<(i32, String), String> = BTreeMap::new();
        for r in &rows {
            let id: Option<i32> = r.try_get(0).map_err(StoreError::query(what))?;
            let name: Option<String> = r.try_get(1).map_err(StoreError::query(what))?;
            let value: Option<String> = r.try_get(2).map_err(StoreError::query(what))?;
            if let (Some(id), Some(name)) = (id, name) {
                by_key.insert((id, name), value.unwrap_or_default());
            }
        }
        Ok(by_key
            .into_iter()
            .map(|((id, name), value)| Constant { id, name, value })
            .collect())
    }

    async fn load_equations(&self) -> Result<Vec<Equation>, StoreError> {
        let what = "loading the equations";
        let sql = format!(
            r#"SELECT "type", id, name, eq FROM "{}""#,
            self.tables.equations
        );
        let rows = self
            .client
            .query(&sql, &[])
            .await
            .map_err(StoreError::query(what))?;
        let mut by_key: BTreeMap<(i32, i32, String), String> = BTreeMap::new();
        for r in &rows {
            let kind: Option<i32> = r.try_get(0).map_err(StoreError::query(what))?;
            let id: Option<i32> = r.try_get(1).map_err(StoreError::query(what))?;
            let name: Option<String> = r.try_get(2).map_err(StoreError::query(what))?;
            let eq: Option<String> = r.try_get(3).map_err(StoreError::query(what))?;
            if let (Some(kind), Some(id), Some(name)) = (kind, id, name) {
                by_key.insert((kind, id, name), eq.unwrap_or_default());
            }
        }
        Ok(by_key
            .into_iter()
            .map(|((kind, id, name), eq)| Equation { kind, id, name, eq })
            .collect())
    }

    /// Not offered: QuestDB has neither `DELETE` nor transactions across statements, so
    /// the old equations could only be removed with a `TRUNCATE` that a daemon reloading
    /// meanwhile would see as an empty or half-written set.
    async fn replace_equations(&mut self, _: &[Equation]) -> Result<(), StoreError> {
        Err(StoreError::Unsupported {
            what: "replacing all equations".into(),
            why: "QuestDB has neither DELETE nor transactions across statements, so the \
                  old set cannot be swapped for the new one at once; add or replace \
                  equations by key instead (`recalcd equations import --merge`)"
                .into(),
        })
    }

    /// One statement per equation: an `UPDATE` of each equation it replaces (renaming
    /// it when only the case of the name differs), else an `INSERT`. The equations
    /// table is not a WAL table, so each is visible at once.
    async fn merge_equations(&mut self, equations: &[MergedEquation]) -> Result<(), StoreError> {
        let what = "merging the equations";
        let table = &self.tables.equations;
        let insert = self
            .client
            .prepare_typed(
                &format!(r#"INSERT INTO "{table}" ("type", id, name, eq) VALUES ($1, $2, $3, $4)"#),
                &[Type::INT4, Type::INT4, Type::VARCHAR, Type::VARCHAR],
            )
            .await
            .map_err(StoreError::query(what))?;
        let update = self
            .client
            .prepare_typed(
                &format!(
                    r#"UPDATE "{table}" SET name = $1, eq = $2
                        WHERE "type" = $3 AND id = $4 AND name = $5"#
                ),
                &[
                    Type::VARCHAR,
                    Type::VARCHAR,
                    Type::INT4,
                    Type::INT4,
                    Type::VARCHAR,
                ],
            )
            .await
            .map_err(StoreError::query(what))?;
        for m in equations {
            let e = &m.equation;
            if m.replaces.is_empty() {
                self.client
                    .execute(&insert, &[&e.kind, &e.id, &e.name, &e.eq])
                    .await
                    .map_err(StoreError::query(what))?;
            }
            for old in &m.replaces {
                self.client
                    .execute(&update, &[&e.name, &e.eq, &e.kind, &e.id, old])
                    .await
                    .map_err(StoreError::query(what))?;
            }
        }
        Ok(())
    }

    async fn revision(&self) -> Result<Revision, StoreError> {
        let mut h = std::hash::DefaultHasher::new();
        for (table, columns) in [
            (
                &self.tables.equations,
                r#""type", ':', id, ':', name, ':', eq"#,
            ),
            (&self.tables.constants, r#"id, ':', name, ':', value"#),
        ] {
            let what = format!("fingerprinting `{table}` (count, md5 of string_agg)");
            let sql = format!(
                r#"SELECT n, md5(s) FROM (
                     SELECT count() n, string_agg(concat({columns})::varchar, '|') s
                       FROM "{table}")"#
            );
            let rows = self
                .client
                .query(&sql, &[])
                .await
                .map_err(StoreError::query(&what))?;
            // One row (an empty table gives count 0 and a NULL md5); none is read alike.
            let (n, md5): (Option<i64>, Option<String>) = match rows.first() {
                Some(row) => (
                    row.try_get(0).map_err(StoreError::query(&what))?,
                    row.try_get(1).map_err(StoreError::query(&what))?,
                ),
                None => (None, None),
            };
            (n, md5).hash(&mut h);
        }
        Ok(Revision::of(h.finish()))
    }

    #[tracing::instrument(skip_all, fields(data = batch.data.len(), jobs = batch.jobs.len(), days = batch.days.len(), errors = batch.errors.len()))]
    async fn write_back(&mut self, batch: &WriteBatch) -> Result<WriteOutcome, StoreError> {
        self.write_batch(batch).await
    }

    async fn status(&self, latest_errors: usize) -> Result<Status, StoreError> {
        let mut backlog = Vec::new();
        for level in Level::ALL {
            self.settle(slot(level), self.table(level)).await?;
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
        let mut counts = [0u64; 2];
        for (i, table) in [&self.tables.equations, &self.tables.constants]
            .iter()
            .enumerate()
        {
            let r = self
                .client
                .query_one(&format!(r#"SELECT count(*) FROM "{table}""#), &[])
                .await
                .map_err(StoreError::query(what))?;
            let n: i64 = r.try_get(0).map_err(StoreError::query(what))?;
            counts[i] = n.max(0) as u64;
        }
        self.settle(ERRORS_SLOT, &self.tables.errors).await?;
        let what = "reading the latest errors";
        let sql = format!(
            r#"SELECT at, level, id, datetime, equation, reason FROM "{}"
                ORDER BY at DESC LIMIT {latest_errors}"#,
            self.tables.errors
        );
        let rows = self
            .client
            .query(&sql, &[])
            .await
            .map_err(StoreError::query(what))?;
        let mut latest_errors = rows
            .iter()
            .map(|r| stored_error(r, what))
            .collect::<Result<Vec<_>, _>>()?;
        self.mark_current(&mut latest_errors).await?;
        let mut failed = Vec::with_capacity(3);
        for level in Level::ALL {
            let what = format!("counting the failed {level} rows");
            let sql = format!(
                r#"SELECT count(*) FROM "{}" WHERE recalc < 0"#,
                self.table(level)
            );
            let r = self
                .client
                .query_one(&sql, &[])
                .await
                .map_err(StoreError::query(&what))?;
            let n: i64 = r.try_get(0).map_err(StoreError::query(&what))?;
            failed.push((level, n.max(0) as u64));
        }
        let problems = self.read_problems().await?;
        Ok(Status {
            dialect: Dialect::QuestDb,
            schema_version: self.schema_version().await?,
            backlog,
            equations: counts[0],
            constants: counts[1],
            latest_errors,
            failed,
            problems,
        })
    }

    async fn reflag(&mut self, level: Level, ranges: &ReflagRanges) -> Result<u64, StoreError> {
        self.flag_ranges(level, ranges).await
    }

    async fn record_problems(&self, problems: &[EquationProblem]) -> Result<(), StoreError> {
        // Without transactions or keys, keep each known problem's first `at` by hand.
        let first_seen: HashMap<String, Option<NaiveDateTime>> = self
            .read_problems()
            .await?
            .into_iter()
            .map(|p| (p.problem, p.at))
            .collect();
        let what = "recording the equation problems";
        self.client
            .batch_execute(&format!(r#"TRUNCATE TABLE "{}""#, self.tables.problems))
            .await
            .map_err(StoreError::query(what))?;
        let sql = format!(
            r#"INSERT INTO "{}" (at, "type", id, name, problem) VALUES ($1, $2, $3, $4, $5)"#,
            self.tables.problems
        );
        let stmt = self
            .client
            .prepare_typed(
                &sql,
                &[
                    Type::TIMESTAMP,
                    Type::INT4,
                    Type::INT4,
                    Type::VARCHAR,
                    Type::VARCHAR,
                ],
            )
            .await
            .map_err(StoreError::query(what))?;
        let now = chrono::Utc::now().naive_utc();
        let mut seen = HashSet::new();
        for p in problems.iter().filter(|p| seen.insert(p.problem.as_str())) {
            let at = first_seen.get(&p.problem).copied().flatten().unwrap_or(now);
            self.client
                .execute(&stmt, &[&at, &p.ty, &p.id, &p.name, &p.problem])
                .await
                .map_err(StoreError::query(what))?;
        }
        Ok(())
    }

    async fn prune_errors(&self, _before: NaiveDateTime) -> Result<u64, StoreError> {
        Err(StoreError::Unexpected {
            what: "deleting old error records".into(),
            detail: format!(
                "QuestDB cannot delete rows; `{}` is partitioned by day: drop old days with \
                 ALTER TABLE \"{}\" DROP PARTITION WHERE at < '…'",
                self.tables.errors, self.tables.errors
            ),
        })
    }

    async fn unsettled_between(
        &self,
        from: NaiveDateTime,
        to: NaiveDateTime,
        id: Option<i32>,
    ) -> Result<Vec<Unsettled>, StoreError> {
        let device = id.map_or_else(String::new, |id| format!(" AND id = {id}"));
        let mut out = Vec::with_capacity(3);
        for level in Level::ALL {
            self.settle(slot(level), self.table(level)).await?;
            let what = format!("counting the unsettled {level} rows of a range");
            let mut counts = [0u64; 2];
            for (i, flag) in ["recalc > 0", "recalc < 0"].iter().enumerate() {
                let sql = format!(
                    r#"SELECT count(*) FROM "{}"
                        WHERE {flag} AND datetime >= $1 AND datetime < $2{device}"#,
                    self.table(level)
                );
                let stmt = self
                    .client
                    .prepare_typed(&sql, &[Type::TIMESTAMP, Type::TIMESTAMP])
                    .await
                    .map_err(StoreError::query(&what))?;
                let r = self
                    .client
                    .query_one(&stmt, &[&from, &to])
                    .await
                    .map_err(StoreError::query(&what))?;
                let n: i64 = r.try_get(0).map_err(StoreError::query(&what))?;
                counts[i] = n.max(0) as u64;
            }
            out.push(Unsettled {
                level,
                flagged: counts[0],
                failed: counts[1],
            });
        }
        Ok(out)
    }

    async fn device_known(&self, id: i32) -> Result<bool, StoreError> {
        let t = &self.tables;
        for table in [&t.data, &t.job, &t.day, &t.constants, &t.equations] {
            let sql = format!(r#"SELECT id FROM "{table}" WHERE id = {id} LIMIT 1"#);
            let rows = self
                .client
                .query(&sql, &[])
                .await
                .map_err(StoreError::query("looking the device up"))?;
            if !rows.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_row_insert_numbers_parameters() {
        assert_eq!(
            multi_insert("t", "a, b", 2, 2),
            r#"INSERT INTO "t" (a, b) VALUES ($1, $2), ($3, $4)"#
        );
    }

    #[test]
    fn content_version_sees_every_column() {
        let t = chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let base = Row {
            datetime: t,
            data_time: t,
            id: 1,
            state: Some(1),
            user: None,
            gps: None,
            recalc: 1,
            conjoined: "a=1;".into(),
            version: RowVersion::ABSENT,
            unreadable: None,
        };
        let v = content_version(&base);
        let mut other = base.clone();
        other.recalc = 2;
        assert_ne!(content_version(&other), v);
        let mut other = base.clone();
        other.user = Some(String::new());
        assert_ne!(content_version(&other), v);
        let mut other = base.clone();
        other.version = RowVersion::of(5);
        assert_eq!(content_version(&other), v, "the version is not content");
    }

    #[test]
    fn overlapping_devices_are_read_together() {
        let t = |h: u32| {
            chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
                .unwrap()
                .and_hms_opt(h, 0, 0)
                .unwrap()
        };
        let k = |id, h| RowKey { id, datetime: t(h) };
        assert_eq!(key_ranges(&[]), KeyRanges::Empty);
        // The oldest flagged rows of three devices: one window.
        assert_eq!(
            key_ranges(&[k(1, 1), k(2, 1), k(3, 2), k(1, 3), k(2, 3)]),
            KeyRanges::Together {
                ids: vec![1, 2, 3],
                from: t(1),
                to: t(3)
            }
        );
        // Two devices far apart in time: each its own range.
        match key_ranges(&[k(1, 1), k(1, 2), k(2, 20), k(2, 21)]) {
            KeyRanges::PerDevice(r) => assert_eq!(r.len(), 2),
            other => panic!("{other:?}"),
        }
        // One device: its own range.
        assert!(matches!(
            key_ranges(&[k(1, 1), k(1, 5)]),
            KeyRanges::PerDevice(_)
        ));
    }

    #[test]
    fn text_types_are_interchangeable() {
        assert!(type_matches("VARCHAR", "STRING"));
        assert!(type_matches("SYMBOL", "VARCHAR"));
        assert!(!type_matches("INT", "LONG"));
    }
}
