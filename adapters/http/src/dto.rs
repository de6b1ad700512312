//! Wire types. Domain types stay free of serde and utoipa; these mirror them for the API.

use pluto_duck_domain::{ExtensionStatus, HealthReport, Project};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// RFC 9457 problem details, served as `application/problem+json`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URN naming the kind of problem, e.g. `urn:pluto-duck:problem:not-found`.
    #[serde(rename = "type")]
    pub r#type: String,
    pub title: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request path the problem occurred on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Also in the `x-request-id` response header; quote it when reporting a problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// For SQL errors: the 0-based character offset in the submitted SQL that the engine points at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExtensionDto {
    pub name: String,
    pub installed: bool,
    pub loaded: bool,
    /// How to install it when it is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub install_hint: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HealthDto {
    /// `ok`, or `degraded` when an extension or the metadata store is missing.
    pub status: String,
    pub version: String,
    pub duckdb_version: String,
    /// `local` or `hybrid`.
    pub profile: String,
    pub extensions: Vec<ExtensionDto>,
}

impl From<ExtensionStatus> for ExtensionDto {
    fn from(e: ExtensionStatus) -> Self {
        Self {
            name: e.name,
            installed: e.installed,
            loaded: e.loaded,
            install_hint: e.install_hint,
        }
    }
}

impl From<HealthReport> for HealthDto {
    fn from(h: HealthReport) -> Self {
        Self {
            status: h.status.to_owned(),
            version: h.version,
            duckdb_version: h.duckdb_version,
            profile: h.profile.as_str().to_owned(),
            extensions: h.extensions.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProjectDto {
    pub id: String,
    pub name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<Project> for ProjectDto {
    fn from(p: Project) -> Self {
        Self {
            id: p.id.to_string(),
            name: p.name,
            created_at: p.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProjectBody {
    /// Identifier: a letter or underscore, then letters, digits, underscores; at most 63 characters.
    pub id: String,
    /// Display name; defaults to the id.
    pub name: Option<String>,
}

/// A query job. `params` bind to `$1, $2, ...` (or `?`) in the last statement.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    /// One or more statements separated by `;`. Several statements run in order in one transaction; the
    /// result is the last one's.
    pub sql: String,
    /// Interrupt the query after this many milliseconds (default from config).
    pub timeout_ms: Option<u64>,
    /// Keep at most this many rows of the result (`truncated` tells whether rows were cut).
    pub max_rows: Option<u64>,
    /// Refuse anything but reads (SELECT, WITH ... SELECT, DESCRIBE, SHOW, EXPLAIN, SUMMARIZE, ...).
    #[serde(default)]
    pub read_only: bool,
    /// Query parameters: null, booleans, numbers and strings.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub params: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ColumnDto {
    pub name: String,
    /// DuckDB type name, e.g. `DECIMAL(18,3)`, `TIMESTAMP WITH TIME ZONE`, `INTEGER[]`.
    #[serde(rename = "type")]
    pub data_type: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RunErrorDto {
    pub message: String,
    /// 0-based character offset in the submitted SQL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QueryLinks {
    #[serde(rename = "self")]
    pub this: String,
    pub events: String,
    pub result: String,
    pub profile: String,
    pub cancel: String,
}

/// A query job's state; with a page of rows once it succeeded.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueryDto {
    pub id: String,
    pub project: String,
    /// queued, running, succeeded, failed, cancelled, timed_out
    pub status: String,
    pub sql: String,
    pub actor: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub elapsed_ms: Option<u64>,
    pub row_count: u64,
    /// Size of the stored result.
    pub bytes: u64,
    pub truncated: bool,
    pub columns: Vec<ColumnDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RunErrorDto>,
    /// The requested page of rows (`offset`, `limit`), as arrays in column order.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Vec<Object>>>)]
    pub rows: Option<Box<serde_json::value::RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    pub links: QueryLinks,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueryListDto {
    pub items: Vec<QueryDto>,
    pub limit: u32,
    pub offset: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ColumnProfileDto {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub count: u64,
    pub nulls: u64,
    pub distinct_estimate: u64,
    pub min: Option<String>,
    pub max: Option<String>,
    /// `[value, count]`, most frequent first (text columns).
    #[schema(value_type = Vec<Vec<Object>>)]
    pub top_values: Vec<(String, u64)>,
}

impl QueryDto {
    pub fn from_run(run: pluto_duck_domain::Run) -> Self {
        let base = format!("/api/v1/query/{}", run.id);
        Self {
            id: run.id.to_string(),
            project: run.project.to_string(),
            status: run.status.as_str().to_owned(),
            elapsed_ms: run.elapsed_ms(chrono::Utc::now()),
            sql: run.input,
            actor: run.actor,
            created_at: run.created_at,
            started_at: run.started_at,
            finished_at: run.finished_at,
            row_count: run.rows,
            bytes: run.bytes,
            truncated: run.truncated,
            columns: run
                .columns
                .into_iter()
                .map(|c| ColumnDto {
                    name: c.name,
                    data_type: c.data_type,
                })
                .collect(),
            error: run.failure.map(|f| RunErrorDto {
                message: f.message,
                position: f.position,
            }),
            rows: None,
            offset: None,
            links: QueryLinks {
                events: format!("{base}/events"),
                result: format!("{base}/result"),
                profile: format!("{base}/profile"),
                cancel: format!("{base}/cancel"),
                this: base,
            },
        }
    }
}

/// Attach a source: a typed form per `kind`, or a `dsn` (`postgres://user:pass@host:5432/db`,
/// `mysql://...`, `sqlite:///path/file.db`, `duckdb:///path/file.duckdb`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceBody {
    /// Identifier: letters, digits, underscores.
    pub name: String,
    /// postgres, mysql, sqlite or duckdb (implied by `dsn`).
    pub kind: Option<String>,
    #[serde(default)]
    pub description: String,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub database: Option<String>,
    pub user: Option<String>,
    /// Kept in the secret store; never returned.
    pub password: Option<String>,
    /// SQLite or DuckDB file.
    pub path: Option<String>,
    pub dsn: Option<String>,
    /// Default true.
    pub read_only: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourcePatch {
    pub description: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SourceConnectionDto {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `***` when a password is stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SourceDto {
    pub name: String,
    pub project: String,
    pub kind: String,
    pub description: String,
    /// The catalog name to use in SQL: `SELECT * FROM <alias>.<schema>.<table>`.
    pub alias: String,
    pub read_only: bool,
    /// `attached` or `failed`.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub connection: SourceConnectionDto,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TableDto {
    pub schema: String,
    pub name: String,
    /// `table` or `view`.
    pub kind: String,
    pub estimated_rows: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SourceDetailDto {
    #[serde(flatten)]
    pub source: SourceDto,
    pub tables: Vec<TableDto>,
    /// Local copies of this source's tables.
    pub cached: Vec<CachedTableDto>,
}

impl SourceDto {
    pub fn new(s: pluto_duck_domain::Source, state: pluto_duck_domain::SourceState) -> Self {
        use pluto_duck_domain::{SourceConnection, SourceState};
        let connection = match &s.connection {
            SourceConnection::Server {
                host,
                port,
                database,
                user,
                password_secret,
            } => SourceConnectionDto {
                host: Some(host.clone()),
                port: Some(*port),
                database: Some(database.clone()),
                user: Some(user.clone()),
                password: password_secret.as_ref().map(|_| "***".to_owned()),
                path: None,
            },
            SourceConnection::File { path } => SourceConnectionDto {
                host: None,
                port: None,
                database: None,
                user: None,
                password: None,
                path: Some(path.clone()),
            },
        };
        let (state, error) = match state {
            SourceState::Attached => ("attached".to_owned(), None),
            SourceState::Failed(e) => ("failed".to_owned(), Some(e)),
        };
        Self {
            alias: s.catalog_alias(),
            name: s.name.to_string(),
            project: s.project.to_string(),
            kind: s.kind.as_str().to_owned(),
            description: s.description,
            read_only: s.read_only,
            state,
            error,
            connection,
            created_at: s.created_at,
        }
    }
}

impl From<pluto_duck_application::ports::TableInfo> for TableDto {
    fn from(t: pluto_duck_application::ports::TableInfo) -> Self {
        Self {
            schema: t.schema,
            name: t.name,
            kind: t.kind,
            estimated_rows: t.estimated_rows,
        }
    }
}

/// Copy a remote table into the local warehouse.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheBody {
    pub schema: String,
    pub table: String,
    /// Local table name (default: the remote table's name as an identifier).
    pub name: Option<String>,
    /// Boolean SQL expression over the remote columns, e.g. `created_at >= DATE '2024-01-01'`.
    pub filter: Option<String>,
    /// Refreshes append only rows whose value here is larger than any copied so far.
    pub cursor_column: Option<String>,
    /// The copy expires this many seconds after its last refresh (cleanup drops expired copies).
    pub ttl_secs: Option<u64>,
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

impl From<pluto_duck_domain::CachedTable> for CachedTableDto {
    fn from(c: pluto_duck_domain::CachedTable) -> Self {
        Self {
            local_table: format!("{}.{}", pluto_duck_domain::CachedTable::schema_for(&c.project), c.name),
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
