//! Which windows an engine must keep for the greedy choice, in bounded memory.
//!
//! The greedy choice ([`super::exact::greedy`]) walks the windows in the order
//! (distance, start). Each window it takes excludes at most `2·M − 1` starts (its own
//! and `M − 1` on either side), so the `k`-th match is found among the first
//! `k·(2M − 1)` windows of that order; a forbidden range (the pattern's own occurrence,
//! at most `2M − 1` starts) adds as many again. A top-k query therefore keeps only the
//! best `k·(2M − 1)` windows seen (`(k + 1)·(2M − 1)` with a forbidden range) — a
//! max-heap — and a window whose *lower bound* exceeds the worst of a full heap cannot
//! matter: engines ask [`Selector::threshold`] before computing a window exactly. A query with only a radius keeps every window
//! within it (its answer may be that large).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::exact::{by_distance, greedy};
use super::{Match, Query};

#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry(f64, usize);

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        by_distance(&(self.0, self.1), &(other.0, other.1))
    }
}

/// The windows kept so far, with exact squared distances.
#[derive(Debug, Clone)]
pub struct Selector {
    k: Option<usize>,
    exclusion: usize,
    within_sq: f64,
    /// How many windows a top-k query keeps (`None`: all within the radius).
    cap: Option<usize>,
    kept: BinaryHeap<Entry>,
}

impl Selector {
    /// A selector for `query` (checked); `forbidden_zone` when [`Selector::finish`] will
    /// be given a forbidden range of starts (at most `2·exclusion − 1` of them).
    pub fn new(query: &Query, forbidden_zone: bool) -> Selector {
        let zone = query.exclusion.saturating_mul(2).saturating_sub(1);
        let extra = usize::from(forbidden_zone);
        Selector {
            k: query.k,
            exclusion: query.exclusion,
            within_sq: query.within.map_or(f64::INFINITY, |d| d * d),
            cap: query
                .k
                .map(|k| k.saturating_add(extra).saturating_mul(zone)),
            kept: BinaryHeap::new(),
        }
    }

    /// The largest squared distance a window may have and still matter: a window whose
    /// lower bound exceeds it need not be computed.
    pub fn threshold(&self) -> f64 {
        match self.cap {
            Some(cap) if self.kept.len() >= cap => self
                .kept
                .peek()
                .map_or(self.within_sq, |e| e.0.min(self.within_sq)),
            _ => self.within_sq,
        }
    }

    /// Offers window `start` at exact squared distance `d2`.
    pub fn offer(&mut self, start: usize, d2: f64) {
        if d2 > self.within_sq {
            return;
        }
        let e = Entry(d2, start);
        match self.cap {
            Some(cap) if self.kept.len() >= cap => {
                if self.kept.peek().is_some_and(|top| e < *top) {
                    self.kept.pop();
                    self.kept.push(e);
                }
            }
            _ => self.kept.push(e),
        }
    }

    /// Windows kept.
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// The matches: the greedy choice over the kept windows, never a start within
    /// `forbidden` (inclusive; at most `2·exclusion − 1` starts, and only when the
    /// selector was made for a forbidden zone).
    pub fn finish(self, forbidden: Option<(usize, usize)>) -> Vec<Match> {
        let sorted = self.kept.into_sorted_vec();
        greedy(
            sorted.into_iter().map(|e| (e.0, e.1)),
            self.k,
            self.exclusion,
            forbidden,
        )
    }
}

/// A consumer that defers the exact distances to the end, for a series held in memory
/// (the windows' values can be read again): it keeps the windows whose lower bound
/// reaches a threshold taken from *upper* bounds (`2·estimate − lower`; infinite when
/// the lower bound is 0, e.g. σ not trusted) — the `cap`-th smallest upper bound is at
/// least the `cap`-th smallest exact distance, so no window the greedy choice could
/// need is dropped — and [`Lazy::finish`] walks them in (distance, start) order,
/// computing a window's exact distance only when its lower bound comes first: about
/// the windows whose lower bound lies under the k-th match's distance are computed,
/// instead of every one that might join the `k·(2M − 1)` kept by [`Selector`].
#[derive(Debug, Clone)]
pub struct Lazy {
    k: Option<usize>,
    exclusion: usize,
    within_sq: f64,
    cap: Option<usize>,
    /// The `cap` smallest upper bounds (a max-heap).
    uppers: BinaryHeap<Entry>,
    /// `(lower, start)` of the windows kept.
    candidates: Vec<(f64, usize)>,
    /// Windows computed exactly by [`Lazy::finish`].
    pub refined: u64,
}

impl Lazy {
    /// For `query` (checked), as [`Selector::new`].
    pub fn new(query: &Query, forbidden_zone: bool) -> Lazy {
        let s = Selector::new(query, forbidden_zone);
        Lazy {
            k: s.k,
            exclusion: s.exclusion,
            within_sq: s.within_sq,
            cap: s.cap,
            uppers: BinaryHeap::new(),
            candidates: Vec::new(),
            refined: 0,
        }
    }

    /// Windows kept so far.
    pub fn kept(&self) -> usize {
        self.candidates.len()
    }

    /// The matches, as [`Selector::finish`] gives them; `exact` computes window
    /// `start`'s exact squared distance (the function the brute force uses).
    pub fn finish(
        mut self,
        forbidden: Option<(usize, usize)>,
        mut exact: impl FnMut(usize) -> f64,
    ) -> Vec<Match> {
        use std::cmp::Reverse;
        let t = self.threshold();
        // (key, exact?, start): a bound comes before an exact distance equal to it.
        let mut heap: BinaryHeap<Reverse<(Key, bool, usize)>> = self
            .candidates
            .iter()
            .filter(|c| c.0 <= t)
            .map(|&(lower, start)| Reverse((Key(lower), false, start)))
            .collect();
        self.candidates = Vec::new();
        let mut taken = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        while let Some(Reverse((Key(d2), is_exact, start))) = heap.pop() {
            if self.k.is_some_and(|k| out.len() >= k) {
                break;
            }
            if !is_exact {
                self.refined += 1;
                let d2 = exact(start);
                if d2 <= self.within_sq {
                    heap.push(Reverse((Key(d2), true, start)));
                }
                continue;
            }
            if forbidden.is_some_and(|(lo, hi)| lo <= start && start <= hi) {
                continue;
            }
            let lo = start.saturating_sub(self.exclusion - 1);
            let hi = start.saturating_add(self.exclusion - 1);
            if taken.range(lo..=hi).next().is_some() {
                continue;
            }
            taken.insert(start);
            out.push(Match {
                start,
                distance: d2.sqrt(),
            });
        }
        out
    }

    fn threshold(&self) -> f64 {
        match self.cap {
            Some(cap) if self.uppers.len() >= cap => self
                .uppers
                .peek()
                .map_or(self.within_sq, |e| e.0.min(self.within_sq)),
            _ => self.within_sq,
        }
    }
}

/// An f64 ordered by `total_cmp`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Key(f64);

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl super::profile::Consumer for Lazy {
    fn threshold(&self) -> f64 {
        Lazy::threshold(self)
    }

    fn window(&mut self, start: usize, estimate: f64, lower: f64, _exact: impl FnOnce() -> f64) {
        let t = Lazy::threshold(self);
        if lower > t {
            return;
        }
        let lower = if lower.is_nan() { 0.0 } else { lower };
        self.candidates.push((lower, start));
        let upper = if lower > 0.0 {
            2.0 * estimate - lower
        } else {
            f64::INFINITY
        };
        if let Some(cap) = self.cap {
            let e = Entry(upper, start);
            if self.uppers.len() < cap {
                self.uppers.push(e);
            } else if self.uppers.peek().is_some_and(|top| e < *top) {
                self.uppers.pop();
                self.uppers.push(e);
            }
        }
    }
}
