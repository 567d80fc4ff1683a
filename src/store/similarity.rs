//! Where the similarity index is kept: one table per indexed channel,
//! [`similarity_table`]`(tables, channel)`, one row per job `(id, start)` with the job's
//! end, its counts and its [`Entry`] (72 bytes for 8 coefficients: mean, σ and the
//! coefficients as f32) followed by the job's iSAX word (`word_length` bytes, one 8-bit
//! symbol per segment; [`StoredEntry::bytes`]). The iSAX tree is not stored: a query
//! rebuilds it in memory from the words. The raw series are not copied: a query reads the candidate
//! jobs' rows from the data table (`data_time` is the job start).
//!
//! The catalogue is the feature index's, with kind [`SIMILARITY`]. Write-backs mark the
//! jobs they touch in the same dirty log, under the key [`mark_channel`]`(channel)`
//! (`similarity=tmp`: `=` never occurs in a channel name, so it cannot clash with a
//! feature index's marks). Every statement lives in the dialect modules
//! (`postgres/similarity.rs`, `questdb/similarity.rs`).

use super::index::{kind_table, Built, IndexSize, IndexStore};
use super::{AnyStore, StoreError};
use crate::config::TableNames;
use crate::index::similarity::spectrum::EntryBytesError;
use crate::index::similarity::{Entry, Key, Params};
use crate::index::{Micros, Point};
use crate::store::index::channel_point;

/// The kind of the similarity index, as the catalogue records it.
pub const SIMILARITY: &str = "similarity";

/// The table of the similarity index of `channel`:
/// `{tables.index}_similarity_{channel}` (cleaned as [`super::index::bucket_table`]).
pub fn similarity_table(tables: &TableNames, channel: &str) -> String {
    kind_table(tables, SIMILARITY, channel)
}

/// The dirty-log key of the similarity index of `channel`: `similarity=` and the
/// lower-case channel.
pub fn mark_channel(channel: &str) -> String {
    format!("{SIMILARITY}={}", channel.to_lowercase())
}

/// A job's entry as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntry {
    /// The job.
    pub key: Key,
    /// Its last data row's time.
    pub end: Micros,
    /// Numbers of the channel in the job.
    pub points: u32,
    /// Values of the channel that are not numbers.
    pub dropped: u32,
    /// The entry.
    pub entry: Entry,
    /// The job's full-resolution iSAX word (empty in an index built before iSAX).
    pub word: Vec<u8>,
}

impl StoredEntry {
    /// The entry column's bytes: the [`Entry`]'s, then the word's.
    pub fn bytes(&self) -> Vec<u8> {
        let mut b = self.entry.to_bytes();
        b.extend_from_slice(&self.word);
        b
    }
}

/// The entry and the iSAX word from an entry column's bytes ([`StoredEntry::bytes`]).
///
/// # Errors
/// [`EntryBytesError`] when the bytes are too short for an entry.
pub(crate) fn entry_and_word(
    bytes: &[u8],
    coefficients: usize,
) -> Result<(Entry, Vec<u8>), EntryBytesError> {
    let (entry, word) = Entry::from_bytes_prefix(bytes, coefficients)?;
    Ok((entry, word.to_vec()))
}

/// The channel's points of one job, from the data rows.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSeries {
    /// The job.
    pub key: Key,
    /// Its last data row's time.
    pub end: Micros,
    /// The channel's points, in time order (rows without the channel are left out).
    pub points: Vec<Point>,
}

/// The jobs of device `id` from a query's rows `(job start, datetime, conjoined)`,
/// sorted by job start then time (either dialect; `what` names the read in errors).
///
/// # Errors
/// [`StoreError`] if the stream fails or a row does not have those columns.
pub(crate) async fn job_rows(
    rows: tokio_postgres::RowStream,
    id: i32,
    channel: &str,
    what: &str,
) -> Result<Vec<JobSeries>, StoreError> {
    use futures_util::TryStreamExt;
    let q = || StoreError::query(what);
    let mut rows = std::pin::pin!(rows);
    let mut raw = Vec::new();
    while let Some(r) = rows.try_next().await.map_err(q())? {
        let start: chrono::NaiveDateTime = r.try_get(0).map_err(q())?;
        let t: chrono::NaiveDateTime = r.try_get(1).map_err(q())?;
        raw.push((
            crate::index::micros(start),
            crate::index::micros(t),
            r.try_get(2).map_err(q())?,
        ));
    }
    Ok(split_jobs(id, channel, raw))
}

/// Splits rows `(job start, datetime, conjoined)` sorted by job start then time into
/// jobs of device `id`.
fn split_jobs(
    id: i32,
    channel: &str,
    rows: Vec<(Micros, Micros, Option<String>)>,
) -> Vec<JobSeries> {
    let mut out: Vec<JobSeries> = Vec::new();
    for (start, t, text) in rows {
        if out
            .last()
            .is_none_or(|j| j.key.start != start || j.key.id != id)
        {
            out.push(JobSeries {
                key: Key { id, start },
                end: t,
                points: Vec::new(),
            });
        }
        if let Some(job) = out.last_mut() {
            job.end = job.end.max(t);
            if let Some(p) = text.as_deref().and_then(|c| channel_point(t, c, channel)) {
                job.points.push(p);
            }
        }
    }
    out
}

impl IndexStore {
    /// The built index of `kind` and `channel` (case-insensitive), if any.
    ///
    /// # Errors
    /// [`StoreError`] if the catalogue cannot be read.
    pub async fn built_kind(&self, kind: &str, channel: &str) -> Result<Option<Built>, StoreError> {
        let key = channel.to_lowercase();
        Ok(self
            .catalogue()
            .await?
            .into_iter()
            .find(|b| b.kind == kind && b.channel == key))
    }

    /// Creates an empty similarity table for `channel` (dropping a previous one) and
    /// records it with `params` (as [`crate::config::SimilarityIndexConfig::params_text`])
    /// and no range.
    ///
    /// # Errors
    /// [`StoreError`] if a statement fails.
    pub async fn create_similarity(
        &mut self,
        tables: &TableNames,
        channel: &str,
        params: &str,
    ) -> Result<Built, StoreError> {
        let built = Built::empty(SIMILARITY, tables, channel, params);
        index_dispatch!(self, s => s.create_similarity_table(&built.bucket_table).await)?;
        self.record(&built).await?;
        Ok(built)
    }

    /// Writes these entries (a job's entry replaces the one stored).
    ///
    /// # Errors
    /// [`StoreError`] if a statement fails.
    pub async fn write_entries(
        &mut self,
        built: &Built,
        entries: &[StoredEntry],
    ) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        index_dispatch!(self, s => s.write_entries(&built.bucket_table, entries).await)
    }

    /// Removes the entries of these jobs (jobs gone, or with too few numbers).
    ///
    /// # Errors
    /// [`StoreError`] if a statement fails.
    pub async fn remove_entries(&mut self, built: &Built, keys: &[Key]) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        index_dispatch!(self, s => s.remove_entries(&built.bucket_table, keys).await)
    }

    /// Every entry of the index (the jobs' keys decide; removed ones left out).
    ///
    /// # Errors
    /// [`StoreError`] if the query fails or an entry cannot be read.
    pub async fn load_entries(
        &self,
        built: &Built,
        params: Params,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        index_dispatch!(self, s => s.load_entries(&built.bucket_table, params).await)
    }

    /// The entries' keys of device `id` (every device for `None`) whose start lies in
    /// `[from, to)`.
    ///
    /// # Errors
    /// [`StoreError`] if the query fails.
    pub async fn entry_keys(
        &self,
        built: &Built,
        id: Option<i32>,
        range: (Micros, Micros),
    ) -> Result<Vec<Key>, StoreError> {
        index_dispatch!(self, s => s.entry_keys(&built.bucket_table, id, range).await)
    }

    /// The size of the similarity index: jobs stored and bytes where known.
    ///
    /// # Errors
    /// [`StoreError`] if a query fails.
    pub async fn similarity_size(&self, built: &Built) -> Result<IndexSize, StoreError> {
        index_dispatch!(self, s => s.similarity_size(&built.bucket_table).await)
    }
}

impl AnyStore {
    /// The jobs of device `id` starting in `[from, to)` with the channel's points.
    ///
    /// # Errors
    /// [`StoreError`] if the query fails.
    pub async fn job_series(
        &self,
        channel: &str,
        id: i32,
        range: (Micros, Micros),
    ) -> Result<Vec<JobSeries>, StoreError> {
        data_dispatch!(self, s => s.job_series(channel, id, range).await)
    }

    /// The channel's points of these jobs (with their last row's time where known,
    /// which narrows the read on QuestDB); jobs without data rows are left out.
    ///
    /// # Errors
    /// [`StoreError`] if the query fails.
    pub async fn jobs_points(
        &self,
        channel: &str,
        jobs: &[(Key, Option<Micros>)],
    ) -> Result<Vec<JobSeries>, StoreError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        data_dispatch!(self, s => s.jobs_points(channel, jobs).await)
    }

    /// The jobs an index of `channel` cannot vouch for: those in the dirty log under
    /// [`mark_channel`], and those with data rows still flagged (`recalc > 0`).
    ///
    /// # Errors
    /// [`StoreError`] if a query fails.
    pub async fn untrusted_jobs(&self, channel: &str) -> Result<Vec<Key>, StoreError> {
        let mut keys = data_dispatch!(self, s => s.untrusted_jobs(&mark_channel(channel)).await)?;
        keys.sort_unstable();
        keys.dedup();
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Point;

    #[test]
    fn rows_split_into_jobs() {
        let rows = vec![
            (10, 10, Some("tmp=1".to_string())),
            (10, 12, Some("x=1".to_string())),
            (20, 20, Some("tmp=a".to_string())),
        ];
        let jobs = split_jobs(7, "tmp", rows);
        assert_eq!(jobs.len(), 2);
        assert_eq!((jobs[0].end, jobs[0].points.len()), (12, 1));
        assert_eq!(jobs[1].points, vec![Point { t: 20, v: None }]);
    }
}
