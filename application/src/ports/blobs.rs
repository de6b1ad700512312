use async_trait::async_trait;
use thiserror::Error;

use crate::ErrorKind;

#[derive(Debug, Error, Clone)]
pub enum BlobError {
    #[error("file store error: {0}")]
    Internal(String),
}

impl BlobError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

/// Files the application keeps by key (`<project>/boards/<board>/<item>`): uploaded images.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Creates or replaces, atomically.
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError>;
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError>;
    /// A path on disk for `key`, its folder created, for a file another component writes itself (DuckDB's COPY):
    /// it is removed with its prefix like any other.
    async fn local_path(&self, key: &str) -> Result<String, BlobError>;
    /// Removes every file whose key starts with `prefix` (a whole board, a whole project); returns how many.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, BlobError>;
}
