use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use async_trait::async_trait;
use futures::Stream;
use pluto_duck_domain::{Column, ExtensionStatus, FileFormat, Materialization, ProjectId, Relation};
use thiserror::Error;
use tokio_util::sync::CancellationToken;

use super::sources::PrivateSource;
use crate::ErrorKind;

#[derive(Debug, Error, Clone)]
pub enum WarehouseError {
    /// The SQL or its inputs are wrong; the message is the engine's, safe to show.
    #[error("{message}")]
    Sql { message: String, position: Option<u64> },
    #[error("{0}")]
    Invalid(String),
    /// The project's sandbox refused it (a file outside the allowed directories, a locked setting).
    #[error("{0}")]
    Forbidden(String),
    /// A DuckDB extension is not installed; the message names the command that installs it.
    #[error("{0}")]
    MissingExtension(String),
    /// Stopped through its cancellation token (a cancel or a timeout).
    #[error("interrupted")]
    Interrupted,
    #[error("{0}")]
    Conflict(String),
    #[error("warehouse unavailable: {0}")]
    Unavailable(String),
    #[error("warehouse error: {0}")]
    Internal(String),
}

impl WarehouseError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            WarehouseError::Sql { .. } | WarehouseError::Invalid(_) => ErrorKind::Invalid,
            WarehouseError::Forbidden(_) => ErrorKind::Forbidden,
            WarehouseError::Interrupted => ErrorKind::Timeout,
            WarehouseError::Conflict(_) => ErrorKind::Conflict,
            WarehouseError::MissingExtension(_) | WarehouseError::Unavailable(_) => ErrorKind::Unavailable,
            WarehouseError::Internal(_) => ErrorKind::Internal,
        }
    }

    pub fn position(&self) -> Option<u64> {
        match self {
            WarehouseError::Sql { position, .. } => *position,
            _ => None,
        }
    }
}

/// Record batches as they come, with back-pressure: the producer waits while the consumer is behind.
pub type BatchStream = Pin<Box<dyn Stream<Item = Result<RecordBatch, WarehouseError>> + Send>>;

/// A bound query parameter (`$1`, `?`): always a real parameter, never spliced into the text.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

/// One statement of a request, with its character offset in the request (error positions are absolute).
#[derive(Debug, Clone, PartialEq)]
pub struct StatementText {
    pub text: String,
    pub offset: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueryRequest {
    /// Executed in order on one connection, in one transaction; the result is the last one's.
    pub statements: Vec<StatementText>,
    /// Bound to the last statement.
    pub params: Vec<ParamValue>,
}

impl QueryRequest {
    /// One statement without parameters.
    pub fn sql(text: impl Into<String>) -> Self {
        Self {
            statements: vec![StatementText {
                text: text.into(),
                offset: 0,
            }],
            params: Vec::new(),
        }
    }
}

pub struct QueryStream {
    pub schema: SchemaRef,
    pub columns: Vec<Column>,
    pub batches: BatchStream,
}

/// Build `relation` from a SELECT, the way the materialization says.
#[derive(Debug, Clone, PartialEq)]
pub struct Materialize {
    pub relation: Relation,
    /// One read statement (user SQL, already checked against the sandbox rules).
    pub select: String,
    pub params: Vec<ParamValue>,
    /// View; table built aside and swapped; append; incremental on a cursor and/or key; a Parquet file in the
    /// project's files with a view over it. `Ephemeral` is never built.
    pub how: Materialization,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationKind {
    Table,
    View,
}

/// A table or view of a project's own database.
#[derive(Debug, Clone, PartialEq)]
pub struct RelationInfo {
    pub relation: Relation,
    pub kind: RelationKind,
    pub columns: Vec<Column>,
    /// The engine's estimate (tables), none for views.
    pub estimated_rows: Option<u64>,
    pub comment: Option<String>,
}

/// A column as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableColumn {
    pub name: String,
    pub data_type: String,
    pub comment: Option<String>,
    pub primary_key: bool,
}

/// A foreign key of a table: its columns reference another table's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableForeignKey {
    pub columns: Vec<String>,
    /// `(catalog, schema, table)`.
    pub references: (String, String, String),
    pub referenced_columns: Vec<String>,
}

/// A table or view a project's SQL can read: its own (in catalog [`pluto_duck_domain::PROJECT_CATALOG`]) or an
/// attached source's (in the source's catalog).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableEntry {
    pub catalog: String,
    pub schema: String,
    pub name: String,
    pub kind: RelationKind,
    pub columns: Vec<TableColumn>,
    pub foreign_keys: Vec<TableForeignKey>,
    pub estimated_rows: Option<u64>,
    pub comment: Option<String>,
}

/// Where the parts of a load are read: the project's sandbox (its stored sources) or a private session
/// opened for an inline source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadFrom {
    Sandbox,
    Private(PrivateSource),
}

/// How one part of a load reads its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartRead {
    /// A relation of an attached source, in warehouse SQL (`SELECT * FROM "src"."public"."t"`,
    /// `SELECT * FROM postgres_query('src', '...')`).
    Relation(String),
    /// Files read in place with the engine's readers.
    Files {
        files: Vec<String>,
        format: FileFormat,
        /// CSV: one character; sniffed when absent.
        delimiter: Option<String>,
        /// CSV: whether the first line holds the names; sniffed when absent.
        header: Option<bool>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadPart {
    pub read: PartRead,
    /// Known for local files: reported as progress.
    pub bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadMode {
    /// Replace the table (built aside, swapped in).
    Replace,
    /// Insert by column name, creating the table on first use.
    Append,
    /// Rows whose keys match are replaced, others inserted; duplicate keys in the input are refused.
    Merge { keys: Vec<String> },
    /// Append only rows whose cursor is past the largest one the table holds.
    AppendAfter { cursor: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CsvStrictness {
    /// A row with the wrong number of fields, an unterminated quote or a value that does not fit its column fails
    /// the load, naming the file, line and reason.
    #[default]
    Strict,
    /// Bad rows are skipped and counted, with samples.
    Lenient,
}

/// Copy data into a table of the project: every part staged, then the mode applied in one transaction; a failure
/// or cancel at any point leaves the target as it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    pub from: LoadFrom,
    pub parts: Vec<LoadPart>,
    pub target: Relation,
    pub mode: LoadMode,
    /// A boolean expression over the input's columns (already checked as one expression).
    pub filter: Option<String>,
    pub csv: CsvStrictness,
    /// Names the staging table (a run id) so orphans of a crash can be found.
    pub tag: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadProgress {
    pub part: u64,
    pub parts: u64,
    pub rows: u64,
    pub bytes: u64,
}

pub type ProgressFn = Arc<dyn Fn(LoadProgress) + Send + Sync>;

/// A row a lenient CSV read skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    pub file: String,
    pub line: u64,
    pub reason: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadOutcome {
    /// Rows the target holds after the load (replace, append after), or rows the load wrote (append, merge).
    pub rows: u64,
    pub bytes: u64,
    pub rejected: u64,
    /// At most a few.
    pub rejected_samples: Vec<RejectedRow>,
}

/// A file the engine wrote for a download, removed by the caller once sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedFile {
    pub path: std::path::PathBuf,
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Parquet,
}

/// The analytical engine that holds the user's data: one sandbox per project, which sees that project's tables
/// and attached sources and nothing else.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait Warehouse: Send + Sync {
    /// The engine's version, e.g. `v1.5.5`.
    async fn version(&self) -> Result<String, WarehouseError>;
    /// Every extension the product relies on, installed or not.
    async fn extensions(&self) -> Result<Vec<ExtensionStatus>, WarehouseError>;
    /// Runs statements (checked against the sandbox rules by the caller) in the project's sandbox; resolves once
    /// the last one has started producing (errors in the SQL surface here), then streams its result. Cancelling
    /// the token interrupts the engine.
    async fn query(
        &self,
        project: &ProjectId,
        request: QueryRequest,
        cancel: CancellationToken,
    ) -> Result<QueryStream, WarehouseError>;
    /// Builds a relation atomically: a failed rebuild leaves the previous object readable. Returns the rows the
    /// relation holds (tables), the rows added (append, incremental), or the rows written (parquet); 0 for views.
    async fn materialize(
        &self,
        project: &ProjectId,
        spec: Materialize,
        cancel: CancellationToken,
    ) -> Result<u64, WarehouseError>;
    async fn relation_kind(
        &self,
        project: &ProjectId,
        relation: &Relation,
    ) -> Result<Option<RelationKind>, WarehouseError>;
    /// Drops a table or view (and a Parquet analysis's file); false when there was none.
    async fn drop_relation(&self, project: &ProjectId, relation: &Relation) -> Result<bool, WarehouseError>;
    /// Tables and views of the project's own database with their columns.
    async fn relations(&self, project: &ProjectId) -> Result<Vec<RelationInfo>, WarehouseError>;
    async fn load(
        &self,
        project: &ProjectId,
        load: Load,
        progress: ProgressFn,
        cancel: CancellationToken,
    ) -> Result<LoadOutcome, WarehouseError>;
    /// Writes a read's result to a file with the engine's own writer, for downloads.
    async fn export(
        &self,
        project: &ProjectId,
        request: QueryRequest,
        format: ExportFormat,
        cancel: CancellationToken,
    ) -> Result<ExportedFile, WarehouseError>;
    /// Removes the project's database and files; the sandbox is closed first (it opens empty on next use).
    async fn drop_project(&self, project: &ProjectId) -> Result<(), WarehouseError>;
    /// Drops staging tables and files a crash left in the project; returns how many.
    async fn drop_orphans(&self, project: &ProjectId) -> Result<u64, WarehouseError>;
    /// Every table and view the project's SQL can read, its sources' included, with columns and keys.
    async fn catalog(&self, project: &ProjectId) -> Result<Vec<TableEntry>, WarehouseError>;
    /// The distinct values of a table's low-cardinality text columns: for each text column with at most
    /// `max_distinct` distinct values (estimated over a bounded sample of rows), at most `per_column` of them.
    async fn sample_values(
        &self,
        project: &ProjectId,
        table: &TableEntry,
        max_distinct: u64,
        per_column: u64,
    ) -> Result<Vec<(String, Vec<String>)>, WarehouseError>;
    /// Drops a schema of the project's own database with everything in it (a conversation's work zone).
    async fn drop_schema(&self, project: &ProjectId, schema: &str) -> Result<(), WarehouseError>;
    /// Hands the project's dbt database over to a dbt run: detaches it from the sandbox (queries of catalog
    /// `dbt` fail until [`Warehouse::take_back_dbt`]; every other query goes on) and writes a consistent copy of
    /// the project's own database for dbt to read its sources from. A sandbox that opens meanwhile leaves the
    /// dbt database out.
    async fn hand_over_dbt(&self, project: &ProjectId) -> Result<DbtHandover, WarehouseError>;
    /// Takes the dbt database back after the run: attaches it read-only as catalog `dbt` again. False when dbt
    /// wrote no file.
    async fn take_back_dbt(&self, project: &ProjectId) -> Result<bool, WarehouseError>;
}

/// What the warehouse hands a dbt run.
#[derive(Debug, Clone, PartialEq)]
pub struct DbtHandover {
    /// The file dbt builds into; nothing else holds it until it is taken back.
    pub database: PathBuf,
    /// A copy of the project's own database, taken now, for dbt to attach read-only.
    pub sources_snapshot: PathBuf,
    /// The tables and views of the snapshot.
    pub relations: Vec<RelationInfo>,
}
