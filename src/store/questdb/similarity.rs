//! The similarity index on QuestDB: its job tables ([`QuestIndex`]) and the reads of
//! job series from the data table ([`QuestStore`]).
//!
//! No `DELETE`: a removed entry is a row with an empty `entry` (readers skip it); the
//! entry itself is written as hex text (QuestDB's PG wire takes no `bytea` parameter
//! for a `BINARY` column reliably), 144 characters for 8 coefficients.

use chrono::NaiveDateTime;
use futures_util::TryStreamExt;
use tokio_postgres::types::{ToSql, Type};

use super::index::QuestIndex;
use super::{insert_many, QuestStore, INSERT_CHUNK};
use crate::index::similarity::{Key, Params};
use crate::index::{datetime, micros, Micros};
use crate::store::index::{channel_point, IndexSize};
use crate::store::similarity::{entry_and_word, job_rows, JobSeries, StoredEntry};
use crate::store::StoreError;

fn q(what: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    StoreError::query(what)
}

pub(super) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

pub(super) fn unhex(text: &str) -> Option<Vec<u8>> {
    let t = text.as_bytes();
    if !t.len().is_multiple_of(2) {
        return None;
    }
    t.chunks(2)
        .map(|c| {
            let d = |x: u8| (x as char).to_digit(16);
            Some((d(c[0])? * 16 + d(c[1])?) as u8)
        })
        .collect()
}

const ENTRY_COLUMNS: &str = "start, id, end_time, points, dropped, entry";
const ENTRY_TYPES: [Type; 6] = [
    Type::TIMESTAMP,
    Type::INT4,
    Type::TIMESTAMP,
    Type::INT4,
    Type::INT4,
    Type::VARCHAR,
];

impl QuestIndex {
    pub(crate) async fn create_similarity_table(&self, table: &str) -> Result<(), StoreError> {
        let what = format!("creating the similarity table `{table}`");
        self.client
            .batch_execute(&format!(r#"DROP TABLE IF EXISTS "{table}""#))
            .await
            .map_err(q(&what))?;
        self.client
            .batch_execute(&format!(
                r#"CREATE TABLE "{table}" (
                       start TIMESTAMP, id INT, end_time TIMESTAMP, points INT, dropped INT, entry VARCHAR
                   ) TIMESTAMP(start) PARTITION BY YEAR WAL DEDUP UPSERT KEYS(start, id)"#
            ))
            .await
            .map_err(q(&what))
    }

    async fn insert_entries(
        &self,
        table: &str,
        rows: &[(NaiveDateTime, i32, NaiveDateTime, i32, i32, String)],
    ) -> Result<(), StoreError> {
        let what = format!("writing entries to `{table}`");
        for chunk in rows.chunks(INSERT_CHUNK) {
            let mut params: Vec<&(dyn ToSql + Sync)> =
                Vec::with_capacity(chunk.len() * ENTRY_TYPES.len());
            for (a, b, c, d, e, f) in chunk {
                params.extend_from_slice(&[a, b, c, d, e, f]);
            }
            insert_many(
                &self.client,
                table,
                ENTRY_COLUMNS,
                &ENTRY_TYPES,
                &params,
                &what,
            )
            .await?;
        }
        self.wait_wal(table).await
    }

    pub(crate) async fn write_entries(
        &self,
        table: &str,
        entries: &[StoredEntry],
    ) -> Result<(), StoreError> {
        let rows: Vec<_> = entries
            .iter()
            .map(|e| {
                (
                    datetime(e.key.start),
                    e.key.id,
                    datetime(e.end),
                    i32::try_from(e.points).unwrap_or(i32::MAX),
                    i32::try_from(e.dropped).unwrap_or(i32::MAX),
                    hex(&e.bytes()),
                )
            })
            .collect();
        self.insert_entries(table, &rows).await
    }

    pub(crate) async fn remove_entries(&self, table: &str, keys: &[Key]) -> Result<(), StoreError> {
        let rows: Vec<_> = keys
            .iter()
            .map(|k| {
                (
                    datetime(k.start),
                    k.id,
                    datetime(k.start),
                    0,
                    0,
                    String::new(),
                )
            })
            .collect();
        self.insert_entries(table, &rows).await
    }

    pub(crate) async fn load_entries(
        &self,
        table: &str,
        params: Params,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let what = format!("reading the entries of `{table}`");
        self.wait_wal(table).await?;
        let sql = format!(r#"SELECT id, start, end_time, points, dropped, entry FROM "{table}""#);
        let rows = self
            .client
            .query_raw(&sql, std::iter::empty::<i32>())
            .await
            .map_err(q(&what))?;
        let mut rows = std::pin::pin!(rows);
        let mut out = Vec::new();
        while let Some(r) = rows.try_next().await.map_err(q(&what))? {
            let text: Option<&str> = r.try_get(5).map_err(q(&what))?;
            let Some(text) = text.filter(|t| !t.is_empty()) else {
                continue;
            };
            let bad = |detail: String| StoreError::Unexpected {
                what: what.clone(),
                detail,
            };
            let bytes = unhex(text)
                .ok_or_else(|| bad("an entry that is not hex (rebuild the index)".into()))?;
            let (entry, word) =
                entry_and_word(&bytes, params.coefficients).map_err(|e| bad(e.to_string()))?;
            let start: NaiveDateTime = r.try_get(1).map_err(q(&what))?;
            let end: Option<NaiveDateTime> = r.try_get(2).map_err(q(&what))?;
            let n = |i: usize| -> Result<u32, StoreError> {
                Ok(u32::try_from(
                    r.try_get::<_, Option<i32>>(i)
                        .map_err(q(&what))?
                        .unwrap_or(0),
                )
                .unwrap_or(0))
            };
            out.push(StoredEntry {
                key: Key {
                    id: r
                        .try_get::<_, Option<i32>>(0)
                        .map_err(q(&what))?
                        .unwrap_or(0),
                    start: micros(start),
                },
                end: end.map_or(micros(start), micros),
                points: n(3)?,
                dropped: n(4)?,
                entry,
                word,
            });
        }
        Ok(out)
    }

    pub(crate) async fn entry_keys(
        &self,
        table: &str,
        id: Option<i32>,
        (from, to): (Micros, Micros),
    ) -> Result<Vec<Key>, StoreError> {
        let what = format!("listing the entries of `{table}`");
        self.wait_wal(table).await?;
        let rows = self
            .client
            .query(
                &format!(
                    r#"SELECT id, start FROM "{table}"
                        WHERE start >= $1 AND start < $2 AND entry <> ''"#
                ),
                &[&datetime(from.max(0)), &datetime(to.max(0))],
            )
            .await
            .map_err(q(&what))?;
        let mut out = Vec::new();
        for r in rows {
            let k: Option<i32> = r.try_get(0).map_err(q(&what))?;
            let start: NaiveDateTime = r.try_get(1).map_err(q(&what))?;
            let k = k.unwrap_or(0);
            if id.is_none_or(|want| want == k) {
                out.push(Key {
                    id: k,
                    start: micros(start),
                });
            }
        }
        Ok(out)
    }

    pub(crate) async fn similarity_size(&self, table: &str) -> Result<IndexSize, StoreError> {
        let what = format!("measuring `{table}`");
        self.wait_wal(table).await?;
        let r = self
            .client
            .query_one(
                &format!(
                    r#"SELECT count(), sum(points), sum(dropped) FROM "{table}" WHERE entry <> ''"#
                ),
                &[],
            )
            .await
            .map_err(q(&what))?;
        let n = |i: usize| -> Result<u64, StoreError> {
            Ok(r.try_get::<_, Option<i64>>(i)
                .map_err(q(&what))?
                .unwrap_or(0)
                .max(0) as u64)
        };
        Ok(IndexSize {
            buckets: n(0)?,
            bytes: None,
            points: n(1)?,
            other: n(2)?,
        })
    }
}

impl QuestStore {
    async fn settle_data(&self) -> Result<(), StoreError> {
        let data = self.tables.data.clone();
        self.settle(super::slot(crate::store::Level::Data), &data)
            .await
    }

    pub(crate) async fn job_series(
        &self,
        channel: &str,
        id: i32,
        (from, to): (Micros, Micros),
    ) -> Result<Vec<JobSeries>, StoreError> {
        let what = format!("reading the jobs of device {id}");
        self.settle_data().await?;
        // A job's rows lie at or after its start: `datetime >= from` prunes partitions.
        let sql = format!(
            r#"SELECT data_time, datetime, conjoined FROM "{}"
                WHERE id = $1 AND datetime >= $2 AND data_time >= $2 AND data_time < $3
                ORDER BY data_time, datetime"#,
            self.tables.data
        );
        let stmt = self
            .client
            .prepare_typed(&sql, &[Type::INT4, Type::TIMESTAMP, Type::TIMESTAMP])
            .await
            .map_err(q(&what))?;
        let (a, b) = (datetime(from.max(0)), datetime(to.max(0)));
        let params: [&(dyn ToSql + Sync); 3] = [&id, &a, &b];
        let rows = self
            .client
            .query_raw(&stmt, params)
            .await
            .map_err(q(&what))?;
        job_rows(rows, id, channel, &what).await
    }

    pub(crate) async fn jobs_points(
        &self,
        channel: &str,
        jobs: &[(Key, Option<Micros>)],
    ) -> Result<Vec<JobSeries>, StoreError> {
        let what = format!("reading the `{channel}` series of {} job(s)", jobs.len());
        self.settle_data().await?;
        let sql = format!(
            r#"SELECT datetime, conjoined FROM "{}"
                WHERE id = $1 AND data_time = $2 AND datetime >= $2 AND datetime <= $3
                ORDER BY datetime"#,
            self.tables.data
        );
        let stmt = self
            .client
            .prepare_typed(&sql, &[Type::INT4, Type::TIMESTAMP, Type::TIMESTAMP])
            .await
            .map_err(q(&what))?;
        let mut out = Vec::new();
        for (key, end) in jobs {
            let start = datetime(key.start);
            let end = datetime(end.unwrap_or(crate::store::index::ALL_TIME.1 - 1));
            let rows = self
                .client
                .query(&stmt, &[&key.id, &start, &end])
                .await
                .map_err(q(&what))?;
            if rows.is_empty() {
                continue;
            }
            let mut job = JobSeries {
                key: *key,
                end: key.start,
                points: Vec::new(),
            };
            for r in rows {
                let t: NaiveDateTime = r.try_get(0).map_err(q(&what))?;
                let text: Option<&str> = r.try_get(1).map_err(q(&what))?;
                job.end = job.end.max(micros(t));
                if let Some(p) = text.and_then(|c| channel_point(micros(t), c, channel)) {
                    job.points.push(p);
                }
            }
            out.push(job);
        }
        Ok(out)
    }

    pub(crate) async fn untrusted_jobs(&self, mark: &str) -> Result<Vec<Key>, StoreError> {
        let what = "reading the jobs the similarity index cannot vouch for";
        self.settle_data().await?;
        let dirty = self.tables.index_dirty.clone();
        self.client
            .batch_execute(&format!("SELECT wait_wal_table('{dirty}')"))
            .await
            .map_err(q(what))?;
        let mut out = Vec::new();
        let rows = self
            .client
            .query(
                &format!(r#"SELECT id, start FROM "{dirty}" WHERE channel = $1 AND pending"#),
                &[&mark],
            )
            .await
            .map_err(q(what))?;
        let rows2 = self
            .client
            .query(
                &format!(
                    r#"SELECT DISTINCT id, data_time FROM "{}" WHERE recalc > 0"#,
                    self.tables.data
                ),
                &[],
            )
            .await
            .map_err(q(what))?;
        for r in rows.iter().chain(&rows2) {
            let id: Option<i32> = r.try_get(0).map_err(q(what))?;
            let start: Option<NaiveDateTime> = r.try_get(1).map_err(q(what))?;
            if let (Some(id), Some(start)) = (id, start) {
                out.push(Key {
                    id,
                    start: micros(start),
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let b = vec![0u8, 1, 0xab, 0xff];
        assert_eq!(hex(&b), "0001abff");
        assert_eq!(unhex(&hex(&b)), Some(b));
        assert_eq!(unhex("0g"), None);
    }
}
