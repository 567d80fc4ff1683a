//! The engine benchmark on QuestDB, run by `cargo bench --bench engine` when
//! `QUESTDB_URL` is set (`QUESTDB_ILP` = the QuestDB's HTTP `host:port` when it is not
//! the URL host's 9000). The same data set as on PostgreSQL (1,000,000 flagged data
//! rows; `RECALCD_BENCH_ROWS` for fewer), in tables with a prefix of their own, dropped
//! afterwards. Each round (`RECALCD_BENCH_ROUNDS`, default 1; the medians are printed):
//!
//! 1. Not timed: truncate the tables, write the flagged data rows by ILP, wait for the
//!    WAL (`wait_wal_table`).
//! 2. Timed, end to end: what `recalcd once` does (load the equations, batches of
//!    poll, load, compute and write back until nothing is flagged), then
//!    `wait_wal_table` on data, job and day, so that everything written is applied.
//!    The peak RSS is read right after (reset before: `mi_collect`, then
//!    `/proc/self/clear_refs`), and printed with the RSS it started from.
//! 3. Not timed: read back the rows recalcd wrote; reset as in 1.
//! 4. Timed, recalcd's write-back alone: those rows handed to `Store::write_back` in
//!    the batches the engine makes (`poll.batch_size` data rows, oldest first, with the
//!    jobs and days of their time span) — the guard's re-reads and the ILP requests —
//!    then `wait_wal_table` on the three tables.
//! 5. Not timed: reset as in 1. Timed, the floor: the same rows written once by ILP
//!    with the plain client (per table in time order, 50,000 rows per request), then
//!    `wait_wal_table` on the three tables.
//!
//! Then the demo's recalculation (`recalcd demo`'s 5 devices × 21 days, about 50,000
//! rows: `run_until_idle` on the flagged rows) on QuestDB and on PostgreSQL
//! (`DATABASE_URL`), one after the other, `RECALCD_BENCH_ROUNDS` times each.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use questdb::ingress::{Buffer, Sender, TimestampMicros};
use recalcd::config::{Config, IlpChoice};
use recalcd::demo::{Dataset, Scale};
use recalcd::service::{run_until_idle, Recalculator};
use recalcd::store::{self, AnyStore, Level, Row, Store, WriteBatch};
use tokio_postgres::Client;

use super::common::{
    connect, copy_rows, cpu_seconds, cpu_since, env_usize, peak_rss_mb, print_median, scale_for,
    secs, BenchDb,
};

/// Rows per ILP request of the floor (and of the seeding).
const FLOOR_CHUNK: usize = 50_000;

/// The QuestDB under test: its URL and the ILP address.
pub struct Quest {
    url: String,
    ilp: String,
}

impl Quest {
    /// From `QUESTDB_URL` (and `QUESTDB_ILP`); `None` when it is not set.
    pub fn from_env() -> Option<Quest> {
        let url = std::env::var("QUESTDB_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())?;
        let ilp = match std::env::var("QUESTDB_ILP").map(|a| IlpChoice::parse(&a)) {
            Ok(Ok(IlpChoice::Address(a))) => a,
            _ => {
                let pg: tokio_postgres::Config = url.parse().expect("QUESTDB_URL");
                let host = match pg.get_hosts().first() {
                    Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
                    _ => panic!("QUESTDB_URL needs a TCP host"),
                };
                format!("{host}:9000")
            }
        };
        Some(Quest { url, ilp })
    }

    /// recalcd's configuration for tables prefixed `prefix`.
    fn config(&self, prefix: &str) -> Config {
        let mut config = Config::default();
        config.database.url = self.url.clone();
        config.database.questdb_ilp = IlpChoice::Address(self.ilp.clone());
        config.tables = config.tables.prefixed(prefix);
        config
    }

    fn sender(&self) -> Sender {
        Sender::from_conf(format!("http::addr={};", self.ilp)).expect("ILP sender")
    }
}

/// One QuestDB installation of the benchmark: its tables, store and clients.
struct Bench {
    config: Config,
    store: AnyStore,
    client: Client,
    sender: Sender,
}

impl Bench {
    async fn open(quest: &Quest, prefix: &str, set: &Dataset) -> Bench {
        let config = quest.config(prefix);
        let mut store = store::connect(&config).await.expect("connect to QuestDB");
        store.migrate().await.expect("migrate");
        store
            .insert_definitions(&set.constants(), &set.equations())
            .await
            .expect("definitions");
        let client = connect(&quest.url).await;
        Bench {
            config,
            store,
            client,
            sender: quest.sender(),
        }
    }

    fn levels(&self) -> [&str; 3] {
        let t = &self.config.tables;
        [&t.data, &t.job, &t.day]
    }

    async fn wait_wal(&self) {
        for t in self.levels() {
            self.client
                .batch_execute(&format!("SELECT wait_wal_table('{t}')"))
                .await
                .expect("wait_wal_table");
        }
    }

    /// Empty tables, then the data rows flagged, applied.
    async fn reset(&mut self, set: &Dataset) -> usize {
        let t = &self.config.tables;
        for table in [&t.data, &t.job, &t.day, &t.errors] {
            self.client
                .batch_execute(&format!(r#"TRUNCATE TABLE "{table}""#))
                .await
                .expect("TRUNCATE");
        }
        let data = t.data.clone();
        let rows: Vec<Row> = set.jobs().flatten().collect();
        let n = rows.len();
        ilp_write(&mut self.sender, &data, rows.iter().collect());
        self.wait_wal().await;
        n
    }

    /// Every row of the three levels, with its version as the store reads it.
    async fn saved(&self) -> [Vec<Row>; 3] {
        let from = NaiveDateTime::MIN;
        let to = NaiveDateTime::MAX;
        let mut out: [Vec<Row>; 3] = Default::default();
        for (i, level) in Level::ALL.into_iter().enumerate() {
            out[i] = self
                .store
                .load_between(level, from, to)
                .await
                .expect("read back");
        }
        out
    }

    async fn drop_tables(self) {
        for (_, t) in self.config.tables.all() {
            let _ = self
                .client
                .batch_execute(&format!(r#"DROP TABLE IF EXISTS "{t}""#))
                .await;
        }
    }
}

/// [`ilp_send`] from inside the runtime.
fn ilp_write(sender: &mut Sender, table: &str, rows: Vec<&Row>) {
    tokio::task::block_in_place(|| ilp_send(sender, table, rows));
}

/// `rows` into `table` by ILP, in `(datetime, id)` order, [`FLOOR_CHUNK`] per request.
fn ilp_send(sender: &mut Sender, table: &str, mut rows: Vec<&Row>) {
    rows.sort_by_key(|r| (r.datetime, r.id));
    let micros = |t: NaiveDateTime| TimestampMicros::new(t.and_utc().timestamp_micros());
    for chunk in rows.chunks(FLOOR_CHUNK) {
        let mut buffer: Buffer = sender.new_buffer();
        for r in chunk {
            buffer
                .table(table)
                .and_then(|b| b.column_ts("data_time", micros(r.data_time)))
                .and_then(|b| b.column_i64("id", r.id.into()))
                .and_then(|b| b.column_i64_opt("state", r.state.map(i64::from)))
                .and_then(|b| b.column_str_opt("user", r.user.as_deref()))
                .and_then(|b| b.column_str_opt("gps", r.gps.as_deref()))
                .and_then(|b| b.column_i64("recalc", r.recalc.into()))
                .and_then(|b| b.column_str("conjoined", &r.conjoined))
                .and_then(|b| b.at(micros(r.datetime)))
                .expect("ILP row");
        }
        sender
            .flush_and_keep_with_flags(&buffer, true)
            .expect("ILP write");
    }
}

/// The write-back batches the engine makes: `batch` data rows, oldest first, with the
/// jobs and days that start in their span.
fn batches(
    saved: &[Vec<Row>; 3],
    versions: &HashMap<(i32, NaiveDateTime), store::RowVersion>,
    batch: usize,
) -> Vec<WriteBatch> {
    let mut data: Vec<Row> = saved[0].clone();
    for r in &mut data {
        r.version = versions[&(r.id, r.datetime)];
    }
    data.sort_by_key(|r| (r.datetime, r.id));
    let mut out: Vec<WriteBatch> = data
        .chunks(batch)
        .map(|c| WriteBatch {
            data: c.to_vec(),
            ..WriteBatch::default()
        })
        .collect();
    let starts: Vec<NaiveDateTime> = out.iter().map(|b| b.data[0].datetime).collect();
    for (level, rows) in [(1, &saved[1]), (2, &saved[2])] {
        for r in rows {
            let i = starts
                .partition_point(|s| *s <= r.datetime)
                .saturating_sub(1);
            let mut r = r.clone();
            r.version = store::RowVersion::ABSENT;
            if level == 1 {
                out[i].jobs.push(r);
            } else {
                out[i].days.push(r);
            }
        }
    }
    out
}

extern "C" {
    /// mimalloc (the benchmark's global allocator, linked in by the `mimalloc` crate):
    /// with `force`, gives every free page back to the system.
    fn mi_collect(force: bool);
}

/// Starts counting the peak RSS afresh (Linux: `clear_refs` 5 resets `VmHWM`) and
/// returns the RSS now (MB): what the benchmark itself holds before recalcd starts.
/// Free memory the allocator kept from seeding (the 1,000,000 rows) is given back
/// first, so that the peak is recalcd's, not the seeding's.
fn reset_peak_rss() -> f64 {
    // SAFETY: `mi_collect` only releases free memory of the allocator; no pointer is
    // passed, and every thread may call it.
    unsafe {
        mi_collect(true);
    }
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

struct Figures {
    e2e: Duration,
    write_back: Duration,
    floor: Duration,
}

async fn round(b: &mut Bench, set: &Dataset, rows: usize) -> Figures {
    // 2. recalcd once, end to end.
    let rss_before = reset_peak_rss();
    let cpu = cpu_seconds();
    let start = Instant::now();
    let recalc = Recalculator::load(&b.store, b.config.engine.clone(), b.config.poll.batch_size)
        .await
        .expect("load equations");
    let (total, _) = run_until_idle(&recalc, &mut b.store, |_| {})
        .await
        .expect("recalculate");
    b.wait_wal().await;
    let e2e = start.elapsed();
    let e2e_cpu = cpu_since(cpu);
    let rss = peak_rss_mb();
    assert_eq!(total.data, rows, "every data row is written once");
    assert_eq!(total.failed_rows, 0, "the demo's equations all compute");
    let written = total.data + total.jobs + total.days;

    // 3. Read back what recalcd wrote, and the versions of the re-seeded rows.
    let saved = b.saved().await;
    assert_eq!(saved[0].len(), rows);
    assert!(saved[0].iter().all(|r| r.recalc == 0), "every flag cleared");
    b.reset(set).await;
    let versions: HashMap<(i32, NaiveDateTime), store::RowVersion> = b
        .saved()
        .await
        .into_iter()
        .next()
        .unwrap_or_default()
        .into_iter()
        .map(|r| ((r.id, r.datetime), r.version))
        .collect();
    let batches = batches(&saved, &versions, b.config.poll.batch_size);

    // 4. recalcd's write-back alone.
    let cpu = cpu_seconds();
    let start = Instant::now();
    let mut skipped = 0;
    for batch in &batches {
        skipped += b
            .store
            .write_back(batch)
            .await
            .expect("write back")
            .skipped
            .len();
    }
    b.wait_wal().await;
    let write_back = start.elapsed();
    let write_cpu = cpu_since(cpu);
    assert_eq!(skipped, 0, "the guard let every row through");

    // 5. The floor: the same rows by ILP, once.
    b.reset(set).await;
    let cpu = cpu_seconds();
    let start = Instant::now();
    let tables = b.levels().map(String::from);
    for (table, rows) in tables.iter().zip(&saved) {
        ilp_write(&mut b.sender, table, rows.iter().collect());
    }
    b.wait_wal().await;
    let floor = start.elapsed();
    let floor_cpu = cpu_since(cpu);
    let after = b.saved().await;
    assert_eq!(after[0].len(), rows);
    assert!(after[0].iter().all(|r| r.recalc == 0));

    let per_sec = |d: Duration| rows as f64 / d.as_secs_f64();
    println!(
        "  QuestDB recalcd once: {} ({:.0} data rows/s, {written} rows written); {e2e_cpu}",
        secs(e2e),
        per_sec(e2e)
    );
    println!(
        "  QuestDB write-back alone (guard + ILP, {} batches): {} ({:.0} data rows/s); {write_cpu}",
        batches.len(),
        secs(write_back),
        per_sec(write_back)
    );
    println!(
        "  QuestDB floor (the same {written} rows once by ILP + wait_wal_table): {} ({:.0} data rows/s); {floor_cpu}",
        secs(floor),
        per_sec(floor)
    );
    println!(
        "  ratios: write-back / floor {:.2} (target <= 1.5), end to end / floor {:.2} (target <= 3)",
        write_back.as_secs_f64() / floor.as_secs_f64(),
        e2e.as_secs_f64() / floor.as_secs_f64()
    );
    println!(
        "  peak RSS during recalcd once: {rss:.0} MB ({rss_before:.0} MB resident when it \
         started: the benchmark's own data)"
    );
    Figures {
        e2e,
        write_back,
        floor,
    }
}

/// The engine benchmark on QuestDB (see the module docs).
pub async fn bench(quest: &Quest) {
    let scale = scale_for(env_usize("RECALCD_BENCH_ROWS").unwrap_or(1_000_000));
    let set = Dataset::new(scale, 1);
    let prefix = format!("bench{}", std::process::id());
    let mut b = Bench::open(quest, &prefix, &set).await;
    if let Some(n) = env_usize("RECALCD_BENCH_BATCH") {
        b.config.poll.batch_size = n;
    }
    let start = Instant::now();
    let rows = b.reset(&set).await;
    println!(
        "QuestDB engine benchmark: {rows} flagged data rows, {} devices, {} jobs, batch {}, \
         ILP at {}; seeded in {}",
        scale.devices,
        scale.jobs(),
        b.config.poll.batch_size,
        quest.ilp,
        secs(start.elapsed())
    );
    let rounds = env_usize("RECALCD_BENCH_ROUNDS").unwrap_or(1).max(1);
    let (mut wb, mut e2e) = (Vec::new(), Vec::new());
    for r in 1..=rounds {
        if rounds > 1 {
            println!("QuestDB round {r} of {rounds}:");
            if r > 1 {
                b.reset(&set).await;
            }
        }
        let f = round(&mut b, &set, rows).await;
        wb.push(f.write_back.as_secs_f64() / f.floor.as_secs_f64());
        e2e.push(f.e2e.as_secs_f64() / f.floor.as_secs_f64());
    }
    print_median("QuestDB write-back / floor", &mut wb);
    print_median("QuestDB end to end / floor", &mut e2e);
    b.drop_tables().await;
    guard_window(quest, &set).await;
    demo_on_both(quest, rounds).await;
}

/// The demo's recalculation on QuestDB and on PostgreSQL.
async fn demo_on_both(quest: &Quest, rounds: usize) {
    let set = Dataset::new(Scale::DEMO, 1);
    let prefix = format!("benchdemo{}", std::process::id());
    let mut q = Bench::open(quest, &prefix, &set).await;
    let pg_db = BenchDb::create("recalcd_bench_demo").await;
    let mut pg_config = Config::default();
    pg_config.database.url = pg_db.url.clone();
    let mut pg = store::connect(&pg_config)
        .await
        .expect("connect to PostgreSQL");
    pg.migrate().await.expect("migrate");
    pg.insert_definitions(&set.constants(), &set.equations())
        .await
        .expect("definitions");
    let pg_client = connect(&pg_db.url).await;

    let mut ratios = Vec::new();
    for _ in 0..rounds {
        let rows = q.reset(&set).await;
        let recalc =
            Recalculator::load(&q.store, q.config.engine.clone(), q.config.poll.batch_size)
                .await
                .expect("load");
        let (_, on_quest) = run_until_idle(&recalc, &mut q.store, |_| {})
            .await
            .expect("recalculate on QuestDB");

        pg_client
            .batch_execute("TRUNCATE data, job, day, recalcd_errors")
            .await
            .expect("TRUNCATE");
        copy_rows(&pg_client, "data", set.jobs().flatten()).await;
        pg_client
            .batch_execute("VACUUM ANALYZE data, job, day")
            .await
            .expect("VACUUM");
        let recalc = Recalculator::load(&pg, pg_config.engine.clone(), pg_config.poll.batch_size)
            .await
            .expect("load");
        let (_, on_pg) = run_until_idle(&recalc, &mut pg, |_| {})
            .await
            .expect("recalculate on PostgreSQL");
        let ratio = on_quest.as_secs_f64() / on_pg.as_secs_f64();
        println!(
            "demo ({rows} data rows) recalculated: QuestDB {} ({:.0} rows/s), PostgreSQL {} ({:.0} rows/s): QuestDB / PostgreSQL {ratio:.2} (target <= 2)",
            secs(on_quest),
            rows as f64 / on_quest.as_secs_f64(),
            secs(on_pg),
            rows as f64 / on_pg.as_secs_f64()
        );
        ratios.push(ratio);
    }
    print_median("demo QuestDB / PostgreSQL", &mut ratios);
    q.drop_tables().await;
    drop(pg);
    drop(pg_client);
    pg_db.drop_now().await;
}

/// Corrections the producer of [`guard_window`] writes.
const PRODUCER_WRITES: usize = 1_000;

/// The guard's window under a concurrent producer: `recalcd once` on the flagged rows
/// while a producer corrects [`PRODUCER_WRITES`] rows (one ILP request each, every 2 ms, spread over the
/// whole data set: the original content plus a `mark=N` channel, flagged). Afterwards
/// recalcd drains what the producer flagged, and every corrected row must still hold
/// its mark: one without it is a producer write the guard let recalcd overwrite.
async fn guard_window(quest: &Quest, set: &Dataset) {
    let prefix = format!("benchguard{}", std::process::id());
    let mut b = Bench::open(quest, &prefix, set).await;
    let rows = b.reset(set).await;
    let originals: Arc<Vec<Row>> = Arc::new(set.jobs().flatten().collect());
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (originals, stop) = (originals.clone(), stop.clone());
        let table = b.config.tables.data.clone();
        let mut sender = quest.sender();
        std::thread::spawn(move || {
            let mut marked = Vec::new();
            let n = originals.len();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) && i < n.min(PRODUCER_WRITES) {
                i += 1;
                let mut r = originals[(i * 7919) % n].clone();
                r.conjoined.push_str(&format!("mark={i};"));
                r.recalc = 1;
                ilp_send(&mut sender, &table, vec![&r]);
                marked.push((r.id, r.datetime, format!("mark={i};")));
                std::thread::sleep(Duration::from_millis(2));
            }
            marked
        })
    };
    let start = Instant::now();
    let recalc = Recalculator::load(&b.store, b.config.engine.clone(), b.config.poll.batch_size)
        .await
        .expect("load equations");
    let (during, _) = run_until_idle(&recalc, &mut b.store, |_| {})
        .await
        .expect("recalculate");
    let elapsed = start.elapsed();
    stop.store(true, Ordering::SeqCst);
    let marked = producer.join().expect("producer");
    b.wait_wal().await;
    let (after, _) = run_until_idle(&recalc, &mut b.store, |_| {})
        .await
        .expect("drain");
    let stored: HashMap<(i32, NaiveDateTime), String> = b.saved().await[0]
        .iter()
        .map(|r| ((r.id, r.datetime), r.conjoined.clone()))
        .collect();
    let lost = marked
        .iter()
        .filter(|(id, at, mark)| {
            !stored
                .get(&(*id, *at))
                .is_some_and(|c| c.contains(mark.as_str()))
        })
        .count();
    println!(
        "guard under a concurrent producer: recalcd once on {rows} rows took {} while the \
         producer corrected {} rows ({:.0}/s); the guard skipped {} of them, the longest \
         window was {:.0} ms; after the drain ({} rows recomputed) {lost} producer \
         corrections were lost",
        secs(elapsed),
        marked.len(),
        marked.len() as f64 / elapsed.as_secs_f64(),
        during.skipped,
        during.guard_window.as_secs_f64() * 1e3,
        after.data
    );
    b.drop_tables().await;
}
