//! `/api/v1/jobs`: job definitions, runs with child runs and their inputs and outputs, runs reported by an
//! outside system, OpenLineage of job runs, and cron schedules on the real server across a restart.

use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, Timelike, Utc};
use pluto_duck_bootstrap::commands::build_router;
use pluto_duck_bootstrap::config::LineageTransportName;
use serde_json::{json, Value};

use crate::helpers::{call, json, poll, poll_async, req, Sandbox};

async fn send(r: &axum::Router, method: &str, uri: &str, body: Option<&Value>) -> (StatusCode, Value) {
    let (resp, bytes) = call(r, req(method, uri, None, body)).await;
    (resp.status(), serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn jobs_run_their_work_as_child_runs_with_inputs_outputs_and_lineage() {
    let sb = Sandbox::new();
    let mut config = sb.config();
    let lineage = sb.path().join("lineage.jsonl");
    config.lineage.transport = LineageTransportName::File;
    config.lineage.path = Some(lineage.clone());
    let r = build_router(&config).await.unwrap();

    let (s, b) = send(
        &r,
        "POST",
        "/api/v1/query?wait=60",
        Some(&json!({"sql": "create table t_in as select range as x from range(5)"})),
    )
    .await;
    assert!(s.is_success(), "{b}");

    // Validation: a bad cron, a bad name, a SQL job without SQL, an inline ingest source.
    for (body, needle) in [
        (
            json!({"name": "a", "task": {"kind": "sql", "sql": "select 1"}, "schedule": {"cron": "61 * * * *"}}),
            "cron",
        ),
        (
            json!({"name": "a b", "task": {"kind": "sql", "sql": "select 1"}}),
            "identifier",
        ),
        (
            json!({"name": "a", "task": {"kind": "sql", "sql": "  "}}),
            "sql is empty",
        ),
        (
            json!({"name": "a", "task": {"kind": "sql", "sql": "select 1"}, "schedule": {"cron": "* * * * *", "timezone": "Mars/Base"}}),
            "timezone",
        ),
        (
            json!({"name": "a", "task": {"kind": "ingest", "source": {"kind": "file", "location": "/tmp/x.csv"}, "target": "x"}}),
            "stored source",
        ),
    ] {
        let (s, b) = send(&r, "POST", "/api/v1/jobs", Some(&body)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {b}");
        assert!(
            b["detail"].as_str().unwrap_or_default().contains(needle),
            "{needle}: {b}"
        );
    }

    let job = json!({
        "name": "Copy_Out", "description": "copies t_in",
        "task": {"kind": "sql", "sql": "create or replace table t_out as select x * 2 as y from t_in"},
    });
    let (s, b) = send(&r, "POST", "/api/v1/jobs", Some(&job)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["name"], "copy_out");
    assert_eq!(b["task"]["kind"], "sql");
    assert!(b["next_due"].is_null());
    let (s, _) = send(&r, "POST", "/api/v1/jobs", Some(&job)).await;
    assert_eq!(s, StatusCode::CONFLICT);

    let (s, run) = send(&r, "POST", "/api/v1/jobs/copy_out/runs?wait=60", None).await;
    assert_eq!(s, StatusCode::OK, "{run}");
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["child_run"]["kind"], "query");
    let id = run["id"].as_str().unwrap().to_owned();
    let child = run["child_run"]["id"].as_str().unwrap().to_owned();
    let (s, q) = send(&r, "GET", &format!("/api/v1/query/{child}"), None).await;
    assert_eq!(s, StatusCode::OK, "{q}");
    let (s, t) = send(&r, "GET", &format!("/api/v1/jobs/copy_out/runs/{id}/tables"), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(t, json!({"inputs": ["main.t_in"], "outputs": ["main.t_out"]}));
    let (_, d) = send(&r, "GET", &format!("/api/v1/jobs/copy_out/runs/{id}/datasets"), None).await;
    let out = &d["outputs"][0];
    assert!(out["namespace"].as_str().unwrap().starts_with("duckdb:///"), "{d}");
    assert_eq!(out["name"], "warehouse.main.t_out");
    let (_, rows) = send(
        &r,
        "POST",
        "/api/v1/query?wait=60",
        Some(&json!({"sql": "select sum(y) as s from t_out"})),
    )
    .await;
    assert!(rows.to_string().contains("20"), "{rows}");

    // A failing child fails the job run, naming it.
    let bad = json!({"name": "broken", "task": {"kind": "sql", "sql": "select * from no_such_table"}});
    assert_eq!(
        send(&r, "POST", "/api/v1/jobs", Some(&bad)).await.0,
        StatusCode::CREATED
    );
    let (s, b) = send(&r, "POST", "/api/v1/jobs/broken/runs?wait=60", None).await;
    // The engine refuses the SQL at admission: the run cannot start its child.
    assert!(s == StatusCode::OK || s.is_client_error(), "{b}");
    let (_, runs) = send(&r, "GET", "/api/v1/jobs/broken/runs", None).await;
    assert_eq!(runs[0]["status"], "failed", "{runs}");
    assert!(runs[0]["error"].as_str().unwrap().contains("no_such_table"), "{runs}");

    // A run reported by an outside system.
    let (s, ext) = send(
        &r,
        "POST",
        "/api/v1/jobs/copy_out/runs/external",
        Some(&json!({"inputs": [{"namespace": "s3://raw", "name": "orders/2026.parquet"}]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{ext}");
    assert_eq!(
        (ext["status"].as_str(), ext["external"].as_bool()),
        (Some("running"), Some(true))
    );
    let ext_id = ext["id"].as_str().unwrap();
    let done = json!({"status": "succeeded", "rows": 12, "inputs": [{"namespace": "s3://raw", "name": "orders/2026.parquet"}],
        "outputs": [{"namespace": "postgres://db:5432", "name": "shop.public.orders"}]});
    let (s, b) = send(
        &r,
        "PUT",
        &format!("/api/v1/jobs/copy_out/runs/{ext_id}/complete"),
        Some(&done),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (b["status"].as_str(), b["rows"].as_u64()),
        (Some("succeeded"), Some(12))
    );
    assert_eq!(b["outputs"][0]["name"], "shop.public.orders");
    let (s, _) = send(
        &r,
        "PUT",
        &format!("/api/v1/jobs/copy_out/runs/{ext_id}/complete"),
        Some(&done),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = send(
        &r,
        "PUT",
        &format!("/api/v1/jobs/copy_out/runs/{id}/complete"),
        Some(&done),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "a run of this server is not completed from outside"
    );
    let bad_status = json!({"status": "running"});
    let (s, _) = send(
        &r,
        "PUT",
        &format!("/api/v1/jobs/copy_out/runs/{ext_id}/complete"),
        Some(&bad_status),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // Lineage: the job run and its child, one run id each, with inputs and outputs.
    let events = poll_async(Duration::from_secs(30), || async {
        let text = std::fs::read_to_string(&lineage).unwrap_or_default();
        let events: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let ends = events
            .iter()
            .filter(|e| e["run"]["runId"] == id.as_str() || e["run"]["runId"] == ext_id)
            .filter(|e| e["eventType"] == "COMPLETE")
            .count();
        (ends == 2).then_some(events)
    })
    .await;
    let of = |run: &str| -> Vec<&Value> { events.iter().filter(|e| e["run"]["runId"] == run).collect() };
    let job_events = of(&id);
    assert_eq!(job_events.len(), 2);
    assert_eq!(job_events[0]["eventType"], "START");
    assert_eq!(job_events[0]["job"]["name"], "copy_out");
    assert_eq!(
        job_events[1]["outputs"][0]["name"], "warehouse.main.t_out",
        "{}",
        job_events[1]
    );
    assert_eq!(job_events[1]["inputs"][0]["name"], "warehouse.main.t_in");
    let child_events = of(&child);
    assert_eq!(
        child_events.last().unwrap()["outputs"][0]["name"],
        "warehouse.main.t_out"
    );
    let ext_events = of(ext_id);
    assert_eq!(
        ext_events.last().unwrap()["outputs"][0]["namespace"],
        "postgres://db:5432"
    );

    let (s, list) = send(&r, "GET", "/api/v1/jobs", None).await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["broken", "copy_out"]);
    assert_eq!(list[1]["last_run"]["id"], ext_id);
    assert_eq!(
        send(&r, "DELETE", "/api/v1/jobs/copy_out", None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(&r, "GET", "/api/v1/jobs/copy_out", None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&r, "GET", &format!("/api/v1/jobs/copy_out/runs/{id}"), None)
            .await
            .0,
        StatusCode::OK
    );
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn scheduled_runs(url: &str, job: &str) -> Vec<Value> {
    let v: Value = http()
        .get(format!("{url}/api/v1/jobs/{job}/runs?limit=1000"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["actor"] == "scheduler")
        .cloned()
        .collect()
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn a_scheduled_job_runs_on_time_never_overlaps_and_runs_once_after_a_restart() {
    let sb = Sandbox::new();
    let mut server = sb.spawn_server(&[]);
    let url = server.url.clone();
    let c = http();
    let put = |name: &str, body: &Value, create: bool| {
        let rb = if create {
            c.post(format!("{url}/api/v1/jobs"))
        } else {
            c.put(format!("{url}/api/v1/jobs/{name}"))
        };
        let resp = rb.json(body).send().unwrap();
        let status = resp.status();
        let text = resp.text().unwrap();
        assert!(status.is_success(), "{status}: {text}");
        json(text.as_bytes())
    };
    let created = put(
        "tick",
        &json!({"name": "tick", "task": {"kind": "sql", "sql": "select 1"}, "schedule": {"cron": "* * * * * *"}}),
        true,
    );
    assert!(created["schedule"]["timezone"] == "UTC");
    // Runs on time: one run per second-slot, started by the scheduler.
    let runs = poll(Duration::from_secs(20), || {
        let r = scheduled_runs(&url, "tick");
        (r.len() >= 3).then_some(r)
    });
    let mut starts: Vec<DateTime<Utc>> = runs.iter().map(|r| time(&r["created_at"])).collect();
    starts.sort();
    for w in starts.windows(2) {
        let gap = (w[1] - w[0]).num_milliseconds();
        assert!((300..=2500).contains(&gap), "runs {gap} ms apart: {starts:?}");
    }
    assert!(runs.iter().all(|r| r["status"] == "succeeded"), "{runs:?}");
    let job: Value = c.get(format!("{url}/api/v1/jobs/tick")).send().unwrap().json().unwrap();
    assert!(!job["next_due"].is_null(), "{job}");

    // Never overlaps: a run that outlasts its slot makes the next slots skip (recorded), not run beside it.
    put(
        "slow",
        &json!({"name": "slow", "task": {"kind": "sql",
            "sql": "select count(*) from range(3000000) a, range(2000) b where a.range % 7 = b.range % 5"},
            "schedule": {"cron": "* * * * * *"}}),
        true,
    );
    let slow = poll(Duration::from_secs(60), || {
        let r = scheduled_runs(&url, "slow");
        r.iter()
            .any(|x| x["error"].as_str().is_some_and(|e| e.starts_with("skipped")))
            .then_some(r)
    });
    let running: Vec<&Value> = slow.iter().filter(|r| r["status"] == "running").collect();
    assert!(running.len() <= 1, "{slow:?}");
    put(
        "slow",
        &json!({"task": {"kind": "sql", "sql": "select 1"}, "paused": true}),
        false,
    );
    // Stop the long run (and its query) so that it does not hold the engine for the rest of the test.
    for r in running {
        let _ = c
            .post(format!(
                "{url}/api/v1/jobs/slow/runs/{}/cancel",
                r["id"].as_str().unwrap()
            ))
            .send()
            .unwrap();
    }
    poll(Duration::from_secs(60), || {
        let v: Value = http()
            .get(format!("{url}/api/v1/jobs/slow/runs"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] != "running" && r["status"] != "queued")
            .then_some(())
    });

    // Missed while down: slots 6, 7 and 8 seconds from now pass while the server is stopped; it runs once at
    // start-up, not three times.
    let now = Utc::now();
    let secs: Vec<String> = (6..=8).map(|d| ((now.second() + d) % 60).to_string()).collect();
    put(
        "tick",
        &json!({"task": {"kind": "sql", "sql": "select 2"}, "schedule": {"cron": format!("{} * * * * *", secs.join(","))}}),
        false,
    );
    let before = scheduled_runs(&url, "tick").len();
    server.terminate();
    assert!(
        Utc::now() < now + chrono::Duration::seconds(5),
        "the server took too long to stop for the test to mean anything"
    );
    let down_until = now + chrono::Duration::seconds(10);
    while Utc::now() < down_until {
        std::thread::sleep(Duration::from_millis(100));
    }
    let restarted_at = Utc::now();
    let server = sb.spawn_server(&[]);
    let after = poll(Duration::from_secs(30), || {
        let r = scheduled_runs(&server.url, "tick");
        (r.len() > before).then_some(r)
    });
    // Give a second pass of the scheduler the chance to (wrongly) run it again.
    std::thread::sleep(Duration::from_secs(3));
    let after_restart: Vec<Value> = scheduled_runs(&server.url, "tick")
        .into_iter()
        .filter(|r| time(&r["created_at"]) >= restarted_at)
        .collect();
    assert_eq!(after_restart.len(), 1, "{after:?}");
    let r = &after_restart[0];
    let done = poll(Duration::from_secs(30), || {
        let v: Value = http()
            .get(format!(
                "{}/api/v1/jobs/tick/runs/{}",
                server.url,
                r["id"].as_str().unwrap()
            ))
            .send()
            .unwrap()
            .json()
            .unwrap();
        (v["status"] != "running" && v["status"] != "queued").then_some(v)
    });
    assert_eq!(done["status"], "succeeded", "{done}");
}

/// Uploads a CSV to `bucket`, registers it as a source and ingests it into a table, each in one call; the ingest
/// reports the object as its OpenLineage input.
async fn register_and_ingest(mut config: pluto_duck_bootstrap::config::Config, bucket: &str, lineage_ns: &str) {
    let lineage = config.data_dir.join("lineage-datasets.jsonl");
    config.lineage.transport = LineageTransportName::File;
    config.lineage.path = Some(lineage.clone());
    let r = build_router(&config).await.unwrap();
    let (s, b) = send(&r, "POST", "/api/v1/datasets", Some(&json!({"name": bucket}))).await;
    assert!(s.is_success(), "{b}");
    let put = axum::http::Request::put(format!("/api/v1/datasets/{bucket}/objects/raw/Orders.csv"))
        .header("content-type", "text/csv")
        .body(axum::body::Body::from("id,amount\n1,2.5\n2,4.0\n3,1.5\n"))
        .unwrap();
    let (resp, body) = call(&r, put).await;
    assert!(resp.status().is_success(), "{}", String::from_utf8_lossy(&body));

    let (s, b) = send(
        &r,
        "POST",
        &format!("/api/v1/datasets/{bucket}/register"),
        Some(&json!({"key": "raw/Orders.csv"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(
        (b["name"].as_str(), b["state"].as_str()),
        (Some("orders"), Some("attached")),
        "{b}"
    );
    let (s, q) = send(
        &r,
        "POST",
        "/api/v1/query?wait=60",
        Some(&json!({"sql": "select sum(amount) as s from orders.main.orders"})),
    )
    .await;
    let (s2, q2) = if s.is_success() {
        (s, q)
    } else {
        send(&r, "GET", "/api/v1/source/orders", None).await
    };
    assert!(s2.is_success(), "{q2}");
    let (s, _) = send(
        &r,
        "POST",
        &format!("/api/v1/datasets/{bucket}/register"),
        Some(&json!({"key": "raw/Orders.csv"})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = send(
        &r,
        "POST",
        &format!("/api/v1/datasets/{bucket}/register"),
        Some(&json!({"key": "raw/none.csv", "name": "none"})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, run) = send(
        &r,
        "POST",
        &format!("/api/v1/datasets/{bucket}/ingest?wait=60"),
        Some(&json!({"key": "raw/Orders.csv", "target": "orders_copy"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{run}");
    assert_eq!(run["status"], "succeeded", "{run}");
    let (_, rows) = send(
        &r,
        "POST",
        "/api/v1/query?wait=60",
        Some(&json!({"sql": "select sum(amount) as s from orders_copy"})),
    )
    .await;
    assert!(rows.to_string().contains("8"), "{rows}");
    let id = run["id"].as_str().unwrap().to_owned();
    let events = poll_async(Duration::from_secs(30), || async {
        let text = std::fs::read_to_string(&lineage).unwrap_or_default();
        let events: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["run"]["runId"] == id.as_str())
            .collect();
        (events.len() == 2).then_some(events)
    })
    .await;
    let done = &events[1];
    assert_eq!(done["eventType"], "COMPLETE");
    assert_eq!(done["inputs"][0]["namespace"], lineage_ns, "{done}");
    assert!(
        done["inputs"][0]["name"].as_str().unwrap().ends_with("raw/Orders.csv"),
        "{done}"
    );
    assert_eq!(done["outputs"][0]["name"], "warehouse.main.orders_copy", "{done}");
}

#[tokio::test]
async fn a_local_dataset_object_is_registered_and_ingested_in_one_call() {
    let sb = Sandbox::new();
    register_and_ingest(sb.config(), "lake", "file").await;
}

#[tokio::test]
async fn an_s3_dataset_object_is_registered_and_ingested_in_one_call() {
    use pluto_duck_bootstrap::config::DatasetsBackend;
    let endpoint = crate::helpers::required_env("TEST_S3_ENDPOINT");
    let endpoint = if endpoint.contains("://") {
        endpoint
    } else {
        format!("http://{endpoint}")
    };
    let sb = Sandbox::new();
    let mut config = sb.config();
    let var = format!("PD_TEST_S3_SECRET_JOBS_{}", std::process::id());
    std::env::set_var(
        &var,
        std::env::var("TEST_S3_SECRET_ACCESS_KEY").unwrap_or_else(|_| "test".into()),
    );
    config.datasets.backend = DatasetsBackend::S3;
    config.datasets.s3.endpoint = Some(endpoint);
    config.datasets.s3.access_key_id = Some(std::env::var("TEST_S3_ACCESS_KEY_ID").unwrap_or_else(|_| "test".into()));
    config.datasets.s3.secret_access_key = Some(format!("env:{var}"));
    let bucket = format!("pd-reg-{}", uuid::Uuid::new_v4().simple());
    register_and_ingest(config, &bucket, &format!("s3://{bucket}")).await;
}
