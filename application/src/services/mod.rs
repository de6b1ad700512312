mod analyses;
mod analysis_runs;
mod boards;
mod caches;
mod changes;
mod dataset_sources;
mod datasets;
mod dbt;
mod fleet;
mod ingest;
mod job_defs;
mod jobs;
mod lake;
mod project_data;
mod projects;
mod query;
mod run_hub;
mod run_lineage;
mod sources;
mod system;

use std::sync::Arc;

pub use analyses::{
    analysis_relation, AnalysisDraft, AnalysisService, ColumnEdge, CompiledStep, Lineage, LineageGraph,
};
pub use analysis_runs::{AnalysisRunner, ExecuteOptions, Freshness, StepOutcome};
pub use boards::{BoardDraft, BoardService, ItemDraft, SNAPSHOT_ROWS};
pub use caches::{CacheRequest, CacheService};
pub use changes::{ChangeLog, TableChange};
pub use dataset_sources::DatasetSources;
pub use datasets::{DatasetChange, DatasetEvent, DatasetLimits, DatasetService};
pub use dbt::{
    sources_yaml, DbtColumnStatus, DbtModelStatus, DbtRequest, DbtService, DbtSettings, DbtTestStatus, RelationDoc,
    GENERATED_SOURCES_FILE, GENERATED_SOURCES_HEADER,
};
pub use ingest::{IngestRequest, IngestService, IngestSource, MAX_SAMPLE_ROWS};
pub use job_defs::{
    job_run_detail, next_slot, parse_cron, JobDraft, JobEvent, JobRunDetail, JobService, JobStatus, RunDataset,
    RunReport,
};
pub use jobs::{job_wait, JobContext, JobSpec, Jobs, Outcome, RunObserver, Work, MAX_JOB_WAIT};
pub use lake::LakeService;
pub use project_data::{ProjectData, Removed, MAX_SETTINGS_BYTES};
pub use projects::ProjectService;
pub use query::{QueryLimits, QueryService, QuerySubmission, Submitted, MAX_PAGE_ROWS, MAX_SUBMIT_WAIT};
pub use run_hub::{RunHub, Subscription};
pub use run_lineage::{run_uuid, source_dataset, LineageService, RunDatasets};
pub use sources::{NewSource, PathPolicy, SourceDetail, SourceService};
pub use system::SystemService;

/// Every use case, wired once by bootstrap and shared by the transports (HTTP, CLI).
#[derive(Clone)]
pub struct App {
    pub system: Arc<SystemService>,
    pub projects: Arc<ProjectService>,
    pub jobs: Arc<Jobs>,
    pub changes: Arc<ChangeLog>,
    pub queries: Arc<QueryService>,
    pub sources: Arc<SourceService>,
    pub caches: Arc<CacheService>,
    pub ingest: Arc<IngestService>,
    pub analyses: Arc<AnalysisService>,
    pub analysis_runs: Arc<AnalysisRunner>,
    pub project_data: Arc<ProjectData>,
    pub boards: Arc<BoardService>,
    pub agent: Arc<crate::agent::AgentService>,
    pub eval: Arc<crate::agent::eval::EvalService>,
    pub dbt: Arc<DbtService>,
    pub datasets: Arc<DatasetService>,
    /// Reports every run as OpenLineage (through an emitter that drops everything when lineage is off).
    pub lineage: Arc<LineageService>,
    /// Time travel over the hybrid profile's shared warehouse.
    pub lake: Arc<LakeService>,
    /// Named jobs (`/jobs`), their runs and their schedules.
    pub job_defs: Arc<JobService>,
    /// A dataset object registered as a source or ingested, in one call.
    pub dataset_sources: Arc<DatasetSources>,
}
