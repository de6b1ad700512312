//! `/api/v1/dbt`: dbt invocations as runs (with SSE node events), their per-node results, and the models' status.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::Json;
use chrono::{DateTime, Utc};
use futures::Stream;
use pluto_duck_application::ports::DbtCommand;
use pluto_duck_application::{DbtModelStatus, DbtRequest};
use pluto_duck_domain::{NodeEvent, Run};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::runs::{sse_stream, RunEventFrame, RunPath};
use crate::extract::{ApiJson, ApiPath, ApiQuery, LastEventId, ProjectScope};
use crate::problem::ApiError;
use crate::AppState;

const MAX_WAIT_SECS: f64 = 3600.0;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit_dbt))
        .routes(routes!(list_dbt_runs))
        .routes(routes!(get_dbt_run))
        .routes(routes!(dbt_events))
        .routes(routes!(cancel_dbt))
        .routes(routes!(list_dbt_models))
}

/// The dbt commands a client may start.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DbtCommandDto {
    Run,
    Test,
    Build,
    Seed,
    Compile,
    /// `dbt ls`: the selected nodes, in the run's `listed`.
    Ls,
}

impl From<DbtCommandDto> for DbtCommand {
    fn from(c: DbtCommandDto) -> Self {
        match c {
            DbtCommandDto::Run => DbtCommand::Run,
            DbtCommandDto::Test => DbtCommand::Test,
            DbtCommandDto::Build => DbtCommand::Build,
            DbtCommandDto::Seed => DbtCommand::Seed,
            DbtCommandDto::Compile => DbtCommand::Compile,
            DbtCommandDto::Ls => DbtCommand::List,
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DbtBody {
    /// dbt node selection (`--select`), one selector per item: `orders+`, `tag:nightly`.
    #[serde(default)]
    pub select: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    /// `--vars`, a JSON object.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub vars: serde_json::Map<String, serde_json::Value>,
    /// `--full-refresh` (run, build, seed and compile).
    #[serde(default)]
    pub full_refresh: bool,
    /// The profile target (`--target`).
    pub target: Option<String>,
    /// A dbt project of the request's own (an absolute path under one of `dbt.request_roots`) instead of the
    /// configured one.
    pub project_dir: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct WaitParams {
    /// Wait up to this many seconds for dbt to finish (default 0: answer 202 at once).
    wait: Option<f64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// Runs to list, newest first (default 50).
    limit: Option<u32>,
}

/// One node of a dbt run.
#[derive(Debug, Serialize, ToSchema)]
pub struct DbtNodeDto {
    pub unique_id: String,
    pub name: String,
    pub resource_type: String,
    /// dbt's status: success, pass, warn, fail, error, skipped.
    pub status: String,
    pub execution_time_ms: u64,
    pub rows_affected: Option<u64>,
    pub message: Option<String>,
    /// Rows a test found.
    pub failures: Option<u64>,
    pub relation_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DbtRunDto {
    pub id: String,
    pub project: String,
    /// queued, running, succeeded, failed, cancelled, timed_out
    pub status: String,
    /// The command and its flags: `build --select orders+`.
    pub command: String,
    pub actor: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub elapsed_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How dbt ended: succeeded, nodes_failed, runtime_error, crashed, cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dbt_status: Option<String>,
    /// The invocation's artifacts (run_results.json, manifest.json, dbt.log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_path: Option<String>,
    pub nodes: Vec<DbtNodeDto>,
    /// `ls`: the selected nodes as dbt lists them.
    pub listed: Vec<String>,
    /// SSE: `node` events as each node starts and finishes, then completed / failed / cancelled.
    pub events: String,
}

impl DbtRunDto {
    fn from_run(run: Run) -> Self {
        let detail: serde_json::Value = run
            .detail
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default();
        let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
        let nodes = detail["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| DbtNodeDto {
                unique_id: text(&n["unique_id"]).unwrap_or_default(),
                name: text(&n["name"]).unwrap_or_default(),
                resource_type: text(&n["resource_type"]).unwrap_or_default(),
                status: text(&n["status"]).unwrap_or_default(),
                execution_time_ms: n["execution_time_ms"].as_u64().unwrap_or(0),
                rows_affected: n["rows_affected"].as_u64(),
                message: text(&n["message"]),
                failures: n["failures"].as_u64(),
                relation_name: text(&n["relation_name"]),
            })
            .collect();
        Self {
            events: format!("/api/v1/dbt/runs/{}/events", run.id),
            elapsed_ms: run.elapsed_ms(Utc::now()),
            id: run.id.to_string(),
            project: run.project.to_string(),
            status: run.status.as_str().to_owned(),
            command: run.input,
            actor: run.actor,
            created_at: run.created_at,
            started_at: run.started_at,
            finished_at: run.finished_at,
            error: run.failure.map(|f| f.message),
            dbt_status: text(&detail["dbt_status"]),
            target_path: text(&detail["target_path"]),
            listed: detail["listed"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            nodes,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DbtTestDto {
    pub unique_id: String,
    pub name: String,
    /// pass, fail, warn, error; absent when never run.
    pub status: Option<String>,
    pub failures: Option<u64>,
}

/// A model, seed or snapshot with its last result.
#[derive(Debug, Serialize, ToSchema)]
pub struct DbtModelDto {
    pub unique_id: String,
    pub name: String,
    pub resource_type: String,
    /// Where it is built: `"dbt"."main"."orders"`, queryable as `dbt.main.orders`.
    pub relation_name: Option<String>,
    pub materialized: Option<String>,
    /// dbt's status in the last run that ran it; absent when none did.
    pub status: Option<String>,
    pub last_run: Option<String>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<u64>,
    /// Rows of a table (views: absent).
    pub rows: Option<u64>,
    pub message: Option<String>,
    pub tests: Vec<DbtTestDto>,
    /// dbt's description of it (from the last parsed manifest).
    pub description: String,
    /// The unique ids of the nodes it reads.
    pub depends_on: Vec<String>,
    pub columns: Vec<DbtColumnDto>,
}

/// A column of a model: documented in its YAML, or found by reading its SQL.
#[derive(Debug, Serialize, ToSchema)]
pub struct DbtColumnDto {
    pub name: String,
    pub description: String,
    /// The upstream columns it reads (`unique_id` and `column`), where the parser can tell.
    pub from: Vec<DbtColumnSourceDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DbtColumnSourceDto {
    pub unique_id: String,
    pub column: String,
}

impl From<DbtModelStatus> for DbtModelDto {
    fn from(m: DbtModelStatus) -> Self {
        Self {
            unique_id: m.unique_id,
            name: m.name,
            resource_type: m.resource_type,
            relation_name: m.relation_name,
            materialized: m.materialized,
            status: m.status,
            last_run: m.last_run,
            last_run_at: m.last_run_at,
            duration_ms: m.duration_ms,
            rows: m.rows,
            message: m.message,
            tests: m
                .tests
                .into_iter()
                .map(|t| DbtTestDto {
                    unique_id: t.unique_id,
                    name: t.name,
                    status: t.status,
                    failures: t.failures,
                })
                .collect(),
            description: m.description,
            depends_on: m.depends_on,
            columns: m
                .columns
                .into_iter()
                .map(|c| DbtColumnDto {
                    name: c.name,
                    description: c.description,
                    from: c
                        .from
                        .into_iter()
                        .map(|(unique_id, column)| DbtColumnSourceDto { unique_id, column })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// The SSE payload of a `node` event.
pub(crate) fn node_event_json(n: &NodeEvent, at: DateTime<Utc>) -> serde_json::Value {
    serde_json::json!({
        "status": "node", "unique_id": n.unique_id, "name": n.name, "resource_type": n.resource_type,
        "node_status": n.status, "elapsed_ms": n.elapsed_ms, "rows": n.rows, "message": n.message, "at": at,
    })
}

/// Starts a dbt command over the project's dbt project (`dbt.project_dir`, or `dbt.projects.<project>`). dbt
/// builds into the project's own dbt database, attached read-only as catalog `dbt` once the run ends (queries of
/// `dbt.*` fail while it runs; every other query goes on). A run that finishes within `wait` answers 200 with its
/// status (failed when a model or test failed, naming the nodes); otherwise 202 and the node events on its SSE.
#[utoipa::path(
    post, path = "/dbt/{command}", tag = "dbt", request_body = DbtBody,
    params(("command" = inline(DbtCommandDto), Path), WaitParams,
        ProjectScope),
    responses(
        (status = 202, description = "Queued or running", body = DbtRunDto),
        (status = 200, description = "Finished within the wait", body = DbtRunDto),
        (status = 422, description = "No dbt project, a project_dir outside dbt.request_roots, a profiles.yml that does not say what it must, or a flag the command does not take"),
        (status = 503, description = "dbt is not installed"),
    )
)]
async fn submit_dbt(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(command): ApiPath<DbtCommandDto>,
    ApiQuery(params): ApiQuery<WaitParams>,
    ApiJson(body): ApiJson<DbtBody>,
) -> Result<(StatusCode, Json<DbtRunDto>), ApiError> {
    let wait = params.wait.unwrap_or(0.0);
    if !(0.0..=MAX_WAIT_SECS).contains(&wait) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("wait must be between 0 and {MAX_WAIT_SECS} seconds"),
        ));
    }
    let mut request = DbtRequest::new(command.into());
    (request.select, request.exclude, request.vars) = (body.select, body.exclude, body.vars);
    (request.full_refresh, request.target, request.actor) = (body.full_refresh, body.target, Some("api".into()));
    request.project_dir = body.project_dir.map(Into::into);
    let run = state.app.dbt.submit(&project, request).await?;
    let run = (state.app.dbt)
        .wait(&project, run.id.as_str(), Duration::from_secs_f64(wait))
        .await?;
    let code = if run.status.is_terminal() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((code, Json(DbtRunDto::from_run(run))))
}

/// The project's dbt runs, newest first.
#[utoipa::path(
    get, path = "/dbt/runs", tag = "dbt",
    params(ListParams, ProjectScope),
    responses((status = 200, body = Vec<DbtRunDto>), )
)]
async fn list_dbt_runs(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<Vec<DbtRunDto>>, ApiError> {
    let runs = state
        .app
        .dbt
        .runs(&project, params.limit.unwrap_or(50).min(1000))
        .await?;
    Ok(Json(runs.into_iter().map(DbtRunDto::from_run).collect()))
}

/// A dbt run with its per-node results.
#[utoipa::path(
    get, path = "/dbt/runs/{id}", tag = "dbt",
    params(RunPath, ProjectScope),
    responses((status = 200, body = DbtRunDto), )
)]
async fn get_dbt_run(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(RunPath { id }): ApiPath<RunPath>,
) -> Result<Json<DbtRunDto>, ApiError> {
    Ok(Json(DbtRunDto::from_run(state.app.dbt.get(&project, &id).await?)))
}

/// Server-Sent Events of a dbt run: queued, started, `node` (unique_id, name, resource_type, node_status absent
/// when it started, elapsed_ms, message) per node start and end, then completed / failed / cancelled /
/// timed_out. Send `Last-Event-ID` to resume.
#[utoipa::path(
    get, path = "/dbt/runs/{id}/events", tag = "dbt",
    params(RunPath, LastEventId, ProjectScope),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream", body = RunEventFrame),
        )
)]
async fn dbt_events(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(RunPath { id }): ApiPath<RunPath>,
    LastEventId(after): LastEventId,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let sub = state.app.dbt.events(&project, &id, after).await?;
    Ok(sse_stream(sub))
}

/// Stops dbt (interrupt, then terminate); the run is cancelled and lists the nodes that finished.
#[utoipa::path(
    post, path = "/dbt/runs/{id}/cancel", tag = "dbt",
    params(RunPath, ProjectScope),
    responses(
        (status = 200, body = DbtRunDto),
        (status = 409, description = "Already finished"),
    )
)]
async fn cancel_dbt(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(RunPath { id }): ApiPath<RunPath>,
) -> Result<Json<DbtRunDto>, ApiError> {
    Ok(Json(DbtRunDto::from_run(state.app.dbt.cancel(&project, &id).await?)))
}

/// The models, seeds and snapshots of the project's dbt project with their last status, run, duration, rows and
/// tests (from the project's dbt runs; empty before the first).
#[utoipa::path(
    get, path = "/dbt/models", tag = "dbt",
    params(ProjectScope),
    responses((status = 200, body = Vec<DbtModelDto>), )
)]
async fn list_dbt_models(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
) -> Result<Json<Vec<DbtModelDto>>, ApiError> {
    let models = state.app.dbt.models(&project).await?;
    Ok(Json(models.into_iter().map(DbtModelDto::from).collect()))
}
