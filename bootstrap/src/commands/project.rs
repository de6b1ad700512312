//! `pluto-duck project list|create|use`. `use` records the CLI's project in `<data_dir>/configs/cli-project`;
//! commands without `--project` work there.

use std::process::ExitCode;

use serde_json::json;

use super::api_client::ApiClient;
use crate::cli::ProjectCommand;
use crate::config::Config;
use crate::error::{CliError, CliResult};

fn project_file(config: &Config) -> std::path::PathBuf {
    config.data_dir.join("configs").join("cli-project")
}

/// The project a command works in: its `--project`, else the one chosen with `project use`.
pub fn current_project(config: &Config, explicit: Option<String>) -> Option<String> {
    explicit.or_else(|| {
        std::fs::read_to_string(project_file(config))
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    })
}

pub async fn project(config: &Config, command: ProjectCommand) -> CliResult<ExitCode> {
    let api = ApiClient::connect(config).await?;
    match command {
        ProjectCommand::List => {
            let current = current_project(config, None).unwrap_or_else(|| "default".into());
            let list = api.call("GET", "/api/v1/projects", None, None).await?;
            for p in list.as_array().cloned().unwrap_or_default() {
                let id = p["id"].as_str().unwrap_or_default();
                let mark = if id == current { "*" } else { " " };
                println!("{mark} {id:<32} {}", p["name"].as_str().unwrap_or_default());
            }
        }
        ProjectCommand::Create { id, name } => {
            let p = api
                .call("POST", "/api/v1/projects", None, Some(json!({"id": id, "name": name})))
                .await?;
            println!("created project {}", p["id"].as_str().unwrap_or_default());
        }
        ProjectCommand::Use { id } => {
            // Only a project that exists can be chosen.
            api.call("GET", &format!("/api/v1/projects/{id}"), None, None).await?;
            let file = project_file(config);
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&file, format!("{id}\n"))
                .map_err(|e| CliError::unavailable(format!("cannot write {}: {e}", file.display())))?;
            println!("using project {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
