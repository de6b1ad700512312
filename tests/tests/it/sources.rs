//! Live federation against real PostgreSQL, MariaDB and SQLite files.

use std::process::Command;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{call, get, post, required_env, send, Sandbox};
use crate::query::TestApi;

fn run_ok(cmd: &mut Command) {
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&o.stderr));
}

pub fn psql_exec(url: &str, sql: &str) {
    psql(url, sql)
}

fn psql(url: &str, sql: &str) {
    run_ok(Command::new("psql").args([url, "-v", "ON_ERROR_STOP=1", "-qc", sql]));
}

/// (host, port, user, password, database) of a mysql:// URL.
fn mysql_parts(url: &str) -> (String, String, String, String, String) {
    let rest = url.strip_prefix("mysql://").unwrap();
    let (creds, hostpart) = rest.split_once('@').unwrap();
    let (user, pass) = creds.split_once(':').unwrap();
    let (hostport, db) = hostpart.split_once('/').unwrap();
    let (host, port) = hostport.split_once(':').unwrap();
    (host.into(), port.into(), user.into(), pass.into(), db.into())
}

pub fn mariadb_exec(url: &str, sql: &str) {
    mariadb(url, sql)
}

fn mariadb(url: &str, sql: &str) {
    let (host, port, user, pass, db) = mysql_parts(url);
    run_ok(Command::new("mariadb").args([
        "-h",
        &host,
        "-P",
        &port,
        "-u",
        &user,
        &format!("-p{pass}"),
        &db,
        "-e",
        sql,
    ]));
}

pub fn sqlite_orders(path: &std::path::Path) {
    sqlite_file(path)
}

fn sqlite_file(path: &std::path::Path) {
    let script = format!(
        "import sqlite3; c = sqlite3.connect({:?}); c.execute('create table orders (id integer, amount real, note text)'); \
         c.executemany('insert into orders values (?, ?, ?)', [(i, i * 1.5, 'n%d' % i) for i in range(10)]); c.commit()",
        path.display().to_string()
    );
    run_ok(Command::new("python3").args(["-c", &script]));
}

#[tokio::test]
async fn sqlite_file_attach_browse_preview_detach() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let file = sb.path().join("shop.sqlite");
    sqlite_file(&file);
    let (status, src, text) = send(
        &api,
        post(
            "/api/v1/source",
            &json!({"name": "shop", "kind": "sqlite", "path": file, "description": "orders"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert_eq!(
        (src["state"].as_str(), src["alias"].as_str(), src["read_only"].as_bool()),
        (Some("attached"), Some("shop"), Some(true))
    );

    let (status, detail, _) = send(&api, get("/api/v1/source/shop")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["tables"][0]["name"], "orders");
    let (_, cols, _) = send(&api, get("/api/v1/source/shop/tables/main/orders")).await;
    assert_eq!(cols[0], json!({"name": "id", "type": "BIGINT"}));
    let (status, preview, text) = send(&api, get("/api/v1/source/shop/tables/main/orders/preview?limit=3")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(preview["rows"].as_array().unwrap().len(), 3);
    // The warehouse's SQL sees it under its alias.
    let doc = api.rows("SELECT sum(amount) AS s FROM shop.main.orders").await;
    assert_eq!(doc["rows"][0][0], 67.5);
    // Read-only by default: writes through the attachment fail.
    let (resp, _) = call(
        &api.router,
        crate::query::post_query("INSERT INTO shop.main.orders VALUES (99, 1, 'x')", "?wait=10", None),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Cached, then refreshed incrementally after rows were added to the file.
    let (status, cached, text) = send(
        &api,
        post(
            "/api/v1/source/shop/cache",
            &json!({"schema": "main", "table": "orders", "cursor_column": "id"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert_eq!(cached["rows"], 10);
    let script = format!(
        "import sqlite3; c = sqlite3.connect({:?}); c.executemany('insert into orders values (?, ?, ?)', [(i, 1.0, 'x') for i in range(10, 13)]); c.commit()",
        file.display().to_string()
    );
    run_ok(Command::new("python3").args(["-c", &script]));
    let (status, refreshed, text) = send(&api, post("/api/v1/cache/orders/refresh", &json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(refreshed["rows"], 13);
    // Each build and refresh is a run with its own history, newest first.
    let (status, runs, text) = send(&api, get("/api/v1/cache/orders/runs")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(
        (runs[0]["status"].as_str(), runs[0]["rows"].as_u64()),
        (Some("succeeded"), Some(13))
    );
    assert_eq!(
        (runs[1]["status"].as_str(), runs[1]["rows"].as_u64()),
        (Some("succeeded"), Some(10))
    );
    assert!(runs[0]["elapsed_ms"].is_u64());

    let (status, _, _) = send(
        &api,
        Request::patch("/api/v1/source/shop")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"description":"the shop"}"#))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(
        &api,
        Request::delete("/api/v1/source/shop").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = send(&api, get("/api/v1/source/shop")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (resp, _) = call(
        &api.router,
        crate::query::post_query("SELECT * FROM shop.main.orders", "?wait=10", None),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "detached");
}

#[tokio::test]
async fn bad_inputs_are_4xx_and_store_nothing() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let pg = required_env("TEST_PG_URL");
    let wrong = pg.replacen("pd_secret_pw", "Wr0ng-Pa55word", 1);
    let cases = [
        (json!({"name": "pg", "dsn": wrong}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"name": "pg", "kind": "postgres", "host": "127.0.0.1", "port": 1, "database": "x", "user": "u", "password": "Wr0ng-Pa55word"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"name": "f", "kind": "sqlite", "path": "/nonexistent/x.db"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"name": "not-an-identifier", "kind": "sqlite", "path": "/tmp/x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"name": "k", "kind": "oracle"}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"name": "d", "dsn": "ftp://Wr0ng-Pa55word@x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"name": "u", "kind": "sqlite", "path": "/tmp/x", "colour": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (body, want) in cases {
        let (status, p, text) = send(&api, post("/api/v1/source", &body)).await;
        assert_eq!(status, want, "{body}: {text}");
        if body["name"] == "outside" || body["name"] == "dotdot" {
            assert!(text.contains("outside the allowed roots"), "{text}");
        }
        assert!(p["detail"].is_string(), "{text}");
        assert!(!text.contains("Wr0ng-Pa55word"), "password leaked: {text}");
    }
    let (_, list, _) = send(&api, get("/api/v1/source")).await;
    assert_eq!(list, json!([]), "nothing stored");
    let log = std::fs::read_to_string(sb.data_dir().join("logs/pluto-duck.log")).unwrap_or_default();
    assert!(!log.contains("Wr0ng-Pa55word"));
    let (status, _, text) = send(&api, post("/api/v1/source/test", &json!({"name": "pg", "dsn": wrong}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!text.contains("Wr0ng-Pa55word"));
    let (status, _, _) = send(&api, post("/api/v1/source/test", &json!({"name": "pg", "dsn": pg}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn mariadb_source_through_the_typed_form() {
    let url = required_env("TEST_MYSQL_URL");
    let table = format!("t{}", std::process::id());
    mariadb(&url, &format!("CREATE TABLE {table} (id INT PRIMARY KEY, name VARCHAR(20)); INSERT INTO {table} VALUES (1, 'a'), (2, 'b')"));
    let (host, port, user, pass, db) = mysql_parts(&url);
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let body = json!({"name": "maria", "kind": "mysql", "host": host, "port": port.parse::<u16>().unwrap(), "database": db, "user": user, "password": pass});
    let (status, src, text) = send(&api, post("/api/v1/source", &body)).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert_eq!(src["connection"]["password"], "***");
    assert!(!text.contains(&pass));
    let (_, tables, _) = send(&api, get(&format!("/api/v1/source/maria/tables?schema={db}"))).await;
    assert!(
        tables.as_array().unwrap().iter().any(|t| t["name"] == table.as_str()),
        "{tables}"
    );
    let doc = api
        .rows(&format!("SELECT name FROM maria.{db}.{table} ORDER BY id"))
        .await;
    assert_eq!(doc["rows"], json!([["a"], ["b"]]));
    let (status, _, text) = send(
        &api,
        Request::post("/api/v1/source/maria/test").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    let (status, preview, text) = send(
        &api,
        get(&format!("/api/v1/source/maria/tables/{db}/{table}/preview?limit=1")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(preview["rows"].as_array().unwrap().len(), 1);

    // Cached, then refreshed incrementally past the cursor and in full.
    let body = json!({"schema": db, "table": table, "name": "maria_copy", "cursor_column": "id"});
    let (status, cached, text) = send(&api, post("/api/v1/source/maria/cache", &body)).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert_eq!(cached["rows"], 2);
    mariadb(
        &url,
        &format!("INSERT INTO {table} VALUES (3, 'c'), (4, 'd'); UPDATE {table} SET name = 'z' WHERE id = 1"),
    );
    let (_, refreshed, _) = send(&api, post("/api/v1/cache/maria_copy/refresh", &json!({}))).await;
    assert_eq!(refreshed["rows"], 4);
    let doc = api.rows("SELECT name FROM cache.maria_copy WHERE id = 1").await;
    assert_eq!(
        doc["rows"][0][0], "a",
        "incremental: only rows past the cursor were copied"
    );
    let (_, refreshed, _) = send(&api, post("/api/v1/cache/maria_copy/refresh?full=true", &json!({}))).await;
    assert_eq!(refreshed["rows"], 4);
    let doc = api.rows("SELECT name FROM cache.maria_copy WHERE id = 1").await;
    assert_eq!(doc["rows"][0][0], "z");
    mariadb(&url, &format!("DROP TABLE {table}"));
}

#[test]
fn postgres_source_survives_a_restart_and_never_leaks_its_password() {
    let url = required_env("TEST_PG_URL");
    let table = format!("orders_{}", std::process::id());
    psql(
        &url,
        &format!("CREATE TABLE {table} AS SELECT g AS id, g * 10 AS amount FROM generate_series(1, 5) g"),
    );
    let sb = Sandbox::new();
    let mut server = sb.spawn_server(&[]);
    let client = reqwest::blocking::Client::new();
    let resp = client
        .post(format!("{}/api/v1/source", server.url))
        .json(&json!({"name": "warehouse_pg", "dsn": url, "description": "control plane"}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().unwrap());
    let query = |server_url: &str| -> Value {
        client
            .post(format!("{server_url}/api/v1/query?wait=30"))
            .json(&json!({"sql": format!("SELECT sum(amount) AS s FROM warehouse_pg.public.{table}")}))
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    assert_eq!(query(&server.url)["rows"][0][0], json!("150"));
    assert!(server.terminate().success());

    // A new process: the source is attached again with the stored password, nothing re-entered.
    let mut server = sb.spawn_server(&[]);
    let list: Value = client
        .get(format!("{}/api/v1/source", server.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(list[0]["state"], "attached", "{list}");
    assert_eq!(query(&server.url)["rows"][0][0], json!("150"));
    let detail = client
        .get(format!("{}/api/v1/source/warehouse_pg", server.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(detail.contains(&table), "{detail}");
    assert!(server.terminate().success());

    // The password appears nowhere: responses above, the log, the config dump, the metadata and warehouse files.
    assert!(!detail.contains("pd_secret_pw") && !list.to_string().contains("pd_secret_pw"));
    let log = std::fs::read_to_string(sb.data_dir().join("logs/pluto-duck.log")).unwrap();
    assert!(!log.contains("pd_secret_pw"), "password in the log");
    let config = sb.run(&["config"]);
    assert!(!String::from_utf8_lossy(&config.stdout).contains("pd_secret_pw"));
    for f in ["data/metadata.db", "data/warehouse.duckdb", "configs/secrets.enc"] {
        let bytes = std::fs::read(sb.data_dir().join(f)).unwrap_or_default();
        assert!(!bytes.windows(12).any(|w| w == b"pd_secret_pw"), "password in {f}");
    }

    // A source that cannot attach at start-up is marked with its error and the server still starts.
    psql(&url, &format!("DROP TABLE {table}"));
    let bad_dir = sb.path().join("gone.sqlite");
    sqlite_file(&bad_dir);
    let mut server = sb.spawn_server(&[]);
    let resp = client
        .post(format!("{}/api/v1/source", server.url))
        .json(&json!({"name": "local_file", "kind": "sqlite", "path": bad_dir}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert!(server.terminate().success());
    std::fs::remove_file(&bad_dir).unwrap();
    let mut server = sb.spawn_server(&[]);
    let list: Value = client
        .get(format!("{}/api/v1/source", server.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let local = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "local_file")
        .unwrap()
        .clone();
    assert_eq!(local["state"], "failed", "{local}");
    assert!(local["error"].as_str().unwrap().contains("does not exist"), "{local}");
    let health = client.get(format!("{}/health", server.url)).send().unwrap();
    assert_eq!(health.status(), 200);
    let tables = client
        .get(format!("{}/api/v1/source/local_file/tables", server.url))
        .send()
        .unwrap();
    assert_eq!(tables.status(), 503);
    assert!(server.terminate().success());
}

#[tokio::test]
async fn duckdb_file_source() {
    let sb = Sandbox::new();
    let file = sb.path().join("other.duckdb");
    {
        let conn = duckdb::Connection::open(&file).unwrap();
        conn.execute_batch("CREATE TABLE kv AS SELECT range AS k, range * range AS v FROM range(4)")
            .unwrap();
    }
    let api = TestApi::new(&sb).await;
    let (status, _, text) = send(
        &api,
        post(
            "/api/v1/source",
            &json!({"name": "other", "dsn": format!("duckdb://{}", file.display())}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let (_, schemas, _) = send(&api, get("/api/v1/source/other/schemas")).await;
    assert_eq!(schemas, json!(["main"]));
    let doc = api.rows("SELECT sum(v) AS s FROM other.main.kv").await;
    assert_eq!(doc["rows"][0][0], json!("14"));
    let (status, _, _) = send(&api, get("/api/v1/source/other/tables/main/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn caching_refresh_incremental_failure_keeps_the_copy_and_ttl_cleanup() {
    let url = required_env("TEST_PG_URL");
    let t = format!("events_{}", std::process::id());
    psql(&url, &format!("DROP TABLE IF EXISTS {t}; CREATE TABLE {t} AS SELECT g AS id, 'e' || g AS name FROM generate_series(1, 100) g"));
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let (status, _, text) = send(&api, post("/api/v1/source", &json!({"name": "pgc", "dsn": url}))).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let body = json!({"schema": "public", "table": t, "name": "events", "cursor_column": "id", "filter": "id <= 1000"});
    let (status, cache, text) = send(&api, post("/api/v1/source/pgc/cache", &body)).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert_eq!(
        (cache["rows"].as_u64(), cache["local_table"].as_str()),
        (Some(100), Some("cache.events"))
    );
    let count = |sql: &'static str| {
        let api = &api;
        async move { api.rows(sql).await["rows"][0][0].clone() }
    };
    assert_eq!(count("SELECT count(*) FROM cache.events").await, 100);
    let (_, detail, _) = send(&api, get("/api/v1/source/pgc")).await;
    assert_eq!(detail["cached"][0]["name"], "events");

    // Incremental: only the new rows come over; the filter still applies.
    psql(&url, &format!("INSERT INTO {t} SELECT g, 'e' || g FROM generate_series(101, 150) g; INSERT INTO {t} VALUES (5000, 'filtered out')"));
    let (status, cache, text) = send(&api, post("/api/v1/cache/events/refresh", &json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(cache["rows"], 150);
    assert_eq!(count("SELECT count(DISTINCT id) FROM cache.events").await, 150);
    let (_, cache, _) = send(&api, post("/api/v1/cache/events/refresh?full=true", &json!({}))).await;
    assert_eq!(cache["rows"], 150);

    // A refresh that fails on the remote side leaves the previous copy readable and its record unchanged.
    psql(&url, &format!("DROP TABLE {t}"));
    let (status, p, _) = send(&api, post("/api/v1/cache/events/refresh?full=true", &json!({}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(count("SELECT count(*) FROM cache.events").await, 150);
    let (_, cache, _) = send(&api, get("/api/v1/cache/events")).await;
    assert_eq!(cache["rows"], 150);
    // The failed refresh is in the copy's run history with its error.
    let (_, runs, _) = send(&api, get("/api/v1/cache/events/runs?limit=1")).await;
    assert_eq!(runs[0]["status"], "failed", "{runs}");
    assert!(
        runs[0]["error"].as_str().unwrap_or_default().contains("events"),
        "{runs}"
    );

    // Bad inputs change nothing.
    for (body, want) in [
        (
            json!({"schema": "public", "table": t}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"schema": "public", "table": "x", "name": "events"}),
            StatusCode::CONFLICT,
        ),
        (
            json!({"schema": "public", "table": "x", "name": "bad name"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"schema": "public", "table": "x", "filter": "1=1; DROP TABLE cache.events"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, _, text) = send(&api, post("/api/v1/source/pgc/cache", &body)).await;
        assert_eq!(status, want, "{body}: {text}");
    }
    let (_, list, _) = send(&api, get("/api/v1/cache")).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");

    // TTL: an expired copy is dropped by cleanup.
    let t2 = format!("{t}_b");
    psql(&url, &format!("CREATE TABLE {t2} AS SELECT 1 AS id"));
    let (status, _, text) = send(
        &api,
        post(
            "/api/v1/source/pgc/cache",
            &json!({"schema": "public", "table": t2, "name": "short", "ttl_secs": 1}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let removed = crate::helpers::poll_async(std::time::Duration::from_secs(15), || async {
        let (_, r, _) = send(&api, post("/api/v1/cache/cleanup", &json!({}))).await;
        (!r["removed"].as_array().unwrap().is_empty()).then_some(r)
    })
    .await;
    assert_eq!(removed["removed"], json!(["short"]));
    let (resp, _) = call(
        &api.router,
        crate::query::post_query("SELECT * FROM cache.short", "?wait=10", None),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        count("SELECT count(*) FROM cache.events").await,
        150,
        "unexpired copies stay"
    );
    let (status, _, _) = send(
        &api,
        Request::delete("/api/v1/cache/events").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    psql(&url, &format!("DROP TABLE {t2}"));
}

#[test]
fn source_cli_with_and_without_a_server() {
    let sb = Sandbox::new();
    let file = sb.path().join("shop.sqlite");
    sqlite_file(&file);
    let o = sb.run(&[
        "source",
        "add",
        "shop",
        "--kind",
        "sqlite",
        "--path",
        file.to_str().unwrap(),
        "--description",
        "the shop",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("attached shop (sqlite) as shop"));
    let o = sb.run(&["source", "tables", "shop"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("main.orders\ttable"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // With a server holding the warehouse, the same commands go through its API.
    let mut server = sb.spawn_server(&[]);
    let url = required_env("TEST_PG_URL");
    let no_password = url.replacen(":pd_secret_pw@", "@", 1);
    let mut add = sb
        .cmd()
        .args(["source", "add", "pg", "--dsn", &no_password, "--password-stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        add.stdin.take().unwrap().write_all(b"pd_secret_pw\n").unwrap();
    }
    let o = add.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = sb.run(&["source", "list"]);
    let list = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        list.contains("shop") && list.contains("pg") && list.contains("attached"),
        "{list}"
    );
    let o = sb.run(&["source", "show", "pg"]);
    let shown = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        shown.contains("\"password\": \"***\"") && !shown.contains("pd_secret_pw"),
        "{shown}"
    );
    let o = sb.run(&["source", "remove", "shop"]);
    assert!(o.status.success());
    let o = sb.run(&["source", "show", "shop"]);
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(err.trim(), "error: source \"shop\" not found");
    let o = sb.run(&["source", "add", "bad", "--kind", "sqlite", "--path", "/etc/hostname"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("outside the allowed roots"));
    assert!(server.terminate().success());
}
