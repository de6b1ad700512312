//! Running analyses: the compile plan executed step by step as one run. Each step materializes its analysis
//! through the warehouse (atomically: a failed rebuild leaves the previous object), records a step run and the
//! analysis's state (the definition and parameter values it ran with), and reports progress on the plan's run.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use pluto_duck_domain::{
    bind_parameters, canonical_relation, compile_sql, dependencies, params_hash, plan, resolve_parameters, Analysis,
    AnalysisState, BoundValue, Dag, Identifier, LastRun, Materialization, NodeState, ProjectId, Run, RunEventKind,
    RunFailure, RunId, RunKind, RunStatus, StaleReason, StepAction,
};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::analyses::{analysis_relation, dag_of, AnalysisService};
use super::changes::ChangeLog;
use super::jobs::{job_wait, JobContext, JobSpec, Jobs, Outcome, Work};
use super::query::QueryService;
use super::run_hub::Subscription;
use crate::ports::{
    ExportFormat, ExportedFile, Materialize, MetadataStore, ParamValue, QueryRequest, ResultPage, RunFilter,
    SourceCatalog, SourceRef, Warehouse,
};
use crate::AppError;

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
    pub status: String,
    pub run: Option<RunId>,
    pub rows: u64,
    /// Why it ran, why it was skipped or blocked, or the error.
    pub detail: String,
}

impl StepOutcome {
    fn to_json(steps: &[StepOutcome]) -> String {
        serde_json::Value::Array(
            steps
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "id": s.id.as_str(), "status": s.status, "run": s.run.as_ref().map(|r| r.to_string()),
                        "rows": s.rows, "detail": s.detail,
                    })
                })
                .collect(),
        )
        .to_string()
    }

    fn from_json(text: &str) -> Vec<StepOutcome> {
        let Ok(serde_json::Value::Array(items)) = serde_json::from_str::<serde_json::Value>(text) else {
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|v| {
                Some(StepOutcome {
                    id: Identifier::parse(v["id"].as_str()?).ok()?,
                    status: v["status"].as_str()?.to_owned(),
                    run: v["run"].as_str().and_then(|r| RunId::parse(r).ok()),
                    rows: v["rows"].as_u64().unwrap_or(0),
                    detail: v["detail"].as_str().unwrap_or_default().to_owned(),
                })
            })
            .collect()
    }
}

/// Whether an analysis is fresh, and the steps a run would execute with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freshness {
    pub fresh: bool,
    pub stale: Vec<(Identifier, Vec<StaleReason>)>,
}

pub struct AnalysisRunner {
    analyses: Arc<AnalysisService>,
    warehouse: Arc<dyn Warehouse>,
    /// Lists the files analyses read, for their modification times.
    catalog: Arc<dyn SourceCatalog>,
    metadata: Arc<dyn MetadataStore>,
    jobs: Arc<Jobs>,
    changes: Arc<ChangeLog>,
    queries: Arc<QueryService>,
    /// One execution per project at a time: two swaps of one table would conflict.
    running: Mutex<HashMap<ProjectId, Arc<tokio::sync::Mutex<()>>>>,
}

struct Step {
    analysis: Analysis,
    action: StepAction,
    sql: String,
    params: Vec<BoundValue>,
    params_hash: String,
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

/// The hash of the values an analysis gets from `given` (its defaults where not given).
fn values_hash(a: &Analysis, given: &BTreeMap<String, String>) -> String {
    match resolve_parameters(&a.parameters, given) {
        Ok(values) => params_hash(values.iter().map(|(k, v)| (k.as_str(), format!("{v:?}")))),
        Err(_) => params_hash(
            a.parameters
                .iter()
                .filter_map(|p| given.get(p.name.as_str()).map(|v| (p.name.as_str(), v.clone()))),
        ),
    }
}

impl AnalysisRunner {
    pub fn new(
        analyses: Arc<AnalysisService>,
        warehouse: Arc<dyn Warehouse>,
        catalog: Arc<dyn SourceCatalog>,
        metadata: Arc<dyn MetadataStore>,
        jobs: Arc<Jobs>,
        changes: Arc<ChangeLog>,
        queries: Arc<QueryService>,
    ) -> Self {
        Self {
            analyses,
            warehouse,
            catalog,
            metadata,
            jobs,
            changes,
            queries,
            running: Mutex::new(HashMap::new()),
        }
    }

    /// The freshness inputs of every analysis of the project for an execution with `params`: its last run (and
    /// the values it used), and when the tables and files it reads changed.
    pub async fn states(
        &self,
        project: &ProjectId,
        all: &[Analysis],
        params: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<Identifier, NodeState>, AppError> {
        let stored: BTreeMap<Identifier, AnalysisState> = self
            .metadata
            .list_analysis_states(project)
            .await?
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
        let changed = self.changes.changed(project).await?;
        let here = SourceRef::Project(project.clone());
        let mut states = BTreeMap::new();
        for a in all {
            let deps = dependencies(&a.sql)?;
            let mut inputs_changed_at: BTreeMap<String, chrono::DateTime<Utc>> = deps
                .relations
                .iter()
                .filter_map(|r| changed.get(&canonical_relation(r)).map(|t| (r.clone(), *t)))
                .collect();
            // Files: the newest modification among what the path or glob matches (files the sandbox can read;
            // remote ones and paths that match nothing say nothing).
            for f in &deps.files {
                if let Ok(entries) = self.catalog.list_files(&here, f).await {
                    if let Some(t) = entries.iter().filter_map(|e| e.modified).max() {
                        inputs_changed_at.insert(f.clone(), t);
                    }
                }
            }
            states.insert(
                a.id.clone(),
                NodeState {
                    definition_hash: a.definition_hash(),
                    params_hash: values_hash(a, params),
                    last_run: stored.get(&a.id).and_then(|s| {
                        Some(LastRun {
                            succeeded: s.last_status == RunStatus::Succeeded,
                            finished_at: s.finished_at?,
                            definition_hash: s.definition_hash.clone(),
                            params_hash: s.params_hash.clone(),
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
        let states = self.states(project, &all, &opts.params).await?;
        let by_id: BTreeMap<&Identifier, &Analysis> = all.iter().map(|a| (&a.id, a)).collect();
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
            let sql = compile_sql(&a.sql, &ephemeral)?;
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
                params_hash: values_hash(a, &opts.params),
                analysis: (*a).clone(),
                action,
                sql,
                params,
            });
        }
        Ok((dag, steps))
    }

    fn project_lock(&self, project: &ProjectId) -> Arc<tokio::sync::Mutex<()>> {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(project.clone())
            .or_default()
            .clone()
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
        self.jobs.submit(
            JobSpec {
                project: project.clone(),
                kind: RunKind::AnalysisRun,
                input: target.id.to_string(),
                actor: opts.actor.clone(),
                timeout: None,
            },
            PlanWork {
                runner: self.clone(),
                dag,
                steps,
                continue_on_failure: opts.continue_on_failure,
                actor: opts.actor.unwrap_or_else(|| "api".into()),
            },
        )
    }

    /// Executes like [`Self::execute`] and waits up to `wait` (at most [`MAX_JOB_WAIT`](super::jobs::MAX_JOB_WAIT)) for the run; answers it in
    /// whatever state it reached, with its steps once it finished.
    pub async fn execute_and_wait(
        self: &Arc<Self>,
        project: &ProjectId,
        id: &str,
        opts: ExecuteOptions,
        wait: Duration,
    ) -> Result<(Run, Vec<StepOutcome>), AppError> {
        job_wait(wait.as_secs_f64())?;
        let run = self.execute(project, id, opts).await?;
        self.wait(project, &run.id, wait).await
    }

    async fn run_step(&self, parent: &JobContext, actor: &str, step: &Step, why: String) -> StepOutcome {
        let a = &step.analysis;
        let mut run = Run::new(
            RunId::parse(uuid::Uuid::now_v7().to_string()).unwrap_or_else(|_| parent.run.clone()),
            parent.project.clone(),
            RunKind::AnalysisStep,
            a.id.to_string(),
            Utc::now(),
        );
        run.actor = actor.to_owned();
        let _ = run.start(Utc::now());
        let result = self
            .warehouse
            .materialize(
                &parent.project,
                Materialize {
                    relation: analysis_relation(&a.id),
                    select: step.sql.clone(),
                    params: step.params.iter().map(to_param).collect(),
                    how: a.materialization.clone(),
                },
                parent.cancel.clone(),
            )
            .await;
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
        self.jobs.record(&run);
        if run.status == RunStatus::Succeeded {
            self.changes
                .record(&parent.project, &[analysis_relation(&a.id).to_string()], "analysis")
                .await;
        }
        let state = AnalysisState {
            id: a.id.clone(),
            project: parent.project.clone(),
            definition_hash: a.definition_hash(),
            params_hash: Some(step.params_hash.clone()),
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
            status: status.into(),
            run: Some(run.id),
            rows: run.rows,
            detail,
        }
    }

    /// The run and its steps.
    pub async fn get(&self, project: &ProjectId, id: &str) -> Result<(Run, Vec<StepOutcome>), AppError> {
        let run = self.jobs.get(project, id, RunKind::AnalysisRun).await?;
        let steps = run.detail.as_deref().map(StepOutcome::from_json).unwrap_or_default();
        Ok((run, steps))
    }

    pub async fn wait(
        &self,
        project: &ProjectId,
        id: &RunId,
        max: Duration,
    ) -> Result<(Run, Vec<StepOutcome>), AppError> {
        self.jobs.wait(project, id.as_str(), RunKind::AnalysisRun, max).await?;
        self.get(project, id.as_str()).await
    }

    pub async fn events(&self, project: &ProjectId, id: &str, after: u64) -> Result<Subscription, AppError> {
        self.jobs.events(project, id, RunKind::AnalysisRun, after).await
    }

    /// The step runs of one analysis, newest first.
    pub async fn history(&self, project: &ProjectId, id: &str, limit: u32) -> Result<Vec<Run>, AppError> {
        let analysis = self.analyses.get(project, id).await?;
        self.jobs
            .list(&RunFilter {
                project: project.clone(),
                kind: Some(RunKind::AnalysisStep),
                status: None,
                input: Some(analysis.id.to_string()),
                limit: limit.clamp(1, 1000),
                offset: 0,
            })
            .await
    }

    /// Deletes the definition; with `drop_object` also its table or view (the definition goes first, so a failed
    /// drop leaves an orphan object rather than a definition without its data).
    pub async fn delete(&self, project: &ProjectId, id: &str, drop_object: bool) -> Result<Analysis, AppError> {
        let analysis = self.analyses.delete(project, id).await?;
        if drop_object {
            self.warehouse
                .drop_relation(project, &analysis_relation(&analysis.id))
                .await?;
        }
        Ok(analysis)
    }

    /// The analysis, or not found.
    pub async fn analysis(&self, project: &ProjectId, id: &str) -> Result<Analysis, AppError> {
        self.analyses.get(project, id).await
    }

    /// The query reading an analysis's rows. Conflict while it has none: ephemeral, or never run successfully.
    async fn data_query(&self, project: &ProjectId, id: &str) -> Result<(Analysis, String), AppError> {
        let analysis = self.analyses.get(project, id).await?;
        if analysis.materialization == Materialization::Ephemeral {
            return Err(AppError::Conflict(format!(
                "{id} is ephemeral: it has no data of its own"
            )));
        }
        let ran = self
            .metadata
            .list_analysis_states(project)
            .await?
            .into_iter()
            .any(|s| s.id == analysis.id && s.last_run.is_some() && s.finished_at.is_some())
            && self
                .warehouse
                .relation_kind(project, &analysis_relation(&analysis.id))
                .await?
                .is_some();
        if !ran {
            return Err(AppError::Conflict(format!("{id} has no data yet: execute it first")));
        }
        let r = analysis_relation(&analysis.id);
        Ok((analysis, format!("SELECT * FROM \"{}\".\"{}\"", r.schema, r.name)))
    }

    /// A page of an analysis's rows (`limit` 0 for all), read as a query of the project.
    pub async fn data(
        &self,
        project: &ProjectId,
        id: &str,
        limit: u64,
        offset: u64,
    ) -> Result<(Run, ResultPage), AppError> {
        let (_, sql) = self.data_query(project, id).await?;
        let limit_sql = if limit == 0 {
            String::new()
        } else {
            format!(" LIMIT {limit}")
        };
        self.queries
            .read(
                project,
                format!("{sql}{limit_sql} OFFSET {offset}"),
                None,
                "analysis",
                Duration::from_secs(300),
            )
            .await
    }

    /// Every row of an analysis as a file the engine writes (CSV or Parquet), for a download.
    pub async fn export(&self, project: &ProjectId, id: &str, format: ExportFormat) -> Result<ExportedFile, AppError> {
        let (_, sql) = self.data_query(project, id).await?;
        Ok(self
            .warehouse
            .export(project, QueryRequest::sql(sql), format, CancellationToken::new())
            .await?)
    }

    /// The compile plan with freshness from the recorded runs.
    pub async fn compile(
        &self,
        project: &ProjectId,
        id: &str,
        force: bool,
    ) -> Result<Vec<super::analyses::CompiledStep>, AppError> {
        let all = self.analyses.list(project, None).await?;
        let states = self.states(project, &all, &BTreeMap::new()).await?;
        self.analyses.compile(project, id, force, &states).await
    }

    /// Whether the analysis is fresh, and which steps of its plan as it stands now would run, and why.
    pub async fn freshness(&self, project: &ProjectId, id: &str) -> Result<Freshness, AppError> {
        let target = self.analyses.get(project, id).await?;
        let all = self.analyses.list(project, None).await?;
        let dag = dag_of(&all)?;
        let states = self.states(project, &all, &BTreeMap::new()).await?;
        let plan = plan(&dag, &target.id, &states, false);
        let fresh = plan.last().is_some_and(|(_, a)| !matches!(a, StepAction::Run(_)));
        let stale = plan
            .into_iter()
            .filter_map(|(id, action)| match action {
                StepAction::Run(reasons) => Some((id, reasons)),
                StepAction::Skip | StepAction::Blocked(_) => None,
            })
            .collect();
        Ok(Freshness { fresh, stale })
    }
}

/// One execution of a plan.
struct PlanWork {
    runner: Arc<AnalysisRunner>,
    dag: Dag,
    steps: Vec<Step>,
    continue_on_failure: bool,
    actor: String,
}

#[async_trait]
impl Work for PlanWork {
    async fn run(&mut self, ctx: JobContext) -> Result<Outcome, AppError> {
        let lock = self.runner.project_lock(&ctx.project);
        let _one_at_a_time = lock.lock().await;
        let total = self.steps.len() as u64;
        let (mut failed, mut outcomes, mut rows_total) = (BTreeSet::new(), Vec::new(), 0u64);
        let mut stop = false;
        for (i, step) in self.steps.iter().enumerate() {
            let id = step.analysis.id.clone();
            let blocked_by = self.dag.upstream_of(&id).into_iter().find(|u| failed.contains(u));
            let outcome = match (&step.action, blocked_by) {
                (_, Some(up)) => {
                    failed.insert(id.clone());
                    outcome(&id, "blocked", format!("upstream {up} failed"))
                }
                _ if stop || ctx.cancel.is_cancelled() => outcome(&id, "not_run", "an earlier step failed".into()),
                (StepAction::Skip, None) => outcome(&id, "skipped", "fresh".into()),
                (StepAction::Blocked(up), None) => outcome(&id, "blocked", format!("upstream {up} failed")),
                (StepAction::Run(reasons), None) => {
                    let why = reasons.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                    let o = self.runner.run_step(&ctx, &self.actor, step, why).await;
                    if o.status == "failed" {
                        failed.insert(id.clone());
                        stop = !self.continue_on_failure;
                    }
                    rows_total += o.rows;
                    o
                }
            };
            outcomes.push(outcome);
            ctx.emit(RunEventKind::PartProgress {
                part: i as u64 + 1,
                parts: total,
                rows: rows_total,
                bytes: 0,
            });
        }
        if ctx.cancel.is_cancelled() {
            return Err(AppError::Invalid("cancelled".into()));
        }
        let bad: Vec<String> = outcomes
            .iter()
            .filter(|o| o.status == "failed")
            .map(|o| format!("{}: {}", o.id, o.detail))
            .collect();
        info!(steps = outcomes.len(), failed = bad.len(), "analysis run finished");
        Ok(Outcome {
            rows: rows_total,
            detail: Some(StepOutcome::to_json(&outcomes)),
            failed: (!bad.is_empty()).then(|| format!("failed steps: {}", bad.join("; "))),
            ..Outcome::default()
        })
    }
}

fn outcome(id: &Identifier, status: &str, detail: String) -> StepOutcome {
    StepOutcome {
        id: id.clone(),
        status: status.into(),
        run: None,
        rows: 0,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::super::jobs::MAX_JOB_WAIT;
    use std::sync::Mutex as StdMutex;

    use super::*;
    use crate::ports::{MockAnalysisStore, MockMetadataStore, MockResultStore, MockSourceCatalog, MockWarehouse};
    use crate::services::{AnalysisDraft, QueryLimits, RunHub};
    use crate::ErrorKind;

    /// Analyses kept in a map; run state and table changes in a metadata mock that stores nothing.
    fn runner(md: MockMetadataStore) -> Arc<AnalysisRunner> {
        let data: Arc<StdMutex<BTreeMap<Identifier, Analysis>>> = Arc::default();
        let mut store = MockAnalysisStore::new();
        let d = data.clone();
        store
            .expect_list()
            .returning(move |_| Ok(d.lock().unwrap().values().cloned().collect()));
        let d = data.clone();
        store
            .expect_get()
            .returning(move |_, id| Ok(d.lock().unwrap().get(id).cloned()));
        let d = data;
        store.expect_put().returning(move |a| {
            d.lock().unwrap().insert(a.id.clone(), a.clone());
            Ok(())
        });
        let md: Arc<dyn MetadataStore> = Arc::new(md);
        let wh: Arc<dyn Warehouse> = Arc::new(MockWarehouse::new());
        let jobs = Jobs::new(md.clone(), Arc::new(RunHub::new(100)));
        let changes = Arc::new(ChangeLog::new(md.clone()));
        let queries = Arc::new(QueryService::new(
            wh.clone(),
            Arc::new(MockResultStore::new()),
            jobs.clone(),
            changes.clone(),
            QueryLimits::default(),
        ));
        Arc::new(AnalysisRunner::new(
            Arc::new(AnalysisService::new(Arc::new(store))),
            wh,
            Arc::new(MockSourceCatalog::new()),
            md,
            jobs,
            changes,
            queries,
        ))
    }

    fn draft(id: &str, sql: &str) -> AnalysisDraft {
        AnalysisDraft {
            id: id.into(),
            name: None,
            sql: sql.into(),
            description: String::new(),
            tags: Vec::new(),
            materialization: Materialization::Table,
            parameters: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_wait_past_the_limit_is_refused_before_anything_runs() {
        // No expectations: reading an analysis or the run state would panic.
        let r = runner(MockMetadataStore::new());
        let err = r
            .execute_and_wait(
                &ProjectId::default_project(),
                "a",
                ExecuteOptions::default(),
                MAX_JOB_WAIT + Duration::from_millis(1),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        assert_eq!(err.to_string(), "wait must be between 0 and 3600 seconds");
    }

    #[tokio::test]
    async fn a_chain_that_never_ran_is_stale_step_by_step() {
        let mut md = MockMetadataStore::new();
        md.expect_list_analysis_states().returning(|_| Ok(Vec::new()));
        md.expect_get_setting().returning(|_| Ok(None));
        let r = runner(md);
        let p = ProjectId::default_project();
        r.analyses.create(&p, draft("a", "SELECT 1 AS x")).await.unwrap();
        r.analyses
            .create(&p, draft("b", "SELECT x FROM {{ ref('a') }}"))
            .await
            .unwrap();
        let f = r.freshness(&p, "b").await.unwrap();
        assert!(!f.fresh);
        let ids: Vec<&str> = f.stale.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(f.stale.iter().all(|(_, reasons)| !reasons.is_empty()));
    }
}
