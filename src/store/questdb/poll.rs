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

use super::{quest_row, slot, QuestStore};
use crate::store::{flag_from, Flag, Level, Row, RowKey, StoreError, FLAG_COLUMNS, ROW_COLUMNS};

/// What a poll reads for each flagged row: its columns, decoded once.
pub(super) trait Polled: Sized {
    /// The columns selected, starting with `datetime`, with `id`.
    const COLUMNS: &'static str;

    /// Decodes a row selected as [`Polled::COLUMNS`].
    fn decode(r: &tokio_postgres::Row, what: &str) -> Result<Self, StoreError>;

    /// Its key.
    fn key(&self) -> RowKey;
}

impl Polled for Flag {
    const COLUMNS: &'static str = FLAG_COLUMNS;

    fn decode(r: &tokio_postgres::Row, what: &str) -> Result<Self, StoreError> {
        flag_from(r, what)
    }

    fn key(&self) -> RowKey {
        self.key
    }
}

impl Polled for Row {
    const COLUMNS: &'static str = ROW_COLUMNS;

    fn decode(r: &tokio_postgres::Row, what: &str) -> Result<Self, StoreError> {
        quest_row(r, what)
    }

    fn key(&self) -> RowKey {
        Row::key(self)
    }
}

impl QuestStore {
    /// The [`Polled`] columns of the `limit` oldest flagged rows of `level` (after
    /// `after`, by `(datetime, id)`) that also satisfy `filter` (SQL starting with
    /// ` AND`), each decoded once, handed over in `(id, datetime)` order.
    pub(super) async fn poll_oldest<T: Polled>(
        &self,
        level: Level,
        filter: String,
        after: Option<RowKey>,
        limit: usize,
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
        let columns = T::COLUMNS;
        let decoded = |rows: Vec<tokio_postgres::Row>| -> Result<Vec<T>, StoreError> {
            rows.iter().map(|r| T::decode(r, &what)).collect()
        };
        let sql = format!(
            r#"SELECT {columns} FROM "{table}" WHERE recalc > 0{filter}{cursor}
                ORDER BY datetime LIMIT {limit}"#
        );
        let mut rows = decoded(self.typed_query(&sql, &types, &params, &what).await?)?;
        if let Some(last) = rows.last().filter(|_| rows.len() >= limit && limit > 0) {
            let last: NaiveDateTime = last.key().datetime;
            rows.retain(|r| r.key().datetime < last);
            let n = types.len() + 1;
            types.push(Type::TIMESTAMP);
            params.push(&last);
            let sql = format!(
                r#"SELECT {columns} FROM "{table}"
                    WHERE recalc > 0{filter}{cursor} AND datetime = ${n}
                    ORDER BY id LIMIT {}"#,
                limit - rows.len()
            );
            rows.extend(decoded(
                self.typed_query(&sql, &types, &params, &what).await?,
            )?);
        }
        rows.sort_by_key(T::key);
        Ok(rows)
    }
}
