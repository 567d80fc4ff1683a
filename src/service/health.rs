//! What `/readyz` and the systemd watchdog know about the daemon loop: whether the store
//! is reachable and its schema current, when the last poll succeeded, whether the loop
//! is stuck in one piece of work, and whether it is shutting down.
//!
//! **Readiness.** Ready when the last attempt to use the store succeeded (so it is
//! reachable and the schema current: the daemon checks the schema on every connect),
//! a poll succeeded within the [`ready_window`] (3 × `poll.interval` + 30 s: a few
//! missed polls, plus room for a batch that takes a while), and shutdown was not
//! requested. Otherwise not ready, with a one-line reason.
//!
//! **Stuck.** The loop marks the work it does (connecting, reading the revision, a
//! batch) with a [`Busy`] guard, but never its waits (the poll interval, the back-off
//! while the store is away: those are timers, and restarting would not help). The loop
//! is stuck when one piece of work has lasted longer than a limit, e.g. a statement
//! hanging without `database.statement_timeout`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::daemon::Chain;
use crate::store::StoreError;

/// Slack added to 3 × `poll.interval` in [`ready_window`].
pub const READY_MARGIN: Duration = Duration::from_secs(30);

/// How recent the last successful poll must be for the daemon to be ready.
pub fn ready_window(poll_interval: Duration) -> Duration {
    poll_interval.saturating_mul(3).saturating_add(READY_MARGIN)
}

/// The daemon loop's state, shared with the HTTP endpoint and the systemd notifier.
/// Cloning gives another handle to the same state.
#[derive(Debug, Clone)]
pub struct Health {
    /// A watch channel, so that a task can wait for the first poll; the sender is kept
    /// here, so it never closes while a handle exists.
    state: Arc<watch::Sender<State>>,
}

/// What is known.
#[derive(Debug, Clone, Default)]
struct State {
    /// The outcome of the last attempt to use the store.
    store: StoreState,
    /// When a poll last succeeded.
    last_poll: Option<Instant>,
    /// When the work in progress started; `None` while the loop waits.
    busy_since: Option<Instant>,
    /// Shutdown was requested.
    stopping: bool,
}

/// The outcome of the last attempt to use the store.
#[derive(Debug, Clone, Default)]
enum StoreState {
    /// Not connected yet.
    #[default]
    Connecting,
    /// Connected, schema checked; every statement since succeeded.
    Reachable,
    /// The schema is missing, outdated or different (someone has to migrate).
    Schema(String),
    /// The store failed (unreachable, a failing statement); the daemon retries.
    Failing(String),
}

/// Why the daemon is not ready: one line for `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady(pub String);

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Default for Health {
    fn default() -> Self {
        Health::new()
    }
}

impl Health {
    /// A loop that has not connected yet.
    pub fn new() -> Health {
        Health {
            state: Arc::new(watch::Sender::new(State::default())),
        }
    }

    /// A connection was opened and the schema checked.
    pub fn connected(&self) {
        self.state.send_modify(|s| s.store = StoreState::Reachable);
    }

    /// The store failed; the loop will retry.
    pub fn failed(&self, e: &StoreError) {
        let reason = Chain(e).to_string();
        let store = match e {
            StoreError::MissingTable { .. }
            | StoreError::Column { .. }
            | StoreError::Outdated { .. }
            | StoreError::TooNew { .. } => StoreState::Schema(reason),
            _ => StoreState::Failing(reason),
        };
        self.state.send_modify(|s| s.store = store);
    }

    /// A batch panicked; the loop drops the connection and retries.
    pub fn panicked(&self) {
        self.state.send_modify(|s| {
            s.store = StoreState::Failing("a batch panicked; reconnecting".into());
        });
    }

    /// A poll (and the batch it found, if any) succeeded.
    pub fn polled(&self) {
        self.state.send_modify(|s| {
            s.store = StoreState::Reachable;
            s.last_poll = Some(Instant::now());
        });
    }

    /// Shutdown was requested: not ready any more.
    pub fn stopping(&self) {
        self.state.send_modify(|s| s.stopping = true);
    }

    /// Marks work in progress until the guard is dropped.
    pub fn busy(&self) -> Busy<'_> {
        self.state
            .send_modify(|s| s.busy_since = Some(Instant::now()));
        Busy { health: self }
    }

    /// `Ok` when ready (see the module docs), else why not.
    ///
    /// # Errors
    /// [`NotReady`] with a one-line reason.
    pub fn readiness(&self, window: Duration) -> Result<(), NotReady> {
        let s = self.state.borrow();
        let not = |reason: String| Err(NotReady(reason));
        if s.stopping {
            return not("shutting down".into());
        }
        match &s.store {
            StoreState::Connecting => return not("not connected to the store yet".into()),
            StoreState::Schema(reason) => return not(format!("schema not current: {reason}")),
            StoreState::Failing(reason) => return not(format!("store unavailable: {reason}")),
            StoreState::Reachable => {}
        }
        match s.last_poll {
            None => not("no successful poll yet".into()),
            Some(at) if at.elapsed() > window => not(format!(
                "last successful poll {}s ago (more than {}s)",
                at.elapsed().as_secs(),
                window.as_secs()
            )),
            Some(_) => Ok(()),
        }
    }

    /// How long the work in progress has lasted, if it has lasted longer than `limit`.
    pub fn stuck(&self, limit: Duration) -> Option<Duration> {
        self.state
            .borrow()
            .busy_since
            .map(|at| at.elapsed())
            .filter(|d| *d > limit)
    }

    /// Resolves once a poll has succeeded (at once if one has).
    pub async fn first_poll(&self) {
        let mut rx = self.state.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|s| s.last_poll.is_some()).await;
    }
}

/// Work in progress (see [`Health::busy`]); ends when dropped.
#[derive(Debug)]
pub struct Busy<'a> {
    /// Whose work.
    health: &'a Health,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.health.state.send_modify(|s| s.busy_since = None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(60);

    fn reason(h: &Health, window: Duration) -> String {
        h.readiness(window).unwrap_err().0
    }

    #[test]
    fn ready_only_after_a_poll_on_a_working_store() {
        let h = Health::new();
        assert_eq!(reason(&h, WINDOW), "not connected to the store yet");
        h.connected();
        assert_eq!(reason(&h, WINDOW), "no successful poll yet");
        h.polled();
        assert_eq!(h.readiness(WINDOW), Ok(()));
        h.failed(&StoreError::Outdated {
            found: 1,
            needed: 2,
        });
        let r = reason(&h, WINDOW);
        assert!(r.starts_with("schema not current:"), "{r}");
        assert!(r.contains("recalcd migrate"), "{r}");
        h.failed(&StoreError::ConnectTimeout {
            url: "postgres://h/d".into(),
            timeout: Duration::from_secs(1),
        });
        assert!(reason(&h, WINDOW).starts_with("store unavailable: cannot connect"));
        h.connected();
        assert_eq!(h.readiness(WINDOW), Ok(()));
        // A poll older than the window.
        assert!(reason(&h, Duration::ZERO).starts_with("last successful poll"));
        h.panicked();
        assert!(reason(&h, WINDOW).contains("panicked"));
        h.polled();
        h.stopping();
        assert_eq!(reason(&h, WINDOW), "shutting down");
    }

    #[test]
    fn the_window_is_three_intervals_and_a_margin() {
        assert_eq!(
            ready_window(Duration::from_secs(5)),
            Duration::from_secs(45)
        );
    }

    #[test]
    fn only_work_counts_as_stuck() {
        let h = Health::new();
        assert_eq!(h.stuck(Duration::ZERO), None);
        let busy = h.busy();
        std::thread::sleep(Duration::from_millis(5));
        assert!(h.stuck(Duration::ZERO).is_some());
        assert_eq!(h.stuck(Duration::from_secs(3600)), None);
        drop(busy);
        assert_eq!(h.stuck(Duration::ZERO), None);
    }

    #[tokio::test]
    async fn first_poll_resolves_once_polled() {
        let h = Health::new();
        let waiter = tokio::spawn({
            let h = h.clone();
            async move { h.first_poll().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        h.polled();
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("resolves")
            .expect("task");
        // At once when it already happened.
        h.first_poll().await;
    }
}
