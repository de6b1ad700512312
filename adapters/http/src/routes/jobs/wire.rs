//! Wire types of `/api/v1/jobs`: job definitions, their runs with inputs and outputs, and job change events.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use pluto_duck_application::ports::{CsvStrictness, LineageDataset};
use pluto_duck_application::{job_run_detail, IngestRequest, IngestSource, JobDraft, JobEvent, JobStatus, RunDataset};
use pluto_duck_domain::{DatasetName, Identifier, JobDefinition, JobIngest, JobSchedule, JobTask, Run, RunStatus};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, PartialSchema, ToSchema};

use crate::openapi::{text_enum, IdentifierText, RunIdText};
use crate::problem::ApiError;
use crate::routes::ingest::JobIngestBody as IngestBody;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct JobPath {
    /// The job.
    #[param(value_type = IdentifierText)]
    pub name: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct JobRunPath {
    /// The job.
    #[param(value_type = IdentifierText)]
    pub name: String,
    /// The run.
    #[param(value_type = RunIdText)]
    pub id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunListParams {
    /// Runs to list, newest first (default 50, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// What a job runs: `kind` says which, the other fields are that kind's.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum JobTaskBody {
    /// SQL statements run as one query (writes allowed).
    Sql { sql: String },
    /// An analysis run (with whatever it depends on).
    Analysis {
        #[schema(value_type = IdentifierText)]
        analysis: String,
        /// Parameter values by name.
        #[serde(default)]
        #[schema(value_type = Object)]
        params: serde_json::Map<String, Value>,
        /// Run every step, fresh or not.
        #[serde(default)]
        force: bool,
    },
    /// The ingest request of `POST /ingest`, with `source` naming a stored source (an inline configuration
    /// carries a password, which a stored job does not keep).
    Ingest(IngestBody),
    /// A dbt command over the project's dbt project.
    Dbt {
        #[schema(value_type = DbtJobCommand)]
        command: String,
        #[serde(default)]
        select: Vec<String>,
        #[serde(default)]
        exclude: Vec<String>,
        #[serde(default)]
        #[schema(value_type = Object)]
        vars: serde_json::Map<String, Value>,
    },
}

text_enum!(
    /// The dbt commands a job may run.
    DbtJobCommand,
    "run, build, test, seed or compile",
    ["run", "build", "test", "seed", "compile"]
);

/// When the job runs by itself.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    /// A cron expression: 5 fields (minute hour day month weekday), or 6 with seconds first.
    #[schema(example = "0 3 * * *")]
    pub cron: String,
    /// `UTC` (default) or a fixed offset such as `+02:00`.
    pub timezone: Option<String>,
}

/// A job: a named unit of work, optionally on a schedule.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobBody {
    /// The job's name (on create; a replace keeps the name of the path).
    #[schema(value_type = Option<IdentifierText>)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: String,
    pub task: JobTaskBody,
    pub schedule: Option<ScheduleBody>,
    /// A paused job keeps its schedule but is not started by it.
    #[serde(default)]
    pub paused: bool,
}

impl JobBody {
    pub fn into_draft(self, name: String) -> Result<JobDraft, ApiError> {
        let task = match self.task {
            JobTaskBody::Sql { sql } => JobTask::Sql { sql },
            JobTaskBody::Analysis {
                analysis,
                params,
                force,
            } => JobTask::Analysis {
                analysis: Identifier::canonical(analysis).map_err(|e| ApiError::invalid(e.to_string()))?,
                params: Value::Object(params).to_string(),
                force,
            },
            JobTaskBody::Ingest(body) => {
                let req = IngestRequest::try_from(body)?;
                let IngestSource::Named(source) = req.source else {
                    return Err(ApiError::invalid(
                        "a job's ingest names a stored source: an inline configuration holds a password, which a \
                         job does not store",
                    ));
                };
                JobTask::Ingest(JobIngest {
                    source: Identifier::canonical(source).map_err(|e| ApiError::invalid(e.to_string()))?,
                    table: req.table,
                    query: req.query,
                    target: req.target,
                    schema: req.schema,
                    mode: req.mode,
                    keys: req.keys,
                    lenient_csv: req.csv == CsvStrictness::Lenient,
                })
            }
            JobTaskBody::Dbt {
                command,
                select,
                exclude,
                vars,
            } => JobTask::Dbt {
                command,
                select,
                exclude,
                vars: Value::Object(vars).to_string(),
            },
        };
        Ok(JobDraft {
            name,
            description: self.description,
            task,
            schedule: self.schedule.map(|s| JobSchedule {
                cron: s.cron,
                timezone: s.timezone.unwrap_or_else(|| "UTC".into()),
            }),
            paused: self.paused,
        })
    }
}

fn task_json(task: &JobTask) -> Value {
    let obj = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(json!({}));
    match task {
        JobTask::Sql { sql } => json!({ "kind": "sql", "sql": sql }),
        JobTask::Analysis {
            analysis,
            params,
            force,
        } => json!({ "kind": "analysis", "analysis": analysis.as_str(), "params": obj(params), "force": force }),
        JobTask::Ingest(i) => json!({
            "kind": "ingest", "source": i.source.as_str(), "table": i.table, "query": i.query, "target": i.target,
            "schema": i.schema, "mode": i.mode.as_str(), "keys": i.keys,
            "csv": if i.lenient_csv { "lenient" } else { "strict" },
        }),
        JobTask::Dbt {
            command,
            select,
            exclude,
            vars,
        } => json!({ "kind": "dbt", "command": command, "select": select, "exclude": exclude, "vars": obj(vars) }),
    }
}

/// A job with its last run and its next scheduled time.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobDto {
    #[schema(value_type = IdentifierText)]
    pub name: String,
    pub description: String,
    /// What it runs, in the shape it was given (`kind` and that kind's fields).
    #[schema(value_type = Object)]
    pub task: Value,
    pub schedule: Option<ScheduleBody>,
    pub paused: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_run: Option<JobRunDto>,
    /// When the scheduler starts it next.
    pub next_due: Option<DateTime<Utc>>,
    /// Its runs.
    pub runs: String,
}

impl JobDto {
    pub fn from_status(s: JobStatus) -> Self {
        let mut dto = Self::from_job(s.job);
        dto.last_run = s.last_run.map(JobRunDto::from_run);
        dto.next_due = s.next_due;
        dto
    }

    pub fn from_job(job: JobDefinition) -> Self {
        Self {
            runs: format!("/api/v1/jobs/{}/runs", job.name),
            name: job.name.to_string(),
            description: job.description,
            task: task_json(&job.task),
            schedule: job.schedule.map(|s| ScheduleBody {
                cron: s.cron,
                timezone: Some(s.timezone),
            }),
            paused: job.paused,
            created_at: job.created_at,
            updated_at: job.updated_at,
            last_run: None,
            next_due: None,
        }
    }
}

/// A dataset a run read or wrote, named as OpenLineage names it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunDatasetDto {
    /// `duckdb:///…/warehouse.duckdb`, `postgres://host:5432`, `s3://bucket`, `file`.
    pub namespace: String,
    /// `warehouse.main.orders`, `db.schema.table`, an object key, an absolute path.
    pub name: String,
    /// The project's table (`schema.table`) when it is one (ignored in requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
}

impl From<RunDataset> for RunDatasetDto {
    fn from(d: RunDataset) -> Self {
        Self {
            namespace: d.namespace,
            name: d.name,
            table: d.table,
        }
    }
}

impl RunDatasetDto {
    pub fn into_lineage(self) -> Result<LineageDataset, ApiError> {
        DatasetName::new(self.namespace, self.name)
            .map(LineageDataset::new)
            .map_err(|e| ApiError::invalid(e.to_string()))
    }
}

/// The run that did a job run's work.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChildRunDto {
    /// query, analysis_run, ingest or dbt.
    pub kind: String,
    #[schema(value_type = RunIdText)]
    pub id: String,
}

/// One run of a job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobRunDto {
    #[schema(value_type = RunIdText)]
    pub id: String,
    #[schema(value_type = IdentifierText)]
    pub job: String,
    /// queued, running, succeeded, failed, cancelled, timed_out.
    pub status: String,
    /// `api`, `scheduler`, or what an outside system named itself.
    pub actor: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub elapsed_ms: Option<u64>,
    pub rows: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The query, analysis run, ingest or dbt run that did the work.
    pub child_run: Option<ChildRunDto>,
    /// Reported by an outside system (`PUT .../complete` ends it).
    pub external: bool,
    pub inputs: Vec<RunDatasetDto>,
    pub outputs: Vec<RunDatasetDto>,
    /// SSE of the run.
    pub events: String,
}

impl JobRunDto {
    pub fn from_run(run: Run) -> Self {
        let d = job_run_detail(&run);
        Self {
            events: format!("/api/v1/jobs/{}/runs/{}/events", run.input, run.id),
            elapsed_ms: run.elapsed_ms(Utc::now()),
            id: run.id.to_string(),
            job: run.input,
            status: run.status.as_str().to_owned(),
            actor: run.actor,
            created_at: run.created_at,
            started_at: run.started_at,
            finished_at: run.finished_at,
            rows: run.rows,
            error: run.failure.map(|f| f.message),
            child_run: d.child.map(|(k, id)| ChildRunDto {
                kind: k.as_str().to_owned(),
                id: id.to_string(),
            }),
            external: d.external,
            inputs: d.inputs.into_iter().map(Into::into).collect(),
            outputs: d.outputs.into_iter().map(Into::into).collect(),
        }
    }
}

/// What a run read and wrote.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunDatasetsDto {
    pub inputs: Vec<RunDatasetDto>,
    pub outputs: Vec<RunDatasetDto>,
}

/// The project's tables a run read and wrote (`schema.table`).
#[derive(Debug, Serialize, ToSchema)]
pub struct RunTablesDto {
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

/// Opens a run whose work an outside system does; it ends it with `PUT .../complete`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExternalRunBody {
    #[serde(default)]
    pub inputs: Vec<RunDatasetDto>,
    #[serde(default)]
    pub outputs: Vec<RunDatasetDto>,
}

text_enum!(
    /// How an outside system's run ended.
    CompletedStatus,
    "succeeded, failed or cancelled",
    ["succeeded", "failed", "cancelled"]
);

/// How an outside system's run ended and what it read and wrote.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRunBody {
    #[schema(value_type = CompletedStatus)]
    pub status: String,
    /// Why it failed.
    pub message: Option<String>,
    #[serde(default)]
    pub rows: u64,
    #[serde(default)]
    pub inputs: Vec<RunDatasetDto>,
    #[serde(default)]
    pub outputs: Vec<RunDatasetDto>,
}

impl CompleteRunBody {
    pub fn status(&self) -> Result<RunStatus, ApiError> {
        match self.status.as_str() {
            "succeeded" => Ok(RunStatus::Succeeded),
            "failed" => Ok(RunStatus::Failed),
            "cancelled" => Ok(RunStatus::Cancelled),
            other => Err(ApiError::invalid(format!(
                "status must be succeeded, failed or cancelled, not {other:?}"
            ))),
        }
    }
}

text_enum!(
    /// Job change events.
    JobEventName,
    "job.created, job.updated, job.deleted, run.started, run.finished, run.skipped",
    ["job.created", "job.updated", "job.deleted", "run.started", "run.finished", "run.skipped"]
);

/// A change among the project's jobs and their runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobEventData {
    pub at: DateTime<Utc>,
    #[schema(value_type = IdentifierText)]
    pub job: String,
    #[schema(value_type = JobEventName)]
    pub change: String,
    #[schema(value_type = Option<RunIdText>)]
    pub run: Option<String>,
    /// The run's status at the change.
    pub status: Option<String>,
}

impl From<&JobEvent> for JobEventData {
    fn from(e: &JobEvent) -> Self {
        Self {
            at: e.at,
            job: e.job.clone(),
            change: e.change.to_owned(),
            run: e.run.as_ref().map(|r| r.to_string()),
            status: e.status.map(|s| s.as_str().to_owned()),
        }
    }
}

/// One job change as an SSE client yields it (`event`, `id`, `data` lines).
pub struct JobEventFrame;

impl PartialSchema for JobEventFrame {
    fn schema() -> RefOr<Schema> {
        crate::routes::runs::sse_frame_schema(
            "One change, as an SSE client yields it (`event`, `id`, `data` lines)",
            &JobEventName::name(),
            "Increases by one per change since the server started",
            &JobEventData::name(),
            "The change as JSON (a JobEventData)",
        )
    }
}

impl ToSchema for JobEventFrame {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("JobEventFrame")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((JobEventName::name().into_owned(), JobEventName::schema()));
        schemas.push((JobEventData::name().into_owned(), JobEventData::schema()));
    }
}
