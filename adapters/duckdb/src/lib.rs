//! The `Warehouse` and `SourceCatalog` ports on embedded DuckDB: one sandboxed database per project.
//!
//! DuckDB calls block, so every call goes through a sandbox's `run`: a permit from one semaphore shared by all
//! projects, the caller's tracing span, `spawn_blocking`, owned data back. A project's database is opened on first
//! use and closed when idle; inline sources are read in private in-memory instances that never see a project.

mod attach;
mod catalog;
mod dbt;
mod errors;
mod extensions;
mod instance;
mod lake;
mod legacy;
mod load;
mod materialize;
mod query;
mod sandbox;
mod sql;
mod types;
mod warehouse;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use duckdb::Connection;
use pluto_duck_application::ports::{PrivateSource, WarehouseError};
use pluto_duck_domain::{ProjectId, Source};
use tokio::sync::Semaphore;

pub use extensions::{install_hint, REQUIRED_EXTENSIONS};
use instance::Instance;
pub use lake::{LakeConfig, LakePostgres, LakeS3, LAKE_METADATA_CATALOG};
use sandbox::Sandbox;
pub use types::duckdb_type_name;

/// The DuckDB release this build links; extension files must match it.
pub const DUCKDB_VERSION: &str = "v1.5.5";

#[derive(Debug, Clone)]
pub struct DuckDbConfig {
    /// Projects live under `<data_dir>/projects/<id>/`; `None` keeps them in memory (diagnostics).
    pub data_dir: Option<PathBuf>,
    /// Holds `v1.5.5/linux_amd64/<name>.duckdb_extension`.
    pub extension_directory: PathBuf,
    /// Per open project.
    pub threads: Option<u32>,
    /// DuckDB syntax, e.g. `4GB` or `50%`; per open project.
    pub memory_limit: Option<String>,
    /// Statements running at once, across all projects.
    pub max_connections: usize,
    /// Directories every project's SQL may read besides its own files and its sources' files.
    pub allowed_directories: Vec<PathBuf>,
    /// A project's database is closed after this long unused.
    pub idle_close: Duration,
    /// How long attaching or detaching a source waits for the project's running queries.
    pub reopen_wait: Duration,
    /// The hybrid profile's shared warehouse: each project's tables in a DuckLake (catalog in PostgreSQL, files
    /// in object storage); `None` keeps them in the project's local DuckDB file.
    pub lake: Option<LakeConfig>,
}

impl DuckDbConfig {
    /// A configuration with the defaults the server uses.
    pub fn new(data_dir: Option<PathBuf>, extension_directory: PathBuf) -> Self {
        Self {
            data_dir,
            extension_directory,
            threads: None,
            memory_limit: None,
            max_connections: 8,
            allowed_directories: Vec::new(),
            idle_close: Duration::from_secs(600),
            reopen_wait: Duration::from_secs(30),
            lake: None,
        }
    }
}

/// Engine settings every instance is opened with.
pub(crate) struct Settings {
    pub extension_directory: PathBuf,
    pub threads: Option<u32>,
    pub memory_limit: Option<String>,
    /// With a trailing `/`: DuckDB matches prefixes.
    pub allowed_directories: Vec<String>,
    pub lake: Option<LakeConfig>,
}

/// An inline source opened for one job in an instance of its own.
pub(crate) struct Private {
    pub instance: Arc<Instance>,
    pub source: Source,
}

type TargetLock = Arc<tokio::sync::Mutex<()>>;

#[derive(Clone)]
pub struct DuckDbWarehouse {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    data_dir: Option<PathBuf>,
    settings: Arc<Settings>,
    permits: Arc<Semaphore>,
    sandboxes: Mutex<HashMap<ProjectId, Arc<Sandbox>>>,
    privates: Mutex<HashMap<u64, Arc<Private>>>,
    next_private: AtomicU64,
    /// An instance outside every project: version, extensions, trial opens.
    probe: Mutex<Option<Arc<Instance>>>,
    idle_close: Duration,
    reopen_wait: Duration,
    /// One load per target at a time: two swaps of one table would conflict.
    targets: Mutex<HashMap<(ProjectId, pluto_duck_domain::Relation), TargetLock>>,
}

impl DuckDbWarehouse {
    /// Prepares the warehouse; projects open on first use. A warehouse left by an earlier version (one file for
    /// every project) is split into per-project databases first.
    pub fn open(config: &DuckDbConfig) -> Result<Self, WarehouseError> {
        let settings = Arc::new(Settings {
            extension_directory: config.extension_directory.clone(),
            threads: config.threads,
            memory_limit: config.memory_limit.clone(),
            allowed_directories: config
                .allowed_directories
                .iter()
                .map(|d| {
                    let d = std::fs::canonicalize(d).unwrap_or_else(|_| d.clone());
                    format!("{}/", d.display().to_string().trim_end_matches('/'))
                })
                .collect(),
            lake: config.lake.clone(),
        });
        if let (Some(dir), None) = (&config.data_dir, &config.lake) {
            legacy::migrate(dir, &settings)?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                data_dir: config.data_dir.clone(),
                settings,
                permits: Arc::new(Semaphore::new(config.max_connections.max(1))),
                sandboxes: Mutex::new(HashMap::new()),
                privates: Mutex::new(HashMap::new()),
                next_private: AtomicU64::new(1),
                probe: Mutex::new(None),
                idle_close: config.idle_close,
                reopen_wait: config.reopen_wait,
                targets: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn extension_directory(&self) -> &Path {
        &self.inner.settings.extension_directory
    }

    /// Closes idle projects' databases in the background for as long as the warehouse lives.
    pub fn spawn_housekeeping(&self) {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let every = (self.inner.idle_close / 4).clamp(Duration::from_millis(200), Duration::from_secs(30));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                let idle = inner.idle_close;
                for sandbox in inner.all_sandboxes() {
                    sandbox.close_if_idle(idle).await;
                }
            }
        });
    }

    /// How many projects have their database open now.
    pub fn open_projects(&self) -> usize {
        self.inner.all_sandboxes().iter().filter(|s| s.is_open()).count()
    }

    /// Closes every project's database (at shutdown, so files are checkpointed).
    pub async fn close_all(&self) {
        for sandbox in self.inner.all_sandboxes() {
            sandbox.close().await;
        }
    }

    /// Runs statements that return nothing outside every project. For diagnostics and tests.
    pub async fn execute_batch(&self, sql: &str) -> Result<(), WarehouseError> {
        let (sql, dir) = (sql.to_owned(), self.extension_directory().to_path_buf());
        self.inner
            .probe(move |conn| {
                conn.execute_batch(&sql)
                    .map_err(|e| errors::map_duckdb_error(&e, &sql, 0, &dir))
            })
            .await
    }

    /// First column of the first row as text, outside every project; for diagnostics and tests.
    pub async fn query_scalar(&self, sql: &str) -> Result<Option<String>, WarehouseError> {
        let (sql, dir) = (sql.to_owned(), self.extension_directory().to_path_buf());
        self.inner
            .probe(move |conn| {
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

impl Inner {
    pub(crate) fn sandbox(&self, project: &ProjectId) -> Arc<Sandbox> {
        let mut map = self.sandboxes.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(project.clone())
            .or_insert_with(|| {
                Arc::new(Sandbox::new(
                    project.clone(),
                    self.data_dir.as_ref().map(|d| project.folder(d)),
                    self.settings.clone(),
                ))
            })
            .clone()
    }

    fn all_sandboxes(&self) -> Vec<Arc<Sandbox>> {
        self.sandboxes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Runs `f` in the probe instance (opened on first use), outside every project.
    pub(crate) async fn probe<T, F>(&self, f: F) -> Result<T, WarehouseError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, WarehouseError> + Send + 'static,
    {
        let existing = self.probe.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let instance = match existing {
            Some(i) => i,
            None => {
                let settings = self.settings.clone();
                let opened = Arc::new(
                    tokio::task::spawn_blocking(move || Instance::open(None, &settings))
                        .await
                        .map_err(|e| WarehouseError::Internal(e.to_string()))??,
                );
                self.probe
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert(opened)
                    .clone()
            }
        };
        run_on(instance, self.permits.clone(), f).await
    }

    pub(crate) fn target_lock(
        &self,
        project: &ProjectId,
        target: &pluto_duck_domain::Relation,
    ) -> Arc<tokio::sync::Mutex<()>> {
        self.targets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((project.clone(), target.clone()))
            .or_default()
            .clone()
    }

    pub(crate) fn private(&self, id: PrivateSource) -> Result<Arc<Private>, WarehouseError> {
        self.privates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id.0)
            .cloned()
            .ok_or_else(|| WarehouseError::Invalid(format!("private source {} is not open", id.0)))
    }

    pub(crate) fn add_private(&self, private: Private) -> PrivateSource {
        let id = self.next_private.fetch_add(1, Ordering::Relaxed);
        self.privates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, Arc::new(private));
        PrivateSource(id)
    }

    pub(crate) fn remove_private(&self, id: PrivateSource) -> Option<Arc<Private>> {
        self.privates.lock().unwrap_or_else(|e| e.into_inner()).remove(&id.0)
    }
}

/// Runs `f` on a connection of `instance` on the blocking pool, inside the caller's span.
pub(crate) async fn run_on<T, F>(instance: Arc<Instance>, permits: Arc<Semaphore>, f: F) -> Result<T, WarehouseError>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, WarehouseError> + Send + 'static,
{
    use tracing::Instrument as _;
    let permit = permits
        .acquire_owned()
        .await
        .map_err(|_| WarehouseError::Unavailable("warehouse is shutting down".into()))?;
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let conn = instance.checkout()?;
        let result = f(&conn);
        instance.put_back(conn);
        drop(permit);
        result
    })
    .in_current_span()
    .await
    .map_err(|e| WarehouseError::Internal(format!("warehouse task failed: {e}")))?
}

/// Calls DuckDB's interrupt on `conn` when `cancel` fires, for as long as the returned guard lives.
pub(crate) struct InterruptOnCancel(tokio_util::sync::CancellationToken);

impl InterruptOnCancel {
    pub(crate) fn watch(
        conn: &Connection,
        cancel: &tokio_util::sync::CancellationToken,
        rt: &tokio::runtime::Handle,
    ) -> Self {
        let interrupt = conn.interrupt_handle();
        let done = tokio_util::sync::CancellationToken::new();
        let (cancel, watcher_done) = (cancel.clone(), done.clone());
        rt.spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => interrupt.interrupt(),
                _ = watcher_done.cancelled() => {}
            }
        });
        Self(done)
    }
}

impl Drop for InterruptOnCancel {
    fn drop(&mut self) {
        self.0.cancel();
    }
}
