//! The subsequence index on PostgreSQL: its box tables ([`PgIndex`]) and the reads of
//! its dirty marks ([`PgStore`]).

use chrono::NaiveDateTime;

use super::index::PgIndex;
use super::PgStore;
use crate::index::{datetime, micros, Micros};
use crate::store::index::{DirtyMark, IndexSize};
use crate::store::subsequence::StoredBox;
use crate::store::StoreError;

fn q(what: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    StoreError::query(what)
}

impl PgIndex {
    pub(crate) async fn create_subsequence_table(&self, table: &str) -> Result<(), StoreError> {
        let sql = format!(
            r#"DROP TABLE IF EXISTS "{table}";
               CREATE TABLE "{table}" (
                   id           integer   NOT NULL,
                   generation   bigint    NOT NULL,
                   first_window bigint    NOT NULL,
                   windows      integer   NOT NULL,
                   first_time   timestamp NOT NULL,
                   last_start   timestamp NOT NULL,
                   last_time    timestamp NOT NULL,
                   bounds       bytea     NOT NULL,
                   PRIMARY KEY (id, generation, first_window))"#
        );
        self.client
            .batch_execute(&sql)
            .await
            .map_err(q(format!("creating the subsequence table `{table}`")))
    }

    pub(crate) async fn write_boxes(
        &self,
        table: &str,
        boxes: &[StoredBox],
    ) -> Result<(), StoreError> {
        let what = format!("writing boxes to `{table}`");
        let sql = format!(
            r#"INSERT INTO "{table}" (id, generation, first_window, windows, first_time, last_start, last_time, bounds)
               SELECT * FROM unnest($1::int[], $2::bigint[], $3::bigint[], $4::int[],
                                    $5::timestamp[], $6::timestamp[], $7::timestamp[], $8::bytea[])
               ON CONFLICT (id, generation, first_window) DO UPDATE SET
                   windows = EXCLUDED.windows, first_time = EXCLUDED.first_time,
                   last_start = EXCLUDED.last_start, last_time = EXCLUDED.last_time,
                   bounds = EXCLUDED.bounds"#
        );
        for chunk in boxes.chunks(20_000) {
            let id: Vec<i32> = chunk.iter().map(|b| b.id).collect();
            let generation: Vec<i64> = chunk.iter().map(|b| b.generation).collect();
            let first: Vec<i64> = chunk.iter().map(|b| b.first_window).collect();
            let windows: Vec<i32> = chunk
                .iter()
                .map(|b| i32::try_from(b.windows).unwrap_or(i32::MAX))
                .collect();
            let t = |f: &dyn Fn(&StoredBox) -> Micros| -> Vec<NaiveDateTime> {
                chunk.iter().map(|b| datetime(f(b))).collect()
            };
            let (a, s, z) = (
                t(&|b| b.first_time),
                t(&|b| b.last_start),
                t(&|b| b.last_time),
            );
            let bytes: Vec<Vec<u8>> = chunk.iter().map(StoredBox::bytes).collect();
            self.client
                .execute(
                    &sql,
                    &[&id, &generation, &first, &windows, &a, &s, &z, &bytes],
                )
                .await
                .map_err(q(&what))?;
        }
        Ok(())
    }

    pub(crate) async fn retire_boxes(
        &self,
        table: &str,
        id: i32,
        generation: i64,
    ) -> Result<(), StoreError> {
        self.client
            .execute(
                &format!(r#"DELETE FROM "{table}" WHERE id = $1 AND generation <> $2"#),
                &[&id, &generation],
            )
            .await
            .map_err(q(format!("removing older boxes from `{table}`")))?;
        Ok(())
    }

    pub(crate) async fn load_boxes(
        &self,
        table: &str,
        id: i32,
        (from, to): (Micros, Micros),
    ) -> Result<Vec<StoredBox>, StoreError> {
        let what = format!("reading the boxes of `{table}`");
        let rows = self
            .client
            .query(
                &format!(
                    r#"SELECT id, generation, first_window, windows, first_time, last_start, last_time, bounds
                         FROM "{table}"
                        WHERE id = $1 AND generation = (SELECT max(generation) FROM "{table}" WHERE id = $1)
                          AND first_time >= $2 AND last_time < $3
                        ORDER BY first_window"#
                ),
                &[&id, &datetime(from), &datetime(to)],
            )
            .await
            .map_err(q(&what))?;
        rows.iter()
            .map(|r| {
                let t = |i: usize| -> Result<Micros, StoreError> {
                    Ok(micros(r.try_get::<_, NaiveDateTime>(i).map_err(q(&what))?))
                };
                let bytes: &[u8] = r.try_get(7).map_err(q(&what))?;
                Ok(StoredBox {
                    id: r.try_get(0).map_err(q(&what))?,
                    generation: r.try_get(1).map_err(q(&what))?,
                    first_window: r.try_get(2).map_err(q(&what))?,
                    windows: u32::try_from(r.try_get::<_, i32>(3).map_err(q(&what))?).unwrap_or(0),
                    first_time: t(4)?,
                    last_start: t(5)?,
                    last_time: t(6)?,
                    bounds: StoredBox::bounds_of(bytes).ok_or_else(|| StoreError::Unexpected {
                        what: what.clone(),
                        detail: "a box's bounds are not whole numbers (rebuild the index)".into(),
                    })?,
                })
            })
            .collect()
    }

    pub(crate) async fn subsequence_size(&self, table: &str) -> Result<IndexSize, StoreError> {
        let what = format!("measuring `{table}`");
        let r = self
            .client
            .query_one(
                &format!(
                    r#"SELECT count(*), pg_total_relation_size('"{table}"'),
                              COALESCE(sum(windows), 0)::bigint FROM "{table}""#
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
            other: 0,
        })
    }
}

impl PgStore {
    pub(crate) async fn index_marks_of(
        &self,
        channel: &str,
        id: i32,
    ) -> Result<Vec<DirtyMark>, StoreError> {
        let what = "reading the subsequence index's dirty marks";
        let rows = self
            .client
            .query(
                &format!(
                    r#"SELECT channel, id, start, xmin::text::bigint FROM "{}" WHERE channel = $1 AND id = $2"#,
                    self.tables.index_dirty
                ),
                &[&channel, &id],
            )
            .await
            .map_err(q(what))?;
        super::index::dirty_marks_of(&rows, what)
    }
}
