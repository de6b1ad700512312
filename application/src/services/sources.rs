//! Sources: validated (paths inside the allowed roots and outside Pluto-Duck's own folders, files that are the
//! databases they claim to be), their passwords in the secret store, attached in their project's sandbox,
//! described in the metadata store, declared to the sandboxes again at start-up.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use pluto_duck_domain::{
    check_user_sql, CachedTable, Column, Identifier, LocationScheme, ProjectId, Source, SourceConnection, SourceState,
};
use secrecy::SecretString;
use tracing::{instrument, warn};

use super::query::QueryService;
use crate::ports::{MetadataStore, ResultPage, ScanInfo, SecretStore, SourceCatalog, SourceRef, TableInfo};
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

/// A source as a client looks at it: its state, its tables when attached, and its local copies.
#[derive(Debug, Clone)]
pub struct SourceDetail {
    pub source: Source,
    pub state: SourceState,
    pub tables: Vec<TableInfo>,
    pub cached: Vec<CachedTable>,
}

/// The secret-store name of the source's password or S3 secret key, if it has one.
fn stored_secret(source: &Source) -> Option<String> {
    match &source.connection {
        SourceConnection::Server { password_secret, .. } => password_secret.clone(),
        SourceConnection::Located(l) => l.s3.as_ref().and_then(|s| s.secret_key_secret.clone()),
        SourceConnection::File { .. } => None,
    }
}

/// Where local files may come from.
#[derive(Debug, Clone, Default)]
pub struct PathPolicy {
    /// Files must resolve (symlinks and `..` followed) inside one of these.
    pub allowed_roots: Vec<PathBuf>,
    /// Never inside these, even within an allowed root: the data directory (other projects' databases, the
    /// metadata, the encrypted secrets) and the configuration directory (the secret key).
    pub forbidden: Vec<PathBuf>,
    /// The data directory, whose `projects/<id>/files` a project may read from.
    pub data_dir: Option<PathBuf>,
    /// The local dataset buckets' folder: objects registered or ingested from a bucket are read there.
    pub datasets_root: Option<PathBuf>,
}

pub struct SourceService {
    catalog: Arc<dyn SourceCatalog>,
    metadata: Arc<dyn MetadataStore>,
    secrets: Arc<dyn SecretStore>,
    queries: Arc<QueryService>,
    paths: PathPolicy,
}

fn canonical_all(paths: &[PathBuf]) -> Vec<PathBuf> {
    paths
        .iter()
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
        .collect()
}

impl SourceService {
    pub fn new(
        catalog: Arc<dyn SourceCatalog>,
        metadata: Arc<dyn MetadataStore>,
        secrets: Arc<dyn SecretStore>,
        queries: Arc<QueryService>,
        paths: PathPolicy,
    ) -> Self {
        let paths = PathPolicy {
            allowed_roots: canonical_all(&paths.allowed_roots),
            forbidden: canonical_all(&paths.forbidden),
            data_dir: paths.data_dir.map(|d| std::fs::canonicalize(&d).unwrap_or(d)),
            datasets_root: paths.datasets_root,
        };
        Self {
            catalog,
            metadata,
            secrets,
            queries,
            paths,
        }
    }

    /// Validates a new source without touching anything (paths are resolved on the blocking pool).
    pub(crate) async fn build(&self, project: &ProjectId, new: &NewSource) -> Result<Source, AppError> {
        let name = Identifier::canonical(new.name.clone())?;
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
            SourceConnection::File { path } => self.check_path(project, path).await?,
            SourceConnection::Located(l) if l.scheme() == LocationScheme::Local => {
                self.check_path(project, &l.base_path()).await?
            }
            _ => {}
        }
        Ok(source)
    }

    async fn check_path(&self, project: &ProjectId, path: &str) -> Result<(), AppError> {
        let (policy, project, path) = (self.paths.clone(), project.clone(), path.to_owned());
        tokio::task::spawn_blocking(move || check_path(&policy, &project, &path))
            .await
            .map_err(|e| AppError::Invalid(format!("cannot check the path: {e}")))?
    }

    /// Attaches and records the source, and tells its state. Nothing is stored unless the attach works.
    #[instrument(skip_all, fields(project = %project, source = %new.name))]
    pub async fn attach(&self, project: &ProjectId, new: NewSource) -> Result<(Source, SourceState), AppError> {
        let source = self.build(project, &new).await?;
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
            let _ = self.catalog.detach(project, &source.name).await;
            return Err(e);
        }
        let state = self.state(&source).await;
        Ok((source, state))
    }

    /// Tries a configuration without keeping anything.
    pub async fn test_new(&self, project: &ProjectId, new: NewSource) -> Result<(), AppError> {
        let source = self.build(project, &new).await?;
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
        let name = Identifier::canonical(name)?;
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

    /// The project's sources, each with whether it is attached (or why not).
    pub async fn list_with_states(&self, project: &ProjectId) -> Result<Vec<(Source, SourceState)>, AppError> {
        let sources = self.list(project).await?;
        let states = match self.catalog.states(project).await {
            Ok(s) => s,
            Err(e) => sources
                .iter()
                .map(|s| (s.name.clone(), SourceState::Failed(e.to_string())))
                .collect(),
        };
        Ok(sources
            .into_iter()
            .map(|s| {
                let state = states
                    .iter()
                    .find(|(n, _)| *n == s.name)
                    .map(|(_, st)| st.clone())
                    .unwrap_or_else(|| SourceState::Failed("not attached".into()));
                (s, state)
            })
            .collect())
    }

    /// Whether the source is attached in its project's sandbox, or why not.
    pub async fn state(&self, source: &Source) -> SourceState {
        match self.catalog.states(&source.project).await {
            Ok(states) => states
                .into_iter()
                .find(|(n, _)| *n == source.name)
                .map(|(_, s)| s)
                .unwrap_or_else(|| SourceState::Failed("not attached".into())),
            Err(e) => SourceState::Failed(e.to_string()),
        }
    }

    /// A source with its state, its tables (none when it is not attached) and the local copies of its tables.
    pub async fn detail(&self, project: &ProjectId, name: &str) -> Result<SourceDetail, AppError> {
        let source = self.get(project, name).await?;
        let state = self.state(&source).await;
        let tables = match state {
            SourceState::Attached => self.catalog.tables(&Self::at(&source), None).await.unwrap_or_default(),
            SourceState::Failed(_) => Vec::new(),
        };
        let cached = self
            .metadata
            .list_caches(project)
            .await?
            .into_iter()
            .filter(|c| c.source == source.name)
            .collect();
        Ok(SourceDetail {
            source,
            state,
            tables,
            cached,
        })
    }

    /// Changes the description; answers the source with its state.
    pub async fn describe(
        &self,
        project: &ProjectId,
        name: &str,
        description: &str,
    ) -> Result<(Source, SourceState), AppError> {
        let source = self.get(project, name).await?;
        self.metadata
            .update_source_description(project, &source.name, description)
            .await?;
        let source = self.get(project, name).await?;
        let state = self.state(&source).await;
        Ok((source, state))
    }

    #[instrument(skip_all, fields(project = %project, source = %name))]
    pub async fn detach(&self, project: &ProjectId, name: &str) -> Result<(), AppError> {
        let source = self.get(project, name).await?;
        if let Err(e) = self.catalog.detach(project, &source.name).await {
            warn!(error = %e, "detach failed; removing the source anyway");
        }
        self.metadata.delete_source(project, &source.name).await?;
        if let Some(secret) = stored_secret(&source) {
            self.secrets.delete(&secret).await?;
        }
        Ok(())
    }

    fn at(source: &Source) -> SourceRef {
        SourceRef::Stored {
            project: source.project.clone(),
            name: source.name.clone(),
        }
    }

    pub async fn schemas(&self, project: &ProjectId, name: &str) -> Result<Vec<String>, AppError> {
        let source = self.attached(project, name).await?;
        Ok(self.catalog.schemas(&Self::at(&source)).await?)
    }

    pub async fn tables(
        &self,
        project: &ProjectId,
        name: &str,
        schema: Option<String>,
    ) -> Result<Vec<TableInfo>, AppError> {
        let source = self.attached(project, name).await?;
        Ok(self.catalog.tables(&Self::at(&source), schema).await?)
    }

    pub async fn columns(
        &self,
        project: &ProjectId,
        name: &str,
        schema: &str,
        table: &str,
    ) -> Result<Vec<Column>, AppError> {
        let source = self.attached(project, name).await?;
        let columns = self.catalog.columns(&Self::at(&source), schema, table).await?;
        if columns.is_empty() {
            return Err(AppError::NotFound {
                what: "table",
                id: format!("{name}.{schema}.{table}"),
            });
        }
        Ok(columns)
    }

    fn table_sql(source: &Source, schema: &str, table: &str) -> String {
        let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        format!(
            "SELECT * FROM {}.{}.{}",
            q(&source.catalog_alias()),
            q(schema),
            q(table)
        )
    }

    /// The first `limit` rows of a table of the source, as a read in the project's history.
    pub async fn preview(
        &self,
        project: &ProjectId,
        name: &str,
        schema: &str,
        table: &str,
        limit: u64,
    ) -> Result<(pluto_duck_domain::Run, ResultPage), AppError> {
        let source = self.attached(project, name).await?;
        self.columns(project, name, schema, table).await?;
        let sql = format!("{} LIMIT {limit}", Self::table_sql(&source, schema, table));
        self.queries
            .read(project, sql, Some(limit), "preview", Duration::from_secs(60))
            .await
    }

    /// How the sandbox would read `sql` (one read statement): each scan with its pushed-down projections and
    /// filters, the planner's row estimate and, for PostgreSQL and MySQL, the query the remote receives.
    pub async fn explain(&self, project: &ProjectId, name: &str, sql: &str) -> Result<Vec<ScanInfo>, AppError> {
        self.attached(project, name).await?;
        let statements = check_user_sql(sql)?;
        match statements.as_slice() {
            [s] if s.is_read => Ok(self.catalog.explain(project, &s.text).await?),
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
        let source = self.attached(project, name).await?;
        self.columns(project, name, schema, table).await?;
        let sql = Self::table_sql(&source, schema, table);
        Ok(self
            .catalog
            .explain(project, &sql)
            .await?
            .first()
            .and_then(|s| s.estimated_rows))
    }

    /// A source whose attach failed answers with the reason instead of an empty catalog.
    pub async fn attached(&self, project: &ProjectId, name: &str) -> Result<Source, AppError> {
        let source = self.get(project, name).await?;
        match self.state(&source).await {
            SourceState::Attached => Ok(source),
            SourceState::Failed(reason) => Err(AppError::Unavailable(format!(
                "source {} is not attached: {reason}",
                source.name
            ))),
        }
    }

    /// Start-up: every stored source is declared to its project's sandbox with its stored password; it is
    /// attached when the project opens, and one that fails then is marked failed while the rest work.
    pub async fn register_all(&self) -> Result<usize, AppError> {
        let mut by_project: std::collections::BTreeMap<ProjectId, Vec<(Source, Option<SecretString>)>> =
            Default::default();
        let mut n = 0;
        for source in self.metadata.list_sources(None).await? {
            let password = match self.password(&source).await {
                Ok(p) => p,
                Err(e) => {
                    warn!(source = %source.name, project = %source.project, error = %e, "source secret not read");
                    None
                }
            };
            n += 1;
            by_project
                .entry(source.project.clone())
                .or_default()
                .push((source, password));
        }
        for (project, sources) in by_project {
            self.catalog.register(&project, sources).await;
        }
        Ok(n)
    }
}

/// The path resolves inside an allowed root and outside the forbidden folders; a project's own files are the
/// exception inside the data directory.
fn check_path(policy: &PathPolicy, project: &ProjectId, path: &str) -> Result<(), AppError> {
    let resolved = std::fs::canonicalize(path)
        .map_err(|_| AppError::Invalid(format!("file {path} does not exist or cannot be read")))?;
    let own_files = policy
        .data_dir
        .as_ref()
        .map(|d| project.folder(d).join("files"))
        .is_some_and(|f| resolved.starts_with(f))
        || policy
            .datasets_root
            .as_ref()
            .and_then(|d| std::fs::canonicalize(d).ok())
            .is_some_and(|d| resolved.starts_with(d));
    if !own_files && policy.forbidden.iter().any(|f| resolved.starts_with(f)) {
        return Err(AppError::Forbidden(format!(
            "file {path} is inside Pluto-Duck's own folders (data or configuration), which sources cannot read"
        )));
    }
    if own_files || policy.allowed_roots.iter().any(|root| resolved.starts_with(root)) {
        Ok(())
    } else {
        Err(AppError::Invalid(format!(
            "file {path} is outside the allowed roots ({}); add its folder to sources.allowed_roots",
            policy
                .allowed_roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_inside_our_own_folders_are_refused_even_under_an_allowed_root() {
        let home = tempfile_dir();
        let data = home.join("data");
        let config = home.join("config");
        for d in [&data.join("projects/a/files"), &config, &home.join("work")] {
            std::fs::create_dir_all(d).unwrap();
        }
        for f in [
            data.join("metadata.db"),
            config.join("secret.key"),
            home.join("work/x.csv"),
            data.join("projects/a/files/in.csv"),
        ] {
            std::fs::write(&f, "x").unwrap();
        }
        let policy = PathPolicy {
            allowed_roots: vec![home.clone()],
            forbidden: vec![data.clone(), config.clone()],
            data_dir: Some(data.clone()),
            datasets_root: None,
        };
        let a = ProjectId::parse("a").unwrap();
        let b = ProjectId::parse("b").unwrap();
        let p = |f: PathBuf| f.display().to_string();
        assert!(check_path(&policy, &a, &p(home.join("work/x.csv"))).is_ok());
        assert!(check_path(&policy, &a, &p(data.join("projects/a/files/in.csv"))).is_ok());
        assert!(check_path(&policy, &b, &p(data.join("projects/a/files/in.csv"))).is_err());
        assert!(check_path(&policy, &a, &p(data.join("metadata.db"))).is_err());
        assert!(check_path(&policy, &a, &p(config.join("secret.key"))).is_err());
        assert!(check_path(&policy, &a, "/etc/passwd").is_err());
        let _ = std::fs::remove_dir_all(&home);
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "pd-src-{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::canonicalize(d).unwrap()
    }

    fn service(catalog: crate::ports::MockSourceCatalog, md: crate::ports::MockMetadataStore) -> SourceService {
        use crate::ports::{MockResultStore, MockSecretStore, MockWarehouse};
        use crate::services::{ChangeLog, Jobs, QueryLimits, RunHub};
        let md: Arc<dyn MetadataStore> = Arc::new(md);
        let jobs = Jobs::new(md.clone(), Arc::new(RunHub::new(10)));
        let queries = Arc::new(QueryService::new(
            Arc::new(MockWarehouse::new()),
            Arc::new(MockResultStore::new()),
            jobs,
            Arc::new(ChangeLog::new(md.clone())),
            QueryLimits::default(),
        ));
        SourceService::new(
            Arc::new(catalog),
            md,
            Arc::new(MockSecretStore::new()),
            queries,
            PathPolicy::default(),
        )
    }

    fn stored(project: &ProjectId, name: &Identifier) -> Source {
        Source {
            name: name.clone(),
            project: project.clone(),
            kind: pluto_duck_domain::SourceKind::Sqlite,
            description: String::new(),
            connection: SourceConnection::File { path: "/x.db".into() },
            read_only: true,
            created_at: Utc::now(),
        }
    }

    fn cache(project: &ProjectId, name: &str, source: &str) -> CachedTable {
        CachedTable {
            name: Identifier::parse(name).unwrap(),
            project: project.clone(),
            source: Identifier::parse(source).unwrap(),
            remote_schema: "main".into(),
            remote_table: name.into(),
            filter: None,
            cursor_column: None,
            ttl_secs: None,
            rows: 0,
            refreshed_at: Utc::now(),
            created_at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn a_source_detail_has_its_tables_when_attached_and_only_its_own_copies() {
        let mut md = crate::ports::MockMetadataStore::new();
        md.expect_get_source().returning(|p, name| Ok(Some(stored(p, name))));
        md.expect_list_caches()
            .returning(|p| Ok(vec![cache(p, "orders", "shop"), cache(p, "users", "crm")]));
        let mut catalog = crate::ports::MockSourceCatalog::new();
        catalog.expect_states().returning(|_| {
            Ok(vec![
                (Identifier::parse("shop").unwrap(), SourceState::Attached),
                (Identifier::parse("crm").unwrap(), SourceState::Failed("refused".into())),
            ])
        });
        catalog.expect_tables().returning(|_, _| {
            Ok(vec![TableInfo {
                schema: "main".into(),
                name: "orders".into(),
                kind: "table".into(),
                estimated_rows: Some(3),
            }])
        });
        let svc = service(catalog, md);
        let p = ProjectId::default_project();
        let d = svc.detail(&p, "Shop").await.unwrap();
        assert_eq!(d.state, SourceState::Attached);
        assert_eq!(d.tables.len(), 1);
        let cached: Vec<&str> = d.cached.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(cached, ["orders"]);
        // A failed source has no tables to list, and says why.
        let d = svc.detail(&p, "crm").await.unwrap();
        assert_eq!(d.state, SourceState::Failed("refused".into()));
        assert!(d.tables.is_empty());
    }
}
