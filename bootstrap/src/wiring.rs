//! Profile wiring: the only place that sees every adapter.

use std::sync::Arc;

use pluto_duck_application::connectors::ConnectorRegistry;
use pluto_duck_application::ports::{MetadataStore, ResultStore, RetentionPolicy, SecretStore};
use pluto_duck_application::{
    AnalysisRunner, AnalysisService, App, BoardService, CacheService, IngestService, ProjectData, ProjectService,
    QueryLimits, QueryService, RunHub, SourceService, SystemService,
};
use pluto_duck_arrow_results::ArrowIpcResultStore;
use pluto_duck_domain::Profile;
use pluto_duck_duckdb::{DuckDbConfig, DuckDbWarehouse};
use pluto_duck_sqlx_metadata::{PgMetadataStore, SqliteMetadataStore};

use crate::config::{Config, ProfileName};
use crate::error::{CliError, CliResult};
use crate::secrets;

pub struct Wired {
    pub app: App,
    pub secrets: Arc<dyn SecretStore>,
    pub results: Arc<dyn ResultStore>,
}

pub fn retention(config: &Config) -> RetentionPolicy {
    RetentionPolicy {
        max_age_secs: config.results.max_age_hours.saturating_mul(3600),
        max_total_bytes: config.results.max_total_mb.saturating_mul(1024 * 1024),
    }
}

pub fn duckdb_config(config: &Config, in_memory: bool) -> DuckDbConfig {
    DuckDbConfig {
        path: (!in_memory).then(|| config.warehouse_path()),
        extension_directory: config.extension_directory(),
        threads: config.duckdb.threads,
        memory_limit: config.duckdb.memory_limit.clone(),
        max_connections: config.duckdb.max_connections,
    }
}

pub async fn metadata_store(config: &Config, secrets: &dyn SecretStore) -> CliResult<Arc<dyn MetadataStore>> {
    Ok(match config.profile {
        ProfileName::Local => Arc::new(
            SqliteMetadataStore::open(&config.metadata_path())
                .await
                .map_err(|e| CliError::new(e.kind(), e.to_string()))?,
        ),
        ProfileName::Hybrid => {
            let reference = config.hybrid.database_url.as_deref().unwrap_or_default();
            let url = secrets::resolve(secrets, "hybrid.database_url", reference).await?;
            Arc::new(
                PgMetadataStore::connect(secrecy::ExposeSecret::expose_secret(&url))
                    .await
                    .map_err(|e| CliError::new(e.kind(), e.to_string()))?,
            )
        }
    })
}

pub fn profile(config: &Config) -> Profile {
    match config.profile {
        ProfileName::Local => Profile::Local,
        ProfileName::Hybrid => Profile::Hybrid,
    }
}

/// Opens the warehouse and metadata store and builds every use case.
pub async fn wire(config: &Config) -> CliResult<Wired> {
    for dir in config.data_dirs() {
        std::fs::create_dir_all(&dir)
            .map_err(|e| CliError::unavailable(format!("cannot create {}: {e}", dir.display())))?;
    }
    let secrets = secrets::secret_store(config);
    let warehouse = Arc::new(
        DuckDbWarehouse::open(&duckdb_config(config, false)).map_err(|e| CliError::new(e.kind(), e.to_string()))?,
    );
    let metadata = metadata_store(config, secrets.as_ref()).await?;
    let results: Arc<dyn ResultStore> =
        Arc::new(ArrowIpcResultStore::new(config.results_dir()).map_err(|e| CliError::new(e.kind(), e.to_string()))?);
    let projects = Arc::new(ProjectService::new(metadata.clone()));
    projects.ensure_default().await?;
    let hub = Arc::new(RunHub::new(10_000));
    let queries = Arc::new(QueryService::new(
        warehouse.clone(),
        results.clone(),
        metadata.clone(),
        hub.clone(),
        QueryLimits {
            default_timeout_ms: config.query.default_timeout_ms,
            max_timeout_ms: config.query.max_timeout_ms,
            default_max_rows: config.query.default_max_rows,
        },
    ));
    let sources = Arc::new(SourceService::new(
        warehouse.clone(),
        metadata.clone(),
        secrets.clone(),
        config.allowed_roots(),
    ));
    let (attached, failed) = sources.reattach_all().await?;
    if attached + failed > 0 {
        tracing::info!(attached, failed, "sources re-attached");
    }
    let caches = Arc::new(CacheService::new(warehouse.clone(), metadata.clone(), sources.clone()));
    let ingest = Arc::new(IngestService::new(
        warehouse.clone(),
        warehouse.clone(),
        metadata.clone(),
        sources.clone(),
        ConnectorRegistry::builtin(),
        hub.clone(),
    ));
    let analyses = Arc::new(AnalysisService::new(Arc::new(
        pluto_duck_analysis_files::AnalysisFiles::new(config.projects_dir()),
    )));
    let blobs: Arc<dyn pluto_duck_application::ports::BlobStore> = Arc::new(
        pluto_duck_analysis_files::FileBlobStore::new(config.data_dir.join("artifacts").join("files")),
    );
    let analysis_runs = Arc::new(AnalysisRunner::new(
        analyses.clone(),
        warehouse.clone(),
        warehouse.clone(),
        metadata.clone(),
        hub.clone(),
        blobs.clone(),
    ));
    let project_data = Arc::new(ProjectData::new(
        metadata.clone(),
        warehouse.clone(),
        sources.clone(),
        analyses.clone(),
        results.clone(),
        blobs.clone(),
    ));
    let boards = Arc::new(BoardService::new(
        metadata.clone(),
        blobs,
        queries.clone(),
        analysis_runs.clone(),
    ));
    let recovered = queries.recover().await?;
    let orphans = ingest.drop_orphan_staging().await?;
    if orphans > 0 {
        tracing::warn!(tables = orphans, "staging tables of interrupted ingests dropped");
    }
    if recovered > 0 {
        tracing::warn!(
            runs = recovered,
            "runs left unfinished by a previous process marked failed"
        );
    }
    let system = Arc::new(SystemService::new(
        warehouse,
        metadata,
        profile(config),
        env!("CARGO_PKG_VERSION"),
    ));
    Ok(Wired {
        app: App {
            system,
            projects,
            queries,
            sources,
            caches,
            ingest,
            analyses,
            analysis_runs,
            project_data,
            boards,
        },
        secrets,
        results,
    })
}
