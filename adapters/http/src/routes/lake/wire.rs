//! Wire types of the shared warehouse's time travel.

use pluto_duck_application::ports::LakeSnapshot;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SnapshotsParams {
    /// Only the snapshots that changed this table (`name`, `schema.name`); every snapshot when absent.
    #[param(max_length = 300)]
    pub table: Option<String>,
}

/// One committed version of the project's lake. `SELECT ... FROM t AT (VERSION => id)` reads a table as of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LakeSnapshotDto {
    pub id: u64,
    /// When it was committed (UTC), as the catalog recorded it.
    pub committed_at: String,
    pub schema_version: u64,
    /// What it changed, as DuckLake records it (`{"tables_created": ["main.t"], "inlined_insert": ["1"]}`; other
    /// lists name tables by their lake id).
    #[schema(value_type = Object)]
    pub changes: serde_json::Value,
}

impl From<LakeSnapshot> for LakeSnapshotDto {
    fn from(s: LakeSnapshot) -> Self {
        Self {
            id: s.id,
            committed_at: s.committed_at,
            schema_version: s.schema_version,
            changes: s.changes,
        }
    }
}
