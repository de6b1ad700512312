//! Cached tables: local copies of remote tables, refreshed incrementally or rebuilt.

mod wire;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::sources::SourcePath;
use crate::extract::{ApiJson, ApiPath, ApiQuery, ProjectScope};
use crate::problem::ApiError;
use crate::AppState;
pub use wire::CachedTableDto;
use wire::{CacheBody, CachePath, CacheRunDto, CacheRunsParams, CleanupDto, RefreshParams};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(cache_table))
        .routes(routes!(list_caches))
        .routes(routes!(get_cache, drop_cache))
        .routes(routes!(refresh_cache))
        .routes(routes!(cache_runs))
        .routes(routes!(cleanup_caches))
}

/// Copies a remote table (optionally filtered) into the local warehouse.
#[utoipa::path(
    post, path = "/source/{name}/cache", tag = "sources", request_body = CacheBody, params(SourcePath, ProjectScope),
    responses(
        (status = 201, body = CachedTableDto),
        (status = 403, description = "The filter reaches outside the project's sandbox"),
        (status = 409, description = "A cached table of that name exists"),
        (status = 422, description = "Unknown remote table, bad filter or name"),
        (status = 503, description = "The source is not attached"),
    )
)]
async fn cache_table(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(SourcePath { name }): ApiPath<SourcePath>,
    ApiJson(body): ApiJson<CacheBody>,
) -> Result<(StatusCode, Json<CachedTableDto>), ApiError> {
    let cache = state.app.caches.create(&project, &name, body.into()).await?;
    Ok((StatusCode::CREATED, Json(cache.into())))
}

/// The project's cached tables, with expiry.
#[utoipa::path(
    get, path = "/cache", tag = "sources", params(ProjectScope),
    responses((status = 200, body = Vec<CachedTableDto>))
)]
async fn list_caches(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
) -> Result<Json<Vec<CachedTableDto>>, ApiError> {
    let caches = state.app.caches.list(&project).await?;
    Ok(Json(caches.into_iter().map(Into::into).collect()))
}

#[utoipa::path(
    get, path = "/cache/{name}", tag = "sources", params(CachePath, ProjectScope),
    responses((status = 200, body = CachedTableDto))
)]
async fn get_cache(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(CachePath { name }): ApiPath<CachePath>,
) -> Result<Json<CachedTableDto>, ApiError> {
    Ok(Json(state.app.caches.get(&project, &name).await?.into()))
}

/// Drops the local copy.
#[utoipa::path(
    delete, path = "/cache/{name}", tag = "sources", params(CachePath, ProjectScope),
    responses((status = 204, description = "Dropped"))
)]
async fn drop_cache(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(CachePath { name }): ApiPath<CachePath>,
) -> Result<StatusCode, ApiError> {
    state.app.caches.drop_cache(&project, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Refreshes a copy: incrementally (new rows past the cursor) when it has a cursor column, else rebuilt aside and
/// swapped in. A failed refresh leaves the previous copy as it was.
#[utoipa::path(
    post, path = "/cache/{name}/refresh", tag = "sources", params(CachePath, RefreshParams, ProjectScope),
    responses(
        (status = 200, body = CachedTableDto),
        (status = 422, description = "The remote side failed; the previous copy is intact"),
        (status = 503, description = "The source is not attached"),
    )
)]
async fn refresh_cache(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(CachePath { name }): ApiPath<CachePath>,
    ApiQuery(q): ApiQuery<RefreshParams>,
) -> Result<Json<CachedTableDto>, ApiError> {
    let full = q.full.unwrap_or(false);
    Ok(Json(state.app.caches.refresh(&project, &name, full).await?.into()))
}

/// The copy's build and refresh runs, newest first: status, rows, duration and error of each.
#[utoipa::path(
    get, path = "/cache/{name}/runs", tag = "sources", params(CachePath, CacheRunsParams, ProjectScope),
    responses((status = 200, body = Vec<CacheRunDto>))
)]
async fn cache_runs(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(CachePath { name }): ApiPath<CachePath>,
    ApiQuery(q): ApiQuery<CacheRunsParams>,
) -> Result<Json<Vec<CacheRunDto>>, ApiError> {
    let runs = state.app.caches.runs(&project, &name, q.limit.unwrap_or(50)).await?;
    Ok(Json(runs.into_iter().map(Into::into).collect()))
}

/// Drops every cached table past its TTL.
#[utoipa::path(
    post, path = "/cache/cleanup", tag = "sources", params(ProjectScope),
    responses((status = 200, body = CleanupDto))
)]
async fn cleanup_caches(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
) -> Result<Json<CleanupDto>, ApiError> {
    Ok(Json(state.app.caches.cleanup_expired(&project).await?.into()))
}
