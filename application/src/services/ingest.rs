//! Ingestion jobs: a source's table or query copied into a table of the project through its connector.
//!
//! The source is opened (and its table checked) before the job exists, so a wrong password, a missing file or an
//! unknown table answer the request itself. The job stages every part, reporting rows and bytes after each, then
//! the warehouse applies the mode in one transaction: replace swaps the staged table in, append inserts, merge
//! deletes the rows whose keys match and inserts. A failure at any point leaves the target as it was. CSV files are
//! read strictly unless the request asks for lenient reading, which skips bad rows and reports them.

use std::sync::Arc;
use std::time::Duration;

use arrow_array::RecordBatch;
use async_trait::async_trait;
use chrono::Utc;
use futures::StreamExt;
use pluto_duck_domain::{IngestMode, Ingestion, ProjectId, Run, RunKind, RunStatus, TargetTable};
use tracing::{instrument, warn};

use super::changes::ChangeLog;
use super::jobs::{job_wait, JobContext, JobSpec, Jobs, Outcome, Work};
use super::run_hub::Subscription;
use super::run_lineage::{source_dataset, RunDatasets};
use super::sources::{NewSource, SourceService};
use crate::connectors::{ConnectorMetadata, ConnectorRegistry, Pull, Session};
use crate::ports::LineageDataset;
use crate::ports::{CsvStrictness, Load, LoadMode, LoadPart, MetadataStore, RunFilter, SourceCatalog, Warehouse};
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
    /// Target schema; defaults to `main`.
    pub schema: Option<String>,
    pub mode: IngestMode,
    /// Merge keys.
    pub keys: Vec<String>,
    /// CSV files: strict (the default) fails on a malformed row; lenient skips and reports them.
    pub csv: CsvStrictness,
    pub actor: Option<String>,
}

/// The most rows an inspection samples.
pub const MAX_SAMPLE_ROWS: u64 = 1000;

pub struct IngestService {
    warehouse: Arc<dyn Warehouse>,
    catalog: Arc<dyn SourceCatalog>,
    metadata: Arc<dyn MetadataStore>,
    sources: Arc<SourceService>,
    registry: ConnectorRegistry,
    jobs: Arc<Jobs>,
    changes: Arc<ChangeLog>,
}

struct IngestWork {
    warehouse: Arc<dyn Warehouse>,
    metadata: Arc<dyn MetadataStore>,
    changes: Arc<ChangeLog>,
    session: Option<Session>,
    parts: Vec<LoadPart>,
    target: TargetTable,
    mode: LoadMode,
    csv: CsvStrictness,
    lineage: RunDatasets,
}

#[async_trait]
impl Work for IngestWork {
    fn lineage(&self) -> RunDatasets {
        self.lineage.clone()
    }

    async fn run(&mut self, ctx: JobContext) -> Result<Outcome, AppError> {
        let Some(session) = &self.session else {
            return Err(AppError::Invalid("the ingest's source is closed".into()));
        };
        let load = Load {
            from: session.load_from(),
            parts: self.parts.clone(),
            target: self.target.relation(),
            mode: self.mode.clone(),
            filter: None,
            csv: self.csv,
            tag: ctx.run.to_string(),
        };
        let outcome = self
            .warehouse
            .load(&ctx.project, load, ctx.load_progress(), ctx.cancel.clone())
            .await?;
        let detail = (self.csv == CsvStrictness::Lenient).then(|| {
            serde_json::json!({
                "rejected_rows": outcome.rejected,
                "rejected_samples": outcome.rejected_samples.iter().map(|r| serde_json::json!({
                    "file": r.file, "line": r.line, "reason": r.reason, "text": r.text,
                })).collect::<Vec<_>>(),
            })
            .to_string()
        });
        Ok(Outcome {
            rows: outcome.rows,
            bytes: outcome.bytes,
            detail,
            ..Outcome::default()
        })
    }

    async fn finished(&mut self, run: &Run) {
        if let Some(session) = self.session.take() {
            session.close().await;
        }
        if run.status == RunStatus::Succeeded {
            self.changes
                .record(&run.project, &[self.target.qualified()], "ingest")
                .await;
        }
        match self.metadata.get_ingestion(&run.project, &self.target).await {
            Ok(Some(mut entry)) if entry.last_run.as_ref() == Some(&run.id) => {
                entry.last_status = Some(run.status);
                entry.updated_at = Utc::now();
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
    }
}

impl IngestService {
    pub fn new(
        warehouse: Arc<dyn Warehouse>,
        catalog: Arc<dyn SourceCatalog>,
        metadata: Arc<dyn MetadataStore>,
        sources: Arc<SourceService>,
        registry: ConnectorRegistry,
        jobs: Arc<Jobs>,
        changes: Arc<ChangeLog>,
    ) -> Self {
        Self {
            warehouse,
            catalog,
            metadata,
            sources,
            registry,
            jobs,
            changes,
        }
    }

    pub fn connectors(&self) -> Vec<&'static str> {
        self.registry.names()
    }

    async fn open(&self, project: &ProjectId, source: &IngestSource, csv: CsvStrictness) -> Result<Session, AppError> {
        match source {
            IngestSource::Named(name) => {
                let source = self.sources.attached(project, name).await?;
                let connector = self.registry.get(source.kind)?;
                Ok(Session::stored(source, connector, self.catalog.clone()))
            }
            IngestSource::Config(config) => {
                let mut config = config.clone();
                if config.name.is_empty() {
                    config.name = "ingest".into();
                }
                if let pluto_duck_domain::SourceConnection::Located(l) = &mut config.connection {
                    l.lenient |= csv == CsvStrictness::Lenient;
                }
                let password = config.password.take();
                let source = self.sources.build(project, &config).await?;
                let connector = self.registry.get(source.kind)?;
                Session::open(source, password, connector, self.catalog.clone()).await
            }
        }
    }

    /// Which table the request names, checked against the source's catalog.
    async fn resolve_table(&self, session: &Session, table: &str) -> Result<(String, String), AppError> {
        let tables = session.tables().await?;
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

    /// What the request reads and where it writes, checked against the open source.
    async fn prepare(
        &self,
        session: &Session,
        req: &IngestRequest,
    ) -> Result<(Pull, TargetTable, Vec<LoadPart>), AppError> {
        let pull = match (&req.table, &req.query) {
            (Some(table), _) => {
                let (schema, table) = self.resolve_table(session, table).await?;
                Pull::Table { schema, table }
            }
            (None, Some(query)) => Pull::Query(query.clone()),
            // A file or a one-table database needs no table name.
            (None, None) => match session.tables().await?.as_slice() {
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
            (Some(t), _) => t.clone(),
            (None, Pull::Table { table, .. }) => pluto_duck_domain::Identifier::sanitize(table).to_string(),
            (None, Pull::Query(_)) => {
                return Err(AppError::Invalid(
                    "an ingest of a query needs a `target` table name".into(),
                ))
            }
        };
        let target = TargetTable::writable(req.schema.as_deref(), &table)?;
        let parts = session.parts(&pull).await?;
        Ok((pull, target, parts))
    }

    /// Checks the request, opens the source and queues the job; the load runs in the background.
    #[instrument(skip_all, fields(project = %project))]
    pub async fn submit(&self, project: &ProjectId, req: IngestRequest) -> Result<Run, AppError> {
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
        if req.target.is_none() && req.query.is_some() {
            return Err(AppError::Invalid(
                "an ingest of a query needs a `target` table name".into(),
            ));
        }
        // The target's name is checked before anything opens.
        if let Some(t) = &req.target {
            TargetTable::writable(req.schema.as_deref(), t)?;
        } else if let Some(s) = &req.schema {
            TargetTable::writable(Some(s), "t")?;
        }
        let session = self.open(project, &req.source, req.csv).await?;
        let (pull, target, parts) = match self.prepare(&session, &req).await {
            Ok(p) => p,
            Err(e) => {
                session.close().await;
                return Err(e);
            }
        };
        let now = Utc::now();
        let previous = self.metadata.get_ingestion(project, &target).await?;
        let mode = match req.mode {
            IngestMode::Replace => LoadMode::Replace,
            IngestMode::Append => LoadMode::Append,
            IngestMode::Merge => LoadMode::Merge { keys: req.keys.clone() },
        };
        let source_kind = session.source.kind;
        let source_name = match &req.source {
            IngestSource::Named(name) => name.clone(),
            IngestSource::Config(_) => session.connector.describe(&session.source),
        };
        let lineage = RunDatasets {
            job: Some(format!("ingest.{}", target.qualified())),
            inputs: source_dataset(
                &session.source,
                match &pull {
                    Pull::Table { schema, table } => Some(format!("{schema}.{table}")),
                    Pull::Query(_) => None,
                }
                .as_deref(),
            )
            .map(LineageDataset::new)
            .into_iter()
            .collect(),
            tables_written: vec![pluto_duck_domain::canonical_relation(&target.qualified())],
            ..RunDatasets::default()
        };
        let entry = |run: &Run| Ingestion {
            project: project.clone(),
            target: target.clone(),
            source_kind,
            source: source_name.clone(),
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
        // The catalog entry names the run before the run can finish, so `finished` finds it.
        let (run_tx, run_rx) = tokio::sync::oneshot::channel::<()>();
        let work = GateWork {
            gate: Some(run_rx),
            inner: IngestWork {
                warehouse: self.warehouse.clone(),
                metadata: self.metadata.clone(),
                changes: self.changes.clone(),
                session: None,
                parts,
                target: target.clone(),
                mode,
                csv: req.csv,
                lineage,
            },
        };
        let spec = JobSpec {
            project: project.clone(),
            kind: RunKind::Ingest,
            input: target.qualified(),
            actor: req.actor.clone(),
            timeout: None,
        };
        let mut work = work;
        work.inner.session = Some(session);
        let run = self.jobs.submit(spec, work)?;
        let result = self.metadata.put_ingestion(&entry(&run)).await;
        let _ = run_tx.send(());
        result?;
        Ok(run)
    }

    /// Submits the ingest and waits up to `wait` (at most [`MAX_JOB_WAIT`](super::jobs::MAX_JOB_WAIT)) for it. A job that failed within the
    /// wait answers as an invalid request naming the run; otherwise the run in whatever state it reached.
    pub async fn submit_and_wait(
        &self,
        project: &ProjectId,
        req: IngestRequest,
        wait: Duration,
    ) -> Result<Run, AppError> {
        job_wait(wait.as_secs_f64())?;
        let run = self.submit(project, req).await?;
        self.settle(project, run, wait).await
    }

    /// Syncs a catalog entry again (see [`Self::sync`]) and waits for it like [`Self::submit_and_wait`].
    pub async fn sync_and_wait(&self, project: &ProjectId, target: &str, wait: Duration) -> Result<Run, AppError> {
        job_wait(wait.as_secs_f64())?;
        let run = self.sync(project, target).await?;
        self.settle(project, run, wait).await
    }

    async fn settle(&self, project: &ProjectId, run: Run, wait: Duration) -> Result<Run, AppError> {
        let run = self.wait(project, run.id.as_str(), wait).await?;
        if run.status == RunStatus::Failed {
            return Err(AppError::Invalid(format!(
                "ingest {} failed: {}",
                run.id,
                run.failure.map(|f| f.message).unwrap_or_default()
            )));
        }
        Ok(run)
    }

    pub async fn get(&self, project: &ProjectId, id: &str) -> Result<Run, AppError> {
        self.jobs.get(project, id, RunKind::Ingest).await
    }

    /// Waits up to `max` for the run to finish; returns its state either way.
    pub async fn wait(&self, project: &ProjectId, id: &str, max: Duration) -> Result<Run, AppError> {
        self.jobs.wait(project, id, RunKind::Ingest, max).await
    }

    pub async fn cancel(&self, project: &ProjectId, id: &str) -> Result<Run, AppError> {
        self.jobs.cancel(project, id, RunKind::Ingest).await
    }

    pub async fn events(&self, project: &ProjectId, id: &str, after: u64) -> Result<Subscription, AppError> {
        self.jobs.events(project, id, RunKind::Ingest, after).await
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
        if rows > MAX_SAMPLE_ROWS {
            return Err(AppError::Invalid(format!("rows must be at most {MAX_SAMPLE_ROWS}")));
        }
        let session = self.open(project, source, CsvStrictness::Strict).await?;
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
                let mut stream = session.pull(&pull, Some(rows)).await?;
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
        let target = parse_target(target)?;
        let entry = self
            .metadata
            .get_ingestion(project, &target)
            .await?
            .ok_or_else(|| AppError::NotFound {
                what: "ingestion",
                id: target.qualified(),
            })?;
        let history = self
            .jobs
            .list(&RunFilter {
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
    pub async fn sync(&self, project: &ProjectId, target: &str) -> Result<Run, AppError> {
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
                schema: Some(entry.target.schema.to_string()),
                mode: entry.mode,
                keys: entry.keys.clone(),
                csv: CsvStrictness::Strict,
                actor: Some("sync".into()),
            },
        )
        .await
    }

    /// Start-up: staging a crash left behind is dropped, and catalog entries whose run a crash ended say so.
    pub async fn recover(&self, projects: &[ProjectId]) -> Result<u64, AppError> {
        let mut dropped = 0;
        for project in projects {
            dropped += self.warehouse.drop_orphans(project).await?;
            for mut entry in self.metadata.list_ingestions(project).await? {
                // Earlier versions kept other projects' tables in `<project>__<schema>` of one shared database;
                // each project has its own database now, where the schema is plain.
                if let Some(plain) = entry.target.schema.as_str().strip_prefix(&format!("{project}__")) {
                    let old = entry.target.clone();
                    entry.target.schema = pluto_duck_domain::Identifier::canonical(plain)?;
                    self.metadata.delete_ingestion(project, &old).await?;
                    self.metadata.put_ingestion(&entry).await?;
                }
                if !matches!(entry.last_status, Some(RunStatus::Queued | RunStatus::Running)) {
                    continue;
                }
                let status = match &entry.last_run {
                    Some(id) => self
                        .metadata
                        .get_run(project, id)
                        .await?
                        .map(|r| r.status)
                        .filter(|s| s.is_terminal())
                        .unwrap_or(RunStatus::Failed),
                    None => RunStatus::Failed,
                };
                entry.last_status = Some(status);
                self.metadata.put_ingestion(&entry).await?;
            }
        }
        Ok(dropped)
    }
}

/// Holds the work until the catalog entry naming its run is stored.
struct GateWork {
    gate: Option<tokio::sync::oneshot::Receiver<()>>,
    inner: IngestWork,
}

#[async_trait]
impl Work for GateWork {
    fn lineage(&self) -> RunDatasets {
        self.inner.lineage()
    }

    async fn run(&mut self, ctx: JobContext) -> Result<Outcome, AppError> {
        if let Some(gate) = self.gate.take() {
            let _ = gate.await;
        }
        self.inner.run(ctx).await
    }

    async fn finished(&mut self, run: &Run) {
        if let Some(gate) = self.gate.take() {
            let _ = gate.await;
        }
        self.inner.finished(run).await
    }
}

/// `schema.table` as shown in the catalog, or a bare table in `main`.
fn parse_target(target: &str) -> Result<TargetTable, AppError> {
    let (schema, table) = match target.split_once('.') {
        Some((schema, table)) => (Some(schema), table),
        None => (None, target),
    };
    Ok(TargetTable {
        schema: pluto_duck_domain::Identifier::canonical(schema.unwrap_or(pluto_duck_domain::MAIN_SCHEMA))?,
        table: pluto_duck_domain::Identifier::canonical(table)?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::jobs::MAX_JOB_WAIT;
    use std::sync::Arc;

    use chrono::Utc;
    use pluto_duck_domain::{Identifier, SourceConnection, SourceKind, SourceState};

    use super::*;
    use crate::ports::{
        MockMetadataStore, MockResultStore, MockSecretStore, MockSourceCatalog, MockWarehouse, TableInfo,
        WarehouseError,
    };
    use crate::services::{PathPolicy, QueryLimits, QueryService, RunHub};
    use crate::ErrorKind;

    /// Run state goes to the metadata store behind; these tests keep it in memory.
    fn metadata() -> MockMetadataStore {
        let mut md = MockMetadataStore::new();
        md.expect_insert_run().returning(|_| Ok(()));
        md.expect_update_run().returning(|_| Ok(()));
        md.expect_get_setting().returning(|_| Ok(None));
        md.expect_put_setting().returning(|_, _| Ok(()));
        md
    }

    fn service(wh: MockWarehouse, catalog: MockSourceCatalog, md: MockMetadataStore) -> IngestService {
        let (wh, catalog, md): (Arc<dyn Warehouse>, Arc<dyn SourceCatalog>, Arc<dyn MetadataStore>) =
            (Arc::new(wh), Arc::new(catalog), Arc::new(md));
        let jobs = Jobs::new(md.clone(), Arc::new(RunHub::new(100)));
        let changes = Arc::new(ChangeLog::new(md.clone()));
        let queries = Arc::new(QueryService::new(
            wh.clone(),
            Arc::new(MockResultStore::new()),
            jobs.clone(),
            changes.clone(),
            QueryLimits::default(),
        ));
        let sources = Arc::new(SourceService::new(
            catalog.clone(),
            md.clone(),
            Arc::new(MockSecretStore::new()),
            queries,
            PathPolicy::default(),
        ));
        IngestService::new(wh, catalog, md, sources, ConnectorRegistry::builtin(), jobs, changes)
    }

    fn request() -> IngestRequest {
        IngestRequest {
            source: IngestSource::Named("shop".into()),
            table: Some("orders".into()),
            query: None,
            target: None,
            schema: None,
            mode: IngestMode::Replace,
            keys: Vec::new(),
            csv: CsvStrictness::Strict,
            actor: None,
        }
    }

    #[tokio::test]
    async fn a_wait_past_the_limit_is_refused_before_anything_opens() {
        // No expectations: touching a source, the warehouse or the catalog would panic.
        let svc = service(MockWarehouse::new(), MockSourceCatalog::new(), MockMetadataStore::new());
        let p = ProjectId::default_project();
        let too_long = MAX_JOB_WAIT + Duration::from_secs(1);
        let err = svc.submit_and_wait(&p, request(), too_long).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        assert_eq!(err.to_string(), "wait must be between 0 and 3600 seconds");
        let err = svc.sync_and_wait(&p, "main.orders", too_long).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
    }

    #[tokio::test]
    async fn a_job_that_fails_within_the_wait_answers_invalid_naming_the_run() {
        let p = ProjectId::default_project();
        let mut md = metadata();
        let project = p.clone();
        md.expect_get_source().returning(move |_, name| {
            Ok(Some(pluto_duck_domain::Source {
                name: name.clone(),
                project: project.clone(),
                kind: SourceKind::Sqlite,
                description: String::new(),
                connection: SourceConnection::File {
                    path: "/data/shop.db".into(),
                },
                read_only: true,
                created_at: Utc::now(),
            }))
        });
        md.expect_get_ingestion().returning(|_, _| Ok(None));
        md.expect_put_ingestion().returning(|_| Ok(()));
        let mut catalog = MockSourceCatalog::new();
        catalog
            .expect_states()
            .returning(|_| Ok(vec![(Identifier::parse("shop").unwrap(), SourceState::Attached)]));
        catalog.expect_tables().returning(|_, _| {
            Ok(vec![TableInfo {
                schema: "main".into(),
                name: "orders".into(),
                kind: "table".into(),
                estimated_rows: None,
            }])
        });
        let mut wh = MockWarehouse::new();
        wh.expect_load()
            .returning(|_, _, _, _| Err(WarehouseError::Invalid("disk full".into())));
        let svc = service(wh, catalog, md);
        let err = svc
            .submit_and_wait(&p, request(), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        let message = err.to_string();
        assert!(
            message.starts_with("ingest ") && message.ends_with(" failed: disk full"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn an_inspection_samples_at_most_a_thousand_rows() {
        let svc = service(MockWarehouse::new(), MockSourceCatalog::new(), MockMetadataStore::new());
        let source = IngestSource::Named("shop".into());
        let err = svc
            .inspect(&ProjectId::default_project(), &source, None, MAX_SAMPLE_ROWS + 1)
            .await
            .err()
            .unwrap();
        assert_eq!(err.to_string(), "rows must be at most 1000");
    }
}
