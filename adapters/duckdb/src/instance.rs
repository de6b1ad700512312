//! One open DuckDB database and its idle connections. Connections are cloned from the first one; a connection
//! never goes back with an open transaction.

use std::path::Path;
use std::sync::Mutex;

use duckdb::{Config, Connection};
use pluto_duck_application::ports::WarehouseError;

use crate::Settings;

pub(crate) struct Instance {
    root: Mutex<Connection>,
    idle: Mutex<Vec<Connection>>,
    /// Run on every new connection (`USE warehouse` when the project's catalog is a lake).
    on_connect: Mutex<Option<String>>,
}

impl Instance {
    /// Opens `path` (in memory when `None`) with the engine settings every instance shares: the extension
    /// directory, no downloads, threads and memory from the configuration.
    pub(crate) fn open(path: Option<&Path>, settings: &Settings) -> Result<Self, WarehouseError> {
        let conn = match path {
            Some(path) => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| WarehouseError::Unavailable(format!("cannot create {}: {e}", parent.display())))?;
                }
                Connection::open_with_flags(path, engine_config(settings)?).map_err(|e| open_error(path, e))?
            }
            None => Connection::open_in_memory_with_flags(engine_config(settings)?)
                .map_err(|e| WarehouseError::Internal(e.to_string()))?,
        };
        Ok(Self {
            root: Mutex::new(conn),
            idle: Mutex::new(Vec::new()),
            on_connect: Mutex::new(None),
        })
    }

    /// A connection for one job; give it back with [`Instance::put_back`].
    pub(crate) fn checkout(&self) -> Result<Connection, WarehouseError> {
        let reused = self.idle.lock().map_err(|_| poisoned())?.pop();
        match reused {
            Some(conn) => Ok(conn),
            None => {
                let conn = self
                    .root
                    .lock()
                    .map_err(|_| poisoned())?
                    .try_clone()
                    .map_err(|e| WarehouseError::Internal(e.to_string()))?;
                let init = self.on_connect.lock().map_err(|_| poisoned())?.clone();
                if let Some(sql) = init {
                    conn.execute_batch(&sql)
                        .map_err(|e| WarehouseError::Internal(format!("cannot prepare a connection: {e}")))?;
                }
                Ok(conn)
            }
        }
    }

    /// SQL every connection handed out from now on runs first.
    pub(crate) fn on_connect(&self, sql: String) {
        if let Ok(mut slot) = self.on_connect.lock() {
            *slot = Some(sql);
        }
    }

    pub(crate) fn put_back(&self, conn: Connection) {
        // Never hand a connection with an open transaction to the next job.
        if !conn.is_autocommit() && conn.execute_batch("ROLLBACK").is_err() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }

    /// The first connection, for set-up work before the instance is shared.
    pub(crate) fn with_root<T>(&self, f: impl FnOnce(&Connection) -> T) -> Result<T, WarehouseError> {
        let root = self.root.lock().map_err(|_| poisoned())?;
        Ok(f(&root))
    }
}

fn poisoned() -> WarehouseError {
    WarehouseError::Internal("connection pool poisoned".into())
}

fn engine_config(settings: &Settings) -> Result<Config, WarehouseError> {
    let ext_dir = settings.extension_directory.display().to_string();
    let mut config = Config::default()
        .with("extension_directory", &ext_dir)
        // Never reach for the network at run time: extensions are provisioned by the set-up script.
        .and_then(|c| c.with("autoinstall_known_extensions", "false"))
        .and_then(|c| c.with("autoload_known_extensions", "true"))
        .map_err(|e| WarehouseError::Internal(e.to_string()))?;
    if let Some(threads) = settings.threads {
        config = config
            .threads(i64::from(threads))
            .map_err(|e| WarehouseError::Invalid(format!("duckdb.threads: {e}")))?;
    }
    if let Some(limit) = &settings.memory_limit {
        config = config
            .max_memory(limit)
            .map_err(|e| WarehouseError::Invalid(format!("duckdb.memory_limit: {e}")))?;
    }
    Ok(config)
}

fn open_error(path: &Path, e: duckdb::Error) -> WarehouseError {
    let msg = e.to_string();
    if msg.contains("lock") {
        WarehouseError::Unavailable(format!(
            "the database {} is in use by another process (is `pluto-duck serve` running?): {msg}",
            path.display()
        ))
    } else {
        WarehouseError::Unavailable(format!("cannot open database {}: {msg}", path.display()))
    }
}
