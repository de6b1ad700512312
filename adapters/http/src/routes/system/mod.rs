//! `/health` and `/ready`.

mod wire;

use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::problem::ApiError;
use crate::AppState;
use wire::HealthDto;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health)).routes(routes!(ready))
}

/// Liveness and engine facts, answered from memory (a busy warehouse never delays it). Open even when an API
/// token is configured.
#[utoipa::path(
    get, path = "/health", tag = "system", security(()),
    responses((status = 200, description = "The server answers", body = HealthDto))
)]
async fn health(State(state): State<AppState>) -> Json<HealthDto> {
    Json(state.app.system.health().into())
}

/// Readiness: the warehouse and the metadata store answer now.
#[utoipa::path(
    get, path = "/ready", tag = "system", security(()),
    responses(
        (status = 200, description = "Ready for work", body = HealthDto),
        (status = 503, description = "The warehouse or the metadata store does not answer"),
    )
)]
async fn ready(State(state): State<AppState>) -> Result<Json<HealthDto>, ApiError> {
    Ok(Json(state.app.system.ready().await?.into()))
}
