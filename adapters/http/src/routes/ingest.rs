//! `/api/v1/ingest`: ingest jobs with SSE progress, and the ingestion catalog with its sync history.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::Json;
use futures::Stream;
use pluto_duck_application::ports::CsvStrictness;
use pluto_duck_application::{IngestRequest, IngestSource};
use pluto_duck_domain::{IngestMode, RunStatus};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::query::{last_event_id, sse_stream};
use super::sources::new_source_config;
use crate::dto::{
    ColumnDto, IngestBody, IngestRunDto, IngestSourceDto, IngestionDetailDto, IngestionDto, InspectBody, InspectDto,
    Problem,
};
use crate::extract::{ApiJson, ApiPath, ApiQuery, ProjectScope};
use crate::problem::ApiError;
use crate::AppState;

const MAX_WAIT_SECS: f64 = 3600.0;

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

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", msg)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct WaitParams {
    /// Wait up to this many seconds for the job to finish (default 0: answer 202 at once).
    wait: Option<f64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct HistoryParams {
    /// Sync history entries (default 50).
    limit: Option<u32>,
}

/// Answers a job that finished within the wait: 200, or the failure as problem+json (422) naming the run.
async fn answer(
    state: &AppState,
    project: &pluto_duck_domain::ProjectId,
    run: pluto_duck_domain::Run,
    wait: Option<f64>,
) -> Result<(StatusCode, Json<IngestRunDto>), ApiError> {
    let wait = wait.unwrap_or(0.0);
    if !(0.0..=MAX_WAIT_SECS).contains(&wait) {
        return Err(invalid(format!("wait must be between 0 and {MAX_WAIT_SECS} seconds")));
    }
    let run = state
        .app
        .ingest
        .wait(project, run.id.as_str(), Duration::from_secs_f64(wait))
        .await?;
    match run.status {
        RunStatus::Succeeded => Ok((StatusCode::OK, Json(IngestRunDto::from_run(run)))),
        RunStatus::Failed => Err(invalid(format!(
            "ingest {} failed: {}",
            run.id,
            run.failure.map(|f| f.message).unwrap_or_default()
        ))),
        _ => Ok((StatusCode::ACCEPTED, Json(IngestRunDto::from_run(run)))),
    }
}

/// Starts an ingest job: a stored source's name or an inline source, a table or a query, a target table and a
/// mode (replace, append, merge on keys). The source is opened and the table checked before the job starts, so a
/// wrong password, a missing file or an unknown table answer here (4xx). Progress on the run's SSE stream.
#[utoipa::path(
    post, path = "/ingest", tag = "ingest", request_body = IngestBody,
    params(WaitParams, ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses(
        (status = 202, description = "Queued or running", body = IngestRunDto),
        (status = 200, description = "Finished within the wait", body = IngestRunDto),
        (status = 404, description = "Unknown source or table", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request, unreachable source, or the job failed within the wait", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn submit_ingest(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiQuery(params): ApiQuery<WaitParams>,
    ApiJson(body): ApiJson<IngestBody>,
) -> Result<(StatusCode, Json<IngestRunDto>), ApiError> {
    let source = ingest_source(body.source)?;
    let mode = IngestMode::parse(body.mode.as_deref().unwrap_or("replace")).map_err(|e| invalid(e.to_string()))?;
    let run = state
        .app
        .ingest
        .submit(
            &project,
            IngestRequest {
                source,
                table: body.table,
                query: body.query,
                target: body.target,
                schema: body.schema,
                mode,
                keys: body.keys,
                csv: match body.csv.as_deref() {
                    None | Some("strict") => CsvStrictness::Strict,
                    Some("lenient") => CsvStrictness::Lenient,
                    Some(other) => return Err(invalid(format!("csv must be strict or lenient, not {other:?}"))),
                },
                actor: Some("api".into()),
            },
        )
        .await?;
    answer(&state, &project, run, params.wait).await
}

/// The ingestion catalog: every target table, where it comes from and how its last sync went.
#[utoipa::path(
    get, path = "/ingest", tag = "ingest",
    params(("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = Vec<IngestionDto>))
)]
async fn list_ingestions(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
) -> Result<Json<Vec<IngestionDto>>, ApiError> {
    let items = state.app.ingest.catalog(&project).await?;
    Ok(Json(items.into_iter().map(IngestionDto::from).collect()))
}

fn ingest_source(dto: IngestSourceDto) -> Result<IngestSource, ApiError> {
    Ok(match dto {
        IngestSourceDto::Name(name) => IngestSource::Named(name),
        IngestSourceDto::Config(config) => IngestSource::Config(Box::new(new_source_config(*config)?)),
    })
}

/// Opens a source (a stored one by name, or an inline config whose secret is used once) and tells its connector,
/// location, tables and the first rows of a table, pulled through the connector. Nothing is kept.
#[utoipa::path(
    post, path = "/ingest/inspect", tag = "ingest", request_body = InspectBody,
    params(("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses(
        (status = 200, body = InspectDto),
        (status = 404, description = "Unknown source or table", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unreachable source", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn inspect_source(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiJson(body): ApiJson<InspectBody>,
) -> Result<Json<InspectDto>, ApiError> {
    let rows = body.rows.unwrap_or(10);
    if rows > 1000 {
        return Err(invalid("rows must be at most 1000"));
    }
    let source = ingest_source(body.source)?;
    let (meta, columns, sample) = state
        .app
        .ingest
        .inspect(&project, &source, body.table.as_deref(), rows)
        .await?;
    let columns = columns
        .into_iter()
        .map(|c| ColumnDto {
            name: c.name,
            data_type: c.data_type,
        })
        .collect();
    let mut buf = Vec::new();
    crate::formats::write_rows_json(&sample, &mut buf)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    Ok(Json(InspectDto {
        connector: meta.connector.to_owned(),
        location: meta.location,
        tables: meta.tables.into_iter().map(Into::into).collect(),
        columns,
        rows: serde_json::value::RawValue::from_string(String::from_utf8_lossy(&buf).into_owned())
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?,
    }))
}

/// The registered connectors, by source kind.
#[utoipa::path(get, path = "/ingest/connectors", tag = "ingest", responses((status = 200, body = Vec<String>)))]
async fn list_connectors(State(state): State<AppState>) -> Json<Vec<String>> {
    Json(state.app.ingest.connectors().into_iter().map(str::to_owned).collect())
}

#[utoipa::path(
    get, path = "/ingest/runs/{id}", tag = "ingest",
    params(("id" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = IngestRunDto), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
async fn get_ingest_run(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<IngestRunDto>, ApiError> {
    Ok(Json(IngestRunDto::from_run(state.app.ingest.get(&project, &id).await?)))
}

/// Server-Sent Events of an ingest: queued, started, progress (part, parts, rows, bytes) after each part, then
/// completed / failed / cancelled. Send `Last-Event-ID` to resume.
#[utoipa::path(
    get, path = "/ingest/runs/{id}/events", tag = "ingest",
    params(("id" = String, Path), ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event"),
        ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream", body = String),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn ingest_events(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let sub = state.app.ingest.events(&project, &id, last_event_id(&headers)).await?;
    Ok(sse_stream(sub))
}

/// Stops a running ingest; the target keeps its previous data.
#[utoipa::path(
    post, path = "/ingest/runs/{id}/cancel", tag = "ingest",
    params(("id" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses(
        (status = 200, body = IngestRunDto),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already finished", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn cancel_ingest(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<IngestRunDto>, ApiError> {
    Ok(Json(IngestRunDto::from_run(
        state.app.ingest.cancel(&project, &id).await?,
    )))
}

/// A catalog entry (`schema.table`, or a table of the default schema) with its sync history.
#[utoipa::path(
    get, path = "/ingest/catalog/{target}", tag = "ingest",
    params(("target" = String, Path), HistoryParams, ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = IngestionDetailDto), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
async fn get_ingestion(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(target): ApiPath<String>,
    ApiQuery(params): ApiQuery<HistoryParams>,
) -> Result<Json<IngestionDetailDto>, ApiError> {
    let (entry, history) = state
        .app
        .ingest
        .entry(&project, &target, params.limit.unwrap_or(50))
        .await?;
    Ok(Json(IngestionDetailDto {
        ingestion: entry.into(),
        history: history.into_iter().map(IngestRunDto::from_run).collect(),
    }))
}

/// Syncs a catalog entry again with its recorded source, input, mode and keys (stored sources only).
#[utoipa::path(
    post, path = "/ingest/catalog/{target}/sync", tag = "ingest",
    params(("target" = String, Path), WaitParams, ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses(
        (status = 202, body = IngestRunDto),
        (status = 200, description = "Finished within the wait", body = IngestRunDto),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn sync_ingestion(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(target): ApiPath<String>,
    ApiQuery(params): ApiQuery<WaitParams>,
) -> Result<(StatusCode, Json<IngestRunDto>), ApiError> {
    let run = state.app.ingest.sync(&project, &target).await?;
    answer(&state, &project, run, params.wait).await
}
