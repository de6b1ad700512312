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

/// The largest settings object a project keeps, as JSON text.
pub const MAX_SETTINGS_BYTES: usize = 64 * 1024;

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

    /// Renames and/or replaces the settings (JSON text of an object, see [`Self::put_settings`]).
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

    /// The project's settings (`{}` when none were saved).
    pub async fn settings(&self, id: &str) -> Result<serde_json::Value, AppError> {
        let project = self.project(id).await?;
        let text = self.metadata.get_setting(&settings_key(&project.id)).await?;
        Ok(text
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| serde_json::json!({})))
    }

    /// Replaces the project's settings: a JSON object the client owns, at most [`MAX_SETTINGS_BYTES`] as text.
    pub async fn put_settings(&self, id: &str, settings: serde_json::Value) -> Result<serde_json::Value, AppError> {
        if !settings.is_object() {
            return Err(AppError::Invalid("settings must be a JSON object".into()));
        }
        let text = settings.to_string();
        if text.len() > MAX_SETTINGS_BYTES {
            return Err(AppError::Invalid("settings must be at most 64 KiB".into()));
        }
        self.update(id, None, Some(text)).await?;
        Ok(settings)
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::Utc;

    use super::*;
    use crate::ports::{
        MockAnalysisStore, MockBlobStore, MockMetadataStore, MockResultStore, MockSecretStore, MockSourceCatalog,
        MockWarehouse,
    };
    use crate::services::{Jobs, PathPolicy, QueryLimits, QueryService, RunHub};
    use crate::ErrorKind;

    /// A project store with one project, `p`, and settings kept in a map.
    fn data() -> ProjectData {
        let settings: Arc<Mutex<std::collections::HashMap<String, String>>> = Arc::default();
        let mut md = MockMetadataStore::new();
        md.expect_get_project().returning(|id| {
            Ok((id.as_str() == "p").then(|| Project {
                id: id.clone(),
                name: "P".into(),
                created_at: Utc::now(),
            }))
        });
        let s = settings.clone();
        md.expect_get_setting()
            .returning(move |k| Ok(s.lock().unwrap().get(k).cloned()));
        let s = settings;
        md.expect_put_setting().returning(move |k, v| {
            s.lock().unwrap().insert(k.to_owned(), v.to_owned());
            Ok(())
        });
        let md: Arc<dyn MetadataStore> = Arc::new(md);
        let wh: Arc<dyn Warehouse> = Arc::new(MockWarehouse::new());
        let jobs = Jobs::new(md.clone(), Arc::new(RunHub::new(10)));
        let changes = Arc::new(ChangeLog::new(md.clone()));
        let queries = Arc::new(QueryService::new(
            wh.clone(),
            Arc::new(MockResultStore::new()),
            jobs,
            changes.clone(),
            QueryLimits::default(),
        ));
        let sources = Arc::new(SourceService::new(
            Arc::new(MockSourceCatalog::new()),
            md.clone(),
            Arc::new(MockSecretStore::new()),
            queries,
            PathPolicy::default(),
        ));
        ProjectData::new(
            md,
            wh,
            sources,
            Arc::new(AnalysisService::new(Arc::new(MockAnalysisStore::new()))),
            Arc::new(MockResultStore::new()),
            Arc::new(MockBlobStore::new()),
            changes,
        )
    }

    #[tokio::test]
    async fn settings_are_an_object_of_bounded_size_and_empty_until_set() {
        let d = data();
        assert_eq!(d.settings("p").await.unwrap(), serde_json::json!({}));
        let s = serde_json::json!({"theme": "dark", "n": 3});
        assert_eq!(d.put_settings("p", s.clone()).await.unwrap(), s);
        assert_eq!(d.settings("p").await.unwrap(), s);
        for bad in [serde_json::json!([1]), serde_json::json!("x"), serde_json::json!(null)] {
            let err = d.put_settings("p", bad).await.unwrap_err();
            assert_eq!(err.to_string(), "settings must be a JSON object");
        }
        let big = serde_json::json!({ "k": "x".repeat(MAX_SETTINGS_BYTES) });
        let err = d.put_settings("p", big).await.unwrap_err();
        assert_eq!(
            (err.kind(), err.to_string().as_str()),
            (ErrorKind::Invalid, "settings must be at most 64 KiB")
        );
        assert_eq!(d.settings("p").await.unwrap(), s, "a refused object changes nothing");
        let err = d.put_settings("nope", serde_json::json!({})).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
}
