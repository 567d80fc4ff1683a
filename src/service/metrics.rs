//! The daemon's Prometheus metrics: every name registered once, in one place, and the
//! functions the daemon calls when something happens.
//!
//! Names carry the `recalcd_` prefix; counters get the `_total` suffix of the
//! OpenMetrics text format ([`Metrics::render`]), which Prometheus scrapes as is.
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `recalcd_rows_flagged_total` | counter | | flagged rows picked up by batches |
//! | `recalcd_rows_processed_total` | counter | `level` | rows written back (`data`, `job`, `day`) |
//! | `recalcd_rows_skipped_total` | counter | | rows left alone: a producer changed them meanwhile |
//! | `recalcd_rows_followed_total` | counter | | next jobs and days flagged because the one before changed |
//! | `recalcd_failures_total` | counter | `kind` | `row`: rows written with `recalc = -1`; `equation`: error records written; `panic`: batches that panicked |
//! | `recalcd_batch_duration_seconds` | histogram | | batches that found flagged rows, poll to write-back |
//! | `recalcd_backlog_rows` | gauge | `level` | rows flagged (`recalc > 0`) |
//! | `recalcd_oldest_flag_age_seconds` | gauge | `level` | now minus the `datetime` of the oldest flagged row (read as UTC); 0 when none |
//! | `recalcd_store_errors_total` | counter | `kind` | store failures: `connect`, `connect_timeout`, `schema`, `query`, `unexpected`, `config` |
//! | `recalcd_reconnects_total` | counter | | connections opened after a failure |
//! | `recalcd_last_poll_timestamp_seconds` | gauge | | Unix time of the last successful poll |
//! | `recalcd_ready` | gauge | | 1 when `/readyz` answers 200, else 0 (set when rendered) |
//! | `recalcd_equations_skipped` | gauge | | equations left out by the latest load (they do not parse or check, or read each other in a cycle; listed by `recalcd status`) |
//!
//! The backlog gauges are set to 0 without a query whenever a poll finds nothing
//! flagged; while there is a backlog they are refreshed from [`Store::status`] at most
//! every [`BACKLOG_REFRESH`] (see [`super::Monitor`]), never once per batch.
//!
//! [`Store::status`]: crate::store::Store::status

use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{NaiveDateTime, Utc};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::batch::{Loaded, Report};
use crate::store::{Backlog, Level, StoreError};

/// The longest the backlog gauges go without a refresh while rows are flagged.
pub const BACKLOG_REFRESH: Duration = Duration::from_secs(15);

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the batch duration buckets, in seconds.
const BATCH_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// One label, e.g. `level="data"`.
type Label = [(&'static str, &'static str); 1];

/// The registry and every metric in it. Cheap to update from any thread.
#[derive(Debug)]
pub struct Metrics {
    /// What `/metrics` renders; holds a handle to every metric below.
    registry: Registry,
    /// `recalcd_rows_flagged_total`.
    flagged: Counter,
    /// `recalcd_rows_processed_total{level}`.
    processed: Family<Label, Counter>,
    /// `recalcd_rows_skipped_total`.
    skipped: Counter,
    /// `recalcd_rows_followed_total`.
    followed: Counter,
    /// `recalcd_failures_total{kind}`.
    failures: Family<Label, Counter>,
    /// `recalcd_batch_duration_seconds`.
    batch_duration: Histogram,
    /// `recalcd_backlog_rows{level}`.
    backlog: Family<Label, Gauge>,
    /// `recalcd_oldest_flag_age_seconds{level}`.
    oldest_age: Family<Label, Gauge<f64, AtomicU64>>,
    /// `recalcd_store_errors_total{kind}`.
    store_errors: Family<Label, Counter>,
    /// `recalcd_reconnects_total`.
    reconnects: Counter,
    /// `recalcd_last_poll_timestamp_seconds`.
    last_poll: Gauge<f64, AtomicU64>,
    /// `recalcd_ready`.
    ready: Gauge,
    /// `recalcd_equations_skipped`.
    equations_skipped: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric, with the labels known in advance set to 0 so that a
    /// dashboard sees them before the first event.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("recalcd");
        let m = Metrics {
            flagged: Counter::default(),
            processed: Family::default(),
            skipped: Counter::default(),
            followed: Counter::default(),
            failures: Family::default(),
            batch_duration: Histogram::new(BATCH_BUCKETS),
            backlog: Family::default(),
            oldest_age: Family::default(),
            store_errors: Family::default(),
            reconnects: Counter::default(),
            last_poll: Gauge::default(),
            ready: Gauge::default(),
            equations_skipped: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "rows_flagged",
            "Flagged rows picked up by batches",
            m.flagged.clone(),
        );
        registry.register(
            "rows_processed",
            "Rows written back, by level (data, job, day)",
            m.processed.clone(),
        );
        registry.register(
            "rows_skipped",
            "Rows left alone because a producer changed them during the batch",
            m.skipped.clone(),
        );
        registry.register(
            "rows_followed",
            "Next jobs and days flagged because the one before them changed",
            m.followed.clone(),
        );
        registry.register(
            "failures",
            "Failures by kind: row (written with recalc = -1), equation (error records), panic (batches)",
            m.failures.clone(),
        );
        registry.register_with_unit(
            "batch_duration",
            "Duration of batches that found flagged rows, poll to write-back",
            Unit::Seconds,
            m.batch_duration.clone(),
        );
        registry.register(
            "backlog_rows",
            "Rows flagged for recalculation (recalc > 0), by level",
            m.backlog.clone(),
        );
        registry.register_with_unit(
            "oldest_flag_age",
            "Now minus the datetime of the oldest flagged row (read as UTC), by level; 0 when none",
            Unit::Seconds,
            m.oldest_age.clone(),
        );
        registry.register(
            "store_errors",
            "Store failures by kind",
            m.store_errors.clone(),
        );
        registry.register(
            "reconnects",
            "Connections to the store opened after a failure",
            m.reconnects.clone(),
        );
        registry.register(
            "last_poll_timestamp_seconds",
            "Unix time of the last successful poll",
            m.last_poll.clone(),
        );
        registry.register(
            "ready",
            "1 when /readyz answers 200 (the store reachable, the schema current, a recent poll), else 0",
            m.ready.clone(),
        );
        registry.register(
            "equations_skipped",
            "Equations left out by the latest load: they do not parse or check, or read each other in a cycle (see recalcd status)",
            m.equations_skipped.clone(),
        );
        for level in Level::ALL {
            let l = level_label(level);
            let _ = m.processed.get_or_create(&l);
            let _ = m.backlog.get_or_create(&l);
            let _ = m.oldest_age.get_or_create(&l);
        }
        for kind in ["row", "equation", "panic"] {
            let _ = m.failures.get_or_create(&[("kind", kind)]);
        }
        Metrics { registry, ..m }
    }

    /// Counts a successful batch (an idle one only moves the last-poll time and zeroes
    /// the backlog: it polled every level and found nothing flagged).
    pub fn batch_done(&self, report: &Report, elapsed: Duration) {
        self.last_poll.set(unix_now());
        if report.is_idle() {
            for level in Level::ALL {
                self.backlog.get_or_create(&level_label(level)).set(0);
                self.oldest_age.get_or_create(&level_label(level)).set(0.0);
            }
            return;
        }
        self.batch_duration.observe(elapsed.as_secs_f64());
        self.flagged.inc_by(as_u64(report.flagged));
        for (level, n) in [
            (Level::Data, report.data),
            (Level::Job, report.jobs),
            (Level::Day, report.days),
        ] {
            self.processed
                .get_or_create(&level_label(level))
                .inc_by(as_u64(n));
        }
        self.skipped.inc_by(as_u64(report.skipped));
        self.followed.inc_by(as_u64(report.followed));
        self.failure("row", report.failed_rows);
        self.failure("equation", report.errors);
    }

    /// Counts a batch that panicked.
    pub fn panicked(&self) {
        self.failure("panic", 1);
    }

    /// Counts a store failure under its kind.
    pub fn store_error(&self, e: &StoreError) {
        self.store_errors
            .get_or_create(&[("kind", store_error_kind(e))])
            .inc();
    }

    /// Counts a connection opened after a failure.
    pub fn reconnected(&self) {
        self.reconnects.inc();
    }

    /// Sets the backlog gauges of one level; `now` is the current UTC time.
    pub fn backlog(&self, backlog: &Backlog, now: NaiveDateTime) {
        let l = level_label(backlog.level);
        self.backlog
            .get_or_create(&l)
            .set(i64::try_from(backlog.flagged).unwrap_or(i64::MAX));
        let age = backlog.oldest.map_or(0.0, |oldest| {
            (now - oldest).num_milliseconds().max(0) as f64 / 1000.0
        });
        self.oldest_age.get_or_create(&l).set(age);
    }

    /// [`Metrics::backlog`] for every level of a status, at the current time.
    pub fn backlogs(&self, backlogs: &[Backlog]) {
        let now = Utc::now().naive_utc();
        for b in backlogs {
            self.backlog(b, now);
        }
    }

    /// Sets `recalcd_equations_skipped` from what the latest load left out.
    pub fn equations_loaded(&self, loaded: &Loaded) {
        self.equations_skipped
            .set(i64::try_from(loaded.skipped).unwrap_or(i64::MAX));
    }

    /// Sets `recalcd_ready`.
    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    /// The metrics in the OpenMetrics text format (served as [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an encoder error would be a bug in a
        // metric's encoding, and a partial page is still better than none.
        let _ = encode(&mut out, &self.registry);
        out
    }

    fn failure(&self, kind: &'static str, n: usize) {
        self.failures
            .get_or_create(&[("kind", kind)])
            .inc_by(as_u64(n));
    }
}

/// The `kind` label of a store failure.
pub fn store_error_kind(e: &StoreError) -> &'static str {
    match e {
        StoreError::BadUrl { .. } | StoreError::IlpRefused { .. } => "config",
        StoreError::Connect { .. } => "connect",
        StoreError::ConnectTimeout { .. } => "connect_timeout",
        StoreError::MissingTable { .. }
        | StoreError::Column { .. }
        | StoreError::Outdated { .. }
        | StoreError::TooNew { .. } => "schema",
        StoreError::Query { .. } | StoreError::Closed { .. } | StoreError::Ilp { .. } => "query",
        StoreError::Unexpected { .. } | StoreError::Unsupported { .. } => "unexpected",
    }
}

fn level_label(level: Level) -> Label {
    [("level", level.as_str())]
}

fn as_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample whose line starts with `series` (name and labels).
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn skipped_equations_are_a_gauge_of_the_latest_load() {
        let m = Metrics::new();
        assert_eq!(sample(&m.render(), "recalcd_equations_skipped"), Some(0.0));
        let loaded = |skipped| Loaded {
            equations: 10,
            skipped,
            constants: 0,
        };
        m.equations_loaded(&loaded(4));
        assert_eq!(sample(&m.render(), "recalcd_equations_skipped"), Some(4.0));
        m.equations_loaded(&loaded(1));
        assert_eq!(sample(&m.render(), "recalcd_equations_skipped"), Some(1.0));
    }

    #[test]
    fn a_batch_is_counted_by_level_and_kind() {
        let m = Metrics::new();
        let report = Report {
            flagged: 7,
            data: 5,
            jobs: 2,
            days: 1,
            failed_rows: 1,
            errors: 3,
            skipped: 1,
            followed: 1,
            ..Report::default()
        };
        m.batch_done(&report, Duration::from_millis(30));
        m.batch_done(&report, Duration::from_millis(30));
        m.batch_done(&Report::default(), Duration::from_millis(1));
        let text = m.render();
        let v = |s| sample(&text, s);
        assert_eq!(v("recalcd_rows_flagged_total"), Some(14.0));
        assert_eq!(
            v(r#"recalcd_rows_processed_total{level="data"}"#),
            Some(10.0)
        );
        assert_eq!(v(r#"recalcd_rows_processed_total{level="job"}"#), Some(4.0));
        assert_eq!(v(r#"recalcd_rows_processed_total{level="day"}"#), Some(2.0));
        assert_eq!(v(r#"recalcd_failures_total{kind="row"}"#), Some(2.0));
        assert_eq!(v(r#"recalcd_failures_total{kind="equation"}"#), Some(6.0));
        assert_eq!(v(r#"recalcd_failures_total{kind="panic"}"#), Some(0.0));
        assert_eq!(v("recalcd_rows_skipped_total"), Some(2.0));
        // The idle poll is not a batch.
        assert_eq!(v("recalcd_batch_duration_seconds_count"), Some(2.0));
        assert_eq!(
            v(r#"recalcd_batch_duration_seconds_bucket{le="0.05"}"#),
            Some(2.0)
        );
        assert!(v("recalcd_last_poll_timestamp_seconds").is_some_and(|t| t > 0.0));
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn backlog_gauges_follow_the_status_and_an_idle_poll_zeroes_them() {
        let m = Metrics::new();
        let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
        m.backlog(
            &Backlog {
                level: Level::Job,
                table: "job".into(),
                flagged: 42,
                oldest: Some(at("2026-01-01 00:00:00")),
            },
            at("2026-01-01 00:01:30"),
        );
        let text = m.render();
        assert_eq!(
            sample(&text, r#"recalcd_backlog_rows{level="job"}"#),
            Some(42.0)
        );
        assert_eq!(
            sample(&text, r#"recalcd_oldest_flag_age_seconds{level="job"}"#),
            Some(90.0)
        );
        assert_eq!(
            sample(&text, r#"recalcd_backlog_rows{level="data"}"#),
            Some(0.0)
        );
        m.batch_done(&Report::default(), Duration::ZERO);
        let text = m.render();
        assert_eq!(
            sample(&text, r#"recalcd_backlog_rows{level="job"}"#),
            Some(0.0)
        );
        assert_eq!(
            sample(&text, r#"recalcd_oldest_flag_age_seconds{level="job"}"#),
            Some(0.0)
        );
    }

    #[test]
    fn store_errors_and_reconnects_are_counted() {
        let m = Metrics::new();
        let e = StoreError::MissingTable {
            table: "data".into(),
        };
        m.store_error(&e);
        m.store_error(&StoreError::ConnectTimeout {
            url: "postgres://h/d".into(),
            timeout: Duration::from_secs(1),
        });
        m.store_error(&e);
        m.reconnected();
        m.panicked();
        let text = m.render();
        assert_eq!(
            sample(&text, r#"recalcd_store_errors_total{kind="schema"}"#),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"recalcd_store_errors_total{kind="connect_timeout"}"#
            ),
            Some(1.0)
        );
        assert_eq!(sample(&text, "recalcd_reconnects_total"), Some(1.0));
        assert_eq!(
            sample(&text, r#"recalcd_failures_total{kind="panic"}"#),
            Some(1.0)
        );
    }
}
