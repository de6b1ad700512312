//! OpenLineage through the running app: every run the jobs machine finishes is reported (file transport here),
//! a failing query as FAIL; a dead HTTP receiver holds no run up.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::StatusCode;
use pluto_duck_bootstrap::commands::build_router;
use pluto_duck_bootstrap::config::LineageTransportName;
use serde_json::Value;

use crate::helpers::{call, poll_async, Sandbox};
use crate::query::post_query;

/// The events in the file so far, by run id, in the order written.
fn events_by_run(path: &std::path::Path) -> BTreeMap<String, Vec<Value>> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut runs: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap();
        let id = v["run"]["runId"].as_str().unwrap().to_owned();
        runs.entry(id).or_default().push(v);
    }
    runs
}

#[tokio::test]
async fn queries_report_start_and_complete_or_fail_to_the_file() {
    let sb = Sandbox::new();
    let mut config = sb.config();
    let path = sb.path().join("lineage").join("events.jsonl");
    config.lineage.transport = LineageTransportName::File;
    config.lineage.path = Some(path.clone());
    config.lineage.namespace = "acme".into();
    let r = build_router(&config).await.unwrap();

    let (resp, body) = call(&r, post_query("SELECT 42 AS answer", "?wait=60", None)).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let ok_id = resp.headers()["x-query-id"].to_str().unwrap().to_owned();
    let (resp, _) = call(&r, post_query("SELECT * FROM no_such_table", "?wait=60", None)).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let runs = poll_async(Duration::from_secs(30), || async {
        let runs = events_by_run(&path);
        let ends = runs
            .values()
            .filter(|events| {
                events
                    .iter()
                    .any(|e| e["eventType"] == "COMPLETE" || e["eventType"] == "FAIL")
            })
            .count();
        (ends >= 2).then_some(runs)
    })
    .await;
    let types = |events: &Vec<Value>| -> Vec<String> {
        events
            .iter()
            .map(|e| e["eventType"].as_str().unwrap().to_owned())
            .collect()
    };
    let ok = &runs[&ok_id];
    assert_eq!(types(ok), ["START", "COMPLETE"]);
    assert_eq!(ok[0]["job"]["namespace"], "acme/default");
    assert_eq!(ok[0]["job"]["name"], "query");
    assert_eq!(ok[0]["job"]["facets"]["sql"]["query"], "SELECT 42 AS answer");
    let failed: Vec<_> = runs.iter().filter(|(id, _)| **id != ok_id).collect();
    assert_eq!(failed.len(), 1, "{runs:?}");
    assert_eq!(types(failed[0].1), ["START", "FAIL"]);
    let fail = &failed[0].1[1];
    let message = fail["run"]["facets"]["errorMessage"]["message"].as_str().unwrap();
    assert!(message.contains("no_such_table"), "{fail}");
}

#[tokio::test]
async fn a_dead_http_receiver_holds_no_run_up() {
    let sb = Sandbox::new();
    let mut config = sb.config();
    config.lineage.transport = LineageTransportName::Http;
    // Nothing listens on the discard port: every delivery is refused and retried in the background.
    config.lineage.url = Some("http://127.0.0.1:9".into());
    let r = build_router(&config).await.unwrap();
    for i in 0..20 {
        let (resp, body) = call(&r, post_query(&format!("SELECT {i} AS i"), "?wait=60", None)).await;
        assert_eq!(resp.status(), StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    }
    let (resp, _) = call(&r, post_query("SELECT * FROM nope", "?wait=60", None)).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
