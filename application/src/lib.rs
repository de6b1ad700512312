//! Use cases and the ports they drive. Adapters implement the ports; bootstrap wires them.

pub mod agent;
pub mod connectors;
pub mod error;
pub mod llm;
pub mod ports;
pub mod services;

pub use error::{AppError, ErrorKind, ProblemType, PROBLEM_TYPES};
pub use services::{
    analysis_relation, AnalysisDraft, AnalysisRunner, AnalysisService, App, BoardDraft, BoardService, CacheRequest,
    CacheService, ChangeLog, CompiledStep, DbtModelStatus, DbtRequest, DbtService, DbtSettings, DbtTestStatus,
    ExecuteOptions, IngestRequest, IngestService, IngestSource, ItemDraft, JobContext, JobSpec, Jobs, Lineage,
    LineageGraph, NewSource, Outcome, PathPolicy, ProjectData, ProjectService, QueryLimits, QueryService,
    QuerySubmission, Removed, RunHub, SourceService, StepOutcome, Subscription, SystemService, TableChange, Work,
};
