//! The QuestDB write-back: the order rows are written in, the guard, and the two ways
//! rows travel — the line protocol ([`super::ilp`]) or multi-row PG-wire `INSERT`s.
//!
//! **A batch cut short is recomputed, never left half-written with its flags cleared.**
//! QuestDB commits per table, so a batch is several commits, and recalcd or the server
//! can die between any two of them. The levels are therefore written in the order that
//! clears the flags that cause recomputation last: days, then jobs, then data rows
//! (the engine recomputes the job and the day of every flagged data row, and the day
//! of every flagged job). Each chunk is one commit of one table (one transactional ILP
//! request, or one `INSERT`): QuestDB applies all of it or none. Wherever a batch stops,
//! the data rows not yet written are still flagged, so the next run loads them and
//! recomputes them with their jobs and days, rewriting whatever was written already
//! with the same content (dedup makes the rewrite idempotent). A chunk's error records
//! are written just before its rows, so no row is left `recalc = -1` without them
//! (a cut may record an error twice).
//!
//! **Time order.** Within a level the rows are written ordered by `(datetime, id)`, so
//! each chunk — and the chunks one after another — arrive in time order: QuestDB
//! applies out-of-order rows several times slower.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::future::try_join_all;
use tokio_postgres::types::{ToSql, Type};

use super::{insert_many, slot, QuestStore, ERRORS_SLOT, INSERT_CHUNK, ROW_TYPES};
use crate::store::{
    ErrorRecord, Level, Row, RowKey, StoreError, WriteBatch, WriteOutcome, WrittenVersions,
    ROW_COLUMNS,
};

/// The levels in the order they are written: flags that cause recomputation last.
pub const WRITE_ORDER: [Level; 3] = [Level::Day, Level::Job, Level::Data];

/// Rows per line protocol request (one commit of one table); each chunk is re-read by
/// the guard just before it is sent, while the chunk before it is being sent. Half a
/// default batch: two requests of a batch's data rows, the second re-read while the
/// first is sent (at 1,000,000 rows the write-back took 1.76× QuestDB's floor with
/// 10,000 or 20,000 rows a request and 2.33× with 5,000: fewer commits, each applied
/// faster; one machine, noisy).
pub const ILP_CHUNK: usize = 10_000;

impl QuestStore {
    /// [`crate::store::Store::write_back`] on QuestDB (see the module docs).
    pub(super) async fn write_batch(
        &mut self,
        batch: &WriteBatch,
    ) -> Result<WriteOutcome, StoreError> {
        // Each row written reads back with the hash of the content written.
        let mut outcome = WriteOutcome {
            version: Some(WrittenVersions::Content),
            ..WriteOutcome::default()
        };
        let chunk_size = if self.ilp.is_some() {
            ILP_CHUNK
        } else {
            INSERT_CHUNK
        };
        // Before the rows: a crash after them must leave their buckets marked.
        self.index_mark(&batch.index_marks).await?;
        let mut errors: HashMap<(Level, RowKey), Vec<&ErrorRecord>> = HashMap::new();
        for e in &batch.errors {
            errors.entry((e.level, e.key)).or_default().push(e);
        }
        for level in WRITE_ORDER {
            let mut rows: Vec<&Row> = batch.rows(level).iter().collect();
            if rows.is_empty() {
                continue;
            }
            rows.sort_by_key(|r| (r.datetime, r.id));
            // From here on, a producer's commit may be invisible to the re-reads below
            // (WAL tables apply asynchronously): the guard's window opens.
            let started = Instant::now();
            let chunks: Vec<&[&Row]> = rows.chunks(chunk_size).collect();
            let keys_of = |chunk: &[&Row]| chunk.iter().map(|r| r.key()).collect::<Vec<RowKey>>();
            // See the producers' latest committed writes before comparing: the first
            // chunk's re-read is pipelined behind the `wait_wal_table` (one round trip;
            // the server runs it after the wait). Each later chunk's re-read runs while
            // the chunk before it is being sent: all after the wait, so the window does
            // not grow.
            let mut current = self.current_after_wait(level, &keys_of(chunks[0])).await?;
            let waited = started.elapsed();
            let (mut reread, mut sending) = (Duration::ZERO, Duration::ZERO);
            let timed = |d: &mut Duration, t: Instant| *d += t.elapsed();
            for (i, chunk) in chunks.iter().enumerate() {
                let mut keep = Vec::with_capacity(chunk.len());
                for r in chunk.iter() {
                    let unchanged = match (r.version.is_absent(), current.get(&r.key())) {
                        (true, None) => true,
                        (false, Some(now)) => *now == r.version,
                        _ => false,
                    };
                    if unchanged {
                        keep.push(*r);
                    } else {
                        outcome.skipped.push((level, r.key()));
                        errors.remove(&(level, r.key()));
                    }
                }
                let chunk_errors: Vec<&ErrorRecord> = keep
                    .iter()
                    .filter_map(|r| errors.remove(&(level, r.key())))
                    .flatten()
                    .collect();
                if !chunk_errors.is_empty() {
                    self.insert_errors(&chunk_errors).await?;
                    outcome.errors_written += chunk_errors.len();
                }
                let next = chunks.get(i + 1).map(|c| keys_of(c));
                let (mut send_time, mut read_time) = (Duration::ZERO, Duration::ZERO);
                let (sent, next_current) = tokio::join!(
                    async {
                        let t = Instant::now();
                        let sent = if keep.is_empty() {
                            Ok(())
                        } else {
                            self.send_rows(level, &keep).await
                        };
                        timed(&mut send_time, t);
                        sent
                    },
                    async {
                        let t = Instant::now();
                        let read = match &next {
                            Some(keys) => self.current_versions(level, keys).await.map(Some),
                            None => Ok(None),
                        };
                        timed(&mut read_time, t);
                        read
                    }
                );
                sending += send_time;
                reread += read_time;
                sent?;
                if !keep.is_empty() {
                    outcome.guard_window = outcome.guard_window.max(started.elapsed());
                    outcome.written += keep.len();
                }
                if let Some(c) = next_current? {
                    current = c;
                }
            }
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            tracing::debug!(
                %level,
                rows = rows.len(),
                wait_and_first_reread_ms = ms(waited),
                write_ms = ms(started.elapsed() - waited),
                reread_ms = ms(reread),
                send_ms = ms(sending),
                "level written"
            );
        }
        // Errors of rows the batch does not write (none are expected) are recorded too.
        let rest: Vec<&ErrorRecord> = errors.into_values().flatten().collect();
        if !rest.is_empty() {
            self.insert_errors(&rest).await?;
            outcome.errors_written += rest.len();
        }
        if self.applies_before_returning {
            let started = Instant::now();
            // Pipelined on the one connection: one round trip, not four.
            let mut tables: Vec<(usize, &str)> = WRITE_ORDER
                .iter()
                .map(|&level| (slot(level), self.table(level)))
                .collect();
            tables.push((ERRORS_SLOT, &self.tables.errors));
            try_join_all(
                tables
                    .into_iter()
                    .map(|(slot, table)| self.settle(slot, table)),
            )
            .await?;
            tracing::debug!(
                wait_wal_ms = started.elapsed().as_secs_f64() * 1e3,
                "batch applied"
            );
        }
        if !outcome.skipped.is_empty() {
            tracing::info!(
                skipped = outcome.skipped.len(),
                "rows changed by a producer since they were read were left to the producer"
            );
        }
        Ok(outcome)
    }

    /// Writes `rows` of `level` as one commit: one ILP request, or one `INSERT`.
    async fn send_rows(&self, level: Level, rows: &[&Row]) -> Result<(), StoreError> {
        match &self.ilp {
            Some(ilp) => ilp.write(self.table(level), rows).await?,
            None => self.insert_rows(level, rows).await?,
        }
        self.dirty[slot(level)].store(true, Ordering::Release);
        Ok(())
    }

    /// One multi-row PG-wire `INSERT` of `rows` (at most [`INSERT_CHUNK`]).
    async fn insert_rows(&self, level: Level, rows: &[&Row]) -> Result<(), StoreError> {
        let what = format!("writing back {level} rows");
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(rows.len() * 8);
        for r in rows {
            params.extend_from_slice(&r.params());
        }
        insert_many(
            &self.client,
            self.table(level),
            ROW_COLUMNS,
            &ROW_TYPES,
            &params,
            &what,
        )
        .await
    }

    /// Records `errors` with multi-row PG-wire `INSERT`s (few rows: not worth a second
    /// protocol).
    async fn insert_errors(&self, errors: &[&ErrorRecord]) -> Result<(), StoreError> {
        let what = "recording error records";
        let at = chrono::Utc::now().naive_utc();
        let levels: Vec<&str> = errors.iter().map(|e| e.level.as_str()).collect();
        for (chunk, levels) in errors.chunks(INSERT_CHUNK).zip(levels.chunks(INSERT_CHUNK)) {
            let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(chunk.len() * 6);
            for (e, level) in chunk.iter().zip(levels) {
                params.extend_from_slice(&[
                    &at,
                    level,
                    &e.key.id,
                    &e.key.datetime,
                    &e.equation,
                    &e.reason,
                ]);
            }
            insert_many(
                &self.client,
                &self.tables.errors,
                "at, level, id, datetime, equation, reason",
                &[
                    Type::TIMESTAMP,
                    Type::VARCHAR,
                    Type::INT4,
                    Type::TIMESTAMP,
                    Type::VARCHAR,
                    Type::VARCHAR,
                ],
                &params,
                what,
            )
            .await?;
        }
        self.dirty[ERRORS_SLOT].store(true, Ordering::Release);
        Ok(())
    }
}
