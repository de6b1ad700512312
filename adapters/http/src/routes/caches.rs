use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pluto_duck_application::CacheRequest;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::dto::{CacheBody, CachedTableDto, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery, ProjectScope};
use crate::problem::ApiError;
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(cache_table))
        .routes(routes!(list_caches))
        .routes(routes!(get_cache, drop_cache))
        .routes(routes!(refresh_cache))
        .routes(routes!(cleanup_caches))
}

/// Copies a remote table (optionally filtered) into the local warehouse.
#[utoipa::path(
    post, path = "/source/{name}/cache", tag = "sources", request_body = CacheBody,
    params(("name" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses(
        (status = 201, body = CachedTableDto),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A cached table of that name exists", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown remote table, bad filter or name", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn cache_table(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<CacheBody>,
) -> Result<(StatusCode, Json<CachedTableDto>), ApiError> {
    let req = CacheRequest {
        schema: body.schema,
        table: body.table,
        name: body.name,
        filter: body.filter,
        cursor_column: body.cursor_column,
        ttl_secs: body.ttl_secs,
    };
    let cache = state.app.caches.create(&project, &name, req).await?;
    Ok((StatusCode::CREATED, Json(cache.into())))
}

/// The project's cached tables, with expiry.
#[utoipa::path(
    get, path = "/cache", tag = "sources",
    params(("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = Vec<CachedTableDto>))
)]
async fn list_caches(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
) -> Result<Json<Vec<CachedTableDto>>, ApiError> {
    Ok(Json(
        state
            .app
            .caches
            .list(&project)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

#[utoipa::path(
    get, path = "/cache/{name}", tag = "sources",
    params(("name" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = CachedTableDto), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
async fn get_cache(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<CachedTableDto>, ApiError> {
    Ok(Json(state.app.caches.get(&project, &name).await?.into()))
}

/// Drops the local copy.
#[utoipa::path(
    delete, path = "/cache/{name}", tag = "sources",
    params(("name" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 204, description = "Dropped"), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
async fn drop_cache(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.app.caches.drop_cache(&project, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct RefreshParams {
    /// Rebuild the whole copy even when the table has a cursor column.
    full: Option<bool>,
}

/// Refreshes a copy: incrementally (new rows past the cursor) when it has a cursor column, else rebuilt aside and
/// swapped in. A failed refresh leaves the previous copy as it was.
#[utoipa::path(
    post, path = "/cache/{name}/refresh", tag = "sources",
    params(("name" = String, Path), RefreshParams, ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = CachedTableDto), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The remote side failed; the previous copy is intact", body = Problem, content_type = "application/problem+json"))
)]
async fn refresh_cache(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<RefreshParams>,
) -> Result<Json<CachedTableDto>, ApiError> {
    Ok(Json(
        state
            .app
            .caches
            .refresh(&project, &name, q.full.unwrap_or(false))
            .await?
            .into(),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
struct CleanupDto {
    removed: Vec<String>,
}

/// Drops every cached table past its TTL.
#[utoipa::path(
    post, path = "/cache/cleanup", tag = "sources",
    params(("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = CleanupDto))
)]
async fn cleanup_caches(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
) -> Result<Json<CleanupDto>, ApiError> {
    let removed = state.app.caches.cleanup_expired(&project).await?;
    Ok(Json(CleanupDto {
        removed: removed.into_iter().map(|c| c.name.to_string()).collect(),
    }))
}
