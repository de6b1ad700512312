use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::{stream, Stream, StreamExt};
use pluto_duck_application::ports::ParamValue;
use pluto_duck_application::QuerySubmission;
use pluto_duck_domain::{Run, RunEvent, RunEventKind, RunStatus};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::dto::{ColumnProfileDto, Problem, QueryBody, QueryDto, QueryListDto};
use crate::extract::{ApiJson, ApiPath, ApiQuery, ProjectScope};
use crate::formats::{respond, write_rows_json, Format, JsonEnvelope};
use crate::problem::ApiError;
use crate::AppState;

const MAX_WAIT_SECS: f64 = 300.0;
const MAX_PAGE: u64 = 10_000;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit_query, list_queries))
        .routes(routes!(get_query))
        .routes(routes!(query_events))
        .routes(routes!(cancel_query))
        .routes(routes!(query_result))
        .routes(routes!(query_profile))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SubmitParams {
    /// Wait up to this many seconds (like `Prefer: wait=N`) and answer with the result when it finishes
    /// in time; otherwise 202.
    wait: Option<f64>,
    /// Result format for the inline answer (else from `Accept`): json, ndjson, csv, arrow, parquet.
    format: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct PageParams {
    /// First row of the page (default 0).
    offset: Option<u64>,
    /// Rows in the page (default 100, at most 10000).
    limit: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ResultParams {
    /// json, ndjson, csv, arrow, parquet (overrides `Accept`).
    format: Option<String>,
    offset: Option<u64>,
    /// All rows after `offset` when absent.
    limit: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// queued, running, succeeded, failed, cancelled, timed_out
    status: Option<String>,
    /// Default 50, at most 1000.
    limit: Option<u32>,
    offset: Option<u64>,
}

fn param_value(v: serde_json::Value) -> Result<ParamValue, ApiError> {
    Ok(match v {
        serde_json::Value::Null => ParamValue::Null,
        serde_json::Value::Bool(b) => ParamValue::Bool(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => ParamValue::Int(i),
            None => ParamValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => ParamValue::Text(s),
        other => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("unsupported parameter {other}: use null, booleans, numbers or strings"),
            ))
        }
    })
}

/// `Prefer: wait=N` (RFC 7240), in seconds.
fn prefer_wait(headers: &HeaderMap) -> Option<f64> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix("wait=").and_then(|n| n.trim().parse().ok()))
}

pub(crate) fn failure_error(run: &Run) -> ApiError {
    let message = run.failure.as_ref().map(|f| f.message.clone()).unwrap_or_default();
    let (status, slug) = match run.status {
        RunStatus::TimedOut => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
        RunStatus::Cancelled => (StatusCode::CONFLICT, "conflict"),
        _ => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
    };
    ApiError::new(status, slug, message).with_position(run.failure.as_ref().and_then(|f| f.position))
}

/// A finished query's rows in `format`, with its id and row count in headers.
/// Rows of a finished read in `format`, with its id and row count in headers.
pub(crate) fn respond_page(
    run: &Run,
    page: pluto_duck_application::ports::ResultPage,
    format: Format,
    offset: u64,
) -> Response {
    let envelope = JsonEnvelope {
        run_id: run.id.to_string(),
        column_types: run.columns.iter().map(|c| c.data_type.clone()).collect(),
        total_rows: page.total_rows,
        offset,
        truncated: run.truncated,
    };
    let mut resp = respond(format, page.schema, page.batches, envelope);
    if let Ok(v) = HeaderValue::from_str(run.id.as_str()) {
        resp.headers_mut().insert("x-query-id", v);
    }
    resp
}

pub(crate) async fn stream_result(
    state: &AppState,
    project: &pluto_duck_domain::ProjectId,
    id: &str,
    format: Format,
    offset: u64,
    limit: Option<u64>,
) -> Result<Response, ApiError> {
    let (run, page) = state.app.queries.result(project, id, offset, limit).await?;
    Ok(respond_page(&run, page, format, offset))
}

/// Runs SQL as a job. Answers 202 with the job and its links, or, with `?wait=` / `Prefer: wait=N`, the
/// result itself when the query finishes in time. SQL the engine rejects answers 422 with its message and
/// position.
#[utoipa::path(
    post,
    path = "/query",
    tag = "query",
    params(SubmitParams, ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    request_body = QueryBody,
    responses(
        (status = 200, description = "Finished within the wait: the result", content(
            (Object = "application/json"), (String = "application/x-ndjson"), (String = "text/csv"),
            (Vec<u8> = "application/vnd.apache.arrow.stream"), (Vec<u8> = "application/vnd.apache.parquet"))),
        (status = 202, description = "Accepted; follow `links.events` or poll `links.self`", body = QueryDto),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown project", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid SQL (with `position`), a write in a read-only query, bad limits", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "Timed out within the wait", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn submit_query(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<SubmitParams>,
    ApiJson(body): ApiJson<QueryBody>,
) -> Result<Response, ApiError> {
    let wait = q.wait.or_else(|| prefer_wait(&headers));
    let format = Format::negotiate(q.format.as_deref(), &headers)?;
    let submission = QuerySubmission {
        sql: body.sql,
        timeout_ms: body.timeout_ms,
        max_rows: body.max_rows,
        read_only: body.read_only,
        params: body.params.into_iter().map(param_value).collect::<Result<_, _>>()?,
        actor: headers
            .get("x-pluto-actor")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    let run = state.app.queries.submit(&project, submission).await?;
    if let Some(secs) = wait.filter(|s| s.is_finite() && *s > 0.0) {
        let waited = Duration::from_secs_f64(secs.min(MAX_WAIT_SECS));
        let run = state.app.queries.wait(&project, run.id.as_str(), waited).await?;
        match run.status {
            RunStatus::Succeeded => return stream_result(&state, &project, run.id.as_str(), format, 0, None).await,
            RunStatus::Failed | RunStatus::TimedOut | RunStatus::Cancelled => return Err(failure_error(&run)),
            RunStatus::Queued | RunStatus::Running => {}
        }
    }
    let dto = QueryDto::from_run(run);
    let location = HeaderValue::from_str(&dto.links.this).unwrap_or(HeaderValue::from_static("/api/v1/query"));
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(dto)).into_response())
}

/// Query history of the project, newest first.
#[utoipa::path(
    get,
    path = "/query",
    tag = "query",
    params(ListParams, ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses(
        (status = 200, body = QueryListDto),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown status", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_queries(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<QueryListDto>, ApiError> {
    let status = q
        .status
        .as_deref()
        .map(RunStatus::parse)
        .transpose()
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", e.to_string()))?;
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let offset = q.offset.unwrap_or(0);
    let runs = state.app.queries.list(&project, status, limit, offset).await?;
    Ok(Json(QueryListDto {
        items: runs.into_iter().map(QueryDto::from_run).collect(),
        limit,
        offset,
    }))
}

/// Status, timings, row count, columns with types, the error if any, and a page of rows once succeeded.
#[utoipa::path(
    get,
    path = "/query/{id}",
    tag = "query",
    params(("id" = String, Path), PageParams, ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses(
        (status = 200, body = QueryDto),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_query(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<QueryDto>, ApiError> {
    let run = state.app.queries.get(&project, &id).await?;
    let mut dto_rows = None;
    let offset = q.offset.unwrap_or(0);
    if run.status == RunStatus::Succeeded {
        let limit = q.limit.unwrap_or(100).min(MAX_PAGE);
        match state.app.queries.result(&project, &id, offset, Some(limit)).await {
            Ok((_, page)) => {
                let batches: Vec<_> = page
                    .batches
                    .collect::<Vec<_>>()
                    .await
                    .into_iter()
                    .collect::<Result<_, _>>()
                    .map_err(|e| ApiError::from(pluto_duck_application::AppError::Warehouse(e)))?;
                let mut buf = Vec::new();
                write_rows_json(&batches, &mut buf)
                    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
                dto_rows = serde_json::value::RawValue::from_string(String::from_utf8_lossy(&buf).into_owned()).ok();
            }
            Err(e) if e.kind() == pluto_duck_application::ErrorKind::NotFound => {} // expired result
            Err(e) => return Err(e.into()),
        }
    }
    let mut dto = QueryDto::from_run(run);
    if dto_rows.is_some() {
        dto.offset = Some(offset);
    }
    dto.rows = dto_rows;
    Ok(Json(dto))
}

fn sse_event(e: &RunEvent) -> Event {
    let data = match &e.kind {
        RunEventKind::Progress { rows, bytes } | RunEventKind::Completed { rows, bytes } => {
            serde_json::json!({ "status": e.kind.name(), "rows": rows, "bytes": bytes, "at": e.at })
        }
        RunEventKind::PartProgress {
            part,
            parts,
            rows,
            bytes,
        } => serde_json::json!({
            "status": e.kind.name(), "part": part, "parts": parts, "rows": rows, "bytes": bytes, "at": e.at
        }),
        RunEventKind::Failed { message } | RunEventKind::TimedOut { message } => {
            serde_json::json!({ "status": e.kind.name(), "error": message, "at": e.at })
        }
        RunEventKind::Node(n) => super::dbt::node_event_json(n, e.at),
        _ => serde_json::json!({ "status": e.kind.name(), "at": e.at }),
    };
    Event::default()
        .id(e.seq.to_string())
        .event(e.kind.name())
        .data(data.to_string())
}

/// Server-Sent Events: queued, started, progress (rows, bytes), then completed / failed / cancelled /
/// timed_out. Event ids increase by one; send `Last-Event-ID` to resume after a disconnect.
#[utoipa::path(
    get,
    path = "/query/{id}/events",
    tag = "query",
    params(("id" = String, Path), ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event"),
        ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream", body = String),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn query_events(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let after = last_event_id(&headers);
    let sub = state.app.queries.events(&project, &id, after).await?;
    Ok(sse_stream(sub))
}

pub(crate) fn last_event_id(headers: &HeaderMap) -> u64 {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0)
}

/// The past events of a run, then its live tail until a terminal event.
pub(crate) fn sse_stream(
    sub: pluto_duck_application::Subscription,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let done = sub.past.iter().any(|e| e.kind.is_terminal());
    let past = stream::iter(sub.past.into_iter().map(|e| Ok(sse_event(&e))));
    let live = match sub.live.filter(|_| !done) {
        Some(rx) => stream::unfold((rx, false), |(mut rx, finished)| async move {
            if finished {
                return None;
            }
            loop {
                match rx.recv().await {
                    Ok(e) => {
                        let end = e.kind.is_terminal();
                        return Some((Ok(sse_event(&e)), (rx, end)));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return None,
                }
            }
        })
        .boxed(),
        None => stream::empty().boxed(),
    };
    Sse::new(past.chain(live)).keep_alive(KeepAlive::default())
}

/// Interrupts a queued or running query; answers its final state.
#[utoipa::path(
    post,
    path = "/query/{id}/cancel",
    tag = "query",
    params(("id" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses(
        (status = 200, body = QueryDto),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already finished", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn cancel_query(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<QueryDto>, ApiError> {
    Ok(Json(QueryDto::from_run(state.app.queries.cancel(&project, &id).await?)))
}

/// The result of a finished query, streamed in the negotiated format (`Accept` or `?format=`): JSON, NDJSON,
/// CSV, Arrow IPC stream or Parquet. `X-Total-Rows` tells the full row count.
#[utoipa::path(
    get,
    path = "/query/{id}/result",
    tag = "query",
    params(("id" = String, Path), ResultParams, ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses(
        (status = 200, description = "The rows", content(
            (Object = "application/json"), (String = "application/x-ndjson"), (String = "text/csv"),
            (Vec<u8> = "application/vnd.apache.arrow.stream"), (Vec<u8> = "application/vnd.apache.parquet"))),
        (status = 400, description = "Unknown format", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown query, or its result expired", body = Problem, content_type = "application/problem+json"),
        (status = 406, description = "No acceptable format", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not finished, or failed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn query_result(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ResultParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let format = Format::negotiate(q.format.as_deref(), &headers)?;
    stream_result(&state, &project, &id, format, q.offset.unwrap_or(0), q.limit).await
}

/// Per column: count, nulls, distinct estimate, min, max, and the most frequent values of text columns.
#[utoipa::path(
    get,
    path = "/query/{id}/profile",
    tag = "query",
    params(("id" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses(
        (status = 200, body = Vec<ColumnProfileDto>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not finished, or failed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn query_profile(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<ColumnProfileDto>>, ApiError> {
    let run = state.app.queries.get(&project, &id).await?;
    let profiles = state.app.queries.profile(&project, &id).await?;
    Ok(Json(
        profiles
            .into_iter()
            .zip(
                run.columns
                    .iter()
                    .map(|c| c.data_type.clone())
                    .chain(std::iter::repeat(String::new())),
            )
            .map(|(p, duck_type)| ColumnProfileDto {
                name: p.name,
                data_type: if duck_type.is_empty() { p.data_type } else { duck_type },
                count: p.count,
                nulls: p.nulls,
                distinct_estimate: p.distinct_estimate,
                min: p.min,
                max: p.max,
                top_values: p.top_values,
            })
            .collect(),
    ))
}
