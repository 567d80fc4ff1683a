//! The vantage-point tree of a similarity index on QuestDB (see
//! [`crate::store::vptree`]).
//!
//! As for the entries: no `DELETE` (a removed path is a row with leaf −1, which readers
//! skip; `DEDUP UPSERT` keeps the newest row of a job), and the binary values go as hex
//! text. A node's designated timestamp is its number (µs after the epoch).

use chrono::NaiveDateTime;
use futures_util::TryStreamExt;
use tokio_postgres::types::{ToSql, Type};

use super::index::QuestIndex;
use super::similarity::{hex, unhex};
use super::{insert_many, INSERT_CHUNK};
use crate::index::similarity::vptree::{NodeRow, Path, Vantage};
use crate::index::similarity::Key;
use crate::index::{datetime, micros};
use crate::store::vptree::{bytes_f32, bytes_f64, f32_bytes, f64_bytes};
use crate::store::StoreError;

fn q(what: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    StoreError::query(what)
}

fn unexpected(what: &str, detail: &str) -> StoreError {
    StoreError::Unexpected {
        what: what.to_string(),
        detail: detail.to_string(),
    }
}

const NODE_COLUMNS: &str = "ts, node, inside, outside, radius, vantage";
const NODE_TYPES: [Type; 6] = [
    Type::TIMESTAMP,
    Type::INT4,
    Type::INT4,
    Type::INT4,
    Type::FLOAT8,
    Type::VARCHAR,
];
const PATH_COLUMNS: &str = "start, id, leaf, distances";
const PATH_TYPES: [Type; 4] = [Type::TIMESTAMP, Type::INT4, Type::INT4, Type::VARCHAR];

impl QuestIndex {
    pub(crate) async fn create_tree_tables(
        &self,
        nodes: &str,
        paths: &str,
    ) -> Result<(), StoreError> {
        let what = format!("creating the tree tables `{nodes}`, `{paths}`");
        self.drop_tree_tables(nodes, paths).await?;
        self.client
            .batch_execute(&format!(
                r#"CREATE TABLE "{nodes}" (
                       ts TIMESTAMP, node INT, inside INT, outside INT, radius DOUBLE, vantage VARCHAR
                   ) TIMESTAMP(ts) PARTITION BY YEAR WAL DEDUP UPSERT KEYS(ts)"#
            ))
            .await
            .map_err(q(&what))?;
        self.client
            .batch_execute(&format!(
                r#"CREATE TABLE "{paths}" (
                       start TIMESTAMP, id INT, leaf INT, distances VARCHAR
                   ) TIMESTAMP(start) PARTITION BY YEAR WAL DEDUP UPSERT KEYS(start, id)"#
            ))
            .await
            .map_err(q(&what))
    }

    /// Multi-row `INSERT`s of `rows` (each `types.len()` parameters), then waits until
    /// the table has applied them.
    async fn insert_rows(
        &self,
        table: &str,
        columns: &str,
        types: &[Type],
        rows: &[Vec<&(dyn ToSql + Sync)>],
    ) -> Result<(), StoreError> {
        let what = format!("writing to `{table}`");
        for chunk in rows.chunks(INSERT_CHUNK) {
            let params: Vec<&(dyn ToSql + Sync)> = chunk.iter().flatten().copied().collect();
            insert_many(&self.client, table, columns, types, &params, &what).await?;
        }
        self.wait_wal(table).await
    }

    pub(crate) async fn write_tree_nodes(
        &self,
        table: &str,
        rows: &[NodeRow],
    ) -> Result<(), StoreError> {
        let values: Vec<(NaiveDateTime, i32, i32, i32, f64, String)> = rows
            .iter()
            .map(|r| {
                let v = r.vantage.as_ref();
                (
                    datetime(i64::from(r.id)),
                    r.id as i32,
                    v.map_or(-1, |v| v.inside as i32),
                    v.map_or(-1, |v| v.outside as i32),
                    v.map_or(0.0, |v| v.radius),
                    v.map_or(String::new(), |v| hex(&f64_bytes(&v.values))),
                )
            })
            .collect();
        let params: Vec<Vec<&(dyn ToSql + Sync)>> = values
            .iter()
            .map(|(a, b, c, d, e, f)| vec![a as &(dyn ToSql + Sync), b, c, d, e, f])
            .collect();
        self.insert_rows(table, NODE_COLUMNS, &NODE_TYPES, &params)
            .await
    }

    async fn insert_paths(
        &self,
        table: &str,
        rows: &[(NaiveDateTime, i32, i32, String)],
    ) -> Result<(), StoreError> {
        let params: Vec<Vec<&(dyn ToSql + Sync)>> = rows
            .iter()
            .map(|(a, b, c, d)| vec![a as &(dyn ToSql + Sync), b, c, d])
            .collect();
        self.insert_rows(table, PATH_COLUMNS, &PATH_TYPES, &params)
            .await
    }

    pub(crate) async fn write_tree_paths(
        &self,
        table: &str,
        paths: &[(Key, Path)],
    ) -> Result<(), StoreError> {
        let rows: Vec<_> = paths
            .iter()
            .map(|(k, p)| {
                (
                    datetime(k.start),
                    k.id,
                    p.leaf as i32,
                    hex(&f32_bytes(&p.distances)),
                )
            })
            .collect();
        self.insert_paths(table, &rows).await
    }

    pub(crate) async fn remove_tree_paths(
        &self,
        table: &str,
        keys: &[Key],
    ) -> Result<(), StoreError> {
        let rows: Vec<_> = keys
            .iter()
            .map(|k| (datetime(k.start), k.id, -1, String::new()))
            .collect();
        self.insert_paths(table, &rows).await
    }

    pub(crate) async fn load_tree_nodes(&self, table: &str) -> Result<Vec<NodeRow>, StoreError> {
        let what = format!("reading the nodes of `{table}`");
        self.wait_wal(table).await?;
        let rows = self
            .client
            .query(
                &format!(r#"SELECT node, inside, outside, radius, vantage FROM "{table}""#),
                &[],
            )
            .await
            .map_err(q(&what))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let int = |i: usize| -> Result<i32, StoreError> {
                Ok(r.try_get::<_, Option<i32>>(i)
                    .map_err(q(&what))?
                    .unwrap_or(-1))
            };
            let id = int(0)?;
            let text: Option<&str> = r.try_get(4).map_err(q(&what))?;
            let vantage = match text.filter(|t| !t.is_empty()) {
                None => None,
                Some(t) => {
                    let values = unhex(t)
                        .and_then(|b| bytes_f64(&b))
                        .ok_or_else(|| unexpected(&what, "a vantage point that is not hex"))?;
                    let radius: Option<f64> = r.try_get(3).map_err(q(&what))?;
                    Some(Vantage {
                        values,
                        radius: radius.unwrap_or(f64::NAN),
                        inside: int(1)?.max(0) as u32,
                        outside: int(2)?.max(0) as u32,
                    })
                }
            };
            out.push(NodeRow {
                id: id.max(0) as u32,
                vantage,
            });
        }
        Ok(out)
    }

    pub(crate) async fn load_tree_paths(
        &self,
        table: &str,
    ) -> Result<Vec<(Key, Path)>, StoreError> {
        let what = format!("reading the paths of `{table}`");
        self.wait_wal(table).await?;
        let rows = self
            .client
            .query_raw(
                &format!(r#"SELECT id, start, leaf, distances FROM "{table}" WHERE leaf >= 0"#),
                std::iter::empty::<i32>(),
            )
            .await
            .map_err(q(&what))?;
        let mut rows = std::pin::pin!(rows);
        let mut out = Vec::new();
        while let Some(r) = rows.try_next().await.map_err(q(&what))? {
            let id: Option<i32> = r.try_get(0).map_err(q(&what))?;
            let start: NaiveDateTime = r.try_get(1).map_err(q(&what))?;
            let leaf: Option<i32> = r.try_get(2).map_err(q(&what))?;
            let text: Option<&str> = r.try_get(3).map_err(q(&what))?;
            let distances = unhex(text.unwrap_or(""))
                .and_then(|b| bytes_f32(&b))
                .ok_or_else(|| unexpected(&what, "a path that is not hex"))?;
            out.push((
                Key {
                    id: id.unwrap_or(0),
                    start: micros(start),
                },
                Path {
                    leaf: leaf.unwrap_or(0).max(0) as u32,
                    distances,
                },
            ));
        }
        Ok(out)
    }

    pub(crate) async fn drop_tree_tables(
        &self,
        nodes: &str,
        paths: &str,
    ) -> Result<(), StoreError> {
        let what = format!("dropping the tree tables `{nodes}`, `{paths}`");
        for t in [nodes, paths] {
            self.client
                .batch_execute(&format!(r#"DROP TABLE IF EXISTS "{t}""#))
                .await
                .map_err(q(&what))?;
        }
        Ok(())
    }
}
