//! The similarity indexes in memory, every baseline timed in the same run.
//!
//! **Whole matching** ([`whole`]): `RECALCD_BENCH_JOBS` jobs (default 1,000,000) of
//! 256-point random walks, an index of 8 DFT coefficients. It prints the build time, the
//! per-job update time, the index's bytes against the raw series' bytes (256 × 8 bytes a
//! job), and for `RECALCD_BENCH_QUERIES` queries (default 25) of each kind — random walks
//! not in the data, and white noise — the median time of an exact top-10 with the index
//! loaded and of an optimised brute force (series z-normalised beforehand, untimed;
//! early abandoning), the series each refined, and whether the answers are equal (they
//! must be). Both read the same z-normalised copies of the series (the index's
//! candidates through `Nearest::give_prepared`). `RECALCD_BENCH_KINDS` (default
//! `walk,noise`) chooses the kinds of query. No timing assertions.
//!
//! Sections are functions called from `main`, one per kind of matching; a new kind adds
//! its function and one line in `main`.

use std::time::Instant;

use recalcd::index::similarity::isax::{self, Approx, IsaxParams, Tree};
use recalcd::index::similarity::{
    Best, Index, Key, Match, Metric, Nearest, Params, Query, Spectrum,
};

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

    fn walk(&mut self, n: usize, out: &mut Vec<f64>) {
        let mut x = 0.0;
        for _ in 0..n {
            x += self.next();
            out.push(x);
        }
    }

    fn noise(&mut self, n: usize, out: &mut Vec<f64>) {
        for _ in 0..n {
            out.push(self.next());
        }
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

/// The optimised brute force: every series z-normalised beforehand (`znormed`, `n`
/// values each), squared distances summed with early abandoning against the k-th best.
fn brute(znormed: &[f64], n: usize, q: &[f64], k: usize) -> Vec<Match> {
    let mut best = Best::new(&Query {
        metric: Metric::ZNorm,
        k: Some(k),
        within: None,
    });
    for (i, x) in znormed.chunks_exact(n).enumerate() {
        let t = best.threshold();
        let limit = recalcd::index::similarity::knn::abandon_sq(t);
        let mut sum = 0.0;
        let mut abandoned = false;
        for (cq, cx) in q.chunks(16).zip(x.chunks(16)) {
            for (a, b) in cq.iter().zip(cx) {
                sum += (a - b) * (a - b);
            }
            if sum > limit {
                abandoned = true;
                break;
            }
        }
        if !abandoned {
            best.offer(Match {
                key: key(i),
                distance: sum.sqrt(),
            });
        }
    }
    best.into_vec()
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

fn whole() {
    let (raw, znormed, mut rng) = whole_exact();
    approximate(&raw, &znormed, &mut rng);
}

/// The exact index's section; hands its data to the iSAX section.
fn whole_exact() -> (Vec<f64>, Vec<f64>, Rng) {
    let jobs = env("RECALCD_BENCH_JOBS", 1_000_000);
    let queries = env("RECALCD_BENCH_QUERIES", 25);
    let n = 256;
    let params = Params::new(n, 8).expect("parameters");
    println!(
        "## Whole matching: {jobs} jobs x {n} points, {} coefficients, exact top-10",
        params.coefficients
    );
    let mut rng = Rng(7);
    let mut raw: Vec<f64> = Vec::with_capacity(jobs * n);
    for _ in 0..jobs {
        rng.walk(n, &mut raw);
    }
    // The brute force's own preparation (untimed, as the index build is timed apart).
    let mut znormed = raw.clone();
    for x in znormed.chunks_exact_mut(n) {
        recalcd::index::similarity::series::znormalise(x);
    }

    let t = Instant::now();
    let mut spectrum = Spectrum::new(params);
    let mut index = Index::new(params);
    for (i, x) in raw.chunks_exact(n).enumerate() {
        index.push(key(i), spectrum.entry(x));
    }
    let build = t.elapsed().as_secs_f64();
    let raw_bytes = jobs * n * 8;
    println!(
        "build: {:.2} s ({:.2} µs a job); index {:.1} MB in memory = {:.1} % of the raw series ({:.1} MB); stored entry 72 bytes a job = {:.1} %",
        build,
        build * 1e6 / jobs as f64,
        index.bytes() as f64 / 1e6,
        100.0 * index.bytes() as f64 / raw_bytes as f64,
        raw_bytes as f64 / 1e6,
        100.0 * 72.0 / (n * 8) as f64
    );

    // Per-job update: the entry of a recalculated job recomputed and replaced.
    let updates = 1000.min(jobs);
    let mut fresh = Vec::with_capacity(n);
    let t = Instant::now();
    for u in 0..updates {
        let i = (u * 7919) % jobs;
        fresh.clear();
        fresh.extend_from_slice(&raw[i * n..(i + 1) * n]);
        index.update(key(i), Some(spectrum.entry(&fresh)));
    }
    println!(
        "update: {:.2} µs a job (entry recomputed and replaced, {updates} jobs)",
        t.elapsed().as_secs_f64() * 1e6 / updates as f64
    );

    let query = Query {
        metric: Metric::ZNorm,
        k: Some(10),
        within: None,
    };
    // `RECALCD_BENCH_KINDS=walk` (or `noise`) runs one kind of query alone, e.g. to
    // profile it.
    let kinds = std::env::var("RECALCD_BENCH_KINDS").unwrap_or_else(|_| "walk,noise".into());
    for kind in ["random walk", "white noise"] {
        if !kinds.split(',').any(|k| kind.contains(k.trim())) {
            continue;
        }
        let (mut ti, mut tb, mut refined) = (Vec::new(), Vec::new(), Vec::new());
        let mut equal = 0;
        for _ in 0..queries {
            let mut q = Vec::with_capacity(n);
            if kind == "random walk" {
                rng.walk(n, &mut q);
            } else {
                rng.noise(n, &mut q);
            }
            let t = Instant::now();
            let mut s = Nearest::new(&index, &q, &query, |_| true);
            loop {
                let want = s.wanted(&index, 16);
                if want.is_empty() {
                    break;
                }
                for k in want {
                    let i = slot(&k);
                    s.give_prepared(k, &znormed[i * n..(i + 1) * n]);
                }
            }
            let got = s.finish();
            ti.push(t.elapsed().as_secs_f64() * 1e3);
            refined.push(got.refined as f64);
            let t = Instant::now();
            let mut qz = q.clone();
            recalcd::index::similarity::series::znormalise(&mut qz);
            let want = brute(&znormed, n, &qz, 10);
            tb.push(t.elapsed().as_secs_f64() * 1e3);
            let same = got.matches.len() == want.len()
                && got.matches.iter().zip(&want).all(|(a, b)| {
                    a.key == b.key && (a.distance - b.distance).abs() <= 1e-9 * b.distance.max(1.0)
                });
            equal += usize::from(same);
        }
        let (mi, mb) = (median(ti), median(tb));
        println!(
            "{kind} queries ({queries}): index {mi:.2} ms median, brute force {mb:.2} ms median ({:.1}x); refined median {:.0} of {jobs} series; answers equal in {equal} of {queries}",
            mb / mi,
            median(refined)
        );
    }
    (raw, znormed, rng)
}

/// **iSAX** ([`approximate`]): on the same jobs, the words (16 segments) computed and the
/// tree built from them (as a query rebuilds it from the stored words), then for
/// `RECALCD_BENCH_QUERIES` random-walk queries not in the data, the brute force's exact
/// top-10 (timed) against `--approx` answers for several leaf capacities and budgets:
/// recall@10 (the share of the exact top-10 found), median time, speed-up, series
/// examined, and how many answers were proven exact. `RECALCD_BENCH_LEAVES` (default
/// `128,512`), `RECALCD_BENCH_BUDGETS` (`1000,2000,5000,10000,none`) and `RECALCD_BENCH_SPLITS`
/// (`balanced`; e.g. `balanced,round-robin`) choose the settings.
fn approximate(raw: &[f64], znormed: &[f64], rng: &mut Rng) {
    let n = 256;
    let jobs = raw.len() / n;
    let queries = env("RECALCD_BENCH_QUERIES", 25);
    let w = isax::DEFAULT_WORD_LENGTH;
    println!("## iSAX: {jobs} jobs x {n} points, word length {w}, approximate top-10");
    let t = Instant::now();
    let words: Vec<Vec<u8>> = raw.chunks_exact(n).map(|x| isax::word(x, w)).collect();
    println!(
        "words: {:.2} s ({:.2} µs a job, {w} bytes each)",
        t.elapsed().as_secs_f64(),
        t.elapsed().as_secs_f64() * 1e6 / jobs as f64
    );
    let query = Query {
        metric: Metric::ZNorm,
        k: Some(10),
        within: None,
    };
    // The held-out queries and their exact answers (brute force timed).
    let mut qs = Vec::new();
    let mut tb = Vec::new();
    for _ in 0..queries {
        let mut q = Vec::with_capacity(n);
        rng.walk(n, &mut q);
        let t = Instant::now();
        let mut qz = q.clone();
        recalcd::index::similarity::series::znormalise(&mut qz);
        let exact = brute(znormed, n, &qz, 10);
        tb.push(t.elapsed().as_secs_f64() * 1e3);
        qs.push((q, exact));
    }
    let mb = median(tb);
    println!("brute force: {mb:.2} ms median over {queries} random-walk queries");
    let capacities: Vec<usize> = std::env::var("RECALCD_BENCH_LEAVES")
        .ok()
        .map(|s| s.split(',').filter_map(|v| v.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![128, 512]);
    let budgets: Vec<Option<usize>> = std::env::var("RECALCD_BENCH_BUDGETS")
        .ok()
        .map(|s| s.split(',').map(|v| v.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![Some(1000), Some(2000), Some(5000), Some(10_000), None]);
    let splits: Vec<String> = std::env::var("RECALCD_BENCH_SPLITS")
        .ok()
        .map(|s| s.split(',').map(|v| v.trim().to_string()).collect())
        .unwrap_or_else(|| vec!["balanced".to_string()]);
    let settings: Vec<(usize, &str)> = capacities
        .iter()
        .flat_map(|&c| splits.iter().map(move |s| (c, s.as_str())))
        .collect();
    for (cap, split) in settings {
        let params = IsaxParams::new(n, w as i64, 2, cap as i64, split).expect("parameters");
        let t = Instant::now();
        let mut tree = Tree::new(params);
        for (i, word) in words.iter().enumerate() {
            tree.insert(key(i), word);
        }
        println!(
            "leaf capacity {cap}, split {split}: tree built from the words in {:.2} s ({} nodes, {} root children)",
            t.elapsed().as_secs_f64(),
            tree.nodes(),
            tree.view(Some(1), &|_| String::new()).children.len()
        );
        for &budget in &budgets {
            let (mut times, mut examined) = (Vec::new(), Vec::new());
            let (mut found, mut proven) = (0usize, 0usize);
            for (q, exact) in &qs {
                let t = Instant::now();
                let mut s = Approx::new(&tree, q, &query, budget).expect("z-normalised");
                loop {
                    let want = s.wanted(&tree, 64, |_| true);
                    if want.is_empty() {
                        break;
                    }
                    for k in want {
                        let i = slot(&k);
                        s.give_prepared(k, &znormed[i * n..(i + 1) * n]);
                    }
                }
                let got = s.finish();
                times.push(t.elapsed().as_secs_f64() * 1e3);
                examined.push(got.examined as f64);
                proven += usize::from(got.exact);
                found += exact
                    .iter()
                    .filter(|m| got.matches.iter().any(|g| g.key == m.key))
                    .count();
            }
            let mi = median(times);
            println!(
                "  budget {:>7}: recall@10 {:.3}, {mi:.2} ms median ({:.1}x brute force), examined median {:.0}, proven exact {proven} of {queries}",
                budget.map_or("none".to_string(), |b| b.to_string()),
                found as f64 / (10 * qs.len()) as f64,
                mb / mi,
                median(examined)
            );
        }
    }
}

fn main() {
    whole();
}
