//! No day is left stale with `recalc = 0`: a day computed in a batch reads the current
//! rows of its jobs (never a worker's memory of rows someone has rewritten since) and
//! the previous day's jobs (also when that day waits for a job of its own), whatever
//! the batch size.

use std::process::Command;

use recalcd::config::Config;
use recalcd::service::{run_until_idle, run_while, Recalculator};
use recalcd::store::{self, Store};

use crate::support::TestDb;

/// Runs `recalcd once` (the real binary, a process of its own) on `url` with extra
/// environment, and checks that it succeeded.
fn once(url: &str, env: &[(&str, &str)]) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_recalcd"));
    cmd.args(["once", "--database-url", url])
        .env_remove("RECALCD_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run recalcd once");
    assert!(
        out.status.success(),
        "recalcd once failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `recalcd migrate`, then `statements`.
fn migrated(db: &TestDb, statements: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_recalcd"))
        .args(["migrate", "--database-url", &db.url])
        .env_remove("RECALCD_CONFIG")
        .output()
        .expect("run recalcd migrate");
    assert!(out.status.success(), "{out:?}");
    db.execute_blocking(statements);
}

/// `INSERT` values for the data rows of one job: `(id, start, minute offsets and x)`.
fn job(id: i32, start: &str, xs: &[i64]) -> String {
    xs.iter()
        .enumerate()
        .map(|(i, x)| {
            format!(
                "({id}, TIMESTAMP '{start}' + INTERVAL '{i} minutes', TIMESTAMP '{start}', 1, 'x={x};')"
            )
        })
        .collect::<Vec<_>>()
        .join(",\n")
}

/// The `conjoined` of a day row.
fn day(db: &TestDb, id: i32, start: &str) -> String {
    let rows = db.query_blocking(&format!(
        "SELECT conjoined, recalc FROM day WHERE id = {id} AND datetime = '{start}'"
    ));
    assert_eq!(rows.len(), 1, "day {id} {start}: {rows:?}");
    assert_eq!(
        rows[0][1].as_deref(),
        Some("0"),
        "day {id} {start} is computed"
    );
    rows[0][0].clone().unwrap_or_default()
}

/// Worker A drains a backlog pipelined and computes job J1 of device 1 and its day;
/// a producer re-flags a changed row of J1 and worker B (another process) recomputes
/// it; the producer then changes a row of J3 of the same day, and A computes J3 and
/// the day: the day's `$d$x` must read J1's rows as B wrote them, not A's memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_reads_the_rows_another_worker_rewrote_not_its_memory_of_them() {
    let db = TestDb::create().await;
    let setup = format!(
        "INSERT INTO constants (id, name, value) VALUES (0, 'WB', '00:00');
         INSERT INTO equations (type, id, name, eq) VALUES
             (4, 0, 'jsum', 'SSUM $x'), (5, 0, 'dall', 'SSUM $d$x');
         INSERT INTO data (id, datetime, data_time, recalc, conjoined) VALUES
         {}, {}, {};",
        job(1, "2024-04-01 08:00", &[1, 2, 3]),
        job(1, "2024-04-01 12:00", &[10, 20, 30]),
        job(2, "2024-04-01 10:00", &[7, 7, 7]),
    );
    tokio::task::block_in_place(|| {
        migrated(&db, &setup);
        once(&db.url, &[]);
        assert!(day(&db, 1, "2024-04-01 00:00:00").contains("dall=66;"));
        // The backlog A drains: J1 of device 1, then device 2's job.
        db.execute_blocking(
            "UPDATE data SET recalc = 1
              WHERE (id = 1 AND data_time = '2024-04-01 08:00') OR id = 2",
        );
    });

    let mut config = Config::default();
    config.database.url = db.url.clone();
    let mut store = store::connect(&config).await.expect("connect");
    let recalc = Recalculator::load(&store, config.engine.clone(), 3)
        .await
        .expect("load");
    let mut landed = 0;
    let url = db.url.clone();
    run_while(&recalc, &mut store, |_| {
        landed += 1;
        if landed == 1 {
            // A has written J1 (and remembers its rows); device 1 is free again.
            tokio::task::block_in_place(|| {
                db.execute_blocking(
                    "UPDATE data SET conjoined = 'x=100;', recalc = 1
                      WHERE id = 1 AND datetime = '2024-04-01 08:01'",
                );
                once(&url, &[]);
                db.execute_blocking(
                    "UPDATE data SET conjoined = 'x=50;', recalc = 1
                      WHERE id = 1 AND datetime = '2024-04-01 12:01'",
                );
            });
        }
        true
    })
    .await
    .expect("worker A");
    assert!(
        landed >= 3,
        "A wrote J1, device 2's job and J3 ({landed} batches)"
    );
    drop(store);

    tokio::task::block_in_place(|| {
        let flagged = db.query_blocking(
            "SELECT count(*) FROM data WHERE recalc <> 0
             UNION ALL SELECT count(*) FROM job WHERE recalc <> 0",
        );
        assert!(flagged.iter().all(|r| r[0].as_deref() == Some("0")));
        // 1 + 100 + 3 + 10 + 50 + 30; A's memory of J1 would give 96.
        let d = day(&db, 1, "2024-04-01 00:00:00");
        assert!(d.contains("dall=194;"), "day 1: {d}");
    });
}

/// Days D and D+1 are flagged and a flagged row of a job of D falls outside the batch,
/// so D waits; D+1, computed in that batch, reads `$$jsum` over D's jobs — all of
/// them, though D itself is not computed there. D then computes to the same values, so
/// nothing would correct D+1 later.
#[test]
fn a_day_computed_while_the_previous_day_waits_reads_all_that_days_jobs() {
    let db = TestDb::create_blocking();
    migrated(
        &db,
        &format!(
            "INSERT INTO constants (id, name, value) VALUES (0, 'WB', '00:00');
         INSERT INTO equations (type, id, name, eq) VALUES
                 (4, 0, 'jsum', 'SSUM $x'), (5, 0, 'dprev', 'IFNA SSUM $$jsum 0');
             INSERT INTO data (id, datetime, data_time, recalc, conjoined) VALUES
             {}, {}, {};",
            job(1, "2024-04-01 08:00", &[1, 2, 3]),
            job(1, "2024-04-01 12:00", &[10, 20, 30]),
            job(1, "2024-04-02 08:00", &[5, 5, 5]),
        ),
    );
    once(&db.url, &[]);
    assert!(day(&db, 1, "2024-04-02 00:00:00").contains("dprev=66;"));

    // Nothing changes, but both days and both jobs of D are flagged; with two flagged
    // rows a batch, the first batch takes J1 and both days, and D waits for J2.
    db.execute_blocking(
        "UPDATE day SET recalc = 1;
         UPDATE data SET recalc = 1 WHERE datetime < '2024-04-02';",
    );
    once(&db.url, &[("RECALCD__POLL__BATCH_SIZE", "2")]);
    let d = day(&db, 1, "2024-04-02 00:00:00");
    assert!(d.contains("dprev=66;"), "day D+1: {d}");
}

/// A small xorshift generator: the cases are reproducible from their seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Three devices over four days, 2–4 jobs a day of 1–5 rows, and equations reading
/// `$$` at every level and `$d$x`.
fn data_set(rng: &mut Rng) -> String {
    let mut jobs = Vec::new();
    for id in 1..=3 {
        for d in 1..=4 {
            for j in 0..2 + rng.below(3) {
                let xs: Vec<i64> = (0..1 + rng.below(5))
                    .map(|_| rng.below(20) as i64)
                    .collect();
                jobs.push(job(id, &format!("2024-04-0{d} {:02}:00", 6 + 4 * j), &xs));
            }
        }
    }
    format!(
        "INSERT INTO constants (id, name, value) VALUES (0, 'WB', '00:00');
         INSERT INTO equations (type, id, name, eq) VALUES
             (1, 0, 'dx', 'IFNA - $x $$x 0'),
             (2, 0, 'rel', '- $x $JAVG'),
             (4, 0, 'JAVG', 'SNRM $x'),
             (4, 0, 'jsum', 'SSUM $x'),
             (4, 0, 'JPREV', 'IFNA $$JAVG 0'),
             (4, 0, 'jprevx', 'IFNA SSUM $$x 0'),
             (5, 0, 'dall', 'SSUM $d$x'),
             (5, 0, 'DTOT', 'SSUM $jsum'),
             (5, 0, 'dprevj', 'IFNA SSUM $$jsum 0'),
             (5, 0, 'DPREV', 'IFNA $$DTOT 0');
         INSERT INTO data (id, datetime, data_time, recalc, conjoined) VALUES {};",
        jobs.join(",\n")
    )
}

/// A producer's second round: some rows get a new `x`, and random data, job and day
/// rows are re-flagged (changed or not).
fn changes(rng: &mut Rng) -> String {
    let mut sql = String::new();
    for _ in 0..6 {
        let (id, d, h) = (1 + rng.below(3), 1 + rng.below(4), 6 + 4 * rng.below(2));
        sql += &format!(
            "UPDATE data SET conjoined = 'x={}.5;', recalc = 2
              WHERE id = {id} AND datetime = '2024-04-0{d} {h:02}:00';\n",
            rng.below(30)
        );
    }
    for (table, p) in [("data", 10), ("job", 4), ("day", 3)] {
        sql += &format!(
            "UPDATE {table} SET recalc = 1 WHERE (extract(epoch FROM datetime)::bigint / 60 + id * 7) % {p} = {};\n",
            rng.below(p)
        );
    }
    sql
}

/// Every row as text, in key order.
fn dump(db: &TestDb) -> Vec<Vec<Option<String>>> {
    ["data", "job", "day"]
        .iter()
        .flat_map(|t| {
            db.query_blocking(&format!(
                "SELECT '{t}', id, datetime, data_time, recalc, conjoined FROM {t} ORDER BY id, datetime"
            ))
        })
        .collect()
}

/// The tables after the data set is computed, then the producer's changes computed
/// with `batch_size` flagged rows a batch (pipelined, as `recalcd once` runs).
async fn computed(setup: &str, changes: &str, batch_size: usize) -> Vec<Vec<Option<String>>> {
    let db = TestDb::create().await;
    let mut config = Config::default();
    config.database.url = db.url.clone();
    let mut store = store::connect(&config).await.expect("connect");
    store.migrate().await.expect("migrate");
    tokio::task::block_in_place(|| db.execute_blocking(setup));
    for (sql, n) in [("", 1_000_000), (changes, batch_size)] {
        tokio::task::block_in_place(|| db.execute_blocking(sql));
        let recalc = Recalculator::load(&store, config.engine.clone(), n)
            .await
            .expect("load");
        run_until_idle(&recalc, &mut store, |_| {})
            .await
            .expect("run");
    }
    drop(store);
    tokio::task::block_in_place(|| dump(&db))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_batch_size_gives_what_one_batch_gives() {
    for seed in [
        0x9e37_79b9_7f4a_7c15_u64,
        0x2545_f491_4f6c_dd1d,
        0xdead_beef_1234_5678,
    ] {
        let mut rng = Rng(seed);
        let setup = data_set(&mut rng);
        let changes = changes(&mut rng);
        let expected = computed(&setup, &changes, 1_000_000).await;
        let failed: Vec<_> = expected
            .iter()
            .filter(|r| r[4].as_deref() != Some("0"))
            .collect();
        assert!(failed.is_empty(), "seed {seed:#x}: {failed:?}");
        for _ in 0..3 {
            let n = 1 + rng.below(12) as usize;
            let got = computed(&setup, &changes, n).await;
            assert_eq!(got.len(), expected.len(), "seed {seed:#x}, batch size {n}");
            for (g, e) in got.iter().zip(&expected) {
                assert_eq!(g, e, "seed {seed:#x}, batch size {n}");
            }
        }
    }
}
