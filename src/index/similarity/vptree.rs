//! An exact vantage-point tree over jobs for the [kernelized cross-correlation
//! distance](super::xcorr): top-k and within-d answers equal to a brute-force scan, with
//! far fewer distances computed on clustered data.
//!
//! **Shape.** An inner node holds a *vantage point* — a copy of one job's standardised
//! series, so it survives that job being changed or deleted — and a radius, the median
//! distance from it to the jobs below; jobs at a distance ≤ radius go *inside*, the
//! others *outside*. A leaf holds job keys (at most [`LEAF_CAPACITY`] after a build; see
//! *Maintenance*). Each job keeps its [`Path`]: its leaf and its distances to the
//! vantage points on the way there (root first, as f32).
//!
//! **Choosing vantage points.** recalcd chooses them (Yianilos' max-spread rule): at
//! each node [`CANDIDATES`] jobs drawn at random (a generator seeded by the node, so a
//! build is reproducible) are each measured against [`SAMPLE`] others drawn at random,
//! and the candidate whose distances spread most (largest variance) is taken. A node
//! whose jobs cannot be split (every distance to the vantage point equal, e.g.
//! duplicates) stays a leaf.
//!
//! **Search** ([`Search`]), best-first over a priority queue of nodes and jobs ordered
//! by a lower bound of their distance to the query `q`, which the triangle inequality
//! gives: at an inner node with vantage point `v` and radius `r`, `d(q, v)` is computed
//! once; every job inside is at least `d(q, v) − r` away, every job outside at least
//! `r − d(q, v)`. A job of a leaf gets `max_i |d(q, v_i) − d(x, v_i)|` over the vantage
//! points `v_i` of its path, from the distances stored with it, before its own distance
//! is computed. The search stops when the smallest bound left exceeds the k-th best
//! distance (or `within`), less [`SLACK`] for rounding (the f32 path distances and the
//! distance's own 1e-9-level rounding). Ties are ordered as everywhere: distance, then
//! device id, then job start. The search is SANS-IO, like [`super::knn::Nearest`]: the
//! caller asks which jobs' series it wants ([`Search::wanted`]), reads them, and hands
//! them over ([`Search::give`]), so the store reads only candidate jobs.
//!
//! **Maintenance.** [`VpTree::insert`] sends a job down from the root (one distance per
//! inner node) to a leaf; [`VpTree::remove`] takes it out of its leaf. Vantage points
//! and radii never change: answers stay exact whatever is inserted or removed, but a
//! leaf may grow past its capacity — an index rebuilt from time to time keeps its shape.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeSet, BinaryHeap, HashMap};

use super::knn::{Best, Key, Match, Query};
use super::xcorr::{Prepared, Xcorr};
use super::Metric;

/// Jobs a leaf holds at most after a build.
pub const LEAF_CAPACITY: usize = 32;
/// Jobs tried as the vantage point of a node.
pub const CANDIDATES: usize = 4;
/// Jobs each candidate is measured against.
pub const SAMPLE: usize = 24;
/// What a lower bound is lowered by before it prunes: covers the f32 rounding of the
/// stored path distances (distances are at most √2) and the distance's own rounding.
pub const SLACK: f64 = 1e-6;

/// An inner node as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Vantage {
    /// The vantage point: a standardised series (see [`Xcorr::standardise`]).
    pub values: Vec<f64>,
    /// Jobs at a distance ≤ this go inside.
    pub radius: f64,
    /// The inside child.
    pub inside: u32,
    /// The outside child.
    pub outside: u32,
}

/// A node as stored: `vantage` for an inner node, `None` for a leaf (its jobs are the
/// ones whose [`Path`] ends there).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRow {
    /// Its number; the root is 0.
    pub id: u32,
    /// Its vantage point, for an inner node.
    pub vantage: Option<Vantage>,
}

/// Where a job sits: its leaf and its distances to the vantage points on the way there.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// The leaf.
    pub leaf: u32,
    /// The distances to the vantage points from the root down.
    pub distances: Vec<f32>,
}

#[derive(Debug, Clone)]
enum Kind {
    Inner {
        vantage: Prepared,
        values: Vec<f64>,
        radius: f64,
        inside: u32,
        outside: u32,
    },
    Leaf {
        keys: BTreeSet<Key>,
    },
}

#[derive(Debug, Clone)]
struct Node {
    parent: Option<u32>,
    kind: Kind,
}

/// Why a stored tree cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stored vantage-point tree is inconsistent ({0}): rebuild the index")]
pub struct TreeError(String);

/// A vantage-point tree (see the module's docs).
#[derive(Debug, Clone)]
pub struct VpTree {
    nodes: Vec<Node>,
    paths: HashMap<Key, Path>,
}

impl Default for VpTree {
    fn default() -> VpTree {
        VpTree::new()
    }
}

/// A generator seeded per node (splitmix64): builds are reproducible.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

impl VpTree {
    /// An empty tree (one empty leaf).
    pub fn new() -> VpTree {
        VpTree {
            nodes: vec![Node {
                parent: None,
                kind: Kind::Leaf {
                    keys: BTreeSet::new(),
                },
            }],
            paths: HashMap::new(),
        }
    }

    /// A tree over `items` (each job once) with leaves of at most [`LEAF_CAPACITY`];
    /// returns it and the distances computed.
    pub fn build(xcorr: &mut Xcorr, items: Vec<(Key, Prepared)>) -> (VpTree, u64) {
        VpTree::build_with(xcorr, items, LEAF_CAPACITY)
    }

    /// As [`build`](Self::build), with leaves of at most `leaf_capacity` (≥ 1).
    pub fn build_with(
        xcorr: &mut Xcorr,
        items: Vec<(Key, Prepared)>,
        leaf_capacity: usize,
    ) -> (VpTree, u64) {
        let leaf_capacity = leaf_capacity.max(1);
        let mut tree = VpTree::new();
        let mut dists: Vec<Vec<f32>> = vec![Vec::new(); items.len()];
        let mut computed = 0u64;
        let mut stack: Vec<(u32, Vec<usize>)> = vec![(0, (0..items.len()).collect())];
        while let Some((id, set)) = stack.pop() {
            if set.len() > leaf_capacity {
                if let Some((vantage, values, radius, d)) =
                    split(xcorr, &items, &set, id, &mut computed)
                {
                    let (mut inside, mut outside) = (Vec::new(), Vec::new());
                    for (&i, &di) in set.iter().zip(&d) {
                        dists[i].push(di as f32);
                        if di <= radius {
                            inside.push(i);
                        } else {
                            outside.push(i);
                        }
                    }
                    let inside_id = tree.push_leaf(id);
                    let outside_id = tree.push_leaf(id);
                    tree.nodes[id as usize].kind = Kind::Inner {
                        vantage,
                        values,
                        radius,
                        inside: inside_id,
                        outside: outside_id,
                    };
                    stack.push((outside_id, outside));
                    stack.push((inside_id, inside));
                    continue;
                }
            }
            let mut keys = BTreeSet::new();
            for &i in &set {
                keys.insert(items[i].0);
                tree.paths.insert(
                    items[i].0,
                    Path {
                        leaf: id,
                        distances: std::mem::take(&mut dists[i]),
                    },
                );
            }
            tree.nodes[id as usize].kind = Kind::Leaf { keys };
        }
        (tree, computed)
    }

    fn push_leaf(&mut self, parent: u32) -> u32 {
        self.nodes.push(Node {
            parent: Some(parent),
            kind: Kind::Leaf {
                keys: BTreeSet::new(),
            },
        });
        (self.nodes.len() - 1) as u32
    }

    /// Sends `key`'s series down to a leaf (replacing the place it had); returns its
    /// path and the distances computed.
    pub fn insert(&mut self, xcorr: &mut Xcorr, key: Key, series: &Prepared) -> (Path, u64) {
        self.remove(key);
        let mut id = 0u32;
        let mut distances = Vec::new();
        loop {
            match &mut self.nodes[id as usize].kind {
                Kind::Inner {
                    vantage,
                    radius,
                    inside,
                    outside,
                    ..
                } => {
                    let d = xcorr.distance(series, vantage);
                    distances.push(d as f32);
                    id = if d <= *radius { *inside } else { *outside };
                }
                Kind::Leaf { keys } => {
                    keys.insert(key);
                    break;
                }
            }
        }
        let computed = distances.len() as u64;
        let path = Path {
            leaf: id,
            distances,
        };
        self.paths.insert(key, path.clone());
        (path, computed)
    }

    /// Takes `key` out; whether it was there.
    pub fn remove(&mut self, key: Key) -> bool {
        let Some(path) = self.paths.remove(&key) else {
            return false;
        };
        if let Some(Node {
            kind: Kind::Leaf { keys },
            ..
        }) = self.nodes.get_mut(path.leaf as usize)
        {
            keys.remove(&key);
        }
        true
    }

    /// The jobs held.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// Whether it holds no job.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Its inner nodes (vantage points).
    pub fn vantage_points(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| matches!(n.kind, Kind::Inner { .. }))
            .count()
    }

    /// Whether `key` is held.
    pub fn contains(&self, key: &Key) -> bool {
        self.paths.contains_key(key)
    }

    /// The path of `key`.
    pub fn path(&self, key: &Key) -> Option<&Path> {
        self.paths.get(key)
    }

    /// Every job's path.
    pub fn paths(&self) -> impl Iterator<Item = (&Key, &Path)> {
        self.paths.iter()
    }

    /// The nodes as stored.
    pub fn node_rows(&self) -> Vec<NodeRow> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(id, n)| NodeRow {
                id: id as u32,
                vantage: match &n.kind {
                    Kind::Inner {
                        values,
                        radius,
                        inside,
                        outside,
                        ..
                    } => Some(Vantage {
                        values: values.clone(),
                        radius: *radius,
                        inside: *inside,
                        outside: *outside,
                    }),
                    Kind::Leaf { .. } => None,
                },
            })
            .collect()
    }

    /// The tree from its stored nodes and paths.
    ///
    /// # Errors
    /// [`TreeError`] when they do not make a tree: a node missing or reached twice, a
    /// vantage point of another length, a path ending at an inner node or with another
    /// number of distances than vantage points above its leaf.
    pub fn from_parts(
        xcorr: &mut Xcorr,
        mut rows: Vec<NodeRow>,
        paths: Vec<(Key, Path)>,
    ) -> Result<VpTree, TreeError> {
        let bad = |s: String| Err(TreeError(s));
        if rows.is_empty() {
            return Ok(VpTree::new());
        }
        rows.sort_by_key(|r| r.id);
        if rows.iter().enumerate().any(|(i, r)| r.id as usize != i) {
            return bad("node numbers are not 0..n".into());
        }
        let mut nodes: Vec<Node> = Vec::with_capacity(rows.len());
        let mut parents: Vec<Option<u32>> = vec![None; rows.len()];
        for r in rows {
            let kind = match r.vantage {
                Some(v) => {
                    if v.values.len() != xcorr.len() {
                        return bad(format!(
                            "node {} holds {} values, not {}",
                            r.id,
                            v.values.len(),
                            xcorr.len()
                        ));
                    }
                    for child in [v.inside, v.outside] {
                        match parents.get_mut(child as usize) {
                            Some(p @ None) if child != 0 => *p = Some(r.id),
                            _ => return bad(format!("node {child} is missing or reached twice")),
                        }
                    }
                    Kind::Inner {
                        vantage: xcorr.prepare_standardised(&v.values),
                        values: v.values,
                        radius: v.radius,
                        inside: v.inside,
                        outside: v.outside,
                    }
                }
                None => Kind::Leaf {
                    keys: BTreeSet::new(),
                },
            };
            nodes.push(Node { parent: None, kind });
        }
        for (n, p) in nodes.iter_mut().zip(&parents) {
            n.parent = *p;
        }
        if nodes.iter().skip(1).any(|n| n.parent.is_none()) {
            return bad("a node hangs from no parent".into());
        }
        let mut tree = VpTree {
            nodes,
            paths: HashMap::with_capacity(paths.len()),
        };
        for (key, path) in paths {
            let depth = tree.depth(path.leaf);
            match tree.nodes.get_mut(path.leaf as usize) {
                Some(Node {
                    kind: Kind::Leaf { keys },
                    ..
                }) if Some(path.distances.len()) == depth => {
                    keys.insert(key);
                }
                _ => {
                    return bad(format!(
                        "the path of job {}@{} does not end at a leaf of its depth",
                        key.id, key.start
                    ))
                }
            }
            tree.paths.insert(key, path);
        }
        Ok(tree)
    }

    /// Inner nodes above `id` (`None` for no such node).
    fn depth(&self, id: u32) -> Option<usize> {
        let mut n = self.nodes.get(id as usize)?;
        let mut depth = 0;
        while let Some(p) = n.parent {
            depth += 1;
            n = &self.nodes[p as usize];
        }
        Some(depth)
    }
}

/// Chooses the vantage point of the jobs `set` of node `id` and measures them; `None`
/// when they cannot be split (every distance equal).
fn split(
    xcorr: &mut Xcorr,
    items: &[(Key, Prepared)],
    set: &[usize],
    id: u32,
    computed: &mut u64,
) -> Option<(Prepared, Vec<f64>, f64, Vec<f64>)> {
    let mut rng = Rng(u64::from(id).wrapping_mul(0x2545_F491_4F6C_DD1D) ^ set.len() as u64);
    let mut best: Option<(f64, usize)> = None;
    for _ in 0..CANDIDATES {
        let c = set[rng.below(set.len())];
        let ds: Vec<f64> = (0..SAMPLE.min(set.len()))
            .map(|_| xcorr.distance(&items[c].1, &items[set[rng.below(set.len())]].1))
            .collect();
        *computed += ds.len() as u64;
        let mean = ds.iter().sum::<f64>() / ds.len() as f64;
        let spread = ds.iter().map(|d| (d - mean) * (d - mean)).sum::<f64>();
        if best.is_none_or(|(s, _)| spread > s) {
            best = Some((spread, c));
        }
    }
    let (_, c) = best?;
    // The vantage point is the series the spectrum stands for, prepared from its
    // values as a stored tree will be: the same bits at build and at load.
    let values = xcorr.series_of(&items[c].1);
    let vantage = xcorr.prepare_standardised(&values);
    let d: Vec<f64> = set
        .iter()
        .map(|&i| xcorr.distance(&items[i].1, &vantage))
        .collect();
    *computed += d.len() as u64;
    let mut sorted = d.clone();
    sorted.sort_by(f64::total_cmp);
    let radius = sorted[(sorted.len() - 1) / 2];
    if sorted[sorted.len() - 1] <= radius {
        return None;
    }
    Some((vantage, values, radius, d))
}

/// What a search found and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The matches, in [`Match::order`].
    pub matches: Vec<Match>,
    /// Jobs of the leaves reached that passed the filter (given a bound).
    pub candidates: usize,
    /// Jobs whose distance was computed.
    pub refined: usize,
    /// Distances computed to vantage points.
    pub vantage: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Item {
    Node(u32),
    Job(Key),
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Ranked(f64, Item);

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        let rank = |i: &Item| match i {
            Item::Node(n) => (0, Key { id: 0, start: 0 }, *n),
            Item::Job(k) => (1, *k, 0),
        };
        self.0
            .total_cmp(&other.0)
            .then_with(|| rank(&self.1).cmp(&rank(&other.1)))
    }
}

/// One exact search of a [`VpTree`] (see the module's docs).
#[derive(Debug)]
pub struct Search<'t, F> {
    tree: &'t VpTree,
    query: Prepared,
    best: Best,
    heap: BinaryHeap<Reverse<Ranked>>,
    /// `d(q, v)` of the inner nodes passed, by node.
    near: HashMap<u32, f64>,
    accept: F,
    candidates: usize,
    refined: usize,
    vantage: usize,
}

impl<'t, F: Fn(&Key) -> bool> Search<'t, F> {
    /// The `k` nearest (or every one within `within`, or both) of the jobs `accept`
    /// takes, to the prepared `query`.
    pub fn new(
        tree: &'t VpTree,
        query: Prepared,
        k: Option<usize>,
        within: Option<f64>,
        accept: F,
    ) -> Search<'t, F> {
        let mut heap = BinaryHeap::new();
        heap.push(Reverse(Ranked(0.0, Item::Node(0))));
        Search {
            tree,
            query,
            best: Best::new(&Query {
                // Best reads k and within only.
                metric: Metric::ZNorm,
                k,
                within,
            }),
            heap,
            near: HashMap::new(),
            accept,
            candidates: 0,
            refined: 0,
            vantage: 0,
        }
    }

    /// The next jobs (at most `max`, at least one while any is wanted) whose series
    /// must be handed over with [`give`](Self::give); empty when the search is over.
    pub fn wanted(&mut self, xcorr: &mut Xcorr, max: usize) -> Vec<Key> {
        let mut out = Vec::new();
        while out.len() < max.max(1) {
            let Some(Reverse(Ranked(bound, item))) = self.heap.peek().copied() else {
                break;
            };
            if bound - SLACK > self.best.threshold() {
                self.heap.clear();
                break;
            }
            self.heap.pop();
            match item {
                Item::Job(key) => out.push(key),
                Item::Node(id) => self.open(xcorr, id, bound),
            }
        }
        out
    }

    /// Opens node `id` (reached with `bound`): its children or its jobs join the queue.
    fn open(&mut self, xcorr: &mut Xcorr, id: u32, bound: f64) {
        match &self.tree.nodes[id as usize].kind {
            Kind::Inner {
                vantage,
                radius,
                inside,
                outside,
                ..
            } => {
                let d = xcorr.distance(&self.query, vantage);
                self.vantage += 1;
                self.near.insert(id, d);
                self.heap
                    .push(Reverse(Ranked(bound.max(d - radius), Item::Node(*inside))));
                self.heap
                    .push(Reverse(Ranked(bound.max(radius - d), Item::Node(*outside))));
            }
            Kind::Leaf { keys } => {
                // d(q, v) of the vantage points above, root first.
                let mut above = Vec::new();
                let mut n = &self.tree.nodes[id as usize];
                while let Some(p) = n.parent {
                    above.push(self.near.get(&p).copied().unwrap_or(f64::NAN));
                    n = &self.tree.nodes[p as usize];
                }
                above.reverse();
                for key in keys.iter().filter(|k| (self.accept)(k)) {
                    self.candidates += 1;
                    let lb = self.tree.paths.get(key).map_or(0.0, |p| {
                        p.distances
                            .iter()
                            .zip(&above)
                            .map(|(&dx, &dq)| (dq - f64::from(dx)).abs())
                            .filter(|b| !b.is_nan())
                            .fold(0.0, f64::max)
                    });
                    self.heap
                        .push(Reverse(Ranked(bound.max(lb), Item::Job(*key))));
                }
            }
        }
    }

    /// The series of `key` (raw, resampled), or `None` when it could not be read (the
    /// job is then left out).
    pub fn give(&mut self, xcorr: &mut Xcorr, key: Key, values: Option<&[f64]>) {
        if let Some(v) = values {
            let p = xcorr.prepare(v);
            self.give_prepared(xcorr, key, &p);
        }
    }

    /// The prepared series of `key`. A job may also be handed over without being
    /// wanted (one the tree does not hold): it is compared all the same.
    pub fn give_prepared(&mut self, xcorr: &mut Xcorr, key: Key, series: &Prepared) {
        self.refined += 1;
        let distance = xcorr.distance(&self.query, series);
        self.best.offer(Match { key, distance });
    }

    /// The answer and its cost.
    pub fn finish(self) -> Outcome {
        Outcome {
            matches: self.best.into_vec(),
            candidates: self.candidates,
            refined: self.refined,
            vantage: self.vantage,
        }
    }
}

/// Every series compared with `query`: the oracle the tree is held to (and the scan
/// without an index).
pub fn brute_force<'a>(
    xcorr: &mut Xcorr,
    query: &Prepared,
    k: Option<usize>,
    within: Option<f64>,
    series: impl IntoIterator<Item = (Key, &'a Prepared)>,
) -> Vec<Match> {
    let mut best = Best::new(&Query {
        metric: Metric::ZNorm,
        k,
        within,
    });
    for (key, s) in series {
        let distance = xcorr.distance(query, s);
        best.offer(Match { key, distance });
    }
    best.into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    struct Gen(u64);
    impl Gen {
        fn unit(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// `count` series of length `n` in `clusters` clusters of noisy, circularly shifted
    /// copies of random walks, with duplicates and constants among them.
    fn data(seed: u64, n: usize, count: usize, clusters: usize) -> Vec<Vec<f64>> {
        let mut g = Gen(seed);
        let bases: Vec<Vec<f64>> = (0..clusters.max(1))
            .map(|_| {
                let mut x = 0.0;
                (0..n)
                    .map(|_| {
                        x += g.unit() - 0.5;
                        x
                    })
                    .collect()
            })
            .collect();
        let mut out: Vec<Vec<f64>> = Vec::new();
        for i in 0..count {
            let r = g.unit();
            let s = if r < 0.05 {
                vec![2.5; n]
            } else if r < 0.1 && !out.is_empty() {
                out[i / 2].clone()
            } else {
                let b = &bases[(g.unit() * bases.len() as f64) as usize % bases.len()];
                let shift = (g.unit() * n as f64) as usize % n;
                let noise = g.unit() * 0.5;
                (0..n)
                    .map(|j| b[(j + shift) % n] + noise * (g.unit() - 0.5))
                    .collect()
            };
            out.push(s);
        }
        out
    }

    fn key(i: usize) -> Key {
        Key {
            id: (i % 3) as i32,
            start: (i / 3) as i64,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn the_tree_answers_what_brute_force_answers(
            seed in 0u64..10_000,
            count in 0usize..300,
            clusters in 1usize..12,
            n in 8usize..40,
            leaf in 1usize..12,
            k in proptest::option::of(1usize..15),
            within in proptest::option::of(0.0f64..1.4),
            removed in 0usize..40,
            batch in 1usize..20,
        ) {
            let k = if k.is_none() && within.is_none() { Some(5) } else { k };
            let mut xc = Xcorr::new(n, [5.0, 1.0, 12.0][(seed % 3) as usize]);
            let series = data(seed, n, count + 1, clusters);
            let prepared: Vec<Prepared> = series.iter().map(|s| xc.prepare(s)).collect();
            // Build over the first part, insert the rest, remove some.
            let built = count * 2 / 3;
            let items: Vec<(Key, Prepared)> =
                (0..built).map(|i| (key(i), prepared[i].clone())).collect();
            let (mut tree, _) = VpTree::build_with(&mut xc, items, leaf);
            for (i, p) in prepared.iter().enumerate().take(count).skip(built) {
                tree.insert(&mut xc, key(i), p);
            }
            let mut alive: Vec<usize> = (0..count).collect();
            for r in 0..removed.min(count / 3) {
                let i = (r * 7 + seed as usize) % count;
                tree.remove(key(i));
                alive.retain(|&j| j != i);
            }
            prop_assert_eq!(tree.len(), alive.len());
            // A round trip through the stored form changes nothing.
            let paths: Vec<(Key, Path)> = tree.paths().map(|(k, p)| (*k, p.clone())).collect();
            let tree = VpTree::from_parts(&mut xc, tree.node_rows(), paths).unwrap();
            let query = xc.prepare(&series[count]);
            let accept = |k: &Key| k.id != 1 || k.start % 2 == 0;
            let want = brute_force(
                &mut xc,
                &query,
                k,
                within,
                alive.iter().map(|&i| (key(i), &prepared[i])).filter(|(k, _)| accept(k)),
            );
            let mut search = Search::new(&tree, query.clone(), k, within, accept);
            loop {
                let wanted = search.wanted(&mut xc, batch);
                if wanted.is_empty() {
                    break;
                }
                for w in wanted {
                    let i = w.id as usize + 3 * w.start as usize;
                    search.give_prepared(&mut xc, w, &prepared[i]);
                }
            }
            let got = search.finish();
            prop_assert!(got.refined <= alive.len());
            prop_assert_eq!(got.matches, want);
        }
    }

    #[test]
    fn clustered_data_is_pruned() {
        let n = 64;
        let mut xc = Xcorr::new(n, 5.0);
        let series = data(5, n, 4001, 40);
        let prepared: Vec<Prepared> = series.iter().map(|s| xc.prepare(s)).collect();
        let items: Vec<(Key, Prepared)> =
            (0..4000).map(|i| (key(i), prepared[i].clone())).collect();
        let (tree, _) = VpTree::build(&mut xc, items);
        let mut search = Search::new(&tree, prepared[4000].clone(), Some(10), None, |_: &Key| {
            true
        });
        loop {
            let w = search.wanted(&mut xc, 16);
            if w.is_empty() {
                break;
            }
            for k in w {
                let i = k.id as usize + 3 * k.start as usize;
                search.give_prepared(&mut xc, k, &prepared[i]);
            }
        }
        let got = search.finish();
        println!(
            "top-10 of 4000: {} jobs and {} vantage points measured",
            got.refined, got.vantage
        );
        assert!(
            got.refined + got.vantage < 2000,
            "{} jobs and {} vantage points of 4000",
            got.refined,
            got.vantage
        );
    }

    #[test]
    fn a_stored_tree_that_is_not_one_is_refused() {
        let mut xc = Xcorr::new(8, 5.0);
        let row = |id, inside, outside| NodeRow {
            id,
            vantage: Some(Vantage {
                values: vec![0.0; 8],
                radius: 0.5,
                inside,
                outside,
            }),
        };
        let leaf = |id| NodeRow { id, vantage: None };
        assert!(VpTree::from_parts(&mut xc, vec![row(0, 1, 1), leaf(1)], vec![]).is_err());
        let ok = vec![row(0, 1, 2), leaf(1), leaf(2)];
        assert!(VpTree::from_parts(&mut xc, ok.clone(), vec![]).is_ok());
        let path = Path {
            leaf: 1,
            distances: vec![],
        };
        let e = VpTree::from_parts(&mut xc, ok, vec![(key(0), path)]).unwrap_err();
        assert!(e.to_string().contains("rebuild"), "{e}");
    }
}
