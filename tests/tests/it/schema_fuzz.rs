//! The OpenAPI document against the real server: schemathesis (PLUTODUCK_TEST_SCHEMATHESIS) generates requests
//! from `/openapi.json` for every operation, valid and invalid, and checks every answer: no server error, only
//! documented status codes and content types, bodies (event streams included) that match their schemas, and no
//! request the document allows refused. A source, a cached table, an ingest, a query, an analysis, a board and a dataset
//! bucket with an object exist before it starts, so requests reach them rather than stopping at 404. Settings and the rules the schema cannot
//! express are in `tests/openapi-fuzz/schemathesis.toml`; its hooks keep every connection a fuzzed source could make
//! on loopback.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::helpers::{required_env, stdout, Sandbox};

/// Checks that must find nothing.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,positive_data_acceptance";
/// Cases per operation and phase: enough for every parameter and body field to vary, few enough for minutes.
const MAX_EXAMPLES: &str = "25";
/// Fixed, so a failure reproduces.
const SEED: &str = "20250101";

/// The smallest PNG: one transparent pixel.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00,
    0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

struct Api {
    client: reqwest::blocking::Client,
    url: String,
}

impl Api {
    /// Posts JSON; answers the response's headers and JSON body, failing on anything but success.
    fn post_with_headers(&self, path: &str, body: Value) -> (reqwest::header::HeaderMap, Value) {
        let resp = self
            .client
            .post(format!("{}/api/v1{path}", self.url))
            .json(&body)
            .send()
            .unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let text = resp.text().unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        (headers, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn post(&self, path: &str, body: Value) -> Value {
        self.post_with_headers(path, body).1
    }
}

/// A source with a table, a cached copy, an ingest, a finished query, an analysis that ran, a board with a table
/// item and an image item; their ids as the environment the schemathesis configuration reads.
fn fixtures(sb: &Sandbox, url: &str) -> Vec<(&'static str, String)> {
    let db = sb.path().join("shop.duckdb");
    let conn = duckdb::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE orders AS SELECT range AS id, range * 2.5 AS amount, 'note ' || range AS note FROM range(50)",
    )
    .unwrap();
    drop(conn);
    let api = Api {
        client: reqwest::blocking::Client::new(),
        url: url.to_owned(),
    };
    api.post("/source", json!({"name": "shop", "kind": "duckdb", "path": db}));
    api.post(
        "/source/shop/cache",
        json!({"schema": "main", "table": "orders", "name": "orders_copy"}),
    );
    let ingest = api.post(
        "/ingest?wait=60",
        json!({"source": "shop", "table": "main.orders", "target": "orders"}),
    );
    let (headers, _) = api.post_with_headers(
        "/query?wait=60",
        json!({"sql": "SELECT id, amount, note FROM orders ORDER BY id"}),
    );
    let query = headers["x-query-id"].to_str().unwrap().to_owned();
    api.post(
        "/asset/analysis",
        json!({"id": "revenue", "sql": "SELECT sum(amount) AS total FROM orders", "materialization": "table"}),
    );
    let run = api.post("/asset/analysis/revenue/execute?wait=60", json!({}));
    let board = api.post("/boards", json!({"name": "Sales"}));
    let board_id = board["id"].as_str().unwrap().to_owned();
    let item = api.post(
        &format!("/boards/{board_id}/items"),
        json!({"kind": "table", "query": {"sql": "SELECT * FROM orders"}}),
    );
    let session = api.post("/chat/sessions", json!({"title": "Fuzzing"}));
    let image = api.post(&format!("/boards/{board_id}/items"), json!({"kind": "image"}));
    let image_id = image["id"].as_str().unwrap().to_owned();
    let put = api
        .client
        .put(format!("{url}/api/v1/boards/{board_id}/items/{image_id}/image"))
        .header("content-type", "image/png")
        .body(PNG.to_vec())
        .send()
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    api.post("/datasets", json!({"name": "fuzz"}));
    let put = api
        .client
        .put(format!("{url}/api/v1/datasets/fuzz/objects/data/orders.csv"))
        .header("content-type", "text/csv")
        .header("x-amz-meta-source", "fixture")
        .body("id,amount\n1,2.5\n")
        .send()
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    api.post(
        "/jobs",
        json!({"name": "nightly", "task": {"kind": "sql", "sql": "SELECT id, amount FROM orders"}}),
    );
    let job_run = api.post("/jobs/nightly/runs?wait=60", json!({}));
    let external = api.post("/jobs/nightly/runs/external", json!({}));
    vec![
        ("PD_FUZZ_JOB_RUN", job_run["id"].as_str().unwrap().to_owned()),
        ("PD_FUZZ_EXTERNAL_RUN", external["id"].as_str().unwrap().to_owned()),
        ("PD_FUZZ_QUERY", query),
        ("PD_FUZZ_INGEST", ingest["id"].as_str().unwrap().to_owned()),
        ("PD_FUZZ_ANALYSIS_RUN", run["id"].as_str().unwrap().to_owned()),
        ("PD_FUZZ_BOARD", board_id),
        ("PD_FUZZ_ITEM", item["id"].as_str().unwrap().to_owned()),
        ("PD_FUZZ_IMAGE_ITEM", image_id),
        ("PD_FUZZ_SESSION", session["id"].as_str().unwrap().to_owned()),
    ]
}

/// Reads a stream to its end on a thread, keeping its last 64 KiB.
fn drain(mut from: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let tail = Arc::new(Mutex::new(Vec::new()));
    let keep = tail.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n @ 1..) = from.read(&mut buf) {
            let mut t = keep.lock().unwrap();
            t.extend_from_slice(&buf[..n]);
            let excess = t.len().saturating_sub(64 * 1024);
            t.drain(..excess);
        }
    });
    tail
}

/// Operations that remove what the others need: fuzzed in a second pass, after everything else.
const DESTRUCTIVE: &str = "^(delete_|detach_|drop_|reset_)";

/// Operations `schemathesis.toml` disables, each by name there: streams that never end.
const NOT_FUZZED: [&str; 2] = ["dataset_events", "job_events"];

#[test]
fn every_answer_is_one_the_document_promises() {
    let fuzzer = PathBuf::from(required_env("PLUTODUCK_TEST_SCHEMATHESIS"));
    assert!(
        fuzzer.is_file(),
        "{} does not exist: scripts/setup.sh installs schemathesis (PLUTODUCK_TEST_SCHEMATHESIS)",
        fuzzer.display()
    );
    let files = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi-fuzz");
    let sb = Sandbox::new();
    // A scripted model, so that questions are answered (and never leave loopback).
    let script = sb.path().join("model.yaml");
    std::fs::write(
        &script,
        "entries:\n  - reply: {text: \"I answer nothing in a fuzz run.\"}\n",
    )
    .unwrap();
    let script = script.to_string_lossy().into_owned();
    let mut server = sb.spawn_server_with_env(&[
        ("PLUTODUCK_LLM__PROVIDER", "scripted"),
        ("PLUTODUCK_LLM__SCRIPT", &script),
    ]);
    // Thousands of requests log more than a pipe holds: read the server's log as it comes, keep its tail.
    let log = drain(server.child.stderr.take().unwrap());
    let ids = fixtures(&sb, &server.url);
    let mut tested = 0;
    for (pass, filter) in [
        ("--exclude-operation-id-regex", DESTRUCTIVE),
        ("--include-operation-id-regex", DESTRUCTIVE),
    ] {
        let out = Command::new(&fuzzer)
            .current_dir(sb.path())
            .envs(ids.iter().map(|(k, v)| (k, v)))
            .env("SCHEMATHESIS_HOOKS", files.join("hooks.py"))
            .env("NO_COLOR", "1")
            .arg("--config-file")
            .arg(files.join("schemathesis.toml"))
            .args(["run", &format!("{}/openapi.json", server.url), pass, filter])
            .args(["--checks", CHECKS, "--max-examples", MAX_EXAMPLES, "--seed", SEED])
            .stdin(Stdio::null())
            .output()
            .expect("schemathesis runs");
        let text = stdout(&out);
        eprintln!("{text}");
        let alive = server.child.try_wait().unwrap().is_none();
        assert!(
            out.status.success() && alive,
            "schemathesis found problems (exit {}, server alive: {alive}):\n{text}\n{}\nserver log (tail):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&log.lock().unwrap())
        );
        tested += text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Tested: "))
            .and_then(|n| n.trim().parse::<usize>().ok())
            .unwrap_or(0);
    }
    let spec: Value = serde_json::from_str(&pluto_duck_http::openapi().to_json().unwrap()).unwrap();
    let operations: usize = spec["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|i| i.as_object().unwrap().len())
        .sum();
    let config = std::fs::read_to_string(files.join("schemathesis.toml")).unwrap();
    for id in NOT_FUZZED {
        let block = format!("include-operation-id = [\"{id}\"]\nenabled = false");
        assert!(config.contains(&block), "schemathesis.toml disables {id}");
    }
    assert_eq!(
        tested + NOT_FUZZED.len(),
        operations,
        "every operation is tested once, but the endless streams"
    );
}
