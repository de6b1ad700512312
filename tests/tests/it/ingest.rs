//! Files, folders, HTTP and S3 read in place, and ingestion jobs in every mode, against real files, a real HTTP
//! server on loopback, a real S3-compatible server (moto) and real PostgreSQL and MariaDB.

use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{call, get, post, required_env, send, Sandbox};
use crate::query::TestApi;

/// Writes files with DuckDB itself: `COPY (sql) TO path`.
pub fn write_file(path: &Path, sql: &str, format: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let conn = duckdb::Connection::open_in_memory().unwrap();
    conn.execute_batch(&format!("COPY ({sql}) TO '{}' (FORMAT {format})", path.display()))
        .unwrap();
}

fn orders_sql(from: i64, to: i64) -> String {
    format!("SELECT i AS id, i * 1.5 AS amount, 'n' || i AS note FROM range({from}, {to}) t(i)")
}

async fn scalar(api: &TestApi, sql: &str) -> Value {
    api.rows(sql).await["rows"][0][0].clone()
}

async fn ingest(api: &TestApi, body: Value) -> (StatusCode, Value, String) {
    send(api, post("/api/v1/ingest?wait=120", &body)).await
}

#[tokio::test]
async fn local_files_folders_and_globs_attach_preview_and_cache() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let dir = sb.path().join("files");
    write_file(&dir.join("orders.csv"), &orders_sql(0, 10), "csv");
    write_file(
        &dir.join("lake/customers.parquet"),
        "SELECT 1 AS id, 'ann' AS name",
        "parquet",
    );
    write_file(&dir.join("lake/events.json"), "SELECT 7 AS id, 'click' AS kind", "json");
    std::fs::write(dir.join("lake/README.md"), "not data").unwrap();
    for i in 0..3 {
        write_file(
            &dir.join(format!("daily/day{i}.csv")),
            &orders_sql(i * 100, i * 100 + 5),
            "csv",
        );
    }

    // One file: one table named after it.
    let (status, src, text) = send(
        &api,
        post(
            "/api/v1/source",
            &json!({"name": "orders_file", "kind": "file", "location": dir.join("orders.csv")}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert_eq!(src["connection"]["location"], json!(dir.join("orders.csv")));
    let (_, detail, _) = send(&api, get("/api/v1/source/orders_file")).await;
    assert_eq!(detail["tables"][0]["name"], "orders");
    assert_eq!(scalar(&api, "SELECT count(*) FROM orders_file.main.orders").await, 10);
    let (status, preview, text) = send(
        &api,
        get("/api/v1/source/orders_file/tables/main/orders/preview?limit=2"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(preview["rows"].as_array().unwrap().len(), 2);

    // A folder: a table per data file, other files skipped; formats from the names.
    let (status, _, text) = send(
        &api,
        post(
            "/api/v1/source",
            &json!({"name": "lake", "kind": "file", "location": dir.join("lake")}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let (_, tables, _) = send(&api, get("/api/v1/source/lake/tables")).await;
    let names: Vec<_> = tables.as_array().unwrap().iter().map(|t| t["name"].clone()).collect();
    assert_eq!(names, [json!("customers"), json!("events")]);
    assert_eq!(scalar(&api, "SELECT kind FROM lake.main.events").await, "click");

    // A glob (DSN form): one table over every file.
    let (status, _, text) = send(
        &api,
        post(
            "/api/v1/source",
            &json!({"name": "daily", "dsn": format!("file://{}/daily/*.csv", dir.display())}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert_eq!(scalar(&api, "SELECT count(*) FROM daily.main.daily").await, 15);

    // A file table can be cached like a remote one.
    let (status, cached, text) = send(
        &api,
        post(
            "/api/v1/source/daily/cache",
            &json!({"schema": "main", "table": "daily", "name": "daily_copy"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert_eq!(cached["rows"], 15);
    write_file(&dir.join("daily/day3.csv"), &orders_sql(300, 302), "csv");
    let (status, refreshed, text) = send(&api, post("/api/v1/cache/daily_copy/refresh", &json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(refreshed["rows"], 17, "a glob sees new files");

    // Bad inputs: each a clear 422 (404 for nothing at all), nothing stored.
    let bad = [
        (
            json!({"name": "nope", "kind": "file", "location": dir.join("missing.csv")}),
            "does not exist",
        ),
        (
            json!({"name": "book", "kind": "file", "location": write_xlsx(&dir)}),
            "unsupported format .xlsx",
        ),
        (
            json!({"name": "etc", "kind": "file", "location": "/etc/hostname"}),
            "outside the allowed roots",
        ),
        (
            json!({"name": "bad-name", "kind": "file", "location": dir.join("orders.csv")}),
            "invalid identifier",
        ),
        (
            json!({"name": "none", "kind": "file", "location": dir.join("daily/*.parquet")}),
            "no file matches",
        ),
        (
            json!({"name": "docs", "kind": "file", "location": dir.join("lake/README.md"), "format": "xml"}),
            "file format",
        ),
        (
            json!({"name": "web", "kind": "http", "location": "http://127.0.0.1:9/x/*.csv"}),
            "must name one file",
        ),
    ];
    for (body, expected) in bad {
        let (status, problem, text) = send(&api, post("/api/v1/source", &body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {text}");
        assert!(problem["detail"].as_str().unwrap().contains(expected), "{body}: {text}");
    }
    let (_, list, _) = send(&api, get("/api/v1/source")).await;
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");

    // After a restart the file sources are back.
    drop(api);
    let api = TestApi::new(&sb).await;
    assert_eq!(scalar(&api, "SELECT count(*) FROM lake.main.customers").await, 1);
    assert_eq!(scalar(&api, "SELECT count(*) FROM daily.main.daily").await, 17);
}

fn write_xlsx(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("book.xlsx");
    std::fs::write(&p, b"PK\x03\x04 not really").unwrap();
    p
}

#[tokio::test]
async fn ingest_files_in_every_mode_with_progress_catalog_and_history() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let dir = sb.path().join("in");
    write_file(&dir.join("orders.csv"), &orders_sql(0, 100), "csv");

    // Inspect before ingesting: connector, location, tables and sample rows pulled through the connector.
    let (status, seen, text) = send(
        &api,
        post(
            "/api/v1/ingest/inspect",
            &json!({"source": {"kind": "file", "location": dir.join("orders.csv")}, "rows": 3}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        (seen["connector"].as_str(), seen["tables"][0]["name"].as_str()),
        (Some("file"), Some("orders"))
    );
    assert_eq!(seen["columns"][0], json!({"name": "id", "type": "BIGINT"}));
    assert_eq!(seen["rows"], json!([[0, 0.0, "n0"], [1, 1.5, "n1"], [2, 3.0, "n2"]]));
    for (body, expected) in [
        (
            json!({"source": {"kind": "file", "location": dir.join("nope.csv")}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"source": {"kind": "file", "location": dir.join("orders.csv")}, "rows": 5000}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"source": {"kind": "file", "location": dir.join("orders.csv")}, "table": "other"}),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (status, _, text) = send(&api, post("/api/v1/ingest/inspect", &body)).await;
        assert_eq!(status, expected, "{body}: {text}");
    }
    // Nothing stays attached.
    assert_eq!(
        scalar(
            &api,
            "SELECT count(*) FROM duckdb_databases() WHERE database_name LIKE 'pd_ingest_%'"
        )
        .await,
        0
    );

    // replace (default) from an inline file source: the table lands in main.
    let file = json!({"kind": "file", "location": dir.join("orders.csv")});
    let (status, run, text) = ingest(&api, json!({"source": file, "table": "orders"})).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        (run["status"].as_str(), run["rows"].as_u64(), run["target"].as_str()),
        (Some("succeeded"), Some(100), Some("main.orders"))
    );
    assert!(run["bytes"].as_u64().unwrap() > 1000, "{run}");
    assert_eq!(scalar(&api, "SELECT sum(id)::BIGINT FROM orders").await, 4950);

    // append twice adds the rows twice.
    for _ in 0..2 {
        let (status, run, text) = ingest(
            &api,
            json!({"source": file, "table": "orders", "target": "orders_log", "mode": "append"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(run["rows"], 100);
    }
    assert_eq!(scalar(&api, "SELECT count(*) FROM orders_log").await, 200);

    // merge on a key: changed rows updated, new rows inserted, others kept.
    write_file(
        &dir.join("changes.csv"),
        "SELECT i AS id, 0.0 AS amount, 'changed' AS note FROM range(95, 105) t(i)",
        "csv",
    );
    let changes = json!({"kind": "file", "location": dir.join("changes.csv")});
    let (status, run, text) = ingest(
        &api,
        json!({"source": changes, "table": "changes", "target": "orders", "mode": "merge", "keys": ["id"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(run["rows"], 10);
    let doc = api
        .rows("SELECT count(*), count(*) FILTER (note = 'changed'), max(id) FROM orders")
        .await;
    assert_eq!(doc["rows"][0], json!([105, 10, 104]));

    // SQLite and DuckDB files through their connectors.
    let db = sb.path().join("in/shop.duckdb");
    duckdb::Connection::open(&db)
        .unwrap()
        .execute_batch(&format!("CREATE TABLE items AS {}", orders_sql(0, 12)))
        .unwrap();
    let (status, run, text) = ingest(
        &api,
        json!({"source": {"kind": "duckdb", "path": db}, "target": "items"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(run["rows"], 12);
    let lite = sb.path().join("in/shop.sqlite");
    crate::sources::sqlite_orders(&lite);
    let (status, run, text) = ingest(&api, json!({"source": {"dsn": format!("sqlite://{}", lite.display())}, "table": "orders", "target": "items", "mode": "merge", "keys": ["id"]})).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(run["rows"], 10);
    assert_eq!(scalar(&api, "SELECT count(*) FROM items").await, 12);

    // A glob reports progress file by file on the SSE stream.
    for i in 0..3 {
        write_file(
            &dir.join(format!("parts/p{i}.parquet")),
            &orders_sql(i * 10, i * 10 + 10),
            "parquet",
        );
    }
    let glob = json!({"kind": "file", "location": format!("{}/parts/*.parquet", dir.display())});
    let (status, run, text) = send(&api, post("/api/v1/ingest", &json!({"source": glob, "table": "parts"}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    let id = run["id"].as_str().unwrap().to_owned();
    let (resp, body) = call(&api.router, get(&format!("/api/v1/ingest/runs/{id}/events"))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let events = String::from_utf8_lossy(&body);
    let progress: Vec<Value> = events
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str::<Value>(d.trim()).unwrap())
        .filter(|v| v["status"] == "progress")
        .collect();
    assert_eq!(progress.len(), 3, "{events}");
    assert_eq!(
        progress
            .iter()
            .map(|p| (p["part"].as_u64(), p["rows"].as_u64()))
            .collect::<Vec<_>>(),
        [(Some(1), Some(10)), (Some(2), Some(20)), (Some(3), Some(30))]
    );
    assert!(events.contains("event: completed"), "{events}");

    // Cancel between parts: the job stops at once, nothing is written and no staging table stays.
    for i in 0..40 {
        write_file(
            &dir.join(format!("many/m{i:02}.parquet")),
            &orders_sql(i * 200_000, (i + 1) * 200_000),
            "parquet",
        );
    }
    let many = json!({"kind": "file", "location": format!("{}/many/*.parquet", dir.display())});
    let (status, run, text) = send(&api, post("/api/v1/ingest", &json!({"source": many, "target": "many"}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    let id = run["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let (status, run, text) = send(&api, post(&format!("/api/v1/ingest/runs/{id}/cancel"), &json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(run["status"], "cancelled", "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "cancel took {:?}",
        started.elapsed()
    );
    assert_eq!(
        scalar(
            &api,
            "SELECT count(*) FROM duckdb_tables() WHERE table_name IN ('many') OR table_name LIKE '__pd_ingest%'"
        )
        .await,
        0
    );

    // A malformed CSV: caught when the source opens when it shows early, by the load when it hides past the
    // sniffer's sample. Either way a 422 naming the line, and the target keeps its rows.
    let mut early = String::from("id,amount,note\n");
    for i in 0..5000 {
        early.push_str(&format!("{i},{i}.5,n{i}\n"));
    }
    early.push_str("5000,\"unterminated,x\n5001,1,2,3,4\n");
    std::fs::write(dir.join("early.csv"), early).unwrap();
    let mut late = String::from("id,amount,note\n");
    for i in 0..60_000 {
        late.push_str(&format!("{i},{i}.5,n{i}\n"));
    }
    late.push_str("60000,1,x,extra,columns,here\n");
    std::fs::write(dir.join("late.csv"), late).unwrap();
    for (file, table, expected) in [("early.csv", "early", "line 5002"), ("late.csv", "late", "line 60002")] {
        let src = json!({"kind": "file", "location": dir.join(file)});
        let (status, problem, text) = ingest(&api, json!({"source": src, "table": table, "target": "orders"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
        assert!(problem["detail"].as_str().unwrap().contains(expected), "{text}");
        assert_eq!(scalar(&api, "SELECT count(*) FROM orders").await, 105);
    }
    // No staging table is left behind.
    assert_eq!(
        scalar(
            &api,
            "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '__pd_ingest%'"
        )
        .await,
        0
    );

    // Bad requests answer before any job exists.
    let bad_requests = [
        (json!({"source": file, "table": "nope"}), StatusCode::NOT_FOUND),
        (
            json!({"source": file, "table": "orders", "mode": "upsert"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"source": file, "table": "orders", "mode": "merge"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"source": file, "table": "orders", "target": "bad-name"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"source": "no_such_source", "table": "orders"}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"source": {"kind": "file", "location": dir.join("gone.csv")}, "table": "gone"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"source": file, "query": "SELECT 1", "target": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (body, expected) in bad_requests {
        let (status, _, text) = ingest(&api, body.clone()).await;
        assert_eq!(status, expected, "{body}: {text}");
    }

    // The catalog: one entry per target, with its sync history.
    let (_, catalog, _) = send(&api, get("/api/v1/ingest")).await;
    let targets: Vec<_> = catalog
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["target"].clone())
        .collect();
    assert_eq!(
        targets,
        [
            json!("main.items"),
            json!("main.many"),
            json!("main.orders"),
            json!("main.orders_log"),
            json!("main.parts")
        ]
    );
    let (status, entry, text) = send(&api, get("/api/v1/ingest/catalog/orders")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(entry["last_status"], "failed");
    assert_eq!(entry["rows"], 10, "rows of the last good sync");
    let statuses: Vec<_> = entry["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("failed"), json!("succeeded"), json!("succeeded")]);
    let (_, connectors, _) = send(&api, get("/api/v1/ingest/connectors")).await;
    assert_eq!(
        connectors,
        json!(["duckdb", "file", "http", "mysql", "postgres", "s3", "sqlite"])
    );

    // Another project gets its own database.
    let (status, _, text) = send(&api, post("/api/v1/projects", &json!({"id": "team", "name": "Team"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let req = Request::post("/api/v1/ingest?wait=60")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-pluto-project", "team")
        .body(Body::from(json!({"source": file, "table": "orders"}).to_string()))
        .unwrap();
    let (status, run, text) = send(&api, req).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(run["target"], "main.orders");
    let team = Request::post("/api/v1/query?wait=60")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-pluto-project", "team")
        .body(Body::from(
            json!({"sql": "SELECT count(*) FROM main.orders"}).to_string(),
        ))
        .unwrap();
    let (_, doc, text) = send(&api, team).await;
    assert_eq!(doc["rows"][0][0], 100, "{text}");
    assert_eq!(scalar(&api, "SELECT count(*) FROM main.orders").await, 105);
}

/// A static file server with range requests, like any web server DuckDB reads from.
async fn serve_dir(dir: &Path) -> String {
    let app = axum::Router::new().fallback_service(tower_http::services::ServeDir::new(dir));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_files_attach_preview_and_ingest() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let www = sb.path().join("www");
    write_file(&www.join("data/orders.csv"), &orders_sql(0, 50), "csv");
    write_file(&www.join("data/orders.parquet"), &orders_sql(0, 70), "parquet");
    let base = serve_dir(&www).await;

    let (status, _, text) = send(
        &api,
        post(
            "/api/v1/source",
            &json!({"name": "web", "kind": "http", "location": format!("{base}/data/orders.parquet")}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert_eq!(scalar(&api, "SELECT count(*) FROM web.main.orders").await, 70);
    let (status, preview, text) = send(&api, get("/api/v1/source/web/tables/main/orders/preview?limit=5")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(preview["rows"].as_array().unwrap().len(), 5);

    let (status, run, text) = ingest(
        &api,
        json!({"source": {"dsn": format!("{base}/data/orders.csv")}, "table": "orders", "target": "web_orders"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(run["rows"], 50);
    let (status, run, text) = ingest(
        &api,
        json!({"source": "web", "table": "orders", "target": "web_orders", "mode": "append"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(run["rows"], 70);
    assert_eq!(scalar(&api, "SELECT count(*) FROM web_orders").await, 120);

    // Cached and refreshed in full and incrementally on a cursor column, after the file on the server grew.
    let (status, cached, text) = send(
        &api,
        post(
            "/api/v1/source/web/cache",
            &json!({"schema": "main", "table": "orders", "name": "web_copy", "cursor_column": "id"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert_eq!(cached["rows"], 70);
    write_file(&www.join("data/orders.parquet"), &orders_sql(0, 90), "parquet");
    let (status, refreshed, text) = send(&api, post("/api/v1/cache/web_copy/refresh", &json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(refreshed["rows"], 90, "incremental: rows past the cursor appended");
    let (status, refreshed, text) = send(&api, post("/api/v1/cache/web_copy/refresh?full=true", &json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(refreshed["rows"], 90);

    // A missing URL is a clear 422.
    let (status, _, text) = send(
        &api,
        post(
            "/api/v1/source",
            &json!({"name": "gone", "kind": "http", "location": format!("{base}/data/none.csv")}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
}

/// moto: create a bucket and put objects with plain path-style requests.
fn s3_put(endpoint: &str, key: &str, body: Vec<u8>) {
    let client = reqwest::blocking::Client::new();
    let resp = client
        .put(format!("http://{endpoint}/{key}"))
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .unwrap();
    assert!(resp.status().is_success(), "PUT {key}: {}", resp.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_objects_attach_list_ingest_and_survive_restart() {
    let endpoint = required_env("TEST_S3_ENDPOINT");
    let sb = Sandbox::new();
    let bucket = format!("pd{}", std::process::id());
    let tmp = sb.path().join("s3src");
    for i in 0..3 {
        write_file(
            &tmp.join(format!("p{i}.parquet")),
            &orders_sql(i * 1000, i * 1000 + 1000),
            "parquet",
        );
    }
    write_file(&tmp.join("customers.csv"), "SELECT 1 AS id, 'ann' AS name", "csv");
    {
        let (endpoint, bucket, tmp) = (endpoint.clone(), bucket.clone(), tmp.clone());
        tokio::task::spawn_blocking(move || {
            s3_put(&endpoint, &bucket, Vec::new());
            for i in 0..3 {
                s3_put(
                    &endpoint,
                    &format!("{bucket}/orders/p{i}.parquet"),
                    std::fs::read(tmp.join(format!("p{i}.parquet"))).unwrap(),
                );
            }
            s3_put(
                &endpoint,
                &format!("{bucket}/crm/customers.csv"),
                std::fs::read(tmp.join("customers.csv")).unwrap(),
            );
        })
        .await
        .unwrap();
    }
    let secret_key = "s3-secret-key-do-not-leak";
    let s3 = |location: String| {
        json!({"kind": "s3", "location": location, "endpoint": endpoint, "url_style": "path", "use_ssl": false,
               "region": "us-east-1", "key_id": "test", "secret_access_key": secret_key})
    };
    let api = TestApi::new(&sb).await;
    let mut body = s3(format!("s3://{bucket}/orders/*.parquet"));
    body["name"] = json!("lake");
    let (status, src, text) = send(&api, post("/api/v1/source", &body)).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert_eq!(src["connection"]["secret_access_key"], "***");
    assert!(!text.contains(secret_key));
    assert_eq!(scalar(&api, "SELECT count(*) FROM lake.main.orders").await, 3000);

    // A prefix: a table per object.
    let mut body = s3(format!("s3://{bucket}/crm/"));
    body["name"] = json!("crm");
    let (status, _, text) = send(&api, post("/api/v1/source", &body)).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let (_, tables, _) = send(&api, get("/api/v1/source/crm/tables")).await;
    assert_eq!(tables[0]["name"], "customers");

    // Cached with a cursor; a new object under the glob is appended by an incremental refresh.
    let (status, cached, text) = send(
        &api,
        post(
            "/api/v1/source/lake/cache",
            &json!({"schema": "main", "table": "orders", "name": "lake_copy", "cursor_column": "id", "ttl_secs": 3600}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert_eq!(cached["rows"], 3000);
    {
        let (endpoint, bucket, tmp) = (endpoint.clone(), bucket.clone(), tmp.clone());
        tokio::task::spawn_blocking(move || {
            write_file(&tmp.join("p3.parquet"), &orders_sql(3000, 3500), "parquet");
            s3_put(
                &endpoint,
                &format!("{bucket}/orders/p3.parquet"),
                std::fs::read(tmp.join("p3.parquet")).unwrap(),
            );
        })
        .await
        .unwrap();
    }
    let (status, refreshed, text) = send(&api, post("/api/v1/cache/lake_copy/refresh", &json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(refreshed["rows"], 3500);
    let (status, preview, text) = send(&api, get("/api/v1/source/crm/tables/main/customers/preview")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(preview["rows"][0][1], "ann");

    // Ingest from the stored source, part by part, and from an inline one.
    let (status, run, text) = ingest(
        &api,
        json!({"source": "lake", "table": "orders", "target": "s3_orders"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(run["rows"], 3500);
    let (status, run, text) = ingest(
        &api,
        json!({"source": s3(format!("s3://{bucket}/orders/p0.parquet")), "table": "p0", "target": "s3_orders", "mode": "merge", "keys": ["id"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(run["rows"], 1000);
    assert_eq!(scalar(&api, "SELECT count(*) FROM s3_orders").await, 3500);
    let (status, _, text) = ingest(
        &api,
        json!({"source": s3(format!("s3://{bucket}/nothing/*.csv")), "table": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");

    // After a restart the S3 source works again with its stored secret key.
    drop(api);
    let api = TestApi::new(&sb).await;
    assert_eq!(scalar(&api, "SELECT count(*) FROM lake.main.orders").await, 3500);
    let (_, detail, text) = send(&api, get("/api/v1/source/lake")).await;
    assert_eq!(detail["state"], "attached", "{text}");
    assert!(!text.contains(secret_key));
    // The key is nowhere on disk in clear, and not in the log.
    crate::helpers::assert_not_in_tree(sb.path(), secret_key);
}

#[tokio::test]
async fn ingest_from_postgres_and_mariadb_in_every_mode() {
    let pg = required_env("TEST_PG_URL");
    let my = required_env("TEST_MYSQL_URL");
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let table = format!("ing_{}", std::process::id());
    crate::sources::psql_exec(
        &pg,
        &format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int primary key, amount numeric(10,2), updated_at timestamp); \
             INSERT INTO {table} SELECT i, i * 2, now() FROM generate_series(1, 500) i;"
        ),
    );
    // A DSN inline (password used once, never stored) with a query run by PostgreSQL itself.
    let (status, run, text) = ingest(
        &api,
        json!({"source": {"dsn": pg}, "query": format!("SELECT id, amount FROM {table} WHERE id <= 100"), "target": "pg_small"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(run["rows"], 100);
    let (_, entry, text) = send(&api, get("/api/v1/ingest/catalog/pg_small")).await;
    assert!(!text.contains("pd_secret_pw"), "{text}");
    assert_eq!(entry["named_source"], false);

    // A stored source: replace, then merge the changed rows, then sync the entry again.
    let (status, _, text) = send(&api, post("/api/v1/source", &json!({"name": "pgsrc", "dsn": pg}))).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    // What DuckDB sends to PostgreSQL, and PostgreSQL's own row estimate.
    crate::sources::psql_exec(&pg, &format!("ANALYZE {table}"));
    let sql = format!("SELECT amount FROM pgsrc.public.{table} WHERE id > 400");
    let (status, scans, text) = send(&api, post("/api/v1/source/pgsrc/explain", &json!({"sql": sql}))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(scans[0]["operator"], "POSTGRES_SCAN", "{text}");
    assert_eq!(scans[0]["filters"], json!(["id>400"]), "{text}");
    let remote = scans[0]["remote_sql"].as_str().unwrap();
    assert!(
        remote.contains("amount") && remote.ends_with("WHERE id>400"),
        "{remote}"
    );
    let (status, _, text) = send(
        &api,
        post("/api/v1/source/pgsrc/explain", &json!({"sql": "DROP TABLE x"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    let (status, estimate, text) = send(
        &api,
        get(&format!("/api/v1/source/pgsrc/tables/public/{table}/estimate")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    // The scanner estimates from the table's pages: the right order of magnitude, not an exact count.
    let n = estimate["estimated_rows"].as_u64().unwrap();
    assert!((100..=2500).contains(&n), "{text}");

    let (status, run, text) = ingest(
        &api,
        json!({"source": "pgsrc", "table": format!("public.{table}"), "target": "pg_orders"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(run["rows"], 500);
    crate::sources::psql_exec(
        &pg,
        &format!("UPDATE {table} SET amount = -1 WHERE id <= 10; INSERT INTO {table} VALUES (501, 1, now());"),
    );
    let (status, _, text) = ingest(
        &api,
        json!({"source": "pgsrc", "query": format!("SELECT * FROM {table} WHERE amount < 2"), "target": "pg_orders", "mode": "merge", "keys": ["id"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let doc = api
        .rows("SELECT count(*), count(*) FILTER (amount = -1) FROM pg_orders")
        .await;
    assert_eq!(doc["rows"][0], json!([501, 10]));
    let (status, run, text) = send(&api, post("/api/v1/ingest/catalog/pg_orders/sync?wait=60", &json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(run["status"], "succeeded");
    let (status, _, text) = send(&api, post("/api/v1/ingest/catalog/pg_small/sync", &json!({}))).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "an inline source cannot be synced without its secret: {text}"
    );

    let (status, seen, text) = send(
        &api,
        post(
            "/api/v1/ingest/inspect",
            &json!({"source": {"dsn": pg}, "table": format!("public.{table}"), "rows": 2}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(seen["rows"].as_array().unwrap().len(), 2);
    assert!(!text.contains("pd_secret_pw"), "{text}");

    // append from PostgreSQL, into a table of its own.
    for expected in [501, 1002] {
        let (status, _, text) = ingest(
            &api,
            json!({"source": "pgsrc", "table": format!("public.{table}"), "target": "pg_log", "mode": "append"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(scalar(&api, "SELECT count(*) FROM pg_log").await, expected);
    }
    // An unreachable host: 422 at once, nothing written.
    let (status, _, text) = ingest(
        &api,
        json!({"source": {"dsn": "postgres://pd@127.0.0.1:9/pluto"}, "table": "public.x", "target": "pg_orders"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");

    // Wrong password: 422 without the password in it; the earlier table is untouched.
    let wrong = pg.replace("pd_secret_pw", "wrong_pw_123");
    let (status, _, text) = ingest(
        &api,
        json!({"source": {"dsn": wrong}, "table": format!("public.{table}"), "target": "pg_orders"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(!text.contains("wrong_pw_123"), "{text}");
    assert_eq!(scalar(&api, "SELECT count(*) FROM pg_orders").await, 501);

    // Cancel: the job ends cancelled and the target keeps its rows. DuckDB's interrupt does not reach a statement
    // already running in PostgreSQL, so the cancel answers once that statement returns.
    let (status, run, text) = send(
        &api,
        post(
            "/api/v1/ingest",
            &json!({"source": "pgsrc", "query": "SELECT pg_sleep(3), 1 AS id", "target": "pg_orders"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    let id = run["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, run, text) = send(&api, post(&format!("/api/v1/ingest/runs/{id}/cancel"), &json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(run["status"], "cancelled", "{text}");
    assert_eq!(scalar(&api, "SELECT count(*) FROM pg_orders").await, 501);

    // MariaDB, appended twice and queried through mysql_query.
    crate::sources::mariadb_exec(
        &my,
        &format!("DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int primary key, v varchar(10)); INSERT INTO {table} VALUES (1,'a'),(2,'b'),(3,'c');"),
    );
    let (status, run, text) = ingest(
        &api,
        json!({"source": {"dsn": my}, "table": table, "target": "my_copy"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(run["rows"], 3);
    for _ in 0..2 {
        let (status, run, text) = ingest(
            &api,
            json!({"source": {"dsn": my}, "table": table, "target": "my_rows", "mode": "append"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(run["rows"], 3);
    }
    let (status, run, text) = ingest(
        &api,
        json!({"source": {"dsn": my}, "query": format!("SELECT id, UPPER(v) AS v FROM {table}"), "target": "my_rows", "mode": "merge", "keys": ["id"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(run["rows"], 3);
    let doc = api.rows("SELECT count(*), min(v) FROM my_rows").await;
    assert_eq!(doc["rows"][0], json!([3, "A"]));
    crate::sources::psql_exec(&pg, &format!("DROP TABLE {table}"));
    crate::sources::mariadb_exec(&my, &format!("DROP TABLE {table}"));
}

#[test]
fn ingest_cli_flags_and_recipes_in_process_and_through_the_server() {
    use crate::helpers::{stderr, stdout};
    let pg = required_env("TEST_PG_URL");
    let sb = Sandbox::new();
    let dir = sb.path().join("cli");
    write_file(&dir.join("orders.csv"), &orders_sql(0, 40), "csv");
    for i in 0..2 {
        write_file(
            &dir.join(format!("parts/p{i}.parquet")),
            &orders_sql(i * 10, i * 10 + 10),
            "parquet",
        );
    }
    // No server: the same API in-process.
    let o = sb.run(&["ingest", "--file", "cli/orders.csv", "--target", "cli_orders"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("ingested 40 rows into main.cli_orders"),
        "{}",
        stdout(&o)
    );
    let o = sb.run(&[
        "ingest",
        "--file",
        "cli/orders.csv",
        "--target",
        "cli_orders",
        "--mode",
        "merge",
    ]);
    assert_eq!(o.status.code(), Some(2), "merge without keys: {}", stderr(&o));
    assert!(stderr(&o).contains("merge needs `keys`"), "{}", stderr(&o));
    let o = sb.run(&["ingest", "--file", "cli/missing.csv"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o).trim().lines().count(), 1, "one line: {}", stderr(&o));

    // A recipe through a running server: several sources and targets, secrets by reference only.
    let table = format!("cli_{}", std::process::id());
    crate::sources::psql_exec(
        &pg,
        &format!("DROP TABLE IF EXISTS {table}; CREATE TABLE {table} AS SELECT i AS id FROM generate_series(1, 25) i;"),
    );
    std::fs::write(
        dir.join("recipe.yaml"),
        format!(
            "ingest:\n  - source: {{kind: file, location: parts/*.parquet}}\n    target: parts\n  \
             - source: {{dsn: env:CLI_PG_URL}}\n    table: public.{table}\n    target: pg_ids\n    mode: merge\n    keys: [id]\n  \
             - source: {{kind: file, location: orders.csv}}\n    target: cli_orders\n    mode: append\n"
        ),
    )
    .unwrap();
    let mut server = sb.spawn_server(&[]);
    let o = sb
        .cmd()
        .env("CLI_PG_URL", &pg)
        .args(["ingest", "cli/recipe.yaml"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for line in [
        "ingested 20 rows into main.parts",
        "ingested 25 rows into main.pg_ids",
        "ingested 40 rows into main.cli_orders",
    ] {
        assert!(out.contains(line), "{line}: {out}");
    }
    // `--from-postgres` with the URI in the environment.
    let o = sb
        .cmd()
        .env("CLI_PG_URL", &pg)
        .args([
            "ingest",
            "--from-postgres",
            "env:CLI_PG_URL",
            "--query",
            &format!("SELECT count(*) AS n FROM {table}"),
            "--target",
            "pg_count",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("ingested 1 rows into main.pg_count"),
        "{}",
        stdout(&o)
    );
    // A literal password in a recipe is refused without echoing it.
    std::fs::write(
        dir.join("bad.yaml"),
        format!("ingest:\n  - source: {{dsn: \"{pg}\"}}\n    table: public.{table}\n"),
    )
    .unwrap();
    let o = sb.run(&["ingest", "cli/bad.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("env:VARIABLE") && !stderr(&o).contains("pd_secret_pw"),
        "{}",
        stderr(&o)
    );
    server.terminate();
    let o = sb.run(&[
        "sql",
        "SELECT (SELECT count(*) FROM cli_orders) + (SELECT count(*) FROM pg_ids)",
        "--format",
        "csv",
    ]);
    assert!(stdout(&o).contains("105"), "{}", stdout(&o));
    let log = std::fs::read_to_string(sb.data_dir().join("logs/pluto-duck.log")).unwrap_or_default();
    assert!(!log.contains("pd_secret_pw"), "password in the log");
    crate::sources::psql_exec(&pg, &format!("DROP TABLE {table}"));
}
