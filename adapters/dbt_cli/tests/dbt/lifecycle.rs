//! The starter project through every command, green.

use std::collections::{HashMap, HashSet};

use pluto_duck_application::ports::{DbtCommand, DbtEvent, DbtResourceType, DbtStatus, NodeStatus};

use crate::support::{invoke, log_text, result, Project};

#[tokio::test]
async fn build_then_test_then_docs_generate() {
    let p = Project::starter();

    // build: every seed, model and test, green.
    let build = p.invocation(DbtCommand::Build);
    let build_target = build.target_path.clone();
    let (outcome, events) = invoke(build).await;
    let outcome = outcome.unwrap();
    assert_eq!(outcome.status, DbtStatus::Succeeded, "{}", log_text(&events));
    assert_eq!(outcome.exit_code, Some(0));
    assert!(outcome.error.is_none());
    assert!(
        matches!(events.first(), Some(DbtEvent::InvocationStarted { dbt_version, .. }) if dbt_version.starts_with("1.11."))
    );
    assert!(matches!(
        events.last(),
        Some(DbtEvent::InvocationFinished {
            status: DbtStatus::Succeeded,
            ..
        })
    ));
    let Some(DbtEvent::InvocationStarted { invocation_id, .. }) = events.first() else {
        unreachable!()
    };
    assert_eq!(outcome.invocation_id.as_ref(), Some(invocation_id));

    // Each node starts once, then finishes once.
    let mut started = HashMap::new();
    let mut finished = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        match e {
            DbtEvent::NodeStarted { unique_id, .. } => assert!(started.insert(unique_id.clone(), i).is_none()),
            DbtEvent::NodeFinished(r) => {
                assert!(
                    started.get(&r.unique_id).is_some_and(|s| *s < i),
                    "{} finished before it started",
                    r.unique_id
                );
                assert!(finished.insert(r.unique_id.clone(), (i, r.clone())).is_none());
            }
            _ => {}
        }
    }
    assert_eq!(started.len(), 51, "6 seeds, 9 models, 36 tests");
    assert_eq!(finished.len(), 51);

    // The results are run_results.json's, and they agree with the events.
    let artifacts = &outcome.artifacts;
    assert!(artifacts
        .run_results
        .as_ref()
        .is_some_and(|p| p.starts_with(&build_target)));
    assert!(artifacts.log_file.is_some());
    let summary = artifacts.run_summary.as_ref().unwrap();
    assert_eq!((summary.total, summary.succeeded, summary.failed), (51, 51, 0));
    assert_eq!(outcome.node_results.len(), 51);
    for r in &outcome.node_results {
        let (_, event) = &finished[&r.unique_id];
        assert_eq!(
            (&r.status, &r.name, &r.resource_type),
            (&event.status, &event.name, &event.resource_type)
        );
        assert!(matches!(r.status, NodeStatus::Success | NodeStatus::Pass), "{r:?}");
    }
    let seed = result(&outcome, "raw_orders");
    assert_eq!(
        (seed.resource_type.clone(), seed.rows_affected),
        (DbtResourceType::Seed, Some(100))
    );
    assert_eq!(
        result(&outcome, "orders").relation_name.as_deref(),
        Some(r#""dbt"."main"."orders""#)
    );
    let test = result(&outcome, "unique_orders_order_id");
    assert_eq!(test.failures, Some(0));

    // The manifest: nodes with their columns, descriptions, tests and edges; dependencies ran first.
    let m = artifacts.manifest_summary.as_ref().unwrap();
    assert_eq!(m.project_name.as_deref(), Some("pluto_duck_core"));
    let orders = m.node("model.pluto_duck_core.orders").unwrap();
    assert_eq!(orders.materialized.as_deref(), Some("table"));
    assert_eq!(orders.columns.first().map(|c| c.name.as_str()), Some("order_id"));
    let status = orders.columns.iter().find(|c| c.name == "status").unwrap();
    assert!(
        status.description.contains("Where an order is in its life"),
        "the docs block is rendered"
    );
    assert!(orders
        .tests
        .iter()
        .any(|t| t.test_name == "unique" && t.column_name.as_deref() == Some("order_id")));
    assert!(orders
        .tests
        .iter()
        .any(|t| t.test_name == "assert_orders_are_paid_in_full"));
    assert!(orders
        .depends_on
        .contains(&"model.pluto_duck_core.order_items".to_owned()));
    assert_eq!(
        m.node("model.pluto_duck_core.order_items")
            .unwrap()
            .materialized
            .as_deref(),
        Some("incremental")
    );
    let mut checked = 0;
    for e in &m.edges {
        let from_type = DbtResourceType::of_unique_id(&e.from);
        let to_type = DbtResourceType::of_unique_id(&e.to);
        if from_type != DbtResourceType::Test && to_type != DbtResourceType::Test {
            assert!(
                finished[&e.from].0 < started[&e.to],
                "{} ran before its parent {}",
                e.to,
                e.from
            );
            checked += 1;
        }
    }
    assert!(checked >= 12, "{checked} model edges");

    // test: the tests again, over what build left, reusing its parse.
    let mut test = p.invocation(DbtCommand::Test);
    test.reuse_parse_from = Some(build_target.clone());
    let (outcome, events) = invoke(test).await;
    let outcome = outcome.unwrap();
    assert_eq!(outcome.status, DbtStatus::Succeeded, "{}", log_text(&events));
    assert_eq!(outcome.node_results.len(), 36, "35 schema tests and one singular test");
    assert!(outcome.node_results.iter().all(|r| r.status == NodeStatus::Pass));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, DbtEvent::Log { event, .. } if event == "UnableToPartialParse")),
        "the parse cache was reused: {}",
        log_text(&events)
    );

    // docs generate: the catalog of what was built, columns in table order.
    let (outcome, events) = invoke(p.invocation(DbtCommand::DocsGenerate)).await;
    let outcome = outcome.unwrap();
    assert_eq!(outcome.status, DbtStatus::Succeeded, "{}", log_text(&events));
    assert!(outcome.artifacts.catalog.is_some());
    let catalog = outcome.artifacts.catalog_summary.as_ref().unwrap();
    assert!(catalog.errors.is_empty(), "{:?}", catalog.errors);
    let orders = catalog
        .entries
        .iter()
        .find(|e| e.unique_id == "model.pluto_duck_core.orders")
        .unwrap();
    assert_eq!(
        (orders.schema.as_str(), orders.name.as_str(), orders.kind.as_str()),
        ("main", "orders", "BASE TABLE")
    );
    assert_eq!(orders.columns[0].name, "order_id");
    assert_eq!(
        orders
            .columns
            .iter()
            .find(|c| c.name == "order_total")
            .unwrap()
            .data_type,
        "DECIMAL(38,2)"
    );
    let stg = catalog.entries.iter().find(|e| e.name == "stg_orders").unwrap();
    assert_eq!(stg.kind, "VIEW");
    assert_eq!(catalog.entries.len(), 15, "6 seeds and 9 models");
}

#[tokio::test]
async fn seed_run_selected_ls_and_compile() {
    let p = Project::starter();

    let (outcome, events) = invoke(p.invocation(DbtCommand::Seed)).await;
    let outcome = outcome.unwrap();
    assert_eq!(outcome.status, DbtStatus::Succeeded, "{}", log_text(&events));
    let rows: HashMap<&str, Option<u64>> = outcome
        .node_results
        .iter()
        .map(|r| (r.name.as_str(), r.rows_affected))
        .collect();
    assert_eq!(rows.len(), 6);
    assert_eq!(rows["raw_customers"], Some(40));
    assert_eq!(rows["raw_order_items"], Some(225));
    assert_eq!(p.query_i64("select count(*) from raw_payments"), 116);

    let inv = p
        .invocation(DbtCommand::Run)
        .select("stg_orders")
        .select("stg_customers");
    let (outcome, events) = invoke(inv).await;
    let outcome = outcome.unwrap();
    assert_eq!(outcome.status, DbtStatus::Succeeded, "{}", log_text(&events));
    let names: HashSet<&str> = outcome.node_results.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, HashSet::from(["stg_orders", "stg_customers"]));
    assert_eq!(
        p.query_i64("select count(*) from stg_orders where status = 'completed'"),
        59
    );

    let inv = p
        .invocation(DbtCommand::List)
        .select("path:models/marts")
        .exclude("customers");
    let (outcome, events) = invoke(inv).await;
    let outcome = outcome.unwrap();
    assert_eq!(outcome.status, DbtStatus::Succeeded, "{}", log_text(&events));
    let mut models: Vec<&str> = outcome
        .listed
        .iter()
        .map(String::as_str)
        .filter(|id| id.starts_with("model."))
        .collect();
    models.sort();
    assert_eq!(
        models,
        ["model.pluto_duck_core.order_items", "model.pluto_duck_core.orders"]
    );
    assert!(
        outcome
            .listed
            .contains(&"test.pluto_duck_core.assert_orders_are_paid_in_full".to_owned()),
        "with their tests"
    );
    assert!(outcome.node_results.is_empty());
    assert!(outcome.artifacts.manifest_summary.is_some(), "ls writes the manifest");

    let (outcome, events) = invoke(p.invocation(DbtCommand::Compile).select("orders")).await;
    let outcome = outcome.unwrap();
    assert_eq!(outcome.status, DbtStatus::Succeeded, "{}", log_text(&events));
    let compiled = outcome
        .compiled
        .iter()
        .find(|c| c.unique_id == "model.pluto_duck_core.orders")
        .unwrap_or_else(|| panic!("{:?}", outcome.compiled));
    assert!(
        compiled.sql.contains(r#""dbt"."main"."stg_orders""#),
        "{}",
        compiled.sql
    );
}
