//! `pluto-duck board list|show`.

use std::process::ExitCode;

use super::api_client::ApiClient;
use crate::cli::BoardCommand;
use crate::config::Config;
use crate::error::{CliError, CliResult};

pub async fn board(config: &Config, command: BoardCommand, project: Option<String>) -> CliResult<ExitCode> {
    let api = ApiClient::connect(config).await?;
    let p = project.as_deref();
    let boards = api.call("GET", "/api/v1/boards", p, None).await?;
    let boards = boards.as_array().cloned().unwrap_or_default();
    match command {
        BoardCommand::List => {
            if boards.is_empty() {
                println!("no boards");
            }
            for b in &boards {
                println!(
                    "{:<38} {:<32} {}",
                    b["id"].as_str().unwrap_or_default(),
                    b["name"].as_str().unwrap_or_default(),
                    b["description"].as_str().unwrap_or_default()
                );
            }
        }
        BoardCommand::Show { board } => {
            let found = boards
                .iter()
                .find(|b| b["id"] == board.as_str() || b["name"] == board.as_str())
                .ok_or_else(|| {
                    CliError::new(pluto_duck_application::ErrorKind::NotFound, format!("no board {board}"))
                })?;
            let id = found["id"].as_str().unwrap_or_default();
            let b = api.call("GET", &format!("/api/v1/boards/{id}"), p, None).await?;
            println!("{} ({id})", b["name"].as_str().unwrap_or_default());
            for i in b["items"].as_array().cloned().unwrap_or_default() {
                let rows = i["snapshot"]["rows"].as_array().map(Vec::len);
                let state = match (i["last_error"].as_str(), rows) {
                    (Some(e), _) => format!("error: {e}"),
                    (None, Some(n)) => format!("{n} rows at {}", i["snapshot"]["ran_at"].as_str().unwrap_or_default()),
                    (None, None) => "no data".into(),
                };
                println!(
                    "  {:<9} {:<24} at {},{} size {}x{}  {state}",
                    i["kind"].as_str().unwrap_or_default(),
                    i["title"].as_str().unwrap_or_default(),
                    i["x"],
                    i["y"],
                    i["w"],
                    i["h"]
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
