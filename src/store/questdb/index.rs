//! The indexes on QuestDB: the index's reads and dirty log in a QuestDB data store
//! ([`QuestStore`]), and the catalogue and bucket tables in a QuestDB index database
//! ([`QuestIndex`]).
//!
//! QuestDB has neither `DELETE` nor transactions across statements: a dropped index
//! is a catalogue record with `dropped = true`, a bucket whose rows went away is
//! written with empty features, and a rebuilt span is written bucket table first,
//! catalogue last (a build cut short is finished by running it again).
//!
//! The dirty log has no `DELETE`: a mark is a row `(start, channel, id)` with
//! `pending = true` and the time it was `marked`, deduplicated on its key; clearing it
//! upserts `pending = false`, after checking that it was not marked again since it was
//! read (a mark landing between that check and the clear is lost; maintenance runs in
//! the process that writes back, between batches, so that does not happen there).

use chrono::NaiveDateTime;
use futures_util::TryStreamExt;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;

use super::{insert_many, QuestStore, INSERT_CHUNK};
use crate::config::TableNames;
use crate::index::feature::{Bucket, Levels};
use crate::index::{datetime, micros, DeviceSpan, Micros, Point};
use crate::store::index::{channel_point, levels_of, Built, DirtyMark, IndexSize};
use crate::store::{IndexMark, StoreError};

fn q(what: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    StoreError::query(what)
}

/// The catalogue and bucket tables of the feature index in a QuestDB database.
///
/// Every table is a WAL table deduplicated on its key, so writing a key again replaces
/// it; each write waits until its table has applied it (`wait_wal_table`), so the next
/// read — the parents of a recomputed bucket read their children — sees it.
pub struct QuestIndex {
    pub(super) client: Client,
    catalogue: String,
}

impl std::fmt::Debug for QuestIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuestIndex")
            .field("catalogue", &self.catalogue)
            .finish()
    }
}

/// The columns of a bucket row, in the order [`QuestIndex::insert_buckets`] binds them.
const BUCKET_COLUMNS: &str = "start, id, level_len, count, other, sum, sum_sq, min, max, first_time, first_value, last_time, last_value, digest";

const BUCKET_TYPES: [Type; 14] = [
    Type::TIMESTAMP,
    Type::INT4,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::TIMESTAMP,
    Type::FLOAT8,
    Type::TIMESTAMP,
    Type::FLOAT8,
    Type::INT8,
];

/// Buckets per multi-row `INSERT` (14 parameters each).
const BUCKET_CHUNK: usize = 400;

/// QuestDB keeps no designated timestamp before 1970: spans are clamped to it.
fn clamp((from, to): (Micros, Micros)) -> (Micros, Micros) {
    (from.max(0), to.max(0))
}

impl QuestIndex {
    /// Wraps a connection to the index database.
    pub(crate) fn new(client: Client, tables: &TableNames) -> QuestIndex {
        QuestIndex {
            client,
            catalogue: tables.index.clone(),
        }
    }

    pub(super) async fn wait_wal(&self, table: &str) -> Result<(), StoreError> {
        self.client
            .batch_execute(&format!("SELECT wait_wal_table('{table}')"))
            .await
            .map_err(q(format!(
                "waiting for table `{table}` to apply its WAL (wait_wal_table)"
            )))
    }

    /// Creates the catalogue if missing (as migration 0003 does in the data store).
    pub(crate) async fn ensure_catalogue(&self) -> Result<(), StoreError> {
        let sql = format!(
            r#"CREATE TABLE IF NOT EXISTS "{}" (
                   at TIMESTAMP, kind SYMBOL, channel SYMBOL, params VARCHAR, bucket_table VARCHAR,
                   range_from TIMESTAMP, range_to TIMESTAMP, built_at TIMESTAMP,
                   points LONG, other LONG, dropped BOOLEAN, updated_at TIMESTAMP
               ) TIMESTAMP(at) PARTITION BY YEAR WAL DEDUP UPSERT KEYS(at, kind, channel)"#,
            self.catalogue
        );
        self.client
            .batch_execute(&sql)
            .await
            .map_err(q("creating the index catalogue"))?;
        // A catalogue created before `updated_at` existed gains it here.
        self.add_column_if_missing(&self.catalogue, "updated_at", "TIMESTAMP")
            .await?;
        // Bucket tables built before buckets carried a digest gain the column (NULL
        // reads as 0: the next catch-up of a bucket compares its children and writes
        // the digest).
        let what = "listing the tables";
        let tables: std::collections::HashSet<String> = self
            .client
            .query("SELECT table_name FROM tables()", &[])
            .await
            .map_err(q(what))?
            .iter()
            .map(|r| r.try_get(0).map_err(q(what)))
            .collect::<Result<_, _>>()?;
        for b in self.catalogue().await? {
            if b.kind != crate::store::index::FEATURE || !tables.contains(&b.bucket_table) {
                continue;
            }
            self.add_column_if_missing(&b.bucket_table, "digest", "LONG")
                .await?;
        }
        Ok(())
    }

    /// Adds `column` (of QuestDB type `ty`) to `table` unless it has it (QuestDB refuses
    /// `ADD COLUMN IF NOT EXISTS` on a WAL table that has the column), and waits until
    /// the table has it.
    async fn add_column_if_missing(
        &self,
        table: &str,
        column: &str,
        ty: &str,
    ) -> Result<(), StoreError> {
        let what = format!("adding `{column}` to `{table}`");
        let has = self
            .client
            .query(
                &format!(
                    r#"SELECT "column" FROM table_columns('{table}') WHERE "column" = '{column}'"#
                ),
                &[],
            )
            .await
            .map_err(q(&what))?;
        if has.is_empty() {
            self.client
                .batch_execute(&format!(
                    r#"ALTER TABLE "{table}" ADD COLUMN {column} {ty}"#
                ))
                .await
                .map_err(q(&what))?;
            // The change is applied asynchronously: a read right after it could still
            // find the column missing.
            self.wait_wal(table).await?;
        }
        Ok(())
    }

    pub(crate) async fn catalogue(&self) -> Result<Vec<Built>, StoreError> {
        let what = "reading the index catalogue";
        self.wait_wal(&self.catalogue).await?;
        let sql = format!(
            r#"SELECT kind, channel, params, bucket_table, range_from, range_to, built_at, points, other,
                      updated_at
                 FROM "{}" WHERE NOT dropped ORDER BY kind, channel"#,
            self.catalogue
        );
        let rows = self.client.query(&sql, &[]).await.map_err(q(what))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let text = |i: usize| -> Result<String, StoreError> {
                Ok(r.try_get::<_, Option<String>>(i)
                    .map_err(q(what))?
                    .unwrap_or_default())
            };
            let params = text(2)?;
            let from: Option<NaiveDateTime> = r.try_get(4).map_err(q(what))?;
            let to: Option<NaiveDateTime> = r.try_get(5).map_err(q(what))?;
            let built_at: Option<NaiveDateTime> = r.try_get(6).map_err(q(what))?;
            let updated_at: Option<NaiveDateTime> = r.try_get(9).map_err(q(what))?;
            let count = |i: usize| -> Result<u64, StoreError> {
                Ok(r.try_get::<_, Option<i64>>(i)
                    .map_err(q(what))?
                    .unwrap_or(0)
                    .max(0) as u64)
            };
            out.push(Built {
                kind: text(0)?,
                channel: text(1)?,
                levels: levels_of(&params),
                params,
                bucket_table: text(3)?,
                range: from.zip(to).map(|(a, b)| (micros(a), micros(b))),
                built_at: built_at.unwrap_or_default(),
                updated_at: updated_at.or(built_at).unwrap_or_default(),
                points: count(7)?,
                other: count(8)?,
            });
        }
        Ok(out)
    }

    pub(crate) async fn create_table(&self, table: &str) -> Result<(), StoreError> {
        let what = format!("creating the bucket table `{table}`");
        self.client
            .batch_execute(&format!(r#"DROP TABLE IF EXISTS "{table}""#))
            .await
            .map_err(q(&what))?;
        self.client
            .batch_execute(&format!(
                r#"CREATE TABLE "{table}" (
                       start TIMESTAMP, id INT, level_len LONG, count LONG, other LONG,
                       sum DOUBLE, sum_sq DOUBLE, min DOUBLE, max DOUBLE,
                       first_time TIMESTAMP, first_value DOUBLE, last_time TIMESTAMP, last_value DOUBLE,
                       digest LONG
                   ) TIMESTAMP(start) PARTITION BY MONTH WAL DEDUP UPSERT KEYS(start, id, level_len)"#
            ))
            .await
            .map_err(q(&what))
    }

    async fn write_record(&self, b: &Built, dropped: bool) -> Result<(), StoreError> {
        let sql = format!(
            r#"INSERT INTO "{}" (at, kind, channel, params, bucket_table, range_from, range_to, built_at, points, other, dropped, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"#,
            self.catalogue
        );
        let what = format!("recording the index of `{}`", b.channel);
        let stmt = self
            .client
            .prepare_typed(
                &sql,
                &[
                    Type::TIMESTAMP,
                    Type::VARCHAR,
                    Type::VARCHAR,
                    Type::VARCHAR,
                    Type::VARCHAR,
                    Type::TIMESTAMP,
                    Type::TIMESTAMP,
                    Type::TIMESTAMP,
                    Type::INT8,
                    Type::INT8,
                    Type::BOOL,
                    Type::TIMESTAMP,
                ],
            )
            .await
            .map_err(q(&what))?;
        // One fixed `at` for every record: the key (kind, channel) decides.
        let at = datetime(0);
        let from = b.range.map(|r| datetime(r.0));
        let to = b.range.map(|r| datetime(r.1));
        let points = i64::try_from(b.points).unwrap_or(i64::MAX);
        let other = i64::try_from(b.other).unwrap_or(i64::MAX);
        self.client
            .execute(
                &stmt,
                &[
                    &at,
                    &b.kind,
                    &b.channel,
                    &b.params,
                    &b.bucket_table,
                    &from,
                    &to,
                    &b.built_at,
                    &points,
                    &other,
                    &dropped,
                    &b.updated_at,
                ],
            )
            .await
            .map_err(q(&what))?;
        self.wait_wal(&self.catalogue).await
    }

    pub(crate) async fn record(&self, b: &Built) -> Result<(), StoreError> {
        self.write_record(b, false).await
    }

    pub(crate) async fn drop_index(&mut self, b: &Built) -> Result<(), StoreError> {
        self.client
            .batch_execute(&format!(r#"DROP TABLE IF EXISTS "{}""#, b.bucket_table))
            .await
            .map_err(q(format!("dropping the index of `{}`", b.channel)))?;
        self.write_record(b, true).await
    }

    /// Multi-row `INSERT`s of `buckets` (keys already present are replaced), then waits
    /// until the table has applied them.
    async fn insert_buckets(
        &self,
        table: &str,
        id: i32,
        rows: &[(Micros, Micros, crate::store::index::StoredFeatures)],
    ) -> Result<(), StoreError> {
        let what = format!("writing buckets to `{table}`");
        for chunk in rows.chunks(BUCKET_CHUNK) {
            let starts: Vec<NaiveDateTime> = chunk.iter().map(|r| datetime(r.0)).collect();
            let mut params: Vec<&(dyn ToSql + Sync)> =
                Vec::with_capacity(chunk.len() * BUCKET_TYPES.len());
            for ((_, len, f), start) in chunk.iter().zip(&starts) {
                params.extend_from_slice(&[
                    start,
                    &id,
                    len,
                    &f.count,
                    &f.other,
                    &f.sum,
                    &f.sum_sq,
                    &f.min,
                    &f.max,
                    &f.first_time,
                    &f.first_value,
                    &f.last_time,
                    &f.last_value,
                    &f.digest,
                ]);
            }
            insert_many(
                &self.client,
                table,
                BUCKET_COLUMNS,
                &BUCKET_TYPES,
                &params,
                &what,
            )
            .await?;
        }
        self.wait_wal(table).await
    }

    pub(crate) async fn replace_buckets(
        &mut self,
        table: &str,
        levels: &Levels,
        id: i32,
        range: (Micros, Micros),
        buckets: &[Bucket],
    ) -> Result<(), StoreError> {
        let (from, to) = clamp(range);
        let what = format!("reading bucket keys from `{table}`");
        // No DELETE: the buckets of the span that are not rebuilt become empty ones.
        let existing = self
            .client
            .query(
                &format!(
                    r#"SELECT start, level_len FROM "{table}"
                        WHERE id = $1 AND start >= $2 AND start < $3 AND (count > 0 OR other > 0)"#
                ),
                &[&id, &datetime(from), &datetime(to)],
            )
            .await
            .map_err(q(&what))?;
        let mut rows: Vec<(Micros, Micros, crate::store::index::StoredFeatures)> = buckets
            .iter()
            .map(|b| {
                (
                    b.start,
                    levels.length(b.level),
                    crate::store::index::StoredFeatures::of(&b.features),
                )
            })
            .collect();
        let kept: std::collections::HashSet<(Micros, Micros)> =
            rows.iter().map(|r| (r.0, r.1)).collect();
        let empty =
            crate::store::index::StoredFeatures::of(&crate::index::feature::Features::EMPTY);
        for r in existing {
            let start: NaiveDateTime = r.try_get(0).map_err(q(&what))?;
            let len: i64 = r.try_get(1).map_err(q(&what))?;
            let key = (micros(start), len);
            if !kept.contains(&key) {
                rows.push((key.0, key.1, empty));
            }
        }
        rows.sort_by_key(|r| (r.0, r.1));
        self.insert_buckets(table, id, &rows).await
    }

    pub(crate) async fn write_buckets(
        &mut self,
        table: &str,
        levels: &Levels,
        buckets: &[(i32, Bucket)],
    ) -> Result<(), StoreError> {
        let mut by_device: std::collections::BTreeMap<i32, Vec<_>> = Default::default();
        for (id, b) in buckets {
            by_device.entry(*id).or_default().push((
                b.start,
                levels.length(b.level),
                crate::store::index::StoredFeatures::of(&b.features),
            ));
        }
        for (id, mut rows) in by_device {
            rows.sort_by_key(|r| (r.0, r.1));
            self.insert_buckets(table, id, &rows).await?;
        }
        Ok(())
    }

    pub(crate) async fn load_buckets(
        &self,
        table: &str,
        level_len: Micros,
        spans: &[DeviceSpan],
    ) -> Result<Vec<(i32, Bucket)>, StoreError> {
        let what = format!("reading buckets from `{table}`");
        let sql = format!(
            r#"SELECT start, count, other, sum, sum_sq, min, max, first_time, first_value, last_time, last_value,
                      digest
                 FROM "{table}"
                WHERE id = $1 AND level_len = $2 AND start >= $3 AND start < $4 AND (count > 0 OR other > 0)
                ORDER BY start"#
        );
        let stmt = self
            .client
            .prepare_typed(
                &sql,
                &[Type::INT4, Type::INT8, Type::TIMESTAMP, Type::TIMESTAMP],
            )
            .await
            .map_err(q(&what))?;
        // One range query per span, all in flight at once (pipelined on the connection).
        let per_span = futures_util::future::try_join_all(spans.iter().map(|&(id, a, b)| {
            let (stmt, what) = (&stmt, &what);
            async move {
                let (a, b) = clamp((a, b));
                if a >= b {
                    return Ok(Vec::new());
                }
                let rows = self
                    .client
                    .query(stmt, &[&id, &level_len, &datetime(a), &datetime(b)])
                    .await
                    .map_err(q(what))?;
                rows.iter()
                    .map(|r| {
                        let start: NaiveDateTime = r.try_get(0).map_err(q(what))?;
                        let stored = crate::store::index::StoredFeatures::from_row(r, 1, what)?;
                        Ok((
                            id,
                            Bucket {
                                level: 0,
                                start: micros(start),
                                features: stored.features(),
                            },
                        ))
                    })
                    .collect::<Result<Vec<_>, StoreError>>()
            }
        }))
        .await?;
        Ok(per_span.into_iter().flatten().collect())
    }

    pub(crate) async fn devices(&self, table: &str) -> Result<Vec<i32>, StoreError> {
        let what = format!("listing the devices of `{table}`");
        let rows = self
            .client
            .query(
                &format!(r#"SELECT DISTINCT id FROM "{table}" ORDER BY id"#),
                &[],
            )
            .await
            .map_err(q(&what))?;
        rows.iter()
            .map(|r| {
                Ok(r.try_get::<_, Option<i32>>(0)
                    .map_err(q(&what))?
                    .unwrap_or(0))
            })
            .collect()
    }

    pub(crate) async fn size(
        &self,
        table: &str,
        coarsest: Micros,
    ) -> Result<IndexSize, StoreError> {
        let what = format!("measuring `{table}`");
        let all = self
            .client
            .query_one(&format!(r#"SELECT count() FROM "{table}""#), &[])
            .await
            .map_err(q(&what))?;
        let sums = self
            .client
            .query_one(
                &format!(
                    r#"SELECT sum(count), sum(other) FROM "{table}" WHERE level_len = {coarsest}"#
                ),
                &[],
            )
            .await
            .map_err(q(&what))?;
        let n = |r: &tokio_postgres::Row, i: usize| -> Result<u64, StoreError> {
            Ok(r.try_get::<_, Option<i64>>(i)
                .map_err(q(&what))?
                .unwrap_or(0)
                .max(0) as u64)
        };
        Ok(IndexSize {
            buckets: n(&all, 0)?,
            bytes: None,
            points: n(&sums, 0)?,
            other: n(&sums, 1)?,
        })
    }
}

impl QuestStore {
    /// [`crate::store::AnyStore::load_points_of`] on QuestDB: one range query per span
    /// (`spans` merged, so the points come ordered by device and time).
    pub(crate) async fn index_points(
        &self,
        channel: &str,
        spans: &[DeviceSpan],
    ) -> Result<Vec<(i32, Point)>, StoreError> {
        let what = match spans {
            [(id, ..)] => format!("reading `{channel}` of device {id}"),
            _ => format!("reading `{channel}` of {} spans of devices", spans.len()),
        };
        let data = self.tables.data.clone();
        self.settle(super::slot(crate::store::Level::Data), &data)
            .await?;
        let sql = format!(
            r#"SELECT datetime, conjoined FROM "{data}"
                WHERE id = $1 AND datetime >= $2 AND datetime < $3 ORDER BY datetime"#
        );
        let stmt = self
            .client
            .prepare_typed(&sql, &[Type::INT4, Type::TIMESTAMP, Type::TIMESTAMP])
            .await
            .map_err(q(&what))?;
        let mut out = Vec::new();
        for &(id, a, b) in spans {
            // Streamed: a scan of a long range keeps its points, not its rows.
            let (a, b) = (datetime(a), datetime(b));
            let params: [&(dyn ToSql + Sync); 3] = [&id, &a, &b];
            let rows = self
                .client
                .query_raw(&stmt, params)
                .await
                .map_err(q(&what))?;
            let mut rows = std::pin::pin!(rows);
            while let Some(r) = rows.try_next().await.map_err(q(&what))? {
                let t: NaiveDateTime = r.try_get(0).map_err(q(&what))?;
                let text: Option<&str> = r.try_get(1).map_err(q(&what))?;
                if let Some(p) = text.and_then(|c| channel_point(micros(t), c, channel)) {
                    out.push((id, p));
                }
            }
        }
        Ok(out)
    }

    pub(crate) async fn index_untrusted(
        &self,
        channel: &str,
        id: i32,
        (from, to): (Micros, Micros),
    ) -> Result<(Vec<NaiveDateTime>, Vec<NaiveDateTime>), StoreError> {
        let what = format!("reading what the index of `{channel}` cannot vouch for");
        let dirty_table = self.tables.index_dirty.clone();
        self.wait_wal(&dirty_table).await?;
        let back = datetime(from - crate::index::DAY);
        let dirty = self
            .client
            .query(
                &format!(
                    r#"SELECT start FROM "{dirty_table}"
                        WHERE channel = $1 AND id = $2 AND pending AND start >= $3 AND start < $4"#
                ),
                &[&channel, &id, &back, &datetime(to)],
            )
            .await
            .map_err(q(&what))?;
        let data = self.tables.data.clone();
        self.settle(super::slot(crate::store::Level::Data), &data)
            .await?;
        let flagged = self
            .client
            .query(
                &format!(
                    r#"SELECT datetime FROM "{data}" WHERE id = $1 AND datetime >= $2 AND datetime < $3 AND recalc > 0"#
                ),
                &[&id, &datetime(from), &datetime(to)],
            )
            .await
            .map_err(q(&what))?;
        let col = |rows: Vec<tokio_postgres::Row>| -> Result<Vec<NaiveDateTime>, StoreError> {
            rows.iter()
                .map(|r| r.try_get(0).map_err(q(&what)))
                .collect()
        };
        Ok((col(dirty)?, col(flagged)?))
    }

    /// The marks the maintainer brings up to date: all but the subsequence indexes'
    /// (left to `index build`, see [`crate::store::subsequence`]).
    pub(crate) async fn index_dirty_marks(
        &self,
        limit: usize,
    ) -> Result<Vec<DirtyMark>, StoreError> {
        self.dirty_marks_where(limit, true).await
    }

    async fn dirty_marks_where(
        &self,
        limit: usize,
        maintained: bool,
    ) -> Result<Vec<DirtyMark>, StoreError> {
        let what = "reading the index's dirty log";
        let only = if maintained {
            format!(
                " AND NOT (channel LIKE '{}%')",
                crate::store::subsequence::MARK_PREFIX
            )
        } else {
            String::new()
        };
        let table = self.tables.index_dirty.clone();
        self.wait_wal(&table).await?;
        let rows = self
            .client
            .query(
                &format!(
                    r#"SELECT channel, id, start, marked FROM "{table}" WHERE pending{only} ORDER BY start LIMIT {limit}"#
                ),
                &[],
            )
            .await
            .map_err(q(what))?;
        rows.iter()
            .map(|r| {
                let marked: Option<NaiveDateTime> = r.try_get(3).map_err(q(what))?;
                Ok(DirtyMark {
                    channel: r
                        .try_get::<_, Option<String>>(0)
                        .map_err(q(what))?
                        .unwrap_or_default(),
                    id: r
                        .try_get::<_, Option<i32>>(1)
                        .map_err(q(what))?
                        .unwrap_or(0),
                    start: r.try_get(2).map_err(q(what))?,
                    token: marked.map_or(0, micros),
                })
            })
            .collect()
    }

    pub(crate) async fn index_clear_dirty(&self, marks: &[DirtyMark]) -> Result<(), StoreError> {
        // Leave what was marked again since it was read.
        let current: std::collections::HashSet<DirtyMark> = self
            .dirty_marks_where(usize::MAX >> 1, false)
            .await?
            .into_iter()
            .collect();
        let clear: Vec<&DirtyMark> = marks.iter().filter(|m| current.contains(m)).collect();
        let table = self.tables.index_dirty.clone();
        let rows: Vec<(NaiveDateTime, &str, i32, bool, NaiveDateTime)> = clear
            .iter()
            .map(|m| (m.start, m.channel.as_str(), m.id, false, datetime(m.token)))
            .collect();
        self.write_dirty(&rows, "clearing the index's dirty log")
            .await?;
        self.wait_wal(&table).await
    }

    pub(crate) async fn index_dirty_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let what = "counting the index's dirty log";
        let table = self.tables.index_dirty.clone();
        self.wait_wal(&table).await?;
        let rows = self
            .client
            .query(
                &format!(
                    r#"SELECT channel, count() FROM "{table}" WHERE pending GROUP BY channel ORDER BY channel"#
                ),
                &[],
            )
            .await
            .map_err(q(what))?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<_, Option<String>>(0)
                        .map_err(q(what))?
                        .unwrap_or_default(),
                    r.try_get::<_, i64>(1).map_err(q(what))?.max(0) as u64,
                ))
            })
            .collect()
    }

    /// The devices with data rows in `[from, to)` (an interval scan on the designated
    /// timestamp).
    pub(crate) async fn index_devices_in(
        &self,
        range: (Micros, Micros),
    ) -> Result<Vec<i32>, StoreError> {
        let what = "finding the devices with rows in the range";
        let data = self.tables.data.clone();
        self.settle(super::slot(crate::store::Level::Data), &data)
            .await?;
        let rows = self
            .client
            .query(
                &format!(
                    r#"SELECT DISTINCT id FROM "{data}"
                        WHERE datetime >= $1 AND datetime < $2 ORDER BY id"#
                ),
                &[&datetime(range.0), &datetime(range.1)],
            )
            .await
            .map_err(q(what))?;
        rows.iter().map(|r| r.try_get(0).map_err(q(what))).collect()
    }

    pub(crate) async fn index_extent(
        &self,
        range: Option<(Micros, Micros)>,
    ) -> Result<Vec<(i32, Micros, Micros)>, StoreError> {
        let what = "finding the devices and range to index";
        let data = self.tables.data.clone();
        self.settle(super::slot(crate::store::Level::Data), &data)
            .await?;
        let (from, to) = range.unwrap_or((0, 4_102_444_800 * crate::index::SECOND));
        let rows = self
            .client
            .query(
                &format!(
                    r#"SELECT id, min(datetime), max(datetime) FROM "{data}"
                        WHERE datetime >= $1 AND datetime < $2 GROUP BY id ORDER BY id"#
                ),
                &[&datetime(from), &datetime(to)],
            )
            .await
            .map_err(q(what))?;
        rows.iter()
            .map(|r| {
                let a: NaiveDateTime = r.try_get(1).map_err(q(what))?;
                let b: NaiveDateTime = r.try_get(2).map_err(q(what))?;
                Ok((r.try_get(0).map_err(q(what))?, micros(a), micros(b)))
            })
            .collect()
    }

    /// Records a write-back's marks, before its data rows (see the module docs).
    pub(crate) async fn index_mark(&self, marks: &[IndexMark]) -> Result<(), StoreError> {
        let now = chrono::Utc::now().naive_utc();
        let rows: Vec<(NaiveDateTime, &str, i32, bool, NaiveDateTime)> = marks
            .iter()
            .map(|m| (m.start, m.channel.as_str(), m.id, true, now))
            .collect();
        self.write_dirty(&rows, "marking index buckets to recompute")
            .await?;
        Ok(())
    }

    /// Upserts rows `(start, channel, id, pending, marked)` of the dirty log (dedup
    /// replaces a bucket's earlier row).
    async fn write_dirty(
        &self,
        rows: &[(NaiveDateTime, &str, i32, bool, NaiveDateTime)],
        what: &'static str,
    ) -> Result<(), StoreError> {
        const COLUMNS: [Type; 5] = [
            Type::TIMESTAMP,
            Type::VARCHAR,
            Type::INT4,
            Type::BOOL,
            Type::TIMESTAMP,
        ];
        for chunk in rows.chunks(INSERT_CHUNK) {
            let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(chunk.len() * 5);
            for (start, channel, id, pending, marked) in chunk {
                params.extend_from_slice(&[start, channel, id, pending, marked]);
            }
            insert_many(
                &self.client,
                &self.tables.index_dirty,
                "start, channel, id, pending, marked",
                &COLUMNS,
                &params,
                what,
            )
            .await?;
        }
        Ok(())
    }
}
