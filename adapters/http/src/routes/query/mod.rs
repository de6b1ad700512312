//! `/api/v1/query`: ad-hoc SQL as jobs, their events, results and profiles.

mod wire;

use std::convert::Infallible;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::response::Response;
use axum::Json;
use futures::Stream;
use pluto_duck_application::Submitted;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::runs::{sse_stream, RunEventFrame, RunPath};
use crate::extract::{ApiJson, ApiPath, ApiQuery, LastEventId, ProjectScope};
use crate::formats::{page_response, Format, Rows};
use crate::problem::ApiError;
use crate::AppState;
use wire::{
    ColumnProfileDto, ListParams, PageParams, QueryBody, QueryListDto, Request, ResultParams, SubmitHeaders,
    SubmitParams,
};
pub use wire::{QueryDto, RunStatusName};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit_query, list_queries))
        .routes(routes!(get_query))
        .routes(routes!(query_events))
        .routes(routes!(cancel_query))
        .routes(routes!(query_result))
        .routes(routes!(query_profile))
}

/// Runs SQL as a job. Answers 202 with the job and its links, or, with `?wait=` / `Prefer: wait=N`, the
/// result itself when the query finishes in time. SQL the engine rejects answers 422 with its message and
/// position.
#[utoipa::path(
    post, path = "/query", tag = "query", request_body = QueryBody,
    params(SubmitParams, ProjectScope, SubmitHeaders),
    responses(
        (status = 200, response = Rows),
        (status = 202, description = "Accepted; follow `links.events` or poll `links.self` (also in `Location`)", body = QueryDto),
        (status = 403, description = "The SQL reaches outside the project's sandbox"),
        (status = 406, description = "`Accept` names no result format"),
        (status = 409, description = "Cancelled within the wait"),
        (status = 404, description = "Unknown project (`X-Pluto-Project`) or conversation"),
        (status = 422, description = "Invalid SQL (with `position`), a write in a read-only query, bad limits, a failure within the wait, neither or both of `sql` and `question`"),
        (status = 503, description = "A question, and no language model is configured"),
        (status = 504, description = "Timed out within the wait"),
    )
)]
async fn submit_query(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<SubmitParams>,
    ApiJson(body): ApiJson<QueryBody>,
) -> Result<Response, ApiError> {
    let format = Format::negotiate(q.format.as_deref(), &headers)?;
    let submission = match body.into_request(&headers)? {
        Request::Sql(submission) => submission,
        Request::Question(ask) => return Ok(QueryDto::from_run(state.app.agent.ask(&project, ask).await?.0).accepted()),
    };
    match state
        .app
        .queries
        .submit_and_wait(&project, submission, q.wait(&headers))
        .await?
    {
        Submitted::Finished(run, page) => Ok(page_response(&run, page, format, 0)),
        Submitted::Pending(run) => Ok(QueryDto::from_run(run).accepted()),
    }
}

/// Query history of the project, newest first.
#[utoipa::path(
    get, path = "/query", tag = "query", params(ListParams, ProjectScope),
    responses((status = 200, body = QueryListDto), (status = 422, description = "Unknown status"))
)]
async fn list_queries(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<QueryListDto>, ApiError> {
    let (limit, offset) = (q.limit(), q.offset());
    let runs = state.app.queries.list(&project, q.status()?, limit, offset).await?;
    let items = runs.into_iter().map(QueryDto::from_run).collect();
    Ok(Json(QueryListDto { items, limit, offset }))
}

/// Status, timings, row count, columns with types, the error if any, and a page of rows once succeeded.
#[utoipa::path(
    get, path = "/query/{id}", tag = "query", params(RunPath, PageParams, ProjectScope),
    responses((status = 200, body = QueryDto))
)]
async fn get_query(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(RunPath { id }): ApiPath<RunPath>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<QueryDto>, ApiError> {
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(100);
    let (run, page) = state.app.queries.get_with_page(&project, &id, offset, limit).await?;
    Ok(Json(QueryDto::with_page(run, page, offset).await?))
}

/// Server-Sent Events: queued, started, progress (rows, bytes), then completed / failed / cancelled /
/// timed_out. Event ids increase by one; send `Last-Event-ID` to resume after a disconnect.
#[utoipa::path(
    get, path = "/query/{id}/events", tag = "query", params(RunPath, LastEventId, ProjectScope),
    responses((status = 200, description = "The run's events, then the end of the stream", content_type = "text/event-stream", body = RunEventFrame))
)]
async fn query_events(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(RunPath { id }): ApiPath<RunPath>,
    LastEventId(after): LastEventId,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    Ok(sse_stream(state.app.queries.events(&project, &id, after).await?))
}

/// Interrupts a queued or running query; answers its final state.
#[utoipa::path(
    post, path = "/query/{id}/cancel", tag = "query", params(RunPath, ProjectScope),
    responses((status = 200, body = QueryDto), (status = 409, description = "Already finished"))
)]
async fn cancel_query(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(RunPath { id }): ApiPath<RunPath>,
) -> Result<Json<QueryDto>, ApiError> {
    Ok(Json(QueryDto::from_run(state.app.queries.cancel(&project, &id).await?)))
}

/// The result of a finished query, streamed in the negotiated format (`Accept` or `?format=`): JSON, NDJSON,
/// CSV, Arrow IPC stream or Parquet. `X-Total-Rows` tells the full row count.
#[utoipa::path(
    get, path = "/query/{id}/result", tag = "query", params(RunPath, ResultParams, ProjectScope),
    responses(
        (status = 200, response = Rows),
        (status = 404, description = "Unknown query, or its result expired"),
        (status = 406, description = "`Accept` names no result format"),
        (status = 409, description = "Not finished, or failed"),
        (status = 504, description = "The query timed out"),
    )
)]
async fn query_result(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(RunPath { id }): ApiPath<RunPath>,
    ApiQuery(q): ApiQuery<ResultParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let format = Format::negotiate(q.format.as_deref(), &headers)?;
    let offset = q.offset.unwrap_or(0);
    let (run, page) = state.app.queries.result(&project, &id, offset, q.limit).await?;
    Ok(page_response(&run, page, format, offset))
}

/// Per column: count, nulls, distinct estimate, min, max, and the most frequent values of text columns.
#[utoipa::path(
    get, path = "/query/{id}/profile", tag = "query", params(RunPath, ProjectScope),
    responses(
        (status = 200, body = Vec<ColumnProfileDto>),
        (status = 409, description = "Not finished, or failed"),
        (status = 504, description = "The query timed out"),
    )
)]
async fn query_profile(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(RunPath { id }): ApiPath<RunPath>,
) -> Result<Json<Vec<ColumnProfileDto>>, ApiError> {
    let profiles = state.app.queries.profile(&project, &id).await?;
    Ok(Json(profiles.into_iter().map(Into::into).collect()))
}
