//! Sources: validated, their passwords in the secret store, attached in the warehouse, described in the
//! metadata store, re-attached at start-up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use pluto_duck_domain::{Column, Identifier, LocationScheme, ProjectId, Source, SourceConnection, SourceState};
use secrecy::SecretString;
use tracing::{instrument, warn};

use crate::ports::{MetadataStore, ScanInfo, SecretStore, SourceCatalog, TableInfo};
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

/// The secret-store name of the source's password or S3 secret key, if it has one.
fn stored_secret(source: &Source) -> Option<String> {
    match &source.connection {
        SourceConnection::Server { password_secret, .. } => password_secret.clone(),
        SourceConnection::Located(l) => l.s3.as_ref().and_then(|s| s.secret_key_secret.clone()),
        SourceConnection::File { .. } => None,
    }
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

    pub(crate) fn build(&self, project: &ProjectId, new: &NewSource) -> Result<Source, AppError> {
        let name = Identifier::parse(new.name.clone())?;
        let mut connection = new.connection.clone();
        let secret_name = new
            .password
            .as_ref()
            .map(|_| Source::password_secret_name(project, &name));
        match &mut connection {
            SourceConnection::Server { password_secret, .. } => *password_secret = secret_name,
            SourceConnection::Located(location) if location.scheme() == LocationScheme::S3 => {
                location.s3.get_or_insert_with(Default::default).secret_key_secret = secret_name;
            }
            _ => {}
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
        match &source.connection {
            SourceConnection::File { path } => self.check_path(path)?,
            SourceConnection::Located(l) if l.scheme() == LocationScheme::Local => self.check_path(&l.base_path())?,
            _ => {}
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
            if let (Some(password), Some(secret)) = (new.password, stored_secret(&source)) {
                self.secrets.put(&secret, password).await?;
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
        match stored_secret(source) {
            Some(secret) => Ok(self.secrets.get(&secret).await?),
            None => Ok(None),
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
        if let Some(secret) = stored_secret(&source) {
            self.secrets.delete(&secret).await?;
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

    /// How the warehouse would read `sql` (one read statement): each scan with its pushed-down projections and
    /// filters, the planner's row estimate and, for PostgreSQL and MySQL, the query the remote receives.
    pub async fn explain(&self, project: &ProjectId, name: &str, sql: &str) -> Result<Vec<ScanInfo>, AppError> {
        self.attached(project, name).await?;
        let statements = pluto_duck_domain::split_statements(sql)?;
        match statements.as_slice() {
            [s] if s.is_read => Ok(self.catalog.explain(&s.text).await?),
            _ => Err(AppError::Invalid("explain takes one read statement (a SELECT)".into())),
        }
    }

    /// The planner's estimate of a table's rows: PostgreSQL's statistics, Parquet metadata, DuckDB's counts.
    pub async fn estimate_rows(
        &self,
        project: &ProjectId,
        name: &str,
        schema: &str,
        table: &str,
    ) -> Result<Option<u64>, AppError> {
        let sql = self.preview_sql(project, name, schema, table, u64::MAX).await?;
        let sql = sql.trim_end_matches(&format!(" LIMIT {}", u64::MAX)).to_owned();
        Ok(self.catalog.explain(&sql).await?.first().and_then(|s| s.estimated_rows))
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
