//! The store: the `MetadataStore` port on one pool, each method one repository call.

use std::path::Path;

use async_trait::async_trait;
use pluto_duck_application::ports::{MetadataStore, RepoError, RunFilter};
use pluto_duck_domain::{
    AnalysisState, Board, BoardItem, CachedTable, Conversation, ConversationId, ConversationMessage, Identifier,
    Ingestion, JobDefinition, Project, ProjectId, Run, RunEvent, RunId, Source, TargetTable,
};

use crate::dialect::Db;
use crate::migrations;
use crate::repos::{analysis_state, boards, catalog, conversations, jobs, projects, runs, sources};

/// `MetadataStore` on sqlx, over SQLite or PostgreSQL: the same statements, repositories and migrations.
pub struct SqlxMetadataStore {
    db: Db,
}

/// The local profile's store: [`SqlxMetadataStore::open`] on a SQLite file.
pub type SqliteMetadataStore = SqlxMetadataStore;
/// The hybrid profile's store: [`SqlxMetadataStore::connect`] to PostgreSQL.
pub type PgMetadataStore = SqlxMetadataStore;

impl SqlxMetadataStore {
    /// Opens (creating) a SQLite file and applies pending migrations. Each migration runs in a transaction, so
    /// a failed one leaves the previous schema and data intact.
    pub async fn open(path: &Path) -> Result<Self, RepoError> {
        Self::migrated(Db::open_sqlite(path).await?).await
    }

    /// Connects to PostgreSQL and applies pending migrations (each in a transaction; PostgreSQL DDL is
    /// transactional). The URL carries a password: it is never logged or put in an error.
    pub async fn connect(url: &str) -> Result<Self, RepoError> {
        Self::migrated(Db::connect_postgres(url).await?).await
    }

    /// The hybrid profile's secret store on this store's PostgreSQL pool; `None` on SQLite (the local profile
    /// keeps secrets in the OS keyring or its encrypted file).
    pub fn secret_store(&self, key: &crate::MasterKey) -> Option<crate::PgSecretStore> {
        match &self.db {
            Db::Postgres(pool) => Some(crate::PgSecretStore::new(pool.clone(), key)),
            Db::Sqlite { .. } => None,
        }
    }

    async fn migrated(db: Db) -> Result<Self, RepoError> {
        migrations::run(&db).await?;
        Ok(Self { db })
    }
}

/// The hybrid profile's analysis definitions live beside the rest of the control plane.
#[async_trait]
impl pluto_duck_application::ports::AnalysisStore for SqlxMetadataStore {
    async fn list(
        &self,
        project: &ProjectId,
    ) -> Result<Vec<pluto_duck_domain::Analysis>, pluto_duck_application::ports::AnalysisStoreError> {
        crate::repos::analyses::list(&self.db, project).await
    }

    async fn get(
        &self,
        project: &ProjectId,
        id: &Identifier,
    ) -> Result<Option<pluto_duck_domain::Analysis>, pluto_duck_application::ports::AnalysisStoreError> {
        crate::repos::analyses::get(&self.db, project, id).await
    }

    async fn put(
        &self,
        analysis: &pluto_duck_domain::Analysis,
    ) -> Result<(), pluto_duck_application::ports::AnalysisStoreError> {
        crate::repos::analyses::put(&self.db, analysis).await
    }

    async fn delete(
        &self,
        project: &ProjectId,
        id: &Identifier,
    ) -> Result<bool, pluto_duck_application::ports::AnalysisStoreError> {
        crate::repos::analyses::delete(&self.db, project, id).await
    }
}

#[async_trait]
impl MetadataStore for SqlxMetadataStore {
    async fn ping(&self) -> Result<(), RepoError> {
        self.db.ping().await
    }

    async fn ensure_project(&self, project: &Project) -> Result<Project, RepoError> {
        projects::ensure(&self.db, project).await
    }

    async fn create_project(&self, project: &Project) -> Result<(), RepoError> {
        projects::create(&self.db, project).await
    }

    async fn get_project(&self, id: &ProjectId) -> Result<Option<Project>, RepoError> {
        projects::get(&self.db, id).await
    }

    async fn list_projects(&self) -> Result<Vec<Project>, RepoError> {
        projects::list(&self.db).await
    }

    async fn rename_project(&self, id: &ProjectId, name: &str) -> Result<bool, RepoError> {
        projects::rename(&self.db, id, name).await
    }

    async fn clear_project(&self, id: &ProjectId, keep_project: bool) -> Result<(), RepoError> {
        projects::clear(&self.db, id, keep_project).await
    }

    async fn get_setting(&self, key: &str) -> Result<Option<String>, RepoError> {
        projects::get_setting(&self.db, key).await
    }

    async fn put_setting(&self, key: &str, value: &str) -> Result<(), RepoError> {
        projects::put_setting(&self.db, key, value).await
    }

    async fn try_lease(&self, name: &str, holder: &str, ttl_secs: u64) -> Result<bool, RepoError> {
        projects::try_lease(&self.db, name, holder, ttl_secs).await
    }

    async fn insert_run(&self, run: &Run) -> Result<(), RepoError> {
        runs::insert(&self.db, run).await
    }

    async fn update_run(&self, run: &Run) -> Result<(), RepoError> {
        runs::update(&self.db, run).await
    }

    async fn get_run(&self, project: &ProjectId, id: &RunId) -> Result<Option<Run>, RepoError> {
        runs::get(&self.db, project, id).await
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>, RepoError> {
        runs::list(&self.db, filter).await
    }

    async fn fail_unfinished_runs(&self, message: &str) -> Result<u64, RepoError> {
        runs::fail_unfinished(&self.db, message).await
    }

    async fn insert_source(&self, source: &Source) -> Result<(), RepoError> {
        sources::insert(&self.db, source).await
    }

    async fn update_source_description(
        &self,
        project: &ProjectId,
        name: &Identifier,
        description: &str,
    ) -> Result<bool, RepoError> {
        sources::update_description(&self.db, project, name, description).await
    }

    async fn delete_source(&self, project: &ProjectId, name: &Identifier) -> Result<bool, RepoError> {
        sources::delete(&self.db, project, name).await
    }

    async fn get_source(&self, project: &ProjectId, name: &Identifier) -> Result<Option<Source>, RepoError> {
        sources::get(&self.db, project, name).await
    }

    async fn list_sources(&self, project: Option<ProjectId>) -> Result<Vec<Source>, RepoError> {
        sources::list(&self.db, project.as_ref()).await
    }

    async fn put_cache(&self, cache: &CachedTable) -> Result<(), RepoError> {
        catalog::put_cache(&self.db, cache).await
    }

    async fn get_cache(&self, project: &ProjectId, name: &Identifier) -> Result<Option<CachedTable>, RepoError> {
        catalog::get_cache(&self.db, project, name).await
    }

    async fn list_caches(&self, project: &ProjectId) -> Result<Vec<CachedTable>, RepoError> {
        catalog::list_caches(&self.db, project).await
    }

    async fn delete_cache(&self, project: &ProjectId, name: &Identifier) -> Result<bool, RepoError> {
        catalog::delete_cache(&self.db, project, name).await
    }

    async fn put_ingestion(&self, ingestion: &Ingestion) -> Result<(), RepoError> {
        catalog::put_ingestion(&self.db, ingestion).await
    }

    async fn get_ingestion(&self, project: &ProjectId, target: &TargetTable) -> Result<Option<Ingestion>, RepoError> {
        catalog::get_ingestion(&self.db, project, target).await
    }

    async fn list_ingestions(&self, project: &ProjectId) -> Result<Vec<Ingestion>, RepoError> {
        catalog::list_ingestions(&self.db, project).await
    }

    async fn delete_ingestion(&self, project: &ProjectId, target: &TargetTable) -> Result<bool, RepoError> {
        catalog::delete_ingestion(&self.db, project, target).await
    }

    async fn put_analysis_state(&self, state: &AnalysisState) -> Result<(), RepoError> {
        analysis_state::put(&self.db, state).await
    }

    async fn list_analysis_states(&self, project: &ProjectId) -> Result<Vec<AnalysisState>, RepoError> {
        analysis_state::list(&self.db, project).await
    }

    async fn put_board(&self, board: &Board) -> Result<(), RepoError> {
        boards::put_board(&self.db, board).await
    }

    async fn list_boards(&self, project: &ProjectId) -> Result<Vec<Board>, RepoError> {
        boards::list_boards(&self.db, project).await
    }

    async fn delete_board(&self, project: &ProjectId, id: &str) -> Result<bool, RepoError> {
        boards::delete_board(&self.db, project, id).await
    }

    async fn put_item(&self, item: &BoardItem) -> Result<(), RepoError> {
        boards::put_item(&self.db, item).await
    }

    async fn list_items(&self, project: Option<ProjectId>, board: Option<String>) -> Result<Vec<BoardItem>, RepoError> {
        boards::list_items(&self.db, project.as_ref(), board.as_deref()).await
    }

    async fn delete_item(&self, project: &ProjectId, id: &str) -> Result<bool, RepoError> {
        boards::delete_item(&self.db, project, id).await
    }

    async fn put_conversation(&self, conversation: &Conversation) -> Result<(), RepoError> {
        conversations::put_conversation(&self.db, conversation).await
    }

    async fn get_conversation(
        &self,
        project: &ProjectId,
        id: &ConversationId,
    ) -> Result<Option<Conversation>, RepoError> {
        conversations::get_conversation(&self.db, project, id).await
    }

    async fn list_conversations(&self, project: &ProjectId) -> Result<Vec<Conversation>, RepoError> {
        conversations::list_conversations(&self.db, project).await
    }

    async fn delete_conversation(&self, project: &ProjectId, id: &ConversationId) -> Result<bool, RepoError> {
        conversations::delete_conversation(&self.db, project, id).await
    }

    async fn put_message(&self, message: &ConversationMessage) -> Result<(), RepoError> {
        conversations::put_message(&self.db, message).await
    }

    async fn list_messages(
        &self,
        project: &ProjectId,
        conversation: &ConversationId,
    ) -> Result<Vec<ConversationMessage>, RepoError> {
        conversations::list_messages(&self.db, project, conversation).await
    }

    async fn put_run_events(&self, run: &RunId, events: &[RunEvent]) -> Result<(), RepoError> {
        conversations::put_events(&self.db, run, events).await
    }

    async fn list_run_events(&self, run: &RunId) -> Result<Vec<RunEvent>, RepoError> {
        conversations::list_events(&self.db, run).await
    }

    async fn insert_job(&self, job: &JobDefinition) -> Result<(), RepoError> {
        jobs::insert(&self.db, job).await
    }

    async fn update_job(&self, job: &JobDefinition) -> Result<bool, RepoError> {
        jobs::update(&self.db, job).await
    }

    async fn get_job(&self, project: &ProjectId, name: &Identifier) -> Result<Option<JobDefinition>, RepoError> {
        jobs::get(&self.db, project, name).await
    }

    async fn list_jobs(&self, project: Option<ProjectId>) -> Result<Vec<JobDefinition>, RepoError> {
        jobs::list(&self.db, project).await
    }

    async fn delete_job(&self, project: &ProjectId, name: &Identifier) -> Result<bool, RepoError> {
        jobs::delete(&self.db, project, name).await
    }
}
