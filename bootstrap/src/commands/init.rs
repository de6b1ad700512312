use std::path::Path;
use std::process::ExitCode;

use crate::cli::InitArgs;
use crate::config::Loaded;
use crate::error::{CliError, CliResult};

/// The starter dbt project, embedded so `init` works from an installed binary.
const DBT_SAMPLE: [(&str, &str); 5] = [
    (
        "dbt_project.yml",
        include_str!("../../../dbt_projects/core/dbt_project.yml"),
    ),
    ("profiles.yml", include_str!("../../../dbt_projects/core/profiles.yml")),
    (
        "models/schema.yml",
        include_str!("../../../dbt_projects/core/models/schema.yml"),
    ),
    (
        "models/staging/stg_days.sql",
        include_str!("../../../dbt_projects/core/models/staging/stg_days.sql"),
    ),
    (
        "models/marts/days_per_month.sql",
        include_str!("../../../dbt_projects/core/models/marts/days_per_month.sql"),
    ),
];

const CONFIG_TEMPLATE: &str = "\
# Pluto-Duck configuration. Precedence, lowest to highest: defaults, this file, a project-local .plutoduck,
# PLUTODUCK_* environment variables (PLUTODUCK_SERVER__PORT=8001), command-line flags.
profile: local            # local (SQLite metadata) | hybrid (PostgreSQL metadata)
# data_dir: ~/.pluto-duck
server:
  host: 127.0.0.1
  port: 8000
  # api_token: secret:api_token    # a reference (env:VAR or secret:NAME), never the token itself
  cors_origins: []
duckdb:
  # extension_directory: ~/.local/share/pluto-duck/extensions
  # threads: 4
  # memory_limit: 4GB
  max_connections: 8
log:
  level: info
  format: auto            # auto | pretty | json
";

fn write_new(path: &Path, contents: &str, force: bool) -> CliResult<bool> {
    if path.exists() && !force {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::unavailable(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(path, contents)
        .map_err(|e| CliError::unavailable(format!("cannot write {}: {e}", path.display())))?;
    Ok(true)
}

pub fn init(loaded: &Loaded, args: &InitArgs) -> CliResult<ExitCode> {
    let config = &loaded.config;
    let config_file = loaded
        .sources
        .user_file
        .clone()
        .unwrap_or_else(crate::config::user_config_path);
    if write_new(&config_file, CONFIG_TEMPLATE, args.force)? {
        println!("created {}", config_file.display());
    } else {
        println!("kept {}", config_file.display());
    }
    for dir in config.data_dirs() {
        std::fs::create_dir_all(&dir)
            .map_err(|e| CliError::unavailable(format!("cannot create {}: {e}", dir.display())))?;
    }
    println!("data directory {}", config.data_dir.display());
    let dbt_dir = config.dbt_project_dir();
    let mut copied = 0;
    for (rel, contents) in DBT_SAMPLE {
        if write_new(&dbt_dir.join(rel), contents, args.force)? {
            copied += 1;
        }
    }
    println!("dbt project {} ({copied} files written)", dbt_dir.display());
    Ok(ExitCode::SUCCESS)
}
