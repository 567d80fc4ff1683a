//! `recalcd plot` (and `recalcd serve`'s plot API): one channel of one device over a
//! range, drawn progressively from the feature index to the pixel-exact M4 of every
//! raw row.
//!
//! The planner ([`crate::index::plot::Plot`]) is a pure state machine; this drives it
//! with the buckets from the index store and the raw rows from the data store, exactly
//! as the search does ([`super::search`]): the same usable index, the same untrusted
//! spans (dirty buckets, rows still flagged, the range outside what was built). A
//! channel without a usable index, or a device the index does not cover, is drawn from
//! raw rows read a day at a time — and the answer's note says so.

use crate::config::IndexConfig;
use crate::engine::catalog::{Catalog, Constants};
use crate::engine::day::parse_zone;
use crate::index::plot::{Plot as Planner, PlotError, Step};
use crate::index::{Micros, DAY};
use crate::store::index::IndexStore;
use crate::store::{AnyStore, Store, StoreError};

pub use crate::index::m4::{Column, Columns};
pub use crate::index::plot::Frame;
pub use crate::index::Point;

use super::search::{marked_and_finest, outside, usable};

/// The widest plot, in pixel columns.
pub const MAX_WIDTH: u32 = 16_384;
/// The longest range a plot may cover: 200 years.
pub const MAX_RANGE: Micros = 200 * 366 * DAY;
/// Raw rows are read at most this much of the range at a time (so a plot without an
/// index holds one day of rows, not the range's).
pub const RAW_CHUNK: Micros = DAY;

/// What to plot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlotRequest {
    /// The channel (a data-level `conjoined` name, case-insensitive).
    pub channel: String,
    /// The device.
    pub id: i32,
    /// The range, half-open `[from, to)`.
    pub range: (Micros, Micros),
    /// Pixel columns.
    pub width: u32,
}

/// The frames of one plot and what to label it with (serialised as in `docs/plot.md`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Plot {
    /// Coarsest first; the last is exact unless the caller stopped early.
    pub frames: Vec<Frame>,
    /// The channel's unit, where its index declares one.
    pub unit: Option<String>,
    /// Why the index was not used, when it was not (for the user).
    pub note: Option<String>,
}

/// Why a plot failed.
#[derive(Debug, thiserror::Error)]
pub enum PlotFailure {
    /// A store could not answer.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The planner was driven wrong (a bug) or the range is empty.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// The device has no rows at all.
    #[error("--id {0}: no such device (it has no rows)")]
    UnknownDevice(i32),
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
    /// The request is outside what a plot accepts.
    #[error("{what} is {got}; the limit is {limit}")]
    Limit {
        /// What is out of bounds (`--width`, the range).
        what: &'static str,
        /// What was asked for.
        got: String,
        /// The limit.
        limit: String,
    },
}

impl PlotFailure {
    /// Whether the user asked for something that cannot be (exit code 2, HTTP 4xx),
    /// rather than a store failing.
    pub fn is_usage(&self) -> bool {
        !matches!(
            self,
            PlotFailure::Store(_) | PlotFailure::Plot(PlotError::Unexpected { .. })
        )
    }
}

impl PlotRequest {
    /// Checks the width and range against the limits.
    ///
    /// # Errors
    /// [`PlotFailure::Limit`] naming the limit.
    pub fn check(&self) -> Result<(), PlotFailure> {
        if self.width == 0 || self.width > MAX_WIDTH {
            return Err(PlotFailure::Limit {
                what: "the width",
                got: format!("{} px", self.width),
                limit: format!("1 to {MAX_WIDTH} px"),
            });
        }
        let (from, to) = self.range;
        if to <= from {
            return Err(PlotFailure::Limit {
                what: "the range",
                got: "empty (--to is not after --from)".into(),
                limit: "a range of at least 1 µs".into(),
            });
        }
        if to.saturating_sub(from) > MAX_RANGE {
            return Err(PlotFailure::Limit {
                what: "the range",
                got: format!("{} days", to.saturating_sub(from) / DAY),
                limit: format!("{} days (200 years)", MAX_RANGE / DAY),
            });
        }
        Ok(())
    }
}

/// Plots `req`: every frame, or only the first `stop_after + 1` (`Some(0)`: only the
/// coarsest). `index` is the index store (`None` when it cannot be reached: the plot
/// reads raw rows), `declared` the `[index]` configuration.
///
/// # Errors
/// [`PlotFailure`]: a limit exceeded, an unknown device or channel, a store failing.
pub async fn plot(
    data: &AnyStore,
    index: Option<&IndexStore>,
    declared: &IndexConfig,
    req: &PlotRequest,
    stop_after: Option<usize>,
) -> Result<Plot, PlotFailure> {
    req.check()?;
    if !data.device_known(req.id).await? {
        return Err(PlotFailure::UnknownDevice(req.id));
    }
    let decl = declared.feature(&req.channel);
    let (usable, mut note) = usable(index, decl).await?;
    let covered = usable.as_ref().filter(|u| u.declared.covers(req.id));
    if usable.is_some() && covered.is_none() {
        note = Some(format!(
            "device {} is not in the index of `{}`: drawn from raw rows",
            req.id, req.channel
        ));
    }
    let (levels, untrusted) = match covered {
        Some(u) => {
            let mut untrusted = data
                .untrusted(
                    &req.channel,
                    req.id,
                    marked_and_finest(&u.levels),
                    req.range,
                )
                .await?;
            untrusted.extend(outside(u.built.range, req.range));
            (Some(&u.levels), untrusted)
        }
        None => (None, Vec::new()),
    };
    let mut planner = Planner::new(levels, req.range, req.width, untrusted)?;
    let mut frames: Vec<Frame> = Vec::new();
    let mut rows_seen = 0u64;
    loop {
        match planner.next() {
            Step::Buckets { level, spans } => {
                let (Some(u), Some(ix)) = (covered, index) else {
                    return Err(PlotError::Unexpected {
                        given: "no buckets (no index)",
                        needs: "buckets",
                    }
                    .into());
                };
                let buckets = ix.load_buckets(&u.built, req.id, level, &spans).await?;
                planner.give_buckets(buckets)?;
            }
            Step::Points { spans } => {
                let chunks = chunked(&spans, RAW_CHUNK);
                let n = chunks.len();
                for (i, chunk) in chunks.into_iter().enumerate() {
                    let points = data.load_points(&req.channel, req.id, &chunk).await?;
                    rows_seen += points.len() as u64;
                    if i + 1 < n {
                        planner.feed_points(points)?;
                    } else {
                        planner.give_points(points)?;
                    }
                }
            }
            Step::Frame => {
                let frame = planner.take_frame().ok_or(PlotError::Unexpected {
                    given: "no frame",
                    needs: "a frame",
                })?;
                let step = frame.step;
                frames.push(frame);
                if stop_after.is_some_and(|s| step >= s) {
                    break;
                }
            }
            Step::Done => break,
        }
    }
    let any_value = frames
        .last()
        .is_some_and(|f| f.columns.iter().any(Option::is_some));
    if decl.is_none() && rows_seen == 0 && !any_value {
        return Err(PlotFailure::UnknownChannel {
            channel: req.channel.clone(),
            declared: declared.declared_channels(),
        });
    }
    let note = note.or_else(|| {
        decl.is_none().then(|| {
            format!(
                "no feature index is declared for `{}`: drawn from raw rows (declare one \
                 with [[index.feature]] and run `recalcd index build --channel {}`)",
                req.channel, req.channel
            )
        })
    });
    Ok(Plot {
        frames,
        unit: decl.and_then(|d| d.unit.clone()),
        note,
    })
}

/// The zone device `id` reads its times in: its `#TZ` constant when that names a zone,
/// else `default` (the configuration's `engine.default_timezone`).
///
/// # Errors
/// [`StoreError`] if the equations or constants cannot be read.
pub async fn device_zone(
    data: &AnyStore,
    id: i32,
    default: chrono_tz::Tz,
) -> Result<chrono_tz::Tz, StoreError> {
    let catalog = Catalog::build(&data.load_equations().await?);
    let constants = Constants::build(&data.load_constants().await?, catalog.symbols());
    Ok(constants
        .for_device(id)
        .zone
        .as_deref()
        .and_then(|z| parse_zone(z).ok())
        .unwrap_or(default))
}

/// `spans` cut into groups of pieces no longer than `chunk` each group, in order (one
/// group per query).
fn chunked(spans: &[(Micros, Micros)], chunk: Micros) -> Vec<Vec<(Micros, Micros)>> {
    let mut out: Vec<Vec<(Micros, Micros)>> = Vec::new();
    let mut group: Vec<(Micros, Micros)> = Vec::new();
    let mut size: Micros = 0;
    for &(a, b) in spans {
        let mut a = a;
        while a < b {
            let end = b.min(a.saturating_add(chunk - size));
            group.push((a, end));
            size += end - a;
            a = end;
            if size >= chunk {
                out.push(std::mem::take(&mut group));
                size = 0;
            }
        }
    }
    if !group.is_empty() || out.is_empty() {
        out.push(group);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_reads_are_cut_into_chunks() {
        assert_eq!(chunked(&[], 10), vec![vec![]]);
        assert_eq!(chunked(&[(0, 5), (7, 9)], 10), vec![vec![(0, 5), (7, 9)]]);
        assert_eq!(
            chunked(&[(0, 25)], 10),
            vec![vec![(0, 10)], vec![(10, 20)], vec![(20, 25)]]
        );
        assert_eq!(
            chunked(&[(0, 6), (8, 16)], 10),
            vec![vec![(0, 6), (8, 12)], vec![(12, 16)]]
        );
    }

    #[test]
    fn plots_serialise_as_documented() {
        let p = Plot {
            frames: vec![Frame {
                step: 0,
                level: Some(DAY),
                columns: vec![Some(Column::point(5, 1.5)), None],
                exact: false,
                rows_read: 0,
                buckets_read: 7,
            }],
            unit: Some("°C".into()),
            note: None,
        };
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"unit": "°C", "note": null, "frames": [{
                "step": 0, "level": 86_400_000_000i64, "exact": false, "rows_read": 0,
                "buckets_read": 7, "columns": [
                    {"first": {"t": 5, "v": 1.5}, "last": {"t": 5, "v": 1.5}, "min": 1.5, "max": 1.5},
                    null]}]})
        );
    }

    #[test]
    fn limits_are_named() {
        let mut r = PlotRequest {
            channel: "tmp".into(),
            id: 1,
            range: (0, DAY),
            width: 0,
        };
        assert!(r.check().unwrap_err().to_string().contains("1 to 16384 px"));
        r.width = 800;
        assert!(r.check().is_ok());
        r.range = (0, MAX_RANGE + 1);
        assert!(r.check().unwrap_err().to_string().contains("200 years"));
        r.range = (5, 5);
        assert!(r.check().unwrap_err().is_usage());
    }
}
