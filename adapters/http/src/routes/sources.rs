use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use pluto_duck_application::NewSource;
use pluto_duck_domain::{FileFormat, FileLocation, S3Settings, SourceConnection, SourceKind};
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::query::respond_page;
use crate::dto::{
    ColumnDto, EstimateDto, ExplainBody, Problem, ScanDto, SourceBody, SourceDetailDto, SourceDto, SourcePatch,
    TableDto,
};
use crate::extract::{ApiJson, ApiPath, ApiQuery, ProjectScope};
use crate::formats::Format;
use crate::problem::ApiError;
use crate::AppState;

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

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", msg)
}

/// `scheme://user:password@host:port/database`, `sqlite:///path`, `duckdb:///path`, `file:///path`, an
/// http(s) URL or an s3 URL.
fn parse_dsn(dsn: &str) -> Result<(SourceKind, SourceConnection, Option<String>), ApiError> {
    // Never echo the DSN: it may hold a password.
    let bad = || {
        invalid(
            "dsn must look like postgres://user:password@host:5432/database, mysql://..., sqlite:///path, \
             duckdb:///path, file:///path, https://host/file.csv or s3://bucket/key",
        )
    };
    let (scheme, rest) = dsn.split_once("://").ok_or_else(bad)?;
    let located = |kind, uri: &str| {
        let location = FileLocation {
            uri: uri.to_owned(),
            format: None,
            delimiter: None,
            header: None,
            lenient: false,
            s3: None,
        };
        Ok((kind, SourceConnection::Located(location), None))
    };
    let kind = match scheme.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" => SourceKind::Postgres,
        "mysql" | "mariadb" => SourceKind::Mysql,
        "sqlite" => SourceKind::Sqlite,
        "duckdb" => SourceKind::Duckdb,
        "file" => return located(SourceKind::File, rest),
        "http" | "https" => return located(SourceKind::Http, dsn),
        "s3" => return located(SourceKind::S3, dsn),
        _ => return Err(bad()),
    };
    if matches!(kind, SourceKind::Sqlite | SourceKind::Duckdb) {
        return Ok((kind, SourceConnection::File { path: rest.to_owned() }, None));
    }
    let url = url::Url::parse(dsn).map_err(|_| bad())?;
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let connection = SourceConnection::Server {
        host: url.host_str().ok_or_else(bad)?.to_owned(),
        port: url
            .port()
            .unwrap_or(if kind == SourceKind::Postgres { 5432 } else { 3306 }),
        database: decode(url.path().trim_start_matches('/')),
        user: decode(url.username()),
        password_secret: None,
    };
    Ok((kind, connection, url.password().map(decode)))
}

/// The connection a body describes; `name` is left to the caller (an ad-hoc ingest source has none).
pub(crate) fn new_source_config(body: SourceBody) -> Result<NewSource, ApiError> {
    let (kind, mut connection, dsn_password) = match &body.dsn {
        Some(dsn) => parse_dsn(dsn)?,
        None => {
            let kind_name = body
                .kind
                .as_deref()
                .ok_or_else(|| invalid("give `kind` (postgres, mysql, sqlite, duckdb, file, http, s3) or `dsn`"))?;
            let kind = SourceKind::parse(kind_name).map_err(|e| invalid(e.to_string()))?;
            let connection = match kind {
                SourceKind::Postgres | SourceKind::Mysql => SourceConnection::Server {
                    host: body.host.clone().unwrap_or_else(|| "127.0.0.1".into()),
                    port: body
                        .port
                        .unwrap_or(if kind == SourceKind::Postgres { 5432 } else { 3306 }),
                    database: body.database.clone().ok_or_else(|| invalid("`database` is required"))?,
                    user: body.user.clone().ok_or_else(|| invalid("`user` is required"))?,
                    password_secret: None,
                },
                SourceKind::Sqlite | SourceKind::Duckdb => SourceConnection::File {
                    path: body.path.clone().ok_or_else(|| invalid("`path` is required"))?,
                },
                SourceKind::File | SourceKind::Http | SourceKind::S3 => SourceConnection::Located(FileLocation {
                    uri: body
                        .location
                        .clone()
                        .or(body.path.clone())
                        .ok_or_else(|| invalid("`location` is required"))?,
                    format: None,
                    delimiter: None,
                    header: None,
                    lenient: false,
                    s3: None,
                }),
            };
            (kind, connection, None)
        }
    };
    if let SourceConnection::Located(l) = &mut connection {
        l.format = body
            .format
            .as_deref()
            .map(FileFormat::parse)
            .transpose()
            .map_err(|e| invalid(e.to_string()))?;
        l.delimiter = body.delimiter.clone();
        l.header = body.header;
        l.lenient = match body.csv.as_deref() {
            None | Some("strict") => false,
            Some("lenient") => true,
            Some(other) => return Err(invalid(format!("csv must be strict or lenient, not {other:?}"))),
        };
        if kind == SourceKind::S3 {
            l.s3 = Some(S3Settings {
                region: body.region.clone(),
                endpoint: body.endpoint.clone(),
                path_style: match body.url_style.as_deref() {
                    None | Some("vhost") => false,
                    Some("path") => true,
                    Some(_) => return Err(invalid("url_style must be path or vhost")),
                },
                use_ssl: body.use_ssl.unwrap_or(true),
                key_id: body.key_id.clone(),
                secret_key_secret: None,
            });
        }
    }
    Ok(NewSource {
        name: body.name.unwrap_or_default(),
        kind,
        description: body.description,
        connection,
        password: body
            .password
            .or(body.secret_access_key)
            .or(dsn_password)
            .filter(|p| !p.is_empty())
            .map(SecretString::from),
        read_only: body.read_only.unwrap_or(true),
    })
}

fn new_source(body: SourceBody) -> Result<NewSource, ApiError> {
    if body.name.is_none() {
        return Err(invalid("`name` is required"));
    }
    new_source_config(body)
}

/// Attaches a database (PostgreSQL, MySQL/MariaDB, SQLite or DuckDB file), read-only by default. The password
/// goes to the secret store. Nothing is kept when the attach fails.
#[utoipa::path(
    post, path = "/source", tag = "sources", request_body = SourceBody,
    params(("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses(
        (status = 201, body = SourceDto),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A source of that name exists", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name or configuration, wrong password, unreachable host, missing file", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Extension missing", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn attach_source(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiJson(body): ApiJson<SourceBody>,
) -> Result<(StatusCode, Json<SourceDto>), ApiError> {
    let source = state.app.sources.attach(&project, new_source(body)?).await?;
    let st = state.app.sources.state(&source).await;
    Ok((StatusCode::CREATED, Json(SourceDto::new(source, st))))
}

/// Tries a configuration without attaching it.
#[utoipa::path(
    post, path = "/source/test", tag = "sources", request_body = SourceBody,
    params(("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses(
        (status = 204, description = "Reachable"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn test_new_source(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiJson(body): ApiJson<SourceBody>,
) -> Result<StatusCode, ApiError> {
    state.app.sources.test_new(&project, new_source(body)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The project's sources with their state (passwords masked).
#[utoipa::path(
    get, path = "/source", tag = "sources",
    params(("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = Vec<SourceDto>), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
async fn list_sources(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
) -> Result<Json<Vec<SourceDto>>, ApiError> {
    let sources = state.app.sources.list_with_states(&project).await?;
    Ok(Json(sources.into_iter().map(|(s, st)| SourceDto::new(s, st)).collect()))
}

/// A source with its tables (empty, with the error, when it is not attached).
#[utoipa::path(
    get, path = "/source/{name}", tag = "sources",
    params(("name" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = SourceDetailDto), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"))
)]
async fn get_source(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<SourceDetailDto>, ApiError> {
    let source = state.app.sources.get(&project, &name).await?;
    let st = state.app.sources.state(&source).await;
    let tables = state
        .app
        .sources
        .tables(&project, &name, None)
        .await
        .unwrap_or_default();
    let cached = state.app.caches.list(&project).await?;
    let cached = cached
        .into_iter()
        .filter(|c| c.source == source.name)
        .map(Into::into)
        .collect();
    Ok(Json(SourceDetailDto {
        source: SourceDto::new(source, st),
        tables: tables.into_iter().map(Into::into).collect(),
        cached,
    }))
}

/// Updates the description.
#[utoipa::path(
    patch, path = "/source/{name}", tag = "sources", request_body = SourcePatch,
    params(("name" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = SourceDto), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
async fn update_source(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<SourcePatch>,
) -> Result<Json<SourceDto>, ApiError> {
    let source = state.app.sources.describe(&project, &name, &body.description).await?;
    let st = state.app.sources.state(&source).await;
    Ok(Json(SourceDto::new(source, st)))
}

/// Detaches the source and forgets it and its password.
#[utoipa::path(
    delete, path = "/source/{name}", tag = "sources",
    params(("name" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 204, description = "Detached"), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
async fn detach_source(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.app.sources.detach(&project, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Connects again with the stored configuration.
#[utoipa::path(
    post, path = "/source/{name}/test", tag = "sources",
    params(("name" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 204, description = "Reachable"), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"))
)]
async fn test_source(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.app.sources.test(&project, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The source's schemas.
#[utoipa::path(
    get, path = "/source/{name}/schemas", tag = "sources",
    params(("name" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = Vec<String>), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not attached", body = Problem, content_type = "application/problem+json"))
)]
async fn source_schemas(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Vec<String>>, ApiError> {
    Ok(Json(state.app.sources.schemas(&project, &name).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct TablesParams {
    /// Only this schema (keeps large catalogs fast).
    schema: Option<String>,
}

/// Tables and views, with row estimates where the engine has them.
#[utoipa::path(
    get, path = "/source/{name}/tables", tag = "sources",
    params(("name" = String, Path), TablesParams, ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = Vec<TableDto>), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not attached", body = Problem, content_type = "application/problem+json"))
)]
async fn source_tables(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<TablesParams>,
) -> Result<Json<Vec<TableDto>>, ApiError> {
    let tables = state.app.sources.tables(&project, &name, q.schema).await?;
    Ok(Json(tables.into_iter().map(Into::into).collect()))
}

/// Columns of a table with their types.
#[utoipa::path(
    get, path = "/source/{name}/tables/{schema}/{table}", tag = "sources",
    params(("name" = String, Path), ("schema" = String, Path), ("table" = String, Path),
        ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = Vec<ColumnDto>), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
async fn table_columns(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath((name, schema, table)): ApiPath<(String, String, String)>,
) -> Result<Json<Vec<ColumnDto>>, ApiError> {
    let columns = state.app.sources.columns(&project, &name, &schema, &table).await?;
    Ok(Json(
        columns
            .into_iter()
            .map(|c| ColumnDto {
                name: c.name,
                data_type: c.data_type,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct PreviewParams {
    /// Rows (default 100, at most 1000).
    limit: Option<u64>,
    /// json (default), ndjson, csv, arrow, parquet.
    format: Option<String>,
}

/// The first rows of a table, as a read-only query (it appears in the query history).
#[utoipa::path(
    get, path = "/source/{name}/tables/{schema}/{table}/preview", tag = "sources",
    params(("name" = String, Path), ("schema" = String, Path), ("table" = String, Path), PreviewParams,
        ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, description = "The rows", content((Object = "application/json"))),
        (status = 404, description = "Unknown source or table", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The query failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Source not attached", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "Timed out", body = Problem, content_type = "application/problem+json"))
)]
async fn table_preview(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath((name, schema, table)): ApiPath<(String, String, String)>,
    ApiQuery(q): ApiQuery<PreviewParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let format = Format::negotiate(q.format.as_deref(), &headers)?;
    let (run, page) = state
        .app
        .sources
        .preview(&project, &name, &schema, &table, q.limit.unwrap_or(100).min(1000))
        .await?;
    Ok(respond_page(&run, page, format, 0))
}

/// The planner's row estimate for a table: PostgreSQL's statistics, Parquet metadata, DuckDB's own counts.
#[utoipa::path(
    get, path = "/source/{name}/tables/{schema}/{table}/estimate", tag = "sources",
    params(("name" = String, Path), ("schema" = String, Path), ("table" = String, Path),
        ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = EstimateDto), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
async fn table_estimate(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath((name, schema, table)): ApiPath<(String, String, String)>,
) -> Result<Json<EstimateDto>, ApiError> {
    let estimated_rows = state
        .app
        .sources
        .estimate_rows(&project, &name, &schema, &table)
        .await?;
    Ok(Json(EstimateDto { estimated_rows }))
}

/// How a query over the source would run, without running it: each scan with the projections and filters pushed
/// down to the source, the planner's estimate and, for PostgreSQL and MySQL, the query the remote database gets.
#[utoipa::path(
    post, path = "/source/{name}/explain", tag = "sources", request_body = ExplainBody,
    params(("name" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = Vec<ScanDto>), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"))
)]
async fn explain_on_source(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<ExplainBody>,
) -> Result<Json<Vec<ScanDto>>, ApiError> {
    let scans = state.app.sources.explain(&project, &name, &body.sql).await?;
    Ok(Json(
        scans
            .into_iter()
            .map(|s| ScanDto {
                operator: s.operator,
                table: s.table,
                projections: s.projections,
                filters: s.filters,
                estimated_rows: s.estimated_rows,
                remote_sql: s.remote_sql,
            })
            .collect(),
    ))
}
