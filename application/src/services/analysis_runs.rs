//! Running analyses: the compile plan executed step by step as jobs. Each step materializes its analysis
//! atomically (a failed rebuild leaves the previous object), records a step run and the analysis's state (the
//! definition hash it ran with), and reports progress on the plan's run.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use pluto_duck_domain::{
    bind_parameters, compile_sql, dependencies, plan, resolve_parameters, Analysis, AnalysisState, BoundValue, Dag,
    Identifier, LastRun, Materialization, NodeState, ProjectId, Run, RunEventKind, RunFailure, RunId, RunKind,
    RunStatus, StepAction,
};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn, Instrument};

use super::analyses::{analysis_schema, dag_of, AnalysisService};
use super::caches::exec_count;
use super::run_hub::{RunHub, Subscription};
use crate::connectors::{literal, quote};
use crate::ports::{
    BlobStore, MetadataStore, ParamValue, QueryRequest, RunFilter, SourceCatalog, StatementText, Warehouse,
};
use crate::AppError;

const KEEP_OUTCOMES: usize = 1000;

/// Outcomes by run, and the runs in the order they finished (oldest first) for eviction.
type RecentOutcomes = (HashMap<RunId, Vec<StepOutcome>>, std::collections::VecDeque<RunId>);

#[derive(Debug, Clone, Default)]
pub struct ExecuteOptions {
    /// Run every step of the plan, fresh or not.
    pub force: bool,
    /// Keep running branches that do not depend on a failed step.
    pub continue_on_failure: bool,
    /// Parameter values by name; each step takes those it declares.
    pub params: BTreeMap<String, String>,
    pub actor: Option<String>,
}

/// What happened to one step of an execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutcome {
    pub id: Identifier,
    /// succeeded, failed, skipped, blocked or not_run (after a failure without continue_on_failure).
    pub status: &'static str,
    pub run: Option<RunId>,
    pub rows: u64,
    /// Why it ran, why it was skipped or blocked, or the error.
    pub detail: String,
}

pub struct AnalysisRunner {
    analyses: Arc<AnalysisService>,
    warehouse: Arc<dyn Warehouse>,
    /// Lists the files analyses read, for their modification times.
    catalog: Arc<dyn SourceCatalog>,
    metadata: Arc<dyn MetadataStore>,
    hub: Arc<RunHub>,
    /// Where parquet analyses are written (`<project>/analyses/<id>.parquet`), so they go with their project.
    files: Arc<dyn BlobStore>,
    /// Step outcomes of the most recent runs (bounded; the step runs themselves are in the metadata store).
    outcomes: Mutex<RecentOutcomes>,
    /// One execution at a time: two swaps of one table would conflict.
    running: tokio::sync::Mutex<()>,
}

struct Step {
    analysis: Analysis,
    action: StepAction,
    sql: String,
    params: Vec<BoundValue>,
}

fn to_param(v: &BoundValue) -> ParamValue {
    match v {
        BoundValue::Null => ParamValue::Null,
        BoundValue::Bool(b) => ParamValue::Bool(*b),
        BoundValue::Int(i) => ParamValue::Int(*i),
        BoundValue::Float(f) => ParamValue::Float(*f),
        BoundValue::Text(t) => ParamValue::Text(t.clone()),
    }
}

impl AnalysisRunner {
    pub fn new(
        analyses: Arc<AnalysisService>,
        warehouse: Arc<dyn Warehouse>,
        catalog: Arc<dyn SourceCatalog>,
        metadata: Arc<dyn MetadataStore>,
        hub: Arc<RunHub>,
        files: Arc<dyn BlobStore>,
    ) -> Self {
        Self {
            analyses,
            warehouse,
            catalog,
            metadata,
            hub,
            files,
            outcomes: Mutex::new((HashMap::new(), std::collections::VecDeque::new())),
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// The freshness inputs of every analysis of the project: its last run, and when the tables it reads changed.
    pub async fn states(
        &self,
        project: &ProjectId,
        all: &[Analysis],
    ) -> Result<BTreeMap<Identifier, NodeState>, AppError> {
        let stored: BTreeMap<Identifier, AnalysisState> = self
            .metadata
            .list_analysis_states(project)
            .await?
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
        // When inputs changed: cached copies by refresh, ingested tables by their last good sync.
        let mut changed: BTreeMap<String, chrono::DateTime<Utc>> = BTreeMap::new();
        let cache_schema = pluto_duck_domain::CachedTable::schema_for(project);
        for c in self.metadata.list_caches(project).await? {
            changed.insert(format!("{cache_schema}.{}", c.name), c.refreshed_at);
        }
        for i in self.metadata.list_ingestions(project).await? {
            if i.last_status == Some(RunStatus::Succeeded) {
                changed.insert(i.target.qualified(), i.updated_at);
                if i.target.schema.as_str() == "main" {
                    changed.insert(i.target.table.to_string(), i.updated_at);
                }
            }
        }
        let mut states = BTreeMap::new();
        for a in all {
            let deps = dependencies(&a.sql)?;
            let mut inputs_changed_at: BTreeMap<String, chrono::DateTime<Utc>> = deps
                .relations
                .iter()
                .filter_map(|r| changed.get(r).map(|t| (r.clone(), *t)))
                .collect();
            // Files: the newest modification among what the path or glob matches (local files; remote ones and
            // paths that match nothing say nothing).
            for f in &deps.files {
                if let Ok(entries) = self.catalog.list_files(f).await {
                    if let Some(t) = entries.iter().filter_map(|e| e.modified).max() {
                        inputs_changed_at.insert(f.clone(), t);
                    }
                }
            }
            states.insert(
                a.id.clone(),
                NodeState {
                    definition_hash: a.definition_hash(),
                    last_run: stored.get(&a.id).and_then(|s| {
                        Some(LastRun {
                            succeeded: s.last_status == RunStatus::Succeeded,
                            finished_at: s.finished_at?,
                            definition_hash: s.definition_hash.clone(),
                        })
                    }),
                    inputs_changed_at,
                },
            );
        }
        Ok(states)
    }

    /// Compiles the plan with the given parameters: every step that will run has its SQL and bound values.
    async fn prepare(
        &self,
        project: &ProjectId,
        target: &Analysis,
        opts: &ExecuteOptions,
    ) -> Result<(Dag, Vec<Step>), AppError> {
        let all = self.analyses.list(project, None).await?;
        let dag = dag_of(&all)?;
        let states = self.states(project, &all).await?;
        let by_id: BTreeMap<&Identifier, &Analysis> = all.iter().map(|a| (&a.id, a)).collect();
        let schema = analysis_schema(project);
        let mut ephemeral = BTreeMap::new();
        let mut steps = Vec::new();
        let known: BTreeSet<&str> = all
            .iter()
            .flat_map(|a| a.parameters.iter().map(|p| p.name.as_str()))
            .collect();
        if let Some(unknown) = opts.params.keys().find(|k| !known.contains(k.as_str())) {
            return Err(AppError::Invalid(format!(
                "no analysis in the plan declares the parameter {unknown}"
            )));
        }
        for (node, action) in plan(&dag, &target.id, &states, opts.force) {
            let Some(a) = by_id.get(&node) else { continue };
            let sql = compile_sql(&a.sql, &schema, &ephemeral)?;
            if a.materialization == Materialization::Ephemeral {
                ephemeral.insert(node.clone(), sql);
                continue;
            }
            let values = resolve_parameters(&a.parameters, &opts.params)?;
            let (sql, params) = bind_parameters(&sql, &a.parameters, &values)?;
            if a.materialization == Materialization::View && !params.is_empty() {
                return Err(AppError::Invalid(format!(
                    "{}: a view cannot take parameters; materialize it as a table",
                    a.id
                )));
            }
            steps.push(Step {
                analysis: (*a).clone(),
                action,
                sql,
                params,
            });
        }
        Ok((dag, steps))
    }

    /// Validates, then runs the plan for `id` in the background; the returned run reports its steps as progress.
    pub async fn execute(
        self: &Arc<Self>,
        project: &ProjectId,
        id: &str,
        opts: ExecuteOptions,
    ) -> Result<Run, AppError> {
        let target = self.analyses.get(project, id).await?;
        let (dag, steps) = self.prepare(project, &target, &opts).await?;
        let run_id = RunId::parse(uuid::Uuid::now_v7().to_string())?;
        let mut run = Run::new(
            run_id,
            project.clone(),
            RunKind::AnalysisRun,
            target.id.to_string(),
            Utc::now(),
        );
        if let Some(actor) = opts.actor.clone().filter(|a| !a.is_empty()) {
            run.actor = actor.chars().take(64).collect();
        }
        self.metadata.insert_run(&run).await?;
        self.hub.emit(&run.id, RunEventKind::Queued);
        let this = self.clone();
        let span = tracing::info_span!("analysis_run", run_id = %run.id, target = %target.id);
        let queued = run.clone();
        tokio::spawn(async move { this.run_plan(queued, dag, steps, opts.continue_on_failure).await }.instrument(span));
        Ok(run)
    }

    async fn run_plan(self: Arc<Self>, mut run: Run, dag: Dag, steps: Vec<Step>, continue_on_failure: bool) {
        let _guard = self.running.lock().await;
        if run.start(Utc::now()).is_ok() {
            let _ = self.metadata.update_run(&run).await;
            self.hub.emit(&run.id, RunEventKind::Started);
        }
        let total = steps.len() as u64;
        let (mut failed, mut outcomes, mut rows_total) = (BTreeSet::new(), Vec::new(), 0u64);
        let mut stop = false;
        for (i, step) in steps.into_iter().enumerate() {
            let id = step.analysis.id.clone();
            let blocked_by = dag.upstream_of(&id).into_iter().find(|u| failed.contains(u));
            let outcome = match (&step.action, blocked_by) {
                (_, Some(up)) => {
                    failed.insert(id.clone());
                    StepOutcome {
                        id: id.clone(),
                        status: "blocked",
                        run: None,
                        rows: 0,
                        detail: format!("upstream {up} failed"),
                    }
                }
                _ if stop => StepOutcome {
                    id: id.clone(),
                    status: "not_run",
                    run: None,
                    rows: 0,
                    detail: "an earlier step failed".into(),
                },
                (StepAction::Skip, None) => StepOutcome {
                    id: id.clone(),
                    status: "skipped",
                    run: None,
                    rows: 0,
                    detail: "fresh".into(),
                },
                (StepAction::Blocked(up), None) => StepOutcome {
                    id: id.clone(),
                    status: "blocked",
                    run: None,
                    rows: 0,
                    detail: format!("upstream {up} failed"),
                },
                (StepAction::Run(reasons), None) => {
                    let why = reasons.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                    let o = self.run_step(&run, &step, why).await;
                    if o.status == "failed" {
                        failed.insert(id.clone());
                        stop = !continue_on_failure;
                    }
                    rows_total += o.rows;
                    o
                }
            };
            outcomes.push(outcome);
            self.hub.emit(
                &run.id,
                RunEventKind::PartProgress {
                    part: i as u64 + 1,
                    parts: total,
                    rows: rows_total,
                    bytes: 0,
                },
            );
        }
        let now = Utc::now();
        run.rows = rows_total;
        let bad: Vec<String> = outcomes
            .iter()
            .filter(|o| o.status == "failed")
            .map(|o| format!("{}: {}", o.id, o.detail))
            .collect();
        let _ = if bad.is_empty() {
            run.succeed(now)
        } else {
            run.fail(
                RunFailure {
                    position: None,
                    message: format!("failed steps: {}", bad.join("; ")),
                },
                now,
            )
        };
        info!(
            status = run.status.as_str(),
            steps = outcomes.len(),
            "analysis run finished"
        );
        {
            let mut kept = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
            let (map, order) = &mut *kept;
            while order.len() >= KEEP_OUTCOMES {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
            order.push_back(run.id.clone());
            map.insert(run.id.clone(), outcomes);
        }
        // Stored after the outcomes: whoever sees the run finished also sees its steps.
        if let Err(e) = self.metadata.update_run(&run).await {
            warn!(error = %e, "run state not stored");
        }
        if let Some(kind) = RunEventKind::terminal_for(&run) {
            self.hub.emit(&run.id, kind);
        }
    }

    async fn run_step(&self, parent: &Run, step: &Step, why: String) -> StepOutcome {
        let a = &step.analysis;
        let mut run = Run::new(
            RunId::parse(uuid::Uuid::now_v7().to_string()).unwrap_or_else(|_| parent.id.clone()),
            parent.project.clone(),
            RunKind::AnalysisStep,
            a.id.to_string(),
            Utc::now(),
        );
        run.actor = parent.actor.clone();
        let _ = run.start(Utc::now());
        if let Err(e) = self.metadata.insert_run(&run).await {
            warn!(error = %e, "step run not stored");
        }
        let result = self.materialize(&parent.project, step).await;
        let now = Utc::now();
        let (status, detail) = match &result {
            Ok(rows) => {
                run.rows = *rows;
                let _ = run.succeed(now);
                ("succeeded", why)
            }
            Err(e) => {
                let _ = run.fail(
                    RunFailure {
                        position: None,
                        message: e.to_string(),
                    },
                    now,
                );
                ("failed", e.to_string())
            }
        };
        let _ = self.metadata.update_run(&run).await;
        let state = AnalysisState {
            id: a.id.clone(),
            project: parent.project.clone(),
            definition_hash: a.definition_hash(),
            last_run: Some(run.id.clone()),
            last_status: run.status,
            finished_at: run.finished_at,
            rows: run.rows,
            error: run.failure.as_ref().map(|f| f.message.clone()),
        };
        if let Err(e) = self.metadata.put_analysis_state(&state).await {
            warn!(error = %e, "analysis state not stored");
        }
        StepOutcome {
            id: a.id.clone(),
            status,
            run: Some(run.id),
            rows: run.rows,
            detail,
        }
    }

    async fn exec(&self, statements: Vec<String>) -> Result<u64, AppError> {
        exec_count(self.warehouse.as_ref(), statements, &CancellationToken::new()).await
    }

    /// The last statement carries the step's parameters.
    async fn exec_with(&self, statements: Vec<String>, params: &[BoundValue]) -> Result<u64, AppError> {
        let request = QueryRequest {
            statements: statements
                .into_iter()
                .map(|text| StatementText { text, offset: 0 })
                .collect(),
            params: params.iter().map(to_param).collect(),
        };
        let mut stream = self.warehouse.query(request, CancellationToken::new()).await?;
        let mut count = 0u64;
        while let Some(batch) = futures::StreamExt::next(&mut stream.batches).await {
            let batch = batch?;
            if batch.num_rows() > 0 {
                if let Some(col) = arrow_array::cast::AsArray::as_primitive_opt::<arrow_array::types::Int64Type>(
                    batch.column(0).as_ref(),
                ) {
                    count = u64::try_from(col.value(0)).unwrap_or(0);
                }
            }
        }
        Ok(count)
    }

    /// Runs the swap or merge of a built table; on failure drops the build so nothing half-done stays.
    async fn exec_or_drop(&self, build: &str, statements: Vec<String>) -> Result<u64, AppError> {
        let r = self.exec(statements).await;
        if r.is_err() {
            let _ = self
                .exec(vec![format!("DROP TABLE IF EXISTS {build}"), "SELECT 0".into()])
                .await;
        }
        r
    }

    /// `view`, `table` or absent: what the warehouse holds under the analysis's name.
    async fn existing(&self, schema: &str, name: &str) -> Result<Option<&'static str>, AppError> {
        let views = self
            .exec(vec![format!(
                "SELECT count(*)::BIGINT FROM duckdb_views() WHERE database_name = current_database() \
                 AND schema_name = {} AND view_name = {}",
                literal(schema),
                literal(name)
            )])
            .await?;
        if views > 0 {
            return Ok(Some("VIEW"));
        }
        let tables = self
            .exec(vec![format!(
                "SELECT count(*)::BIGINT FROM duckdb_tables() WHERE database_name = current_database() \
                 AND schema_name = {} AND table_name = {}",
                literal(schema),
                literal(name)
            )])
            .await?;
        Ok((tables > 0).then_some("TABLE"))
    }

    async fn materialize(&self, project: &ProjectId, step: &Step) -> Result<u64, AppError> {
        let a = &step.analysis;
        let schema_name = analysis_schema(project);
        let schema = quote(&schema_name);
        let dest = format!("{schema}.{}", quote(a.id.as_str()));
        let build = format!("{schema}.{}", quote(&format!("__pd_build_{}", a.id)));
        let create_schema = format!("CREATE SCHEMA IF NOT EXISTS {schema}");
        let existing = self.existing(&schema_name, a.id.as_str()).await?;
        let drop_old = match existing {
            Some(kind) => format!("DROP {kind} IF EXISTS {dest}"),
            None => "SELECT 0".into(),
        };
        let (sql, params) = (&step.sql, step.params.as_slice());
        let swap = |rows_sql: String| {
            vec![
                drop_old.clone(),
                format!("ALTER TABLE {build} RENAME TO {}", quote(a.id.as_str())),
                rows_sql,
            ]
        };
        match &a.materialization {
            Materialization::Ephemeral => Ok(0),
            Materialization::View => {
                self.exec(vec![
                    create_schema,
                    drop_old.clone(),
                    format!("CREATE VIEW {dest} AS {sql}"),
                    "SELECT 0::BIGINT".into(),
                ])
                .await
            }
            Materialization::Table => {
                // Built aside; the swap is one transaction, so a failure leaves the previous table readable.
                self.exec_with(
                    vec![create_schema, format!("CREATE OR REPLACE TABLE {build} AS {sql}")],
                    params,
                )
                .await?;
                self.exec_or_drop(&build, swap(format!("SELECT count(*)::BIGINT FROM {dest}")))
                    .await
            }
            Materialization::Append => {
                if existing != Some("TABLE") {
                    self.exec_with(
                        vec![create_schema, format!("CREATE OR REPLACE TABLE {build} AS {sql}")],
                        params,
                    )
                    .await?;
                    return self
                        .exec_or_drop(&build, swap(format!("SELECT count(*)::BIGINT FROM {dest}")))
                        .await;
                }
                self.exec_with(vec![format!("INSERT INTO {dest} BY NAME {sql}")], params)
                    .await
            }
            Materialization::Incremental { unique_key, cursor } => {
                if existing != Some("TABLE") {
                    self.exec_with(
                        vec![create_schema, format!("CREATE OR REPLACE TABLE {build} AS {sql}")],
                        params,
                    )
                    .await?;
                    return self
                        .exec_or_drop(&build, swap(format!("SELECT count(*)::BIGINT FROM {dest}")))
                        .await;
                }
                let filter = cursor
                    .as_ref()
                    .map(|c| {
                        let c = quote(c);
                        format!(" WHERE (SELECT max({c}) FROM {dest}) IS NULL OR {c} > (SELECT max({c}) FROM {dest})")
                    })
                    .unwrap_or_default();
                self.exec_with(
                    vec![format!(
                        "CREATE OR REPLACE TABLE {build} AS SELECT * FROM ({sql}){filter}"
                    )],
                    params,
                )
                .await?;
                let mut statements = Vec::new();
                if !unique_key.is_empty() {
                    let on: Vec<String> = unique_key
                        .iter()
                        .map(|k| format!("{dest}.{k} IS NOT DISTINCT FROM {build}.{k}", k = quote(k)))
                        .collect();
                    statements.push(format!("DELETE FROM {dest} USING {build} WHERE {}", on.join(" AND ")));
                }
                statements.push(format!("INSERT INTO {dest} BY NAME SELECT * FROM {build}"));
                let added = self.exec(vec![format!("SELECT count(*)::BIGINT FROM {build}")]).await?;
                statements.push(format!("DROP TABLE {build}"));
                statements.push(format!("SELECT {added}::BIGINT"));
                self.exec_or_drop(&build, statements).await
            }
            Materialization::Parquet => {
                let file = self
                    .files
                    .local_path(&format!("{project}/analyses/{}.parquet", a.id))
                    .await?;
                // DuckDB writes beside the old file and renames, so readers never see half a file.
                let rows = self
                    .exec_with(
                        vec![format!("COPY ({sql}) TO {} (FORMAT parquet)", literal(&file))],
                        params,
                    )
                    .await?;
                self.exec(vec![
                    create_schema,
                    drop_old.clone(),
                    format!("CREATE VIEW {dest} AS SELECT * FROM read_parquet({})", literal(&file)),
                    "SELECT 0::BIGINT".into(),
                ])
                .await?;
                Ok(rows)
            }
        }
    }

    pub async fn get(&self, project: &ProjectId, id: &str) -> Result<(Run, Vec<StepOutcome>), AppError> {
        let id = RunId::parse(id)?;
        let run = self
            .metadata
            .get_run(project, &id)
            .await?
            .filter(|r| r.kind == RunKind::AnalysisRun)
            .ok_or_else(|| AppError::NotFound {
                what: "analysis run",
                id: id.to_string(),
            })?;
        let steps = self
            .outcomes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .get(&run.id)
            .cloned()
            .unwrap_or_default();
        Ok((run, steps))
    }

    pub async fn wait(
        &self,
        project: &ProjectId,
        id: &RunId,
        max: Duration,
    ) -> Result<(Run, Vec<StepOutcome>), AppError> {
        let (run, _) = self.get(project, id.as_str()).await?;
        if !run.status.is_terminal() && !max.is_zero() {
            self.hub.wait_terminal(&run.id, max).await;
        }
        self.get(project, id.as_str()).await
    }

    pub async fn events(&self, project: &ProjectId, id: &str, after: u64) -> Result<Subscription, AppError> {
        let (run, _) = self.get(project, id).await?;
        Ok(self.hub.events_of(&run, after))
    }

    /// The step runs of one analysis, newest first.
    pub async fn history(&self, project: &ProjectId, id: &str, limit: u32) -> Result<Vec<Run>, AppError> {
        let analysis = self.analyses.get(project, id).await?;
        Ok(self
            .metadata
            .list_runs(&RunFilter {
                project: project.clone(),
                kind: Some(RunKind::AnalysisStep),
                status: None,
                input: Some(analysis.id.to_string()),
                limit: limit.clamp(1, 1000),
                offset: 0,
            })
            .await?)
    }

    /// Deletes the definition; with `drop_object` also its table or view (the definition goes first, so a failed
    /// drop leaves an orphan object rather than a definition without its data).
    pub async fn delete(&self, project: &ProjectId, id: &str, drop_object: bool) -> Result<Analysis, AppError> {
        let analysis = self.analyses.delete(project, id).await?;
        if drop_object {
            let schema = analysis_schema(project);
            if let Some(kind) = self.existing(&schema, analysis.id.as_str()).await? {
                self.exec(vec![
                    format!(
                        "DROP {kind} IF EXISTS {}.{}",
                        quote(&schema),
                        quote(analysis.id.as_str())
                    ),
                    "SELECT 0::BIGINT".into(),
                ])
                .await?;
            }
        }
        Ok(analysis)
    }

    /// The analysis, or not found.
    pub async fn analysis(&self, project: &ProjectId, id: &str) -> Result<Analysis, AppError> {
        self.analyses.get(project, id).await
    }

    /// The query reading an analysis's rows (`limit` 0 for all). Conflict while it has none: ephemeral, or never
    /// run successfully.
    pub async fn data_sql(
        &self,
        project: &ProjectId,
        id: &str,
        limit: u64,
        offset: u64,
    ) -> Result<(Analysis, String), AppError> {
        let analysis = self.analyses.get(project, id).await?;
        if analysis.materialization == Materialization::Ephemeral {
            return Err(AppError::Conflict(format!(
                "{id} is ephemeral: it has no data of its own"
            )));
        }
        // The relation exists once a run of the analysis succeeded: one such run is enough to know.
        let succeeded = self
            .metadata
            .list_runs(&RunFilter {
                project: project.clone(),
                kind: Some(RunKind::AnalysisStep),
                status: Some(RunStatus::Succeeded),
                input: Some(analysis.id.to_string()),
                limit: 1,
                offset: 0,
            })
            .await?;
        if succeeded.is_empty() {
            return Err(AppError::Conflict(format!("{id} has no data yet: execute it first")));
        }
        let limit = if limit == 0 {
            String::new()
        } else {
            format!(" LIMIT {limit}")
        };
        let sql = format!(
            "SELECT * FROM {}.{}{limit} OFFSET {offset}",
            quote(&analysis_schema(project)),
            quote(analysis.id.as_str())
        );
        Ok((analysis, sql))
    }

    /// The compile plan with freshness from the recorded runs.
    pub async fn compile(
        &self,
        project: &ProjectId,
        id: &str,
        force: bool,
    ) -> Result<Vec<super::analyses::CompiledStep>, AppError> {
        let all = self.analyses.list(project, None).await?;
        let states = self.states(project, &all).await?;
        self.analyses.compile(project, id, force, &states).await
    }

    /// The plan as it stands now, with freshness from the recorded runs.
    pub async fn freshness(&self, project: &ProjectId, id: &str) -> Result<Vec<(Identifier, StepAction)>, AppError> {
        let target = self.analyses.get(project, id).await?;
        let all = self.analyses.list(project, None).await?;
        let dag = dag_of(&all)?;
        let states = self.states(project, &all).await?;
        Ok(plan(&dag, &target.id, &states, false))
    }
}
