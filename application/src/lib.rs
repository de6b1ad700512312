//! Use cases and the ports they drive. Adapters implement the ports; bootstrap wires them.

pub mod agent;
pub mod connectors;
pub mod error;
pub mod llm;
pub mod ports;
pub mod services;

pub use error::{AppError, ErrorKind, ProblemType, PROBLEM_TYPES};
pub use services::{
    analysis_relation, job_wait, AnalysisDraft, AnalysisRunner, AnalysisService, App, BoardDraft, BoardService,
    CacheRequest, CacheService, ChangeLog, ColumnEdge, CompiledStep, DbtColumnStatus, DbtModelStatus, DbtRequest,
    DbtService, DbtSettings, DbtTestStatus, ExecuteOptions, Freshness, IngestRequest, IngestService, IngestSource,
    ItemDraft, JobContext, JobSpec, Jobs, Lineage, LineageGraph, NewSource, Outcome, PathPolicy, ProjectData,
    ProjectService, QueryLimits, QueryService, QuerySubmission, Removed, RunHub, SourceDetail, SourceService,
    StepOutcome, Submitted, Subscription, SystemService, TableChange, Work, MAX_JOB_WAIT, MAX_PAGE_ROWS,
    MAX_SAMPLE_ROWS, MAX_SETTINGS_BYTES, MAX_SUBMIT_WAIT,
};
pub use services::{
    job_run_detail, next_slot, parse_cron, source_dataset, DatasetSources, JobDraft, JobEvent, JobRunDetail,
    JobService, JobStatus, RunDataset, RunReport,
};
pub use services::{
    DatasetChange, DatasetEvent, DatasetLimits, DatasetService, LineageService, RunDatasets, RunObserver,
};
