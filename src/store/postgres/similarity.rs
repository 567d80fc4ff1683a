//! The similarity index on PostgreSQL: its job tables ([`PgIndex`]) and the reads of
//! job series from the data table ([`PgStore`]).

use chrono::NaiveDateTime;
use futures_util::TryStreamExt;

use super::index::PgIndex;
use super::PgStore;
use crate::index::similarity::{Key, Params};
use crate::index::{datetime, micros, Micros};
use crate::store::index::{channel_point, IndexSize};
use crate::store::similarity::{entry_and_word, job_rows, JobSeries, StoredEntry};
use crate::store::StoreError;

fn q(what: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    StoreError::query(what)
}

fn clamp_u32(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

impl PgIndex {
    pub(crate) async fn create_similarity_table(&self, table: &str) -> Result<(), StoreError> {
        let sql = format!(
            r#"DROP TABLE IF EXISTS "{table}";
               CREATE TABLE "{table}" (
                   id       integer   NOT NULL,
                   start    timestamp NOT NULL,
                   end_time timestamp NOT NULL,
                   points   integer   NOT NULL,
                   dropped  integer   NOT NULL,
                   entry    bytea     NOT NULL,
                   PRIMARY KEY (id, start))"#
        );
        self.client
            .batch_execute(&sql)
            .await
            .map_err(q(format!("creating the similarity table `{table}`")))
    }

    pub(crate) async fn write_entries(
        &self,
        table: &str,
        entries: &[StoredEntry],
    ) -> Result<(), StoreError> {
        let what = format!("writing entries to `{table}`");
        let sql = format!(
            r#"INSERT INTO "{table}" (id, start, end_time, points, dropped, entry)
               SELECT * FROM unnest($1::int[], $2::timestamp[], $3::timestamp[], $4::int[], $5::int[], $6::bytea[])
               ON CONFLICT (id, start) DO UPDATE SET
                   end_time = EXCLUDED.end_time, points = EXCLUDED.points,
                   dropped = EXCLUDED.dropped, entry = EXCLUDED.entry"#
        );
        for chunk in entries.chunks(20_000) {
            let id: Vec<i32> = chunk.iter().map(|e| e.key.id).collect();
            let start: Vec<NaiveDateTime> = chunk.iter().map(|e| datetime(e.key.start)).collect();
            let end: Vec<NaiveDateTime> = chunk.iter().map(|e| datetime(e.end)).collect();
            let points: Vec<i32> = chunk
                .iter()
                .map(|e| i32::try_from(e.points).unwrap_or(i32::MAX))
                .collect();
            let dropped: Vec<i32> = chunk
                .iter()
                .map(|e| i32::try_from(e.dropped).unwrap_or(i32::MAX))
                .collect();
            let bytes: Vec<Vec<u8>> = chunk.iter().map(StoredEntry::bytes).collect();
            self.client
                .execute(&sql, &[&id, &start, &end, &points, &dropped, &bytes])
                .await
                .map_err(q(&what))?;
        }
        Ok(())
    }

    pub(crate) async fn remove_entries(&self, table: &str, keys: &[Key]) -> Result<(), StoreError> {
        let id: Vec<i32> = keys.iter().map(|k| k.id).collect();
        let start: Vec<NaiveDateTime> = keys.iter().map(|k| datetime(k.start)).collect();
        self.client
            .execute(
                &format!(
                    r#"DELETE FROM "{table}" t USING unnest($1::int[], $2::timestamp[]) k(id, start)
                        WHERE t.id = k.id AND t.start = k.start"#
                ),
                &[&id, &start],
            )
            .await
            .map_err(q(format!("removing entries from `{table}`")))?;
        Ok(())
    }

    pub(crate) async fn load_entries(
        &self,
        table: &str,
        params: Params,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let what = format!("reading the entries of `{table}`");
        let sql = format!(r#"SELECT id, start, end_time, points, dropped, entry FROM "{table}""#);
        let rows = self
            .client
            .query_raw(&sql, std::iter::empty::<i32>())
            .await
            .map_err(q(&what))?;
        let mut rows = std::pin::pin!(rows);
        let mut out = Vec::new();
        while let Some(r) = rows.try_next().await.map_err(q(&what))? {
            let start: NaiveDateTime = r.try_get(1).map_err(q(&what))?;
            let end: NaiveDateTime = r.try_get(2).map_err(q(&what))?;
            let bytes: &[u8] = r.try_get(5).map_err(q(&what))?;
            let (entry, word) =
                entry_and_word(bytes, params.coefficients).map_err(|e| StoreError::Unexpected {
                    what: what.clone(),
                    detail: e.to_string(),
                })?;
            out.push(StoredEntry {
                key: Key {
                    id: r.try_get(0).map_err(q(&what))?,
                    start: micros(start),
                },
                end: micros(end),
                points: clamp_u32(r.try_get(3).map_err(q(&what))?),
                dropped: clamp_u32(r.try_get(4).map_err(q(&what))?),
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
        let rows = self
            .client
            .query(
                &format!(
                    r#"SELECT id, start FROM "{table}"
                        WHERE ($1::int IS NULL OR id = $1) AND start >= $2 AND start < $3"#
                ),
                &[&id, &datetime(from), &datetime(to)],
            )
            .await
            .map_err(q(format!("listing the entries of `{table}`")))?;
        rows.iter()
            .map(|r| {
                let start: NaiveDateTime = r.try_get(1)?;
                Ok(Key {
                    id: r.try_get(0)?,
                    start: micros(start),
                })
            })
            .collect::<Result<Vec<_>, tokio_postgres::Error>>()
            .map_err(q(format!("listing the entries of `{table}`")))
    }

    pub(crate) async fn similarity_size(&self, table: &str) -> Result<IndexSize, StoreError> {
        let what = format!("measuring `{table}`");
        let (nodes, paths) = crate::store::vptree::tree_tables(table);
        let r = self
            .client
            .query_one(
                &format!(
                    // The vantage-point tree's tables (when built) count with the entries.
                    r#"SELECT count(*), pg_total_relation_size('"{table}"')
                              + COALESCE(pg_total_relation_size(to_regclass('"{nodes}"')), 0)
                              + COALESCE(pg_total_relation_size(to_regclass('"{paths}"')), 0),
                              COALESCE(sum(points), 0)::bigint, COALESCE(sum(dropped), 0)::bigint
                         FROM "{table}""#
                ),
                &[],
            )
            .await
            .map_err(q(&what))?;
        let n = |i: usize| -> Result<u64, StoreError> {
            Ok(r.try_get::<_, i64>(i).map_err(q(&what))?.max(0) as u64)
        };
        Ok(IndexSize {
            buckets: n(0)?,
            bytes: Some(n(1)?),
            points: n(2)?,
            other: n(3)?,
        })
    }
}

impl PgStore {
    pub(crate) async fn job_series(
        &self,
        channel: &str,
        id: i32,
        (from, to): (Micros, Micros),
    ) -> Result<Vec<JobSeries>, StoreError> {
        let what = format!("reading the jobs of device {id}");
        let sql = format!(
            r#"SELECT data_time, datetime, conjoined FROM "{}"
                WHERE id = $1 AND data_time >= $2 AND data_time < $3
                ORDER BY data_time, datetime"#,
            self.tables.data
        );
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&id, &datetime(from), &datetime(to)];
        let rows = self
            .client
            .query_raw(&sql, params)
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
        let id: Vec<i32> = jobs.iter().map(|j| j.0.id).collect();
        let start: Vec<NaiveDateTime> = jobs.iter().map(|j| datetime(j.0.start)).collect();
        // LATERAL, fenced: one probe of the (id, data_time) index per job.
        let sql = format!(
            r#"SELECT k.id, k.start, d.datetime, d.conjoined
                 FROM unnest($1::int[], $2::timestamp[]) k(id, start)
                CROSS JOIN LATERAL (
                      SELECT datetime, conjoined FROM "{}" x
                       WHERE x.id = k.id AND x.data_time = k.start
                      OFFSET 0) d
                ORDER BY k.id, k.start, d.datetime"#,
            self.tables.data
        );
        let rows = self
            .client
            .query(&sql, &[&id, &start])
            .await
            .map_err(q(&what))?;
        let mut out: Vec<JobSeries> = Vec::new();
        for r in rows {
            let id: i32 = r.try_get(0).map_err(q(&what))?;
            let start: NaiveDateTime = r.try_get(1).map_err(q(&what))?;
            let t: NaiveDateTime = r.try_get(2).map_err(q(&what))?;
            let text: Option<&str> = r.try_get(3).map_err(q(&what))?;
            let key = Key {
                id,
                start: micros(start),
            };
            if out.last().is_none_or(|j| j.key != key) {
                out.push(JobSeries {
                    key,
                    end: micros(t),
                    points: Vec::new(),
                });
            }
            if let Some(job) = out.last_mut() {
                job.end = job.end.max(micros(t));
                if let Some(p) = text.and_then(|c| channel_point(micros(t), c, channel)) {
                    job.points.push(p);
                }
            }
        }
        Ok(out)
    }

    pub(crate) async fn untrusted_jobs(&self, mark: &str) -> Result<Vec<Key>, StoreError> {
        let what = "reading the jobs the similarity index cannot vouch for";
        let sql = format!(
            r#"SELECT id, start FROM "{dirty}" WHERE channel = $1
               UNION
               SELECT DISTINCT id, data_time FROM "{data}" WHERE recalc > 0"#,
            dirty = self.tables.index_dirty,
            data = self.tables.data
        );
        let rows = self.client.query(&sql, &[&mark]).await.map_err(q(what))?;
        rows.iter()
            .map(|r| {
                let start: NaiveDateTime = r.try_get(1)?;
                Ok(Key {
                    id: r.try_get(0)?,
                    start: micros(start),
                })
            })
            .collect::<Result<Vec<_>, tokio_postgres::Error>>()
            .map_err(q(what))
    }
}
