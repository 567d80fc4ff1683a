//! Write-back over QuestDB's line protocol (ILP) over HTTP, with the official client
//! (`questdb-rs`): one `POST /write` per chunk of one table, sent as a transactional
//! flush, so QuestDB commits each chunk as one transaction of that table — all of it or
//! none. The client is blocking; every call runs on tokio's blocking pool.
//!
//! Where it goes is `database.questdb_ilp` ([`IlpChoice`]): `auto` (the database URL's
//! host, port 9000, falling back to PG-wire inserts with one warning where that is
//! refused), an explicit `host:port` (refused → recalcd stops with
//! [`StoreError::IlpRefused`]) or `off`. The URL's user and password are sent as HTTP
//! basic auth; they are never logged (errors name the address only).
//!
//! At start-up the client reads the server's `/settings` (its line protocol versions),
//! which is the probe: a closed port, a server that is not QuestDB, or one that refuses
//! the credentials fails there, before the first batch.

use std::sync::{Arc, Mutex};

use chrono::NaiveDateTime;
use questdb::ingress::{Buffer, Sender, TimestampMicros};

use crate::config::{DatabaseConfig, IlpChoice};
use crate::store::{Row, StoreError};

/// An open ILP/HTTP sender (a clone shares the client: the writer session's).
#[derive(Clone)]
pub(crate) struct Ilp {
    /// The client; `Sender` is blocking, so it is used on the blocking pool only.
    sender: Arc<Mutex<Sender>>,
    /// A template buffer of the server's protocol version, cloned when no spare is left.
    empty: Buffer,
    /// Buffers of finished requests, cleared and kept with their capacity: a request's
    /// buffer grows to megabytes, and growing a fresh one each time (reallocating and
    /// faulting in new pages) cost recalcd more than encoding the rows into it.
    spare: Arc<Mutex<Vec<Buffer>>>,
    /// `host:port`, for messages.
    addr: String,
}

impl std::fmt::Debug for Ilp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ilp").field("addr", &self.addr).finish()
    }
}

/// Where `database.questdb_ilp` points: the address, and whether it was given
/// explicitly (refusal stops recalcd) or derived by `auto` (refusal falls back).
pub(crate) fn target(database: &DatabaseConfig) -> Option<(String, bool)> {
    match &database.questdb_ilp {
        IlpChoice::Off => None,
        IlpChoice::Address(a) => Some((a.clone(), true)),
        IlpChoice::Auto => {
            let pg: tokio_postgres::Config = database.url.parse().ok()?;
            let host = pg.get_hosts().iter().find_map(|h| match h {
                tokio_postgres::config::Host::Tcp(name) => Some(name.clone()),
                #[allow(unreachable_patterns)]
                _ => None,
            })?;
            let host = if host.contains(':') {
                format!("[{host}]") // an IPv6 literal
            } else {
                host
            };
            Some((format!("{host}:{}", IlpChoice::DEFAULT_PORT), false))
        }
    }
}

/// Escapes a value of the client's configuration string (`;` is written `;;`).
fn conf_value(v: &str) -> String {
    v.replace(';', ";;")
}

/// The client's configuration string for `addr` with the URL's credentials.
fn conf_string(addr: &str, database: &DatabaseConfig) -> String {
    let mut conf = format!("http::addr={};", conf_value(addr));
    if let Ok(pg) = database.url.parse::<tokio_postgres::Config>() {
        let user = pg.get_user();
        let password = pg.get_password().map(String::from_utf8_lossy);
        if let (Some(user), Some(password)) = (user, password) {
            conf.push_str(&format!(
                "username={};password={};",
                conf_value(user),
                conf_value(&password)
            ));
        }
    }
    conf
}

impl Ilp {
    /// Opens a sender to `addr` and reads the server's settings (the probe).
    ///
    /// # Errors
    /// The client's error: connection refused, authentication, not a QuestDB.
    pub(crate) async fn open(addr: &str, database: &DatabaseConfig) -> Result<Ilp, questdb::Error> {
        let conf = conf_string(addr, database);
        let sender = tokio::task::spawn_blocking(move || Sender::from_conf(conf))
            .await
            .map_err(|e| {
                questdb::Error::new(
                    questdb::ErrorCode::SocketError,
                    format!("the ILP client's thread failed: {e}"),
                )
            })??;
        let empty = sender.new_buffer();
        Ok(Ilp {
            sender: Arc::new(Mutex::new(sender)),
            empty,
            spare: Arc::default(),
            addr: addr.to_string(),
        })
    }

    /// The address written to.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// Writes `rows` to `table` as one transaction of that table (one request), in the
    /// order given.
    ///
    /// # Errors
    /// [`StoreError::Ilp`]: the server refused the rows or went away (transient).
    pub(crate) async fn write(&self, table: &str, rows: &[&Row]) -> Result<(), StoreError> {
        let what = || {
            format!(
                "writing back {} rows of `{table}` through QuestDB's line protocol at {}",
                rows.len(),
                self.addr
            )
        };
        let mut buffer = self.buffer();
        encode(&mut buffer, table, rows).map_err(|source| StoreError::Ilp {
            what: what(),
            source,
        })?;
        let sender = Arc::clone(&self.sender);
        let sent = tokio::task::spawn_blocking(move || {
            let flushed = match sender.lock() {
                Ok(mut sender) => sender.flush_and_keep_with_flags(&buffer, true),
                Err(_) => Err(questdb::Error::new(
                    questdb::ErrorCode::SocketError,
                    "the ILP client was poisoned by an earlier panic".to_string(),
                )),
            };
            (flushed, buffer)
        })
        .await;
        match sent {
            Ok((result, buffer)) => {
                self.keep(buffer);
                result.map_err(|source| StoreError::Ilp {
                    what: what(),
                    source,
                })
            }
            Err(e) => Err(StoreError::Ilp {
                what: what(),
                source: questdb::Error::new(
                    questdb::ErrorCode::SocketError,
                    format!("the ILP client's thread failed: {e}"),
                ),
            }),
        }
    }

    /// An empty buffer, with the capacity of an earlier request's where one is spare.
    fn buffer(&self) -> Buffer {
        let spare = self.spare.lock().ok().and_then(|mut s| s.pop());
        spare.unwrap_or_else(|| self.empty.clone())
    }

    /// Keeps `buffer`, cleared, for a later request ([`SPARE_BUFFERS`] at most).
    fn keep(&self, mut buffer: Buffer) {
        buffer.clear();
        if let Ok(mut spare) = self.spare.lock() {
            if spare.len() < SPARE_BUFFERS {
                spare.push(buffer);
            }
        }
    }
}

/// Buffers kept for reuse: a writer sends one request at a time, and the sessions
/// that share a sender (the writer's and the reader's) at most two.
const SPARE_BUFFERS: usize = 2;

fn micros(t: NaiveDateTime) -> TimestampMicros {
    TimestampMicros::new(t.and_utc().timestamp_micros())
}

/// One ILP line per row: the row columns of the level tables, `datetime` as the
/// designated timestamp; a NULL column is left out, which QuestDB stores as NULL.
fn encode(buffer: &mut Buffer, table: &str, rows: &[&Row]) -> questdb::Result<()> {
    for r in rows {
        buffer
            .table(table)?
            .column_ts("data_time", micros(r.data_time))?
            .column_i64("id", r.id.into())?
            .column_i64_opt("state", r.state.map(i64::from))?
            .column_str_opt("user", r.user.as_deref())?
            .column_str_opt("gps", r.gps.as_deref())?
            .column_i64("recalc", r.recalc.into())?
            .column_str("conjoined", &r.conjoined)?
            .at(micros(r.datetime))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database(url: &str, ilp: IlpChoice) -> DatabaseConfig {
        let mut d = crate::config::Config::default().database;
        d.url = url.into();
        d.questdb_ilp = ilp;
        d
    }

    #[test]
    fn auto_targets_the_url_host_on_port_9000() {
        let d = database(
            "postgres://admin:quest@qdb.example:8812/qdb",
            IlpChoice::Auto,
        );
        assert_eq!(target(&d), Some(("qdb.example:9000".into(), false)));
        let d = database("postgres://admin:quest@[::1]:8812/qdb", IlpChoice::Auto);
        assert_eq!(target(&d), Some(("[::1]:9000".into(), false)));
        let d = database("postgres://a@h/qdb", IlpChoice::Address("x:1".into()));
        assert_eq!(target(&d), Some(("x:1".into(), true)));
        assert_eq!(
            target(&database("postgres://a@h/qdb", IlpChoice::Off)),
            None
        );
    }

    #[test]
    fn credentials_come_from_the_url_escaped() {
        let d = database("postgres://admin:pa;ss@h:8812/qdb", IlpChoice::Auto);
        assert_eq!(
            conf_string("h:9000", &d),
            "http::addr=h:9000;username=admin;password=pa;;ss;"
        );
        let d = database("postgres://admin@h:8812/qdb", IlpChoice::Auto);
        assert_eq!(conf_string("h:9000", &d), "http::addr=h:9000;");
    }

    #[test]
    fn rows_become_lines_with_nulls_left_out() {
        let t = chrono::NaiveDate::from_ymd_opt(2024, 1, 2)
            .unwrap()
            .and_hms_opt(3, 4, 5)
            .unwrap();
        let row = Row {
            datetime: t,
            data_time: t,
            id: 7,
            state: None,
            user: Some("a b".into()),
            gps: None,
            recalc: 0,
            conjoined: "x=1;".into(),
            version: crate::store::RowVersion::ABSENT,
            unreadable: None,
        };
        let mut buffer = Buffer::new(questdb::ingress::ProtocolVersion::V1);
        encode(&mut buffer, "data", &[&row]).unwrap();
        let line = String::from_utf8_lossy(buffer.as_bytes()).into_owned();
        assert_eq!(
            line,
            "data data_time=1704164645000000t,id=7i,user=\"a b\",recalc=0i,conjoined=\"x=1;\" 1704164645000000000\n"
        );
    }
}
