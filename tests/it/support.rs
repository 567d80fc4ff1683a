//! Test support: a fresh PostgreSQL database per test (from `DATABASE_URL`, dropped
//! afterwards), or on QuestDB — one database only — a unique table-name prefix per test
//! (tables dropped afterwards), and a [`Harness`] that configures recalcd for either.

use std::sync::atomic::{AtomicU32, Ordering};

use recalcd::config::Config;
use recalcd::store::{self, AnyStore};

/// The server the PostgreSQL tests use.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| recalcd::config::DEFAULT_DATABASE_URL.to_string())
}

/// A name no other test (or test process) uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("the tests need a PostgreSQL at DATABASE_URL ({e})"));
    tokio::spawn(conn);
    client
}

/// Runs `f` to completion on a runtime of its own, in a thread of its own (usable from
/// `Drop`, inside or outside a runtime).
fn block_on_thread<F>(f: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let _ = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(f);
        }
    })
    .join();
}

/// A database created for one test and dropped (`WITH (FORCE)`) when this is dropped.
pub struct TestDb {
    /// The URL of the new database.
    pub url: String,
    name: String,
    server: String,
}

impl TestDb {
    /// Creates `recalcd_test_<unique>` on the `DATABASE_URL` server.
    pub async fn create() -> TestDb {
        TestDb::create_with("").await
    }

    /// [`TestDb::create`] with options of `CREATE DATABASE`, e.g. an encoding.
    pub async fn create_with(options: &str) -> TestDb {
        let server = database_url();
        let name = unique("recalcd_test_");
        admin(&server)
            .await
            .batch_execute(&format!("CREATE DATABASE {name} {options}"))
            .await
            .expect("CREATE DATABASE");
        TestDb {
            url: recalcd::config::url_with_database(&server, &name),
            name,
            server,
        }
    }

    /// [`TestDb::create`] for tests without a runtime.
    pub fn create_blocking() -> TestDb {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(TestDb::create())
    }

    /// Runs statements on this database.
    pub fn execute_blocking(&self, sql: &str) {
        let url = self.url.clone();
        let sql = sql.to_string();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(async { admin(&url).await.batch_execute(&sql).await })
        })
        .join()
        .expect("thread")
        .expect("statement");
    }
}

impl TestDb {
    /// Runs a query on this database; every column is read as text (`NULL` → `None`).
    pub fn query_blocking(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let url = self.url.clone();
        let sql = sql.to_string();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(async {
                    let rows = admin(&url).await.simple_query(&sql).await?;
                    Ok::<_, tokio_postgres::Error>(
                        rows.into_iter()
                            .filter_map(|m| match m {
                                tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                                    (0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect(),
                                ),
                                _ => None,
                            })
                            .collect(),
                    )
                })
        })
        .join()
        .expect("thread")
        .expect("query")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let server = self.server.clone();
        let name = self.name.clone();
        block_on_thread(async move {
            let _ = admin(&server)
                .await
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        });
    }
}

/// Tables with a unique prefix on the QuestDB at `QUESTDB_URL`, dropped afterwards.
pub struct QuestTables {
    url: String,
    names: Vec<String>,
}

impl Drop for QuestTables {
    fn drop(&mut self) {
        let url = self.url.clone();
        let names = self.names.clone();
        block_on_thread(async move {
            let client = admin(&url).await;
            for n in names {
                let _ = client
                    .batch_execute(&format!("DROP TABLE IF EXISTS \"{n}\""))
                    .await;
            }
        });
    }
}

enum Guard {
    Postgres(#[allow(dead_code)] TestDb),
    QuestDb(#[allow(dead_code)] QuestTables),
}

/// One test's store: its configuration, and what to clean up afterwards.
pub struct Harness {
    /// recalcd's configuration for this test.
    pub config: Config,
    guard: Guard,
}

impl Harness {
    /// A fresh PostgreSQL database.
    pub async fn postgres() -> Harness {
        let db = TestDb::create().await;
        let mut config = Config::default();
        config.database.url = db.url.clone();
        Harness {
            config,
            guard: Guard::Postgres(db),
        }
    }

    /// Uniquely prefixed tables on the QuestDB at `QUESTDB_URL`; `None` when it is not
    /// set.
    pub async fn questdb() -> Option<Harness> {
        let url = std::env::var("QUESTDB_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())?;
        let prefix = unique("t");
        let mut config = Config::default();
        config.database.url = url.clone();
        // Where the QuestDB's HTTP port is not the URL host's 9000 (a test server on
        // other ports), `QUESTDB_ILP` names it: `host:port` or `off`.
        if let Ok(ilp) = std::env::var("QUESTDB_ILP") {
            config.database.questdb_ilp = recalcd::config::IlpChoice::parse(&ilp)
                .expect("QUESTDB_ILP: auto, off or host:port");
        }
        let t = &mut config.tables;
        for name in [
            &mut t.data,
            &mut t.job,
            &mut t.day,
            &mut t.constants,
            &mut t.equations,
            &mut t.errors,
            &mut t.migrations,
            &mut t.revision,
        ] {
            *name = format!("{prefix}_{name}");
        }
        let names = config
            .tables
            .all()
            .iter()
            .map(|(_, n)| n.to_string())
            .collect();
        Some(Harness {
            config,
            guard: Guard::QuestDb(QuestTables { url, names }),
        })
    }

    /// PostgreSQL playing QuestDB, to exercise the QuestDB store's logic (guard,
    /// chunking, pipelined reads) where no QuestDB is available: the PostgreSQL schema,
    /// a trigger per level table that replaces a row re-inserted with the same key
    /// (QuestDB's `DEDUP UPSERT KEYS`), and a `wait_wal_table` that returns at once.
    /// The QuestDB store is forced; its `migrate` finds the schema already recorded.
    pub async fn questdb_on_postgres() -> Harness {
        use recalcd::config::{Dialect, DialectChoice};
        use recalcd::store::Store;
        let mut h = Harness::postgres().await;
        h.config.database.dialect = DialectChoice::Forced(Dialect::Postgres);
        h.store().await.migrate().await.expect("migrate");
        let client = admin(&h.config.database.url).await;
        client
            .batch_execute(
                "CREATE FUNCTION wait_wal_table(text) RETURNS boolean LANGUAGE sql AS 'SELECT true';",
            )
            .await
            .expect("wait_wal_table shim");
        for table in [
            &h.config.tables.data,
            &h.config.tables.job,
            &h.config.tables.day,
        ] {
            client
                .batch_execute(&format!(
                    r#"CREATE FUNCTION "{table}_dedup"() RETURNS trigger LANGUAGE plpgsql AS $$
                       BEGIN
                           DELETE FROM "{table}" WHERE id = NEW.id AND datetime = NEW.datetime;
                           RETURN NEW;
                       END $$;
                       CREATE TRIGGER "{table}_dedup" BEFORE INSERT ON "{table}"
                           FOR EACH ROW EXECUTE FUNCTION "{table}_dedup"();"#
                ))
                .await
                .expect("dedup trigger");
        }
        h.config.database.dialect = DialectChoice::Forced(Dialect::QuestDb);
        // PG-wire inserts: the line protocol would reach whatever answers on the URL
        // host's port 9000 (a real QuestDB, in CI), not this PostgreSQL.
        h.config.database.questdb_ilp = recalcd::config::IlpChoice::Off;
        assert_eq!(h.store().await.dialect(), Dialect::QuestDb);
        h
    }

    /// A new connection to the test's store, as recalcd makes it.
    pub async fn store(&self) -> AnyStore {
        store::connect(&self.config).await.expect("connect")
    }

    /// A migrated store.
    pub async fn migrated(&self) -> AnyStore {
        use recalcd::store::Store;
        let mut s = self.store().await;
        s.migrate().await.expect("migrate");
        s
    }

    /// Runs one plain SQL statement (written to work on both dialects); on QuestDB it
    /// then waits until table `wait_for` has applied it.
    pub async fn sql(&self, sql: &str, wait_for: Option<&str>) {
        let client = admin(&self.config.database.url).await;
        client.batch_execute(sql).await.expect("statement");
        if let (Guard::QuestDb(_), Some(table)) = (&self.guard, wait_for) {
            client
                .batch_execute(&format!("SELECT wait_wal_table('{table}')"))
                .await
                .expect("wait_wal_table");
        }
    }

    /// Whether this is the PostgreSQL harness.
    pub fn is_postgres(&self) -> bool {
        matches!(self.guard, Guard::Postgres(_))
    }
}
