//! Where the indexes are kept: the catalogue of built indexes and their buckets (in the
//! index database, [`IndexStore`]), the log of buckets to recompute and the points read
//! from the data rows (in the data store, methods of [`AnyStore`]).
//!
//! The index database is `index.database_url`, by default the data store's URL; it may
//! speak the other dialect (data in QuestDB, index in PostgreSQL). Every statement
//! lives in the dialect modules (`postgres/index.rs`, `questdb/index.rs`); this module
//! holds the types they share and the dispatch.
//!
//! A built feature index keeps its buckets in a table of its own,
//! [`bucket_table`]`(tables, channel)`, one row per (device, level, bucket start) with
//! the [`Features`] of the bucket; the level is stored as its length, so a build with
//! other levels is told apart. A bucket whose rows all went away is stored with empty
//! features (QuestDB has no `DELETE`); readers skip those.

use chrono::NaiveDateTime;

use super::{AnyStore, StoreError};
use crate::config::{Config, DatabaseConfig, Dialect, DialectChoice, TableNames};
use crate::index::feature::{Bucket, Features, Levels};
use crate::index::{datetime, merge_device_spans, merge_spans, micros, DeviceSpan, Micros, Point};

pub use super::postgres::index::PgIndex;
pub use super::questdb::index::QuestIndex;

/// Every time the stores can hold: `[0001-01-01, 10000-01-01)` (PostgreSQL's
/// timestamps go further, chrono's and QuestDB's not as far back as that).
pub const ALL_TIME: (Micros, Micros) = (
    -62_135_596_800 * crate::index::SECOND,
    253_402_300_800 * crate::index::SECOND,
);

/// The kind of the feature index, as the catalogue records it.
pub const FEATURE: &str = "feature";

/// A built index, as the catalogue records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    /// Its kind ([`FEATURE`]).
    pub kind: String,
    /// The channel, lower-case (channels compare case-insensitively).
    pub channel: String,
    /// The parameters it was built with (see
    /// [`crate::config::FeatureIndexConfig::params`]).
    pub params: String,
    /// The levels read back from `params`; `None` when they cannot be read (written by
    /// another recalcd version): such an index is rebuilt before use.
    pub levels: Option<Levels>,
    /// The table of its buckets.
    pub bucket_table: String,
    /// The range of `datetime` built, `[from, to)`; `None` when nothing was built yet.
    pub range: Option<(Micros, Micros)>,
    /// When it was (last) built, UTC.
    pub built_at: NaiveDateTime,
    /// When its stored data last changed, UTC: the build, or the last catch-up that
    /// rewrote entries of a similarity index (what `recalcd serve` checks before using
    /// the copy it keeps loaded).
    pub updated_at: NaiveDateTime,
    /// Numeric values counted at build time.
    pub points: u64,
    /// Values that are not numbers, counted at build time.
    pub other: u64,
}

impl Built {
    /// The record of a new, empty index of `kind` for `channel` built with `params`: its
    /// table [`kind_table`], no range yet (a feature index's levels read from `params`).
    pub(crate) fn empty(kind: &str, tables: &TableNames, channel: &str, params: &str) -> Built {
        let now = chrono::Utc::now().naive_utc();
        Built {
            kind: kind.into(),
            channel: channel.to_lowercase(),
            params: params.into(),
            levels: if kind == FEATURE {
                levels_of(params)
            } else {
                None
            },
            bucket_table: kind_table(tables, kind, channel),
            range: None,
            built_at: now,
            updated_at: now,
            points: 0,
            other: 0,
        }
    }

    /// The levels, or an error saying the index must be rebuilt.
    ///
    /// # Errors
    /// [`StoreError::Unexpected`] when the recorded parameters cannot be read.
    pub fn levels(&self) -> Result<&Levels, StoreError> {
        self.levels.as_ref().ok_or_else(|| StoreError::Unexpected {
            what: format!("reading the feature index of `{}`", self.channel),
            detail: format!(
                "its recorded parameters `{}` cannot be read: rebuild it with `recalcd index build --channel {}`",
                self.params, self.channel
            ),
        })
    }
}

/// The size of a built index, as far as its store can say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IndexSize {
    /// Bucket rows stored (empty ones included).
    pub buckets: u64,
    /// Bytes on disk (PostgreSQL: `pg_total_relation_size`); `None` where unknown.
    pub bytes: Option<u64>,
    /// Numeric values the buckets count now.
    pub points: u64,
    /// Non-numeric values the buckets count now.
    pub other: u64,
}

/// A finest bucket a write-back changed (an entry of the dirty log).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DirtyMark {
    /// The channel, lower-case.
    pub channel: String,
    /// The device.
    pub id: i32,
    /// The finest bucket's start.
    pub start: NaiveDateTime,
    /// Which marking this is (PostgreSQL: the entry's `xmin`; QuestDB: when it was
    /// marked): clearing a mark clears only this one, not a newer one made meanwhile.
    pub token: i64,
}

/// The name of the bucket table of the feature index of `channel`:
/// `{tables.index}_feature_{channel}`, the channel lower-cased with every character
/// but letters, digits and `_` replaced by `_`; when that changed the name or made it
/// too long, a hash of the channel keeps distinct channels apart.
pub fn bucket_table(tables: &TableNames, channel: &str) -> String {
    kind_table(tables, FEATURE, channel)
}

/// `{tables.index}_{kind}_{channel}`, cleaned as [`bucket_table`] says.
pub(crate) fn kind_table(tables: &TableNames, kind: &str, channel: &str) -> String {
    let lower = channel.to_lowercase();
    let clean: String = lower
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let prefix = format!("{}_{kind}_", tables.index);
    let plain = format!("{prefix}{clean}");
    if clean == lower && plain.len() <= 63 {
        return plain;
    }
    // FNV-1a: stable across versions and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in lower.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let suffix = format!("_{:08x}", h as u32);
    let room = 63usize.saturating_sub(prefix.len() + suffix.len());
    let cut: String = clean.chars().take(room).collect();
    format!("{prefix}{cut}{suffix}")
}

/// The point of `channel` in a row's `conjoined` text: `None` when the row does not
/// hold the channel; a value that is not a number is a point without value. The last
/// entry of the name counts (as when the row is read for computing); an entry that
/// cannot be read is skipped.
pub fn channel_point(t: Micros, conjoined: &str, channel: &str) -> Option<Point> {
    let e = crate::conjoined::last_entry(conjoined, channel)?;
    let v = match e.value() {
        crate::lang::value::Value::Num(n) if n.is_finite() => Some(n),
        _ => None,
    };
    Some(Point { t, v })
}

/// Stored features: the columns `count, other, sum, sum_sq, min, max, first_time,
/// first_value, last_time, last_value, digest` (NULL extremes and times for a bucket
/// without numbers; the digest's bits as a signed 64-bit integer).
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoredFeatures {
    pub count: i64,
    pub other: i64,
    pub sum: f64,
    pub sum_sq: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub first_time: Option<NaiveDateTime>,
    pub first_value: Option<f64>,
    pub last_time: Option<NaiveDateTime>,
    pub last_value: Option<f64>,
    pub digest: i64,
}

impl StoredFeatures {
    /// The features in the eleven columns of `r` from `at` on (the order of the bucket
    /// tables' `count, other, sum, sum_sq, min, max, first_time, first_value, last_time,
    /// last_value, digest`); missing counts, sums and digests read as 0 (a digest of 0
    /// differs from the recomputed one: the children are compared).
    pub(crate) fn from_row(
        r: &tokio_postgres::Row,
        at: usize,
        what: &str,
    ) -> Result<Self, StoreError> {
        let q = |e| StoreError::query(what.to_string())(e);
        let n = |i: usize| -> Result<i64, StoreError> {
            Ok(r.try_get::<_, Option<i64>>(at + i).map_err(q)?.unwrap_or(0))
        };
        let x = |i: usize| -> Result<f64, StoreError> {
            Ok(r.try_get::<_, Option<f64>>(at + i)
                .map_err(q)?
                .unwrap_or(0.0))
        };
        Ok(StoredFeatures {
            count: n(0)?,
            other: n(1)?,
            sum: x(2)?,
            sum_sq: x(3)?,
            min: r.try_get(at + 4).map_err(q)?,
            max: r.try_get(at + 5).map_err(q)?,
            first_time: r.try_get(at + 6).map_err(q)?,
            first_value: r.try_get(at + 7).map_err(q)?,
            last_time: r.try_get(at + 8).map_err(q)?,
            last_value: r.try_get(at + 9).map_err(q)?,
            digest: n(10)?,
        })
    }
}

impl StoredFeatures {
    /// How `f` is stored.
    pub fn of(f: &Features) -> StoredFeatures {
        let some = f.count > 0;
        StoredFeatures {
            count: i64::try_from(f.count).unwrap_or(i64::MAX),
            other: i64::try_from(f.other).unwrap_or(i64::MAX),
            sum: f.sum,
            sum_sq: f.sum_sq,
            min: some.then_some(f.min),
            max: some.then_some(f.max),
            first_time: some.then(|| datetime(f.first.0)),
            first_value: some.then_some(f.first.1),
            last_time: some.then(|| datetime(f.last.0)),
            last_value: some.then_some(f.last.1),
            digest: f.digest as i64,
        }
    }

    /// The features stored.
    pub fn features(&self) -> Features {
        let mut f = Features::EMPTY;
        f.count = self.count.max(0) as u64;
        f.other = self.other.max(0) as u64;
        f.sum = self.sum;
        f.sum_sq = self.sum_sq;
        f.digest = self.digest as u64;
        if f.count > 0 {
            f.min = self.min.unwrap_or(f64::INFINITY);
            f.max = self.max.unwrap_or(f64::NEG_INFINITY);
            if let (Some(t), Some(v)) = (self.first_time, self.first_value) {
                f.first = (micros(t), v);
            }
            if let (Some(t), Some(v)) = (self.last_time, self.last_value) {
                f.last = (micros(t), v);
            }
        }
        f
    }
}

/// The catalogue's record of `levels` parameters (`1d/1h/10m/1m devices=7,9`), read
/// back: the levels.
pub(crate) fn levels_of(params: &str) -> Option<Levels> {
    let levels = params.split_whitespace().next()?;
    let mut lengths = Vec::new();
    for l in levels.split('/') {
        let d = crate::config::parse_duration(l).ok()?;
        lengths.push(Micros::try_from(d.as_micros()).ok()?);
    }
    Levels::new(lengths).ok()
}

/// The index database: the catalogue and the bucket tables, in either dialect.
#[derive(Debug)]
pub enum IndexStore {
    /// In PostgreSQL.
    Postgres(PgIndex),
    /// In QuestDB.
    QuestDb(QuestIndex),
}

impl IndexStore {
    /// Connects to `index.database_url` (or the data store's URL), detects its dialect
    /// (the data store's forced dialect applies only when it is the same database) and
    /// creates the catalogue there if missing.
    ///
    /// # Errors
    /// [`StoreError`] if the database cannot be reached or the catalogue not created.
    pub async fn connect(config: &Config) -> Result<IndexStore, StoreError> {
        let store = Self::open(config).await?;
        store.ensure_catalogue().await?;
        Ok(store)
    }

    /// [`IndexStore::connect`] without creating the catalogue: for readers that must
    /// never write (`recalcd serve`); reading a missing catalogue fails.
    ///
    /// # Errors
    /// [`StoreError`] if the database cannot be reached.
    pub async fn open(config: &Config) -> Result<IndexStore, StoreError> {
        let mut database: DatabaseConfig = config.database.clone();
        if let Some(url) = &config.index.database_url {
            if *url != database.url {
                database.url = url.clone();
                database.dialect = DialectChoice::Auto;
            }
        }
        let client = super::open_client(&database).await?;
        let dialect = match database.dialect {
            DialectChoice::Forced(d) => d,
            DialectChoice::Auto => {
                let what = "detecting the index database's dialect (SELECT version())";
                let version: String = client
                    .query_one("SELECT version()", &[])
                    .await
                    .and_then(|r| r.try_get(0))
                    .map_err(StoreError::query(what))?;
                super::detect_dialect(&version)
            }
        };
        let store = match dialect {
            Dialect::Postgres => IndexStore::Postgres(PgIndex::new(client, &config.tables)),
            Dialect::QuestDb => IndexStore::QuestDb(QuestIndex::new(client, &config.tables)),
        };
        Ok(store)
    }

    /// The dialect of the index database.
    pub fn dialect(&self) -> Dialect {
        match self {
            IndexStore::Postgres(_) => Dialect::Postgres,
            IndexStore::QuestDb(_) => Dialect::QuestDb,
        }
    }

    async fn ensure_catalogue(&self) -> Result<(), StoreError> {
        index_dispatch!(self, s => s.ensure_catalogue().await)
    }

    /// Every built index, by kind and channel.
    ///
    /// # Errors
    /// [`StoreError`] if the catalogue cannot be read.
    pub async fn catalogue(&self) -> Result<Vec<Built>, StoreError> {
        index_dispatch!(self, s => s.catalogue().await)
    }

    /// The built feature index of `channel` (case-insensitive), if any.
    ///
    /// # Errors
    /// [`StoreError`] if the catalogue cannot be read.
    pub async fn built(&self, channel: &str) -> Result<Option<Built>, StoreError> {
        self.built_kind(FEATURE, channel).await
    }

    /// Creates an empty bucket table for `channel` (dropping a previous one) and records
    /// it in the catalogue with `params` and no range.
    ///
    /// # Errors
    /// [`StoreError`] if a statement fails.
    pub async fn create(
        &mut self,
        tables: &TableNames,
        channel: &str,
        params: &str,
    ) -> Result<Built, StoreError> {
        let built = Built::empty(FEATURE, tables, channel, params);
        index_dispatch!(self, s => s.create_table(&built.bucket_table).await)?;
        self.record(&built).await?;
        Ok(built)
    }

    /// Records `built` in the catalogue (replacing the record of its kind and channel).
    ///
    /// # Errors
    /// [`StoreError`] if the statement fails.
    pub async fn record(&mut self, built: &Built) -> Result<(), StoreError> {
        index_dispatch!(self, s => s.record(built).await)
    }

    /// Records that the stored data of `built` changed now (its `updated_at`, always
    /// later than the one recorded), and returns the record as written.
    ///
    /// # Errors
    /// [`StoreError`] if the statement fails.
    pub async fn touch(&mut self, built: &Built) -> Result<Built, StoreError> {
        let mut b = built.clone();
        b.updated_at = chrono::Utc::now()
            .naive_utc()
            .max(built.updated_at + chrono::TimeDelta::microseconds(1));
        self.record(&b).await?;
        Ok(b)
    }

    /// Drops `built`: its table (and a similarity index's tree tables) and its catalogue
    /// record.
    ///
    /// # Errors
    /// [`StoreError`] if a statement fails.
    pub async fn drop_built(&mut self, built: &Built) -> Result<(), StoreError> {
        if built.kind == super::similarity::SIMILARITY {
            self.drop_tree(built).await?;
        }
        index_dispatch!(self, s => s.drop_index(built).await)
    }

    /// Drops the built index of `channel`: its bucket table and its catalogue record.
    /// `false` when none was built.
    ///
    /// # Errors
    /// [`StoreError`] if a statement fails.
    pub async fn drop_index(&mut self, channel: &str) -> Result<bool, StoreError> {
        let Some(built) = self.built(channel).await? else {
            return Ok(false);
        };
        index_dispatch!(self, s => s.drop_index(&built).await)?;
        Ok(true)
    }

    /// Replaces the buckets of device `id` whose start lies in `[from, to)` by
    /// `buckets` (every level; `from` and `to` aligned to the coarsest level), in one
    /// transaction where the dialect has them.
    ///
    /// # Errors
    /// [`StoreError`] if a statement fails.
    pub async fn replace_buckets(
        &mut self,
        built: &Built,
        id: i32,
        (from, to): (Micros, Micros),
        buckets: &[Bucket],
    ) -> Result<(), StoreError> {
        let levels = built.levels()?.clone();
        index_dispatch!(self, s => s.replace_buckets(&built.bucket_table, &levels, id, (from, to), buckets).await)
    }

    /// Writes these buckets, each of the device beside it (inserted or replaced; a
    /// bucket with empty features stands for no bucket).
    ///
    /// # Errors
    /// [`StoreError`] if a statement fails.
    pub async fn write_buckets(
        &mut self,
        built: &Built,
        buckets: &[(i32, Bucket)],
    ) -> Result<(), StoreError> {
        let levels = built.levels()?.clone();
        index_dispatch!(self, s => s.write_buckets(&built.bucket_table, &levels, buckets).await)
    }

    /// The buckets of level `level` (an index into the built [`Levels`]) of device `id`
    /// whose start lies in one of the half-open `spans`, in time order, without empty
    /// ones.
    ///
    /// # Errors
    /// [`StoreError`] if the query fails or the index's levels cannot be read.
    pub async fn load_buckets(
        &self,
        built: &Built,
        id: i32,
        level: usize,
        spans: &[(Micros, Micros)],
    ) -> Result<Vec<Bucket>, StoreError> {
        let found = self
            .load_buckets_of(built, level, &of_device(id, spans))
            .await?;
        Ok(without_devices(found))
    }

    /// [`IndexStore::load_buckets`] of many devices at once: the buckets whose device
    /// and start lie in one of `spans`, each with its device, ordered by device and time
    /// (one statement where the dialect allows).
    ///
    /// # Errors
    /// [`StoreError`] if the query fails or the index's levels cannot be read.
    pub async fn load_buckets_of(
        &self,
        built: &Built,
        level: usize,
        spans: &[DeviceSpan],
    ) -> Result<Vec<(i32, Bucket)>, StoreError> {
        let levels = built.levels()?;
        if level >= levels.len() {
            return Err(StoreError::Unexpected {
                what: format!("reading buckets of the index of `{}`", built.channel),
                detail: format!("level {level} does not exist (it has {})", levels.len()),
            });
        }
        let spans = merge_device_spans(spans.to_vec());
        if spans.is_empty() {
            return Ok(Vec::new());
        }
        let len = levels.length(level);
        let mut out: Vec<(i32, Bucket)> =
            index_dispatch!(self, s => s.load_buckets(&built.bucket_table, len, &spans).await)?;
        for (_, b) in &mut out {
            b.level = level;
        }
        Ok(out)
    }

    /// The devices the built index holds buckets of.
    ///
    /// # Errors
    /// [`StoreError`] if the query fails.
    pub async fn devices(&self, built: &Built) -> Result<Vec<i32>, StoreError> {
        index_dispatch!(self, s => s.devices(&built.bucket_table).await)
    }

    /// The size of the built index.
    ///
    /// # Errors
    /// [`StoreError`] if a query fails.
    pub async fn size(&self, built: &Built) -> Result<IndexSize, StoreError> {
        let coarsest = built.levels()?.length(0);
        index_dispatch!(self, s => s.size(&built.bucket_table, coarsest).await)
    }
}

/// `spans` as spans of device `id`.
fn of_device(id: i32, spans: &[(Micros, Micros)]) -> Vec<DeviceSpan> {
    spans.iter().map(|&(a, b)| (id, a, b)).collect()
}

/// What a read of many devices found, without the devices (a read of one).
fn without_devices<T>(found: Vec<(i32, T)>) -> Vec<T> {
    found.into_iter().map(|(_, x)| x).collect()
}

impl AnyStore {
    /// The points of `channel` of device `id` from the data rows whose `datetime` lies
    /// in one of the half-open `spans`, in time order (see [`channel_point`]).
    ///
    /// # Errors
    /// [`StoreError`] if the query fails.
    pub async fn load_points(
        &self,
        channel: &str,
        id: i32,
        spans: &[(Micros, Micros)],
    ) -> Result<Vec<Point>, StoreError> {
        let found = self.load_points_of(channel, &of_device(id, spans)).await?;
        Ok(without_devices(found))
    }

    /// [`AnyStore::load_points`] of many devices at once: the points of the rows whose
    /// device and `datetime` lie in one of `spans`, each with its device, ordered by
    /// device and time (one statement where the dialect allows).
    ///
    /// # Errors
    /// [`StoreError`] if the query fails.
    pub async fn load_points_of(
        &self,
        channel: &str,
        spans: &[DeviceSpan],
    ) -> Result<Vec<(i32, Point)>, StoreError> {
        let spans = merge_device_spans(spans.to_vec());
        if spans.is_empty() {
            return Ok(Vec::new());
        }
        data_dispatch!(self, s => s.index_points(channel, &spans).await)
    }

    /// The spans of device `id` within `range` the index of `channel` must not be
    /// trusted for, merged and in time order: the buckets (of length `marked`) in the
    /// dirty log, and the finest buckets (of length `finest`) holding data rows still
    /// flagged (`recalc > 0`).
    ///
    /// # Errors
    /// [`StoreError`] if a query fails.
    pub async fn untrusted(
        &self,
        channel: &str,
        id: i32,
        (marked, finest): (Micros, Micros),
        range: (Micros, Micros),
    ) -> Result<Vec<(Micros, Micros)>, StoreError> {
        let (from, to) = range;
        if from >= to || finest <= 0 || marked <= 0 {
            return Ok(Vec::new());
        }
        let key = channel.to_lowercase();
        let (dirty, flagged) =
            data_dispatch!(self, s => s.index_untrusted(&key, id, (from, to)).await)?;
        let mut spans: Vec<(Micros, Micros)> = Vec::with_capacity(dirty.len() + flagged.len());
        for start in dirty {
            let s = micros(start);
            // A mark recorded under other levels may be unaligned: cover its bucket.
            let s = s.div_euclid(marked) * marked;
            spans.push((s, s + marked));
        }
        for t in flagged {
            let s = micros(t).div_euclid(finest) * finest;
            spans.push((s, s + finest));
        }
        Ok(merge_spans(spans)
            .into_iter()
            .filter_map(|(a, b)| {
                let (a, b) = (a.max(from), b.min(to));
                (a < b).then_some((a, b))
            })
            .collect())
    }

    /// Up to `limit` entries of the dirty log the maintainer keeps up, oldest bucket
    /// first (a subsequence index's marks are left to `index build`).
    ///
    /// # Errors
    /// [`StoreError`] if the query fails.
    pub async fn dirty_marks(&self, limit: usize) -> Result<Vec<DirtyMark>, StoreError> {
        data_dispatch!(self, s => s.index_dirty_marks(limit).await)
    }

    /// Clears these entries of the dirty log, unless marked again since they were read.
    ///
    /// # Errors
    /// [`StoreError`] if the statement fails.
    pub async fn clear_dirty(&self, marks: &[DirtyMark]) -> Result<(), StoreError> {
        if marks.is_empty() {
            return Ok(());
        }
        data_dispatch!(self, s => s.index_clear_dirty(marks).await)
    }

    /// Entries of the dirty log per channel (lower-case).
    ///
    /// # Errors
    /// [`StoreError`] if the query fails.
    pub async fn dirty_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        data_dispatch!(self, s => s.index_dirty_counts().await)
    }

    /// The devices with data rows in `[from, to)`, in order.
    ///
    /// # Errors
    /// [`StoreError`] if the query fails.
    pub async fn devices_in(&self, range: (Micros, Micros)) -> Result<Vec<i32>, StoreError> {
        data_dispatch!(self, s => s.index_devices_in(range).await)
    }

    /// The devices with data rows in `[from, to)` (all time for `None`), and the first
    /// and last `datetime` of their rows.
    ///
    /// # Errors
    /// [`StoreError`] if the query fails.
    pub async fn data_extent(
        &self,
        range: Option<(Micros, Micros)>,
    ) -> Result<Vec<(i32, Micros, Micros)>, StoreError> {
        data_dispatch!(self, s => s.index_extent(range).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn bucket_tables_are_identifiers_and_distinct() {
        let t = Config::default().tables;
        assert_eq!(bucket_table(&t, "Tmp"), "recalcd_index_feature_tmp");
        let a = bucket_table(&t, "p.1");
        let b = bucket_table(&t, "p 1");
        assert_ne!(a, b);
        let long = bucket_table(&t, &"x".repeat(100));
        assert!(long.len() <= 63, "{long}");
        for n in [a, b, long] {
            assert!(n
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
        }
    }

    #[test]
    fn points_come_from_the_last_entry() {
        let p = channel_point(5, "a=1;TMP=2.5;b=x", "tmp").unwrap();
        assert_eq!(p, Point { t: 5, v: Some(2.5) });
        assert_eq!(channel_point(5, "tmp=1;tmp=hot", "tmp").unwrap().v, None);
        assert_eq!(channel_point(5, "tmp=1,2", "tmp").unwrap().v, None);
        assert!(channel_point(5, "a=1;bad;", "tmp").is_none());
    }

    #[test]
    fn spans_merge() {
        assert_eq!(
            merge_spans(vec![(5, 9), (0, 2), (2, 3), (8, 12), (20, 20)]),
            vec![(0, 3), (5, 12)]
        );
        // Spans of different devices never merge, however they lie.
        assert_eq!(
            merge_device_spans(vec![(2, 0, 4), (1, 3, 6), (1, 0, 3), (2, 4, 5), (1, 7, 7)]),
            vec![(1, 0, 6), (2, 0, 5)]
        );
    }

    #[test]
    fn features_round_trip_their_storage() {
        let f = Features::of([
            Point {
                t: 10,
                v: Some(2.0),
            },
            Point { t: 20, v: None },
            Point {
                t: 30,
                v: Some(-1.0),
            },
        ]);
        assert_eq!(StoredFeatures::of(&f).features(), f);
        assert_eq!(
            StoredFeatures::of(&Features::EMPTY).features(),
            Features::EMPTY
        );
        assert_eq!(
            levels_of("1d/1h/10m/1m devices=7").unwrap().to_string(),
            "1d/1h/10m/1m"
        );
    }
}
