//! `pluto-duck doctor`: what works and what does not, with the fix for each problem.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use pluto_duck_application::ports::Warehouse;
use pluto_duck_duckdb::DuckDbWarehouse;
use serde_json::{json, Value};

use crate::cli::DoctorArgs;
use crate::config::{Config, Loaded, ProfileName};
use crate::error::{CliError, CliResult};
use crate::{secrets, wiring};

struct Report {
    checks: Vec<Value>,
    problems: usize,
}

impl Report {
    fn add(&mut self, name: &str, ok: bool, detail: String, fix: Option<String>) {
        if !ok {
            self.problems += 1;
        }
        self.checks
            .push(json!({ "check": name, "ok": ok, "detail": detail, "fix": fix }));
    }
}

pub async fn doctor(loaded: &Loaded, args: &DoctorArgs) -> CliResult<ExitCode> {
    let config = &loaded.config;
    let mut r = Report {
        checks: Vec::new(),
        problems: 0,
    };
    r.add(
        "version",
        true,
        format!("pluto-duck {}", env!("CARGO_PKG_VERSION")),
        None,
    );
    r.add("profile", true, format!("{:?}", config.profile).to_lowercase(), None);
    let s = &loaded.sources;
    r.add(
        "config sources",
        true,
        format!(
            "defaults; user file {} ({}); project file {}; env {}; flags {}",
            s.user_file
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            if s.user_file_exists { "found" } else { "absent" },
            s.project_file
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "none".into()),
            if s.env_vars.is_empty() {
                "none".into()
            } else {
                s.env_vars.join(", ")
            },
            if s.flags.is_empty() {
                "none".into()
            } else {
                s.flags.join(", ")
            },
        ),
        None,
    );
    check_paths(config, &mut r);
    check_duckdb(config, &mut r).await;
    check_dbt(config, &mut r).await;
    match secrets::select_store(config).await {
        Ok(s) => r.add("secrets", true, s.description, None),
        Err(e) => r.add(
            "secrets",
            false,
            e.to_string(),
            Some("start an OS keyring (README: \"Secret backends\") or set secrets.backend: file".into()),
        ),
    }
    if config.profile == ProfileName::Hybrid {
        let store = secrets::secret_store(config);
        match wiring::metadata_store(config, store.as_ref()).await {
            Ok(md) => match md.ping().await {
                Ok(()) => r.add("postgres", true, "control plane answers".into(), None),
                Err(e) => r.add(
                    "postgres",
                    false,
                    e.to_string(),
                    Some("check hybrid.database_url".into()),
                ),
            },
            Err(e) => r.add(
                "postgres",
                false,
                e.message,
                Some("check hybrid.database_url and that PostgreSQL runs".into()),
            ),
        }
        match wiring::master_key(config, store.as_ref()).await {
            Ok(_) => r.add(
                "master key",
                true,
                "the secrets' key is readable (not shown)".into(),
                None,
            ),
            Err(e) => r.add(
                "master key",
                false,
                e.message,
                Some("set hybrid.master_key to env:VAR or file:/path holding 64 hex digits".into()),
            ),
        }
        lake_checks(&mut r, config, store.as_ref()).await;
    }

    if args.json {
        let out = json!({ "ok": r.problems == 0, "problems": r.problems, "checks": r.checks });
        println!(
            "{}",
            serde_json::to_string_pretty(&out).map_err(|e| CliError::internal(e.to_string()))?
        );
    } else {
        for c in &r.checks {
            let mark = if c["ok"] == true { "ok  " } else { "FAIL" };
            println!(
                "{mark} {:<22} {}",
                c["check"].as_str().unwrap_or_default(),
                c["detail"].as_str().unwrap_or_default()
            );
            if let Some(fix) = c["fix"].as_str() {
                println!("     {:<22} fix: {fix}", "");
            }
        }
        println!(
            "{}",
            if r.problems == 0 {
                "all checks passed".to_owned()
            } else {
                format!("{} problem(s) found", r.problems)
            }
        );
    }
    Ok(if r.problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn check_paths(config: &Config, r: &mut Report) {
    let dir = &config.data_dir;
    r.add(
        "data dir",
        true,
        format!(
            "{} ({})",
            dir.display(),
            if dir.is_dir() {
                "exists"
            } else {
                "not created yet: run pluto-duck init"
            }
        ),
        None,
    );
    let wh = config.warehouse_path();
    let size = std::fs::metadata(&wh).map(|m| m.len()).ok();
    let server = std::fs::read_to_string(config.server_file())
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok());
    r.add(
        "warehouse",
        true,
        format!(
            "{} ({}{})",
            wh.display(),
            size.map(|b| format!("{:.1} MB", b as f64 / 1e6))
                .unwrap_or_else(|| "not created yet".into()),
            server
                .and_then(|v| v["url"].as_str().map(|u| format!("; held by the server at {u}")))
                .unwrap_or_default()
        ),
        None,
    );
    r.add("metadata", true, config.metadata_path().display().to_string(), None);
    r.add("logs", true, config.log_file().display().to_string(), None);
    let probe = nearest_existing(dir);
    match nix::sys::statvfs::statvfs(&probe) {
        Ok(st) => {
            let free = st.blocks_available() as f64 * st.fragment_size() as f64;
            let total = st.blocks() as f64 * st.fragment_size() as f64;
            let ok = free > 1e9;
            r.add(
                "disk space",
                ok,
                format!(
                    "{:.1} GB free of {:.1} GB at {}",
                    free / 1e9,
                    total / 1e9,
                    probe.display()
                ),
                (!ok).then(|| "free some disk space: DuckDB spills to disk and stores results".into()),
            );
        }
        Err(e) => r.add(
            "disk space",
            false,
            format!("cannot read {}: {e}", probe.display()),
            None,
        ),
    }
}

fn nearest_existing(p: &Path) -> std::path::PathBuf {
    p.ancestors()
        .find(|a| a.exists())
        .unwrap_or(Path::new("/"))
        .to_path_buf()
}

async fn check_duckdb(config: &Config, r: &mut Report) {
    // In memory: the server may hold the warehouse file, and version and extensions do not depend on it.
    let wh = match DuckDbWarehouse::open(&wiring::duckdb_config(config, true)) {
        Ok(wh) => wh,
        Err(e) => return r.add("duckdb", false, e.to_string(), Some("run scripts/setup.sh".into())),
    };
    match wh.version().await {
        Ok(v) => r.add(
            "duckdb",
            true,
            format!("{v} (extension directory {})", wh.extension_directory().display()),
            None,
        ),
        Err(e) => r.add("duckdb", false, e.to_string(), None),
    }
    match wh.extensions().await {
        Ok(exts) => {
            for e in exts {
                let detail = if e.installed {
                    "installed".to_owned()
                } else {
                    "MISSING".to_owned()
                };
                r.add(&format!("extension {}", e.name), e.installed, detail, e.install_hint);
            }
        }
        Err(e) => r.add("extensions", false, e.to_string(), None),
    }
}

async fn check_dbt(config: &Config, r: &mut Report) {
    let exe = config.dbt_executable();
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(&exe)
            .arg("--version")
            .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
            .kill_on_drop(true)
            .output(),
    )
    .await;
    let fix =
        Some("run scripts/setup.sh (installs dbt-core~=1.11.0 and dbt-duckdb~=1.11.1 in a virtualenv)".to_owned());
    match out {
        Ok(Ok(o)) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let (core, duckdb) = parse_dbt_version(&text);
            let ok = core.is_some() && duckdb.is_some();
            r.add(
                "dbt",
                ok,
                format!(
                    "dbt-core {} with dbt-duckdb {} ({})",
                    core.unwrap_or_else(|| "?".into()),
                    duckdb.unwrap_or_else(|| "missing".into()),
                    exe.display()
                ),
                (!ok).then(|| fix.clone()).flatten(),
            );
        }
        Ok(Ok(o)) => r.add(
            "dbt",
            false,
            format!("{} --version exited with {}", exe.display(), o.status),
            fix,
        ),
        Ok(Err(e)) => r.add("dbt", false, format!("{} not found: {e}", exe.display()), fix),
        Err(_) => r.add("dbt", false, format!("{} --version timed out", exe.display()), fix),
    }
}

/// Reads `Core: - installed: 1.11.2` and `Plugins: - duckdb: 1.11.1` from `dbt --version`.
fn parse_dbt_version(text: &str) -> (Option<String>, Option<String>) {
    let mut core = None;
    let mut duckdb = None;
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("- installed:") {
            core.get_or_insert_with(|| v.split_whitespace().next().unwrap_or_default().to_owned());
        } else if let Some(v) = line.strip_prefix("- duckdb:") {
            duckdb = v.split_whitespace().next().map(str::to_owned);
        }
    }
    (core, duckdb)
}

/// The hybrid profile's shared warehouse: its object store answers, and a project's lake attaches (the
/// catalog in PostgreSQL, through DuckDB's own connection).
async fn lake_checks(r: &mut Report, config: &Config, store: &dyn pluto_duck_application::ports::SecretStore) {
    let lake = match wiring::lake_config(config, store).await {
        Ok(lake) => lake,
        Err(e) => {
            r.add(
                "lake",
                false,
                e.message,
                Some("check hybrid.lake.* and hybrid.database_url".into()),
            );
            return;
        }
    };
    let path = lake.as_ref().map(|l| l.data_path.clone()).unwrap_or_default();
    let mut duck = wiring::duckdb_config(config, true);
    duck.lake = lake;
    let warehouse = match DuckDbWarehouse::open(&duck) {
        Ok(w) => w,
        Err(e) => {
            r.add("lake", false, e.to_string(), None);
            return;
        }
    };
    match warehouse.check_lake().await {
        Ok(()) => r.add("object store", true, format!("{path} answers"), None),
        Err(e) => r.add(
            "object store",
            false,
            e.to_string(),
            Some("check hybrid.lake.data_path, hybrid.lake.s3.* and that the object store runs".into()),
        ),
    }
    let project = pluto_duck_domain::ProjectId::parse(pluto_duck_domain::ProjectId::DEFAULT);
    let attached = match project {
        Ok(p) => pluto_duck_application::ports::Lake::snapshots(&warehouse, &p, None)
            .await
            .map(|s| s.len()),
        Err(e) => Err(pluto_duck_application::ports::WarehouseError::Internal(e.to_string())),
    };
    match attached {
        Ok(n) => r.add(
            "lake catalog",
            true,
            format!("project default's lake attaches ({n} snapshots)"),
            None,
        ),
        Err(e) => r.add(
            "lake catalog",
            false,
            e.to_string(),
            Some("check hybrid.database_url (DuckDB's postgres extension connects with it)".into()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_dbt_version;

    #[test]
    fn reads_dbt_version_output() {
        let text = "Core:\n  - installed: 1.11.2\n  - latest:    1.11.2 - Up to date!\n\nPlugins:\n  - duckdb: 1.11.1 - Up to date!\n";
        assert_eq!(parse_dbt_version(text), (Some("1.11.2".into()), Some("1.11.1".into())));
        assert_eq!(parse_dbt_version("garbage"), (None, None));
    }
}
