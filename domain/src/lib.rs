//! The pure model of Pluto-Duck. Nothing here performs I/O or knows about a database, a wire format or a runtime:
//! the architecture test fails if this crate gains serde, sqlx, duckdb, axum, utoipa or tokio.

mod analysis;
mod board;
mod cache;
mod conversation;
mod dag;
mod error;
mod files;
mod freshness;
mod ident;
mod ingest;
mod job;
mod lineage;
mod objects;
mod params;
mod project;
mod run;
mod sandbox;
mod source;
mod sql;
mod system;

pub use analysis::{
    column_lineage, compile_sql, dependencies, expand_refs, Analysis, AnalysisState, ColumnLineage, Dependencies,
    Materialization, ParamType, Parameter, ANALYSIS_SCHEMA,
};
pub use board::{image_type, Board, BoardItem, ItemKind, ItemSource, Snapshot, MAX_IMAGE_BYTES};
pub use cache::CachedTable;
pub use conversation::{Conversation, ConversationId, ConversationMessage, MessageRole};
pub use dag::Dag;
pub use error::DomainError;
pub use files::{FileFormat, FileLocation, FileTable, LocationScheme, S3Settings};
pub use freshness::{params_hash, plan, stale_reasons, LastRun, NodeState, StaleReason, StepAction, NO_PARAMS};
pub use ident::Identifier;
pub use ingest::{IngestMode, Ingestion, TargetTable};
pub use job::{JobDefinition, JobIngest, JobSchedule, JobTask, MAX_JOB_SQL_BYTES};
pub use lineage::DatasetName;
pub use objects::{
    bucket_name_problem, object_key_problem, validate_content_type, validate_list_text, validate_user_metadata,
    BucketName, ByteRange, ObjectKey, MAX_KEY_BYTES, MAX_USER_METADATA_BYTES,
};
pub use params::{bind_parameters, resolve_parameters, BoundValue};
pub use project::{
    canonical_relation, is_reserved_name, is_reserved_schema, Project, ProjectId, Relation, CACHE_SCHEMA, DBT_CATALOG,
    MAIN_SCHEMA, PROJECT_CATALOG,
};
pub use run::{Column, NodeEvent, Run, RunEvent, RunEventKind, RunFailure, RunId, RunKind, RunStatus};
pub use sandbox::{check_user_sql, sandbox_violation, SandboxRule};
pub use source::{Source, SourceConnection, SourceKind, SourceState};
pub use sql::{
    calls_side_effects, parse_condition, referenced_relations, split_statements, written_relations, SqlStatement,
};
pub use system::{ExtensionStatus, HealthReport, Profile};
