//! systemd notifications (`Type=notify`), through the `sd-notify` crate: `READY=1` after
//! the first successful poll, `WATCHDOG=1` while the loop is not stuck, `STOPPING=1`
//! when shutdown is requested, and a `STATUS=` line saying why the daemon is not ready.
//!
//! Without `NOTIFY_SOCKET` in the environment (not started by systemd) every call does
//! nothing. The watchdog runs only when systemd sets `WATCHDOG_USEC` (`WatchdogSec=`
//! in the unit): a ping every half period as long as no piece of the loop's work (a
//! connect, a batch) has lasted longer than the period; the loop's waits (poll interval,
//! back-off while the store is away) never count, so an outage is waited out, not
//! restarted. When the loop is stuck the pings stop and systemd restarts the service.

use std::time::Duration;

use sd_notify::NotifyState;
use tracing::{debug, error};

use super::health::Health;

/// Sends `states`; a failure is logged (at debug: outside systemd there is no socket).
fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        debug!(error = %e, "cannot notify systemd");
    }
}

/// Tells systemd the service is ready.
pub fn ready() {
    notify(&[NotifyState::Ready, NotifyState::Status("polling")]);
}

/// Tells systemd the service is stopping.
pub fn stopping() {
    notify(&[NotifyState::Stopping, NotifyState::Status("shutting down")]);
}

/// Sends `READY=1` once the first poll succeeded, then keeps `STATUS=` up to date with
/// the readiness (checked every `every`). Runs until dropped.
pub async fn report_readiness(health: Health, window: Duration, every: Duration) {
    health.first_poll().await;
    ready();
    let mut shown = Ok(());
    loop {
        tokio::time::sleep(every).await;
        let now = health.readiness(window);
        if now != shown {
            match &now {
                Ok(()) => notify(&[NotifyState::Status("polling")]),
                Err(reason) => notify(&[NotifyState::Status(&format!("not ready: {reason}"))]),
            }
            shown = now;
        }
    }
}

/// The watchdog period systemd asked for (`WATCHDOG_USEC`, for this process).
pub fn watchdog_period() -> Option<Duration> {
    sd_notify::watchdog_enabled().filter(|d| !d.is_zero())
}

/// Pings the watchdog every half `period` while the loop is not stuck for longer than
/// `period`. Runs until dropped.
pub async fn watchdog(health: Health, period: Duration) {
    let mut ticks = tokio::time::interval(period / 2);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut warned = false;
    loop {
        ticks.tick().await;
        match health.stuck(period) {
            None => {
                notify(&[NotifyState::Watchdog]);
                warned = false;
            }
            Some(busy) if !warned => {
                error!(
                    busy_s = busy.as_secs(),
                    watchdog_s = period.as_secs(),
                    "the daemon loop is stuck in one piece of work; no longer pinging the systemd watchdog"
                );
                warned = true;
            }
            Some(_) => {}
        }
    }
}
