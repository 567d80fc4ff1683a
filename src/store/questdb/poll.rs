//! Polling the oldest flagged rows on QuestDB.
//!
//! The answer is the `limit` flagged rows first in `(datetime, id)` order. Asked that
//! way (`ORDER BY datetime, id LIMIT n`), QuestDB reads and sorts every flagged row
//! after the cursor — a scan of the rest of the table per poll. Ordered by the
//! designated timestamp alone it reads in storage order and stops after `limit`
//! matches. So the rows are asked for by `datetime` alone; when that answer is full,
//! the rows of its last `datetime` (a tie the limit may have cut anywhere) are asked
//! for again by `id` among that one timestamp, and the answer is completed from
//! those: exactly the rows the two-key order gives.

use chrono::NaiveDateTime;
use tokio_postgres::types::{ToSql, Type};

use super::{slot, QuestStore};
use crate::store::{Level, RowKey, StoreError};

impl QuestStore {
    /// `columns` (starting with `datetime`, with `id`) of the `limit` oldest flagged
    /// rows of `level` (after `after`, by `(datetime, id)`) that also satisfy `filter`
    /// (SQL starting with ` AND`), read with `decode` and handed over in
    /// `(id, datetime)` order.
    pub(super) async fn poll_oldest<T>(
        &self,
        level: Level,
        columns: &str,
        filter: String,
        after: Option<RowKey>,
        limit: usize,
        decode: fn(&tokio_postgres::Row, &str) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.settle(slot(level), self.table(level)).await?;
        let what = format!("polling flagged {level} rows");
        let (cursor, mut types, mut params): (&str, Vec<Type>, Vec<&(dyn ToSql + Sync)>) =
            match &after {
                Some(k) => (
                    " AND datetime >= $1 AND (datetime > $1 OR id > $2)",
                    vec![Type::TIMESTAMP, Type::INT4],
                    vec![&k.datetime, &k.id],
                ),
                None => ("", Vec::new(), Vec::new()),
            };
        let table = self.table(level);
        let sql = format!(
            r#"SELECT {columns} FROM "{table}" WHERE recalc > 0{filter}{cursor}
                ORDER BY datetime LIMIT {limit}"#
        );
        let mut rows = self.typed_query(&sql, &types, &params, &what).await?;
        let key = |r: &tokio_postgres::Row| -> Result<(NaiveDateTime, i32), StoreError> {
            Ok((
                r.try_get("datetime").map_err(StoreError::query(&what))?,
                r.try_get("id").map_err(StoreError::query(&what))?,
            ))
        };
        if rows.len() >= limit && limit > 0 {
            let (last, _) = key(&rows[rows.len() - 1])?;
            let mut kept = Vec::with_capacity(limit);
            for r in rows {
                if key(&r)?.0 < last {
                    kept.push(r);
                }
            }
            let n = types.len() + 1;
            types.push(Type::TIMESTAMP);
            params.push(&last);
            let sql = format!(
                r#"SELECT {columns} FROM "{table}"
                    WHERE recalc > 0{filter}{cursor} AND datetime = ${n}
                    ORDER BY id LIMIT {}"#,
                limit - kept.len()
            );
            kept.extend(self.typed_query(&sql, &types, &params, &what).await?);
            rows = kept;
        }
        let mut keyed = rows
            .iter()
            .map(|r| Ok((key(r)?, r)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        keyed.sort_by_key(|((datetime, id), _)| (*id, *datetime));
        keyed.into_iter().map(|(_, r)| decode(r, &what)).collect()
    }
}
