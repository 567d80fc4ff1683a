//! Device leases on PostgreSQL: session-level advisory locks.
//!
//! **Design.** A batch leases its devices with `pg_try_advisory_lock(namespace, id)` on
//! the worker's own connection, *before* it polls their flagged rows, and unlocks them
//! (one `pg_advisory_unlock` per device) after its write-back has committed. The
//! namespace is a stable hash of the data table's name, so two installations sharing a
//! database (other table names) never block each other. Candidates are the devices
//! among the `limit` oldest flagged rows of each level after the sweep cursor the
//! batch's polls continue from (so the lease takes the devices of the rows those polls
//! will take) that no *other* session holds (read from `pg_locks`), so three workers
//! do not all fight over the first rows, at most [`MAX_LEASED_DEVICES`] per batch
//! (advisory locks take slots in the server's shared lock table:
//! `max_locks_per_transaction × max_connections`, 6400 by default).
//!
//! **Failure behaviour.** A lock belongs to the server session: when a worker dies
//! (crash, SIGKILL, lost connection) the server ends its session, rolls back its open
//! write-back and drops its locks, and the next lease of another worker takes its
//! devices; their rows are still flagged. The server notices a dead client at once when
//! its socket is closed (a process exit); after a silent network partition only when TCP
//! keep-alives (`tcp_keepalives_idle` on the server) or the next write to the socket
//! fail — until then that worker's devices wait. A worker that is alive but stuck keeps
//! its devices (no expiry): correctness first, since its write-back may still commit.
//! The write-back's guard (`xmin`) stays as a second line of defence.
//!
//! **Limits.** Leases (and `LISTEN`) need a real server session per worker: connect
//! directly or through a pooler in *session* mode — in PgBouncer's transaction mode a
//! lock would stay with a pooled server connection other clients then use. Finding
//! candidates walks the flagged-rows index past the rows of devices other workers
//! hold, so a very deep backlog on a few held devices makes each lease query read that
//! many index entries.

use tokio_postgres::Client;

use tokio_postgres::types::ToSql;

use super::super::{Lease, Level, StoreError, Sweep};
use crate::config::{TableNames, WorkerConfig};

/// The most devices one batch leases (see the module docs).
pub const MAX_LEASED_DEVICES: usize = 1000;

/// Tries to lease a few more times when every candidate was taken by another worker
/// between reading `pg_locks` and locking.
const ATTEMPTS: usize = 3;

/// The advisory-lock namespace of an installation: FNV-1a of `recalcd:<data table>`,
/// folded into an `int4` (the first key of the two-key lock functions). Stable: workers
/// of different recalcd versions must agree on it.
pub fn namespace(tables: &TableNames) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in "recalcd:".bytes().chain(tables.data.bytes()) {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    i32::from_ne_bytes(h.to_ne_bytes())
}

/// `AND <id in this worker's static share>`, or nothing without a split.
pub(super) fn share_condition(worker: &WorkerConfig, column: &str) -> String {
    if worker.is_split() {
        let n = worker.shards;
        format!(" AND (({column} % {n}) + {n}) % {n} = {}", worker.shard)
    } else {
        String::new()
    }
}

/// Leases free devices with flagged rows (see the module docs).
pub async fn lease(
    client: &Client,
    tables: &TableNames,
    worker: &WorkerConfig,
    namespace: i32,
    after: &Sweep,
    limit: usize,
) -> Result<Lease, StoreError> {
    let share = share_condition(worker, "id");
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let max = i64::try_from(MAX_LEASED_DEVICES).unwrap_or(i64::MAX);
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&namespace, &limit, &max];
    let candidates: Vec<String> = Level::ALL
        .iter()
        .zip(after)
        .map(|(level, after)| {
            let mut cursor = String::new();
            if let Some(k) = after {
                params.push(&k.datetime);
                params.push(&k.id);
                let n = params.len();
                cursor = format!(" AND (datetime, id) > (${}, ${n})", n - 1);
            }
            format!(
                r#"(SELECT id FROM "{}" WHERE recalc > 0{share}{cursor}
                      AND id::oid NOT IN (SELECT objid FROM held)
                    ORDER BY datetime, id LIMIT $2)"#,
                level.table(tables)
            )
        })
        .collect();
    let sql = format!(
        r#"WITH held AS MATERIALIZED (
               SELECT objid FROM pg_locks
                WHERE locktype = 'advisory' AND objsubid = 2 AND classid = $1::int4::oid
                  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND pid <> pg_backend_pid()),
           candidates AS (
               SELECT DISTINCT id FROM ({}) c ORDER BY id LIMIT $3)
           SELECT id, pg_try_advisory_lock($1, id) FROM candidates"#,
        candidates.join(" UNION ALL ")
    );
    let what = "leasing devices (advisory locks)";
    for _ in 0..ATTEMPTS {
        let rows = client
            .query(&sql, &params)
            .await
            .map_err(StoreError::query(what))?;
        let mut leased = Vec::with_capacity(rows.len());
        for r in &rows {
            let locked: bool = r.try_get(1).map_err(StoreError::query(what))?;
            if locked {
                leased.push(r.try_get::<_, i32>(0).map_err(StoreError::query(what))?);
            }
        }
        // Nothing flagged and free, or something leased: done. Otherwise every
        // candidate went to another worker meanwhile; look again.
        if rows.is_empty() || !leased.is_empty() {
            return Ok(Lease::Devices(leased));
        }
    }
    Ok(Lease::Devices(Vec::new()))
}

/// Gives the lease back: unlocks each of its devices once. A session's advisory locks
/// stack, so a device leased again by a later batch of the same session (the pipeline of
/// `recalcd once` leases the next batch before the one being written is released) stays
/// held until that batch is released too.
pub async fn release(client: &Client, namespace: i32, lease: Lease) -> Result<(), StoreError> {
    let Lease::Devices(devices) = lease else {
        return Ok(());
    };
    if devices.is_empty() {
        return Ok(());
    }
    client
        .execute(
            "SELECT pg_advisory_unlock($1, id) FROM unnest($2::int4[]) AS d(id)",
            &[&namespace, &devices],
        )
        .await
        .map_err(StoreError::query("releasing the leased devices"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn the_namespace_is_stable_and_follows_the_data_table() {
        let mut tables = Config::default().tables;
        let a = namespace(&tables);
        assert_eq!(a, namespace(&tables));
        tables.data = "samples".into();
        assert_ne!(a, namespace(&tables));
    }

    #[test]
    fn the_share_condition_appears_only_with_a_split() {
        let one = WorkerConfig {
            shard: 0,
            shards: 1,
        };
        assert_eq!(share_condition(&one, "id"), "");
        let split = WorkerConfig {
            shard: 1,
            shards: 3,
        };
        assert_eq!(share_condition(&split, "id"), " AND ((id % 3) + 3) % 3 = 1");
    }
}
