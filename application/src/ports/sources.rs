use async_trait::async_trait;
use pluto_duck_domain::{Column, Source};
use secrecy::SecretString;
use thiserror::Error;

use crate::ErrorKind;

/// Messages never contain a password: adapters redact them.
#[derive(Debug, Error, Clone)]
pub enum SourceError {
    #[error("{0}")]
    NotFound(String),
    /// The source cannot be reached with what was given: wrong password, unreachable host, missing file.
    #[error("{0}")]
    Unreachable(String),
    /// The configuration itself is wrong: an unsupported format, a folder without data files.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    MissingExtension(String),
    #[error("source catalog error: {0}")]
    Internal(String),
}

impl SourceError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SourceError::NotFound(_) => ErrorKind::NotFound,
            SourceError::Unreachable(_) | SourceError::Invalid(_) => ErrorKind::Invalid,
            SourceError::MissingExtension(_) => ErrorKind::Unavailable,
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

/// Live federation: sources the warehouse reaches in place (DuckDB ATTACH, or views over files).
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait SourceCatalog: Send + Sync {
    /// Makes the source queryable as `source.catalog_alias()`.
    async fn attach(&self, source: &Source, password: Option<SecretString>) -> Result<(), SourceError>;
    async fn detach(&self, alias: &str) -> Result<(), SourceError>;
    /// Connects under a throwaway alias and lets go again.
    async fn test(&self, source: &Source, password: Option<SecretString>) -> Result<(), SourceError>;
    async fn schemas(&self, alias: &str) -> Result<Vec<String>, SourceError>;
    async fn tables(&self, alias: &str, schema: Option<String>) -> Result<Vec<TableInfo>, SourceError>;
    async fn columns(&self, alias: &str, schema: &str, table: &str) -> Result<Vec<Column>, SourceError>;
    /// The files a path, folder (`/` at the end, or a local directory) or glob names, sorted; reached with the
    /// credentials of the attached source `alias` when remote.
    async fn list_files(&self, pattern: &str) -> Result<Vec<FileEntry>, SourceError>;
    /// The scans of the warehouse's plan for `sql` (one read statement), without running it.
    async fn explain(&self, sql: &str) -> Result<Vec<ScanInfo>, SourceError>;
}
