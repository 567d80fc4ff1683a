//! The chart's scene ([`super::Chart::scene`]) as SVG: the same shapes as the PNG, lines
//! through pixel centres with `shape-rendering="crispEdges"`, text in a monospace font.

use std::fmt::Write as _;

use super::{Chart, Rgb, Shape};

/// The chart as an SVG document.
pub fn to_svg(chart: &Chart) -> String {
    let l = &chart.layout;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" shape-rendering="crispEdges" font-family="monospace" font-size="10">"#,
        w = l.width,
        h = l.height
    );
    // Runs of lines of one colour go in one path, to keep files small.
    let mut path: Option<(Rgb, String)> = None;
    let flush = |out: &mut String, path: &mut Option<(Rgb, String)>| {
        if let Some((c, d)) = path.take() {
            let _ = writeln!(
                out,
                r#"<path fill="none" stroke="{}" stroke-width="1" d="{d}"/>"#,
                hex(c)
            );
        }
    };
    for s in chart.scene() {
        match s {
            Shape::Line { from, to, color } => {
                if path.as_ref().is_some_and(|(c, _)| *c != color) {
                    flush(&mut out, &mut path);
                }
                let d = &mut path.get_or_insert_with(|| (color, String::new())).1;
                // Pixel (x, y) is the square [x, x+1) × [y, y+1): a line between pixel
                // centres, extended half a pixel so that its end pixels are covered.
                if from.0 == to.0 {
                    let (a, b) = (from.1.min(to.1), from.1.max(to.1));
                    let _ = write!(d, "M{}.5 {a}V{}", from.0, b + 1);
                } else if from.1 == to.1 {
                    let (a, b) = (from.0.min(to.0), from.0.max(to.0));
                    let _ = write!(d, "M{a} {}.5H{}", from.1, b + 1);
                } else {
                    let _ = write!(d, "M{}.5 {}.5L{}.5 {}.5", from.0, from.1, to.0, to.1);
                }
            }
            Shape::Fill { x, y, w, h, color } => {
                flush(&mut out, &mut path);
                let _ = writeln!(
                    out,
                    r#"<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="{}"/>"#,
                    hex(color)
                );
            }
            Shape::Text { at, text, color } => {
                flush(&mut out, &mut path);
                let _ = writeln!(
                    out,
                    r#"<text x="{}" y="{}" fill="{}">{}</text>"#,
                    at.0,
                    at.1 + 8,
                    hex(color),
                    escape(&text)
                );
            }
        }
    }
    flush(&mut out, &mut path);
    out.push_str("</svg>\n");
    out
}

fn hex(c: Rgb) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{Layout, Panel, SERIES};
    use super::*;

    #[test]
    fn svg_holds_the_scene() {
        let chart = Chart {
            layout: Layout::new(300, 150, 1).unwrap(),
            title: "a <b> & c".into(),
            status: "exact".into(),
            panels: vec![Panel {
                label: "tmp (°C)".into(),
                columns: vec![None; 208],
                shade: vec![std::ops::Range { start: 3, end: 9 }],
                empty: "no data in this range".into(),
                color: SERIES[0],
            }],
            ticks: vec![(0, "00:00".into())],
        };
        let svg = to_svg(&chart);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("a &lt;b&gt; &amp; c"));
        assert!(svg.contains("no data in this range"));
        assert!(svg.contains("tmp (°C)"));
        assert!(svg.contains(r##"fill="#ffe8aa""##), "the shading");
    }
}
