//! The function look-up table: every name and alias of every function, case-insensitive,
//! built once.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::function::Function;
use super::functions;

/// Functions by name and alias, compared case-insensitively.
#[derive(Debug, Default)]
pub struct FunctionTable {
    /// Upper-cased name or alias → function.
    by_name: HashMap<String, &'static Function>,
}

static STANDARD: LazyLock<FunctionTable> =
    LazyLock::new(|| FunctionTable::from_functions(functions::all()));

impl FunctionTable {
    /// The language's functions ([`functions::all`]), built on first use.
    pub fn standard() -> &'static FunctionTable {
        &STANDARD
    }

    /// A table of the given functions; a later name or alias replaces an earlier one.
    pub fn from_functions(fns: impl IntoIterator<Item = &'static Function>) -> FunctionTable {
        let mut by_name = HashMap::new();
        for f in fns {
            by_name.insert(f.name.to_ascii_uppercase(), f);
            for alias in f.aliases {
                by_name.insert(alias.to_ascii_uppercase(), f);
            }
        }
        FunctionTable { by_name }
    }

    /// The function called `name` (a name or an alias, any case).
    pub fn get(&self, name: &str) -> Option<&'static Function> {
        if name.bytes().any(|b| b.is_ascii_lowercase()) {
            self.by_name.get(&name.to_ascii_uppercase()).copied()
        } else {
            self.by_name.get(name).copied()
        }
    }

    /// Every function, once each, sorted by name.
    pub fn functions(&self) -> Vec<&'static Function> {
        let mut v: Vec<&'static Function> = self.by_name.values().copied().collect();
        v.sort_by_key(|f| f.name);
        v.dedup_by(|a, b| std::ptr::eq(*a, *b));
        v
    }
}
