//! `DbtCli`: the `TransformationRunner` port on the dbt command line. Each invocation is one dbt process
//! (`--log-format json`), its events read as they stream, its artifacts read when it exits.
//!
//! Exit codes: 0 succeeded, 1 a node failed, 2 dbt could not run (a runtime error, or a project it could not
//! load: then an error), anything else crashed. Cancel: SIGINT (dbt cancels its queries and writes
//! run_results.json), SIGTERM after `interrupt_grace`, SIGKILL after `terminate_grace`; the process is always
//! reaped.
//!
//! [`DuckDbProfile`] writes the `profiles.yml` of a project: dbt-duckdb building into the project's own file,
//! offline.

mod args;
mod artifacts;
mod events;
mod process;
mod profile;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use pluto_duck_application::ports::{
    DbtEvent, DbtInvocation, DbtOutcome, DbtProfileSpec, DbtVersion, TransformError, TransformationRunner,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use profile::{DuckDbProfile, ProfileAttachment, BUILT_IN_EXTENSIONS, DEFAULT_PROFILE_NAME};

/// What fixes a missing or broken dbt.
pub const INSTALL_HINT: &str =
    "run scripts/setup.sh (installs dbt-core~=1.11.0 and dbt-duckdb~=1.11.1 in a virtualenv)";

#[derive(Debug, Clone)]
pub struct DbtCliConfig {
    /// The dbt executable: `~/.local/share/pluto-duck/dbt-venv/bin/dbt` as scripts/setup.sh installs it.
    pub executable: PathBuf,
    /// How long dbt gets after SIGINT (it cancels its queries, writes run_results.json) before SIGTERM. dbt
    /// usually stops within a second; but dbt-duckdb interrupts only queries already executing, so an interrupt
    /// that lands as a node starts leaves dbt waiting for that query, and only SIGTERM ends it.
    pub interrupt_grace: Duration,
    /// How long after SIGTERM before SIGKILL.
    pub terminate_grace: Duration,
    /// How long `dbt --version` may take (it starts Python and loads dbt: a few seconds).
    pub version_timeout: Duration,
    /// The offline DuckDB extensions, written into the profiles Pluto-Duck generates.
    pub extension_directory: Option<PathBuf>,
    /// dbt's threads in generated profiles (the profile's default, 2, when `None`).
    pub threads: Option<u32>,
}

impl DbtCliConfig {
    pub fn new(executable: impl Into<PathBuf>) -> Self {
        DbtCliConfig {
            executable: executable.into(),
            interrupt_grace: Duration::from_secs(5),
            terminate_grace: Duration::from_secs(5),
            version_timeout: Duration::from_secs(120),
            extension_directory: None,
            threads: None,
        }
    }
}

pub struct DbtCli {
    config: DbtCliConfig,
}

impl DbtCli {
    pub fn new(config: DbtCliConfig) -> Self {
        DbtCli { config }
    }

    pub fn config(&self) -> &DbtCliConfig {
        &self.config
    }
}

#[async_trait]
impl TransformationRunner for DbtCli {
    async fn version(&self) -> Result<DbtVersion, TransformError> {
        let exe = &self.config.executable;
        let out = tokio::time::timeout(
            self.config.version_timeout,
            tokio::process::Command::new(exe)
                .arg("--version")
                .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .map_err(|_| {
            TransformError::Unavailable(format!(
                "{} --version did not answer within {:?}",
                exe.display(),
                self.config.version_timeout
            ))
        })?
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => TransformError::Unavailable(
                format!("dbt executable {} cannot be run ({e}): {INSTALL_HINT}", exe.display()),
            ),
            _ => TransformError::Internal(format!("cannot start {}: {e}", exe.display())),
        })?;
        let text = String::from_utf8_lossy(&out.stdout);
        match (out.status.success(), parse_version(&text)) {
            (true, Some(v)) => Ok(v),
            _ => Err(TransformError::Unavailable(format!(
                "{} --version did not report dbt-core ({}): {INSTALL_HINT}",
                exe.display(),
                out.status
            ))),
        }
    }

    fn write_profile(&self, spec: &DbtProfileSpec, profiles_dir: &Path) -> Result<PathBuf, TransformError> {
        let mut profile = DuckDbProfile::new(&spec.database);
        profile.profile_name = spec.profile_name.clone();
        profile.target_name = spec.target_name.clone();
        profile.extension_directory = self.config.extension_directory.clone();
        if let Some(threads) = self.config.threads {
            profile.threads = threads;
        }
        for (path, alias, read_only) in &spec.attach {
            profile = profile.attach(path, alias, *read_only);
        }
        profile.write(profiles_dir)
    }

    #[tracing::instrument(skip_all, fields(command = %invocation.command))]
    async fn invoke(
        &self,
        invocation: DbtInvocation,
        events: mpsc::Sender<DbtEvent>,
        cancel: CancellationToken,
    ) -> Result<DbtOutcome, TransformError> {
        process::invoke(&self.config, invocation, events, cancel).await
    }

    fn read_manifest(&self, target_path: &Path) -> Option<pluto_duck_application::ports::DbtManifest> {
        artifacts::read_manifest(target_path)
    }
}

/// Reads `Core: - installed: 1.11.16` and `Plugins: - duckdb: 1.11.1` from `dbt --version`.
fn parse_version(text: &str) -> Option<DbtVersion> {
    let word = |v: &str| v.split_whitespace().next().map(str::to_owned);
    let mut core = None;
    let mut duckdb = None;
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("- installed:") {
            core = core.or_else(|| word(v));
        } else if let Some(v) = line.strip_prefix("- duckdb:") {
            duckdb = word(v);
        }
    }
    Some(DbtVersion { core: core?, duckdb })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dbt_version_output() {
        let text = "Core:\n  - installed: 1.11.16\n  - latest:    1.12.6  - Update available!\n\n\
                    Plugins:\n  - duckdb: 1.11.1 - Up to date!\n";
        assert_eq!(
            parse_version(text),
            Some(DbtVersion {
                core: "1.11.16".into(),
                duckdb: Some("1.11.1".into())
            })
        );
        assert_eq!(parse_version("garbage"), None);
    }
}
