//! What goes wrong: in the project's SQL, in its tests, in its configuration, around it.

use pluto_duck_application::ports::{
    DbtCommand, DbtInvocation, DbtStatus, NodeStatus, TransformError, TransformationRunner,
};
use pluto_duck_application::ErrorKind;
use pluto_duck_dbt_cli::{DbtCli, DbtCliConfig};

use crate::support::{invoke, invoke_with, log_text, result, runner, Project};

#[tokio::test]
async fn a_failing_model_fails_its_node_and_skips_its_dependants() {
    let p = Project::starter();
    p.write(
        "models/staging/stg_broken.sql",
        "select * from table_that_does_not_exist\n",
    );
    p.write(
        "models/marts/broken_child.sql",
        "select count(*) as n from {{ ref('stg_broken') }}\n",
    );
    p.write("models/marts/fine.sql", "select 1 as one\n");
    let inv = p.invocation(DbtCommand::Build).select("stg_broken+").select("fine");
    let (outcome, events) = invoke(inv).await;
    let outcome = outcome.unwrap();
    assert_eq!(outcome.status, DbtStatus::NodesFailed, "{}", log_text(&events));
    assert_eq!(outcome.exit_code, Some(1));
    let broken = result(&outcome, "stg_broken");
    assert_eq!(broken.status, NodeStatus::Error);
    let message = broken.message.as_deref().unwrap();
    assert!(message.contains("table_that_does_not_exist"), "{message}");
    assert_eq!(result(&outcome, "broken_child").status, NodeStatus::Skipped);
    assert_eq!(result(&outcome, "fine").status, NodeStatus::Success);
    assert_eq!(outcome.artifacts.run_summary.as_ref().unwrap().failed, 1);
}

#[tokio::test]
async fn a_failing_test_fails_naming_the_test() {
    let p = Project::starter();
    p.write(
        "tests/assert_no_orders.sql",
        "-- Fails on purpose: every order is a failing row.\nselect * from {{ ref('raw_orders') }}\n",
    );
    let (outcome, events) = invoke(p.invocation(DbtCommand::Build).select("raw_orders")).await;
    let outcome = outcome.unwrap();
    assert_eq!(outcome.status, DbtStatus::NodesFailed, "{}", log_text(&events));
    assert_eq!(result(&outcome, "raw_orders").status, NodeStatus::Success);
    let test = result(&outcome, "assert_no_orders");
    assert_eq!(test.unique_id, "test.pluto_duck_core.assert_no_orders");
    assert_eq!((test.status.clone(), test.failures), (NodeStatus::Fail, Some(100)));
    assert!(test.message.as_deref().unwrap().contains("Got 100 results"), "{test:?}");
}

#[tokio::test]
async fn a_missing_project_is_invalid() {
    let p = Project::starter();
    let mut inv = p.invocation(DbtCommand::Build);
    inv.project_dir = p.dir.path().join("no-such-project");
    let (outcome, _) = invoke(inv).await;
    let e = outcome.unwrap_err();
    assert!(matches!(e, TransformError::ProjectNotFound(_)), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(e.to_string().contains("no-such-project"), "{e}");
}

#[tokio::test]
async fn a_broken_dbt_project_yml_is_invalid_with_dbts_message() {
    let p = Project::starter();
    p.write(
        "dbt_project.yml",
        "name: pluto_duck_core\n  version: [\nprofile: pluto_duck\n",
    );
    let (outcome, events) = invoke(p.invocation(DbtCommand::Build)).await;
    let e = outcome.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(
        matches!(&e, TransformError::ProjectInvalid(m) if m.contains("Syntax error near line 2")),
        "{e:?}"
    );
    assert!(!events.is_empty(), "dbt's own events still stream");
}

#[tokio::test]
async fn a_missing_executable_is_unavailable_and_names_the_installer() {
    let p = Project::starter();
    let missing = DbtCli::new(DbtCliConfig::new(p.dir.path().join("venv/bin/dbt")));
    let (outcome, _) = invoke_with(&missing, p.invocation(DbtCommand::Build), Default::default()).await;
    let e = outcome.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.to_string().contains("scripts/setup.sh"), "{e}");
    let e = missing.version().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);

    let v = runner().version().await.unwrap();
    assert!(v.core.starts_with("1.11."), "{v:?}");
    assert!(v.duckdb.is_some_and(|d| d.starts_with("1.11.")));
}

#[tokio::test]
async fn a_database_file_held_by_another_process_is_a_runtime_error() {
    let p = Project::starter();
    let holder = duckdb::Connection::open(&p.database).unwrap();
    holder.execute_batch("create table held (x integer)").unwrap();
    let (outcome, events) = invoke(p.invocation(DbtCommand::Seed).select("raw_stores")).await;
    let outcome = outcome.unwrap();
    assert_eq!(outcome.status, DbtStatus::RuntimeError, "{}", log_text(&events));
    assert_eq!(outcome.exit_code, Some(2));
    let error = outcome.error.as_deref().unwrap();
    assert!(error.contains("Could not set lock on file"), "{error}");
    drop(holder);
}

#[tokio::test]
async fn invocations_dbt_would_refuse_are_refused_before_it_starts() {
    let p = Project::starter();
    let inv: DbtInvocation = p.invocation(DbtCommand::Test).full_refresh(true);
    let (outcome, events) = invoke(inv).await;
    assert!(
        matches!(outcome, Err(TransformError::InvalidInvocation(_))),
        "{outcome:?}"
    );
    assert!(events.is_empty());
}
