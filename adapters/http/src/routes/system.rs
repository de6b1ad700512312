use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::dto::{HealthDto, Problem};
use crate::problem::ApiError;
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

/// Liveness and engine facts. Open even when an API token is configured.
#[utoipa::path(
    get,
    path = "/health",
    tag = "system",
    security(()),
    responses(
        (status = 200, description = "The server answers", body = HealthDto),
        (status = 503, description = "The warehouse does not answer", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn health(State(state): State<AppState>) -> Result<Json<HealthDto>, ApiError> {
    Ok(Json(state.app.system.health().await?.into()))
}
