use async_trait::async_trait;
use pluto_duck_domain::ExtensionStatus;
use thiserror::Error;

use crate::ErrorKind;

#[derive(Debug, Error)]
pub enum WarehouseError {
    /// The SQL or its inputs are wrong; the message is the engine's, safe to show.
    #[error("{0}")]
    Invalid(String),
    /// A DuckDB extension is not installed; the message names the command that installs it.
    #[error("{0}")]
    MissingExtension(String),
    #[error("warehouse unavailable: {0}")]
    Unavailable(String),
    #[error("warehouse error: {0}")]
    Internal(String),
}

impl WarehouseError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            WarehouseError::Invalid(_) => ErrorKind::Invalid,
            WarehouseError::MissingExtension(_) | WarehouseError::Unavailable(_) => ErrorKind::Unavailable,
            WarehouseError::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// The analytical engine that holds the user's data.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait Warehouse: Send + Sync {
    /// The engine's version, e.g. `v1.5.5`.
    async fn version(&self) -> Result<String, WarehouseError>;
    /// Every extension the product relies on, installed and loaded or not.
    async fn extensions(&self) -> Result<Vec<ExtensionStatus>, WarehouseError>;
}
