//! Sources: validated, their passwords in the secret store, attached in the warehouse, described in the
//! metadata store, re-attached at start-up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use pluto_duck_domain::{Column, Identifier, ProjectId, Source, SourceConnection, SourceState};
use secrecy::SecretString;
use tracing::{instrument, warn};

use crate::ports::{MetadataStore, SecretStore, SourceCatalog, TableInfo};
use crate::AppError;

/// What a client submits to attach a source.
#[derive(Debug, Clone)]
pub struct NewSource {
    pub name: String,
    pub kind: pluto_duck_domain::SourceKind,
    pub description: String,
    pub connection: SourceConnection,
    pub password: Option<SecretString>,
    pub read_only: bool,
}

pub struct SourceService {
    catalog: Arc<dyn SourceCatalog>,
    /// File sources must resolve (symlinks and `..` followed) inside one of these.
    allowed_roots: Vec<std::path::PathBuf>,
    metadata: Arc<dyn MetadataStore>,
    secrets: Arc<dyn SecretStore>,
    /// Attach state of each source in this process, by alias.
    states: Mutex<HashMap<String, SourceState>>,
}

impl SourceService {
    pub fn new(
        catalog: Arc<dyn SourceCatalog>,
        metadata: Arc<dyn MetadataStore>,
        secrets: Arc<dyn SecretStore>,
        allowed_roots: Vec<std::path::PathBuf>,
    ) -> Self {
        Self {
            catalog,
            allowed_roots: allowed_roots
                .iter()
                .filter_map(|r| std::fs::canonicalize(r).ok())
                .collect(),
            metadata,
            secrets,
            states: Mutex::new(HashMap::new()),
        }
    }

    fn set_state(&self, alias: String, state: Option<SourceState>) {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        match state {
            Some(s) => states.insert(alias, s),
            None => states.remove(&alias),
        };
    }

    pub fn state(&self, source: &Source) -> SourceState {
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&source.catalog_alias())
            .cloned()
            .unwrap_or_else(|| SourceState::Failed("not attached".into()))
    }

    fn build(&self, project: &ProjectId, new: &NewSource) -> Result<Source, AppError> {
        let name = Identifier::parse(new.name.clone())?;
        let mut connection = new.connection.clone();
        if let SourceConnection::Server { password_secret, .. } = &mut connection {
            *password_secret = new
                .password
                .as_ref()
                .map(|_| Source::password_secret_name(project, &name));
        }
        let source = Source {
            name,
            project: project.clone(),
            kind: new.kind,
            description: new.description.clone(),
            connection,
            read_only: new.read_only,
            created_at: Utc::now(),
        };
        source.validate()?;
        if let SourceConnection::File { path } = &source.connection {
            self.check_path(path)?;
        }
        Ok(source)
    }

    fn check_path(&self, path: &str) -> Result<(), AppError> {
        let resolved = std::fs::canonicalize(path)
            .map_err(|_| AppError::Invalid(format!("file {path} does not exist or cannot be read")))?;
        if self.allowed_roots.iter().any(|root| resolved.starts_with(root)) {
            Ok(())
        } else {
            Err(AppError::Invalid(format!(
                "file {path} is outside the allowed roots ({}); add its folder to sources.allowed_roots",
                self.allowed_roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }

    /// Attaches and records the source. Nothing is stored unless the attach works.
    #[instrument(skip_all, fields(project = %project, source = %new.name))]
    pub async fn attach(&self, project: &ProjectId, new: NewSource) -> Result<Source, AppError> {
        let source = self.build(project, &new)?;
        if self.metadata.get_source(project, &source.name).await?.is_some() {
            return Err(AppError::Conflict(format!("source {} already exists", source.name)));
        }
        self.catalog.attach(&source, new.password.clone()).await?;
        let stored = async {
            if let (
                Some(password),
                SourceConnection::Server {
                    password_secret: Some(secret),
                    ..
                },
            ) = (new.password, &source.connection)
            {
                self.secrets.put(secret, password).await?;
            }
            self.metadata.insert_source(&source).await?;
            Ok::<_, AppError>(())
        }
        .await;
        if let Err(e) = stored {
            // Leave nothing half-done behind.
            let _ = self.catalog.detach(&source.catalog_alias()).await;
            return Err(e);
        }
        self.set_state(source.catalog_alias(), Some(SourceState::Attached));
        Ok(source)
    }

    /// Tries a configuration without keeping anything.
    pub async fn test_new(&self, project: &ProjectId, new: NewSource) -> Result<(), AppError> {
        let source = self.build(project, &new)?;
        Ok(self.catalog.test(&source, new.password).await?)
    }

    /// Tries an attached source's stored configuration again.
    pub async fn test(&self, project: &ProjectId, name: &str) -> Result<(), AppError> {
        let source = self.get(project, name).await?;
        let password = self.password(&source).await?;
        Ok(self.catalog.test(&source, password).await?)
    }

    async fn password(&self, source: &Source) -> Result<Option<SecretString>, AppError> {
        match &source.connection {
            SourceConnection::Server {
                password_secret: Some(secret),
                ..
            } => Ok(self.secrets.get(secret).await?),
            _ => Ok(None),
        }
    }

    pub async fn get(&self, project: &ProjectId, name: &str) -> Result<Source, AppError> {
        let name = Identifier::parse(name)?;
        self.metadata
            .get_source(project, &name)
            .await?
            .ok_or_else(|| AppError::NotFound {
                what: "source",
                id: name.to_string(),
            })
    }

    pub async fn list(&self, project: &ProjectId) -> Result<Vec<Source>, AppError> {
        Ok(self.metadata.list_sources(Some(project.clone())).await?)
    }

    pub async fn describe(&self, project: &ProjectId, name: &str, description: &str) -> Result<Source, AppError> {
        let source = self.get(project, name).await?;
        self.metadata
            .update_source_description(project, &source.name, description)
            .await?;
        self.get(project, name).await
    }

    #[instrument(skip_all, fields(project = %project, source = %name))]
    pub async fn detach(&self, project: &ProjectId, name: &str) -> Result<(), AppError> {
        let source = self.get(project, name).await?;
        if let Err(e) = self.catalog.detach(&source.catalog_alias()).await {
            warn!(error = %e, "detach failed; removing the source anyway");
        }
        self.metadata.delete_source(project, &source.name).await?;
        if let SourceConnection::Server {
            password_secret: Some(secret),
            ..
        } = &source.connection
        {
            self.secrets.delete(secret).await?;
        }
        self.set_state(source.catalog_alias(), None);
        Ok(())
    }

    pub async fn schemas(&self, project: &ProjectId, name: &str) -> Result<Vec<String>, AppError> {
        let source = self.attached(project, name).await?;
        Ok(self.catalog.schemas(&source.catalog_alias()).await?)
    }

    pub async fn tables(
        &self,
        project: &ProjectId,
        name: &str,
        schema: Option<String>,
    ) -> Result<Vec<TableInfo>, AppError> {
        let source = self.attached(project, name).await?;
        Ok(self.catalog.tables(&source.catalog_alias(), schema).await?)
    }

    pub async fn columns(
        &self,
        project: &ProjectId,
        name: &str,
        schema: &str,
        table: &str,
    ) -> Result<Vec<Column>, AppError> {
        let source = self.attached(project, name).await?;
        let columns = self.catalog.columns(&source.catalog_alias(), schema, table).await?;
        if columns.is_empty() {
            return Err(AppError::NotFound {
                what: "table",
                id: format!("{name}.{schema}.{table}"),
            });
        }
        Ok(columns)
    }

    /// `SELECT * FROM "alias"."schema"."table" LIMIT n`, once the table is known to exist.
    pub async fn preview_sql(
        &self,
        project: &ProjectId,
        name: &str,
        schema: &str,
        table: &str,
        limit: u64,
    ) -> Result<String, AppError> {
        let source = self.attached(project, name).await?;
        self.columns(project, name, schema, table).await?;
        let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        Ok(format!(
            "SELECT * FROM {}.{}.{} LIMIT {limit}",
            q(&source.catalog_alias()),
            q(schema),
            q(table)
        ))
    }

    /// A source whose attach failed answers with the reason instead of an empty catalog.
    pub async fn attached(&self, project: &ProjectId, name: &str) -> Result<Source, AppError> {
        let source = self.get(project, name).await?;
        match self.state(&source) {
            SourceState::Attached => Ok(source),
            SourceState::Failed(reason) => Err(AppError::Unavailable(format!(
                "source {} is not attached: {reason}",
                source.name
            ))),
        }
    }

    /// Start-up: every stored source is attached again with its stored password. A failure is recorded on the
    /// source and the server starts anyway.
    pub async fn reattach_all(&self) -> Result<(usize, usize), AppError> {
        let (mut ok, mut failed) = (0, 0);
        for source in self.metadata.list_sources(None).await? {
            let result = match self.password(&source).await {
                Ok(password) => self.catalog.attach(&source, password).await.map_err(AppError::from),
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {
                    ok += 1;
                    self.set_state(source.catalog_alias(), Some(SourceState::Attached));
                }
                Err(e) => {
                    failed += 1;
                    warn!(source = %source.name, project = %source.project, error = %e, "source not re-attached");
                    self.set_state(source.catalog_alias(), Some(SourceState::Failed(e.to_string())));
                }
            }
        }
        Ok((ok, failed))
    }
}
