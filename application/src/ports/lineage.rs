//! Lineage: every run says what it read and wrote, as OpenLineage run events. The model is plain Rust (the
//! OpenLineage JSON is the adapter's); dataset names follow the naming spec through `DatasetName`.

mod event;

use async_trait::async_trait;

pub use event::{
    ColumnLineageFacet, DataSourceFacet, ErrorFacet, InputField, JobTypeFacet, LineageDataset, LineageEvent,
    LineageJob, ParentRun, ProcessingEngineFacet, RunFacets, RunState, SchemaField, SqlFacet, Transformation,
    TransformationKind,
};

/// What an emitter did with the events it was handed, since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineageStats {
    /// Written or accepted by the receiver.
    pub delivered: u64,
    /// Dropped because the queue was full, or given up after the last retry.
    pub dropped: u64,
    /// Waiting to be delivered.
    pub pending: u64,
}

/// Where lineage events go: a JSON-lines file, an OpenLineage HTTP endpoint (Marquez), or nowhere.
///
/// `emit` never holds a run up: adapters queue the event and deliver it in the background, dropping (and
/// counting) events when their queue is full rather than waiting. Events of one run are delivered in the order
/// they were emitted.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait LineageEmitter: Send + Sync {
    async fn emit(&self, event: LineageEvent);
    /// Waits until every event emitted before the call is delivered or given up (bounded by the adapter's
    /// retry policy). For shutdown and tests.
    async fn flush(&self);
    fn stats(&self) -> LineageStats;
}
