//! Query jobs through the router: submit, wait, page, formats, events, cancel, timeout, history.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, Response, StatusCode};
use pluto_duck_bootstrap::commands::build_router;
use serde_json::Value;

use crate::helpers::{call, get, json, poll_async, Sandbox};

pub struct TestApi {
    pub router: axum::Router,
}

pub fn post_query(sql: &str, query: &str, project: Option<&str>) -> Request<Body> {
    post_body(&serde_json::json!({ "sql": sql }), query, project)
}

pub fn post_body(body: &Value, query: &str, project: Option<&str>) -> Request<Body> {
    let mut b = Request::post(format!("/api/v1/query{query}")).header(header::CONTENT_TYPE, "application/json");
    if let Some(p) = project {
        b = b.header("x-pluto-project", p);
    }
    b.body(Body::from(body.to_string())).unwrap()
}

impl TestApi {
    pub async fn new(sb: &Sandbox) -> Self {
        Self {
            router: build_router(&sb.config()).await.unwrap(),
        }
    }

    /// Submits and waits for the inline JSON result.
    pub async fn rows(&self, sql: &str) -> Value {
        let (resp, body) = call(&self.router, post_query(sql, "?wait=60", None)).await;
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "{sql}: {}",
            String::from_utf8_lossy(&body)
        );
        json(&body)
    }

    /// Submits without waiting; returns the job.
    pub async fn submit(&self, body: Value) -> Value {
        let (resp, bytes) = call(&self.router, post_body(&body, "", None)).await;
        assert_eq!(
            resp.status(),
            StatusCode::ACCEPTED,
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        json(&bytes)
    }

    pub async fn status(&self, id: &str) -> Value {
        let (resp, body) = call(&self.router, get(&format!("/api/v1/query/{id}"))).await;
        assert_eq!(resp.status(), StatusCode::OK);
        json(&body)
    }

    pub async fn finished(&self, id: &str) -> Value {
        poll_async(Duration::from_secs(60), || async {
            let s = self.status(id).await;
            (!matches!(s["status"].as_str(), Some("queued" | "running"))).then_some(s)
        })
        .await
    }

    pub async fn result(&self, id: &str, format: &str) -> (Response<()>, Vec<u8>) {
        let (resp, body) = call(&self.router, get(&format!("/api/v1/query/{id}/result?format={format}"))).await;
        assert_eq!(resp.status(), StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        (resp, body)
    }
}

fn problem(resp: &Response<()>, body: &[u8], status: StatusCode) -> Value {
    assert_eq!(resp.status(), status, "{}", String::from_utf8_lossy(body));
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/problem+json");
    json(body)
}

#[tokio::test]
async fn inline_result_and_job_lifecycle() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let doc = api
        .rows("SELECT range AS n, 'row ' || range AS label FROM range(5)")
        .await;
    assert_eq!(doc["row_count"], 5);
    assert_eq!(doc["rows"][4], serde_json::json!([4, "row 4"]));
    assert_eq!(doc["columns"][0], serde_json::json!({"name": "n", "type": "BIGINT"}));

    // Without wait: 202 with links, then status with timings, columns and a page of rows.
    let job = api
        .submit(serde_json::json!({"sql": "SELECT range AS n FROM range(1000)"}))
        .await;
    let id = job["id"].as_str().unwrap();
    assert!(job["links"]["events"].as_str().unwrap().ends_with("/events"));
    let done = api.finished(id).await;
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["row_count"], 1000);
    assert!(done["elapsed_ms"].is_u64() && done["bytes"].as_u64().unwrap() > 0);
    assert_eq!(done["rows"].as_array().unwrap().len(), 100, "default page");
    let (_, body) = call(&api.router, get(&format!("/api/v1/query/{id}?offset=990&limit=50"))).await;
    let page = json(&body);
    assert_eq!(page["rows"].as_array().unwrap().len(), 10);
    assert_eq!(page["rows"][0][0], 990);
    // Result windows across batch boundaries.
    let (_, body) = call(
        &api.router,
        get(&format!("/api/v1/query/{id}/result?offset=2040&limit=3")),
    )
    .await;
    let _ = body;
    let (resp, body) = call(
        &api.router,
        get(&format!("/api/v1/query/{id}/result?format=csv&offset=998")),
    )
    .await;
    assert_eq!(resp.headers()["x-total-rows"], "1000");
    assert_eq!(String::from_utf8(body).unwrap(), "n\r\n998\r\n999\r\n");
}

#[tokio::test]
async fn content_negotiation_by_accept() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let id = api.rows("SELECT 1 AS a").await["run_id"].as_str().unwrap().to_owned();
    for (accept, ct) in [
        ("text/csv", "text/csv; charset=utf-8"),
        ("application/x-ndjson", "application/x-ndjson"),
        (
            "application/vnd.apache.arrow.stream",
            "application/vnd.apache.arrow.stream",
        ),
        ("application/vnd.apache.parquet", "application/vnd.apache.parquet"),
        ("application/json;q=0.9", "application/json"),
    ] {
        let req = Request::get(format!("/api/v1/query/{id}/result"))
            .header(header::ACCEPT, accept)
            .body(Body::empty())
            .unwrap();
        let (resp, _) = call(&api.router, req).await;
        assert_eq!(resp.headers()[header::CONTENT_TYPE], ct, "{accept}");
    }
    let req = Request::get(format!("/api/v1/query/{id}/result"))
        .header(header::ACCEPT, "image/png")
        .body(Body::empty())
        .unwrap();
    let (resp, body) = call(&api.router, req).await;
    problem(&resp, &body, StatusCode::NOT_ACCEPTABLE);
    let (resp, body) = call(&api.router, get(&format!("/api/v1/query/{id}/result?format=xml"))).await;
    problem(&resp, &body, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn invalid_sql_answers_422_with_duckdb_message_and_position() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    // Without waiting too: the engine's verdict comes back on the request itself.
    let (resp, body) = call(
        &api.router,
        post_query("SELECT 1;\nSELECT nope FROM range(3)", "", None),
    )
    .await;
    let p = problem(&resp, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("Referenced column \"nope\" not found"),
        "{p}"
    );
    assert_eq!(p["position"], 17, "absolute offset of `nope` in the request: {p}");
    let (resp, body) = call(&api.router, post_query("SELEC 1", "?wait=5", None)).await;
    let p = problem(&resp, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p["detail"].as_str().unwrap().starts_with("Parser Error"), "{p}");
    assert_eq!(p["position"], 0);
    let (resp, body) = call(&api.router, post_query("   ", "", None)).await;
    problem(&resp, &body, StatusCode::UNPROCESSABLE_ENTITY);
    // The failure is in the history with its error.
    let (_, body) = call(&api.router, get("/api/v1/query?status=failed")).await;
    let items = json(&body)["items"].as_array().unwrap().clone();
    assert!(items.iter().any(|q| q["error"]["position"] == 17), "{items:?}");
}

#[tokio::test]
async fn unknown_ids_and_projects() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    for path in [
        "/api/v1/query/0190a3c4-0000-7000-8000-000000000000",
        "/api/v1/query/0190a3c4-0000-7000-8000-000000000000/result",
    ] {
        let (resp, body) = call(&api.router, get(path)).await;
        problem(&resp, &body, StatusCode::NOT_FOUND);
    }
    let (resp, body) = call(&api.router, get("/api/v1/query/bad%20id")).await;
    problem(&resp, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let (resp, body) = call(&api.router, post_query("SELECT 1", "", Some("nope"))).await;
    problem(&resp, &body, StatusCode::NOT_FOUND);
    // A query of one project is invisible from another.
    let (_, _) = call(
        &api.router,
        crate::http_api::post_json("/api/v1/projects", r#"{"id":"other"}"#),
    )
    .await;
    let id = api.rows("SELECT 1").await["run_id"].as_str().unwrap().to_owned();
    let req = Request::get(format!("/api/v1/query/{id}"))
        .header("x-pluto-project", "other")
        .body(Body::empty())
        .unwrap();
    let (resp, body) = call(&api.router, req).await;
    problem(&resp, &body, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn read_only_refuses_writes_naming_the_statement_kind() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    for (sql, kind, status) in [
        (
            "CREATE TABLE t AS SELECT 1",
            "CREATE TABLE",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "SELECT 1; INSERT INTO t VALUES (1)",
            "INSERT",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("COPY t FROM 'x.csv'", "COPY", StatusCode::UNPROCESSABLE_ENTITY),
        // Outside the sandbox whether read-only or not.
        ("COPY (SELECT 1) TO '/tmp/x.csv'", "COPY", StatusCode::FORBIDDEN),
        ("ATTACH ':memory:' AS m", "ATTACH", StatusCode::FORBIDDEN),
    ] {
        let body = serde_json::json!({"sql": sql, "read_only": true});
        let (resp, bytes) = call(&api.router, post_body(&body, "", None)).await;
        let p = problem(&resp, &bytes, status);
        assert!(p["detail"].as_str().unwrap().contains(kind), "{sql}: {p}");
    }
    let body = serde_json::json!({"sql": "WITH a AS (SELECT 2 AS x) SELECT x FROM a", "read_only": true});
    let (resp, _) = call(&api.router, post_body(&body, "?wait=10", None)).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn several_statements_are_one_transaction() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let doc = api
        .rows("CREATE TABLE a AS SELECT 1 AS x; INSERT INTO a VALUES (2); SELECT sum(x) AS s FROM a")
        .await;
    assert_eq!(doc["rows"][0][0], serde_json::json!("3"));
    // A failure in a later statement undoes the earlier ones.
    let (resp, _) = call(
        &api.router,
        post_query("CREATE TABLE b AS SELECT 1; SELECT * FROM missing", "?wait=10", None),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (resp, body) = call(&api.router, post_query("SELECT * FROM b", "?wait=10", None)).await;
    assert_eq!(
        resp.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        String::from_utf8_lossy(&body)
    );
}

#[tokio::test]
async fn parameters_are_bound_not_spliced() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let body = serde_json::json!({"sql": "SELECT $1::VARCHAR AS s, $2 + 1 AS n, $3 AS b", "params": ["'; DROP TABLE x; --", 41, true]});
    let (resp, bytes) = call(&api.router, post_body(&body, "?wait=10", None)).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(
        json(&bytes)["rows"][0],
        serde_json::json!(["'; DROP TABLE x; --", 42, true])
    );
    let body = serde_json::json!({"sql": "SELECT $1", "params": []});
    let (resp, bytes) = call(&api.router, post_body(&body, "?wait=10", None)).await;
    problem(&resp, &bytes, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn max_rows_truncates_and_says_so() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let body = serde_json::json!({"sql": "SELECT * FROM range(100000)", "max_rows": 5000});
    let (resp, bytes) = call(&api.router, post_body(&body, "?wait=30", None)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let doc = json(&bytes);
    assert_eq!(doc["row_count"], 5000);
    assert_eq!(doc["truncated"], true);
    let body = serde_json::json!({"sql": "SELECT * FROM range(10)", "max_rows": 10});
    let (_, bytes) = call(&api.router, post_body(&body, "?wait=30", None)).await;
    assert_eq!(json(&bytes)["truncated"], false);
}

const SLOW: &str = "SELECT count(*) FROM range(20000000000) t(x) WHERE x % 7 = 3";

#[tokio::test]
async fn timeout_interrupts_while_the_server_keeps_answering() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let job = api.submit(serde_json::json!({"sql": SLOW, "timeout_ms": 1500})).await;
    let id = job["id"].as_str().unwrap().to_owned();
    // While it runs, other requests are answered at once.
    let quick = api.rows("SELECT 40 + 2 AS x").await;
    assert_eq!(quick["rows"][0][0], 42);
    let (resp, _) = call(&api.router, get("/health")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(api.status(&id).await["status"], "running");
    let done = api.finished(&id).await;
    assert_eq!(done["status"], "timed_out", "{done}");
    assert_eq!(done["error"]["message"], "timed out after 1500 ms");
    // The inline path reports a timeout as 504.
    let body = serde_json::json!({"sql": SLOW, "timeout_ms": 300});
    let (resp, bytes) = call(&api.router, post_body(&body, "?wait=30", None)).await;
    problem(&resp, &bytes, StatusCode::GATEWAY_TIMEOUT);
    // The connection is usable again afterwards.
    assert_eq!(api.rows("SELECT 1 AS one").await["rows"][0][0], 1);
}

#[tokio::test]
async fn cancel_interrupts_and_finished_jobs_cannot_be_cancelled() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let job = api.submit(serde_json::json!({"sql": SLOW})).await;
    let id = job["id"].as_str().unwrap().to_owned();
    let (resp, body) = call(
        &api.router,
        Request::post(format!("/api/v1/query/{id}/cancel"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["status"], "cancelled");
    let (resp, body) = call(
        &api.router,
        Request::post(format!("/api/v1/query/{id}/cancel"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    problem(&resp, &body, StatusCode::CONFLICT);
    let (resp, body) = call(&api.router, get(&format!("/api/v1/query/{id}/result"))).await;
    problem(&resp, &body, StatusCode::CONFLICT);
}

#[tokio::test]
async fn events_replay_and_resume_with_last_event_id() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let job = api
        .submit(serde_json::json!({"sql": "SELECT * FROM range(300000)"}))
        .await;
    let id = job["id"].as_str().unwrap().to_owned();
    let (resp, body) = call(&api.router, get(&format!("/api/v1/query/{id}/events"))).await;
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/event-stream");
    let text = String::from_utf8(body).unwrap();
    let ids: Vec<u64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>(), "monotonic ids: {text}");
    assert!(
        text.contains("event: queued") && text.contains("event: started"),
        "{text}"
    );
    assert!(
        text.trim_end().ends_with('}') && text.contains("event: completed"),
        "{text}"
    );
    assert!(text.contains("\"rows\":300000"), "{text}");
    let req = Request::get(format!("/api/v1/query/{id}/events"))
        .header("last-event-id", "2")
        .body(Body::empty())
        .unwrap();
    let (_, body) = call(&api.router, req).await;
    let resumed = String::from_utf8(body).unwrap();
    assert!(
        !resumed.contains("event: queued") && !resumed.contains("id: 2\n"),
        "{resumed}"
    );
    assert!(resumed.contains("event: completed"));
}

#[tokio::test]
async fn history_is_newest_first_and_filterable() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    for i in 0..3 {
        api.rows(&format!("SELECT {i}")).await;
    }
    let _ = call(&api.router, post_query("SELECT broken(", "?wait=5", None)).await;
    let (_, body) = call(&api.router, get("/api/v1/query?limit=2")).await;
    let page = json(&body);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let (_, body) = call(&api.router, get("/api/v1/query?status=succeeded")).await;
    let sqls: Vec<String> = json(&body)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["sql"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sqls, vec!["SELECT 2", "SELECT 1", "SELECT 0"]);
    let (resp, body) = call(&api.router, get("/api/v1/query?status=bogus")).await;
    problem(&resp, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let (resp, body) = call(&api.router, get("/api/v1/query?colour=red")).await;
    problem(&resp, &body, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn column_profiles() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let sql = "SELECT range AS n, CASE WHEN range % 10 = 0 THEN NULL ELSE 'v' || (range % 3) END AS t, \
               DATE '2024-01-01' + range::INTEGER AS d FROM range(1000)";
    let id = api.rows(sql).await["run_id"].as_str().unwrap().to_owned();
    let (resp, body) = call(&api.router, get(&format!("/api/v1/query/{id}/profile"))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let p = json(&body);
    assert_eq!(p[0]["name"], "n");
    assert_eq!(p[0]["min"], "0");
    assert_eq!(p[0]["max"], "999");
    assert_eq!(p[0]["nulls"], 0);
    let distinct = p[0]["distinct_estimate"].as_u64().unwrap();
    assert!((950..=1050).contains(&distinct), "{distinct}");
    assert_eq!(p[1]["nulls"], 100);
    assert_eq!(p[1]["distinct_estimate"], 3);
    assert_eq!(p[1]["top_values"][0][1], 300);
    assert_eq!(p[2]["type"], "DATE");
    assert_eq!(p[2]["min"], "2024-01-01");
    assert_eq!(p[2]["max"], "2026-09-26");
}

#[tokio::test]
async fn concurrent_reads_while_a_long_write_runs() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    api.rows("CREATE TABLE small AS SELECT range AS id FROM range(1000)")
        .await;
    let write = api
        .submit(serde_json::json!({"sql": "CREATE TABLE big AS SELECT range AS id, md5(range::VARCHAR) AS h FROM range(3000000)"}))
        .await;
    let mut readers = Vec::new();
    for i in 0..8u64 {
        let router = api.router.clone();
        readers.push(tokio::spawn(async move {
            let api = TestApi { router };
            for _ in 0..5 {
                let doc = api.rows(&format!("SELECT sum(id) + {i} AS s FROM small")).await;
                assert_eq!(doc["rows"][0][0], serde_json::json!((499500 + i).to_string()));
            }
        }));
    }
    for r in readers {
        r.await.unwrap();
    }
    let done = api.finished(write["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(api.rows("SELECT count(*) AS c FROM big").await["rows"][0][0], 3000000);
}
