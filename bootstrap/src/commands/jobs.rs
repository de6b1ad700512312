//! `pluto-duck jobs list|create|run|show|delete`: named jobs through the server (or the in-process router).

use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Value};

use super::api_client::ApiClient;
use crate::cli::JobsCommand;
use crate::config::Config;
use crate::error::{CliError, CliResult};

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

pub async fn jobs(config: &Config, command: JobsCommand, project: Option<String>) -> CliResult<ExitCode> {
    let api = ApiClient::connect(config).await?;
    let p = project.as_deref();
    match command {
        JobsCommand::List => {
            let jobs = api.call("GET", "/api/v1/jobs", p, None).await?;
            let jobs = jobs.as_array().cloned().unwrap_or_default();
            if jobs.is_empty() {
                println!("no jobs");
            }
            for j in &jobs {
                println!(
                    "{:<24} {:<9} {:<18} last {:<10} next {}",
                    s(&j["name"]),
                    s(&j["task"]["kind"]),
                    j["schedule"]["cron"].as_str().unwrap_or("manual"),
                    j["last_run"]["status"].as_str().unwrap_or("never"),
                    s(&j["next_due"])
                );
            }
        }
        JobsCommand::Create {
            name,
            sql,
            analysis,
            ingest,
            dbt,
            cron,
            timezone,
            description,
        } => {
            let task = match (sql, analysis, ingest, dbt) {
                (Some(sql), None, None, None) => json!({"kind": "sql", "sql": sql}),
                (None, Some(a), None, None) => json!({"kind": "analysis", "analysis": a}),
                (None, None, Some(recipe), None) => {
                    let text = std::fs::read_to_string(&recipe)
                        .map_err(|e| CliError::invalid(format!("cannot read {}: {e}", recipe.display())))?;
                    let mut body: Value = serde_json::from_str(&text)
                        .map_err(|e| CliError::invalid(format!("{} is not JSON: {e}", recipe.display())))?;
                    body["kind"] = json!("ingest");
                    body
                }
                (None, None, None, Some(sel)) => {
                    let mut parts = sel.split_whitespace();
                    let command = parts.next().unwrap_or("build");
                    json!({"kind": "dbt", "command": command, "select": parts.collect::<Vec<_>>()})
                }
                _ => {
                    return Err(CliError::invalid(
                        "give exactly one of --sql, --analysis, --ingest, --dbt",
                    ))
                }
            };
            let mut body = json!({"name": name, "description": description.unwrap_or_default(), "task": task});
            if let Some(cron) = cron {
                body["schedule"] = json!({"cron": cron, "timezone": timezone.unwrap_or_else(|| "UTC".into())});
            }
            let j = api.call("POST", "/api/v1/jobs", p, Some(body)).await?;
            println!(
                "created job {} (next run {})",
                s(&j["name"]),
                j["next_due"].as_str().unwrap_or("manual")
            );
        }
        JobsCommand::Run { name, wait } => {
            let path = format!("/api/v1/jobs/{name}/runs?wait={}", wait.clamp(0.0, 3600.0));
            let run = api.call("POST", &path, p, None).await?;
            let run = match run["status"].as_str() {
                Some("queued" | "running") => {
                    let bar = indicatif::ProgressBar::new_spinner().with_message(format!("job {name} running"));
                    bar.enable_steady_tick(Duration::from_millis(120));
                    let events = format!("/api/v1/jobs/{name}/runs/{}/events", s(&run["id"]));
                    api.follow_events(&events, p, |event, _| bar.set_message(format!("job {name}: {event}")))
                        .await?;
                    bar.finish_and_clear();
                    api.call("GET", &format!("/api/v1/jobs/{name}/runs/{}", s(&run["id"])), p, None)
                        .await?
                }
                _ => run,
            };
            print_run(&run);
            if run["status"] != "succeeded" {
                return Err(CliError::new(
                    pluto_duck_application::ErrorKind::Invalid,
                    format!(
                        "job {name} {}: {}",
                        s(&run["status"]),
                        run["error"].as_str().unwrap_or("")
                    ),
                ));
            }
        }
        JobsCommand::Show { name } => {
            let j = api.call("GET", &format!("/api/v1/jobs/{name}"), p, None).await?;
            println!(
                "{} ({})  {}",
                s(&j["name"]),
                s(&j["task"]["kind"]),
                s(&j["description"])
            );
            println!("task: {}", j["task"]);
            if let Some(cron) = j["schedule"]["cron"].as_str() {
                println!(
                    "schedule: {cron} {}  next {}",
                    s(&j["schedule"]["timezone"]),
                    s(&j["next_due"])
                );
            }
            let runs = api
                .call("GET", &format!("/api/v1/jobs/{name}/runs?limit=10"), p, None)
                .await?;
            for r in runs.as_array().cloned().unwrap_or_default() {
                print_run(&r);
            }
        }
        JobsCommand::Delete { name } => {
            api.call("DELETE", &format!("/api/v1/jobs/{name}"), p, None).await?;
            println!("deleted job {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_run(r: &Value) {
    let names = |v: &Value| -> String {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|d| d["table"].as_str().or(d["name"].as_str()).unwrap_or("?"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    println!(
        "{}  {:<10} {:<10} rows {:<8} in [{}] out [{}]{}",
        s(&r["id"]),
        s(&r["status"]),
        s(&r["actor"]),
        r["rows"],
        names(&r["inputs"]),
        names(&r["outputs"]),
        r["error"].as_str().map(|e| format!("  {e}")).unwrap_or_default()
    );
}
