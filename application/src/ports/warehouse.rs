use std::pin::Pin;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use async_trait::async_trait;
use futures::Stream;
use pluto_duck_domain::{Column, ExtensionStatus};
use thiserror::Error;
use tokio_util::sync::CancellationToken;

use crate::ErrorKind;

#[derive(Debug, Error, Clone)]
pub enum WarehouseError {
    /// The SQL or its inputs are wrong; the message is the engine's, safe to show.
    #[error("{message}")]
    Sql { message: String, position: Option<u64> },
    #[error("{0}")]
    Invalid(String),
    /// A DuckDB extension is not installed; the message names the command that installs it.
    #[error("{0}")]
    MissingExtension(String),
    /// Stopped through its cancellation token (a cancel or a timeout).
    #[error("interrupted")]
    Interrupted,
    #[error("warehouse unavailable: {0}")]
    Unavailable(String),
    #[error("warehouse error: {0}")]
    Internal(String),
}

impl WarehouseError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            WarehouseError::Sql { .. } | WarehouseError::Invalid(_) => ErrorKind::Invalid,
            WarehouseError::Interrupted => ErrorKind::Timeout,
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

pub struct QueryStream {
    pub schema: SchemaRef,
    pub columns: Vec<Column>,
    pub batches: BatchStream,
}

/// The analytical engine that holds the user's data.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait Warehouse: Send + Sync {
    /// The engine's version, e.g. `v1.5.5`.
    async fn version(&self) -> Result<String, WarehouseError>;
    /// Every extension the product relies on, installed and loaded or not.
    async fn extensions(&self) -> Result<Vec<ExtensionStatus>, WarehouseError>;
    /// Runs the statements; resolves once the last one has started producing (errors in the SQL surface
    /// here), then streams its result. Cancelling the token interrupts the engine.
    async fn query(&self, request: QueryRequest, cancel: CancellationToken) -> Result<QueryStream, WarehouseError>;
}
