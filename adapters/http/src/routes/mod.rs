//! One folder per resource: `mod.rs` holds its routes and handlers (parse, call one use case, answer), `wire.rs`
//! the bodies, DTOs and parameters they speak.
//!
//! Adding a resource: a folder here with `pub fn routes() -> OpenApiRouter<AppState>`, one line in [`v1`] (routes
//! and their OpenAPI paths are registered together), and its tag in `openapi.rs`'s `ApiDoc`. Handlers list
//! `ProjectScope` in `params(...)` for the `X-Pluto-Project` header and only the statuses particular to them; the
//! standard problem responses are attached by `openapi::ProblemResponses`.

pub mod agent;
pub mod analyses;
pub mod boards;
pub mod caches;
pub mod datasets;
pub mod dbt;
pub mod ingest;
pub mod jobs;
pub mod lake;
pub mod projects;
pub mod query;
pub mod runs;
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
        .merge(agent::routes())
        .merge(dbt::routes())
        .merge(datasets::routes())
        .merge(lake::routes())
        .merge(jobs::routes())
}
