//! Several `recalcd run` workers against one PostgreSQL database: they split the
//! devices (advisory-lock leases), compute every row exactly once while a producer
//! inserts, and a killed worker's devices pass to the others.

use std::time::Duration;

use crate::daemon::{
    backlog_sql, eventually, flagged, number, query, recalcd, rows, setup, with_client,
    wrong_data_rows, Daemon,
};
use crate::support::TestDb;

/// A test-only trigger (not a migration) that records every update of a data row, so
/// that a row written back twice would show.
const COUNT_WRITES: &str = r#"
    CREATE TABLE writes (id integer NOT NULL, datetime timestamp NOT NULL, recalc integer);
    CREATE FUNCTION count_write() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO writes VALUES (NEW.id, NEW.datetime, NEW.recalc);
        RETURN NULL;
    END
    $$;
    CREATE TRIGGER count_write AFTER UPDATE ON data
        FOR EACH ROW EXECUTE FUNCTION count_write();"#;

/// `url` with an `application_name`, so a worker's sessions can be found in `pg_locks`.
fn named(url: &str, name: &str) -> String {
    format!("{url}?application_name={name}")
}

/// Starts three workers named `w0`, `w1`, `w2`.
fn three_workers(url: &str, batch_size: &str) -> Vec<Daemon> {
    (0..3)
        .map(|i| {
            Daemon::start(
                &named(url, &format!("w{i}")),
                &[("RECALCD__POLL__BATCH_SIZE", batch_size)],
            )
        })
        .collect()
}

/// Data rows written back other than exactly once, and data rows written at all.
fn writes(url: &str) -> (i64, i64) {
    let not_once = number(
        url,
        "SELECT count(*) FROM (SELECT 1 FROM writes GROUP BY id, datetime HAVING count(*) <> 1) t",
    );
    let written = number(url, "SELECT count(DISTINCT (id, datetime)) FROM writes");
    (not_once, written)
}

/// The same rows computed by one clean `recalcd once`.
fn clean(sql: &[String]) -> TestDb {
    let db = setup();
    for s in sql {
        db.execute_blocking(s);
    }
    recalcd(&db.url, &["once"]);
    db
}

/// Checks data, job and day rows against `clean`, and that no key is stored twice.
fn same_as(url: &str, clean: &TestDb) {
    for table in ["data", "job", "day"] {
        assert_eq!(rows(url, table), rows(&clean.url, table), "{table} differs");
    }
}

#[test]
fn three_workers_with_a_producer_compute_every_row_exactly_once() {
    let db = setup();
    db.execute_blocking(COUNT_WRITES);
    // A backlog, so that all three have work from the start …
    let backlog = backlog_sql(1..=30, 20, 3);
    db.execute_blocking(&backlog);
    let workers = three_workers(&db.url, "150");
    // … and a producer adding whole jobs (one transaction each) meanwhile: jobs 20..40
    // of every device, in a device-interleaved order.
    let url = db.url.clone();
    let producer = std::thread::spawn(move || {
        with_client(&url, |c| {
            Box::pin(async move {
                for job in 20..40 {
                    for device in 1..=30 {
                        let sql = format!(
                            "INSERT INTO data (datetime, data_time, id, recalc, conjoined)
                             SELECT timestamp '2024-03-01' + ({job} * 10 + r) * interval '1 minute',
                                    timestamp '2024-03-01' + {job} * 10 * interval '1 minute',
                                    {device}, 1, 'x=' || ({device} * 10000 + {job} * 10 + r) || ';'
                               FROM generate_series(0, 2) r"
                        );
                        c.batch_execute(&sql).await?;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(())
            })
        })
    });
    producer.join().expect("producer thread").expect("producer");
    let total = 30 * 40 * 3;
    assert!(
        eventually(
            || flagged(&db.url) == 0 && number(&db.url, "SELECT count(*) FROM job") == 30 * 40
        ),
        "not all computed; logs:\n{}",
        workers
            .iter()
            .map(Daemon::log)
            .collect::<Vec<_>>()
            .join("\n---\n")
    );
    assert_eq!(number(&db.url, "SELECT count(*) FROM data"), total);
    assert_eq!(wrong_data_rows(&db.url), 0);
    assert_eq!(
        writes(&db.url),
        (0, total),
        "every data row written exactly once"
    );
    // Every worker took part.
    for (i, w) in workers.iter().enumerate() {
        assert!(
            w.logged("batch written") > 0,
            "worker {i} idle:\n{}",
            w.log()
        );
    }
    for w in workers {
        let (status, log) = w.terminate();
        assert_eq!(status.code(), Some(0), "log:\n{log}");
    }
    // Jobs and days as one worker computes them from the final rows.
    same_as(&db.url, &clean(&[backlog_sql(1..=30, 40, 3)]));
}

#[test]
fn a_killed_worker_hands_its_devices_to_the_others() {
    let db = setup();
    db.execute_blocking(COUNT_WRITES);
    // Large enough, in batches small enough, that the kill (as soon as w0 is seen
    // holding leases) comes long before the backlog is done, even on an idle machine.
    let backlog = backlog_sql(1..=90, 100, 4);
    db.execute_blocking(&backlog);
    let mut workers = three_workers(&db.url, "300");
    // The victim, caught holding leases (in the middle of a batch).
    let held_by_w0 = "SELECT l.objid::text FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                       WHERE l.locktype = 'advisory' AND a.application_name = 'w0'";
    let mut held = Vec::new();
    assert!(
        eventually(|| {
            held = query(&db.url, held_by_w0).expect("pg_locks");
            !held.is_empty()
        }),
        "w0 never held a lease; log:\n{}",
        workers[0].log()
    );
    let victim = workers.remove(0);
    victim.signal("KILL");
    let (_, victim_log) = victim.wait();
    assert!(
        flagged(&db.url) > 0,
        "the backlog was finished before the kill"
    );
    // Its session ends with the process, and its leases with the session.
    assert!(
        eventually(|| query(&db.url, held_by_w0).expect("pg_locks").is_empty()),
        "w0's leases outlived it"
    );
    assert!(
        eventually(|| flagged(&db.url) == 0),
        "the others did not finish; logs:\n{}",
        workers
            .iter()
            .map(Daemon::log)
            .collect::<Vec<_>>()
            .join("\n---\n")
    );
    // The devices w0 held when it died were computed by the others.
    let devices: Vec<String> = held.into_iter().filter_map(|r| r[0].clone()).collect();
    let left = number(
        &db.url,
        &format!(
            "SELECT count(*) FROM data WHERE recalc <> 0 AND id IN ({})",
            devices.join(", ")
        ),
    );
    assert_eq!(left, 0, "w0 log:\n{victim_log}");
    assert_eq!(wrong_data_rows(&db.url), 0);
    let total = 90 * 100 * 4;
    assert_eq!(
        writes(&db.url),
        (0, total),
        "every data row written exactly once (the killed batch was rolled back)"
    );
    for w in workers {
        let (status, log) = w.terminate();
        assert_eq!(status.code(), Some(0), "log:\n{log}");
    }
    same_as(&db.url, &clean(&[backlog]));
}
