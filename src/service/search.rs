//! `recalcd search`: one condition over one channel and range, device by device.
//!
//! The engines ([`crate::index::search`]) are pure state machines; this drives them with
//! the buckets from the index store and the raw rows from the data store. What the
//! index cannot vouch for is handed to them as *untrusted* spans, read raw: finest
//! buckets in the dirty log or holding rows still flagged, and any part of the range
//! outside what was built. A device the index does not cover, a channel without a
//! usable index, is scanned — and the report says so.

use std::collections::BTreeSet;

use crate::config::FeatureIndexConfig;
use crate::index::condition::Condition;
use crate::index::feature::Levels;
use crate::index::search::{Method, Search, SearchError, Step};
use crate::index::Micros;
use crate::store::index::{Built, IndexStore};
use crate::store::{AnyStore, StoreError};

/// What to search.
#[derive(Debug, Clone)]
pub struct Request {
    /// The channel (a data-level `conjoined` name, case-insensitive).
    pub channel: String,
    /// One device, or every device with rows in the range.
    pub id: Option<i32>,
    /// The range, half-open `[from, to)`.
    pub range: (Micros, Micros),
    /// The condition (with `--max-gap` applied).
    pub condition: Condition,
    /// The engine asked for.
    pub method: Method,
}

/// One match of one device: the closed span from its first to its last row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Found {
    /// The device.
    pub id: i32,
    /// The first row's time.
    pub from: Micros,
    /// The last row's time.
    pub to: Micros,
}

/// The answer of a search over every device asked for, and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Every match, by device then time.
    pub matches: Vec<Found>,
    /// The engine used (where devices differ, the one used for most of them).
    pub method: Method,
    /// The engine used per device.
    pub methods: Vec<(i32, Method)>,
    /// Rows of the channel in the range, over the devices searched.
    pub rows_in_range: u64,
    /// Raw rows read.
    pub rows_read: u64,
    /// Buckets read per level, as (level length, buckets); empty without an index.
    pub buckets_read: Vec<(Micros, u64)>,
    /// Why the index was not used, when it was not (for the user).
    pub note: Option<String>,
}

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchFailure {
    /// A store could not answer.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The search cannot run as asked (range, window, method).
    #[error(transparent)]
    Search(#[from] SearchError),
    /// No index declares the channel and no row in the range holds it.
    #[error(
        "--channel {channel}: no feature index declares it and no row in the range holds it \
         (declared: {declared})"
    )]
    UnknownChannel {
        /// The channel asked for.
        channel: String,
        /// The declared channels, for the message.
        declared: String,
    },
}

impl SearchFailure {
    /// Whether the user asked for something that cannot be (exit code 2), rather than
    /// a store failing.
    pub fn is_usage(&self) -> bool {
        !matches!(self, SearchFailure::Store(_))
    }
}

/// The index a search (or a plot) may use: the declaration and what was built for it.
pub(crate) struct Usable<'a> {
    pub(crate) declared: &'a FeatureIndexConfig,
    pub(crate) built: Built,
    pub(crate) levels: Levels,
}

/// Runs `request`. `declared` is the channel's `[[index.feature]]` (if any), `index`
/// the index store (`None` when it cannot be reached: then the search scans), and
/// `declared_names` the declared channels for messages.
///
/// # Errors
/// [`SearchFailure`]: a store failing, a search that cannot run, an unknown channel.
pub async fn search(
    data: &AnyStore,
    index: Option<&IndexStore>,
    declared: Option<&FeatureIndexConfig>,
    declared_names: &str,
    request: &Request,
) -> Result<Answer, SearchFailure> {
    let (usable, mut note) = usable(index, declared).await?;
    let devices: Vec<i32> = match request.id {
        Some(id) => vec![id],
        None => {
            let mut ids: BTreeSet<i32> =
                data.devices_in(request.range).await?.into_iter().collect();
            if let (Some(u), Some(ix)) = (&usable, index) {
                ids.extend(ix.devices(&u.built).await?);
            }
            ids.into_iter().collect()
        }
    };
    let mut answer = Answer {
        matches: Vec::new(),
        method: request.method,
        methods: Vec::with_capacity(devices.len()),
        rows_in_range: 0,
        rows_read: 0,
        buckets_read: usable.as_ref().map_or_else(Vec::new, |u| {
            u.levels.lengths().iter().map(|&l| (l, 0)).collect()
        }),
        note: None,
    };
    for id in devices {
        let covered = usable.as_ref().filter(|u| u.declared.covers(id));
        if usable.is_some() && covered.is_none() && note.is_none() {
            note = Some(format!(
                "device {id} is not in the index of `{}`: scanned",
                request.channel
            ));
        }
        let (levels, untrusted) = match covered {
            Some(u) => {
                let mut untrusted = data
                    .untrusted(
                        &request.channel,
                        id,
                        marked_and_finest(&u.levels),
                        request.range,
                    )
                    .await?;
                untrusted.extend(outside(u.built.range, request.range));
                (Some(&u.levels), untrusted)
            }
            None => (None, Vec::new()),
        };
        let method = match (request.method, levels) {
            // Forced on a device without an index: the engine says how to build one.
            (m, None) if m != Method::Auto && m != Method::Scan => {
                return Err(SearchError::NoIndex { method: m }.into())
            }
            (m, _) => m,
        };
        let mut engine = Search::new(&request.condition, levels, request.range, untrusted, method)?;
        let outcome = loop {
            match engine.next() {
                Step::Buckets { level, spans } => {
                    let (Some(u), Some(ix)) = (covered, index) else {
                        // The engines ask for buckets only when given levels.
                        return Err(SearchError::Unexpected {
                            given: "no buckets (no index)",
                            needs: "buckets",
                        }
                        .into());
                    };
                    let buckets = ix.load_buckets(&u.built, id, level, &spans).await?;
                    engine.give_buckets(buckets)?;
                }
                Step::Points { spans } => {
                    let points = data.load_points(&request.channel, id, &spans).await?;
                    engine.give_points(points)?;
                }
                Step::Done(outcome) => break outcome,
            }
        };
        answer.rows_in_range += outcome.rows_in_range;
        answer.rows_read += outcome.rows_read;
        for (slot, n) in answer.buckets_read.iter_mut().zip(&outcome.buckets_read) {
            slot.1 += n;
        }
        answer.methods.push((id, outcome.method));
        answer.matches.extend(outcome.matches.iter().map(|m| Found {
            id,
            from: m.from,
            to: m.to,
        }));
    }
    if declared.is_none() && answer.rows_in_range == 0 {
        return Err(SearchFailure::UnknownChannel {
            channel: request.channel.clone(),
            declared: declared_names.to_string(),
        });
    }
    answer.method = most_used(&answer.methods).unwrap_or(match request.method {
        Method::Auto => Method::Scan,
        m => m,
    });
    answer.note = note.or_else(|| {
        (declared.is_none()).then(|| {
            format!(
                "no feature index is declared for `{}`: scanned (declare one with \
                 [[index.feature]] and run `recalcd index build --channel {}`)",
                request.channel, request.channel
            )
        })
    });
    Ok(answer)
}

impl Answer {
    /// The answer as `recalcd search --format json` prints it and `recalcd serve`'s
    /// `/api/search` returns it: `{"matches": [{"id", "from", "to"}, …], "stats":
    /// {"method", "matches", "rows_in_range", "rows_read", "buckets_read", "elapsed_ms"[,
    /// "note"]}}`, listing the first `shown` matches (the stats count all).
    pub fn to_json(&self, shown: usize, elapsed_ms: u128) -> serde_json::Value {
        let matches: Vec<serde_json::Value> = self.matches[..shown.min(self.matches.len())]
            .iter()
            .map(|m| serde_json::json!({"id": m.id, "from": stamp(m.from), "to": stamp(m.to)}))
            .collect();
        let buckets: serde_json::Map<String, serde_json::Value> = self
            .buckets_read
            .iter()
            .map(|(l, n)| (level_name(*l), serde_json::json!(n)))
            .collect();
        let mut stats = serde_json::json!({
            "method": self.method.as_str(),
            "matches": self.matches.len(),
            "rows_in_range": self.rows_in_range,
            "rows_read": self.rows_read,
            "buckets_read": buckets,
            "elapsed_ms": elapsed_ms,
        });
        if let Some(note) = &self.note {
            stats["note"] = serde_json::json!(note);
        }
        serde_json::json!({"matches": matches, "stats": stats})
    }
}

/// A time as the search's output writes it: `YYYY-MM-DDTHH:MM:SS`, with `.ffffff` only
/// when the time has a fraction (UTC).
pub fn stamp(t: Micros) -> String {
    let d = crate::index::datetime(t);
    if t.rem_euclid(1_000_000) == 0 {
        d.format("%Y-%m-%dT%H:%M:%S").to_string()
    } else {
        d.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
    }
}

/// A level's length as the output names it (`1d`, `10m`).
pub fn level_name(l: Micros) -> String {
    let mut s = String::new();
    let _ = crate::index::feature::write_length(&mut s, l);
    s
}

/// The lengths [`crate::store::AnyStore::untrusted`] takes for an index of `levels`: the
/// buckets its dirty marks stand for and its finest buckets.
pub(crate) fn marked_and_finest(levels: &Levels) -> (Micros, Micros) {
    (
        levels.length(levels.mark_level()),
        levels.length(levels.finest()),
    )
}

/// The index the search (or a plot) may use, or why none (a note for the user).
pub(crate) async fn usable<'a>(
    index: Option<&IndexStore>,
    declared: Option<&'a FeatureIndexConfig>,
) -> Result<(Option<Usable<'a>>, Option<String>), StoreError> {
    let Some(decl) = declared else {
        return Ok((None, None));
    };
    let Some(index) = index else {
        return Ok((
            None,
            Some(format!(
                "the index store cannot be reached: `{}` scanned",
                decl.channel
            )),
        ));
    };
    let hint = format!("run `recalcd index build --channel {}`", decl.channel);
    match index.built(&decl.channel).await? {
        None => Ok((
            None,
            Some(format!(
                "the index of `{}` is declared but not built: scanned ({hint})",
                decl.channel
            )),
        )),
        Some(b) if b.params != decl.params() || b.levels.is_none() => Ok((
            None,
            Some(format!(
                "the index of `{}` was built with {} but is declared with {}: scanned ({hint})",
                decl.channel,
                b.params,
                decl.params()
            )),
        )),
        Some(b) => {
            let levels = b.levels()?.clone();
            Ok((
                Some(Usable {
                    declared: decl,
                    built: b,
                    levels,
                }),
                None,
            ))
        }
    }
}

/// The parts of `range` outside the built range (all of it when nothing was built).
pub(crate) fn outside(
    built: Option<(Micros, Micros)>,
    range: (Micros, Micros),
) -> Vec<(Micros, Micros)> {
    let (from, to) = range;
    match built {
        None => vec![(from, to)],
        Some((a, b)) => [(from, to.min(a)), (from.max(b), to)]
            .into_iter()
            .filter(|(x, y)| x < y)
            .collect(),
    }
}

/// The method used for most devices (ties: the first of them in device order).
fn most_used(methods: &[(i32, Method)]) -> Option<Method> {
    let count = |m: Method| methods.iter().filter(|(_, x)| *x == m).count();
    let mut best: Option<(Method, usize)> = None;
    for (_, m) in methods {
        let n = count(*m);
        if best.is_none_or(|(_, b)| n > b) {
            best = Some((*m, n));
        }
    }
    best.map(|(m, _)| m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_outside_the_built_one_is_untrusted() {
        assert_eq!(outside(None, (0, 10)), vec![(0, 10)]);
        assert_eq!(outside(Some((2, 8)), (0, 10)), vec![(0, 2), (8, 10)]);
        assert_eq!(outside(Some((0, 10)), (2, 8)), vec![]);
        assert_eq!(outside(Some((5, 20)), (0, 10)), vec![(0, 5)]);
    }

    #[test]
    fn the_method_of_most_devices_is_reported() {
        use Method::*;
        assert_eq!(most_used(&[]), None);
        assert_eq!(
            most_used(&[(1, Scan), (2, Filtering), (3, Filtering)]),
            Some(Filtering)
        );
        assert_eq!(most_used(&[(1, Fixed), (2, Scan)]), Some(Fixed));
    }
}
