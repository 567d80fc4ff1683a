//! The demo data set: machines in the field reporting temperatures, pressures, engine
//! speed, fuel, speed, GPS positions and states (in the spirit of the thesis), the
//! per-device constants, and a few dozen equations at every level that use them.
//!
//! Pure and deterministic: the same [`Scale`] and seed give the same rows, byte for
//! byte, on every machine. Rows are produced job by job ([`Dataset::jobs`]), so a data
//! set of millions of rows never has to be held in memory at once.
//!
//! The equations are chosen to show the language at work (`docs/language.md`): comparisons with
//! device constants (`#TMAX`), deltas from the previous row (`$$fuel`) and rates per
//! second (`#MT`), GPS distances (`GPSDIF`), aggregates (`SNRM`, `SMIN`, `SMAX`, `SSUM`,
//! `SMED`), histograms on an axis (`HIST`, `HIIX`), data-quality checks (`SDATCTRL` with
//! `@name` outputs: temperature spikes, a stuck pressure sensor), a job value read back
//! by a data equation (`$TAVG`, iterated to a fixpoint), the previous job (`$$TAVG`,
//! `$$LITRES`), all data rows of a day (`$d$tmp`), the previous day (`$$DLITRES`) and
//! summaries over the jobs of a range (`$j$tavg`).

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};

use crate::lang::function::Rng;
use crate::store::{Constant, Equation, Row, RowVersion};

/// How big the data set is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    /// Devices, numbered from 1.
    pub devices: u32,
    /// Days of data per device, from [`Dataset::start`].
    pub days: u32,
    /// Jobs per device and day.
    pub jobs_per_day: u32,
    /// Data rows per job; `None` for a realistic spread (80 to 240).
    pub rows_per_job: Option<u32>,
}

impl Scale {
    /// The demo's default: 5 devices, 3 weeks, 3 jobs a day, a row every 30–60 s
    /// (about 50,000 data rows).
    pub const DEMO: Scale = Scale {
        devices: 5,
        days: 21,
        jobs_per_day: 3,
        rows_per_job: None,
    };

    /// The engine benchmark's: 100 devices × 25 days × 4 jobs of 100 rows = 1,000,000
    /// data rows in 10,000 jobs.
    pub const BENCH: Scale = Scale {
        devices: 100,
        days: 25,
        jobs_per_day: 4,
        rows_per_job: Some(100),
    };

    /// The number of jobs.
    pub fn jobs(&self) -> u64 {
        u64::from(self.devices) * u64::from(self.days) * u64::from(self.jobs_per_day)
    }
}

/// The operators who drive the machines.
const USERS: [&str; 6] = ["novak", "svoboda", "dvorak", "cerna", "prochazka", "kucera"];

/// The yard every machine starts from (Brno), `#HOME`.
const HOME: (f64, f64) = (49.1951, 16.6068);

/// Device states (the `state` column).
const IDLE: i32 = 1;
const WORK: i32 = 2;
const TRANSPORT: i32 = 3;
const FAULT: i32 = 4;

/// A deterministic demo data set.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Its size.
    pub scale: Scale,
    /// The seed of every random choice.
    pub seed: u64,
}

impl Dataset {
    /// The first day of data (a Monday).
    pub fn start() -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 4, 1).unwrap_or_default()
    }

    /// A data set of `scale` from `seed`.
    pub fn new(scale: Scale, seed: u64) -> Dataset {
        Dataset { scale, seed }
    }

    /// The last day of data (inclusive).
    pub fn end(&self) -> NaiveDate {
        Dataset::start() + Duration::days(i64::from(self.scale.days.max(1)) - 1)
    }

    /// The day break `#WB` of `device` (`HH:MM`), between 05:00 and 07:00.
    pub fn day_break(device: u32) -> String {
        let minutes = 300 + (device % 5) * 30;
        format!("{:02}:{:02}", minutes / 60, minutes % 60)
    }

    /// The constants: defaults (`id = 0`) and per-device values, `#WB` for every device
    /// and `#TZ` for device 4.
    pub fn constants(&self) -> Vec<Constant> {
        let c = |id: i32, name: &str, value: &str| Constant {
            id,
            name: name.to_owned(),
            value: value.to_owned(),
        };
        let mut out = vec![
            c(0, "WB", "06:00"),
            c(0, "TMAX", "90"),
            c(0, "PMIN", "1.6"),
            c(0, "SPDMAX", "40"),
            c(0, "SPIKE", "12"),
            c(0, "STUCK", "8"),
            c(0, "TAXIS", "0,40,60,80,90,100,120"),
            c(0, "RPMAXIS", "0:800,800:1400,1400:1900,1900:2600"),
            c(0, "HOME", &format!("{},{}", HOME.0, HOME.1)),
        ];
        for d in 1..=self.scale.devices {
            let id = device_id(d);
            out.push(c(id, "WB", &Dataset::day_break(d)));
            match d % 5 {
                2 => out.push(c(id, "TMAX", "95")),
                4 => out.push(c(id, "TZ", "Europe/Prague")),
                0 => out.push(c(id, "SPDMAX", "30")),
                _ => {}
            }
        }
        out
    }

    /// The equations (all with `id = 0`: every device uses them).
    pub fn equations(&self) -> Vec<Equation> {
        EQUATIONS
            .iter()
            .map(|(kind, name, eq)| Equation {
                kind: *kind,
                id: 0,
                name: (*name).to_owned(),
                eq: (*eq).to_owned(),
            })
            .collect()
    }

    /// The data rows, one job at a time, device by device in time order; every row
    /// flagged (`recalc = 1`) as a producer writes it.
    pub fn jobs(&self) -> impl Iterator<Item = Vec<Row>> + '_ {
        (1..=self.scale.devices).flat_map(move |d| DeviceRun::new(self, d))
    }

    /// The number of data rows [`Dataset::jobs`] yields (computed without the rows).
    pub fn row_count(&self) -> u64 {
        match self.scale.rows_per_job {
            Some(n) => self.scale.jobs() * u64::from(n),
            None => self.jobs().map(|j| j.len() as u64).sum(),
        }
    }
}

/// How far into its slot of the day (`slot` seconds) a job may start: 20 minutes, less
/// when a day has so many jobs that slots are short.
fn jitter(slot: i64) -> i64 {
    (slot / 4).clamp(1, 1200)
}

fn device_id(d: u32) -> i32 {
    i32::try_from(d).unwrap_or(i32::MAX)
}

/// Type, name, equation. Data outputs are lower case; job, day and summary outputs
/// capitals where other equations read them as `$X`.
const EQUATIONS: &[(i32, &str, &str)] = &[
    // Type 1: measured data, per row.
    (1, "hot", "IF > $tmp #TMAX 1 0"),
    (1, "lowp", "IF AND > $rpm 600 < $prs #PMIN 1 0"),
    (1, "dt", "#MT"),
    (1, "dist", "IFNA ROUNDX GPSDIF $$gps $gps 1 0"),
    (1, "dfuel", "IFNA ROUNDX MAX - $$fuel $fuel 0 2 0"),
    (1, "working", "IF = $state 2 1 0"),
    (1, "overspeed", "IF > $spd #SPDMAX 1 0"),
    (1, "rpmband", "IFNA HIIX #RPMAXIS $rpm -1"),
    (1, "tbin", "IFNA HIIX #TAXIS $tmp -1"),
    (1, "ttrend", "IFNA ROUNDX / - $tmp $$tmp #MT 3 0"),
    (1, "cross", "IFNA GOTH 1 $$tmp $tmp #TMAX 0"),
    (1, "home", "ROUND GPSDIF #HOME $gps"),
    // Type 2: computed data, after type 1.
    (2, "speedgps", "IF > $dt 0 ROUNDX * / $dist $dt 3.6 1 0"),
    (2, "fuelrate", "IF > $dt 0 ROUNDX / * $dfuel 3600 $dt 2 0"),
    (2, "alarm", "IF OR $hot $lowp 1 0"),
    (2, "label", "ENUM $state 'idle&work&transport&fault'"),
    (2, "wday", "DWEEK $datetime"),
    (2, "pos", "IFNA GPSST 25 $$gps $gps $gps"),
    (2, "tdev", "ROUNDX - $tmp $TAVG 2"),
    (2, "vsprev", "IFNA ROUNDX - $tmp $$TAVG 2 0"),
    // Type 4: jobs.
    (4, "TAVG", "ROUNDX SNRM $tmp 2"),
    (4, "PLOW", "SMIN $prs"),
    (4, "DIST", "ROUNDX / SSUM $dist 1000 3"),
    (4, "LITRES", "ROUNDX SSUM $dfuel 2"),
    (4, "LDIFF", "IFNA ROUNDX - $LITRES $$LITRES 2 0"),
    (4, "HOURS", "ROUNDX / #MT 3600 3"),
    (4, "WORKH", "ROUNDX / SSUM VMUL $working #VMT 3600 3"),
    (4, "SPIKES", "SDATCTRL 3 @TSPIKE $tmp #SPIKE"),
    (4, "STUCK", "SDATCTRL 4 @PSTUCK $prs #STUCK"),
    (4, "THIST", "HIST #TAXIS $tmp #NULL"),
    // Type 5: days.
    (5, "DTAVG", "ROUNDX SNRM $tavg 2"),
    (5, "DTMAX", "SMAX $d$tmp"),
    (5, "DTMED", "SMED $d$tmp"),
    (5, "DDIST", "ROUNDX SSUM $dist 3"),
    (5, "DLITRES", "ROUNDX SSUM $litres 2"),
    (5, "DLDIFF", "IFNA ROUNDX - $DLITRES $$DLITRES 2 0"),
    (5, "JOBS", "#RECS"),
    (5, "DHOURS", "ROUNDX SSUM $hours 3"),
    (5, "UTIL", "ROUNDX / $DHOURS 24 3"),
    (5, "FAULTS", "SCNTNR $d$state 4 4"),
    // Type 6: summaries over the days of a range.
    (6, "days", "#RECS"),
    (6, "jobs", "SCNT $j$tavg"),
    (6, "km", "ROUNDX SSUM $ddist 1"),
    (6, "litres", "ROUNDX SSUM $dlitres 1"),
    (6, "hours", "ROUNDX SSUM $dhours 1"),
    (6, "tmax", "SMAX $dtmax"),
    (6, "faults", "SSUM $faults"),
    // Type 7: totals, reading type 6 results.
    (7, "l_100km", "IF > $KM 0 ROUNDX * / $LITRES $KM 100 1 0"),
    (7, "km_day", "ROUNDX / $KM $DAYS 1"),
    (7, "util", "ROUNDX / $HOURS / #MT 3600 3"),
];

/// One device's timeline, produced job by job.
struct DeviceRun {
    id: i32,
    scale: Scale,
    rng: Rng,
    /// The next (day, job of the day) to produce.
    day: u32,
    job: u32,
    day_break: NaiveTime,
    /// Carried from job to job: tank level, position, heading, coolant temperature.
    fuel: f64,
    lat: f64,
    lon: f64,
    heading: f64,
    tmp: f64,
    /// Device 1 in 5 runs hot (exceeds the default `#TMAX` now and then).
    hot_running: bool,
    /// Engine speed of the work phase.
    work_rpm: f64,
}

impl DeviceRun {
    fn new(set: &Dataset, d: u32) -> DeviceRun {
        let mut rng = Rng::new(set.seed ^ u64::from(d).wrapping_mul(0xA24B_AED4_963E_E407));
        let heading = rng.next_f64() * std::f64::consts::TAU;
        let day_break =
            NaiveTime::parse_from_str(&Dataset::day_break(d), "%H:%M").unwrap_or(NaiveTime::MIN);
        DeviceRun {
            id: device_id(d),
            scale: set.scale,
            day: 0,
            job: 0,
            day_break,
            fuel: 300.0 + 100.0 * rng.next_f64(),
            lat: HOME.0 + 0.01 * (rng.next_f64() - 0.5),
            lon: HOME.1 + 0.01 * (rng.next_f64() - 0.5),
            heading,
            tmp: 15.0,
            hot_running: d % 5 == 3,
            work_rpm: 1650.0 + 300.0 * rng.next_f64(),
            rng,
        }
    }

    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.rng.next_f64()
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.next_f64() < p
    }

    /// The rows of one job starting at `start`.
    fn job_rows(&mut self, start: NaiveDateTime) -> Vec<Row> {
        let n = match self.scale.rows_per_job {
            Some(n) => n as usize,
            None => 80 + (self.rng.next_u64() % 161) as usize,
        };
        let interval = [30i64, 45, 60][(self.rng.next_u64() % 3) as usize];
        // Many jobs a day: rows closer together, so that jobs never overlap (a job
        // starts at most `jitter` into its slot of the day).
        let slot = 20 * 3600 / i64::from(self.scale.jobs_per_day.max(1));
        let interval = interval.min(((slot - jitter(slot)) / n.max(1) as i64).max(1));
        let user = USERS[(self.rng.next_u64() % USERS.len() as u64) as usize];
        // The engine has cooled down since the last job.
        self.tmp = self.tmp.min(self.uniform(12.0, 30.0));
        if self.fuel < 120.0 {
            self.fuel = 400.0;
        }
        let consumption = self.uniform(9.0, 18.0); // l/h at work
        let peak = if self.hot_running {
            self.uniform(86.0, 97.0)
        } else {
            self.uniform(78.0, 88.0)
        };
        let mut rows = Vec::with_capacity(n);
        let mut stuck: Option<(usize, f64)> = None;
        for i in 0..n {
            let at = start + Duration::seconds(interval * i as i64);
            let phase = i as f64 / n as f64;
            let mut state = if i < 3 || i + 2 >= n {
                IDLE
            } else if !(0.1..=0.85).contains(&phase) {
                TRANSPORT
            } else {
                WORK
            };
            if state == WORK && self.chance(0.004) {
                state = FAULT;
            }
            let (rpm, spd) = match state {
                IDLE => (self.uniform(700.0, 800.0), 0.0),
                WORK => (
                    self.work_rpm + self.uniform(-150.0, 150.0),
                    self.uniform(4.0, 12.0),
                ),
                TRANSPORT => (self.uniform(1300.0, 1700.0), self.uniform(18.0, 45.0)),
                _ => (self.uniform(0.0, 400.0), 0.0),
            };
            // Coolant: warms towards the job's peak, with noise and rare spikes.
            self.tmp += (peak - self.tmp) * 0.08 + self.uniform(-0.6, 0.6);
            let mut tmp = self.tmp;
            if self.chance(0.003) {
                tmp += self.uniform(15.0, 30.0);
            }
            // Oil pressure follows the engine speed; now and then the sensor sticks.
            let mut prs = 0.6 + rpm / 700.0 + self.uniform(-0.25, 0.25);
            match stuck {
                Some((left, value)) if left > 0 => {
                    prs = value;
                    stuck = Some((left - 1, value));
                }
                _ => {
                    stuck = None;
                    if self.chance(0.002) {
                        stuck = Some((self.rng.next_u64() as usize % 8 + 6, prs));
                    }
                }
            }
            let hours = if i == 0 {
                0.0
            } else {
                interval as f64 / 3600.0
            };
            let rate = match state {
                WORK => consumption,
                TRANSPORT => consumption * 0.7,
                IDLE => 2.0,
                _ => 0.5,
            };
            self.fuel = (self.fuel - rate * hours).max(0.0);
            // Move along the heading, turning slowly.
            self.heading += self.uniform(-0.15, 0.15);
            let metres = spd / 3.6 * hours * 3600.0;
            self.lat += metres * self.heading.cos() / 111_195.0;
            self.lon += metres * self.heading.sin() / (111_195.0 * self.lat.to_radians().cos());
            // Stay within ~20 km of the yard.
            if (self.lat - HOME.0).abs() > 0.18 || (self.lon - HOME.1).abs() > 0.27 {
                self.heading += std::f64::consts::PI;
            }
            rows.push(Row {
                datetime: at,
                data_time: start,
                id: self.id,
                state: Some(state),
                user: Some(user.to_owned()),
                gps: Some(format!("{:.6},{:.6}", self.lat, self.lon)),
                recalc: 1,
                conjoined: format!(
                    "tmp={tmp:.1};prs={prs:.2};rpm={rpm:.0};fuel={:.1};spd={spd:.1};",
                    self.fuel
                ),
                version: RowVersion::ABSENT,
                unreadable: None,
            });
        }
        rows
    }
}

impl Iterator for DeviceRun {
    type Item = Vec<Row>;

    fn next(&mut self) -> Option<Vec<Row>> {
        if self.day >= self.scale.days || self.scale.jobs_per_day == 0 {
            return None;
        }
        let date = Dataset::start() + Duration::days(i64::from(self.day));
        let slot = 20 * 3600 / i64::from(self.scale.jobs_per_day);
        let offset =
            1800 + slot * i64::from(self.job) + (self.rng.next_u64() % jitter(slot) as u64) as i64;
        let start = date.and_time(self.day_break) + Duration::seconds(offset);
        let rows = self.job_rows(start);
        self.job += 1;
        if self.job >= self.scale.jobs_per_day {
            self.job = 0;
            self.day += 1;
        }
        Some(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::catalog::Catalog;
    use crate::lang::Level;

    fn small() -> Dataset {
        Dataset::new(
            Scale {
                devices: 3,
                days: 2,
                jobs_per_day: 2,
                rows_per_job: None,
            },
            7,
        )
    }

    #[test]
    fn every_equation_compiles_and_orders_without_problems() {
        let set = small();
        let catalog = Catalog::build(&set.equations());
        assert!(catalog.problems().is_empty(), "{:?}", catalog.problems());
        let eqs = catalog.set_for(1);
        assert_eq!(eqs.data.len(), 20);
        assert_eq!(eqs.job.len(), 10);
        assert_eq!(eqs.day.len(), 10);
        assert_eq!(eqs.summary.len(), 10);
        assert!(eqs.needs.fixpoint && eqs.needs.prev_data_row && eqs.needs.prev_job);
        assert!(eqs.needs.day_data && eqs.needs.prev_day);
        for eq in &eqs.data {
            assert_eq!(eq.program.level(), Level::Data);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_rows() {
        let a: Vec<Vec<Row>> = small().jobs().collect();
        let b: Vec<Vec<Row>> = small().jobs().collect();
        assert_eq!(a, b);
        let other: Vec<Vec<Row>> = Dataset::new(small().scale, 8).jobs().collect();
        assert_ne!(a, other);
    }

    #[test]
    fn jobs_are_consecutive_and_each_row_carries_its_job_start() {
        let set = small();
        let jobs: Vec<Vec<Row>> = set.jobs().collect();
        assert_eq!(jobs.len() as u64, set.scale.jobs());
        assert_eq!(
            jobs.iter().map(Vec::len).sum::<usize>() as u64,
            set.row_count()
        );
        for pair in jobs.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if a[0].id == b[0].id {
                assert!(a.last().unwrap().datetime < b[0].datetime);
            }
        }
        for job in &jobs {
            assert!((80..=240).contains(&job.len()));
            assert!(job.iter().all(|r| r.data_time == job[0].datetime));
            assert!(job.windows(2).all(|w| w[0].datetime < w[1].datetime));
            assert!(job.iter().all(|r| r.recalc == 1));
        }
        let fixed = Dataset::new(
            Scale {
                rows_per_job: Some(100),
                ..set.scale
            },
            1,
        );
        assert_eq!(fixed.row_count(), 1200);
        assert!(fixed.jobs().all(|j| j.len() == 100));
    }

    #[test]
    fn the_engine_computes_every_equation_of_every_row_job_and_day() {
        use crate::engine::catalog::Constants;
        use crate::engine::compute::{compute, DeviceBatch, Options};
        let set = small();
        let catalog = Catalog::build(&set.equations());
        let constants = Constants::build(&set.constants(), catalog.symbols());
        let mut by_device: std::collections::BTreeMap<i32, DeviceBatch> = Default::default();
        for job in set.jobs() {
            let d = by_device.entry(job[0].id).or_insert_with(|| DeviceBatch {
                id: job[0].id,
                ..DeviceBatch::default()
            });
            d.target_jobs.insert(job[0].data_time);
            d.data.extend(job);
        }
        for (_, batch) in by_device {
            let rows = batch.data.len();
            let out = compute(batch, &catalog, &constants, &Options::default());
            assert!(
                out.errors.is_empty(),
                "{:?}",
                &out.errors[..3.min(out.errors.len())]
            );
            assert_eq!(out.data.len(), rows);
            assert_eq!(out.jobs.len(), 4);
            assert!(out.days.len() >= 2, "{}", out.days.len());
            assert!(out.iterations >= 2, "the data level reads $TAVG back");
            let first = &out.data[0].conjoined;
            assert!(first.contains("hot=") && first.contains("tdev="), "{first}");
            let job = &out.jobs[0].conjoined;
            assert!(job.contains("TSPIKE=") && job.contains("THIST="), "{job}");
            let day = &out.days[0].conjoined;
            assert!(day.contains("DTMAX=") && day.contains("UTIL="), "{day}");
        }
    }

    #[test]
    fn the_bench_scale_is_a_million_rows_in_ten_thousand_jobs() {
        assert_eq!(Scale::BENCH.jobs(), 10_000);
        assert_eq!(Dataset::new(Scale::BENCH, 1).row_count(), 1_000_000);
    }

    #[test]
    fn every_device_has_a_day_break_and_one_a_time_zone() {
        let set = small();
        let c = set.constants();
        for d in 1..=3 {
            assert!(c.iter().any(|k| k.id == d && k.name == "WB"));
        }
        let demo = Dataset::new(Scale::DEMO, 1).constants();
        assert!(demo.iter().any(|k| k.id == 4 && k.name == "TZ"));
    }
}
