//! The indexes on QuestDB: the index's reads and dirty log in a QuestDB data store
//! ([`QuestStore`]); and [`QuestIndex`], the catalogue and bucket tables in a QuestDB
//! index database — **not implemented yet**: every call says so, and
//! `index.database_url` can point the index at a PostgreSQL database meanwhile (data in
//! QuestDB, index in PostgreSQL is supported).
//!
//! The dirty log has no `DELETE`: a mark is a row `(start, channel, id)` with
//! `pending = true` and the time it was `marked`, deduplicated on its key; clearing it
//! upserts `pending = false`, after checking that it was not marked again since it was
//! read (a mark landing between that check and the clear is lost; maintenance runs in
//! the process that writes back, between batches, so that does not happen there).

use chrono::NaiveDateTime;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;

use super::{multi_insert, QuestStore, INSERT_CHUNK};
use crate::config::TableNames;
use crate::index::feature::{Bucket, Levels};
use crate::index::{datetime, micros, Micros, Point};
use crate::store::index::{channel_point, Built, DirtyMark, IndexSize};
use crate::store::{IndexMark, StoreError};

fn q(what: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    StoreError::query(what)
}

/// The feature index kept in a QuestDB database: not implemented yet.
pub struct QuestIndex {
    #[allow(dead_code)]
    client: Client,
    catalogue: String,
}

impl std::fmt::Debug for QuestIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuestIndex")
            .field("catalogue", &self.catalogue)
            .finish()
    }
}

fn unsupported<T>(what: &str) -> Result<T, StoreError> {
    Err(StoreError::Unsupported {
        what: what.to_string(),
        why: "keeping the feature index in QuestDB is not implemented yet; set \
              index.database_url to a PostgreSQL database (the data may stay in QuestDB)"
            .into(),
    })
}

impl QuestIndex {
    /// Wraps a connection to the index database.
    pub(crate) fn new(client: Client, tables: &TableNames) -> QuestIndex {
        QuestIndex {
            client,
            catalogue: tables.index.clone(),
        }
    }

    pub(crate) async fn ensure_catalogue(&self) -> Result<(), StoreError> {
        Ok(())
    }

    pub(crate) async fn catalogue(&self) -> Result<Vec<Built>, StoreError> {
        // Nothing can have been built here.
        Ok(Vec::new())
    }

    pub(crate) async fn create_table(&self, _table: &str) -> Result<(), StoreError> {
        unsupported("building a feature index in QuestDB")
    }

    pub(crate) async fn record(&self, _b: &Built) -> Result<(), StoreError> {
        unsupported("recording a feature index in QuestDB")
    }

    pub(crate) async fn drop_index(&mut self, _b: &Built) -> Result<(), StoreError> {
        unsupported("dropping a feature index in QuestDB")
    }

    pub(crate) async fn replace_buckets(
        &mut self,
        _table: &str,
        _levels: &Levels,
        _id: i32,
        _range: (Micros, Micros),
        _buckets: &[Bucket],
    ) -> Result<(), StoreError> {
        unsupported("writing feature index buckets to QuestDB")
    }

    pub(crate) async fn write_buckets(
        &mut self,
        _table: &str,
        _levels: &Levels,
        _id: i32,
        _buckets: &[Bucket],
    ) -> Result<(), StoreError> {
        unsupported("writing feature index buckets to QuestDB")
    }

    pub(crate) async fn load_buckets(
        &self,
        _table: &str,
        _id: i32,
        _level_len: Micros,
        _spans: &[(Micros, Micros)],
    ) -> Result<Vec<Bucket>, StoreError> {
        unsupported("reading feature index buckets from QuestDB")
    }

    pub(crate) async fn devices(&self, _table: &str) -> Result<Vec<i32>, StoreError> {
        unsupported("listing a QuestDB feature index's devices")
    }

    pub(crate) async fn size(
        &self,
        _table: &str,
        _coarsest: Micros,
    ) -> Result<IndexSize, StoreError> {
        unsupported("measuring a QuestDB feature index")
    }
}

impl QuestStore {
    /// [`crate::store::AnyStore::load_points`] on QuestDB: one range query per span.
    pub(crate) async fn index_points(
        &self,
        channel: &str,
        id: i32,
        spans: &[(Micros, Micros)],
    ) -> Result<Vec<Point>, StoreError> {
        let what = format!("reading `{channel}` of device {id}");
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
        for &(a, b) in spans {
            let rows = self
                .client
                .query(&stmt, &[&id, &datetime(a), &datetime(b)])
                .await
                .map_err(q(&what))?;
            for r in rows {
                let t: NaiveDateTime = r.try_get(0).map_err(q(&what))?;
                let text: Option<String> = r.try_get(1).map_err(q(&what))?;
                if let Some(p) = text.and_then(|c| channel_point(micros(t), &c, channel)) {
                    out.push(p);
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

    pub(crate) async fn index_dirty_marks(
        &self,
        limit: usize,
    ) -> Result<Vec<DirtyMark>, StoreError> {
        let what = "reading the index's dirty log";
        let table = self.tables.index_dirty.clone();
        self.wait_wal(&table).await?;
        let rows = self
            .client
            .query(
                &format!(
                    r#"SELECT channel, id, start, marked FROM "{table}" WHERE pending ORDER BY start LIMIT {limit}"#
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
            .index_dirty_marks(usize::MAX >> 1)
            .await?
            .into_iter()
            .collect();
        let clear: Vec<&DirtyMark> = marks.iter().filter(|m| current.contains(m)).collect();
        let table = self.tables.index_dirty.clone();
        for chunk in clear.chunks(INSERT_CHUNK) {
            let sql = multi_insert(
                &table,
                "start, channel, id, pending, marked",
                chunk.len(),
                5,
            );
            let types: Vec<Type> = [
                Type::TIMESTAMP,
                Type::VARCHAR,
                Type::INT4,
                Type::BOOL,
                Type::TIMESTAMP,
            ]
            .iter()
            .cycle()
            .take(chunk.len() * 5)
            .cloned()
            .collect();
            let stmt = self
                .client
                .prepare_typed(&sql, &types)
                .await
                .map_err(q("clearing the index's dirty log"))?;
            let marked: Vec<NaiveDateTime> = chunk.iter().map(|m| datetime(m.token)).collect();
            let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(chunk.len() * 5);
            for (m, t) in chunk.iter().zip(&marked) {
                params.extend_from_slice(&[&m.start, &m.channel, &m.id, &false, t]);
            }
            self.client
                .execute(&stmt, &params)
                .await
                .map_err(q("clearing the index's dirty log"))?;
        }
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
        let table = self.tables.index_dirty.clone();
        let now = chrono::Utc::now().naive_utc();
        for chunk in marks.chunks(INSERT_CHUNK) {
            let sql = multi_insert(
                &table,
                "start, channel, id, pending, marked",
                chunk.len(),
                5,
            );
            let types: Vec<Type> = [
                Type::TIMESTAMP,
                Type::VARCHAR,
                Type::INT4,
                Type::BOOL,
                Type::TIMESTAMP,
            ]
            .iter()
            .cycle()
            .take(chunk.len() * 5)
            .cloned()
            .collect();
            let stmt = self
                .client
                .prepare_typed(&sql, &types)
                .await
                .map_err(q("marking index buckets to recompute"))?;
            let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(chunk.len() * 5);
            for m in chunk {
                params.extend_from_slice(&[&m.start, &m.channel, &m.id, &true, &now]);
            }
            self.client
                .execute(&stmt, &params)
                .await
                .map_err(q("marking index buckets to recompute"))?;
        }
        Ok(())
    }
}
