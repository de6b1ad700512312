use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::http::StatusCode;

use crate::dto::{CreateProjectBody, Problem, ProjectDto};
use crate::extract::{ApiJson, ApiPath};
use crate::problem::ApiError;
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_projects, create_project))
        .routes(routes!(get_project))
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
