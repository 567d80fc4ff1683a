//! Building a feature index from the stored rows (`recalcd index build`).
//!
//! Device by device, one coarsest bucket (a day, usually) at a time: the span's rows
//! are read, its buckets computed ([`crate::index::feature::build`]) and written in
//! place of the span's old ones. Reading is the slow part, so it runs ahead of the
//! rest on [`READERS`] connections of their own, each reading a different span, while
//! the spans already read are computed and written in order: the build takes about as
//! long as the reading, not the sum of the steps. Memory stays at a few spans' rows
//! whatever the range.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::StreamExt;

use crate::config::{Config, FeatureIndexConfig};
use crate::index::feature::build;
use crate::index::{Micros, Point};
use crate::store::index::{IndexStore, ALL_TIME};
use crate::store::{self, AnyStore, Store, StoreError};

/// Data-store connections reading spans at once (PostgreSQL reads one span per
/// connection at a time; the spans' `conjoined` texts are decoded on as many workers).
pub const READERS: usize = 2;

/// Spans read but not yet written, at most (besides those being read).
const AHEAD: usize = 2;

/// What a build reports while it runs.
#[derive(Debug, Clone)]
pub enum BuildEvent {
    /// The index was built with other parameters than declared: it is rebuilt.
    Rebuilding {
        /// The parameters it was built with.
        built: String,
        /// The parameters declared.
        declared: String,
    },
    /// The spans (coarsest buckets) to read, over all devices.
    Planned {
        /// How many.
        spans: u64,
    },
    /// One span was read, computed and written.
    SpanDone {
        /// Its device.
        id: i32,
        /// Values read so far, over all devices.
        values: u64,
    },
}

/// What a build did.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// Devices built.
    pub devices: usize,
    /// The index's range of `datetime` after the build.
    pub range: Option<(Micros, Micros)>,
    /// Values (points of the channel) read.
    pub values: u64,
    /// Buckets written.
    pub buckets: u64,
}

/// Builds (or rebuilds) the feature index `decl` over `range` (whole coarsest buckets;
/// `None`: every device's whole extent, its buckets outside its rows dropped), for
/// device `only` or every device the index covers. `on_event` hears the progress.
///
/// # Errors
/// [`StoreError`] if the data store or the index database fails.
pub async fn build_feature(
    config: &Config,
    decl: &FeatureIndexConfig,
    range: Option<(Micros, Micros)>,
    only: Option<i32>,
    on_event: &mut (dyn FnMut(BuildEvent) + Send),
) -> Result<BuildReport, StoreError> {
    let levels = decl.levels.clone();
    let coarse = levels.length(0);
    let data = store::connect(config).await?;
    data.check_schema().await?;
    let mut index = IndexStore::connect(config).await?;
    let mut readers = vec![Arc::new(data)];
    if matches!(*readers[0], AnyStore::Postgres(_)) {
        // QuestDB keeps one reader: its reads are one query per span on the server's
        // worker pool already.
        for _ in 1..READERS {
            readers.push(Arc::new(store::connect(config).await?));
        }
    }
    let data = readers[0].clone();
    let params = decl.params();
    let existing = index.built(&decl.channel).await?;
    let (mut built, fresh) = match existing {
        Some(b) if b.params == params && b.levels.is_some() => (b, false),
        other => {
            if let Some(b) = other {
                on_event(BuildEvent::Rebuilding {
                    built: b.params.clone(),
                    declared: params.clone(),
                });
            }
            (
                index.create(&config.tables, &decl.channel, &params).await?,
                true,
            )
        }
    };
    // The devices: those with rows in the range, and those the index holds (their
    // buckets in the range are replaced too, by nothing if their rows are gone).
    let mut devices: BTreeMap<i32, (Micros, Micros)> = BTreeMap::new();
    for (id, first, last) in data.data_extent(range).await? {
        let span = range.unwrap_or((
            levels.bucket_start(0, first),
            levels.bucket_start(0, last) + coarse,
        ));
        devices.insert(id, span);
    }
    if !fresh {
        for id in index.devices(&built).await? {
            devices.entry(id).or_insert(range.unwrap_or((0, 0)));
        }
    }
    devices.retain(|id, _| decl.covers(*id) && only.is_none_or(|want| want == *id));
    let spans: u64 = devices
        .values()
        .map(|(a, b)| ((b - a).max(0) / coarse) as u64)
        .sum();
    on_event(BuildEvent::Planned { spans });
    let (mut values, mut buckets) = (0u64, 0u64);
    for (&id, &(from, to)) in &devices {
        if range.is_none() && !fresh {
            // The whole device is rebuilt: its buckets outside its rows go too.
            index.replace_buckets(&built, id, ALL_TIME, &[]).await?;
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel(AHEAD);
        let reader = tokio::spawn(read_spans(
            readers.clone(),
            decl.channel.clone(),
            id,
            (from, to),
            coarse,
            tx,
        ));
        while let Some((span, points)) = rx.recv().await {
            let points: Vec<Point> = points?;
            values += points.len() as u64;
            let all: Vec<_> = build(&levels, &points).into_iter().flatten().collect();
            buckets += all.len() as u64;
            index.replace_buckets(&built, id, span, &all).await?;
            on_event(BuildEvent::SpanDone { id, values });
        }
        reader.await.map_err(|e| StoreError::Unexpected {
            what: format!("reading `{}` of device {id}", decl.channel),
            detail: e.to_string(),
        })?;
        if from < to {
            built.range = Some(
                built
                    .range
                    .map_or((from, to), |(f, t)| (f.min(from), t.max(to))),
            );
        }
    }
    if built.range.is_none() {
        built.range = range;
    }
    let size = index.size(&built).await?;
    built.points = size.points;
    built.other = size.other;
    built.built_at = chrono::Utc::now().naive_utc();
    built.updated_at = built.built_at;
    index.record(&built).await?;
    Ok(BuildReport {
        devices: devices.len(),
        range: built.range,
        values,
        buckets,
    })
}

/// Reads the spans of `coarse` length of device `id` in `[from, to)` in order into
/// `tx`, [`READERS`]-at-a-time: span k on reader k mod n, each read a task of its own
/// (the decoding runs on any worker). Stops at the first error (sent) or when the
/// receiver is gone.
async fn read_spans(
    readers: Vec<Arc<AnyStore>>,
    channel: String,
    id: i32,
    (from, to): (Micros, Micros),
    coarse: Micros,
    tx: tokio::sync::mpsc::Sender<SpanPoints>,
) {
    let n = readers.len();
    let starts = (0..).map(move |k: i64| from + k * coarse);
    let spans = starts.take_while(move |at| *at < to).enumerate();
    let reads = futures_util::stream::iter(spans)
        .map(|(k, at)| {
            let (store, channel) = (readers[k % n].clone(), channel.clone());
            let span = (at, at + coarse);
            let task = tokio::spawn({
                let channel = channel.clone();
                async move { store.load_points(&channel, id, &[span]).await }
            });
            async move {
                let points = task.await.unwrap_or_else(|e| {
                    Err(StoreError::Unexpected {
                        what: format!("reading `{channel}` of device {id}"),
                        detail: e.to_string(),
                    })
                });
                (span, points)
            }
        })
        .buffered(n);
    let mut reads = std::pin::pin!(reads);
    while let Some((span, points)) = reads.next().await {
        let failed = points.is_err();
        if tx.send((span, points)).await.is_err() || failed {
            break;
        }
    }
}

/// A span and its points (or why they could not be read).
type SpanPoints = ((Micros, Micros), Result<Vec<Point>, StoreError>);
