//! `pluto-duck dbt run|test|build|seed|compile|ls`: a dbt run through the server, followed on its SSE stream with a
//! progress bar per node, then a summary. A failed model or test exits non-zero with one line naming the nodes.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};

use super::api_client::ApiClient;
use crate::cli::{DbtArgs, DbtCommandArg};
use crate::config::Config;
use crate::error::{CliError, CliResult};

/// The request body from the flags; `--vars` is a JSON or YAML object.
fn body(args: &DbtArgs) -> CliResult<Value> {
    let split = |items: &[String]| -> Vec<String> {
        items
            .iter()
            .flat_map(|s| s.split_whitespace().map(str::to_owned))
            .collect()
    };
    let mut body = json!({
        "select": split(&args.select),
        "exclude": split(&args.exclude),
        "full_refresh": args.full_refresh,
    });
    if let Some(vars) = &args.vars {
        let v: Value = serde_yaml::from_str(vars)
            .map_err(|e| CliError::invalid(format!("--vars is not a JSON or YAML object: {e}")))?;
        if !v.is_object() {
            return Err(CliError::invalid(
                "--vars must be an object, like '{\"since\": \"2024-01-01\"}'",
            ));
        }
        body["vars"] = v;
    }
    if let Some(t) = &args.target {
        body["target"] = Value::from(t.clone());
    }
    Ok(body)
}

/// Counts of a finished run's nodes, the way dbt's own summary counts them.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub passed: usize,
    pub warned: usize,
    pub failed: usize,
    pub skipped: usize,
}

pub(crate) fn tally(nodes: &[Value]) -> Tally {
    let mut t = Tally::default();
    for n in nodes {
        match n["status"].as_str().unwrap_or_default() {
            "success" | "pass" | "no-op" => t.passed += 1,
            "warn" | "partial success" => t.warned += 1,
            "fail" | "error" => t.failed += 1,
            "skipped" => t.skipped += 1,
            _ => {}
        }
    }
    t
}

fn node_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix:.bold} {msg} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn done_style() -> ProgressStyle {
    ProgressStyle::with_template("  {prefix:.bold} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// A finished node's line: `OK customers (table, 0.21 s)`.
fn finished_line(data: &Value) -> String {
    let status = data["node_status"].as_str().unwrap_or("?");
    let word = match status {
        "success" | "pass" => "OK",
        "warn" => "WARN",
        "fail" => "FAIL",
        "error" => "ERROR",
        "skipped" => "SKIP",
        other => other,
    };
    let secs = data["elapsed_ms"].as_u64().unwrap_or(0) as f64 / 1000.0;
    let mut line = format!("{word} {} ({secs:.2} s)", data["name"].as_str().unwrap_or_default());
    if matches!(status, "fail" | "error" | "warn") {
        if let Some(m) = data["message"].as_str() {
            let first = m.lines().next().unwrap_or_default();
            line.push_str(&format!(": {first}"));
        }
    }
    line
}

pub async fn dbt(config: &Config, args: DbtArgs) -> CliResult<ExitCode> {
    let body = body(&args)?;
    let project = args.project.as_deref();
    let command = args.command.as_str();
    let api = ApiClient::connect(config).await?;
    let started = Instant::now();
    let run = api
        .call("POST", &format!("/api/v1/dbt/{command}"), project, Some(body))
        .await?;
    let id = run["id"].as_str().unwrap_or_default().to_owned();
    let multi = MultiProgress::new();
    if args.quiet || !std::io::stderr().is_terminal() {
        multi.set_draw_target(ProgressDrawTarget::hidden());
    }
    let overall = multi.add(ProgressBar::new_spinner());
    overall.set_style(node_style());
    overall.set_prefix(format!("dbt {command}"));
    overall.set_message("starting dbt");
    overall.enable_steady_tick(Duration::from_millis(120));
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    let (mut finished, mut running) = (0usize, 0usize);
    api.follow_events(&format!("/api/v1/dbt/runs/{id}/events"), project, |name, data| {
        if name != "node" {
            return;
        }
        let unique_id = data["unique_id"].as_str().unwrap_or_default().to_owned();
        if data["node_status"].is_null() {
            let bar = multi.insert_before(&overall, ProgressBar::new_spinner());
            bar.set_style(node_style());
            bar.set_prefix(data["resource_type"].as_str().unwrap_or("node").to_owned());
            bar.set_message(data["name"].as_str().unwrap_or_default().to_owned());
            bar.enable_steady_tick(Duration::from_millis(120));
            bars.insert(unique_id, bar);
            running += 1;
        } else {
            let bar = bars.remove(&unique_id).unwrap_or_else(|| {
                running += 1;
                multi.insert_before(&overall, ProgressBar::new_spinner())
            });
            bar.set_style(done_style());
            bar.set_prefix(data["resource_type"].as_str().unwrap_or("node").to_owned());
            bar.finish_with_message(finished_line(data));
            finished += 1;
            running = running.saturating_sub(1);
        }
        overall.set_message(format!("{finished} done, {running} running"));
    })
    .await?;
    overall.finish_and_clear();
    for bar in bars.into_values() {
        bar.finish_and_clear();
    }
    multi.clear().ok();
    let run = api
        .call("GET", &format!("/api/v1/dbt/runs/{id}"), project, None)
        .await?;
    let nodes = run["nodes"].as_array().cloned().unwrap_or_default();
    if args.command == DbtCommandArg::Ls {
        for item in run["listed"].as_array().into_iter().flatten() {
            println!("{}", item.as_str().unwrap_or_default());
        }
    } else {
        for n in nodes
            .iter()
            .filter(|n| matches!(n["status"].as_str(), Some("fail" | "error")))
        {
            let message = n["message"].as_str().unwrap_or_default();
            println!(
                "{} {}: {}",
                n["status"].as_str().unwrap_or_default().to_ascii_uppercase(),
                n["unique_id"].as_str().unwrap_or_default(),
                message.lines().next().unwrap_or_default()
            );
        }
        let t = tally(&nodes);
        let secs = run["elapsed_ms"]
            .as_u64()
            .map(|ms| ms as f64 / 1000.0)
            .unwrap_or_else(|| started.elapsed().as_secs_f64());
        println!(
            "dbt {command}: {} passed, {} warned, {} failed, {} skipped ({} nodes) in {secs:.1} s",
            t.passed,
            t.warned,
            t.failed,
            t.skipped,
            nodes.len()
        );
    }
    match run["status"].as_str() {
        Some("succeeded") => Ok(ExitCode::SUCCESS),
        status => Err(CliError::invalid(format!(
            "dbt {command} {}: {}",
            status.unwrap_or("failed"),
            run["error"].as_str().unwrap_or("no message")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_counts_like_dbt() {
        let nodes: Vec<Value> = ["success", "pass", "fail", "error", "skipped", "warn"]
            .iter()
            .map(|s| json!({ "status": s }))
            .collect();
        assert_eq!(
            tally(&nodes),
            Tally {
                passed: 2,
                warned: 1,
                failed: 2,
                skipped: 1
            }
        );
    }

    #[test]
    fn a_finished_failure_says_why_in_one_line() {
        let line = finished_line(&json!({
            "node_status": "fail", "name": "unique_orders_id", "elapsed_ms": 1500,
            "message": "Got 3 results, configured to fail if != 0\nmore"
        }));
        assert_eq!(
            line,
            "FAIL unique_orders_id (1.50 s): Got 3 results, configured to fail if != 0"
        );
    }
}
