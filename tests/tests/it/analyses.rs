//! Saved analyses through the API: files in the project folder, refs, cycles, compile plans and lineage.

use axum::http::{header, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{call, get, req, send, Sandbox};
use crate::query::TestApi;

#[tokio::test]
async fn analyses_are_files_with_refs_cycles_plans_and_lineage() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let create = |body: Value| req("POST", "/api/v1/asset/analysis", None, Some(&body));
    for body in [
        json!({"id": "a", "sql": "SELECT * FROM cache.orders", "materialization": "table", "tags": ["core"]}),
        json!({"id": "b", "sql": "SELECT * FROM {{ ref('a') }} JOIN read_parquet('data/fx.parquet') USING (ccy)", "tags": ["core"]}),
        json!({"id": "c", "name": "Revenue", "sql": "SELECT sum(x) FROM analysis.b WHERE d >= $since",
               "materialization": "incremental", "unique_key": ["d"], "cursor": "d",
               "parameters": [{"name": "since", "type": "date", "default": "2024-01-01"}]}),
    ] {
        let (status, _, text) = send(&api, create(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{text}");
    }
    // One readable file per analysis, under the project folder.
    let file = sb.data_dir().join("projects/default/analyses/c.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("materialization: incremental") && text.contains("sql: |"),
        "{text}"
    );

    let (_, list, _) = send(&api, get("/api/v1/asset/analyses?tag=core")).await;
    let ids: Vec<_> = list.as_array().unwrap().iter().map(|a| a["id"].clone()).collect();
    assert_eq!(ids, [json!("a"), json!("b")]);

    // The plan for c: a, b, c, all to run because they never ran, with the SQL the warehouse runs.
    let (status, plan, text) = send(&api, req("POST", "/api/v1/asset/analysis/c/compile", None, None)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let steps: Vec<_> = plan
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].clone(), s["action"].clone()))
        .collect();
    assert_eq!(
        steps,
        [
            (json!("a"), json!("run")),
            (json!("b"), json!("run")),
            (json!("c"), json!("run"))
        ]
    );
    assert_eq!(plan[0]["reasons"], json!(["never ran"]));
    assert!(plan[1]["sql"].as_str().unwrap().contains("FROM analysis.a"), "{text}");

    let files_before = project_files(&sb);
    // Errors: a cycle (409 naming it), an unknown ref, a bad id, an unknown analysis, deleting what others read.
    let (status, problem, text) = send(
        &api,
        req(
            "PUT",
            "/api/v1/asset/analysis/a",
            None,
            Some(&json!({"sql": "SELECT * FROM analysis.c"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    assert!(
        problem["detail"].as_str().unwrap().contains("a -> c -> b -> a"),
        "{text}"
    );
    let (status, _, text) = send(&api, create(json!({"id": "d", "sql": "SELECT * FROM analysis.nope"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    let (status, _, text) = send(&api, create(json!({"id": "bad-id", "sql": "SELECT 1"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    let (status, _, text) = send(&api, create(json!({"id": "w", "sql": "DELETE FROM t"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    let (status, _, _) = send(&api, get("/api/v1/asset/analysis/zzz")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, text) = send(&api, req("DELETE", "/api/v1/asset/analysis/a", None, None)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    // Nothing changed on disk by the refusals.
    assert_eq!(project_files(&sb), files_before);

    // Lineage: up- and downstream, and the inputs that are not analyses.
    let (_, lineage, _) = send(&api, get("/api/v1/asset/analysis/b/lineage")).await;
    assert_eq!(lineage["upstream"], json!(["a"]));
    assert_eq!(lineage["downstream"], json!(["c"]));
    assert_eq!(lineage["files"], json!(["data/fx.parquet"]));
    let (_, graph, _) = send(&api, get("/api/v1/asset/lineage-graph")).await;
    assert!(
        graph["nodes"]
            .as_array()
            .unwrap()
            .contains(&json!({"id": "cache.orders", "kind": "cached_table"})),
        "{graph}"
    );
    assert!(
        graph["edges"]
            .as_array()
            .unwrap()
            .contains(&json!({"from": "a", "to": "b"})),
        "{graph}"
    );

    assert!(
        graph["nodes"]
            .as_array()
            .unwrap()
            .contains(&json!({"id": "data/fx.parquet", "kind": "file"})),
        "{graph}"
    );
    // Column-level lineage where the parser can resolve it, null where it cannot (b joins a table function).
    let (_, lineage_a, _) = send(&api, get("/api/v1/asset/analysis/a/lineage")).await;
    assert_eq!(
        lineage_a["columns"],
        json!([{"column": "*", "from": ["cache.orders.*"]}])
    );
    assert_eq!(lineage["columns"], Value::Null);

    // A hand edit of the file is picked up, and changes the definition hash.
    let (_, before, _) = send(&api, get("/api/v1/asset/analysis/c")).await;
    std::fs::write(
        &file,
        std::fs::read_to_string(&file).unwrap().replace("sum(x)", "sum(x) * 2"),
    )
    .unwrap();
    let (_, after, _) = send(&api, get("/api/v1/asset/analysis/c")).await;
    assert!(after["sql"].as_str().unwrap().contains("sum(x) * 2"));
    assert_ne!(before["definition_hash"], after["definition_hash"]);

    // Another project: the same id, its own file and schema.
    let (status, _, text) = send(
        &api,
        req(
            "POST",
            "/api/v1/projects",
            None,
            Some(&json!({"id": "team", "name": "Team"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let (status, a, text) = send(
        &api,
        req(
            "POST",
            "/api/v1/asset/analysis",
            Some("team"),
            Some(&json!({"id": "a", "sql": "SELECT 2 AS x"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert_eq!(a["relation"], "analysis.a");
    assert!(sb.data_dir().join("projects/team/analyses/a.yaml").is_file());
    let (_, mine, _) = send(&api, get("/api/v1/asset/analysis/a")).await;
    assert_eq!(mine["sql"], "SELECT * FROM cache.orders");

    // Deleting the end of the chain works.
    let (status, _, text) = send(&api, req("DELETE", "/api/v1/asset/analysis/c", None, None)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    assert!(!file.exists());
}

/// Every analysis file of the default project with its content.
fn project_files(sb: &Sandbox) -> Vec<(String, String)> {
    let dir = sb.data_dir().join("projects/default/analyses");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn analysis_cli_reads_hand_written_files() {
    use crate::helpers::{stderr, stdout};
    let sb = Sandbox::new();
    let dir = sb.data_dir().join("projects/default/analyses");
    std::fs::create_dir_all(&dir).unwrap();
    // Written by hand (or checked out from git), never through the API.
    std::fs::write(
        dir.join("raw.yaml"),
        "materialization: table\ntags: [core]\nsql: |\n  SELECT 1 AS id\n",
    )
    .unwrap();
    std::fs::write(dir.join("top.yaml"), "name: Top\nsql: SELECT * FROM {{ ref('raw') }}\n").unwrap();
    let o = sb.run(&["analysis", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("raw") && out.contains("table") && out.contains("core"),
        "{out}"
    );
    let o = sb.run(&["analysis", "compile", "top", "--sql"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<_> = out.lines().filter(|l| l.starts_with("run")).collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].contains("raw") && lines[1].contains("top") && out.contains("never ran"),
        "{out}"
    );
    assert!(out.contains("SELECT * FROM analysis.raw"), "{out}");
    let o = sb.run(&["analysis", "lineage", "raw"]);
    assert!(stdout(&o).contains("downstream: top"), "{}", stdout(&o));
    // Run through the CLI (in-process), then again: everything fresh.
    let o = sb.run(&["analysis", "run", "top"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("succeeded") && stdout(&o).contains("top"),
        "{}",
        stdout(&o)
    );
    let o = sb.run(&["analysis", "run", "top"]);
    assert_eq!(stdout(&o).matches("skipped").count(), 2, "{}", stdout(&o));
    let o = sb.run(&["analysis", "history", "raw"]);
    assert_eq!(stdout(&o).lines().count(), 1, "{}", stdout(&o));
    let o = sb.run(&["analysis", "run", "top", "--param", "nope"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = sb.run(&["analysis", "show", "nope"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    // A broken hand edit: one line naming the file, exit 2.
    std::fs::write(dir.join("top.yaml"), "sql: [unclosed\n").unwrap();
    let o = sb.run(&["analysis", "list"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("top.yaml"), "{}", stderr(&o));
}

async fn execute(api: &TestApi, id: &str, body: Value) -> (StatusCode, Value, String) {
    send(
        api,
        req(
            "POST",
            &format!("/api/v1/asset/analysis/{id}/execute?wait=60"),
            None,
            Some(&body),
        ),
    )
    .await
}

fn steps(run: &Value) -> Vec<(String, String)> {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

async fn count(api: &TestApi, id: &str) -> u64 {
    let (status, data, text) = send(api, get(&format!("/api/v1/asset/analysis/{id}/data?limit=0"))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    data["rows"].as_array().unwrap().len() as u64
}

#[tokio::test]
async fn running_the_chain_materializations_freshness_and_parameters() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    api.rows("CREATE TABLE src AS SELECT range AS id, range * 2 AS v FROM range(10)")
        .await;
    let create = |body: Value| req("POST", "/api/v1/asset/analysis", None, Some(&body));
    for body in [
        json!({"id": "a", "sql": "SELECT * FROM main.src", "materialization": "table"}),
        json!({"id": "b", "sql": "SELECT id, v + 1 AS v FROM {{ ref('a') }}", "materialization": "table"}),
        json!({"id": "c", "sql": "SELECT count(*) AS n FROM analysis.b"}),
    ] {
        let (status, _, text) = send(&api, create(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{text}");
    }
    let (_, data, _) = send(&api, get("/api/v1/asset/analysis/c/data")).await;
    assert_eq!(data["status"], 409, "no data before the first run: {data}");

    // Running c runs a and b first.
    let (status, run, text) = execute(&api, "c", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(run["status"], "succeeded", "{text}");
    assert_eq!(
        steps(&run),
        pairs(&[("a", "succeeded"), ("b", "succeeded"), ("c", "succeeded")])
    );
    assert_eq!(api.rows("SELECT n FROM analysis.c").await["rows"][0][0], 10);
    // Again: all fresh, all skipped.
    let (_, run, _) = execute(&api, "c", json!({})).await;
    assert_eq!(
        steps(&run),
        pairs(&[("a", "skipped"), ("b", "skipped"), ("c", "skipped")])
    );
    let (_, fresh, _) = send(&api, get("/api/v1/asset/analysis/c/freshness")).await;
    assert_eq!(fresh["fresh"], true, "{fresh}");
    // Forcing a, then running c, reruns b and c.
    let (_, run, _) = execute(&api, "a", json!({"force": true})).await;
    assert_eq!(steps(&run), pairs(&[("a", "succeeded")]));
    let (_, fresh, _) = send(&api, get("/api/v1/asset/analysis/c/freshness")).await;
    assert_eq!(fresh["fresh"], false);
    assert_eq!(
        fresh["stale"][0]["reasons"],
        json!(["upstream a ran after it"]),
        "{fresh}"
    );
    let (_, run, _) = execute(&api, "c", json!({})).await;
    assert_eq!(
        steps(&run),
        pairs(&[("a", "skipped"), ("b", "succeeded"), ("c", "succeeded")])
    );
    // Editing b's SQL makes b and c stale.
    let (status, _, text) = send(
        &api,
        req(
            "PUT",
            "/api/v1/asset/analysis/b",
            None,
            Some(&json!({"sql": "SELECT id, v + 2 AS v FROM analysis.a", "materialization": "table"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (_, plan, _) = send(&api, req("POST", "/api/v1/asset/analysis/c/compile", None, None)).await;
    assert_eq!(
        plan[1]["reasons"],
        json!(["its definition changed since it last ran"]),
        "{plan}"
    );
    assert_eq!(plan[2]["action"], "run");
    let (_, run, _) = execute(&api, "c", json!({})).await;
    assert_eq!(
        steps(&run),
        pairs(&[("a", "skipped"), ("b", "succeeded"), ("c", "succeeded")])
    );
    // A failing b: its rebuild fails at run time, the old b stays readable, c is blocked with the reason.
    send(
        &api,
        req(
            "PUT",
            "/api/v1/asset/analysis/b",
            None,
            Some(&json!({"sql": "SELECT id, error('boom')::INT AS v FROM analysis.a", "materialization": "table"})),
        ),
    )
    .await;
    let (_, run, text) = execute(&api, "c", json!({})).await;
    assert_eq!(run["status"], "failed", "{text}");
    assert_eq!(
        steps(&run),
        pairs(&[("a", "skipped"), ("b", "failed"), ("c", "blocked")])
    );
    assert_eq!(run["steps"][2]["detail"], "upstream b failed");
    assert!(run["steps"][1]["detail"].as_str().unwrap().contains("boom"), "{text}");
    assert_eq!(count(&api, "b").await, 10, "the previous b is still there");
    let (_, plan, _) = send(&api, req("POST", "/api/v1/asset/analysis/c/compile", None, None)).await;
    assert!(
        plan[1]["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("its last run failed")),
        "{plan}"
    );
    let (_, history, _) = send(&api, get("/api/v1/asset/analysis/b/history")).await;
    let statuses: Vec<_> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        [
            json!("failed"),
            json!("succeeded"),
            json!("succeeded"),
            json!("succeeded")
        ]
    );

    // append twice: twice the rows; incremental: only new rows; parquet: readable back.
    for body in [
        json!({"id": "log", "sql": "SELECT 1 AS x", "materialization": "append"}),
        json!({"id": "inc", "sql": "SELECT * FROM main.src", "materialization": "incremental", "cursor": "id"}),
        json!({"id": "pq", "sql": "SELECT * FROM main.src", "materialization": "parquet"}),
    ] {
        let (status, _, text) = send(&api, create(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{text}");
    }
    for _ in 0..2 {
        let (_, run, text) = execute(&api, "log", json!({"force": true})).await;
        assert_eq!(run["status"], "succeeded", "{text}");
    }
    assert_eq!(count(&api, "log").await, 2);
    execute(&api, "inc", json!({})).await;
    api.rows("INSERT INTO src SELECT range, range * 2 FROM range(10, 15)")
        .await;
    let (_, run, _) = execute(&api, "inc", json!({"force": true})).await;
    assert_eq!(run["steps"][0]["rows"], 5, "only the new rows: {run}");
    assert_eq!(count(&api, "inc").await, 15);
    let (_, run, text) = execute(&api, "pq", json!({})).await;
    assert_eq!(run["status"], "succeeded", "{text}");
    assert!(sb
        .data_dir()
        .join("projects/default/files/analysis/pq.parquet")
        .is_file());
    assert_eq!(count(&api, "pq").await, 15);
    let (resp, body) = call(&api.router, get("/api/v1/asset/analysis/pq/data?format=csv&limit=0")).await;
    assert!(resp.headers()[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .contains("pq.csv"));
    assert_eq!(String::from_utf8_lossy(&body).lines().count(), 16);
    let (resp, body) = call(&api.router, get("/api/v1/asset/analysis/inc/export?format=parquet")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .contains("inc.parquet"));
    assert_eq!(&body[..4], b"PAR1");
    let (resp, _) = call(&api.router, get("/api/v1/asset/analysis/inc/export?format=xlsx")).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Parameters: bound by the engine, checked before anything runs.
    let (status, _, text) = send(
        &api,
        create(json!({"id": "big", "sql": "SELECT * FROM main.src WHERE id >= $min AND 'x' <> '$min'", "materialization": "table",
                      "parameters": [{"name": "min", "type": "integer", "required": true}]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let (status, _, text) = execute(&api, "big", json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    let (status, _, text) = execute(&api, "big", json!({"params": {"min": "x; DROP TABLE src"}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    let (_, run, text) = execute(&api, "big", json!({"params": {"min": 12}})).await;
    assert_eq!(run["status"], "succeeded", "{text}");
    assert_eq!(count(&api, "big").await, 3);

    // An upstream step gets the parameters it declares when its reader is run.
    let (status, _, text) = send(
        &api,
        create(json!({"id": "reader", "sql": "SELECT count(*) AS n FROM analysis.big", "materialization": "table"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let (_, run, text) = execute(&api, "reader", json!({"force": true, "params": {"min": 10}})).await;
    assert_eq!(run["status"], "succeeded", "{text}");
    assert_eq!(api.rows("SELECT n FROM analysis.reader").await["rows"][0][0], 5);
    let (status, _, _) = send(&api, req("DELETE", "/api/v1/asset/analysis/reader", None, None)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Deleting with drop removes the table too; without, the table stays.
    let (status, _, text) = send(&api, req("DELETE", "/api/v1/asset/analysis/big?drop=true", None, None)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    assert_eq!(
        api.rows("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'analysis' AND table_name = 'big'")
            .await["rows"][0][0],
        0
    );
    let (status, _, _) = send(&api, req("DELETE", "/api/v1/asset/analysis/log", None, None)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(api.rows("SELECT count(*) FROM analysis.log").await["rows"][0][0], 2);
}

#[tokio::test]
async fn analyses_read_sources_and_cached_tables_and_see_them_change() {
    let sb = Sandbox::new();
    let api = TestApi::new(&sb).await;
    let file = sb.path().join("shop.sqlite");
    crate::sources::sqlite_orders(&file);
    let (status, _, text) = send(
        &api,
        req(
            "POST",
            "/api/v1/source",
            None,
            Some(&json!({"name": "shop", "kind": "sqlite", "path": file})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let (status, _, text) = send(
        &api,
        req(
            "POST",
            "/api/v1/source/shop/cache",
            None,
            Some(&json!({"schema": "main", "table": "orders"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let (status, _, text) = send(
        &api,
        req(
            "POST",
            "/api/v1/asset/analysis",
            None,
            Some(&json!({"id": "both", "materialization": "table",
                         "sql": "SELECT (SELECT count(*) FROM shop.main.orders) AS live, (SELECT count(*) FROM cache.orders) AS cached"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let (_, run, text) = execute(&api, "both", json!({})).await;
    assert_eq!(run["status"], "succeeded", "{text}");
    assert_eq!(
        api.rows("SELECT live, cached FROM analysis.both").await["rows"][0],
        json!([10, 10])
    );
    let (_, lineage, _) = send(&api, get("/api/v1/asset/analysis/both/lineage")).await;
    assert_eq!(lineage["relations"], json!(["cache.orders", "shop.main.orders"]));
    // Refreshing the cached copy makes the analysis stale, naming the input.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (status, _, text) = send(&api, req("POST", "/api/v1/cache/orders/refresh", None, None)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (_, fresh, _) = send(&api, get("/api/v1/asset/analysis/both/freshness")).await;
    assert_eq!(
        fresh["stale"][0]["reasons"],
        json!(["input cache.orders changed after it ran"]),
        "{fresh}"
    );
}
