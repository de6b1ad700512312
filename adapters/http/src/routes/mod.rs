pub mod analyses;
pub mod boards;
pub mod caches;
pub mod dbt;
pub mod ingest;
pub mod projects;
pub mod query;
pub mod sources;
pub mod system;

use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

/// Everything under `/api/v1`.
pub fn v1() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(projects::routes())
        .merge(query::routes())
        .merge(sources::routes())
        .merge(caches::routes())
        .merge(ingest::routes())
        .merge(analyses::routes())
        .merge(boards::routes())
        .merge(dbt::routes())
}
