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
