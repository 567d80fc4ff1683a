//! Configuration: the TOML mirror ([`RawConfig`]) and the validated [`Config`].
//!
//! Loading happens in two steps. First the `config` crate layers the sources — built-in
//! defaults, the TOML file (`--config PATH`), the environment (`RECALCD__SECTION__KEY`,
//! e.g. `RECALCD__DATABASE__URL`), and finally `--database-url` / `DATABASE_URL` — and
//! deserializes them into [`RawConfig`], which mirrors the file and rejects unknown keys.
//! Then [`RawConfig::validate`] turns strings into typed values (durations, the dialect,
//! table identifiers) and names the key of the first bad value.
//!
//! Defaults live in one place: [`RawConfig::default`]. `config/recalcd.toml` documents
//! every key with that default, and a test checks the two agree.
//!
//! Durations are strings with a unit: `"250ms"`, `"5s"`, `"2m"`, `"1h"`.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub mod connection;
pub mod index;
pub mod serve;
pub mod similarity;
pub mod subsequence;

pub use connection::ConnectionString;
pub use index::{FeatureIndexConfig, IndexConfig};
pub use serve::ServeConfig;
pub use similarity::SimilarityIndexConfig;
pub use subsequence::SubsequenceIndexConfig;

/// Why a configuration could not be loaded; every variant names the offending key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The sources could not be read or deserialized (unknown key, wrong type, bad TOML).
    #[error("invalid configuration: {0}")]
    Load(#[source] config::ConfigError),
    /// A key has a value of the right type but an unacceptable content.
    #[error("invalid configuration: `{key}`: {reason}")]
    Invalid {
        /// The dotted key, e.g. `poll.interval`.
        key: &'static str,
        /// What is wrong with it and what is expected.
        reason: String,
    },
}

/// Which SQL dialect the store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL (TimescaleDB included).
    Postgres,
    /// QuestDB over its PostgreSQL wire protocol.
    QuestDb,
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dialect::Postgres => "postgres",
            Dialect::QuestDb => "questdb",
        })
    }
}

/// The configured dialect: detected from the server, or forced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialectChoice {
    /// Ask the server (`SELECT version()`; QuestDB's ends with `QuestDB`).
    Auto,
    /// Use this dialect whatever the server says.
    Forced(Dialect),
}

impl DialectChoice {
    /// Parses `auto`, `postgres` (also `postgresql`) or `questdb`.
    ///
    /// # Errors
    /// Returns a message listing the accepted names.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "postgres" | "postgresql" => Ok(Self::Forced(Dialect::Postgres)),
            "questdb" => Ok(Self::Forced(Dialect::QuestDb)),
            other => Err(format!(
                "unknown dialect `{other}` (expected `auto`, `postgres` or `questdb`)"
            )),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// How to reach the store.
    pub database: DatabaseConfig,
    /// The table names.
    pub tables: TableNames,
    /// How the daemon polls for flagged rows.
    pub poll: PollConfig,
    /// How several workers split the devices.
    pub worker: WorkerConfig,
    /// Logging.
    pub log: LogConfig,
    /// How the engine computes.
    pub engine: crate::engine::compute::Options,
    /// The HTTP endpoint (health and metrics).
    pub http: HttpConfig,
    /// The declared indexes (`[index]`).
    pub index: IndexConfig,
    /// `recalcd serve` (`[serve]`).
    pub serve: ServeConfig,
}

/// `[http]`: the endpoint serving `/healthz`, `/readyz` and `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConfig {
    /// The address to listen on; `None` when switched off (`listen = "off"` or `""`).
    pub listen: Option<SocketAddr>,
}

/// `[database]`.
#[derive(Clone, PartialEq)]
pub struct DatabaseConfig {
    /// The connection string (a URL or key/value pairs); may hold a password, so it is
    /// never printed as is (see [`DatabaseConfig::redacted_url`]).
    pub url: String,
    /// Detected from the server or forced.
    pub dialect: DialectChoice,
    /// How long to wait for a connection.
    pub connect_timeout: Duration,
    /// Cancel statements running longer than this (PostgreSQL only); `None` = no limit.
    pub statement_timeout: Option<Duration>,
    /// `recalcd run` exits with an error once the store has been unusable (unreachable,
    /// refusing connections, without schema) for this long without a break; `None` =
    /// retry forever.
    pub give_up_after: Option<Duration>,
    /// QuestDB only: where write-back goes over the line protocol (`database.questdb_ilp`).
    pub questdb_ilp: IlpChoice,
}

/// `database.questdb_ilp`: how recalcd writes results back to QuestDB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IlpChoice {
    /// The line protocol over HTTP at the database URL's host, port 9000; where that
    /// is refused, PG-wire inserts with one warning.
    Auto,
    /// The line protocol over HTTP at this `host:port`; recalcd stops if it is refused.
    Address(String),
    /// PG-wire inserts only.
    Off,
}

impl IlpChoice {
    /// QuestDB's HTTP port (REST and ILP over HTTP at `/write`).
    pub const DEFAULT_PORT: u16 = 9000;

    /// Parses `auto`, `off` or `host[:port]` (port 9000 when left out; `http://` is
    /// accepted before it).
    ///
    /// # Errors
    /// A message saying what is accepted.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        match s.to_ascii_lowercase().as_str() {
            "auto" => return Ok(Self::Auto),
            "off" | "" => return Ok(Self::Off),
            _ => {}
        }
        if s.to_ascii_lowercase().starts_with("https://") {
            return Err(format!(
                "`{s}`: TLS is not supported yet; use `http://host:port` or `host:port`"
            ));
        }
        let bare = s.strip_prefix("http://").unwrap_or(s).trim_end_matches('/');
        let (host, port) = match bare.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (bare, None),
        };
        if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
            return Err(format!(
                "`{s}`: write an IPv6 address in brackets with its port, e.g. `[::1]:9000`"
            ));
        }
        let port = match port {
            None => Self::DEFAULT_PORT,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                format!("`{s}` has no valid port (expected `auto`, `off` or `host:port`, e.g. `127.0.0.1:9000`)")
            })?,
        };
        let host_ok = !host.is_empty()
            && host.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']')
            });
        if !host_ok {
            return Err(format!(
                "`{s}` is not an address (expected `auto`, `off` or `host:port`, e.g. `127.0.0.1:9000`; `https` is not supported)"
            ));
        }
        Ok(Self::Address(format!("{host}:{port}")))
    }
}

impl DatabaseConfig {
    /// The connection string as a URL without its password, for logs and messages
    /// ([`connection::display`]).
    pub fn redacted_url(&self) -> String {
        connection::display(&self.url)
    }

    /// The password(s) to scrub from messages ([`connection::secrets`]).
    pub fn secrets(&self) -> Vec<String> {
        connection::secrets(&self.url)
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.redacted_url())
            .field("dialect", &self.dialect)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("give_up_after", &self.give_up_after)
            .field("questdb_ilp", &self.questdb_ilp)
            .finish()
    }
}

/// `[tables]`: the names of every table recalcd reads or writes.
///
/// Each is a plain SQL identifier (`[a-z_][a-z0-9_]*`, at most 63 characters), so the
/// same name works unquoted and quoted on both dialects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    /// Data rows.
    pub data: String,
    /// Job rows.
    pub job: String,
    /// Day rows.
    pub day: String,
    /// Per-device constants.
    pub constants: String,
    /// The equations.
    pub equations: String,
    /// recalcd's record of equations that could not be computed.
    pub errors: String,
    /// recalcd's record of the equations left out when the equations were loaded.
    pub problems: String,
    /// recalcd's record of applied migrations.
    pub migrations: String,
    /// recalcd's revision counter of the equations and constants (PostgreSQL only: the
    /// daemon reloads them when it changes).
    pub revision: String,
    /// The catalogue of built indexes (in the index database); each built index's
    /// buckets live in a table named after it and the channel
    /// (`{index}_feature_{channel}`).
    pub index: String,
    /// The log of index buckets to recompute (in the data store, written with the
    /// write-back).
    pub index_dirty: String,
}

/// `[poll]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollConfig {
    /// Time between polls when there is no backlog.
    pub interval: Duration,
    /// Maximum number of flagged rows taken per batch.
    pub batch_size: usize,
    /// The longest wait between two attempts when the store fails (the wait starts
    /// at half a second and doubles up to this).
    pub max_backoff: Duration,
    /// Wake up as soon as rows are flagged (PostgreSQL `LISTEN`/`NOTIFY`), polling
    /// every `interval` only as the fallback. Ignored on QuestDB (no notifications).
    pub notify: bool,
}

/// `[worker]`: how several `recalcd run` processes against one store split the devices.
///
/// On PostgreSQL the workers lease devices dynamically (advisory locks), so nothing
/// needs configuring; on QuestDB, which has no locks, each worker takes a static share:
/// the devices with `id mod shards = shard`. The static split applies on PostgreSQL
/// too when set, on top of the leases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerConfig {
    /// This worker's share, `0..shards`.
    pub shard: u32,
    /// How many shares the devices are split into; 1 = no static split.
    pub shards: u32,
}

impl WorkerConfig {
    /// Whether the static split restricts this worker at all.
    pub fn is_split(&self) -> bool {
        self.shards > 1
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Pretty or JSON.
    pub format: LogFormat,
    /// A `tracing` filter directive, e.g. `info` or `recalcd=debug,info`.
    pub level: String,
}

/// The TOML file, key for key. Unknown keys are errors.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[database]`.
    pub database: RawDatabase,
    /// `[tables]`.
    pub tables: RawTables,
    /// `[poll]`.
    pub poll: RawPoll,
    /// `[worker]`.
    pub worker: RawWorker,
    /// `[log]`.
    pub log: RawLog,
    /// `[engine]`.
    pub engine: RawEngine,
    /// `[http]`.
    pub http: RawHttp,
    /// `[index]` (optional).
    #[serde(default)]
    pub index: index::RawIndex,
    /// `[serve]`.
    pub serve: serve::RawServe,
}

/// `[database]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatabase {
    /// `database.url`.
    pub url: String,
    /// `database.dialect`: `auto`, `postgres` or `questdb`.
    pub dialect: String,
    /// `database.connect_timeout`.
    pub connect_timeout: String,
    /// `database.statement_timeout` (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement_timeout: Option<String>,
    /// `database.give_up_after` (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub give_up_after: Option<String>,
    /// `database.questdb_ilp`: `auto`, `off` or `host:port`.
    pub questdb_ilp: String,
}

/// `[tables]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawTables {
    pub data: String,
    pub job: String,
    pub day: String,
    pub constants: String,
    pub equations: String,
    pub errors: String,
    pub problems: String,
    pub migrations: String,
    pub revision: String,
    #[serde(default = "default_index_table")]
    pub index: String,
    #[serde(default = "default_index_dirty_table")]
    pub index_dirty: String,
}

fn default_index_table() -> String {
    "recalcd_index".into()
}

fn default_index_dirty_table() -> String {
    "recalcd_index_dirty".into()
}

/// `[poll]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawPoll {
    /// `poll.interval`.
    pub interval: String,
    /// `poll.batch_size`.
    pub batch_size: u64,
    /// `poll.max_backoff`.
    pub max_backoff: String,
    /// `poll.notify`.
    pub notify: bool,
}

/// `[worker]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorker {
    /// `worker.shard`.
    pub shard: u64,
    /// `worker.shards`.
    pub shards: u64,
}

/// `[log]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// `log.format`: `pretty` or `json`.
    pub format: String,
    /// `log.level`.
    pub level: String,
}

/// `[engine]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawEngine {
    /// `engine.max_iterations`: data ↔ job passes before giving up on a fixpoint.
    pub max_iterations: u64,
    /// `engine.default_timezone`: the zone day breaks are read in without `#TZ`.
    pub default_timezone: String,
}

/// `[http]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// `http.listen`: `host:port`, or `"off"` / `""` to switch the endpoint off.
    pub listen: String,
}

/// The default database URL: a local PostgreSQL, user `postgres`.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

impl Default for RawConfig {
    /// The built-in defaults — the one place they are written down.
    fn default() -> Self {
        RawConfig {
            database: RawDatabase {
                url: DEFAULT_DATABASE_URL.into(),
                dialect: "auto".into(),
                connect_timeout: "10s".into(),
                statement_timeout: None,
                give_up_after: None,
                questdb_ilp: "auto".into(),
            },
            tables: RawTables {
                data: "data".into(),
                job: "job".into(),
                day: "day".into(),
                constants: "constants".into(),
                equations: "equations".into(),
                errors: "recalcd_errors".into(),
                problems: "recalcd_equation_problems".into(),
                migrations: "recalcd_migrations".into(),
                revision: "recalcd_revision".into(),
                index: default_index_table(),
                index_dirty: default_index_dirty_table(),
            },
            poll: RawPoll {
                interval: "5s".into(),
                batch_size: 20_000,
                max_backoff: "30s".into(),
                notify: true,
            },
            worker: RawWorker {
                shard: 0,
                shards: 1,
            },
            log: RawLog {
                format: "pretty".into(),
                level: "info".into(),
            },
            engine: RawEngine {
                max_iterations: 10,
                default_timezone: "UTC".into(),
            },
            http: RawHttp {
                listen: "127.0.0.1:9187".into(),
            },
            index: index::RawIndex::default(),
            serve: serve::RawServe {
                listen: "127.0.0.1:9188".into(),
                token: None,
                pool_size: 8,
            },
        }
    }
}

impl RawConfig {
    /// Turns the raw strings into typed values.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first bad key.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let invalid = |key: &'static str, reason: String| ConfigError::Invalid { key, reason };
        let url = self.database.url.trim().to_string();
        if url.is_empty() {
            return Err(invalid("database.url", "must not be empty".into()));
        }
        let connection = ConnectionString::parse(&url).map_err(|e| {
            let e = std::error::Error::source(&e).map_or_else(|| e.to_string(), |c| format!("{e}: {c}"));
            invalid(
                "database.url",
                format!(
                    "not a connection string ({e}; expected `postgres://user:password@host:port/database` \
                     or key/value pairs such as `host=… user=… password='…' dbname=…`)"
                ),
            )
        })?;
        if connection.hosts_with_at() {
            return Err(invalid(
                "database.url",
                "a host name holds `@`: write an `@` of the password as `%40`".into(),
            ));
        }
        if connection.config().get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(invalid(
                "database.url",
                "TLS is not supported yet: use `sslmode=disable` (or `prefer`) and a private network or tunnel".into(),
            ));
        }
        let dialect = DialectChoice::parse(&self.database.dialect)
            .map_err(|r| invalid("database.dialect", r))?;
        let connect_timeout = parse_duration(&self.database.connect_timeout)
            .map_err(|r| invalid("database.connect_timeout", r))?;
        if connect_timeout.is_zero() {
            return Err(invalid(
                "database.connect_timeout",
                "must be positive".into(),
            ));
        }
        let statement_timeout = match &self.database.statement_timeout {
            None => None,
            Some(s) => {
                Some(parse_duration(s).map_err(|r| invalid("database.statement_timeout", r))?)
                    .filter(|d| !d.is_zero())
            }
        };
        let give_up_after = match &self.database.give_up_after {
            None => None,
            Some(s) => Some(parse_duration(s).map_err(|r| invalid("database.give_up_after", r))?)
                .filter(|d| !d.is_zero()),
        };
        let questdb_ilp = IlpChoice::parse(&self.database.questdb_ilp)
            .map_err(|r| invalid("database.questdb_ilp", r))?;
        let shards = u32::try_from(self.worker.shards)
            .ok()
            .filter(|n| (1..=1_000_000).contains(n))
            .ok_or_else(|| invalid("worker.shards", "must be between 1 and 1000000".into()))?;
        let shard = u32::try_from(self.worker.shard)
            .ok()
            .filter(|k| *k < shards)
            .ok_or_else(|| {
                invalid(
                    "worker.shard",
                    format!("must be between 0 and worker.shards - 1 ({})", shards - 1),
                )
            })?;
        let t = self.tables;
        let tables = TableNames {
            data: identifier("tables.data", t.data)?,
            job: identifier("tables.job", t.job)?,
            day: identifier("tables.day", t.day)?,
            constants: identifier("tables.constants", t.constants)?,
            equations: identifier("tables.equations", t.equations)?,
            errors: identifier("tables.errors", t.errors)?,
            problems: identifier("tables.problems", t.problems)?,
            migrations: identifier("tables.migrations", t.migrations)?,
            revision: identifier("tables.revision", t.revision)?,
            index: identifier("tables.index", t.index)?,
            index_dirty: identifier("tables.index_dirty", t.index_dirty)?,
        };
        let all = tables.all();
        for (i, (key, name)) in all.iter().enumerate() {
            if all[..i].iter().any(|(_, other)| other == name) {
                return Err(invalid(
                    key,
                    format!("`{name}` is already used by another table"),
                ));
            }
        }
        let interval =
            parse_duration(&self.poll.interval).map_err(|r| invalid("poll.interval", r))?;
        let batch_size = usize::try_from(self.poll.batch_size)
            .ok()
            .filter(|n| (1..=1_000_000).contains(n))
            .ok_or_else(|| invalid("poll.batch_size", "must be between 1 and 1000000".into()))?;
        let max_backoff =
            parse_duration(&self.poll.max_backoff).map_err(|r| invalid("poll.max_backoff", r))?;
        if max_backoff.is_zero() {
            return Err(invalid("poll.max_backoff", "must be positive".into()));
        }
        let format = match self.log.format.trim().to_ascii_lowercase().as_str() {
            "pretty" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            other => {
                return Err(invalid(
                    "log.format",
                    format!("unknown format `{other}` (expected `pretty` or `json`)"),
                ))
            }
        };
        let level = parse_log_level(&self.log.level).map_err(|r| invalid("log.level", r))?;
        let max_iterations = u32::try_from(self.engine.max_iterations)
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| invalid("engine.max_iterations", "must be between 1 and 1000".into()))?;
        let default_zone = crate::engine::day::parse_zone(&self.engine.default_timezone)
            .map_err(|e| invalid("engine.default_timezone", e.to_string()))?;
        let listen = parse_listen(&self.http.listen).map_err(|r| invalid("http.listen", r))?;
        let index = self.index.validate()?;
        let serve = self.serve.validate()?;
        Ok(Config {
            engine: crate::engine::compute::Options {
                max_iterations,
                default_zone,
            },
            worker: WorkerConfig { shard, shards },
            database: DatabaseConfig {
                url,
                dialect,
                connect_timeout,
                statement_timeout,
                give_up_after,
                questdb_ilp,
            },
            tables,
            poll: PollConfig {
                interval,
                batch_size,
                max_backoff,
                notify: self.poll.notify,
            },
            log: LogConfig { format, level },
            http: HttpConfig { listen },
            index,
            serve,
        })
    }
}

impl TableNames {
    /// The same tables, every name prefixed with `prefix_`: several test runs or
    /// benchmarks keep apart on one QuestDB, which has a single database.
    pub fn prefixed(&self, prefix: &str) -> TableNames {
        let p = |name: &str| format!("{prefix}_{name}");
        TableNames {
            data: p(&self.data),
            job: p(&self.job),
            day: p(&self.day),
            constants: p(&self.constants),
            equations: p(&self.equations),
            errors: p(&self.errors),
            problems: p(&self.problems),
            migrations: p(&self.migrations),
            revision: p(&self.revision),
            index: p(&self.index),
            index_dirty: p(&self.index_dirty),
        }
    }

    /// Every table with its configuration key.
    pub fn all(&self) -> [(&'static str, &str); 11] {
        [
            ("tables.data", &self.data),
            ("tables.job", &self.job),
            ("tables.day", &self.day),
            ("tables.constants", &self.constants),
            ("tables.equations", &self.equations),
            ("tables.errors", &self.errors),
            ("tables.problems", &self.problems),
            ("tables.migrations", &self.migrations),
            ("tables.revision", &self.revision),
            ("tables.index", &self.index),
            ("tables.index_dirty", &self.index_dirty),
        ]
    }
}

impl Default for Config {
    fn default() -> Self {
        RawConfig::default()
            .validate()
            .expect("the built-in defaults are valid")
    }
}

impl Config {
    /// Loads defaults, then the file at `path` (if any), then `RECALCD__*` environment
    /// variables, then `database_url` (from `--database-url` / `DATABASE_URL`).
    ///
    /// # Errors
    /// [`ConfigError`] naming the bad key (or the unreadable file).
    pub fn load(path: Option<&Path>, database_url: Option<&str>) -> Result<Config, ConfigError> {
        Self::load_from(
            path,
            database_url,
            config::Environment::with_prefix("RECALCD"),
        )
    }

    /// [`Config::load`] with the environment given explicitly (tests pass their own).
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn load_from(
        path: Option<&Path>,
        database_url: Option<&str>,
        env: config::Environment,
    ) -> Result<Config, ConfigError> {
        let defaults =
            config::Config::try_from(&RawConfig::default()).map_err(ConfigError::Load)?;
        let mut builder = config::Config::builder().add_source(defaults);
        if let Some(path) = path {
            builder = builder.add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        builder = builder.add_source(env.prefix_separator("__").separator("__").try_parsing(true));
        if let Some(url) = database_url.filter(|u| !u.trim().is_empty()) {
            builder = builder
                .set_override("database.url", url)
                .map_err(ConfigError::Load)?;
        }
        let raw: RawConfig = builder
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(ConfigError::Load)?;
        raw.validate()
    }
}

pub use crate::duration::parse_duration;

/// Checks `log.level`: comma-separated directives, each a level (`error`, `warn`,
/// `info`, `debug`, `trace`, `off`) or `target=level` (e.g. `recalcd=debug`); span
/// directives (`target[span{field=value}]=level`) are left to `tracing`'s own parser.
///
/// `tracing` itself takes a word it does not know as the name of a target, so a typo
/// (`inof`) would switch every log off; here it is an error.
///
/// # Errors
/// A message naming the bad directive and what is accepted.
pub fn parse_log_level(s: &str) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    let is_level = |w: &str| LEVELS.iter().any(|l| l.eq_ignore_ascii_case(w.trim()));
    let is_target = |w: &str| {
        let w = w.trim();
        !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-'))
    };
    let expected = "expected a level (`error`, `warn`, `info`, `debug`, `trace`, `off`) or \
                    `target=level` directives separated by commas, e.g. `recalcd=debug,info`";
    let s = s.trim();
    if s.is_empty() {
        return Err(format!("is empty ({expected})"));
    }
    for directive in s.split(',').map(str::trim) {
        let ok = if directive.contains('[') {
            true
        } else if let Some((target, level)) = directive.split_once('=') {
            is_target(target) && is_level(level)
        } else {
            is_level(directive)
        };
        if !ok {
            return Err(format!(
                "`{directive}` is not a level or `target=level` ({expected})"
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(s)
        .map_err(|e| format!("`{s}` is not a filter: {e} ({expected})"))?;
    Ok(s.to_owned())
}

/// Parses `http.listen`: an IP address and port (`127.0.0.1:9187`, `[::1]:9187`), or
/// `off` / an empty string for no endpoint. Host names are refused: what a name resolves
/// to can change, and an endpoint bound to the wrong interface is a security problem.
///
/// # Errors
/// A message saying what is accepted.
pub fn parse_listen(s: &str) -> Result<Option<SocketAddr>, String> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|_| {
        format!("`{s}` is not an address (use e.g. `127.0.0.1:9187`, `0.0.0.0:9187`, `[::1]:9187`, or `off`)")
    })
}

fn identifier(key: &'static str, name: String) -> Result<String, ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(name)
    } else {
        Err(ConfigError::Invalid {
            key,
            reason: format!(
                "`{name}` is not a table name (lower-case letters, digits and `_`, not starting with a digit, at most 63 characters)"
            ),
        })
    }
}

/// `url` (`scheme://authority/database?params`) with its database name replaced by
/// `name`: how tests and the benchmark reach a database of their own on a server.
pub fn url_with_database(url: &str, name: &str) -> String {
    let rest = url.find("://").map_or(0, |i| i + 3);
    let query = url[rest..].find('?').map_or(url.len(), |i| rest + i);
    let path = url[rest..query].find('/').map_or(query, |i| rest + i);
    format!("{}/{}{}", &url[..path], name, &url[query..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env() -> config::Environment {
        config::Environment::with_prefix("RECALCD_TEST_NOTHING_SET")
    }

    #[test]
    fn defaults_validate() {
        let c = Config::default();
        assert_eq!(c.poll.batch_size, 20_000);
        assert_eq!(c.poll.interval, Duration::from_secs(5));
        assert_eq!(c.database.dialect, DialectChoice::Auto);
        assert_eq!(c.tables.errors, "recalcd_errors");
        assert_eq!(c.tables.revision, "recalcd_revision");
        assert_eq!(c.poll.max_backoff, Duration::from_secs(30));
        let mut raw = RawConfig::default();
        raw.poll.max_backoff = "0s".into();
        let e = raw.validate().unwrap_err();
        assert!(e.to_string().contains("poll.max_backoff"), "{e}");
        assert_eq!(
            c.worker,
            WorkerConfig {
                shard: 0,
                shards: 1
            }
        );
        assert!(c.poll.notify);
        assert_eq!(c.database.give_up_after, None);
    }

    #[test]
    fn worker_split_and_give_up_are_checked() {
        let mut raw = RawConfig {
            worker: RawWorker {
                shard: 2,
                shards: 3,
            },
            ..RawConfig::default()
        };
        raw.database.give_up_after = Some("90s".into());
        let c = raw.clone().validate().unwrap();
        assert_eq!(
            c.worker,
            WorkerConfig {
                shard: 2,
                shards: 3
            }
        );
        assert!(c.worker.is_split());
        assert_eq!(c.database.give_up_after, Some(Duration::from_secs(90)));
        raw.worker.shard = 3;
        let e = raw.clone().validate().unwrap_err();
        assert!(e.to_string().contains("worker.shard"), "{e}");
        raw.worker = RawWorker {
            shard: 0,
            shards: 0,
        };
        let e = raw.clone().validate().unwrap_err();
        assert!(e.to_string().contains("worker.shards"), "{e}");
        raw.worker.shards = 1;
        raw.database.give_up_after = Some("soon".into());
        let e = raw.validate().unwrap_err();
        assert!(e.to_string().contains("database.give_up_after"), "{e}");
    }

    #[test]
    fn questdb_ilp_accepts_auto_off_and_addresses() {
        let addr = |s: &str| IlpChoice::Address(s.into());
        assert_eq!(IlpChoice::parse(" Auto "), Ok(IlpChoice::Auto));
        assert_eq!(IlpChoice::parse("off"), Ok(IlpChoice::Off));
        assert_eq!(IlpChoice::parse("qdb:9100"), Ok(addr("qdb:9100")));
        assert_eq!(IlpChoice::parse("qdb"), Ok(addr("qdb:9000")));
        assert_eq!(
            IlpChoice::parse("http://10.0.0.5:9000/"),
            Ok(addr("10.0.0.5:9000"))
        );
        assert_eq!(IlpChoice::parse("[::1]:9000"), Ok(addr("[::1]:9000")));
        for bad in ["qdb:port", "qdb:0", "::1", "https://qdb:9000", "a b:9000"] {
            assert!(IlpChoice::parse(bad).is_err(), "{bad}");
        }
        let mut raw = RawConfig::default();
        assert_eq!(
            raw.clone().validate().unwrap().database.questdb_ilp,
            IlpChoice::Auto
        );
        raw.database.questdb_ilp = "qdb:port".into();
        let e = raw.validate().unwrap_err();
        assert!(e.to_string().contains("database.questdb_ilp"), "{e}");
    }

    #[test]
    fn example_file_documents_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/recalcd.toml");
        let text = std::fs::read_to_string(&path).expect("config/recalcd.toml exists");
        let raw: RawConfig = config::Config::builder()
            .add_source(config::File::from_str(&text, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .expect("the example parses");
        let mut defaults = RawConfig::default();
        // The example shows the optional statement_timeout commented out.
        defaults.database.statement_timeout = raw.database.statement_timeout.clone();
        defaults.database.give_up_after = raw.database.give_up_after.clone();
        assert_eq!(raw, defaults);
        assert_eq!(
            Config::load_from(Some(&path), None, no_env()).unwrap(),
            Config::default()
        );
        // Every key of the mirror appears in the file, the optional one commented.
        assert!(text.contains("# statement_timeout = "));
        assert!(text.contains("# give_up_after = "));
        assert!(text.contains("# token = "));
    }

    #[test]
    fn unknown_key_is_named() {
        let dir = std::env::temp_dir().join(format!("recalcd-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.toml");
        std::fs::write(&path, "[poll]\nbatchsize = 5\n").unwrap();
        let e = Config::load_from(Some(&path), None, no_env()).unwrap_err();
        assert!(e.to_string().contains("batchsize"), "{e}");
        std::fs::write(&path, "[poll]\ninterval = \"5 parsecs\"\n").unwrap();
        let e = Config::load_from(Some(&path), None, no_env()).unwrap_err();
        assert!(e.to_string().contains("poll.interval"), "{e}");
        std::fs::write(
            &path,
            "[database]\nurl = \"postgres://u:pw@h/d?sslmode=require\"\n",
        )
        .unwrap();
        let e = Config::load_from(Some(&path), None, no_env()).unwrap_err();
        assert!(e.to_string().contains("database.url"), "{e}");
        assert!(!e.to_string().contains("pw"), "{e}");
        std::fs::write(&path, "[database]\nurl = \"postgres://u:pw@h:port/d\"\n").unwrap();
        let e = Config::load_from(Some(&path), None, no_env()).unwrap_err();
        assert!(e.to_string().contains("database.url"), "{e}");
        assert!(!e.to_string().contains(":pw@"), "{e}");
        std::fs::write(&path, "[tables]\ndata = \"Data; drop\"\n").unwrap();
        let e = Config::load_from(Some(&path), None, no_env()).unwrap_err();
        assert!(e.to_string().contains("tables.data"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn environment_and_flag_override() {
        let env = config::Environment::default()
            .prefix("RECALCD")
            .source(Some(
                [
                    ("RECALCD__POLL__BATCH_SIZE".to_string(), "77".to_string()),
                    ("RECALCD__TABLES__DATA".to_string(), "samples".to_string()),
                    (
                        "RECALCD__DATABASE__DIALECT".to_string(),
                        "questdb".to_string(),
                    ),
                    (
                        "RECALCD__DATABASE__URL".to_string(),
                        "postgres://a@b/c".to_string(),
                    ),
                ]
                .into_iter()
                .collect(),
            ));
        let c = Config::load_from(None, None, env.clone()).unwrap();
        assert_eq!(c.poll.batch_size, 77);
        assert_eq!(c.tables.data, "samples");
        assert_eq!(c.database.dialect, DialectChoice::Forced(Dialect::QuestDb));
        assert_eq!(c.database.url, "postgres://a@b/c");
        let c = Config::load_from(None, Some("postgres://x@y/z"), env).unwrap();
        assert_eq!(c.database.url, "postgres://x@y/z");
    }

    #[test]
    fn http_listen_is_an_address_or_off() {
        let c = Config::default();
        assert_eq!(c.http.listen, Some("127.0.0.1:9187".parse().unwrap()));
        assert_eq!(parse_listen("off"), Ok(None));
        assert_eq!(parse_listen(" OFF "), Ok(None));
        assert_eq!(parse_listen(""), Ok(None));
        assert_eq!(
            parse_listen("[::1]:80"),
            Ok(Some("[::1]:80".parse().unwrap()))
        );
        assert!(parse_listen("localhost:9187").is_err());
        assert!(parse_listen("127.0.0.1").is_err());
        let mut raw = RawConfig::default();
        raw.http.listen = "9187".into();
        let e = raw.validate().unwrap_err();
        assert!(e.to_string().contains("http.listen"), "{e}");
        for (value, expected) in [
            ("0.0.0.0:9000", Some("0.0.0.0:9000".parse().unwrap())),
            ("off", None),
            ("", None),
        ] {
            let env = config::Environment::default()
                .prefix("RECALCD")
                .source(Some(
                    [("RECALCD__HTTP__LISTEN".to_string(), value.to_string())]
                        .into_iter()
                        .collect(),
                ));
            let c = Config::load_from(None, None, env).unwrap();
            assert_eq!(c.http.listen, expected, "{value:?}");
        }
    }

    #[test]
    fn log_levels_are_levels() {
        for ok in [
            "info",
            " WARN ",
            "recalcd=debug,info",
            "off",
            "recalcd::service=trace, warn",
        ] {
            assert!(parse_log_level(ok).is_ok(), "{ok}");
        }
        for bad in [
            "inof",
            "verbose",
            "",
            "recalcd",
            "recalcd=loud",
            "info,",
            "=info",
            "a b=info",
        ] {
            let e = parse_log_level(bad).unwrap_err();
            assert!(e.contains("expected a level"), "{bad}: {e}");
        }
        let mut raw = RawConfig::default();
        raw.log.level = "inof".into();
        let e = raw.validate().unwrap_err();
        assert!(e.to_string().contains("`log.level`"), "{e}");
        assert!(e.to_string().contains("`inof`"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("-5s").is_err());
    }

    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            url_with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "t1"),
            "postgres://u:p@h:5432/t1?sslmode=disable"
        );
        assert_eq!(url_with_database("postgres://h", "t1"), "postgres://h/t1");
    }

    #[test]
    fn passwords_are_redacted() {
        let d = Config::load_from(None, Some("postgres://u:hunter2@h/d"), no_env()).unwrap();
        assert!(!format!("{d:?}").contains("hunter2"));
        assert_eq!(d.database.redacted_url(), "postgres://u:***@h:5432/d");
        assert_eq!(d.database.secrets(), vec!["hunter2".to_owned()]);
        let d = Config::load_from(
            None,
            Some("host=h user=u password='Top Secret' dbname=d"),
            no_env(),
        )
        .unwrap();
        assert!(!format!("{d:?}").contains("Top"));
        assert_eq!(d.database.redacted_url(), "postgres://u:***@h/d");
    }

    #[test]
    fn a_bad_connection_string_is_named_but_not_shown() {
        for (url, expected) in [
            ("host=h password='Top Secret", "unterminated quoted"),
            ("postgres://u:TopSecret@h:port/d", "port"),
            ("postgres://u:p@TopSecret@h/d", "%40"),
        ] {
            let e = Config::load_from(None, Some(url), no_env()).unwrap_err();
            let text = e.to_string();
            assert!(text.contains("database.url"), "{text}");
            assert!(text.contains(expected), "{text}");
            assert!(
                !text.contains("TopSecret") && !text.contains("Top Secret"),
                "{text}"
            );
        }
    }
}
