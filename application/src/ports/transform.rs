//! Running dbt over a project: the `TransformationRunner` port, what an invocation asks, the events it streams
//! and what it ends with. Plain Rust types: no dbt JSON crosses this line (the adapter reads it).

mod artifacts;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use thiserror::Error;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ErrorKind;

pub use artifacts::{
    CatalogColumn, CatalogEntry, DbtArtifacts, DbtCatalog, DbtColumn, DbtEdge, DbtManifest, DbtNode, DbtTestRef,
    RunSummary,
};

/// Messages are dbt's own (safe to show: they name files, models and SQL errors) or ours; none carries the value
/// of an environment variable or a secret.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TransformError {
    /// The dbt executable is missing or cannot be run; the message names the command that installs it.
    #[error("{0}")]
    Unavailable(String),
    /// The project directory does not exist or has no `dbt_project.yml`.
    #[error("{0}")]
    ProjectNotFound(String),
    /// dbt could not load the project or its profile (YAML, Jinja, a missing profile...): dbt's own message.
    #[error("{0}")]
    ProjectInvalid(String),
    /// The invocation itself is wrong (a flag the command does not take, an option dbt refused).
    #[error("{0}")]
    InvalidInvocation(String),
    #[error("dbt runner error: {0}")]
    Internal(String),
}

impl TransformError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            TransformError::Unavailable(_) => ErrorKind::Unavailable,
            TransformError::ProjectNotFound(_)
            | TransformError::ProjectInvalid(_)
            | TransformError::InvalidInvocation(_) => ErrorKind::Invalid,
            TransformError::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// The dbt commands Pluto-Duck runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DbtCommand {
    Run,
    Test,
    Build,
    Seed,
    Compile,
    /// `dbt ls`: the selected nodes, in [`DbtOutcome::listed`].
    List,
    /// `dbt docs generate`: writes `catalog.json`, read into [`DbtArtifacts::catalog_summary`].
    DocsGenerate,
}

impl DbtCommand {
    /// As dbt spells it on its command line: `run`, `docs generate`.
    pub fn as_str(self) -> &'static str {
        match self {
            DbtCommand::Run => "run",
            DbtCommand::Test => "test",
            DbtCommand::Build => "build",
            DbtCommand::Seed => "seed",
            DbtCommand::Compile => "compile",
            DbtCommand::List => "ls",
            DbtCommand::DocsGenerate => "docs generate",
        }
    }

    /// `--full-refresh` is a flag of run, build, seed and compile only.
    pub fn takes_full_refresh(self) -> bool {
        matches!(
            self,
            DbtCommand::Run | DbtCommand::Build | DbtCommand::Seed | DbtCommand::Compile
        )
    }

    /// Every command but `ls` runs on dbt's thread pool.
    pub fn takes_threads(self) -> bool {
        !matches!(self, DbtCommand::List)
    }
}

impl fmt::Display for DbtCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One dbt command over one project.
#[derive(Clone)]
pub struct DbtInvocation {
    pub command: DbtCommand,
    /// The folder holding `dbt_project.yml`; dbt runs in it (a relative path in a profile is relative to it).
    pub project_dir: PathBuf,
    /// The folder holding `profiles.yml`.
    pub profiles_dir: PathBuf,
    /// This invocation's own folder for dbt's artifacts (`run_results.json`, `manifest.json`, `catalog.json`,
    /// compiled SQL) and its debug log `dbt.log`. Created if missing. One folder per invocation: artifacts left
    /// there by another invocation are recognised by their invocation id and ignored.
    pub target_path: PathBuf,
    /// A previous invocation's target path over the same project: its parse cache (`partial_parse.msgpack`) is
    /// copied in first, so dbt re-parses only the files that changed (dbt itself discards a cache made with
    /// other vars, profile or version). Without it every invocation parses the whole project.
    pub reuse_parse_from: Option<PathBuf>,
    /// dbt node selection (`--select`), one method or node per item: `stg_orders+`, `tag:nightly`.
    pub select: Vec<String>,
    pub exclude: Vec<String>,
    /// `--vars`: a JSON object (dbt reads it as YAML, of which JSON is a subset).
    pub vars: serde_json::Map<String, serde_json::Value>,
    pub full_refresh: bool,
    /// The profile target (`--target`); the profile's default when `None`.
    pub target: Option<String>,
    /// dbt's thread count (`--threads`); the profile's when `None`.
    pub threads: Option<u32>,
    /// Extra environment for dbt (read in profiles and models through `env_var()`). Values may be secrets:
    /// they never appear in `Debug`, logs or messages.
    pub env: BTreeMap<String, SecretString>,
}

impl DbtInvocation {
    pub fn new(
        command: DbtCommand,
        project_dir: impl Into<PathBuf>,
        profiles_dir: impl Into<PathBuf>,
        target_path: impl Into<PathBuf>,
    ) -> Self {
        DbtInvocation {
            command,
            project_dir: project_dir.into(),
            profiles_dir: profiles_dir.into(),
            target_path: target_path.into(),
            reuse_parse_from: None,
            select: Vec::new(),
            exclude: Vec::new(),
            vars: serde_json::Map::new(),
            full_refresh: false,
            target: None,
            threads: None,
            env: BTreeMap::new(),
        }
    }

    pub fn select(mut self, selector: impl Into<String>) -> Self {
        self.select.push(selector.into());
        self
    }

    pub fn exclude(mut self, selector: impl Into<String>) -> Self {
        self.exclude.push(selector.into());
        self
    }

    pub fn var(mut self, name: impl Into<String>, value: serde_json::Value) -> Self {
        self.vars.insert(name.into(), value);
        self
    }

    pub fn full_refresh(mut self, full_refresh: bool) -> Self {
        self.full_refresh = full_refresh;
        self
    }

    pub fn env(mut self, name: impl Into<String>, value: SecretString) -> Self {
        self.env.insert(name.into(), value);
        self
    }

    /// Refuses what dbt would refuse with a usage error: flags the command does not take, empty selectors,
    /// environment names that are not names.
    pub fn validate(&self) -> Result<(), TransformError> {
        if self.full_refresh && !self.command.takes_full_refresh() {
            return Err(TransformError::InvalidInvocation(format!(
                "dbt {} takes no full refresh (run, build, seed and compile do)",
                self.command
            )));
        }
        if self.threads.is_some() && !self.command.takes_threads() {
            return Err(TransformError::InvalidInvocation(format!(
                "dbt {} takes no thread count",
                self.command
            )));
        }
        if self.threads == Some(0) {
            return Err(TransformError::InvalidInvocation("threads must be at least 1".into()));
        }
        if let Some(s) = self.select.iter().chain(&self.exclude).find(|s| s.trim().is_empty()) {
            return Err(TransformError::InvalidInvocation(format!("empty node selector {s:?}")));
        }
        if let Some(name) = self
            .env
            .keys()
            .find(|k| k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            return Err(TransformError::InvalidInvocation(format!(
                "environment variable name {name:?} is not a name"
            )));
        }
        Ok(())
    }
}

/// Environment values are left out: they may be secrets.
impl fmt::Debug for DbtInvocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbtInvocation")
            .field("command", &self.command)
            .field("project_dir", &self.project_dir)
            .field("profiles_dir", &self.profiles_dir)
            .field("target_path", &self.target_path)
            .field("reuse_parse_from", &self.reuse_parse_from)
            .field("select", &self.select)
            .field("exclude", &self.exclude)
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .field("full_refresh", &self.full_refresh)
            .field("target", &self.target)
            .field("threads", &self.threads)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// dbt's kinds of node (`resource_type` in its events and artifacts).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DbtResourceType {
    Model,
    Seed,
    Snapshot,
    Test,
    UnitTest,
    Source,
    Analysis,
    Operation,
    Exposure,
    Metric,
    SemanticModel,
    SavedQuery,
    Other(String),
}

impl DbtResourceType {
    pub fn parse(s: &str) -> Self {
        match s {
            "model" => Self::Model,
            "seed" => Self::Seed,
            "snapshot" => Self::Snapshot,
            "test" => Self::Test,
            "unit_test" => Self::UnitTest,
            "source" => Self::Source,
            "analysis" => Self::Analysis,
            "operation" => Self::Operation,
            "exposure" => Self::Exposure,
            "metric" => Self::Metric,
            "semantic_model" => Self::SemanticModel,
            "saved_query" => Self::SavedQuery,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The type of a unique id: `model.shop.orders` is a model.
    pub fn of_unique_id(unique_id: &str) -> Self {
        Self::parse(unique_id.split('.').next().unwrap_or_default())
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Model => "model",
            Self::Seed => "seed",
            Self::Snapshot => "snapshot",
            Self::Test => "test",
            Self::UnitTest => "unit_test",
            Self::Source => "source",
            Self::Analysis => "analysis",
            Self::Operation => "operation",
            Self::Exposure => "exposure",
            Self::Metric => "metric",
            Self::SemanticModel => "semantic_model",
            Self::SavedQuery => "saved_query",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for DbtResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A node's result as dbt reports it (`status` in run_results.json and in its NodeFinished event).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NodeStatus {
    /// A model, seed or snapshot built.
    Success,
    /// A test found nothing wrong.
    Pass,
    /// A test with `severity: warn` found rows.
    Warn,
    /// A test found rows.
    Fail,
    /// The node's SQL or its materialization failed.
    Error,
    /// Not run because something upstream failed.
    Skipped,
    NoOp,
    PartialSuccess,
    Other(String),
}

impl NodeStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "success" => Self::Success,
            "pass" => Self::Pass,
            "warn" => Self::Warn,
            "fail" => Self::Fail,
            "error" | "runtime error" => Self::Error,
            "skipped" => Self::Skipped,
            "no-op" => Self::NoOp,
            "partial success" => Self::PartialSuccess,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Fail or error: what makes dbt exit 1.
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Fail | Self::Error)
    }
}

/// One node dbt ran (or skipped).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeResult {
    pub unique_id: String,
    pub resource_type: DbtResourceType,
    pub name: String,
    pub status: NodeStatus,
    pub execution_time: Duration,
    /// From the adapter's response; dbt-duckdb does not report it (always `None` there).
    pub rows_affected: Option<u64>,
    /// dbt's message: `OK`, `INSERT 0 12`, the SQL error of a failed model, `Got 3 results, configured to fail if != 0`.
    pub message: Option<String>,
    /// How many rows a test found.
    pub failures: Option<u64>,
    /// `"db"."schema"."name"` for nodes that are relations.
    pub relation_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DbtLogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// What an invocation streams, in dbt's order. Exactly one `InvocationFinished` comes last.
#[derive(Debug, Clone, PartialEq)]
pub enum DbtEvent {
    /// dbt started and said who it is (its first event).
    InvocationStarted {
        invocation_id: String,
        dbt_version: String,
    },
    NodeStarted {
        unique_id: String,
        resource_type: DbtResourceType,
        name: String,
    },
    NodeFinished(NodeResult),
    /// A line of dbt's log, info and above (its text as dbt prints it without colours); `event` is dbt's event
    /// name (`LogModelResult`, `MainEncounteredError`...) or `stdout` for a line that was not a JSON event.
    Log {
        level: DbtLogLevel,
        event: String,
        message: String,
    },
    /// The process is gone and its artifacts are read: the invocation's status and how long it took.
    InvocationFinished {
        status: DbtStatus,
        elapsed: Duration,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbtStatus {
    /// dbt exited 0.
    Succeeded,
    /// dbt exited 1: a model, seed or snapshot errored or a test failed; the rest ran or were skipped.
    NodesFailed,
    /// dbt exited 2 after loading the project: it could not run (the database file locked, a connection
    /// refused, an internal error). [`DbtOutcome::error`] has dbt's message.
    RuntimeError,
    /// dbt exited otherwise or was killed by a signal it was not sent by us.
    Crashed,
    /// Stopped through the cancellation token; [`DbtOutcome::node_results`] lists what finished before.
    Cancelled,
}

/// SQL dbt compiled and printed for a selected node (`dbt compile --select ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledSql {
    pub unique_id: String,
    pub sql: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DbtOutcome {
    pub status: DbtStatus,
    /// The process's exit code; `None` when a signal ended it.
    pub exit_code: Option<i32>,
    pub invocation_id: Option<String>,
    /// Why a runtime error or a crash happened: dbt's message, else the end of its stderr.
    pub error: Option<String>,
    /// From run_results.json when dbt wrote it for this invocation, else from its NodeFinished events.
    pub node_results: Vec<NodeResult>,
    /// `ls`: the unique ids of the selected nodes, in dbt's order.
    pub listed: Vec<String>,
    /// `compile --select`: the SQL dbt printed.
    pub compiled: Vec<CompiledSql>,
    pub artifacts: DbtArtifacts,
    pub elapsed: Duration,
}

/// The installed dbt, as `dbt --version` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbtVersion {
    /// dbt-core's version: `1.11.16`.
    pub core: String,
    /// The dbt-duckdb plugin's version, when installed.
    pub duckdb: Option<String>,
}

/// The dbt profile Pluto-Duck writes for one of its projects: dbt builds into `database` and reads the
/// attachments (the project's source snapshot, read-only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbtProfileSpec {
    /// The `profile:` the dbt project's `dbt_project.yml` asks for.
    pub profile_name: String,
    pub target_name: String,
    pub database: PathBuf,
    /// `(path, alias, read_only)`: `ATTACH '<path>' AS <alias>`.
    pub attach: Vec<(PathBuf, String, bool)>,
}

/// Runs dbt. Implementations run one invocation per call; calls may run concurrently (over different
/// projects: two dbt processes cannot write one DuckDB file).
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait TransformationRunner: Send + Sync {
    async fn version(&self) -> Result<DbtVersion, TransformError>;

    /// Writes `profiles.yml` into `profiles_dir` (replacing the one there) for the runner's adapter; returns
    /// its path.
    fn write_profile(&self, spec: &DbtProfileSpec, profiles_dir: &std::path::Path) -> Result<PathBuf, TransformError>;

    /// Runs the invocation to its end, sending events as dbt emits them (waiting while `events` is full; a
    /// dropped receiver loses the events, not the run). Cancelling the token stops dbt (interrupt, then
    /// terminate, then kill) and resolves with [`DbtStatus::Cancelled`]. A failing model or test is an
    /// outcome, not an error: errors are for what kept dbt from running the project at all.
    async fn invoke(
        &self,
        invocation: DbtInvocation,
        events: mpsc::Sender<DbtEvent>,
        cancel: CancellationToken,
    ) -> Result<DbtOutcome, TransformError>;

    /// The manifest an earlier invocation left in its target path, summarised; `None` when there is none there
    /// (blocking: a file read).
    fn read_manifest(&self, target_path: &std::path::Path) -> Option<DbtManifest>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(command: DbtCommand) -> DbtInvocation {
        DbtInvocation::new(command, "/p", "/p", "/t")
    }

    #[test]
    fn flags_a_command_does_not_take_are_refused() {
        assert!(inv(DbtCommand::Build).full_refresh(true).validate().is_ok());
        let e = inv(DbtCommand::Test).full_refresh(true).validate().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert!(e.to_string().contains("dbt test takes no full refresh"), "{e}");
        let mut ls = inv(DbtCommand::List);
        ls.threads = Some(2);
        assert!(ls.validate().is_err());
        assert!(inv(DbtCommand::Run).select(" ").validate().is_err());
        assert!(inv(DbtCommand::Run)
            .env("A B", SecretString::from("x".to_owned()))
            .validate()
            .is_err());
    }

    #[test]
    fn debug_leaves_environment_values_out() {
        let i = inv(DbtCommand::Run).env("PG_PASSWORD", SecretString::from("hunter2".to_owned()));
        let s = format!("{i:?}");
        assert!(s.contains("PG_PASSWORD") && !s.contains("hunter2"), "{s}");
    }

    #[test]
    fn statuses_and_types_read_dbt_spelling() {
        assert_eq!(NodeStatus::parse("runtime error"), NodeStatus::Error);
        assert!(NodeStatus::parse("fail").is_failure());
        assert!(!NodeStatus::parse("warn").is_failure());
        assert_eq!(
            DbtResourceType::of_unique_id("test.shop.unique_orders_id.9c1"),
            DbtResourceType::Test
        );
        assert_eq!(DbtResourceType::parse("unit_test").as_str(), "unit_test");
        assert_eq!(DbtCommand::DocsGenerate.to_string(), "docs generate");
    }
}
