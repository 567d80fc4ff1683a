//! Where the vantage-point tree of a similarity index is kept (for `--metric xcorr`):
//! two tables beside the index's entry table, named by [`tree_tables`].
//!
//! - **nodes**: one row per node `(node, inside, outside, radius, vantage)`; an inner
//!   node's vantage point is a copy of a standardised series (f64, little-endian), so it
//!   survives its job being changed or deleted; a leaf has no vantage point.
//! - **paths**: one row per job `(id, start, leaf, distances)`: its leaf and its
//!   distances to the vantage points on its path (f32, little-endian). A leaf's jobs are
//!   the paths ending there, so an insert or a removal writes one path row and no node.
//!
//! Both are written by a build, the paths kept by the write-back maintenance, both
//! dropped with the index. Every statement lives in the dialect modules
//! (`postgres/vptree.rs`, `questdb/vptree.rs`).

use super::index::{Built, IndexStore};
use super::StoreError;
use crate::index::similarity::vptree::{NodeRow, Path};
use crate::index::similarity::Key;

/// The node and path tables of the tree of the index whose entry table is `table`:
/// `{table}_vpnodes` and `{table}_vppaths`, or, when that would pass PostgreSQL's 63
/// characters, the start of `table` and a hash of all of it.
pub fn tree_tables(table: &str) -> (String, String) {
    let name = |part: &str| {
        let plain = format!("{table}_{part}");
        if plain.len() <= 63 {
            return plain;
        }
        // FNV-1a: stable across versions and platforms.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in table.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let suffix = format!("_{:08x}_{part}", h as u32);
        let cut: String = table.chars().take(63 - suffix.len()).collect();
        format!("{cut}{suffix}")
    };
    (name("vpnodes"), name("vppaths"))
}

/// `values` as little-endian bytes.
pub(crate) fn f64_bytes(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Little-endian bytes as f64 values (`None` for a length not a multiple of 8).
pub(crate) fn bytes_f64(bytes: &[u8]) -> Option<Vec<f64>> {
    bytes.len().is_multiple_of(8).then(|| {
        bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect()
    })
}

/// `values` as little-endian bytes.
pub(crate) fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Little-endian bytes as f32 values (`None` for a length not a multiple of 4).
pub(crate) fn bytes_f32(bytes: &[u8]) -> Option<Vec<f32>> {
    bytes.len().is_multiple_of(4).then(|| {
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    })
}

/// A tree as stored: its nodes and every job's path.
pub type StoredTree = (Vec<NodeRow>, Vec<(Key, Path)>);

impl IndexStore {
    /// Replaces the tree of `built` by these nodes and paths.
    ///
    /// # Errors
    /// [`StoreError`] if a statement fails.
    pub async fn write_tree(
        &mut self,
        built: &Built,
        nodes: &[NodeRow],
        paths: &[(Key, Path)],
    ) -> Result<(), StoreError> {
        let (n, p) = tree_tables(&built.bucket_table);
        index_dispatch!(self, s => s.create_tree_tables(&n, &p).await)?;
        index_dispatch!(self, s => s.write_tree_nodes(&n, nodes).await)?;
        self.write_paths(built, paths).await
    }

    /// Writes these jobs' paths (a job's path replaces the one stored).
    ///
    /// # Errors
    /// [`StoreError`] if a statement fails.
    pub async fn write_paths(
        &mut self,
        built: &Built,
        paths: &[(Key, Path)],
    ) -> Result<(), StoreError> {
        if paths.is_empty() {
            return Ok(());
        }
        let (_, p) = tree_tables(&built.bucket_table);
        index_dispatch!(self, s => s.write_tree_paths(&p, paths).await)
    }

    /// Removes these jobs' paths.
    ///
    /// # Errors
    /// [`StoreError`] if a statement fails.
    pub async fn remove_paths(&mut self, built: &Built, keys: &[Key]) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        let (_, p) = tree_tables(&built.bucket_table);
        index_dispatch!(self, s => s.remove_tree_paths(&p, keys).await)
    }

    /// The stored tree of `built`.
    ///
    /// # Errors
    /// [`StoreError`] if a query fails or a row cannot be read.
    pub async fn load_tree(&self, built: &Built) -> Result<StoredTree, StoreError> {
        let (n, p) = tree_tables(&built.bucket_table);
        let nodes = index_dispatch!(self, s => s.load_tree_nodes(&n).await)?;
        let paths = index_dispatch!(self, s => s.load_tree_paths(&p).await)?;
        Ok((nodes, paths))
    }

    /// The stored nodes of the tree of `built` (enough to insert jobs).
    ///
    /// # Errors
    /// [`StoreError`] if the query fails or a row cannot be read.
    pub async fn load_tree_nodes(&self, built: &Built) -> Result<Vec<NodeRow>, StoreError> {
        let (n, _) = tree_tables(&built.bucket_table);
        index_dispatch!(self, s => s.load_tree_nodes(&n).await)
    }

    /// Drops the tree's tables (if any).
    ///
    /// # Errors
    /// [`StoreError`] if a statement fails.
    pub async fn drop_tree(&mut self, built: &Built) -> Result<(), StoreError> {
        let (n, p) = tree_tables(&built.bucket_table);
        index_dispatch!(self, s => s.drop_tree_tables(&n, &p).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_tables_fit_and_stay_apart() {
        let (n, p) = tree_tables("idx_similarity_tmp");
        assert_eq!(
            (n.as_str(), p.as_str()),
            ("idx_similarity_tmp_vpnodes", "idx_similarity_tmp_vppaths")
        );
        let long = "x".repeat(60);
        let (a, b) = tree_tables(&format!("{long}a"));
        let (c, _) = tree_tables(&format!("{long}b"));
        assert!(a.len() <= 63 && b.len() <= 63 && a != c && a != b);
    }

    #[test]
    fn values_round_trip_their_bytes() {
        let v = [1.5, -2.25, f64::MIN_POSITIVE];
        assert_eq!(bytes_f64(&f64_bytes(&v)).unwrap(), v);
        let w = [0.5f32, 3.0];
        assert_eq!(bytes_f32(&f32_bytes(&w)).unwrap(), w);
        assert!(bytes_f64(&[0; 7]).is_none() && bytes_f32(&[0; 3]).is_none());
    }
}
