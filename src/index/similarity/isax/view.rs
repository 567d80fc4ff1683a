//! The tree as people and programs see it: the notebook's printout and a serde form.
//!
//! ```text
//! root
//! --->['0', '1']: 2 []
//! ------>['00', '1']: 1 ['7@2024-04-20T08:00:00']
//! ------>['01', '1']: 1 ['7@2024-04-21T08:00:00']
//! --->['1', '0']: 1 ['9@2024-04-20T08:00:00']
//! ```
//!
//! `root`, then every node in preorder: `'---' × depth + '>'`, its word (per segment the
//! symbol in binary at that segment's cardinality), `: `, the entries under it, and the
//! job keys at leaves (sorted), `[]` at internal nodes. Root children come in the order
//! of their words, a split's children bit 0 first.

use serde::Serialize;

use super::tree::{Kind, Tree};
use super::Key;

/// One node as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeView {
    /// Per segment the symbol in binary, as many digits as its bits.
    pub word: Vec<String>,
    /// Entries under the node.
    pub count: usize,
    /// `true` for a leaf.
    pub leaf: bool,
    /// The jobs at a leaf (sorted); empty at internal nodes.
    pub keys: Vec<String>,
    /// The children shown (none below the depth asked for).
    pub children: Vec<NodeView>,
}

/// The tree as shown, down to a depth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreeView {
    /// Entries in the tree.
    pub count: usize,
    /// Segments per word.
    pub word_length: usize,
    /// The root children's cardinality.
    pub cardinality: u16,
    /// The root's children.
    pub children: Vec<NodeView>,
}

impl Tree {
    /// The tree down to `max_depth` (root children are depth 1; `None`: all), job keys
    /// written by `key`.
    pub fn view(&self, max_depth: Option<usize>, key: &dyn Fn(&Key) -> String) -> TreeView {
        let children = self
            .root
            .values()
            .filter(|&&n| self.nodes[n as usize].count > 0)
            .map(|&n| self.node_view(n, 1, max_depth, key))
            .collect();
        TreeView {
            count: self.len(),
            word_length: self.params.word_length,
            cardinality: self.params.cardinality,
            children,
        }
    }

    fn node_view(
        &self,
        id: u32,
        depth: usize,
        max_depth: Option<usize>,
        key: &dyn Fn(&Key) -> String,
    ) -> NodeView {
        let node = &self.nodes[id as usize];
        let word = node
            .symbols
            .iter()
            .zip(node.bits.iter())
            .map(|(&s, &b)| format!("{:0width$b}", s, width = usize::from(b)))
            .collect();
        let (leaf, keys, children) = match &node.kind {
            Kind::Leaf { keys, .. } => {
                let mut sorted = keys.clone();
                sorted.sort_unstable();
                (true, sorted.iter().map(key).collect(), Vec::new())
            }
            Kind::Internal { children, .. } => {
                let shown = if max_depth.is_some_and(|m| depth >= m) {
                    Vec::new()
                } else {
                    children
                        .iter()
                        .map(|&c| self.node_view(c, depth + 1, max_depth, key))
                        .collect()
                };
                (false, Vec::new(), shown)
            }
        };
        NodeView {
            word,
            count: node.count,
            leaf,
            keys,
            children,
        }
    }
}

/// `['a', 'b']`, as Python prints a list of strings.
fn py_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
    format!("[{}]", quoted.join(", "))
}

impl TreeView {
    /// The notebook's printout: `root`, then one line per node (see the module docs).
    pub fn text(&self) -> String {
        let mut out = String::from("root\n");
        for c in &self.children {
            c.write(1, &mut out);
        }
        out
    }
}

impl NodeView {
    fn write(&self, depth: usize, out: &mut String) {
        out.push_str(&"---".repeat(depth));
        out.push('>');
        out.push_str(&py_list(&self.word));
        out.push_str(&format!(": {} ", self.count));
        out.push_str(&py_list(&self.keys));
        out.push('\n');
        for c in &self.children {
            c.write(depth + 1, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::IsaxParams;
    use super::*;

    fn key(i: i64) -> Key {
        Key { id: 7, start: i }
    }

    #[test]
    fn the_printout_is_the_notebooks() {
        let params = IsaxParams::new(8, 2, 2, 2, "round-robin").unwrap();
        let mut tree = Tree::new(params);
        // Three in root child ['1', '0'] (split on segment 0: '10' and '11'), one in ['0', '1'].
        tree.insert(key(1), &[0b1000_0000, 0b0100_0000]);
        tree.insert(key(2), &[0b1100_0000, 0b0100_0000]);
        tree.insert(key(3), &[0b1100_0001, 0b0000_0000]);
        tree.insert(key(4), &[0b0100_0000, 0b1000_0000]);
        let show = |k: &Key| format!("ts-{}", k.start);
        let text = tree.view(None, &show).text();
        assert_eq!(
            text,
            "root\n\
             --->['0', '1']: 1 ['ts-4']\n\
             --->['1', '0']: 3 []\n\
             ------>['10', '0']: 1 ['ts-1']\n\
             ------>['11', '0']: 2 ['ts-2', 'ts-3']\n"
        );
        let top = tree.view(Some(1), &show);
        assert_eq!(
            top.text(),
            "root\n--->['0', '1']: 1 ['ts-4']\n--->['1', '0']: 3 []\n"
        );
        let json = serde_json::to_value(&top).unwrap();
        assert_eq!(json["count"], 4);
        assert_eq!(json["children"][1]["word"][0], "1");
        assert_eq!(json["children"][1]["leaf"], false);
    }
}
