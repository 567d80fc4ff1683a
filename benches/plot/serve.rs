//! The plot benchmark's last step: the same plots through `recalcd serve`'s API, with
//! several viewers at once (issue 14, point 5: latency p50/p99 with 8 concurrent
//! viewers).
//!
//! Starts the real binary (`recalcd serve --listen 127.0.0.1:0`, its default pool of 8
//! sessions), then `RECALCD_BENCH_VIEWERS` (default 8) threads each open
//! `RECALCD_BENCH_VIEWS` (default 20) views as the page does: `/api/plot?step=coarse`,
//! then `step=final`; views alternate between the whole range and a one-day zoom at a
//! different day each time. Latencies are wall times of the HTTP requests (JSON
//! included), per kind of request.

use std::path::Path;
use std::time::{Duration, Instant};

use recalcd::index::{Micros, DAY};

/// Latencies of one kind of request.
pub struct Latencies {
    /// What was asked.
    pub what: &'static str,
    /// Every request's wall time, sorted.
    pub times: Vec<Duration>,
}

impl Latencies {
    /// The `q`-quantile (nearest rank).
    pub fn quantile(&self, q: f64) -> Duration {
        if self.times.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((q * self.times.len() as f64).ceil() as usize).clamp(1, self.times.len());
        self.times[rank - 1]
    }
}

/// `YYYY-MM-DDTHH:MM:SS.ffffff`.
fn stamp(t: Micros) -> String {
    recalcd::index::datetime(t)
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

/// Runs the viewers against a `recalcd serve` of `config_file` and `url`, plotting
/// `range` (and one-day zooms inside it) `width` columns wide for `device`. `None` when
/// the server could not be started (said on stdout).
pub fn viewers(
    exe: &Path,
    config_file: &Path,
    url: &str,
    device: i32,
    range: (Micros, Micros),
    width: u32,
) -> Option<(Latencies, Latencies, usize)> {
    let viewers = super::env_usize("RECALCD_BENCH_VIEWERS").unwrap_or(8);
    let views = super::env_usize("RECALCD_BENCH_VIEWS").unwrap_or(20);
    let served = super::common::Served::start(exe, config_file, url)?;
    let base = served.base.clone();
    let days = ((range.1 - range.0) / DAY).max(1);
    let started = Instant::now();
    let handles: Vec<_> = (0..viewers)
        .map(|v| {
            let base = base.clone();
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(600)))
                    .build()
                    .into();
                let mut coarse = Vec::new();
                let mut fine = Vec::new();
                for k in 0..views {
                    let (from, to) = if k % 2 == 0 {
                        range
                    } else {
                        let day = ((v * views + k) as i64 * 7919) % days;
                        let from = range.0 + day * DAY + 12_345_678;
                        (from, (from + DAY).min(range.1))
                    };
                    for (step, out) in [("coarse", &mut coarse), ("final", &mut fine)] {
                        let t = Instant::now();
                        let resp = agent
                            .get(format!("{base}/api/plot"))
                            .query("channel", "tmp")
                            .query("id", device.to_string())
                            .query("from", stamp(from))
                            .query("to", stamp(to))
                            .query("width", width.to_string())
                            .query("step", step)
                            .call();
                        let ok = match resp {
                            Ok(mut r) => {
                                r.status().as_u16() == 200
                                    && r.body_mut()
                                        .with_config()
                                        .limit(64 << 20)
                                        .read_to_string()
                                        .is_ok()
                            }
                            Err(_) => false,
                        };
                        assert!(ok, "a plot request through the API failed");
                        out.push(t.elapsed());
                    }
                }
                (coarse, fine)
            })
        })
        .collect();
    let mut coarse = Latencies {
        what: "first frame (step=coarse)",
        times: Vec::new(),
    };
    let mut fine = Latencies {
        what: "final frame (step=final)",
        times: Vec::new(),
    };
    for h in handles {
        let (c, f) = h.join().expect("a viewer");
        coarse.times.extend(c);
        fine.times.extend(f);
    }
    let wall = started.elapsed();
    coarse.times.sort_unstable();
    fine.times.sort_unstable();
    drop(served);
    println!(
        "  {viewers} viewers × {views} views (whole range and one-day zooms alternating) in {:.1} s",
        wall.as_secs_f64()
    );
    Some((coarse, fine, viewers))
}
