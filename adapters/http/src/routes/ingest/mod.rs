//! `/api/v1/ingest`: ingest jobs with SSE progress, and the ingestion catalog with its sync history.

mod wire;

pub(crate) use wire::{IngestBody as JobIngestBody, IngestRunDto as JobIngestRunDto};

use std::convert::Infallible;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::Json;
use futures::Stream;
use pluto_duck_domain::{Run, RunStatus};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::runs::{sse_stream, JobWaitParams, RunEventFrame, RunPath};
use crate::extract::{ApiJson, ApiPath, ApiQuery, LastEventId, ProjectScope};
use crate::problem::ApiError;
use crate::AppState;
use wire::{
    HistoryParams, IngestBody, IngestRunDto, IngestionDetailDto, IngestionDto, InspectBody, InspectDto, TargetPath,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit_ingest, list_ingestions))
        .routes(routes!(list_connectors))
        .routes(routes!(inspect_source))
        .routes(routes!(get_ingest_run))
        .routes(routes!(ingest_events))
        .routes(routes!(cancel_ingest))
        .routes(routes!(get_ingestion))
        .routes(routes!(sync_ingestion))
}

/// 200 for a job that succeeded within the wait, 202 for one still going (or cancelled).
fn answer(run: Run) -> (StatusCode, Json<IngestRunDto>) {
    let status = match run.status {
        RunStatus::Succeeded => StatusCode::OK,
        _ => StatusCode::ACCEPTED,
    };
    (status, Json(run.into()))
}

/// Starts an ingest job: a stored source's name or an inline source, a table or a query, a target table and a
/// mode (replace, append, merge on keys). The source is opened and the table checked before the job starts, so a
/// wrong password, a missing file or an unknown table answer here (4xx). Progress on the run's SSE stream.
#[utoipa::path(
    post, path = "/ingest", tag = "ingest", request_body = IngestBody, params(JobWaitParams, ProjectScope),
    responses(
        (status = 200, description = "Finished within the wait", body = IngestRunDto),
        (status = 202, description = "Queued or running (or cancelled within the wait)", body = IngestRunDto),
        (status = 403, description = "A file outside the allowed roots, or a query the sandbox refuses"),
        (status = 404, description = "Unknown project, source or table"),
        (status = 409, description = "The project's work keeps the target busy"),
        (status = 422, description = "Invalid request, unreachable source, or the job failed within the wait"),
        (status = 503, description = "The source is not attached, or an extension is missing"),
    )
)]
async fn submit_ingest(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiQuery(q): ApiQuery<JobWaitParams>,
    ApiJson(body): ApiJson<IngestBody>,
) -> Result<(StatusCode, Json<IngestRunDto>), ApiError> {
    let (request, wait) = (body.try_into()?, q.wait()?);
    Ok(answer(state.app.ingest.submit_and_wait(&project, request, wait).await?))
}

/// The ingestion catalog: every target table, where it comes from and how its last sync went.
#[utoipa::path(
    get, path = "/ingest", tag = "ingest", params(ProjectScope),
    responses((status = 200, body = Vec<IngestionDto>))
)]
async fn list_ingestions(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
) -> Result<Json<Vec<IngestionDto>>, ApiError> {
    let items = state.app.ingest.catalog(&project).await?;
    Ok(Json(items.into_iter().map(Into::into).collect()))
}

/// Opens a source (a stored one by name, or an inline config whose secret is used once) and tells its connector,
/// location, tables and the first rows of a table, pulled through the connector. Nothing is kept.
#[utoipa::path(
    post, path = "/ingest/inspect", tag = "ingest", request_body = InspectBody, params(ProjectScope),
    responses(
        (status = 200, body = InspectDto),
        (status = 403, description = "A file outside the allowed roots"),
        (status = 404, description = "Unknown project, source or table"),
        (status = 422, description = "Invalid or unreachable source"),
        (status = 503, description = "The source is not attached, or an extension is missing"),
    )
)]
async fn inspect_source(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiJson(body): ApiJson<InspectBody>,
) -> Result<Json<InspectDto>, ApiError> {
    let source = body.source.try_into()?;
    let (table, rows) = (body.table.as_deref(), body.rows.unwrap_or(10));
    let inspected = state.app.ingest.inspect(&project, &source, table, rows).await?;
    Ok(Json(InspectDto::new(inspected)?))
}

/// The registered connectors, by source kind.
#[utoipa::path(get, path = "/ingest/connectors", tag = "ingest", responses((status = 200, body = Vec<String>)))]
async fn list_connectors(State(state): State<AppState>) -> Json<Vec<String>> {
    Json(state.app.ingest.connectors().into_iter().map(str::to_owned).collect())
}

#[utoipa::path(
    get, path = "/ingest/runs/{id}", tag = "ingest", params(RunPath, ProjectScope),
    responses((status = 200, body = IngestRunDto))
)]
async fn get_ingest_run(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(RunPath { id }): ApiPath<RunPath>,
) -> Result<Json<IngestRunDto>, ApiError> {
    Ok(Json(state.app.ingest.get(&project, &id).await?.into()))
}

/// Server-Sent Events of an ingest: queued, started, progress (part, parts, rows, bytes) after each part, then
/// completed / failed / cancelled. Send `Last-Event-ID` to resume.
#[utoipa::path(
    get, path = "/ingest/runs/{id}/events", tag = "ingest", params(RunPath, LastEventId, ProjectScope),
    responses((status = 200, description = "The run's events, then the end of the stream", content_type = "text/event-stream", body = RunEventFrame))
)]
async fn ingest_events(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(RunPath { id }): ApiPath<RunPath>,
    LastEventId(after): LastEventId,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    Ok(sse_stream(state.app.ingest.events(&project, &id, after).await?))
}

/// Stops a running ingest; the target keeps its previous data.
#[utoipa::path(
    post, path = "/ingest/runs/{id}/cancel", tag = "ingest", params(RunPath, ProjectScope),
    responses((status = 200, body = IngestRunDto), (status = 409, description = "Already finished"))
)]
async fn cancel_ingest(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(RunPath { id }): ApiPath<RunPath>,
) -> Result<Json<IngestRunDto>, ApiError> {
    Ok(Json(state.app.ingest.cancel(&project, &id).await?.into()))
}

/// A catalog entry (`schema.table`, or a table of the default schema) with its sync history.
#[utoipa::path(
    get, path = "/ingest/catalog/{target}", tag = "ingest", params(TargetPath, HistoryParams, ProjectScope),
    responses((status = 200, body = IngestionDetailDto), (status = 422, description = "Not a table name"))
)]
async fn get_ingestion(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(TargetPath { target }): ApiPath<TargetPath>,
    ApiQuery(q): ApiQuery<HistoryParams>,
) -> Result<Json<IngestionDetailDto>, ApiError> {
    Ok(Json(state.app.ingest.entry(&project, &target, q.limit()).await?.into()))
}

/// Syncs a catalog entry again with its recorded source, input, mode and keys (stored sources only).
#[utoipa::path(
    post, path = "/ingest/catalog/{target}/sync", tag = "ingest", params(TargetPath, JobWaitParams, ProjectScope),
    responses(
        (status = 200, description = "Finished within the wait", body = IngestRunDto),
        (status = 202, description = "Queued or running (or cancelled within the wait)", body = IngestRunDto),
        (status = 403, description = "The source's files are outside the allowed roots now"),
        (status = 409, description = "The project's work keeps the target busy"),
        (status = 422, description = "Not a table name, an inline source, the source refuses, or the job failed within the wait"),
        (status = 503, description = "The source is not attached, or an extension is missing"),
    )
)]
async fn sync_ingestion(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(TargetPath { target }): ApiPath<TargetPath>,
    ApiQuery(q): ApiQuery<JobWaitParams>,
) -> Result<(StatusCode, Json<IngestRunDto>), ApiError> {
    Ok(answer(
        state.app.ingest.sync_and_wait(&project, &target, q.wait()?).await?,
    ))
}
