//! `recalcd reflag` on PostgreSQL: one transaction of at most two set-based `UPDATE`s.
//!
//! The devices with a range of their own are joined from `unnest` arrays (one probe of
//! the primary key `(id, datetime)` per device); every other device's rows are found by
//! their `datetime` alone, which reads the whole table once (there is no index on
//! `datetime` by itself). The transaction turns `recalcd.session` off, so the notify
//! trigger of migration 0003 wakes the running daemons as a producer's re-flag would.

use chrono::NaiveDateTime;
use tokio_postgres::Client;

use super::super::{Level, ReflagRanges, StoreError};
use crate::config::TableNames;

/// Flags the rows of `level` in `ranges` that are not flagged; how many it flagged.
pub async fn reflag(
    client: &mut Client,
    tables: &TableNames,
    level: Level,
    ranges: &ReflagRanges,
) -> Result<u64, StoreError> {
    let what = format!("flagging {level} rows for recalculation");
    let table = level.table(tables);
    let tx = client
        .transaction()
        .await
        .map_err(StoreError::query(&what))?;
    // Not recalcd's own write: the daemons must hear of it (migration 0003).
    tx.batch_execute("SET LOCAL recalcd.session = 'off'")
        .await
        .map_err(StoreError::query(&what))?;
    let ids: Vec<i32> = ranges.devices.iter().map(|r| r.id).collect();
    let mut flagged = 0;
    if !ranges.devices.is_empty() {
        let from: Vec<NaiveDateTime> = ranges.devices.iter().map(|r| r.from).collect();
        let to: Vec<NaiveDateTime> = ranges.devices.iter().map(|r| r.to).collect();
        let sql = format!(
            r#"UPDATE "{table}" t SET recalc = 1
                 FROM unnest($1::int4[], $2::timestamp[], $3::timestamp[]) AS k(k_id, k_from, k_to)
                WHERE t.id = k_id AND t.datetime >= k_from AND t.datetime < k_to
                  AND t.recalc <= 0"#
        );
        flagged += tx
            .execute(&sql, &[&ids, &from, &to])
            .await
            .map_err(StoreError::query(&what))?;
    }
    if let Some((from, to)) = ranges.others {
        let sql = format!(
            r#"UPDATE "{table}" SET recalc = 1
                WHERE datetime >= $1 AND datetime < $2 AND recalc <= 0
                  AND id <> ALL($3::int4[])"#
        );
        flagged += tx
            .execute(&sql, &[&from, &to, &ids])
            .await
            .map_err(StoreError::query(&what))?;
    }
    tx.commit().await.map_err(StoreError::query(&what))?;
    Ok(flagged)
}
