//! `/api/v1/projects`: projects, their settings, reset and delete.

mod wire;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::extract::{ApiJson, ApiPath};
use crate::problem::ApiError;
use crate::AppState;
use wire::{ConfirmBody, CreateProjectBody, ProjectDto, ProjectPath, RemovedDto, RenameProjectBody};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_projects, create_project))
        .routes(routes!(get_project, rename_project, delete_project))
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(reset_project))
}

/// All projects, oldest first. The `default` project always exists.
#[utoipa::path(get, path = "/projects", tag = "projects", responses((status = 200, body = Vec<ProjectDto>)))]
async fn list_projects(State(state): State<AppState>) -> Result<Json<Vec<ProjectDto>>, ApiError> {
    let projects = state.app.projects.list().await?;
    Ok(Json(projects.into_iter().map(Into::into).collect()))
}

#[utoipa::path(
    get, path = "/projects/{project_id}", tag = "projects", params(ProjectPath),
    responses((status = 200, body = ProjectDto))
)]
async fn get_project(
    State(state): State<AppState>,
    ApiPath(ProjectPath { project_id }): ApiPath<ProjectPath>,
) -> Result<Json<ProjectDto>, ApiError> {
    Ok(Json(state.app.projects.get(&project_id).await?.into()))
}

/// Creates a project. Its id is an identifier (letters, digits, underscores) and cannot change.
#[utoipa::path(
    post, path = "/projects", tag = "projects", request_body = CreateProjectBody,
    responses(
        (status = 201, body = ProjectDto),
        (status = 409, description = "A project with this id exists"),
        (status = 422, description = "Invalid id or name"),
    )
)]
async fn create_project(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateProjectBody>,
) -> Result<(StatusCode, Json<ProjectDto>), ApiError> {
    let project = state.app.projects.create(&body.id, body.name).await?;
    Ok((StatusCode::CREATED, Json(project.into())))
}

/// Renames a project (its id never changes).
#[utoipa::path(
    patch, path = "/projects/{project_id}", tag = "projects", request_body = RenameProjectBody, params(ProjectPath),
    responses((status = 200, body = ProjectDto), (status = 422, description = "An empty name, or one over 200 characters"))
)]
async fn rename_project(
    State(state): State<AppState>,
    ApiPath(ProjectPath { project_id }): ApiPath<ProjectPath>,
    ApiJson(body): ApiJson<RenameProjectBody>,
) -> Result<Json<ProjectDto>, ApiError> {
    let renamed = state
        .app
        .project_data
        .update(&project_id, Some(body.name), None)
        .await?;
    Ok(Json(renamed.into()))
}

/// The project's settings: a JSON object the client owns (`{}` until set).
#[utoipa::path(
    get, path = "/projects/{project_id}/settings", tag = "projects", params(ProjectPath),
    responses((status = 200, body = Object))
)]
async fn get_settings(
    State(state): State<AppState>,
    ApiPath(ProjectPath { project_id }): ApiPath<ProjectPath>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(state.app.project_data.settings(&project_id).await?))
}

/// Replaces the project's settings with a JSON object (at most 64 KiB as JSON text).
#[utoipa::path(
    put, path = "/projects/{project_id}/settings", tag = "projects", request_body = Object, params(ProjectPath),
    responses((status = 200, body = Object), (status = 422, description = "Not a JSON object, or over 64 KiB"))
)]
async fn put_settings(
    State(state): State<AppState>,
    ApiPath(ProjectPath { project_id }): ApiPath<ProjectPath>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(state.app.project_data.put_settings(&project_id, body).await?))
}

/// Removes the project's data — sources (and their secrets), analyses, warehouse objects, stored results, history —
/// and keeps the project. Confirm with `{"confirm": "reset <id>"}`.
#[utoipa::path(
    post, path = "/projects/{project_id}/reset", tag = "projects", request_body = ConfirmBody, params(ProjectPath),
    responses((status = 200, body = RemovedDto), (status = 422, description = "Wrong confirmation phrase"))
)]
async fn reset_project(
    State(state): State<AppState>,
    ApiPath(ProjectPath { project_id }): ApiPath<ProjectPath>,
    ApiJson(body): ApiJson<ConfirmBody>,
) -> Result<Json<RemovedDto>, ApiError> {
    Ok(Json(
        state.app.project_data.reset(&project_id, &body.confirm).await?.into(),
    ))
}

/// Deletes the project and everything in it. Confirm with `{"confirm": "delete <id>"}`; the default project
/// cannot be deleted (409).
#[utoipa::path(
    delete, path = "/projects/{project_id}", tag = "projects", request_body = ConfirmBody, params(ProjectPath),
    responses(
        (status = 200, body = RemovedDto),
        (status = 409, description = "The default project"),
        (status = 422, description = "Wrong confirmation phrase"),
    )
)]
async fn delete_project(
    State(state): State<AppState>,
    ApiPath(ProjectPath { project_id }): ApiPath<ProjectPath>,
    ApiJson(body): ApiJson<ConfirmBody>,
) -> Result<Json<RemovedDto>, ApiError> {
    Ok(Json(
        state.app.project_data.delete(&project_id, &body.confirm).await?.into(),
    ))
}
