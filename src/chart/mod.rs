//! Line charts of M4 columns ([`crate::index::m4`]), drawn without antialiasing so that a
//! chart drawn from the M4 of every row is pixel-identical to one drawn from the rows
//! themselves. Pure: no I/O; `recalcd plot` writes the bytes.
//!
//! A chart is laid out once ([`Layout`]) into a list of [`Shape`]s (its scene), which
//! [`Canvas`] rasterises (and encodes as PNG) and [`svg`] writes as SVG, so both show
//! the same picture. Each channel gets a panel of its own (its own value scale and
//! unit) over the same time axis; the time labels are in the device's zone.
//!
//! How a panel's series is drawn: pixel column `c` of the plot area is M4 column `c`;
//! value `v` is row [`Scale::row`]. In each column a vertical line joins the rows of
//! the minimum and the maximum, and a line joins the last point of each column with
//! values to the first of the next. Drawing every row instead (each point at its
//! column and row, joined in time order) sets exactly the same pixels.

pub mod canvas;
pub mod svg;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

use crate::index::m4::{Column, Columns};
use crate::index::{datetime, micros, Micros};
pub use canvas::{Canvas, Rgb, CHAR_W, LINE_H};

/// Left margin: room for the value labels.
const LEFT: u32 = 10 * CHAR_W;
/// Right margin.
const RIGHT: u32 = 12;
/// Top margin: the title and the status line.
const TOP: u32 = 2 * LINE_H + 8;
/// Bottom margin: the time labels.
const BOTTOM: u32 = LINE_H + 8;
/// The strip above each panel with its channel and unit.
const STRIP: u32 = LINE_H + 2;
/// Space between panels.
const GAP: u32 = 6;

/// The smallest image: narrower or lower leaves no plot area worth the name.
pub const MIN_WIDTH: u32 = 200;
/// The smallest height of one panel's plot area.
pub const MIN_PANEL_HEIGHT: u32 = 40;

/// The page colour.
pub const BACKGROUND: Rgb = [255, 255, 255];
/// Text and axes.
pub const INK: Rgb = [40, 40, 40];
/// The frame around a plot area.
pub const FRAME: Rgb = [150, 150, 150];
/// Columns where a search matched.
pub const SHADE: Rgb = [255, 232, 170];
/// The series colours, panel by panel.
pub const SERIES: [Rgb; 4] = [
    [31, 119, 180],
    [214, 39, 40],
    [44, 160, 44],
    [148, 103, 189],
];

/// Where things go in a `width × height` chart of `panels` panels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Image width.
    pub width: u32,
    /// Image height.
    pub height: u32,
    /// Left edge of the plot areas.
    pub x0: u32,
    /// Width of the plot areas: the number of M4 columns.
    pub columns: u32,
    /// Number of panels.
    pub panels: u32,
    /// Height of each panel's plot area.
    pub panel_height: u32,
}

impl Layout {
    /// The layout, or the smallest size that would fit (`Err((min_width, min_height))`).
    ///
    /// # Errors
    /// `(min_width, min_height)` when the image is too small for `panels` panels.
    pub fn new(width: u32, height: u32, panels: u32) -> Result<Layout, (u32, u32)> {
        let panels = panels.max(1);
        let fixed = TOP + BOTTOM + panels * STRIP + (panels - 1) * GAP;
        let min_height = fixed + panels * MIN_PANEL_HEIGHT;
        if width < MIN_WIDTH || height < min_height {
            return Err((MIN_WIDTH, min_height));
        }
        Ok(Layout {
            width,
            height,
            x0: LEFT,
            columns: width - LEFT - RIGHT,
            panels,
            panel_height: (height - fixed) / panels,
        })
    }

    /// Top edge of panel `i`'s plot area.
    pub fn y0(&self, i: u32) -> u32 {
        TOP + STRIP + i * (STRIP + self.panel_height + GAP)
    }
}

/// Maps values to pixel rows of a plot area: `max` on the top row, `min` on the
/// bottom one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    /// The smallest value (bottom row).
    pub min: f64,
    /// The largest value (top row).
    pub max: f64,
    /// The top row.
    pub y0: i64,
    /// Rows.
    pub height: i64,
}

impl Scale {
    /// The scale of `columns` (their smallest and largest value), `None` without values.
    pub fn of(columns: &[Option<Column>], y0: i64, height: i64) -> Option<Scale> {
        let mut it = columns.iter().flatten();
        let first = it.next()?;
        let (min, max) = it.fold((first.min, first.max), |(a, b), c| {
            (a.min(c.min), b.max(c.max))
        });
        Some(Scale {
            min,
            max,
            y0,
            height,
        })
    }

    /// The row of `v` (monotone: a larger value is never lower).
    pub fn row(&self, v: f64) -> i64 {
        let h = (self.height - 1).max(0);
        if self.max > self.min {
            let f = ((self.max - v) / (self.max - self.min)).clamp(0.0, 1.0);
            self.y0 + (f * h as f64).round() as i64
        } else {
            self.y0 + h / 2
        }
    }
}

/// One channel's panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Its label: the channel and the unit.
    pub label: String,
    /// M4 per plot-area column (len = [`Layout::columns`]).
    pub columns: Vec<Option<Column>>,
    /// Column ranges to shade (a search's matches).
    pub shade: Vec<std::ops::Range<usize>>,
    /// Said in the middle when there is no value: why.
    pub empty: String,
    /// The series colour.
    pub color: Rgb,
}

/// A chart: a title, a status line, panels over one time axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Where things go.
    pub layout: Layout,
    /// First line: what is drawn.
    pub title: String,
    /// Second line: how (level, rows read, exactness).
    pub status: String,
    /// The panels, top to bottom.
    pub panels: Vec<Panel>,
    /// Time labels: plot-area column and text.
    pub ticks: Vec<(usize, String)>,
}

/// One thing to draw.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// A filled rectangle `[x, x + w) × [y, y + h)`.
    Fill {
        /// Left.
        x: i64,
        /// Top.
        y: i64,
        /// Width.
        w: i64,
        /// Height.
        h: i64,
        /// Colour.
        color: Rgb,
    },
    /// A line between two pixel centres, both included.
    Line {
        /// Start.
        from: (i64, i64),
        /// End.
        to: (i64, i64),
        /// Colour.
        color: Rgb,
    },
    /// Text with its top-left corner at `at`.
    Text {
        /// Top-left corner.
        at: (i64, i64),
        /// The text.
        text: String,
        /// Colour.
        color: Rgb,
    },
}

impl Chart {
    /// The chart as shapes, back to front.
    pub fn scene(&self) -> Vec<Shape> {
        let l = &self.layout;
        let mut out = vec![
            Shape::Fill {
                x: 0,
                y: 0,
                w: l.width as i64,
                h: l.height as i64,
                color: BACKGROUND,
            },
            text(4, 4, &self.title, INK),
            text(4, 4 + LINE_H as i64, &self.status, INK),
        ];
        let (x0, w) = (l.x0 as i64, l.columns as i64);
        for (i, p) in self.panels.iter().enumerate() {
            let y0 = l.y0(i as u32) as i64;
            let h = l.panel_height as i64;
            out.push(text(x0, y0 - STRIP as i64 + 1, &p.label, INK));
            for r in &p.shade {
                out.push(Shape::Fill {
                    x: x0 + r.start as i64,
                    y: y0,
                    w: (r.end - r.start) as i64,
                    h,
                    color: SHADE,
                });
            }
            frame(&mut out, x0 - 1, y0 - 1, w + 2, h + 2);
            let Some(scale) = Scale::of(&p.columns, y0, h) else {
                let cx = x0 + (w - p.empty.chars().count() as i64 * CHAR_W as i64) / 2;
                out.push(text(cx.max(x0), y0 + h / 2 - 4, &p.empty, INK));
                continue;
            };
            for (v, label) in value_ticks(scale.min, scale.max) {
                let y = scale.row(v);
                out.push(Shape::Line {
                    from: (x0 - 5, y),
                    to: (x0 - 2, y),
                    color: INK,
                });
                let tx = x0 - 7 - label.chars().count() as i64 * CHAR_W as i64;
                out.push(text(tx, (y - 4).clamp(y0 - 4, y0 + h - 4), &label, INK));
            }
            series(&mut out, &p.columns, &scale, x0, p.color);
        }
        let bottom = (l.y0(l.panels - 1) + l.panel_height) as i64;
        for (c, label) in &self.ticks {
            let x = x0 + *c as i64;
            out.push(Shape::Line {
                from: (x, bottom + 1),
                to: (x, bottom + 3),
                color: INK,
            });
            let half = label.chars().count() as i64 * CHAR_W as i64 / 2;
            let tx = (x - half).clamp(0, (l.width as i64 - 2 * half).max(0));
            out.push(text(tx, bottom + 6, label, INK));
        }
        out
    }

    /// The chart rasterised.
    pub fn render(&self) -> Canvas {
        let mut c = Canvas::new(self.layout.width, self.layout.height, BACKGROUND);
        for s in self.scene() {
            match s {
                Shape::Fill { x, y, w, h, color } => c.fill(x, y, w, h, color),
                Shape::Line { from, to, color } => c.line(from.0, from.1, to.0, to.1, color),
                Shape::Text { at, text, color } => c.text(at.0, at.1, &text, color),
            }
        }
        c
    }
}

fn text(x: i64, y: i64, s: &str, color: Rgb) -> Shape {
    Shape::Text {
        at: (x, y),
        text: s.to_string(),
        color,
    }
}

fn frame(out: &mut Vec<Shape>, x: i64, y: i64, w: i64, h: i64) {
    let (r, b) = (x + w - 1, y + h - 1);
    for (from, to) in [
        ((x, y), (r, y)),
        ((x, b), (r, b)),
        ((x, y), (x, b)),
        ((r, y), (r, b)),
    ] {
        out.push(Shape::Line {
            from,
            to,
            color: FRAME,
        });
    }
}

/// The series of `columns` (see the module's docs).
fn series(out: &mut Vec<Shape>, columns: &[Option<Column>], s: &Scale, x0: i64, color: Rgb) {
    let mut prev: Option<(i64, f64)> = None;
    for (c, col) in columns.iter().enumerate() {
        let Some(col) = col else { continue };
        let x = x0 + c as i64;
        let (Some(first), Some(last)) = (col.first.value(), col.last.value()) else {
            continue;
        };
        if let Some((px, pv)) = prev {
            out.push(Shape::Line {
                from: (px, s.row(pv)),
                to: (x, s.row(first)),
                color,
            });
        }
        out.push(Shape::Line {
            from: (x, s.row(col.max)),
            to: (x, s.row(col.min)),
            color,
        });
        prev = Some((x, last));
    }
}

/// Up to about five round values between `min` and `max`, with their labels (at most
/// nine characters).
pub fn value_ticks(min: f64, max: f64) -> Vec<(f64, String)> {
    if max.partial_cmp(&min) != Some(std::cmp::Ordering::Greater)
        || !min.is_finite()
        || !max.is_finite()
    {
        return vec![(min, label(min, 0))];
    }
    let raw = (max - min) / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let mut out = Vec::new();
    let mut v = (min / step).ceil() * step;
    while v <= max && out.len() < 12 {
        out.push((v, label(v, decimals)));
        v += step;
    }
    out
}

fn label(v: f64, decimals: usize) -> String {
    let v = if v == 0.0 { 0.0 } else { v }; // no "-0"
    let s = format!("{v:.decimals$}");
    if s.len() <= 9 {
        s
    } else {
        format!("{v:.2e}")
    }
}

/// Time labels for `cols` in `zone`: round local times (seconds to years) with at most
/// `max` labels, as (column, text).
pub fn time_ticks(cols: &Columns, zone: Tz, max: usize) -> Vec<(usize, String)> {
    const SUB_DAY: [i64; 17] = [
        1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200,
    ];
    let span = cols.to.saturating_sub(cols.from);
    let local = |t: Micros| zone.from_utc_datetime(&datetime(t)).naive_local();
    let utc = |n: NaiveDateTime| {
        zone.from_local_datetime(&n)
            .earliest()
            .map(|d| micros(d.naive_utc()))
    };
    let (lo, hi) = (local(cols.from), local(cols.to));
    let max = max.max(1);
    let collect = |times: &mut dyn Iterator<Item = NaiveDateTime>, fmt: &str| {
        let mut out = Vec::new();
        for n in times {
            if let Some(c) = utc(n).and_then(|t| cols.of(t)) {
                out.push((c, n.format(fmt).to_string()));
            }
        }
        out
    };
    for step in SUB_DAY {
        if span / (step * 1_000_000) > max as i64 * 2 {
            continue;
        }
        let day = lo.date().and_hms_opt(0, 0, 0).unwrap_or(lo);
        let first = (lo - day).num_seconds().div_euclid(step) * step;
        let fmt = if step < 60 { "%H:%M:%S" } else { "%H:%M" };
        let mut it = (0..)
            .map(|k| day + Duration::seconds(first + k * step))
            .take_while(|n| *n <= hi);
        let out = collect(&mut it, fmt);
        if out.len() <= max {
            return out;
        }
    }
    for days in [1i64, 2, 7, 14] {
        if span / (days * 86_400_000_000) > max as i64 * 2 {
            continue;
        }
        let e = lo.date().num_days_from_ce() as i64;
        let start = lo.date() - Duration::days(e.rem_euclid(days));
        let mut it = (0..)
            .map(|k| (start + Duration::days(k * days)).and_hms_opt(0, 0, 0))
            .map_while(|n| n.filter(|n| *n <= hi));
        let out = collect(&mut it, "%Y-%m-%d");
        if out.len() <= max {
            return out;
        }
    }
    for months in [1i32, 2, 3, 6, 12, 24, 60, 120, 240, 600, 1_200] {
        let m0 = lo.year() * 12 + lo.month0() as i32;
        let m0 = m0 - m0.rem_euclid(months);
        let mut it = (0..)
            .map(|k| {
                let m = m0 + k * months;
                NaiveDate::from_ymd_opt(m.div_euclid(12), m.rem_euclid(12) as u32 + 1, 1)
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
            })
            .map_while(|n| n.filter(|n| *n <= hi));
        let fmt = if months % 12 == 0 { "%Y" } else { "%Y-%m" };
        let out = collect(&mut it, fmt);
        if out.len() <= max {
            return out;
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::m4::m4;
    use crate::index::{Point, SECOND};

    #[test]
    fn the_layout_refuses_what_does_not_fit() {
        let l = Layout::new(800, 300, 1).unwrap();
        assert_eq!(l.columns, 800 - LEFT - RIGHT);
        assert!(l.y0(0) + l.panel_height + BOTTOM <= 300);
        let two = Layout::new(800, 300, 2).unwrap();
        assert!(two.y0(1) + two.panel_height + BOTTOM <= 300);
        assert!(two.y0(1) > two.y0(0) + two.panel_height);
        assert_eq!(Layout::new(100, 300, 1), Err((MIN_WIDTH, 98)));
        assert!(Layout::new(800, 100, 3).is_err());
    }

    #[test]
    fn scales_are_monotone() {
        let s = Scale {
            min: -3.0,
            max: 7.0,
            y0: 10,
            height: 50,
        };
        assert_eq!((s.row(7.0), s.row(-3.0)), (10, 59));
        let mut last = i64::MIN;
        for k in 0..=1000 {
            let r = s.row(7.0 - k as f64 / 100.0);
            assert!(r >= last);
            last = r;
        }
    }

    /// The M4 chart sets the same pixels as every point drawn and joined.
    #[test]
    fn m4_draws_what_every_point_draws() {
        let layout = Layout::new(300, 160, 1).unwrap();
        let cols = Columns::new(0, 10_000 * SECOND, layout.columns).unwrap();
        let points: Vec<Point> = (0..10_000)
            .map(|i| Point {
                t: i * SECOND + (i % 7) * 1_000,
                v: Some(((i * 7919) % 1000) as f64 / 10.0 + (i as f64 / 300.0).sin() * 50.0),
            })
            .collect();
        let columns = m4(&cols, points.iter().copied());
        let chart = Chart {
            layout,
            title: "t".into(),
            status: String::new(),
            panels: vec![Panel {
                label: "x".into(),
                columns: columns.clone(),
                shade: vec![],
                empty: "none".into(),
                color: SERIES[0],
            }],
            ticks: time_ticks(&cols, chrono_tz::UTC, 3),
        };
        let img = chart.render();
        let scale = Scale::of(&columns, layout.y0(0) as i64, layout.panel_height as i64).unwrap();
        let mut raw = Canvas::new(layout.width, layout.height, BACKGROUND);
        let mut prev: Option<(i64, i64)> = None;
        for p in &points {
            let x = layout.x0 as i64 + cols.of(p.t).unwrap() as i64;
            let y = scale.row(p.v.unwrap());
            let (px, py) = prev.unwrap_or((x, y));
            raw.line(px, py, x, y, SERIES[0]);
            prev = Some((x, y));
        }
        let mut n = 0;
        for y in 0..layout.height as i64 {
            for x in 0..layout.width as i64 {
                let a = img.get(x, y) == Some(SERIES[0]);
                let b = raw.get(x, y) == Some(SERIES[0]);
                assert_eq!(a, b, "pixel ({x}, {y})");
                n += a as usize;
            }
        }
        assert!(n > layout.columns as usize, "{n} pixels drawn");
    }

    #[test]
    fn ticks_are_round_and_bounded() {
        let v = value_ticks(-3.2, 17.9);
        assert_eq!(
            v.iter().map(|x| x.1.as_str()).collect::<Vec<_>>(),
            ["0", "10"]
        );
        let v = value_ticks(0.01, 0.05);
        assert_eq!(v[0].1, "0.01");
        assert_eq!(value_ticks(3.0, 3.0).len(), 1);
        let day = 86_400 * SECOND;
        let t0 = micros(
            NaiveDate::from_ymd_opt(2024, 3, 1)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap(),
        );
        let cols = Columns::new(t0, t0 + 2 * day, 1_000).unwrap();
        let utc = time_ticks(&cols, chrono_tz::UTC, 8);
        assert!(utc.len() <= 8 && utc.len() >= 4, "{utc:?}");
        assert_eq!(utc[0], (0, "00:00".to_string()));
        let prague = time_ticks(&cols, chrono_tz::Europe::Prague, 8);
        // Local midnight is 23:00 UTC the day before: not in the range; 06:00 local is.
        assert!(prague.iter().all(|(_, s)| s.ends_with(":00")));
        assert_ne!(prague[0].0, 0);
        let year = Columns::new(t0, t0 + 365 * day, 1_000).unwrap();
        let y = time_ticks(&year, chrono_tz::UTC, 10);
        assert!(y.iter().all(|(_, s)| s.len() == 7), "{y:?}");
        let huge = Columns::new(t0 - 150 * 365 * day, t0 + 40 * 365 * day, 1_000).unwrap();
        let h = time_ticks(&huge, chrono_tz::UTC, 10);
        assert!(!h.is_empty() && h.len() <= 10, "{h:?}");
    }
}
