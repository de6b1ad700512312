//! `pluto-duck analysis list|show|compile|lineage`, through the server's API or the same router in-process.

use std::process::ExitCode;

use serde_json::Value;

use super::api_client::ApiClient;
use crate::cli::AnalysisCommand;
use crate::config::Config;
use crate::error::{CliError, CliResult};

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn joined(v: &Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

pub async fn analysis(config: &Config, command: AnalysisCommand, project: Option<String>) -> CliResult<ExitCode> {
    match command {
        AnalysisCommand::Export { root } => return transfer(config, project, root, Direction::Export).await,
        AnalysisCommand::Import { root } => return transfer(config, project, root, Direction::Import).await,
        _ => {}
    }
    let api = ApiClient::connect(config).await?;
    let p = project.as_deref();
    match command {
        AnalysisCommand::List { tag } => {
            let path = match &tag {
                Some(t) => format!("/api/v1/asset/analyses?tag={}", urlencode(t)),
                None => "/api/v1/asset/analyses".into(),
            };
            let list = api.call("GET", &path, p, None).await?;
            let items = list.as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                println!("no analyses");
            }
            for a in items {
                println!(
                    "{:<32} {:<12} {:<24} {}",
                    text(&a["id"]),
                    text(&a["materialization"]),
                    joined(&a["tags"]),
                    text(&a["name"])
                );
            }
        }
        AnalysisCommand::Show { id } => {
            let a = api
                .call("GET", &format!("/api/v1/asset/analysis/{id}"), p, None)
                .await?;
            println!("{}", serde_json::to_string_pretty(&a).unwrap_or_default());
        }
        AnalysisCommand::Compile { id, force, sql } => {
            let path = format!("/api/v1/asset/analysis/{id}/compile?force={force}");
            let plan = api.call("POST", &path, p, None).await?;
            for step in plan.as_array().cloned().unwrap_or_default() {
                let reasons = joined(&step["reasons"]);
                println!(
                    "{:<8} {:<32} {:<12} {}",
                    text(&step["action"]),
                    text(&step["id"]),
                    text(&step["materialization"]),
                    reasons
                );
                if sql {
                    println!("    {}", text(&step["sql"]));
                }
            }
        }
        AnalysisCommand::Lineage { id } => {
            let l = api
                .call("GET", &format!("/api/v1/asset/analysis/{id}/lineage"), p, None)
                .await?;
            println!("upstream:   {}", joined(&l["upstream"]));
            println!("downstream: {}", joined(&l["downstream"]));
            println!("relations:  {}", joined(&l["relations"]));
            println!("files:      {}", joined(&l["files"]));
        }
        AnalysisCommand::Run {
            id,
            force,
            continue_on_failure,
            params,
        } => {
            let mut values = serde_json::Map::new();
            for p in params {
                let (k, v) = p
                    .split_once('=')
                    .ok_or_else(|| CliError::invalid(format!("--param {p}: expected NAME=VALUE")))?;
                values.insert(k.to_owned(), Value::from(v));
            }
            let body =
                serde_json::json!({"force": force, "continue_on_failure": continue_on_failure, "params": values});
            let run = api
                .call("POST", &format!("/api/v1/asset/analysis/{id}/execute"), p, Some(body))
                .await?;
            let run_id = text(&run["id"]).to_owned();
            let bar = indicatif::ProgressBar::new_spinner();
            if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
            } else {
                bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
            bar.set_message(format!("running {id}"));
            api.follow_events(&format!("/api/v1/asset/runs/{run_id}/events"), p, |name, data| {
                if name == "progress" {
                    let parts = data["parts"].as_u64().unwrap_or(0);
                    if bar.length() != Some(parts) {
                        bar.set_length(parts);
                        if let Ok(style) = indicatif::ProgressStyle::with_template(
                            "{spinner} [{bar:30}] {pos}/{len} steps  {msg} ({elapsed})",
                        ) {
                            bar.set_style(style.progress_chars("=> "));
                        }
                    }
                    bar.set_position(data["part"].as_u64().unwrap_or(0));
                    bar.set_message(format!("{} rows", data["rows"].as_u64().unwrap_or(0)));
                }
            })
            .await?;
            bar.finish_and_clear();
            let run = api
                .call("GET", &format!("/api/v1/asset/runs/{run_id}"), p, None)
                .await?;
            for s in run["steps"].as_array().cloned().unwrap_or_default() {
                println!(
                    "{:<10} {:<32} {:>10} rows  {}",
                    text(&s["status"]),
                    text(&s["id"]),
                    s["rows"].as_u64().unwrap_or(0),
                    text(&s["detail"])
                );
            }
            if run["status"] != "succeeded" {
                return Err(CliError::invalid(format!(
                    "run of {id} {}: {}",
                    text(&run["status"]),
                    text(&run["error"])
                )));
            }
        }
        AnalysisCommand::History { id, limit } => {
            let runs = api
                .call(
                    "GET",
                    &format!("/api/v1/asset/analysis/{id}/history?limit={limit}"),
                    p,
                    None,
                )
                .await?;
            for r in runs.as_array().cloned().unwrap_or_default() {
                println!(
                    "{:<26} {:<10} {:>10} rows  {}",
                    text(&r["finished_at"]),
                    text(&r["status"]),
                    r["rows"].as_u64().unwrap_or(0),
                    text(&r["error"])
                );
            }
        }
        AnalysisCommand::Export { .. } | AnalysisCommand::Import { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Export,
    Import,
}

/// Copies every analysis of the project between the control plane and YAML files; prints each id.
async fn transfer(
    config: &Config,
    project: Option<String>,
    root: Option<std::path::PathBuf>,
    direction: Direction,
) -> CliResult<ExitCode> {
    use pluto_duck_application::ports::AnalysisStore;
    if config.profile != crate::config::ProfileName::Hybrid {
        return Err(CliError::invalid(
            "analysis export|import moves definitions between files and the hybrid profile's control plane: \
             run it with profile: hybrid (the local profile's analyses are the files already)",
        ));
    }
    let project =
        pluto_duck_domain::ProjectId::parse(project.as_deref().unwrap_or(pluto_duck_domain::ProjectId::DEFAULT))
            .map_err(|e| CliError::invalid(e.to_string()))?;
    let bootstrap = crate::secrets::secret_store(config);
    let plane = crate::wiring::control_plane(config, bootstrap.as_ref()).await?;
    let files = pluto_duck_analysis_files::AnalysisFiles::new(root.unwrap_or_else(|| config.projects_dir()));
    let (from, to): (&dyn AnalysisStore, &dyn AnalysisStore) = match direction {
        Direction::Export => (plane.store.as_ref(), &files),
        Direction::Import => (&files, plane.store.as_ref()),
    };
    let err = |e: pluto_duck_application::ports::AnalysisStoreError| CliError::new(e.kind(), e.to_string());
    let analyses = from.list(&project).await.map_err(err)?;
    for a in &analyses {
        to.put(a).await.map_err(err)?;
        println!("{}", a.id);
    }
    eprintln!(
        "{} {} analyses of project {project}",
        if direction == Direction::Export {
            "exported"
        } else {
            "imported"
        },
        analyses.len()
    );
    Ok(ExitCode::SUCCESS)
}
