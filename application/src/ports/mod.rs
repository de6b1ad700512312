//! Outbound ports. Object-safe so bootstrap can pick adapters at run time and hold them as `Arc<dyn Port>`.
//! Signatures speak domain types only.

mod analyses;
mod blobs;
mod lake;
mod lineage;
mod llm;
mod metadata;
mod objects;
mod results;
mod secrets;
mod skills;
mod sources;
mod transform;
mod warehouse;

pub use analyses::{AnalysisStore, AnalysisStoreError};
pub use blobs::{BlobError, BlobStore};
pub use lake::{Lake, LakeSnapshot};
pub use lineage::{
    ColumnLineageFacet, DataSourceFacet, ErrorFacet, InputField, JobTypeFacet, LineageDataset, LineageEmitter,
    LineageEvent, LineageJob, LineageStats, ParentRun, ProcessingEngineFacet, RunFacets, RunState, SchemaField,
    SqlFacet, Transformation, TransformationKind,
};
pub use llm::{
    ChatDelta, ChatMessage, ChatRequest, ChatStream, FinishReason, LlmError, LlmProvider, LlmProviders, LlmSettings,
    ProviderInfo, Role, TokenUsage, ToolCall, ToolSpec,
};
pub use metadata::{MetadataStore, RepoError, RunFilter};
pub use objects::{
    BucketInfo, ByteStream, ListObjects, ObjectEntry, ObjectInfo, ObjectLocation, ObjectPage, ObjectRead, ObjectStore,
    ObjectStoreError, PutObject, DEFAULT_CONTENT_TYPE, MAX_LIST_LIMIT,
};
pub use results::{ColumnProfile, ResultError, ResultPage, ResultStore, RetentionPolicy, StoredResult};
pub use secrets::{validate_secret_name, SecretError, SecretStore};
pub use skills::{Skill, SkillStore};
pub use sources::{FileEntry, PrivateSource, ScanInfo, SourceCatalog, SourceError, SourceRef, TableInfo};
pub use transform::{
    CatalogColumn, CatalogEntry, CompiledSql, DbtArtifacts, DbtCatalog, DbtColumn, DbtCommand, DbtEdge, DbtEvent,
    DbtInvocation, DbtLogLevel, DbtManifest, DbtNode, DbtOutcome, DbtProfileSpec, DbtResourceType, DbtStatus,
    DbtTestRef, DbtVersion, NodeResult, NodeStatus, RunSummary, TransformError, TransformationRunner,
};
pub use warehouse::{
    BatchStream, CsvStrictness, DbtHandover, ExportFormat, ExportedFile, Load, LoadFrom, LoadMode, LoadOutcome,
    LoadPart, LoadProgress, Materialize, ParamValue, PartRead, ProgressFn, QueryRequest, QueryStream, RejectedRow,
    RelationInfo, RelationKind, StatementText, TableColumn, TableEntry, TableForeignKey, Warehouse, WarehouseError,
};

#[cfg(any(test, feature = "test-util"))]
pub use analyses::MockAnalysisStore;
#[cfg(any(test, feature = "test-util"))]
pub use blobs::MockBlobStore;
#[cfg(any(test, feature = "test-util"))]
pub use lake::MockLake;
#[cfg(any(test, feature = "test-util"))]
pub use lineage::MockLineageEmitter;
#[cfg(any(test, feature = "test-util"))]
pub use llm::{MockLlmProvider, MockLlmProviders};
#[cfg(any(test, feature = "test-util"))]
pub use metadata::MockMetadataStore;
#[cfg(any(test, feature = "test-util"))]
pub use objects::MockObjectStore;
#[cfg(any(test, feature = "test-util"))]
pub use results::MockResultStore;
#[cfg(any(test, feature = "test-util"))]
pub use secrets::MockSecretStore;
#[cfg(any(test, feature = "test-util"))]
pub use skills::MockSkillStore;
#[cfg(any(test, feature = "test-util"))]
pub use sources::MockSourceCatalog;
#[cfg(any(test, feature = "test-util"))]
pub use transform::MockTransformationRunner;
#[cfg(any(test, feature = "test-util"))]
pub use warehouse::MockWarehouse;
