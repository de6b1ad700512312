use async_trait::async_trait;
use pluto_duck_domain::{Analysis, Identifier, ProjectId};
use thiserror::Error;

use crate::ErrorKind;

#[derive(Debug, Error, Clone)]
pub enum AnalysisStoreError {
    /// A stored definition cannot be read (a hand edit gone wrong); names the file and the problem.
    #[error("{0}")]
    Invalid(String),
    #[error("analysis store error: {0}")]
    Internal(String),
}

impl AnalysisStoreError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            AnalysisStoreError::Invalid(_) => ErrorKind::Invalid,
            AnalysisStoreError::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// Where analysis definitions live: git-friendly files in the project folder (local profile). Reads see hand
/// edits of those files.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait AnalysisStore: Send + Sync {
    /// Ordered by id.
    async fn list(&self, project: &ProjectId) -> Result<Vec<Analysis>, AnalysisStoreError>;
    async fn get(&self, project: &ProjectId, id: &Identifier) -> Result<Option<Analysis>, AnalysisStoreError>;
    /// Creates or replaces, atomically (a crash leaves the old file or the new one, never half of one).
    async fn put(&self, analysis: &Analysis) -> Result<(), AnalysisStoreError>;
    async fn delete(&self, project: &ProjectId, id: &Identifier) -> Result<bool, AnalysisStoreError>;
}
