//! Wire types of `/api/v1/ingest`: the ingest request, the job, the catalog and its entries.

use pluto_duck_application::connectors::ConnectorMetadata;
use pluto_duck_application::ports::CsvStrictness;
use pluto_duck_application::{IngestRequest, IngestSource};
use pluto_duck_domain::{Column, IngestMode, Ingestion, Run};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::formats::{rows_json, ColumnDto};
use crate::openapi::{text_enum, IdentifierText};
use crate::problem::ApiError;
use crate::routes::query::RunStatusName;
use crate::routes::sources::{CsvStrictnessName, SourceBody, SourceKindName, TableDto};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TargetPath {
    /// `schema.table`, or a table of the default schema.
    #[param(
        pattern = "^([A-Za-z_][A-Za-z0-9_]{0,62}\\.)?[A-Za-z_][A-Za-z0-9_]{0,62}$",
        example = "main.orders"
    )]
    pub target: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Sync history entries (default 50, at most 1000).
    limit: Option<u32>,
}

impl HistoryParams {
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(50)
    }
}

/// A source for an ingest: the name of a stored source, or an inline configuration (the attach body without
/// `name`; its password or secret key is used for this job only and never stored).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum IngestSourceDto {
    #[schema(value_type = IdentifierText)]
    Name(String),
    Config(Box<SourceBody>),
}

impl TryFrom<IngestSourceDto> for IngestSource {
    type Error = ApiError;

    fn try_from(dto: IngestSourceDto) -> Result<Self, ApiError> {
        Ok(match dto {
            IngestSourceDto::Name(name) => IngestSource::Named(name),
            IngestSourceDto::Config(config) => IngestSource::Config(Box::new(config.into_config()?)),
        })
    }
}

text_enum!(
    /// How an ingest writes its target.
    IngestModeName,
    "replace (build aside, swap in), append, or merge on `keys`",
    ["replace", "append", "merge"]
);

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
    #[schema(value_type = Option<IdentifierText>)]
    pub target: Option<String>,
    /// Target schema (default `main`).
    #[schema(value_type = Option<IdentifierText>)]
    pub schema: Option<String>,
    /// Default replace.
    #[schema(value_type = Option<IngestModeName>)]
    pub mode: Option<String>,
    /// merge: the columns identifying a row.
    #[serde(default)]
    pub keys: Vec<String>,
    /// CSV files: `strict` (default) fails the ingest on a row with the wrong number of fields, an unterminated
    /// quote or a value that does not fit its column, naming file, line and reason; `lenient` skips such rows and
    /// reports how many, with samples.
    #[schema(value_type = Option<CsvStrictnessName>)]
    pub csv: Option<String>,
}

impl TryFrom<IngestBody> for IngestRequest {
    type Error = ApiError;

    fn try_from(body: IngestBody) -> Result<Self, ApiError> {
        let source = body.source.try_into()?;
        let mode = IngestMode::parse(body.mode.as_deref().unwrap_or("replace"))
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        let csv = match body.csv.as_deref() {
            None | Some("strict") => CsvStrictness::Strict,
            Some("lenient") => CsvStrictness::Lenient,
            Some(other) => {
                return Err(ApiError::invalid(format!(
                    "csv must be strict or lenient, not {other:?}"
                )))
            }
        };
        Ok(IngestRequest {
            source,
            table: body.table,
            query: body.query,
            target: body.target,
            schema: body.schema,
            mode,
            keys: body.keys,
            csv,
            actor: Some("api".into()),
        })
    }
}

/// Look at a source before ingesting it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectBody {
    pub source: IngestSourceDto,
    /// The table to sample (default: the source's only table).
    pub table: Option<String>,
    /// Sample rows (default 10).
    #[schema(maximum = 1000)]
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
    #[schema(value_type = Vec<Vec<serde_json::Value>>)]
    pub rows: Box<serde_json::value::RawValue>,
}

impl InspectDto {
    pub fn new(
        (meta, columns, sample): (ConnectorMetadata, Vec<Column>, Vec<arrow::record_batch::RecordBatch>),
    ) -> Result<Self, ApiError> {
        Ok(InspectDto {
            connector: meta.connector.to_owned(),
            location: meta.location,
            tables: meta.tables.into_iter().map(Into::into).collect(),
            columns: columns.into_iter().map(Into::into).collect(),
            rows: rows_json(&sample)?,
        })
    }
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
    #[schema(value_type = RunStatusName)]
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

impl From<Run> for IngestRunDto {
    fn from(run: Run) -> Self {
        let elapsed_ms = run.finished_at.and(run.elapsed_ms(chrono::Utc::now()));
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
    #[schema(value_type = SourceKindName)]
    pub source_kind: String,
    /// A stored source's name, or where an inline source was (never with its secrets).
    pub source: String,
    pub named_source: bool,
    /// The table read or the query run.
    pub input: String,
    #[schema(value_type = IngestModeName)]
    pub mode: String,
    pub keys: Vec<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub last_run: Option<String>,
    #[schema(value_type = Option<RunStatusName>)]
    pub last_status: Option<String>,
    pub rows: u64,
}

impl From<Ingestion> for IngestionDto {
    fn from(i: Ingestion) -> Self {
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

impl From<(Ingestion, Vec<Run>)> for IngestionDetailDto {
    fn from((entry, history): (Ingestion, Vec<Run>)) -> Self {
        Self {
            ingestion: entry.into(),
            history: history.into_iter().map(Into::into).collect(),
        }
    }
}
