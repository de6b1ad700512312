//! A project's sandbox: its own DuckDB database (`<project folder>/warehouse.duckdb`), opened on first use with the
//! project's sources attached, then locked down (no file outside the project's allowed directories, no
//! extension loading, no setting changes) before any of its SQL runs. Attaching or detaching a source reopens it,
//! because a locked engine cannot attach remote databases; an idle sandbox is closed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use duckdb::Connection;
use pluto_duck_application::ports::WarehouseError;
use pluto_duck_domain::{Identifier, ProjectId, Source, SourceState};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{OwnedRwLockReadGuard, RwLock, Semaphore};
use tracing::Instrument as _;

use crate::attach::{allowances, attach_on};
use crate::instance::Instance;
use crate::sql::lit;
use crate::Settings;

/// A source the sandbox attaches when it opens.
#[derive(Clone)]
pub(crate) struct Registered {
    pub source: Source,
    pub password: Option<SecretString>,
}

pub(crate) struct Sandbox {
    pub project: ProjectId,
    /// `None`: the warehouse has no data directory (diagnostics); projects then live in memory.
    folder: Option<PathBuf>,
    settings: Arc<Settings>,
    sources: Mutex<BTreeMap<Identifier, Registered>>,
    states: Mutex<BTreeMap<Identifier, SourceState>>,
    slot: Arc<RwLock<Option<Arc<Instance>>>>,
    /// Milliseconds since `epoch` of the last use.
    last_used: AtomicU64,
    /// The dbt database is handed over to a dbt run: the sandbox does not attach it.
    dbt_out: AtomicBool,
    /// The shared warehouse became unreachable while open: the next use reopens (and re-attaches) it.
    stale: AtomicBool,
    epoch: Instant,
}

pub(crate) type Held = OwnedRwLockReadGuard<Option<Arc<Instance>>>;

impl Sandbox {
    pub(crate) fn new(project: ProjectId, folder: Option<PathBuf>, settings: Arc<Settings>) -> Self {
        Self {
            project,
            folder,
            settings,
            sources: Mutex::new(BTreeMap::new()),
            states: Mutex::new(BTreeMap::new()),
            slot: Arc::new(RwLock::new(None)),
            last_used: AtomicU64::new(0),
            dbt_out: AtomicBool::new(false),
            stale: AtomicBool::new(false),
            epoch: Instant::now(),
        }
    }

    /// The project's local DuckDB file: its warehouse, or only its scratch work when the warehouse is a lake.
    pub(crate) fn db_path(&self) -> Option<PathBuf> {
        let file = if self.settings.lake.is_some() {
            "scratch.duckdb"
        } else {
            "warehouse.duckdb"
        };
        self.folder.as_ref().map(|f| f.join(file))
    }

    /// The file dbt builds into, attached read-only as catalog `dbt` when it exists.
    pub(crate) fn dbt_path(&self) -> Option<PathBuf> {
        Some(self.project.dbt_database(self.data_dir()?))
    }

    /// The copy of the project's database a dbt run reads its sources from.
    pub(crate) fn dbt_snapshot_path(&self) -> Option<PathBuf> {
        Some(self.project.dbt_sources_snapshot(self.data_dir()?))
    }

    /// The data directory the project's folder is in (`<data_dir>/projects/<project>`).
    fn data_dir(&self) -> Option<&std::path::Path> {
        self.folder.as_deref()?.parent()?.parent()
    }

    /// Marks the dbt database as handed over (`true`: not attached on open) or back.
    pub(crate) fn set_dbt_out(&self, out: bool) {
        self.dbt_out.store(out, Ordering::SeqCst);
    }

    /// The dbt database to attach on open: it exists and is not handed over.
    fn dbt_to_attach(&self) -> Option<PathBuf> {
        if self.dbt_out.load(Ordering::SeqCst) {
            return None;
        }
        self.dbt_path().filter(|p| p.is_file())
    }

    /// The project's read-write area inside the sandbox: Parquet analyses, staging files, spill files.
    pub(crate) fn files_dir(&self) -> Option<PathBuf> {
        self.folder.as_ref().map(|f| f.join("files"))
    }

    fn touch(&self) {
        self.last_used
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    pub(crate) fn idle_for(&self) -> Duration {
        let now = self.epoch.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_used.load(Ordering::Relaxed)))
    }

    pub(crate) fn register(&self, source: Source, password: Option<SecretString>) {
        self.lock_sources()
            .insert(source.name.clone(), Registered { source, password });
    }

    pub(crate) fn unregister(&self, name: &Identifier) -> Option<Registered> {
        self.lock_states().remove(name);
        self.lock_sources().remove(name)
    }

    pub(crate) fn registered(&self, name: &Identifier) -> Option<Registered> {
        self.lock_sources().get(name).cloned()
    }

    pub(crate) fn states(&self) -> Vec<(Identifier, SourceState)> {
        let states = self.lock_states();
        self.lock_sources()
            .keys()
            .map(|n| {
                (
                    n.clone(),
                    states
                        .get(n)
                        .cloned()
                        .unwrap_or_else(|| SourceState::Failed("not attached yet".into())),
                )
            })
            .collect()
    }

    fn lock_sources(&self) -> std::sync::MutexGuard<'_, BTreeMap<Identifier, Registered>> {
        self.sources.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_states(&self) -> std::sync::MutexGuard<'_, BTreeMap<Identifier, SourceState>> {
        self.states.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn is_open(&self) -> bool {
        self.slot.try_read().map(|g| g.is_some()).unwrap_or(true)
    }

    /// The open instance, held open (not reopened, not closed) while the guard lives.
    pub(crate) async fn hold(&self) -> Result<Held, WarehouseError> {
        self.touch();
        let held = self.slot.clone().read_owned().await;
        if held.is_some() && !self.stale.load(Ordering::SeqCst) {
            return Ok(held);
        }
        drop(held);
        let mut slot = self.slot.clone().write_owned().await;
        if self.stale.swap(false, Ordering::SeqCst) {
            if let Some(old) = slot.take() {
                close_instance(old).await;
                tracing::info!(project = %self.project, "sandbox reopened after the shared warehouse was unreachable");
            }
        }
        if slot.is_none() {
            *slot = Some(self.open().await?);
        }
        Ok(slot.downgrade())
    }

    /// Runs `f` on a connection of the open instance, on the blocking pool, inside the caller's span.
    pub(crate) async fn run<T, F>(&self, permits: &Arc<Semaphore>, f: F) -> Result<T, WarehouseError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, WarehouseError> + Send + 'static,
    {
        let held = self.hold().await?;
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| WarehouseError::Unavailable("warehouse is shutting down".into()))?;
        let span = tracing::Span::current();
        let result = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let instance = held
                .as_ref()
                .ok_or_else(|| WarehouseError::Internal("sandbox closed while held".into()))?;
            let conn = instance.checkout()?;
            let result = f(&conn);
            instance.put_back(conn);
            drop(permit);
            drop(held);
            result
        })
        .in_current_span()
        .await
        .map_err(|e| WarehouseError::Internal(format!("warehouse task failed: {e}")))?;
        if let Err(e) = &result {
            self.note_failure(e);
        }
        result
    }

    /// After the shared warehouse was unreachable, the next use reopens the sandbox (fresh connections to the
    /// lake's catalog), so an outage heals by itself once the service is back.
    pub(crate) fn note_failure(&self, e: &WarehouseError) {
        if self.settings.lake.is_some() && matches!(e, WarehouseError::Unavailable(_)) {
            self.stale.store(true, Ordering::SeqCst);
        }
    }

    async fn open(&self) -> Result<Arc<Instance>, WarehouseError> {
        let sources: Vec<Registered> = self.lock_sources().values().cloned().collect();
        let (path, files, settings) = (self.db_path(), self.files_dir(), self.settings.clone());
        let dbt = DbtFiles {
            attach: self.dbt_to_attach(),
            allowed: self
                .dbt_path()
                .into_iter()
                .flat_map(|p| [p.display().to_string(), format!("{}.wal", p.display())])
                .collect(),
            dir: self
                .dbt_snapshot_path()
                .and_then(|p| p.parent().map(|d| format!("{}/", d.display()))),
        };
        let project = self.project.clone();
        let (instance, states, project) =
            tokio::task::spawn_blocking(move || open_instance(&project, path, files, &settings, sources, dbt))
                .await
                .map_err(|e| WarehouseError::Internal(format!("opening the sandbox failed: {e}")))??;
        for (name, state) in &states {
            if let SourceState::Failed(reason) = state {
                tracing::warn!(project = %project, source = %name, reason, "source not attached");
            }
        }
        *self.lock_states() = states.into_iter().collect();
        tracing::debug!(project = %self.project, "sandbox opened");
        Ok(Arc::new(instance))
    }

    /// Opens the sandbox again with the current registrations, once running work is done (at most `wait`).
    /// Closed sandboxes stay closed: they attach the new registrations when they open.
    pub(crate) async fn reopen(&self, wait: Duration) -> Result<(), WarehouseError> {
        let mut slot = tokio::time::timeout(wait, self.slot.clone().write_owned())
            .await
            .map_err(|_| {
                WarehouseError::Conflict(format!(
                    "project {} is busy: its running queries did not finish within {}s; try again",
                    self.project,
                    wait.as_secs()
                ))
            })?;
        if let Some(old) = slot.take() {
            close_instance(old).await;
            *slot = Some(self.open().await?);
        }
        Ok(())
    }

    /// Closes the instance (its file lock goes with it) once running work is done; it opens again on next use.
    pub(crate) async fn close(&self) {
        let mut slot = self.slot.clone().write_owned().await;
        if let Some(old) = slot.take() {
            close_instance(old).await;
        }
    }

    /// Closes the instance if nothing runs and it has been idle for `idle`; true when it did.
    pub(crate) async fn close_if_idle(&self, idle: Duration) -> bool {
        if self.idle_for() < idle {
            return false;
        }
        let Ok(mut slot) = self.slot.clone().try_write_owned() else {
            return false;
        };
        match slot.take() {
            Some(old) => {
                close_instance(old).await;
                tracing::debug!(project = %self.project, "idle sandbox closed");
                true
            }
            None => false,
        }
    }
}

/// Dropping the last connection checkpoints and closes the file: blocking work.
async fn close_instance(instance: Arc<Instance>) {
    let _ = tokio::task::spawn_blocking(move || drop(instance)).await;
}

/// Opens the database, attaches the registered sources (each failure recorded, never fatal), then locks the
/// engine down: only the project's files, its sources' files and the configured directories can be read;
/// extensions, settings and secrets are fixed.
/// The dbt files a sandbox may touch, and the dbt database to attach now.
struct DbtFiles {
    attach: Option<PathBuf>,
    allowed: Vec<String>,
    /// The source snapshot's folder (DuckDB writes its WAL and checkpoint files beside it).
    dir: Option<String>,
}

/// Attaches the project's dbt database read-only as catalog `dbt` (a no-op when it is attached).
pub(crate) fn attach_dbt(conn: &Connection, path: &std::path::Path) -> Result<(), WarehouseError> {
    let sql = format!(
        "ATTACH IF NOT EXISTS {} AS {} (READ_ONLY)",
        lit(&path.display().to_string()),
        pluto_duck_domain::DBT_CATALOG
    );
    conn.execute_batch(&sql)
        .map_err(|e| WarehouseError::Unavailable(format!("cannot attach the dbt database: {e}")))
}

type Opened = (Instance, Vec<(Identifier, SourceState)>, ProjectId);

fn open_instance(
    project: &ProjectId,
    path: Option<PathBuf>,
    files: Option<PathBuf>,
    settings: &Settings,
    sources: Vec<Registered>,
    dbt: DbtFiles,
) -> Result<Opened, WarehouseError> {
    let instance = Instance::open(path.as_deref(), settings)?;
    let states = instance.with_root(|conn| {
        let mut dirs: Vec<String> = settings.allowed_directories.clone();
        let mut paths: Vec<String> = dbt.allowed.clone();
        dirs.extend(dbt.dir.clone());
        if let Some(lake) = &settings.lake {
            crate::lake::attach_lake(conn, lake, project)?;
            dirs.extend(crate::lake::allowed_directories(lake, project));
        }
        if let Some(db) = &dbt.attach {
            if let Err(e) = attach_dbt(conn, db) {
                tracing::warn!(error = %e, "dbt database not attached");
            }
        }
        if let Some(files) = &files {
            let spill = files.join(".tmp");
            std::fs::create_dir_all(&spill)
                .map_err(|e| WarehouseError::Unavailable(format!("cannot create {}: {e}", spill.display())))?;
            dirs.push(format!("{}/", files.display()));
            conn.execute_batch(&format!("SET temp_directory = {}", lit(&spill.display().to_string())))
                .map_err(|e| WarehouseError::Internal(e.to_string()))?;
        }
        let mut states = Vec::new();
        for reg in &sources {
            let alias = reg.source.catalog_alias();
            let password = reg.password.as_ref().map(|p| p.expose_secret().to_owned());
            let verify = matches!(reg.source.connection, pluto_duck_domain::SourceConnection::File { .. });
            match attach_on(
                conn,
                &reg.source,
                &alias,
                password.as_deref(),
                &settings.extension_directory,
                verify,
            ) {
                Ok(()) => {
                    let (d, p) = allowances(&reg.source);
                    dirs.extend(d);
                    paths.extend(p);
                    states.push((reg.source.name.clone(), SourceState::Attached));
                }
                Err(e) => states.push((reg.source.name.clone(), SourceState::Failed(e.to_string()))),
            }
        }
        lock_down(conn, &dirs, &paths)?;
        Ok::<_, WarehouseError>(states)
    })??;
    if settings.lake.is_some() {
        instance.on_connect(format!("USE {}", crate::sql::ident(pluto_duck_domain::PROJECT_CATALOG)));
    }
    Ok((instance, states, project.clone()))
}

fn lock_down(conn: &Connection, dirs: &[String], paths: &[String]) -> Result<(), WarehouseError> {
    let list = |items: &[String]| {
        format!(
            "[{}]::VARCHAR[]",
            items.iter().map(|i| lit(i)).collect::<Vec<_>>().join(", ")
        )
    };
    conn.execute_batch(&format!(
        "SET allowed_directories = {}; SET allowed_paths = {}; \
         SET enable_external_access = false; SET lock_configuration = true;",
        list(dirs),
        list(paths)
    ))
    .map_err(|e| WarehouseError::Internal(format!("cannot lock the sandbox down: {e}")))
}
