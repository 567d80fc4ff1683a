//! The search benchmark's data: one device reporting every second for a year (or the
//! first `rows` seconds of it), its rows carrying the demo's channels — the measured
//! `tmp`, `prs`, `rpm`, `fuel`, `spd` and the twenty data outputs the demo's equations
//! write — already recalculated (`recalc = 0`).
//!
//! The indexed channel is the coolant temperature `tmp`, in tenths of a degree (one
//! decimal, as the demo writes it). By construction:
//!
//! - at rest it follows the ambient temperature (−6 to 26 °C over the seasons and the
//!   day); a shift (about 05:30–22:00, Monday to Saturday) warms it towards a peak of
//!   78–88 °C; measurement noise ±0.4 °C;
//! - single-sample spikes of +3 to +10 °C while running: the highest value outside the
//!   planted events stays below 100 °C;
//! - planted **overheats**: `max(2, rows / 700,000)` events (45 in a year) of 8–40
//!   minutes during which the temperature climbs towards 106–118 °C and cools back
//!   afterwards (over a few minutes) — the only stretches above 100 °C;
//! - planted **sensor dropouts**: `max(3, rows / 250,000)` events (126 in a year) of
//!   2–15 s reading −40.0 (an open-circuit sensor) — the only values below −10 °C.
//!
//! Every value is a multiple of 0.1; the conditions' thresholds are chosen so that no
//! aggregate of such values can equal them (see `conditions`), so comparisons in
//! floating point and in exact arithmetic agree.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};
use recalcd::lang::function::Rng;
use recalcd::store::{Row, RowVersion};

/// The device's id.
pub const DEVICE: i32 = 1;

/// Rows in a year at 1 Hz (365 days).
pub const YEAR_ROWS: usize = 365 * 86_400;

/// The first row's time (a Sunday; 2023 has 365 days).
pub fn start() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2023, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("a valid start")
}

/// A planted event: rows `from..to`.
#[derive(Debug, Clone, Copy)]
struct Event {
    from: usize,
    to: usize,
    /// Overheat: the peak it climbs towards; dropout: unused.
    peak: f64,
}

/// The generator of one device's rows, second by second.
pub struct Series {
    /// How many rows (seconds from [`start`]).
    pub rows: usize,
    rng: Rng,
    overheats: Vec<Event>,
    dropouts: Vec<Event>,
    /// The next row's index.
    i: usize,
    /// The engine's (smooth) coolant temperature.
    tmp: f64,
    fuel: f64,
    lat: f64,
    lon: f64,
    /// Today's shift (second of the day from, to) and peak; `None` on a day off.
    shift: Option<(u32, u32, f64)>,
    day: i64,
    /// The start of the current phase (shift or rest), the rows' `data_time`.
    phase_start: NaiveDateTime,
    phase_working: bool,
    prev_tmp: f64,
}

/// Events of `min..=max` seconds, `count` of them spread over `rows` (one per equal
/// slice, at a random place inside it).
fn plant(rng: &mut Rng, rows: usize, count: usize, min: usize, max: usize) -> Vec<Event> {
    let slice = rows / count.max(1);
    (0..count)
        .filter_map(|k| {
            let len = min + (rng.next_u64() as usize) % (max - min + 1);
            let room = slice.checked_sub(len)?;
            let from = k * slice + (rng.next_u64() as usize) % room.max(1);
            let peak = 106.0 + 12.0 * rng.next_f64();
            Some(Event {
                from,
                to: from + len,
                peak,
            })
        })
        .collect()
}

impl Series {
    /// The first `rows` seconds of the year, from `seed`.
    pub fn new(rows: usize, seed: u64) -> Series {
        let mut rng = Rng::new(seed);
        let overheats = plant(&mut rng, rows, (rows / 700_000).max(2), 8 * 60, 40 * 60);
        let dropouts = plant(&mut rng, rows, (rows / 250_000).max(3), 2, 15);
        Series {
            rows,
            rng,
            overheats,
            dropouts,
            i: 0,
            tmp: 5.0,
            fuel: 350.0,
            lat: 49.1951,
            lon: 16.6068,
            shift: None,
            day: -1,
            phase_start: start(),
            phase_working: false,
            prev_tmp: 5.0,
        }
    }

    /// The planted overheats, as (first row, rows) — for the report.
    pub fn overheat_count(&self) -> usize {
        self.overheats.len()
    }

    /// The planted dropouts.
    pub fn dropout_count(&self) -> usize {
        self.dropouts.len()
    }

    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.rng.next_f64()
    }

    fn inside(events: &[Event], i: usize) -> Option<Event> {
        // Events are sorted and disjoint; few of them: a binary search.
        let k = events.partition_point(|e| e.to <= i);
        events.get(k).filter(|e| e.from <= i).copied()
    }

    /// The next row and its `tmp` in tenths of a degree.
    pub fn next_row(&mut self) -> Option<(Row, i32)> {
        if self.i >= self.rows {
            return None;
        }
        let i = self.i;
        self.i += 1;
        let at = start() + Duration::seconds(i as i64);
        let day = (i / 86_400) as i64;
        if day != self.day {
            self.day = day;
            // Sunday off; otherwise a shift from about 05:30 to about 22:00.
            self.shift = if at.weekday() == chrono::Weekday::Sun {
                None
            } else {
                let from = 19_800 + (self.rng.next_u64() % 3_600) as u32;
                let to = 77_400 + (self.rng.next_u64() % 3_600) as u32;
                Some((from, to, self.uniform(78.0, 88.0)))
            };
        }
        let second = at.num_seconds_from_midnight();
        let overheat = Self::inside(&self.overheats, i);
        let working = overheat.is_some()
            || self
                .shift
                .is_some_and(|(from, to, _)| (from..to).contains(&second));
        if working != self.phase_working {
            self.phase_working = working;
            self.phase_start = at;
        }
        // Ambient: seasons (coldest mid-January) and the day (warmest mid-afternoon).
        let season = (f64::from(at.ordinal()) - 15.0) / 365.0 * std::f64::consts::TAU;
        let daily = (f64::from(second) / 86_400.0 - 0.625) * std::f64::consts::TAU;
        let ambient = 10.0 - 12.0 * season.cos() + 4.0 * daily.cos();
        let (target, rate) = match (overheat, self.shift) {
            (Some(e), _) => (e.peak, 1.0 / 120.0),
            (None, Some((_, _, peak))) if working => (peak, 1.0 / 300.0),
            _ => (ambient, 1.0 / 900.0),
        };
        self.tmp += (target - self.tmp) * rate;
        let mut tmp = self.tmp + self.uniform(-0.4, 0.4);
        // Spikes only while running normally: outside the planted overheats (and their
        // cooling down) the value stays below 88.4 + 10 °C.
        if overheat.is_none() && working && self.tmp < 88.0 && self.rng.next_f64() < 0.0005 {
            tmp += self.uniform(3.0, 10.0);
        }
        if Self::inside(&self.dropouts, i).is_some() {
            tmp = -40.0;
        }
        let tenths = (tmp * 10.0).round() as i32;
        let tmp = f64::from(tenths) / 10.0;

        let state = if !working {
            1
        } else if (second / 600) % 6 == 5 {
            3
        } else {
            2
        };
        let (rpm, spd) = match state {
            1 => (0.0, 0.0),
            2 => (self.uniform(1550.0, 1850.0), self.uniform(4.0, 12.0)),
            _ => (self.uniform(1300.0, 1700.0), self.uniform(18.0, 45.0)),
        };
        let prs = if rpm > 0.0 {
            0.6 + rpm / 700.0 + self.uniform(-0.25, 0.25)
        } else {
            0.0
        };
        let rate = match state {
            1 => 0.0,
            2 => 14.0,
            _ => 10.0,
        };
        let dfuel = rate / 3600.0;
        self.fuel -= dfuel;
        if self.fuel < 80.0 {
            self.fuel = 400.0;
        }
        let metres = spd / 3.6;
        self.lat += metres * 0.7 / 111_195.0 * if (day & 1) == 0 { 1.0 } else { -1.0 };
        self.lon += metres * 0.7 / 72_800.0;
        if (self.lon - 16.6068).abs() > 0.27 {
            self.lon = 16.6068;
        }
        let hot = u8::from(tmp > 90.0);
        let lowp = u8::from(rpm > 600.0 && prs < 1.6);
        let ttrend = tmp - self.prev_tmp;
        self.prev_tmp = tmp;
        let conjoined = format!(
            "tmp={tmp:.1};prs={prs:.2};rpm={rpm:.0};fuel={fuel:.1};spd={spd:.1};hot={hot};\
             lowp={lowp};dt=1;dist={dist:.0};dfuel={dfuel:.4};working={working};overspeed={over};\
             rpmband={band};tbin={tbin};ttrend={ttrend:.3};cross=0;home={home:.0};\
             speedgps={spd:.1};fuelrate={rate:.2};alarm={alarm};label={label};wday={wday};\
             pos={lat:.6},{lon:.6};tdev={tdev:.2};vsprev={vsprev:.2};",
            fuel = self.fuel,
            dist = metres,
            working = u8::from(state == 2),
            over = u8::from(spd > 40.0),
            band = match rpm as u32 {
                0..800 => 0,
                800..1400 => 1,
                1400..1900 => 2,
                _ => 3,
            },
            tbin = (tmp / 20.0).clamp(-1.0, 6.0) as i32,
            home = (self.lat - 49.1951).abs() * 111_195.0 + (self.lon - 16.6068).abs() * 72_800.0,
            alarm = hot | lowp,
            label = ["idle", "work", "transport"][(state - 1) as usize],
            wday = at.weekday().num_days_from_sunday() + 1,
            lat = self.lat,
            lon = self.lon,
            tdev = tmp - 60.0,
            vsprev = tmp - 58.5,
        );
        let row = Row {
            datetime: at,
            data_time: self.phase_start,
            id: DEVICE,
            state: Some(state),
            user: Some(if working { "novak" } else { "-" }.to_owned()),
            gps: Some(format!("{:.6},{:.6}", self.lat, self.lon)),
            recalc: 0,
            conjoined,
            version: RowVersion::ABSENT,
            unreadable: None,
        };
        Some((row, tenths))
    }
}
