//! RFC 9457 problem details. Handlers return [`ApiError`]; [`normalize_errors`] then stamps every error
//! response (ours, axum's rejections, the body limit, 404/405) into one shape with the request id.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use pluto_duck_application::{AppError, ProblemType};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::REQUEST_ID;

pub const PROBLEM_JSON: &str = "application/problem+json";
// Problem bodies are small; anything larger is not one of ours and is passed through untouched.
const MAX_PROBLEM_BYTES: usize = 64 * 1024;

/// RFC 9457 problem details, served as `application/problem+json`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URN naming the kind of problem, e.g. `urn:pluto-duck:problem:not-found`.
    #[serde(rename = "type")]
    pub r#type: String,
    pub title: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request path the problem occurred on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Also in the `x-request-id` response header; quote it when reporting a problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// For SQL errors: the 0-based character offset in the submitted SQL that the engine points at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    slug: &'static str,
    detail: String,
    position: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, slug: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            slug,
            detail: detail.into(),
            position: None,
        }
    }

    pub fn with_position(mut self, position: Option<u64>) -> Self {
        self.position = position;
        self
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    /// 422: the request parses but breaks a rule.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", detail)
    }

    /// 500, for an encoding failure of our own (the detail goes to the log).
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail.to_string())
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        let p = e.problem();
        Self {
            position: e.position(),
            ..Self::new(
                StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                p.slug,
                e.to_string(),
            )
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        problem_response(self.status, self.slug, Some(self.detail), None, None, self.position)
    }
}

fn problem_response(
    status: StatusCode,
    slug: &str,
    detail: Option<String>,
    instance: Option<String>,
    request_id: Option<String>,
    position: Option<u64>,
) -> Response {
    let body = Problem {
        r#type: format!("urn:pluto-duck:problem:{slug}"),
        title: ProblemType::by_slug(slug)
            .filter(|p| p.status == status.as_u16())
            .map(|p| p.title)
            .or(status.canonical_reason())
            .unwrap_or("Error")
            .to_owned(),
        status: status.as_u16(),
        detail,
        instance,
        request_id,
        position,
    };
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    resp
}

pub async fn not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not-found",
        format!("no route for {} {}", req.method(), req.uri().path()),
    )
}

pub fn make_span(req: &Request<Body>) -> tracing::Span {
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id)
}

/// Gives every error response the problem+json shape, the request path as `instance` and the request id.
/// 5xx details are logged here and replaced, so internals never reach a client.
pub async fn normalize_errors(req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let path = req.uri().path().to_owned();
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    let (parts, body) = resp.into_parts();
    let bytes = match http_body_util::Limited::new(body, MAX_PROBLEM_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return problem_response(status, slug_for(status), None, Some(path), request_id, None),
    };
    let (slug, detail, position) = if is_problem {
        match serde_json::from_slice::<Problem>(&bytes) {
            Ok(p) => (
                p.r#type
                    .rsplit(':')
                    .next()
                    .unwrap_or_else(|| slug_for(status))
                    .to_owned(),
                p.detail,
                p.position,
            ),
            Err(_) => (slug_for(status).to_owned(), None, None),
        }
    } else {
        let text = String::from_utf8_lossy(&bytes).trim().to_owned();
        (slug_for(status).to_owned(), (!text.is_empty()).then_some(text), None)
    };
    let kind = ProblemType::by_slug(&slug)
        .map(|p| p.kind)
        .unwrap_or_else(|| ProblemType::by_status(status.as_u16()).kind);
    let detail = if status.is_server_error() && !kind.shows_detail() {
        tracing::error!(
            status = status.as_u16(),
            request_id,
            detail = detail.as_deref().unwrap_or(""),
            "request failed"
        );
        Some(format!(
            "internal error; the server log has the details under request id {}",
            request_id.as_deref().unwrap_or("-")
        ))
    } else {
        if status.is_server_error() {
            tracing::warn!(
                status = status.as_u16(),
                request_id,
                detail = detail.as_deref().unwrap_or(""),
                "request failed"
            );
        }
        detail
    };
    let mut out = problem_response(status, known_slug(&slug), detail, Some(path), request_id, position);
    // Keep headers such as WWW-Authenticate and Allow.
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

fn slug_for(status: StatusCode) -> &'static str {
    ProblemType::by_status(status.as_u16()).slug
}

/// Slugs come from the application's table; map back to the static one so responses never echo arbitrary text.
fn known_slug(slug: &str) -> &'static str {
    ProblemType::by_slug(slug).map(|p| p.slug).unwrap_or("internal")
}
