//! Profile wiring: the only place that sees every adapter.

use std::sync::Arc;
use std::time::Duration;

use pluto_duck_application::agent::actions::ActionServices;
use pluto_duck_application::agent::eval::EvalService;
use pluto_duck_application::agent::knowledge::{Knowledge, Sampling};
use pluto_duck_application::agent::{AgentConfig, AgentService, Limits};
use pluto_duck_application::connectors::ConnectorRegistry;
use pluto_duck_application::ports::{LineageEmitter, ObjectStore};
use pluto_duck_application::ports::{LlmSettings, MetadataStore, ResultStore, RetentionPolicy, SecretStore};
use pluto_duck_application::services::LakeService;
use pluto_duck_application::{
    AnalysisRunner, AnalysisService, App, BoardService, CacheService, ChangeLog, DatasetLimits, DatasetService,
    DbtService, DbtSettings, IngestService, JobService, Jobs, LineageService, PathPolicy, ProjectData, ProjectService,
    QueryLimits, QueryService, RunHub, SourceService, SystemService,
};
use pluto_duck_arrow_results::{ArrowIpcResultStore, MemoryTier};
use pluto_duck_domain::Profile;
use pluto_duck_duckdb::{DuckDbConfig, DuckDbWarehouse};
use pluto_duck_sqlx_metadata::{PgMetadataStore, SqliteMetadataStore};

use crate::config::{Config, DatasetsBackend, LineageTransportName, ProfileName};
use crate::error::{CliError, CliResult};
use crate::secrets;

pub struct Wired {
    pub app: App,
    pub secrets: Arc<dyn SecretStore>,
    pub results: Arc<dyn ResultStore>,
    pub warehouse: DuckDbWarehouse,
}

pub fn retention(config: &Config) -> RetentionPolicy {
    RetentionPolicy {
        max_age_secs: config.results.max_age_hours.saturating_mul(3600),
        max_total_bytes: config.results.max_total_mb.saturating_mul(1024 * 1024),
    }
}

/// The warehouse settings; `in_memory` keeps projects in memory (diagnostics that must not touch the files a
/// running server holds).
pub fn duckdb_config(config: &Config, in_memory: bool) -> DuckDbConfig {
    DuckDbConfig {
        data_dir: (!in_memory).then(|| config.data_dir.clone()),
        extension_directory: config.extension_directory(),
        threads: config.duckdb.threads,
        memory_limit: config.duckdb.memory_limit.clone(),
        max_connections: config.duckdb.max_connections,
        allowed_directories: config.sandbox_directories(),
        idle_close: Duration::from_secs(config.sandbox.idle_close_secs.max(1)),
        reopen_wait: Duration::from_secs(config.sandbox.reopen_wait_secs.max(1)),
        // Set by `wire` from `lake_config` (it resolves secrets).
        lake: None,
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

/// The hybrid profile's control plane: the metadata store on PostgreSQL and the secret store in its encrypted
/// table (the master key from `hybrid.master_key`). References in config (`env:`) resolve through `bootstrap`.
pub struct ControlPlane {
    /// Metadata and analysis definitions.
    pub store: Arc<PgMetadataStore>,
    pub secrets: Arc<dyn SecretStore>,
}

pub async fn control_plane(config: &Config, bootstrap: &dyn SecretStore) -> CliResult<ControlPlane> {
    let reference = config.hybrid.database_url.as_deref().unwrap_or_default();
    let url = secrets::resolve(bootstrap, "hybrid.database_url", reference).await?;
    let store = PgMetadataStore::connect(secrecy::ExposeSecret::expose_secret(&url))
        .await
        .map_err(|e| CliError::new(e.kind(), format!("the control plane (PostgreSQL): {e}")))?;
    let key = master_key(config, bootstrap).await?;
    let secrets = store
        .secret_store(&key)
        .ok_or_else(|| CliError::internal("the control plane is not PostgreSQL"))?;
    Ok(ControlPlane {
        store: Arc::new(store),
        secrets: Arc::new(secrets),
    })
}

/// The master key of the hybrid profile's secrets: `env:VAR` or `file:/path` holding 64 hex digits.
pub async fn master_key(
    config: &Config,
    bootstrap: &dyn SecretStore,
) -> CliResult<pluto_duck_sqlx_metadata::MasterKey> {
    let reference = config.hybrid.master_key.as_deref().unwrap_or_default();
    let text = match reference.split_once(':') {
        Some(("file", path)) if !path.is_empty() => secrecy::SecretString::from(
            std::fs::read_to_string(crate::config::expand_home(std::path::Path::new(path)))
                .map_err(|e| CliError::unavailable(format!("hybrid.master_key: cannot read {path}: {}", e.kind())))?,
        ),
        _ => secrets::resolve(bootstrap, "hybrid.master_key", reference).await?,
    };
    pluto_duck_sqlx_metadata::MasterKey::from_hex(secrecy::ExposeSecret::expose_secret(&text))
        .map_err(|e| CliError::invalid(format!("hybrid.master_key: {e}")))
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
    let mut duck_config = duckdb_config(config, false);
    duck_config.lake = lake_config(config, secrets.as_ref()).await?;
    let duck = DuckDbWarehouse::open(&duck_config).map_err(|e| CliError::new(e.kind(), e.to_string()))?;
    let warehouse = Arc::new(duck.clone());
    // The hybrid profile keeps metadata, secrets and analysis definitions in the control plane.
    let (metadata, secrets, analysis_store): (_, _, Arc<dyn pluto_duck_application::ports::AnalysisStore>) =
        match config.profile {
            ProfileName::Local => (
                metadata_store(config, secrets.as_ref()).await?,
                secrets,
                Arc::new(pluto_duck_analysis_files::AnalysisFiles::new(config.projects_dir())),
            ),
            ProfileName::Hybrid => {
                let plane = control_plane(config, secrets.as_ref()).await?;
                (plane.store.clone(), plane.secrets, plane.store)
            }
        };
    duck.check_lake()
        .await
        .map_err(|e| CliError::new(e.kind(), e.to_string()))?;
    let results: Arc<dyn ResultStore> = Arc::new(
        ArrowIpcResultStore::new(config.results_dir())
            .map_err(|e| CliError::new(e.kind(), e.to_string()))?
            .with_memory(MemoryTier {
                max_result_bytes: config.results.memory_result_kb.saturating_mul(1024),
                budget_bytes: config.results.memory_mb.saturating_mul(1024 * 1024),
            }),
    );
    let projects = Arc::new(ProjectService::new(metadata.clone()));
    projects.ensure_default().await?;
    let jobs = Jobs::new(metadata.clone(), Arc::new(RunHub::new(10_000)));
    if config.profile == ProfileName::Hybrid {
        // Runs are cancelled and watched through any server of the fleet.
        jobs.join_fleet(Duration::from_millis(250))?;
    }
    let lineage = Arc::new(
        LineageService::new(
            lineage_emitter(config, secrets.as_ref()).await?,
            config.lineage.namespace.clone(),
        )
        .with_projects_dir(config.projects_dir().display().to_string()),
    );
    if config.lineage.transport != LineageTransportName::Off {
        jobs.observe(lineage.clone())?;
    }
    let datasets = Arc::new(DatasetService::new(
        object_store(config, secrets.as_ref()).await?,
        DatasetLimits {
            max_object_size: config.datasets.max_object_mb.saturating_mul(1024 * 1024),
        },
    ));
    let changes = Arc::new(ChangeLog::new(metadata.clone()));
    let queries = Arc::new(QueryService::new(
        warehouse.clone(),
        results.clone(),
        jobs.clone(),
        changes.clone(),
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
        queries.clone(),
        PathPolicy {
            allowed_roots: config.allowed_roots(),
            forbidden: config.forbidden_roots(),
            data_dir: Some(config.data_dir.clone()),
            datasets_root: (config.datasets.backend == DatasetsBackend::Local).then(|| config.datasets_root()),
        },
    ));
    let registered = sources.register_all().await?;
    if registered > 0 {
        tracing::info!(sources = registered, "sources registered with their projects");
    }
    let caches = Arc::new(CacheService::new(
        warehouse.clone(),
        metadata.clone(),
        sources.clone(),
        changes.clone(),
        jobs.clone(),
    ));
    let ingest = Arc::new(IngestService::new(
        warehouse.clone(),
        warehouse.clone(),
        metadata.clone(),
        sources.clone(),
        ConnectorRegistry::builtin(),
        jobs.clone(),
        changes.clone(),
    ));
    let analyses = Arc::new(AnalysisService::new(analysis_store));
    let blobs: Arc<dyn pluto_duck_application::ports::BlobStore> = Arc::new(
        pluto_duck_analysis_files::FileBlobStore::new(config.data_dir.join("artifacts").join("files")),
    );
    let analysis_runs = Arc::new(AnalysisRunner::new(
        analyses.clone(),
        warehouse.clone(),
        warehouse.clone(),
        metadata.clone(),
        jobs.clone(),
        changes.clone(),
        queries.clone(),
    ));
    let project_data = Arc::new(ProjectData::new(
        metadata.clone(),
        warehouse.clone(),
        sources.clone(),
        analyses.clone(),
        results.clone(),
        blobs.clone(),
        changes.clone(),
    ));
    let boards = Arc::new(BoardService::new(
        metadata.clone(),
        blobs,
        queries.clone(),
        analysis_runs.clone(),
    ));
    let mut dbt_cli = pluto_duck_dbt_cli::DbtCliConfig::new(config.dbt_executable());
    dbt_cli.extension_directory = Some(config.extension_directory());
    let dbt = Arc::new(
        DbtService::new(
            Arc::new(pluto_duck_dbt_cli::DbtCli::new(dbt_cli)),
            warehouse.clone(),
            metadata.clone(),
            jobs.clone(),
            DbtSettings {
                data_dir: config.data_dir.clone(),
                project_dir: config.dbt_project_dir(),
                project_dirs: config.dbt_project_dirs(),
                request_roots: config.dbt_request_roots(),
                timeout: config.dbt.timeout_secs.map(Duration::from_secs),
            },
        )
        .with_changes(changes.clone()),
    );
    let agent = Arc::new(
        agent_service(
            config,
            &jobs,
            &metadata,
            &secrets,
            &changes,
            AgentParts {
                warehouse: warehouse.clone(),
                queries: queries.clone(),
                sources: sources.clone(),
                caches: caches.clone(),
                analyses: analyses.clone(),
                runner: analysis_runs.clone(),
                boards: boards.clone(),
                dbt: dbt.clone(),
            },
        )
        .await?,
    );
    let eval = Arc::new(EvalService::new(
        agent.clone(),
        queries.clone(),
        jobs.clone(),
        shipped_sets()?,
        config.eval.sets_dir.as_deref().map(crate::config::expand_home),
        config.datasets_dir(),
        config.data_dir.clone(),
    ));
    let recovered = jobs.recover().await?;
    if recovered > 0 {
        tracing::warn!(
            runs = recovered,
            "runs left unfinished by a previous process marked failed"
        );
    }
    let all_projects: Vec<_> = projects.list().await?.into_iter().map(|p| p.id).collect();
    // In a fleet the staging tables in the shared lake may be another server's loads in progress.
    let orphans = match config.profile {
        ProfileName::Local => ingest.recover(&all_projects).await?,
        ProfileName::Hybrid => 0,
    };
    if orphans > 0 {
        tracing::warn!(tables = orphans, "staging left by interrupted loads dropped");
    }
    let job_defs = Arc::new(JobService::new(
        metadata.clone(),
        jobs.clone(),
        queries.clone(),
        analysis_runs.clone(),
        ingest.clone(),
        dbt.clone(),
        lineage.clone(),
    ));
    let dataset_sources = Arc::new(pluto_duck_application::DatasetSources::new(
        datasets.clone(),
        sources.clone(),
        ingest.clone(),
    ));
    let system = Arc::new(SystemService::new(
        warehouse,
        metadata,
        profile(config),
        env!("CARGO_PKG_VERSION"),
    ));
    system.start().await?;
    duck.spawn_housekeeping();
    Ok(Wired {
        app: App {
            system,
            projects,
            jobs,
            changes,
            queries,
            sources,
            caches,
            ingest,
            analyses,
            analysis_runs,
            project_data,
            boards,
            agent,
            eval,
            dbt,
            datasets,
            lineage,
            lake: Arc::new(LakeService::new(Arc::new(duck.clone()))),
            job_defs,
            dataset_sources,
        },
        secrets,
        results,
        warehouse: duck,
    })
}

/// The object store `datasets.backend` names: a directory tree, or an S3-compatible server whose secret key is
/// resolved from its reference (never logged: errors name the key, not the value).
pub async fn object_store(config: &Config, secrets: &dyn SecretStore) -> CliResult<Arc<dyn ObjectStore>> {
    let unavailable =
        |e: pluto_duck_application::ports::ObjectStoreError| CliError::new(e.kind(), format!("datasets: {e}"));
    Ok(match config.datasets.backend {
        DatasetsBackend::Local => {
            Arc::new(pluto_duck_object_store::LocalObjectStore::open(config.datasets_root()).map_err(unavailable)?)
        }
        DatasetsBackend::S3 => {
            let s3 = &config.datasets.s3;
            let reference = s3.secret_access_key.as_deref().unwrap_or_default();
            let secret = secrets::resolve(secrets, "datasets.s3.secret_access_key", reference).await?;
            let endpoint = s3.endpoint.clone();
            Arc::new(
                pluto_duck_object_store::S3ObjectStore::new(pluto_duck_object_store::S3Config {
                    allow_http: endpoint.as_deref().is_some_and(|e| e.starts_with("http://")),
                    endpoint,
                    region: s3.region.clone(),
                    path_style: s3.path_style,
                    access_key_id: s3.access_key_id.clone().unwrap_or_default(),
                    secret_access_key: secret,
                    session_token: None,
                    timeout: Duration::from_secs(30),
                })
                .map_err(unavailable)?,
            )
        }
    })
}

/// The hybrid profile's shared warehouse: the control plane's PostgreSQL (from `hybrid.database_url`) holds each
/// project's lake catalog, `hybrid.lake.data_path` its files. `None` in the local profile.
pub async fn lake_config(
    config: &Config,
    secrets: &dyn SecretStore,
) -> CliResult<Option<pluto_duck_duckdb::LakeConfig>> {
    use pluto_duck_duckdb::{LakeConfig, LakePostgres, LakeS3};
    if config.profile != ProfileName::Hybrid {
        return Ok(None);
    }
    let h = &config.hybrid;
    let reference = h.database_url.as_deref().unwrap_or_default();
    let url = secrets::resolve(secrets, "hybrid.database_url", reference).await?;
    let url = reqwest::Url::parse(secrecy::ExposeSecret::expose_secret(&url))
        .map_err(|e| CliError::invalid(format!("hybrid.database_url is not a PostgreSQL URL: {e}")))?;
    let postgres = LakePostgres {
        host: url
            .host_str()
            .unwrap_or("localhost")
            .trim_matches(['[', ']'])
            .to_owned(),
        port: url.port().unwrap_or(5432),
        dbname: percent_decode(url.path().trim_start_matches('/')),
        user: percent_decode(url.username()),
        password: url.password().map(|p| secrecy::SecretString::from(percent_decode(p))),
    };
    let data_path = h.lake.data_path.clone().unwrap_or_default();
    let s3 = if data_path.starts_with("s3://") {
        let s3 = &h.lake.s3;
        let secret = secrets::resolve(
            secrets,
            "hybrid.lake.s3.secret_access_key",
            s3.secret_access_key.as_deref().unwrap_or_default(),
        )
        .await?;
        let endpoint = s3.endpoint.as_deref();
        Some(LakeS3 {
            endpoint: endpoint.map(|e| {
                e.trim_start_matches("http://")
                    .trim_start_matches("https://")
                    .trim_end_matches('/')
                    .to_owned()
            }),
            region: s3.region.clone(),
            access_key_id: s3.access_key_id.clone().unwrap_or_default(),
            secret_access_key: secret,
            path_style: s3.path_style,
            use_ssl: !endpoint.is_some_and(|e| e.starts_with("http://")),
        })
    } else {
        None
    };
    Ok(Some(LakeConfig {
        postgres,
        data_path,
        s3,
        schema_prefix: h.lake.schema_prefix.clone(),
    }))
}

/// `%xx` escapes of a URL part, decoded.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The lineage emitter `lineage.transport` names, started on the current runtime.
pub async fn lineage_emitter(config: &Config, secrets: &dyn SecretStore) -> CliResult<Arc<dyn LineageEmitter>> {
    use pluto_duck_openlineage::{start_emitter, HttpLineageConfig, LineageTransport, DEFAULT_PRODUCER};
    let l = &config.lineage;
    let transport = match l.transport {
        LineageTransportName::Off => LineageTransport::Off,
        LineageTransportName::File => LineageTransport::File {
            path: config.lineage_path(),
            producer: DEFAULT_PRODUCER.to_owned(),
        },
        LineageTransportName::Http => {
            let mut http = HttpLineageConfig::new(l.url.clone().unwrap_or_default());
            if let Some(reference) = &l.api_key {
                http.api_key = Some(secrets::resolve(secrets, "lineage.api_key", reference).await?);
            }
            LineageTransport::Http(http)
        }
    };
    start_emitter(transport).map_err(|e| CliError::invalid(format!("lineage: {e}")))
}

struct AgentParts {
    warehouse: Arc<DuckDbWarehouse>,
    queries: Arc<QueryService>,
    sources: Arc<SourceService>,
    caches: Arc<CacheService>,
    analyses: Arc<AnalysisService>,
    runner: Arc<AnalysisRunner>,
    boards: Arc<BoardService>,
    dbt: Arc<DbtService>,
}

/// The agent and what it knows: the catalog cache, the actions over the use cases, the model from config.
async fn agent_service(
    config: &Config,
    jobs: &Arc<Jobs>,
    metadata: &Arc<dyn MetadataStore>,
    secrets: &Arc<dyn SecretStore>,
    changes: &Arc<ChangeLog>,
    parts: AgentParts,
) -> CliResult<AgentService> {
    let knowledge = Knowledge::new(
        parts.warehouse.clone(),
        parts.analyses.clone(),
        parts.sources.clone(),
        Some(parts.dbt.clone()),
        changes,
        Sampling::default(),
        Duration::from_secs(300),
    );
    let services = ActionServices {
        queries: parts.queries,
        sources: parts.sources,
        caches: parts.caches,
        analyses: parts.analyses,
        runner: parts.runner,
        boards: parts.boards,
        knowledge,
        skills: Arc::new(pluto_duck_analysis_files::FileSkills::new(
            Some(config.data_dir.join("skills")),
            config.data_dir.clone(),
        )),
        warehouse: parts.warehouse,
    };
    let a = &config.agent;
    let agent_config = AgentConfig {
        pipeline: a.pipeline.clone(),
        mode: a.mode.clone(),
        privacy: a.privacy,
        turn_timeout: Duration::from_secs(a.turn_timeout_secs.max(1)),
        limits: Limits {
            max_repairs: a.max_repairs,
            max_model_calls: a.max_model_calls.max(1),
            max_tool_calls: a.max_tool_calls.max(1),
            row_limit: a.preview_rows.max(1),
            model_rows: a.model_rows,
            schema_tokens: a.schema_tokens.max(100),
            approval_timeout: Duration::from_secs(a.approval_timeout_secs.max(1)),
            ..Limits::default()
        },
    };
    let l = &config.llm;
    // A key that cannot be resolved is not fatal: the agent says so when asked, everything else serves.
    let api_key = match &l.api_key {
        Some(reference) => match secrets::resolve(secrets.as_ref(), "llm.api_key", reference).await {
            Ok(k) => Some(k),
            Err(e) => {
                tracing::warn!(error = %e.message, "the LLM API key is not available");
                None
            }
        },
        None => None,
    };
    let defaults = LlmSettings {
        provider: l.provider.clone(),
        model: l.model.clone(),
        base_url: l.base_url.clone(),
        api_key,
        script: l.script.as_ref().map(|p| p.display().to_string()),
    };
    Ok(AgentService::new(
        jobs.clone(),
        metadata.clone(),
        secrets.clone(),
        Arc::new(crate::llm::Providers::new(l)),
        services,
        agent_config,
        defaults,
    )?)
}

/// The question sets that ship inside the binary.
fn shipped_sets() -> CliResult<Vec<pluto_duck_application::agent::eval::QuestionSet>> {
    use pluto_duck_application::agent::eval::parse_set;
    [
        ("chinook.yaml", include_str!("../../eval/sets/chinook.yaml")),
        ("nycflights13.yaml", include_str!("../../eval/sets/nycflights13.yaml")),
    ]
    .into_iter()
    .map(|(name, text)| {
        parse_set(text, std::path::Path::new(name)).map_err(|e| CliError::internal(format!("shipped set {name}: {e}")))
    })
    .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn url_parts_are_percent_decoded() {
        assert_eq!(super::percent_decode("p%40ss%2Fw"), "p@ss/w");
        assert_eq!(super::percent_decode("plain%"), "plain%");
        assert_eq!(super::percent_decode("a%zz"), "a%zz");
    }
}
