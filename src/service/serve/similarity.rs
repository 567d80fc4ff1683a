//! The similarity endpoints of `recalcd serve` (documented in `docs/serve.md`):
//!
//! - `GET /api/similar` — the jobs most like a job or a series, as `recalcd similar
//!   --format json` answers ([`crate::service::similar`]);
//! - `GET /api/match` — where a pattern occurs in one device's rows, as `recalcd match
//!   --format json` answers ([`crate::service::subsequence`]).
//!
//! The parameters mirror the command lines' options (a file's values are given inline,
//! comma-separated); the same checks refuse the same input, with 400 naming the
//! parameter, 404 for an unknown device. Read only, like the rest of the API.

use std::collections::HashMap;
use std::time::Instant;

use axum::extract::{Query as QueryString, State};
use axum::response::Response;

use super::api::{json, known_device, param_named, ApiError, Params};
use super::App;
use crate::index::series::SeriesFile;
use crate::index::similarity::{self, Key};
use crate::index::subsequence::{self, check_pattern, QueryError};
use crate::index::{micros, parse_time, Micros};
use crate::service::search::stamp;
use crate::service::similar::xcorr::similar_xcorr;
use crate::service::similar::{
    metric, parse_job, similar_kept as run_similar, SimilarError, Target,
};
use crate::service::similar_approx::{similar_approx_kept as similar_approx, DEFAULT_EXAMINE};
use crate::service::subsequence::{run as run_match, MatchFailure, Method, PatternSource};
use crate::store::index::ALL_TIME;

/// The most values `series` or `pattern` may hold.
pub const MAX_VALUES: usize = 100_000;

/// Comma-separated numbers (`series`, `pattern`): at most [`MAX_VALUES`], each a finite
/// number.
fn values(name: &str, text: &str) -> Result<Vec<f64>, ApiError> {
    let items: Vec<&str> = text.split(',').map(str::trim).collect();
    if items.len() > MAX_VALUES {
        return Err(ApiError::bad(format!(
            "`{name}`: {} values; the limit is {MAX_VALUES}",
            items.len()
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| {
                    ApiError::bad(format!(
                        "`{name}`: value {} '{v}' is not a finite number (give numbers separated by commas)",
                        i + 1
                    ))
                })
        })
        .collect()
}

/// A count ≥ 1 (`k`, `exclusion`).
fn count(p: &Params, name: &str, what: &str) -> Result<Option<usize>, ApiError> {
    p.optional(name)
        .map(|v| {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| ApiError::bad(format!("`{name}`: '{v}' is not {what} (at least 1)")))
        })
        .transpose()
}

/// `within`: a distance, a number ≥ 0.
fn within(p: &Params) -> Result<Option<f64>, ApiError> {
    p.optional("within")
        .map(|v| {
            v.parse::<f64>()
                .ok()
                .filter(|d| d.is_finite() && *d >= 0.0)
                .ok_or_else(|| {
                    ApiError::bad(format!("`within`: '{v}' is not a distance (a number ≥ 0)"))
                })
        })
        .transpose()
}

/// `from` and `to` of `/api/similar`: each optional (job starts from, before).
fn job_range(p: &Params) -> Result<Option<(Micros, Micros)>, ApiError> {
    let time = |name: &str, end: bool| -> Result<Option<Micros>, ApiError> {
        p.optional(name)
            .map(|v| {
                parse_time(v, end)
                    .map(micros)
                    .map_err(|e| ApiError::bad(format!("`{name}`: {e}")))
            })
            .transpose()
    };
    match (time("from", false)?, time("to", true)?) {
        (None, None) => Ok(None),
        (a, b) => {
            let (a, b) = (a.unwrap_or(ALL_TIME.0), b.unwrap_or(ALL_TIME.1));
            if b <= a {
                return Err(ApiError::bad(format!(
                    "`to` {} is not after `from` {}",
                    stamp(b),
                    stamp(a)
                )));
            }
            Ok(Some((a, b)))
        }
    }
}

/// `GET /api/similar?channel&(job|series)[&k][&within][&metric][&id][&from][&to]`: the
/// JSON of `recalcd similar --format json` (`series`: the values, comma-separated).
pub async fn similar(
    State(app): State<App>,
    QueryString(q): QueryString<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let p = Params::new(
        &q,
        &[
            "channel", "job", "series", "k", "within", "metric", "id", "from", "to", "approx",
            "examine",
        ],
    )?;
    let channel = p.required("channel")?;
    let target = match (p.optional("job"), p.optional("series")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad(
                "`job` and `series` exclude each other: give one",
            ))
        }
        (Some(job), None) => {
            Target::Job(parse_job(job).map_err(|e| ApiError::bad(format!("`job`: {e}")))?)
        }
        (None, Some(text)) => Target::Series(SeriesFile {
            values: values("series", text)?,
            times: None,
        }),
        (None, None) => {
            return Err(ApiError::bad(
                "missing parameter `job` (ID@START) or `series` (values separated by commas)",
            ))
        }
    };
    let k = count(&p, "k", "a number of matches")?;
    let within = within(&p)?;
    let name = p.optional("metric").unwrap_or("znorm");
    // `xcorr` has a distance of its own (`similar_xcorr`); the query's metric is unused.
    let xcorr = name == "xcorr";
    let metric = if xcorr {
        similarity::Metric::default()
    } else {
        metric(name).ok_or_else(|| {
            ApiError::bad(format!(
                "`metric`: '{name}' is not one of znorm, euclid, xcorr"
            ))
        })?
    };
    // `approx=true`: from the iSAX tree, within `examine` series (0: no limit).
    let approx = match p.optional("approx") {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(v) => {
            return Err(ApiError::bad(format!(
                "`approx`: '{v}' is not true or false"
            )))
        }
    };
    if !approx && p.optional("examine").is_some() {
        return Err(ApiError::bad("`examine` needs `approx=true`"));
    }
    let examine = match p.optional("examine") {
        None => Some(DEFAULT_EXAMINE),
        Some(v) => match v.parse::<usize>() {
            Ok(0) => None,
            Ok(n) => Some(n),
            Err(_) => {
                return Err(ApiError::bad(format!(
                    "`examine`: '{v}' is not a number of series (0: no limit)"
                )))
            }
        },
    };
    let id = p.id()?;
    let range = job_range(&p)?;
    let query = similarity::Query {
        metric,
        k: match (k, within) {
            (Some(k), _) => Some(k),
            (None, Some(_)) => None,
            (None, None) => Some(10),
        },
        within,
    };
    let request = crate::service::similar::Request {
        channel: channel.to_string(),
        target,
        query,
        id,
        range,
    };
    let session = app.session().await?;
    let devices = id
        .into_iter()
        .map(|id| ("id", id))
        .chain(match &request.target {
            Target::Job(Key { id, .. }) => Some(("job", *id)),
            Target::Series(_) => None,
        });
    for (name, id) in devices.collect::<Vec<_>>() {
        match known_device(&session, id).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) if name == "job" => {
                return Err(ApiError::not_found(format!(
                    "`job`: device {id} is unknown (no rows, constants or equations)"
                )))
            }
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(App::failed(session, &e)),
        }
    }
    let (config, data, index) = (app.config(), &session.data, session.index.as_ref());
    let outcome = if approx {
        similar_approx(config, data, index, Some(app.trees()), &request, examine)
            .await
            .map(|a| a.to_json())
    } else if xcorr {
        similar_xcorr(config, data, index, &request)
            .await
            .map(|a| a.to_json())
    } else {
        run_similar(config, data, index, Some(app.kept()), &request)
            .await
            .map(|a| a.to_json())
    };
    let answer = match outcome {
        Ok(a) => a,
        Err(SimilarError::Store(e)) => return Err(App::failed(session, &e)),
        Err(e) => return Err(ApiError::bad(param_named(e.to_string()))),
    };
    drop(session);
    Ok(json(&answer))
}

/// `GET /api/match?channel&id&from&to&(pattern|like)[&k][&within][&exclusion][&metric]
/// [&method]`: the JSON of `recalcd match --format json` (`pattern`: the values,
/// comma-separated; `like`: `FROM..TO`).
pub async fn match_(
    State(app): State<App>,
    QueryString(q): QueryString<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let p = Params::new(
        &q,
        &[
            "channel",
            "id",
            "from",
            "to",
            "pattern",
            "like",
            "k",
            "within",
            "exclusion",
            "metric",
            "method",
        ],
    )?;
    let channel = p.required("channel")?;
    let id = p
        .id()?
        .ok_or_else(|| ApiError::bad("missing parameter `id`"))?;
    let range = p.range()?;
    let source = match (p.optional("pattern"), p.optional("like")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad(
                "`pattern` and `like` exclude each other: give one",
            ))
        }
        (Some(text), None) => {
            let v = values("pattern", text)?;
            check_pattern(&v).map_err(|e| ApiError::bad(format!("`pattern`: {e}")))?;
            PatternSource::Values(v)
        }
        (None, Some(span)) => {
            let (a, b) = span
                .split_once("..")
                .ok_or_else(|| ApiError::bad(format!("`like` {span}: expected FROM..TO")))?;
            let a = parse_time(a, false).map_err(|e| ApiError::bad(format!("`like`: {e}")))?;
            let b = parse_time(b, true).map_err(|e| ApiError::bad(format!("`like`: {e}")))?;
            if b <= a {
                return Err(ApiError::bad(format!(
                    "`like` {span}: TO is not after FROM"
                )));
            }
            PatternSource::Like(micros(a), micros(b))
        }
        (None, None) => {
            return Err(ApiError::bad(
                "missing parameter `pattern` (values separated by commas) or `like` (FROM..TO)",
            ))
        }
    };
    let k = count(&p, "k", "a number of matches")?;
    let within = within(&p)?;
    let exclusion = count(&p, "exclusion", "a number of rows")?;
    let metric = match p.optional("metric").unwrap_or("znorm") {
        "znorm" => subsequence::Metric::ZNorm,
        "euclid" => subsequence::Metric::Euclid,
        other => {
            return Err(ApiError::bad(format!(
                "`metric`: '{other}' is not one of znorm, euclid"
            )))
        }
    };
    let method = match p.optional("method").unwrap_or("auto") {
        "auto" => Method::Auto,
        "index" => Method::Index,
        "profile" => Method::Profile,
        other => {
            return Err(ApiError::bad(format!(
                "`method`: '{other}' is not one of auto, index, profile"
            )))
        }
    };
    let request = crate::service::subsequence::Request {
        channel: channel.to_string(),
        id,
        range,
        pattern: source,
        query: subsequence::Query {
            k: match (k, within) {
                (Some(k), _) => Some(k),
                (None, Some(_)) => None,
                (None, None) => Some(5),
            },
            within,
            // 0: the pattern's length, known once a `like` span is read.
            exclusion: exclusion.unwrap_or(0),
            metric,
        },
        method,
    };
    let session = app.session().await?;
    match known_device(&session, id).await {
        Ok(known) => known?,
        Err(e) => return Err(App::failed(session, &e)),
    }
    let answer = match run_match(&session.data, session.index.as_ref(), &request).await {
        Ok(a) => a,
        Err(MatchFailure::Store(e)) => return Err(App::failed(session, &e)),
        Err(e @ MatchFailure::NoRows { .. }) => {
            return Err(ApiError::not_found(format!("`channel`: {e}")))
        }
        Err(e) => return Err(ApiError::bad(match_message(&request, &e))),
    };
    drop(session);
    Ok(json(&answer.to_json(metric, started.elapsed().as_millis())))
}

/// A match failure's message with the parameter at fault named.
fn match_message(request: &crate::service::subsequence::Request, e: &MatchFailure) -> String {
    let source = match request.pattern {
        PatternSource::Values(_) => "`pattern`",
        PatternSource::Like(..) => "`like`",
    };
    match e {
        MatchFailure::Query(QueryError::LongPattern { .. }) => {
            format!("{source} against `from`..`to`: {e}")
        }
        MatchFailure::Query(QueryError::ShortPattern(_) | QueryError::NotANumber(_)) => {
            format!("{source}: {e}")
        }
        MatchFailure::Query(QueryError::BadRadius(_)) => format!("`within`: {e}"),
        MatchFailure::Query(QueryError::ZeroK) => format!("`k`: {e}"),
        MatchFailure::Query(QueryError::ZeroExclusion) => format!("`exclusion`: {e}"),
        _ => param_named(e.to_string()),
    }
}
