//! The HTTP endpoint of `recalcd run` (`http.listen`), served with `axum`:
//!
//! - `GET /healthz` — 200 `ok` while the process is up.
//! - `GET /readyz` — 200 `ready` when the store is reachable, the schema current and a
//!   poll succeeded recently; else 503 `not ready: <reason>` (see [`super::health`]).
//! - `GET /metrics` — the Prometheus metrics (see [`super::metrics`]).
//!
//! Anything else is 404. Answers are small plain text; nothing here touches the store.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use super::metrics::CONTENT_TYPE;
use super::monitor::Monitor;

/// Why the endpoint could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} (`http.listen`)")]
pub struct ListenError {
    /// The configured address.
    pub addr: SocketAddr,
    /// Why (e.g. the address is in use).
    #[source]
    pub source: io::Error,
}

/// Binds the endpoint's address, so that a taken port is reported before anything
/// else starts.
///
/// # Errors
/// [`ListenError`] if the address cannot be bound.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ListenError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ListenError { addr, source })
}

/// What the handlers read.
#[derive(Debug, Clone)]
struct Endpoint {
    /// The daemon's health and metrics.
    monitor: Monitor,
    /// How recent the last successful poll must be (see [`super::health::ready_window`]).
    ready_window: Duration,
}

/// The routes, for `monitor` with readiness `ready_window`.
pub fn router(monitor: Monitor, ready_window: Duration) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Endpoint {
            monitor,
            ready_window,
        })
}

/// Serves the routes on `listener` until `shutdown` resolves, then lets the requests in
/// flight finish.
///
/// # Errors
/// An I/O error from the server (accept errors are retried by `axum`).
pub async fn serve(
    listener: TcpListener,
    monitor: Monitor,
    ready_window: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, router(monitor, ready_window))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(endpoint): State<Endpoint>) -> (StatusCode, String) {
    match endpoint.monitor.health().readiness(endpoint.ready_window) {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", one_line(&reason.0)),
        ),
    }
}

async fn metrics(State(endpoint): State<Endpoint>) -> impl IntoResponse {
    let (health, metrics) = (endpoint.monitor.health(), endpoint.monitor.metrics());
    metrics.set_ready(health.readiness(endpoint.ready_window).is_ok());
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.render())
}

/// `text` with every run of whitespace (newlines included) made one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
