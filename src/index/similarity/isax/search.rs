//! The approximate k-NN over an iSAX [`Tree`]: best first by MINDIST, a SANS-IO search
//! like [`crate::index::similarity::Nearest`] (the caller hands over the series asked
//! for).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::tree::{Kind, Tree};
use super::{gap_sq, paa, Key, SYMBOL_BITS};
use crate::index::similarity::knn::{abandon_sq, Prepared};
use crate::index::similarity::{Best, Match, Metric, Query};

/// A node waiting in the queue, by its lower bound.
#[derive(Debug, Clone, Copy)]
struct Queued(f64, u32);

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// A lower bound lowered by a hair, so floating-point rounding never lets it exceed a
/// distance it bounds (a tie at the k-th distance is decided by key, so equal must pass).
fn safe(lb: f64) -> f64 {
    lb - 1e-9 * (1.0 + lb)
}

/// Symbols of every cardinality of one segment: 2 + 4 + … + 256.
const PER_SEGMENT: usize = 510;

/// The query's squared gaps to every symbol region of every segment at every cardinality
/// (a table, so a node's MINDIST is `word_length` lookups).
#[derive(Debug, Clone)]
struct Gaps {
    table: Vec<f64>,
    seg_len: f64,
}

impl Gaps {
    fn new(q: &[f64], seg_len: usize) -> Gaps {
        let mut table = Vec::with_capacity(q.len() * PER_SEGMENT);
        for &v in q {
            for bits in 1..=SYMBOL_BITS {
                for s in 0..(1u16 << bits) {
                    table.push(gap_sq(v, s as u8, bits));
                }
            }
        }
        Gaps {
            table,
            seg_len: seg_len as f64,
        }
    }

    fn at(bits: u8, symbol: u8) -> usize {
        (1usize << bits) - 2 + usize::from(symbol)
    }

    /// MINDIST of a word with per-segment bits.
    fn bound(&self, symbols: &[u8], bits: &[u8]) -> f64 {
        let s: f64 = symbols
            .iter()
            .zip(bits)
            .enumerate()
            .map(|(i, (&sym, &b))| self.table[i * PER_SEGMENT + Gaps::at(b, sym)])
            .sum();
        (self.seg_len * s).sqrt()
    }

    /// MINDIST of a word with the same bits in every segment.
    fn uniform(&self, symbols: &[u8], bits: u8) -> f64 {
        let s: f64 = symbols
            .iter()
            .enumerate()
            .map(|(i, &sym)| self.table[i * PER_SEGMENT + Gaps::at(bits, sym)])
            .sum();
        (self.seg_len * s).sqrt()
    }
}

/// Why an approximate search cannot be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the iSAX index answers z-normalised distances only (not `{0}`)")]
pub struct UnsupportedMetric(pub &'static str);

/// What an approximate search found and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct ApproxOutcome {
    /// The matches, in [`Match::order`].
    pub matches: Vec<Match>,
    /// Series whose true distance was computed.
    pub examined: usize,
    /// Leaves visited.
    pub leaves: usize,
    /// Whether the answer is proven exact: the search stopped because no node's lower
    /// bound could beat the k-th best (or every node was visited), not on its budget.
    pub exact: bool,
}

/// One approximate k-NN search of a [`Tree`] (z-normalised distance).
#[derive(Debug)]
pub struct Approx {
    query: Prepared,
    gaps: Gaps,
    best: Best,
    heap: BinaryHeap<Reverse<Queued>>,
    budget: Option<usize>,
    issued: usize,
    examined: usize,
    leaves: usize,
}

impl Approx {
    /// A search of `tree` for the jobs nearest `values` (resampled, raw; as long as the
    /// tree's series), examining about `budget` series (`None`: until exact). The
    /// budget is checked between leaves, and never stops a k-NN search before it holds
    /// k matches (or has visited every leaf): the answer is never empty when the tree
    /// holds an accepted series.
    ///
    /// # Errors
    /// [`UnsupportedMetric`] for a metric other than [`Metric::ZNorm`].
    pub fn new(
        tree: &Tree,
        values: &[f64],
        query: &Query,
        budget: Option<usize>,
    ) -> Result<Approx, UnsupportedMetric> {
        if query.metric != Metric::ZNorm {
            return Err(UnsupportedMetric(query.metric.as_str()));
        }
        let w = tree.params.word_length;
        let prepared = Prepared::new(Metric::ZNorm, values);
        let seg_len = values.len() / w.max(1);
        let q = paa(prepared.values(), w);
        let gaps = Gaps::new(&q, seg_len);
        let base = tree.params.base_bits();
        let queued: Vec<Reverse<Queued>> = tree
            .root
            .iter()
            .map(|(word, &n)| Reverse(Queued(gaps.uniform(word, base), n)))
            .collect();
        Ok(Approx {
            query: prepared,
            gaps,
            best: Best::new(query),
            heap: BinaryHeap::from(queued),
            budget,
            issued: 0,
            examined: 0,
            leaves: 0,
        })
    }

    /// The jobs whose series the search needs next — at least `max` unless it is done,
    /// and whole leaves (empty when it is done). `accept` says which jobs may match.
    pub fn wanted(&mut self, tree: &Tree, max: usize, accept: impl Fn(&Key) -> bool) -> Vec<Key> {
        let w = tree.params.word_length;
        let mut out = Vec::new();
        while out.len() < max.max(1) {
            let Some(&Reverse(Queued(lb, id))) = self.heap.peek() else {
                break;
            };
            let threshold = self.best.threshold();
            if safe(lb) > threshold {
                // In bound order: nothing left can beat the k-th best.
                self.heap.clear();
                break;
            }
            if self
                .budget
                .is_some_and(|b| self.issued >= b && threshold.is_finite())
            {
                break;
            }
            self.heap.pop();
            let node = &tree.nodes[id as usize];
            match &node.kind {
                Kind::Internal { children, .. } => {
                    for &c in children {
                        let child = &tree.nodes[c as usize];
                        if child.count == 0 {
                            continue;
                        }
                        let b = self.gaps.bound(&child.symbols, &child.bits);
                        // A child's region lies inside its parent's: its bound is at least the parent's.
                        self.heap.push(Reverse(Queued(b.max(lb), c)));
                    }
                }
                Kind::Leaf { keys, words } => {
                    self.leaves += 1;
                    for (k, word) in keys.iter().zip(words.chunks_exact(w)) {
                        if !accept(k) {
                            continue;
                        }
                        // The entry's own word at full resolution: a tighter bound.
                        let b = self.gaps.uniform(word, SYMBOL_BITS);
                        if safe(b) > threshold {
                            continue;
                        }
                        out.push(*k);
                        self.issued += 1;
                    }
                }
            }
        }
        out
    }

    /// The series of `key` (resampled, raw), as asked by [`Approx::wanted`]; `None`
    /// when the job is gone (skipped). Any other job may be given too.
    pub fn give(&mut self, key: Key, values: Option<&[f64]>) {
        let Some(values) = values else {
            return;
        };
        self.examined += 1;
        let t = self.best.threshold();
        if let Some(distance) = self.query.distance(values, abandon_sq(t)) {
            self.best.offer(Match { key, distance });
        }
    }

    /// [`Approx::give`] for a series already z-normalised.
    pub fn give_prepared(&mut self, key: Key, prepared: &[f64]) {
        self.examined += 1;
        let t = self.best.threshold();
        if let Some(distance) = self.query.prepared_distance(prepared, abandon_sq(t)) {
            self.best.offer(Match { key, distance });
        }
    }

    /// The answer, and whether it is proven exact.
    pub fn finish(self) -> ApproxOutcome {
        let threshold = self.best.threshold();
        let exact = self
            .heap
            .peek()
            .is_none_or(|Reverse(Queued(lb, _))| safe(*lb) > threshold);
        ApproxOutcome {
            matches: self.best.into_vec(),
            examined: self.examined,
            leaves: self.leaves,
            exact,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{word, IsaxParams};
    use super::*;
    use crate::index::similarity::brute_force;
    use proptest::prelude::*;

    fn series(seed: u64, n: usize, count: usize) -> Vec<Vec<f64>> {
        crate::index::similarity::test_series(seed, n, count, 6)
    }

    fn key(i: usize) -> Key {
        Key {
            id: (i % 5) as i32,
            start: i as i64 * 3,
        }
    }

    fn run(
        tree: &Tree,
        data: &[Vec<f64>],
        q: &[f64],
        query: &Query,
        budget: Option<usize>,
        batch: usize,
        accept: &dyn Fn(&Key) -> bool,
    ) -> ApproxOutcome {
        let mut s = Approx::new(tree, q, query, budget).unwrap();
        loop {
            let want = s.wanted(tree, batch, accept);
            if want.is_empty() {
                break;
            }
            for k in want {
                s.give(k, Some(&data[k.start as usize / 3]));
            }
        }
        s.finish()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn an_unlimited_budget_answers_what_brute_force_answers(
            seed in any::<u64>(),
            count in 1usize..200,
            k in 1usize..12,
            within in prop::option::of(0.0f64..6.0),
            capacity in 1i64..20,
            card in prop::sample::select(vec![2i64, 4, 8]),
            round_robin in any::<bool>(),
            batch in 1usize..30,
            skip in 0usize..5,
        ) {
            let n = 32;
            let split = if round_robin { "round-robin" } else { "balanced" };
            let params = IsaxParams::new(n, 8, card, capacity, split).unwrap();
            let data = series(seed, n, count + 1);
            let q = data[count].clone();
            let data = &data[..count];
            let mut tree = Tree::new(params);
            for (i, x) in data.iter().enumerate() {
                tree.insert(key(i), &word(x, 8));
            }
            let accept = |k: &Key| skip == 0 || k.id as usize != skip;
            for query in [
                Query { metric: Metric::ZNorm, k: Some(k), within: None },
                Query { metric: Metric::ZNorm, k: None, within: Some(within.unwrap_or(3.0)) },
                Query { metric: Metric::ZNorm, k: Some(k), within },
            ] {
                let got = run(&tree, data, &q, &query, None, batch, &accept);
                let want = brute_force(
                    &q,
                    &query,
                    data.iter().enumerate().map(|(i, x)| (key(i), x.as_slice())),
                    accept,
                );
                prop_assert_eq!(&got.matches, &want.matches);
                prop_assert!(got.exact);
                prop_assert!(got.examined <= want.refined);
                // Any budget: never empty, and exact when it says so.
                let cut = run(&tree, data, &q, &query, Some(1), batch, &accept);
                if query.within.is_none() && !want.matches.is_empty() {
                    prop_assert!(!cut.matches.is_empty());
                    prop_assert_eq!(cut.matches.len(), want.matches.len());
                }
                if cut.exact {
                    prop_assert_eq!(&cut.matches, &want.matches);
                }
            }
        }
    }

    #[test]
    fn the_gap_table_is_mindist() {
        let q = [-2.5, -0.3, 0.0, 0.1, 1.7, 3.0];
        let gaps = Gaps::new(&q, 4);
        for seed in 0..200u32 {
            let bits: Vec<u8> = (0..6).map(|i| ((seed * 7 + i * 3) % 8 + 1) as u8).collect();
            let symbols: Vec<u8> = (0..6)
                .map(|i| ((seed * 31 + i * 17) % 256) as u8 >> (8 - bits[i as usize]))
                .collect();
            let want = super::super::mindist(&q, 4, &symbols, &bits);
            assert!((gaps.bound(&symbols, &bits) - want).abs() < 1e-12);
        }
    }

    #[test]
    fn duplicates_by_value_stay_apart() {
        let params = IsaxParams::new(16, 4, 2, 1, "balanced").unwrap();
        let x: Vec<f64> = (0..16).map(|i| f64::from(i * i % 7)).collect();
        let data = vec![x.clone(), x.clone(), x.iter().map(|v| -v).collect()];
        let mut tree = Tree::new(params);
        for (i, s) in data.iter().enumerate() {
            tree.insert(key(i), &word(s, 4));
        }
        let query = Query {
            metric: Metric::ZNorm,
            k: Some(3),
            within: None,
        };
        let got = run(&tree, &data, &x, &query, None, 4, &|_| true);
        assert_eq!(got.matches.len(), 3);
        assert!(got.matches[0].distance < 1e-9 && got.matches[1].distance < 1e-9);
        // Removing one copy leaves the other, found at distance 0 (checked, not assumed).
        assert!(tree.remove(&key(0)));
        let got = run(&tree, &data, &x, &query, None, 4, &|_| true);
        assert_eq!(got.matches.len(), 2);
        assert_eq!(got.matches[0].key, key(1));
        assert!(got.matches[0].distance < 1e-9);
        assert!(got.exact);
    }

    #[test]
    fn a_budget_stops_early_and_says_so() {
        let n = 64;
        let data = series(11, n, 3_000);
        let params = IsaxParams::new(n, 8, 2, 8, "balanced").unwrap();
        let mut tree = Tree::new(params);
        for (i, x) in data.iter().enumerate() {
            tree.insert(key(i), &word(x, 8));
        }
        let q: Vec<f64> = data[4].iter().map(|v| v * 2.0 + 0.3).collect();
        let query = Query {
            metric: Metric::ZNorm,
            k: Some(3),
            within: None,
        };
        let got = run(&tree, &data, &q, &query, Some(20), 8, &|_| true);
        assert_eq!(got.matches.len(), 3);
        assert!(got.examined < 200, "{}", got.examined);
        // The series itself (scaled) is found first: its leaf has the smallest bound.
        assert_eq!(got.matches[0].key, key(4));
        let euclid = Query {
            metric: Metric::Euclid,
            ..query
        };
        assert!(Approx::new(&tree, &q, &euclid, None).is_err());
    }
}
