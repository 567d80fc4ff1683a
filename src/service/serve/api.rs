//! The JSON API of `recalcd serve` (documented for programs in `docs/serve.md`).
//!
//! Every answer is JSON. Errors are `{"error": "…"}` naming the parameter at fault:
//! 400 for a malformed or out-of-limit parameter, 404 for an unknown channel or device,
//! 401 without the token, 503 when no session is free in time, 500 when a store fails.
//! Every value a viewer sends reaches SQL only as a bound parameter (the stores bind
//! them); channel names are compared with the declared ones or bound.

use std::collections::HashMap;
use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use deadpool::managed::{Object, PoolError};

use super::pool::{Pooled, Sessions};
use super::App;
use crate::index::condition::Condition;
use crate::index::search::Method;
use crate::index::{micros, Micros};
use crate::service::plot::{self, Plot, PlotFailure, PlotRequest};
use crate::service::search::{level_name, search as run_search, stamp, Request, SearchFailure};
use crate::store::{Store, StoreError};

pub use crate::service::plot::{MAX_RANGE, MAX_WIDTH};
/// The most matches `/api/search` lists (the statistics count all).
pub const MAX_LISTED: usize = 100_000;

/// An error answer: a status and one line naming what was wrong.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// An answer `status` saying `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400: the viewer asked for something malformed or beyond a limit.
    pub fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: no such channel, device or page.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// 500 (logged with its cause): a store failed.
    fn store(e: &StoreError) -> ApiError {
        tracing::warn!(error = %e, "a store failed while answering");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the store failed: {e}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message }).to_string();
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

/// A JSON answer.
pub(super) fn json(value: &serde_json::Value) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        value.to_string(),
    )
        .into_response()
}

/// The query string's parameters, checked against what an endpoint accepts.
#[derive(Debug)]
pub(super) struct Params<'a> {
    map: &'a HashMap<String, String>,
}

impl<'a> Params<'a> {
    /// `map`, refusing any parameter not in `accepted`.
    pub(super) fn new(
        map: &'a HashMap<String, String>,
        accepted: &[&str],
    ) -> Result<Self, ApiError> {
        let mut unknown: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|k| !accepted.contains(k))
            .collect();
        unknown.sort_unstable();
        if let Some(k) = unknown.first() {
            return Err(ApiError::bad(format!(
                "unknown parameter `{k}` (accepted: {})",
                accepted.join(", ")
            )));
        }
        Ok(Params { map })
    }

    pub(super) fn optional(&self, name: &str) -> Option<&'a str> {
        self.map
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn required(&self, name: &str) -> Result<&'a str, ApiError> {
        self.optional(name)
            .ok_or_else(|| ApiError::bad(format!("missing parameter `{name}`")))
    }

    pub(super) fn id(&self) -> Result<Option<i32>, ApiError> {
        self.optional("id")
            .map(|v| {
                v.parse::<i32>().map_err(|_| {
                    ApiError::bad(format!("`id`: '{v}' is not a device id (a 32-bit integer)"))
                })
            })
            .transpose()
    }

    /// `from` and `to`: a non-empty range no longer than [`MAX_RANGE_DAYS`].
    pub(super) fn range(&self) -> Result<(Micros, Micros), ApiError> {
        let time = |name: &str, end: bool| -> Result<Micros, ApiError> {
            let v = self.required(name)?;
            crate::index::parse_time(v, end)
                .map(micros)
                .map_err(|e| ApiError::bad(format!("`{name}`: {e}")))
        };
        let (from, to) = (time("from", false)?, time("to", true)?);
        if to <= from {
            return Err(ApiError::bad(format!(
                "`to` {} is not after `from` {}",
                stamp(to),
                stamp(from)
            )));
        }
        if to - from > MAX_RANGE {
            return Err(ApiError::bad(format!(
                "`from`..`to` spans more than {} days, the limit",
                MAX_RANGE / crate::index::DAY
            )));
        }
        Ok((from, to))
    }
}

impl App {
    /// A session from the pool: 503 when none is free in time, 500 when none can be
    /// opened.
    pub(super) async fn session(&self) -> Result<Pooled, ApiError> {
        self.pool().get().await.map_err(|e| match e {
            PoolError::Backend(e) => ApiError::store(&e),
            PoolError::Timeout(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "every session is busy: try again (or raise `serve.pool_size`)",
            ),
            other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        })
    }

    /// The answer to a store failure; a session whose connection broke leaves the pool.
    pub(super) fn failed(session: Pooled, e: &StoreError) -> ApiError {
        if e.is_transient() {
            drop(Object::<Sessions>::take(session));
        }
        ApiError::store(e)
    }
}

/// 404 unless device `id` has rows, constants or equations.
pub(super) async fn known_device(
    session: &Pooled,
    id: i32,
) -> Result<Result<(), ApiError>, StoreError> {
    Ok(if session.data.device_known(id).await? {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "`id`: device {id} is unknown (no rows, constants or equations)"
        )))
    })
}

/// `GET /api/channels`: `{"channels": [{"channel", "unit", "levels", "built", "range",
/// "devices"}]}` — the declared feature indexes; `built` tells whether a usable index
/// exists, `range` its built range, `devices` the devices it holds (or the declared
/// ones when none is built).
pub async fn channels(
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    Params::new(&q, &[])?;
    let session = app.session().await?;
    let mut out = Vec::new();
    for decl in &app.config().index.feature {
        let built = match &session.index {
            Some(ix) => match ix.built(&decl.channel).await {
                Ok(b) => b.filter(|b| b.params == decl.params() && b.levels.is_some()),
                Err(e) => return Err(App::failed(session, &e)),
            },
            None => None,
        };
        let devices = match (&built, &session.index) {
            (Some(b), Some(ix)) => match ix.devices(b).await {
                Ok(d) => d,
                Err(e) => return Err(App::failed(session, &e)),
            },
            _ => decl.devices.clone().unwrap_or_default(),
        };
        let range = built
            .as_ref()
            .and_then(|b| b.range)
            .map(|(a, b)| serde_json::json!([stamp(a), stamp(b)]));
        out.push(serde_json::json!({
            "channel": decl.channel,
            "unit": decl.unit,
            "levels": decl.levels.lengths().iter().map(|l| level_name(*l)).collect::<Vec<_>>(),
            "built": built.is_some(),
            "range": range,
            "devices": devices,
        }));
    }
    Ok(json(&serde_json::json!({ "channels": out })))
}

/// `GET /api/search?channel&from&to&where[&id][&method][&max_gap][&limit]`: the JSON of
/// `recalcd search --format json`.
pub async fn search(
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let p = Params::new(
        &q,
        &[
            "channel", "id", "from", "to", "where", "method", "max_gap", "limit",
        ],
    )?;
    let channel = p.required("channel")?;
    let id = p.id()?;
    let range = p.range()?;
    let text = p.required("where")?;
    let max_gap = p
        .optional("max_gap")
        .map(|g| {
            crate::duration::parse_micros(g)
                .and_then(|u| Micros::try_from(u).map_err(|_| format!("`{g}` is too long")))
                .map_err(|e| ApiError::bad(format!("`max_gap`: {e}")))
        })
        .transpose()?;
    let condition = Condition::parse(text)
        .and_then(|c| c.with_max_gap(max_gap))
        .map_err(|e| ApiError::bad(format!("`where` '{text}': {e}")))?;
    let method = match p.optional("method").unwrap_or("auto") {
        "auto" => Method::Auto,
        "filtering" => Method::Filtering,
        "fixed" => Method::Fixed,
        "scan" => Method::Scan,
        other => {
            return Err(ApiError::bad(format!(
                "`method`: '{other}' is not one of auto, filtering, fixed, scan"
            )))
        }
    };
    let limit = p
        .optional("limit")
        .map(|v| {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n <= MAX_LISTED)
                .ok_or_else(|| {
                    ApiError::bad(format!(
                        "`limit`: '{v}' is not a number of matches up to {MAX_LISTED}, the limit"
                    ))
                })
        })
        .transpose()?
        .unwrap_or(MAX_LISTED);
    let session = app.session().await?;
    if let Some(id) = id {
        match known_device(&session, id).await {
            Ok(known) => known?,
            Err(e) => return Err(App::failed(session, &e)),
        }
    }
    let index = &app.config().index;
    let request = Request {
        channel: channel.to_string(),
        id,
        range,
        condition,
        method,
    };
    let outcome = run_search(
        &session.data,
        session.index.as_ref(),
        index.feature(channel),
        &index.declared_channels(),
        &request,
    )
    .await;
    let answer = match outcome {
        Ok(a) => a,
        Err(SearchFailure::Store(e)) => return Err(App::failed(session, &e)),
        Err(e @ SearchFailure::UnknownChannel { .. }) => {
            return Err(ApiError::not_found(param_named(e.to_string())))
        }
        Err(e) => return Err(ApiError::bad(param_named(e.to_string()))),
    };
    drop(session);
    Ok(json(&answer.to_json(limit, started.elapsed().as_millis())))
}

/// A message of the command line's (`--channel x: …`) with its options named as the
/// API's parameters (`` `channel` x: … ``).
pub(super) fn param_named(message: String) -> String {
    let mut out = message;
    for (cli, api) in [
        ("--channel", "`channel`"),
        ("--method", "`method`"),
        ("--where", "`where`"),
        ("--from", "`from`"),
        ("--to", "`to`"),
        ("--id", "`id`"),
        ("--max-gap", "`max_gap`"),
        ("--job", "`job`"),
        ("--series", "`series`"),
        ("--pattern", "`pattern`"),
        ("--like", "`like`"),
        ("--within", "`within`"),
        ("--exclusion", "`exclusion`"),
        ("--k ", "`k` "),
        ("--approx", "`approx`"),
        ("--examine", "`examine`"),
        ("--metric", "`metric`"),
    ] {
        out = out.replace(cli, api);
    }
    out
}

/// `GET /api/plot?channel&id&from&to&width[&step=coarse|final|all]`: `{"channel", "id",
/// "from", "to", "width", "unit", "note", "frames": [{"step", "level", "exact",
/// "rows_read", "buckets_read", "columns": [null | {"first": {"t", "v"}, "last": {"t",
/// "v"}, "min", "max"}]}]}` with times and the level in microseconds (docs/plot.md). `step=coarse` answers
/// the coarsest frame only (fast: the first thing a viewer sees), `final` the final
/// pixel-exact frame only, `all` (the default) every frame, coarse to fine.
pub async fn plot(
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let p = Params::new(&q, &["channel", "id", "from", "to", "width", "step"])?;
    let channel = p.required("channel")?;
    let id = p
        .id()?
        .ok_or_else(|| ApiError::bad("missing parameter `id`"))?;
    let range = p.range()?;
    let text = p.required("width")?;
    let width = text
        .parse::<u32>()
        .ok()
        .filter(|w| (1..=MAX_WIDTH).contains(w))
        .ok_or_else(|| {
            ApiError::bad(format!(
                "`width`: '{text}' is not a number of pixel columns from 1 to {MAX_WIDTH}, the limit"
            ))
        })?;
    let (stop_after, only_last) = match p.optional("step").unwrap_or("all") {
        "all" => (None, false),
        "coarse" => (Some(0), false),
        "final" => (None, true),
        other => {
            return Err(ApiError::bad(format!(
                "`step`: '{other}' is not one of coarse, final, all"
            )))
        }
    };
    let request = PlotRequest {
        channel: channel.to_string(),
        id,
        range,
        width,
    };
    let session = app.session().await?;
    let outcome = plot::plot(
        &session.data,
        session.index.as_ref(),
        &app.config().index,
        &request,
        stop_after,
    )
    .await;
    let mut answer = match outcome {
        Ok(a) => a,
        Err(PlotFailure::Store(e)) => return Err(App::failed(session, &e)),
        Err(e @ (PlotFailure::UnknownChannel { .. } | PlotFailure::UnknownDevice(_))) => {
            return Err(ApiError::not_found(param_named(e.to_string())))
        }
        Err(e) if e.is_usage() => return Err(ApiError::bad(param_named(e.to_string()))),
        Err(e) => {
            tracing::warn!(error = %e, "a plot failed");
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                e.to_string(),
            ));
        }
    };
    drop(session);
    if only_last && answer.frames.len() > 1 {
        answer.frames.drain(..answer.frames.len() - 1);
    }
    Ok(json(&plot_json(&request, &answer)))
}

/// The JSON of a plot (see [`plot`]): the plot's own serialisation (docs/plot.md) with
/// the request beside it.
pub fn plot_json(request: &PlotRequest, answer: &Plot) -> serde_json::Value {
    let mut v = serde_json::to_value(answer).unwrap_or_else(|e| {
        // Serialising plain numbers and strings cannot fail; say so if it ever does.
        serde_json::json!({ "error": format!("the plot could not be written as JSON: {e}") })
    });
    if let Some(o) = v.as_object_mut() {
        o.insert("channel".into(), request.channel.clone().into());
        o.insert("id".into(), request.id.into());
        o.insert("from".into(), stamp(request.range.0).into());
        o.insert("to".into(), stamp(request.range.1).into());
        o.insert("width".into(), request.width.into());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parameters_are_checked_and_named() {
        let m = map(&[("from", "2024-01-01"), ("to", "2024-01-01"), ("zz", "1")]);
        let e = Params::new(&m, &["from", "to"]).unwrap_err();
        assert!(e.message.contains("`zz`"), "{}", e.message);
        let p = Params::new(&m, &["from", "to", "zz"]).unwrap();
        // A date as `to` is the whole day.
        let (a, b) = p.range().unwrap();
        assert_eq!(b - a, 86_400_000_000);
        let m = map(&[("from", "2024-01-02"), ("to", "2024-01-01T00:00:00")]);
        let e = Params::new(&m, &["from", "to"])
            .unwrap()
            .range()
            .unwrap_err();
        assert!(e.message.contains("is not after `from`"), "{}", e.message);
        let m = map(&[("from", "1800-01-01"), ("to", "2100-01-01")]);
        let e = Params::new(&m, &["from", "to"])
            .unwrap()
            .range()
            .unwrap_err();
        assert!(e.message.contains("73200 days"), "{}", e.message);
        let m = map(&[("from", "yesterday"), ("to", "2100-01-01")]);
        let e = Params::new(&m, &["from", "to"])
            .unwrap()
            .range()
            .unwrap_err();
        assert!(
            e.message.starts_with("`from`: 'yesterday'"),
            "{}",
            e.message
        );
        let m = map(&[("id", "x7")]);
        let e = Params::new(&m, &["id"]).unwrap().id().unwrap_err();
        assert!(e.message.starts_with("`id`"), "{}", e.message);
        let e = Params::new(&m, &["id", "channel"])
            .unwrap()
            .required("channel")
            .unwrap_err();
        assert_eq!(e.message, "missing parameter `channel`");
    }

    #[test]
    fn command_line_options_become_parameter_names() {
        assert_eq!(
            param_named("--channel x: no feature index declares it".into()),
            "`channel` x: no feature index declares it"
        );
    }
}
