//! `recalcd run` as a whole: the daemon loop ([`super::daemon`]) with, beside it, the
//! HTTP endpoint ([`super::http`]) and the systemd notifications ([`super::systemd`]),
//! all fed by one [`Monitor`] and stopped together.
//!
//! Order: the HTTP address is bound first (a taken port is an error before anything
//! else happens), then the loop starts. When the shutdown future resolves, `STOPPING=1`
//! is sent and `/readyz` turns 503; the endpoint keeps answering until the loop has
//! finished its batch, then stops.

use std::future::Future;
use std::time::Duration;

use tracing::{info, warn};

use super::daemon::{self, DaemonError};
use super::health::ready_window;
use super::monitor::Monitor;
use super::{http, systemd};
use crate::config::Config;

/// How often the systemd `STATUS=` line is brought up to date.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// The longest the endpoint is given to finish its requests after the loop stopped.
const HTTP_DRAIN: Duration = Duration::from_secs(5);

/// Why `recalcd run` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The HTTP endpoint could not be started.
    #[error(transparent)]
    Listen(#[from] http::ListenError),
    /// The daemon gave up.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
}

/// Runs the daemon with its endpoint and notifications until `shutdown` resolves.
///
/// # Errors
/// [`ServiceError::Listen`] at start if `http.listen` cannot be bound;
/// [`ServiceError::Daemon`] if the loop gives up (see [`daemon::run`]).
pub async fn run<F: Future<Output = ()>>(config: &Config, shutdown: F) -> Result<(), ServiceError> {
    run_with(config, &Monitor::new(), shutdown).await
}

/// [`run`] reporting to a given `monitor` (tests read it).
///
/// # Errors
/// As [`run`].
pub async fn run_with<F: Future<Output = ()>>(
    config: &Config,
    monitor: &Monitor,
    shutdown: F,
) -> Result<(), ServiceError> {
    let window = ready_window(config.poll.interval);
    let listener = match config.http.listen {
        Some(addr) => Some(http::bind(addr).await?),
        None => None,
    };
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = listener.map(|listener| {
        if let Ok(addr) = listener.local_addr() {
            info!(%addr, "serving /healthz, /readyz and /metrics");
        }
        tokio::spawn(http::serve(listener, monitor.clone(), window, async {
            let _ = http_stopped.await;
        }))
    });
    let mut helpers = tokio::task::JoinSet::new();
    helpers.spawn(systemd::report_readiness(
        monitor.health().clone(),
        window,
        STATUS_EVERY,
    ));
    if let Some(period) = systemd::watchdog_period() {
        info!(
            period_ms = period.as_millis() as u64,
            "systemd watchdog enabled"
        );
        helpers.spawn(systemd::watchdog(monitor.health().clone(), period));
    }
    let shutdown = async {
        shutdown.await;
        monitor.health().stopping();
        systemd::stopping();
    };
    let outcome = daemon::run_monitored(config, monitor, shutdown).await;
    helpers.abort_all();
    let _ = stop_http.send(());
    if let Some(server) = server {
        match tokio::time::timeout(HTTP_DRAIN, server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => warn!(error = %e, "the HTTP endpoint failed"),
            Ok(Err(e)) => warn!(error = %e, "the HTTP endpoint task failed"),
            Err(_) => warn!("the HTTP endpoint did not finish its requests in time"),
        }
    }
    Ok(outcome?)
}
