//! Layered configuration (figment), lowest to highest: defaults, the user config file, a project-local
//! `.plutoduck`, `PLUTODUCK_*` environment variables (`__` nests), CLI flags.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Serialized, Yaml};
use figment::value::{Dict, Value};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::cli::{GlobalArgs, LogFormatArg};
use crate::error::{CliError, CliResult};

pub const ENV_PREFIX: &str = "PLUTODUCK_";

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ProfileName {
    #[default]
    Local,
    Hybrid,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Auto,
    Pretty,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `local` (SQLite metadata) or `hybrid` (PostgreSQL metadata).
    pub profile: ProfileName,
    /// Holds data/, artifacts/, configs/ and logs/.
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub duckdb: DuckDbSection,
    pub dbt: DbtSection,
    pub hybrid: HybridSection,
    pub secrets: SecretsSection,
    pub log: LogSection,
    pub query: QuerySection,
    pub results: ResultsSection,
    pub sources: SourcesSection,
    pub sandbox: SandboxSection,
    pub llm: LlmSection,
    pub agent: AgentSection,
    pub eval: EvalSection,
    pub datasets: DatasetsSection,
    pub lineage: LineageSection,
}

/// Where dataset buckets and objects live (`/api/v1/datasets`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatasetsSection {
    /// `local` (a directory tree, the default) or `s3` (any S3-compatible server: MinIO, AWS).
    pub backend: DatasetsBackend,
    /// `local`: the folder holding the buckets. Default: <data_dir>/datasets.
    pub root: Option<PathBuf>,
    pub s3: S3Section,
    /// An upload past this size answers 413 and stores nothing.
    pub max_object_mb: u64,
}

impl Default for DatasetsSection {
    fn default() -> Self {
        Self {
            backend: DatasetsBackend::Local,
            root: None,
            s3: S3Section::default(),
            max_object_mb: 5 * 1024,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum DatasetsBackend {
    #[default]
    Local,
    S3,
}

/// An S3-compatible server: of `datasets.backend: s3`, and of the hybrid lake (`hybrid.lake.s3`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct S3Section {
    /// `http://127.0.0.1:9000`, `https://minio.example.com`; unset for AWS.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: Option<String>,
    /// A reference, never a literal: `env:VAR` or `secret:NAME`.
    pub secret_access_key: Option<String>,
    /// Buckets as path segments (`<endpoint>/<bucket>/<key>`), as MinIO expects.
    pub path_style: bool,
}

impl Default for S3Section {
    fn default() -> Self {
        Self {
            endpoint: None,
            region: "us-east-1".into(),
            access_key_id: None,
            secret_access_key: None,
            path_style: true,
        }
    }
}

/// OpenLineage events of every run (queries, ingests, analysis runs, agent turns).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LineageSection {
    /// `file` (JSON lines, the default), `http` (an OpenLineage endpoint such as Marquez) or `off`.
    pub transport: LineageTransportName,
    /// `file`: default <data_dir>/lineage/events.jsonl.
    pub path: Option<PathBuf>,
    /// `http`: the server's base URL; events go to `<url>/api/v1/lineage`.
    pub url: Option<String>,
    /// `http`: sent as a bearer token. A reference, never a literal: `env:VAR` or `secret:NAME`.
    pub api_key: Option<String>,
    /// Jobs are named in `<namespace>/<project>`.
    pub namespace: String,
}

impl Default for LineageSection {
    fn default() -> Self {
        Self {
            transport: LineageTransportName::File,
            path: None,
            url: None,
            api_key: None,
            namespace: "pluto-duck".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LineageTransportName {
    Off,
    #[default]
    File,
    Http,
}

/// The evaluation harness (`pluto-duck eval`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSection {
    /// A folder of your own question sets (`*.yaml`), offered besides the shipped ones.
    pub sets_dir: Option<PathBuf>,
    /// Default: ~/.local/share/pluto-duck/datasets (where scripts/setup.sh unpacks the sample datasets).
    pub datasets_dir: Option<PathBuf>,
}

/// The language model the agent talks to (the settings API overrides it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LlmSection {
    /// `openai` (any OpenAI-compatible server: vLLM, llama.cpp, LM Studio, gateways), `ollama`, `scripted`, or
    /// `none` (the default: the agent answers 503 until one is set).
    pub provider: String,
    pub model: String,
    /// Default: https://api.openai.com/v1 (openai), http://127.0.0.1:11434 (ollama).
    pub base_url: Option<String>,
    /// A reference, never a literal: `env:VAR` or `secret:NAME`.
    pub api_key: Option<String>,
    /// `scripted`: the YAML script's path.
    pub script: Option<PathBuf>,
    /// Attempts per call, the first included (429 and 5xx are retried, honouring `Retry-After`).
    pub max_attempts: u32,
    /// From the request to the first streamed token (a local model may need to load).
    pub first_token_timeout_secs: u64,
    /// The longest silence mid-reply.
    pub idle_timeout_secs: u64,
    /// The whole call, retries included.
    pub call_timeout_secs: u64,
    /// Ollama's context window (`num_ctx`).
    pub context_window: Option<u64>,
}

impl Default for LlmSection {
    fn default() -> Self {
        Self {
            provider: "none".into(),
            model: String::new(),
            base_url: None,
            api_key: None,
            script: None,
            max_attempts: 4,
            first_token_timeout_secs: 120,
            idle_timeout_secs: 60,
            call_timeout_secs: 600,
            context_window: None,
        }
    }
}

/// How the agent works.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSection {
    /// `auto` (the tool-calling loop when the model supports tools, else the step pipeline), `tools`, `steps`.
    pub mode: String,
    /// Step names replacing the mode's pipeline: planner, explorer, generator, verifier, answer, tools.
    pub pipeline: Option<Vec<String>>,
    /// No row value ever goes to the model, in every conversation.
    pub privacy: bool,
    pub max_repairs: u32,
    pub max_model_calls: u32,
    pub max_tool_calls: u32,
    /// Rows a verified query keeps for the answer's preview.
    pub preview_rows: u64,
    /// Rows of a result the model reads (outside privacy mode).
    pub model_rows: usize,
    /// Tokens of schema the explorer hands the model.
    pub schema_tokens: usize,
    pub approval_timeout_secs: u64,
    pub turn_timeout_secs: u64,
}

impl Default for AgentSection {
    fn default() -> Self {
        let limits = pluto_duck_application::agent::Limits::default();
        Self {
            mode: "auto".into(),
            pipeline: None,
            privacy: false,
            max_repairs: limits.max_repairs,
            max_model_calls: limits.max_model_calls,
            max_tool_calls: limits.max_tool_calls,
            preview_rows: limits.row_limit,
            model_rows: limits.model_rows,
            schema_tokens: limits.schema_tokens,
            approval_timeout_secs: limits.approval_timeout.as_secs(),
            turn_timeout_secs: 900,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SourcesSection {
    /// Folders file sources may live in (default: the home directory). Pluto-Duck's own data and configuration
    /// folders are never readable as sources, whatever this says.
    pub allowed_roots: Option<Vec<PathBuf>>,
}

/// Each project's SQL runs in a sandbox: its own database, its sources, its files.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxSection {
    /// Folders every project's SQL may read directly (`SELECT * FROM 'folder/x.csv'`), besides its own files and
    /// its sources' files. Empty by default.
    pub allowed_directories: Vec<PathBuf>,
    /// A project's database is closed after this long unused (it opens again on the next request).
    pub idle_close_secs: u64,
    /// How long attaching or detaching a source waits for the project's running queries before answering 409.
    pub reopen_wait_secs: u64,
}

impl Default for SandboxSection {
    fn default() -> Self {
        Self {
            allowed_directories: Vec::new(),
            idle_close_secs: 600,
            reopen_wait_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QuerySection {
    pub default_timeout_ms: u64,
    pub max_timeout_ms: u64,
    /// Rows kept per result when a request sets no `max_rows`; unset keeps all.
    pub default_max_rows: Option<u64>,
}

impl Default for QuerySection {
    fn default() -> Self {
        Self {
            default_timeout_ms: 300_000,
            max_timeout_ms: 6 * 3_600_000,
            default_max_rows: None,
        }
    }
}

/// Retention of stored query results (`<data_dir>/artifacts/results`), and which stay in memory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ResultsSection {
    pub max_age_hours: u64,
    pub max_total_mb: u64,
    pub sweep_interval_secs: u64,
    /// A result up to this size (Arrow buffers) is held in memory instead of written to files; 0 turns it off.
    pub memory_result_kb: u64,
    /// All held results together; past it the oldest are written to files.
    pub memory_mb: u64,
}

impl Default for ResultsSection {
    fn default() -> Self {
        Self {
            max_age_hours: 7 * 24,
            max_total_mb: 4096,
            sweep_interval_secs: 600,
            memory_result_kb: 1024,
            memory_mb: 256,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    /// A reference, never a literal: `env:VAR` or `secret:NAME`.
    pub api_token: Option<String>,
    pub cors_origins: Vec<String>,
    /// Host names a loopback server answers to besides localhost, 127.0.0.1 and [::1] (DNS rebinding protection).
    pub allowed_hosts: Vec<String>,
    pub body_limit_mb: u64,
    /// How long in-flight requests get to finish after SIGINT/SIGTERM.
    pub shutdown_grace_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DuckDbSection {
    /// Default: ~/.local/share/pluto-duck/extensions (where scripts/setup.sh installs them).
    pub extension_directory: Option<PathBuf>,
    pub threads: Option<u32>,
    /// DuckDB syntax: `4GB`, `50%`.
    pub memory_limit: Option<String>,
    pub max_connections: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DbtSection {
    /// Default: the virtualenv scripts/setup.sh installs, else `dbt` on PATH.
    pub executable: Option<PathBuf>,
    /// Default: <data_dir>/dbt/core (created by `pluto-duck init`).
    pub project_dir: Option<PathBuf>,
    /// A dbt project of its own for a Pluto-Duck project, by project id (others run `project_dir`).
    pub projects: std::collections::BTreeMap<String, PathBuf>,
    /// Ends a dbt run that takes longer (default: no limit).
    pub timeout_secs: Option<u64>,
    /// Folders under which a request may name a dbt project of its own (`project_dir` in the body).
    /// Default: <data_dir>/dbt.
    pub request_roots: Vec<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct HybridSection {
    /// PostgreSQL URL of the control plane, as a reference: `env:VAR` or `secret:NAME`.
    pub database_url: Option<String>,
    /// Key of the secrets table in the control plane (64 hex digits): `env:VAR` or `file:/path`, never a literal.
    pub master_key: Option<String>,
    /// The shared warehouse: every project's tables in a DuckLake whose catalog is in the control plane.
    pub lake: LakeSection,
}

/// The hybrid profile's shared warehouse (DuckLake): the catalog is a schema per project in the control plane's
/// PostgreSQL, the data files are under `data_path/<project>/`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LakeSection {
    /// `s3://bucket/prefix` (S3-compatible storage, credentials in `s3`) or a directory every server mounts.
    pub data_path: Option<String>,
    /// A project's lake catalog is the PostgreSQL schema `<schema_prefix><project>`.
    pub schema_prefix: String,
    pub s3: S3Section,
}

impl Default for LakeSection {
    fn default() -> Self {
        Self {
            data_path: None,
            schema_prefix: "lake_".into(),
            s3: S3Section::default(),
        }
    }
}

/// The object store of an `s3://` lake data path.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsSection {
    /// Where secrets live: `auto` (the OS keyring when one is usable, else the encrypted file), `keyring`, `file`.
    pub backend: SecretsBackend,
    /// Service name of this application's entries in the OS keyring; default `pluto-duck`.
    pub keyring_service: Option<String>,
    /// Key of the encrypted secrets file; default ~/.config/pluto-duck/secret.key (apart from the data).
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SecretsBackend {
    /// An existing encrypted file; else the Secret Service if it works; else a new encrypted file.
    #[default]
    Auto,
    /// The OS keyring only (Secret Service, else the kernel keyring); an error when neither works.
    Keyring,
    /// The encrypted file only.
    File,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    pub level: String,
    pub format: LogFormat,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            profile: ProfileName::Local,
            data_dir: home().join(".pluto-duck"),
            server: ServerConfig::default(),
            duckdb: DuckDbSection::default(),
            dbt: DbtSection::default(),
            hybrid: HybridSection::default(),
            secrets: SecretsSection::default(),
            log: LogSection::default(),
            query: QuerySection::default(),
            results: ResultsSection::default(),
            sources: SourcesSection::default(),
            sandbox: SandboxSection::default(),
            llm: LlmSection::default(),
            agent: AgentSection::default(),
            eval: EvalSection::default(),
            datasets: DatasetsSection::default(),
            lineage: LineageSection::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8000,
            api_token: None,
            cors_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            body_limit_mb: 64,
            shutdown_grace_secs: 10,
        }
    }
}

impl Default for DuckDbSection {
    fn default() -> Self {
        Self {
            extension_directory: None,
            threads: None,
            memory_limit: None,
            max_connections: 8,
        }
    }
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Auto,
        }
    }
}

/// CLI flags, merged last and only when given.
#[derive(Debug, Default, Serialize)]
struct FlagOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<ServerOverrides>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<LogOverrides>,
}

#[derive(Debug, Default, Serialize)]
struct ServerOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
}

#[derive(Debug, Default, Serialize)]
struct LogOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<LogFormat>,
}

/// Where each layer came from, for `doctor` and `config`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConfigSources {
    pub user_file: Option<PathBuf>,
    pub user_file_exists: bool,
    pub project_file: Option<PathBuf>,
    pub env_vars: Vec<String>,
    pub flags: Vec<String>,
}

pub struct Loaded {
    pub config: Config,
    pub sources: ConfigSources,
    /// Emitted once telemetry is up.
    pub warnings: Vec<String>,
}

/// Server flags that only `serve` has.
#[derive(Debug, Default, Clone)]
pub struct ServeFlags {
    pub host: Option<String>,
    pub port: Option<u16>,
}

pub fn load(global: &GlobalArgs, serve: &ServeFlags) -> CliResult<Loaded> {
    let cwd = std::env::current_dir()?;
    let env: Vec<(String, String)> = std::env::vars().collect();
    load_from(global, serve, &cwd, &env)
}

pub(crate) fn load_from(
    global: &GlobalArgs,
    serve: &ServeFlags,
    cwd: &Path,
    env: &[(String, String)],
) -> CliResult<Loaded> {
    let mut sources = ConfigSources::default();
    let mut warnings = Vec::new();
    let mut fig = Figment::from(Serialized::defaults(Config::default()));

    match &global.config {
        Some(path) => {
            if !path.is_file() {
                return Err(CliError::invalid(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            fig = fig.merge(Yaml::file_exact(path));
            sources.user_file = Some(path.clone());
            sources.user_file_exists = true;
        }
        None => {
            let path = user_config_path();
            sources.user_file_exists = path.is_file();
            fig = fig.merge(Yaml::file(&path));
            sources.user_file = Some(path);
        }
    }
    if let Some(local) = find_project_file(cwd) {
        fig = fig.merge(Yaml::file_exact(&local));
        sources.project_file = Some(local);
    }

    // Only known keys are taken from the environment; others are reported, not fatal.
    let known = known_keys();
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let key = rest.to_ascii_lowercase().replace("__", ".");
        if known.contains(&key) {
            sources.env_vars.push(name.clone());
            // Parsed like figment's Env provider: "8001" becomes a number, "true" a bool.
            let parsed: Value = value.parse().unwrap_or_else(|_| Value::from(value.clone()));
            fig = fig.merge(Serialized::default(&key, parsed));
        } else {
            warnings.push(format!("ignoring unknown environment variable {name}"));
        }
    }

    let flags = FlagOverrides {
        data_dir: global.data_dir.clone(),
        server: (serve.host.is_some() || serve.port.is_some()).then(|| ServerOverrides {
            host: serve.host.clone(),
            port: serve.port,
        }),
        log: (global.log_level.is_some() || global.log_format.is_some()).then(|| LogOverrides {
            level: global.log_level.clone(),
            format: global.log_format.map(|f| match f {
                LogFormatArg::Pretty => LogFormat::Pretty,
                LogFormatArg::Json => LogFormat::Json,
            }),
        }),
    };
    for (set, name) in [
        (flags.data_dir.is_some(), "--data-dir"),
        (serve.host.is_some(), "--host"),
        (serve.port.is_some(), "--port"),
        (global.log_level.is_some(), "--log-level"),
        (global.log_format.is_some(), "--log-format"),
    ] {
        if set {
            sources.flags.push(name.to_owned());
        }
    }
    fig = fig.merge(Serialized::defaults(flags));

    let mut config: Config = fig.extract().map_err(|e| CliError::invalid(one_line(&e)))?;
    config.data_dir = expand_home(&config.data_dir);
    config.validate()?;
    Ok(Loaded {
        config,
        sources,
        warnings,
    })
}

fn one_line(e: &figment::Error) -> String {
    let mut msg = e.to_string().replace('\n', "; ");
    if let Some(source) = e.metadata.as_ref().and_then(|m| m.source.as_ref()) {
        if !msg.contains(&source.to_string()) {
            msg = format!("{msg} (in {source})");
        }
    }
    format!("invalid configuration: {msg}")
}

impl Config {
    fn validate(&self) -> CliResult<()> {
        for dir in self.sandbox_directories() {
            for guarded in self.forbidden_roots() {
                if guarded.starts_with(&dir) || dir.starts_with(&guarded) {
                    return Err(CliError::invalid(format!(
                        "sandbox.allowed_directories: {} overlaps {}, which holds Pluto-Duck's own data or keys",
                        dir.display(),
                        guarded.display()
                    )));
                }
            }
        }
        for (key, value) in [
            ("server.api_token", &self.server.api_token),
            ("hybrid.database_url", &self.hybrid.database_url),
            (
                "hybrid.lake.s3.secret_access_key",
                &self.hybrid.lake.s3.secret_access_key,
            ),
            ("llm.api_key", &self.llm.api_key),
            ("datasets.s3.secret_access_key", &self.datasets.s3.secret_access_key),
            ("lineage.api_key", &self.lineage.api_key),
        ] {
            if let Some(v) = value {
                crate::secrets::SecretRef::parse(v).map_err(|e| CliError::invalid(format!("{key}: {e}")))?;
            }
        }
        if self
            .secrets
            .keyring_service
            .as_deref()
            .is_some_and(|s| s.trim().is_empty())
        {
            return Err(CliError::invalid("secrets.keyring_service must not be empty"));
        }
        if self.datasets.backend == DatasetsBackend::S3
            && (self.datasets.s3.access_key_id.is_none() || self.datasets.s3.secret_access_key.is_none())
        {
            return Err(CliError::invalid(
                "datasets.backend s3 needs datasets.s3.access_key_id and datasets.s3.secret_access_key \
                 (a reference such as env:AWS_SECRET_ACCESS_KEY)",
            ));
        }
        if self.datasets.max_object_mb == 0 {
            return Err(CliError::invalid("datasets.max_object_mb must be at least 1"));
        }
        if self.lineage.transport == LineageTransportName::Http && self.lineage.url.is_none() {
            return Err(CliError::invalid("lineage.transport http needs lineage.url"));
        }
        if self.lineage.namespace.trim().is_empty() {
            return Err(CliError::invalid("lineage.namespace must not be empty"));
        }
        if self.duckdb.max_connections == 0 {
            return Err(CliError::invalid("duckdb.max_connections must be at least 1"));
        }
        if self.profile == ProfileName::Hybrid && self.hybrid.database_url.is_none() {
            return Err(CliError::invalid(
                "profile hybrid needs hybrid.database_url (e.g. env:PLUTODUCK_PG_URL or secret:control_plane)",
            ));
        }
        if self.profile == ProfileName::Hybrid {
            match self.hybrid.master_key.as_deref() {
                Some(r) if r.starts_with("file:") && r.len() > "file:".len() => {}
                Some(r) if r.starts_with("env:") && r.len() > "env:".len() => {}
                _ => {
                    return Err(CliError::invalid(
                        "profile hybrid needs hybrid.master_key, the secrets' key: env:VAR or file:/path holding \
                         64 hex digits (openssl rand -hex 32)",
                    ))
                }
            }
            let lake = &self.hybrid.lake;
            let Some(path) = lake.data_path.as_deref().filter(|p| !p.trim().is_empty()) else {
                return Err(CliError::invalid(
                    "profile hybrid needs hybrid.lake.data_path (s3://bucket/prefix or a directory every server shares)",
                ));
            };
            if path.contains('\'') {
                return Err(CliError::invalid("hybrid.lake.data_path must not contain a quote"));
            }
            if path.starts_with("s3://") && (lake.s3.access_key_id.is_none() || lake.s3.secret_access_key.is_none()) {
                return Err(CliError::invalid(
                    "an s3:// hybrid.lake.data_path needs hybrid.lake.s3.access_key_id and \
                     hybrid.lake.s3.secret_access_key (a reference such as env:AWS_SECRET_ACCESS_KEY)",
                ));
            }
            let prefix = &lake.schema_prefix;
            if prefix.is_empty()
                || !prefix
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(CliError::invalid(
                    "hybrid.lake.schema_prefix must be lower-case letters, digits and _",
                ));
            }
        }
        Ok(())
    }

    pub fn warehouse_path(&self) -> PathBuf {
        self.data_dir.join("data").join("warehouse.duckdb")
    }

    pub fn metadata_path(&self) -> PathBuf {
        self.data_dir.join("data").join("metadata.db")
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.data_dir.join("logs")
    }

    pub fn log_file(&self) -> PathBuf {
        self.logs_dir().join("pluto-duck.log")
    }

    pub fn allowed_roots(&self) -> Vec<PathBuf> {
        match &self.sources.allowed_roots {
            Some(roots) => roots.iter().map(|r| expand_home(r)).collect(),
            None => vec![home()],
        }
    }

    /// Folders no source and no SQL may read: the data directory (other projects' databases, the metadata, the
    /// encrypted secrets) and the folder of the secret key.
    pub fn forbidden_roots(&self) -> Vec<PathBuf> {
        let mut out = vec![self.data_dir.clone()];
        if let Some(dir) = self.secret_key_file().parent() {
            out.push(dir.to_path_buf());
        }
        out
    }

    pub fn sandbox_directories(&self) -> Vec<PathBuf> {
        self.sandbox
            .allowed_directories
            .iter()
            .map(|d| expand_home(d))
            .collect()
    }

    /// Project folders: analyses as files (`projects/<project>/analyses/<id>.yaml`).
    pub fn projects_dir(&self) -> PathBuf {
        self.data_dir.join("projects")
    }

    pub fn results_dir(&self) -> PathBuf {
        self.data_dir.join("artifacts").join("results")
    }

    pub fn server_file(&self) -> PathBuf {
        self.data_dir.join("server.json")
    }

    pub fn secrets_file(&self) -> PathBuf {
        self.data_dir.join("configs").join("secrets.enc")
    }

    pub fn secret_key_file(&self) -> PathBuf {
        self.secrets
            .key_file
            .as_deref()
            .map(expand_home)
            .unwrap_or_else(|| config_home().join("pluto-duck").join("secret.key"))
    }

    pub fn keyring_service(&self) -> &str {
        self.secrets.keyring_service.as_deref().unwrap_or("pluto-duck")
    }

    pub fn extension_directory(&self) -> PathBuf {
        self.duckdb
            .extension_directory
            .as_deref()
            .map(expand_home)
            .unwrap_or_else(|| data_home().join("pluto-duck").join("extensions"))
    }

    pub fn dbt_project_dir(&self) -> PathBuf {
        self.dbt
            .project_dir
            .as_deref()
            .map(expand_home)
            .unwrap_or_else(|| self.data_dir.join("dbt").join("core"))
    }

    /// The dbt project of each Pluto-Duck project named in `dbt.projects`.
    pub fn dbt_project_dirs(&self) -> std::collections::BTreeMap<String, PathBuf> {
        self.dbt
            .projects
            .iter()
            .map(|(k, v)| (k.clone(), expand_home(v)))
            .collect()
    }

    /// Where a request's own dbt project may be (`dbt.request_roots`, default `<data_dir>/dbt`).
    pub fn dbt_request_roots(&self) -> Vec<PathBuf> {
        if self.dbt.request_roots.is_empty() {
            return vec![self.data_dir.join("dbt")];
        }
        self.dbt.request_roots.iter().map(|p| expand_home(p)).collect()
    }

    pub fn dbt_executable(&self) -> PathBuf {
        if let Some(p) = &self.dbt.executable {
            return expand_home(p);
        }
        let venv = data_home().join("pluto-duck").join("dbt-venv").join("bin").join("dbt");
        if venv.is_file() {
            venv
        } else {
            PathBuf::from("dbt")
        }
    }

    pub fn datasets_dir(&self) -> PathBuf {
        match &self.eval.datasets_dir {
            Some(p) => expand_home(p),
            None => data_home().join("pluto-duck").join("datasets"),
        }
    }

    /// The buckets of the local dataset store.
    pub fn datasets_root(&self) -> PathBuf {
        self.datasets
            .root
            .as_deref()
            .map(expand_home)
            .unwrap_or_else(|| self.data_dir.join("datasets"))
    }

    /// The JSON lines file of the `file` lineage transport.
    pub fn lineage_path(&self) -> PathBuf {
        self.lineage
            .path
            .as_deref()
            .map(expand_home)
            .unwrap_or_else(|| self.data_dir.join("lineage").join("events.jsonl"))
    }

    pub fn data_dirs(&self) -> [PathBuf; 4] {
        ["data", "artifacts", "configs", "logs"].map(|d| self.data_dir.join(d))
    }
}

/// Every dotted key the config accepts, derived from the defaults so it cannot drift from the struct.
pub fn known_keys() -> BTreeSet<String> {
    fn walk(prefix: &str, dict: &Dict, out: &mut BTreeSet<String>) {
        for (k, v) in dict {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                Value::Dict(_, inner) => walk(&key, inner, out),
                _ => {
                    out.insert(key);
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    if let Ok(Value::Dict(_, dict)) = Value::serialize(Config::default()) {
        walk("", &dict, &mut out);
    }
    out
}

pub fn user_config_path() -> PathBuf {
    config_home().join("pluto-duck").join("config.yaml")
}

/// `.plutoduck` in the working directory or its nearest ancestor that has one.
fn find_project_file(cwd: &Path) -> Option<PathBuf> {
    cwd.ancestors().map(|d| d.join(".plutoduck")).find(|p| p.is_file())
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

fn config_home() -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| home().join(".config"))
}

fn data_home() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| home().join(".local").join("share"))
}

pub fn expand_home(p: &Path) -> PathBuf {
    match p.strip_prefix("~") {
        Ok(rest) => home().join(rest),
        Err(_) => p.to_path_buf(),
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures must return figment::Error
mod tests {
    use super::*;
    use figment::Jail;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn load_in(
        jail: &Jail,
        global: &GlobalArgs,
        serve: &ServeFlags,
        vars: &[(&str, &str)],
    ) -> Result<Loaded, figment::Error> {
        load_from(global, serve, jail.directory(), &env(vars)).map_err(|e| figment::Error::from(e.message))
    }

    fn jail_with_user_config(jail: &mut Jail, yaml: &str) {
        let cfg = jail.directory().join("cfg").display().to_string();
        jail.set_env("XDG_CONFIG_HOME", cfg);
        std::fs::create_dir_all(jail.directory().join("cfg/pluto-duck")).unwrap();
        std::fs::write(jail.directory().join("cfg/pluto-duck/config.yaml"), yaml).unwrap();
    }

    #[test]
    fn precedence_is_defaults_file_project_env_flags() {
        Jail::expect_with(|jail| {
            jail_with_user_config(jail, "server:\n  port: 8001\n  host: 127.0.0.2\nlog:\n  level: warn\n");
            let none = GlobalArgs::default();
            let c = load_in(jail, &none, &ServeFlags::default(), &[])?.config;
            assert_eq!((c.server.port, c.server.host.as_str()), (8001, "127.0.0.2"));
            assert_eq!(c.duckdb.max_connections, 8, "untouched keys keep defaults");

            jail.create_file(".plutoduck", "server:\n  port: 8002\n")?;
            let l = load_in(jail, &none, &ServeFlags::default(), &[])?;
            assert_eq!(l.config.server.port, 8002);
            assert_eq!(
                l.config.server.host, "127.0.0.2",
                "project file overrides only what it sets"
            );
            assert!(l.sources.project_file.is_some());

            let vars = [("PLUTODUCK_SERVER__PORT", "8003"), ("PLUTODUCK_LOG__LEVEL", "debug")];
            let c = load_in(jail, &none, &ServeFlags::default(), &vars)?.config;
            assert_eq!((c.server.port, c.log.level.as_str()), (8003, "debug"));

            let flags = ServeFlags {
                host: None,
                port: Some(8004),
            };
            let global = GlobalArgs {
                log_level: Some("trace".into()),
                ..GlobalArgs::default()
            };
            let l = load_in(jail, &global, &flags, &vars)?;
            assert_eq!((l.config.server.port, l.config.log.level.as_str()), (8004, "trace"));
            assert_eq!(l.sources.flags, vec!["--port", "--log-level"]);
            Ok(())
        });
    }

    #[test]
    fn data_dir_from_env_and_flag_with_home_expansion() {
        Jail::expect_with(|jail| {
            let dir = jail.directory().display().to_string();
            jail.set_env("XDG_CONFIG_HOME", dir);
            jail.set_env("HOME", "/home/someone");
            let c = load_in(
                jail,
                &GlobalArgs::default(),
                &ServeFlags::default(),
                &[("PLUTODUCK_DATA_DIR", "~/pd")],
            )?
            .config;
            assert_eq!(c.data_dir, PathBuf::from("/home/someone/pd"));
            assert_eq!(
                c.warehouse_path(),
                PathBuf::from("/home/someone/pd/data/warehouse.duckdb")
            );
            let global = GlobalArgs {
                data_dir: Some("/x".into()),
                ..GlobalArgs::default()
            };
            let c = load_in(jail, &global, &ServeFlags::default(), &[("PLUTODUCK_DATA_DIR", "/y")])?.config;
            assert_eq!(c.data_dir, PathBuf::from("/x"));
            Ok(())
        });
    }

    #[test]
    fn unknown_env_vars_warn_but_unknown_file_keys_fail() {
        Jail::expect_with(|jail| {
            let dir = jail.directory().display().to_string();
            jail.set_env("XDG_CONFIG_HOME", dir);
            let l = load_in(
                jail,
                &GlobalArgs::default(),
                &ServeFlags::default(),
                &[("PLUTODUCK_NOPE", "1")],
            )?;
            assert_eq!(l.warnings, vec!["ignoring unknown environment variable PLUTODUCK_NOPE"]);

            jail_with_user_config(jail, "sever:\n  port: 1\n");
            let err = load_in(jail, &GlobalArgs::default(), &ServeFlags::default(), &[])
                .err()
                .unwrap();
            let msg = err.to_string();
            assert!(msg.contains("sever") && !msg.contains('\n'), "{msg}");
            Ok(())
        });
    }

    #[test]
    fn wrong_types_and_bad_values_are_errors() {
        Jail::expect_with(|jail| {
            let dir = jail.directory().display().to_string();
            jail.set_env("XDG_CONFIG_HOME", dir);
            let bad_port = [("PLUTODUCK_SERVER__PORT", "eighty")];
            assert!(load_in(jail, &GlobalArgs::default(), &ServeFlags::default(), &bad_port).is_err());
            let hybrid = [("PLUTODUCK_PROFILE", "hybrid")];
            let err = load_in(jail, &GlobalArgs::default(), &ServeFlags::default(), &hybrid)
                .err()
                .unwrap();
            assert!(err.to_string().contains("hybrid.database_url"), "{err}");
            let no_key = [
                ("PLUTODUCK_PROFILE", "hybrid"),
                ("PLUTODUCK_HYBRID__DATABASE_URL", "env:PG"),
            ];
            let err = load_in(jail, &GlobalArgs::default(), &ServeFlags::default(), &no_key)
                .err()
                .unwrap();
            assert!(err.to_string().contains("hybrid.master_key"), "{err}");
            let no_lake = [
                ("PLUTODUCK_PROFILE", "hybrid"),
                ("PLUTODUCK_HYBRID__DATABASE_URL", "env:PG"),
                ("PLUTODUCK_HYBRID__MASTER_KEY", "env:KEY"),
            ];
            let err = load_in(jail, &GlobalArgs::default(), &ServeFlags::default(), &no_lake)
                .err()
                .unwrap();
            assert!(err.to_string().contains("hybrid.lake.data_path"), "{err}");
            let s3_without_keys = [
                ("PLUTODUCK_PROFILE", "hybrid"),
                ("PLUTODUCK_HYBRID__DATABASE_URL", "env:PG"),
                ("PLUTODUCK_HYBRID__MASTER_KEY", "file:/etc/pd.key"),
                ("PLUTODUCK_HYBRID__LAKE__DATA_PATH", "s3://lake/pd"),
            ];
            let err = load_in(jail, &GlobalArgs::default(), &ServeFlags::default(), &s3_without_keys)
                .err()
                .unwrap();
            assert!(err.to_string().contains("hybrid.lake.s3.access_key_id"), "{err}");
            let shared_dir = [
                ("PLUTODUCK_PROFILE", "hybrid"),
                ("PLUTODUCK_HYBRID__DATABASE_URL", "env:PG"),
                ("PLUTODUCK_HYBRID__MASTER_KEY", "env:KEY"),
                ("PLUTODUCK_HYBRID__LAKE__DATA_PATH", "/srv/lake"),
            ];
            let loaded = load_in(jail, &GlobalArgs::default(), &ServeFlags::default(), &shared_dir).unwrap();
            assert_eq!(loaded.config.hybrid.lake.schema_prefix, "lake_");
            Ok(())
        });
    }

    #[test]
    fn secrets_backend_from_file_and_env() {
        Jail::expect_with(|jail| {
            let c = Config::default();
            assert_eq!(
                (c.secrets.backend, c.keyring_service()),
                (SecretsBackend::Auto, "pluto-duck")
            );
            jail_with_user_config(jail, "secrets:\n  backend: keyring\n  keyring_service: pd-test\n");
            let none = GlobalArgs::default();
            let c = load_in(jail, &none, &ServeFlags::default(), &[])?.config;
            assert_eq!(
                (c.secrets.backend, c.keyring_service()),
                (SecretsBackend::Keyring, "pd-test")
            );
            let c = load_in(
                jail,
                &none,
                &ServeFlags::default(),
                &[("PLUTODUCK_SECRETS__BACKEND", "file")],
            )?
            .config;
            assert_eq!(c.secrets.backend, SecretsBackend::File);
            let err = load_in(
                jail,
                &none,
                &ServeFlags::default(),
                &[("PLUTODUCK_SECRETS__BACKEND", "vault")],
            )
            .err()
            .unwrap();
            assert!(err.to_string().contains("vault"), "{err}");
            let empty = [("PLUTODUCK_SECRETS__KEYRING_SERVICE", " ")];
            let err = load_in(jail, &none, &ServeFlags::default(), &empty).err().unwrap();
            assert!(err.to_string().contains("secrets.keyring_service"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn datasets_and_lineage_from_file_and_env_with_secrets_as_references() {
        Jail::expect_with(|jail| {
            let none = GlobalArgs::default();
            let serve = ServeFlags::default();
            let c = load_in(jail, &none, &serve, &[("PLUTODUCK_DATA_DIR", "/srv/pd")])?.config;
            assert_eq!(c.datasets.backend, DatasetsBackend::Local);
            assert_eq!(c.datasets_root(), PathBuf::from("/srv/pd/datasets"));
            assert_eq!(c.lineage.transport, LineageTransportName::File);
            assert_eq!(c.lineage_path(), PathBuf::from("/srv/pd/lineage/events.jsonl"));
            jail_with_user_config(
                jail,
                "datasets:\n  backend: s3\n  max_object_mb: 7\n  s3:\n    endpoint: http://127.0.0.1:9000\n    \
                 access_key_id: minio\n    secret_access_key: env:S3_SECRET\n\
                 lineage:\n  transport: http\n  url: http://127.0.0.1:5000\n  api_key: secret:marquez\n",
            );
            let c = load_in(
                jail,
                &none,
                &serve,
                &[
                    ("PLUTODUCK_LINEAGE__NAMESPACE", "acme"),
                    ("PLUTODUCK_DATASETS__S3__REGION", "eu-west-1"),
                ],
            )?
            .config;
            assert_eq!(
                (
                    c.datasets.backend,
                    c.datasets.max_object_mb,
                    c.datasets.s3.region.as_str()
                ),
                (DatasetsBackend::S3, 7, "eu-west-1")
            );
            assert_eq!(c.datasets.s3.secret_access_key.as_deref(), Some("env:S3_SECRET"));
            assert_eq!(
                (c.lineage.transport, c.lineage.namespace.as_str()),
                (LineageTransportName::Http, "acme")
            );
            // A literal secret is refused without being echoed.
            let literal = [("PLUTODUCK_DATASETS__S3__SECRET_ACCESS_KEY", "wJalrXUtnFEMI")];
            let err = load_in(jail, &none, &serve, &literal).err().unwrap().to_string();
            assert!(
                err.contains("datasets.s3.secret_access_key") && !err.contains("wJalrXUtnFEMI"),
                "{err}"
            );
            let literal = [("PLUTODUCK_LINEAGE__API_KEY", "sk-live-123")];
            let err = load_in(jail, &none, &serve, &literal).err().unwrap().to_string();
            assert!(err.contains("lineage.api_key") && !err.contains("sk-live-123"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn known_keys_cover_nested_and_optional_fields() {
        let keys = known_keys();
        for k in [
            "profile",
            "data_dir",
            "server.port",
            "server.api_token",
            "duckdb.extension_directory",
            "log.format",
            "secrets.backend",
            "secrets.keyring_service",
        ] {
            assert!(keys.contains(k), "{k} missing from {keys:?}");
        }
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures must return figment::Error
mod readme {
    use super::*;

    /// The configuration example in the README is a valid config file.
    #[test]
    fn readme_example_config_loads() {
        let readme = include_str!("../../README.md");
        let start = readme
            .find("```yaml\nprofile: local")
            .expect("README has the config example")
            + "```yaml\n".len();
        let example = &readme[start..start + readme[start..].find("```").expect("closed block")];
        figment::Jail::expect_with(|jail| {
            let dir = jail.directory().display().to_string();
            jail.set_env("XDG_CONFIG_HOME", dir);
            jail.create_file("example.yaml", example)?;
            let global = GlobalArgs {
                config: Some(jail.directory().join("example.yaml")),
                ..GlobalArgs::default()
            };
            let loaded = load_from(&global, &ServeFlags::default(), jail.directory(), &[])
                .map_err(|e| figment::Error::from(e.message))?;
            assert_eq!(loaded.config.server.api_token.as_deref(), Some("secret:api_token"));
            assert_eq!(loaded.config.duckdb.memory_limit.as_deref(), Some("4GB"));
            assert_eq!(loaded.config.secrets.backend, SecretsBackend::Auto);
            Ok(())
        });
    }
}
