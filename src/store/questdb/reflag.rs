//! `recalcd reflag` on QuestDB: a count and an `UPDATE` per device range, then a wait
//! for the table's WAL.
//!
//! QuestDB runs `UPDATE` on WAL tables, but copy-on-write (every partition it touches
//! has its `recalc` column file rewritten) and asynchronously, and the row count it
//! reports is wrong. So the rows are counted first with the same condition, and the
//! command returns once the table has applied the updates (`wait_wal_table`), so that
//! a `recalcd once` started next sees the flags. Limits: there is no transaction, so a
//! failure part-way leaves the ranges before it flagged (running it again is harmless),
//! and a producer writing into the range between the count and the update makes the
//! count off by its rows. Every other device's rows are found by `datetime` alone,
//! which prunes to the partitions (days) of the range.

use tokio_postgres::types::{ToSql, Type};

use super::super::{Level, ReflagRanges, StoreError};
use super::QuestStore;

/// Not flagged: done, failed, or NULL (QuestDB has no `NOT NULL`).
const NOT_FLAGGED: &str = "(recalc IS NULL OR recalc <= 0)";

impl QuestStore {
    /// Flags the rows of `level` in `ranges` that are not flagged; how many it found.
    pub(super) async fn flag_ranges(
        &mut self,
        level: Level,
        ranges: &ReflagRanges,
    ) -> Result<u64, StoreError> {
        let what = format!("flagging {level} rows for recalculation");
        let table = self.table(level).to_owned();
        // See this store's own earlier writes before counting.
        self.wait_wal(&table).await?;
        let mut flagged = 0;
        let types = [Type::INT4, Type::TIMESTAMP, Type::TIMESTAMP];
        let per_device = format!("id = $1 AND datetime >= $2 AND datetime < $3 AND {NOT_FLAGGED}");
        for r in &ranges.devices {
            let params: [&(dyn ToSql + Sync); 3] = [&r.id, &r.from, &r.to];
            flagged += self
                .flag_where(&table, &per_device, &types, &params, &what)
                .await?;
        }
        if let Some((from, to)) = ranges.others {
            let mut cond = format!("datetime >= $1 AND datetime < $2 AND {NOT_FLAGGED}");
            if !ranges.devices.is_empty() {
                let ids: Vec<String> = ranges.devices.iter().map(|r| r.id.to_string()).collect();
                cond.push_str(&format!(" AND id NOT IN ({})", ids.join(", ")));
            }
            let params: [&(dyn ToSql + Sync); 2] = [&from, &to];
            flagged += self
                .flag_where(&table, &cond, &types[1..], &params, &what)
                .await?;
        }
        self.wait_wal(&table).await?;
        Ok(flagged)
    }

    /// Counts the rows of `table` matching `cond`, then sets their `recalc` to 1.
    async fn flag_where(
        &self,
        table: &str,
        cond: &str,
        types: &[Type],
        params: &[&(dyn ToSql + Sync)],
        what: &str,
    ) -> Result<u64, StoreError> {
        let count = self
            .client
            .prepare_typed(
                &format!(r#"SELECT count(*) FROM "{table}" WHERE {cond}"#),
                types,
            )
            .await
            .map_err(StoreError::query(what))?;
        let n: i64 = self
            .client
            .query_one(&count, params)
            .await
            .and_then(|r| r.try_get(0))
            .map_err(StoreError::query(what))?;
        if n == 0 {
            return Ok(0);
        }
        let update = self
            .client
            .prepare_typed(
                &format!(r#"UPDATE "{table}" SET recalc = 1 WHERE {cond}"#),
                types,
            )
            .await
            .map_err(StoreError::query(what))?;
        // The count QuestDB reports for an UPDATE of a WAL table is not the rows'.
        self.client
            .execute(&update, params)
            .await
            .map_err(StoreError::query(what))?;
        Ok(n.max(0) as u64)
    }
}
