//! `pluto-duck ask` and `pluto-duck eval`: through the API (the running server's, or in-process), like every
//! command that works on a project's data.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use pluto_duck_application::agent::eval::EvalReport;
use pluto_duck_application::ErrorKind;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::api_client::ApiClient;
use crate::cli::{AskArgs, EvalArgs};
use crate::config::Config;
use crate::error::{CliError, CliResult};

/// Rows of an answer's preview printed as a table.
const TABLE_ROWS: usize = 20;

pub async fn ask(config: &Config, args: AskArgs) -> CliResult<ExitCode> {
    let api = Arc::new(ApiClient::connect(config).await?);
    let project = args.project.clone();
    let mut body = json!({"question": args.question, "auto_approve": args.yes});
    if let Some(c) = &args.conversation {
        body["conversation_id"] = json!(c);
    }
    if args.private {
        body["privacy"] = json!(true);
    }
    let job = api
        .call("POST", "/api/v1/query", project.as_deref(), Some(body))
        .await?;
    let id = job["id"].as_str().unwrap_or_default().to_owned();
    let events = job["links"]["events"].as_str().unwrap_or_default().to_owned();

    // Approvals are asked on the terminal by a task of their own: the event stream goes on meanwhile.
    let (approvals, mut pending) = mpsc::unbounded_channel::<Value>();
    let decider = {
        let api = api.clone();
        let project = project.clone();
        tokio::spawn(async move {
            while let Some(request) = pending.recv().await {
                let decision = tokio::task::spawn_blocking(move || prompt_decision(&request))
                    .await
                    .unwrap_or_else(|_| (String::new(), json!({"decision": "reject"})));
                if decision.0.is_empty() {
                    continue;
                }
                let path = format!("/api/v1/approvals/{}", decision.0);
                if let Err(e) = api.call("POST", &path, project.as_deref(), Some(decision.1)).await {
                    eprintln!("approval not sent: {}", e.message);
                }
            }
        })
    };
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner.enable_steady_tick(Duration::from_millis(120));
    let mut streamed = false;
    let mut failure: Option<String> = None;
    api.follow_events(&events, project.as_deref(), |name, event| {
        let data = &event["data"];
        match name {
            "step_started" => spinner.set_message(format!("{}...", data["step"].as_str().unwrap_or("working"))),
            "schema" => spinner.println(format!(
                "  schema: {}",
                data["tables"]
                    .as_array()
                    .map(|t| t.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default()
            )),
            "plan" => spinner.println(format!("  plan: {}", data["plan"])),
            "sql" => spinner.println(format!("  sql: {}", one_line(data["sql"].as_str().unwrap_or("(none)")))),
            "sql_failed" | "repair" => spinner.println(format!(
                "  repair: {}",
                one_line(data["error"].as_str().or(data["reason"].as_str()).unwrap_or(""))
            )),
            "tool_call" => spinner.println(format!(
                "  -> {} {}",
                data["action"].as_str().unwrap_or("?"),
                one_line(&data["args"].to_string())
            )),
            "tool_result" if data["ok"] == false => spinner.println(format!(
                "  <- failed: {}",
                one_line(data["error"].as_str().unwrap_or(""))
            )),
            "approval_requested" => {
                spinner.suspend(|| {});
                let _ = approvals.send(data.clone());
            }
            "approval_decided" => spinner.println(format!(
                "  {} {} ({})",
                data["decision"].as_str().unwrap_or("?"),
                data["action"].as_str().unwrap_or("?"),
                data["by"].as_str().unwrap_or("?")
            )),
            "text" => {
                if !streamed {
                    spinner.finish_and_clear();
                    streamed = true;
                }
                print!("{}", data["delta"].as_str().unwrap_or(""));
                let _ = std::io::stdout().flush();
            }
            "error" => failure = data["message"].as_str().map(str::to_owned),
            _ => {}
        }
    })
    .await?;
    spinner.finish_and_clear();
    drop(approvals);
    decider.abort();
    if streamed {
        println!();
    }
    let turn = api
        .call("GET", &format!("/api/v1/query/{id}"), project.as_deref(), None)
        .await?;
    let answer = &turn["answer"];
    if turn["status"] != "succeeded" {
        let message = failure
            .or_else(|| turn["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("the turn ended {}", turn["status"].as_str().unwrap_or("?")));
        let kind = if turn["status"] == "timed_out" {
            ErrorKind::Timeout
        } else {
            ErrorKind::Invalid
        };
        return Err(CliError::new(kind, message));
    }
    if !streamed {
        println!("{}", answer["answer"].as_str().unwrap_or(""));
    }
    if let Some(sql) = answer["sql"].as_str() {
        println!("\nSQL:\n{sql}");
    }
    if answer["preview"].is_object() {
        println!();
        print_preview(&answer["preview"]);
    }
    if let Some(c) = answer["conversation_id"].as_str() {
        println!("\n(conversation {c}: continue with --conversation {c})");
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks on the terminal; answers (approval id, decision body).
fn prompt_decision(request: &Value) -> (String, Value) {
    let id = request["approval"].as_str().unwrap_or_default().to_owned();
    eprintln!(
        "\nThe agent wants to run {} with {}",
        request["action"].as_str().unwrap_or("?"),
        serde_json::to_string_pretty(&request["args"]).unwrap_or_default()
    );
    eprint!("Approve? [y]es / [n]o / [e]dit arguments: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let stdin = std::io::stdin();
    if stdin.lock().read_line(&mut line).is_err() {
        return (id, json!({"decision": "reject", "reason": "no terminal to ask on"}));
    }
    match line.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => (id, json!({"decision": "approve"})),
        "e" | "edit" => {
            eprint!("Arguments as JSON: ");
            let _ = std::io::stderr().flush();
            let mut args = String::new();
            let _ = stdin.lock().read_line(&mut args);
            match serde_json::from_str::<Value>(args.trim()) {
                Ok(v) if v.is_object() => (id, json!({"decision": "edit", "args": v})),
                _ => (
                    id,
                    json!({"decision": "reject", "reason": "the edited arguments were not a JSON object"}),
                ),
            }
        }
        _ => (id, json!({"decision": "reject", "reason": "declined on the terminal"})),
    }
}

fn one_line(s: &str) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 160 {
        format!("{}...", flat.chars().take(157).collect::<String>())
    } else {
        flat
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn print_preview(preview: &Value) {
    let columns: Vec<String> = preview["columns"]
        .as_array()
        .map(|c| c.iter().map(|c| c["name"].as_str().unwrap_or("").to_owned()).collect())
        .unwrap_or_default();
    let rows: Vec<Vec<String>> = preview["rows"]
        .as_array()
        .map(|r| {
            r.iter()
                .take(TABLE_ROWS)
                .map(|row| row.as_array().map(|c| c.iter().map(cell).collect()).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .map(|r| r.get(i).map(|v| v.chars().count()).unwrap_or(0))
                .chain([c.chars().count()])
                .max()
                .unwrap_or(0)
                .min(40)
        })
        .collect();
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{:<w$}", c.chars().take(*w).collect::<String>(), w = *w))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    println!("{}", line(&columns));
    println!(
        "{}",
        widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("-+-")
    );
    for r in &rows {
        println!("{}", line(r));
    }
    let total = preview["row_count"].as_u64().unwrap_or(rows.len() as u64);
    if total as usize > rows.len() {
        println!("({} rows, {} shown)", total, rows.len());
    }
}

pub async fn eval(config: &Config, args: EvalArgs) -> CliResult<ExitCode> {
    let api = ApiClient::connect(config).await?;
    let project = args.project.as_deref();
    let mut body = json!({"set": args.set});
    if let Some(n) = args.limit {
        body["limit"] = json!(n);
    }
    for (key, value) in [
        ("provider", &args.provider),
        ("model", &args.model),
        ("base_url", &args.base_url),
    ] {
        if let Some(v) = value {
            body[key] = json!(v);
        }
    }
    let run = api.call("POST", "/api/v1/eval/runs", project, Some(body)).await?;
    let id = run["id"].as_str().unwrap_or_default().to_owned();
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} questions {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (mut correct, mut judged) = (0u64, 0u64);
    api.follow_events(&format!("/api/v1/eval/runs/{id}/events"), project, |name, event| {
        let data = &event["data"];
        match name {
            "dataset_loading" => bar.set_message(format!("loading {}", data["dataset"].as_str().unwrap_or(""))),
            "question" => {
                bar.set_length(data["total"].as_u64().unwrap_or(0));
                bar.set_position(data["index"].as_u64().unwrap_or(0));
                judged += 1;
                if data["verdict"] == "correct" {
                    correct += 1;
                }
                bar.set_message(format!("{correct}/{judged} correct"));
            }
            _ => {}
        }
    })
    .await?;
    bar.finish_and_clear();
    let run = api
        .call("GET", &format!("/api/v1/eval/runs/{id}"), project, None)
        .await?;
    if run["status"] != "succeeded" {
        return Err(CliError::invalid(
            run["error"]
                .as_str()
                .unwrap_or("the evaluation did not finish")
                .to_owned(),
        ));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&run["report"]).unwrap_or_default());
    } else {
        let report: EvalReport = serde_json::from_value(run["report"].clone())
            .map_err(|e| CliError::internal(format!("unreadable report: {e}")))?;
        println!("{}", report.render_table());
    }
    Ok(ExitCode::SUCCESS)
}
