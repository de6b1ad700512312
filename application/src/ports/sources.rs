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
    #[error("{0}")]
    MissingExtension(String),
    #[error("source catalog error: {0}")]
    Internal(String),
}

impl SourceError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SourceError::NotFound(_) => ErrorKind::NotFound,
            SourceError::Unreachable(_) => ErrorKind::Invalid,
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

/// Live federation: sources the warehouse reaches in place (DuckDB ATTACH).
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
}
