//! `--metric xcorr` in memory: the vantage-point tree against a brute-force xcorr scan,
//! both timed in the same run (`cargo bench --bench similarity_xcorr`).
//!
//! Clustered data: `RECALCD_BENCH_XCORR_JOBS` jobs (default 1,000,000) of 256 points in
//! `RECALCD_BENCH_XCORR_CLUSTERS` clusters (default 1,000), each job a noisy, circularly
//! shifted, scaled and offset copy of its cluster's random walk. It prints the time to
//! prepare the series (spectrum and log K(x,x) each), to build the tree (and the
//! distances that took), then for `RECALCD_BENCH_QUERIES` queries (default 10) — new
//! members of random clusters, not in the data — the median time of an exact top-10 by
//! the tree and by a brute-force scan of the prepared series, the share of the series
//! whose distance the tree computed (jobs, and jobs plus vantage points), and whether
//! the answers are equal (they must be). No timing assertions.

use std::time::Instant;

use recalcd::index::similarity::vptree::{brute_force, Search, VpTree};
use recalcd::index::similarity::xcorr::{Prepared, Xcorr, DEFAULT_GAMMA};
use recalcd::index::similarity::Key;

/// A small PCG-style generator: the same data on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) - 0.5
    }

    fn below(&mut self, n: usize) -> usize {
        ((self.next() + 0.5) * n as f64) as usize % n
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn key(i: usize) -> Key {
    Key {
        id: (i % 1000) as i32,
        start: (i / 1000) as i64 * 3_600_000_000,
    }
}

fn slot(k: &Key) -> usize {
    (k.start / 3_600_000_000) as usize * 1000 + k.id as usize
}

/// A member of the cluster of `base`: circularly shifted, scaled, offset, with noise.
fn member(rng: &mut Rng, base: &[f64]) -> Vec<f64> {
    let n = base.len();
    let shift = rng.below(n);
    let scale = 1.0 + rng.next();
    let offset = rng.next() * 20.0;
    (0..n)
        .map(|i| base[(i + shift) % n] * scale + offset + 0.5 * rng.next())
        .collect()
}

fn main() {
    let jobs = env("RECALCD_BENCH_XCORR_JOBS", 1_000_000);
    let clusters = env("RECALCD_BENCH_XCORR_CLUSTERS", 1_000).max(1);
    let queries = env("RECALCD_BENCH_QUERIES", 10);
    let n = 256;
    println!(
        "## xcorr: {jobs} jobs x {n} points in {clusters} clusters (noisy circular shifts of random walks), gamma {DEFAULT_GAMMA}, exact top-10"
    );
    let mut rng = Rng(11);
    let bases: Vec<Vec<f64>> = (0..clusters)
        .map(|_| {
            let mut x = 0.0;
            (0..n)
                .map(|_| {
                    x += rng.next();
                    x
                })
                .collect()
        })
        .collect();
    let mut xcorr = Xcorr::new(n, DEFAULT_GAMMA);
    let t = Instant::now();
    let prepared: Vec<Prepared> = (0..jobs)
        .map(|_| {
            let c = rng.below(clusters);
            let s = member(&mut rng, &bases[c]);
            xcorr.prepare(&s)
        })
        .collect();
    let prepare = t.elapsed().as_secs_f64();
    let bytes: usize = prepared.iter().map(Prepared::bytes).sum();
    println!(
        "prepare: {prepare:.2} s ({:.2} µs a job; {:.0} MB of spectra)",
        prepare * 1e6 / jobs as f64,
        bytes as f64 / 1e6
    );
    let t = Instant::now();
    let items: Vec<(Key, Prepared)> = prepared
        .iter()
        .enumerate()
        .map(|(i, p)| (key(i), p.clone()))
        .collect();
    let (tree, built_with) = VpTree::build(&mut xcorr, items);
    let build = t.elapsed().as_secs_f64();
    println!(
        "tree build: {build:.2} s ({:.2} µs a job), {} vantage points, {built_with} distances ({:.1} a job)",
        build * 1e6 / jobs as f64,
        tree.vantage_points(),
        built_with as f64 / jobs as f64
    );
    let (mut tt, mut tb, mut share, mut share_all) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut equal = 0;
    for _ in 0..queries {
        let c = rng.below(clusters);
        let q = xcorr.prepare(&member(&mut rng, &bases[c]));
        let t = Instant::now();
        let mut s = Search::new(&tree, q.clone(), Some(10), None, |_: &Key| true);
        loop {
            let want = s.wanted(&mut xcorr, 16);
            if want.is_empty() {
                break;
            }
            for k in want {
                s.give_prepared(&mut xcorr, k, &prepared[slot(&k)]);
            }
        }
        let got = s.finish();
        tt.push(t.elapsed().as_secs_f64() * 1e3);
        share.push(100.0 * got.refined as f64 / jobs as f64);
        share_all.push(100.0 * (got.refined + got.vantage) as f64 / jobs as f64);
        let t = Instant::now();
        let want = brute_force(
            &mut xcorr,
            &q,
            Some(10),
            None,
            prepared.iter().enumerate().map(|(i, p)| (key(i), p)),
        );
        tb.push(t.elapsed().as_secs_f64() * 1e3);
        equal += usize::from(got.matches == want);
    }
    let (mt, mb) = (median(tt), median(tb));
    println!(
        "queries ({queries}): tree {mt:.1} ms median, brute force {mb:.1} ms median ({:.1}x); distances computed: median {:.2} % of the jobs (jobs only), {:.2} % with the vantage points, worst {:.2} %; answers equal in {equal} of {queries}",
        mb / mt,
        median(share),
        median(share_all.clone()),
        share_all.iter().copied().fold(0.0, f64::max)
    );
}
