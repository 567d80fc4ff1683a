//! `recalcd similar --metric xcorr`: the jobs nearest by the kernelized cross-correlation
//! distance ([`crate::index::similarity::xcorr`]), which does not see circular shifts.
//!
//! With a built similarity index its vantage-point tree
//! ([`crate::index::similarity::vptree`]) is loaded (`load_ms`) and searched exactly:
//! only the jobs whose lower bound could still beat the answer are read, and the stats
//! say how many distances were computed. The jobs the index cannot vouch for (in the
//! dirty log, or with rows still flagged) are read and compared directly. Without an
//! index, an index built before the distance existed (no `gamma` in its parameters), or
//! a range outside the indexed one, every job is read and compared (a scan) and the
//! report says why. The tree is built, extended and kept up to date with the rest of the
//! index ([`write_new_tree`], [`TreeKeeper`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use super::{
    built_index, query_series, resampled, scan, scan_reason, untrusted_series, Answer, Request,
    SimilarError, BATCH,
};
use crate::config::Config;
use crate::index::similarity::vptree::{brute_force, Path, Search, VpTree};
use crate::index::similarity::xcorr::{gamma_in, Prepared, Xcorr, DEFAULT_GAMMA};
use crate::index::similarity::{Key, Params};
use crate::index::Micros;
use crate::store::index::{Built, IndexStore, ALL_TIME};
use crate::store::similarity::JobSeries;
use crate::store::{AnyStore, StoreError};

/// The length and `γ` of the tree of `built`, when it has one (its parameters name a
/// `gamma`).
pub fn tree_params(built: &Built) -> Option<(Params, f64)> {
    Some((Params::parse(&built.params)?, gamma_in(&built.params)?))
}

/// Answers `req` by the xcorr distance (`req.query.metric` is not read).
///
/// # Errors
/// [`SimilarError::Usage`] for an unknown job or a series with fewer than 4 numbers;
/// [`SimilarError::Store`] if a store fails.
pub async fn similar_xcorr(
    config: &Config,
    data: &AnyStore,
    index: Option<&IndexStore>,
    req: &Request,
) -> Result<Answer, SimilarError> {
    let started = Instant::now();
    let channel = req.channel.to_lowercase();
    let built = built_index(index, &channel).await?;
    let declared = config.index.similarity(&channel);
    let tree = built.as_ref().and_then(tree_params);
    let (length, gamma) = match (tree, declared) {
        (Some((p, g)), _) => (p.length, g),
        (None, Some(d)) => (d.params.length, d.gamma),
        (None, None) => (
            built
                .as_ref()
                .and_then(|b| Params::parse(&b.params))
                .map_or(crate::config::similarity::DEFAULT_LENGTH, |p| p.length),
            DEFAULT_GAMMA,
        ),
    };
    let mut xcorr = Xcorr::new(length, gamma);
    let (values, mut dropped, exclude) = query_series(data, req, &channel, length).await?;
    let query = xcorr.prepare(&values);
    let range = req.range.unwrap_or(ALL_TIME);
    let accept = |k: &Key| {
        Some(*k) != exclude
            && req.id.is_none_or(|id| id == k.id)
            && k.start >= range.0
            && k.start < range.1
    };
    let mut why = scan_reason(req, built.as_ref(), tree.is_some());
    if let (None, Some(b)) = (&why, &built) {
        if tree.is_none() {
            why = Some(format!(
                "the similarity index of `{}` was built without a vantage-point tree (before --metric xcorr): rebuild it with `recalcd index rebuild --kind similarity --channel {}`",
                req.channel, req.channel
            ));
        } else if let Some(ix) = index {
            let t = Instant::now();
            let loaded = match ix.load_tree(b).await {
                Ok((nodes, paths)) => {
                    VpTree::from_parts(&mut xcorr, nodes, paths).map_err(|e| e.to_string())
                }
                // Tables missing (a build cut short): the scan still answers.
                Err(e) if !e.is_transient() => Err(format!(
                    "the vantage-point tree of `{}` cannot be read ({e}): rebuild the index",
                    req.channel
                )),
                Err(e) => return Err(e.into()),
            };
            match loaded {
                Ok(tree) => {
                    let load_ms = t.elapsed().as_millis();
                    return search_tree(
                        data, &channel, req, &tree, &mut xcorr, query, dropped, accept, load_ms,
                        started,
                    )
                    .await;
                }
                Err(e) => why = Some(e),
            }
        }
    }
    if why.is_none() {
        why = Some("the index store cannot be reached".into());
    }
    // A scan: every job compared.
    let mut matches = Vec::new();
    let mut candidates = 0;
    let (total, scan_dropped) = scan(data, &channel, req, length, &accept, |series| {
        candidates += series.len();
        let prepared: Vec<(Key, Prepared)> =
            series.iter().map(|(k, v)| (*k, xcorr.prepare(v))).collect();
        let found = brute_force(
            &mut xcorr,
            &query,
            req.query.k,
            req.query.within,
            prepared.iter().map(|(k, p)| (*k, p)),
        );
        matches.extend(found);
    })
    .await?;
    dropped += scan_dropped;
    // The best of every device's best.
    let mut best = crate::index::similarity::Best::new(&req.query);
    for m in matches {
        best.offer(m);
    }
    Ok(Answer {
        matches: best.into_vec(),
        method: "scan",
        why,
        candidates,
        refined: candidates,
        total,
        dropped,
        distances: Some(candidates as u64),
        load_ms: 0,
        elapsed_ms: started.elapsed().as_millis(),
        kept: None,
    })
}

/// The search of a loaded tree, then of the jobs it cannot vouch for.
#[allow(clippy::too_many_arguments)]
async fn search_tree(
    data: &AnyStore,
    channel: &str,
    req: &Request,
    tree: &VpTree,
    xcorr: &mut Xcorr,
    query: Prepared,
    mut dropped: u64,
    accept: impl Fn(&Key) -> bool,
    load_ms: u128,
    started: Instant,
) -> Result<Answer, SimilarError> {
    let untrusted: BTreeSet<Key> = data.untrusted_jobs(channel).await?.into_iter().collect();
    let length = xcorr.len();
    let mut search = Search::new(tree, query, req.query.k, req.query.within, |k: &Key| {
        accept(k) && !untrusted.contains(k)
    });
    loop {
        let want = search.wanted(xcorr, BATCH);
        if want.is_empty() {
            break;
        }
        let asked: Vec<(Key, Option<Micros>)> = want.iter().map(|k| (*k, None)).collect();
        let got = data.jobs_points(channel, &asked).await?;
        let by_key: BTreeMap<Key, &JobSeries> = got.iter().map(|j| (j.key, j)).collect();
        for k in want {
            let r = by_key.get(&k).and_then(|j| resampled(&j.points, length));
            if let Some((_, d)) = &r {
                dropped += d;
            }
            search.give(xcorr, k, r.as_ref().map(|(v, _)| v.as_slice()));
        }
    }
    // The jobs the index cannot vouch for, compared directly.
    let (extra, d) = untrusted_series(data, channel, &untrusted, &accept, None, length).await?;
    dropped += d;
    let extra_n = extra.len();
    for (k, v) in extra {
        search.give(xcorr, k, Some(&v));
    }
    let outcome = search.finish();
    Ok(Answer {
        matches: outcome.matches,
        method: "index",
        why: None,
        candidates: outcome.candidates + extra_n,
        refined: outcome.refined,
        total: tree.len() + extra_n,
        dropped,
        distances: Some((outcome.refined + outcome.vantage) as u64),
        load_ms,
        elapsed_ms: started.elapsed().as_millis(),
        kept: None,
    })
}

/// What building a tree did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TreeBuilt {
    /// Jobs in the tree.
    pub jobs: usize,
    /// Its vantage points.
    pub vantage_points: usize,
    /// Distances computed.
    pub distances: u64,
    /// Building it in memory, s.
    pub build_s: f64,
    /// Writing it, s.
    pub write_s: f64,
}

/// Builds the tree of `built` over `items` (prepared with `xcorr`) and writes it,
/// replacing any stored tree.
///
/// # Errors
/// [`StoreError`] if a statement fails.
pub async fn write_new_tree(
    index: &mut IndexStore,
    built: &Built,
    xcorr: &mut Xcorr,
    items: Vec<(Key, Prepared)>,
) -> Result<TreeBuilt, StoreError> {
    let t = Instant::now();
    let jobs = items.len();
    let (tree, distances) = VpTree::build(xcorr, items);
    let build_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let paths: Vec<(Key, Path)> = tree.paths().map(|(k, p)| (*k, p.clone())).collect();
    index.write_tree(built, &tree.node_rows(), &paths).await?;
    Ok(TreeBuilt {
        jobs,
        vantage_points: tree.vantage_points(),
        distances,
        build_s,
        write_s: t.elapsed().as_secs_f64(),
    })
}

/// The tree of a built index held for maintenance: its vantage points (no paths — a job
/// is sent down from the root without them), loaded once for many updates.
#[derive(Debug)]
pub struct TreeKeeper {
    tree: VpTree,
    xcorr: Xcorr,
    length: usize,
}

impl TreeKeeper {
    /// The tree of `built`, or `None` when it has none (built before `--metric xcorr`).
    ///
    /// # Errors
    /// [`StoreError`] if the nodes cannot be read, or do not make a tree (rebuild it).
    pub async fn load(index: &IndexStore, built: &Built) -> Result<Option<TreeKeeper>, StoreError> {
        let Some((params, gamma)) = tree_params(built) else {
            return Ok(None);
        };
        let mut xcorr = Xcorr::new(params.length, gamma);
        let nodes = index.load_tree_nodes(built).await?;
        let tree = VpTree::from_parts(&mut xcorr, nodes, Vec::new()).map_err(|e| {
            StoreError::Unexpected {
                what: format!("reading the vantage-point tree of `{}`", built.channel),
                detail: e.to_string(),
            }
        })?;
        Ok(Some(TreeKeeper {
            tree,
            xcorr,
            length: params.length,
        }))
    }

    /// Brings the stored paths up to date: the `changed` jobs are sent down again (those
    /// with fewer than 4 numbers only taken out), the `gone` ones taken out. Returns the
    /// distances computed.
    ///
    /// # Errors
    /// [`StoreError`] if a statement fails.
    pub async fn apply(
        &mut self,
        index: &mut IndexStore,
        built: &Built,
        changed: &[JobSeries],
        gone: &[Key],
    ) -> Result<u64, StoreError> {
        let mut paths = Vec::new();
        let mut removed: Vec<Key> = gone.to_vec();
        let mut distances = 0;
        for j in changed {
            match resampled(&j.points, self.length) {
                Some((v, _)) => {
                    let p = self.xcorr.prepare(&v);
                    let (path, n) = self.tree.insert(&mut self.xcorr, j.key, &p);
                    // Only the path is kept: the leaves' members live in the store.
                    self.tree.remove(j.key);
                    distances += n;
                    paths.push((j.key, path));
                }
                None => removed.push(j.key),
            }
        }
        let kept: BTreeSet<Key> = paths.iter().map(|(k, _)| *k).collect();
        removed.retain(|k| !kept.contains(k));
        index.write_paths(built, &paths).await?;
        index.remove_paths(built, &removed).await?;
        Ok(distances)
    }
}
