//! The pipeline of `recalcd once` (each batch written on a second session while the
//! next is prepared) gives exactly what one batch gives, and what small batches run one
//! after the other give: on the demo's data set and equations (every level, previous
//! rows, jobs and days, `$$` on jobs and days), with batches that cut jobs and days.

use recalcd::config::Config;
use recalcd::demo::{Dataset, Scale};
use recalcd::service::{run_until_idle, Recalculator, Report};
use recalcd::store::{self, AnyStore, Store, WriteBatch};

use crate::support::TestDb;

/// The demo's data set, small: 3 devices over 4 days of 3 jobs (80 to 240 rows each),
/// so that batches of 137 rows cut jobs and days.
const CUT_SCALE: Scale = Scale {
    devices: 3,
    days: 4,
    jobs_per_day: 3,
    rows_per_job: None,
};

/// Every row of data, job and day, as text, in key order.
type Dump = Vec<Vec<Option<String>>>;

async fn seeded(set: &Dataset, batch_size: usize) -> (TestDb, Config, AnyStore) {
    let db = TestDb::create().await;
    let mut config = Config::default();
    config.database.url = db.url.clone();
    config.poll.batch_size = batch_size;
    let mut store = store::connect(&config).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
        .insert_definitions(&set.constants(), &set.equations())
        .await
        .expect("definitions");
    let data: Vec<_> = set.jobs().flatten().collect();
    let out = store
        .write_back(&WriteBatch {
            data,
            ..WriteBatch::default()
        })
        .await
        .expect("data rows");
    assert!(out.skipped.is_empty());
    (db, config, store)
}

fn dump(db: &TestDb) -> Dump {
    ["data", "job", "day"]
        .iter()
        .flat_map(|t| {
            db.query_blocking(&format!(
                "SELECT '{t}', id, datetime, data_time, recalc, conjoined FROM {t} ORDER BY id, datetime"
            ))
        })
        .collect()
}

/// Runs `recalcd once`'s loop (pipelined) and returns the totals and the tables.
async fn pipelined(set: &Dataset, batch_size: usize) -> (Report, Dump) {
    let (db, config, mut store) = seeded(set, batch_size).await;
    let recalc = Recalculator::load(&store, config.engine.clone(), batch_size)
        .await
        .expect("load");
    let (total, _) = run_until_idle(&recalc, &mut store, |_| {})
        .await
        .expect("run");
    drop(store);
    (total, tokio::task::block_in_place(|| dump(&db)))
}

/// The daemon's loop: one batch after another on one session.
async fn one_by_one(set: &Dataset, batch_size: usize) -> (Report, Dump) {
    let (db, config, mut store) = seeded(set, batch_size).await;
    let recalc = Recalculator::load(&store, config.engine.clone(), batch_size)
        .await
        .expect("load");
    let mut total = Report::default();
    loop {
        let report = recalc.run_batch(&mut store).await.expect("batch");
        if report.is_idle() {
            break;
        }
        total.add(&report);
    }
    drop(store);
    (total, tokio::task::block_in_place(|| dump(&db)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_batches_give_what_one_batch_and_sequential_batches_give() {
    let set = Dataset::new(CUT_SCALE, 7);
    let rows = set.jobs().flatten().count();

    let (whole, expected) = pipelined(&set, 1_000_000).await;
    assert_eq!(whole.data, rows, "one batch writes every data row");
    assert!(expected.iter().all(|r| r[4].as_deref() == Some("0")));
    assert!(expected.iter().any(|r| r[0].as_deref() == Some("day")));

    // 137 flagged rows per batch: jobs (80 to 240 rows) and days are cut in pieces.
    let (cut, got) = pipelined(&set, 137).await;
    let (sequential, one_by_one) = one_by_one(&set, 137).await;
    // Batches one after another write every data row once. The pipeline usually does
    // too, but under load a run has been seen to recompute a couple of jobs (and
    // their days) a second time through a `$$` follow: the same results, more work.
    assert_eq!(sequential.data, rows, "every data row written once");
    assert!(cut.data >= rows, "{cut:?}");
    assert_eq!(cut.skipped, 0);
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, e);
    }
    assert_eq!(one_by_one, expected);
}

/// A producer's changes, in order: re-flagged rows with a new temperature, spread over
/// the data set (some the first row of a job, whose previous row and job are read).
fn producer_changes(set: &Dataset) -> Vec<String> {
    let rows: Vec<_> = set.jobs().flatten().collect();
    (0..40)
        .map(|i| {
            let r = &rows[(i * 541 + 17) % rows.len()];
            format!(
                "UPDATE data SET recalc = 2,
                        conjoined = regexp_replace(conjoined, 'tmp=[^;]*', 'tmp={}.5')
                  WHERE id = {} AND datetime = '{}'",
                40 + i,
                r.id,
                r.datetime
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_changing_rows_during_a_pipelined_run_loses_nothing() {
    let set = Dataset::new(CUT_SCALE, 11);
    let changes = producer_changes(&set);

    // Reference: the producer's changes made first, then one batch.
    let (clean, config, mut store) = seeded(&set, 1_000_000).await;
    for sql in &changes {
        tokio::task::block_in_place(|| clean.execute_blocking(sql));
    }
    let recalc = Recalculator::load(&store, config.engine.clone(), 1_000_000)
        .await
        .expect("load");
    run_until_idle(&recalc, &mut store, |_| {})
        .await
        .expect("reference run");
    drop(store);
    let expected = tokio::task::block_in_place(|| dump(&clean));

    // The producer changes rows while small pipelined batches run, then once more.
    let (db, config, mut store) = seeded(&set, 97).await;
    let url = db.url.clone();
    let producer = tokio::spawn(async move {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("producer connects");
        tokio::spawn(connection);
        for sql in changes {
            client.batch_execute(&sql).await.expect("producer change");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    let recalc = Recalculator::load(&store, config.engine.clone(), 97)
        .await
        .expect("load");
    run_until_idle(&recalc, &mut store, |_| {})
        .await
        .expect("run during the producer");
    producer.await.expect("producer");
    run_until_idle(&recalc, &mut store, |_| {})
        .await
        .expect("run after the producer");
    drop(store);
    let got = tokio::task::block_in_place(|| dump(&db));
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, e);
    }
}

/// `url` with another user (and no password).
fn as_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let host = rest.split_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}@{host}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_connection_allowed_the_batches_run_one_after_another() {
    let set = Dataset::new(
        Scale {
            devices: 2,
            days: 2,
            jobs_per_day: 2,
            rows_per_job: Some(20),
        },
        3,
    );
    let rows = set.jobs().flatten().count();
    let (db, mut config, store) = seeded(&set, 30).await;
    drop(store);
    let role = crate::support::unique("recalcd_one_conn_");
    db.execute_blocking(&format!(
        "CREATE ROLE {role} LOGIN CONNECTION LIMIT 1;
         GRANT ALL ON ALL TABLES IN SCHEMA public TO {role};"
    ));
    config.database.url = as_user(&db.url, &role);
    let mut store = store::connect(&config).await.expect("connect as the role");
    assert!(
        store.open_writer().await.is_err(),
        "the role's second connection is refused"
    );
    let recalc = Recalculator::load(&store, config.engine.clone(), 30)
        .await
        .expect("load");
    let (total, _) = run_until_idle(&recalc, &mut store, |_| {})
        .await
        .expect("run on one connection");
    drop(store);
    assert_eq!(total.data, rows);
    let flagged = tokio::task::block_in_place(|| {
        let left = db.query_blocking("SELECT count(*) FROM data WHERE recalc <> 0");
        db.execute_blocking(&format!("DROP OWNED BY {role}; DROP ROLE {role};"));
        left
    });
    assert_eq!(flagged[0][0].as_deref(), Some("0"));
}
