//! Extractors whose rejections are problem+json with a useful detail, instead of axum's plain text; the header
//! extractors also document themselves, so an operation lists them in its `params(...)` by type.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::FromRequest;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pluto_duck_domain::ProjectId;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Ref, Required};
use utoipa::{IntoParams, ToSchema};

use crate::openapi::IdentifierText;
use crate::problem::ApiError;

#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::bad_request(r.body_text())
    }
}

/// The one way a request names its project: the `X-Pluto-Project` header, `default` when absent.
pub const PROJECT_HEADER: &str = "x-pluto-project";
/// The header as the document spells it.
pub const PROJECT_HEADER_NAME: &str = "X-Pluto-Project";

/// The project a request works in, checked to exist.
pub struct ProjectScope(pub ProjectId);

impl FromRequestParts<crate::AppState> for ProjectScope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &crate::AppState) -> Result<Self, Self::Rejection> {
        let id = match parts.headers.get(PROJECT_HEADER) {
            Some(v) => v
                .to_str()
                .map_err(|_| ApiError::bad_request("X-Pluto-Project must be text"))?
                .to_owned(),
            None => ProjectId::DEFAULT.to_owned(),
        };
        let project = state.app.projects.get(&id).await?;
        Ok(ProjectScope(project.id))
    }
}

impl IntoParams for ProjectScope {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![ParameterBuilder::new()
            .name(PROJECT_HEADER_NAME)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "The project to work in (default: `default`); an unknown project answers 404",
            ))
            .schema(Some(Ref::from_schema_name(IdentifierText::name())))
            .example(Some(serde_json::json!(ProjectId::DEFAULT)))
            .build()]
    }
}

/// Who a request acts for: the `X-Pluto-Actor` header, when given and not empty.
pub fn actor(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get("x-pluto-actor")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// An optional text header, for the document.
pub fn text_header(name: &str, description: &str) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

/// `Last-Event-ID`: the id of the last event a client saw (0 when absent or not a number), to resume a stream.
pub struct LastEventId(pub u64);

impl<S: Send + Sync> FromRequestParts<S> for LastEventId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(LastEventId(
            parts
                .headers
                .get("last-event-id")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0),
        ))
    }
}

impl IntoParams for LastEventId {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![ParameterBuilder::new()
            .name("Last-Event-ID")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some("Resume after this event: only later events are sent"))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::Int64,
                    )))
                    .minimum(Some(0)),
            ))
            .build()]
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = r.status();
        let slug = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
            StatusCode::UNPROCESSABLE_ENTITY => "invalid",
            _ => "bad-request",
        };
        ApiError::new(status, slug, r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::bad_request(r.body_text())
    }
}
