//! Keeping the built indexes exact as rows are recalculated.
//!
//! Every write-back records the buckets its data rows fall in, at each declared feature
//! index's mark level (the coarsest level at most an hour long), for every index whose
//! devices include the row's ([`marks`]; the store writes them with the rows, in the
//! same transaction on PostgreSQL). [`Maintainer::catch_up`] then compares each marked
//! bucket with what this process's write-backs wrote into it ([`Written`]), and with
//! its stored rows, read back, where that does not settle it: a marked bucket whose
//! digest and counts are unchanged is left alone with everything below and above it;
//! for the others, the finest buckets are recomputed —
//! each once however many of its rows changed — and combined up level by level, and
//! what differs from the stored buckets is written to the index database. Then the
//! marks are cleared. A search treats marked spans as untrusted until then. It runs
//! after each run of batches and at start-up of `once` and `run` (marks left by a
//! crash); if the index database fails, the marks stay and the next round retries:
//! data rows are never held back by the index.
//!
//! Only built indexes are kept: the marks of an index declared but not built are
//! cleared (a build reads the stored rows anyway).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use tracing::{debug, info};

use crate::config::{Config, IndexConfig};
use crate::index::feature::{Bucket, Features, Levels};
use crate::index::{datetime, micros, DeviceSpan, Micros};
use crate::store::index::{channel_point, Built, DirtyMark, IndexStore, FEATURE};
use crate::store::{AnyStore, IndexMark, Level, Row, RowKey, StoreError};

/// Marks read and cleared per round (a round holds its marks, and the rows and buckets
/// of one [`MARKS_PER_STEP`] step at a time).
const MARKS_PER_ROUND: usize = 250_000;

/// Marks one step of the catch-up takes at most (more where the last coarsest bucket
/// of a device it took holds more): its rows and buckets are held at once (at 1 Hz,
/// 960 hour marks are 3.5 M points, 55 MB). A step costs a few statements whatever
/// its size and however many devices it spans, so a backlog is taken in large steps.
const MARKS_PER_STEP: usize = 960;

/// The dirty-log marks of written data rows: per declared feature index covering the
/// row's device, the start of the bucket of its [`Levels::mark_level`] holding it (per
/// similarity index the row's job, per subsequence index its minute); each mark once,
/// sorted.
pub fn marks(index: &IndexConfig, rows: &[Row]) -> Vec<IndexMark> {
    if index.feature.is_empty() && index.similarity.is_empty() && index.subsequence.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    // Per index, its keys (device and start) once each: a row costs no allocation.
    let mut keys: Vec<(i32, Micros)> = Vec::new();
    let mut add = |channel: String, keys: &mut Vec<(i32, Micros)>| {
        keys.sort_unstable();
        keys.dedup();
        out.extend(keys.drain(..).map(|(id, start)| IndexMark {
            channel: channel.clone(),
            id,
            start: datetime(start),
        }));
    };
    // Subsequence indexes: the minute of each row, under the index's own key (left for
    // `index build`: queries distrust the boxes those minutes touch until then).
    for s in &index.subsequence {
        let span = crate::store::subsequence::MARK_SPAN;
        keys.extend(
            rows.iter()
                .filter(|r| s.covers(r.id))
                .map(|r| (r.id, micros(r.datetime).div_euclid(span) * span)),
        );
        add(
            crate::store::subsequence::mark_channel(&s.channel),
            &mut keys,
        );
    }
    // Similarity indexes: the job of each row (its `data_time`), under the index's own
    // dirty-log key.
    for s in &index.similarity {
        keys.extend(
            rows.iter()
                .filter(|r| s.covers(r.id))
                .map(|r| (r.id, micros(r.data_time))),
        );
        add(
            crate::store::similarity::mark_channel(&s.channel),
            &mut keys,
        );
    }
    for f in &index.feature {
        let marked = f.levels.mark_level();
        keys.extend(
            rows.iter()
                .filter(|r| f.covers(r.id))
                .map(|r| (r.id, f.levels.bucket_start(marked, micros(r.datetime)))),
        );
        add(f.channel.to_lowercase(), &mut keys);
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The features of what the write-backs of this process wrote into each marked bucket
/// of a feature index (its channel, device and start at the index's mark level): a
/// catch-up that finds them the same rows as the stored bucket ([`Features::same_rows`])
/// leaves the bucket alone without reading the stored rows back. A bucket that a
/// batch's guard left a row of (a producer's newer write) or that holds a row whose
/// content recalcd cannot write (unreadable text) is *spoilt*: read back as before.
///
/// Why this is exact: the digest and counts equal those of the stored bucket only when
/// the rows written are the rows the index holds. A row of the bucket that no batch
/// wrote and the index never saw is either still flagged (a search reads its finest
/// bucket raw, and its own write-back marks the bucket again, with too few rows to
/// match) or a producer's unflagged write, which reaches the index only through
/// `index build` anyway. Entries are taken by the catch-up of their mark; a batch
/// written twice over one bucket counts its rows twice and no longer matches.
#[derive(Debug, Clone, Default)]
pub struct Written(Arc<Mutex<HashMap<WrittenKey, Option<Features>>>>);

/// A marked bucket of a feature index: its channel (lower-case), device and start.
type WrittenKey = (String, i32, Micros);

/// Entries [`Written`] holds at most: past it, it starts over (an entry only spares a
/// read; a marked bucket without one is read back). Marks are taken after every batch,
/// so only entries whose marks a catch-up took before they were recorded stay behind.
const WRITTEN_MAX: usize = 1 << 20;

/// One batch's contribution to [`Written`], computed before its write-back.
#[derive(Debug, Default)]
pub struct BatchFeatures(Vec<(WrittenKey, Option<Features>)>);

impl BatchFeatures {
    /// The features of the rows `rows` of each declared feature index, per marked
    /// bucket (rows as the write-back writes them).
    pub fn of(index: &IndexConfig, rows: &[Row]) -> BatchFeatures {
        let mut out = Vec::new();
        for f in &index.feature {
            let channel = f.channel.to_lowercase();
            let mark = f.levels.mark_level();
            let mut buckets: BTreeMap<(i32, Micros), Option<Features>> = BTreeMap::new();
            // Rows come in runs of one bucket: one map entry per run.
            let mut run: Option<((i32, Micros), Option<Features>)> = None;
            for r in rows.iter().filter(|r| f.covers(r.id)) {
                let t = micros(r.datetime);
                let key = (r.id, f.levels.bucket_start(mark, t));
                if run.as_ref().is_none_or(|(k, _)| *k != key) {
                    if let Some((k, v)) = run.take() {
                        merge_written(buckets.entry(k).or_insert(Some(Features::EMPTY)), v);
                    }
                    run = Some((key, Some(Features::EMPTY)));
                }
                if let Some((_, features)) = run.as_mut() {
                    if r.unreadable.is_some() {
                        *features = None;
                    } else if let (Some(f), Some(p)) =
                        (features.as_mut(), channel_point(t, &r.conjoined, &channel))
                    {
                        f.add(p);
                    }
                }
            }
            if let Some((k, v)) = run {
                merge_written(buckets.entry(k).or_insert(Some(Features::EMPTY)), v);
            }
            out.extend(
                buckets
                    .into_iter()
                    .map(|((id, start), v)| ((channel.clone(), id, start), v)),
            );
        }
        BatchFeatures(out)
    }
}

/// Adds `more` to `into`; `None` (spoilt) wins.
fn merge_written(into: &mut Option<Features>, more: Option<Features>) {
    match (into.as_mut(), more) {
        (Some(a), Some(b)) => a.combine(&b),
        _ => *into = None,
    }
}

impl Written {
    /// Records what a batch wrote, once its write-back succeeded: `skipped` are the rows
    /// its guard left to a producer's newer write, which spoil their buckets.
    pub fn record(&self, index: &IndexConfig, batch: BatchFeatures, skipped: &[(Level, RowKey)]) {
        let Ok(mut map) = self.0.lock() else {
            return;
        };
        if map.len() + batch.0.len() > WRITTEN_MAX {
            map.clear();
        }
        for (key, v) in batch.0 {
            merge_written(map.entry(key).or_insert(Some(Features::EMPTY)), v);
        }
        for (_, key) in skipped.iter().filter(|(level, _)| *level == Level::Data) {
            for f in index.feature.iter().filter(|f| f.covers(key.id)) {
                let start = f
                    .levels
                    .bucket_start(f.levels.mark_level(), micros(key.datetime));
                map.insert((f.channel.to_lowercase(), key.id, start), None);
            }
        }
    }

    /// Takes the entry of a marked bucket: its features, `None` where there is none or
    /// it is spoilt.
    fn take(&self, channel: &str, id: i32, start: Micros) -> Option<Features> {
        let mut map = self.0.lock().ok()?;
        map.remove(&(channel.to_string(), id, start)).flatten()
    }

    /// Puts back an entry taken and not used: merged with what was recorded since.
    fn give_back(&self, channel: &str, id: i32, start: Micros, features: Features) {
        if let Ok(mut map) = self.0.lock() {
            let entry = map
                .entry((channel.to_string(), id, start))
                .or_insert(Some(Features::EMPTY));
            merge_written(entry, Some(features));
        }
    }

    /// How many entries it holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().map_or(0, |m| m.len())
    }

    /// Whether it holds no entry.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Marked buckets found unchanged: all of them, and those of them found so without
/// reading their rows back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Unchanged {
    all: usize,
    unread: usize,
}

/// What one [`Maintainer::catch_up`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatchUp {
    /// Dirty-log marks cleared.
    pub marks: usize,
    /// Buckets recomputed and written (every level).
    pub buckets: usize,
    /// Marked buckets found unchanged by their digest (their children and ancestors
    /// neither read nor compared).
    pub unchanged: usize,
    /// Of those, found unchanged by what this process's write-backs wrote, without
    /// reading their rows back ([`Written`]).
    pub unread: usize,
    /// Marks left for a later round: buckets the write-backs so far wrote only part of.
    pub deferred: usize,
}

/// Brings the built indexes up to date with the dirty log.
#[derive(Debug)]
pub struct Maintainer {
    config: Config,
    index: Option<IndexStore>,
    written: Written,
}

impl Maintainer {
    /// A maintainer for the declared indexes; `None` when none is declared.
    pub fn new(config: &Config) -> Option<Maintainer> {
        (!config.index.feature.is_empty() || !config.index.similarity.is_empty()).then(|| {
            Maintainer {
                config: config.clone(),
                index: None,
                written: Written::default(),
            }
        })
    }

    /// The log of what this process's write-backs wrote, which spares the catch-up
    /// reading back the buckets they left unchanged: give it to the
    /// [`super::Recalculator`] writing the batches.
    pub fn written(&self) -> Written {
        self.written.clone()
    }

    /// Recomputes every marked bucket of the built indexes and clears the marks.
    ///
    /// # Errors
    /// [`StoreError`] if the data store or the index database fails; the marks not
    /// yet cleared stay for the next round (the connection to the index database is
    /// opened again then).
    pub async fn catch_up(&mut self, data: &AnyStore) -> Result<CatchUp, StoreError> {
        self.catch_up_deferring(data, false).await
    }

    /// [`Maintainer::catch_up`]; with `defer`, a marked bucket that the write-backs
    /// wrote fewer rows into than it holds (most likely a bucket split between two
    /// batches, the second still to come) keeps its mark and what was written, for a
    /// later round to decide once the rest is written, instead of being read back now.
    async fn catch_up_deferring(
        &mut self,
        data: &AnyStore,
        defer: bool,
    ) -> Result<CatchUp, StoreError> {
        let started = std::time::Instant::now();
        let mut done = CatchUp::default();
        loop {
            let marks = data.dirty_marks(MARKS_PER_ROUND).await?;
            if marks.is_empty() {
                break;
            }
            let n = marks.len();
            let deferred = match self.round(data, &marks, defer).await {
                Ok((buckets, unchanged, deferred)) => {
                    done.buckets += buckets;
                    done.unchanged += unchanged.all;
                    done.unread += unchanged.unread;
                    deferred
                }
                Err(e) => {
                    self.index = None;
                    return Err(e);
                }
            };
            let clear: Vec<DirtyMark> = marks
                .into_iter()
                .enumerate()
                .filter(|(i, _)| !deferred.contains(i))
                .map(|(_, m)| m)
                .collect();
            data.clear_dirty(&clear).await?;
            done.marks += clear.len();
            done.deferred += deferred.len();
            // Deferred marks are read again by the next round: not before the next
            // catch-up.
            if n < MARKS_PER_ROUND || clear.is_empty() {
                break;
            }
        }
        if done.marks + done.deferred > 0 {
            info!(
                marks = done.marks,
                buckets = done.buckets,
                unchanged = done.unchanged,
                unread = done.unread,
                deferred = done.deferred,
                ms = started.elapsed().as_millis() as u64,
                "indexes brought up to date"
            );
        }
        Ok(done)
    }

    /// Recomputes the buckets of `marks`; returns how many buckets it wrote, how many
    /// marked buckets it found unchanged, and which of `marks` (their positions) it
    /// deferred (see [`Maintainer::catch_up_deferring`]).
    async fn round(
        &mut self,
        data: &AnyStore,
        marks: &[DirtyMark],
        defer: bool,
    ) -> Result<(usize, Unchanged, BTreeSet<usize>), StoreError> {
        if self.index.is_none() {
            self.index = Some(IndexStore::connect(&self.config).await?);
        }
        let Some(index) = self.index.as_mut() else {
            return Ok((0, Unchanged::default(), BTreeSet::new()));
        };
        let catalogue = index.catalogue().await?;
        let mut by_channel: BTreeMap<&str, BTreeMap<i32, Vec<Micros>>> = BTreeMap::new();
        for m in marks {
            by_channel
                .entry(m.channel.as_str())
                .or_default()
                .entry(m.id)
                .or_default()
                .push(micros(m.start));
        }
        let (mut written, mut unchanged) = (0, Unchanged::default());
        let mut deferred_marks = BTreeSet::new();
        for (channel, devices) in by_channel {
            if let Some(plain) = channel.strip_prefix(SIMILARITY_MARK) {
                written += similarity_round(data, index, &catalogue, plain, &devices).await?;
                continue;
            }
            let Some(mut built) = catalogue
                .iter()
                .find(|b| b.kind == FEATURE && b.channel == channel)
                .cloned()
            else {
                debug!(channel, "marks of an index not built: nothing to keep");
                for (&id, starts) in &devices {
                    for &s in starts {
                        self.written.take(channel, id, s);
                    }
                }
                continue;
            };
            let levels = built.levels()?.clone();
            // The span a mark stands for: a bucket of its declared mark level (the
            // built index may have other levels).
            let span = self
                .config
                .index
                .feature(channel)
                .map_or(levels.length(levels.mark_level()), |f| {
                    f.levels.length(f.levels.mark_level())
                });
            // Steps of whole coarsest buckets of each device (a bucket's ancestors are
            // recomputed by one step alone), each read across its devices at once.
            let coarsest = levels.length(0);
            let mut steps: Vec<Vec<DeviceSpan>> = Vec::new();
            let (mut in_step, mut last_top) = (0, None);
            for (id, mut starts) in devices {
                // A mark made under other levels (or by an older recalcd) may be
                // unaligned: its bucket.
                for s in &mut starts {
                    *s = s.div_euclid(span) * span;
                }
                starts.dedup();
                for s in starts {
                    let top = (id, s.div_euclid(coarsest));
                    if steps.is_empty() || (in_step >= MARKS_PER_STEP && last_top != Some(top)) {
                        steps.push(Vec::new());
                        in_step = 0;
                    }
                    if let Some(step) = steps.last_mut() {
                        step.push((id, s, s + span));
                    }
                    in_step += 1;
                    last_top = Some(top);
                }
            }
            let mut range = built.range;
            let mut deferred: BTreeSet<(i32, Micros)> = BTreeSet::new();
            for step in &steps {
                let defer = defer.then_some(&mut deferred);
                let (changed, same) =
                    recompute(data, index, &built, &levels, step, &self.written, defer).await?;
                written += changed.len();
                unchanged.all += same.all;
                unchanged.unread += same.unread;
                // The marked buckets last: their digests vouch for every other level.
                let (marked, rest): (Vec<_>, Vec<_>) = changed
                    .into_iter()
                    .partition(|(_, b)| b.level == levels.mark_level());
                for buckets in [rest, marked] {
                    if !buckets.is_empty() {
                        index.write_buckets(&built, &buckets).await?;
                    }
                }
                for &(_, a, b) in step {
                    let (a, b) = (
                        levels.bucket_start(0, a),
                        levels.bucket_start(0, b - 1) + levels.length(0),
                    );
                    range = Some(range.map_or((a, b), |(f, t)| (f.min(a), t.max(b))));
                }
            }
            if range != built.range {
                built.range = range;
                index.record(&built).await?;
            }
            deferred_marks.extend(
                marks
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| {
                        m.channel == channel
                            && deferred.contains(&(m.id, micros(m.start).div_euclid(span) * span))
                    })
                    .map(|(i, _)| i),
            );
        }
        Ok((written, unchanged, deferred_marks))
    }
}

/// A [`Maintainer`] catching up in a task of its own, on a data connection of its own,
/// while batches are written ([`Maintainer::alongside`]).
#[derive(Debug)]
pub struct Alongside {
    wake: std::sync::Arc<tokio::sync::Notify>,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<Maintainer>,
}

impl Alongside {
    /// Says that a batch was written: its marks are there to catch up.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Catches up with everything marked so far, then gives the maintainer back.
    pub async fn finish(self) -> Maintainer {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
        self.wake.notify_one();
        match self.task.await {
            Ok(m) => m,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

impl Maintainer {
    /// Catches up in a task of its own on `data` (a connection of its own) each time
    /// [`Alongside::wake`] says a batch was written (not before: the caller catches up
    /// with what a crash left first), and once more at
    /// [`Alongside::finish`]: the index work overlaps the batches instead of following
    /// them. Only where marks commit with their data rows (PostgreSQL): on QuestDB a
    /// mark is written before its rows, which may not be applied yet when it is read.
    /// A failed round is logged and retried at the next wake.
    pub fn alongside(mut self, data: AnyStore) -> Alongside {
        use std::sync::atomic::Ordering;
        let wake = std::sync::Arc::new(tokio::sync::Notify::new());
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (w, d) = (wake.clone(), done.clone());
        let task = tokio::spawn(async move {
            loop {
                // The caller caught up before the first batch: wait for one.
                w.notified().await;
                // Read before the round: a `finish` after it wakes one more round.
                let last = d.load(Ordering::SeqCst);
                // Until the last round, a bucket only part of whose rows were written
                // waits for the batch writing the rest.
                if let Err(e) = self.catch_up_deferring(&data, !last).await {
                    tracing::warn!(
                        error = %e,
                        "cannot bring the indexes up to date; retrying after the next batch"
                    );
                }
                if last {
                    return self;
                }
            }
        });
        Alongside { wake, done, task }
    }
}

/// `similarity=`: the prefix of a similarity index's marks.
const SIMILARITY_MARK: &str = "similarity=";

/// Recomputes the entries of the marked jobs (`devices`: per device the job starts) of
/// the built similarity index of `channel`; returns the entries written or removed.
async fn similarity_round(
    data: &AnyStore,
    index: &mut IndexStore,
    catalogue: &[Built],
    channel: &str,
    devices: &BTreeMap<i32, Vec<Micros>>,
) -> Result<usize, StoreError> {
    use crate::index::similarity::{Key, Params, Spectrum};
    let Some(built) = catalogue
        .iter()
        .find(|b| b.kind == crate::store::similarity::SIMILARITY && b.channel == channel)
        .cloned()
    else {
        debug!(
            channel,
            "marks of a similarity index not built: nothing to keep"
        );
        return Ok(0);
    };
    let Some(params) = Params::parse(&built.params) else {
        debug!(channel, params = %built.params, "similarity index with unreadable parameters: rebuild it");
        return Ok(0);
    };
    let jobs: Vec<(Key, Option<Micros>)> = devices
        .iter()
        .flat_map(|(&id, starts)| starts.iter().map(move |&start| (Key { id, start }, None)))
        .collect();
    let word_length =
        crate::index::similarity::isax::IsaxParams::parse(&built.params, params.length)
            .map(|p| p.word_length);
    let mut spectrum = Spectrum::new(params);
    let mut keeper = super::similar::xcorr::TreeKeeper::load(index, &built).await?;
    // The indexed range stays: an entry outside it is kept but not used (a query
    // outside the range scans), since the jobs around it were never indexed.
    let mut done = 0;
    for chunk in jobs.chunks(1_000) {
        let found = data.jobs_points(channel, chunk).await?;
        let mut entries = Vec::new();
        for j in &found {
            if let Some(e) = super::similar::entry_of(j, &mut spectrum, params, word_length) {
                entries.push(e);
            }
        }
        let kept: BTreeSet<Key> = entries.iter().map(|e| e.key).collect();
        let gone: Vec<Key> = chunk
            .iter()
            .map(|j| j.0)
            .filter(|k| !kept.contains(k))
            .collect();
        index.write_entries(&built, &entries).await?;
        index.remove_entries(&built, &gone).await?;
        if let Some(k) = keeper.as_mut() {
            k.apply(index, &built, &found, &gone).await?;
        }
        done += chunk.len();
    }
    if done > 0 {
        // Before the marks are cleared: a `serve` that finds them gone finds this too.
        index.touch(&built).await?;
    }
    Ok(done)
}

/// The buckets to write, each with its device, after the rows in `spans` changed, and
/// how many marked buckets were found unchanged (see below). Coarse levels first:
/// every finest bucket overlapping `spans` recomputed from the stored rows, then their
/// ancestors from their children (read from the index only where the recomputed ones
/// do not cover a parent), each compared with the stored one and kept only where they
/// differ. A recalculation that leaves the channel's values
/// alone (a raw channel, or a computed one whose values came out the same) writes
/// nothing. Each level is one read across all the devices of `spans`.
///
/// A marked bucket whose stored digest and counts match its rows now holds the rows it
/// held when it was written (but for a chance of 2⁻⁶⁴): its
/// children and ancestors are as written then, and are neither read nor recomputed —
/// a recalculation that leaves the channel alone reads only the points and one stored
/// bucket per mark. The others have every ancestor recomputed, changed or not, so a
/// round cut short between two levels (a crash, the index database going away) is
/// repaired by the next one whatever the rows hold by then; [`Maintainer::round`]
/// writes the marked buckets after every other level, so that a write cut short
/// leaves their digests stale, which the next round sees.
async fn recompute(
    data: &AnyStore,
    index: &IndexStore,
    built: &Built,
    levels: &Levels,
    spans: &[DeviceSpan],
    written: &Written,
    mut defer: Option<&mut BTreeSet<(i32, Micros)>>,
) -> Result<(Vec<(i32, Bucket)>, Unchanged), StoreError> {
    let mut level = levels.finest();
    let mut len = levels.length(level);
    let mark = levels.mark_level();
    // Marks made under other levels (or by an older recalcd) may not be whole marked
    // buckets: those are recomputed.
    let whole = spans
        .iter()
        .all(|&(_, a, b)| b - a == levels.length(mark) && levels.bucket_start(mark, a) == a);
    let stored: BTreeMap<(i32, Micros), Features> = if whole {
        index
            .load_buckets_of(built, mark, spans)
            .await?
            .into_iter()
            .map(|(id, b)| ((id, b.start), b.features))
            .collect()
    } else {
        BTreeMap::new()
    };
    let same = |key: &(i32, Micros), f: &Features| {
        whole && stored.get(key).unwrap_or(&Features::EMPTY).same_rows(f)
    };
    // Fewer rows written than the stored bucket holds: probably the rest comes with a
    // later batch.
    let fewer = |key: &(i32, Micros), f: &Features| {
        let held = stored.get(key).unwrap_or(&Features::EMPTY);
        whole && f.count + f.other < held.count + held.other
    };
    // What the write-backs wrote tells the first unchanged ones; the rest are read back
    // (or deferred).
    let mut unchanged = BTreeSet::new();
    let mut read_back: Vec<DeviceSpan> = Vec::new();
    for &(id, a, b) in spans {
        match (written.take(&built.channel, id, a), defer.as_mut()) {
            (Some(f), _) if same(&(id, a), &f) => {
                unchanged.insert((id, a));
            }
            (Some(f), Some(deferred)) if fewer(&(id, a), &f) => {
                written.give_back(&built.channel, id, a, f);
                deferred.insert((id, a));
            }
            _ => read_back.push((id, a, b)),
        }
    }
    let unread = unchanged.len();
    // The stored rows of the finest buckets overlapping the rest.
    let cover: Vec<DeviceSpan> = read_back
        .iter()
        .map(|&(id, a, b)| {
            let a = levels.bucket_start(level, a);
            (id, a, levels.bucket_start(level, b - 1) + len)
        })
        .collect();
    let points = if cover.is_empty() {
        Vec::new()
    } else {
        data.load_points_of(&built.channel, &cover).await?
    };
    if whole {
        unchanged.extend(
            features_of_marks(levels, &points, &read_back)
                .into_iter()
                .filter(|(key, f)| same(key, f))
                .map(|(key, _)| key),
        );
    }
    let counts = Unchanged {
        all: unchanged.len(),
        unread,
    };
    // The finest buckets to recompute (by device and start): those of the marks read
    // back and changed, with the rows they hold.
    let mut fresh: BTreeMap<(i32, Micros), Features> = BTreeMap::new();
    for &(id, a, b) in &read_back {
        if unchanged.contains(&(id, levels.bucket_start(mark, a))) {
            continue;
        }
        let mut s = levels.bucket_start(level, a);
        while s < b {
            fresh.insert((id, s), Features::EMPTY);
            s += len;
        }
    }
    if fresh.is_empty() {
        return Ok((Vec::new(), counts));
    }
    // In time order per device, as a build adds them.
    for (id, p) in points {
        if let Some(f) = fresh.get_mut(&(id, levels.bucket_start(level, p.t))) {
            f.add(p);
        }
    }
    // The buckets of `fresh` as spans: read from the index.
    let spans_of = |fresh: &BTreeMap<(i32, Micros), Features>, len: Micros| -> Vec<DeviceSpan> {
        fresh.keys().map(|&(id, s)| (id, s, s + len)).collect()
    };
    let mut read = spans_of(&fresh, len);
    let mut changed: Vec<Vec<(i32, Bucket)>> = vec![Vec::new(); levels.len()];
    loop {
        let stored: BTreeMap<(i32, Micros), Features> = index
            .load_buckets_of(built, level, &read)
            .await?
            .into_iter()
            .map(|(id, b)| ((id, b.start), b.features))
            .collect();
        changed[level] = fresh
            .iter()
            .filter(|(key, f)| stored.get(key).unwrap_or(&Features::EMPTY) != *f)
            .map(|(&(id, start), &features)| {
                (
                    id,
                    Bucket {
                        level,
                        start,
                        features,
                    },
                )
            })
            .collect();
        if level == 0 {
            break;
        }
        let (parent, plen) = (level - 1, levels.length(level - 1));
        let parents: BTreeSet<(i32, Micros)> = fresh
            .keys()
            .map(|&(id, s)| (id, levels.bucket_start(parent, s)))
            .collect();
        // The children of a parent the recomputed ones do not all cover come from the
        // index (each level divides the one above it).
        let uncovered: Vec<DeviceSpan> = parents
            .iter()
            .filter(|&&(id, p)| fresh.range((id, p)..(id, p + plen)).count() as i64 != plen / len)
            .map(|&(id, p)| (id, p, p + plen))
            .collect();
        let mut children = fresh;
        if !uncovered.is_empty() {
            for (id, b) in index.load_buckets_of(built, level, &uncovered).await? {
                children.entry((id, b.start)).or_insert(b.features);
            }
        }
        // Combined in time order, as a build combines them (every child's parent is
        // one of `parents`).
        let combined = crate::index::feature::combine_keyed(levels, &children, level, parent);
        read = spans_of(&combined, plen);
        (fresh, level, len) = (combined, parent, plen);
    }
    Ok((changed.into_iter().flatten().collect(), counts))
}

/// The features of the marked buckets `spans` (whole buckets of the index's mark level)
/// from `points`, the stored rows of `spans` by device and time: one pass, no finer
/// bucket built. Every marked bucket has one, empty or not.
fn features_of_marks(
    levels: &Levels,
    points: &[(i32, crate::index::Point)],
    spans: &[DeviceSpan],
) -> BTreeMap<(i32, Micros), Features> {
    let mark = levels.mark_level();
    let mut now: BTreeMap<(i32, Micros), Features> = spans
        .iter()
        .map(|&(id, a, _)| ((id, a), Features::EMPTY))
        .collect();
    // The points of one bucket come in one run.
    let mut run: Option<((i32, Micros), Features)> = None;
    for &(id, p) in points {
        let key = (id, levels.bucket_start(mark, p.t));
        match run.as_mut() {
            Some((k, f)) if *k == key => f.add(p),
            _ => {
                if let Some((k, f)) = run.take() {
                    now.entry(k).or_insert(Features::EMPTY).combine(&f);
                }
                let mut f = Features::EMPTY;
                f.add(p);
                run = Some((key, f));
            }
        }
    }
    if let Some((k, f)) = run {
        now.entry(k).or_insert(Features::EMPTY).combine(&f);
    }
    now
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::index::{RawFeatureIndex, RawIndex};

    fn time(s: &str) -> chrono::NaiveDateTime {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    /// A data row of device `id` at `at` holding `conjoined`.
    fn row(id: i32, at: &str, conjoined: &str) -> Row {
        Row {
            datetime: time(at),
            data_time: time(at),
            id,
            state: Some(0),
            user: None,
            gps: None,
            recalc: 0,
            conjoined: conjoined.to_string(),
            version: crate::model::RowVersion::ABSENT,
            unreadable: None,
        }
    }

    /// The features of what a batch wrote, per marked hour: only the rows with the
    /// channel count, rows of one hour in several runs add up, and an hour holding a
    /// row the guard skipped or an unreadable row is spoilt (read back).
    #[test]
    fn written_features_are_the_rows_written_per_marked_bucket() {
        let index = RawIndex {
            feature: vec![RawFeatureIndex {
                channel: "Tmp".into(),
                levels: vec!["1h".into(), "1m".into()],
                unit: None,
                devices: Some(vec![7, 8]),
            }],
            ..RawIndex::default()
        }
        .validate()
        .unwrap();
        let mut unreadable = row(8, "2024-04-20 10:05:00", "tmp=3;");
        unreadable.unreadable = Some("not UTF-8".into());
        let rows = [
            row(7, "2024-04-20 10:00:01", "tmp=1;x=2;"),
            row(7, "2024-04-20 10:30:00", "tmp=hot;"),
            row(7, "2024-04-20 10:59:00", "x=5;"),
            row(7, "2024-04-20 11:05:00", "TMP=2;"),
            row(7, "2024-04-20 10:45:00", "tmp=4;"),
            unreadable,
            row(8, "2024-04-20 11:00:00", "tmp=6;"),
            row(9, "2024-04-20 10:00:00", "tmp=7;"),
        ];
        let hour = |at: &str| micros(time(at));
        let point = |at: &str, v: Option<f64>| crate::index::Point { t: hour(at), v };
        let want = Features::of([
            point("2024-04-20 10:00:01", Some(1.0)),
            point("2024-04-20 10:30:00", None),
            point("2024-04-20 10:45:00", Some(4.0)),
        ]);
        let skipped = [(
            Level::Data,
            RowKey {
                id: 7,
                datetime: time("2024-04-20 11:05:00"),
            },
        )];
        let log = Written::default();
        log.record(&index, BatchFeatures::of(&index, &rows), &skipped);
        assert_eq!(
            log.len(),
            4,
            "(7, 10:00), (7, 11:00), (8, 10:00), (8, 11:00)"
        );
        let ten = log.take("tmp", 7, hour("2024-04-20 10:00:00")).unwrap();
        assert!(ten.same_rows(&want), "{ten:?}");
        assert_eq!((ten.count, ten.other, ten.sum), (2, 1, 5.0));
        for (id, at, why) in [
            (7, "10:00", "taken already"),
            (7, "11:00", "a row skipped"),
            (8, "10:00", "a row unreadable"),
        ] {
            let start = hour(&format!("2024-04-20 {at}:00"));
            assert_eq!(log.take("tmp", id, start), None, "{id} {at}: {why}");
        }
        assert_eq!(
            log.take("tmp", 8, hour("2024-04-20 11:00:00")),
            Some(Features::of([point("2024-04-20 11:00:00", Some(6.0))]))
        );
        assert!(log.is_empty());
        // A bucket written twice holds its rows twice: it no longer matches them.
        for _ in 0..2 {
            log.record(&index, BatchFeatures::of(&index, &rows[..3]), &[]);
        }
        let twice = log.take("tmp", 7, hour("2024-04-20 10:00:00")).unwrap();
        assert!(!twice.same_rows(&want));
        assert_eq!(twice.count, 2);
    }

    #[test]
    fn marks_are_per_covered_device_and_bucket_of_the_mark_level_once() {
        let index = RawIndex {
            database_url: None,
            feature: vec![
                RawFeatureIndex {
                    channel: "Tmp".into(),
                    levels: vec!["1h".into(), "1m".into()],
                    unit: None,
                    devices: Some(vec![7]),
                },
                RawFeatureIndex {
                    channel: "p".into(),
                    levels: vec!["1d".into(), "10m".into()],
                    unit: None,
                    devices: None,
                },
            ],
            ..RawIndex::default()
        }
        .validate()
        .unwrap();
        let rows = [
            row(7, "2024-04-20 10:00:01", ""),
            row(7, "2024-04-20 10:00:59", ""),
            row(7, "2024-04-20 10:01:00", ""),
            row(7, "2024-04-20 10:59:59", ""),
            row(8, "2024-04-20 10:05:00", ""),
        ];
        let m = marks(&index, &rows);
        let got: Vec<(String, i32, String)> = m
            .iter()
            .map(|m| (m.channel.clone(), m.id, m.start.format("%H:%M").to_string()))
            .collect();
        // `tmp` (1h/1m) is marked by the hour, `p` (1d/10m) by ten minutes.
        let want = [
            ("p", 7, "10:00"),
            ("p", 7, "10:50"),
            ("p", 8, "10:00"),
            ("tmp", 7, "10:00"),
        ];
        let want: Vec<(String, i32, String)> = want
            .iter()
            .map(|(c, i, s)| (c.to_string(), *i, s.to_string()))
            .collect();
        assert_eq!(got, want);
    }
}

#[cfg(test)]
mod similarity_tests {
    use super::*;
    use crate::config::index::RawIndex;
    use crate::config::similarity::RawSimilarityIndex;

    #[test]
    fn similarity_marks_are_the_jobs_of_covered_devices() {
        let index = RawIndex {
            similarity: vec![RawSimilarityIndex {
                channel: "Tmp".into(),
                length: Some(16),
                coefficients: Some(2),
                devices: Some(vec![7]),
                ..RawSimilarityIndex::default()
            }],
            ..RawIndex::default()
        }
        .validate()
        .unwrap();
        let t = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
        let row = |id: i32, at: &str, job: &str| Row {
            datetime: t(at),
            data_time: t(job),
            id,
            state: Some(0),
            user: None,
            gps: None,
            recalc: 0,
            conjoined: String::new(),
            version: crate::model::RowVersion::ABSENT,
            unreadable: None,
        };
        let rows = [
            row(7, "2024-04-20 10:00:01", "2024-04-20 10:00:00"),
            row(7, "2024-04-20 10:05:00", "2024-04-20 10:00:00"),
            row(7, "2024-04-20 11:00:00", "2024-04-20 11:00:00"),
            row(8, "2024-04-20 10:05:00", "2024-04-20 10:00:00"),
        ];
        let got: Vec<(String, i32, String)> = marks(&index, &rows)
            .iter()
            .map(|m| (m.channel.clone(), m.id, m.start.format("%H:%M").to_string()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("similarity=tmp".to_string(), 7, "10:00".to_string()),
                ("similarity=tmp".to_string(), 7, "11:00".to_string()),
            ]
        );
    }
}
