//! The indexes on PostgreSQL: the catalogue and bucket tables ([`PgIndex`], in the
//! index database) and the index's reads and dirty log in the data store ([`PgStore`]).

use chrono::NaiveDateTime;
use futures_util::TryStreamExt;
use tokio_postgres::Client;

use super::PgStore;
use crate::config::TableNames;
use crate::index::feature::{Bucket, Levels};
use crate::index::{datetime, micros, DeviceSpan, Micros, Point};
use crate::store::index::{
    channel_point, levels_of, Built, DirtyMark, IndexSize, StoredFeatures, FEATURE,
};
use crate::store::StoreError;

/// The columns of a bucket row after its key, in [`StoredFeatures`] order.
const FEATURE_COLUMNS: &str =
    "count, other, sum, sum_sq, min, max, first_time, first_value, last_time, last_value, digest";

/// The catalogue and bucket tables of the feature index in a PostgreSQL database.
pub struct PgIndex {
    pub(super) client: Client,
    catalogue: String,
}

impl std::fmt::Debug for PgIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgIndex")
            .field("catalogue", &self.catalogue)
            .finish()
    }
}

fn q(what: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    StoreError::query(what)
}

impl PgIndex {
    /// Wraps a connection to the index database.
    pub(crate) fn new(client: Client, tables: &TableNames) -> PgIndex {
        PgIndex {
            client,
            catalogue: tables.index.clone(),
        }
    }

    /// Creates the catalogue if missing (migration 0006 does the same in the data
    /// store; the index database may be another one).
    pub(crate) async fn ensure_catalogue(&self) -> Result<(), StoreError> {
        let sql = format!(
            r#"SET TIME ZONE 'UTC';
               CREATE TABLE IF NOT EXISTS "{}" (
                   kind         text      NOT NULL,
                   channel      text      NOT NULL,
                   params       text      NOT NULL,
                   bucket_table text      NOT NULL,
                   range_from   timestamp,
                   range_to     timestamp,
                   built_at     timestamp NOT NULL,
                   points       bigint    NOT NULL DEFAULT 0,
                   other        bigint    NOT NULL DEFAULT 0,
                   PRIMARY KEY (kind, channel));
               ALTER TABLE "{0}" ADD COLUMN IF NOT EXISTS updated_at timestamp"#,
            self.catalogue
        );
        self.client
            .batch_execute(&sql)
            .await
            .map_err(q("creating the index catalogue"))?;
        // Bucket tables built before buckets carried a digest gain the column (0: the
        // next catch-up of a bucket compares its children and writes the digest).
        let sql = format!(
            r#"DO $$
               DECLARE t text;
               BEGIN
                   FOR t IN SELECT c.bucket_table FROM "{}" c
                             WHERE c.kind = '{FEATURE}'
                               AND to_regclass(quote_ident(c.bucket_table)) IS NOT NULL
                               AND NOT EXISTS (
                                   SELECT 1 FROM pg_attribute a
                                    WHERE a.attrelid = to_regclass(quote_ident(c.bucket_table))
                                      AND a.attname = 'digest' AND NOT a.attisdropped)
                   LOOP
                       EXECUTE format('ALTER TABLE %I ADD COLUMN digest bigint NOT NULL DEFAULT 0', t);
                   END LOOP;
               END $$"#,
            self.catalogue
        );
        self.client
            .batch_execute(&sql)
            .await
            .map_err(q("adding `digest` to the bucket tables"))
    }

    pub(crate) async fn catalogue(&self) -> Result<Vec<Built>, StoreError> {
        let what = "reading the index catalogue";
        let sql = format!(
            r#"SELECT kind, channel, params, bucket_table, range_from, range_to, built_at, points, other,
                      coalesce(updated_at, built_at)
                 FROM "{}" ORDER BY kind, channel"#,
            self.catalogue
        );
        let rows = self.client.query(&sql, &[]).await.map_err(q(what))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let params: String = r.try_get(2).map_err(q(what))?;
            let from: Option<NaiveDateTime> = r.try_get(4).map_err(q(what))?;
            let to: Option<NaiveDateTime> = r.try_get(5).map_err(q(what))?;
            out.push(Built {
                kind: r.try_get(0).map_err(q(what))?,
                channel: r.try_get(1).map_err(q(what))?,
                levels: levels_of(&params),
                params,
                bucket_table: r.try_get(3).map_err(q(what))?,
                range: from.zip(to).map(|(a, b)| (micros(a), micros(b))),
                built_at: r.try_get(6).map_err(q(what))?,
                updated_at: r.try_get(9).map_err(q(what))?,
                points: r.try_get::<_, i64>(7).map_err(q(what))?.max(0) as u64,
                other: r.try_get::<_, i64>(8).map_err(q(what))?.max(0) as u64,
            });
        }
        Ok(out)
    }

    pub(crate) async fn create_table(&self, table: &str) -> Result<(), StoreError> {
        let sql = format!(
            r#"DROP TABLE IF EXISTS "{table}";
               CREATE TABLE "{table}" (
                   id          integer          NOT NULL,
                   level_len   bigint           NOT NULL,
                   start       timestamp        NOT NULL,
                   count       bigint           NOT NULL,
                   other       bigint           NOT NULL,
                   sum         double precision NOT NULL,
                   sum_sq      double precision NOT NULL,
                   min         double precision,
                   max         double precision,
                   first_time  timestamp,
                   first_value double precision,
                   last_time   timestamp,
                   last_value  double precision,
                   digest      bigint           NOT NULL DEFAULT 0,
                   PRIMARY KEY (id, level_len, start))"#
        );
        self.client
            .batch_execute(&sql)
            .await
            .map_err(q(format!("creating the bucket table `{table}`")))
    }

    pub(crate) async fn record(&self, b: &Built) -> Result<(), StoreError> {
        let sql = format!(
            r#"INSERT INTO "{}" (kind, channel, params, bucket_table, range_from, range_to, built_at, points, other, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
               ON CONFLICT (kind, channel) DO UPDATE SET
                   params = EXCLUDED.params, bucket_table = EXCLUDED.bucket_table,
                   range_from = EXCLUDED.range_from, range_to = EXCLUDED.range_to,
                   built_at = EXCLUDED.built_at, points = EXCLUDED.points, other = EXCLUDED.other,
                   updated_at = EXCLUDED.updated_at"#,
            self.catalogue
        );
        let from = b.range.map(|r| datetime(r.0));
        let to = b.range.map(|r| datetime(r.1));
        let points = i64::try_from(b.points).unwrap_or(i64::MAX);
        let other = i64::try_from(b.other).unwrap_or(i64::MAX);
        self.client
            .execute(
                &sql,
                &[
                    &b.kind,
                    &b.channel,
                    &b.params,
                    &b.bucket_table,
                    &from,
                    &to,
                    &b.built_at,
                    &points,
                    &other,
                    &b.updated_at,
                ],
            )
            .await
            .map_err(q(format!("recording the index of `{}`", b.channel)))?;
        Ok(())
    }

    pub(crate) async fn drop_index(&mut self, b: &Built) -> Result<(), StoreError> {
        let what = format!("dropping the index of `{}`", b.channel);
        let tx = self.client.transaction().await.map_err(q(&what))?;
        tx.batch_execute(&format!(r#"DROP TABLE IF EXISTS "{}""#, b.bucket_table))
            .await
            .map_err(q(&what))?;
        tx.execute(
            &format!(
                r#"DELETE FROM "{}" WHERE kind = $1 AND channel = $2"#,
                self.catalogue
            ),
            &[&b.kind, &b.channel],
        )
        .await
        .map_err(q(&what))?;
        tx.commit().await.map_err(q(&what))
    }

    pub(crate) async fn replace_buckets(
        &mut self,
        table: &str,
        levels: &Levels,
        id: i32,
        (from, to): (Micros, Micros),
        buckets: &[Bucket],
    ) -> Result<(), StoreError> {
        let what = format!("writing buckets to `{table}`");
        let tx = self.client.transaction().await.map_err(q(&what))?;
        tx.execute(
            &format!(r#"DELETE FROM "{table}" WHERE id = $1 AND start >= $2 AND start < $3"#),
            &[&id, &datetime(from), &datetime(to)],
        )
        .await
        .map_err(q(&what))?;
        let buckets: Vec<(i32, Bucket)> = buckets.iter().map(|&b| (id, b)).collect();
        upsert(&tx, table, levels, &buckets, &what).await?;
        tx.commit().await.map_err(q(&what))
    }

    pub(crate) async fn write_buckets(
        &mut self,
        table: &str,
        levels: &Levels,
        buckets: &[(i32, Bucket)],
    ) -> Result<(), StoreError> {
        let what = format!("writing buckets to `{table}`");
        upsert(&self.client, table, levels, buckets, &what).await
    }

    pub(crate) async fn load_buckets(
        &self,
        table: &str,
        level_len: Micros,
        spans: &[DeviceSpan],
    ) -> Result<Vec<(i32, Bucket)>, StoreError> {
        let what = format!("reading buckets from `{table}`");
        let id: Vec<i32> = spans.iter().map(|s| s.0).collect();
        let from: Vec<NaiveDateTime> = spans.iter().map(|s| datetime(s.1)).collect();
        let to: Vec<NaiveDateTime> = spans.iter().map(|s| datetime(s.2)).collect();
        let sql = format!(
            // LATERAL: one range scan of the key per span (see `index_points`).
            r#"SELECT b.id, b.start, {FEATURE_COLUMNS}
                 FROM unnest($2::int[], $3::timestamp[], $4::timestamp[]) s(id, f, t)
                CROSS JOIN LATERAL (
                      SELECT * FROM "{table}" x
                       WHERE x.id = s.id AND x.level_len = $1 AND x.start >= s.f AND x.start < s.t
                         AND (x.count > 0 OR x.other > 0)
                      OFFSET 0) b
                ORDER BY b.id, b.start"#
        );
        let rows = self
            .client
            .query(&sql, &[&level_len, &id, &from, &to])
            .await
            .map_err(q(&what))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: i32 = r.try_get(0).map_err(q(&what))?;
            let start: NaiveDateTime = r.try_get(1).map_err(q(&what))?;
            let stored = StoredFeatures::from_row(&r, 2, &what)?;
            out.push((
                id,
                Bucket {
                    level: 0,
                    start: micros(start),
                    features: stored.features(),
                },
            ));
        }
        Ok(out)
    }

    pub(crate) async fn devices(&self, table: &str) -> Result<Vec<i32>, StoreError> {
        let what = format!("listing the devices of `{table}`");
        // A loose index scan: one probe of the primary key per device.
        let sql = format!(
            r#"WITH RECURSIVE d(id) AS (
                   (SELECT id FROM "{table}" ORDER BY id LIMIT 1)
                   UNION ALL
                   SELECT (SELECT id FROM "{table}" WHERE id > d.id ORDER BY id LIMIT 1)
                     FROM d WHERE d.id IS NOT NULL)
               SELECT id FROM d WHERE id IS NOT NULL"#
        );
        let rows = self.client.query(&sql, &[]).await.map_err(q(&what))?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(q(&what)))
            .collect()
    }

    pub(crate) async fn size(
        &self,
        table: &str,
        coarsest: Micros,
    ) -> Result<IndexSize, StoreError> {
        let what = format!("measuring `{table}`");
        let sql = format!(
            r#"SELECT (SELECT count(*) FROM "{table}"),
                      pg_total_relation_size('"{table}"'),
                      COALESCE(sum(count), 0)::bigint, COALESCE(sum(other), 0)::bigint
                 FROM "{table}" WHERE level_len = $1"#
        );
        let r = self
            .client
            .query_one(&sql, &[&coarsest])
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

/// One `INSERT … SELECT FROM unnest(…) ON CONFLICT DO UPDATE` of `buckets`.
async fn upsert(
    client: &impl tokio_postgres::GenericClient,
    table: &str,
    levels: &Levels,
    buckets: &[(i32, Bucket)],
    what: &str,
) -> Result<(), StoreError> {
    for chunk in buckets.chunks(50_000) {
        let n = chunk.len();
        let mut id = Vec::with_capacity(n);
        let mut level_len = Vec::with_capacity(n);
        let mut start = Vec::with_capacity(n);
        let mut count = Vec::with_capacity(n);
        let mut other = Vec::with_capacity(n);
        let mut sum = Vec::with_capacity(n);
        let mut sum_sq = Vec::with_capacity(n);
        let mut min = Vec::with_capacity(n);
        let mut max = Vec::with_capacity(n);
        let mut first_time = Vec::with_capacity(n);
        let mut first_value = Vec::with_capacity(n);
        let mut last_time = Vec::with_capacity(n);
        let mut last_value = Vec::with_capacity(n);
        let mut digest = Vec::with_capacity(n);
        for (device, b) in chunk {
            let s = StoredFeatures::of(&b.features);
            id.push(*device);
            level_len.push(levels.length(b.level));
            start.push(datetime(b.start));
            count.push(s.count);
            other.push(s.other);
            sum.push(s.sum);
            sum_sq.push(s.sum_sq);
            min.push(s.min);
            max.push(s.max);
            first_time.push(s.first_time);
            first_value.push(s.first_value);
            last_time.push(s.last_time);
            last_value.push(s.last_value);
            digest.push(s.digest);
        }
        let sql = format!(
            r#"INSERT INTO "{table}" (id, level_len, start, {FEATURE_COLUMNS})
               SELECT * FROM unnest($1::int[], $2::bigint[], $3::timestamp[], $4::bigint[], $5::bigint[],
                                        $6::float8[], $7::float8[], $8::float8[], $9::float8[],
                                        $10::timestamp[], $11::float8[], $12::timestamp[], $13::float8[],
                                        $14::bigint[])
               ON CONFLICT (id, level_len, start) DO UPDATE SET
                   count = EXCLUDED.count, other = EXCLUDED.other, sum = EXCLUDED.sum,
                   sum_sq = EXCLUDED.sum_sq, min = EXCLUDED.min, max = EXCLUDED.max,
                   first_time = EXCLUDED.first_time, first_value = EXCLUDED.first_value,
                   last_time = EXCLUDED.last_time, last_value = EXCLUDED.last_value,
                   digest = EXCLUDED.digest"#
        );
        client
            .execute(
                &sql,
                &[
                    &id,
                    &level_len,
                    &start,
                    &count,
                    &other,
                    &sum,
                    &sum_sq,
                    &min,
                    &max,
                    &first_time,
                    &first_value,
                    &last_time,
                    &last_value,
                    &digest,
                ],
            )
            .await
            .map_err(q(what))?;
    }
    Ok(())
}

impl PgStore {
    /// [`crate::store::AnyStore::load_points_of`] on PostgreSQL (`spans` merged).
    ///
    /// Read with `COPY (…) TO STDOUT (FORMAT binary)` and decoded here (see
    /// [`CopyPoints`]): no row objects, no timestamp conversions, the `conjoined` bytes
    /// searched where they arrive. `COPY` takes no parameters, so the devices and the
    /// span bounds are written into the statement as literals (numbers and timestamps
    /// recalcd formats itself).
    pub(crate) async fn index_points(
        &self,
        channel: &str,
        spans: &[DeviceSpan],
    ) -> Result<Vec<(i32, Point)>, StoreError> {
        let what = match spans {
            [(id, ..)] => format!("reading `{channel}` of device {id}"),
            _ => format!("reading `{channel}` of {} spans of devices", spans.len()),
        };
        let stamp = |t: Micros| copy_timestamp(t);
        let sql = if let [(id, from, to)] = spans {
            format!(
                r#"COPY (SELECT id, datetime, conjoined FROM "{}"
                          WHERE id = {id} AND datetime >= {} AND datetime < {})
                   TO STDOUT (FORMAT binary)"#,
                self.tables.data,
                stamp(*from),
                stamp(*to)
            )
        } else {
            let list = |f: &dyn Fn(&DeviceSpan) -> String| {
                spans.iter().map(f).collect::<Vec<_>>().join(",")
            };
            format!(
                // One range scan of the primary key per span: LATERAL, fenced with OFFSET 0
                // so the planner cannot flatten it into a join that reads the whole device
                // and filters it per span (8.5 s instead of 7 ms for 67 spans of a million
                // rows, with statistics not yet gathered). The points are sorted below.
                r#"COPY (SELECT d.id, d.datetime, d.conjoined
                           FROM unnest(ARRAY[{}]::int[], ARRAY[{}]::timestamp[], ARRAY[{}]::timestamp[]) s(id, f, t)
                          CROSS JOIN LATERAL (
                                SELECT id, datetime, conjoined FROM "{}" x
                                 WHERE x.id = s.id AND x.datetime >= s.f AND x.datetime < s.t
                                OFFSET 0) d)
                   TO STDOUT (FORMAT binary)"#,
                list(&|s| s.0.to_string()),
                list(&|s| stamp(s.1)),
                list(&|s| stamp(s.2)),
                self.tables.data
            )
        };
        // Streamed: a scan of a year of 1 Hz rows keeps its points, not its rows.
        let stream = self.client.copy_out(&sql).await.map_err(q(&what))?;
        let mut stream = std::pin::pin!(stream);
        let mut decoder = CopyPoints::new(channel);
        while let Some(chunk) = stream.try_next().await.map_err(q(&what))? {
            decoder
                .push(&chunk)
                .map_err(|detail| StoreError::Unexpected {
                    what: what.clone(),
                    detail,
                })?;
        }
        let mut out = decoder.finish().map_err(|detail| StoreError::Unexpected {
            what: what.clone(),
            detail,
        })?;
        // By device and time (already so, span by span, in practice: then this is
        // linear).
        out.sort_by_key(|(id, p)| (*id, p.t));
        Ok(out)
    }

    /// The dirty-log bucket starts of `channel` (lower-case) and device `id` near
    /// `range`, and the `datetime` of its flagged data rows in `range`.
    pub(crate) async fn index_untrusted(
        &self,
        channel: &str,
        id: i32,
        (from, to): (Micros, Micros),
    ) -> Result<(Vec<NaiveDateTime>, Vec<NaiveDateTime>), StoreError> {
        let what = format!("reading what the index of `{channel}` cannot vouch for");
        // A mark's bucket starts before `from` when `from` cuts it: look one day back
        // (finest levels are at most a day long, or whole days aligned to midnight).
        let back = datetime(from - crate::index::DAY);
        let dirty = self
            .client
            .query(
                &format!(
                    r#"SELECT start FROM "{}" WHERE channel = $1 AND id = $2 AND start >= $3 AND start < $4"#,
                    self.tables.index_dirty
                ),
                &[&channel, &id, &back, &datetime(to)],
            )
            .await
            .map_err(q(&what))?;
        let flagged = self
            .client
            .query(
                &format!(
                    r#"SELECT datetime FROM "{}" WHERE id = $1 AND datetime >= $2 AND datetime < $3 AND recalc > 0"#,
                    self.tables.data
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
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .client
            .query(
                &format!(
                    r#"SELECT channel, id, start, xmin::text::bigint FROM "{}"
                        WHERE channel NOT LIKE '{}%' ORDER BY start, channel, id LIMIT $1"#,
                    self.tables.index_dirty,
                    crate::store::subsequence::MARK_PREFIX
                ),
                &[&limit],
            )
            .await
            .map_err(q(what))?;
        dirty_marks_of(&rows, what)
    }

    pub(crate) async fn index_clear_dirty(&self, marks: &[DirtyMark]) -> Result<(), StoreError> {
        let what = "clearing the index's dirty log";
        let channel: Vec<&str> = marks.iter().map(|m| m.channel.as_str()).collect();
        let id: Vec<i32> = marks.iter().map(|m| m.id).collect();
        let start: Vec<NaiveDateTime> = marks.iter().map(|m| m.start).collect();
        let token: Vec<i64> = marks.iter().map(|m| m.token).collect();
        self.client
            .execute(
                &format!(
                    r#"DELETE FROM "{}" d USING unnest($1::text[], $2::int[], $3::timestamp[], $4::bigint[]) m(channel, id, start, token)
                        WHERE d.channel = m.channel AND d.id = m.id AND d.start = m.start
                          AND d.xmin::text::bigint = m.token"#,
                    self.tables.index_dirty
                ),
                &[&channel, &id, &start, &token],
            )
            .await
            .map_err(q(what))?;
        Ok(())
    }

    pub(crate) async fn index_dirty_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let what = "counting the index's dirty log";
        let rows = self
            .client
            .query(
                &format!(
                    r#"SELECT channel, count(*) FROM "{}" GROUP BY channel ORDER BY channel"#,
                    self.tables.index_dirty
                ),
                &[],
            )
            .await
            .map_err(q(what))?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(q(what))?,
                    r.try_get::<_, i64>(1).map_err(q(what))?.max(0) as u64,
                ))
            })
            .collect()
    }

    /// The devices with data rows in `[from, to)`: a loose scan of the primary key (one
    /// probe per device), not a scan of the rows.
    pub(crate) async fn index_devices_in(
        &self,
        range: (Micros, Micros),
    ) -> Result<Vec<i32>, StoreError> {
        let what = "finding the devices with rows in the range";
        let rows = self
            .client
            .query(
                &format!(
                    r#"WITH RECURSIVE ids(id) AS (
                           SELECT min(id) FROM "{data}"
                           UNION ALL
                           SELECT (SELECT min(d.id) FROM "{data}" d WHERE d.id > ids.id)
                             FROM ids WHERE ids.id IS NOT NULL)
                       SELECT id FROM ids WHERE id IS NOT NULL AND EXISTS (
                           SELECT 1 FROM "{data}" d
                            WHERE d.id = ids.id AND d.datetime >= $1 AND d.datetime < $2)
                       ORDER BY id"#,
                    data = self.tables.data
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
        let (from, to) = range.unwrap_or(crate::store::index::ALL_TIME);
        let rows = self
            .client
            .query(
                &format!(
                    r#"SELECT id, min(datetime), max(datetime) FROM "{}"
                        WHERE datetime >= $1 AND datetime < $2 GROUP BY id ORDER BY id"#,
                    self.tables.data
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

    /// Records the dirty marks of a write-back in its transaction (a mark made again
    /// gets the transaction's `xmin`, so a maintenance that read the older one leaves
    /// it).
    pub(crate) async fn index_mark(
        tx: &tokio_postgres::Transaction<'_>,
        table: &str,
        marks: &[crate::store::IndexMark],
    ) -> Result<(), StoreError> {
        if marks.is_empty() {
            return Ok(());
        }
        let channel: Vec<&str> = marks.iter().map(|m| m.channel.as_str()).collect();
        let id: Vec<i32> = marks.iter().map(|m| m.id).collect();
        let start: Vec<NaiveDateTime> = marks.iter().map(|m| m.start).collect();
        tx.execute(
            &format!(
                r#"INSERT INTO "{table}" (channel, id, start)
                   SELECT * FROM unnest($1::text[], $2::int[], $3::timestamp[])
                   ON CONFLICT (channel, id, start) DO UPDATE SET start = EXCLUDED.start"#
            ),
            &[&channel, &id, &start],
        )
        .await
        .map_err(q("marking index buckets to recompute"))?;
        Ok(())
    }
}

/// Dirty marks from rows `(channel, id, start, xmin)`.
pub(super) fn dirty_marks_of(
    rows: &[tokio_postgres::Row],
    what: &str,
) -> Result<Vec<DirtyMark>, StoreError> {
    rows.iter()
        .map(|r| {
            Ok(DirtyMark {
                channel: r.try_get(0).map_err(q(what))?,
                id: r.try_get(1).map_err(q(what))?,
                start: r.try_get(2).map_err(q(what))?,
                token: r.try_get(3).map_err(q(what))?,
            })
        })
        .collect()
}

/// The binary `COPY` header: signature, flags, header extension length.
const COPY_SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// µs from 1970-01-01 (Unix, [`Micros`]) to 2000-01-01 (PostgreSQL's epoch).
const PG_EPOCH: Micros = 946_684_800_000_000;

/// Decodes the tuples `(id int, datetime timestamp, conjoined text)` of a binary `COPY …
/// TO STDOUT` into the points of one channel, each with its device, as they arrive in
/// chunks of any size: a
/// tuple cut by a chunk's end waits for the next. Each `conjoined` is read with
/// [`channel_point`] (the same rules as every other read: escapes, last entry wins);
/// a NULL `conjoined` holds no channel.
pub(crate) struct CopyPoints<'c> {
    channel: &'c str,
    /// Bytes not yet decoded (a cut tuple, or the header).
    pending: Vec<u8>,
    header_done: bool,
    trailer_seen: bool,
    points: Vec<(i32, Point)>,
}

impl<'c> CopyPoints<'c> {
    pub(crate) fn new(channel: &'c str) -> Self {
        CopyPoints {
            channel,
            pending: Vec::new(),
            header_done: false,
            trailer_seen: false,
            points: Vec::new(),
        }
    }

    /// Decodes what `chunk` completes.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<(), String> {
        if self.pending.is_empty() {
            let used = self.decode(chunk)?;
            self.pending.extend_from_slice(&chunk[used..]);
        } else {
            let mut buf = std::mem::take(&mut self.pending);
            buf.extend_from_slice(chunk);
            let used = self.decode(&buf)?;
            buf.drain(..used);
            self.pending = buf;
        }
        Ok(())
    }

    /// The points, once the stream has ended.
    pub(crate) fn finish(self) -> Result<Vec<(i32, Point)>, String> {
        if !self.trailer_seen || !self.pending.is_empty() {
            return Err(format!(
                "the binary COPY stream ended early ({} bytes undecoded)",
                self.pending.len()
            ));
        }
        Ok(self.points)
    }

    /// Decodes the whole tuples at the start of `buf`; returns the bytes used.
    fn decode(&mut self, buf: &[u8]) -> Result<usize, String> {
        let mut at = 0;
        if !self.header_done {
            let fixed = COPY_SIGNATURE.len() + 8;
            if buf.len() < fixed {
                return Ok(0);
            }
            if &buf[..COPY_SIGNATURE.len()] != COPY_SIGNATURE {
                return Err("not a binary COPY stream".to_string());
            }
            let ext = be_i32(&buf[COPY_SIGNATURE.len() + 4..]);
            let ext = usize::try_from(ext).map_err(|_| "bad COPY header".to_string())?;
            if buf.len() < fixed + ext {
                return Ok(0);
            }
            at = fixed + ext;
            self.header_done = true;
        }
        while at + 2 <= buf.len() {
            if self.trailer_seen {
                return Err("bytes after the binary COPY trailer".to_string());
            }
            let fields = i16::from_be_bytes([buf[at], buf[at + 1]]);
            if fields == -1 {
                self.trailer_seen = true;
                at += 2;
                continue;
            }
            if fields != 3 {
                return Err(format!("a COPY tuple of {fields} fields, not 3"));
            }
            // id: length 4, int32.
            let p = at + 2;
            if p + 8 > buf.len() {
                break;
            }
            let len = be_i32(&buf[p..]);
            if len != 4 {
                return Err(format!("a device id of {len} bytes (NULL or not an int)"));
            }
            let id = be_i32(&buf[p + 4..]);
            // datetime: length 8, int64 µs since 2000-01-01.
            let p = p + 8;
            if p + 4 > buf.len() {
                break;
            }
            let len = be_i32(&buf[p..]);
            if len != 8 {
                return Err(format!(
                    "a datetime of {len} bytes (NULL or not a timestamp)"
                ));
            }
            if p + 12 + 4 > buf.len() {
                break;
            }
            let t = i64::from_be_bytes(buf[p + 4..p + 12].try_into().expect("8 bytes"));
            let len = be_i32(&buf[p + 12..]);
            let text_at = p + 16;
            let end = if len < 0 {
                text_at
            } else {
                text_at + len as usize
            };
            if end > buf.len() {
                break;
            }
            if len >= 0 {
                let t = t.saturating_add(PG_EPOCH);
                let bytes = &buf[text_at..end];
                let text = std::str::from_utf8(bytes).map_err(|e| {
                    format!(
                        "the conjoined text of the row at {} is not UTF-8 ({e})",
                        datetime(t)
                    )
                })?;
                if let Some(point) = channel_point(t, text, self.channel) {
                    self.points.push((id, point));
                }
            }
            at = end;
        }
        Ok(at)
    }
}

/// `t` as a timestamp literal for a `COPY` statement: years 1 to 9999 as they are,
/// anything before as `-infinity` and anything after as `infinity` (range bounds only:
/// no stored row is that far out).
fn copy_timestamp(t: Micros) -> String {
    const YEAR_1: Micros = -62_135_596_800_000_000;
    const YEAR_10000: Micros = 253_402_300_800_000_000;
    if t < YEAR_1 {
        "'-infinity'::timestamp".to_string()
    } else if t >= YEAR_10000 {
        "'infinity'::timestamp".to_string()
    } else {
        format!(
            "'{}'::timestamp",
            datetime(t).format("%Y-%m-%d %H:%M:%S%.6f")
        )
    }
}

fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A binary COPY stream of `(id, datetime, conjoined)` tuples.
    fn stream(rows: &[(i32, Micros, Option<String>)]) -> Vec<u8> {
        let mut out = COPY_SIGNATURE.to_vec();
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&0i32.to_be_bytes());
        for (id, t, text) in rows {
            out.extend_from_slice(&3i16.to_be_bytes());
            out.extend_from_slice(&4i32.to_be_bytes());
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&8i32.to_be_bytes());
            out.extend_from_slice(&(t - PG_EPOCH).to_be_bytes());
            match text {
                Some(s) => {
                    out.extend_from_slice(&(s.len() as i32).to_be_bytes());
                    out.extend_from_slice(s.as_bytes());
                }
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    fn conjoined() -> impl Strategy<Value = Option<String>> {
        // Names close to the channel (case, spaces, escapes), values numbers, strings,
        // vectors, escapes; repeated names; broken entries.
        let name = prop_oneof![
            Just("tmp".to_string()),
            Just("TMP".to_string()),
            Just(" tmp ".to_string()),
            Just("t\\mp".to_string()),
            Just("tmp2".to_string()),
            Just("prs".to_string()),
            Just(String::new()),
        ];
        let value = prop_oneof![
            (-1e6f64..1e6).prop_map(|x| x.to_string()),
            Just("nan".to_string()),
            Just("inf".to_string()),
            Just("abc".to_string()),
            Just("1,2".to_string()),
            Just("4\\;5".to_string()),
            Just(" 7 ".to_string()),
            Just(String::new()),
        ];
        let entry = prop_oneof![
            4 => (name, value).prop_map(|(n, v)| format!("{n}={v}")),
            1 => Just("junk".to_string()),
            1 => Just(String::new()),
        ];
        proptest::option::weighted(
            0.95,
            (
                prop::collection::vec(entry, 0..6),
                any::<bool>(),
                any::<bool>(),
            )
                .prop_map(|(es, end, tail)| {
                    let mut s = es.join(";");
                    if end {
                        s.push(';');
                    }
                    if tail {
                        s.push('\\');
                    }
                    s
                }),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The decoder gives exactly what `channel_point` gives row by row, however the
        /// stream is cut into chunks.
        #[test]
        fn copy_points_equal_channel_point(
            rows in prop::collection::vec(
                (any::<i32>(), -1_000_000_000_000i64..4_000_000_000_000_000, conjoined()),
                0..40,
            ),
            cuts in prop::collection::vec(1usize..64, 1..8),
        ) {
            let bytes = stream(&rows);
            let mut decoder = CopyPoints::new("tmp");
            let (mut at, mut k) = (0, 0);
            while at < bytes.len() {
                let n = cuts[k % cuts.len()].min(bytes.len() - at);
                decoder.push(&bytes[at..at + n]).unwrap();
                at += n;
                k += 1;
            }
            let got = decoder.finish().unwrap();
            let want: Vec<(i32, Point)> = rows
                .iter()
                .filter_map(|(id, t, s)| {
                    s.as_deref().and_then(|s| channel_point(*t, s, "tmp")).map(|p| (*id, p))
                })
                .collect();
            prop_assert_eq!(got.len(), want.len());
            for ((gi, g), (wi, w)) in got.iter().zip(&want) {
                prop_assert_eq!(gi, wi);
                prop_assert_eq!(g.t, w.t);
                prop_assert_eq!(g.v.map(f64::to_bits), w.v.map(f64::to_bits));
            }
        }
    }

    #[test]
    fn copy_timestamps_are_literals_postgresql_reads() {
        use chrono::NaiveDate;
        let t = |y, m, d| {
            micros(
                NaiveDate::from_ymd_opt(y, m, d)
                    .unwrap()
                    .and_hms_micro_opt(1, 2, 3, 4)
                    .unwrap(),
            )
        };
        assert_eq!(
            copy_timestamp(t(2024, 4, 21)),
            "'2024-04-21 01:02:03.000004'::timestamp"
        );
        assert_eq!(
            copy_timestamp(t(1, 1, 1)),
            "'0001-01-01 01:02:03.000004'::timestamp"
        );
        assert_eq!(
            copy_timestamp(t(9999, 12, 31)),
            "'9999-12-31 01:02:03.000004'::timestamp"
        );
        assert_eq!(copy_timestamp(i64::MIN), "'-infinity'::timestamp");
        assert_eq!(copy_timestamp(i64::MAX), "'infinity'::timestamp");
    }

    #[test]
    fn copy_points_refuse_a_cut_stream() {
        let bytes = stream(&[(7, PG_EPOCH, Some("tmp=1".to_string()))]);
        let mut decoder = CopyPoints::new("tmp");
        decoder.push(&bytes[..bytes.len() - 3]).unwrap();
        assert!(decoder.finish().is_err());
    }
}
