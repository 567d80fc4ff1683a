//! `recalcd run`: the daemon loop around [`Recalculator::run_batch`].
//!
//! **Loop.** Connect, check the schema, read the equations' [`Revision`] and load the
//! [`Recalculator`]; then run batches back to back while rows are flagged, and when
//! nothing is flagged wait `poll.interval` — or less: on PostgreSQL (with
//! `poll.notify`) a second connection `LISTEN`s for the notifications the triggers send
//! after producers' writes, and one ends the wait at once ([`Wakeups`]); it is opened
//! before the first poll and reconnected with the main connection (without it the
//! daemon polls). Each batch leases its devices ([`Store::lease`]), so several daemons
//! can share one store. Before every batch one tiny query asks for the revision; when
//! it moved, the equations and constants are reloaded (`equations reloaded` in the
//! log). Memory follows `poll.batch_size`, never the backlog: nothing
//! is kept from one batch to the next but the compiled equations.
//!
//! **Backlogs.** A batch that came back full (`poll.batch_size` flagged rows) says more
//! is waiting: the daemon then drains it as `recalcd once` does ([`run_while`]), each
//! batch written on a second connection while the next is prepared, for at most
//! [`DRAIN_FOR`] at a time — then it looks at the revision and the backlog again. The
//! second connection is opened for the drain and closed after it; where the server
//! refuses it, the batches run one after another.
//!
//! **Shutdown.** The shutdown future is a parameter (the CLI passes SIGTERM / SIGINT,
//! tests their own). It is only listened to at safe points: while connecting, loading
//! the equations, reading the revision, and waiting. A batch that has started is always
//! finished — its write-back is one transaction on PostgreSQL, so it is written
//! completely or not at all — and no batch starts once shutdown was requested (in a
//! drain, the batch being written lands and the one prepared meanwhile is dropped
//! unwritten: its rows are still flagged). Killing
//! the process instead (SIGKILL, a crash) loses at most the batch's uncommitted work:
//! its rows stay flagged and are computed again on restart.
//!
//! **Failures.** Nothing the store or the data does stops the daemon, except a
//! configuration it can never use ([`StoreError::BadUrl`], a schema newer than this
//! recalcd: [`DaemonError`]). Any other failure — connecting, a statement, a batch — is
//! logged with its fields (`error`, `transient`, `retry_in_ms`), the connection is
//! dropped, and after a back-off (500 ms doubling up to `poll.max_backoff`) the daemon
//! reconnects and carries on. A missing or outdated schema is waited out at the cap
//! (someone has to run `recalcd migrate`). With `database.give_up_after` set, the
//! daemon instead exits with [`DaemonError::GaveUp`] once the store has been failing
//! that long without a successful batch in between. The back-off starts again from
//! 500 ms after the first batch or poll that succeeds. Bad equations are left out when loaded (and
//! logged); a row whose outputs cannot be computed is written with `recalc = -1` and
//! error records; neither affects other rows. Should a batch ever panic (a bug: the
//! engine returns failures as values), the panic is caught and handled like a store
//! failure. A failure that repeats for the same rows (a store error caused by one row's
//! content, a panic) is retried forever at the back-off cap: the daemon stays up and
//! says so in its log, but those rows' batch makes no progress until the cause is
//! fixed.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tracing::{error, info, warn};

use super::batch::{run_while, Recalculator, Report};
use super::monitor::Monitor;
use crate::config::Config;
use crate::store::{self, AnyStore, Revision, Store, StoreError, Wakeups};

/// The first wait after a failure; it doubles with each failure in a row.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// The longest a backlog is drained without looking at the equations' revision and the
/// backlog again (the batch prepared when it ends is dropped: about one in a hundred).
pub const DRAIN_FOR: Duration = Duration::from_secs(10);

/// Batches in a row whose every row was left for a producer's newer write before the
/// daemon waits a poll interval instead of trying again at once.
const STALLED_BATCHES: u32 = 3;

/// Why the daemon gave up: the configuration points at something it can never use.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The store cannot be used as configured, whatever the daemon waits for.
    #[error("the store cannot be used as configured")]
    Unusable(#[source] StoreError),
    /// The store stayed unusable for `database.give_up_after`.
    #[error("giving up: the store has been unusable for {after:?} (database.give_up_after)")]
    GaveUp {
        /// The configured give-up time.
        after: Duration,
        /// The last failure.
        #[source]
        source: StoreError,
    },
}

/// Runs the daemon until `shutdown` resolves, then returns once the batch in flight (if
/// any) is written.
///
/// # Errors
/// [`DaemonError::Unusable`] for a bad database URL or a schema newer than this
/// recalcd; [`DaemonError::GaveUp`] when `database.give_up_after` is set and passed;
/// every other failure is logged and retried.
pub async fn run<F: Future<Output = ()>>(config: &Config, shutdown: F) -> Result<(), DaemonError> {
    run_monitored(config, &Monitor::new(), shutdown).await
}

/// [`run`], reporting what happens to `monitor` (health and metrics).
///
/// # Errors
/// As [`run`].
pub async fn run_monitored<F: Future<Output = ()>>(
    config: &Config,
    monitor: &Monitor,
    shutdown: F,
) -> Result<(), DaemonError> {
    let mut stop = Shutdown::new(shutdown);
    let mut backoff = Backoff::new(config.poll.max_backoff);
    info!(
        url = %config.database.redacted_url(),
        interval_ms = millis(config.poll.interval),
        batch_size = config.poll.batch_size,
        "daemon starting"
    );
    loop {
        let busy = monitor.busy();
        let Some(opened) = stop.or(Session::open(config)).await else {
            break;
        };
        drop(busy);
        if let Err(e) = &opened {
            monitor.store_failed(e);
        }
        let mut session = match opened {
            Ok(session) => {
                monitor.connected();
                monitor.equations_loaded(&session.recalc.loaded());
                session
            }
            Err(e) if is_unusable(&e) => {
                error!(error = %Chain(&e), "giving up: the store cannot be used as configured");
                return Err(DaemonError::Unusable(e));
            }
            Err(e) => {
                if let Some(after) = config.database.give_up_after {
                    if backoff.failing_for() >= after {
                        let give_up_after_ms = millis(after);
                        error!(
                            error = %Chain(&e),
                            give_up_after_ms,
                            "giving up: the store stayed unusable"
                        );
                        return Err(DaemonError::GaveUp { after, source: e });
                    }
                }
                let wait = if is_schema_problem(&e) {
                    backoff.at_cap()
                } else {
                    backoff.failed()
                };
                log_failure("cannot use the store", &e, wait);
                if !stop.sleep(wait).await {
                    break;
                }
                continue;
            }
        };
        match session
            .serve(config, &mut stop, &mut backoff, monitor)
            .await
        {
            Ok(()) => break,
            Err(failure) => {
                drop(session);
                let wait = backoff.failed();
                match failure {
                    Failure::Store(e) => {
                        monitor.store_failed(&e);
                        log_failure("store failure; reconnecting", &e, wait);
                    }
                    Failure::Panic(reason) => {
                        monitor.panicked();
                        error!(
                            reason = %reason,
                            retry_in_ms = millis(wait),
                            "a batch panicked (a bug in recalcd); reconnecting"
                        );
                    }
                }
                if !stop.sleep(wait).await {
                    break;
                }
            }
        }
    }
    info!("stopped");
    Ok(())
}

/// Why serving a connection ended before shutdown.
enum Failure {
    /// The store failed.
    Store(StoreError),
    /// A batch panicked. The engine is written not to (failures are values), but one
    /// bad row must not take the daemon down should it ever happen: the panic is
    /// caught, logged and handled like a store failure.
    Panic(String),
}

impl Failure {
    /// A caught panic, with its message where it has one.
    fn panicked(p: Box<dyn std::any::Any + Send>) -> Failure {
        Failure::Panic(
            p.downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string()),
        )
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

/// A failure no waiting can cure: give up with a non-zero exit.
fn is_unusable(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::BadUrl { .. } | StoreError::TooNew { .. } | StoreError::IlpRefused { .. }
    )
}

/// The schema is missing or outdated: someone has to run `recalcd migrate`.
fn is_schema_problem(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::MissingTable { .. } | StoreError::Column { .. } | StoreError::Outdated { .. }
    )
}

/// Logs a failure the daemon waits out: a warning when it is transient (the store is
/// restarting, unreachable), an error when a person should look at it.
fn log_failure(message: &'static str, e: &StoreError, wait: Duration) {
    let (error, transient, retry_in_ms) = (Chain(e), e.is_transient(), millis(wait));
    if transient {
        warn!(error = %error, transient, retry_in_ms, "{message}");
    } else {
        error!(error = %error, transient, retry_in_ms, "{message}");
    }
}

/// An error and its causes on one line (`a: b: c`), skipping a cause whose text its
/// parent already shows (the driver repeats its cause in its own message).
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = self.0.to_string();
        f.write_str(&shown)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            let text = c.to_string();
            if !text.is_empty() && !shown.contains(&text) {
                write!(f, ": {text}")?;
                shown = text;
            }
            cause = c.source();
        }
        Ok(())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One connection and what was loaded through it.
struct Session {
    /// The connection; dropped (and so closed) on any failure.
    store: AnyStore,
    /// The compiled equations and constants.
    recalc: Recalculator,
    /// The revision they were loaded at; `None` when the store could not say (they are
    /// then never reloaded on this connection).
    revision: Option<Revision>,
    /// Whether "cannot read the revision" was logged already on this connection.
    revision_warned: bool,
    /// Notifications that rows were flagged (PostgreSQL with `poll.notify`); `None`:
    /// poll every interval.
    wakeups: Option<Wakeups>,
    /// Keeps the built indexes up to date; `None` when no index is declared.
    maintainer: Option<super::index::Maintainer>,
}

impl Session {
    /// Connects, checks the schema and loads the equations.
    async fn open(config: &Config) -> Result<Session, StoreError> {
        let store = store::connect(config).await?;
        store.check_schema().await?;
        // Listening before the first poll: nothing flagged in between is missed. Without
        // it (e.g. no connection left under `max_connections`) the daemon still works,
        // polling; it tries again with the next connection.
        let wakeups = if config.poll.notify {
            store.wakeups().await.unwrap_or_else(|e| {
                warn!(
                    error = %Chain(&e),
                    "cannot listen for notifications; polling every interval"
                );
                None
            })
        } else {
            None
        };
        let mut revision_warned = false;
        // Read before loading, so a change made while loading is seen next time.
        let revision = current_revision(&store, &mut revision_warned).await?;
        let maintainer = super::index::Maintainer::new(config);
        let recalc = recalculator(&store, config, maintainer.as_ref()).await?;
        info!(
            dialect = %store.dialect(),
            notifications = wakeups.is_some(),
            "connected"
        );
        Ok(Session {
            store,
            recalc,
            revision,
            revision_warned,
            wakeups,
            maintainer,
        })
    }

    /// Brings the built indexes up to date with the write-backs so far (and, at
    /// start-up, with what a crash left marked). A failure is logged and retried with
    /// the next batch: the data rows never wait for the index.
    async fn maintain(&mut self) {
        let Some(m) = self.maintainer.as_mut() else {
            return;
        };
        if let Err(e) = m.catch_up(&self.store).await {
            warn!(error = %Chain(&e), "cannot bring the indexes up to date; retrying after the next batch");
        }
    }

    /// Waits `interval`, or until a notification says rows were flagged: `false` when
    /// shutdown was requested meanwhile.
    async fn idle<F: Future<Output = ()>>(
        &mut self,
        interval: Duration,
        stop: &mut Shutdown<F>,
    ) -> Result<bool, StoreError> {
        let Some(wakeups) = self.wakeups.as_mut() else {
            return Ok(stop.sleep(interval).await);
        };
        match stop
            .or(tokio::time::timeout(interval, wakeups.wait()))
            .await
        {
            None => Ok(false),
            Some(Err(_elapsed)) => Ok(true),
            Some(Ok(woken)) => woken.map(|()| true),
        }
    }

    /// Polls and computes until shutdown is requested (`Ok`) or something fails.
    async fn serve<F: Future<Output = ()>>(
        &mut self,
        config: &Config,
        stop: &mut Shutdown<F>,
        backoff: &mut Backoff,
        monitor: &Monitor,
    ) -> Result<(), Failure> {
        let mut stalled = 0;
        loop {
            let busy = monitor.busy();
            let Some(refreshed) = stop.or(self.refresh(config)).await else {
                return Ok(());
            };
            refreshed?;
            monitor.equations_loaded(&self.recalc.loaded());
            // Never start a batch once shutdown was requested.
            if stop.requested() {
                return Ok(());
            }
            if monitor.backlog_due() && stop.or(self.read_backlog(monitor)).await.is_none() {
                return Ok(());
            }
            let started = Instant::now();
            // Not raced with shutdown: a batch is finished once started. After a panic
            // the session is dropped, so nothing half-done is used again.
            let batch = AssertUnwindSafe(self.recalc.run_batch(&mut self.store));
            let report = batch.catch_unwind().await.map_err(Failure::panicked)??;
            drop(busy);
            let elapsed = started.elapsed();
            monitor.batch_done(&report, elapsed);
            backoff.reset();
            self.maintain().await;
            if report.is_idle() {
                stalled = 0;
                if !self.idle(config.poll.interval, stop).await? {
                    return Ok(());
                }
                continue;
            }
            log_batch(&report, elapsed);
            let wrote = report.data + report.jobs + report.days;
            stalled = if wrote == 0 { stalled + 1 } else { 0 };
            if stalled >= STALLED_BATCHES {
                info!(
                    batches = stalled,
                    "batches left every row for producers' newer writes; waiting a poll interval"
                );
                stalled = 0;
                if !stop.sleep(config.poll.interval).await {
                    return Ok(());
                }
            } else if report.flagged >= config.poll.batch_size && !stop.requested() {
                self.drain(stop, monitor).await?;
            }
        }
    }

    /// Drains a backlog, each batch written while the next is prepared
    /// ([`run_while`]), until nothing is flagged, shutdown is requested or
    /// [`DRAIN_FOR`] has passed.
    async fn drain<F: Future<Output = ()>>(
        &mut self,
        stop: &mut Shutdown<F>,
        monitor: &Monitor,
    ) -> Result<(), Failure> {
        // Each batch is a piece of work of its own for the watchdog, not the drain.
        let mut busy = Some(monitor.busy());
        let started = Instant::now();
        let mut last = started;
        let run = run_while(&self.recalc, &mut self.store, |report| {
            let elapsed = last.elapsed();
            last = Instant::now();
            busy = None; // first: dropping a guard clears the mark
            busy = Some(monitor.busy());
            monitor.batch_done(report, elapsed);
            if !report.is_idle() {
                log_batch(report, elapsed);
            }
            !stop.requested() && started.elapsed() < DRAIN_FOR
        });
        let (total, elapsed) = AssertUnwindSafe(run)
            .catch_unwind()
            .await
            .map_err(Failure::panicked)??;
        info!(
            data = total.data,
            jobs = total.jobs,
            days = total.days,
            elapsed_ms = millis(elapsed),
            "pipelined batches written"
        );
        Ok(())
    }

    /// Reads the backlog for the metrics; a failure is counted and logged, not fatal.
    async fn read_backlog(&self, monitor: &Monitor) {
        // One error record, not none: `LIMIT 0` is not read alike by every dialect.
        match self.store.status(1).await {
            Ok(status) => monitor.backlog(&status.backlog),
            Err(e) => {
                monitor.backlog_failed(&e);
                warn!(error = %Chain(&e), "cannot read the backlog for the metrics");
            }
        }
    }

    /// Reloads the equations and constants if their revision moved.
    async fn refresh(&mut self, config: &Config) -> Result<(), StoreError> {
        let Some(revision) = current_revision(&self.store, &mut self.revision_warned).await? else {
            return Ok(());
        };
        if self.revision == Some(revision) {
            return Ok(());
        }
        let recalc = recalculator(&self.store, config, self.maintainer.as_ref()).await?;
        let loaded = recalc.loaded();
        info!(
            equations = loaded.equations,
            skipped = loaded.skipped,
            constants = loaded.constants,
            "equations reloaded"
        );
        self.recalc = recalc;
        self.revision = Some(revision);
        Ok(())
    }
}

/// Loads the equations and constants, marking the declared indexes with every
/// write-back and recording what it wrote for `maintainer`.
async fn recalculator(
    store: &AnyStore,
    config: &Config,
    maintainer: Option<&super::index::Maintainer>,
) -> Result<Recalculator, StoreError> {
    Ok(
        Recalculator::load(store, config.engine.clone(), config.poll.batch_size)
            .await?
            .with_indexes(config.index.clone())
            .with_written(maintainer.map(super::index::Maintainer::written)),
    )
}

/// The store's revision; `None` (logged once per connection) when it cannot say for a
/// reason retrying will not cure, so that the daemon keeps computing with what it has.
async fn current_revision(
    store: &AnyStore,
    warned: &mut bool,
) -> Result<Option<Revision>, StoreError> {
    match store.revision().await {
        Ok(r) => Ok(Some(r)),
        Err(e) if e.is_transient() => Err(e),
        Err(e) => {
            if !*warned {
                warn!(
                    error = %Chain(&e),
                    "cannot read the revision of the equations; changes to them are picked up only after a reconnect"
                );
                *warned = true;
            }
            Ok(None)
        }
    }
}

fn log_batch(report: &Report, elapsed: Duration) {
    info!(
        rows = report.flagged,
        data = report.data,
        jobs = report.jobs,
        days = report.days,
        failures = report.failed_rows,
        errors = report.errors,
        skipped = report.skipped,
        elapsed_ms = millis(elapsed),
        "batch written"
    );
}

/// The shutdown future, polled only at safe points, and whether it has resolved.
struct Shutdown<F> {
    /// The future the caller passed; never polled again once it resolved.
    signal: Pin<Box<F>>,
    /// It resolved.
    requested: bool,
}

impl<F: Future<Output = ()>> Shutdown<F> {
    fn new(signal: F) -> Self {
        Shutdown {
            signal: Box::pin(signal),
            requested: false,
        }
    }

    /// Whether shutdown was requested (checks without waiting).
    fn requested(&mut self) -> bool {
        if !self.requested && self.signal.as_mut().now_or_never().is_some() {
            self.requested = true;
        }
        self.requested
    }

    /// Runs `work` unless shutdown is requested first (`None`; `work` is dropped).
    async fn or<T>(&mut self, work: impl Future<Output = T>) -> Option<T> {
        if self.requested {
            return None;
        }
        tokio::select! {
            biased;
            () = self.signal.as_mut() => {
                self.requested = true;
                None
            }
            value = work => Some(value),
        }
    }

    /// Waits `d`; `false` if shutdown was requested meanwhile.
    async fn sleep(&mut self, d: Duration) -> bool {
        self.or(tokio::time::sleep(d)).await.is_some()
    }
}

/// Exponential back-off: [`FIRST_BACKOFF`], doubling after each failure, up to a cap.
#[derive(Debug)]
struct Backoff {
    /// The wait after the next failure.
    next: Duration,
    /// The cap (`poll.max_backoff`).
    max: Duration,
    /// When the current run of failures began (for `database.give_up_after`).
    failing_since: Option<Instant>,
}

impl Backoff {
    fn new(max: Duration) -> Self {
        Backoff {
            next: FIRST_BACKOFF.min(max),
            max,
            failing_since: None,
        }
    }

    /// How long the current run of failures has lasted; a run starts with the first
    /// failure counted by this or [`Backoff::failed`] / [`Backoff::at_cap`].
    fn failing_for(&mut self) -> Duration {
        self.failing_since
            .get_or_insert_with(Instant::now)
            .elapsed()
    }

    /// The wait after a failure; the next one is twice as long (up to the cap).
    fn failed(&mut self) -> Duration {
        self.failing_since.get_or_insert_with(Instant::now);
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    /// The cap, for failures that take a person to fix.
    fn at_cap(&mut self) -> Duration {
        self.failing_since.get_or_insert_with(Instant::now);
        self.next = self.max;
        self.max
    }

    /// After a success: start again from [`FIRST_BACKOFF`].
    fn reset(&mut self) {
        self.failing_since = None;
        self.next = FIRST_BACKOFF.min(self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(3));
        let waits: Vec<u64> = (0..5).map(|_| millis(b.failed())).collect();
        assert_eq!(waits, [500, 1000, 2000, 3000, 3000]);
        b.reset();
        assert_eq!(millis(b.failed()), 500);
        assert_eq!(millis(b.at_cap()), 3000);
        assert_eq!(millis(b.failed()), 3000);
        let mut small = Backoff::new(Duration::from_millis(200));
        assert_eq!(millis(small.failed()), 200);
    }

    #[test]
    fn an_error_is_shown_with_its_causes_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] Middle);
        #[derive(Debug, thiserror::Error)]
        #[error("middle: inner")]
        struct Middle(#[source] Inner);
        #[derive(Debug, thiserror::Error)]
        #[error("inner")]
        struct Inner;
        assert_eq!(
            Chain(&Outer(Middle(Inner))).to_string(),
            "outer: middle: inner"
        );
    }

    #[tokio::test]
    async fn shutdown_interrupts_waits_and_is_remembered() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut stop = Shutdown::new(async move {
            let _ = rx.await;
        });
        assert!(!stop.requested());
        assert!(stop.sleep(Duration::from_millis(10)).await);
        tx.send(()).unwrap();
        assert!(!stop.sleep(Duration::from_secs(3600)).await);
        assert!(stop.requested());
        // Never polled again: work is refused at once.
        assert_eq!(stop.or(async { 1 }).await, None);
    }

    #[tokio::test]
    async fn a_bad_url_gives_up_and_an_unreachable_store_is_retried_until_shutdown() {
        let mut config = Config::default();
        config.database.url = "postgres://u@h:notaport/db".into();
        let e = run(&config, std::future::pending()).await.unwrap_err();
        assert!(matches!(
            e,
            DaemonError::Unusable(StoreError::BadUrl { .. })
        ));

        // Nothing listens on port 1: refused at once, retried, until shutdown.
        config.database.url = "postgres://u@127.0.0.1:1/db".into();
        config.poll.max_backoff = Duration::from_millis(20);
        let stop = tokio::time::sleep(Duration::from_millis(300));
        run(&config, stop).await.expect("stops cleanly");

        // … or until `database.give_up_after`.
        config.database.give_up_after = Some(Duration::from_millis(100));
        let e = run(&config, std::future::pending()).await.unwrap_err();
        assert!(
            matches!(
                e,
                DaemonError::GaveUp {
                    source: StoreError::Connect { .. },
                    ..
                }
            ),
            "{e:?}"
        );
    }
}
