//! `recalcd similar --approx` and `recalcd index show --tree`: the iSAX tree of a
//! similarity index, rebuilt in memory from the words stored with the entries, searched
//! best first ([`crate::index::similarity::isax`]).
//!
//! The search reads only the series of the jobs in the leaves it visits (in batches
//! from the data store). Jobs the index cannot vouch for (in the dirty log, or with
//! rows still flagged) are left out of the tree and compared directly, as the exact
//! path does. Without a usable index (none built, one built before iSAX words were
//! stored, a range or devices it does not cover) the answer is exact, by
//! [`super::similar::similar`], and says why.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use super::similar::kept::Kept;
use super::similar::{
    built_index, kept_or_read, query_series, resampled, scan_reason, similar, untrusted_series,
    Answer, Request, SimilarError, BATCH,
};
use crate::config::Config;
use crate::index::similarity::isax::{Approx, IsaxParams, Tree};
use crate::index::similarity::{Key, Metric, Params};
use crate::index::Micros;
use crate::store::index::{Built, IndexStore, ALL_TIME};
use crate::store::similarity::JobSeries;
use crate::store::AnyStore;

/// Series examined by default: a recall@10 of 0.97 on random walks over a million jobs
/// at 30 × a brute force's speed in memory (see `docs/indexes.md`).
pub const DEFAULT_EXAMINE: usize = 5_000;

/// An approximate answer and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct ApproxAnswer {
    /// The matches and the common statistics (`method` is `isax`, or what answered
    /// instead).
    pub answer: Answer,
    /// Series whose distance was computed.
    pub examined: usize,
    /// Leaves of the tree visited (0 without the tree).
    pub leaves: usize,
    /// Whether the answer is proven exact.
    pub exact: bool,
    /// Building the tree from the loaded words, ms (within `load_ms`).
    pub tree_ms: u128,
}

impl ApproxAnswer {
    /// The answer as `recalcd similar --approx --format json` prints it (and `serve`
    /// answers): [`Answer::to_json`] with `examined`, `leaves`, `exact` and `tree_ms`
    /// added to the statistics.
    pub fn to_json(&self) -> serde_json::Value {
        let mut out = self.answer.to_json();
        out["stats"]["examined"] = self.examined.into();
        out["stats"]["leaves"] = self.leaves.into();
        out["stats"]["exact"] = self.exact.into();
        out["stats"]["tree_ms"] = u64::try_from(self.tree_ms).unwrap_or(u64::MAX).into();
        out
    }
}

/// The tree of a built similarity index, from its stored words.
#[derive(Debug)]
pub struct LoadedTree {
    /// The tree.
    pub tree: Tree,
    /// Each job's last row's time (narrows the reads on QuestDB).
    pub ends: BTreeMap<Key, Micros>,
    /// Entries left out: without a word of the tree's length.
    pub left_out: usize,
    /// Building the tree, ms.
    pub tree_ms: u128,
}

/// What makes the iSAX tree of a built index: its parameters, or why it has none.
///
/// # Errors
/// The reason, for people (naming the rebuild command).
pub fn tree_params(built: &Built) -> Result<(Params, IsaxParams), String> {
    let rebuild = format!(
        "rebuild it with `recalcd index rebuild --kind similarity --channel {}`",
        built.channel
    );
    let params = Params::parse(&built.params).ok_or_else(|| {
        format!(
            "the similarity index of `{}` was built with parameters `{}` this version cannot read: {rebuild}",
            built.channel, built.params
        )
    })?;
    let isax = IsaxParams::parse(&built.params, params.length).ok_or_else(|| {
        format!(
            "the similarity index of `{}` was built without iSAX words (parameters `{}`): {rebuild}",
            built.channel, built.params
        )
    })?;
    Ok((params, isax))
}

/// The iSAX tree of `built` from its stored words (every entry with a word of the
/// tree's length; a search leaves out the jobs the index cannot vouch for).
///
/// # Errors
/// [`SimilarError::Usage`] when the index has no iSAX words; [`SimilarError::Store`]
/// if the index store fails.
pub async fn load_tree(index: &IndexStore, built: &Built) -> Result<LoadedTree, SimilarError> {
    let (params, isax) = tree_params(built).map_err(SimilarError::Usage)?;
    let stored = index.load_entries(built, params).await?;
    let t = Instant::now();
    let mut tree = Tree::new(isax);
    let mut ends = BTreeMap::new();
    let mut left_out = 0;
    for e in stored {
        if !tree.insert(e.key, &e.word) {
            left_out += 1;
            continue;
        }
        ends.insert(e.key, e.end);
    }
    Ok(LoadedTree {
        tree,
        ends,
        left_out,
        tree_ms: t.elapsed().as_millis(),
    })
}

/// Answers `req` from the iSAX tree, examining about `examine` series (`None`: until
/// the answer is proven exact); exactly, by [`similar`], when the tree cannot answer.
///
/// # Errors
/// [`SimilarError::Usage`] for a metric other than `znorm`, an unknown job or a series
/// with fewer than 4 numbers; [`SimilarError::Store`] if a store fails.
pub async fn similar_approx(
    config: &Config,
    data: &AnyStore,
    index: Option<&IndexStore>,
    req: &Request,
    examine: Option<usize>,
) -> Result<ApproxAnswer, SimilarError> {
    similar_approx_kept(config, data, index, None, req, examine).await
}

/// [`similar_approx`] with the tree kept loaded in `kept` when given (`recalcd serve`;
/// see [`crate::service::similar::kept`]): rebuilt only when the catalogue says the
/// entries changed since it was built.
///
/// # Errors
/// As [`similar_approx`].
pub async fn similar_approx_kept(
    config: &Config,
    data: &AnyStore,
    index: Option<&IndexStore>,
    kept: Option<&Kept<LoadedTree>>,
    req: &Request,
    examine: Option<usize>,
) -> Result<ApproxAnswer, SimilarError> {
    if req.query.metric != Metric::ZNorm {
        return Err(SimilarError::Usage(format!(
            "--approx answers z-normalised distances only (not --metric {}): drop one of them",
            req.query.metric.as_str()
        )));
    }
    let started = Instant::now();
    let channel = req.channel.to_lowercase();
    let built = built_index(index, &channel).await?;
    let usable = built.as_ref().map(tree_params);
    let reason = match &usable {
        None => scan_reason(req, None, false),
        Some(Err(why)) => Some(why.clone()),
        Some(Ok(_)) => scan_reason(req, built.as_ref(), true),
    };
    let (Some(b), Some(ix), Some(Ok((params, _)))) = (&built, index, &usable) else {
        return exactly(config, data, index, req, reason).await;
    };
    if reason.is_some() {
        return exactly(config, data, index, req, reason).await;
    }
    let (values, mut dropped, exclude) = query_series(data, req, &channel, params.length).await?;
    let range = req.range.unwrap_or(ALL_TIME);
    let accept = |k: &Key| {
        Some(*k) != exclude
            && req.id.is_none_or(|id| id == k.id)
            && k.start >= range.0
            && k.start < range.1
    };
    let t = Instant::now();
    // Read before a kept tree's record is checked (see `kept`).
    let untrusted: BTreeSet<Key> = data.untrusted_jobs(&channel).await?.into_iter().collect();
    let (loaded, was_kept) =
        kept_or_read(kept, ix, b, |now| async move { load_tree(ix, &now).await }).await?;
    let load_ms = t.elapsed().as_millis();
    let tree = &loaded.tree;
    // The jobs not vouched for are compared from their rows, below.
    let vouched = |k: &Key| accept(k) && !untrusted.contains(k);
    let mut search = Approx::new(tree, &values, &req.query, examine)
        .map_err(|e| SimilarError::Usage(e.to_string()))?;
    loop {
        let want = search.wanted(tree, BATCH, vouched);
        if want.is_empty() {
            break;
        }
        let asked: Vec<(Key, Option<Micros>)> = want
            .iter()
            .map(|k| (*k, loaded.ends.get(k).copied()))
            .collect();
        for chunk in asked.chunks(BATCH) {
            let got = data.jobs_points(&channel, chunk).await?;
            let by_key: BTreeMap<Key, &JobSeries> = got.iter().map(|j| (j.key, j)).collect();
            for (k, _) in chunk {
                let r = by_key
                    .get(k)
                    .and_then(|j| resampled(&j.points, params.length));
                if let Some((_, d)) = &r {
                    dropped += d;
                }
                search.give(*k, r.as_ref().map(|(v, _)| v.as_slice()));
            }
        }
    }
    // The jobs the index cannot vouch for, compared directly.
    let declared = config.index.similarity(&channel);
    let (extra, d) =
        untrusted_series(data, &channel, &untrusted, &accept, declared, params.length).await?;
    dropped += d;
    let extra_n = extra.len();
    for (k, v) in extra {
        search.give(k, Some(&v));
    }
    let candidates = loaded.ends.keys().filter(|k| vouched(k)).count();
    let in_tree = untrusted
        .iter()
        .filter(|k| loaded.ends.contains_key(k))
        .count();
    let outcome = search.finish();
    Ok(ApproxAnswer {
        answer: Answer {
            matches: outcome.matches,
            method: "isax",
            why: None,
            candidates: candidates + extra_n,
            refined: outcome.examined,
            total: tree.len() - in_tree + extra_n,
            dropped,
            distances: None,
            load_ms,
            elapsed_ms: started.elapsed().as_millis(),
            kept: was_kept,
        },
        examined: outcome.examined,
        leaves: outcome.leaves,
        exact: outcome.exact,
        tree_ms: loaded.tree_ms,
    })
}

/// The exact answer when the tree cannot give one, with the reason.
async fn exactly(
    config: &Config,
    data: &AnyStore,
    index: Option<&IndexStore>,
    req: &Request,
    reason: Option<String>,
) -> Result<ApproxAnswer, SimilarError> {
    let mut answer = similar(config, data, index, req).await?;
    let reason =
        reason.unwrap_or_else(|| format!("no similarity index of `{}` is built", req.channel));
    // `similar` says why it scanned; when the exact index answered, say why not iSAX.
    answer.why = Some(match answer.why.take() {
        Some(why) => why,
        None => format!("{reason}; answered exactly by the DFT index"),
    });
    Ok(ApproxAnswer {
        examined: answer.refined,
        leaves: 0,
        exact: true,
        tree_ms: 0,
        answer,
    })
}
