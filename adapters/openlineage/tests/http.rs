//! `HttpLineage` against an OpenLineage receiver on loopback (an axum server speaking Marquez's endpoint):
//! what arrives, in which order, with which key; retries; and an endpoint that never answers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use common::{sample_events, Schemas};
use pluto_duck_application::ports::{LineageDataset, LineageEmitter, LineageEvent, LineageJob};
use pluto_duck_domain::DatasetName;
use pluto_duck_openlineage::{HttpLineage, HttpLineageConfig};
use secrecy::SecretString;
use serde_json::Value;
use tokio::sync::mpsc;
use uuid::Uuid;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    body: Value,
    authorization: Option<String>,
}

#[derive(Clone)]
struct Receiver {
    /// Every request, accepted or not.
    tx: mpsc::UnboundedSender<Received>,
    /// Statuses to answer with, first to last; `200` once empty.
    script: Arc<Mutex<VecDeque<StatusCode>>>,
    /// Never answers: the request hangs until the client gives up.
    hang: bool,
}

async fn lineage(State(r): State<Receiver>, headers: HeaderMap, Json(body): Json<Value>) -> StatusCode {
    let authorization = headers.get("authorization").map(|v| v.to_str().unwrap().to_owned());
    r.tx.send(Received { body, authorization }).unwrap();
    if r.hang {
        std::future::pending::<()>().await;
    }
    r.script.lock().unwrap().pop_front().unwrap_or(StatusCode::OK)
}

/// Serves `/api/v1/lineage` on an ephemeral loopback port; returns its base URL and what it receives.
async fn receiver(script: Vec<StatusCode>, hang: bool) -> (String, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let state = Receiver {
        tx,
        script: Arc::new(Mutex::new(script.into())),
        hang,
    };
    let app = Router::new().route("/api/v1/lineage", post(lineage)).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), rx)
}

fn fast(url: &str) -> HttpLineageConfig {
    let mut config = HttpLineageConfig::new(url);
    config.initial_backoff = Duration::from_millis(1);
    config.max_backoff = Duration::from_millis(5);
    config
}

/// Everything the receiver got so far.
fn drain(rx: &mut mpsc::UnboundedReceiver<Received>) -> Vec<Received> {
    let mut out = Vec::new();
    while let Ok(r) = rx.try_recv() {
        out.push(r);
    }
    out
}

fn names(datasets: &Value) -> Vec<(String, String)> {
    datasets
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["namespace"].as_str().unwrap().to_owned(),
                d["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn start_complete_and_fail_reach_the_receiver_in_order_with_the_key() {
    let schemas = Schemas::load();
    let (url, mut rx) = receiver(Vec::new(), false).await;
    let mut config = fast(&url);
    config.api_key = Some(SecretString::from("ol-key-123"));
    let emitter = HttpLineage::new(config).unwrap();

    let orders = DatasetName::postgres("db.internal", 5432, "shop", "public", "orders").unwrap();
    let out = DatasetName::duckdb("/data/warehouse.duckdb", "warehouse", "main", "daily").unwrap();
    let ingest = LineageJob::new("pluto-duck/sales", "ingest.orders").with_job_type("INGEST");
    let ok_run = Uuid::now_v7();
    let failed_run = Uuid::now_v7();
    let failing = LineageJob::new("pluto-duck/sales", "analysis.broken").with_job_type("ANALYSIS");
    emitter
        .emit(
            LineageEvent::start(ok_run, ingest.clone())
                .input(LineageDataset::new(orders.clone()))
                .output(LineageDataset::new(out.clone())),
        )
        .await;
    emitter.emit(LineageEvent::start(failed_run, failing.clone())).await;
    emitter
        .emit(
            LineageEvent::complete(ok_run, ingest)
                .input(LineageDataset::new(orders.clone()))
                .output(LineageDataset::new(out.clone())),
        )
        .await;
    emitter.emit(LineageEvent::fail(failed_run, failing, "boom")).await;
    emitter.flush().await;
    assert_eq!(
        (
            emitter.stats().delivered,
            emitter.stats().dropped,
            emitter.stats().pending
        ),
        (4, 0, 0)
    );

    let got = drain(&mut rx);
    let seen: Vec<(String, String, String)> = got
        .iter()
        .map(|r| {
            (
                r.body["eventType"].as_str().unwrap().to_owned(),
                r.body["run"]["runId"].as_str().unwrap().to_owned(),
                r.body["job"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let ok = ok_run.to_string();
    let failed = failed_run.to_string();
    assert_eq!(
        seen,
        vec![
            ("START".into(), ok.clone(), "ingest.orders".into()),
            ("START".into(), failed.clone(), "analysis.broken".into()),
            ("COMPLETE".into(), ok, "ingest.orders".into()),
            ("FAIL".into(), failed, "analysis.broken".into()),
        ]
    );
    for r in &got {
        assert_eq!(r.authorization.as_deref(), Some("Bearer ol-key-123"));
        assert_eq!(r.body["job"]["namespace"], "pluto-duck/sales");
        schemas.validate_event(&r.body).unwrap();
    }
    let expected_in = vec![(orders.namespace.clone(), orders.name.clone())];
    let expected_out = vec![(out.namespace.clone(), out.name.clone())];
    for i in [0, 2] {
        assert_eq!(names(&got[i].body["inputs"]), expected_in);
        assert_eq!(names(&got[i].body["outputs"]), expected_out);
    }
    assert_eq!(got[3].body["run"]["facets"]["errorMessage"]["message"], "boom");
}

#[tokio::test]
async fn server_errors_are_retried_and_client_errors_are_not() {
    let schemas = Schemas::load();
    let events = sample_events();
    // The first event meets two 503s and a 429 before it is taken; the second is refused (400) for good.
    let script = vec![
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::TOO_MANY_REQUESTS,
        StatusCode::OK,
        StatusCode::BAD_REQUEST,
    ];
    let (url, mut rx) = receiver(script, false).await;
    let emitter = HttpLineage::new(fast(&url)).unwrap();
    emitter.emit(events[0].clone()).await;
    emitter.emit(events[3].clone()).await;
    emitter.emit(events[4].clone()).await;
    emitter.flush().await;
    let stats = emitter.stats();
    assert_eq!((stats.delivered, stats.dropped, stats.pending), (2, 1, 0));
    let got: Vec<String> = drain(&mut rx)
        .iter()
        .map(|r| {
            schemas.validate_event(&r.body).unwrap();
            r.body["eventType"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(got, ["START", "START", "START", "START", "FAIL", "ABORT"]);
}

#[tokio::test]
async fn retries_are_bounded_when_nothing_listens() {
    // A port that was just free: connections are refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut config = fast(&format!("http://127.0.0.1:{port}"));
    config.max_retries = 2;
    let emitter = HttpLineage::new(config).unwrap();
    for event in sample_events() {
        emitter.emit(event).await;
    }
    emitter.flush().await;
    let stats = emitter.stats();
    assert_eq!((stats.delivered, stats.dropped, stats.pending), (0, 5, 0));
}

#[tokio::test]
async fn an_endpoint_that_never_answers_does_not_hold_the_caller() {
    let (url, mut rx) = receiver(Vec::new(), true).await;
    let mut config = fast(&url);
    config.queue_capacity = 2;
    config.timeout = Duration::from_secs(3600);
    let emitter = HttpLineage::new(config).unwrap();
    let job = LineageJob::new("pluto-duck", "q");
    emitter.emit(LineageEvent::start(Uuid::now_v7(), job.clone())).await;
    // The first event is in flight and will stay there: the receiver never answers it.
    let first = rx.recv().await.unwrap();
    assert_eq!(first.body["eventType"], "START");

    // Every emit returns while the sender is stuck: two fit the queue, the rest are dropped and counted.
    let emits = async {
        for _ in 0..100 {
            emitter.emit(LineageEvent::complete(Uuid::now_v7(), job.clone())).await;
        }
    };
    // A guard against a hang only (emit has nothing to wait for), not a timing assertion.
    tokio::time::timeout(Duration::from_secs(60), emits)
        .await
        .expect("emit waited for a stuck endpoint");
    let stats = emitter.stats();
    assert_eq!((stats.delivered, stats.dropped, stats.pending), (0, 98, 3));
}

#[tokio::test]
async fn the_transport_names_the_emitter() {
    use pluto_duck_openlineage::{start_emitter, LineageTransport, DEFAULT_PRODUCER};
    let (url, mut rx) = receiver(Vec::new(), false).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let emitters = [
        start_emitter(LineageTransport::Http(fast(&url))).unwrap(),
        start_emitter(LineageTransport::File {
            path: path.clone(),
            producer: DEFAULT_PRODUCER.into(),
        })
        .unwrap(),
        start_emitter(LineageTransport::Off).unwrap(),
    ];
    for e in &emitters {
        e.emit(LineageEvent::start(Uuid::now_v7(), LineageJob::new("p", "j")))
            .await;
        e.flush().await;
    }
    assert_eq!(drain(&mut rx).len(), 1);
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    assert_eq!(emitters[2].stats(), Default::default());
}

#[tokio::test]
async fn runs_reported_by_the_lineage_service_arrive_valid_with_one_run_id_each() {
    use pluto_duck_application::services::{LineageService, RunDatasets};
    use pluto_duck_domain::{ProjectId, Run, RunFailure, RunId, RunKind};

    let schemas = Schemas::load();
    let (url, mut rx) = receiver(Vec::new(), false).await;
    let emitter: Arc<dyn LineageEmitter> = Arc::new(HttpLineage::new(fast(&url)).unwrap());
    let lineage = LineageService::new(Arc::clone(&emitter), "pluto-duck");
    let project = ProjectId::parse("sales").unwrap();
    let new_run = |kind, input: &str| {
        let now = chrono::Utc::now();
        let mut run = Run::new(
            RunId::parse(Uuid::now_v7().to_string()).unwrap(),
            project.clone(),
            kind,
            input.to_owned(),
            now,
        );
        run.start(now).unwrap();
        run
    };
    let datasets = RunDatasets {
        job: Some("ingest.orders".into()),
        inputs: vec![LineageDataset::new(
            DatasetName::local_file("/data/orders.csv").unwrap(),
        )],
        outputs: vec![LineageDataset::new(
            DatasetName::duckdb("/data/sales.duckdb", "sales", "raw", "orders").unwrap(),
        )],
        ..RunDatasets::default()
    };
    let mut ingest = new_run(RunKind::Ingest, "raw.orders");
    ingest.succeed(chrono::Utc::now()).unwrap();
    let mut query = new_run(RunKind::Query, "select * from missing");
    let failure = RunFailure {
        message: "Catalog Error: Table with name missing does not exist!".into(),
        position: Some(15),
    };
    query.fail(failure, chrono::Utc::now()).unwrap();
    lineage.report(&ingest, &datasets).await;
    lineage.report(&query, &RunDatasets::default()).await;
    emitter.flush().await;

    let got = drain(&mut rx);
    let seen: Vec<(String, String, String)> = got
        .iter()
        .map(|r| {
            schemas.validate_event(&r.body).unwrap();
            (
                r.body["eventType"].as_str().unwrap().to_owned(),
                r.body["run"]["runId"].as_str().unwrap().to_owned(),
                r.body["job"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let (i, q) = (ingest.id.to_string(), query.id.to_string());
    assert_eq!(
        seen,
        vec![
            ("START".into(), i.clone(), "ingest.orders".into()),
            ("COMPLETE".into(), i, "ingest.orders".into()),
            ("START".into(), q.clone(), "query".into()),
            ("FAIL".into(), q, "query".into()),
        ]
    );
    assert_eq!(got[1].body["inputs"][0]["namespace"], "file");
    assert_eq!(got[3].body["job"]["facets"]["sql"]["query"], "select * from missing");
}
