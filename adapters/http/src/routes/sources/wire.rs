//! Wire types of `/api/v1/source`: paths and parameters, and how a source, its tables and scans look (the attach
//! body is in `config.rs`).

use pluto_duck_application::ports::{ScanInfo, TableInfo};
use pluto_duck_application::SourceDetail;
use pluto_duck_domain::{Source, SourceConnection, SourceState};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::config::SourceKindName;
use crate::openapi::{text_enum, IdentifierText};
use crate::routes::caches::CachedTableDto;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SourcePath {
    /// The source's name.
    #[param(value_type = IdentifierText)]
    pub name: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TablePath {
    /// The source's name.
    #[param(value_type = IdentifierText)]
    pub name: String,
    /// A schema of the source, as it names it.
    pub schema: String,
    /// A table of that schema, as the source names it.
    pub table: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TablesParams {
    /// Only this schema (keeps large catalogs fast).
    pub schema: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PreviewParams {
    /// Rows (default 100, at most 1000).
    limit: Option<u64>,
    /// The format (overrides `Accept`).
    #[param(value_type = Option<crate::openapi::ResultFormat>)]
    pub format: Option<String>,
}

impl PreviewParams {
    pub fn limit(&self) -> u64 {
        self.limit.unwrap_or(100).min(1000)
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourcePatch {
    pub description: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainBody {
    /// One SELECT in the warehouse's SQL, e.g. `SELECT * FROM sales.public.orders WHERE id > 10`.
    pub sql: String,
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

text_enum!(
    /// Whether a source is attached.
    SourceStateName,
    "`attached`, or `failed` with the error",
    ["attached", "failed"]
);

#[derive(Debug, Serialize, ToSchema)]
pub struct SourceDto {
    pub name: String,
    pub project: String,
    #[schema(value_type = SourceKindName)]
    pub kind: String,
    pub description: String,
    /// The catalog name to use in SQL: `SELECT * FROM <alias>.<schema>.<table>`.
    pub alias: String,
    pub read_only: bool,
    #[schema(value_type = SourceStateName)]
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub connection: SourceConnectionDto,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<(Source, SourceState)> for SourceDto {
    fn from((s, state): (Source, SourceState)) -> Self {
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

text_enum!(
    /// Kinds of relations.
    RelationKindName,
    "table or view",
    ["table", "view"]
);

#[derive(Debug, Serialize, ToSchema)]
pub struct TableDto {
    pub schema: String,
    pub name: String,
    #[schema(value_type = RelationKindName)]
    pub kind: String,
    pub estimated_rows: Option<u64>,
}

impl From<TableInfo> for TableDto {
    fn from(t: TableInfo) -> Self {
        Self {
            schema: t.schema,
            name: t.name,
            kind: t.kind,
            estimated_rows: t.estimated_rows,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SourceDetailDto {
    #[serde(flatten)]
    pub source: SourceDto,
    pub tables: Vec<TableDto>,
    /// Local copies of this source's tables.
    pub cached: Vec<CachedTableDto>,
}

impl From<SourceDetail> for SourceDetailDto {
    fn from(d: SourceDetail) -> Self {
        Self {
            source: (d.source, d.state).into(),
            tables: d.tables.into_iter().map(Into::into).collect(),
            cached: d.cached.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EstimateDto {
    /// `null` when the planner has no estimate.
    pub estimated_rows: Option<u64>,
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

impl From<ScanInfo> for ScanDto {
    fn from(s: ScanInfo) -> Self {
        Self {
            operator: s.operator,
            table: s.table,
            projections: s.projections,
            filters: s.filters,
            estimated_rows: s.estimated_rows,
            remote_sql: s.remote_sql,
        }
    }
}
