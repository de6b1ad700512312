//! The HTTP adapter. `api_routes()` builds the router and the OpenAPI document together, so a route cannot
//! exist without its spec entry.

mod auth;
mod extract;
pub mod formats;
mod guard;
mod openapi;
mod problem;
mod routes;

use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use pluto_duck_application::App;
use secrecy::SecretString;
use tower::ServiceBuilder;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

pub use guard::HostGuard;
pub use problem::Problem;

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

/// Every route with its documentation.
pub fn api_routes() -> OpenApiRouter<AppState> {
    let mut api = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(routes::system::routes())
        .nest("/api/v1", routes::v1());
    openapi::ProblemResponses.modify(api.get_openapi_mut());
    api
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
                .layer(compression())
                .layer(axum::middleware::from_fn(problem::normalize_errors))
                .layer(axum::middleware::from_fn_with_state(guard, guard::check_host))
                .layer(axum::middleware::from_fn_with_state(token, auth::require_bearer))
                .layer(axum::middleware::from_fn_with_state(
                    config.body_limit_bytes,
                    limit_body,
                )),
        )
}

/// The server's body limit (`server.body_limit_mb`) for every request but object uploads, which stream into the
/// object store under their own limit (`datasets.max_object_mb`). A body declared too large is refused before it is
/// read; one that grows past the limit fails its extractor with 413.
async fn limit_body(State(limit): State<usize>, req: Request, next: Next) -> Response {
    if routes::datasets::is_object_upload(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return (StatusCode::PAYLOAD_TOO_LARGE, "length limit exceeded").into_response();
    }
    next.run(req.map(|b| Body::new(http_body_util::Limited::new(b, limit))))
        .await
}

/// Compression that never costs more than it saves on loopback: the fastest level, zstd where the client takes it
/// (else gzip), and nothing for bodies that are already compact or must not wait for a compressor's buffer —
/// Arrow IPC and Parquet (binary columnar; Parquet is compressed already), images, event streams — nor for bodies
/// too small to gain.
fn compression() -> CompressionLayer<impl Predicate> {
    CompressionLayer::new()
        .quality(CompressionLevel::Fastest)
        .compress_when(
            DefaultPredicate::new()
                .and(NotForContentType::const_new("application/vnd.apache.arrow.stream"))
                .and(NotForContentType::const_new("application/vnd.apache.parquet"))
                // Downloads of stored objects go out byte for byte, so lengths and ranges stay what they say.
                .and(
                    |_: StatusCode, _: axum::http::Version, h: &axum::http::HeaderMap, _: &axum::http::Extensions| {
                        !h.contains_key(header::ACCEPT_RANGES)
                    },
                ),
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
