//! `recalcd serve`: a read-only web view of the channels and the JSON API it uses.
//!
//! - `GET /` and `GET /app.js` — the page (embedded in the binary: no CDN, no network
//!   at run time). Hand-written canvas code: pick device, channel and range; the chart
//!   appears from the coarsest level, then refines in place; drag to zoom; a condition's
//!   matches are shaded; the URL's fragment reproduces the view.
//! - `GET /api/channels` — the declared feature indexes and their devices ([`api`]).
//! - `GET /api/plot` — the frames of a plot, coarse to fine.
//! - `GET /api/search` — a search's matches, as `recalcd search --format json`.
//! - `GET /api/similar`, `GET /api/match` — the jobs most like one, where a pattern
//!   occurs: as `recalcd similar` and `recalcd match` with `--format json`
//!   ([`similarity`]).
//! - `GET /healthz` — `ok`.
//!
//! With `serve.token` set, every `/api/` request needs `Authorization: Bearer <token>`
//! (401 without it); the token is compared in constant time and never logged. Queries
//! run on a [`pool`] of sessions, so many viewers are served at once; nothing here
//! writes to a store. Documented for programs in `docs/serve.md`.

pub mod api;
pub mod pool;
pub mod similarity;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::config::serve::Token;
use crate::config::Config;
use crate::service::similar::kept::{Kept, Loaded};
use crate::service::similar_approx::LoadedTree;

pub use api::ApiError;
pub use pool::{Pool, Session};

/// The page.
const INDEX_HTML: &str = include_str!("assets/index.html");
/// The page's code.
const APP_JS: &str = include_str!("assets/app.js");

/// How long a request waits for a free session before it is answered 503.
pub const POOL_WAIT: Duration = Duration::from_secs(30);

/// Why `recalcd serve` could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The address cannot be bound.
    #[error("cannot listen on {addr} (`serve.listen`)")]
    Listen {
        /// The configured address.
        addr: SocketAddr,
        /// Why (e.g. the address is in use).
        #[source]
        source: io::Error,
    },
    /// The first session could not be opened (the store is unreachable, its schema
    /// missing or outdated).
    #[error("cannot open a session on the store")]
    Store(#[source] crate::store::StoreError),
    /// The pool gave no first session (it timed out).
    #[error("cannot open a session on the store")]
    Pool(#[source] deadpool::managed::PoolError<crate::store::StoreError>),
}

/// What the handlers share.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    /// The sessions.
    pool: Pool,
    /// The configuration (the declared indexes, the tables).
    config: Config,
    /// The bearer token the API requires, if any.
    token: Option<Token>,
    /// The similarity indexes kept loaded between queries: the entries, and the iSAX
    /// trees built from them.
    kept: Kept<Loaded>,
    trees: Kept<LoadedTree>,
}

impl App {
    /// The application for `config`, with a pool of `serve.pool_size` sessions.
    ///
    /// # Errors
    /// [`StartError::Store`] if a first session cannot be opened (so that a wrong URL
    /// or a missing schema is reported at start, not on the first request).
    pub async fn start(config: &Config) -> Result<App, StartError> {
        let pool = pool::pool(config, config.serve.pool_size, POOL_WAIT)
            .expect("a pool of a validated size builds");
        match pool.get().await {
            Ok(first) => drop(first),
            Err(deadpool::managed::PoolError::Backend(e)) => return Err(StartError::Store(e)),
            Err(e) => return Err(StartError::Pool(e)),
        }
        Ok(App {
            inner: Arc::new(Inner {
                pool,
                config: config.clone(),
                token: config.serve.token.clone(),
                kept: Kept::new(),
                trees: Kept::new(),
            }),
        })
    }

    /// The routes.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/api/channels", get(api::channels))
            .route("/api/plot", get(api::plot))
            .route("/api/search", get(api::search))
            .route("/api/similar", get(similarity::similar))
            .route("/api/match", get(similarity::match_))
            .route_layer(middleware::from_fn_with_state(self.clone(), authorize));
        Router::new()
            .route("/", get(index_html))
            .route("/app.js", get(app_js))
            .route("/healthz", get(|| async { "ok\n" }))
            .merge(api)
            .fallback(|| async { ApiError::not_found("no such page or API") })
            .with_state(self.clone())
    }

    fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    fn config(&self) -> &Config {
        &self.inner.config
    }

    fn kept(&self) -> &Kept<Loaded> {
        &self.inner.kept
    }

    fn trees(&self) -> &Kept<LoadedTree> {
        &self.inner.trees
    }
}

/// Binds `serve.listen`.
///
/// # Errors
/// [`StartError::Listen`] if the address cannot be bound.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr, source })
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets the requests in
/// flight finish.
///
/// # Errors
/// An I/O error from the server.
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, app.router())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Lets an API request through when no token is configured or it carries the token.
async fn authorize(State(app): State<App>, request: Request, next: Next) -> Response {
    let Some(token) = &app.inner.token else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes)
        .and_then(|v| v.strip_prefix(b"Bearer "));
    match given {
        Some(g) if token.matches(g) => next.run(request).await,
        _ => {
            let mut r = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this API needs the header `Authorization: Bearer <serve.token>`",
            )
            .into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"recalcd\""),
            );
            r
        }
    }
}

async fn index_html() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX_HTML,
    )
}

async fn app_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        APP_JS,
    )
}
