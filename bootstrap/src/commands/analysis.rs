//! `pluto-duck analysis list|show|compile|lineage`, through the server's API or the same router in-process.

use std::process::ExitCode;

use serde_json::Value;

use super::api_client::ApiClient;
use crate::cli::AnalysisCommand;
use crate::config::Config;
use crate::error::CliResult;

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
