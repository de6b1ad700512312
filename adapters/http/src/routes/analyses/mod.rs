//! `/api/v1/asset`: saved analyses, their compile plans, lineage, runs and data.

mod plans;
mod wire;

use std::convert::Infallible;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::Response;
use axum::Json;
use futures::Stream;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::runs::{sse_stream, JobWaitParams, RunEventFrame, RunPath};
use crate::extract::{ApiJson, ApiPath, ApiQuery, LastEventId, ProjectScope};
use crate::formats::{file_response, page_response, Binary, Format, Rows};
use crate::problem::ApiError;
use crate::AppState;
use plans::{FreshnessDto, LineageDto, LineageGraphDto, PlanStepDto};
use wire::{
    AnalysisBody, AnalysisDto, AnalysisPath, AnalysisRunDto, CompileParams, DataParams, DeleteParams, ExecuteBody,
    ExportParams, HistoryParams, ListParams, StepRunDto,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_analysis))
        .routes(routes!(list_analyses))
        .routes(routes!(get_analysis, update_analysis, delete_analysis))
        .routes(routes!(compile_analysis))
        .routes(routes!(analysis_lineage))
        .routes(routes!(lineage_graph))
        .routes(routes!(execute_analysis))
        .routes(routes!(get_analysis_run))
        .routes(routes!(analysis_run_events))
        .routes(routes!(analysis_history))
        .routes(routes!(analysis_freshness))
        .routes(routes!(analysis_data))
        .routes(routes!(analysis_export))
}

/// Saves a new analysis. Its refs must name analyses of the project; a ref that closes a cycle is refused (409,
/// naming the cycle).
#[utoipa::path(
    post, path = "/asset/analysis", tag = "analyses", request_body = AnalysisBody, params(ProjectScope),
    responses(
        (status = 201, body = AnalysisDto),
        (status = 409, description = "Exists already, or a dependency cycle"),
        (status = 422, description = "No id, SQL that is not one query, an unknown ref, a bad parameter"),
    )
)]
async fn create_analysis(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiJson(body): ApiJson<AnalysisBody>,
) -> Result<(StatusCode, Json<AnalysisDto>), ApiError> {
    let created = state.app.analyses.create(&project, body.into_new_draft()?).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

#[utoipa::path(
    get, path = "/asset/analyses", tag = "analyses", params(ListParams, ProjectScope),
    responses((status = 200, body = Vec<AnalysisDto>), (status = 422, description = "A hand-edited file is broken"))
)]
async fn list_analyses(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<Vec<AnalysisDto>>, ApiError> {
    let all = state.app.analyses.list(&project, q.tag.as_deref()).await?;
    Ok(Json(all.into_iter().map(Into::into).collect()))
}

#[utoipa::path(
    get, path = "/asset/analysis/{id}", tag = "analyses", params(AnalysisPath, ProjectScope),
    responses((status = 200, body = AnalysisDto))
)]
async fn get_analysis(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(AnalysisPath { id }): ApiPath<AnalysisPath>,
) -> Result<Json<AnalysisDto>, ApiError> {
    Ok(Json(state.app.analyses.get(&project, &id).await?.into()))
}

/// Replaces the definition (the id comes from the path).
#[utoipa::path(
    put, path = "/asset/analysis/{id}", tag = "analyses", request_body = AnalysisBody, params(AnalysisPath, ProjectScope),
    responses(
        (status = 200, body = AnalysisDto),
        (status = 409, description = "A dependency cycle"),
        (status = 422, description = "Another id in the body, SQL that is not one query, an unknown ref, a bad parameter"),
    )
)]
async fn update_analysis(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(AnalysisPath { id }): ApiPath<AnalysisPath>,
    ApiJson(body): ApiJson<AnalysisBody>,
) -> Result<Json<AnalysisDto>, ApiError> {
    let updated = state.app.analyses.update(&project, body.into_draft_of(id)?).await?;
    Ok(Json(updated.into()))
}

/// Deletes the definition (and with `drop=true` its table or view); refused (409) while other analyses read it.
#[utoipa::path(
    delete, path = "/asset/analysis/{id}", tag = "analyses", params(AnalysisPath, DeleteParams, ProjectScope),
    responses((status = 204, description = "Deleted"), (status = 409, description = "Read by other analyses"))
)]
async fn delete_analysis(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(AnalysisPath { id }): ApiPath<AnalysisPath>,
    ApiQuery(q): ApiQuery<DeleteParams>,
) -> Result<StatusCode, ApiError> {
    let drop = q.drop.unwrap_or(false);
    state.app.analysis_runs.delete(&project, &id, drop).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The plan for running the analysis: its upstream and itself in order, each with run / skip and the reasons,
/// and the SQL the warehouse would run.
#[utoipa::path(
    post, path = "/asset/analysis/{id}/compile", tag = "analyses", params(AnalysisPath, CompileParams, ProjectScope),
    responses((status = 200, body = Vec<PlanStepDto>), (status = 409, description = "A dependency cycle (hand-edited files)"))
)]
async fn compile_analysis(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(AnalysisPath { id }): ApiPath<AnalysisPath>,
    ApiQuery(q): ApiQuery<CompileParams>,
) -> Result<Json<Vec<PlanStepDto>>, ApiError> {
    let force = q.force.unwrap_or(false);
    let steps = state.app.analysis_runs.compile(&project, &id, force).await?;
    Ok(Json(steps.into_iter().map(Into::into).collect()))
}

#[utoipa::path(
    get, path = "/asset/analysis/{id}/lineage", tag = "analyses", params(AnalysisPath, ProjectScope),
    responses((status = 200, body = LineageDto))
)]
async fn analysis_lineage(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(AnalysisPath { id }): ApiPath<AnalysisPath>,
) -> Result<Json<LineageDto>, ApiError> {
    Ok(Json(state.app.analyses.lineage(&project, &id).await?.into()))
}

/// The project's whole graph: analyses and the relations and files they read, and the dbt project's models,
/// seeds, snapshots, sources and tests (from its last run's manifest) with dbt's edges, joined to the analyses
/// reading dbt models and to the project's tables dbt sources read; column-level edges where the parser can tell.
#[utoipa::path(
    get, path = "/asset/lineage-graph", tag = "analyses", params(ProjectScope),
    responses((status = 200, body = LineageGraphDto), (status = 409, description = "A dependency cycle (hand-edited files)"))
)]
async fn lineage_graph(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
) -> Result<Json<LineageGraphDto>, ApiError> {
    Ok(Json(
        state.app.dbt.lineage_graph(&project, &state.app.analyses).await?.into(),
    ))
}

/// Runs the analysis and its stale upstream (all of them with `force`) as a job. Each step materializes
/// atomically and records a step run; with `continue_on_failure` independent branches go on and dependents of a
/// failure are blocked. Missing or ill-typed parameters answer 422 before anything runs.
#[utoipa::path(
    post, path = "/asset/analysis/{id}/execute", tag = "analyses", request_body = ExecuteBody,
    params(AnalysisPath, JobWaitParams, ProjectScope),
    responses(
        (status = 200, description = "Finished within the wait (status may be failed; see steps)", body = AnalysisRunDto),
        (status = 202, description = "Queued or running", body = AnalysisRunDto),
        (status = 409, description = "A dependency cycle (hand-edited files)"),
        (status = 422, description = "A missing or ill-typed parameter, an unknown one, a view with parameters, a wait out of range"),
    )
)]
async fn execute_analysis(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(AnalysisPath { id }): ApiPath<AnalysisPath>,
    ApiQuery(q): ApiQuery<JobWaitParams>,
    ApiJson(body): ApiJson<ExecuteBody>,
) -> Result<(StatusCode, Json<AnalysisRunDto>), ApiError> {
    let (wait, options) = (q.wait()?, body.try_into()?);
    let (run, steps) = state
        .app
        .analysis_runs
        .execute_and_wait(&project, &id, options, wait)
        .await?;
    let status = if run.status.is_terminal() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json((run, steps).into())))
}

#[utoipa::path(
    get, path = "/asset/runs/{id}", tag = "analyses", params(RunPath, ProjectScope),
    responses((status = 200, body = AnalysisRunDto))
)]
async fn get_analysis_run(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(RunPath { id }): ApiPath<RunPath>,
) -> Result<Json<AnalysisRunDto>, ApiError> {
    Ok(Json(state.app.analysis_runs.get(&project, &id).await?.into()))
}

/// SSE of an analysis run: queued, started, progress after each step (part, parts, rows), then completed / failed.
#[utoipa::path(
    get, path = "/asset/runs/{id}/events", tag = "analyses", params(RunPath, LastEventId, ProjectScope),
    responses((status = 200, description = "The run's events, then the end of the stream", content_type = "text/event-stream", body = RunEventFrame))
)]
async fn analysis_run_events(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(RunPath { id }): ApiPath<RunPath>,
    LastEventId(after): LastEventId,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    Ok(sse_stream(state.app.analysis_runs.events(&project, &id, after).await?))
}

/// The step runs of an analysis, newest first: status, times, rows written, error.
#[utoipa::path(
    get, path = "/asset/analysis/{id}/history", tag = "analyses", params(AnalysisPath, HistoryParams, ProjectScope),
    responses((status = 200, body = Vec<StepRunDto>))
)]
async fn analysis_history(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(AnalysisPath { id }): ApiPath<AnalysisPath>,
    ApiQuery(q): ApiQuery<HistoryParams>,
) -> Result<Json<Vec<StepRunDto>>, ApiError> {
    let runs = state.app.analysis_runs.history(&project, &id, q.limit()).await?;
    Ok(Json(runs.into_iter().map(Into::into).collect()))
}

/// Whether the analysis and its upstream are fresh, and why not.
#[utoipa::path(
    get, path = "/asset/analysis/{id}/freshness", tag = "analyses", params(AnalysisPath, ProjectScope),
    responses((status = 200, body = FreshnessDto), (status = 409, description = "A dependency cycle (hand-edited files)"))
)]
async fn analysis_freshness(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(AnalysisPath { id }): ApiPath<AnalysisPath>,
) -> Result<Json<FreshnessDto>, ApiError> {
    let freshness = state.app.analysis_runs.freshness(&project, &id).await?;
    Ok(Json(FreshnessDto::new(id, freshness)))
}

/// The materialized rows of the analysis, in every result format of the query API.
#[utoipa::path(
    get, path = "/asset/analysis/{id}/data", tag = "analyses", params(AnalysisPath, DataParams, ProjectScope),
    responses(
        (status = 200, response = Rows),
        (status = 406, description = "`Accept` names no result format"),
        (status = 409, description = "Not materialized yet (or ephemeral)"),
        (status = 422, description = "The read failed"),
        (status = 504, description = "The read timed out"),
    )
)]
async fn analysis_data(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(AnalysisPath { id }): ApiPath<AnalysisPath>,
    ApiQuery(q): ApiQuery<DataParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let format = Format::negotiate(q.format.as_deref(), &headers)?;
    let (limit, offset) = q.window();
    let (run, page) = state.app.analysis_runs.data(&project, &id, limit, offset).await?;
    Ok(attachment(page_response(&run, page, format, offset), &id, format))
}

/// Every row of the analysis as a CSV or Parquet file download.
#[utoipa::path(
    get, path = "/asset/analysis/{id}/export", tag = "analyses", params(AnalysisPath, ExportParams, ProjectScope),
    responses(
        (status = 200, description = "The file", content((String = "text/csv"), (Binary = "application/vnd.apache.parquet"))),
        (status = 409, description = "Not materialized yet (or ephemeral)"),
        (status = 422, description = "Not csv or parquet, or the export failed"),
    )
)]
async fn analysis_export(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(AnalysisPath { id }): ApiPath<AnalysisPath>,
    ApiQuery(q): ApiQuery<ExportParams>,
) -> Result<Response, ApiError> {
    let (format, export) = q.format()?;
    let file = state.app.analysis_runs.export(&project, &id, export).await?;
    Ok(attachment(file_response(file, format).await?, &id, format))
}

/// CSV and Parquet rows of an analysis download as `<id>.csv` / `<id>.parquet`.
fn attachment(mut response: Response, id: &str, format: Format) -> Response {
    let ext = match format {
        Format::Csv => "csv",
        Format::Parquet => "parquet",
        _ => return response,
    };
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!("attachment; filename=\"{id}.{ext}\"")) {
        response
            .headers_mut()
            .insert(axum::http::header::CONTENT_DISPOSITION, v);
    }
    response
}
