//! dbt through the CLI (`pluto-duck dbt ...` against a running server), and what a run leaves for the rest of
//! Pluto-Duck: models in the lineage graph (dbt's edges, joined to analyses and the project's tables, column
//! lineage), in `/dbt/models` with descriptions, in the agent's catalog, on a board; projects that do not see each
//! other's models; a dbt project of a request's own with its own profiles.yml.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{stderr, stdout, Sandbox, Server};

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

fn starter() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dbt_projects/core")
}

/// A copy of the starter project in the sandbox, and a server running it for every project.
fn start(sb: &Sandbox) -> (PathBuf, Server) {
    let project = sb.path().join("dbt_core");
    copy_dir(&starter(), &project);
    let dir = project.display().to_string();
    let mut server = sb.spawn_server_with_env(&[
        ("PLUTODUCK_DBT__PROJECT_DIR", dir.as_str()),
        ("DBT_SEND_ANONYMOUS_USAGE_STATS", "false"),
    ]);
    if let Some(mut err) = server.child.stderr.take() {
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    }
    (project, server)
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(900))
        .build()
        .unwrap()
}

/// A request in a project; answers the status and the JSON body.
fn call(server: &Server, method: &str, path: &str, project: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = client()
        .request(method.parse().unwrap(), format!("{}{path}", server.url))
        .header("x-pluto-project", project);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

/// Runs SQL in a project: `Ok(rows)` or `Err(problem detail)`.
fn sql(server: &Server, project: &str, sql: &str) -> Result<Vec<Value>, String> {
    let (status, body) = call(
        server,
        "POST",
        "/api/v1/query?wait=60",
        project,
        Some(json!({ "sql": sql })),
    );
    if (200..300).contains(&status) {
        Ok(body["rows"].as_array().cloned().unwrap_or_default())
    } else {
        Err(body["detail"].as_str().unwrap_or_default().to_owned())
    }
}

fn dbt(server: &Server, project: &str, command: &str, body: Value) -> (u16, Value) {
    call(
        server,
        "POST",
        &format!("/api/v1/dbt/{command}?wait=600"),
        project,
        Some(body),
    )
}

fn has_edge(graph: &Value, from: &str, to: &str) -> bool {
    graph["edges"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["from"] == from && e["to"] == to)
}

fn kind_of<'a>(graph: &'a Value, id: &str) -> Option<&'a str> {
    graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == id)
        .and_then(|n| n["kind"].as_str())
}

#[test]
fn cli_build_then_models_in_lineage_catalog_agent_and_boards() {
    let sb = Sandbox::new();
    let (project, server) = start(&sb);
    // A project table read by a dbt model through its generated source, and an analysis reading a dbt model.
    sql(
        &server,
        "default",
        "CREATE TABLE visits AS SELECT range AS id, range % 3 AS store_id FROM range(30)",
    )
    .unwrap();
    std::fs::write(
        project.join("models/marts/visits_per_store.sql"),
        "select store_id, count(*) as visits from {{ source('pluto', 'visits') }} group by store_id\n",
    )
    .unwrap();
    let (status, body) = call(
        &server,
        "POST",
        "/api/v1/asset/analysis",
        "default",
        Some(
            json!({ "id": "big_spenders", "sql": "SELECT customer_name FROM dbt.main.customers WHERE lifetime_spend > 100", "materialization": "view" }),
        ),
    );
    assert!((200..300).contains(&status), "{status} {body}");

    // `pluto-duck dbt build` through the running server: per-node lines are hidden off a terminal, the summary
    // is printed, exit 0.
    let o = sb.run(&["dbt", "build"]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    let summary = out
        .lines()
        .find(|l| l.starts_with("dbt build: "))
        .unwrap_or_else(|| panic!("no summary in {out}"));
    assert!(summary.contains(" 0 failed, 0 skipped"), "{summary}");
    let passed: u64 = summary["dbt build: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(passed > 40, "{summary}");

    // `ls` lists through the server.
    let o = sb.run(&["dbt", "ls", "--select", "stg_orders+", "--exclude", "customers"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let listed = stdout(&o);
    let lines: Vec<&str> = listed.lines().collect();
    assert!(
        lines.contains(&"model.pluto_duck_core.stg_orders") && lines.contains(&"model.pluto_duck_core.orders"),
        "{listed}"
    );
    assert!(!lines.contains(&"model.pluto_duck_core.customers"), "{listed}");
    assert!(!lines.contains(&"model.pluto_duck_core.stg_customers"), "{listed}");

    // The lineage graph: dbt's nodes and edges, joined to the analysis and the project's table.
    let (status, graph) = call(&server, "GET", "/api/v1/asset/lineage-graph", "default", None);
    assert_eq!(status, 200, "{graph}");
    assert_eq!(kind_of(&graph, "model.pluto_duck_core.customers"), Some("dbt_model"));
    assert_eq!(kind_of(&graph, "seed.pluto_duck_core.raw_orders"), Some("dbt_seed"));
    assert_eq!(
        kind_of(&graph, "source.pluto_duck_core.pluto.visits"),
        Some("dbt_source")
    );
    assert_eq!(kind_of(&graph, "big_spenders"), Some("analysis"));
    assert!(has_edge(
        &graph,
        "seed.pluto_duck_core.raw_orders",
        "model.pluto_duck_core.stg_orders"
    ));
    assert!(has_edge(
        &graph,
        "model.pluto_duck_core.stg_orders",
        "model.pluto_duck_core.orders"
    ));
    assert!(has_edge(
        &graph,
        "model.pluto_duck_core.orders",
        "model.pluto_duck_core.customers"
    ));
    assert!(
        has_edge(&graph, "model.pluto_duck_core.customers", "big_spenders"),
        "{graph}"
    );
    assert!(
        has_edge(&graph, "main.visits", "source.pluto_duck_core.pluto.visits"),
        "{graph}"
    );
    assert!(has_edge(
        &graph,
        "source.pluto_duck_core.pluto.visits",
        "model.pluto_duck_core.visits_per_store"
    ));
    let tests: Vec<&Value> = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "dbt_test")
        .collect();
    assert!(tests.len() > 30, "{}", tests.len());
    // Column lineage of a plain select: stg_customers renames raw_customers.id.
    let columns = graph["columns"].as_array().unwrap();
    assert!(
        columns.iter().any(|c| c["from"] == "seed.pluto_duck_core.raw_customers"
            && c["from_column"] == "id"
            && c["to"] == "model.pluto_duck_core.stg_customers"
            && c["to_column"] == "customer_id"),
        "{columns:?}"
    );

    // Each model's status, run, duration, rows, tests, description and columns.
    let (_, models) = call(&server, "GET", "/api/v1/dbt/models", "default", None);
    let stg = models
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "stg_customers")
        .unwrap_or_else(|| panic!("{models}"));
    assert_eq!(stg["status"], "success", "{stg}");
    assert!(stg["duration_ms"].is_u64() && stg["last_run"].is_string(), "{stg}");
    assert!(!stg["description"].as_str().unwrap().is_empty(), "{stg}");
    assert_eq!(stg["depends_on"], json!(["seed.pluto_duck_core.raw_customers"]));
    let customer_id = stg["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "customer_id")
        .unwrap();
    assert_eq!(
        customer_id["from"],
        json!([{ "unique_id": "seed.pluto_duck_core.raw_customers", "column": "id" }])
    );
    assert!(!customer_id["description"].as_str().unwrap().is_empty());

    // The agent's catalog: the dbt models with dbt's descriptions.
    let (status, described) = call(
        &server,
        "POST",
        "/api/v1/actions/table.describe",
        "default",
        Some(json!({ "args": { "table": "dbt.main.customers" } })),
    );
    assert_eq!(status, 200, "{described}");
    let text = described["text"].as_str().unwrap();
    assert!(text.contains("dbt model customers: "), "{text}");
    let (_, found) = call(
        &server,
        "POST",
        "/api/v1/actions/schema.search",
        "default",
        Some(json!({ "args": { "question": "lifetime spend of each customer" } })),
    );
    assert!(
        found["data"]["tables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "dbt.main.customers"),
        "{found}"
    );

    // A board item reads a dbt model.
    let (_, board) = call(
        &server,
        "POST",
        "/api/v1/boards",
        "default",
        Some(json!({ "name": "dbt" })),
    );
    let items = format!("/api/v1/boards/{}/items", board["id"].as_str().unwrap());
    let (status, item) = call(
        &server,
        "POST",
        &items,
        "default",
        Some(
            json!({ "kind": "table", "title": "Customers", "query": { "sql": "SELECT count(*) AS n FROM dbt.main.customers" } }),
        ),
    );
    assert!((200..300).contains(&status), "{item}");
    let (status, item) = call(
        &server,
        "POST",
        &format!("{items}/{}/execute", item["id"].as_str().unwrap()),
        "default",
        None,
    );
    assert_eq!(status, 200, "{item}");
    assert!(item["snapshot"]["rows"][0]["n"].as_i64().unwrap() > 0, "{item}");

    // A failing test: exit non-zero with one line naming the node; the summary still printed.
    std::fs::write(project.join("tests/always_fails.sql"), "select 1 as broken\n").unwrap();
    let o = sb.run(&["dbt", "test", "--select", "always_fails"]);
    assert_eq!(o.status.code(), Some(2), "{}\n{}", stdout(&o), stderr(&o));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("error: dbt test failed") && lines[0].contains("test.pluto_duck_core.always_fails (fail)"),
        "{err}"
    );
    assert!(
        stdout(&o).contains("0 passed, 0 warned, 1 failed, 0 skipped"),
        "{}",
        stdout(&o)
    );
    // A flag the command does not take is refused before dbt runs.
    let o = sb.run(&["dbt", "test", "--full-refresh"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("takes no full refresh"), "{}", stderr(&o));
    let o = sb.run(&["dbt", "run", "--vars", "[1, 2]"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--vars must be an object"), "{}", stderr(&o));
}

/// A dbt project with one model, named after its Pluto-Duck project, and no profiles.yml (Pluto-Duck writes it).
fn tiny_project(dir: &Path, name: &str) {
    std::fs::create_dir_all(dir.join("models")).unwrap();
    std::fs::write(
        dir.join("dbt_project.yml"),
        format!("name: {name}\nversion: '1.0.0'\nconfig-version: 2\nprofile: {name}\nmodels:\n  {name}:\n    +materialized: table\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join(format!("models/{name}_only.sql")),
        format!("select 1 as id, '{name}' as owner\n"),
    )
    .unwrap();
}

#[test]
fn two_projects_do_not_see_each_others_models() {
    let sb = Sandbox::new();
    let (_project, server) = start(&sb);
    let (status, body) = call(
        &server,
        "POST",
        "/api/v1/projects",
        "default",
        Some(json!({ "id": "team" })),
    );
    assert!((200..300).contains(&status), "{body}");
    // The team's own dbt project, named by the request (under <data_dir>/dbt, the default request root).
    let team_dir = sb.data_dir().join("dbt/team_dbt");
    tiny_project(&team_dir, "team");

    let (code, run) = dbt(
        &server,
        "default",
        "build",
        json!({ "select": ["+stg_customers"], "exclude": ["test_name:relationships"] }),
    );
    assert_eq!((code, run["status"].as_str()), (200, Some("succeeded")), "{run}");
    let (code, run) = dbt(
        &server,
        "team",
        "run",
        json!({ "project_dir": team_dir.display().to_string() }),
    );
    assert_eq!((code, run["status"].as_str()), (200, Some("succeeded")), "{run}");

    // Through SQL: each project's `dbt` catalog is its own.
    assert_eq!(
        sql(&server, "team", "SELECT owner FROM dbt.main.team_only").unwrap()[0][0],
        "team"
    );
    assert!(sql(&server, "team", "SELECT * FROM dbt.main.stg_customers").is_err());
    assert!(!sql(&server, "default", "SELECT * FROM dbt.main.stg_customers")
        .unwrap()
        .is_empty());
    let e = sql(&server, "default", "SELECT * FROM dbt.main.team_only").unwrap_err();
    assert!(e.contains("team_only"), "{e}");

    // Through /dbt/models and the lineage graph.
    let names = |project: &str| -> Vec<String> {
        let (_, models) = call(&server, "GET", "/api/v1/dbt/models", project, None);
        models
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names("team"), ["team_only"]);
    let default_models = names("default");
    assert!(default_models.contains(&"stg_customers".to_owned()) && !default_models.contains(&"team_only".to_owned()));
    let (_, graph) = call(&server, "GET", "/api/v1/asset/lineage-graph", "team", None);
    assert_eq!(kind_of(&graph, "model.team.team_only"), Some("dbt_model"));
    assert_eq!(kind_of(&graph, "model.pluto_duck_core.stg_customers"), None, "{graph}");
}

#[test]
fn a_projects_own_profiles_yml_is_honoured_or_refused_saying_why() {
    let sb = Sandbox::new();
    let (_project, server) = start(&sb);
    // A copy of the starter under the request root, with a profile of its own: another profile name and target.
    let mine = sb.data_dir().join("dbt/mine");
    copy_dir(&starter(), &mine);
    let yml = std::fs::read_to_string(mine.join("dbt_project.yml")).unwrap();
    std::fs::write(
        mine.join("dbt_project.yml"),
        yml.replace("profile: pluto_duck", "profile: my_shop"),
    )
    .unwrap();
    let profile = std::fs::read_to_string(mine.join("profiles.yml"))
        .unwrap()
        .replace("pluto_duck:\n  target: local", "my_shop:\n  target: dev")
        .replace("    local:\n", "    dev:\n");
    std::fs::write(mine.join("profiles.yml"), &profile).unwrap();
    let dir = mine.display().to_string();
    let (code, run) = dbt(
        &server,
        "default",
        "build",
        json!({ "project_dir": dir, "select": ["+customers"] }),
    );
    assert_eq!((code, run["status"].as_str()), (200, Some("succeeded")), "{run}");
    assert!(!sql(&server, "default", "SELECT * FROM dbt.main.customers")
        .unwrap()
        .is_empty());
    // dbt ran with the project's own profile (Pluto-Duck wrote none for this run).
    assert!(!sb
        .data_dir()
        .join("projects/default/dbt/profiles/profiles.yml")
        .exists());

    // A profile building elsewhere is refused before anything runs, saying what it must say.
    std::fs::write(
        mine.join("profiles.yml"),
        profile.replace(
            "\"{{ env_var('PLUTODUCK_DBT_DATABASE', 'dbt.duckdb') }}\"",
            "/tmp/elsewhere.duckdb",
        ),
    )
    .unwrap();
    let (code, problem) = dbt(&server, "default", "build", json!({ "project_dir": dir }));
    assert_eq!(code, 422, "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("must build into the project's dbt database") && detail.contains("PLUTODUCK_DBT_DATABASE"),
        "{detail}"
    );
    // A target the profile does not have.
    std::fs::write(mine.join("profiles.yml"), &profile).unwrap();
    let (code, problem) = dbt(
        &server,
        "default",
        "build",
        json!({ "project_dir": dir, "target": "prod" }),
    );
    assert_eq!(code, 422, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("no output \"prod\""),
        "{problem}"
    );

    // Request paths: outside the roots, relative, or not a dbt project.
    let outside = sb.path().join("dbt_core").display().to_string();
    for (dir, needle) in [
        (outside.as_str(), "outside dbt.request_roots"),
        ("relative/dir", "absolute path"),
        (sb.data_dir().join("dbt/nothing").to_str().unwrap(), "no dbt project at"),
    ] {
        let (code, problem) = dbt(&server, "default", "run", json!({ "project_dir": dir }));
        assert_eq!(code, 422, "{dir}: {problem}");
        assert!(problem["detail"].as_str().unwrap().contains(needle), "{problem}");
    }
}
