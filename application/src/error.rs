use pluto_duck_domain::DomainError;
use thiserror::Error;

use crate::ports::{
    AnalysisStoreError, BlobError, RepoError, ResultError, SecretError, SourceError, TransformError, WarehouseError,
};

/// Transport-neutral classification: HTTP maps it to a status, the CLI to an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Invalid,
    NotFound,
    Conflict,
    Forbidden,
    Unauthenticated,
    Timeout,
    Unavailable,
    Internal,
}

#[derive(Debug, Error)]
pub enum AppError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("{what} {id:?} not found")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Results(#[from] ResultError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Analyses(#[from] AnalysisStoreError),
    #[error(transparent)]
    Blobs(#[from] BlobError),
    #[error(transparent)]
    Transform(#[from] TransformError),
}

impl AppError {
    /// Where in the SQL the problem is, when the parser or the engine says.
    pub fn position(&self) -> Option<u64> {
        match self {
            AppError::Domain(DomainError::SqlSyntax { position, .. }) => *position,
            AppError::Warehouse(e) => e.position(),
            AppError::Results(crate::ports::ResultError::Upstream(e)) => e.position(),
            _ => None,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            AppError::Domain(DomainError::Cycle(_)) => ErrorKind::Conflict,
            AppError::Domain(_) | AppError::Invalid(_) => ErrorKind::Invalid,
            AppError::NotFound { .. } => ErrorKind::NotFound,
            AppError::Conflict(_) => ErrorKind::Conflict,
            AppError::Unavailable(_) => ErrorKind::Unavailable,
            AppError::Warehouse(e) => e.kind(),
            AppError::Repo(e) => e.kind(),
            AppError::Secret(e) => e.kind(),
            AppError::Results(e) => e.kind(),
            AppError::Source(e) => e.kind(),
            AppError::Analyses(e) => e.kind(),
            AppError::Blobs(e) => e.kind(),
            AppError::Transform(e) => e.kind(),
        }
    }
}
