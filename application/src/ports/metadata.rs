use async_trait::async_trait;
use pluto_duck_domain::{
    AnalysisState, Board, BoardItem, CachedTable, Conversation, ConversationId, ConversationMessage, Identifier,
    Ingestion, JobDefinition, Project, ProjectId, Run, RunEvent, RunId, RunKind, RunStatus, Source, TargetTable,
};
use thiserror::Error;

use crate::ErrorKind;

#[derive(Debug, Error)]
pub enum RepoError {
    #[error("{what} {id:?} already exists")]
    Conflict { what: &'static str, id: String },
    #[error("metadata store unavailable: {0}")]
    Unavailable(String),
    #[error("metadata store error: {0}")]
    Internal(String),
}

impl RepoError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            RepoError::Conflict { .. } => ErrorKind::Conflict,
            RepoError::Unavailable(_) => ErrorKind::Unavailable,
            RepoError::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// Application metadata (projects, sources, analyses index, boards, runs, history, settings).
/// Never kept in the warehouse file: SQLite in the local profile, PostgreSQL in the hybrid one.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait MetadataStore: Send + Sync {
    /// Cheap round trip proving the store answers.
    async fn ping(&self) -> Result<(), RepoError>;
    /// Inserts the project unless one with its id exists; returns the stored one either way.
    async fn ensure_project(&self, project: &Project) -> Result<Project, RepoError>;
    async fn create_project(&self, project: &Project) -> Result<(), RepoError>;
    async fn get_project(&self, id: &ProjectId) -> Result<Option<Project>, RepoError>;
    /// Ordered by creation time, then id.
    async fn list_projects(&self) -> Result<Vec<Project>, RepoError>;
    async fn rename_project(&self, id: &ProjectId, name: &str) -> Result<bool, RepoError>;
    /// Removes everything the store holds for the project (runs, sources, cached tables, ingestions, analysis
    /// state); with `keep_project` the project itself stays (a reset), else it goes too.
    async fn clear_project(&self, id: &ProjectId, keep_project: bool) -> Result<(), RepoError>;
    async fn get_setting(&self, key: &str) -> Result<Option<String>, RepoError>;
    async fn put_setting(&self, key: &str, value: &str) -> Result<(), RepoError>;
    /// A lease for work that must run once across servers sharing this store (board refreshes, schedules):
    /// true when `holder` holds `name` now, because nobody did, it held it already (renewed), or the last
    /// holder's lease is older than `ttl_secs`. Atomic: two servers never both get it.
    async fn try_lease(&self, name: &str, holder: &str, ttl_secs: u64) -> Result<bool, RepoError>;

    async fn insert_run(&self, run: &Run) -> Result<(), RepoError>;
    /// Stores the run's current state (status, times, counts, columns, failure).
    async fn update_run(&self, run: &Run) -> Result<(), RepoError>;
    async fn get_run(&self, project: &ProjectId, id: &RunId) -> Result<Option<Run>, RepoError>;
    /// Newest first.
    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>, RepoError>;
    /// Marks runs a previous process left queued or running as failed; returns how many.
    async fn fail_unfinished_runs(&self, message: &str) -> Result<u64, RepoError>;

    /// Conflict when the project has a source of that name.
    async fn insert_source(&self, source: &Source) -> Result<(), RepoError>;
    async fn update_source_description(
        &self,
        project: &ProjectId,
        name: &Identifier,
        description: &str,
    ) -> Result<bool, RepoError>;
    async fn delete_source(&self, project: &ProjectId, name: &Identifier) -> Result<bool, RepoError>;
    async fn get_source(&self, project: &ProjectId, name: &Identifier) -> Result<Option<Source>, RepoError>;
    /// Every project's when `project` is `None` (start-up re-attach); ordered by project, then name.
    async fn list_sources(&self, project: Option<ProjectId>) -> Result<Vec<Source>, RepoError>;

    /// Inserts or replaces the record of a cached table.
    async fn put_cache(&self, cache: &CachedTable) -> Result<(), RepoError>;
    async fn get_cache(&self, project: &ProjectId, name: &Identifier) -> Result<Option<CachedTable>, RepoError>;
    /// Ordered by name.
    async fn list_caches(&self, project: &ProjectId) -> Result<Vec<CachedTable>, RepoError>;
    async fn delete_cache(&self, project: &ProjectId, name: &Identifier) -> Result<bool, RepoError>;

    /// Inserts or replaces the catalog entry of an ingested table.
    async fn put_ingestion(&self, ingestion: &Ingestion) -> Result<(), RepoError>;
    async fn get_ingestion(&self, project: &ProjectId, target: &TargetTable) -> Result<Option<Ingestion>, RepoError>;
    /// Ordered by target.
    async fn list_ingestions(&self, project: &ProjectId) -> Result<Vec<Ingestion>, RepoError>;
    async fn delete_ingestion(&self, project: &ProjectId, target: &TargetTable) -> Result<bool, RepoError>;

    /// Inserts or replaces what is known of an analysis's last run.
    async fn put_analysis_state(&self, state: &AnalysisState) -> Result<(), RepoError>;
    /// Ordered by id.
    async fn list_analysis_states(&self, project: &ProjectId) -> Result<Vec<AnalysisState>, RepoError>;

    /// Inserts or replaces a board.
    async fn put_board(&self, board: &Board) -> Result<(), RepoError>;
    /// Ordered by position, then creation.
    async fn list_boards(&self, project: &ProjectId) -> Result<Vec<Board>, RepoError>;
    /// Removes the board and its items.
    async fn delete_board(&self, project: &ProjectId, id: &str) -> Result<bool, RepoError>;
    async fn put_item(&self, item: &BoardItem) -> Result<(), RepoError>;
    /// A board's items, or every project's when `board` is `None` (the refresh scheduler).
    async fn list_items(&self, project: Option<ProjectId>, board: Option<String>) -> Result<Vec<BoardItem>, RepoError>;
    async fn delete_item(&self, project: &ProjectId, id: &str) -> Result<bool, RepoError>;

    /// Inserts or replaces a conversation.
    async fn put_conversation(&self, conversation: &Conversation) -> Result<(), RepoError>;
    async fn get_conversation(
        &self,
        project: &ProjectId,
        id: &ConversationId,
    ) -> Result<Option<Conversation>, RepoError>;
    /// Most recently updated first.
    async fn list_conversations(&self, project: &ProjectId) -> Result<Vec<Conversation>, RepoError>;
    /// Removes the conversation and its messages.
    async fn delete_conversation(&self, project: &ProjectId, id: &ConversationId) -> Result<bool, RepoError>;
    /// Inserts or replaces a message.
    async fn put_message(&self, message: &ConversationMessage) -> Result<(), RepoError>;
    /// Oldest first.
    async fn list_messages(
        &self,
        project: &ProjectId,
        conversation: &ConversationId,
    ) -> Result<Vec<ConversationMessage>, RepoError>;
    /// Keeps a run's events beyond the server's memory (agent turns); an event already stored stays.
    async fn put_run_events(&self, run: &RunId, events: &[RunEvent]) -> Result<(), RepoError>;
    /// In order; empty when none were stored.
    async fn list_run_events(&self, run: &RunId) -> Result<Vec<RunEvent>, RepoError>;

    /// Conflict when the project has a job of that name.
    async fn insert_job(&self, job: &JobDefinition) -> Result<(), RepoError>;
    /// Replaces the stored job; false when there is none.
    async fn update_job(&self, job: &JobDefinition) -> Result<bool, RepoError>;
    async fn get_job(&self, project: &ProjectId, name: &Identifier) -> Result<Option<JobDefinition>, RepoError>;
    /// Ordered by project, then name; every project's when `project` is `None` (the scheduler).
    async fn list_jobs(&self, project: Option<ProjectId>) -> Result<Vec<JobDefinition>, RepoError>;
    async fn delete_job(&self, project: &ProjectId, name: &Identifier) -> Result<bool, RepoError>;
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunFilter {
    pub project: ProjectId,
    pub kind: Option<RunKind>,
    pub status: Option<RunStatus>,
    /// Only runs whose input is exactly this (an ingest's target table).
    pub input: Option<String>,
    pub limit: u32,
    pub offset: u64,
}
