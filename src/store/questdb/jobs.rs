//! Reading data rows by job on QuestDB: the rows of given jobs, and the flagged jobs
//! that start in given ranges.
//!
//! `data_time` (a data row's job start) is not the designated timestamp, so a filter on
//! it alone scans the whole table. But a job's rows lie at or after its start
//! (`datetime >= data_time`), so `datetime >= first start` lets QuestDB skip every
//! older partition. The jobs asked for at once are read in one query over their common
//! span of starts when the devices' spans overlap (a batch of the oldest flagged rows:
//! one scan instead of one per job), else one query per device, pipelined; the rows of
//! jobs not asked for are dropped here.

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDateTime;
use futures_util::future::try_join_all;
use tokio_postgres::types::Type;

use super::{key_ranges, quest_row, slot, KeyRanges, QuestStore};
use crate::store::{Level, Row, RowKey, StoreError, TimeRange, ROW_COLUMNS};

impl QuestStore {
    /// `select` (`SELECT … FROM "data"`) of the data rows whose job starts at one of
    /// `starts`' spans (per device, or together: see [`key_ranges`]), with `filter`
    /// (SQL starting with ` AND`) too. Rows of other jobs in the spans come back as well.
    async fn by_job_start(
        &self,
        select: &str,
        filter: &str,
        starts: &[RowKey],
        what: &str,
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let spans = match key_ranges(starts) {
            KeyRanges::Empty => return Ok(Vec::new()),
            KeyRanges::Together { ids, from, to } => {
                let ids: Vec<String> = ids.iter().map(i32::to_string).collect();
                let sql = format!(
                    "{select} WHERE datetime >= $1 AND data_time >= $1 AND data_time <= $2 \
                     AND id IN ({}){filter}",
                    ids.join(", ")
                );
                return self
                    .typed_query(
                        &sql,
                        &[Type::TIMESTAMP, Type::TIMESTAMP],
                        &[&from, &to],
                        what,
                    )
                    .await;
            }
            KeyRanges::PerDevice(spans) => spans,
        };
        let sql = format!(
            "{select} WHERE id = $1 AND datetime >= $2 AND data_time >= $2 \
             AND data_time <= $3{filter}"
        );
        let stmt = self
            .client
            .prepare_typed(&sql, &[Type::INT4, Type::TIMESTAMP, Type::TIMESTAMP])
            .await
            .map_err(StoreError::query(what))?;
        let results = try_join_all(
            spans
                .iter()
                .map(|(id, (lo, hi))| async { self.client.query(&stmt, &[id, lo, hi]).await }),
        )
        .await
        .map_err(StoreError::query(what))?;
        Ok(results.into_iter().flatten().collect())
    }

    /// [`crate::store::Store::load_job_rows`] on QuestDB.
    pub(super) async fn job_rows(
        &self,
        jobs: &[(i32, NaiveDateTime)],
    ) -> Result<Vec<Row>, StoreError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        self.settle(slot(Level::Data), &self.tables.data).await?;
        let what = "loading the data rows of jobs";
        let wanted: HashSet<(i32, NaiveDateTime)> = jobs.iter().copied().collect();
        let starts: Vec<RowKey> = wanted
            .iter()
            .map(|&(id, datetime)| RowKey { id, datetime })
            .collect();
        let select = format!(r#"SELECT {ROW_COLUMNS} FROM "{}""#, self.tables.data);
        let mut rows = Vec::new();
        for r in &self.by_job_start(&select, "", &starts, what).await? {
            let row = quest_row(r, what)?;
            if wanted.contains(&(row.id, row.data_time)) {
                rows.push(row);
            }
        }
        rows.sort_by_key(Row::key);
        Ok(rows)
    }

    /// The jobs with a flagged data row or a flagged job row that start in `ranges`:
    /// [`crate::store::Store::flagged_jobs_in`] on QuestDB (it reads them all: no early
    /// stop at the jobs of `except`).
    pub(super) async fn flagged_jobs(
        &self,
        ranges: &[TimeRange],
    ) -> Result<Vec<(i32, NaiveDateTime)>, StoreError> {
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        self.settle(slot(Level::Data), &self.tables.data).await?;
        self.settle(slot(Level::Job), &self.tables.job).await?;
        let what = "looking for flagged jobs in days";
        let mut per_device: BTreeMap<i32, Vec<(NaiveDateTime, NaiveDateTime)>> = BTreeMap::new();
        for r in ranges {
            per_device.entry(r.id).or_default().push((r.from, r.to));
        }
        let within = |id: i32, start: NaiveDateTime| {
            per_device
                .get(&id)
                .is_some_and(|spans| spans.iter().any(|(f, t)| *f <= start && start < *t))
        };
        let bounds: Vec<RowKey> = ranges
            .iter()
            .flat_map(|r| [r.from, r.to].map(|datetime| RowKey { id: r.id, datetime }))
            .collect();
        let select = format!(
            r#"SELECT DISTINCT id, data_time FROM "{}""#,
            self.tables.data
        );
        let data = self
            .by_job_start(&select, " AND recalc > 0", &bounds, what)
            .await?;
        let job = format!(
            r#"SELECT id, datetime FROM "{}"
                WHERE id = $1 AND datetime >= $2 AND datetime < $3 AND recalc > 0"#,
            self.tables.job
        );
        let jobs = self.per_range(&job, ranges, what).await?;
        let mut out = Vec::new();
        for r in data.iter().chain(&jobs) {
            let key: (Option<i32>, Option<NaiveDateTime>) = (
                r.try_get(0).map_err(StoreError::query(what))?,
                r.try_get(1).map_err(StoreError::query(what))?,
            );
            if let (Some(id), Some(start)) = key {
                if within(id, start) {
                    out.push((id, start));
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}
