use std::sync::Arc;

use pluto_duck_domain::{Project, ProjectId};
use tracing::instrument;

use crate::ports::MetadataStore;
use crate::AppError;

pub struct ProjectService {
    metadata: Arc<dyn MetadataStore>,
}

impl ProjectService {
    pub fn new(metadata: Arc<dyn MetadataStore>) -> Self {
        Self { metadata }
    }

    /// The default project always exists; called at start-up.
    #[instrument(skip_all)]
    pub async fn ensure_default(&self) -> Result<Project, AppError> {
        Ok(self
            .metadata
            .ensure_project(&Project::default_project(chrono::Utc::now()))
            .await?)
    }

    #[instrument(skip_all, fields(project_id = %id))]
    pub async fn create(&self, id: &str, name: Option<String>) -> Result<Project, AppError> {
        let id = ProjectId::parse(id)?;
        let name = name.map(|n| n.trim().to_owned()).unwrap_or_else(|| id.to_string());
        if name.is_empty() || name.chars().count() > 200 {
            return Err(AppError::Invalid("project name must be 1 to 200 characters".into()));
        }
        let project = Project {
            id,
            name,
            created_at: chrono::Utc::now(),
        };
        self.metadata.create_project(&project).await?;
        Ok(project)
    }

    pub async fn list(&self) -> Result<Vec<Project>, AppError> {
        Ok(self.metadata.list_projects().await?)
    }

    #[instrument(skip_all, fields(project_id = %id))]
    pub async fn get(&self, id: &str) -> Result<Project, AppError> {
        let id = ProjectId::parse(id)?;
        self.metadata.get_project(&id).await?.ok_or_else(|| AppError::NotFound {
            what: "project",
            id: id.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::MockMetadataStore;
    use crate::ErrorKind;

    #[tokio::test]
    async fn get_rejects_invalid_ids_without_touching_the_store() {
        let md = MockMetadataStore::new(); // any call would panic: no expectations set
        let err = ProjectService::new(Arc::new(md)).get("no-such id").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
    }

    #[tokio::test]
    async fn get_maps_absent_to_not_found() {
        let mut md = MockMetadataStore::new();
        md.expect_get_project().returning(|_| Ok(None));
        let err = ProjectService::new(Arc::new(md)).get("nope").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(err.to_string(), "project \"nope\" not found");
    }
}
