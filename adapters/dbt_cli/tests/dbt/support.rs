use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use pluto_duck_application::ports::{
    DbtCommand, DbtEvent, DbtInvocation, DbtOutcome, NodeResult, TransformError, TransformationRunner,
};
use pluto_duck_dbt_cli::{DbtCli, DbtCliConfig, DuckDbProfile};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub const DBT_VAR: &str = "PLUTODUCK_TEST_DBT";

/// The dbt executable under test. Never skipped: without it the test fails and says what to set.
pub fn dbt_executable() -> PathBuf {
    match std::env::var_os(DBT_VAR) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => panic!(
            "{DBT_VAR} is not set: point it at the dbt executable scripts/setup.sh installs \
             ($PLUTODUCK_SHARE/dbt-venv/bin/dbt, i.e. ~/.local/share/pluto-duck/dbt-venv/bin/dbt)"
        ),
    }
}

pub fn runner() -> DbtCli {
    DbtCli::new(DbtCliConfig::new(dbt_executable()))
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The offline DuckDB extensions scripts/setup.sh installs. Never skipped: the test fails naming the variable.
pub fn extension_directory() -> PathBuf {
    match std::env::var_os("PLUTODUCK_TEST_EXTENSION_DIR") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => panic!(
            "PLUTODUCK_TEST_EXTENSION_DIR is not set: point it at the DuckDB extensions scripts/setup.sh installs \
             ($PLUTODUCK_SHARE/extensions)"
        ),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        let name = name.to_str().unwrap();
        // What a by-hand dbt run may have left in the source tree.
        if ["target", "logs", "dbt_packages"].contains(&name) || name.ends_with(".duckdb") || name.ends_with(".wal") {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(name));
        } else {
            std::fs::copy(entry.path(), to.join(name)).unwrap();
        }
    }
}

/// A copy of the starter project in a temporary folder, with a generated profile building into `dbt.duckdb` there.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub project: PathBuf,
    pub profiles: PathBuf,
    pub database: PathBuf,
    runs: AtomicUsize,
}

impl Project {
    pub fn starter() -> Self {
        Self::starter_with(|p| p)
    }

    pub fn starter_with(profile: impl FnOnce(DuckDbProfile) -> DuckDbProfile) -> Self {
        let dir = tempfile::Builder::new().prefix("pd-dbt-").tempdir().unwrap();
        let project = dir.path().join("project");
        copy_dir(&repo_root().join("dbt_projects/core"), &project);
        let profiles = dir.path().join("profiles");
        let database = dir.path().join("dbt.duckdb");
        profile(DuckDbProfile::new(&database)).write(&profiles).unwrap();
        Project {
            dir,
            project,
            profiles,
            database,
            runs: AtomicUsize::new(0),
        }
    }

    pub fn write(&self, rel: &str, contents: &str) {
        let path = self.project.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    /// An invocation with its own fresh target path.
    pub fn invocation(&self, command: DbtCommand) -> DbtInvocation {
        let n = self.runs.fetch_add(1, Ordering::SeqCst);
        let target = self
            .dir
            .path()
            .join("runs")
            .join(format!("{n}-{}", command.as_str().replace(' ', "-")));
        DbtInvocation::new(command, &self.project, &self.profiles, target)
    }

    /// Opens the database dbt built, read-only (dbt must not be running).
    pub fn query_i64(&self, sql: &str) -> i64 {
        let db = duckdb::Connection::open_with_flags(
            &self.database,
            duckdb::Config::default()
                .access_mode(duckdb::AccessMode::ReadOnly)
                .unwrap(),
        )
        .unwrap();
        db.query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

/// Runs the invocation, collecting its events as they come.
pub async fn invoke(inv: DbtInvocation) -> (Result<DbtOutcome, TransformError>, Vec<DbtEvent>) {
    invoke_with(&runner(), inv, CancellationToken::new()).await
}

pub async fn invoke_with(
    runner: &DbtCli,
    inv: DbtInvocation,
    cancel: CancellationToken,
) -> (Result<DbtOutcome, TransformError>, Vec<DbtEvent>) {
    let (tx, mut rx) = mpsc::channel(64);
    let collector = tokio::spawn(async move {
        let mut events = Vec::new();
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        events
    });
    let outcome = runner.invoke(inv, tx, cancel).await;
    (outcome, collector.await.unwrap())
}

pub fn result<'a>(outcome: &'a DbtOutcome, name: &str) -> &'a NodeResult {
    outcome
        .node_results
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no result for {name} in {:#?}", outcome.node_results))
}

/// Log lines, for assertion messages.
pub fn log_text(events: &[DbtEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            DbtEvent::Log { message, .. } => Some(message.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}
