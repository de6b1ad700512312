//! Our events against the official OpenLineage JSON schemas, and what `FileLineage` writes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use common::{sample_events, Schemas, ALL_FACETS};
use pluto_duck_application::ports::{LineageEmitter, LineageEvent, LineageJob, RunState};
use pluto_duck_openlineage::{event_json, FileLineage, NoLineage, DEFAULT_PRODUCER};
use serde_json::{json, Value};

#[test]
fn every_event_kind_and_facet_matches_the_official_schemas() {
    let schemas = Schemas::load();
    let events = sample_events();
    let states: BTreeSet<&str> = events.iter().map(|e| e.state.as_str()).collect();
    assert_eq!(
        states,
        ["ABORT", "COMPLETE", "FAIL", "RUNNING", "START"].into(),
        "every run state is covered"
    );
    let mut facets = BTreeSet::new();
    for event in &events {
        let v = event_json(event, DEFAULT_PRODUCER);
        let seen = schemas
            .validate_event(&v)
            .unwrap_or_else(|e| panic!("{} event invalid:\n{e}\n{v:#}", event.state.as_str()));
        facets.extend(seen);
    }
    let expected: BTreeSet<String> = ALL_FACETS.iter().map(|f| f.to_string()).collect();
    assert_eq!(facets, expected, "every facet we produce is validated");
}

#[test]
fn the_validator_rejects_what_the_spec_does() {
    // A guard on the guard: broken events must fail, or the test above proves nothing.
    let schemas = Schemas::load();
    let good = event_json(&sample_events()[3], DEFAULT_PRODUCER);
    assert!(schemas.validate_event(&good).is_ok());
    let mut broken: Vec<(&str, Value)> = Vec::new();
    let mut v = good.clone();
    v["eventType"] = json!("DONE");
    broken.push(("unknown event type", v));
    let mut v = good.clone();
    v["run"].as_object_mut().unwrap().remove("runId");
    broken.push(("no run id", v));
    let mut v = good.clone();
    v["run"]["runId"] = json!("not-a-uuid");
    broken.push(("run id not a uuid", v));
    let mut v = good.clone();
    v["eventTime"] = json!("yesterday");
    broken.push(("event time not a date-time", v));
    let mut v = good.clone();
    v["run"]["facets"]["errorMessage"]
        .as_object_mut()
        .unwrap()
        .remove("programmingLanguage");
    broken.push(("errorMessage facet without its language (a facet-file rule)", v));
    let mut v = good.clone();
    v["job"]["facets"]["jobType"]["processingType"] = json!(42);
    broken.push(("jobType with a number", v));
    let mut v = good;
    v["run"]["facets"]["errorMessage"]["_schemaURL"] =
        json!("https://openlineage.io/spec/facets/9-9-9/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet");
    broken.push(("a facet version that is not in the files", v));
    for (what, event) in broken {
        assert!(
            schemas.validate_event(&event).is_err(),
            "{what}: should have been rejected"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_lineage_writes_whole_valid_lines_in_run_order() {
    let schemas = Schemas::load();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lineage").join("events.jsonl");
    // Two emitters on one file (say two processes), several runs each, emitting at once.
    let emitters = [
        Arc::new(FileLineage::open(&path, DEFAULT_PRODUCER).unwrap()),
        Arc::new(FileLineage::open(&path, DEFAULT_PRODUCER).unwrap()),
    ];
    let template = sample_events().remove(0);
    let mut tasks = Vec::new();
    for run in 0..8 {
        let emitter = Arc::clone(&emitters[run % 2]);
        let template = template.clone();
        tasks.push(tokio::spawn(async move {
            let run_id = uuid::Uuid::now_v7();
            let job = LineageJob::new("pluto-duck", format!("job-{run}"));
            let mut start = template.clone();
            start.run_id = run_id;
            start.job = job.clone();
            emitter.emit(start).await;
            for _ in 0..20 {
                emitter.emit(LineageEvent::running(run_id, job.clone())).await;
            }
            emitter.emit(LineageEvent::complete(run_id, job)).await;
            run_id
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for e in &emitters {
        e.flush().await;
        let stats = e.stats();
        assert_eq!((stats.delivered, stats.dropped, stats.pending), (4 * 22, 0, 0));
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n'));
    let mut states: HashMap<String, Vec<String>> = HashMap::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("a torn line ({e}): {line}"));
        schemas.validate_event(&v).unwrap();
        states
            .entry(v["run"]["runId"].as_str().unwrap().to_owned())
            .or_default()
            .push(v["eventType"].as_str().unwrap().to_owned());
    }
    assert_eq!(states.len(), 8);
    for sequence in states.values() {
        assert_eq!(sequence.len(), 22);
        assert_eq!(sequence.first().map(String::as_str), Some("START"));
        assert_eq!(sequence.last().map(String::as_str), Some("COMPLETE"));
        assert!(
            sequence[1..21].iter().all(|s| s == "RUNNING"),
            "a run's events stay in order"
        );
    }

    // Appends to what is there.
    let again = FileLineage::open(&path, "urn:other-producer").unwrap();
    again
        .emit(LineageEvent::abort(uuid::Uuid::now_v7(), LineageJob::new("p", "late")))
        .await;
    again.flush().await;
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 8 * 22 + 1);
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["producer"], "urn:other-producer");
    assert_eq!(last["eventType"], RunState::Abort.as_str());
}

#[tokio::test]
async fn no_lineage_takes_everything_and_keeps_nothing() {
    let off = NoLineage;
    for event in sample_events() {
        off.emit(event).await;
    }
    off.flush().await;
    assert_eq!(off.stats(), Default::default());
}

#[test]
fn a_missing_lineage_file_folder_that_cannot_be_made_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let err = FileLineage::open(blocker.join("events.jsonl"), DEFAULT_PRODUCER).unwrap_err();
    assert!(err.to_string().contains("cannot open the lineage file"), "{err}");
}
