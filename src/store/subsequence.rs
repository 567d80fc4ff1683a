//! Where the subsequence (sliding-window DFT) index is kept: one table per indexed
//! channel, [`subsequence_table`]`(tables, channel)`, one row per box ([`StoredBox`]):
//! `g` consecutive windows of `w` values of one device's numbers of the channel, in
//! time order, with the times that map its windows back to rows — its first window's
//! first row (`first_time`), its last window's first row (`last_start`) and last row
//! (`last_time`) — and the per-dimension minima and maxima of the windows' features.
//! A box's windows start at the `windows` numbers from `first_time` to `last_start`
//! (both inclusive): a query reads exactly those rows to recompute them.
//!
//! Every build of a device writes its boxes under a new `generation` (the build's time
//! in µs); a query reads the device's latest generation only (PostgreSQL deletes the
//! older ones; QuestDB has no `DELETE` and keeps them until the index is dropped). A
//! build cut short leaves a generation with fewer boxes: what they do not cover is read
//! raw, so answers stay exact.
//!
//! Write-backs mark the minutes ([`MARK_SPAN`]) they recalculate in the dirty log under
//! [`mark_channel`]`(channel)` (`subsequence=tmp`). The maintainer does not clear these
//! marks (the boxes are not recomputed in the write-back): a box whose rows meet a mark
//! is not trusted by queries until `recalcd index build` recomputes the device, which
//! clears the marks it has read. Every statement lives in the dialect modules
//! (`postgres/subsequence.rs`, `questdb/subsequence.rs`).

use super::index::{kind_table, Built, DirtyMark, IndexSize, IndexStore};
use super::{AnyStore, StoreError};
use crate::config::TableNames;
use crate::index::Micros;

/// The kind of the subsequence index, as the catalogue records it.
pub const SUBSEQUENCE: &str = "subsequence";

/// The span of time a dirty mark of a subsequence index stands for: a minute.
pub const MARK_SPAN: Micros = 60 * crate::index::SECOND;

/// The table of the subsequence index of `channel`:
/// `{tables.index}_subsequence_{channel}` (cleaned as [`super::index::bucket_table`]).
pub fn subsequence_table(tables: &TableNames, channel: &str) -> String {
    kind_table(tables, SUBSEQUENCE, channel)
}

/// The dirty-log key of the subsequence index of `channel`: `subsequence=` and the
/// lower-case channel.
pub fn mark_channel(channel: &str) -> String {
    format!("{SUBSEQUENCE}={}", channel.to_lowercase())
}

/// The dirty-log prefix of every subsequence index's marks (left to `index build`).
pub const MARK_PREFIX: &str = "subsequence=";

/// One stored box.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredBox {
    /// The device.
    pub id: i32,
    /// The build that wrote it (µs since the epoch).
    pub generation: i64,
    /// The ordinal of its first window among the device's windows of that build.
    pub first_window: i64,
    /// Windows it holds (at most the group).
    pub windows: u32,
    /// The time of its first window's first row.
    pub first_time: Micros,
    /// The time of its last window's first row.
    pub last_start: Micros,
    /// The time of its last window's last row.
    pub last_time: Micros,
    /// `dims` minima, then `dims` maxima, then the bound of their rounding error.
    pub bounds: Vec<f64>,
}

impl StoredBox {
    /// The bounds as stored: little-endian `f64`s.
    pub fn bytes(&self) -> Vec<u8> {
        self.bounds.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// Bounds from their stored bytes; `None` unless a whole number of `f64`s.
    pub fn bounds_of(bytes: &[u8]) -> Option<Vec<f64>> {
        if !bytes.len().is_multiple_of(8) {
            return None;
        }
        Some(
            bytes
                .chunks_exact(8)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(c);
                    f64::from_le_bytes(b)
                })
                .collect(),
        )
    }

    /// The minima and maxima (without the error bound).
    pub fn lo_hi(&self) -> &[f64] {
        &self.bounds[..self.bounds.len().saturating_sub(1)]
    }

    /// The bound of the features' rounding error.
    pub fn err(&self) -> f64 {
        self.bounds.last().copied().unwrap_or(f64::INFINITY)
    }
}

impl IndexStore {
    /// Creates an empty subsequence table for `channel` (dropping a previous one) and
    /// records it with `params` and no range.
    ///
    /// # Errors
    /// [`StoreError`] if a statement fails.
    pub async fn create_subsequence(
        &mut self,
        tables: &TableNames,
        channel: &str,
        params: &str,
    ) -> Result<Built, StoreError> {
        let built = Built::empty(SUBSEQUENCE, tables, channel, params);
        index_dispatch!(self, s => s.create_subsequence_table(&built.bucket_table).await)?;
        self.record(&built).await?;
        Ok(built)
    }

    /// Writes these boxes.
    ///
    /// # Errors
    /// [`StoreError`] if a statement fails.
    pub async fn write_boxes(
        &mut self,
        built: &Built,
        boxes: &[StoredBox],
    ) -> Result<(), StoreError> {
        if boxes.is_empty() {
            return Ok(());
        }
        index_dispatch!(self, s => s.write_boxes(&built.bucket_table, boxes).await)
    }

    /// Removes the boxes of device `id` of other generations than `generation`
    /// (PostgreSQL; QuestDB keeps them, unread).
    ///
    /// # Errors
    /// [`StoreError`] if a statement fails.
    pub async fn retire_boxes(
        &mut self,
        built: &Built,
        id: i32,
        generation: i64,
    ) -> Result<(), StoreError> {
        index_dispatch!(self, s => s.retire_boxes(&built.bucket_table, id, generation).await)
    }

    /// The boxes of device `id`'s latest generation lying wholly in `[from, to)`
    /// (`first_time ≥ from`, `last_time < to`), by first window.
    ///
    /// # Errors
    /// [`StoreError`] if the query fails or a box cannot be read.
    pub async fn load_boxes(
        &self,
        built: &Built,
        id: i32,
        range: (Micros, Micros),
    ) -> Result<Vec<StoredBox>, StoreError> {
        index_dispatch!(self, s => s.load_boxes(&built.bucket_table, id, range).await)
    }

    /// Boxes stored and bytes where known.
    ///
    /// # Errors
    /// [`StoreError`] if a query fails.
    pub async fn subsequence_size(&self, built: &Built) -> Result<IndexSize, StoreError> {
        index_dispatch!(self, s => s.subsequence_size(&built.bucket_table).await)
    }
}

impl AnyStore {
    /// The dirty-log marks of the subsequence index of `channel` for device `id` (read
    /// by a build before it reads the rows, cleared after it wrote the boxes).
    ///
    /// # Errors
    /// [`StoreError`] if the query fails.
    pub async fn subsequence_marks(
        &self,
        channel: &str,
        id: i32,
    ) -> Result<Vec<DirtyMark>, StoreError> {
        let key = mark_channel(channel);
        data_dispatch!(self, s => s.index_marks_of(&key, id).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_round_trip_their_bytes() {
        let b = StoredBox {
            id: 1,
            generation: 2,
            first_window: 0,
            windows: 3,
            first_time: 0,
            last_start: 2,
            last_time: 5,
            bounds: vec![1.5, -2.0, f64::MAX, 1e-300],
        };
        assert_eq!(StoredBox::bounds_of(&b.bytes()), Some(b.bounds.clone()));
        assert_eq!(b.lo_hi(), &[1.5, -2.0, f64::MAX]);
        assert_eq!(b.err(), 1e-300);
        assert_eq!(StoredBox::bounds_of(&[0; 7]), None);
        assert_eq!(mark_channel("TMP"), "subsequence=tmp");
    }
}
