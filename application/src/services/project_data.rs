//! The lifecycle of a project's data: settings, rename, reset (everything but the project itself) and delete, the
//! last two guarded by a typed confirmation phrase. Removal goes through each owner: sources are detached (their
//! secrets deleted), analysis files removed, warehouse objects dropped, stored results deleted, metadata cleared in
//! one transaction.

use std::sync::Arc;

use pluto_duck_domain::{Project, ProjectId, RunKind};
use tracing::{info, instrument, warn};

use super::analyses::AnalysisService;
use super::changes::ChangeLog;
use super::sources::SourceService;
use crate::ports::{BlobStore, MetadataStore, ResultStore, RunFilter, Warehouse};
use crate::AppError;

/// What a reset or delete removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    pub sources: usize,
    pub analyses: usize,
    /// The project's database (with every table, view and cached copy in it) and its files.
    pub warehouse_objects: usize,
    pub results: usize,
}

pub struct ProjectData {
    metadata: Arc<dyn MetadataStore>,
    warehouse: Arc<dyn Warehouse>,
    sources: Arc<SourceService>,
    analyses: Arc<AnalysisService>,
    results: Arc<dyn ResultStore>,
    blobs: Arc<dyn BlobStore>,
    changes: Arc<ChangeLog>,
}

fn settings_key(id: &ProjectId) -> String {
    format!("project.{id}.settings")
}

impl ProjectData {
    pub fn new(
        metadata: Arc<dyn MetadataStore>,
        warehouse: Arc<dyn Warehouse>,
        sources: Arc<SourceService>,
        analyses: Arc<AnalysisService>,
        results: Arc<dyn ResultStore>,
        blobs: Arc<dyn BlobStore>,
        changes: Arc<ChangeLog>,
    ) -> Self {
        Self {
            metadata,
            warehouse,
            sources,
            analyses,
            results,
            blobs,
            changes,
        }
    }

    async fn project(&self, id: &str) -> Result<Project, AppError> {
        let id = ProjectId::parse(id)?;
        self.metadata.get_project(&id).await?.ok_or_else(|| AppError::NotFound {
            what: "project",
            id: id.to_string(),
        })
    }

    /// Renames and/or replaces the settings (a JSON object the client owns, checked by the caller).
    pub async fn update(&self, id: &str, name: Option<String>, settings: Option<String>) -> Result<Project, AppError> {
        let project = self.project(id).await?;
        if let Some(name) = name {
            let name = name.trim();
            if name.is_empty() || name.len() > 200 {
                return Err(AppError::Invalid("project name must be 1 to 200 characters".into()));
            }
            self.metadata.rename_project(&project.id, name).await?;
        }
        if let Some(settings) = settings {
            self.metadata.put_setting(&settings_key(&project.id), &settings).await?;
        }
        self.project(id).await
    }

    /// The project's settings as JSON text (`{}` when none were saved).
    pub async fn settings(&self, id: &str) -> Result<String, AppError> {
        let project = self.project(id).await?;
        Ok(self
            .metadata
            .get_setting(&settings_key(&project.id))
            .await?
            .unwrap_or_else(|| "{}".into()))
    }

    fn check_phrase(action: &str, project: &ProjectId, given: &str) -> Result<(), AppError> {
        let expected = format!("{action} {project}");
        if given.trim() == expected {
            Ok(())
        } else {
            Err(AppError::Invalid(format!(
                "to {action} project {project} and its data, confirm with the phrase \"{expected}\""
            )))
        }
    }

    /// Removes the project's data and keeps the project (its name and settings stay).
    #[instrument(skip_all, fields(project = %id))]
    pub async fn reset(&self, id: &str, confirm: &str) -> Result<Removed, AppError> {
        let project = self.project(id).await?;
        Self::check_phrase("reset", &project.id, confirm)?;
        let settings = self.metadata.get_setting(&settings_key(&project.id)).await?;
        let removed = self.remove_data(&project.id, true).await?;
        if let Some(s) = settings {
            self.metadata.put_setting(&settings_key(&project.id), &s).await?;
        }
        info!(?removed, "project reset");
        Ok(removed)
    }

    /// Removes the project and everything in it. The default project cannot be deleted (reset it instead).
    #[instrument(skip_all, fields(project = %id))]
    pub async fn delete(&self, id: &str, confirm: &str) -> Result<Removed, AppError> {
        let project = self.project(id).await?;
        if project.id.as_str() == ProjectId::DEFAULT {
            return Err(AppError::Conflict(
                "the default project cannot be deleted; reset it to remove its data".into(),
            ));
        }
        Self::check_phrase("delete", &project.id, confirm)?;
        let removed = self.remove_data(&project.id, false).await?;
        info!(?removed, "project deleted");
        Ok(removed)
    }

    async fn remove_data(&self, project: &ProjectId, keep_project: bool) -> Result<Removed, AppError> {
        let mut removed = Removed::default();
        // Sources first: detaching also deletes their secrets.
        for source in self.sources.list(project).await? {
            self.sources.detach(project, source.name.as_str()).await?;
            removed.sources += 1;
        }
        for analysis in self.analyses.list(project, None).await? {
            self.analyses.remove_file(project, &analysis.id).await?;
            removed.analyses += 1;
        }
        // The project's database holds everything of it and nothing else: dropping it is the whole reset.
        self.warehouse.drop_project(project).await?;
        removed.warehouse_objects += 1;
        self.changes.clear(project).await;
        // Stored results of the project's queries, page by page.
        loop {
            let runs = self
                .metadata
                .list_runs(&RunFilter {
                    project: project.clone(),
                    kind: Some(RunKind::Query),
                    status: None,
                    input: None,
                    limit: 1000,
                    offset: removed.results as u64,
                })
                .await?;
            if runs.is_empty() {
                break;
            }
            for run in &runs {
                if let Err(e) = self.results.delete(&run.id).await {
                    warn!(run = %run.id, error = %e, "result not deleted");
                }
                removed.results += 1;
            }
        }
        // Uploaded files (board images).
        self.blobs.delete_prefix(project.as_str()).await?;
        self.metadata.clear_project(project, keep_project).await?;
        Ok(removed)
    }
}
