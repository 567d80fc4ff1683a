//! GPS positions: `GPSDIF` (great-circle distance) and `GPSST` (keep a position unless it
//! moved far enough).
//!
//! A point is the string `"lat,lon"` in decimal degrees (as in the `gps` column) or a
//! numeric vector of those two items. Latitude must lie in [−90, 90], longitude in
//! [−180, 180].

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

/// Haversine distance in metres on the sphere of radius [`EARTH_RADIUS_M`].
fn distance((lat1, lon1): (f64, f64), (lat2, lon2): (f64, f64)) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

fn gpsdif(a: &[Value], _: &mut CallCx) -> Res {
    let bad = "GPSDIF: expects two points \"lat,lon\"";
    Ok(Value::num(distance(point(&a[0], bad)?, point(&a[1], bad)?)))
}

/// c if the distance from b to c is below a metres, else b (both returned as given).
fn gpsst(a: &[Value], _: &mut CallCx) -> Res {
    let bad = "GPSST: expects a number and two points \"lat,lon\"";
    let limit = num(&a[0], bad)?;
    let d = distance(point(&a[1], bad)?, point(&a[2], bad)?);
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
