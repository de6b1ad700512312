use arrow_schema::SchemaRef;
use async_trait::async_trait;
use pluto_duck_domain::RunId;
use thiserror::Error;

use super::warehouse::{BatchStream, WarehouseError};
use crate::ErrorKind;

#[derive(Debug, Error)]
pub enum ResultError {
    #[error("no stored result for run {0} (it returned no rows, or the result expired)")]
    NotFound(String),
    /// The batches being stored failed upstream.
    #[error(transparent)]
    Upstream(#[from] WarehouseError),
    #[error("result store unavailable: {0}")]
    Unavailable(String),
    #[error("result store error: {0}")]
    Internal(String),
}

impl ResultError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ResultError::NotFound(_) => ErrorKind::NotFound,
            ResultError::Upstream(e) => e.kind(),
            ResultError::Unavailable(_) => ErrorKind::Unavailable,
            ResultError::Internal(_) => ErrorKind::Internal,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoredResult {
    pub rows: u64,
    pub bytes: u64,
}

pub struct ResultPage {
    pub schema: SchemaRef,
    pub total_rows: u64,
    /// Only the requested rows.
    pub batches: BatchStream,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnProfile {
    pub name: String,
    pub data_type: String,
    pub count: u64,
    pub nulls: u64,
    /// HyperLogLog estimate.
    pub distinct_estimate: u64,
    pub min: Option<String>,
    pub max: Option<String>,
    /// Most frequent values of text columns, most frequent first.
    pub top_values: Vec<(String, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub max_age_secs: u64,
    pub max_total_bytes: u64,
}

/// Finished results, kept in memory when small and as files in the artifacts folder otherwise (never as tables
/// in the warehouse).
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait ResultStore: Send + Sync {
    /// Consumes the stream into the run's result; a failure leaves no partial result behind.
    async fn write(&self, run: &RunId, schema: SchemaRef, batches: BatchStream) -> Result<StoredResult, ResultError>;
    /// Rows `offset..offset+limit` (all after `offset` when `limit` is `None`).
    async fn read(&self, run: &RunId, offset: u64, limit: Option<u64>) -> Result<ResultPage, ResultError>;
    async fn profile(&self, run: &RunId) -> Result<Vec<ColumnProfile>, ResultError>;
    async fn delete(&self, run: &RunId) -> Result<bool, ResultError>;
    /// Deletes results past the policy, oldest first; returns the runs whose results went.
    async fn sweep(&self, policy: RetentionPolicy) -> Result<Vec<RunId>, ResultError>;
    /// Makes every result durable (a store that holds some in memory writes them out); returns how many were
    /// written. Called at shutdown.
    async fn persist(&self) -> Result<u64, ResultError>;
}
