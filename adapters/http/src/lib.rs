//! The HTTP adapter. `api_routes()` builds the router and the OpenAPI document together, so a route cannot
//! exist without its spec entry.

mod auth;
mod dto;
mod extract;
pub mod formats;
mod guard;
mod problem;
mod routes;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::Router;
use pluto_duck_application::App;
use secrecy::SecretString;
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use auth::BearerScheme;
pub use dto::Problem;
pub use guard::HostGuard;

pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(Clone)]
pub struct AppState {
    pub app: App,
}

pub struct HttpConfig {
    /// When set, every endpoint but `/health` requires `Authorization: Bearer <token>`.
    pub api_token: Option<SecretString>,
    pub cors_origins: Vec<String>,
    pub body_limit_bytes: usize,
    /// For a server on loopback: the host names it answers to (DNS rebinding) and, with the CORS origins, who may
    /// change things (cross-site requests). `None` checks nothing (a server behind a token on a real address).
    pub allowed_hosts: Option<Vec<String>>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Pluto-Duck API",
        description = "Local-first AI data workbench: DuckDB warehouse, federation, analyses, agent.",
        license(name = "Apache-2.0")
    ),
    tags(
        (name = "system", description = "Health and diagnostics"),
        (name = "projects", description = "Projects keep work apart"),
        (name = "sources", description = "Live federation: PostgreSQL, MySQL/MariaDB, SQLite and DuckDB files through ATTACH; files, folders, HTTP and S3 read in place; cached copies"),
        (name = "ingest", description = "Ingestion jobs through connectors (replace, append, merge), SSE progress, the ingestion catalog and sync history"),
        (name = "analyses", description = "Saved SQL with ref() dependencies: the DAG, compile plans with freshness, lineage"),
        (name = "boards", description = "Boards of items (markdown, tables, charts, metrics, images) with query snapshots and scheduled refresh"),
        (name = "dbt", description = "dbt invocations as runs with node events, per-node results, the models' status"),
        (name = "query", description = "Ad-hoc SQL as jobs: status, events, results in five formats, profiles"),
    ),
    modifiers(&BearerScheme),
    security(("bearer" = []))
)]
struct ApiDoc;

/// Every route with its documentation.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::system::routes())
        .nest("/api/v1", routes::v1())
}

/// The generated OpenAPI 3.1 document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().split_for_parts().1
}

/// The complete application: routes, Swagger UI at `/docs`, and the layers every request passes.
pub fn router(state: AppState, config: HttpConfig) -> Router {
    let (api, spec) = api_routes().split_for_parts();
    let token = config.api_token.map(std::sync::Arc::new);
    let guard = config.allowed_hosts.map(|hosts| {
        std::sync::Arc::new(guard::HostGuard {
            hosts: hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
            origins: config.cors_origins.clone(),
        })
    });
    Router::new()
        .merge(api)
        .merge(SwaggerUi::new("/docs").url("/openapi.json", spec))
        .fallback(problem::not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(config.body_limit_bytes))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(problem::make_span))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(cors(&config.cors_origins))
                .layer(CompressionLayer::new())
                .layer(axum::middleware::from_fn(problem::normalize_errors))
                .layer(axum::middleware::from_fn_with_state(guard, guard::check_host))
                .layer(axum::middleware::from_fn_with_state(token, auth::require_bearer))
                .layer(RequestBodyLimitLayer::new(config.body_limit_bytes)),
        )
}

fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            REQUEST_ID,
            HeaderName::from_static(extract::PROJECT_HEADER),
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("prefer"),
        ])
        .expose_headers([
            REQUEST_ID,
            HeaderName::from_static("x-total-rows"),
            HeaderName::from_static("x-query-id"),
        ])
        .max_age(Duration::from_secs(600))
}
