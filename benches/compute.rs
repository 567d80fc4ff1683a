//! Compute benchmark: the engine's in-memory recalculation alone (`engine::compute`), no
//! database. The demo's data set at bench scale — 1,000,000 flagged data rows of 100
//! devices, 10,000 jobs of 100 rows, the demo's 20 data, 10 job and 10 day equations —
//! is generated device by device; each device's rows go to `compute` as one batch whose
//! jobs are all to be computed (as a first `recalcd once` sees them: no job or day rows
//! stored yet). `RECALCD_BENCH_ROWS` for quick runs (rounded to whole jobs of 100 rows).
//!
//! Only the `compute` calls are timed, on one thread, so the figure is CPU time per data
//! row. Generating the rows and the digest are not timed.
//!
//! The digest is a hash (FNV-1a) of everything `compute` returned, device by device in
//! order: every data, job and day row with all its fields, every error record, the
//! iteration count and the changed jobs and days. An optimisation that changes any output
//! byte changes it. Prints figures; asserts nothing about time.
//! `cargo bench --bench compute`.

mod common;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use common::{env_usize, scale_for, secs};
use recalcd::demo::Dataset;
use recalcd::engine::catalog::{Catalog, Constants};
use recalcd::engine::compute::{compute, DeviceBatch, Options, Outcome};

/// A 64-bit FNV-1a hash fed through `fmt::Write`, so outputs are hashed as they are
/// formatted, without building their text.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    /// Hashes `out` field by field (`Debug` spells out every field of a row and an error).
    fn outcome(&mut self, out: &Outcome) {
        for row in out.data.iter().chain(&out.jobs).chain(&out.days) {
            let _ = writeln!(self, "{row:?}");
        }
        for e in &out.errors {
            let _ = writeln!(self, "{e:?}");
        }
        let _ = writeln!(
            self,
            "{} {:?} {:?}",
            out.iterations, out.changed_jobs, out.changed_days
        );
    }
}

impl std::fmt::Write for Fnv {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        for b in s.bytes() {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Ok(())
    }
}

fn main() {
    let scale = scale_for(env_usize("RECALCD_BENCH_ROWS").unwrap_or(1_000_000));
    let set = Dataset::new(scale, 1);
    let catalog = Catalog::build(&set.equations());
    assert!(catalog.problems().is_empty(), "{:?}", catalog.problems());
    let constants = Constants::build(&set.constants(), catalog.symbols());
    let options = Options::default();
    println!(
        "compute benchmark: {} data rows, {} devices, {} jobs, {} equations (20 data, \
         10 job, 10 day), one thread",
        set.row_count(),
        scale.devices,
        scale.jobs(),
        set.equations().len()
    );

    let mut digest = Fnv::new();
    let mut timed = Duration::ZERO;
    let (mut rows, mut written, mut errors) = (0usize, 0usize, 0usize);
    let mut batch: Option<DeviceBatch> = None;
    let mut run = |batch: DeviceBatch| {
        rows += batch.data.len();
        let start = Instant::now();
        let out = compute(batch, &catalog, &constants, &options);
        timed += start.elapsed();
        written += out.data.len() + out.jobs.len() + out.days.len();
        errors += out.errors.len();
        digest.outcome(&out);
    };
    // The data set yields jobs device by device: one batch per device.
    for job in set.jobs() {
        let id = job[0].id;
        if batch.as_ref().is_some_and(|b| b.id != id) {
            run(batch.take().unwrap_or_default());
        }
        let b = batch.get_or_insert_with(|| DeviceBatch {
            id,
            ..DeviceBatch::default()
        });
        b.target_jobs.insert(job[0].data_time);
        b.data.extend(job);
    }
    if let Some(b) = batch {
        run(b);
    }

    let per_row = timed.as_secs_f64() / rows as f64;
    println!(
        "  compute: {} for {rows} data rows ({:.0} data rows/s, {:.0} ns/data row); \
         wrote {written} rows, {errors} errors",
        secs(timed),
        1.0 / per_row,
        per_row * 1e9
    );
    println!("  digest of every output: {:016x}", digest.0);
}
