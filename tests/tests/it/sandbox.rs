//! One project, one sandbox: SQL in a project sees its own tables and sources only, cannot leave its folders,
//! cannot change the engine; bad inputs get clear errors and break nothing.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{call, get, req, send, Sandbox};
use crate::query::TestApi;

async fn sql(api: &TestApi, project: &str, sql: &str) -> (StatusCode, Value, String) {
    send(
        api,
        req(
            "POST",
            "/api/v1/query?wait=60",
            Some(project),
            Some(&json!({ "sql": sql })),
        ),
    )
    .await
}

async fn rows(api: &TestApi, project: &str, q: &str) -> Value {
    let (status, body, text) = sql(api, project, q).await;
    assert_eq!(status, StatusCode::OK, "{project}: {q}: {text}");
    body["rows"].clone()
}

async fn create_project(api: &TestApi, id: &str) {
    let (status, _, text) = send(api, req("POST", "/api/v1/projects", None, Some(&json!({ "id": id })))).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
}

fn refused(status: StatusCode, body: &Value, text: &str) {
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::UNPROCESSABLE_ENTITY,
        "expected a refusal, got {status}: {text}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|d| d.contains("rule:")),
        "no rule named: {text}"
    );
}

#[tokio::test]
async fn projects_see_only_their_own_tables() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    for p in ["alpha", "beta"] {
        create_project(&api, p).await;
        let n = if p == "alpha" { 3 } else { 5 };
        rows(
            &api,
            p,
            &format!("CREATE TABLE orders AS SELECT range AS id FROM range({n}); SELECT 1"),
        )
        .await;
    }
    // Unqualified, main-qualified and catalog-qualified names are the project's own.
    assert_eq!(rows(&api, "alpha", "SELECT count(*) FROM orders").await[0][0], 3);
    assert_eq!(rows(&api, "alpha", "SELECT count(*) FROM main.orders").await[0][0], 3);
    assert_eq!(rows(&api, "beta", "SELECT count(*) FROM orders").await[0][0], 5);
    // The other project's tables cannot be named, and errors do not suggest them.
    for q in ["SELECT * FROM beta__main.orders", "SELECT * FROM beta.main.orders"] {
        let (status, _, text) = sql(&api, "alpha", q).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{q}: {text}");
    }
    rows(&api, "beta", "CREATE TABLE only_in_beta AS SELECT 1; SELECT 1").await;
    let (status, body, text) = sql(&api, "alpha", "SELECT * FROM only_in_bet").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(
        !body["detail"].as_str().unwrap_or_default().contains("only_in_beta"),
        "{text}"
    );
    // Catalog views list the project's own objects only.
    let tables = rows(
        &api,
        "alpha",
        "SELECT table_schema || '.' || table_name FROM information_schema.tables",
    )
    .await;
    assert_eq!(tables, json!([["main.orders"]]));
    let dbs = rows(
        &api,
        "alpha",
        "SELECT count(DISTINCT database_name) FROM duckdb_tables()",
    )
    .await;
    assert_eq!(dbs[0][0], 1);
    // A view and an analysis see the same.
    rows(
        &api,
        "alpha",
        "CREATE VIEW v AS SELECT count(*) AS n FROM orders; SELECT 1",
    )
    .await;
    assert_eq!(rows(&api, "alpha", "SELECT n FROM v").await[0][0], 3);
    let (status, _, text) = send(
        &api,
        req(
            "POST",
            "/api/v1/asset/analysis",
            Some("beta"),
            Some(&json!({"id": "a", "sql": "SELECT count(*) AS n FROM orders", "materialization": "table"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let (status, _, text) = send(
        &api,
        req(
            "POST",
            "/api/v1/asset/analysis/a/execute?wait=60",
            Some("beta"),
            Some(&json!({})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(rows(&api, "beta", "SELECT n FROM analysis.a").await[0][0], 5);
    let (status, _, _) = sql(&api, "alpha", "SELECT * FROM analysis.a").await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "beta's analysis is not alpha's"
    );

    // A table alpha made with plain SQL goes with alpha's reset and was never visible elsewhere.
    rows(&api, "alpha", "CREATE TABLE x AS SELECT 1 AS one; SELECT 1").await;
    for p in ["beta", "default"] {
        let (status, _, _) = sql(&api, p, "SELECT * FROM x").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p} sees alpha's table");
    }
    let (status, _, text) = send(
        &api,
        req(
            "POST",
            "/api/v1/projects/alpha/reset",
            None,
            Some(&json!({"confirm": "reset alpha"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (status, _, _) = sql(&api, "alpha", "SELECT * FROM x").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "the reset removed x");
    assert_eq!(
        rows(&api, "beta", "SELECT count(*) FROM orders").await[0][0],
        5,
        "beta untouched"
    );
}

#[tokio::test]
async fn user_sql_cannot_leave_the_sandbox() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let outside = sb.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let key = sb.path().join("config/secret.key");
    // Something in the secret store, so its files exist.
    let (status, _, text) = send(
        &api,
        req("POST", "/api/v1/source", None, Some(&json!({"name": "pgx", "kind": "postgres", "host": "127.0.0.1", "port": 1, "database": "x", "user": "u", "password": "pw"}))),
    )
    .await;
    assert!(status.is_client_error(), "{text}");
    let secrets_file = sb.data_dir().join("configs/secrets.enc");
    for q in [
        "SELECT * FROM read_text('/etc/passwd')".to_owned(),
        "SELECT * FROM read_blob('/etc/hostname')".to_owned(),
        format!("SELECT * FROM read_blob('{}')", key.display()),
        format!("SELECT * FROM read_blob('{}')", secrets_file.display()),
        format!(
            "SELECT * FROM read_csv('{}')",
            sb.data_dir().join("data/metadata.db").display()
        ),
        "SELECT * FROM glob('/etc/*')".to_owned(),
        format!("COPY (SELECT 42) TO '{}'", outside.join("x.csv").display()),
        format!("ATTACH '{}' AS x", outside.join("x.db").display()),
        "INSTALL httpfs".to_owned(),
        "LOAD httpfs".to_owned(),
        "SET threads = 1".to_owned(),
        "SET GLOBAL memory_limit = '1MB'".to_owned(),
        "RESET threads".to_owned(),
        "PRAGMA threads = 1".to_owned(),
        "SELECT * FROM sqlite_scan('/etc/passwd', 't')".to_owned(),
        format!(
            "SELECT * FROM sqlite_scan('{}', 'runs')",
            sb.data_dir().join("data/metadata.db").display()
        ),
        "SELECT * FROM postgres_scan('host=127.0.0.1 port=1', 'public', 't')".to_owned(),
        "CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')".to_owned(),
        "SELECT * FROM query('SELECT 1')".to_owned(),
        "USE memory".to_owned(),
        "DETACH memory".to_owned(),
    ] {
        let (status, body, text) = sql(&api, "default", &q).await;
        refused(status, &body, &format!("{q}: {text}"));
    }
    assert!(
        std::fs::read_dir(&outside).unwrap().next().is_none(),
        "nothing was written outside"
    );
    // The engine still works at its configured settings.
    assert_eq!(
        rows(&api, "default", "SELECT current_setting('memory_limit') != '1.0 MiB'").await[0][0],
        true
    );
    assert_eq!(rows(&api, "default", "SELECT 40 + 2").await[0][0], 42);
}

#[tokio::test]
async fn files_inside_the_roots_still_attach_ingest_and_cache() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let dir = sb.path().join("data_files");
    crate::ingest::write_file(
        &dir.join("sales.csv"),
        "SELECT range AS id, range * 2 AS v FROM range(10)",
        "csv",
    );
    crate::ingest::write_file(&dir.join("more.parquet"), "SELECT range AS id FROM range(4)", "parquet");
    let (status, _, text) = send(
        &api,
        req(
            "POST",
            "/api/v1/source",
            None,
            Some(&json!({"name": "files", "kind": "file", "location": dir})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert_eq!(
        rows(&api, "default", "SELECT count(*) FROM files.main.sales").await[0][0],
        10
    );
    // Its files are readable by the project's SQL, and only its files.
    let direct = format!("SELECT count(*) FROM read_csv('{}')", dir.join("sales.csv").display());
    assert_eq!(rows(&api, "default", &direct).await[0][0], 10);
    let (status, _, text) = send(
        &api,
        req(
            "POST",
            "/api/v1/ingest?wait=60",
            None,
            Some(&json!({"source": "files", "table": "more"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (status, _, text) = send(
        &api,
        req(
            "POST",
            "/api/v1/source/files/cache",
            None,
            Some(&json!({"schema": "main", "table": "sales"})),
        ),
    )
    .await;
    assert_eq!(status.as_u16(), 201, "{text}");
    assert_eq!(
        rows(&api, "default", "SELECT count(*) FROM cache.sales").await[0][0],
        10
    );
    // An inline source is read outside the sandbox: the ingest works, the project's SQL still cannot read it.
    let inline = sb.path().join("elsewhere");
    crate::ingest::write_file(&inline.join("x.csv"), "SELECT 1 AS a", "csv");
    let (status, _, text) = send(
        &api,
        req(
            "POST",
            "/api/v1/ingest?wait=60",
            None,
            Some(&json!({"source": {"kind": "file", "location": inline.join("x.csv")}, "target": "x"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(rows(&api, "default", "SELECT a FROM x").await[0][0], 1);
    let (status, body, text) = sql(
        &api,
        "default",
        &format!("SELECT * FROM read_csv('{}')", inline.join("x.csv").display()),
    )
    .await;
    refused(status, &body, &text);
    // A folder source sees files added after it was attached.
    crate::ingest::write_file(&dir.join("later.csv"), "SELECT 7 AS seven", "csv");
    let (_, tables, _) = send(&api, get("/api/v1/source/files/tables")).await;
    assert!(tables.to_string().contains("later"), "{tables}");
    assert_eq!(
        rows(&api, "default", "SELECT seven FROM files.main.later").await[0][0],
        7
    );
}

fn write(path: &std::path::Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn malformed_csv_fails_strictly_and_leaves_the_target() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let good = sb.path().join("in/good.csv");
    crate::ingest::write_file(
        &good,
        "SELECT range AS id, range % 7 AS qty, 'n' || range AS name FROM range(1000)",
        "csv",
    );
    let extra = sb.path().join("in/extra.csv");
    let mut text: Vec<String> = vec!["id,qty,name".into()];
    text.extend((0..100).map(|i| format!("{i},{},n{i}", i % 7)));
    text.push("100,1,x,extra".into());
    text.extend((101..150).map(|i| format!("{i},{},n{i}", i % 7)));
    write(&extra, &(text.join("\n") + "\n"));
    let quote = sb.path().join("in/quote.csv");
    let mut text: Vec<String> = vec!["id,qty,name".into()];
    text.extend((0..50).map(|i| format!("{i},{},n{i}", i % 7)));
    text.push("51,1,\"unterminated".into());
    text.extend((52..80).map(|i| format!("{i},{},n{i}", i % 7)));
    write(&quote, &(text.join("\n") + "\n"));

    let ingest = |file: &std::path::Path, mode: &str, csv: Option<&str>| {
        let mut body = json!({"source": {"kind": "file", "location": file}, "target": "orders", "mode": mode});
        if mode == "merge" {
            body["keys"] = json!(["id"]);
        }
        if let Some(c) = csv {
            body["csv"] = json!(c);
        }
        req("POST", "/api/v1/ingest?wait=60", None, Some(&body))
    };
    let (status, _, text) = send(&api, ingest(&good, "replace", None)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    for bad in [&extra, &quote] {
        for mode in ["replace", "append", "merge"] {
            let (status, body, text) = send(&api, ingest(bad, mode, None)).await;
            assert!(status.is_client_error(), "{mode} {}: {text}", bad.display());
            let detail = body["detail"].as_str().unwrap_or_default();
            assert!(
                detail.contains(bad.file_name().unwrap().to_str().unwrap()),
                "names the file: {text}"
            );
            assert!(detail.contains("line"), "names the line: {text}");
            let after = rows(&api, "default", "SELECT count(*), count(DISTINCT name) FROM orders").await;
            assert_eq!(after, json!([[1000, 1000]]), "{mode}: the target is untouched");
        }
    }
    // Lenient: the bad row is skipped and reported.
    let (status, body, text) = send(&api, ingest(&extra, "replace", Some("lenient"))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(body["rows"], 149, "{text}");
    assert_eq!(body["rejected_rows"], 1, "{text}");
    assert_eq!(body["rejected_samples"][0]["line"], 102, "{text}");
}

#[tokio::test]
async fn a_file_that_is_not_the_database_it_claims_is_refused_and_breaks_nothing() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    rows(&api, "default", "CREATE TABLE keep AS SELECT 1 AS k; SELECT 1").await;
    let csv = sb.path().join("fake.sqlite");
    write(&csv, "id,name\n1,a\n");
    let (status, body, text) = send(
        &api,
        req(
            "POST",
            "/api/v1/source",
            None,
            Some(&json!({"name": "fake", "kind": "sqlite", "path": csv})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(
        body["detail"].as_str().unwrap().contains("not a SQLite database"),
        "{text}"
    );
    let (_, list, _) = send(&api, get("/api/v1/source")).await;
    assert_eq!(list, json!([]));
    assert_eq!(
        rows(&api, "default", "SELECT count(*) FROM duckdb_tables()").await[0][0],
        1
    );
}

#[tokio::test]
async fn a_source_that_broke_while_down_is_marked_failed_and_the_server_starts() {
    let sb = Sandbox::new();
    let db = sb.path().join("s.sqlite");
    {
        let conn = duckdb::Connection::open_in_memory().unwrap();
        conn.execute_batch(&format!(
            "SET extension_directory = '{}'; ATTACH '{}' AS s (TYPE sqlite); CREATE TABLE s.t AS SELECT 1 AS x;",
            crate::helpers::extension_dir().display(),
            db.display()
        ))
        .unwrap();
    }
    {
        let api = TestApi::new(&sb).await;
        let (status, _, text) = send(
            &api,
            req(
                "POST",
                "/api/v1/source",
                None,
                Some(&json!({"name": "s", "kind": "sqlite", "path": db})),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{text}");
        rows(&api, "default", "CREATE TABLE keep AS SELECT 2 AS k; SELECT 1").await;
    }
    // The file stops being a database while the server is down.
    write(&db, "this is not a database any more\n");
    let api = TestApi::new(&sb).await;
    let (_, source, text) = send(&api, get("/api/v1/source/s")).await;
    assert_eq!(source["state"], "failed", "{text}");
    assert_eq!(rows(&api, "default", "SELECT k FROM keep").await[0][0], 2);
    assert_eq!(
        rows(&api, "default", "SELECT count(*) FROM duckdb_tables()").await[0][0],
        1
    );
}

#[tokio::test]
async fn other_parameter_values_are_not_answered_from_the_old_result() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let (status, _, text) = send(
        &api,
        req(
            "POST",
            "/api/v1/asset/analysis",
            None,
            Some(&json!({
                "id": "p", "sql": "SELECT $who AS who", "materialization": "table",
                "parameters": [{"name": "who", "type": "string", "required": true}]
            })),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let execute = |who: &str, force: bool| {
        req(
            "POST",
            "/api/v1/asset/analysis/p/execute?wait=60",
            None,
            Some(&json!({"params": {"who": who}, "force": force})),
        )
    };
    let (status, run, text) = send(&api, execute("k1", true)).await;
    assert_eq!(
        (status, run["status"].as_str()),
        (StatusCode::OK, Some("succeeded")),
        "{text}"
    );
    let (_, run, text) = send(&api, execute("k2", false)).await;
    assert_eq!(run["steps"][0]["status"], "succeeded", "k2 must rerun: {text}");
    assert!(
        run["steps"][0]["detail"].as_str().unwrap().contains("parameter"),
        "{text}"
    );
    assert_eq!(rows(&api, "default", "SELECT who FROM analysis.p").await[0][0], "k2");
    let (_, run, text) = send(&api, execute("k2", false)).await;
    assert_eq!(run["steps"][0]["status"], "skipped", "same values: fresh: {text}");
}

#[tokio::test]
async fn server_errors_keep_their_detail_unless_internal() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let (status, body, text) = send(
        &api,
        req(
            "POST",
            "/api/v1/query?wait=30",
            None,
            Some(&json!({"sql": "SELECT count(*) FROM range(10000000000) a", "timeout_ms": 300})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{text}");
    assert!(
        body["detail"].as_str().unwrap().contains("timed out after 300 ms"),
        "{text}"
    );
    assert_eq!(body["type"], "urn:pluto-duck:problem:timeout");
    // A missing extension is named, with its fix.
    let bare = Sandbox::new();
    let mut config = bare.config();
    config.duckdb.extension_directory = Some(bare.path().join("no-extensions"));
    let router = pluto_duck_bootstrap::commands::build_router(&config).await.unwrap();
    let db = bare.path().join("x.sqlite");
    write(&db, "");
    let (resp, body) = call(
        &router,
        req(
            "POST",
            "/api/v1/source",
            None,
            Some(&json!({"name": "s", "kind": "sqlite", "path": db})),
        ),
    )
    .await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["type"], "urn:pluto-duck:problem:missing-extension", "{body}");
    assert!(body["detail"].as_str().unwrap().contains("sqlite_scanner"), "{body}");
}

#[tokio::test]
async fn deep_sql_gets_an_answer_everywhere() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let deep = format!("SELECT 1{}", "+1".repeat(40_000));
    let (status, _, text) = sql(&api, "default", &deep).await;
    assert!(
        status.is_success() || status.is_client_error(),
        "{status}: {}",
        &text[..text.len().min(300)]
    );
    let (status, _, _) = send(
        &api,
        req(
            "POST",
            "/api/v1/asset/analysis",
            None,
            Some(&json!({"id": "deep", "sql": deep})),
        ),
    )
    .await;
    assert!(status.is_success() || status.is_client_error(), "{status}");
    let (status, board, _) = send(&api, req("POST", "/api/v1/boards", None, Some(&json!({"name": "b"})))).await;
    assert!(status.is_success());
    let uri = format!("/api/v1/boards/{}/items", board["id"].as_str().unwrap());
    let (status, _, _) = send(
        &api,
        req(
            "POST",
            &uri,
            None,
            Some(&json!({"kind": "table", "query": {"sql": deep}})),
        ),
    )
    .await;
    assert!(status.is_success() || status.is_client_error(), "{status}");
    // The server is alive.
    assert_eq!(rows(&api, "default", "SELECT 1").await[0][0], 1);
}

#[tokio::test]
async fn names_are_canonical_and_never_matched_by_prefix() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    for p in ["shop", "shop__eu"] {
        create_project(&api, p).await;
        let (status, _, text) = send(
            &api,
            req(
                "POST",
                "/api/v1/ingest?wait=60",
                Some(p),
                Some(&json!({"source": {"kind": "file", "location": write_orders(&sb, p)}, "target": "orders"})),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}");
    }
    let (status, _, text) = send(
        &api,
        req(
            "POST",
            "/api/v1/projects/shop/reset",
            None,
            Some(&json!({"confirm": "reset shop"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        rows(&api, "shop__eu", "SELECT count(*) FROM orders").await[0][0],
        3,
        "shop__eu keeps its table"
    );
    // Ids differing by case are one id.
    let (status, p, text) = send(
        &api,
        req("POST", "/api/v1/projects", None, Some(&json!({"id": "Team"}))),
    )
    .await;
    assert_eq!(
        (status, p["id"].as_str()),
        (StatusCode::CREATED, Some("team")),
        "{text}"
    );
    let (status, _, _) = send(
        &api,
        req("POST", "/api/v1/projects", None, Some(&json!({"id": "team"}))),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _, _) = send(
        &api,
        req(
            "POST",
            "/api/v1/asset/analysis",
            None,
            Some(&json!({"id": "Kpi", "sql": "SELECT 1 AS k"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, _) = send(
        &api,
        req(
            "POST",
            "/api/v1/asset/analysis",
            None,
            Some(&json!({"id": "kpi", "sql": "SELECT 2 AS k"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // No request field names a schema outside the project or one Pluto-Duck keeps.
    for schema in ["analysis", "cache", "information_schema"] {
        let (status, _, text) = send(
            &api,
            req("POST", "/api/v1/ingest?wait=60", None, Some(&json!({"source": {"kind": "file", "location": write_orders(&sb, "x")}, "target": "t", "schema": schema}))),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{schema}: {text}");
    }
    let (status, _, text) = send(
        &api,
        req("POST", "/api/v1/ingest?wait=60", None, Some(&json!({"source": {"kind": "file", "location": write_orders(&sb, "y")}, "target": "orders", "schema": "shop__eu__main"}))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        rows(&api, "shop__eu", "SELECT count(*) FROM orders").await[0][0],
        3,
        "another project's table is out of reach"
    );
}

fn write_orders(sb: &Sandbox, tag: &str) -> std::path::PathBuf {
    let path = sb.path().join(format!("orders_{tag}.csv"));
    crate::ingest::write_file(&path, "SELECT range AS id FROM range(3)", "csv");
    path
}

#[tokio::test]
async fn a_loopback_server_is_not_a_web_target() {
    let sb = Sandbox::new();
    let mut server = sb.spawn_server(&[]);
    let client = reqwest::Client::new();
    let port = url::Url::parse(&server.url).unwrap().port().unwrap();
    let ok = client
        .get(format!("{}/api/v1/projects", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // DNS rebinding: the page's own host name arrives as Host.
    let rebound = client
        .get(format!("{}/api/v1/projects", server.url))
        .header("host", format!("evil.example:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403);
    // A cross-site form post.
    let cross = client
        .post(format!("{}/api/v1/query", server.url))
        .header("origin", "http://evil.example")
        .json(&json!({"sql": "CREATE TABLE pwned AS SELECT 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    let own = client
        .post(format!("{}/api/v1/query?wait=10", server.url))
        .header("origin", format!("http://localhost:{port}"))
        .json(&json!({"sql": "SELECT 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    server.terminate();
}

#[tokio::test]
async fn health_answers_from_memory_while_queries_run() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let mut ids = Vec::new();
    for _ in 0..8 {
        let (resp, body) = call(
            &api.router,
            crate::query::post_body(
                &json!({"sql": "SELECT count(*) FROM range(10000000000) a", "timeout_ms": 20000}),
                "",
                None,
            ),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        ids.push(crate::helpers::json(&body)["id"].as_str().unwrap().to_owned());
    }
    for _ in 0..5 {
        let answered = tokio::time::timeout(Duration::from_secs(10), call(&api.router, get("/health"))).await;
        let (resp, _) = answered.expect("/health must answer while queries run");
        assert_eq!(resp.status(), StatusCode::OK);
    }
    for id in ids {
        let _ = call(
            &api.router,
            req("POST", &format!("/api/v1/query/{id}/cancel"), None, None),
        )
        .await;
    }
}

#[tokio::test]
async fn writes_make_readers_stale_and_duckdb_reads_are_analyses() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let src = sb.path().join("o.csv");
    crate::ingest::write_file(
        &src,
        "SELECT range AS id, range % 3 AS region, range AS amount FROM range(9)",
        "csv",
    );
    let (status, _, text) = send(
        &api,
        req(
            "POST",
            "/api/v1/ingest?wait=60",
            None,
            Some(&json!({"source": {"kind": "file", "location": src}, "target": "orders"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    for (id, q) in [
        ("total", "SELECT sum(amount) AS s FROM orders"),
        ("pivoted", "PIVOT orders ON region USING sum(amount)"),
        ("summary", "SUMMARIZE orders"),
    ] {
        let (status, _, text) = send(
            &api,
            req(
                "POST",
                "/api/v1/asset/analysis",
                None,
                Some(&json!({"id": id, "sql": q, "materialization": "table"})),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{id}: {text}");
        let (status, run, text) = send(
            &api,
            req(
                "POST",
                &format!("/api/v1/asset/analysis/{id}/execute?wait=60"),
                None,
                Some(&json!({})),
            ),
        )
        .await;
        assert_eq!(
            (status, run["status"].as_str()),
            (StatusCode::OK, Some("succeeded")),
            "{id}: {text}"
        );
    }
    let (_, fresh, _) = send(&api, get("/api/v1/asset/analysis/total/freshness")).await;
    assert_eq!(fresh["fresh"], true, "{fresh}");
    // A plain SQL write to the table it reads.
    rows(&api, "default", "INSERT INTO orders VALUES (100, 0, 100); SELECT 1").await;
    let (_, fresh, _) = send(&api, get("/api/v1/asset/analysis/total/freshness")).await;
    assert_eq!(fresh["fresh"], false, "{fresh}");
    // read_only refuses side effects; filters are one expression.
    rows(&api, "default", "CREATE SEQUENCE s; SELECT 1").await;
    let (status, _, text) = send(
        &api,
        req(
            "POST",
            "/api/v1/query?wait=10",
            None,
            Some(&json!({"sql": "SELECT nextval('s')", "read_only": true})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    let dir = sb.path().join("srcdir");
    crate::ingest::write_file(&dir.join("t.csv"), "SELECT range AS id FROM range(5)", "csv");
    let (status, _, text) = send(
        &api,
        req(
            "POST",
            "/api/v1/source",
            None,
            Some(&json!({"name": "d", "kind": "file", "location": dir})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let (status, _, text) = send(
        &api,
        req(
            "POST",
            "/api/v1/source/d/cache",
            None,
            Some(&json!({"schema": "main", "table": "t", "filter": "id < 3) OR (1=1"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
}

#[tokio::test]
async fn a_crash_leaves_no_queued_catalog_entry() {
    let sb = Sandbox::new();
    let src = sb.path().join("c.csv");
    crate::ingest::write_file(&src, "SELECT range AS id FROM range(3)", "csv");
    {
        let api = TestApi::new(&sb).await;
        let (status, _, text) = send(
            &api,
            req(
                "POST",
                "/api/v1/ingest?wait=60",
                None,
                Some(&json!({"source": {"kind": "file", "location": src}, "target": "c"})),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}");
    }
    // A process dies with an ingest queued: its run and catalog entry say queued.
    let store = pluto_duck_sqlx_metadata::SqliteMetadataStore::open(&sb.data_dir().join("data/metadata.db"))
        .await
        .unwrap();
    use pluto_duck_application::ports::MetadataStore;
    let project = pluto_duck_domain::ProjectId::default_project();
    let target = pluto_duck_domain::TargetTable::writable(None, "c").unwrap();
    let mut entry = store.get_ingestion(&project, &target).await.unwrap().unwrap();
    let run = pluto_duck_domain::Run::new(
        pluto_duck_domain::RunId::parse("crashed-run").unwrap(),
        project.clone(),
        pluto_duck_domain::RunKind::Ingest,
        "main.c".into(),
        chrono::Utc::now(),
    );
    store.insert_run(&run).await.unwrap();
    entry.last_run = Some(run.id.clone());
    entry.last_status = Some(pluto_duck_domain::RunStatus::Queued);
    store.put_ingestion(&entry).await.unwrap();
    drop(store);
    let api = TestApi::new(&sb).await;
    let (_, list, text) = send(&api, get("/api/v1/ingest")).await;
    assert_eq!(list[0]["last_status"], "failed", "{text}");
    let (_, run, _) = send(&api, get("/api/v1/ingest/runs/crashed-run")).await;
    assert_eq!(run["status"], "failed");
}

#[tokio::test]
async fn a_warehouse_of_the_earlier_layout_is_split_into_projects_on_first_start() {
    let sb = Sandbox::new();
    let legacy = sb.data_dir().join("data/warehouse.duckdb");
    std::fs::create_dir_all(legacy.parent().unwrap()).unwrap();
    {
        let conn = duckdb::Connection::open(&legacy).unwrap();
        conn.execute_batch(
            "CREATE TABLE orders AS SELECT range AS id FROM range(3);
             CREATE SCHEMA analysis; CREATE VIEW analysis.n AS SELECT count(*) AS n FROM orders;
             CREATE SCHEMA team__main; CREATE TABLE team__main.t AS SELECT range AS id FROM range(2);
             CREATE SCHEMA team__analysis; CREATE VIEW team__analysis.v AS SELECT count(*) AS n FROM team__main.t;",
        )
        .unwrap();
    }
    let api = TestApi::new(&sb).await;
    create_project(&api, "team").await;
    assert_eq!(rows(&api, "default", "SELECT count(*) FROM orders").await[0][0], 3);
    assert_eq!(rows(&api, "default", "SELECT n FROM analysis.n").await[0][0], 3);
    assert_eq!(rows(&api, "team", "SELECT count(*) FROM main.t").await[0][0], 2);
    assert_eq!(rows(&api, "team", "SELECT n FROM analysis.v").await[0][0], 2);
    let (status, _, _) = sql(&api, "default", "SELECT * FROM team__main.t").await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the default project no longer holds team's schemas"
    );
    assert!(!legacy.exists(), "the old file became the default project's database");
}
