//! Every engine held to the oracle: an in-memory driver answers the search's steps from
//! `feature::build` and the points; property tests over random series compare each
//! method with `scan::brute_force`.

use proptest::prelude::*;

use super::*;
use crate::index::feature::build;
use crate::index::SECOND;

const METHODS: [Method; 4] = [Method::Auto, Method::Filtering, Method::Fixed, Method::Scan];

/// A store in memory: buckets built from the points, except that buckets overlapping
/// `untrusted` spans carry wrong features (or are missing), as dirty buckets may.
struct Memory {
    buckets: Vec<Vec<Bucket>>,
    points: Vec<Point>,
}

impl Memory {
    fn new(levels: &Levels, points: &[Point], untrusted: &[(Micros, Micros)], lie: u8) -> Memory {
        let mut buckets = build(levels, points);
        for (level, list) in buckets.iter_mut().enumerate() {
            let len = levels.length(level);
            let dirty = |b: &Bucket| {
                untrusted
                    .iter()
                    .any(|u| u.0 < u.1 && u.0 < b.start + len && b.start < u.1)
            };
            match lie % 3 {
                0 => list.retain(|b| !dirty(b)),
                _ => {
                    for b in list.iter_mut().filter(|b| dirty(b)) {
                        // Wrong features: one row far below or above everything.
                        b.features = Features::of([Point {
                            t: b.start,
                            v: Some(if lie % 3 == 1 { -1e9 } else { 1e9 }),
                        }]);
                    }
                }
            }
        }
        Memory {
            buckets,
            points: points.to_vec(),
        }
    }

    fn drive(&self, search: &mut Search) -> Outcome {
        for _ in 0..64 {
            match search.next() {
                Step::Buckets { level, spans } => {
                    let inside = |t: Micros| spans.iter().any(|s| s.0 <= t && t < s.1);
                    let given = self.buckets[level]
                        .iter()
                        .filter(|b| inside(b.start))
                        .copied()
                        .collect();
                    search.give_buckets(given).expect("buckets were asked for");
                }
                Step::Points { spans } => {
                    for w in spans.windows(2) {
                        assert!(w[0].1 < w[1].0, "spans disjoint and ordered: {spans:?}");
                    }
                    let given = self
                        .points
                        .iter()
                        .filter(|p| spans.iter().any(|s| s.0 <= p.t && p.t < s.1))
                        .copied()
                        .collect();
                    search.give_points(given).expect("points were asked for");
                }
                Step::Done(outcome) => return outcome,
            }
        }
        panic!("the search did not finish in 64 steps");
    }
}

fn levels() -> Levels {
    Levels::new(vec![120 * SECOND, 30 * SECOND, 10 * SECOND, 2 * SECOND]).expect("levels")
}

/// Random series: times in seconds with repeats and gaps, values in regimes (so that
/// whole buckets pass or fail), some missing values and NaN.
fn series() -> impl Strategy<Value = Vec<Point>> {
    prop::collection::vec(
        (
            prop_oneof![3 => Just(1i64), 1 => Just(0), 1 => 2i64..5, 1 => 10i64..90],
            prop_oneof![
                20 => (-8i32..8).prop_map(|v| Some(f64::from(v) / 2.0)),
                1 => Just(None),
                1 => Just(Some(f64::NAN)),
            ],
            prop::bool::weighted(0.03),
        ),
        0..500,
    )
    .prop_map(|steps| {
        let (mut t, mut base) = (-200i64, 0.0);
        steps
            .into_iter()
            .map(|(dt, v, shift)| {
                t += dt;
                if shift {
                    base = if base == 0.0 { 10.0 } else { 0.0 };
                }
                Point {
                    // Some rows on bucket edges, most just past a second.
                    t: t * SECOND + if t % 3 == 0 { 0 } else { 1 },
                    v: v.map(|v| v + base),
                }
            })
            .collect()
    })
}

fn condition() -> impl Strategy<Value = Condition> {
    (
        0usize..5,
        0usize..4,
        -8i32..48,
        prop_oneof![1i64..5, 5i64..40, 40i64..200],
        prop::option::of(1i64..20),
    )
        .prop_map(|(kind, op, x, len, gap)| {
            let op = [">", ">=", "<", "<="][op];
            let x = f64::from(x) / 4.0;
            let text = match kind {
                0 => format!("AVG({len}s) {op} {x}"),
                1 => format!("MIN({len}s) {op} {x}"),
                2 => format!("MAX({len}s) {op} {x}"),
                3 => format!("SUM({len}s) {op} {}", x * 3.0),
                _ => format!("RUN({op} {x}, {}s)", len - 1),
            };
            let c = Condition::parse(&text).expect("a generated condition");
            match c.kind {
                Kind::Run { .. } => c.with_max_gap(gap.map(|g| g * SECOND)).expect("a run"),
                _ => c,
            }
        })
}

/// 256 cases a property, or `PROPTEST_CASES` for a longer hunt.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256)
}

/// Checks every method on one case against the oracle.
fn check(
    points: &[Point],
    cond: &Condition,
    range: (Micros, Micros),
    untrusted: &[(Micros, Micros)],
    lie: u8,
) -> Result<(), TestCaseError> {
    let levels = levels();
    let memory = Memory::new(&levels, points, untrusted, lie);
    let inside: Vec<Point> = points
        .iter()
        .filter(|p| range.0 <= p.t && p.t < range.1)
        .copied()
        .collect();
    let want = scan::brute_force(cond, &inside);
    for method in METHODS {
        let Ok(mut search) = Search::new(cond, Some(&levels), range, untrusted.to_vec(), method)
        else {
            prop_assert!(cond.length() > range.1 - range.0);
            return Ok(());
        };
        let got = memory.drive(&mut search);
        prop_assert_eq!(&got.matches, &want, "{} with {}", cond, method);
        prop_assert_eq!(
            got.rows_in_range,
            inside.len() as u64,
            "{} with {}",
            cond,
            method
        );
        if method != Method::Auto {
            prop_assert_eq!(got.method, method);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn every_engine_equals_the_oracle(
        points in series(),
        cond in condition(),
        cut in (0i64..400, 0i64..2000),
        dirty in prop::collection::vec((0i64..2000, 0i64..60), 0..3),
        lie in 0u8..3,
    ) {
        let from = (cut.0 - 250) * SECOND + 500_000 * (cut.0 % 2);
        let to = from + (cut.1 + 1) * SECOND;
        let untrusted: Vec<(Micros, Micros)> = dirty
            .iter()
            .map(|&(a, l)| ((a - 250) * SECOND, (a - 250 + l) * SECOND))
            .collect();
        check(&points, &cond, (from, to), &untrusted, lie)?;
    }

    #[test]
    fn aligned_ranges_and_no_dirt(points in series(), cond in condition()) {
        check(&points, &cond, (-240 * SECOND, 7200 * SECOND), &[], 0)?;
    }
}

#[test]
fn without_an_index_auto_scans_and_forced_methods_fail() {
    let cond = Condition::parse("AVG(5s) > 1").expect("a condition");
    let s = Search::new(&cond, None, (0, 60 * SECOND), vec![], Method::Auto).expect("a scan");
    assert_eq!(s.method(), Method::Scan);
    for method in [Method::Filtering, Method::Fixed] {
        let e = Search::new(&cond, None, (0, 60 * SECOND), vec![], method)
            .err()
            .expect("an error");
        assert!(e.can_scan_instead());
        assert!(
            e.to_string().contains("recalcd index build --channel"),
            "{e}"
        );
    }
}

#[test]
fn bad_ranges_are_refused() {
    let cond = Condition::parse("AVG(5m) > 1").expect("a condition");
    let levels = levels();
    let e = Search::new(&cond, Some(&levels), (0, 60 * SECOND), vec![], Method::Auto).err();
    assert!(
        matches!(e, Some(SearchError::WindowLongerThanRange { .. })),
        "{e:?}"
    );
    let e = Search::new(&cond, Some(&levels), (SECOND, SECOND), vec![], Method::Auto).err();
    assert!(matches!(e, Some(SearchError::EmptyRange { .. })), "{e:?}");
}

/// One day at 1 Hz, a wave within ±10 and two excursions to 100; levels 1h/10m/1m/10s.
fn day() -> (Levels, Vec<Point>) {
    let levels =
        Levels::new(vec![3_600 * SECOND, 600 * SECOND, 60 * SECOND, 10 * SECOND]).expect("levels");
    let points = (0..86_400i64)
        .map(|i| {
            let wave = ((i % 600) as f64 / 600.0 * std::f64::consts::TAU).sin() * 10.0;
            let spike = if (40_000..40_020).contains(&i) || (70_000..70_005).contains(&i) {
                100.0
            } else {
                0.0
            };
            Point {
                t: i * SECOND,
                v: Some(wave + spike),
            }
        })
        .collect();
    (levels, points)
}

#[test]
fn selective_conditions_read_few_rows() {
    let (levels, points) = day();
    let memory = Memory::new(&levels, &points, &[], 0);
    for text in [
        "MAX(30s) > 70",
        "AVG(10s) > 50",
        "RUN(>= 90, 10s)",
        "MIN(10s) > 50",
        "SUM(10s) > 500",
    ] {
        let cond = Condition::parse(text).expect("a condition");
        let want = scan::evaluate(&cond, &points);
        assert!(!want.is_empty(), "{text} finds something");
        for method in [Method::Auto, Method::Filtering, Method::Fixed] {
            let mut search =
                Search::new(&cond, Some(&levels), (0, 86_400 * SECOND), vec![], method)
                    .expect("a search");
            let got = memory.drive(&mut search);
            assert_eq!(got.matches, want, "{text} with {method}");
            assert_eq!(got.rows_in_range, 86_400);
            assert_ne!(got.method, Method::Scan, "{text} with {method}");
            assert!(
                got.rows_read * 50 < got.rows_in_range,
                "{text} with {method} read {} rows",
                got.rows_read
            );
        }
    }
}

/// A SUM over a window as long as a level is judged down to the finest level: at the
/// window's own level every bucket's reach (two windows) sums past the threshold, at the
/// finest one only the buckets near the bump do.
#[test]
fn selective_sums_descend_to_the_finest_level() {
    let (levels, _) = day();
    let points: Vec<Point> = (0..86_400i64)
        .map(|i| Point {
            t: i * SECOND,
            v: Some(
                10.0 + if (50_000..50_300).contains(&i) {
                    5.0
                } else {
                    0.0
                },
            ),
        })
        .collect();
    let memory = Memory::new(&levels, &points, &[], 0);
    let cond = Condition::parse("SUM(10m) > 7000").expect("a condition");
    let want = scan::evaluate(&cond, &points);
    assert!(!want.is_empty(), "the bump matches");
    let run = |method| {
        let mut search = Search::new(&cond, Some(&levels), (0, 86_400 * SECOND), vec![], method)
            .expect("a search");
        memory.drive(&mut search)
    };
    let auto = run(Method::Auto);
    assert_eq!(auto.matches, want);
    assert_eq!(auto.method, Method::Filtering);
    assert!(
        auto.rows_read * 20 < auto.rows_in_range,
        "read {}",
        auto.rows_read
    );
    let fixed = run(Method::Fixed);
    assert_eq!(fixed.matches, want);
    assert!(
        fixed.rows_read > 10 * auto.rows_read,
        "fixed read {}",
        fixed.rows_read
    );
}

#[test]
fn unselective_conditions_scan_under_auto() {
    let (levels, _) = day();
    // Noise: every bucket holds values on both sides of the threshold.
    let mut seed: u64 = 7;
    let points: Vec<Point> = (0..86_400i64)
        .map(|i| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            Point {
                t: i * SECOND,
                v: Some((seed >> 40) as f64 / (1u64 << 24) as f64 * 100.0),
            }
        })
        .collect();
    let memory = Memory::new(&levels, &points, &[], 0);
    for text in ["AVG(1m) > 50", "MAX(1m) > 99", "RUN(> 50, 2s)"] {
        let cond = Condition::parse(text).expect("a condition");
        let mut search = Search::new(
            &cond,
            Some(&levels),
            (0, 86_400 * SECOND),
            vec![],
            Method::Auto,
        )
        .expect("a search");
        let got = memory.drive(&mut search);
        assert_eq!(got.method, Method::Scan, "{text}");
        assert_eq!(got.matches, scan::evaluate(&cond, &points), "{text}");
        assert_eq!(got.rows_read, 86_400, "{text}");
        assert_eq!(got.rows_in_range, 86_400, "{text}");
    }
}

#[test]
fn certain_buckets_are_not_read() {
    let (levels, points) = day();
    let memory = Memory::new(&levels, &points, &[], 0);
    // Every value exceeds -11: every window matches, one span over the day.
    let cond = Condition::parse("AVG(5m) > -11").expect("a condition");
    for method in [Method::Filtering, Method::Fixed] {
        let mut search = Search::new(&cond, Some(&levels), (0, 86_400 * SECOND), vec![], method)
            .expect("a search");
        let got = memory.drive(&mut search);
        assert_eq!(
            got.matches,
            vec![Match {
                from: 0,
                to: 86_399 * SECOND
            }]
        );
        assert!(got.rows_read < 1_000, "{method} read {}", got.rows_read);
    }
}
