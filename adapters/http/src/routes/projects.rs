use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::http::StatusCode;

use crate::dto::{ConfirmBody, CreateProjectBody, Problem, ProjectDto, RemovedDto, RenameProjectBody};
use crate::extract::{ApiJson, ApiPath};
use crate::problem::ApiError;
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_projects, create_project))
        .routes(routes!(get_project, rename_project, delete_project))
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(reset_project))
}

/// All projects, oldest first. The `default` project always exists.
#[utoipa::path(
    get,
    path = "/projects",
    tag = "projects",
    responses(
        (status = 200, body = Vec<ProjectDto>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_projects(State(state): State<AppState>) -> Result<Json<Vec<ProjectDto>>, ApiError> {
    let projects = state.app.projects.list().await?;
    Ok(Json(projects.into_iter().map(Into::into).collect()))
}

#[utoipa::path(
    get,
    path = "/projects/{project_id}",
    tag = "projects",
    params(("project_id" = String, Path, description = "Project identifier")),
    responses(
        (status = 200, body = ProjectDto),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a valid identifier", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_project(
    State(state): State<AppState>,
    ApiPath(project_id): ApiPath<String>,
) -> Result<Json<ProjectDto>, ApiError> {
    Ok(Json(state.app.projects.get(&project_id).await?.into()))
}

/// Creates a project. Its id is an identifier (letters, digits, underscores) and cannot change.
#[utoipa::path(
    post,
    path = "/projects",
    tag = "projects",
    request_body = CreateProjectBody,
    responses(
        (status = 201, body = ProjectDto),
        (status = 400, description = "Malformed JSON or unknown field", body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A project with this id exists", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid id or name", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_project(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateProjectBody>,
) -> Result<(StatusCode, Json<ProjectDto>), ApiError> {
    let project = state.app.projects.create(&body.id, body.name).await?;
    Ok((StatusCode::CREATED, Json(project.into())))
}

fn removed(r: pluto_duck_application::Removed) -> RemovedDto {
    RemovedDto {
        sources: r.sources,
        analyses: r.analyses,
        warehouse_objects: r.warehouse_objects,
        results: r.results,
    }
}

/// Renames a project (its id never changes).
#[utoipa::path(
    patch, path = "/projects/{project_id}", tag = "projects", request_body = RenameProjectBody,
    params(("project_id" = String, Path, description = "Project identifier")),
    responses((status = 200, body = ProjectDto), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"))
)]
async fn rename_project(
    State(state): State<AppState>,
    ApiPath(project_id): ApiPath<String>,
    ApiJson(body): ApiJson<RenameProjectBody>,
) -> Result<Json<ProjectDto>, ApiError> {
    Ok(Json(
        state
            .app
            .project_data
            .update(&project_id, Some(body.name), None)
            .await?
            .into(),
    ))
}

/// The project's settings: a JSON object the client owns (`{}` until set).
#[utoipa::path(
    get, path = "/projects/{project_id}/settings", tag = "projects",
    params(("project_id" = String, Path, description = "Project identifier")),
    responses((status = 200, body = Object), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
async fn get_settings(
    State(state): State<AppState>,
    ApiPath(project_id): ApiPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let text = state.app.project_data.settings(&project_id).await?;
    Ok(Json(
        serde_json::from_str(&text).unwrap_or_else(|_| serde_json::json!({})),
    ))
}

/// Replaces the project's settings with a JSON object.
#[utoipa::path(
    put, path = "/projects/{project_id}/settings", tag = "projects", request_body = Object,
    params(("project_id" = String, Path, description = "Project identifier")),
    responses((status = 200, body = Object), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a JSON object, or over 64 KiB", body = Problem, content_type = "application/problem+json"))
)]
async fn put_settings(
    State(state): State<AppState>,
    ApiPath(project_id): ApiPath<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !body.is_object() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "settings must be a JSON object",
        ));
    }
    let text = body.to_string();
    if text.len() > 65_536 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "settings must be at most 64 KiB",
        ));
    }
    state.app.project_data.update(&project_id, None, Some(text)).await?;
    Ok(Json(body))
}

/// Removes the project's data — sources (and their secrets), analyses, warehouse objects, stored results, history —
/// and keeps the project. Confirm with `{"confirm": "reset <id>"}`.
#[utoipa::path(
    post, path = "/projects/{project_id}/reset", tag = "projects", request_body = ConfirmBody,
    params(("project_id" = String, Path, description = "Project identifier")),
    responses((status = 200, body = RemovedDto), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong confirmation phrase", body = Problem, content_type = "application/problem+json"))
)]
async fn reset_project(
    State(state): State<AppState>,
    ApiPath(project_id): ApiPath<String>,
    ApiJson(body): ApiJson<ConfirmBody>,
) -> Result<Json<RemovedDto>, ApiError> {
    Ok(Json(removed(
        state.app.project_data.reset(&project_id, &body.confirm).await?,
    )))
}

/// Deletes the project and everything in it. Confirm with `{"confirm": "delete <id>"}`; the default project
/// cannot be deleted (409).
#[utoipa::path(
    delete, path = "/projects/{project_id}", tag = "projects", request_body = ConfirmBody,
    params(("project_id" = String, Path, description = "Project identifier")),
    responses((status = 200, body = RemovedDto), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The default project", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong confirmation phrase", body = Problem, content_type = "application/problem+json"))
)]
async fn delete_project(
    State(state): State<AppState>,
    ApiPath(project_id): ApiPath<String>,
    ApiJson(body): ApiJson<ConfirmBody>,
) -> Result<Json<RemovedDto>, ApiError> {
    Ok(Json(removed(
        state.app.project_data.delete(&project_id, &body.confirm).await?,
    )))
}
