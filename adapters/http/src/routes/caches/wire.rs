//! Wire types of the cached tables: the copy request and how a copy looks.

use pluto_duck_application::CacheRequest;
use pluto_duck_domain::{CachedTable, Run};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::openapi::IdentifierText;
use crate::routes::query::RunStatusName;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CachePath {
    /// The cached table's name.
    #[param(value_type = IdentifierText)]
    pub name: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RefreshParams {
    /// Rebuild the whole copy even when the table has a cursor column.
    pub full: Option<bool>,
}

/// Copy a remote table into the local warehouse.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheBody {
    pub schema: String,
    pub table: String,
    /// Local table name (default: the remote table's name as an identifier).
    #[schema(value_type = Option<IdentifierText>)]
    pub name: Option<String>,
    /// Boolean SQL expression over the remote columns, e.g. `created_at >= DATE '2024-01-01'`.
    pub filter: Option<String>,
    /// Refreshes append only rows whose value here is larger than any copied so far.
    pub cursor_column: Option<String>,
    /// The copy expires this many seconds after its last refresh (cleanup drops expired copies).
    pub ttl_secs: Option<u64>,
}

impl From<CacheBody> for CacheRequest {
    fn from(b: CacheBody) -> Self {
        CacheRequest {
            schema: b.schema,
            table: b.table,
            name: b.name,
            filter: b.filter,
            cursor_column: b.cursor_column,
            ttl_secs: b.ttl_secs,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CachedTableDto {
    pub name: String,
    /// Query it as this table: `SELECT * FROM cache.orders`.
    pub local_table: String,
    pub source: String,
    pub remote_schema: String,
    pub remote_table: String,
    pub filter: Option<String>,
    pub cursor_column: Option<String>,
    pub ttl_secs: Option<u64>,
    pub rows: u64,
    pub refreshed_at: chrono::DateTime<chrono::Utc>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub expired: bool,
}

impl From<CachedTable> for CachedTableDto {
    fn from(c: CachedTable) -> Self {
        Self {
            local_table: c.relation().to_string(),
            expires_at: c.expires_at(),
            expired: c.is_expired(chrono::Utc::now()),
            name: c.name.to_string(),
            source: c.source.to_string(),
            remote_schema: c.remote_schema,
            remote_table: c.remote_table,
            filter: c.filter,
            cursor_column: c.cursor_column,
            ttl_secs: c.ttl_secs,
            rows: c.rows,
            refreshed_at: c.refreshed_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CleanupDto {
    /// The copies dropped.
    pub removed: Vec<String>,
}

impl From<Vec<CachedTable>> for CleanupDto {
    fn from(removed: Vec<CachedTable>) -> Self {
        Self {
            removed: removed.into_iter().map(|c| c.name.to_string()).collect(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CacheRunsParams {
    /// At most this many runs, newest first (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// One build or refresh of a copy (a `cache_refresh` run).
#[derive(Debug, Serialize, ToSchema)]
pub struct CacheRunDto {
    pub id: String,
    #[schema(value_type = RunStatusName)]
    pub status: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub elapsed_ms: Option<u64>,
    /// Rows the copy held after the run.
    pub rows: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<Run> for CacheRunDto {
    fn from(run: Run) -> Self {
        let elapsed_ms = run.finished_at.and(run.elapsed_ms(chrono::Utc::now()));
        Self {
            id: run.id.to_string(),
            status: run.status.as_str().to_owned(),
            created_at: run.created_at,
            started_at: run.started_at,
            finished_at: run.finished_at,
            elapsed_ms,
            rows: run.rows,
            error: run.failure.map(|f| f.message),
        }
    }
}
