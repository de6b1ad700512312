//! The `Warehouse` port on embedded DuckDB.
//!
//! DuckDB calls block, so every call goes through [`DuckDbWarehouse::run`]: a semaphore permit, the caller's
//! tracing span, `spawn_blocking`, owned data back. One `Database`, connections handed out by `try_clone`.

mod errors;
mod extensions;
mod pool;
mod query;
mod sources;
mod types;

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use pluto_duck_application::ports::{QueryRequest, QueryStream, Warehouse, WarehouseError};
use pluto_duck_domain::ExtensionStatus;
use tokio_util::sync::CancellationToken;

pub use extensions::{install_hint, REQUIRED_EXTENSIONS};
use pool::Pool;
pub use types::duckdb_type_name;

/// The DuckDB release this build links; extension files must match it.
pub const DUCKDB_VERSION: &str = "v1.5.5";

#[derive(Debug, Clone)]
pub struct DuckDbConfig {
    /// `None` opens an in-memory database.
    pub path: Option<PathBuf>,
    /// Holds `v1.5.5/linux_amd64/<name>.duckdb_extension`.
    pub extension_directory: PathBuf,
    pub threads: Option<u32>,
    /// DuckDB syntax, e.g. `4GB` or `50%`.
    pub memory_limit: Option<String>,
    pub max_connections: usize,
}

pub struct DuckDbWarehouse {
    pub(crate) pool: Pool,
    pub(crate) extension_directory: PathBuf,
}

impl DuckDbWarehouse {
    /// Opens (creating if needed) the database. Fails with a clear message when the file is locked by another
    /// process: DuckDB allows one writer process per file.
    pub fn open(config: &DuckDbConfig) -> Result<Self, WarehouseError> {
        let pool = Pool::open(config)?;
        Ok(Self {
            pool,
            extension_directory: config.extension_directory.clone(),
        })
    }

    pub fn extension_directory(&self) -> &Path {
        &self.extension_directory
    }

    /// Runs statements that return nothing. For start-up work and tests; queries go through the port.
    pub async fn execute_batch(&self, sql: &str) -> Result<(), WarehouseError> {
        let sql = sql.to_owned();
        let dir = self.extension_directory.clone();
        self.pool
            .run(move |conn| {
                conn.execute_batch(&sql)
                    .map_err(|e| errors::map_duckdb_error(&e, &sql, 0, &dir))
            })
            .await
    }

    /// First column of the first row as text; for diagnostics and tests.
    pub async fn query_scalar(&self, sql: &str) -> Result<Option<String>, WarehouseError> {
        let sql = sql.to_owned();
        let dir = self.extension_directory.clone();
        self.pool
            .run(move |conn| {
                let map = |e: duckdb::Error| errors::map_duckdb_error(&e, &sql, 0, &dir);
                let mut stmt = conn.prepare(&sql).map_err(map)?;
                let mut rows = stmt.query([]).map_err(map)?;
                match rows.next().map_err(map)? {
                    Some(row) => {
                        let v: duckdb::types::Value = row.get(0).map_err(map)?;
                        Ok(match v {
                            duckdb::types::Value::Null => None,
                            duckdb::types::Value::Text(s) => Some(s),
                            other => Some(format!("{other:?}")),
                        })
                    }
                    None => Ok(None),
                }
            })
            .await
    }
}

#[async_trait]
impl Warehouse for DuckDbWarehouse {
    async fn version(&self) -> Result<String, WarehouseError> {
        self.pool
            .run(|conn| {
                conn.query_row("SELECT library_version FROM pragma_version()", [], |r| r.get(0))
                    .map_err(|e| WarehouseError::Internal(e.to_string()))
            })
            .await
    }

    async fn extensions(&self) -> Result<Vec<ExtensionStatus>, WarehouseError> {
        let dir = self.extension_directory.clone();
        self.pool.run(move |conn| extensions::status(conn, &dir)).await
    }

    async fn query(&self, request: QueryRequest, cancel: CancellationToken) -> Result<QueryStream, WarehouseError> {
        let (meta_tx, meta_rx) = tokio::sync::oneshot::channel();
        let (tx, rx) = query::channel();
        let plan = query::Plan {
            request,
            cancel: cancel.clone(),
            extension_directory: self.extension_directory.clone(),
        };
        let pool = self.pool.clone();
        let runtime = tokio::runtime::Handle::current();
        // Detached: the statement keeps streaming after this returns, holding its connection and permit.
        tokio::spawn(async move {
            let result = pool
                .run(move |conn| {
                    let interrupt = conn.interrupt_handle();
                    let done = CancellationToken::new();
                    let watcher_done = done.clone();
                    runtime.spawn(async move {
                        tokio::select! {
                            _ = cancel.cancelled() => interrupt.interrupt(),
                            _ = watcher_done.cancelled() => {}
                        }
                    });
                    query::run(conn, plan, meta_tx, tx);
                    done.cancel();
                    Ok(())
                })
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "query task failed");
            }
        });
        query::finish(meta_rx.await, rx)
    }
}
