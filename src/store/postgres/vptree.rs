//! The vantage-point tree of a similarity index on PostgreSQL (see
//! [`crate::store::vptree`]).

use chrono::NaiveDateTime;
use futures_util::TryStreamExt;

use super::index::PgIndex;
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

impl PgIndex {
    pub(crate) async fn create_tree_tables(
        &self,
        nodes: &str,
        paths: &str,
    ) -> Result<(), StoreError> {
        let sql = format!(
            r#"DROP TABLE IF EXISTS "{nodes}";
               DROP TABLE IF EXISTS "{paths}";
               CREATE TABLE "{nodes}" (
                   node    integer PRIMARY KEY,
                   inside  integer,
                   outside integer,
                   radius  double precision,
                   vantage bytea);
               CREATE TABLE "{paths}" (
                   id        integer   NOT NULL,
                   start     timestamp NOT NULL,
                   leaf      integer   NOT NULL,
                   distances bytea     NOT NULL,
                   PRIMARY KEY (id, start))"#
        );
        self.client
            .batch_execute(&sql)
            .await
            .map_err(q(format!("creating the tree tables `{nodes}`, `{paths}`")))
    }

    pub(crate) async fn write_tree_nodes(
        &self,
        table: &str,
        rows: &[NodeRow],
    ) -> Result<(), StoreError> {
        let what = format!("writing the nodes of `{table}`");
        let sql = format!(
            r#"INSERT INTO "{table}" (node, inside, outside, radius, vantage)
               SELECT * FROM unnest($1::int[], $2::int[], $3::int[], $4::float8[], $5::bytea[])"#
        );
        for chunk in rows.chunks(2_000) {
            let node: Vec<i32> = chunk.iter().map(|r| r.id as i32).collect();
            let field = |f: fn(&Vantage) -> i32| -> Vec<Option<i32>> {
                chunk.iter().map(|r| r.vantage.as_ref().map(f)).collect()
            };
            let inside = field(|v| v.inside as i32);
            let outside = field(|v| v.outside as i32);
            let radius: Vec<Option<f64>> = chunk
                .iter()
                .map(|r| r.vantage.as_ref().map(|v| v.radius))
                .collect();
            let vantage: Vec<Option<Vec<u8>>> = chunk
                .iter()
                .map(|r| r.vantage.as_ref().map(|v| f64_bytes(&v.values)))
                .collect();
            self.client
                .execute(&sql, &[&node, &inside, &outside, &radius, &vantage])
                .await
                .map_err(q(&what))?;
        }
        Ok(())
    }

    pub(crate) async fn write_tree_paths(
        &self,
        table: &str,
        paths: &[(Key, Path)],
    ) -> Result<(), StoreError> {
        let what = format!("writing the paths of `{table}`");
        let sql = format!(
            r#"INSERT INTO "{table}" (id, start, leaf, distances)
               SELECT * FROM unnest($1::int[], $2::timestamp[], $3::int[], $4::bytea[])
               ON CONFLICT (id, start) DO UPDATE SET
                   leaf = EXCLUDED.leaf, distances = EXCLUDED.distances"#
        );
        for chunk in paths.chunks(20_000) {
            let id: Vec<i32> = chunk.iter().map(|(k, _)| k.id).collect();
            let start: Vec<NaiveDateTime> = chunk.iter().map(|(k, _)| datetime(k.start)).collect();
            let leaf: Vec<i32> = chunk.iter().map(|(_, p)| p.leaf as i32).collect();
            let distances: Vec<Vec<u8>> =
                chunk.iter().map(|(_, p)| f32_bytes(&p.distances)).collect();
            self.client
                .execute(&sql, &[&id, &start, &leaf, &distances])
                .await
                .map_err(q(&what))?;
        }
        Ok(())
    }

    pub(crate) async fn remove_tree_paths(
        &self,
        table: &str,
        keys: &[Key],
    ) -> Result<(), StoreError> {
        let id: Vec<i32> = keys.iter().map(|k| k.id).collect();
        let start: Vec<NaiveDateTime> = keys.iter().map(|k| datetime(k.start)).collect();
        self.client
            .execute(
                &format!(
                    r#"DELETE FROM "{table}" t USING unnest($1::int[], $2::timestamp[]) k(id, start)
                        WHERE t.id = k.id AND t.start = k.start"#
                ),
                &[&id, &start],
            )
            .await
            .map_err(q(format!("removing paths from `{table}`")))?;
        Ok(())
    }

    pub(crate) async fn load_tree_nodes(&self, table: &str) -> Result<Vec<NodeRow>, StoreError> {
        let what = format!("reading the nodes of `{table}`");
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
            let id: i32 = r.try_get(0).map_err(q(&what))?;
            let vantage: Option<&[u8]> = r.try_get(4).map_err(q(&what))?;
            let vantage = match vantage {
                None => None,
                Some(bytes) => {
                    let inside: Option<i32> = r.try_get(1).map_err(q(&what))?;
                    let outside: Option<i32> = r.try_get(2).map_err(q(&what))?;
                    let radius: Option<f64> = r.try_get(3).map_err(q(&what))?;
                    let (Some(inside), Some(outside), Some(radius), Some(values)) =
                        (inside, outside, radius, bytes_f64(bytes))
                    else {
                        return Err(unexpected(&what, "an inner node without its fields"));
                    };
                    Some(Vantage {
                        values,
                        radius,
                        inside: inside.max(0) as u32,
                        outside: outside.max(0) as u32,
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
        let rows = self
            .client
            .query_raw(
                &format!(r#"SELECT id, start, leaf, distances FROM "{table}""#),
                std::iter::empty::<i32>(),
            )
            .await
            .map_err(q(&what))?;
        let mut rows = std::pin::pin!(rows);
        let mut out = Vec::new();
        while let Some(r) = rows.try_next().await.map_err(q(&what))? {
            let start: NaiveDateTime = r.try_get(1).map_err(q(&what))?;
            let leaf: i32 = r.try_get(2).map_err(q(&what))?;
            let bytes: &[u8] = r.try_get(3).map_err(q(&what))?;
            let distances =
                bytes_f32(bytes).ok_or_else(|| unexpected(&what, "a path of odd length"))?;
            out.push((
                Key {
                    id: r.try_get(0).map_err(q(&what))?,
                    start: micros(start),
                },
                Path {
                    leaf: leaf.max(0) as u32,
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
        self.client
            .batch_execute(&format!(
                r#"DROP TABLE IF EXISTS "{nodes}"; DROP TABLE IF EXISTS "{paths}""#
            ))
            .await
            .map_err(q(format!("dropping the tree tables `{nodes}`, `{paths}`")))
    }
}
