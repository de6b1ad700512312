//! Boards: items placed on a grid, backed by queries or analyses, snapshots, failures kept on the item, and the
//! refresh scheduler across a restart.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{call, get, req, send, Sandbox};
use crate::query::TestApi;

async fn created(api: &TestApi, uri: &str, project: Option<&str>, body: Value) -> Value {
    let (status, v, text) = send(api, req("POST", uri, project, Some(&body))).await;
    assert_eq!(status, StatusCode::CREATED, "{uri}: {text}");
    v
}

#[tokio::test]
async fn boards_items_snapshots_and_bad_inputs() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let a = created(
        &api,
        "/api/v1/boards",
        None,
        json!({"name": "Sales", "document": {"tabs": [{"title": "Q1"}]}}),
    )
    .await;
    let b = created(&api, "/api/v1/boards", None, json!({"name": "Ops"})).await;
    // The same name in another project is another board.
    send(
        &api,
        req("POST", "/api/v1/projects", None, Some(&json!({"id": "team"}))),
    )
    .await;
    created(&api, "/api/v1/boards", Some("team"), json!({"name": "Sales"})).await;
    let (_, list, _) = send(&api, get("/api/v1/boards")).await;
    let names: Vec<_> = list.as_array().unwrap().iter().map(|b| b["name"].clone()).collect();
    assert_eq!(names, [json!("Sales"), json!("Ops")]);
    assert_eq!(list[0]["document"], json!({"tabs": [{"title": "Q1"}]}));
    let (ia, ib) = (
        a["id"].as_str().unwrap().to_owned(),
        b["id"].as_str().unwrap().to_owned(),
    );
    let (status, list, _) = send(
        &api,
        req("POST", "/api/v1/boards/reorder", None, Some(&json!({"ids": [ib, ia]}))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list[0]["name"], "Ops");
    let (status, _, _) = send(
        &api,
        req("POST", "/api/v1/boards/reorder", None, Some(&json!({"ids": [ib]}))),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Items.
    let items = format!("/api/v1/boards/{ia}/items");
    let md = created(
        &api,
        &items,
        None,
        json!({"kind": "markdown", "config": {"text": "# Revenue"}, "x": 0, "y": 0, "w": 12, "h": 2}),
    )
    .await;
    api.rows("CREATE TABLE t AS SELECT range AS x FROM range(3)").await;
    let table = created(
        &api,
        &items,
        None,
        json!({"kind": "table", "title": "T", "query": {"sql": "SELECT x FROM t ORDER BY x"}, "y": 2}),
    )
    .await;
    let tid = table["id"].as_str().unwrap();
    let (status, item, text) = send(&api, req("POST", &format!("{items}/{tid}/execute"), None, None)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(item["snapshot"]["rows"], json!([{"x": 0}, {"x": 1}, {"x": 2}]));
    assert_eq!(item["snapshot"]["columns"][0], json!({"name": "x", "type": "BIGINT"}));
    // A failing refresh keeps the old snapshot and says why.
    api.rows("DROP TABLE t").await;
    let (_, item, _) = send(&api, req("POST", &format!("{items}/{tid}/execute"), None, None)).await;
    assert!(item["last_error"].as_str().unwrap().contains("t"), "{item}");
    assert_eq!(item["snapshot"]["rows"].as_array().unwrap().len(), 3);
    // Moving and resizing.
    let mid = md["id"].as_str().unwrap();
    let (status, moved, _) = send(
        &api,
        req(
            "PATCH",
            &format!("{items}/{mid}"),
            None,
            Some(&json!({"x": 6, "y": 9, "w": 4})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            moved["x"].as_u64(),
            moved["y"].as_u64(),
            moved["w"].as_u64(),
            moved["h"].as_u64()
        ),
        (Some(6), Some(9), Some(4), Some(2))
    );

    // Bad inputs change nothing.
    let bad = [
        json!({"kind": "metric", "query": {"sql": "DELETE FROM t"}}),
        json!({"kind": "markdown", "query": {"sql": "SELECT 1"}}),
        json!({"kind": "gauge"}),
        json!({"kind": "table", "w": 0}),
        json!({"kind": "table", "query": {"analysis": "nope"}}),
        json!({"kind": "table", "refresh_secs": 60}),
        json!({"kind": "table", "query": {"sql": "SELECT 1"}, "refresh_secs": 1}),
        json!({"kind": "chart", "config": {"type": "donut", "x": "day", "y": "n"}}),
        json!({"kind": "chart", "config": {"type": "bar", "y": "n"}}),
        json!({"kind": "chart", "config": {"type": "line", "x": "day", "y": []}}),
        json!({"kind": "metric", "config": [1, 2]}),
    ];
    for body in bad {
        let (status, _, text) = send(&api, req("POST", &items, None, Some(&body))).await;
        assert!(status.is_client_error(), "{body}: {text}");
    }
    let (status, _, _) = send(
        &api,
        req(
            "PATCH",
            &format!("{items}/{mid}"),
            None,
            Some(&json!({"query": {"sql": "SELECT 1"}})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let chart = created(
        &api,
        &items,
        None,
        json!({"kind": "chart", "config": {"type": "line", "x": "day", "y": ["a", "b"], "series": "region"}}),
    )
    .await;
    assert_eq!(chart["config"]["y"], json!(["a", "b"]));
    let (_, board, _) = send(&api, get(&format!("/api/v1/boards/{ia}"))).await;
    assert_eq!(board["items"].as_array().unwrap().len(), 3);
    let (status, _, _) = send(&api, get("/api/v1/boards/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = send(&api, req("GET", &format!("/api/v1/boards/{ia}"), Some("team"), None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another project's board");

    // Images: told by their bytes, size-limited, only on image items.
    let image = created(&api, &items, None, json!({"kind": "image", "title": "Logo"})).await;
    let img = format!("{items}/{}/image", image["id"].as_str().unwrap());
    let png: Vec<u8> = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    let put = |body: Vec<u8>, ct: &str| {
        Request::put(img.clone())
            .header(header::CONTENT_TYPE, ct)
            .body(Body::from(body))
            .unwrap()
    };
    let (status, item, text) = send(&api, put(png.clone(), "image/png")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(item["config"], json!({"image": "image/png"}));
    let (status, _, text) = send(&api, put(b"<svg onload=alert(1)>".to_vec(), "image/png")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "claimed png, is not: {text}");
    let mut big = png.clone();
    big.resize(6 * 1024 * 1024, 0);
    let (status, _, text) = send(&api, put(big, "image/png")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    let (resp, body) = call(&api.router, get(&img)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "image/png");
    assert_eq!(body, png, "the refused uploads left the image as it was");
    let (status, _, _) = send(
        &api,
        Request::put(format!("{items}/{tid}/image"))
            .body(Body::from(png.clone()))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "not an image item");
    let files = sb.data_dir().join("artifacts/files/default/boards");
    assert!(files.join(&ia).is_dir());

    // Deleting a board deletes its items.
    let (status, _, _) = send(&api, req("DELETE", &format!("/api/v1/boards/{ia}"), None, None)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = send(
        &api,
        req("PATCH", &format!("{items}/{mid}"), None, Some(&json!({"x": 1}))),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn snapshot_n(api: &TestApi, board: &str) -> (Option<i64>, String) {
    let (_, b, _) = send(api, get(&format!("/api/v1/boards/{board}"))).await;
    let item = &b["items"][0];
    (
        item["snapshot"]["rows"][0]["n"].as_i64(),
        item["snapshot"]["ran_at"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analysis_item_refreshes_on_its_interval_across_a_restart() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    api.rows("CREATE TABLE src AS SELECT range AS id FROM range(3)").await;
    created(
        &api,
        "/api/v1/asset/analysis",
        None,
        json!({"id": "a", "sql": "SELECT count(*) AS n FROM main.src", "materialization": "table"}),
    )
    .await;
    let board = created(&api, "/api/v1/boards", None, json!({"name": "KPIs"})).await;
    let bid = board["id"].as_str().unwrap().to_owned();
    let item = created(
        &api,
        &format!("/api/v1/boards/{bid}/items"),
        None,
        json!({"kind": "metric", "query": {"analysis": "a"}, "refresh_secs": 5}),
    )
    .await;
    let iid = item["id"].as_str().unwrap();
    // Executing it runs the (never run) analysis first.
    let (_, item, text) = send(
        &api,
        req("POST", &format!("/api/v1/boards/{bid}/items/{iid}/execute"), None, None),
    )
    .await;
    assert_eq!(item["snapshot"]["rows"], json!([{"n": 3}]), "{text}");

    // The analysis reruns on new data; once the interval passes the item shows it, without anyone asking.
    api.rows("INSERT INTO src SELECT range FROM range(3, 5)").await;
    let (_, run, text) = send(
        &api,
        req(
            "POST",
            "/api/v1/asset/analysis/a/execute?wait=60",
            None,
            Some(&json!({"force": true})),
        ),
    )
    .await;
    assert_eq!(run["status"], "succeeded", "{text}");
    assert_eq!(snapshot_n(&api, &bid).await.0, Some(3), "not before the interval");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while snapshot_n(&api, &bid).await.0 != Some(5) {
        assert!(std::time::Instant::now() < deadline, "no scheduled refresh");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // After a restart the schedule goes on.
    let (_, before) = snapshot_n(&api, &bid).await;
    drop(api);
    // The old instance's scheduler stops with it (it holds the service weakly): give it a tick to notice.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let api = TestApi::new(&sb).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while snapshot_n(&api, &bid).await.1 == before {
        assert!(std::time::Instant::now() < deadline, "no refresh after the restart");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[test]
fn board_cli_lists_and_shows() {
    use crate::helpers::{stderr, stdout};
    let sb = Sandbox::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let api = TestApi::new(&sb).await;
        let b = created(&api, "/api/v1/boards", None, json!({"name": "Weekly"})).await;
        let items = format!("/api/v1/boards/{}/items", b["id"].as_str().unwrap());
        let item = created(
            &api,
            &items,
            None,
            json!({"kind": "table", "title": "Numbers", "query": {"sql": "SELECT 1 AS n"}}),
        )
        .await;
        send(
            &api,
            req(
                "POST",
                &format!("{items}/{}/execute", item["id"].as_str().unwrap()),
                None,
                None,
            ),
        )
        .await;
    });
    let o = sb.run(&["board", "list"]);
    assert!(
        o.status.success() && stdout(&o).contains("Weekly"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    let o = sb.run(&["board", "show", "Weekly"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Numbers") && stdout(&o).contains("1 rows at"),
        "{}",
        stdout(&o)
    );
    let o = sb.run(&["board", "show", "Nope"]);
    assert_eq!(o.status.code(), Some(3));
}
