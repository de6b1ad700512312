//! dbt through the real server and the real dbt with the starter project: dbt builds into the project's own dbt
//! database while queries go on, the models are queryable as `dbt.main.<model>` right after, dbt models read the
//! project's tables as sources, failures name their nodes, cancel stops dbt.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{poll, Sandbox, Server};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "target" && entry.file_name() != "logs" {
                copy_dir(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A copy of the starter project in the sandbox, and a server running it.
fn start(sb: &Sandbox) -> (PathBuf, Server) {
    let project = sb.path().join("dbt_core");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../dbt_projects/core"),
        &project,
    );
    let dir = project.display().to_string();
    let mut server = sb.spawn_server_with_env(&[
        ("PLUTODUCK_DBT__PROJECT_DIR", dir.as_str()),
        ("DBT_SEND_ANONYMOUS_USAGE_STATS", "false"),
    ]);
    drain_stderr(&mut server);
    (project, server)
}

/// Reads the server's log lines as they come: a full stderr pipe would stop the server's logging and with it the
/// server (a build with a query every 100 ms logs more than a pipe holds).
fn drain_stderr(server: &mut Server) {
    if let Some(mut err) = server.child.stderr.take() {
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(900))
        .build()
        .unwrap()
}

/// Runs SQL and answers its rows (or panics with the problem).
fn rows(server: &Server, sql: &str) -> Vec<Value> {
    let resp = client()
        .post(format!("{}/api/v1/query?wait=60", server.url))
        .json(&json!({ "sql": sql }))
        .send()
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().unwrap();
    assert!(status.is_success(), "{sql}: {status} {body}");
    body["rows"].as_array().cloned().unwrap_or_default()
}

fn dbt(server: &Server, command: &str, body: Value, wait: u32) -> (u16, Value) {
    let resp = client()
        .post(format!("{}/api/v1/dbt/{command}?wait={wait}", server.url))
        .json(&body)
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.json().unwrap())
}

fn get(server: &Server, path: &str) -> Value {
    client()
        .get(format!("{}{path}", server.url))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

#[test]
fn build_while_queries_are_served_then_models_and_sources_are_queryable() {
    let sb = Sandbox::new();
    let (project, server) = start(&sb);
    // A table of the project, read by a dbt model through the generated source.
    rows(
        &server,
        "CREATE TABLE visits AS SELECT range AS id, range % 3 AS store_id FROM range(30)",
    );
    std::fs::write(
        project.join("models/marts/visits_per_store.sql"),
        "select store_id, count(*) as visits from {{ source('pluto', 'visits') }} group by store_id\n",
    )
    .unwrap();

    // Queries every 100 ms while dbt builds, each through the server's sandbox.
    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let querier = {
        let (stop, served, failed, url) = (stop.clone(), served.clone(), failed.clone(), server.url.clone());
        std::thread::spawn(move || {
            let c = client();
            let mut errors = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let resp = c
                    .post(format!("{url}/api/v1/query?wait=30"))
                    .json(&json!({ "sql": "SELECT count(*) AS n FROM visits" }))
                    .send();
                match resp {
                    Ok(r) if r.status().is_success() => served.fetch_add(1, Ordering::SeqCst),
                    Ok(r) => {
                        errors.push(r.text().unwrap_or_default());
                        failed.fetch_add(1, Ordering::SeqCst)
                    }
                    Err(e) => {
                        errors.push(e.to_string());
                        failed.fetch_add(1, Ordering::SeqCst)
                    }
                };
                std::thread::sleep(Duration::from_millis(100));
            }
            errors
        })
    };
    let (code, run) = dbt(&server, "build", json!({}), 600);
    stop.store(true, Ordering::SeqCst);
    let errors = querier.join().unwrap();
    assert_eq!(code, 200, "{run}");
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["dbt_status"], "succeeded");
    let nodes = run["nodes"].as_array().unwrap();
    assert!(nodes
        .iter()
        .any(|n| n["unique_id"] == "model.pluto_duck_core.customers" && n["status"] == "success"));
    assert!(nodes
        .iter()
        .any(|n| n["resource_type"] == "test" && n["status"] == "pass"));
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "queries failed while dbt ran: {errors:?}"
    );
    assert!(
        served.load(Ordering::SeqCst) >= 5,
        "too few queries ran during the build"
    );
    eprintln!(
        "{} queries served during dbt build, none failed",
        served.load(Ordering::SeqCst)
    );

    // The models are queryable right after, and the source model read the project's table.
    let customers = rows(&server, "SELECT count(*) AS n FROM dbt.main.customers");
    assert!(customers[0][0].as_i64().unwrap() > 0, "{customers:?}");
    let visits = rows(
        &server,
        "SELECT sum(visits)::BIGINT AS n FROM dbt.main.visits_per_store",
    );
    assert_eq!(visits[0][0].as_i64(), Some(30), "{visits:?}");
    // A staging view reads the seed through the attached dbt database.
    assert!(!rows(&server, "SELECT * FROM dbt.main.stg_orders LIMIT 1").is_empty());

    // The artifacts stay with the run in the project's folder.
    let target = PathBuf::from(run["target_path"].as_str().unwrap());
    assert!(
        target.starts_with(sb.data_dir().join("projects/default/dbt/runs")),
        "{target:?}"
    );
    assert!(target.join("run_results.json").is_file() && target.join("manifest.json").is_file());

    // The events stream carried every node.
    let id = run["id"].as_str().unwrap();
    let events = client()
        .get(format!("{}/api/v1/dbt/runs/{id}/events", server.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(events.contains("event: node") && events.contains("model.pluto_duck_core.customers"));
    assert!(events.contains("event: completed"), "{events}");

    let models = get(&server, "/api/v1/dbt/models");
    let customers = models
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "customers")
        .unwrap_or_else(|| panic!("{models}"));
    assert_eq!(customers["status"], "success", "{customers}");
    assert_eq!(customers["last_run"], run["id"]);
    assert!(customers["rows"].as_u64().unwrap() > 0, "{customers}");
    assert!(
        customers["tests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "pass"),
        "{customers}"
    );
    let runs = get(&server, "/api/v1/dbt/runs");
    assert_eq!(runs[0]["id"], run["id"]);
}

#[test]
fn a_failing_test_fails_the_run_naming_the_node() {
    let sb = Sandbox::new();
    let (project, server) = start(&sb);
    std::fs::write(project.join("tests/always_fails.sql"), "select 1 as broken\n").unwrap();
    let (code, run) = dbt(&server, "test", json!({ "select": ["always_fails"] }), 600);
    assert_eq!(code, 200, "{run}");
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["dbt_status"], "nodes_failed");
    let error = run["error"].as_str().unwrap();
    assert!(error.contains("test.pluto_duck_core.always_fails (fail)"), "{error}");
    let node = &run["nodes"][0];
    assert_eq!(
        (node["name"].as_str(), node["status"].as_str()),
        (Some("always_fails"), Some("fail"))
    );
    assert_eq!(node["failures"], 1);

    // A flag the command does not take, and a command that is not one, answer problem+json.
    let (code, problem) = dbt(&server, "test", json!({ "full_refresh": true }), 0);
    assert_eq!(code, 422, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("full refresh"));
    let (code, _) = dbt(&server, "drop", json!({}), 0);
    assert_eq!(code, 400);
}

#[test]
fn cancel_stops_dbt_and_queries_go_on() {
    let sb = Sandbox::new();
    let (_project, server) = start(&sb);
    let (code, run) = dbt(&server, "build", json!({}), 0);
    assert_eq!(code, 202, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    poll(Duration::from_secs(120), || {
        (get(&server, &format!("/api/v1/dbt/runs/{id}"))["status"] == "running").then_some(())
    });
    let resp = client()
        .post(format!("{}/api/v1/dbt/runs/{id}/cancel", server.url))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let cancelled: Value = resp.json().unwrap();
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(rows(&server, "SELECT 42 AS x")[0][0], 42);
    // The next build runs: the database was handed back and no dbt holds it.
    let (code, run) = dbt(&server, "build", json!({}), 600);
    assert_eq!((code, run["status"].as_str()), (200, Some("succeeded")), "{run}");
    assert!(!rows(&server, "SELECT * FROM dbt.main.orders LIMIT 1").is_empty());
}

#[test]
fn a_missing_dbt_project_is_a_clear_error() {
    let sb = Sandbox::new();
    let server = sb.spawn_server_with_env(&[(
        "PLUTODUCK_DBT__PROJECT_DIR",
        sb.path().join("nowhere").to_str().unwrap(),
    )]);
    let (code, problem) = dbt(&server, "build", json!({}), 0);
    assert_eq!(code, 422, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("no dbt project at"),
        "{problem}"
    );
}
