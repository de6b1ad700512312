//! A dataset object in one call: `POST /datasets/{bucket}/register` attaches it as a file source of the project,
//! `POST /datasets/{bucket}/ingest` copies it into a table as an ingest run.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pluto_duck_domain::{IngestMode, SourceConnection, SourceState};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::wire::BucketPath;
use crate::extract::{ApiJson, ApiPath, ApiQuery, ProjectScope};
use crate::openapi::IdentifierText;
use crate::problem::ApiError;
use crate::routes::ingest::JobIngestRunDto as IngestRunDto;
use crate::routes::runs::JobWaitParams;
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register_object))
        .routes(routes!(ingest_object))
}

/// Which object, and the source's name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    /// The object's key.
    pub key: String,
    /// The source's name (default: from the object's file name).
    #[schema(value_type = Option<IdentifierText>)]
    pub name: Option<String>,
}

/// The source an object became.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegisteredDto {
    #[schema(value_type = IdentifierText)]
    pub name: String,
    /// `file` (a local object, read by its path) or `s3` (read through httpfs).
    pub kind: String,
    /// Its path or `s3://` URL.
    pub location: String,
    /// `attached`, or `failed` with `error`.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Which object into which table.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestObjectBody {
    /// The object's key.
    pub key: String,
    /// Target table (default: from the object's file name).
    #[schema(value_type = Option<IdentifierText>)]
    pub target: Option<String>,
    /// Target schema (default `main`).
    #[schema(value_type = Option<IdentifierText>)]
    pub schema: Option<String>,
    /// `replace` (default) or `append`.
    pub mode: Option<String>,
}

/// Registers a dataset object as a file source of the project, read in place (a local object by its path, an S3
/// object through httpfs with the object store's credentials, kept in the secret store).
#[utoipa::path(
    post, path = "/datasets/{bucket}/register", tag = "datasets", request_body = RegisterBody,
    params(BucketPath, ProjectScope),
    responses(
        (status = 201, body = RegisteredDto),
        (status = 404, description = "No such bucket or object"),
        (status = 409, description = "The project has a source of that name"),
        (status = 422, description = "A bad key or name, or a file the engine cannot read"),
    )
)]
async fn register_object(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(BucketPath { bucket }): ApiPath<BucketPath>,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<(StatusCode, Json<RegisteredDto>), ApiError> {
    let (source, st) = (state.app.dataset_sources)
        .register(&project, &bucket, &body.key, body.name)
        .await?;
    let location = match &source.connection {
        SourceConnection::Located(l) => l.uri.clone(),
        _ => String::new(),
    };
    let (state_name, error) = match st {
        SourceState::Attached => ("attached".to_owned(), None),
        SourceState::Failed(e) => ("failed".to_owned(), Some(e)),
    };
    Ok((
        StatusCode::CREATED,
        Json(RegisteredDto {
            name: source.name.to_string(),
            kind: source.kind.as_str().to_owned(),
            location,
            state: state_name,
            error,
        }),
    ))
}

/// Ingests a dataset object into a table as an ingest run (its events and catalog entry as any ingest's): 202, or
/// 200 when it finished within `wait`.
#[utoipa::path(
    post, path = "/datasets/{bucket}/ingest", tag = "datasets", request_body = IngestObjectBody,
    params(BucketPath, JobWaitParams, ProjectScope),
    responses(
        (status = 202, description = "Queued or running", body = IngestRunDto),
        (status = 200, description = "Finished within the wait", body = IngestRunDto),
        (status = 404, description = "No such bucket or object"),
        (status = 422, description = "A bad key, target or mode, or a file the engine cannot read"),
    )
)]
async fn ingest_object(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(BucketPath { bucket }): ApiPath<BucketPath>,
    ApiQuery(q): ApiQuery<JobWaitParams>,
    ApiJson(body): ApiJson<IngestObjectBody>,
) -> Result<(StatusCode, Json<IngestRunDto>), ApiError> {
    let wait: Duration = q.wait()?;
    let mode = match body.mode.as_deref() {
        None | Some("replace") => IngestMode::Replace,
        Some("append") => IngestMode::Append,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "mode must be replace or append, not {other:?}"
            )))
        }
    };
    let run = (state.app.dataset_sources)
        .ingest(
            &project,
            &bucket,
            &body.key,
            body.target,
            body.schema,
            mode,
            Some("api".into()),
        )
        .await?;
    let run = state.app.ingest.wait(&project, run.id.as_str(), wait).await?;
    let code = if run.status.is_terminal() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((code, Json(IngestRunDto::from(run))))
}
