//! Exact nearest neighbours over the entries of one index: [`Nearest`] (pruned by the
//! DFT lower bounds) and [`brute_force`] (every series), both collecting into [`Best`],
//! so both give the same matches in the same order.
//!
//! [`Nearest`] is a SANS-IO search: the caller asks [`Nearest::wanted`] which jobs'
//! series it needs next, hands them over with [`Nearest::give`], and repeats until
//! nothing more is wanted. In memory that is a slice lookup; through the store it is one
//! query per batch of jobs.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::series::{is_constant, mean_sigma};
use super::{Entry, Metric, Params};
use crate::index::Micros;

/// A job: device id and job start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// The device.
    pub id: i32,
    /// The job's start.
    pub start: Micros,
}

/// A job and its distance to the query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match {
    /// The job.
    pub key: Key,
    /// Its distance.
    pub distance: f64,
}

impl Match {
    /// The documented order: distance, then device id, then job start.
    pub fn order(&self, other: &Match) -> Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then(self.key.cmp(&other.key))
    }
}

/// What is asked: the metric, and the k nearest, all within a distance, or both.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Query {
    /// The distance.
    pub metric: Metric,
    /// At most this many matches (the nearest); `None`: every one within `within`.
    pub k: Option<usize>,
    /// Only matches at a distance ≤ this.
    pub within: Option<f64>,
}

/// The query series made ready for distances: z-normalised for [`Metric::ZNorm`].
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    metric: Metric,
    values: Vec<f64>,
}

impl Prepared {
    /// `values` (resampled, raw) prepared for `metric`.
    pub fn new(metric: Metric, values: &[f64]) -> Prepared {
        let mut values = values.to_vec();
        if metric == Metric::ZNorm {
            super::series::znormalise(&mut values);
        }
        Prepared { metric, values }
    }

    /// The prepared values (z-normalised for [`Metric::ZNorm`]).
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The distance to `z`, already prepared for the metric (see
    /// [`Nearest::give_prepared`]), or `None` as soon as its square exceeds `abandon_sq`.
    pub fn prepared_distance(&self, z: &[f64], abandon_sq: f64) -> Option<f64> {
        let mut sum = 0.0;
        for (cq, cz) in self.values.chunks(16).zip(z.chunks(16)) {
            for (a, b) in cq.iter().zip(cz) {
                sum += (a - b) * (a - b);
            }
            if sum > abandon_sq {
                return None;
            }
        }
        Some(sum.sqrt())
    }

    /// The distance to `x` (resampled, raw; as long as the query), or `None` as soon as
    /// its square exceeds `abandon_sq` (early abandoning: the sum is the same whether or
    /// not it is abandoned, so the value does not depend on the bound).
    pub fn distance(&self, x: &[f64], abandon_sq: f64) -> Option<f64> {
        let q = &self.values;
        let mut sum = 0.0;
        match self.metric {
            Metric::Euclid => {
                for (chunk_q, chunk_x) in q.chunks(16).zip(x.chunks(16)) {
                    for (a, b) in chunk_q.iter().zip(chunk_x) {
                        sum += (a - b) * (a - b);
                    }
                    if sum > abandon_sq {
                        return None;
                    }
                }
            }
            Metric::ZNorm => {
                let (mean, sigma) = mean_sigma(x);
                let constant = is_constant(mean, sigma);
                for (chunk_q, chunk_x) in q.chunks(16).zip(x.chunks(16)) {
                    for (a, b) in chunk_q.iter().zip(chunk_x) {
                        let z = if constant { 0.0 } else { (b - mean) / sigma };
                        sum += (a - z) * (a - z);
                    }
                    if sum > abandon_sq {
                        return None;
                    }
                }
            }
        }
        Some(sum.sqrt())
    }
}

/// The square a partial sum may reach before a series at distance ≤ `t` is ruled out:
/// a little above `t²`, so that a series whose distance rounds to `t` (a tie, decided by
/// its key) is never abandoned, whatever order the series come in.
pub fn abandon_sq(t: f64) -> f64 {
    t * t * (1.0 + 1e-9)
}

/// The matches so far: the k best (by [`Match::order`]) within the distance asked.
#[derive(Debug, Clone)]
pub struct Best {
    k: Option<usize>,
    within: Option<f64>,
    list: Vec<Match>,
}

impl Best {
    /// Empty, for `query`.
    pub fn new(query: &Query) -> Best {
        Best {
            k: query.k,
            within: query.within,
            list: Vec::new(),
        }
    }

    /// The distance a new match may not exceed (it may equal it: ties go by key).
    pub fn threshold(&self) -> f64 {
        let within = self.within.unwrap_or(f64::INFINITY);
        match self.k {
            Some(k) if self.list.len() >= k => {
                self.list.last().map_or(within, |m| m.distance.min(within))
            }
            _ => within,
        }
    }

    /// Takes `m` if it is among the best so far.
    pub fn offer(&mut self, m: Match) {
        if m.distance.is_nan() || m.distance > self.threshold() {
            return;
        }
        let at = self.list.partition_point(|x| x.order(&m) == Ordering::Less);
        if self.k.is_some_and(|k| at >= k) {
            return;
        }
        self.list.insert(at, m);
        if let Some(k) = self.k {
            self.list.truncate(k);
        }
    }

    /// The matches, in order.
    pub fn into_vec(self) -> Vec<Match> {
        self.list
    }
}

/// Values the first pass of a bound scan reads per entry: the first coefficients, where
/// most of a smooth series' energy lies.
const HEAD: usize = 4;

/// The bound vectors of one metric, split after [`HEAD`] values: the scan reads the heads
/// (16 bytes an entry) of every job and the tails only of jobs whose head could still
/// rank them among the best — the scan is bound by memory bandwidth.
#[derive(Debug, Clone, PartialEq)]
struct Flat {
    head: Vec<f32>,
    tail: Vec<f32>,
    head_dims: usize,
    tail_dims: usize,
}

impl Flat {
    fn new(dims: usize) -> Flat {
        let head_dims = dims.min(HEAD);
        Flat {
            head: Vec::new(),
            tail: Vec::new(),
            head_dims,
            tail_dims: dims - head_dims,
        }
    }

    fn push(&mut self, v: &[f32]) {
        self.head.extend_from_slice(&v[..self.head_dims]);
        self.tail.extend_from_slice(&v[self.head_dims..]);
    }

    fn tail(&self, i: usize) -> &[f32] {
        &self.tail[i * self.tail_dims..(i + 1) * self.tail_dims]
    }

    /// Moves the last entry to `i` (whose entry goes), as `Vec::swap_remove`.
    fn swap_remove(&mut self, i: usize, last: usize) {
        for (flat, dims) in [
            (&mut self.head, self.head_dims),
            (&mut self.tail, self.tail_dims),
        ] {
            if i != last {
                let (head, tail) = flat.split_at_mut(last * dims);
                head[i * dims..(i + 1) * dims].copy_from_slice(&tail[..dims]);
            }
            flat.truncate(last * dims);
        }
    }

    fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }
}

/// Every entry of one index, flat for the bound scans.
#[derive(Debug, Clone)]
pub struct Index {
    params: Params,
    keys: Vec<Key>,
    /// The z-normalised bound vectors, `2c` per entry.
    znorm: Flat,
    /// The plain bound vectors, `2c + 1` per entry.
    euclid: Flat,
    /// Where each job's entry is, for updates.
    slots: HashMap<Key, usize>,
}

impl Index {
    /// An empty index.
    pub fn new(params: Params) -> Index {
        Index {
            params,
            keys: Vec::new(),
            znorm: Flat::new(2 * params.coefficients),
            euclid: Flat::new(2 * params.coefficients + 1),
            slots: HashMap::new(),
        }
    }

    /// The parameters.
    pub fn params(&self) -> Params {
        self.params
    }

    /// Adds a job's entry, or replaces the one it has.
    pub fn push(&mut self, key: Key, entry: Entry) {
        if self.slots.contains_key(&key) {
            self.update(key, Some(entry));
            return;
        }
        self.slots.insert(key, self.keys.len());
        let mut v = Vec::with_capacity(2 * self.params.coefficients + 1);
        entry.push_znorm(&self.params, &mut v);
        self.znorm.push(&v);
        v.clear();
        entry.push_euclid(&self.params, &mut v);
        self.euclid.push(&v);
        self.keys.push(key);
    }

    /// Replaces the entry of `key` (or adds it); `None` removes it.
    pub fn update(&mut self, key: Key, entry: Option<Entry>) {
        if let Some(i) = self.slots.remove(&key) {
            let last = self.keys.len() - 1;
            self.keys.swap_remove(i);
            if i != last {
                self.slots.insert(self.keys[i], i);
            }
            self.znorm.swap_remove(i, last);
            self.euclid.swap_remove(i, last);
        }
        if let Some(e) = entry {
            self.push(key, e);
        }
    }

    /// The jobs held.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// How many jobs it holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether it holds no job.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Bytes held in memory (keys, their slots and the bound vectors of both metrics; the hash
    /// table's spare capacity not counted).
    pub fn bytes(&self) -> usize {
        self.keys.len() * (std::mem::size_of::<Key>() + std::mem::size_of::<(Key, usize)>())
            + 4 * (self.znorm.len() + self.euclid.len())
    }
}

/// Relative error allowed for the f32 bound arithmetic: bounds are lowered by this
/// share of the vectors' norms so rounding never lets a bound exceed the distance.
const SLACK: f32 = 1e-5;

/// What a search found and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The matches, in [`Match::order`].
    pub matches: Vec<Match>,
    /// Jobs that passed the filter (the ones a scan would read).
    pub candidates: usize,
    /// Jobs whose series were read and compared.
    pub refined: usize,
}

/// Above this many remaining candidates (and an eighth of the jobs), the second round
/// refines them in storage order instead of sorting them: bounds that prune little
/// (white noise) cost no more than a scan.
#[cfg(not(test))]
const UNORDERED: usize = 8192;
/// Small in the tests, so that both kinds of round two are held to the oracle.
#[cfg(test)]
const UNORDERED: usize = 4;

/// Round one's least size, and the pool it is picked from (this many times larger).
#[cfg(not(test))]
const ROUND_ONE_MIN: usize = 64;
#[cfg(not(test))]
const POOL: usize = 16;
/// Small in the tests, so that the pool is cut back on small indexes too.
#[cfg(test)]
const ROUND_ONE_MIN: usize = 2;
#[cfg(test)]
const POOL: usize = 2;

/// One exact search over an [`Index`] (see the module's docs).
///
/// Round one takes the `max(64, 8k)` smallest complete bounds among the `16·max(64, 8k)`
/// jobs of smallest head bounds and refines them in increasing order. Round two takes every other job whose
/// bound does not exceed the k-th best distance found: sorted when they are few (and
/// refined until a bound exceeds the k-th best), in storage order otherwise (each
/// skipped when its bound exceeds the k-th best at its turn). Either way every job whose
/// bound could still beat the answer is compared.
#[derive(Debug)]
pub struct Nearest {
    query: Prepared,
    best: Best,
    /// The squared bound of every job not in round one, `INFINITY` for jobs not
    /// admitted (and, once round one is queued, for its jobs: round two takes the finite
    /// rest). Positive: the head's alone (completed in round two when needed); negative
    /// (the sign bit set): complete, the value negated.
    bounds: Vec<f32>,
    /// What turns squares into safe bounds.
    scale: Scale,
    /// The jobs of the current round, with their bounds.
    queue: Vec<(f32, u32)>,
    at: usize,
    /// 1 or 2.
    round: u8,
    /// Whether the current round is in storage order.
    unordered: bool,
    candidates: usize,
    refined: usize,
}

/// `‖a − b‖²` over the shorter length, in eight lanes (vectorised by the compiler).
#[inline]
fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    let mut lanes = [0.0f32; 8];
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            let d = x[l] - y[l];
            lanes[l] += d * d;
        }
    }
    let mut s: f32 = lanes.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += (x - y) * (x - y);
    }
    s
}

/// `out[i] = ‖head_i − q‖²` for the heads laid end to end (`dims` values each): a
/// fixed-width loop the compiler vectorises for the usual widths.
fn head_squares(heads: &[f32], dims: usize, q: &[f32], out: &mut [f32]) {
    fn fixed<const D: usize>(heads: &[f32], q: &[f32], out: &mut [f32]) {
        let mut qa = [0.0f32; D];
        qa.copy_from_slice(&q[..D]);
        for (o, h) in out.iter_mut().zip(heads.chunks_exact(D)) {
            let mut s = 0.0;
            for d in 0..D {
                let x = h[d] - qa[d];
                s += x * x;
            }
            *o = s;
        }
    }
    match dims {
        4 => fixed::<4>(heads, q, out),
        3 => fixed::<3>(heads, q, out),
        2 => fixed::<2>(heads, q, out),
        1 => fixed::<1>(heads, q, out),
        _ => {
            for (o, h) in out.iter_mut().zip(heads.chunks_exact(dims.max(1))) {
                *o = squared_distance(h, q);
            }
        }
    }
}

fn pair_order(a: &(f32, u32), b: &(f32, u32)) -> Ordering {
    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
}

/// Turns the scan's squared coefficient distances into safe bounds.
#[derive(Debug, Clone)]
struct Scale {
    /// The query vector's norm: with ‖e‖ + ‖q‖ ≤ 2‖q‖ + ‖e − q‖, the rounding error's scale.
    qnorm: f32,
    /// `--within`, or infinity.
    within: f32,
    /// The query vector's tail, to complete partial bounds.
    q_tail: Vec<f32>,
    metric: Metric,
}

impl Scale {
    /// The safe bound of squared distance `s`: its root lowered by the rounding error's
    /// scale; infinite for jobs not admitted and beyond `within`. It grows with `s`.
    fn safe(&self, s: f32) -> f32 {
        if !s.is_finite() {
            return f32::INFINITY;
        }
        let lb = s.sqrt();
        let b = (lb - SLACK * (lb + 2.0 * self.qnorm)).max(0.0);
        if b <= self.within {
            b
        } else {
            f32::INFINITY
        }
    }
}

impl Nearest {
    /// A search of `index` for the jobs nearest `values` (resampled, raw, as long as
    /// the index's series) among those `accept` admits.
    pub fn new(
        index: &Index,
        values: &[f64],
        query: &Query,
        accept: impl Fn(&Key) -> bool,
    ) -> Nearest {
        let prepared = Prepared::new(query.metric, values);
        let mut spectrum = super::Spectrum::new(index.params);
        let entry = spectrum.entry(values);
        let mut qv = Vec::new();
        let flat = match query.metric {
            Metric::ZNorm => {
                entry.push_znorm(&index.params, &mut qv);
                &index.znorm
            }
            Metric::Euclid => {
                entry.push_euclid(&index.params, &mut qv);
                &index.euclid
            }
        };
        let qnorm = qv.iter().map(|v| v * v).sum::<f32>().sqrt();
        let within = query.within.unwrap_or(f64::INFINITY) as f32;
        let first = query
            .k
            .map_or(usize::MAX, |k| k.saturating_mul(8).max(ROUND_ONE_MIN));
        let (q_head, q_tail) = qv.split_at(flat.head_dims);
        // Pass one, branch-free (vectorised): every job's head square.
        let mut bounds: Vec<f32> = vec![0.0; index.len()];
        head_squares(&flat.head, flat.head_dims, q_head, &mut bounds);
        // Pass two: the filter, and a pool of the jobs of smallest head squares (16 times
        // round one's size; a candidate list cut back to the pool's size whenever it
        // doubles). Any set of jobs may form round one — round two takes every other job
        // whose bound could still beat the answer — so this only picks it cheaply: the
        // tails are read for the pool alone.
        let cap = first.saturating_mul(POOL);
        let mut pool: Vec<(f32, u32)> = Vec::new();
        let mut cut = f32::INFINITY;
        let mut candidates = 0;
        for (i, (key, b)) in index.keys.iter().zip(bounds.iter_mut()).enumerate() {
            if !accept(key) {
                *b = f32::INFINITY;
                continue;
            }
            candidates += 1;
            let h = *b;
            if h < cut {
                pool.push((h, i as u32));
                if pool.len() >= cap.saturating_mul(2) {
                    pool.select_nth_unstable_by(cap - 1, pair_order);
                    pool.truncate(cap);
                    cut = pool[cap - 1].0;
                }
            }
        }
        // The pool's bounds completed (marked complete by the sign bit); round one is
        // the `first` smallest.
        for (h, i) in &mut pool {
            let s = *h + squared_distance(flat.tail(*i as usize), q_tail);
            *h = s;
            bounds[*i as usize] = -s;
        }
        if first < pool.len() {
            pool.select_nth_unstable_by(first, pair_order);
            pool.truncate(first);
        }
        pool.sort_unstable_by(pair_order);
        let scale = Scale {
            qnorm,
            within,
            q_tail: q_tail.to_vec(),
            metric: query.metric,
        };
        let queue: Vec<(f32, u32)> = pool
            .into_iter()
            .map(|r| (scale.safe(r.0), r.1))
            .filter(|r| r.0.is_finite())
            .collect();
        for &(_, i) in &queue {
            bounds[i as usize] = f32::INFINITY;
        }
        Nearest {
            query: prepared,
            best: Best::new(query),
            bounds,
            scale,
            queue,
            at: 0,
            round: 1,
            unordered: false,
            candidates,
            refined: 0,
        }
    }

    /// Round two: every job not in round one whose bound is at most the current
    /// threshold (a partial bound that passes is completed first).
    fn second_round(&mut self, index: &Index) {
        self.round = 2;
        self.at = 0;
        let threshold = self.best.threshold();
        let flat = match self.scale.metric {
            Metric::ZNorm => &index.znorm,
            Metric::Euclid => &index.euclid,
        };
        let passes = |b: f32| f64::from(b) <= threshold;
        // A square above this cannot pass (the inverse of `Scale::safe`, widened by a
        // millionth): most jobs are ruled out without a root.
        let reach = (threshold + 2.0 * f64::from(SLACK) * f64::from(self.scale.qnorm))
            / (1.0 - f64::from(SLACK));
        let square_max = reach * reach * (1.0 + 1e-6);
        let mut rest: Vec<(f32, u32)> = Vec::new();
        let square_max = square_max as f32;
        for (i, &v) in self.bounds.iter().enumerate() {
            let s = v.abs();
            if s > square_max {
                continue;
            }
            let mut b = self.scale.safe(s);
            if !b.is_finite() || !passes(b) {
                continue;
            }
            if v.is_sign_positive() {
                b = self
                    .scale
                    .safe(s + squared_distance(flat.tail(i), &self.scale.q_tail));
                if !b.is_finite() || !passes(b) {
                    continue;
                }
            }
            rest.push((b, i as u32));
        }
        self.unordered = rest.len() > UNORDERED.max(self.bounds.len() / 8);
        if !self.unordered {
            rest.sort_unstable_by(pair_order);
        }
        self.queue = rest;
    }

    /// Up to `max` jobs whose series the search needs next (empty when it is done);
    /// `index` is the one the search was made for.
    pub fn wanted(&mut self, index: &Index, max: usize) -> Vec<Key> {
        let mut out = Vec::new();
        while out.len() < max.max(1) {
            if self.at == self.queue.len() {
                if self.round == 1 {
                    self.second_round(index);
                    continue;
                }
                break;
            }
            let (lb, i) = self.queue[self.at];
            self.at += 1;
            if f64::from(lb) > self.best.threshold() {
                if self.unordered {
                    continue;
                }
                // In order: no later bound can do better. Round one's end is round two's
                // start, which filters by the threshold itself.
                self.at = self.queue.len();
                continue;
            }
            if let Some(k) = index.keys.get(i as usize) {
                out.push(*k);
            }
        }
        out
    }

    /// The series of `key` (resampled, raw), as asked by [`Nearest::wanted`]; `None`
    /// when the job is gone (it is skipped). Any other job may be given too (a job the
    /// index cannot vouch for): it is compared the same way.
    pub fn give(&mut self, key: Key, values: Option<&[f64]>) {
        let Some(values) = values else {
            return;
        };
        self.refined += 1;
        let t = self.best.threshold();
        if let Some(distance) = self.query.distance(values, abandon_sq(t)) {
            self.best.offer(Match { key, distance });
        }
    }

    /// [`Nearest::give`] for a series already prepared for the metric (z-normalised by
    /// [`super::series::znormalise`] for [`Metric::ZNorm`], as is for
    /// [`Metric::Euclid`]): a store that keeps prepared copies skips that pass.
    pub fn give_prepared(&mut self, key: Key, prepared: &[f64]) {
        self.refined += 1;
        let t = self.best.threshold();
        if let Some(distance) = self.query.prepared_distance(prepared, abandon_sq(t)) {
            self.best.offer(Match { key, distance });
        }
    }

    /// The answer.
    pub fn finish(self) -> Outcome {
        Outcome {
            matches: self.best.into_vec(),
            candidates: self.candidates,
            refined: self.refined,
        }
    }
}

/// The exact answer by comparing `values` with every job `accept` admits (`series`
/// gives each job's series, resampled, raw, in any order).
pub fn brute_force<'a>(
    values: &[f64],
    query: &Query,
    series: impl IntoIterator<Item = (Key, &'a [f64])>,
    accept: impl Fn(&Key) -> bool,
) -> Outcome {
    let prepared = Prepared::new(query.metric, values);
    let mut best = Best::new(query);
    let (mut candidates, mut refined) = (0, 0);
    for (key, x) in series {
        if !accept(&key) {
            continue;
        }
        candidates += 1;
        refined += 1;
        let t = best.threshold();
        if let Some(distance) = prepared.distance(x, abandon_sq(t)) {
            best.offer(Match { key, distance });
        }
    }
    Outcome {
        matches: best.into_vec(),
        candidates,
        refined,
    }
}

#[cfg(test)]
mod tests {
    use super::super::Spectrum;
    use super::*;
    use proptest::prelude::*;

    fn series(seed: u64, n: usize, count: usize) -> Vec<Vec<f64>> {
        crate::index::similarity::test_series(seed, n, count, 5)
    }

    fn run(
        index: &Index,
        data: &[Vec<f64>],
        q: &[f64],
        query: &Query,
        batch: usize,
        accept: &dyn Fn(&Key) -> bool,
    ) -> Outcome {
        let mut s = Nearest::new(index, q, query, accept);
        loop {
            let want = s.wanted(index, batch);
            if want.is_empty() {
                break;
            }
            for k in want {
                s.give(k, Some(&data[k.id as usize]));
            }
        }
        s.finish()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn the_index_answers_what_brute_force_answers(
            seed in any::<u64>(),
            n in 4usize..40,
            count in 1usize..120,
            k in 1usize..12,
            within in prop::option::of(0.0f64..8.0),
            euclid in any::<bool>(),
            batch in 1usize..20,
            skip in 0usize..7,
        ) {
            let c = (seed as usize % (n / 2)) + 1;
            let params = Params::new(n, c).unwrap();
            let data = series(seed, n, count + 1);
            let q = data[count].clone();
            let data = &data[..count];
            let mut spectrum = Spectrum::new(params);
            let mut index = Index::new(params);
            for (i, x) in data.iter().enumerate() {
                index.push(Key { id: i as i32, start: (i as i64) * 7 }, spectrum.entry(x));
            }
            let metric = if euclid { Metric::Euclid } else { Metric::ZNorm };
            let accept = |key: &Key| skip == 0 || key.id as usize % 7 != skip;
            for query in [
                Query { metric, k: Some(k), within: None },
                Query { metric, k: None, within: Some(within.unwrap_or(3.0)) },
                Query { metric, k: Some(k), within },
            ] {
                let got = run(&index, data, &q, &query, batch, &accept);
                let want = brute_force(
                    &q,
                    &query,
                    data.iter().enumerate().map(|(i, x)| (Key { id: i as i32, start: (i as i64) * 7 }, x.as_slice())),
                    accept,
                );
                prop_assert_eq!(&got.matches, &want.matches);
                prop_assert_eq!(got.candidates, want.candidates);
                prop_assert!(got.refined <= want.refined);
            }
        }
    }

    #[test]
    fn ties_go_by_id_then_start_and_constants_have_a_distance() {
        let params = Params::new(8, 2).unwrap();
        let mut spectrum = Spectrum::new(params);
        let a: Vec<f64> = (0..8).map(f64::from).collect();
        let flat = vec![5.0; 8];
        let data: [Vec<f64>; 4] = [
            a.clone(),
            a.clone(),
            flat.clone(),
            a.iter().map(|v| v * 3.0 + 1.0).collect(),
        ];
        let mut index = Index::new(params);
        for (i, x) in data.iter().enumerate().rev() {
            index.push(
                Key {
                    id: (i / 2) as i32,
                    start: i as i64,
                },
                spectrum.entry(x),
            );
        }
        let keyed: Vec<Vec<f64>> = vec![
            data[0].clone(),
            data[1].clone(),
            data[2].clone(),
            data[3].clone(),
        ];
        let query = Query {
            metric: Metric::ZNorm,
            k: Some(4),
            within: None,
        };
        let mut s = Nearest::new(&index, &a, &query, |_| true);
        loop {
            let w = s.wanted(&index, 1);
            if w.is_empty() {
                break;
            }
            for k in w {
                s.give(k, Some(&keyed[k.start as usize]));
            }
        }
        let got = s.finish();
        let order: Vec<(i64, f64)> = got
            .matches
            .iter()
            .map(|m| (m.key.start, m.distance))
            .collect();
        // Three series are a scaled copy of the query (distance 0, by id then start);
        // the constant one z-normalises to zeros: distance √8.
        assert_eq!(
            order[..3].iter().map(|o| o.0).collect::<Vec<_>>(),
            vec![0, 1, 3]
        );
        assert!(order[..3].iter().all(|o| o.1 < 1e-9));
        assert_eq!(order[3].0, 2);
        assert!((order[3].1 - 8f64.sqrt()).abs() < 1e-12);
        // Two constants are at distance 0.
        let p = Prepared::new(Metric::ZNorm, &flat);
        assert_eq!(p.distance(&[1.0; 8], f64::INFINITY), Some(0.0));
    }

    /// Many more jobs than round one keeps, so most bounds stay partial (the head alone)
    /// until round two completes the ones that could still match.
    #[test]
    fn partial_bounds_never_lose_a_match() {
        let n = 32;
        let params = Params::new(n, 6).unwrap();
        let data = series(7, n, 3_000);
        let mut spectrum = Spectrum::new(params);
        let mut index = Index::new(params);
        let key = |i: usize| Key {
            id: i as i32,
            start: i as i64,
        };
        for (i, x) in data.iter().enumerate() {
            index.push(key(i), spectrum.entry(x));
        }
        for (q, metric, k, within) in [
            (3, Metric::ZNorm, Some(1), None),
            (8, Metric::ZNorm, Some(5), None),
            (13, Metric::Euclid, Some(3), None),
            (17, Metric::Euclid, None, Some(4.0)),
            (22, Metric::ZNorm, Some(10), Some(3.0)),
        ] {
            let query = Query { metric, k, within };
            let noisy: Vec<f64> = data[q].iter().map(|v| v + 0.01).collect();
            let got = run(&index, &data, &noisy, &query, 7, &|_| true);
            let want = brute_force(
                &noisy,
                &query,
                data.iter().enumerate().map(|(i, x)| (key(i), x.as_slice())),
                |_| true,
            );
            assert_eq!(got.matches, want.matches, "query {q}");
            assert!(got.refined < want.refined, "query {q} pruned nothing");
        }
    }

    #[test]
    fn updates_replace_and_remove_entries() {
        let params = Params::new(8, 2).unwrap();
        let mut spectrum = Spectrum::new(params);
        let mut index = Index::new(params);
        let xs: Vec<Vec<f64>> = (0..3)
            .map(|j| (0..8).map(|i| f64::from(i * (j + 1))).collect())
            .collect();
        for (i, x) in xs.iter().enumerate() {
            index.push(
                Key {
                    id: 1,
                    start: i as i64,
                },
                spectrum.entry(x),
            );
        }
        index.update(Key { id: 1, start: 0 }, None);
        assert_eq!(index.len(), 2);
        index.update(Key { id: 1, start: 1 }, Some(spectrum.entry(&xs[2])));
        let mut fresh = Index::new(params);
        fresh.push(Key { id: 1, start: 2 }, spectrum.entry(&xs[2]));
        fresh.push(Key { id: 1, start: 1 }, spectrum.entry(&xs[2]));
        assert_eq!(index.keys(), fresh.keys());
        assert_eq!(index.znorm, fresh.znorm);
        assert_eq!(index.euclid, fresh.euclid);
    }
}
