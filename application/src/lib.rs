//! Use cases and the ports they drive. Adapters implement the ports; bootstrap wires them.

pub mod agent;
pub mod connectors;
pub mod error;
pub mod ports;
pub mod services;

pub use error::{AppError, ErrorKind};
pub use services::{
    analysis_schema, AnalysisDraft, AnalysisRunner, AnalysisService, App, BoardDraft, BoardService, CacheRequest,
    CacheService, CompiledStep, ExecuteOptions, IngestRequest, IngestService, IngestSource, ItemDraft, Lineage,
    LineageGraph, NewSource, ProjectData, ProjectService, QueryLimits, QueryService, QuerySubmission, Removed, RunHub,
    SourceService, StepOutcome, Subscription, SystemService,
};
