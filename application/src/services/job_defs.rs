//! Named jobs (`/jobs`): units of work a project defines once and runs many times, by hand, on a cron schedule,
//! or as reported by an outside system. A job's run is a `Run` of kind `job` through [`Jobs`]: its work starts
//! the child run that does the job (a query, an analysis run, an ingest, a dbt invocation) through that kind's
//! service, follows it, and ends as it ended, with the child's id, inputs and outputs in its detail.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, Utc};
use pluto_duck_domain::{JobDefinition, JobSchedule, JobTask, ProjectId, Run, RunFailure, RunId, RunKind, RunStatus};
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tracing::{info, warn};

use super::analysis_runs::{AnalysisRunner, ExecuteOptions};
use super::dbt::{DbtRequest, DbtService};
use super::ingest::{IngestRequest, IngestService, IngestSource};
use super::jobs::{JobContext, JobSpec, Jobs, Outcome, Work, MAX_JOB_WAIT};
use super::query::{QueryService, QuerySubmission};
use super::run_hub::Subscription;
use super::run_lineage::{LineageService, RunDatasets};
use crate::ports::{CsvStrictness, DbtCommand, LineageDataset, MetadataStore, RunFilter};
use crate::AppError;

/// A job as a client writes it.
#[derive(Debug, Clone)]
pub struct JobDraft {
    pub name: String,
    pub description: String,
    pub task: JobTask,
    pub schedule: Option<JobSchedule>,
    pub paused: bool,
}

/// A job with how it is doing.
#[derive(Debug, Clone)]
pub struct JobStatus {
    pub job: JobDefinition,
    pub last_run: Option<Run>,
    /// When the scheduler starts it next (none without a schedule, or paused).
    pub next_due: Option<DateTime<Utc>>,
}

/// What changed among a project's jobs and their runs (`/jobs/events`).
#[derive(Debug, Clone, PartialEq)]
pub struct JobEvent {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub project: ProjectId,
    pub job: String,
    /// `job.created`, `job.updated`, `job.deleted`, `run.started`, `run.finished`, `run.skipped`.
    pub change: &'static str,
    pub run: Option<RunId>,
    pub status: Option<RunStatus>,
}

/// A run reported by an outside system: how it ended and what it read and wrote.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub status: RunStatus,
    pub message: Option<String>,
    pub rows: u64,
    pub inputs: Vec<LineageDataset>,
    pub outputs: Vec<LineageDataset>,
}

/// What a job run read and wrote, and the run that did the work.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobRunDetail {
    pub child: Option<(RunKind, RunId)>,
    /// OpenLineage names (`namespace`, `name`) of what it read and wrote; `table` marks the project's tables.
    pub inputs: Vec<RunDataset>,
    pub outputs: Vec<RunDataset>,
    pub external: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDataset {
    pub namespace: String,
    pub name: String,
    /// A table of the project's database (`schema.table`), when it is one.
    pub table: Option<String>,
}

/// Parses and checks a cron expression: 5 fields, or 6 with seconds first.
pub fn parse_cron(expr: &str) -> Result<croner::Cron, AppError> {
    croner::Cron::new(expr.trim())
        .with_seconds_optional()
        .parse()
        .map_err(|e| AppError::Invalid(format!("cron {expr:?} is not a valid expression: {e}")))
}

/// The schedule's first slot strictly after `after`.
pub fn next_slot(schedule: &JobSchedule, after: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, AppError> {
    let cron = parse_cron(&schedule.cron)?;
    let offset = FixedOffset::east_opt(schedule.offset_seconds()?)
        .ok_or_else(|| AppError::Invalid("timezone offset out of range".into()))?;
    Ok(cron
        .find_next_occurrence(&after.with_timezone(&offset), false)
        .ok()
        .map(|t| t.with_timezone(&Utc)))
}

const EVENT_BUFFER: usize = 1024;

pub struct JobService {
    metadata: Arc<dyn MetadataStore>,
    jobs: Arc<Jobs>,
    queries: Arc<QueryService>,
    analyses: Arc<AnalysisRunner>,
    ingest: Arc<IngestService>,
    dbt: Arc<DbtService>,
    lineage: Arc<LineageService>,
    /// The run each job has going, so two runs of one job never overlap when the scheduler starts them.
    active: Mutex<HashMap<(ProjectId, String), RunId>>,
    seq: AtomicU64,
    tx: broadcast::Sender<JobEvent>,
}

impl JobService {
    pub fn new(
        metadata: Arc<dyn MetadataStore>,
        jobs: Arc<Jobs>,
        queries: Arc<QueryService>,
        analyses: Arc<AnalysisRunner>,
        ingest: Arc<IngestService>,
        dbt: Arc<DbtService>,
        lineage: Arc<LineageService>,
    ) -> Self {
        Self {
            metadata,
            jobs,
            queries,
            analyses,
            ingest,
            dbt,
            lineage,
            active: Mutex::new(HashMap::new()),
            seq: AtomicU64::new(0),
            tx: broadcast::channel(EVENT_BUFFER).0,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.tx.subscribe()
    }

    fn publish(&self, project: &ProjectId, job: &str, change: &'static str, run: Option<&Run>) {
        let _ = self.tx.send(JobEvent {
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            at: Utc::now(),
            project: project.clone(),
            job: job.to_owned(),
            change,
            run: run.map(|r| r.id.clone()),
            status: run.map(|r| r.status),
        });
    }

    fn check(draft: &JobDraft) -> Result<(), AppError> {
        if let Some(s) = &draft.schedule {
            parse_cron(&s.cron)?;
        }
        if let JobTask::Analysis { params, .. } | JobTask::Dbt { vars: params, .. } = &draft.task {
            match serde_json::from_str::<Value>(params) {
                Ok(Value::Object(_)) => {}
                _ => return Err(AppError::Invalid("params and vars must be JSON objects".into())),
            }
        }
        Ok(())
    }

    async fn project_exists(&self, project: &ProjectId) -> Result<(), AppError> {
        self.metadata
            .get_project(project)
            .await?
            .ok_or_else(|| AppError::NotFound {
                what: "project",
                id: project.to_string(),
            })?;
        Ok(())
    }

    pub async fn create(&self, project: &ProjectId, draft: JobDraft) -> Result<JobDefinition, AppError> {
        Self::check(&draft)?;
        self.project_exists(project).await?;
        let now = Utc::now();
        let job = JobDefinition {
            project: project.clone(),
            name: pluto_duck_domain::Identifier::canonical(draft.name)?,
            description: draft.description,
            task: draft.task,
            schedule: draft.schedule,
            paused: draft.paused,
            created_at: now,
            updated_at: now,
            // The schedule counts from its creation: a new job waits for its first slot.
            last_scheduled_at: Some(now),
        };
        job.validate()?;
        self.metadata.insert_job(&job).await?;
        self.publish(project, job.name.as_str(), "job.created", None);
        Ok(job)
    }

    /// Replaces what the job does and when; its name, creation and schedule position stay.
    pub async fn update(&self, project: &ProjectId, name: &str, draft: JobDraft) -> Result<JobDefinition, AppError> {
        Self::check(&draft)?;
        let old = self.get(project, name).await?;
        let job = JobDefinition {
            description: draft.description,
            task: draft.task,
            schedule: draft.schedule,
            paused: draft.paused,
            updated_at: Utc::now(),
            ..old
        };
        job.validate()?;
        self.metadata.update_job(&job).await?;
        self.publish(project, job.name.as_str(), "job.updated", None);
        Ok(job)
    }

    pub async fn get(&self, project: &ProjectId, name: &str) -> Result<JobDefinition, AppError> {
        let id = pluto_duck_domain::Identifier::canonical(name)?;
        self.metadata
            .get_job(project, &id)
            .await?
            .ok_or_else(|| AppError::NotFound {
                what: "job",
                id: name.to_owned(),
            })
    }

    pub async fn status(&self, project: &ProjectId, name: &str) -> Result<JobStatus, AppError> {
        let job = self.get(project, name).await?;
        self.status_of(job).await
    }

    async fn status_of(&self, job: JobDefinition) -> Result<JobStatus, AppError> {
        let last_run = self.runs(&job.project, job.name.as_str(), 1).await?.into_iter().next();
        let next_due = match (&job.schedule, job.paused) {
            (Some(s), false) => next_slot(s, job.last_scheduled_at.unwrap_or(job.created_at))?,
            _ => None,
        };
        Ok(JobStatus {
            job,
            last_run,
            next_due,
        })
    }

    /// The project's jobs, by name, with their status.
    pub async fn list(&self, project: &ProjectId) -> Result<Vec<JobStatus>, AppError> {
        let mut out = Vec::new();
        for job in self.metadata.list_jobs(Some(project.clone())).await? {
            out.push(self.status_of(job).await?);
        }
        Ok(out)
    }

    /// Removes the job; its runs stay in the run history.
    pub async fn delete(&self, project: &ProjectId, name: &str) -> Result<(), AppError> {
        let job = self.get(project, name).await?;
        self.metadata.delete_job(project, &job.name).await?;
        self.publish(project, job.name.as_str(), "job.deleted", None);
        Ok(())
    }

    /// The job's runs, newest first.
    pub async fn runs(&self, project: &ProjectId, name: &str, limit: u32) -> Result<Vec<Run>, AppError> {
        self.jobs
            .list(&RunFilter {
                project: project.clone(),
                kind: Some(RunKind::Job),
                status: None,
                input: Some(name.to_ascii_lowercase()),
                limit,
                offset: 0,
            })
            .await
    }

    pub async fn run(&self, project: &ProjectId, name: &str, id: &str) -> Result<Run, AppError> {
        let run = self.jobs.get(project, id, RunKind::Job).await?;
        if !run.input.eq_ignore_ascii_case(name) {
            return Err(AppError::NotFound {
                what: "job run",
                id: id.to_owned(),
            });
        }
        Ok(run)
    }

    pub async fn wait(&self, project: &ProjectId, name: &str, id: &str, max: Duration) -> Result<Run, AppError> {
        self.run(project, name, id).await?;
        self.jobs.wait(project, id, RunKind::Job, max).await
    }

    pub async fn events(
        &self,
        project: &ProjectId,
        name: &str,
        id: &str,
        after: u64,
    ) -> Result<Subscription, AppError> {
        self.run(project, name, id).await?;
        self.jobs.events(project, id, RunKind::Job, after).await
    }

    pub async fn cancel(&self, project: &ProjectId, name: &str, id: &str) -> Result<Run, AppError> {
        self.run(project, name, id).await?;
        self.jobs.cancel(project, id, RunKind::Job).await
    }

    /// Starts a run of the job now.
    pub async fn start(
        self: &Arc<Self>,
        project: &ProjectId,
        name: &str,
        actor: Option<String>,
    ) -> Result<Run, AppError> {
        let job = self.get(project, name).await?;
        self.start_job(&job, actor)
    }

    fn start_job(self: &Arc<Self>, job: &JobDefinition, actor: Option<String>) -> Result<Run, AppError> {
        let run = self.jobs.submit(
            JobSpec {
                project: job.project.clone(),
                kind: RunKind::Job,
                input: job.name.to_string(),
                actor,
                timeout: None,
            },
            JobWork {
                service: self.clone(),
                job: job.clone(),
                lineage: planned_lineage(job),
                child: Arc::new(Mutex::new(None)),
            },
        )?;
        self.lock_active()
            .insert((job.project.clone(), job.name.to_string()), run.id.clone());
        self.publish(&job.project, job.name.as_str(), "run.started", Some(&run));
        Ok(run)
    }

    fn lock_active(&self) -> std::sync::MutexGuard<'_, HashMap<(ProjectId, String), RunId>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a run whose work an outside system does (it reports the end with [`Self::complete`]).
    pub async fn open_external(
        &self,
        project: &ProjectId,
        name: &str,
        actor: Option<String>,
        inputs: Vec<LineageDataset>,
        outputs: Vec<LineageDataset>,
    ) -> Result<Run, AppError> {
        let job = self.get(project, name).await?;
        let datasets = RunDatasets {
            job: Some(job.name.to_string()),
            inputs,
            outputs,
            ..RunDatasets::default()
        };
        let mut run = self
            .jobs
            .open_external(
                JobSpec {
                    project: project.clone(),
                    kind: RunKind::Job,
                    input: job.name.to_string(),
                    actor,
                    timeout: None,
                },
                &datasets,
            )
            .await?;
        run.detail = Some(detail_json(&self.lineage, &run, &datasets, None, true));
        self.jobs.record(&run);
        self.publish(project, job.name.as_str(), "run.started", Some(&run));
        Ok(run)
    }

    /// Ends an outside system's run with what it reported.
    pub async fn complete(
        &self,
        project: &ProjectId,
        name: &str,
        id: &str,
        report: RunReport,
    ) -> Result<Run, AppError> {
        let mut run = self.run(project, name, id).await?;
        if !report.status.is_terminal() {
            return Err(AppError::Invalid(
                "status must be succeeded, failed or cancelled".into(),
            ));
        }
        let external = run
            .detail
            .as_deref()
            .and_then(|d| serde_json::from_str::<Value>(d).ok())
            .is_some_and(|d| d["external"] == Value::Bool(true));
        if !external {
            return Err(AppError::Conflict(format!(
                "run {id} is run by this server; only runs opened for an outside system are completed by it"
            )));
        }
        if run.status.is_terminal() {
            return Err(AppError::Conflict(format!(
                "run {id} already finished ({})",
                run.status.as_str()
            )));
        }
        run.status = report.status;
        run.rows = report.rows;
        run.failure = match report.status {
            RunStatus::Succeeded => None,
            _ => Some(RunFailure {
                message: report
                    .message
                    .unwrap_or_else(|| report.status.as_str().replace('_', " ")),
                position: None,
            }),
        };
        let datasets = RunDatasets {
            job: Some(run.input.clone()),
            inputs: report.inputs,
            outputs: report.outputs,
            ..RunDatasets::default()
        };
        run.detail = Some(detail_json(&self.lineage, &run, &datasets, None, true));
        let run = self.jobs.report(run, &datasets).await?;
        self.publish(project, name, "run.finished", Some(&run));
        Ok(run)
    }

    /// One pass of the scheduler: every job whose next slot has come is started once (slots missed while the
    /// server was down collapse into one run); a job whose previous run still goes is skipped, and the skip
    /// recorded as a cancelled run.
    pub async fn run_due(self: &Arc<Self>, now: DateTime<Utc>) -> Result<u32, AppError> {
        let mut started = 0;
        for mut job in self.metadata.list_jobs(None).await? {
            let Some(schedule) = job.schedule.clone().filter(|_| !job.paused) else {
                continue;
            };
            let due = match next_slot(&schedule, job.last_scheduled_at.unwrap_or(job.created_at)) {
                Ok(Some(t)) if t <= now => t,
                Ok(_) => continue,
                Err(e) => {
                    warn!(job = %job.name, error = %e, "job schedule unusable");
                    continue;
                }
            };
            job.last_scheduled_at = Some(now);
            self.metadata.update_job(&job).await?;
            let key = (job.project.clone(), job.name.to_string());
            let going = self.lock_active().get(&key).cloned();
            let busy = match going {
                Some(id) => self
                    .jobs
                    .get(&job.project, id.as_str(), RunKind::Job)
                    .await
                    .map(|r| (!r.status.is_terminal()).then_some(r.id))
                    .unwrap_or(None),
                None => None,
            };
            if let Some(busy) = busy {
                info!(job = %job.name, %due, running = %busy, "scheduled run skipped: the previous one still runs");
                self.record_skip(&job, &busy, due);
                continue;
            }
            match self.start_job(&job, Some("scheduler".into())) {
                Ok(_) => started += 1,
                Err(e) => warn!(job = %job.name, error = %e, "scheduled run not started"),
            }
        }
        Ok(started)
    }

    fn record_skip(&self, job: &JobDefinition, busy: &RunId, due: DateTime<Utc>) {
        let Ok(id) = RunId::parse(uuid::Uuid::now_v7().to_string()) else {
            return;
        };
        let now = Utc::now();
        let mut run = Run::new(id, job.project.clone(), RunKind::Job, job.name.to_string(), now);
        run.actor = "scheduler".into();
        let _ = run.cancel(now);
        run.failure = Some(RunFailure {
            message: format!("skipped: the run due at {due} found run {busy} of this job still running"),
            position: None,
        });
        run.detail = Some(json!({ "skipped": true, "running": busy.as_str() }).to_string());
        self.jobs.record(&run);
        self.publish(&job.project, job.name.as_str(), "run.skipped", Some(&run));
    }

    /// Starts the scheduler: a pass at once (runs missed while the server was down) and then every `every`. It
    /// holds the service weakly and stops when the service goes.
    /// In a fleet (`fleet_holder` names this server) only the holder of the job-scheduler lease makes passes, so a
    /// due slot starts one run across the servers; the lease moves when its holder stops renewing it for 15 s.
    pub fn spawn_scheduler(self: &Arc<Self>, every: Duration, fleet_holder: Option<String>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(service) = weak.upgrade() else { break };
                if let Some(holder) = &fleet_holder {
                    match service.metadata.try_lease("job-scheduler", holder, 15).await {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(e) => {
                            warn!(error = %e, "job scheduler lease not taken");
                            continue;
                        }
                    }
                }
                if let Err(e) = service.run_due(Utc::now()).await {
                    warn!(error = %e, "job scheduler pass failed");
                }
            }
        });
    }

    async fn start_child(&self, job: &JobDefinition) -> Result<Run, AppError> {
        let p = &job.project;
        let actor = Some(format!("job:{}", job.name).chars().take(64).collect::<String>());
        match &job.task {
            JobTask::Sql { sql } => {
                self.queries
                    .submit(
                        p,
                        QuerySubmission {
                            sql: sql.clone(),
                            timeout_ms: None,
                            max_rows: None,
                            read_only: false,
                            params: Vec::new(),
                            actor,
                        },
                    )
                    .await
            }
            JobTask::Analysis {
                analysis,
                params,
                force,
            } => {
                let params: BTreeMap<String, String> = serde_json::from_str::<serde_json::Map<String, Value>>(params)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())))
                    .collect();
                self.analyses
                    .execute(
                        p,
                        analysis.as_str(),
                        ExecuteOptions {
                            force: *force,
                            continue_on_failure: false,
                            params,
                            actor,
                        },
                    )
                    .await
            }
            JobTask::Ingest(i) => {
                self.ingest
                    .submit(
                        p,
                        IngestRequest {
                            source: IngestSource::Named(i.source.to_string()),
                            table: i.table.clone(),
                            query: i.query.clone(),
                            target: i.target.clone(),
                            schema: i.schema.clone(),
                            mode: i.mode,
                            keys: i.keys.clone(),
                            csv: if i.lenient_csv {
                                CsvStrictness::Lenient
                            } else {
                                CsvStrictness::Strict
                            },
                            actor,
                        },
                    )
                    .await
            }
            JobTask::Dbt {
                command,
                select,
                exclude,
                vars,
            } => {
                let command = match command.as_str() {
                    "run" => DbtCommand::Run,
                    "build" => DbtCommand::Build,
                    "test" => DbtCommand::Test,
                    "seed" => DbtCommand::Seed,
                    _ => DbtCommand::Compile,
                };
                let mut request = DbtRequest::new(command);
                request.select = select.clone();
                request.exclude = exclude.clone();
                request.vars = serde_json::from_str(vars).unwrap_or_default();
                request.actor = actor;
                self.dbt.submit(p, request).await
            }
        }
    }
}

fn child_kind(task: &JobTask) -> RunKind {
    match task {
        JobTask::Sql { .. } => RunKind::Query,
        JobTask::Analysis { .. } => RunKind::AnalysisRun,
        JobTask::Ingest(_) => RunKind::Ingest,
        JobTask::Dbt { .. } => RunKind::Dbt,
    }
}

/// What a job reads and writes as far as its definition tells.
fn planned_lineage(job: &JobDefinition) -> RunDatasets {
    let mut d = match &job.task {
        JobTask::Sql { sql } => pluto_duck_domain::split_statements(sql)
            .map(|s| RunDatasets::of_sql(&s))
            .unwrap_or_default(),
        JobTask::Analysis { analysis, .. } => RunDatasets {
            tables_written: vec![super::analyses::analysis_relation(analysis).to_string()],
            ..RunDatasets::default()
        },
        JobTask::Ingest(i) => RunDatasets {
            tables_written: i
                .target
                .as_ref()
                .or(i.table.as_ref())
                .map(|t| {
                    let t = t.rsplit('.').next().unwrap_or(t);
                    format!("{}.{}", i.schema.as_deref().unwrap_or("main"), t).to_ascii_lowercase()
                })
                .into_iter()
                .collect(),
            ..RunDatasets::default()
        },
        JobTask::Dbt { .. } => RunDatasets::default(),
    };
    d.job = Some(job.name.to_string());
    d
}

/// The detail of a job run: its child run, and what it read and wrote (named as lineage names them).
fn detail_json(
    lineage: &LineageService,
    run: &Run,
    datasets: &RunDatasets,
    child: Option<(&RunKind, &RunId)>,
    external: bool,
) -> String {
    let (inputs, outputs) = lineage.resolve(run, datasets);
    let table_of = |d: &LineageDataset| -> Value {
        if d.name.namespace.starts_with("duckdb://") {
            let name = d.name.name.split_once('.').map(|(_, t)| t).unwrap_or(&d.name.name);
            Value::String(name.to_owned())
        } else {
            Value::Null
        }
    };
    let list = |items: &[LineageDataset]| -> Value {
        items
            .iter()
            .map(|d| json!({ "namespace": d.name.namespace, "name": d.name.name, "table": table_of(d) }))
            .collect()
    };
    json!({
        "child_run": child.map(|(_, id)| id.as_str()),
        "child_kind": child.map(|(k, _)| k.as_str()),
        "inputs": list(&inputs),
        "outputs": list(&outputs),
        "external": external,
    })
    .to_string()
}

/// Reads a job run's detail back.
pub fn job_run_detail(run: &Run) -> JobRunDetail {
    let Some(v) = run
        .detail
        .as_deref()
        .and_then(|d| serde_json::from_str::<Value>(d).ok())
    else {
        return JobRunDetail::default();
    };
    let list = |v: &Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|d| RunDataset {
                        namespace: d["namespace"].as_str().unwrap_or_default().to_owned(),
                        name: d["name"].as_str().unwrap_or_default().to_owned(),
                        table: d["table"].as_str().map(str::to_owned),
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let child = match (v["child_kind"].as_str(), v["child_run"].as_str()) {
        (Some(k), Some(id)) => RunKind::parse(k).ok().zip(RunId::parse(id).ok()),
        _ => None,
    };
    JobRunDetail {
        child,
        inputs: list(&v["inputs"]),
        outputs: list(&v["outputs"]),
        external: v["external"].as_bool().unwrap_or(false),
    }
}

struct JobWork {
    service: Arc<JobService>,
    job: JobDefinition,
    lineage: RunDatasets,
    child: Arc<Mutex<Option<RunId>>>,
}

#[async_trait]
impl Work for JobWork {
    fn lineage(&self) -> RunDatasets {
        self.lineage.clone()
    }

    async fn run(&mut self, ctx: JobContext) -> Result<Outcome, AppError> {
        let kind = child_kind(&self.job.task);
        let child = self.service.start_child(&self.job).await?;
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child.id.clone());
        ctx.emit(pluto_duck_domain::RunEventKind::Custom {
            name: "child".into(),
            data: json!({ "run": child.id.as_str(), "kind": kind.as_str() }).to_string(),
        });
        let jobs = &self.service.jobs;
        tokio::select! {
            _ = jobs.hub().wait_terminal(&child.id, MAX_JOB_WAIT) => {}
            _ = ctx.cancel.cancelled() => {
                let _ = jobs.cancel(&ctx.project, child.id.as_str(), kind).await;
            }
        }
        let done = jobs
            .wait(&ctx.project, child.id.as_str(), kind, Duration::from_secs(30))
            .await?;
        let probe = Run {
            project: ctx.project.clone(),
            ..done.clone()
        };
        let detail = detail_json(
            &self.service.lineage,
            &probe,
            &self.lineage,
            Some((&kind, &done.id)),
            false,
        );
        let failed = match done.status {
            RunStatus::Succeeded => None,
            other => Some(format!(
                "{} run {} {}: {}",
                kind.as_str(),
                done.id,
                other.as_str().replace('_', " "),
                done.failure.map(|f| f.message).unwrap_or_default()
            )),
        };
        if failed.is_some() && ctx.cancel.is_cancelled() {
            return Err(AppError::Invalid("cancelled".into()));
        }
        Ok(Outcome {
            rows: done.rows,
            bytes: done.bytes,
            columns: done.columns,
            truncated: done.truncated,
            detail: Some(detail),
            failed,
            lineage: None,
        })
    }

    async fn finished(&mut self, run: &Run) {
        let key = (self.job.project.clone(), self.job.name.to_string());
        let mut active = self.service.lock_active();
        if active.get(&key) == Some(&run.id) {
            active.remove(&key);
        }
        drop(active);
        self.service
            .publish(&self.job.project, self.job.name.as_str(), "run.finished", Some(run));
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn schedule(cron: &str, tz: &str) -> JobSchedule {
        JobSchedule {
            cron: cron.into(),
            timezone: tz.into(),
        }
    }

    #[test]
    fn slots_follow_the_expression_in_its_time_zone() {
        let t = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        // 03:00 at +02:00 is 01:00 UTC, the next day.
        let next = next_slot(&schedule("0 3 * * *", "+02:00"), t).unwrap().unwrap();
        assert_eq!(next, Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0).unwrap());
        // Six fields: seconds first; strictly after.
        let next = next_slot(&schedule("*/10 * * * * *", "UTC"), t).unwrap().unwrap();
        assert_eq!(next, t + chrono::Duration::seconds(10));
    }

    #[test]
    fn bad_expressions_are_invalid() {
        for bad in ["", "61 * * * *", "* * *", "every minute"] {
            let e = parse_cron(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Invalid, "{bad}");
        }
    }

    #[test]
    fn a_job_run_detail_reads_back() {
        let run = Run {
            detail: Some(
                json!({"child_run": "abc", "child_kind": "query", "external": false,
                    "inputs": [{"namespace": "file", "name": "/x.csv", "table": null}],
                    "outputs": [{"namespace": "duckdb:///w.duckdb", "name": "warehouse.main.t", "table": "main.t"}]})
                .to_string(),
            ),
            ..Run::new(
                RunId::parse("r").unwrap(),
                ProjectId::default_project(),
                RunKind::Job,
                "j".into(),
                Utc::now(),
            )
        };
        let d = job_run_detail(&run);
        assert_eq!(d.child, Some((RunKind::Query, RunId::parse("abc").unwrap())));
        assert_eq!(d.inputs[0].table, None);
        assert_eq!(d.outputs[0].table.as_deref(), Some("main.t"));
    }
}
