//! RFC 9457 problem details. Handlers return [`ApiError`]; [`normalize_errors`] then stamps every error
//! response (ours, axum's rejections, the body limit, 404/405) into one shape with the request id.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use pluto_duck_application::{AppError, ErrorKind};

use crate::dto::Problem;
use crate::REQUEST_ID;

pub const PROBLEM_JSON: &str = "application/problem+json";
// Problem bodies are small; anything larger is not one of ours and is passed through untouched.
const MAX_PROBLEM_BYTES: usize = 64 * 1024;

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
}

pub fn status_of(kind: ErrorKind) -> (StatusCode, &'static str) {
    match kind {
        ErrorKind::Invalid => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        ErrorKind::NotFound => (StatusCode::NOT_FOUND, "not-found"),
        ErrorKind::Conflict => (StatusCode::CONFLICT, "conflict"),
        ErrorKind::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
        ErrorKind::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
        ErrorKind::Timeout => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
        ErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        ErrorKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        let (status, slug) = status_of(e.kind());
        Self {
            position: e.position(),
            ..Self::new(status, slug, e.to_string())
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
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
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
        Err(_) => return problem_response(status, "error", None, Some(path), request_id, None),
    };
    let (slug, detail, position) = if is_problem {
        match serde_json::from_slice::<Problem>(&bytes) {
            Ok(p) => (
                p.r#type.rsplit(':').next().unwrap_or("error").to_owned(),
                p.detail,
                p.position,
            ),
            Err(_) => ("error".to_owned(), None, None),
        }
    } else {
        let text = String::from_utf8_lossy(&bytes).trim().to_owned();
        (slug_for(status).to_owned(), (!text.is_empty()).then_some(text), None)
    };
    let detail = if status.is_server_error() {
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
    match status {
        StatusCode::BAD_REQUEST => "bad-request",
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        StatusCode::NOT_ACCEPTABLE => "not-acceptable",
        s if s.is_server_error() => "internal",
        _ => "error",
    }
}

/// Slugs come from a small fixed set; map back to the static one so responses never echo arbitrary text.
fn known_slug(slug: &str) -> &'static str {
    const KNOWN: [&str; 15] = [
        "not-acceptable",
        "bad-request",
        "unauthenticated",
        "not-found",
        "method-not-allowed",
        "payload-too-large",
        "unsupported-media-type",
        "invalid",
        "conflict",
        "forbidden",
        "timeout",
        "unavailable",
        "internal",
        "error",
        "missing-extension",
    ];
    KNOWN.iter().find(|k| **k == slug).copied().unwrap_or("error")
}
