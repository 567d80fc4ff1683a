//! The sessions `recalcd serve` queries on: a pool of ready store connections.
//!
//! A pooled object is a whole [`Session`] — the data store and the index store, each
//! connected, dialect detected and session settings applied once — rather than a bare
//! `tokio_postgres::Client`: the stores own their client, and setting one up costs
//! several round trips that a per-request store would repeat. The pool is `deadpool`'s
//! managed pool (what `deadpool-postgres` is built on) with a [`Sessions`] manager.
//!
//! Nothing here writes: the index store is opened without creating its catalogue, and
//! the data store without QuestDB's line-protocol sender.

use std::time::Duration;

use deadpool::managed::{self, Metrics, RecycleResult};

use crate::config::{Config, IlpChoice};
use crate::store::index::IndexStore;
use crate::store::{self, AnyStore, Store, StoreError};

/// One viewer request's connections.
#[derive(Debug)]
pub struct Session {
    /// The data store (raw rows).
    pub data: AnyStore,
    /// The index store; `None` when no index is declared or its catalogue cannot be
    /// read (then searches, plots and similarity queries scan, and say so).
    pub index: Option<IndexStore>,
}

/// Makes [`Session`]s for the pool.
#[derive(Debug)]
pub struct Sessions {
    /// The configuration, with write-back switched off.
    config: Config,
}

impl Sessions {
    /// A manager for `config`'s stores.
    pub fn new(config: &Config) -> Sessions {
        let mut config = config.clone();
        // `serve` never writes: no line-protocol sender to QuestDB.
        config.database.questdb_ilp = IlpChoice::Off;
        Sessions { config }
    }
}

impl managed::Manager for Sessions {
    type Type = Session;
    type Error = StoreError;

    async fn create(&self) -> Result<Session, StoreError> {
        let data = store::connect(&self.config).await?;
        data.check_schema().await?;
        let index = if self.config.index.feature.is_empty()
            && self.config.index.similarity.is_empty()
        {
            None
        } else {
            match IndexStore::open(&self.config).await {
                Ok(ix) => match ix.catalogue().await {
                    Ok(_) => Some(ix),
                    Err(e) => {
                        tracing::warn!(error = %e, "the index catalogue cannot be read (no index built yet?): plots, searches and similarity queries scan");
                        None
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "the index store cannot be reached: plots, searches and similarity queries scan");
                    None
                }
            }
        };
        Ok(Session { data, index })
    }

    async fn recycle(
        &self,
        _session: &mut Session,
        _metrics: &Metrics,
    ) -> RecycleResult<StoreError> {
        // A broken connection shows itself in a request, which then takes the session
        // out of the pool (see `Api::give_back`); checking here would cost a round trip
        // per request.
        Ok(())
    }
}

/// The pool.
pub type Pool = managed::Pool<Sessions>;

/// A session taken from the pool.
pub type Pooled = managed::Object<Sessions>;

/// A pool of at most `size` sessions of `config`'s stores; a request waits at most
/// `wait` for one.
///
/// # Errors
/// Only when the pool cannot be built (never for a valid size).
pub fn pool(config: &Config, size: usize, wait: Duration) -> Result<Pool, managed::BuildError> {
    Pool::builder(Sessions::new(config))
        .max_size(size)
        .runtime(deadpool::Runtime::Tokio1)
        .wait_timeout(Some(wait))
        .create_timeout(Some(config.database.connect_timeout * 2))
        .build()
}
