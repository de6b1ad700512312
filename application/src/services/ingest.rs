//! Ingestion jobs: a source's table or query copied into a warehouse table through its connector.
//!
//! The source is opened (and its table checked) before the job exists, so a wrong password, a missing file or an
//! unknown table answer the request itself. The job loads every part into a staging table, reporting rows and
//! bytes after each, then applies the mode in one transaction: replace swaps the staging table in, append
//! inserts, merge deletes the rows whose keys match and inserts. A failure at any point drops the staging table
//! and leaves the target as it was.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::RecordBatch;
use chrono::Utc;
use futures::StreamExt;
use pluto_duck_domain::{
    Identifier, IngestMode, Ingestion, ProjectId, Run, RunEventKind, RunFailure, RunId, RunKind, RunStatus, TargetTable,
};
use tokio_util::sync::CancellationToken;
use tracing::{info, instrument, warn, Instrument};

use super::caches::exec_count;
use super::run_hub::{RunHub, Subscription};
use super::sources::{NewSource, SourceService};
use crate::connectors::{quote, ConnectorMetadata, ConnectorRegistry, Pull, Session};
use crate::ports::{MetadataStore, QueryRequest, RunFilter, SourceCatalog, StatementText, Warehouse};
use crate::AppError;

#[derive(Debug, Clone)]
pub enum IngestSource {
    /// A stored source of the project.
    Named(String),
    /// A source given inline; its password is used for this job only.
    Config(Box<NewSource>),
}

#[derive(Debug, Clone)]
pub struct IngestRequest {
    pub source: IngestSource,
    /// `schema.table` or `table` (looked up among the source's tables).
    pub table: Option<String>,
    pub query: Option<String>,
    /// Target table; defaults to the source table's name.
    pub target: Option<String>,
    /// Target schema; defaults to `main` (per project).
    pub schema: Option<String>,
    pub mode: IngestMode,
    /// Merge keys.
    pub keys: Vec<String>,
    pub actor: Option<String>,
}

pub struct IngestService {
    warehouse: Arc<dyn Warehouse>,
    catalog: Arc<dyn SourceCatalog>,
    metadata: Arc<dyn MetadataStore>,
    sources: Arc<SourceService>,
    registry: ConnectorRegistry,
    hub: Arc<RunHub>,
    active: Mutex<HashMap<RunId, CancellationToken>>,
    /// One load per target at a time: two swaps of one table would conflict.
    targets: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

struct Job {
    run: Run,
    session: Session,
    pull: Pull,
    target: TargetTable,
    mode: IngestMode,
    keys: Vec<String>,
    cancel: CancellationToken,
}

impl IngestService {
    pub fn new(
        warehouse: Arc<dyn Warehouse>,
        catalog: Arc<dyn SourceCatalog>,
        metadata: Arc<dyn MetadataStore>,
        sources: Arc<SourceService>,
        registry: ConnectorRegistry,
        hub: Arc<RunHub>,
    ) -> Self {
        Self {
            warehouse,
            catalog,
            metadata,
            sources,
            registry,
            hub,
            active: Mutex::new(HashMap::new()),
            targets: Mutex::new(HashMap::new()),
        }
    }

    pub fn connectors(&self) -> Vec<&'static str> {
        self.registry.names()
    }

    async fn open(&self, project: &ProjectId, source: &IngestSource) -> Result<Session, AppError> {
        match source {
            IngestSource::Named(name) => {
                let source = self.sources.attached(project, name).await?;
                let connector = self.registry.get(source.kind)?;
                Ok(Session::attached(
                    source,
                    connector,
                    self.catalog.clone(),
                    self.warehouse.clone(),
                ))
            }
            IngestSource::Config(config) => {
                let mut config = config.clone();
                if config.name.is_empty() {
                    config.name = "ingest".into();
                }
                let password = config.password.take();
                let source = self.sources.build(project, &config)?;
                let connector = self.registry.get(source.kind)?;
                Session::open(
                    source,
                    password,
                    connector,
                    self.catalog.clone(),
                    self.warehouse.clone(),
                )
                .await
            }
        }
    }

    /// Which table the request names, checked against the source's catalog.
    async fn resolve_table(&self, session: &Session, table: &str) -> Result<(String, String), AppError> {
        let tables = self.catalog.tables(&session.alias, None).await?;
        let found: Vec<_> = match table.split_once('.') {
            Some((schema, name)) => tables.iter().filter(|t| t.schema == schema && t.name == name).collect(),
            None => tables.iter().filter(|t| t.name == table).collect(),
        };
        match found.as_slice() {
            [t] => Ok((t.schema.clone(), t.name.clone())),
            [] => Err(AppError::NotFound {
                what: "source table",
                id: format!("{table} (the source has: {})", {
                    let mut names: Vec<_> = tables.iter().map(|t| format!("{}.{}", t.schema, t.name)).collect();
                    names.truncate(20);
                    names.join(", ")
                }),
            }),
            _ => Err(AppError::Invalid(format!(
                "table {table} is in several schemas; name it as schema.table"
            ))),
        }
    }

    /// Checks the request, opens the source and queues the job; the load runs in the background.
    #[instrument(skip_all, fields(project = %project))]
    pub async fn submit(self: &Arc<Self>, project: &ProjectId, req: IngestRequest) -> Result<Run, AppError> {
        if req.table.is_some() && req.query.is_some() {
            return Err(AppError::Invalid("give either `table` or `query`, not both".into()));
        }
        if req.mode == IngestMode::Merge && req.keys.is_empty() {
            return Err(AppError::Invalid(
                "merge needs `keys`: the columns that identify a row".into(),
            ));
        }
        if req.mode != IngestMode::Merge && !req.keys.is_empty() {
            return Err(AppError::Invalid("`keys` apply to merge only".into()));
        }
        let schema = match &req.schema {
            Some(s) => TargetTable::project_schema(project, Identifier::parse(s.clone())?.as_str()),
            None => TargetTable::default_schema(project),
        };
        if req.target.is_none() && req.query.is_some() {
            return Err(AppError::Invalid(
                "an ingest of a query needs a `target` table name".into(),
            ));
        }
        if let Some(t) = &req.target {
            Identifier::parse(t.clone())?;
        }
        let session = self.open(project, &req.source).await?;
        let prepared = async {
            let pull = match (&req.table, &req.query) {
                (Some(table), _) => {
                    let (schema, table) = self.resolve_table(&session, table).await?;
                    Pull::Table { schema, table }
                }
                (None, Some(query)) => Pull::Query(query.clone()),
                // A file or a one-table database needs no table name.
                (None, None) => match self.catalog.tables(&session.alias, None).await?.as_slice() {
                    [t] => Pull::Table {
                        schema: t.schema.clone(),
                        table: t.name.clone(),
                    },
                    tables => {
                        return Err(AppError::Invalid(format!(
                            "the source has {} tables: name one with `table` (or give a `query`)",
                            tables.len()
                        )))
                    }
                },
            };
            // Refused kinds of query fail here, not in the job.
            session.relation(&pull)?;
            let table = match (&req.target, &pull) {
                (Some(t), _) => Identifier::parse(t.clone())?,
                (None, Pull::Table { table, .. }) => Identifier::sanitize(table),
                (None, Pull::Query(_)) => {
                    return Err(AppError::Invalid(
                        "an ingest of a query needs a `target` table name".into(),
                    ))
                }
            };
            Ok::<_, AppError>((pull, TargetTable { schema, table }))
        }
        .await;
        let (pull, target) = match prepared {
            Ok(p) => p,
            Err(e) => {
                session.close().await;
                return Err(e);
            }
        };

        let id = RunId::parse(uuid::Uuid::now_v7().to_string())?;
        let mut run = Run::new(id, project.clone(), RunKind::Ingest, target.qualified(), Utc::now());
        if let Some(actor) = req.actor.filter(|a| !a.is_empty()) {
            run.actor = actor.chars().take(64).collect();
        }
        let now = Utc::now();
        let previous = self.metadata.get_ingestion(project, &target).await?;
        let entry = Ingestion {
            project: project.clone(),
            target: target.clone(),
            source_kind: session.source.kind,
            source: match &req.source {
                IngestSource::Named(name) => name.clone(),
                IngestSource::Config(_) => session.connector.describe(&session.source),
            },
            named_source: matches!(req.source, IngestSource::Named(_)),
            input: match &pull {
                Pull::Table { schema, table } => format!("{schema}.{table}"),
                Pull::Query(q) => q.clone(),
            },
            mode: req.mode,
            keys: req.keys.clone(),
            created_at: previous.as_ref().map(|p| p.created_at).unwrap_or(now),
            updated_at: now,
            last_run: Some(run.id.clone()),
            last_status: Some(RunStatus::Queued),
            rows: previous.as_ref().map(|p| p.rows).unwrap_or(0),
        };
        let stored = async {
            self.metadata.insert_run(&run).await?;
            self.metadata.put_ingestion(&entry).await?;
            Ok::<_, AppError>(())
        }
        .await;
        if let Err(e) = stored {
            session.close().await;
            return Err(e);
        }
        self.hub.emit(&run.id, RunEventKind::Queued);
        let cancel = CancellationToken::new();
        self.lock_active().insert(run.id.clone(), cancel.clone());
        let job = Job {
            run: run.clone(),
            session,
            pull,
            target,
            mode: req.mode,
            keys: req.keys,
            cancel,
        };
        let this = self.clone();
        let span = tracing::info_span!("ingest_run", run_id = %run.id);
        tokio::spawn(async move { this.execute(job).await }.instrument(span));
        Ok(run)
    }

    fn lock_active(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, CancellationToken>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn target_lock(&self, target: &TargetTable) -> Arc<tokio::sync::Mutex<()>> {
        self.targets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(target.qualified())
            .or_default()
            .clone()
    }

    async fn execute(self: Arc<Self>, job: Job) {
        let Job {
            mut run,
            session,
            pull,
            target,
            mode,
            keys,
            cancel,
        } = job;
        if run.start(Utc::now()).is_ok() {
            if let Err(e) = self.metadata.update_run(&run).await {
                warn!(error = %e, "run state not stored");
            }
            self.hub.emit(&run.id, RunEventKind::Started);
        }
        let lock = self.target_lock(&target);
        let outcome = {
            let _guard = lock.lock().await;
            self.load(&run.id, &session, &pull, &target, mode, &keys, &cancel).await
        };
        session.close().await;
        let now = Utc::now();
        let transition = match outcome {
            Ok((rows, bytes)) => {
                run.rows = rows;
                run.bytes = bytes;
                run.succeed(now)
            }
            Err(_) if cancel.is_cancelled() => run.cancel(now),
            Err(e) => run.fail(
                RunFailure {
                    position: None,
                    message: e.to_string(),
                },
                now,
            ),
        };
        if let Err(e) = transition {
            warn!(error = %e, "run transition refused");
        }
        self.lock_active().remove(&run.id);
        if let Err(e) = self.metadata.update_run(&run).await {
            warn!(error = %e, "run state not stored");
        }
        match self.metadata.get_ingestion(&run.project, &target).await {
            Ok(Some(mut entry)) if entry.last_run.as_ref() == Some(&run.id) => {
                entry.last_status = Some(run.status);
                entry.updated_at = now;
                if run.status == RunStatus::Succeeded {
                    entry.rows = run.rows;
                }
                if let Err(e) = self.metadata.put_ingestion(&entry).await {
                    warn!(error = %e, "ingestion catalog not updated");
                }
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "ingestion catalog not read"),
        }
        info!(status = run.status.as_str(), rows = run.rows, target = %target.qualified(), "ingest finished");
        if let Some(kind) = RunEventKind::terminal_for(&run) {
            self.hub.emit(&run.id, kind);
        }
    }

    async fn exec(&self, statements: Vec<String>, cancel: &CancellationToken) -> Result<u64, AppError> {
        exec_count(self.warehouse.as_ref(), statements, cancel).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn load(
        &self,
        id: &RunId,
        session: &Session,
        pull: &Pull,
        target: &TargetTable,
        mode: IngestMode,
        keys: &[String],
        cancel: &CancellationToken,
    ) -> Result<(u64, u64), AppError> {
        let schema = quote(target.schema.as_str());
        let dest = format!("{schema}.{}", quote(target.table.as_str()));
        let staging = format!(
            "{schema}.{}",
            quote(&format!("__pd_ingest_{}", id.as_str().replace('-', "")))
        );
        let parts = session.parts(pull).await?;
        let whole = session.relation(pull)?;
        let loaded = async {
            self.exec(
                vec![
                    format!("CREATE SCHEMA IF NOT EXISTS {schema}"),
                    format!("CREATE TABLE {staging} AS SELECT * FROM ({whole}) LIMIT 0"),
                    "SELECT 0::BIGINT".into(),
                ],
                cancel,
            )
            .await?;
            let (total, mut rows, mut bytes) = (parts.len() as u64, 0u64, 0u64);
            for (i, part) in parts.iter().enumerate() {
                rows = self
                    .exec(
                        vec![
                            format!("INSERT INTO {staging} BY NAME SELECT * FROM ({})", part.relation),
                            format!("SELECT count(*)::BIGINT FROM {staging}"),
                        ],
                        cancel,
                    )
                    .await?;
                bytes += part.bytes.unwrap_or(0);
                self.hub.emit(
                    id,
                    RunEventKind::PartProgress {
                        part: i as u64 + 1,
                        parts: total,
                        rows,
                        bytes,
                    },
                );
            }
            let cols: Vec<String> = keys.iter().map(|k| quote(k)).collect();
            let statements = match mode {
                IngestMode::Replace => vec![
                    format!("DROP TABLE IF EXISTS {dest}"),
                    format!("ALTER TABLE {staging} RENAME TO {}", quote(target.table.as_str())),
                    format!("SELECT count(*)::BIGINT FROM {dest}"),
                ],
                IngestMode::Append => vec![
                    format!("CREATE TABLE IF NOT EXISTS {dest} AS SELECT * FROM {staging} LIMIT 0"),
                    format!("INSERT INTO {dest} BY NAME SELECT * FROM {staging}"),
                    format!("DROP TABLE {staging}"),
                    format!("SELECT {rows}::BIGINT"),
                ],
                IngestMode::Merge => {
                    let dup = self
                        .exec(
                            vec![format!(
                                "SELECT (count(*) - count(DISTINCT ({})))::BIGINT FROM {staging}",
                                cols.join(", ")
                            )],
                            cancel,
                        )
                        .await?;
                    if dup > 0 {
                        return Err(AppError::Invalid(format!(
                            "merge keys ({}) are not unique in the source: {dup} rows repeat a key",
                            keys.join(", ")
                        )));
                    }
                    let on: Vec<String> = cols
                        .iter()
                        .map(|c| format!("{dest}.{c} IS NOT DISTINCT FROM {staging}.{c}"))
                        .collect();
                    vec![
                        format!("CREATE TABLE IF NOT EXISTS {dest} AS SELECT * FROM {staging} LIMIT 0"),
                        format!("DELETE FROM {dest} USING {staging} WHERE {}", on.join(" AND ")),
                        format!("INSERT INTO {dest} BY NAME SELECT * FROM {staging}"),
                        format!("DROP TABLE {staging}"),
                        format!("SELECT {rows}::BIGINT"),
                    ]
                }
            };
            let written = self.exec(statements, cancel).await?;
            Ok::<_, AppError>((written, bytes))
        }
        .await;
        if loaded.is_err() {
            // Never leave a half-loaded staging table behind; the target was not touched.
            let _ = self
                .exec(
                    vec![format!("DROP TABLE IF EXISTS {staging}"), "SELECT 0::BIGINT".into()],
                    &CancellationToken::new(),
                )
                .await;
        }
        loaded
    }

    pub async fn get(&self, project: &ProjectId, id: &str) -> Result<Run, AppError> {
        let id = RunId::parse(id)?;
        self.metadata
            .get_run(project, &id)
            .await?
            .filter(|r| r.kind == RunKind::Ingest)
            .ok_or_else(|| AppError::NotFound {
                what: "ingest",
                id: id.to_string(),
            })
    }

    /// Waits up to `max` for the run to finish; returns its state either way.
    pub async fn wait(&self, project: &ProjectId, id: &str, max: Duration) -> Result<Run, AppError> {
        let run = self.get(project, id).await?;
        if run.status.is_terminal() || max.is_zero() {
            return Ok(run);
        }
        self.hub.wait_terminal(&run.id, max).await;
        self.get(project, id).await
    }

    pub async fn cancel(&self, project: &ProjectId, id: &str) -> Result<Run, AppError> {
        let run = self.get(project, id).await?;
        if run.status.is_terminal() {
            return Err(AppError::Conflict(format!(
                "ingest {} already finished ({})",
                run.id,
                run.status.as_str()
            )));
        }
        if let Some(token) = self.lock_active().get(&run.id) {
            token.cancel();
        }
        self.wait(project, id, Duration::from_secs(30)).await
    }

    pub async fn events(&self, project: &ProjectId, id: &str, after: u64) -> Result<Subscription, AppError> {
        let run = self.get(project, id).await?;
        Ok(self.hub.events_of(&run, after))
    }

    /// What a source offers before anything is ingested: its connector, where it is (without secrets), its tables,
    /// and the first `rows` of `table` (or of its only table) pulled as Arrow batches.
    pub async fn inspect(
        &self,
        project: &ProjectId,
        source: &IngestSource,
        table: Option<&str>,
        rows: u64,
    ) -> Result<(ConnectorMetadata, Vec<pluto_duck_domain::Column>, Vec<RecordBatch>), AppError> {
        let session = self.open(project, source).await?;
        let result = async {
            let metadata = session.metadata().await?;
            let pick = match (table, metadata.tables.as_slice()) {
                (Some(t), _) => Some(self.resolve_table(&session, t).await?),
                (None, [only]) => Some((only.schema.clone(), only.name.clone())),
                (None, _) => None,
            };
            let (mut columns, mut sample) = (Vec::new(), Vec::new());
            if let Some((schema, table)) = pick {
                let pull = Pull::Table { schema, table };
                let mut stream = session.pull(&pull, Some(rows), CancellationToken::new()).await?;
                columns = stream.columns;
                while let Some(batch) = stream.batches.next().await {
                    sample.push(batch?);
                }
            }
            Ok::<_, AppError>((metadata, columns, sample))
        }
        .await;
        session.close().await;
        result
    }

    /// The ingestion catalog of the project.
    pub async fn catalog(&self, project: &ProjectId) -> Result<Vec<Ingestion>, AppError> {
        Ok(self.metadata.list_ingestions(project).await?)
    }

    /// A catalog entry and its sync history, newest first.
    pub async fn entry(
        &self,
        project: &ProjectId,
        target: &str,
        limit: u32,
    ) -> Result<(Ingestion, Vec<Run>), AppError> {
        let target = parse_target(project, target)?;
        let entry = self
            .metadata
            .get_ingestion(project, &target)
            .await?
            .ok_or_else(|| AppError::NotFound {
                what: "ingestion",
                id: target.qualified(),
            })?;
        let history = self
            .metadata
            .list_runs(&RunFilter {
                project: project.clone(),
                kind: Some(RunKind::Ingest),
                status: None,
                input: Some(target.qualified()),
                limit: limit.clamp(1, 1000),
                offset: 0,
            })
            .await?;
        Ok((entry, history))
    }

    /// Runs a catalog entry again with its recorded settings (stored sources only: an inline source's secret
    /// was never kept).
    pub async fn sync(self: &Arc<Self>, project: &ProjectId, target: &str) -> Result<Run, AppError> {
        let (entry, _) = self.entry(project, target, 1).await?;
        if !entry.named_source {
            return Err(AppError::Invalid(format!(
                "{} was ingested from an inline source ({}); submit the ingest again with its configuration",
                entry.target.qualified(),
                entry.source
            )));
        }
        // A table is recorded as `schema.table`; anything with whitespace is a query.
        let (table, query) = if entry.input.contains(char::is_whitespace) {
            (None, Some(entry.input.clone()))
        } else {
            (Some(entry.input.clone()), None)
        };
        self.submit(
            project,
            IngestRequest {
                source: IngestSource::Named(entry.source.clone()),
                table,
                query,
                target: Some(entry.target.table.to_string()),
                schema: Some(
                    entry
                        .target
                        .schema
                        .as_str()
                        .strip_prefix(&format!("{project}__"))
                        .unwrap_or(entry.target.schema.as_str())
                        .to_owned(),
                ),
                mode: entry.mode,
                keys: entry.keys.clone(),
                actor: Some("sync".into()),
            },
        )
        .await
    }

    /// Start-up housekeeping is shared with queries (`fail_unfinished_runs`); nothing ingest-specific remains
    /// but staging tables, which a crash may leave.
    pub async fn drop_orphan_staging(&self) -> Result<u64, AppError> {
        let request = QueryRequest {
            statements: vec![StatementText {
                text:
                    "SELECT schema_name, table_name FROM duckdb_tables() \
                       WHERE database_name = current_database() AND table_name LIKE '\\_\\_pd\\_ingest\\_%' ESCAPE '\\'"
                        .into(),
                offset: 0,
            }],
            params: Vec::new(),
        };
        let mut stream = self.warehouse.query(request, CancellationToken::new()).await?;
        let mut names = Vec::new();
        while let Some(batch) = stream.batches.next().await {
            let batch = batch?;
            let (s, t) = (
                batch.column(0).as_string_opt::<i32>(),
                batch.column(1).as_string_opt::<i32>(),
            );
            if let (Some(s), Some(t)) = (s, t) {
                for i in 0..batch.num_rows() {
                    names.push(format!("{}.{}", quote(s.value(i)), quote(t.value(i))));
                }
            }
        }
        let n = names.len() as u64;
        for name in names {
            self.exec(
                vec![format!("DROP TABLE IF EXISTS {name}"), "SELECT 0::BIGINT".into()],
                &CancellationToken::new(),
            )
            .await?;
        }
        Ok(n)
    }
}

/// `schema.table` as shown in the catalog, or a bare table in the project's default schema.
fn parse_target(project: &ProjectId, target: &str) -> Result<TargetTable, AppError> {
    Ok(match target.split_once('.') {
        Some((schema, table)) => TargetTable {
            schema: Identifier::parse(schema)?,
            table: Identifier::parse(table)?,
        },
        None => TargetTable {
            schema: TargetTable::default_schema(project),
            table: Identifier::parse(target)?,
        },
    })
}
