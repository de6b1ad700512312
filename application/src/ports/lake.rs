//! Time travel over the shared warehouse (the hybrid profile's DuckLake): the snapshots a project's lake
//! committed. The local profile's warehouse has no snapshots and says so.

use async_trait::async_trait;
use pluto_duck_domain::ProjectId;

use super::warehouse::WarehouseError;

/// One committed version of a project's lake; `SELECT ... FROM t AT (VERSION => id)` reads a table as of it.
#[derive(Debug, Clone, PartialEq)]
pub struct LakeSnapshot {
    pub id: u64,
    /// As the catalog recorded it (UTC, text).
    pub committed_at: String,
    pub schema_version: u64,
    /// What the commit changed, as DuckLake records it (`{"tables_created": ["main.t"], ...}`).
    pub changes: serde_json::Value,
}

#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait Lake: Send + Sync {
    /// The snapshots that touched `table` (`schema.name`, or `name` in `main`), all of them when `None`, oldest
    /// first (none when the table never existed). `Invalid` when the warehouse is not a lake.
    async fn snapshots(&self, project: &ProjectId, table: Option<String>) -> Result<Vec<LakeSnapshot>, WarehouseError>;
}
