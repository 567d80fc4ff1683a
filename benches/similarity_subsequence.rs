//! Subsequence matching in memory (issue 15, point 6, subsequence part): top-5 of a
//! 256-point pattern in 2^23 points (`RECALCD_BENCH_SUBSEQ_POINTS` for another length)
//! with precomputed block spectra and window statistics (exact distances deferred to
//! the greedy choice: `select::Lazy`), against the same profile
//! without precomputation and the naive O(n·m) scan, in the same run; then a Euclidean
//! range query through the sliding-window DFT index against the profile. Every answer
//! is checked against the scan's. Prints medians and the peak RSS; no timing
//! assertions. `stumpy.mass` on the same size is timed by `scripts/check_stumpy.py`.
//!
//! Knobs: `RECALCD_BENCH_SUBSEQ_POINTS` (default 8,388,608), `RECALCD_BENCH_SUBSEQ_QUERIES`
//! (default 9 per kind), `RECALCD_BENCH_SUBSEQ_BLOCK` (FFT length, default the library's `DEFAULT_BLOCK`, 8,192).

use std::time::{Duration, Instant};

use recalcd::index::subsequence::exact::{brute_force, distance_sq, Pattern};
use recalcd::index::subsequence::profile::{Block, Profiler, Refine, DEFAULT_BLOCK};
use recalcd::index::subsequence::select::{Lazy, Selector};
use recalcd::index::subsequence::windows::{within, WindowIndex};
use recalcd::index::subsequence::{Match, Metric, Query};

mod common;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const M: usize = 256;

/// Makes one query pattern.
type MakePattern<'a> = Box<dyn Fn(&mut Rng) -> Vec<f64> + 'a>;

/// A xorshift generator with roughly normal steps (sum of four uniforms).
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        (0..4).map(|_| self.uniform()).sum::<f64>() - 2.0
    }

    fn walk(&mut self, n: usize) -> Vec<f64> {
        let mut x = 0.0;
        (0..n)
            .map(|_| {
                x += self.normal();
                x
            })
            .collect()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Top-k over the prepared blocks: bounds first, exact distances deferred to the greedy
/// choice ([`Lazy`]: the series is in memory).
fn query_prepared(
    pattern: &Pattern,
    blocks: &[Block],
    series: &[f64],
    block: usize,
    q: &Query,
) -> (Vec<Match>, u64) {
    let mut profiler = Profiler::new(pattern.clone(), block);
    let mut lazy = Lazy::new(q, false);
    for b in blocks {
        profiler.profile_block(b, &series[b.offset..b.offset + b.len], &mut lazy);
    }
    let m = pattern.len();
    let mut scratch = vec![0.0; m];
    let mut refined = 0;
    let found = {
        let lazy = lazy;
        let mut exact = |s: usize| {
            refined += 1;
            distance_sq(pattern, &series[s..s + m], &mut scratch)
        };
        lazy.finish(None, &mut exact)
    };
    (found, refined)
}

fn main() {
    let n = common::env_usize("RECALCD_BENCH_SUBSEQ_POINTS").unwrap_or(1 << 23);
    let queries = common::env_usize("RECALCD_BENCH_SUBSEQ_QUERIES").unwrap_or(9);
    let block = common::env_usize("RECALCD_BENCH_SUBSEQ_BLOCK").unwrap_or(DEFAULT_BLOCK);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let series = rng.walk(n);
    let rss_series = common::peak_rss_mb();
    println!(
        "subsequence: {n} points (random walk), pattern {M} points, top-5 z-normalised, \
         exclusion {M}; FFT blocks of {block}"
    );

    // Precomputed block spectra and window statistics (pattern-independent).
    let started = Instant::now();
    let mut planner = Profiler::new(Pattern::new(&series[..M], Metric::ZNorm), block);
    let len = planner.block_len();
    let step = len - M + 1;
    let mut blocks = Vec::new();
    let mut off = 0;
    while off + M <= n {
        let l = len.min(n - off);
        blocks.push(planner.prepare(&series[off..off + l], off));
        off += step;
    }
    let prep = started.elapsed();
    let bytes: usize = blocks
        .iter()
        .map(|b| {
            b.spectrum.len() * 16
                + b.stats.len() * std::mem::size_of_val(&b.stats[0])
                + b.compact.inv_sd.len() * 4
        })
        .sum();
    println!(
        "prepared {} blocks in {:.0} ms: {:.0} MB ({:.1} bytes a point)",
        blocks.len(),
        ms(prep),
        bytes as f64 / 1e6,
        bytes as f64 / n as f64
    );

    let q = Query {
        k: Some(5),
        within: None,
        exclusion: M,
        metric: Metric::ZNorm,
    };
    let kinds: [(&str, MakePattern); 2] = [
        (
            "a stretch of the series + noise",
            Box::new(|r: &mut Rng| {
                let at = (r.uniform() * (n - M) as f64) as usize;
                series[at..at + M]
                    .iter()
                    .map(|v| v + 0.3 * r.normal())
                    .collect()
            }),
        ),
        ("a fresh random walk", Box::new(|r: &mut Rng| r.walk(M))),
    ];
    let mut checked: Option<(Pattern, Vec<Match>)> = None;
    for (name, make) in &kinds {
        let mut times = Vec::new();
        let mut refined = Vec::new();
        for _ in 0..queries {
            let pattern = Pattern::new(&make(&mut rng), Metric::ZNorm);
            let started = Instant::now();
            let (found, r) = query_prepared(&pattern, &blocks, &series, block, &q);
            times.push(ms(started.elapsed()));
            refined.push(r as f64);
            if checked.is_none() {
                checked = Some((pattern, found));
            }
        }
        println!(
            "  top-5, precomputed blocks, {name}: median {:.1} ms (min {:.1}, max {:.1}) over \
             {queries} queries; median {:.0} windows recomputed exactly",
            median(times.clone()),
            times.iter().cloned().fold(f64::INFINITY, f64::min),
            times.iter().cloned().fold(0.0, f64::max),
            median(refined),
        );
    }
    let rss_prepared = common::peak_rss_mb();

    // The same query without precomputation, and the naive scan.
    let (pattern, found) = checked.expect("at least one query");
    let started = Instant::now();
    let mut profiler = Profiler::new(pattern.clone(), block);
    let mut refine = Refine {
        selector: Selector::new(&q, false),
        refined: 0,
    };
    profiler.push(&series, &mut refine);
    profiler.finish(&mut refine);
    let streamed = refine.selector.finish(None);
    let stream_ms = ms(started.elapsed());
    let started = Instant::now();
    let naive = brute_force(&pattern, &series, &q, None);
    let naive_ms = ms(started.elapsed());
    assert_eq!(found, naive, "the prepared profile answers as the scan");
    assert_eq!(streamed, naive, "the streamed profile answers as the scan");
    println!(
        "  same query streamed (block spectra computed on the way): {stream_ms:.1} ms; \
         naive O(n·m) scan: {naive_ms:.0} ms ({:.0}× the streamed profile); answers equal",
        naive_ms / stream_ms
    );

    // The sliding-window DFT index for a Euclidean range query.
    let (w, f, group) = (64, 4, 64);
    let started = Instant::now();
    let index = WindowIndex::build(&series, w, f, group).expect("valid parameters");
    let build_ms = ms(started.elapsed());
    let at = n / 2;
    let raw: Vec<f64> = series[at..at + M]
        .iter()
        .map(|v| v + 0.5 * rng.normal())
        .collect();
    let ep = Pattern::new(&raw, Metric::Euclid);
    let top = query_prepared(
        &ep,
        &blocks,
        &series,
        block,
        &Query {
            k: Some(5),
            within: None,
            exclusion: M,
            metric: Metric::Euclid,
        },
    )
    .0;
    let radius = top.last().map_or(10.0, |m| m.distance);
    let rq = Query {
        k: None,
        within: Some(radius),
        exclusion: M,
        metric: Metric::Euclid,
    };
    let started = Instant::now();
    let via_index = within(&index, &ep, &series, &rq, None).expect("applicable");
    let index_ms = ms(started.elapsed());
    let started = Instant::now();
    let (via_profile, _) = query_prepared(&ep, &blocks, &series, block, &rq);
    let profile_ms = ms(started.elapsed());
    assert_eq!(via_index.matches, via_profile, "index and profile agree");
    println!(
        "euclidean within {radius:.2} ({} matches): window index (w {w}, f {f}, boxes of \
         {group}; built in {build_ms:.0} ms, {:.1} MB = {:.1} % of the series) {index_ms:.1} ms, \
         {} candidates, {} rows read; precomputed profile {profile_ms:.1} ms",
        via_index.matches.len(),
        index.size_bytes() as f64 / 1e6,
        100.0 * index.size_bytes() as f64 / (n * 8) as f64,
        via_index.candidates,
        via_index.rows_read,
    );
    println!(
        "peak RSS: {rss_series:.0} MB with the series, {rss_prepared:.0} MB with the prepared \
         blocks, {:.0} MB at the end",
        common::peak_rss_mb()
    );
}
