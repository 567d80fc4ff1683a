//! Plots: the service API (`recalcd::service::plot`) through the real stores and
//! `recalcd plot` through the real binary, on both stores (`plot::postgres::*`,
//! `plot::questdb::*`).
//!
//! Every comparison is with `index::m4::m4` over the points the test reads from the
//! stored rows itself (its own small `conjoined` reader), not with what recalcd read.

use std::path::PathBuf;
use std::process::Output;

use recalcd::chart::{Canvas, Chart, Layout, Panel, Scale, SERIES};
use recalcd::config::index::{RawFeatureIndex, RawIndex};
use recalcd::config::Config;
use recalcd::index::m4::{m4, Columns};
use recalcd::index::{Micros, Point, SECOND};
use recalcd::service::plot::{plot, Plot, PlotFailure, PlotRequest};
use recalcd::store::index::IndexStore;

use crate::support::{unique, Harness};

on_both_stores!(
    the_final_frame_is_m4_of_every_row,
    unknown_device_and_channel_are_refused,
    the_chart_is_pixel_exact,
    an_empty_range_draws_an_empty_chart,
    bad_plot_input_is_one_line_and_exit_2,
    several_channels_and_shaded_matches,
);

/// A test's store and config file: `tmp` indexed with `1d/1h/10m/1m` and unit `°C`.
pub(crate) struct Setup<'a> {
    pub(crate) h: &'a Harness,
    pub(crate) path: PathBuf,
    pub(crate) dir: PathBuf,
}

impl Setup<'_> {
    pub(crate) fn new(h: &Harness) -> Setup<'_> {
        let dir = std::env::temp_dir().join(unique("recalcd-plot-"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("recalcd.toml");
        std::fs::write(
            &path,
            "[log]\nlevel = \"warn\"\n[index]\n[[index.feature]]\nchannel = \"tmp\"\n\
             levels = [\"1d\", \"1h\", \"10m\", \"1m\"]\nunit = \"°C\"\n",
        )
        .unwrap();
        Setup { h, path, dir }
    }

    /// The configuration the binary reads (for the library calls of the test).
    pub(crate) fn config(&self) -> Config {
        let mut c = self.h.config.clone();
        c.index = RawIndex {
            database_url: None,
            feature: vec![RawFeatureIndex {
                channel: "tmp".into(),
                levels: ["1d", "1h", "10m", "1m"].map(String::from).to_vec(),
                unit: Some("°C".into()),
                devices: None,
            }],
            ..RawIndex::default()
        }
        .validate()
        .unwrap();
        c
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.h.run_with(&self.path, args)
    }

    pub(crate) fn ok(&self, args: &[&str]) -> String {
        self.h.ok_with(&self.path, args)
    }

    /// Rows of devices 5 and 7 over two days from 2024-03-01 at irregular times: `x`
    /// always, `tmp` a number, a string (`hot`) or absent; then the index of `tmp`.
    pub(crate) fn load(&self) {
        self.ok(&["migrate"]);
        let mut values = Vec::new();
        for id in [5, 7] {
            for k in 0..900i64 {
                let t = start() + chrono::Duration::seconds(k * 191 + i64::from(id) * 7);
                let x = ((k * 37 + i64::from(id)) % 50) as f64 / 4.0;
                let tmp = match k % 13 {
                    0 => "tmp=hot;".to_string(),
                    5 => String::new(),
                    _ => format!("tmp={};", ((k * 7919) % 83) as f64 - 20.5),
                };
                let at = t.format("%Y-%m-%d %H:%M:%S");
                values.push(format!("('{at}', '{at}', {id}, 0, 'x={x};{tmp}')"));
            }
        }
        self.h.exec(&format!(
            r#"INSERT INTO {{data}} (datetime, data_time, id, recalc, conjoined) VALUES {};"#,
            values.join(",\n")
        ));
        self.h.settle();
        self.ok(&["index", "build", "--channel", "tmp"]);
    }

    /// The points of `channel` of device `id`, read by the test from the stored rows.
    pub(crate) fn points(&self, channel: &str, id: i32) -> Vec<Point> {
        let rows = self.h.query(&format!(
            "SELECT datetime, conjoined FROM {{data}} WHERE id = {id} ORDER BY datetime"
        ));
        let mut out = Vec::new();
        for r in rows {
            let t = parse_time(r[0].as_deref().unwrap());
            let text = r[1].clone().unwrap_or_default();
            let last = text
                .split(';')
                .filter_map(|e| e.split_once('='))
                .rfind(|(n, _)| n.trim().eq_ignore_ascii_case(channel));
            if let Some((_, v)) = last {
                out.push(Point {
                    t,
                    v: v.trim().parse::<f64>().ok().filter(|v| v.is_finite()),
                });
            }
        }
        out
    }

    /// Runs the plot API on a runtime of its own.
    pub(crate) fn plot(
        &self,
        req: PlotRequest,
        stop_after: Option<usize>,
    ) -> Result<Plot, PlotFailure> {
        let config = self.config();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    let data = recalcd::store::connect(&config).await.expect("data store");
                    let index = IndexStore::connect(&config).await.expect("index store");
                    plot(&data, Some(&index), &config.index, &req, stop_after).await
                })
        })
        .join()
        .unwrap()
    }
}

impl Drop for Setup<'_> {
    fn drop(&mut self) {
        if !self.h.is_postgres() {
            let t = recalcd::store::index::bucket_table(&self.h.config.tables, "tmp");
            self.h.exec(&format!(r#"DROP TABLE IF EXISTS "{t}""#));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn start() -> chrono::NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(2024, 3, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
}

pub(crate) fn start_micros() -> Micros {
    recalcd::index::micros(start())
}

/// `2024-03-01 00:04:11` (PostgreSQL) or `2024-03-01T00:04:11.000000Z` (QuestDB).
fn parse_time(s: &str) -> Micros {
    let s = s.trim_end_matches('Z').replace('T', " ");
    let t = chrono::NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S%.f")
        .unwrap_or_else(|e| panic!("{s}: {e}"));
    recalcd::index::micros(t)
}

fn req(channel: &str, id: i32, range: (Micros, Micros), width: u32) -> PlotRequest {
    PlotRequest {
        channel: channel.into(),
        id,
        range,
        width,
    }
}

fn the_final_frame_is_m4_of_every_row(h: &Harness) {
    let s = Setup::new(h);
    s.load();
    let t0 = start_micros();
    // Ranges whose ends align with no bucket, widths whose edges cut buckets, a range
    // beyond the data, and one covering it all.
    let mut seed = 0x2545_f491_u64;
    let mut rnd = |n: i64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as i64
    };
    let mut cases = vec![
        (t0 - 86_400 * SECOND, t0 + 3 * 86_400 * SECOND, 333u32),
        (t0 + 3_601 * SECOND + 17, t0 + 86_400 * SECOND + 99, 1_200),
        (t0 + 5 * 86_400 * SECOND, t0 + 6 * 86_400 * SECOND, 50),
    ];
    for _ in 0..6 {
        let from = t0 + rnd(150_000) * SECOND + rnd(1_000_000);
        cases.push((
            from,
            from + (1 + rnd(120_000)) * SECOND,
            1 + rnd(900) as u32,
        ));
    }
    let tmp7 = s.points("tmp", 7);
    for (round, flagged) in [false, true].into_iter().enumerate() {
        if flagged {
            // Rows changed and still flagged: the index must not be trusted there.
            h.exec(
                "UPDATE {data} SET recalc = 1, conjoined = 'x=1;tmp=500;' WHERE id = 7 \
                 AND datetime >= '2024-03-01 05:00' AND datetime < '2024-03-01 07:10'",
            );
            h.settle();
        }
        let now = s.points("tmp", 7);
        assert!(flagged == (now != tmp7));
        for &(from, to, width) in &cases {
            let p = s
                .plot(req("TMP", 7, (from, to), width), None)
                .unwrap_or_else(|e| panic!("{e}"));
            let cols = Columns::new(from, to, width).unwrap();
            let last = p.frames.last().unwrap();
            assert!(last.exact, "round {round} {from}..{to}/{width}");
            assert_eq!(
                last.columns,
                m4(&cols, now.iter().copied()),
                "round {round} {from}..{to}/{width}"
            );
            assert!(p.frames[..p.frames.len() - 1].iter().all(|f| !f.exact));
            assert_eq!(p.unit.as_deref(), Some("°C"));
            assert_eq!(p.note, None);
            let first = s.plot(req("tmp", 7, (from, to), width), Some(0)).unwrap();
            assert_eq!(first.frames.len(), 1);
            assert_eq!(first.frames[0], p.frames[0]);
        }
    }
    // The whole data at 1,200 px reads far fewer rows than it holds.
    let all = s
        .plot(req("tmp", 5, (t0, t0 + 2 * 86_400 * SECOND), 120), None)
        .unwrap();
    let last = all.frames.last().unwrap();
    assert!(all.frames.len() >= 2);
    assert!(
        last.rows_read < 900 / 2,
        "rows read: {} of 900",
        last.rows_read
    );
    // A channel without an index: raw rows, and a note.
    let x = s
        .plot(req("x", 5, (t0, t0 + 86_400 * SECOND), 77), None)
        .unwrap();
    let cols = Columns::new(t0, t0 + 86_400 * SECOND, 77).unwrap();
    assert_eq!(x.frames.len(), 1);
    assert_eq!(x.frames[0].level, None);
    assert_eq!(x.frames[0].columns, m4(&cols, s.points("x", 5)));
    assert!(x
        .note
        .unwrap()
        .contains("no feature index is declared for `x`"));
}

fn unknown_device_and_channel_are_refused(h: &Harness) {
    let s = Setup::new(h);
    s.load();
    let t0 = start_micros();
    let day = (t0, t0 + 86_400 * SECOND);
    let e = s.plot(req("tmp", 99, day, 100), None).unwrap_err();
    assert!(e.is_usage() && e.to_string().contains("--id 99"), "{e}");
    let e = s.plot(req("nope", 5, day, 100), None).unwrap_err();
    assert!(
        e.is_usage() && e.to_string().contains("--channel nope"),
        "{e}"
    );
    let e = s.plot(req("tmp", 5, day, 100_000), None).unwrap_err();
    assert!(e.is_usage() && e.to_string().contains("16384"), "{e}");
    // A range without data: an empty plot, not an error.
    let empty = s
        .plot(req("tmp", 5, (t0 - 86_400 * SECOND, t0), 100), None)
        .unwrap();
    assert!(empty
        .frames
        .last()
        .unwrap()
        .columns
        .iter()
        .all(Option::is_none));
}

/// `2024-03-01T05:17:03`-style argument for `t`.
fn arg(t: Micros) -> String {
    recalcd::index::datetime(t)
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

/// Whether the plot areas of `a` and `b` (laid out as `l`) hold the same pixels.
fn plot_area_diff(l: &Layout, a: &Canvas, b: &Canvas) -> Option<(i64, i64)> {
    for p in 0..l.panels {
        let y0 = l.y0(p) as i64;
        for y in y0..y0 + l.panel_height as i64 {
            for x in l.x0 as i64..(l.x0 + l.columns) as i64 {
                if a.get(x, y) != b.get(x, y) {
                    return Some((x, y));
                }
            }
        }
    }
    None
}

fn the_chart_is_pixel_exact(h: &Harness) {
    let s = Setup::new(h);
    s.load();
    let t0 = start_micros();
    let now = s.points("tmp", 7);
    for (from, to, w, hgt) in [
        // Two days at 800 px: many buckets, refined where they straddle a column.
        (
            t0 + 1_234 * SECOND + 5,
            t0 + 2 * 86_400 * SECOND - 77,
            800u32,
            300u32,
        ),
        // An hour and a half: few rows, fewer than columns.
        (t0 + 7_000 * SECOND, t0 + 12_400 * SECOND, 400, 200),
    ] {
        let out = s.dir.join(format!("c-{w}.png"));
        let frames = s.dir.join(format!("frames-{w}"));
        let o = s.run(&[
            "plot",
            "--channel",
            "tmp",
            "--id",
            "7",
            "--from",
            &arg(from),
            "--to",
            &arg(to),
            "--width",
            &w.to_string(),
            "--height",
            &hgt.to_string(),
            "--out",
            out.to_str().unwrap(),
            "--progressive",
            frames.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let got = Canvas::from_png(&std::fs::read(&out).unwrap()).unwrap();
        let layout = Layout::new(w, hgt, 1).unwrap();
        assert_eq!((got.width(), got.height()), (w, hgt));
        // The chart of M4 over every row, as the test computes it.
        let cols = Columns::new(from, to, layout.columns).unwrap();
        let columns = m4(&cols, now.iter().copied());
        let want = Chart {
            layout,
            title: String::new(),
            status: String::new(),
            panels: vec![Panel {
                label: String::new(),
                columns: columns.clone(),
                shade: vec![],
                empty: String::new(),
                color: SERIES[0],
            }],
            ticks: vec![],
        }
        .render();
        assert_eq!(
            plot_area_diff(&layout, &got, &want),
            None,
            "{w} px: M4 of every row"
        );
        // Every raw row drawn and joined in time order sets the same series pixels.
        let scale = Scale::of(&columns, layout.y0(0) as i64, layout.panel_height as i64).unwrap();
        let mut raw = Canvas::new(w, hgt, [255; 3]);
        let mut prev: Option<(i64, i64)> = None;
        let mut drawn = 0;
        for p in &now {
            let (Some(v), Some(c)) = (p.value(), cols.of(p.t)) else {
                continue;
            };
            let (x, y) = (layout.x0 as i64 + c as i64, scale.row(v));
            let (px, py) = prev.unwrap_or((x, y));
            raw.line(px, py, x, y, SERIES[0]);
            prev = Some((x, y));
            drawn += 1;
        }
        assert!(drawn > 20, "{drawn} rows drawn");
        for y in 0..hgt as i64 {
            for x in 0..w as i64 {
                let a = got.get(x, y) == Some(SERIES[0]);
                let b = raw.get(x, y) == Some(SERIES[0]);
                assert_eq!(a, b, "{w} px: pixel ({x}, {y}) of every raw row drawn");
            }
        }
        // The frames: coarsest first, the last one the chart itself.
        let mut names: Vec<String> = std::fs::read_dir(&frames)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert!(names.len() >= 2, "{names:?}");
        assert_eq!(names[0], "frame-00.png");
        let last =
            Canvas::from_png(&std::fs::read(frames.join(names.last().unwrap())).unwrap()).unwrap();
        assert_eq!(last, got);
        let first = Canvas::from_png(&std::fs::read(frames.join(&names[0])).unwrap()).unwrap();
        assert_ne!(first, got, "the first frame is the coarse one");
    }
    // SVG: the same scene as vector shapes.
    let svg = s.dir.join("c.svg");
    s.ok(&[
        "plot",
        "--channel",
        "tmp",
        "--id",
        "7",
        "--from",
        "2024-03-01",
        "--to",
        "2024-03-02",
        "--width",
        "600",
        "--height",
        "200",
        "--out",
        svg.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg") && text.contains("<path") && text.contains("tmp (°C)"));
}

fn an_empty_range_draws_an_empty_chart(h: &Harness) {
    let s = Setup::new(h);
    s.load();
    let out = s.dir.join("empty.png");
    let o = s.run(&[
        "plot",
        "--channel",
        "tmp",
        "--id",
        "5",
        "--from",
        "2023-01-01",
        "--to",
        "2023-01-02",
        "--width",
        "400",
        "--height",
        "150",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no data in this range"));
    let img = Canvas::from_png(&std::fs::read(&out).unwrap()).unwrap();
    let l = Layout::new(400, 150, 1).unwrap();
    let mut ink = 0;
    for y in l.y0(0) as i64..(l.y0(0) + l.panel_height) as i64 {
        for x in l.x0 as i64..(l.x0 + l.columns) as i64 {
            assert_ne!(img.get(x, y), Some(SERIES[0]));
            ink += (img.get(x, y) == Some(recalcd::chart::INK)) as usize;
        }
    }
    assert!(
        ink > 50,
        "the chart says why it is empty ({ink} pixels of text)"
    );
}

fn bad_plot_input_is_one_line_and_exit_2(h: &Harness) {
    let s = Setup::new(h);
    s.load();
    let out = s.dir.join("x.png");
    let out = out.to_str().unwrap();
    let defaults = [
        ("--channel", "tmp"),
        ("--id", "5"),
        ("--from", "2024-03-01"),
        ("--to", "2024-03-02"),
        ("--out", out),
    ];
    for (extra, says) in [
        (vec![("--channel", "nope")], "--channel nope"),
        (vec![("--id", "99")], "--id 99"),
        (
            vec![("--from", "2024-03-02"), ("--to", "2024-03-01")],
            "is not after",
        ),
        (
            vec![("--from", "1800-01-01"), ("--to", "2200-01-01")],
            "200 years",
        ),
        (vec![("--width", "100000")], "the limit is 8192"),
        (vec![("--width", "50")], "the limit is at least 200"),
        (vec![("--out", "x.gif")], ".png or .svg"),
        (vec![("--where", "AVG(5m) >")], "--where"),
    ] {
        let mut args: Vec<&str> = vec!["plot"];
        for (k, v) in defaults.iter().filter(|d| extra.iter().all(|e| e.0 != d.0)) {
            args.extend([*k, *v]);
        }
        for (k, v) in &extra {
            args.extend([*k, *v]);
        }
        let o = s.run(&args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

fn several_channels_and_shaded_matches(h: &Harness) {
    let s = Setup::new(h);
    s.load();
    let out = s.dir.join("two.png");
    s.ok(&[
        "plot",
        "--channel",
        "tmp,x",
        "--id",
        "5",
        "--from",
        "2024-03-01",
        "--to",
        "2024-03-02",
        "--width",
        "600",
        "--height",
        "300",
        "--where",
        "MAX(5m) > 55",
        "--out",
        out.to_str().unwrap(),
    ]);
    let img = Canvas::from_png(&std::fs::read(&out).unwrap()).unwrap();
    let l = Layout::new(600, 300, 2).unwrap();
    let count = |p: u32, c: [u8; 3]| {
        let mut n = 0;
        for y in l.y0(p) as i64..(l.y0(p) + l.panel_height) as i64 {
            for x in l.x0 as i64..(l.x0 + l.columns) as i64 {
                n += (img.get(x, y) == Some(c)) as usize;
            }
        }
        n
    };
    assert!(count(0, SERIES[0]) > 100 && count(1, SERIES[1]) > 100);
    assert!(
        count(0, recalcd::chart::SHADE) > 0,
        "tmp's matches are shaded"
    );
    // x never exceeds 12.25: nothing to shade.
    assert_eq!(count(1, recalcd::chart::SHADE), 0);
}
