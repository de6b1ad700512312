use std::sync::{Arc, Mutex};

use duckdb::{Config, Connection};
use pluto_duck_application::ports::WarehouseError;
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use crate::DuckDbConfig;

/// A bounded set of connections to one database. The semaphore bounds concurrency (and so blocking threads);
/// idle connections are reused, new ones are cloned from the first.
#[derive(Clone)]
pub(crate) struct Pool {
    root: Arc<Mutex<Connection>>,
    idle: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
}

impl Pool {
    pub(crate) fn open(config: &DuckDbConfig) -> Result<Self, WarehouseError> {
        let ext_dir = config.extension_directory.display().to_string();
        let mut db_config = Config::default()
            .with("extension_directory", &ext_dir)
            // Never reach for the network at run time: extensions are provisioned by the set-up script.
            .and_then(|c| c.with("autoinstall_known_extensions", "false"))
            .and_then(|c| c.with("autoload_known_extensions", "true"))
            .map_err(|e| WarehouseError::Internal(e.to_string()))?;
        if let Some(threads) = config.threads {
            db_config = db_config
                .threads(i64::from(threads))
                .map_err(|e| WarehouseError::Invalid(format!("duckdb.threads: {e}")))?;
        }
        if let Some(limit) = &config.memory_limit {
            db_config = db_config
                .max_memory(limit)
                .map_err(|e| WarehouseError::Invalid(format!("duckdb.memory_limit: {e}")))?;
        }
        let conn = match &config.path {
            Some(path) => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| WarehouseError::Unavailable(format!("cannot create {}: {e}", parent.display())))?;
                }
                Connection::open_with_flags(path, db_config).map_err(|e| open_error(path, e))?
            }
            None => {
                Connection::open_in_memory_with_flags(db_config).map_err(|e| WarehouseError::Internal(e.to_string()))?
            }
        };
        Ok(Self {
            root: Arc::new(Mutex::new(conn)),
            idle: Arc::new(Mutex::new(Vec::new())),
            permits: Arc::new(Semaphore::new(config.max_connections.max(1))),
        })
    }

    /// Runs `f` on a pooled connection on the blocking pool, inside the caller's span.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, WarehouseError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, WarehouseError> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| WarehouseError::Unavailable("warehouse is shutting down".into()))?;
        let conn = self.checkout()?;
        let idle = self.idle.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let result = f(&conn);
            if let Ok(mut idle) = idle.lock() {
                idle.push(conn);
            }
            drop(permit);
            result
        })
        .in_current_span()
        .await
        .map_err(|e| WarehouseError::Internal(format!("warehouse task failed: {e}")))?
    }

    fn checkout(&self) -> Result<Connection, WarehouseError> {
        let reused = self
            .idle
            .lock()
            .map_err(|_| WarehouseError::Internal("connection pool poisoned".into()))?
            .pop();
        match reused {
            Some(conn) => Ok(conn),
            None => self
                .root
                .lock()
                .map_err(|_| WarehouseError::Internal("connection pool poisoned".into()))?
                .try_clone()
                .map_err(|e| WarehouseError::Internal(e.to_string())),
        }
    }
}

fn open_error(path: &std::path::Path, e: duckdb::Error) -> WarehouseError {
    let msg = e.to_string();
    if msg.contains("lock") {
        WarehouseError::Unavailable(format!(
            "the warehouse {} is in use by another process (is `pluto-duck serve` running?): {msg}",
            path.display()
        ))
    } else {
        WarehouseError::Unavailable(format!("cannot open warehouse {}: {msg}", path.display()))
    }
}
