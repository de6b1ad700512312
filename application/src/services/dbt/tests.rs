use std::sync::Mutex as StdMutex;

use pluto_duck_domain::{Identifier, Project, Relation, RunStatus};

use super::*;
use crate::ports::{
    DbtArtifacts, MockMetadataStore, MockTransformationRunner, MockWarehouse, NodeStatus, RelationInfo,
};
use crate::services::RunHub;

fn result(id: &str, status: NodeStatus) -> NodeResult {
    NodeResult {
        unique_id: id.into(),
        resource_type: DbtResourceType::of_unique_id(id),
        name: id.rsplit('.').next().unwrap_or(id).into(),
        status,
        execution_time: Duration::from_millis(12),
        rows_affected: None,
        message: Some("OK".into()),
        failures: None,
        relation_name: None,
    }
}

fn outcome(status: DbtStatus, nodes: Vec<NodeResult>) -> DbtOutcome {
    DbtOutcome {
        status,
        exit_code: Some(0),
        invocation_id: Some("inv".into()),
        error: (status == DbtStatus::RuntimeError).then(|| "Could not set lock on file".into()),
        node_results: nodes,
        listed: Vec::new(),
        compiled: Vec::new(),
        artifacts: DbtArtifacts::default(),
        elapsed: Duration::from_millis(40),
    }
}

fn metadata() -> MockMetadataStore {
    let mut md = MockMetadataStore::new();
    md.expect_insert_run().returning(|_| Ok(()));
    md.expect_update_run().returning(|_| Ok(()));
    md.expect_get_run().returning(|_, _| Ok(None));
    md.expect_list_runs().returning(|_| Ok(Vec::new()));
    md.expect_get_project()
        .returning(|_| Ok(Some(Project::default_project(Utc::now()))));
    md
}

/// The warehouse mock, counting hand-overs and take-backs.
fn warehouse(calls: Arc<StdMutex<Vec<&'static str>>>, dir: &Path) -> MockWarehouse {
    let mut wh = MockWarehouse::new();
    let (c, d) = (calls.clone(), dir.to_path_buf());
    wh.expect_hand_over_dbt().returning(move |_| {
        c.lock().unwrap().push("hand_over");
        Ok(DbtHandover {
            database: d.join("dbt.duckdb"),
            sources_snapshot: d.join("sources.duckdb"),
            relations: vec![RelationInfo {
                relation: Relation {
                    schema: Identifier::parse("main").unwrap(),
                    name: Identifier::parse("orders").unwrap(),
                },
                kind: RelationKind::Table,
                columns: Vec::new(),
                estimated_rows: Some(3),
                comment: None,
            }],
        })
    });
    wh.expect_take_back_dbt().returning(move |_| {
        calls.lock().unwrap().push("take_back");
        Ok(true)
    });
    wh
}

struct Fixture {
    service: DbtService,
    calls: Arc<StdMutex<Vec<&'static str>>>,
    dir: PathBuf,
}

fn fixture(name: &str, runner: MockTransformationRunner) -> Fixture {
    let dir = std::env::temp_dir().join(format!("pd-dbt-svc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let project_dir = dir.join("project");
    std::fs::create_dir_all(&project_dir).unwrap();
    std::fs::write(
        project_dir.join("dbt_project.yml"),
        "name: shop\nprofile: 'shop_profile'\n",
    )
    .unwrap();
    let calls = Arc::new(StdMutex::new(Vec::new()));
    let jobs = Jobs::new(Arc::new(metadata()), Arc::new(RunHub::new(100)));
    let service = DbtService::new(
        Arc::new(runner),
        Arc::new(warehouse(calls.clone(), &dir)),
        Arc::new(metadata()),
        jobs,
        DbtSettings {
            data_dir: dir.join("data"),
            project_dir,
            project_dirs: BTreeMap::new(),
            request_roots: vec![dir.clone()],
            timeout: None,
        },
    );
    Fixture { service, calls, dir }
}

/// A runner that writes nothing, streams `events` and ends with `end`.
fn runner(events: Vec<DbtEvent>, end: DbtOutcome) -> MockTransformationRunner {
    let mut r = MockTransformationRunner::new();
    r.expect_write_profile()
        .withf(|spec, _| {
            spec.profile_name == "shop_profile"
                && spec.target_name == "local"
                && spec.attach.len() == 1
                && spec.attach[0].1 == "warehouse"
                && spec.attach[0].2
        })
        .returning(|_, dir| Ok(dir.join("profiles.yml")));
    r.expect_invoke().returning(move |inv, tx, _| {
        assert!(inv.target_path.to_string_lossy().contains("/dbt/runs/"), "{inv:?}");
        assert_eq!(inv.select, ["orders+"]);
        for e in events.clone() {
            tx.try_send(e).unwrap();
        }
        Ok(end.clone())
    });
    r
}

fn build() -> DbtRequest {
    let mut r = DbtRequest::new(DbtCommand::Build);
    r.select.push("orders+".into());
    r
}

async fn finish(f: &Fixture, run: &Run) -> Run {
    f.service
        .wait(&ProjectId::default_project(), run.id.as_str(), Duration::from_secs(10))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_build_forwards_node_events_and_succeeds() {
    let events = vec![
        DbtEvent::NodeStarted {
            unique_id: "model.shop.orders".into(),
            resource_type: DbtResourceType::Model,
            name: "orders".into(),
        },
        DbtEvent::NodeFinished(result("model.shop.orders", NodeStatus::Success)),
    ];
    let end = outcome(
        DbtStatus::Succeeded,
        vec![result("model.shop.orders", NodeStatus::Success)],
    );
    let f = fixture("ok", runner(events, end));
    let p = ProjectId::default_project();
    let run = f.service.submit(&p, build()).await.unwrap();
    assert_eq!(run.input, "build --select orders+");
    let done = finish(&f, &run).await;
    assert_eq!(done.status, RunStatus::Succeeded, "{:?}", done.failure);
    let detail: Value = serde_json::from_str(done.detail.as_deref().unwrap()).unwrap();
    assert_eq!(detail["nodes"][0]["unique_id"], "model.shop.orders");
    assert_eq!(detail["dbt_status"], "succeeded");
    let events = f.service.events(&p, run.id.as_str(), 0).await.unwrap().past;
    let nodes: Vec<(Option<String>, String)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            RunEventKind::Node(n) => Some((n.status.clone(), n.name.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        nodes,
        [(None, "orders".into()), (Some("success".into()), "orders".into())]
    );
    assert_eq!(*f.calls.lock().unwrap(), ["hand_over", "take_back"]);
    let sources = std::fs::read_to_string(f.dir.join("project").join(GENERATED_SOURCES_FILE)).unwrap();
    assert!(
        sources.starts_with(GENERATED_SOURCES_HEADER) && sources.contains("name: \"orders\""),
        "{sources}"
    );
}

#[tokio::test]
async fn a_failing_test_fails_the_run_naming_the_node() {
    let end = outcome(
        DbtStatus::NodesFailed,
        vec![
            result("model.shop.orders", NodeStatus::Success),
            result("test.shop.unique_orders_id.1a", NodeStatus::Fail),
        ],
    );
    let f = fixture("fail", runner(Vec::new(), end));
    let run = f.service.submit(&ProjectId::default_project(), build()).await.unwrap();
    let done = finish(&f, &run).await;
    assert_eq!(done.status, RunStatus::Failed);
    let message = done.failure.unwrap().message;
    assert!(message.contains("test.shop.unique_orders_id.1a (fail)"), "{message}");
    assert!(!message.contains("model.shop.orders"), "{message}");
    assert_eq!(*f.calls.lock().unwrap(), ["hand_over", "take_back"]);
}

#[tokio::test]
async fn a_runtime_error_fails_with_dbts_message_and_takes_the_database_back() {
    let f = fixture(
        "runtime",
        runner(Vec::new(), outcome(DbtStatus::RuntimeError, Vec::new())),
    );
    let run = f.service.submit(&ProjectId::default_project(), build()).await.unwrap();
    let done = finish(&f, &run).await;
    assert_eq!(done.status, RunStatus::Failed);
    assert!(done.failure.unwrap().message.contains("Could not set lock on file"));
    assert_eq!(*f.calls.lock().unwrap(), ["hand_over", "take_back"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_dbt_and_keeps_the_finished_nodes() {
    let mut r = MockTransformationRunner::new();
    r.expect_write_profile()
        .returning(|_, dir| Ok(dir.join("profiles.yml")));
    let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = started.clone();
    r.expect_invoke().returning(move |_, tx, cancel| {
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
        tx.try_send(DbtEvent::NodeFinished(result("seed.shop.raw", NodeStatus::Success)))
            .unwrap();
        // The mock cannot await: block this worker until the token fires, as dbt would run until interrupted.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !cancel.is_cancelled() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(outcome(
            DbtStatus::Cancelled,
            vec![result("seed.shop.raw", NodeStatus::Success)],
        ))
    });
    let f = fixture("cancel", r);
    let p = ProjectId::default_project();
    let run = f.service.submit(&p, build()).await.unwrap();
    // Cancel once dbt runs (its first node finished).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if started.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "dbt never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cancelled = f.service.cancel(&p, run.id.as_str()).await.unwrap();
    assert_eq!(cancelled.status, RunStatus::Cancelled);
    let detail: Value = serde_json::from_str(cancelled.detail.as_deref().unwrap()).unwrap();
    assert_eq!(detail["nodes"][0]["unique_id"], "seed.shop.raw");
    assert_eq!(detail["dbt_status"], "cancelled");
    assert_eq!(*f.calls.lock().unwrap(), ["hand_over", "take_back"]);
}

#[tokio::test]
async fn a_missing_project_or_a_bad_flag_answers_before_anything_runs() {
    let mut f = fixture("missing", MockTransformationRunner::new());
    let p = ProjectId::default_project();
    let mut test = DbtRequest::new(DbtCommand::Test);
    test.full_refresh = true;
    let e = f.service.submit(&p, test).await.unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::Invalid, "{e}");
    f.service.settings.project_dir = f.dir.join("nowhere");
    let e = f.service.submit(&p, build()).await.unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::Invalid);
    assert!(e.to_string().contains("no dbt project at"), "{e}");
    assert!(f.calls.lock().unwrap().is_empty());
}

#[test]
fn a_users_own_sources_file_is_left_alone() {
    let dir = std::env::temp_dir().join(format!("pd-dbt-own-{}", std::process::id()));
    let path = dir.join(GENERATED_SOURCES_FILE);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "version: 2\n").unwrap();
    let handover = DbtHandover {
        database: dir.join("dbt.duckdb"),
        sources_snapshot: dir.join("s.duckdb"),
        relations: Vec::new(),
    };
    write_sources_file(&dir, &handover).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "version: 2\n");
    assert_eq!(profile_name(&dir), "pluto_duck");
    let _ = std::fs::remove_dir_all(&dir);
}
