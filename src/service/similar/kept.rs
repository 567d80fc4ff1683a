//! Similarity indexes kept loaded between queries, as `recalcd serve` keeps them.
//!
//! Reading a million entries from the index store takes seconds; the search itself takes
//! milliseconds. `serve` therefore keeps each channel's entries in memory, as an
//! [`Index`], and uses that copy while the catalogue's record of the index is the one it
//! was loaded under: the same build time, parameters and range, and the same
//! `updated_at`, which every catch-up that rewrote entries advances. Otherwise the
//! entries are read again.
//!
//! **Why a kept copy cannot answer wrong.** The catch-up writes a job's new entry, then
//! advances `updated_at`, then clears the job's dirty mark. A query first reads the jobs
//! the index cannot vouch for (dirty marks, rows still flagged), then the catalogue's
//! record. If the mark was still there, the job is compared directly and its entry not
//! used; if it was gone, `updated_at` had already advanced, so the record differs from
//! the copy's and the entries are read again. The copy holds every entry; the jobs not
//! vouched for are left out per query.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use crate::index::similarity::{Index, Key, Params};
use crate::index::Micros;
use crate::store::index::{Built, IndexStore};
use crate::store::StoreError;

/// Every stored entry of one built index, loaded.
#[derive(Debug)]
pub struct Loaded {
    /// Every entry.
    pub index: Index,
    /// Each job's last data row time (to read its rows when it is refined).
    pub ends: BTreeMap<Key, Micros>,
}

impl Loaded {
    /// Reads every entry of `built` from the index store.
    ///
    /// # Errors
    /// [`StoreError`] if the entries cannot be read.
    pub async fn read(
        ix: &IndexStore,
        built: &Built,
        params: Params,
    ) -> Result<Loaded, StoreError> {
        let stored = ix.load_entries(built, params).await?;
        let mut ends = BTreeMap::new();
        let mut index = Index::new(params);
        for e in stored {
            ends.insert(e.key, e.end);
            index.push(e.key, e.entry);
        }
        Ok(Loaded { index, ends })
    }
}

/// Whether `a` and `b` record the same stored data (what a kept copy depends on).
fn same_data(a: &Built, b: &Built) -> bool {
    a.kind == b.kind
        && a.channel == b.channel
        && a.params == b.params
        && a.bucket_table == b.bucket_table
        && a.range == b.range
        && a.built_at == b.built_at
        && a.updated_at == b.updated_at
}

/// What is kept loaded per channel (lower-case): `T` read from the built index under
/// the catalogue record kept with it.
#[derive(Debug)]
pub struct Kept<T> {
    by_channel: Mutex<HashMap<String, (Built, Arc<T>)>>,
}

impl<T> Default for Kept<T> {
    fn default() -> Self {
        Kept {
            by_channel: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> Kept<T> {
    /// Nothing kept yet.
    pub fn new() -> Kept<T> {
        Kept::default()
    }

    /// The kept copy of `built`'s channel if it was loaded under the same record, and
    /// whether it was (`false`: loaded now by `load`, and kept for the next query).
    ///
    /// `built` must have been read from the catalogue *after* the jobs the index cannot
    /// vouch for (see the module docs).
    ///
    /// # Errors
    /// What `load` returns.
    pub async fn get<E, F>(&self, built: &Built, load: F) -> Result<(Arc<T>, bool), E>
    where
        F: std::future::Future<Output = Result<T, E>>,
    {
        let kept = self
            .lock()
            .get(&built.channel)
            .filter(|(b, _)| same_data(b, built))
            .map(|(_, t)| Arc::clone(t));
        if let Some(t) = kept {
            return Ok((t, true));
        }
        let loaded = Arc::new(load.await?);
        self.lock()
            .insert(built.channel.clone(), (built.clone(), Arc::clone(&loaded)));
        Ok((loaded, false))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Built, Arc<T>)>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.by_channel
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(updated: i64) -> Built {
        let t = |s: i64| chrono::DateTime::from_timestamp(s, 0).unwrap().naive_utc();
        Built {
            kind: "similarity".into(),
            channel: "tmp".into(),
            params: "length=8 coefficients=2".into(),
            levels: None,
            bucket_table: "t".into(),
            range: Some((0, 10)),
            built_at: t(100),
            updated_at: t(updated),
            points: 5,
            other: 0,
        }
    }

    #[tokio::test]
    async fn a_copy_is_loaded_again_only_when_its_record_changed() {
        let kept: Kept<u32> = Kept::new();
        let load = |n: u32| async move { Ok::<u32, ()>(n) };
        assert_eq!(
            kept.get(&built(100), load(1)).await,
            Ok((Arc::new(1), false))
        );
        assert_eq!(
            kept.get(&built(100), load(2)).await,
            Ok((Arc::new(1), true))
        );
        assert_eq!(
            kept.get(&built(101), load(3)).await,
            Ok((Arc::new(3), false))
        );
        // A failed load keeps nothing new.
        assert_eq!(kept.get(&built(102), async { Err(()) }).await, Err(()));
        assert_eq!(
            kept.get(&built(101), load(4)).await,
            Ok((Arc::new(3), true))
        );
        let mut other = built(100);
        other.channel = "pressure".into();
        assert_eq!(kept.get(&other, load(5)).await, Ok((Arc::new(5), false)));
        assert_eq!(
            kept.get(&built(101), load(6)).await,
            Ok((Arc::new(3), true))
        );
    }

    #[test]
    fn a_copy_is_the_same_data_only_under_the_same_record() {
        let a = built(100);
        assert!(same_data(&a, &a.clone()));
        // Counts are not data: a record that only recounts keeps the copy.
        let mut recounted = a.clone();
        recounted.points = 7;
        assert!(same_data(&a, &recounted));
        assert!(!same_data(&a, &built(101)));
        let mut rebuilt = a.clone();
        rebuilt.built_at = built(200).updated_at;
        assert!(!same_data(&a, &rebuilt));
        let mut extended = a.clone();
        extended.range = Some((0, 20));
        assert!(!same_data(&a, &extended));
        let mut other = a.clone();
        other.params = "length=16 coefficients=2".into();
        assert!(!same_data(&a, &other));
    }
}
