//! The hybrid profile's shared warehouse (DuckLake): its snapshots, for time travel.

mod wire;

use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::extract::{ApiQuery, ProjectScope};
use crate::problem::ApiError;
use crate::AppState;
pub use wire::LakeSnapshotDto;
use wire::SnapshotsParams;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_snapshots))
}

/// The project lake's snapshots, oldest first; with `table`, those that changed it.
#[utoipa::path(
    get, path = "/lake/snapshots", tag = "lake", params(SnapshotsParams, ProjectScope),
    responses(
        (status = 200, body = Vec<LakeSnapshotDto>),
        (status = 400, description = "Not a table of the project's warehouse, or this server's warehouse is not a lake (local profile)"),
        (status = 404, description = "No such table in the lake, now or in its history"),
    )
)]
async fn list_snapshots(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiQuery(params): ApiQuery<SnapshotsParams>,
) -> Result<Json<Vec<LakeSnapshotDto>>, ApiError> {
    let snapshots = state.app.lake.snapshots(&project, params.table.as_deref()).await?;
    Ok(Json(snapshots.into_iter().map(Into::into).collect()))
}
