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
        config.tables = config.tables.prefixed(&prefix);
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

/// Instantiates tests written once as `fn name(h: &Harness)` for both stores:
/// `<module>::postgres::name` (always) and `<module>::questdb::name` (when `QUESTDB_URL`
/// is set; otherwise it prints `skipped: QUESTDB_URL is not set`). `.ci/run` counts the
/// QuestDB tests that ran by the `::questdb::` in their names.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[test]
                fn $name() {
                    let h = crate::support::Harness::postgres_blocking();
                    super::$name(&h);
                }
            )*
        }
        mod questdb {
            $(
                #[test]
                fn $name() {
                    let Some(h) = crate::support::Harness::questdb_blocking() else {
                        eprintln!("skipped: QUESTDB_URL is not set");
                        return;
                    };
                    super::$name(&h);
                }
            )*
        }
    };
}

/// `sql` with the placeholders `{data}`, `{job}`, `{day}`, `{constants}`, `{equations}`
/// and `{errors}` replaced by the names in `tables`.
pub fn substitute(sql: &str, tables: &recalcd::config::TableNames) -> String {
    sql.replace("{data}", &tables.data)
        .replace("{job}", &tables.job)
        .replace("{day}", &tables.day)
        .replace("{constants}", &tables.constants)
        .replace("{equations}", &tables.equations)
        .replace("{errors}", &tables.errors)
}

/// `sql` for the default table names (see [`substitute`]).
pub fn default_tables(sql: &str) -> String {
    substitute(sql, &Config::default().tables)
}

/// Runs `f` on a runtime of its own, in a thread of its own, and returns its output.
fn run_blocking<F, T>(f: F) -> T
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    })
    .join()
    .expect("thread")
}

/// The blocking side of [`Harness`], for tests that run the real binary: its command
/// line, and SQL written once for both stores. In SQL, `{data}`, `{job}`, `{day}`,
/// `{constants}`, `{equations}` and `{errors}` stand for the test's table names.
impl Harness {
    /// [`Harness::postgres`] for tests without a runtime.
    pub fn postgres_blocking() -> Harness {
        run_blocking(Harness::postgres())
    }

    /// [`Harness::questdb`] for tests without a runtime.
    pub fn questdb_blocking() -> Option<Harness> {
        run_blocking(Harness::questdb())
    }

    /// The database URL the binary is given.
    pub fn url(&self) -> &str {
        &self.config.database.url
    }

    /// The real binary, configured for this test's store: its table names through the
    /// environment (`RECALCD__TABLES__*`), no config file. Add `--database-url`
    /// [`Harness::url`] to commands that talk to the store.
    pub fn command(&self) -> std::process::Command {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_recalcd"));
        c.env_remove("RECALCD_CONFIG").envs(self.table_env());
        // A test QuestDB whose HTTP port is not 9000 names it in `QUESTDB_ILP`; the
        // binary gets it too, whatever configuration file the test writes.
        if let (Guard::QuestDb(_), Ok(ilp)) = (&self.guard, std::env::var("QUESTDB_ILP")) {
            c.env("RECALCD__DATABASE__QUESTDB_ILP", ilp);
        }
        c
    }

    /// `recalcd ARGS --config CONFIG --database-url …` on this test's store.
    pub fn run_with(&self, config: &std::path::Path, args: &[&str]) -> std::process::Output {
        self.command()
            .args(args)
            .arg("--config")
            .arg(config)
            .arg("--database-url")
            .arg(self.url())
            .output()
            .expect("run recalcd")
    }

    /// [`Harness::run_with`], which must succeed; its standard output.
    pub fn ok_with(&self, config: &std::path::Path, args: &[&str]) -> String {
        let out = self.run_with(config, args);
        assert!(
            out.status.success(),
            "recalcd {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The environment that gives the binary this test's table names.
    pub fn table_env(&self) -> Vec<(String, String)> {
        self.config
            .tables
            .all()
            .iter()
            .map(|(key, name)| {
                let key = key.trim_start_matches("tables.").to_uppercase();
                (format!("RECALCD__TABLES__{key}"), (*name).to_string())
            })
            .collect()
    }

    /// Runs `recalcd ARGS --database-url URL` and returns its output.
    pub fn recalcd_raw(&self, args: &[&str]) -> std::process::Output {
        self.command()
            .args(args)
            .arg("--database-url")
            .arg(self.url())
            .output()
            .expect("run recalcd")
    }

    /// [`Harness::recalcd_raw`] that must succeed.
    pub fn recalcd(&self, args: &[&str]) -> std::process::Output {
        let out = self.recalcd_raw(args);
        assert!(
            out.status.success(),
            "recalcd {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `sql` with the `{table}` placeholders replaced by this test's table names.
    pub fn sub(&self, sql: &str) -> String {
        substitute(sql, &self.config.tables)
    }

    /// The WAL tables (QuestDB applies their writes asynchronously).
    fn wal_tables(&self) -> Vec<String> {
        let t = &self.config.tables;
        vec![
            t.data.clone(),
            t.job.clone(),
            t.day.clone(),
            t.errors.clone(),
        ]
    }

    /// On QuestDB, waits until every WAL table of the test has applied its writes, so a
    /// read sees everything written before (`wait_wal_table`; tables not created yet
    /// are skipped). Nothing to do on PostgreSQL.
    pub fn settle(&self) {
        if self.is_postgres() {
            return;
        }
        let url = self.url().to_string();
        let tables = self.wal_tables();
        run_blocking(async move {
            let client = admin(&url).await;
            for t in tables {
                let exists = client
                    .query_opt(
                        "SELECT table_name FROM tables() WHERE table_name = $1",
                        &[&t],
                    )
                    .await
                    .expect("reading tables()")
                    .is_some();
                if exists {
                    client
                        .batch_execute(&format!("SELECT wait_wal_table('{t}')"))
                        .await
                        .expect("wait_wal_table");
                }
            }
        });
    }

    /// Runs statements (see [`Harness::sub`]); on QuestDB, waits until they are applied.
    pub fn exec(&self, sql: &str) {
        let url = self.url().to_string();
        let sql = self.sub(sql);
        let statements = sql.clone();
        run_blocking(async move { admin(&url).await.batch_execute(&statements).await })
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        self.settle();
    }

    /// Runs a query (see [`Harness::sub`]) after everything written is applied; every
    /// column is read as text (`NULL` → `None`).
    pub fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        self.settle();
        let url = self.url().to_string();
        let sql = self.sub(sql);
        let query = sql.clone();
        run_blocking(async move {
            let rows = admin(&url).await.simple_query(&query).await?;
            Ok::<_, tokio_postgres::Error>(
                rows.into_iter()
                    .filter_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(r) => {
                            Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
                        }
                        _ => None,
                    })
                    .collect(),
            )
        })
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The first column of the first row of [`Harness::query`] (`""` for `NULL`).
    pub fn one(&self, sql: &str) -> String {
        let rows = self.query(sql);
        let first = rows.first().unwrap_or_else(|| panic!("no row from {sql}"));
        first[0].clone().unwrap_or_default()
    }

    /// `(id, datetime, conjoined, recalc)` of a table (e.g. `"{data}"`), in key order.
    pub fn rows(&self, table: &str) -> Vec<(String, String, String, String)> {
        self.query(&format!(
            "SELECT id, {}, conjoined, recalc FROM {table} ORDER BY id, datetime",
            self.minute("datetime")
        ))
        .into_iter()
        .map(|r| {
            let s = |i: usize| r[i].clone().unwrap_or_default();
            (s(0), s(1), s(2), s(3))
        })
        .collect()
    }

    /// The number a query returns.
    pub fn count(&self, sql: &str) -> i64 {
        let n = self.one(sql);
        n.parse()
            .unwrap_or_else(|_| panic!("{sql} returned {n:?}, not a number"))
    }

    /// Rows still flagged in data, job and day together.
    pub fn flagged(&self) -> i64 {
        ["{data}", "{job}", "{day}"]
            .iter()
            .map(|t| self.count(&format!("SELECT count(*) FROM {t} WHERE recalc > 0")))
            .sum()
    }

    /// A timestamp column as `YYYY-MM-DD HH:MI` text, in this dialect's SQL.
    pub fn minute(&self, column: &str) -> String {
        if self.is_postgres() {
            format!("to_char({column}, 'YYYY-MM-DD HH24:MI')")
        } else {
            format!("to_str({column}, 'yyyy-MM-dd HH:mm')")
        }
    }
}
