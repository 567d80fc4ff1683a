//! The store contract: every dialect must pass these tests. Each is written once, as a
//! function of a [`Harness`], and instantiated for PostgreSQL (always) and QuestDB
//! (when `QUESTDB_URL` is set; otherwise it prints `skipped: QUESTDB_URL is not set`).

use chrono::{NaiveDate, NaiveDateTime};
use recalcd::store::{
    sweep_cursor, AnyStore, Equation, EquationProblem, ErrorRecord, Lease, Level, MergedEquation,
    ReflagRanges, Row, RowKey, RowVersion, Store, StoreError, TimeRange, WriteBatch,
};

use crate::support::Harness;

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let h = crate::support::Harness::postgres().await;
                    super::$name(&h).await;
                }
            )*
        }
        mod questdb {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(h) = crate::support::Harness::questdb().await else {
                        eprintln!("skipped: QUESTDB_URL is not set");
                        return;
                    };
                    super::$name(&h).await;
                }
            )*
        }
    };
}

/// The QuestDB store's logic on PostgreSQL playing QuestDB (see
/// `Harness::questdb_on_postgres`); the schema tests need the real thing.
mod questdb_logic_on_postgres {
    macro_rules! emulated {
        ($($name:ident),* $(,)?) => {
            $(
                #[tokio::test]
                async fn $name() {
                    let h = crate::support::Harness::questdb_on_postgres().await;
                    super::$name(&h).await;
                }
            )*
        };
    }
    emulated!(
        poll_is_bounded_and_ordered,
        poll_cuts_a_tie_of_timestamps_by_device,
        loads_what_the_engine_needs,
        write_back_clears_flags_and_records_errors,
        write_back_is_idempotent,
        guard_keeps_what_a_producer_wrote_meanwhile,
        reflag_flags_the_ranges_rows_that_are_not_flagged,
        equations_are_replaced_whole_or_merged_by_key,
        problems_failures_and_unsettled_rows_are_visible,
    );
}

contract!(
    migrate_twice_changes_nothing,
    schema_problems_are_named,
    poll_is_bounded_and_ordered,
    poll_cuts_a_tie_of_timestamps_by_device,
    loads_what_the_engine_needs,
    write_back_clears_flags_and_records_errors,
    write_back_is_idempotent,
    a_batch_of_several_megabytes_is_written_whole,
    guard_keeps_what_a_producer_wrote_meanwhile,
    guard_lets_unchanged_rows_with_nulls_and_non_ascii_text_through,
    loads_every_device_between_two_times,
    next_mirrors_previous,
    flagged_jobs_in_day_spans,
    revision_moves_with_the_equations_and_constants_only,
    leases_split_the_devices_between_workers,
    reflag_flags_the_ranges_rows_that_are_not_flagged,
    equations_are_replaced_whole_or_merged_by_key,
    problems_failures_and_unsettled_rows_are_visible,
);

/// 2024-03-`day` `h`:`m`:00 UTC.
fn t(day: u32, h: u32, m: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2024, 3, day)
        .unwrap()
        .and_hms_opt(h, m, 0)
        .unwrap()
}

/// A new row, as a producer inserts it.
fn row(id: i32, datetime: NaiveDateTime, data_time: NaiveDateTime, recalc: i32) -> Row {
    Row {
        datetime,
        data_time,
        id,
        state: Some(1),
        user: Some("ann".into()),
        gps: Some("50.08,14.42".into()),
        recalc,
        conjoined: format!("tmp={}.5;", datetime.format("%H%M")),
        version: RowVersion::ABSENT,
        unreadable: None,
    }
}

/// Inserts rows as a producer would (rows recalcd did not read: `ABSENT`).
async fn seed(store: &mut AnyStore, level: Level, rows: Vec<Row>) {
    let mut batch = WriteBatch::default();
    match level {
        Level::Data => batch.data = rows,
        Level::Job => batch.jobs = rows,
        Level::Day => batch.days = rows,
    }
    let out = store.write_back(&batch).await.expect("seed");
    assert!(out.skipped.is_empty(), "seeding skipped {:?}", out.skipped);
}

/// Device 1: job A (3 rows, day 1, flagged), job B (2 rows, day 1, done), job C (day 2,
/// 1 flagged row); device 2: job D (2 rows, flagged). Jobs of device 1 exist.
async fn seed_example(store: &mut AnyStore) {
    let (a, b, c, d) = (t(1, 8, 0), t(1, 12, 0), t(2, 9, 0), t(1, 7, 0));
    seed(
        store,
        Level::Data,
        vec![
            row(1, t(1, 8, 2), a, 1),
            row(1, a, a, 1),
            row(1, t(1, 8, 1), a, 1),
            row(1, b, b, 0),
            row(1, t(1, 12, 5), b, 0),
            row(1, c, c, 2),
            row(2, t(1, 7, 5), d, 1),
            row(2, d, d, 1),
        ],
    )
    .await;
    seed(
        store,
        Level::Job,
        vec![
            row(1, a, t(1, 8, 2), 0),
            row(1, b, t(1, 12, 5), 1),
            row(1, c, c, 0),
        ],
    )
    .await;
}

fn keys(rows: &[Row]) -> Vec<RowKey> {
    rows.iter().map(Row::key).collect()
}

/// A poll's limit that cuts through rows of one timestamp takes the lowest ids of it,
/// and the sweep goes on with the others (QuestDB asks by timestamp alone and then
/// completes the tie by id: `store/questdb/poll.rs`).
async fn poll_cuts_a_tie_of_timestamps_by_device(h: &Harness) {
    let mut store = h.migrated().await;
    let (t0, t1, t2) = (t(1, 7, 0), t(1, 8, 0), t(1, 9, 0));
    let mut rows = vec![row(9, t0, t0, 1), row(1, t2, t1, 1), row(6, t1, t1, 0)];
    rows.extend([5, 3, 1, 4, 2].map(|id| row(id, t1, t1, 1)));
    seed(&mut store, Level::Data, rows).await;
    let key = |id, datetime| RowKey { id, datetime };
    let first = store.poll_flagged(Level::Data, None, 3).await.unwrap();
    assert_eq!(keys(&first), vec![key(1, t1), key(2, t1), key(9, t0)]);
    let cursor = sweep_cursor(keys(&first));
    assert_eq!(cursor, Some(key(2, t1)));
    // All of the answer within the tie.
    let next = store.poll_flagged(Level::Data, cursor, 2).await.unwrap();
    assert_eq!(keys(&next), vec![key(3, t1), key(4, t1)]);
    let rest = store
        .poll_flagged(Level::Data, sweep_cursor(keys(&next)), 10)
        .await
        .unwrap();
    assert_eq!(keys(&rest), vec![key(1, t2), key(5, t1)]);
    // A limit that ends exactly at the end of a tie.
    let whole = store.poll_flagged(Level::Data, None, 6).await.unwrap();
    assert_eq!(whole.len(), 6);
    assert!(whole.iter().all(|r| r.datetime <= t1 && r.recalc > 0));
}

async fn migrate_twice_changes_nothing(h: &Harness) {
    let mut store = h.store().await;
    let first = store.migrate().await.expect("migrate");
    assert!(!first.applied.is_empty());
    store.check_schema().await.expect("schema after migrate");
    let again = store.migrate().await.expect("migrate again");
    assert!(
        again.applied.is_empty(),
        "second run applied {:?}",
        again.applied
    );
    assert_eq!(again.version, first.version);
    // And from a new connection, as a second `recalcd migrate` would.
    let mut other = h.store().await;
    assert!(other.migrate().await.unwrap().applied.is_empty());
    other.check_schema().await.expect("schema");
}

async fn schema_problems_are_named(h: &Harness) {
    let store = h.store().await;
    match store.check_schema().await {
        Err(e @ StoreError::MissingTable { .. }) => {
            assert!(e.to_string().contains("run `recalcd migrate`"), "{e}");
            assert!(!e.is_transient());
        }
        other => panic!("expected a missing table, got {other:?}"),
    }
    let store = h.migrated().await;
    let job = &h.config.tables.job;
    h.sql(
        &format!(r#"ALTER TABLE "{job}" RENAME COLUMN gps TO gps_old"#),
        Some(job),
    )
    .await;
    match store.check_schema().await {
        Err(StoreError::Column { table, column, .. }) => {
            assert_eq!((table.as_str(), column.as_str()), (job.as_str(), "gps"));
        }
        other => panic!("expected a column error, got {other:?}"),
    }
}

async fn poll_is_bounded_and_ordered(h: &Harness) {
    let mut store = h.migrated().await;
    seed_example(&mut store).await;
    // The three oldest flagged rows, handed over by device and time.
    let first = store.poll_flagged(Level::Data, None, 3).await.unwrap();
    assert_eq!(
        keys(&first),
        vec![
            RowKey {
                id: 1,
                datetime: t(1, 8, 0)
            },
            RowKey {
                id: 2,
                datetime: t(1, 7, 0)
            },
            RowKey {
                id: 2,
                datetime: t(1, 7, 5)
            },
        ]
    );
    // The sweep continues after the batch's latest row.
    let cursor = sweep_cursor(keys(&first));
    assert_eq!(
        cursor,
        Some(RowKey {
            id: 1,
            datetime: t(1, 8, 0)
        })
    );
    let next = store.poll_flagged(Level::Data, cursor, 2).await.unwrap();
    assert_eq!(
        keys(&next),
        vec![
            RowKey {
                id: 1,
                datetime: t(1, 8, 1)
            },
            RowKey {
                id: 1,
                datetime: t(1, 8, 2)
            },
        ]
    );
    let last = store
        .poll_flagged(Level::Data, sweep_cursor(keys(&next)), 2)
        .await
        .unwrap();
    assert_eq!(
        keys(&last),
        vec![RowKey {
            id: 1,
            datetime: t(2, 9, 0)
        }]
    );
    assert_eq!(last[0].recalc, 2);
    assert!(store
        .poll_flagged(Level::Data, sweep_cursor(keys(&last)), 100)
        .await
        .unwrap()
        .is_empty());

    let all = store.poll_flagged(Level::Data, None, 100).await.unwrap();
    assert_eq!(all.len(), 6);
    assert!(all.iter().all(|r| r.recalc > 0));
    assert!(all.windows(2).all(|w| w[0].key() < w[1].key()));
    let jobs = store.poll_flagged(Level::Job, None, 100).await.unwrap();
    assert_eq!(
        keys(&jobs),
        vec![RowKey {
            id: 1,
            datetime: t(1, 12, 0)
        }]
    );
    assert!(store
        .poll_flagged(Level::Day, None, 100)
        .await
        .unwrap()
        .is_empty());
    let r = &first[0];
    assert_eq!(
        (
            r.state,
            r.user.as_deref(),
            r.gps.as_deref(),
            r.conjoined.as_str()
        ),
        (Some(1), Some("ann"), Some("50.08,14.42"), "tmp=0800.5;")
    );
    assert!(!r.version.is_absent());
}

async fn loads_what_the_engine_needs(h: &Harness) {
    let mut store = h.migrated().await;
    seed_example(&mut store).await;
    let (c, e) = (&h.config.tables.constants, &h.config.tables.equations);
    for stmt in [
        format!(r#"INSERT INTO "{c}" (id, name, value) VALUES (0, 'WB', '06:00')"#),
        format!(r#"INSERT INTO "{c}" (id, name, value) VALUES (1, 'TMAX', '20')"#),
        format!(
            r#"INSERT INTO "{e}" ("type", id, name, eq) VALUES (1, 0, 'hot', 'IF > $tmp #TMAX 1 0')"#
        ),
    ] {
        h.sql(&stmt, None).await;
    }

    // All data rows of jobs A and D (and a job that does not exist), in one call.
    let rows = store
        .load_job_rows(&[
            (2, t(1, 7, 0)),
            (1, t(1, 8, 0)),
            (1, t(5, 0, 0)),
            (1, t(1, 8, 0)),
        ])
        .await
        .unwrap();
    assert_eq!(
        keys(&rows),
        vec![
            RowKey {
                id: 1,
                datetime: t(1, 8, 0)
            },
            RowKey {
                id: 1,
                datetime: t(1, 8, 1)
            },
            RowKey {
                id: 1,
                datetime: t(1, 8, 2)
            },
            RowKey {
                id: 2,
                datetime: t(1, 7, 0)
            },
            RowKey {
                id: 2,
                datetime: t(1, 7, 5)
            },
        ]
    );

    // Jobs by key: the missing one is simply absent.
    let jobs = store
        .load_rows(
            Level::Job,
            &[
                RowKey {
                    id: 1,
                    datetime: t(2, 9, 0),
                },
                RowKey {
                    id: 1,
                    datetime: t(1, 8, 0),
                },
                RowKey {
                    id: 2,
                    datetime: t(1, 7, 0),
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        keys(&jobs),
        vec![
            RowKey {
                id: 1,
                datetime: t(1, 8, 0)
            },
            RowKey {
                id: 1,
                datetime: t(2, 9, 0)
            },
        ]
    );
    assert_eq!(jobs[0].data_time, t(1, 8, 2));

    // The jobs of day 1 of device 1 (06:00 to 06:00), ranges overlapping.
    let day1 = TimeRange {
        id: 1,
        from: t(1, 6, 0),
        to: t(2, 6, 0),
    };
    let in_day = store
        .load_in_ranges(
            Level::Job,
            &[
                day1,
                TimeRange {
                    id: 1,
                    from: t(1, 10, 0),
                    to: t(1, 13, 0),
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        keys(&in_day),
        vec![
            RowKey {
                id: 1,
                datetime: t(1, 8, 0)
            },
            RowKey {
                id: 1,
                datetime: t(1, 12, 0)
            },
        ]
    );
    let data_of_day = store.load_in_ranges(Level::Data, &[day1]).await.unwrap();
    assert_eq!(data_of_day.len(), 5);

    // Previous rows, in the order asked; none before a device's first row.
    let prev = store
        .previous(
            Level::Data,
            &[
                RowKey {
                    id: 1,
                    datetime: t(1, 12, 0),
                },
                RowKey {
                    id: 2,
                    datetime: t(1, 7, 0),
                },
                RowKey {
                    id: 1,
                    datetime: t(1, 8, 1),
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(prev.len(), 3);
    assert_eq!(
        prev[0].as_ref().map(Row::key),
        Some(RowKey {
            id: 1,
            datetime: t(1, 8, 2)
        })
    );
    assert!(prev[1].is_none());
    assert_eq!(
        prev[2].as_ref().map(Row::key),
        Some(RowKey {
            id: 1,
            datetime: t(1, 8, 0)
        })
    );
    let prev_job = store
        .previous(
            Level::Job,
            &[RowKey {
                id: 1,
                datetime: t(2, 9, 0),
            }],
        )
        .await
        .unwrap();
    assert_eq!(
        prev_job[0].as_ref().map(Row::key),
        Some(RowKey {
            id: 1,
            datetime: t(1, 12, 0)
        })
    );

    let constants = store.load_constants().await.unwrap();
    assert_eq!(constants.len(), 2);
    assert_eq!(
        (
            constants[0].id,
            constants[0].name.as_str(),
            constants[0].value.as_str()
        ),
        (0, "WB", "06:00")
    );
    let equations = store.load_equations().await.unwrap();
    assert_eq!(equations.len(), 1);
    assert_eq!((equations[0].kind, equations[0].name.as_str()), (1, "hot"));
    assert_eq!(equations[0].eq, "IF > $tmp #TMAX 1 0");

    // Rows of several devices in one time window (how the oldest flags come), by key.
    let window = vec![
        row(3, t(1, 8, 0), t(1, 8, 0), 1),
        row(4, t(1, 8, 1), t(1, 8, 1), 1),
        row(3, t(1, 8, 2), t(1, 8, 0), 1),
    ];
    seed(&mut store, Level::Data, window.clone()).await;
    let mut wanted = keys(&window);
    wanted.push(RowKey {
        id: 4,
        datetime: t(1, 8, 0),
    });
    let found = store.load_rows(Level::Data, &wanted).await.unwrap();
    wanted.pop();
    wanted.sort();
    assert_eq!(keys(&found), wanted);
}

async fn write_back_clears_flags_and_records_errors(h: &Harness) {
    let mut store = h.migrated().await;
    seed_example(&mut store).await;
    let mut data = store.poll_flagged(Level::Data, None, 100).await.unwrap();
    assert_eq!(data.len(), 6);
    for r in &mut data {
        r.conjoined.push_str("hot=1;");
        r.recalc = 0;
    }
    data[1].recalc = -1;
    let failed = data[1].key();
    // A day recalcd creates.
    let mut day = row(1, t(1, 6, 0), t(2, 6, 0), 0);
    day.conjoined = "jobs=2;".into();
    let outcome = store
        .write_back(&WriteBatch {
            data: data.clone(),
            jobs: vec![],
            days: vec![day.clone()],
            errors: vec![ErrorRecord {
                level: Level::Data,
                key: failed,
                equation: "hot".into(),
                reason: "$tmp is empty".into(),
            }],
            index_marks: vec![],
        })
        .await
        .unwrap();
    assert!(outcome.skipped.is_empty(), "{:?}", outcome.skipped);
    assert_eq!(outcome.written, 7);
    assert_eq!(outcome.errors_written, 1);

    assert!(store
        .poll_flagged(Level::Data, None, 100)
        .await
        .unwrap()
        .is_empty());
    let now = store.load_rows(Level::Data, &keys(&data)).await.unwrap();
    assert_eq!(now.len(), 6);
    for (after, written) in now.iter().zip(&data) {
        assert_eq!(after.key(), written.key());
        assert_eq!(after.conjoined, written.conjoined);
        assert_eq!(after.recalc, written.recalc);
        assert_eq!((&after.user, after.state), (&written.user, written.state));
    }
    let days = store.load_rows(Level::Day, &[day.key()]).await.unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].conjoined, "jobs=2;");

    let status = store.status(10).await.unwrap();
    assert_eq!(status.dialect, store.dialect());
    assert_eq!(
        status.backlog.iter().map(|b| b.flagged).collect::<Vec<_>>(),
        vec![0, 1, 0]
    );
    assert_eq!(status.backlog[1].oldest, Some(t(1, 12, 0)));
    assert_eq!(status.latest_errors.len(), 1);
    let e = &status.latest_errors[0].record;
    assert_eq!(
        (e.level, e.key, e.equation.as_str()),
        (Level::Data, failed, "hot")
    );
    assert_eq!(e.reason, "$tmp is empty");
}

/// Rows and error records of several megabytes: each `COPY` goes to the server in
/// more than one piece.
async fn a_batch_of_several_megabytes_is_written_whole(h: &Harness) {
    const ROWS: u32 = 3_000;
    let mut store = h.migrated().await;
    let start = t(1, 0, 0);
    let rows: Vec<Row> = (0..ROWS)
        .map(|i| {
            let at = start + chrono::Duration::seconds(i64::from(i));
            let mut r = row(1 + (i % 3) as i32, at, start, 1);
            r.conjoined = format!("n={i};pad={};", "x".repeat(1_000));
            r
        })
        .collect();
    seed(&mut store, Level::Data, rows).await;
    let mut data = store.poll_flagged(Level::Data, None, 10_000).await.unwrap();
    assert_eq!(data.len(), ROWS as usize);
    let mut errors = Vec::new();
    for r in &mut data {
        r.conjoined.push_str("out=1;");
        r.recalc = -1;
        errors.push(ErrorRecord {
            level: Level::Data,
            key: r.key(),
            equation: "out".into(),
            reason: format!("at {}: {}", r.datetime, "y".repeat(500)),
        });
    }
    let outcome = store
        .write_back(&WriteBatch {
            data: data.clone(),
            errors,
            ..WriteBatch::default()
        })
        .await
        .unwrap();
    assert!(outcome.skipped.is_empty(), "{:?}", outcome.skipped);
    assert_eq!(outcome.written, ROWS as usize);
    assert_eq!(outcome.errors_written, ROWS as usize);
    let now = store.load_rows(Level::Data, &keys(&data)).await.unwrap();
    assert_eq!(now.len(), ROWS as usize);
    for (after, written) in now.iter().zip(&data) {
        assert_eq!(after.key(), written.key());
        assert_eq!(after.conjoined, written.conjoined);
        assert_eq!(after.recalc, -1);
    }
    let status = store.status(1).await.unwrap();
    let e = &status.latest_errors[0].record;
    assert!(e.reason.ends_with(&"y".repeat(500)), "{}", e.reason);
}

async fn write_back_is_idempotent(h: &Harness) {
    let mut store = h.migrated().await;
    seed_example(&mut store).await;
    let mut data = store.poll_flagged(Level::Data, None, 100).await.unwrap();
    for r in &mut data {
        r.conjoined = format!("{}x=2;", r.conjoined);
        r.recalc = 0;
    }
    store
        .write_back(&WriteBatch {
            data: data.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let first = store.load_rows(Level::Data, &keys(&data)).await.unwrap();
    // The same results again, from the rows as they are now.
    let mut again = first.clone();
    for (r, w) in again.iter_mut().zip(&data) {
        r.conjoined = w.conjoined.clone();
    }
    let outcome = store
        .write_back(&WriteBatch {
            data: again,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(outcome.skipped.is_empty());
    let second = store.load_rows(Level::Data, &keys(&data)).await.unwrap();
    let strip = |rows: &[Row]| -> Vec<Row> {
        rows.iter()
            .map(|r| Row {
                version: RowVersion::ABSENT,
                unreadable: None,
                ..r.clone()
            })
            .collect()
    };
    assert_eq!(strip(&first), strip(&second));
}

/// The guard compares what it re-reads with what recalcd loaded however each is
/// decoded (QuestDB hashes the re-read columns where the driver holds them): rows with
/// NULL `state`, `user` and `gps`, and text beyond ASCII, that nobody changed are
/// written, none skipped.
async fn guard_lets_unchanged_rows_with_nulls_and_non_ascii_text_through(h: &Harness) {
    let mut store = h.migrated().await;
    let a = t(3, 10, 0);
    let bare = Row {
        state: None,
        user: None,
        gps: None,
        conjoined: String::new(),
        ..row(4, a, a, 1)
    };
    let accented = Row {
        user: Some("Zoë Čapek".into()),
        conjoined: "note=\"naïve, 東京\";".into(),
        ..row(4, t(3, 10, 1), a, 1)
    };
    seed(&mut store, Level::Data, vec![bare, accented]).await;
    let mut loaded = store.poll_flagged(Level::Data, None, 10).await.unwrap();
    assert_eq!(loaded.len(), 2);
    for r in &mut loaded {
        r.conjoined.push_str("done=1;");
        r.recalc = 0;
    }
    let out = store
        .write_back(&WriteBatch {
            data: loaded.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(out.skipped.is_empty(), "skipped {:?}", out.skipped);
    assert_eq!(out.written, 2);
    let stored = store.load_rows(Level::Data, &keys(&loaded)).await.unwrap();
    let content = |rows: &[Row]| -> Vec<(RowKey, Option<String>, String, i32)> {
        let mut c: Vec<_> = rows
            .iter()
            .map(|r| (r.key(), r.user.clone(), r.conjoined.clone(), r.recalc))
            .collect();
        c.sort_by_key(|(k, ..)| *k);
        c
    };
    assert_eq!(content(&stored), content(&loaded));
}

/// Nothing a producer writes is lost: recalcd loads flagged rows; a producer then
/// changes one, re-flags another and creates a job recalcd is about to create; recalcd
/// writes back. The producer's rows keep the producer's content and flag, get no error
/// records, and are reported as skipped; the others are written.
async fn guard_keeps_what_a_producer_wrote_meanwhile(h: &Harness) {
    let mut recalcd = h.migrated().await;
    seed_example(&mut recalcd).await;
    let loaded = recalcd.poll_flagged(Level::Data, None, 4).await.unwrap();
    assert_eq!(loaded.len(), 4);

    // The producer, on its own connection.
    let mut producer = h.store().await;
    let current = producer
        .load_rows(Level::Data, &keys(&loaded[..2]))
        .await
        .unwrap();
    let mut changed = current[0].clone();
    changed.conjoined = "tmp=99;".into();
    changed.recalc = 5;
    let mut reflagged = current[1].clone();
    reflagged.recalc = 3;
    let new_job = row(2, t(1, 7, 0), t(1, 7, 5), 7);
    let mut by_producer = new_job.clone();
    by_producer.conjoined = "from=producer;".into();
    let out = producer
        .write_back(&WriteBatch {
            data: vec![changed.clone(), reflagged.clone()],
            jobs: vec![by_producer.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(out.skipped.is_empty());

    // recalcd writes its (now stale) results.
    let mut results = loaded.clone();
    for r in &mut results {
        r.conjoined = "computed=1;".into();
        r.recalc = -1;
    }
    let mut job = new_job.clone();
    job.conjoined = "from=recalcd;".into();
    job.recalc = 0;
    let errors = results
        .iter()
        .map(|r| ErrorRecord {
            level: Level::Data,
            key: r.key(),
            equation: "x".into(),
            reason: "failed".into(),
        })
        .collect();
    let outcome = recalcd
        .write_back(&WriteBatch {
            data: results.clone(),
            jobs: vec![job],
            days: vec![],
            errors,
            index_marks: vec![],
        })
        .await
        .unwrap();
    let mut skipped = outcome.skipped.clone();
    skipped.sort();
    assert_eq!(
        skipped,
        vec![
            (Level::Data, changed.key()),
            (Level::Data, reflagged.key()),
            (Level::Job, new_job.key()),
        ]
    );
    assert_eq!(outcome.written, 2);
    assert_eq!(outcome.errors_written, 2);

    let now = recalcd
        .load_rows(Level::Data, &keys(&loaded))
        .await
        .unwrap();
    assert_eq!((now[0].conjoined.as_str(), now[0].recalc), ("tmp=99;", 5));
    assert_eq!(
        (now[1].conjoined.as_str(), now[1].recalc),
        (loaded[1].conjoined.as_str(), 3)
    );
    for r in &now[2..] {
        assert_eq!((r.conjoined.as_str(), r.recalc), ("computed=1;", -1));
    }
    let jobs = recalcd
        .load_rows(Level::Job, &[new_job.key()])
        .await
        .unwrap();
    assert_eq!(
        (jobs[0].conjoined.as_str(), jobs[0].recalc),
        ("from=producer;", 7)
    );
    // The producer's flags are still there for the next poll.
    let flagged = recalcd.poll_flagged(Level::Data, None, 100).await.unwrap();
    assert!(flagged.iter().any(|r| r.key() == changed.key()));
    assert!(flagged.iter().any(|r| r.key() == reflagged.key()));
    let status = recalcd.status(100).await.unwrap();
    let mut error_keys: Vec<RowKey> = status.latest_errors.iter().map(|e| e.record.key).collect();
    error_keys.sort();
    assert_eq!(error_keys, keys(&loaded[2..]));
}

/// PostgreSQL makes the guard atomic; these tests use plain SQL as producers do.
mod postgres_guard {
    use super::*;

    /// A producer's `UPDATE` writing identical values (a re-flag of a flagged row) still
    /// wins: it changes the row's version.
    #[tokio::test]
    async fn identical_reflag_by_sql_is_kept() {
        let h = Harness::postgres().await;
        assert!(h.is_postgres());
        let mut recalcd = h.migrated().await;
        seed_example(&mut recalcd).await;
        let mut loaded = recalcd.poll_flagged(Level::Data, None, 2).await.unwrap();
        h.sql(
            &format!(
                r#"UPDATE "{}" SET recalc = recalc WHERE id = 2 AND datetime = '2024-03-01 07:00:00'"#,
                h.config.tables.data
            ),
            None,
        )
        .await;
        for r in &mut loaded {
            r.recalc = 0;
            r.conjoined = "done=1;".into();
        }
        let out = recalcd
            .write_back(&WriteBatch {
                data: loaded.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(out.skipped, vec![(Level::Data, loaded[0].key())]);
        let now = recalcd
            .load_rows(Level::Data, &keys(&loaded))
            .await
            .unwrap();
        assert_eq!(
            (now[0].recalc, now[0].conjoined.as_str()),
            (1, "tmp=0700.5;")
        );
        assert_eq!((now[1].recalc, now[1].conjoined.as_str()), (0, "done=1;"));
    }

    /// A producer whose transaction is still open when recalcd writes: recalcd waits for
    /// it, then sees the new version and leaves the row alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn producer_transaction_in_flight_is_kept() {
        let h = Harness::postgres().await;
        let mut recalcd = h.migrated().await;
        seed_example(&mut recalcd).await;
        let mut loaded = recalcd.poll_flagged(Level::Data, None, 2).await.unwrap();
        for r in &mut loaded {
            r.recalc = 0;
        }
        let (mut producer, conn) =
            tokio_postgres::connect(&h.config.database.url, tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(conn);
        let tx = producer.transaction().await.unwrap();
        tx.batch_execute(&format!(
            r#"UPDATE "{}" SET conjoined = 'tmp=1;', recalc = 4 WHERE id = 2 AND datetime = '2024-03-01 07:05:00'"#,
            h.config.tables.data
        ))
        .await
        .unwrap();
        let batch = WriteBatch {
            data: loaded.clone(),
            ..Default::default()
        };
        let writing = tokio::spawn(async move {
            let out = recalcd.write_back(&batch).await;
            (recalcd, out)
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(
            !writing.is_finished(),
            "recalcd waits for the producer's row lock"
        );
        tx.commit().await.unwrap();
        let (recalcd, out) = writing.await.unwrap();
        assert_eq!(out.unwrap().skipped, vec![(Level::Data, loaded[1].key())]);
        let now = recalcd
            .load_rows(Level::Data, &keys(&loaded))
            .await
            .unwrap();
        assert_eq!((now[0].recalc, now[1].recalc), (0, 4));
        assert_eq!(now[1].conjoined, "tmp=1;");
    }
}

async fn loads_every_device_between_two_times(h: &Harness) {
    let mut store = h.migrated().await;
    seed_example(&mut store).await;
    // [08:00, 09:00) on March 1: job A's three rows and nothing of device 2 (07:00,
    // 07:05) or of job B (12:00).
    let rows = store
        .load_between(Level::Data, t(1, 8, 0), t(1, 9, 0))
        .await
        .unwrap();
    assert_eq!(
        keys(&rows),
        [t(1, 8, 0), t(1, 8, 1), t(1, 8, 2)]
            .map(|datetime| RowKey { id: 1, datetime })
            .to_vec()
    );
    // Every device, in key order; the end is exclusive.
    let rows = store
        .load_between(Level::Data, t(1, 7, 0), t(1, 8, 1))
        .await
        .unwrap();
    assert_eq!(
        keys(&rows),
        vec![
            RowKey {
                id: 1,
                datetime: t(1, 8, 0)
            },
            RowKey {
                id: 2,
                datetime: t(1, 7, 0)
            },
            RowKey {
                id: 2,
                datetime: t(1, 7, 5)
            },
        ]
    );
    assert!(store
        .load_between(Level::Day, t(1, 0, 0), t(3, 0, 0))
        .await
        .unwrap()
        .is_empty());
}

async fn next_mirrors_previous(h: &Harness) {
    let mut store = h.migrated().await;
    seed_example(&mut store).await;
    let key = |id, datetime| RowKey { id, datetime };
    // Device 1's jobs: A 8:00, B 12:00 (day 1), C 9:00 (day 2); device 2 has no job rows.
    let keys = [
        key(1, t(1, 8, 0)),
        key(1, t(1, 12, 0)),
        key(1, t(2, 9, 0)),
        key(2, t(1, 7, 0)),
    ];
    let next: Vec<Option<RowKey>> = store
        .next(Level::Job, &keys)
        .await
        .unwrap()
        .iter()
        .map(|r| r.as_ref().map(Row::key))
        .collect();
    assert_eq!(next, vec![Some(keys[1]), Some(keys[2]), None, None]);
    let previous: Vec<Option<RowKey>> = store
        .previous(Level::Job, &keys)
        .await
        .unwrap()
        .iter()
        .map(|r| r.as_ref().map(Row::key))
        .collect();
    assert_eq!(previous, vec![None, Some(keys[0]), Some(keys[1]), None]);
    // Data rows: the next row of the device, across jobs.
    let next_data = store
        .next(Level::Data, &[key(1, t(1, 8, 2)), key(2, t(1, 7, 0))])
        .await
        .unwrap();
    assert_eq!(
        next_data[0].as_ref().map(Row::key),
        Some(key(1, t(1, 12, 0)))
    );
    assert_eq!(
        next_data[1].as_ref().map(Row::key),
        Some(key(2, t(1, 7, 5)))
    );
}

async fn revision_moves_with_the_equations_and_constants_only(h: &Harness) {
    let mut store = h.migrated().await;
    let (equations, constants) = (&h.config.tables.equations, &h.config.tables.constants);
    let r0 = store.revision().await.expect("revision");
    assert_eq!(
        store.revision().await.unwrap(),
        r0,
        "stable while nothing changes"
    );

    h.sql(
        &format!(r#"INSERT INTO "{equations}" ("type", id, name, eq) VALUES (1, 0, 'b', '+ 1 2')"#),
        None,
    )
    .await;
    let r1 = store.revision().await.unwrap();
    assert_ne!(r1, r0, "an inserted equation");

    // An edit that keeps every length.
    h.sql(
        &format!(r#"UPDATE "{equations}" SET eq = '+ 1 3' WHERE name = 'b'"#),
        None,
    )
    .await;
    let r2 = store.revision().await.unwrap();
    assert_ne!(r2, r1, "an edited equation");

    h.sql(
        &format!(r#"INSERT INTO "{constants}" (id, name, value) VALUES (0, 'TMAX', '20')"#),
        None,
    )
    .await;
    let r3 = store.revision().await.unwrap();
    assert_ne!(r3, r2, "an inserted constant");
    h.sql(
        &format!(r#"UPDATE "{constants}" SET value = '30' WHERE name = 'TMAX'"#),
        None,
    )
    .await;
    let r4 = store.revision().await.unwrap();
    assert_ne!(r4, r3, "an edited constant");

    // Data written meanwhile is not a change of the equations.
    seed(
        &mut store,
        Level::Data,
        vec![row(1, t(1, 8, 0), t(1, 8, 0), 1)],
    )
    .await;
    assert_eq!(
        store.revision().await.unwrap(),
        r4,
        "data rows do not count"
    );

    h.sql(&format!(r#"TRUNCATE TABLE "{equations}""#), None)
        .await;
    assert_ne!(store.revision().await.unwrap(), r4, "emptied equations");
}

/// PostgreSQL leases devices to one connection at a time; QuestDB has only the static
/// split (`worker.shard` / `worker.shards`), which both dialects honour.
async fn leases_split_the_devices_between_workers(h: &Harness) {
    let mut a = h.migrated().await;
    seed_example(&mut a).await;
    let mut b = h.store().await;
    let mut c = h.store().await;
    // Candidates are the devices of the oldest flagged rows of each level: device 2's
    // data row at 07:00 and device 1's job at 12:00.
    let la = a.lease(&[None; 3], 1).await.unwrap();
    if h.is_postgres() {
        assert_eq!(la, Lease::Devices(vec![1, 2]));
        assert_eq!(
            b.lease(&[None; 3], 100).await.unwrap(),
            Lease::Devices(vec![]),
            "all taken"
        );
        // A lease's poll sees only its own devices.
        let only_2 = Lease::Devices(vec![2]);
        let rows = b
            .poll_leased(Level::Data, &only_2, None, 100)
            .await
            .unwrap();
        assert_eq!(
            rows.iter().map(|f| f.key).collect::<Vec<_>>(),
            [t(1, 7, 0), t(1, 7, 5)]
                .map(|datetime| RowKey { id: 2, datetime })
                .to_vec()
        );
        // Keys and jobs only: the job is the row's `data_time`.
        let stored = b.poll_flagged(Level::Data, None, 100).await.unwrap();
        for f in &rows {
            let row = stored.iter().find(|r| r.key() == f.key).unwrap();
            assert_eq!(f.data_time, row.data_time);
        }
        assert!(b
            .poll_leased(Level::Job, &only_2, None, 100)
            .await
            .unwrap()
            .is_empty());
        let la_rows = a.poll_leased(Level::Data, &la, None, 100).await.unwrap();
        assert_eq!(la_rows.len(), 6);
        a.release(la).await.unwrap();
        let lb = b.lease(&[None; 3], 100).await.unwrap();
        assert_eq!(lb, Lease::Devices(vec![1, 2]), "given back");
        assert_eq!(
            c.lease(&[None; 3], 100).await.unwrap(),
            Lease::Devices(vec![]),
            "b holds them now"
        );
        b.release(lb).await.unwrap();
    } else {
        assert_eq!(la, Lease::Shard);
        assert_eq!(
            a.poll_leased(Level::Data, &la, None, 100)
                .await
                .unwrap()
                .len(),
            6
        );
    }
    // The static split: share 0 of 2 holds the even devices.
    let mut config = h.config.clone();
    config.worker = recalcd::config::WorkerConfig {
        shard: 0,
        shards: 2,
    };
    let mut even = recalcd::store::connect(&config).await.unwrap();
    let lease = even.lease(&[None; 3], 100).await.unwrap();
    let rows = even
        .poll_leased(Level::Data, &lease, None, 100)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|f| f.key.id == 2));
    assert!(even
        .poll_leased(Level::Job, &lease, None, 100)
        .await
        .unwrap()
        .is_empty());
    even.release(lease).await.unwrap();
}

async fn flagged_jobs_in_day_spans(h: &Harness) {
    let mut store = h.migrated().await;
    seed_example(&mut store).await;
    // Device 1, March 1: job A has flagged data rows, job B a flagged job row; March 2:
    // job C has a flagged data row. Device 2: job D (March 1) has flagged data rows.
    let range = |id, from, to| TimeRange { id, from, to };
    let march_1 = [
        range(1, t(1, 0, 0), t(2, 0, 0)),
        range(2, t(1, 0, 0), t(1, 7, 0)), // ends before job D starts
    ];
    let mut found = store.flagged_jobs_in(&march_1, &[]).await.unwrap();
    found.sort_unstable();
    assert_eq!(found, vec![(1, t(1, 8, 0)), (1, t(1, 12, 0))]);
    let found = store
        .flagged_jobs_in(
            &[
                range(1, t(2, 0, 0), t(3, 0, 0)),
                range(2, t(1, 7, 0), t(1, 8, 0)),
            ],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.contains(&(1, t(2, 9, 0))) && found.contains(&(2, t(1, 7, 0))));
    // Past the jobs a batch computes, the other flagged job of March 1 is still found;
    // with both excepted, nothing but excepted jobs may come back.
    let found = store
        .flagged_jobs_in(&march_1, &[(1, t(1, 8, 0))])
        .await
        .unwrap();
    assert!(found.contains(&(1, t(1, 12, 0))), "{found:?}");
    let except = [(1, t(1, 8, 0)), (1, t(1, 12, 0))];
    let found = store.flagged_jobs_in(&march_1, &except).await.unwrap();
    assert!(found.iter().all(|j| except.contains(j)), "{found:?}");
}

async fn reflag_flags_the_ranges_rows_that_are_not_flagged(h: &Harness) {
    let mut store = h.migrated().await;
    // Device 1 has a range of its own (March 1); every other device gets March 2.
    seed(
        &mut store,
        Level::Data,
        vec![
            row(1, t(1, 8, 0), t(1, 8, 0), 0),
            row(1, t(1, 9, 0), t(1, 9, 0), -1),
            row(1, t(2, 8, 0), t(2, 8, 0), 0),
            row(1, t(3, 8, 0), t(3, 8, 0), 0),
            row(2, t(1, 8, 0), t(1, 8, 0), 0),
            row(2, t(2, 8, 0), t(2, 8, 0), 3),
            row(2, t(2, 9, 0), t(2, 9, 0), 0),
            row(3, t(2, 23, 59), t(2, 23, 59), 0),
            row(3, t(3, 0, 0), t(3, 0, 0), 0),
        ],
    )
    .await;
    seed(
        &mut store,
        Level::Job,
        vec![row(4, t(5, 8, 0), t(5, 9, 0), 0)],
    )
    .await;
    let ranges = ReflagRanges {
        devices: vec![TimeRange {
            id: 1,
            from: t(1, 0, 0),
            to: t(2, 0, 0),
        }],
        others: Some((t(2, 0, 0), t(3, 0, 0))),
    };
    // Device 1: both rows of March 1 (the failed one too); device 2: the row of March
    // 2 not flagged yet (the other keeps its 3); device 3: the row before midnight.
    assert_eq!(store.reflag(Level::Data, &ranges).await.unwrap(), 4);
    let flags: Vec<(i32, NaiveDateTime, i32)> = store
        .load_between(Level::Data, t(1, 0, 0), t(4, 0, 0))
        .await
        .unwrap()
        .iter()
        .map(|r| (r.id, r.datetime, r.recalc))
        .collect();
    assert_eq!(
        flags,
        vec![
            (1, t(1, 8, 0), 1),
            (1, t(1, 9, 0), 1),
            (1, t(2, 8, 0), 0),
            (1, t(3, 8, 0), 0),
            (2, t(1, 8, 0), 0),
            (2, t(2, 8, 0), 3),
            (2, t(2, 9, 0), 1),
            (3, t(2, 23, 59), 1),
            (3, t(3, 0, 0), 0),
        ]
    );
    // Flagged rows are not counted again; other levels are untouched.
    assert_eq!(store.reflag(Level::Data, &ranges).await.unwrap(), 0);
    assert_eq!(store.reflag(Level::Day, &ranges).await.unwrap(), 0);
    let job = store
        .load_between(Level::Job, t(1, 0, 0), t(9, 0, 0))
        .await
        .unwrap();
    assert_eq!(job[0].recalc, 0);
    // One device only: nothing for the others.
    let only_4 = ReflagRanges {
        devices: vec![TimeRange {
            id: 4,
            from: t(5, 0, 0),
            to: t(6, 0, 0),
        }],
        others: None,
    };
    assert_eq!(store.reflag(Level::Job, &only_4).await.unwrap(), 1);
    assert_eq!(store.reflag(Level::Data, &only_4).await.unwrap(), 0);
    // A device is known by a row at any level.
    assert!(store.device_known(1).await.unwrap());
    assert!(store.device_known(4).await.unwrap());
    assert!(!store.device_known(9).await.unwrap());
}

/// `replace_equations` swaps the whole set at once (PostgreSQL; QuestDB refuses it, having
/// neither `DELETE` nor transactions); `merge_equations` adds, and replaces the equations
/// it names — also one whose name differs only in case — on both.
async fn equations_are_replaced_whole_or_merged_by_key(h: &Harness) {
    let mut store = h.migrated().await;
    let postgres = store.dialect() == recalcd::config::Dialect::Postgres;
    let e = |kind: i32, id: i32, name: &str, eq: &str| Equation {
        kind,
        id,
        name: name.into(),
        eq: eq.into(),
    };
    let sorted = |mut v: Vec<Equation>| {
        v.sort_by(|a, b| (a.kind, a.id, &a.name).cmp(&(b.kind, b.id, &b.name)));
        v
    };
    h.sql(
        &format!(
            r#"INSERT INTO "{}" ("type", id, name, eq) VALUES (1, 0, 'old', '1'), (1, 0, 'hot', '2')"#,
            h.config.tables.equations
        ),
        None,
    )
    .await;
    let r0 = revision_if_postgres(&store).await;
    let set = vec![e(1, 0, "a", "+ $x 1"), e(4, 7, "S", "SSUM $a")];
    match store.replace_equations(&set).await {
        Ok(()) => {
            assert!(postgres, "QuestDB cannot replace the whole set at once");
            assert_eq!(
                sorted(store.load_equations().await.unwrap()),
                sorted(set.clone())
            );
            assert_ne!(revision_if_postgres(&store).await, r0);
            h.sql(
                &format!(
                    r#"INSERT INTO "{}" ("type", id, name, eq) VALUES (1, 0, 'hot', '2')"#,
                    h.config.tables.equations
                ),
                None,
            )
            .await;
        }
        Err(StoreError::Unsupported { why, .. }) => {
            assert!(!postgres);
            assert!(why.contains("--merge"), "{why}");
            store
                .merge_equations(&[MergedEquation {
                    equation: e(1, 0, "old", "1"),
                    replaces: vec!["old".into()],
                }])
                .await
                .expect("nothing to do");
            for eq in &set {
                store
                    .merge_equations(&[MergedEquation {
                        equation: eq.clone(),
                        replaces: vec![],
                    }])
                    .await
                    .expect("add");
            }
        }
        Err(other) => panic!("{other}"),
    }
    let before = revision_if_postgres(&store).await;
    store
        .merge_equations(&[
            MergedEquation {
                equation: e(1, 0, "HOT", "3"),
                replaces: vec!["hot".into()],
            },
            MergedEquation {
                equation: e(1, 0, "a", "+ $x 2"),
                replaces: vec!["a".into()],
            },
            MergedEquation {
                equation: e(2, 0, "new", "4"),
                replaces: vec![],
            },
        ])
        .await
        .expect("merge");
    let mut expected = vec![
        e(1, 0, "HOT", "3"),
        e(1, 0, "a", "+ $x 2"),
        e(2, 0, "new", "4"),
        e(4, 7, "S", "SSUM $a"),
    ];
    if !postgres {
        expected.push(e(1, 0, "old", "1"));
    }
    assert_eq!(
        sorted(store.load_equations().await.unwrap()),
        sorted(expected)
    );
    if postgres {
        assert_ne!(
            revision_if_postgres(&store).await,
            before,
            "the daemons see the merge"
        );
    }
}

/// The store's revision on PostgreSQL (its triggers); `None` elsewhere: QuestDB's
/// fingerprint has a test of its own, and PostgreSQL playing QuestDB cannot compute it.
async fn revision_if_postgres(store: &AnyStore) -> Option<recalcd::store::Revision> {
    if store.dialect() == recalcd::config::Dialect::Postgres {
        Some(store.revision().await.expect("revision"))
    } else {
        None
    }
}

/// What `recalcd status` and `summary` show of problems: the recorded equation problems
/// (replaced by each load, keeping when each was first seen), the failed rows per level,
/// whether an error record is still current, the unsettled rows of a range, the known
/// devices, and (PostgreSQL) the retention of old error records.
async fn problems_failures_and_unsettled_rows_are_visible(h: &Harness) {
    let mut store = h.migrated().await;
    seed_example(&mut store).await;
    let problem = |ty, name: &str| EquationProblem {
        ty: Some(ty),
        id: Some(0),
        name: Some(name.into()),
        problem: format!("equation (type {ty}, id 0, '{name}') is bad"),
        at: None,
    };
    let unkeyed = EquationProblem {
        ty: None,
        id: None,
        name: None,
        problem: "no single equation".into(),
        at: None,
    };
    store
        .record_problems(&[
            problem(4, "b"),
            problem(1, "a"),
            unkeyed.clone(),
            problem(1, "a"),
        ])
        .await
        .unwrap();
    let first = store.status(10).await.unwrap().problems;
    assert_eq!(first.len(), 3, "{first:?}");
    assert!(first.iter().all(|p| p.at.is_some()));
    let names: Vec<Option<&str>> = first.iter().map(|p| p.name.as_deref()).collect();
    assert!(names.contains(&Some("a")) && names.contains(&Some("b")) && names.contains(&None));
    store.record_problems(&[problem(1, "a")]).await.unwrap();
    let second = store.status(10).await.unwrap().problems;
    assert_eq!(second.len(), 1, "{second:?}");
    let a_before = first
        .iter()
        .find(|p| p.name.as_deref() == Some("a"))
        .unwrap();
    assert_eq!(second[0].at, a_before.at, "first seen is kept");
    store.record_problems(&[]).await.unwrap();
    assert!(store.status(10).await.unwrap().problems.is_empty());

    // One data row of day 1 fails.
    let mut data = store.poll_flagged(Level::Data, None, 100).await.unwrap();
    for r in &mut data {
        r.recalc = 0;
    }
    data[0].recalc = -1;
    let failed = data[0].key();
    let error = ErrorRecord {
        level: Level::Data,
        key: failed,
        equation: "hot".into(),
        reason: "$tmp is empty".into(),
    };
    store
        .write_back(&WriteBatch {
            data: data.clone(),
            errors: vec![error],
            ..WriteBatch::default()
        })
        .await
        .unwrap();
    let status = store.status(10).await.unwrap();
    assert_eq!(
        status.failed,
        vec![(Level::Data, 1), (Level::Job, 0), (Level::Day, 0)]
    );
    assert!(status.latest_errors[0].current);
    let day1 = (t(1, 0, 0), t(2, 0, 0));
    let unsettled = store.unsettled_between(day1.0, day1.1, None).await.unwrap();
    let counts: Vec<(Level, u64, u64)> = unsettled
        .iter()
        .map(|u| (u.level, u.flagged, u.failed))
        .collect();
    // Job B of device 1 is still flagged.
    assert_eq!(
        counts,
        vec![(Level::Data, 0, 1), (Level::Job, 1, 0), (Level::Day, 0, 0)]
    );
    let of_2 = store
        .unsettled_between(day1.0, day1.1, Some(2))
        .await
        .unwrap();
    assert!(
        of_2.iter().all(|u| u.flagged == 0 && u.failed == 0),
        "{of_2:?}"
    );
    assert!(store.device_known(1).await.unwrap());
    assert!(store.device_known(2).await.unwrap());
    assert!(!store.device_known(99).await.unwrap());

    let postgres = store.dialect() == recalcd::config::Dialect::Postgres;
    let tomorrow = chrono::Utc::now().naive_utc() + chrono::Duration::days(1);
    if postgres {
        // The current record of a failed row is kept, however old.
        assert_eq!(store.prune_errors(tomorrow).await.unwrap(), 0);
    } else {
        let e = store.prune_errors(tomorrow).await.unwrap_err();
        assert!(e.to_string().contains("DROP PARTITION"), "{e}");
    }

    // The row computes cleanly: its record is no longer current.
    let mut again = store.load_rows(Level::Data, &[failed]).await.unwrap();
    again[0].recalc = 0;
    store
        .write_back(&WriteBatch {
            data: again,
            ..WriteBatch::default()
        })
        .await
        .unwrap();
    let status = store.status(10).await.unwrap();
    assert_eq!(status.failed[0], (Level::Data, 0));
    assert_eq!(status.latest_errors.len(), 1);
    assert!(!status.latest_errors[0].current);
    if postgres {
        let yesterday = chrono::Utc::now().naive_utc() - chrono::Duration::days(1);
        assert_eq!(store.prune_errors(yesterday).await.unwrap(), 0);
        assert_eq!(store.prune_errors(tomorrow).await.unwrap(), 1);
        assert!(store.status(10).await.unwrap().latest_errors.is_empty());
    }
}
