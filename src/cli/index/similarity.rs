//! `recalcd index build | list | drop | extend | rebuild --kind similarity`: the
//! similarity indexes' share of the index commands.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::time::Instant;

use recalcd::config::{Config, SimilarityIndexConfig};
use recalcd::index::similarity::xcorr::{Prepared, Xcorr};
use recalcd::index::similarity::{Key, Spectrum};
use recalcd::index::{datetime, Micros};
use recalcd::service::similar::xcorr::{write_new_tree, TreeKeeper};
use recalcd::service::similar::{entry_of, resampled, SimilarError};
use recalcd::service::similar_approx::load_tree;
use recalcd::store::index::{Built, IndexStore, ALL_TIME};
use recalcd::store::similarity::SIMILARITY;
use recalcd::store::AnyStore;

/// The declared similarity index of `channel`, or a usage error naming the declared ones.
pub(super) fn declared<'a>(
    config: &'a Config,
    channel: &str,
) -> anyhow::Result<&'a SimilarityIndexConfig> {
    config.index.similarity(channel).ok_or_else(|| {
        super::super::usage(format!(
            "--channel {channel}: no similarity index is declared for it; declared: {}",
            config.index.declared_similarity()
        ))
    })
}

/// `2024-04-01 00:00 .. 2024-04-30 00:00` of job starts, or `nothing built`.
fn range_text(range: Option<(Micros, Micros)>) -> String {
    match range {
        Some(r) if r == ALL_TIME => "every job".into(),
        Some((a, b)) if a < b => {
            let t = |t: Micros| datetime(t).format("%Y-%m-%d %H:%M").to_string();
            format!("{} .. {}", t(a), t(b))
        }
        _ => "nothing built".into(),
    }
}

/// Builds (or brings up to date) the similarity index of `decl` over the jobs starting
/// in `range` (`None`: every job), for device `only` or all it covers. A built index
/// with other parameters than declared, or `fresh`, is dropped and built anew.
pub(super) async fn build(
    config: &Config,
    decl: &SimilarityIndexConfig,
    range: Option<(Micros, Micros)>,
    only: Option<i32>,
    fresh: bool,
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let (data, mut index) = super::open(config).await?;
    let params_text = decl.params_text();
    let existing = index.built_kind(SIMILARITY, &decl.channel).await?;
    let (mut built, new) = match existing {
        Some(b) if !fresh && b.params == params_text => (b, false),
        other => {
            if let Some(b) = other.filter(|b| b.params != params_text) {
                eprintln!(
                    "note: the similarity index of `{}` was built with {} and is declared with {}: rebuilding it",
                    decl.channel, b.params, params_text
                );
            }
            let created = index
                .create_similarity(&config.tables, &decl.channel, &params_text)
                .await?;
            // A tree of the index replaced must not outlive it if this build is cut short.
            index.drop_tree(&created).await?;
            (created, true)
        }
    };
    let params = decl.params;
    let span = range.unwrap_or(ALL_TIME);
    // A job's rows lie at or after its start.
    let mut devices: BTreeSet<i32> = data
        .data_extent(Some((span.0, ALL_TIME.1)))
        .await?
        .into_iter()
        .map(|d| d.0)
        .collect();
    if !new {
        devices.extend(
            index
                .entry_keys(&built, None, span)
                .await?
                .into_iter()
                .map(|k| k.id),
        );
    }
    devices.retain(|id| decl.covers(*id) && only.is_none_or(|want| want == *id));
    let mut spectrum = Spectrum::new(params);
    // The vantage-point tree: built anew over every job of a new index, kept otherwise.
    let mut xcorr = Xcorr::new(params.length, decl.gamma);
    let mut tree_items: Vec<(Key, Prepared)> = Vec::new();
    let mut keeper = if new {
        None
    } else {
        TreeKeeper::load(&index, &built).await?
    };
    let (mut jobs, mut skipped, mut values) = (0u64, 0u64, 0u64);
    for &id in &devices {
        let series = data.job_series(&decl.channel, id, span).await?;
        let mut entries = Vec::new();
        for j in &series {
            values += j.points.len() as u64;
            if j.points.is_empty() {
                continue;
            }
            match entry_of(j, &mut spectrum, params, Some(decl.isax.word_length)) {
                Some(e) => entries.push(e),
                None => skipped += 1,
            }
        }
        jobs += entries.len() as u64;
        if !new {
            let kept: BTreeSet<Key> = entries.iter().map(|e| e.key).collect();
            let gone: Vec<Key> = index
                .entry_keys(&built, Some(id), span)
                .await?
                .into_iter()
                .filter(|k| !kept.contains(k))
                .collect();
            index.remove_entries(&built, &gone).await?;
            if let Some(k) = keeper.as_mut() {
                k.apply(&mut index, &built, &series, &gone).await?;
            }
        } else {
            for j in &series {
                if let Some((v, _)) = resampled(&j.points, params.length) {
                    tree_items.push((j.key, xcorr.prepare(&v)));
                }
            }
        }
        index.write_entries(&built, &entries).await?;
    }
    let tree = if new {
        Some(write_new_tree(&mut index, &built, &mut xcorr, tree_items).await?)
    } else {
        None
    };
    // A build without a range covered every job there is: later ones reach the index
    // through the write-backs' marks.
    let covered = range.or(Some(ALL_TIME));
    if let Some((a, b)) = covered {
        built.range = Some(built.range.map_or((a, b), |(f, t)| (f.min(a), t.max(b))));
    }
    let size = index.similarity_size(&built).await?;
    built.points = size.points;
    built.other = size.other;
    built.built_at = chrono::Utc::now().naive_utc();
    built.updated_at = built.built_at;
    index.record(&built).await?;
    println!(
        "built the similarity index of `{}` ({}): {} device(s), {} job(s) indexed, {} with fewer than 4 numbers left out, job starts {}, {} values read in {:.2} s",
        decl.channel,
        params_text,
        devices.len(),
        jobs,
        skipped,
        range_text(built.range),
        values,
        started.elapsed().as_secs_f64()
    );
    if let Some(t) = tree {
        println!(
            "built its vantage-point tree (gamma {}): {} job(s), {} vantage point(s), {} distances computed in {:.2} s, written in {:.2} s",
            decl.gamma, t.jobs, t.vantage_points, t.distances, t.build_s, t.write_s
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The built columns of a `list` line of a similarity index: range, size, stale, not
/// numbers, state.
pub(super) async fn fill(index: &IndexStore, b: &Built, line: &mut [String; 9], stale: u64) {
    line[4] = range_text(b.range);
    match index.similarity_size(b).await {
        Ok(size) => {
            line[5] = match size.bytes {
                Some(bytes) => format!("{} jobs, {}", size.buckets, super::human_bytes(bytes)),
                None => format!("{} jobs", size.buckets),
            };
            line[7] = size.other.to_string();
        }
        Err(e) => line[5] = format!("unknown ({e})"),
    }
    line[6] = if stale == 0 {
        "0".into()
    } else {
        format!("{stale} jobs")
    };
    line[8] = format!("built {}", b.built_at.format("%Y-%m-%d %H:%M:%S"));
}

/// The `list` lines of the declared similarity indexes (`shown` collects the built ones
/// listed).
pub(super) async fn list_lines<'a>(
    config: &Config,
    index: &IndexStore,
    catalogue: &'a [Built],
    dirty: &[(String, u64)],
    shown: &mut Vec<&'a Built>,
) -> Vec<[String; 9]> {
    let mut lines = Vec::new();
    let stale: BTreeMap<&str, u64> = dirty.iter().map(|(c, n)| (c.as_str(), *n)).collect();
    for decl in &config.index.similarity {
        let key = decl.channel.to_lowercase();
        let built = catalogue
            .iter()
            .find(|b| b.kind == SIMILARITY && b.channel == key);
        let mut line = super::declared_line(
            SIMILARITY,
            &decl.channel,
            decl.params.to_string(),
            decl.devices.as_deref(),
        );
        if let Some(b) = built {
            shown.push(b);
            let mark = recalcd::store::similarity::mark_channel(&key);
            fill(
                index,
                b,
                &mut line,
                stale.get(mark.as_str()).copied().unwrap_or(0),
            )
            .await;
            if b.params != decl.params_text() {
                line[8] = format!(
                    "built with other parameters ({}) than declared: rebuild it",
                    b.params
                );
            }
        }
        lines.push(line);
    }
    lines
}

/// `recalcd index show --kind similarity --tree`: the iSAX tree from the stored words,
/// as the notebook prints it (or JSON), down to `max_depth`.
pub(super) async fn show_tree(
    data: &AnyStore,
    index: &IndexStore,
    built: &Built,
    max_depth: Option<usize>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let untrusted: BTreeSet<Key> = data
        .untrusted_jobs(&built.channel)
        .await?
        .into_iter()
        .collect();
    let loaded = load_tree(index, built).await.map_err(|e| match e {
        SimilarError::Usage(m) => super::super::usage(m),
        other => anyhow::Error::new(other),
    })?;
    let name = |k: &Key| format!("{}@{}", k.id, recalcd::service::search::stamp(k.start));
    let view = loaded.tree.view(max_depth, &name);
    let stale = loaded.ends.keys().filter(|k| untrusted.contains(k)).count();
    if json {
        let mut v = serde_json::to_value(&view)?;
        if let Some(map) = v.as_object_mut() {
            map.insert("nodes".into(), loaded.tree.nodes().into());
            map.insert("stale".into(), stale.into());
            map.insert("params".into(), built.params.clone().into());
        }
        println!("{v}");
    } else {
        print!("{}", view.text());
        eprintln!(
            "{} job(s) in {} node(s), parameters {}; {} of them stale (recalculated since: a query compares them directly)",
            view.count,
            loaded.tree.nodes(),
            built.params,
            stale
        );
    }
    Ok(ExitCode::SUCCESS)
}
