//! The iSAX tree: root children at the base cardinality, binary splits of full leaves
//! on one segment, entries keyed by job.

use std::collections::{BTreeMap, HashMap};

use super::{IsaxParams, Key, Split, SYMBOL_BITS};

/// No parent: a root child.
pub(super) const NONE: u32 = u32::MAX;

/// One node: its word (a symbol and its bits per segment) and what lies under it.
#[derive(Debug, Clone)]
pub(super) struct Node {
    /// The parent node, [`NONE`] for a root child (to keep counts on removal).
    pub(super) parent: u32,
    /// Per segment, the symbol at `bits[i]` bits.
    pub(super) symbols: Box<[u8]>,
    /// Per segment, the bits of its symbol (the base bits at the root's children).
    pub(super) bits: Box<[u8]>,
    /// Entries under this node.
    pub(super) count: usize,
    /// The segment the round-robin policy tries first when this leaf splits.
    next_segment: usize,
    /// Leaf or internal.
    pub(super) kind: Kind,
}

/// A node's contents.
#[derive(Debug, Clone)]
pub(super) enum Kind {
    /// Entries: their keys and their full words (`word_length` bytes each, flat).
    Leaf { keys: Vec<Key>, words: Vec<u8> },
    /// Split on `segment`: children for its next bit 0 and 1.
    Internal { segment: usize, children: [u32; 2] },
}

/// An iSAX tree over job words (see the module docs).
#[derive(Debug, Clone)]
pub struct Tree {
    pub(super) params: IsaxParams,
    pub(super) nodes: Vec<Node>,
    /// The root's children by their base word.
    pub(super) root: BTreeMap<Box<[u8]>, u32>,
    /// The leaf holding each job, for removal.
    leaf_of: HashMap<Key, u32>,
}

impl Tree {
    /// An empty tree.
    pub fn new(params: IsaxParams) -> Tree {
        Tree {
            params,
            nodes: Vec::new(),
            root: BTreeMap::new(),
            leaf_of: HashMap::new(),
        }
    }

    /// The parameters.
    pub fn params(&self) -> IsaxParams {
        self.params
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.leaf_of.len()
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.leaf_of.is_empty()
    }

    /// Nodes in the tree (internal and leaves, the empty ones too).
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// The full word stored for `key`, if held.
    pub fn word(&self, key: &Key) -> Option<&[u8]> {
        let leaf = *self.leaf_of.get(key)?;
        let Kind::Leaf { keys, words } = &self.nodes[leaf as usize].kind else {
            return None;
        };
        let w = self.params.word_length;
        let i = keys.iter().position(|k| k == key)?;
        Some(&words[i * w..(i + 1) * w])
    }

    /// Adds `key` with its full-resolution `word` (`word_length` 8-bit symbols),
    /// replacing the entry it had. A word of another length is ignored (returns false).
    pub fn insert(&mut self, key: Key, word: &[u8]) -> bool {
        let w = self.params.word_length;
        if word.len() != w {
            return false;
        }
        self.remove(&key);
        let base = self.params.base_bits();
        let base_word: Box<[u8]> = word.iter().map(|s| s >> (SYMBOL_BITS - base)).collect();
        let mut at = match self.root.get(&base_word) {
            Some(&n) => n,
            None => {
                let n = self.push_node(Node {
                    parent: NONE,
                    symbols: base_word.clone(),
                    bits: vec![base; w].into_boxed_slice(),
                    count: 0,
                    next_segment: 0,
                    kind: Kind::Leaf {
                        keys: Vec::new(),
                        words: Vec::new(),
                    },
                });
                self.root.insert(base_word, n);
                n
            }
        };
        loop {
            let node = &mut self.nodes[at as usize];
            node.count += 1;
            match &mut node.kind {
                Kind::Internal { segment, children } => {
                    let bit = next_bit(word[*segment], node.bits[*segment]);
                    at = children[usize::from(bit)];
                }
                Kind::Leaf { keys, words } => {
                    keys.push(key);
                    words.extend_from_slice(word);
                    break;
                }
            }
        }
        self.leaf_of.insert(key, at);
        self.split(at);
        true
    }

    /// Removes the entry of `key`; whether it was held. Other entries — a job with the
    /// same series among them — stay.
    pub fn remove(&mut self, key: &Key) -> bool {
        let Some(leaf) = self.leaf_of.remove(key) else {
            return false;
        };
        let w = self.params.word_length;
        if let Kind::Leaf { keys, words } = &mut self.nodes[leaf as usize].kind {
            if let Some(i) = keys.iter().position(|k| k == key) {
                let last = keys.len() - 1;
                keys.swap_remove(i);
                if i != last {
                    words.copy_within(last * w..(last + 1) * w, i * w);
                }
                words.truncate(last * w);
            }
        }
        let mut at = leaf;
        let mut top = leaf;
        while at != NONE {
            let node = &mut self.nodes[at as usize];
            node.count -= 1;
            top = at;
            at = node.parent;
        }
        // An emptied root child goes (its nodes stay unused in the arena).
        if self.nodes[top as usize].count == 0 {
            let word = self.nodes[top as usize].symbols.clone();
            self.root.remove(&word);
        }
        true
    }

    fn push_node(&mut self, node: Node) -> u32 {
        self.nodes.push(node);
        (self.nodes.len() - 1) as u32
    }

    /// Splits `leaf` while it (or a child it makes) holds more than the capacity and
    /// its entries can be told apart.
    fn split(&mut self, leaf: u32) {
        let w = self.params.word_length;
        let mut todo = vec![leaf];
        while let Some(id) = todo.pop() {
            let node = &self.nodes[id as usize];
            let Kind::Leaf { keys, words } = &node.kind else {
                continue;
            };
            if keys.len() <= self.params.leaf_capacity {
                continue;
            }
            let Some(segment) = choose(self.params.split, node, words, w) else {
                continue;
            };
            let (keys, words) = match std::mem::replace(
                &mut self.nodes[id as usize].kind,
                Kind::Internal {
                    segment,
                    children: [NONE, NONE],
                },
            ) {
                Kind::Leaf { keys, words } => (keys, words),
                Kind::Internal { .. } => continue,
            };
            let node = &self.nodes[id as usize];
            let bits = node.bits[segment];
            let mut parts: [(Vec<Key>, Vec<u8>); 2] = Default::default();
            for (k, word) in keys.into_iter().zip(words.chunks_exact(w)) {
                let b = usize::from(next_bit(word[segment], bits));
                parts[b].0.push(k);
                parts[b].1.extend_from_slice(word);
            }
            let mut children = [NONE, NONE];
            for (b, (keys, words)) in parts.into_iter().enumerate() {
                let node = &self.nodes[id as usize];
                let mut symbols = node.symbols.clone();
                let mut child_bits = node.bits.clone();
                symbols[segment] = (symbols[segment] << 1) | b as u8;
                child_bits[segment] = bits + 1;
                let count = keys.len();
                let child = self.push_node(Node {
                    parent: id,
                    symbols,
                    bits: child_bits,
                    count,
                    next_segment: (segment + 1) % w,
                    kind: Kind::Leaf {
                        keys: Vec::new(),
                        words: Vec::new(),
                    },
                });
                for k in &keys {
                    self.leaf_of.insert(*k, child);
                }
                self.nodes[child as usize].kind = Kind::Leaf { keys, words };
                children[b] = child;
                todo.push(child);
            }
            self.nodes[id as usize].kind = Kind::Internal { segment, children };
        }
    }

    /// Checks the invariants (for tests): every entry in the leaf `leaf_of` names, once;
    /// counts are the entries under each node; each entry's word is inside its leaf's.
    ///
    /// # Errors
    /// A description of the first violation.
    pub fn check(&self) -> Result<(), String> {
        let w = self.params.word_length;
        let mut seen = 0;
        for &n in self.root.values() {
            seen += self.check_node(n, w)?;
        }
        if seen != self.leaf_of.len() {
            return Err(format!(
                "{seen} entries in the tree, {} keys",
                self.leaf_of.len()
            ));
        }
        Ok(())
    }

    fn check_node(&self, id: u32, w: usize) -> Result<usize, String> {
        let node = &self.nodes[id as usize];
        let n = match &node.kind {
            Kind::Leaf { keys, words } => {
                if words.len() != keys.len() * w {
                    return Err(format!(
                        "leaf {id}: {} keys, {} word bytes",
                        keys.len(),
                        words.len()
                    ));
                }
                for (k, word) in keys.iter().zip(words.chunks_exact(w)) {
                    if self.leaf_of.get(k) != Some(&id) {
                        return Err(format!("{k:?} is in leaf {id} but indexed elsewhere"));
                    }
                    for (i, &s) in word.iter().enumerate() {
                        if s >> (SYMBOL_BITS - node.bits[i]) != node.symbols[i] {
                            return Err(format!("{k:?}: segment {i} outside leaf {id}'s word"));
                        }
                    }
                }
                let splittable = node.bits.iter().any(|&b| b < SYMBOL_BITS)
                    && words.chunks_exact(w).any(|x| x != &words[..w]);
                if keys.len() > self.params.leaf_capacity && splittable {
                    return Err(format!("leaf {id} holds {} entries", keys.len()));
                }
                keys.len()
            }
            Kind::Internal { children, .. } => {
                let mut n = 0;
                for &c in children {
                    if self.nodes[c as usize].parent != id {
                        return Err(format!("node {c}'s parent is not {id}"));
                    }
                    n += self.check_node(c, w)?;
                }
                n
            }
        };
        if n != node.count {
            return Err(format!("node {id} counts {} but holds {n}", node.count));
        }
        Ok(n)
    }
}

/// The bit after the first `bits` of an 8-bit symbol.
pub(super) fn next_bit(symbol: u8, bits: u8) -> u8 {
    (symbol >> (SYMBOL_BITS - 1 - bits)) & 1
}

/// The segment a full leaf splits on, or `None` when its entries cannot be told apart.
fn choose(policy: Split, node: &Node, words: &[u8], w: usize) -> Option<usize> {
    let first = words.get(..w)?;
    let differs = |i: usize| words.chunks_exact(w).any(|x| x[i] != first[i]);
    let open = |i: usize| node.bits[i] < SYMBOL_BITS;
    if !(0..w).any(|i| open(i) && differs(i)) {
        return None;
    }
    match policy {
        Split::Balanced => {
            let n = words.len() / w;
            (0..w).filter(|&i| open(i)).min_by_key(|&i| {
                let ones = words
                    .chunks_exact(w)
                    .filter(|x| next_bit(x[i], node.bits[i]) == 1)
                    .count();
                // Most even first; among equals one whose symbols differ, then the
                // lowest segment.
                ((2 * ones).abs_diff(n), !differs(i), i)
            })
        }
        Split::RoundRobin => (0..w)
            .map(|j| (node.next_segment + j) % w)
            .find(|&i| open(i) && differs(i)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(i: usize) -> Key {
        Key {
            id: (i % 7) as i32,
            start: i as i64,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn inserts_and_removes_keep_the_invariants(
            ops in prop::collection::vec((0usize..60, any::<bool>(), prop::collection::vec(0u8..=255, 4)), 1..300),
            capacity in 1usize..6,
            card in prop::sample::select(vec![2i64, 4, 16]),
            round_robin in any::<bool>(),
            dup in any::<bool>(),
        ) {
            let split = if round_robin { "round-robin" } else { "balanced" };
            let params = IsaxParams::new(16, 4, card, capacity as i64, split).unwrap();
            let mut tree = Tree::new(params);
            let mut want: HashMap<Key, Vec<u8>> = HashMap::new();
            for (i, insert, word) in ops {
                // Few distinct words when `dup`: many entries with one value.
                let word: Vec<u8> = if dup { word.iter().map(|s| s & 0xC0).collect() } else { word };
                if insert {
                    prop_assert!(tree.insert(key(i), &word));
                    want.insert(key(i), word);
                } else {
                    prop_assert_eq!(tree.remove(&key(i)), want.remove(&key(i)).is_some());
                }
                tree.check().map_err(TestCaseError::fail)?;
            }
            prop_assert_eq!(tree.len(), want.len());
            for (k, word) in &want {
                prop_assert_eq!(tree.word(k), Some(word.as_slice()));
            }
        }
    }

    #[test]
    fn identical_words_grow_a_leaf_instead_of_splitting_forever() {
        let params = IsaxParams::new(8, 2, 2, 2, "balanced").unwrap();
        let mut tree = Tree::new(params);
        for i in 0..10 {
            tree.insert(key(i), &[200, 17]);
        }
        tree.check().unwrap();
        assert_eq!(tree.len(), 10);
        assert_eq!(tree.nodes(), 1);
        // One more, different in segment 1 at its last bit: splits until apart.
        tree.insert(key(10), &[200, 16]);
        tree.check().unwrap();
        assert!(tree.remove(&key(3)));
        assert!(!tree.remove(&key(3)));
        assert_eq!(tree.len(), 10);
        tree.check().unwrap();
    }
}
