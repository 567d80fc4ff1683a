//! recalcd recalculates derived time-series values inside QuestDB and PostgreSQL.
//!
//! The crate is layered so that pure things stay pure:
//!
//! - [`lang`] — the equation language: parser, checker/compiler, value model and
//!   function library. No I/O, no async.
//! - [`model`] — the row model (levels, rows and their keys and versions, constants,
//!   equations, error records) that the engine and the store share. Plain data.
//! - [`engine`] — the recalculation of jobs, days and the level fixpoint, in memory, on
//!   the [`model`]'s rows. Knows nothing of the store or the configuration.
//! - [`store`] — the one storage interface and its dialects (PostgreSQL, QuestDB):
//!   migrations, polling, loading and batched write-back.
//! - [`index`] — the indexes over recalculated channels: pure algorithms (buckets,
//!   features, conditions, search plans), no I/O.
//! - [`chart`] — line charts of M4 columns without antialiasing (PNG and SVG), pixel-exact.
//! - [`duration`] — durations with a unit (`250ms`, `5s`, `1h`): the one parser.
//! - [`conjoined`] — the codec of the `conjoined` column (`name=value;…`).
//! - [`config`] — configuration: the TOML mirror and the validated [`config::Config`].
#![deny(missing_docs)]

pub mod chart;
pub mod config;
pub mod conjoined;
pub mod demo;
pub mod duration;
pub mod engine;
pub mod index;
pub mod lang;
pub mod model;
pub mod service;
pub mod store;

#[cfg(test)]
mod layering {
    use std::path::Path;

    /// The files of `dir` (recursively) ending in `.rs`.
    fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("a source folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The pure layers (the language, the row model, the engine, the codec) know
    /// nothing of the store, the configuration, the service or tokio: every arrow
    /// between layers points one way.
    #[test]
    fn pure_layers_import_no_io_layer() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![
            src.join("model.rs"),
            src.join("conjoined.rs"),
            src.join("duration.rs"),
        ];
        sources(&src.join("lang"), &mut files);
        sources(&src.join("engine"), &mut files);
        sources(&src.join("index"), &mut files);
        sources(&src.join("chart"), &mut files);
        assert!(files.len() > 10, "{files:?}");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("a source file");
            for layer in ["crate::store", "crate::config", "crate::service", "tokio"] {
                assert!(!text.contains(layer), "{} mentions {layer}", file.display());
            }
        }
    }
}
