//! [`Monitor`]: the one handle the daemon loop reports to. Each event updates both the
//! [`Health`] (for `/readyz` and the systemd notifications) and the [`Metrics`] (for
//! `/metrics`), so the loop makes one call per event.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::batch::{Loaded, Report};
use super::health::{Busy, Health};
use super::metrics::{Metrics, BACKLOG_REFRESH};
use crate::store::{Backlog, StoreError};

/// What the daemon loop reports to. Cloning gives another handle to the same state.
#[derive(Debug, Clone, Default)]
pub struct Monitor {
    /// Shared by the loop, the HTTP handlers and the systemd tasks.
    inner: Arc<Inner>,
}

/// What a [`Monitor`] keeps.
#[derive(Debug, Default)]
struct Inner {
    /// Readiness and the watchdog's view of the loop.
    health: Health,
    /// The Prometheus metrics.
    metrics: Metrics,
    /// Connections opened so far: every one after the first is a reconnect.
    connections: AtomicU64,
    /// When the backlog gauges need reading again.
    backlog: Mutex<BacklogClock>,
}

/// When the backlog was last read, and whether the last poll found nothing.
#[derive(Debug, Default)]
struct BacklogClock {
    /// The last read from the store; `None` before the first on this connection.
    read_at: Option<Instant>,
    /// The last poll found nothing flagged, so the gauges are 0 and exact.
    idle: bool,
}

impl Monitor {
    /// A monitor with fresh health and metrics.
    pub fn new() -> Monitor {
        Monitor::default()
    }

    /// The loop's health.
    pub fn health(&self) -> &Health {
        &self.inner.health
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// A connection was opened and the schema checked.
    pub fn connected(&self) {
        if self.inner.connections.fetch_add(1, Ordering::Relaxed) > 0 {
            self.inner.metrics.reconnected();
        }
        self.inner.health.connected();
        if let Ok(mut clock) = self.inner.backlog.lock() {
            *clock = BacklogClock::default();
        }
    }

    /// The store failed (connecting, a statement, a batch); the loop retries.
    pub fn store_failed(&self, e: &StoreError) {
        self.inner.metrics.store_error(e);
        self.inner.health.failed(e);
    }

    /// A batch panicked; the loop reconnects.
    pub fn panicked(&self) {
        self.inner.metrics.panicked();
        self.inner.health.panicked();
    }

    /// A batch (or an idle poll) succeeded in `elapsed`.
    pub fn batch_done(&self, report: &Report, elapsed: Duration) {
        self.inner.metrics.batch_done(report, elapsed);
        self.inner.health.polled();
        if let Ok(mut clock) = self.inner.backlog.lock() {
            clock.idle = report.is_idle();
        }
    }

    /// Whether the loop should read the backlog from the store now: never after an idle
    /// poll (the gauges are 0 then), else at most every [`BACKLOG_REFRESH`]. Answering
    /// `true` starts the next period.
    pub fn backlog_due(&self) -> bool {
        let Ok(mut clock) = self.inner.backlog.lock() else {
            return false;
        };
        if clock.idle
            || clock
                .read_at
                .is_some_and(|at| at.elapsed() < BACKLOG_REFRESH)
        {
            return false;
        }
        clock.read_at = Some(Instant::now());
        true
    }

    /// The backlog read from the store.
    pub fn backlog(&self, backlog: &[Backlog]) {
        self.inner.metrics.backlogs(backlog);
    }

    /// Equations and constants were (re)loaded.
    pub fn equations_loaded(&self, loaded: &Loaded) {
        self.inner.metrics.equations_loaded(loaded);
    }

    /// A failure to read the backlog: counted, but the loop carries on.
    pub fn backlog_failed(&self, e: &StoreError) {
        self.inner.metrics.store_error(e);
    }

    /// Marks work in progress until the guard is dropped (see [`Health::busy`]).
    pub fn busy(&self) -> Busy<'_> {
        self.inner.health.busy()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backlog_is_read_on_connect_then_not_while_idle() {
        let m = Monitor::new();
        m.connected();
        assert!(m.backlog_due());
        assert!(!m.backlog_due(), "not again within the period");
        m.batch_done(&Report::default(), Duration::ZERO);
        assert!(!m.backlog_due(), "an idle poll says it all");
        m.connected();
        assert!(m.backlog_due(), "read again on a new connection");
        assert!(m
            .metrics()
            .render()
            .contains("recalcd_reconnects_total 1\n"));
    }
}
