use async_trait::async_trait;
use pluto_duck_domain::{Column, Identifier, ProjectId, Source, SourceState};
use secrecy::SecretString;
use thiserror::Error;

use super::warehouse::QueryStream;
use crate::ErrorKind;

/// Messages never contain a password: adapters redact them.
#[derive(Debug, Error, Clone)]
pub enum SourceError {
    #[error("{0}")]
    NotFound(String),
    /// The source cannot be reached with what was given: wrong password, unreachable host, missing file, a file
    /// that is not the database it claims to be.
    #[error("{0}")]
    Unreachable(String),
    /// The configuration itself is wrong: an unsupported format, a folder without data files.
    #[error("{0}")]
    Invalid(String),
    /// The sandbox refused it.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    MissingExtension(String),
    #[error("{0}")]
    Busy(String),
    #[error("source catalog error: {0}")]
    Internal(String),
}

impl SourceError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SourceError::NotFound(_) => ErrorKind::NotFound,
            SourceError::Unreachable(_) | SourceError::Invalid(_) => ErrorKind::Invalid,
            SourceError::Forbidden(_) => ErrorKind::Forbidden,
            SourceError::MissingExtension(_) => ErrorKind::Unavailable,
            SourceError::Busy(_) => ErrorKind::Conflict,
            SourceError::Internal(_) => ErrorKind::Internal,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    pub schema: String,
    pub name: String,
    /// `table` or `view`.
    pub kind: String,
    /// The engine's estimate, when it has one.
    pub estimated_rows: Option<u64>,
}

/// A scan in the warehouse's plan of a query: what it reads and what it pushes down to the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanInfo {
    /// The plan operator: POSTGRES_SCAN, MYSQL_SCAN, SQLITE_SCAN, READ_CSV, READ_PARQUET, SEQ_SCAN, ...
    pub operator: String,
    pub table: Option<String>,
    pub projections: Vec<String>,
    pub filters: Vec<String>,
    /// The planner's estimate (for PostgreSQL from its statistics, for Parquet from the metadata).
    pub estimated_rows: Option<u64>,
    /// What the remote database is asked, rebuilt from the plan (PostgreSQL and MySQL scans).
    pub remote_sql: Option<String>,
}

/// One file of a located source, as the warehouse lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub path: String,
    /// Known for local files.
    pub bytes: Option<u64>,
    /// Last modification, known for local files.
    pub modified: Option<chrono::DateTime<chrono::Utc>>,
}

/// An inline source opened outside every project's sandbox for one job (an ingest of a source given inline, an
/// inspection); closed with [`SourceCatalog::close_private`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PrivateSource(pub u64);

/// Which open source a read goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRef {
    /// A stored source, attached in its project's sandbox under its name.
    Stored { project: ProjectId, name: Identifier },
    /// A private session, where the source is attached under [`SourceRef::alias`].
    Private(PrivateSource),
    /// The project's sandbox itself (its own files, for listings).
    Project(ProjectId),
}

impl SourceRef {
    /// The catalog name the source's tables are read under.
    pub fn alias(&self) -> String {
        match self {
            SourceRef::Stored { name, .. } => name.to_string(),
            SourceRef::Private(id) => format!("pd_private_{}", id.0),
            SourceRef::Project(_) => pluto_duck_domain::PROJECT_CATALOG.to_owned(),
        }
    }
}

/// Live federation: sources each project's sandbox reaches in place (DuckDB ATTACH, or views over files).
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait SourceCatalog: Send + Sync {
    /// Checks a source outside every project's sandbox (a file's header, a trial open, its catalog listed) and
    /// lets go again.
    async fn test(&self, source: &Source, password: Option<SecretString>) -> Result<(), SourceError>;
    /// Adds the source to its project's sandbox, so its SQL reads it as `name.schema.table`. The source is tested
    /// first; nothing changes when it fails.
    async fn attach(&self, source: &Source, password: Option<SecretString>) -> Result<(), SourceError>;
    async fn detach(&self, project: &ProjectId, name: &Identifier) -> Result<(), SourceError>;
    /// Declares a project's stored sources (at start-up) without opening its sandbox; they are attached when it
    /// opens, and one that fails is marked failed while the rest work.
    async fn register(&self, project: &ProjectId, sources: Vec<(Source, Option<SecretString>)>);
    /// The attach state of each registered source of the project (opening its sandbox if needed).
    async fn states(&self, project: &ProjectId) -> Result<Vec<(Identifier, SourceState)>, SourceError>;
    /// Opens an inline source (already validated by the application) for one job.
    async fn open_private(&self, source: &Source, password: Option<SecretString>)
        -> Result<PrivateSource, SourceError>;
    async fn close_private(&self, id: PrivateSource);
    async fn schemas(&self, at: &SourceRef) -> Result<Vec<String>, SourceError>;
    async fn tables(&self, at: &SourceRef, schema: Option<String>) -> Result<Vec<TableInfo>, SourceError>;
    async fn columns(&self, at: &SourceRef, schema: &str, table: &str) -> Result<Vec<Column>, SourceError>;
    /// The files a path, folder (`/` at the end, or a local directory) or glob names, sorted; reached with the
    /// credentials of the source `at`.
    async fn list_files(&self, at: &SourceRef, pattern: &str) -> Result<Vec<FileEntry>, SourceError>;
    /// Rows of `relation` (warehouse SQL reading the source), at most `limit`.
    async fn pull(&self, at: &SourceRef, relation: &str, limit: Option<u64>) -> Result<QueryStream, SourceError>;
    /// The scans of the sandbox's plan for `sql` (one read statement), without running it.
    async fn explain(&self, project: &ProjectId, sql: &str) -> Result<Vec<ScanInfo>, SourceError>;
}
