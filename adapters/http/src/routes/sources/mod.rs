//! `/api/v1/source`: attached sources, their catalogs, previews, estimates and pushdown plans.

mod config;
mod wire;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::extract::{ApiJson, ApiPath, ApiQuery, ProjectScope};
use crate::formats::{page_response, ColumnDto, Format, Rows};
use crate::problem::ApiError;
use crate::AppState;
pub use config::{CsvStrictnessName, SourceBody, SourceKindName};
use wire::{
    EstimateDto, ExplainBody, PreviewParams, ScanDto, SourceDetailDto, SourceDto, SourcePatch, TablePath, TablesParams,
};
pub use wire::{SourcePath, TableDto};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(attach_source, list_sources))
        .routes(routes!(test_new_source))
        .routes(routes!(get_source, update_source, detach_source))
        .routes(routes!(test_source))
        .routes(routes!(source_schemas))
        .routes(routes!(source_tables))
        .routes(routes!(table_columns))
        .routes(routes!(table_preview))
        .routes(routes!(table_estimate))
        .routes(routes!(explain_on_source))
}

/// Attaches a database (PostgreSQL, MySQL/MariaDB, SQLite or DuckDB file), read-only by default. The password
/// goes to the secret store. Nothing is kept when the attach fails.
#[utoipa::path(
    post, path = "/source", tag = "sources", request_body = SourceBody, params(ProjectScope),
    responses(
        (status = 201, body = SourceDto),
        (status = 403, description = "A file outside the allowed roots, or one of Pluto-Duck's own"),
        (status = 409, description = "A source of that name exists, or the project's queries keep running"),
        (status = 422, description = "Invalid name or configuration, wrong password, unreachable host, missing file"),
        (status = 503, description = "Extension missing"),
    )
)]
async fn attach_source(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiJson(body): ApiJson<SourceBody>,
) -> Result<(StatusCode, Json<SourceDto>), ApiError> {
    let attached = state.app.sources.attach(&project, body.into_new_source()?).await?;
    Ok((StatusCode::CREATED, Json(attached.into())))
}

/// Tries a configuration without attaching it.
#[utoipa::path(
    post, path = "/source/test", tag = "sources", request_body = SourceBody, params(ProjectScope),
    responses(
        (status = 204, description = "Reachable"),
        (status = 403, description = "A file outside the allowed roots, or one of Pluto-Duck's own"),
        (status = 422, description = "Invalid configuration, wrong password, unreachable host, missing file"),
    )
)]
async fn test_new_source(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiJson(body): ApiJson<SourceBody>,
) -> Result<StatusCode, ApiError> {
    state.app.sources.test_new(&project, body.into_new_source()?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The project's sources with their state (passwords masked).
#[utoipa::path(
    get, path = "/source", tag = "sources", params(ProjectScope),
    responses((status = 200, body = Vec<SourceDto>))
)]
async fn list_sources(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
) -> Result<Json<Vec<SourceDto>>, ApiError> {
    let sources = state.app.sources.list_with_states(&project).await?;
    Ok(Json(sources.into_iter().map(Into::into).collect()))
}

/// A source with its tables (empty, with the error, when it is not attached) and its cached copies.
#[utoipa::path(
    get, path = "/source/{name}", tag = "sources", params(SourcePath, ProjectScope),
    responses((status = 200, body = SourceDetailDto))
)]
async fn get_source(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(SourcePath { name }): ApiPath<SourcePath>,
) -> Result<Json<SourceDetailDto>, ApiError> {
    Ok(Json(state.app.sources.detail(&project, &name).await?.into()))
}

/// Updates the description.
#[utoipa::path(
    patch, path = "/source/{name}", tag = "sources", request_body = SourcePatch, params(SourcePath, ProjectScope),
    responses((status = 200, body = SourceDto))
)]
async fn update_source(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(SourcePath { name }): ApiPath<SourcePath>,
    ApiJson(body): ApiJson<SourcePatch>,
) -> Result<Json<SourceDto>, ApiError> {
    let described = state.app.sources.describe(&project, &name, &body.description).await?;
    Ok(Json(described.into()))
}

/// Detaches the source and forgets it and its password.
#[utoipa::path(
    delete, path = "/source/{name}", tag = "sources", params(SourcePath, ProjectScope),
    responses((status = 204, description = "Detached"), (status = 409, description = "The project's queries keep running"))
)]
async fn detach_source(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(SourcePath { name }): ApiPath<SourcePath>,
) -> Result<StatusCode, ApiError> {
    state.app.sources.detach(&project, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Connects again with the stored configuration.
#[utoipa::path(
    post, path = "/source/{name}/test", tag = "sources", params(SourcePath, ProjectScope),
    responses((status = 204, description = "Reachable"), (status = 422, description = "Unreachable, or refused"))
)]
async fn test_source(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(SourcePath { name }): ApiPath<SourcePath>,
) -> Result<StatusCode, ApiError> {
    state.app.sources.test(&project, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The source's schemas.
#[utoipa::path(
    get, path = "/source/{name}/schemas", tag = "sources", params(SourcePath, ProjectScope),
    responses((status = 200, body = Vec<String>), (status = 503, description = "Not attached"))
)]
async fn source_schemas(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(SourcePath { name }): ApiPath<SourcePath>,
) -> Result<Json<Vec<String>>, ApiError> {
    Ok(Json(state.app.sources.schemas(&project, &name).await?))
}

/// Tables and views, with row estimates where the engine has them.
#[utoipa::path(
    get, path = "/source/{name}/tables", tag = "sources", params(SourcePath, TablesParams, ProjectScope),
    responses((status = 200, body = Vec<TableDto>), (status = 503, description = "Not attached"))
)]
async fn source_tables(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(SourcePath { name }): ApiPath<SourcePath>,
    ApiQuery(q): ApiQuery<TablesParams>,
) -> Result<Json<Vec<TableDto>>, ApiError> {
    let tables = state.app.sources.tables(&project, &name, q.schema).await?;
    Ok(Json(tables.into_iter().map(Into::into).collect()))
}

/// Columns of a table with their types.
#[utoipa::path(
    get, path = "/source/{name}/tables/{schema}/{table}", tag = "sources", params(TablePath, ProjectScope),
    responses((status = 200, body = Vec<ColumnDto>), (status = 503, description = "Not attached"))
)]
async fn table_columns(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(t): ApiPath<TablePath>,
) -> Result<Json<Vec<ColumnDto>>, ApiError> {
    let columns = state
        .app
        .sources
        .columns(&project, &t.name, &t.schema, &t.table)
        .await?;
    Ok(Json(columns.into_iter().map(Into::into).collect()))
}

/// The first rows of a table, as a read-only query (it appears in the query history).
#[utoipa::path(
    get, path = "/source/{name}/tables/{schema}/{table}/preview", tag = "sources",
    params(TablePath, PreviewParams, ProjectScope),
    responses(
        (status = 200, response = Rows),
        (status = 404, description = "Unknown source or table"),
        (status = 406, description = "`Accept` names no result format"),
        (status = 409, description = "The read was cancelled"),
        (status = 422, description = "The query failed"),
        (status = 503, description = "Source not attached"),
        (status = 504, description = "Timed out"),
    )
)]
async fn table_preview(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(t): ApiPath<TablePath>,
    ApiQuery(q): ApiQuery<PreviewParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let format = Format::negotiate(q.format.as_deref(), &headers)?;
    let sources = &state.app.sources;
    let (run, page) = sources
        .preview(&project, &t.name, &t.schema, &t.table, q.limit())
        .await?;
    Ok(page_response(&run, page, format, 0))
}

/// The planner's row estimate for a table: PostgreSQL's statistics, Parquet metadata, DuckDB's own counts.
#[utoipa::path(
    get, path = "/source/{name}/tables/{schema}/{table}/estimate", tag = "sources", params(TablePath, ProjectScope),
    responses((status = 200, body = EstimateDto), (status = 503, description = "Not attached"))
)]
async fn table_estimate(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(t): ApiPath<TablePath>,
) -> Result<Json<EstimateDto>, ApiError> {
    let sources = &state.app.sources;
    let estimated_rows = sources.estimate_rows(&project, &t.name, &t.schema, &t.table).await?;
    Ok(Json(EstimateDto { estimated_rows }))
}

/// How a query over the source would run, without running it: each scan with the projections and filters pushed
/// down to the source, the planner's estimate and, for PostgreSQL and MySQL, the query the remote database gets.
#[utoipa::path(
    post, path = "/source/{name}/explain", tag = "sources", request_body = ExplainBody, params(SourcePath, ProjectScope),
    responses(
        (status = 200, body = Vec<ScanDto>),
        (status = 403, description = "The SQL reaches outside the project's sandbox"),
        (status = 422, description = "Not one read statement, or SQL the engine refuses"),
        (status = 503, description = "Not attached"),
    )
)]
async fn explain_on_source(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(SourcePath { name }): ApiPath<SourcePath>,
    ApiJson(body): ApiJson<ExplainBody>,
) -> Result<Json<Vec<ScanDto>>, ApiError> {
    let scans = state.app.sources.explain(&project, &name, &body.sql).await?;
    Ok(Json(scans.into_iter().map(Into::into).collect()))
}
