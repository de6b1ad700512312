//! Projects: rename, settings, and reset / delete guarded by a typed phrase, removing the data of one project only.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{get, req, send, Sandbox};
use crate::query::TestApi;

/// A source, an ingested table, a cached copy, an analysis run and a query in `project`.
async fn fill(api: &TestApi, sb: &Sandbox, project: &str) {
    let dir = sb.path().join(format!("files_{project}"));
    crate::ingest::write_file(&dir.join("orders.csv"), "SELECT range AS id FROM range(5)", "csv");
    let p = Some(project);
    let calls = [
        (
            "POST",
            "/api/v1/source",
            json!({"name": "files", "kind": "file", "location": dir}),
        ),
        (
            "POST",
            "/api/v1/ingest?wait=60",
            json!({"source": "files", "table": "orders"}),
        ),
        (
            "POST",
            "/api/v1/source/files/cache",
            json!({"schema": "main", "table": "orders"}),
        ),
        (
            "POST",
            "/api/v1/asset/analysis",
            json!({"id": "a", "sql": "SELECT * FROM cache.orders", "materialization": "table"}),
        ),
        ("POST", "/api/v1/asset/analysis/a/execute?wait=60", json!({})),
        ("POST", "/api/v1/query?wait=60", json!({"sql": "SELECT 42"})),
    ];
    for (method, uri, body) in calls {
        let (status, _, text) = send(api, req(method, uri, p, Some(&body))).await;
        assert!(status.is_success(), "{project} {uri}: {text}");
    }
}

async fn count(api: &TestApi, sql: &str) -> Value {
    api.rows(sql).await["rows"][0][0].clone()
}

/// Tables and views in the team project's own database.
async fn team_objects(api: &TestApi) -> Value {
    let (status, doc, text) = send(
        api,
        req(
            "POST",
            "/api/v1/query?wait=60",
            Some("team"),
            Some(&json!({"sql": "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database()"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    doc["rows"][0][0].clone()
}

#[tokio::test]
async fn rename_settings_reset_and_delete_touch_one_project_only() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let (status, _, text) = send(
        &api,
        req("POST", "/api/v1/projects", None, Some(&json!({"id": "team"}))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let (status, p, _) = send(
        &api,
        req(
            "PATCH",
            "/api/v1/projects/team",
            None,
            Some(&json!({"name": "The team"})),
        ),
    )
    .await;
    assert_eq!((status, p["name"].as_str()), (StatusCode::OK, Some("The team")));
    let (_, s, _) = send(&api, get("/api/v1/projects/team/settings")).await;
    assert_eq!(s, json!({}));
    let (status, _, _) = send(
        &api,
        req(
            "PUT",
            "/api/v1/projects/team/settings",
            None,
            Some(&json!({"theme": "dark"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(
        &api,
        req("PUT", "/api/v1/projects/team/settings", None, Some(&json!([1, 2]))),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    fill(&api, &sb, "default").await;
    fill(&api, &sb, "team").await;
    assert_eq!(team_objects(&api).await, 3, "ingested, cached, analysis");

    // A wrong phrase changes nothing.
    let (status, problem, _) = send(
        &api,
        req(
            "POST",
            "/api/v1/projects/team/reset",
            None,
            Some(&json!({"confirm": "reset"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        problem["detail"].as_str().unwrap().contains("\"reset team\""),
        "{problem}"
    );
    assert_eq!(team_objects(&api).await, 3);

    // Reset: the team's data goes, the project, its name and settings stay; the default project is untouched.
    let (status, removed, text) = send(
        &api,
        req(
            "POST",
            "/api/v1/projects/team/reset",
            None,
            Some(&json!({"confirm": "reset team"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        (removed["sources"].as_u64(), removed["analyses"].as_u64()),
        (Some(1), Some(1)),
        "{removed}"
    );
    for uri in [
        "/api/v1/source",
        "/api/v1/asset/analyses",
        "/api/v1/ingest",
        "/api/v1/cache",
    ] {
        let (_, list, _) = send(&api, req("GET", uri, Some("team"), None)).await;
        assert_eq!(list, json!([]), "{uri}");
    }
    let (_, history, _) = send(&api, req("GET", "/api/v1/query", Some("team"), None)).await;
    assert_eq!(history["items"], json!([]));
    assert_eq!(team_objects(&api).await, 0);
    let (_, s, _) = send(&api, get("/api/v1/projects/team/settings")).await;
    assert_eq!(s, json!({"theme": "dark"}));
    assert!(!sb.data_dir().join("projects/team/analyses/a.yaml").exists());
    assert_eq!(count(&api, "SELECT count(*) FROM analysis.a").await, 5);
    assert_eq!(count(&api, "SELECT count(*) FROM main.orders").await, 5);
    assert!(sb.data_dir().join("projects/default/analyses/a.yaml").exists());

    // Delete: the default project cannot go; the team can, with its phrase.
    let (status, _, _) = send(
        &api,
        req(
            "DELETE",
            "/api/v1/projects/default",
            None,
            Some(&json!({"confirm": "delete default"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    fill(&api, &sb, "team").await;
    let (status, _, _) = send(
        &api,
        req(
            "DELETE",
            "/api/v1/projects/team",
            None,
            Some(&json!({"confirm": "delete teams"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // A board with an uploaded image in the team's project: its file goes with the project.
    let (_, board, _) = send(
        &api,
        req("POST", "/api/v1/boards", Some("team"), Some(&json!({"name": "B"}))),
    )
    .await;
    let items = format!("/api/v1/boards/{}/items", board["id"].as_str().unwrap());
    let (_, image, _) = send(&api, req("POST", &items, Some("team"), Some(&json!({"kind": "image"})))).await;
    let upload = Request::put(format!("{items}/{}/image", image["id"].as_str().unwrap()))
        .header("x-pluto-project", "team")
        .body(Body::from(b"GIF89a....".to_vec()))
        .unwrap();
    let (status, _, text) = send(&api, upload).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(sb.data_dir().join("artifacts/files/team").is_dir());
    let (status, _, text) = send(
        &api,
        req(
            "DELETE",
            "/api/v1/projects/team",
            None,
            Some(&json!({"confirm": "delete team"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (status, _, _) = send(&api, get("/api/v1/projects/team")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!sb.data_dir().join("artifacts/files/team").exists());
    assert!(
        !sb.data_dir().join("projects/team/warehouse.duckdb").exists(),
        "its database went"
    );
    let (status, _, _) = send(&api, req("GET", "/api/v1/source", Some("team"), None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an unknown project is 404 everywhere");
    let (status, _, _) = send(
        &api,
        req(
            "POST",
            "/api/v1/projects/nope/reset",
            None,
            Some(&json!({"confirm": "reset nope"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The default project's data is still all there.
    assert_eq!(count(&api, "SELECT count(*) FROM cache.orders").await, 5);
    let (_, sources, _) = send(&api, get("/api/v1/source")).await;
    assert_eq!(sources.as_array().unwrap().len(), 1);
}

#[test]
fn project_cli_create_use_and_list() {
    use crate::helpers::{stderr, stdout};
    let sb = Sandbox::new();
    let o = sb.run(&["project", "create", "team", "--name", "The team"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = sb.run(&["project", "use", "nope"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let o = sb.run(&["project", "use", "team"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = sb.run(&["project", "list"]);
    let out = stdout(&o);
    assert!(
        out.lines().any(|l| l.starts_with("* team") && l.contains("The team")),
        "{out}"
    );
    assert!(out.lines().any(|l| l.starts_with("  default")), "{out}");
    // Commands without --project now work in the team's project.
    let o = sb.run(&["ingest", "--url", "https://127.0.0.1:9/none.csv"]);
    assert!(!o.status.success());
    let o = sb.run(&["sql", "SELECT 7 AS x", "--format", "csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = sb.run(&["project", "use", "default"]);
    assert!(o.status.success());
    let api = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let api = TestApi::new(&sb).await;
        let (_, team, _) = send(&api, req("GET", "/api/v1/query", Some("team"), None)).await;
        let (_, default, _) = send(&api, req("GET", "/api/v1/query", None, None)).await;
        (
            team["items"].as_array().unwrap().len(),
            default["items"].as_array().unwrap().len(),
        )
    });
    assert_eq!(api, (1, 0), "the query ran in the team's project");
}
