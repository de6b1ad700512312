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
/// `mysql://...`, `sqlite:///path/file.db`, `duckdb:///path/file.duckdb`, `file:///data/*.csv`,
/// `https://host/file.parquet`, `s3://bucket/prefix/`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceBody {
    /// Identifier: letters, digits, underscores. Required to attach; unused for an ad-hoc ingest source.
    pub name: Option<String>,
    /// postgres, mysql, sqlite, duckdb, file, http or s3 (implied by `dsn`).
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
    /// file: a path, folder or glob (`/data/sales/*.csv`); http: a URL; s3: `s3://bucket/key`, a prefix ending
    /// in `/` or a glob. A folder gives one table per file, a glob one table over all its files.
    pub location: Option<String>,
    /// csv, parquet or json; detected from the file names when absent.
    pub format: Option<String>,
    /// CSV delimiter (sniffed when absent).
    pub delimiter: Option<String>,
    /// Whether CSV files have a header line (sniffed when absent).
    pub header: Option<bool>,
    /// CSV files: `strict` (default) refuses malformed rows, naming file, line and reason; `lenient` skips them.
    #[schema(pattern = "^(strict|lenient)$")]
    pub csv: Option<String>,
    /// S3: region (default us-east-1).
    pub region: Option<String>,
    /// S3: `host:port` of an S3-compatible server.
    pub endpoint: Option<String>,
    /// S3: `path` (most S3-compatible servers) or `vhost` (AWS, the default).
    pub url_style: Option<String>,
    /// S3: default true.
    pub use_ssl: Option<bool>,
    /// S3: access key id.
    pub key_id: Option<String>,
    /// S3: secret access key; kept in the secret store, never returned.
    pub secret_access_key: Option<String>,
    pub dsn: Option<String>,
    /// Default true.
    pub read_only: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourcePatch {
    pub description: String,
}

#[derive(Debug, Default, Serialize, ToSchema)]
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_style: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// `***` when a secret key is stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<String>,
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
                ..Default::default()
            },
            SourceConnection::File { path } => SourceConnectionDto {
                path: Some(path.clone()),
                ..Default::default()
            },
            SourceConnection::Located(l) => {
                let s3 = l.s3.clone().unwrap_or_default();
                SourceConnectionDto {
                    location: Some(l.uri.clone()),
                    format: l.format.map(|f| f.as_str().to_owned()),
                    delimiter: l.delimiter.clone(),
                    header: l.header,
                    region: s3.region,
                    endpoint: s3.endpoint,
                    url_style: l
                        .s3
                        .as_ref()
                        .map(|s| if s.path_style { "path" } else { "vhost" }.to_owned()),
                    key_id: s3.key_id,
                    secret_access_key: s3.secret_key_secret.map(|_| "***".to_owned()),
                    ..Default::default()
                }
            }
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

/// A source for an ingest: the name of a stored source, or an inline configuration (the attach body without
/// `name`; its password or secret key is used for this job only and never stored).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum IngestSourceDto {
    Name(String),
    Config(Box<SourceBody>),
}

/// Copy a source's table (or the result of a query on it) into a warehouse table.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestBody {
    pub source: IngestSourceDto,
    /// `schema.table`, or a table name the source has once.
    pub table: Option<String>,
    /// Instead of `table`: a query, in the source's dialect for PostgreSQL and MySQL.
    pub query: Option<String>,
    /// Target table (default: the source table's name as an identifier; required with `query`).
    pub target: Option<String>,
    /// Target schema (default `main`).
    pub schema: Option<String>,
    /// replace (default), append or merge.
    pub mode: Option<String>,
    /// merge: the columns identifying a row.
    #[serde(default)]
    pub keys: Vec<String>,
    /// CSV files: `strict` (default) fails the ingest on a row with the wrong number of fields, an unterminated
    /// quote or a value that does not fit its column, naming file, line and reason; `lenient` skips such rows and
    /// reports how many, with samples.
    #[schema(pattern = "^(strict|lenient)$")]
    pub csv: Option<String>,
}

/// A row a lenient CSV ingest skipped.
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectedRowDto {
    pub file: String,
    pub line: u64,
    pub reason: String,
    /// The line as read (at most 200 characters).
    pub text: String,
}

/// An ingest job.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestRunDto {
    pub id: String,
    pub project: String,
    /// queued, running, succeeded, failed, cancelled
    pub status: String,
    /// The target table, `schema.table`.
    pub target: String,
    pub actor: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub elapsed_ms: Option<u64>,
    /// Rows written (replace: the table's rows; append and merge: the rows loaded).
    pub rows: u64,
    /// Bytes of the files read, when known.
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Lenient CSV ingests: rows skipped as malformed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected_rows: Option<u64>,
    /// Lenient CSV ingests: the first rows skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected_samples: Option<Vec<RejectedRowDto>>,
    /// SSE progress: `progress` events carry part, parts, rows and bytes.
    pub events: String,
}

impl IngestRunDto {
    pub fn from_run(run: pluto_duck_domain::Run) -> Self {
        let elapsed_ms = match (run.started_at, run.finished_at) {
            (Some(s), Some(f)) => u64::try_from((f - s).num_milliseconds()).ok(),
            _ => None,
        };
        let detail: Option<serde_json::Value> = run.detail.as_deref().and_then(|d| serde_json::from_str(d).ok());
        Self {
            events: format!("/api/v1/ingest/runs/{}/events", run.id),
            id: run.id.to_string(),
            project: run.project.to_string(),
            status: run.status.as_str().to_owned(),
            target: run.input,
            actor: run.actor,
            created_at: run.created_at,
            started_at: run.started_at,
            finished_at: run.finished_at,
            elapsed_ms,
            rows: run.rows,
            bytes: run.bytes,
            error: run.failure.map(|f| f.message),
            rejected_rows: detail.as_ref().and_then(|d| d["rejected_rows"].as_u64()),
            rejected_samples: detail
                .as_ref()
                .and_then(|d| d["rejected_samples"].as_array())
                .map(|samples| {
                    samples
                        .iter()
                        .map(|r| RejectedRowDto {
                            file: r["file"].as_str().unwrap_or_default().to_owned(),
                            line: r["line"].as_u64().unwrap_or(0),
                            reason: r["reason"].as_str().unwrap_or_default().to_owned(),
                            text: r["text"].as_str().unwrap_or_default().to_owned(),
                        })
                        .collect()
                }),
        }
    }
}

/// An entry of the ingestion catalog: source -> target and the last sync.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestionDto {
    /// `schema.table`
    pub target: String,
    /// file, http, s3, postgres, mysql, sqlite or duckdb
    pub source_kind: String,
    /// A stored source's name, or where an inline source was (never with its secrets).
    pub source: String,
    pub named_source: bool,
    /// The table read or the query run.
    pub input: String,
    pub mode: String,
    pub keys: Vec<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub last_run: Option<String>,
    pub last_status: Option<String>,
    pub rows: u64,
}

impl From<pluto_duck_domain::Ingestion> for IngestionDto {
    fn from(i: pluto_duck_domain::Ingestion) -> Self {
        Self {
            target: i.target.qualified(),
            source_kind: i.source_kind.as_str().to_owned(),
            source: i.source,
            named_source: i.named_source,
            input: i.input,
            mode: i.mode.as_str().to_owned(),
            keys: i.keys,
            created_at: i.created_at,
            updated_at: i.updated_at,
            last_run: i.last_run.map(|r| r.to_string()),
            last_status: i.last_status.map(|s| s.as_str().to_owned()),
            rows: i.rows,
        }
    }
}

/// A catalog entry with its sync history, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestionDetailDto {
    #[serde(flatten)]
    pub ingestion: IngestionDto,
    pub history: Vec<IngestRunDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EstimateDto {
    /// `null` when the planner has no estimate.
    pub estimated_rows: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainBody {
    /// One SELECT in the warehouse's SQL, e.g. `SELECT * FROM sales.public.orders WHERE id > 10`.
    pub sql: String,
}

/// A scan of the plan and what it pushes down to its source.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScanDto {
    /// POSTGRES_SCAN, MYSQL_SCAN, SQLITE_SCAN, READ_CSV, READ_PARQUET, SEQ_SCAN, ...
    pub operator: String,
    pub table: Option<String>,
    pub projections: Vec<String>,
    pub filters: Vec<String>,
    pub estimated_rows: Option<u64>,
    /// PostgreSQL and MySQL: the query the remote database receives, rebuilt from DuckDB's plan.
    pub remote_sql: Option<String>,
}

/// A typed parameter of an analysis, bound as a real query parameter (`$name` in the SQL).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParameterDto {
    pub name: String,
    /// string, integer, float, boolean, date, timestamp
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
}

/// Create or replace an analysis. SQL is one query; it reads other analyses as `{{ ref('id') }}` or
/// `analysis.id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalysisBody {
    /// Identifier; required on create, taken from the path on update.
    pub id: Option<String>,
    pub name: Option<String>,
    pub sql: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// view (default), table, append, incremental, parquet, ephemeral.
    pub materialization: Option<String>,
    /// incremental: merge on these columns.
    #[serde(default)]
    pub unique_key: Vec<String>,
    /// incremental: only rows past the largest value already loaded.
    pub cursor: Option<String>,
    #[serde(default)]
    pub parameters: Vec<ParameterDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AnalysisDto {
    pub id: String,
    pub project: String,
    pub name: String,
    pub sql: String,
    pub description: String,
    pub tags: Vec<String>,
    pub materialization: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unique_key: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    pub parameters: Vec<ParameterDto>,
    /// Where it materializes: `analysis.<id>` (`<project>__analysis.<id>` in other projects).
    pub relation: String,
    /// Changes whenever the SQL, materialization or parameters change.
    pub definition_hash: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<pluto_duck_domain::Analysis> for AnalysisDto {
    fn from(a: pluto_duck_domain::Analysis) -> Self {
        let (unique_key, cursor) = match &a.materialization {
            pluto_duck_domain::Materialization::Incremental { unique_key, cursor } => {
                (unique_key.clone(), cursor.clone())
            }
            _ => (Vec::new(), None),
        };
        Self {
            relation: pluto_duck_application::analysis_relation(&a.id).to_string(),
            definition_hash: a.definition_hash(),
            id: a.id.to_string(),
            project: a.project.to_string(),
            name: a.name,
            sql: a.sql,
            description: a.description,
            tags: a.tags,
            materialization: a.materialization.as_str().to_owned(),
            unique_key,
            cursor,
            parameters: a
                .parameters
                .into_iter()
                .map(|p| ParameterDto {
                    name: p.name.to_string(),
                    ty: p.ty.as_str().to_owned(),
                    default: p.default,
                    required: p.required,
                })
                .collect(),
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// A step of a compile plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanStepDto {
    pub id: String,
    /// run, skip or blocked
    pub action: String,
    /// Why it runs (never ran, definition changed, upstream runs first, ...), or what blocks it.
    pub reasons: Vec<String>,
    pub materialization: String,
    /// The SELECT the warehouse runs: refs resolved to the project's schema, ephemerals inlined.
    pub sql: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LineageDto {
    pub id: String,
    pub upstream: Vec<String>,
    pub downstream: Vec<String>,
    /// Sources, cached and warehouse tables the analysis reads.
    pub relations: Vec<String>,
    pub files: Vec<String>,
    /// Column-level lineage: each output column with the input columns (`relation.column`) it reads; `null` when
    /// the query's shape cannot be resolved by the parser (set operations, derived tables, table functions).
    pub columns: Option<Vec<ColumnLineageDto>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ColumnLineageDto {
    pub column: String,
    pub from: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GraphNodeDto {
    pub id: String,
    /// analysis, source_table, cached_table, table or file
    pub kind: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GraphEdgeDto {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LineageGraphDto {
    pub nodes: Vec<GraphNodeDto>,
    pub edges: Vec<GraphEdgeDto>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ExecuteBody {
    /// Run every step, fresh or not.
    pub force: bool,
    /// Keep running branches that do not depend on a failed step.
    pub continue_on_failure: bool,
    /// Parameter values by name (strings, numbers or booleans); each step takes those it declares.
    #[schema(value_type = Object)]
    pub params: std::collections::BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StepOutcomeDto {
    pub id: String,
    /// succeeded, failed, skipped, blocked, not_run
    pub status: String,
    /// The step run (see the analysis's history).
    pub run: Option<String>,
    pub rows: u64,
    /// Why it ran, why not, or the error.
    pub detail: String,
}

/// The execution of an analysis's plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnalysisRunDto {
    pub id: String,
    /// The analysis run.
    pub target: String,
    /// queued, running, succeeded, failed
    pub status: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Rows written by all steps.
    pub rows: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Each step of the plan once the run finished.
    pub steps: Vec<StepOutcomeDto>,
    pub events: String,
}

/// One run of one analysis.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepRunDto {
    pub id: String,
    pub status: String,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub rows: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FreshnessDto {
    pub id: String,
    pub fresh: bool,
    /// The steps a run would execute, with why.
    pub stale: Vec<PlanStepDto>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameProjectBody {
    pub name: String,
}

/// The typed phrase that confirms a destructive action: `reset <id>` or `delete <id>`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    pub confirm: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RemovedDto {
    pub sources: usize,
    pub analyses: usize,
    /// Schemas and tables dropped from the warehouse.
    pub warehouse_objects: usize,
    /// Stored query results deleted.
    pub results: usize,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BoardBody {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Tabs of rich content; any JSON the client owns.
    #[schema(value_type = Option<Object>)]
    pub document: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BoardDto {
    pub id: String,
    pub project: String,
    pub name: String,
    pub description: String,
    pub position: u32,
    #[schema(value_type = Object)]
    pub document: serde_json::Value,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// With `GET /boards/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<ItemDto>>,
}

impl BoardDto {
    pub fn new(b: pluto_duck_domain::Board, items: Option<Vec<pluto_duck_domain::BoardItem>>) -> Self {
        Self {
            id: b.id,
            project: b.project.to_string(),
            name: b.name,
            description: b.description,
            position: b.position,
            document: serde_json::from_str(&b.document).unwrap_or(serde_json::Value::Null),
            created_at: b.created_at,
            updated_at: b.updated_at,
            items: items.map(|items| items.into_iter().map(ItemDto::from).collect()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReorderBody {
    /// Every board id of the project, in the new order.
    pub ids: Vec<String>,
}

/// Add or change an item. `query` and `refresh_secs` take `null` to remove them.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemBody {
    /// markdown, table, chart, metric, image (required to add).
    pub kind: Option<String>,
    pub title: Option<String>,
    pub x: Option<u32>,
    pub y: Option<u32>,
    pub w: Option<u32>,
    pub h: Option<u32>,
    /// What the client renders: markdown text, a chart spec (type, x, y, series), a metric's comparison.
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
    /// `{"sql": "SELECT ..."}` (one read) or `{"analysis": "id", "params": {...}}`; `null` removes it.
    #[schema(value_type = Option<Object>)]
    pub query: Option<serde_json::Value>,
    /// Refresh every this many seconds (at least 5); `null` for manual only.
    #[schema(value_type = Option<u64>)]
    pub refresh_secs: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ItemDto {
    pub id: String,
    pub board: String,
    pub kind: String,
    pub title: String,
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    #[schema(value_type = Option<Object>)]
    pub query: Option<serde_json::Value>,
    pub refresh_secs: Option<u64>,
    /// The last result: `{"ran_at", "columns", "rows" (at most 1000), "truncated"}`.
    #[schema(value_type = Option<Object>)]
    pub snapshot: Option<serde_json::Value>,
    /// Why the last refresh failed (the snapshot is the one before).
    pub last_error: Option<String>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<pluto_duck_domain::BoardItem> for ItemDto {
    fn from(i: pluto_duck_domain::BoardItem) -> Self {
        use pluto_duck_domain::ItemSource;
        Self {
            id: i.id,
            board: i.board,
            kind: i.kind.as_str().to_owned(),
            title: i.title,
            x: i.x,
            y: i.y,
            w: i.w,
            h: i.h,
            config: serde_json::from_str(&i.config).unwrap_or(serde_json::Value::Null),
            query: i.source.map(|s| match s {
                ItemSource::Sql(sql) => serde_json::json!({ "sql": sql }),
                ItemSource::Analysis { id, params } => serde_json::json!({
                    "analysis": id.as_str(),
                    "params": serde_json::from_str::<serde_json::Value>(&params).unwrap_or_default(),
                }),
            }),
            refresh_secs: i.refresh_secs,
            snapshot: i.snapshot.map(|s| {
                let mut v: serde_json::Value = serde_json::from_str(&s.data).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("ran_at".into(), serde_json::Value::from(s.ran_at.to_rfc3339()));
                }
                v
            }),
            last_error: i.last_error,
            updated_at: i.updated_at,
        }
    }
}

/// Look at a source before ingesting it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectBody {
    pub source: IngestSourceDto,
    /// The table to sample (default: the source's only table).
    pub table: Option<String>,
    /// Sample rows (default 10, at most 1000).
    pub rows: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InspectDto {
    /// The connector that reads the source.
    pub connector: String,
    /// Where the data is, without secrets.
    pub location: String,
    pub tables: Vec<TableDto>,
    /// Column names and types of the sample, when a table was sampled.
    pub columns: Vec<ColumnDto>,
    /// The sample rows as arrays in column order.
    #[schema(value_type = Vec<Vec<Object>>)]
    pub rows: Box<serde_json::value::RawValue>,
}
