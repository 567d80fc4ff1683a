//! The subsequence index on QuestDB: its box tables ([`QuestIndex`]) and the reads of
//! its dirty marks ([`QuestStore`]).
//!
//! No `DELETE`: a device's older generations stay in the table, unread (see
//! [`crate::store::subsequence`]); the bounds are written as hex text, as the
//! similarity index's entries are.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use tokio_postgres::types::{ToSql, Type};

use super::index::QuestIndex;
use super::similarity::{hex, unhex};
use super::{insert_many, QuestStore, INSERT_CHUNK};
use crate::index::{datetime, micros, Micros};
use crate::store::index::{DirtyMark, IndexSize};
use crate::store::subsequence::StoredBox;
use crate::store::StoreError;

fn q(what: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    StoreError::query(what)
}

const BOX_COLUMNS: &str =
    "first_time, id, generation, first_window, windows, last_start, last_time, bounds";
const BOX_TYPES: [Type; 8] = [
    Type::TIMESTAMP,
    Type::INT4,
    Type::INT8,
    Type::INT8,
    Type::INT4,
    Type::TIMESTAMP,
    Type::TIMESTAMP,
    Type::VARCHAR,
];

impl QuestIndex {
    pub(crate) async fn create_subsequence_table(&self, table: &str) -> Result<(), StoreError> {
        let what = format!("creating the subsequence table `{table}`");
        self.client
            .batch_execute(&format!(r#"DROP TABLE IF EXISTS "{table}""#))
            .await
            .map_err(q(&what))?;
        self.client
            .batch_execute(&format!(
                r#"CREATE TABLE "{table}" (
                       first_time TIMESTAMP, id INT, generation LONG, first_window LONG, windows INT,
                       last_start TIMESTAMP, last_time TIMESTAMP, bounds VARCHAR
                   ) TIMESTAMP(first_time) PARTITION BY YEAR WAL
                     DEDUP UPSERT KEYS(first_time, id, generation)"#
            ))
            .await
            .map_err(q(&what))
    }

    pub(crate) async fn write_boxes(
        &self,
        table: &str,
        boxes: &[StoredBox],
    ) -> Result<(), StoreError> {
        let what = format!("writing boxes to `{table}`");
        type BoxRow = (
            NaiveDateTime,
            i32,
            i64,
            i64,
            i32,
            NaiveDateTime,
            NaiveDateTime,
            String,
        );
        let rows: Vec<BoxRow> = boxes
            .iter()
            .map(|b| {
                (
                    datetime(b.first_time),
                    b.id,
                    b.generation,
                    b.first_window,
                    i32::try_from(b.windows).unwrap_or(i32::MAX),
                    datetime(b.last_start),
                    datetime(b.last_time),
                    hex(&b.bytes()),
                )
            })
            .collect();
        for chunk in rows.chunks(INSERT_CHUNK) {
            let mut params: Vec<&(dyn ToSql + Sync)> =
                Vec::with_capacity(chunk.len() * BOX_TYPES.len());
            for (a, b, c, d, e, f, g, h) in chunk {
                params.extend_from_slice(&[a, b, c, d, e, f, g, h]);
            }
            insert_many(&self.client, table, BOX_COLUMNS, &BOX_TYPES, &params, &what).await?;
        }
        self.wait_wal(table).await
    }

    /// No `DELETE`: older generations stay, unread.
    pub(crate) async fn retire_boxes(
        &self,
        _table: &str,
        _id: i32,
        _generation: i64,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    pub(crate) async fn load_boxes(
        &self,
        table: &str,
        id: i32,
        (from, to): (Micros, Micros),
    ) -> Result<Vec<StoredBox>, StoreError> {
        let what = format!("reading the boxes of `{table}`");
        self.wait_wal(table).await?;
        let latest: Option<i64> = self
            .client
            .query_one(
                &format!(r#"SELECT max(generation) FROM "{table}" WHERE id = $1"#),
                &[&id],
            )
            .await
            .and_then(|r| r.try_get(0))
            .map_err(q(&what))?;
        let Some(generation) = latest else {
            return Ok(Vec::new());
        };
        let rows = self
            .client
            .query(
                &format!(
                    r#"SELECT id, generation, first_window, windows, first_time, last_start, last_time, bounds
                         FROM "{table}"
                        WHERE id = $1 AND generation = $2 AND first_time >= $3 AND last_time < $4
                        ORDER BY first_window"#
                ),
                &[&id, &generation, &datetime(from), &datetime(to)],
            )
            .await
            .map_err(q(&what))?;
        rows.iter()
            .map(|r| {
                let t = |i: usize| -> Result<Micros, StoreError> {
                    Ok(micros(r.try_get::<_, NaiveDateTime>(i).map_err(q(&what))?))
                };
                let text: Option<&str> = r.try_get(7).map_err(q(&what))?;
                let bounds = text
                    .and_then(unhex)
                    .and_then(|b| StoredBox::bounds_of(&b))
                    .ok_or_else(|| StoreError::Unexpected {
                        what: what.clone(),
                        detail: "a box's bounds cannot be read (rebuild the index)".into(),
                    })?;
                Ok(StoredBox {
                    id: r
                        .try_get::<_, Option<i32>>(0)
                        .map_err(q(&what))?
                        .unwrap_or(id),
                    generation: r
                        .try_get::<_, Option<i64>>(1)
                        .map_err(q(&what))?
                        .unwrap_or(0),
                    first_window: r
                        .try_get::<_, Option<i64>>(2)
                        .map_err(q(&what))?
                        .unwrap_or(0),
                    windows: u32::try_from(
                        r.try_get::<_, Option<i32>>(3)
                            .map_err(q(&what))?
                            .unwrap_or(0),
                    )
                    .unwrap_or(0),
                    first_time: t(4)?,
                    last_start: t(5)?,
                    last_time: t(6)?,
                    bounds,
                })
            })
            .collect()
    }

    /// The latest generation's boxes of every device (older ones are not counted).
    pub(crate) async fn subsequence_size(&self, table: &str) -> Result<IndexSize, StoreError> {
        let what = format!("measuring `{table}`");
        self.wait_wal(table).await?;
        let rows = self
            .client
            .query(
                &format!(r#"SELECT id, generation, count(), sum(windows) FROM "{table}""#),
                &[],
            )
            .await
            .map_err(q(&what))?;
        let mut latest: BTreeMap<i32, (i64, u64, u64)> = BTreeMap::new();
        for r in rows {
            let id: Option<i32> = r.try_get(0).map_err(q(&what))?;
            let generation: Option<i64> = r.try_get(1).map_err(q(&what))?;
            let n: i64 = r.try_get(2).map_err(q(&what))?;
            let w: Option<i64> = r.try_get(3).map_err(q(&what))?;
            let (id, generation) = (id.unwrap_or(0), generation.unwrap_or(0));
            let e = latest.entry(id).or_insert((generation, 0, 0));
            if generation >= e.0 {
                *e = (generation, n.max(0) as u64, w.unwrap_or(0).max(0) as u64);
            }
        }
        Ok(IndexSize {
            buckets: latest.values().map(|e| e.1).sum(),
            bytes: None,
            points: latest.values().map(|e| e.2).sum(),
            other: 0,
        })
    }
}

impl QuestStore {
    pub(crate) async fn index_marks_of(
        &self,
        channel: &str,
        id: i32,
    ) -> Result<Vec<DirtyMark>, StoreError> {
        let what = "reading the subsequence index's dirty marks";
        let table = self.tables.index_dirty.clone();
        self.wait_wal(&table).await?;
        let rows = self
            .client
            .query(
                &format!(
                    r#"SELECT channel, id, start, marked FROM "{table}" WHERE pending AND channel = $1 AND id = $2"#
                ),
                &[&channel, &id],
            )
            .await
            .map_err(q(what))?;
        rows.iter()
            .map(|r| {
                let marked: Option<NaiveDateTime> = r.try_get(3).map_err(q(what))?;
                Ok(DirtyMark {
                    channel: channel.to_string(),
                    id,
                    start: r.try_get(2).map_err(q(what))?,
                    token: marked.map_or(0, micros),
                })
            })
            .collect()
    }
}
