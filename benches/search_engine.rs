//! The search engines in memory: one device at 1 Hz (30 days by default;
//! `RECALCD_BENCH_DAYS` for another length), levels 1d/1h/10m/1m, a noisy wave with rare
//! excursions. For selective and unselective conditions of each kind, every method is
//! timed (search only: the buckets are built once, untimed) and compared with the scan;
//! it prints rows read, buckets read and the speed-up. No timing assertions.

use std::time::Instant;

use recalcd::index::condition::Condition;
use recalcd::index::feature::{build, Bucket, Levels};
use recalcd::index::search::{Method, Outcome, Search, Step};
use recalcd::index::{Micros, Point, DAY, SECOND};

/// Answers the search's steps from the built buckets and the points (time order).
fn drive(search: &mut Search, buckets: &[Vec<Bucket>], points: &[Point]) -> Outcome {
    loop {
        match search.next() {
            Step::Buckets { level, spans } => {
                let mut given = Vec::new();
                for (a, b) in spans {
                    let list = &buckets[level];
                    let i = list.partition_point(|x| x.start < a);
                    let j = list.partition_point(|x| x.start < b);
                    given.extend_from_slice(&list[i..j]);
                }
                search.give_buckets(given).expect("buckets asked for");
            }
            Step::Points { spans } => {
                let mut given = Vec::new();
                for (a, b) in spans {
                    let i = points.partition_point(|p| p.t < a);
                    let j = points.partition_point(|p| p.t < b);
                    given.extend_from_slice(&points[i..j]);
                }
                search.give_points(given).expect("points asked for");
            }
            Step::Done(outcome) => return outcome,
        }
    }
}

fn main() {
    let days: i64 = std::env::var("RECALCD_BENCH_DAYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let n = days * 86_400;
    let mut seed: u64 = 1;
    let points: Vec<Point> = (0..n)
        .map(|i| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let noise = (seed >> 40) as f64 / (1u64 << 24) as f64;
            let wave = ((i % 3_600) as f64 / 3_600.0 * std::f64::consts::TAU).sin() * 10.0;
            // One excursion of 30 s a day.
            let spike = if i % 86_400 >= 50_000 && i % 86_400 < 50_030 {
                100.0
            } else {
                0.0
            };
            Point {
                t: i * SECOND,
                v: Some(wave + noise + spike),
            }
        })
        .collect();
    let levels = Levels::new(vec![DAY, 3_600 * SECOND, 600 * SECOND, 60 * SECOND]).expect("levels");
    let started = Instant::now();
    let buckets = build(&levels, &points);
    println!(
        "{} rows, {} days; buckets built in {:.2} s: {:?}",
        n,
        days,
        started.elapsed().as_secs_f64(),
        buckets.iter().map(Vec::len).collect::<Vec<_>>()
    );
    let range: (Micros, Micros) = (0, n * SECOND);
    let conditions = [
        ("selective", "MAX(1m) > 80"),
        ("selective", "MIN(10s) > 80"),
        ("selective", "AVG(5m) > 20"),
        ("selective", "SUM(10m) > 7000"),
        ("selective", "RUN(>= 90, 20s)"),
        ("unselective", "AVG(1m) > 0"),
        ("unselective", "MAX(10s) > 5"),
        ("unselective", "RUN(> 0, 5s)"),
    ];
    println!(
        "{:<12} {:<18} {:<10} {:>9} {:>10} {:>12} {:>10} {:>8}",
        "kind", "condition", "method", "matches", "rows read", "buckets", "ms", "vs scan"
    );
    for (kind, text) in conditions {
        let cond = Condition::parse(text).expect("a condition");
        let mut scan_ms = f64::NAN;
        let mut want = None;
        for method in [Method::Scan, Method::Auto, Method::Filtering, Method::Fixed] {
            let started = Instant::now();
            let mut search =
                Search::new(&cond, Some(&levels), range, vec![], method).expect("a search");
            let got = drive(&mut search, &buckets, &points);
            let ms = started.elapsed().as_secs_f64() * 1e3;
            if method == Method::Scan {
                scan_ms = ms;
                want = Some(got.matches.clone());
            }
            let same = want.as_ref() == Some(&got.matches);
            println!(
                "{:<12} {:<18} {:<10} {:>9} {:>10} {:>12} {:>10.1} {:>7.1}x{}",
                kind,
                text,
                format!("{method}>{}", got.method),
                got.matches.len(),
                got.rows_read,
                got.buckets_read.iter().sum::<u64>(),
                ms,
                scan_ms / ms,
                if same { "" } else { "  MISMATCH" }
            );
        }
    }
}
