//! GPS positions: `GPSDIF` (great-circle distance) and `GPSST` (keep a position unless it
//! moved far enough).
//!
//! A point is the string `"lat,lon"` in decimal degrees (as in the `gps` column) or a
//! numeric vector of those two items. Latitude must lie in [−90, 90], longitude in
//! [−180, 180].

use std::sync::Arc;

use crate::lang::function::{CallCx, Function};
use crate::lang::value::{parse_number, Reason, Value};

use super::operand::{empty, num, nums, wrong, Res};

/// The mean Earth radius in metres (IUGG R1), the sphere the distances are taken on.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// The GPS functions.
pub(super) static FUNCTIONS: &[Function] = &[
    entry!("GPSDIF", [], [S, S], Propagate, gpsdif),
    entry!("GPSST", [], [N, S, S], Propagate, gpsst),
];

/// Reads a point; `bad` is the function's message for one that is not `"lat,lon"`.
fn point(v: &Value, bad: &'static str) -> Result<(f64, f64), Value> {
    let (lat, lon) = match v {
        Value::Str(s) => {
            // A byte scan: `split_once` costs several times more on texts this short.
            let comma = s.bytes().position(|b| b == b',').ok_or(wrong(bad))?;
            let (lat, lon) = (&s[..comma], &s[comma + 1..]);
            (
                parse_number(lat).ok_or(wrong(bad))?,
                parse_number(lon).ok_or(wrong(bad))?,
            )
        }
        Value::Nums(_) | Value::List(_) => match *nums(v, bad)? {
            [lat, lon] => (lat, lon),
            _ => return Err(wrong(bad)),
        },
        Value::Num(_) => return Err(wrong(bad)),
        Value::Empty(_) => return Err(v.clone()),
    };
    if lat.abs() <= 90.0 && lon.abs() <= 180.0 {
        Ok((lat, lon))
    } else {
        Err(empty(Reason::OutOfRange))
    }
}

/// A point read, with the cosine of its latitude that every distance from it needs
/// (kept in [`PointMemo`] with the point, so it is computed once per point).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    lat: f64,
    lon: f64,
    cos_lat: f64,
}

impl Point {
    /// [`point`], with the cosine.
    fn read(v: &Value, bad: &'static str) -> Result<Point, Value> {
        let (lat, lon) = point(v, bad)?;
        Ok(Point {
            lat,
            lon,
            cos_lat: lat.to_radians().cos(),
        })
    }
}

/// Points read from strings, kept while a [`crate::lang::Machine`] runs (it hands them
/// to each evaluation's [`CallCx`], as it does the histogram axes): a data row's `$gps`
/// is read by several equations of the row and, as `$$gps`, by the next row's, and a
/// constant such as `#HOME` by every row; reading the text again each time cost more
/// than the distance itself.
///
/// A point is known by its string's allocation (`Arc::ptr_eq`), not its text, as in
/// [`super::histogram::AxisMemo`]: the entry keeps the string alive, so the allocation cannot be
/// reused for another text. Only strings that read as a point are kept, the last
/// [`PointMemo::SIZE`] used: a hit moves to the end, the front goes when it is full.
#[derive(Debug, Default)]
pub(crate) struct PointMemo {
    entries: Vec<(Arc<str>, Point)>,
}

impl PointMemo {
    /// How many points are kept: a constant, the previous and the current row's.
    const SIZE: usize = 4;

    /// [`Point::read`], answered from the memo for a string read before.
    fn read(&mut self, v: &Value, bad: &'static str) -> Result<Point, Value> {
        let Value::Str(text) = v else {
            return Point::read(v, bad);
        };
        if let Some(i) = self.entries.iter().position(|(t, _)| Arc::ptr_eq(t, text)) {
            let p = self.entries[i].1;
            self.entries[i..].rotate_left(1);
            return Ok(p);
        }
        let p = Point::read(v, bad)?;
        if self.entries.len() >= Self::SIZE {
            self.entries.remove(0);
        }
        self.entries.push((text.clone(), p));
        Ok(p)
    }
}

/// Haversine distance in metres on the sphere of radius [`EARTH_RADIUS_M`].
fn distance(a: Point, b: Point) -> f64 {
    let dp = (b.lat - a.lat).to_radians();
    let dl = (b.lon - a.lon).to_radians();
    let h = (dp / 2.0).sin().powi(2) + a.cos_lat * b.cos_lat * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

fn gpsdif(a: &[Value], cx: &mut CallCx) -> Res {
    let bad = "GPSDIF: expects two points \"lat,lon\"";
    let from = cx.memo.points.read(&a[0], bad)?;
    Ok(Value::num(distance(from, cx.memo.points.read(&a[1], bad)?)))
}

/// c if the distance from b to c is below a metres, else b (both returned as given).
fn gpsst(a: &[Value], cx: &mut CallCx) -> Res {
    let bad = "GPSST: expects a number and two points \"lat,lon\"";
    let limit = num(&a[0], bad)?;
    let from = cx.memo.points.read(&a[1], bad)?;
    let d = distance(from, cx.memo.points.read(&a[2], bad)?);
    Ok(if d < limit { &a[2] } else { &a[1] }.clone())
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{assert_invalid, call, e, list, n, ns, s};
    use super::EARTH_RADIUS_M;
    use crate::lang::value::{Reason, Value};

    fn metres(v: Value) -> f64 {
        v.as_num()
            .unwrap_or_else(|| panic!("not a distance: {v:?}"))
    }

    #[test]
    fn great_circle_distances() {
        let degree = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
        let d = metres(call("GPSDIF", &[s("0,0"), s("0,1")]));
        assert!((d - degree).abs() < 1e-6, "{d} vs {degree}");
        let d = metres(call("GPSDIF", &[s("10, 20"), s("11,20")]));
        assert!((d - degree).abs() < 1e-6, "{d} vs {degree}");
        let d = metres(call("GPSDIF", &[s("90,0"), s("-90,0")]));
        assert!((d - degree * 180.0).abs() < 1e-6, "antipodes {d}");
        assert_eq!(call("GPSDIF", &[s("49.2,16.6"), s("49.2,16.6")]), n(0.0));
        // Prague – Brno, about 184 km (checked independently).
        let d = metres(call(
            "GPSDIF",
            &[s("50.0755,14.4378"), s("49.1951,16.6068")],
        ));
        assert_eq!(d.round(), 184_333.0);
        let d = metres(call("GPSDIF", &[ns(&[0.0, 0.0]), list(&[s("0"), s("1")])]));
        assert!((d - degree).abs() < 1e-6);
    }

    #[test]
    fn bad_points() {
        for bad in ["", "49.2", "49.2;16.6", "x,1", "1,2,3"] {
            assert_invalid(call("GPSDIF", &[s(bad), s("0,0")]), "GPSDIF");
        }
        assert_invalid(call("GPSDIF", &[n(1.0), s("0,0")]), "GPSDIF");
        assert_invalid(call("GPSDIF", &[ns(&[1.0]), s("0,0")]), "GPSDIF");
        let r = call("GPSDIF", &[s("91,0"), s("0,0")]);
        assert_eq!(r, e(Reason::OutOfRange));
        let r = call("GPSDIF", &[s("0,0"), s("0,180.5")]);
        assert_eq!(r, e(Reason::OutOfRange));
    }

    #[test]
    fn the_memo_reads_as_point_does_and_keeps_what_is_used() {
        use super::{Point, PointMemo};
        let mut memo = PointMemo::default();
        let home = s("49.1951,16.6068");
        for i in 0..10 {
            let here = Value::str(format!("49.{i},16.5"));
            for v in [&home, &here, &here.clone()] {
                assert_eq!(memo.read(v, "bad"), Point::read(v, "bad"));
            }
            assert!(memo.entries.len() <= PointMemo::SIZE);
            // The constant read on every row stays.
            assert!(memo
                .entries
                .iter()
                .any(|(t, _)| t.as_ref() == "49.1951,16.6068"));
        }
        for bad in [s("x,1"), s("91,0"), n(1.0), ns(&[1.0, 2.0])] {
            assert_eq!(memo.read(&bad, "bad"), Point::read(&bad, "bad"));
        }
        assert!(memo
            .entries
            .iter()
            .all(|(t, _)| !t.starts_with('x') && !t.starts_with('9')));
    }

    #[test]
    fn keeps_a_position_until_it_moves() {
        let (here, near, far) = (s("0,0"), s("0,0.0001"), s("0,0.01"));
        assert_eq!(call("GPSST", &[n(50.0), here.clone(), near.clone()]), near);
        assert_eq!(call("GPSST", &[n(50.0), here.clone(), far.clone()]), here);
        assert_eq!(call("GPSST", &[n(0.0), here.clone(), here.clone()]), here);
        let r = call("GPSST", &[s("x"), here.clone(), far.clone()]);
        assert_eq!(r, e(Reason::NotANumber));
        assert_invalid(call("GPSST", &[n(1.0), here, s("nowhere")]), "GPSST");
    }
}
