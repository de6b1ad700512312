//! One contract for `MetadataStore`, run against every adapter.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use pluto_duck_application::ports::{MetadataStore, RepoError, RunFilter};
use pluto_duck_domain::{
    AnalysisState, Board, BoardItem, CachedTable, Column, FileFormat, FileLocation, Identifier, IngestMode, Ingestion,
    ItemKind, ItemSource, Project, ProjectId, Run, RunFailure, RunId, RunKind, RunStatus, S3Settings, Snapshot, Source,
    SourceConnection, SourceKind, TargetTable,
};
use pluto_duck_sqlx_metadata::{PgMetadataStore, SqliteMetadataStore};

use crate::helpers::required_env;

fn project(id: &str, secs: i64) -> Project {
    Project {
        id: ProjectId::parse(id).unwrap(),
        name: format!("Project {id}"),
        created_at: Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap(),
    }
}

async fn contract(store: Arc<dyn MetadataStore>, prefix: &str) {
    store.ping().await.unwrap();
    let a = project(&format!("{prefix}_a"), 1);
    let b = project(&format!("{prefix}_b"), 2);

    // ensure_project is idempotent and keeps the first version.
    let stored = store.ensure_project(&a).await.unwrap();
    assert_eq!(stored, a);
    let renamed = Project {
        name: "other".into(),
        ..a.clone()
    };
    assert_eq!(store.ensure_project(&renamed).await.unwrap(), a);

    store.create_project(&b).await.unwrap();
    let dup = store.create_project(&b).await.unwrap_err();
    assert!(matches!(dup, RepoError::Conflict { .. }), "{dup:?}");

    assert_eq!(store.get_project(&b.id).await.unwrap(), Some(b.clone()));
    assert_eq!(
        store
            .get_project(&ProjectId::parse(format!("{prefix}_zz")).unwrap())
            .await
            .unwrap(),
        None
    );
    let listed: Vec<Project> = store
        .list_projects()
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.id.as_str().starts_with(prefix))
        .collect();
    assert_eq!(listed, vec![a.clone(), b.clone()], "ordered by creation time");

    // Renaming; timestamps keep microseconds in both stores.
    assert!(store.rename_project(&b.id, "Bee").await.unwrap());
    assert!(!store
        .rename_project(&ProjectId::parse(format!("{prefix}_zz")).unwrap(), "x")
        .await
        .unwrap());
    let b = Project {
        name: "Bee".into(),
        ..b
    };
    assert_eq!(store.get_project(&b.id).await.unwrap(), Some(b.clone()));
    let c = Project {
        created_at: Utc.timestamp_opt(1_700_000_003, 123_456_000).unwrap(),
        ..project(&format!("{prefix}_c"), 0)
    };
    store.create_project(&c).await.unwrap();
    assert_eq!(store.get_project(&c.id).await.unwrap(), Some(c.clone()));

    runs_contract(store.as_ref(), &a.id, &b.id, prefix).await;
    run_filters_contract(store.as_ref(), &c.id, prefix).await;
    sources_contract(store.as_ref(), &a.id, &b.id).await;
    ingest_and_analysis_contract(store.as_ref(), &a.id, &b.id).await;
    caches_contract(store.as_ref(), &a.id, &b.id).await;
    boards_contract(store.as_ref(), &a.id, &b.id).await;
    conversations_contract(store.as_ref(), &a.id, &b.id).await;
    jobs_contract(store.as_ref(), &a.id, &b.id).await;

    let key = format!("{prefix}.theme");
    assert_eq!(store.get_setting(&key).await.unwrap(), None);
    store.put_setting(&key, "dark").await.unwrap();
    store.put_setting(&key, "light").await.unwrap();
    assert_eq!(store.get_setting(&key).await.unwrap().as_deref(), Some("light"));

    lease_contract(&store, prefix).await;
    clear_contract(store.as_ref(), &a, &b, &c).await;
}

/// Work that runs once across servers: one holder at a time, renewed by it, taken over once it lapses.
async fn lease_contract(store: &Arc<dyn MetadataStore>, prefix: &str) {
    let name = format!("{prefix}.refresh");
    assert!(store.try_lease(&name, "s1", 60).await.unwrap());
    assert!(store.try_lease(&name, "s1", 60).await.unwrap(), "the holder renews it");
    assert!(!store.try_lease(&name, "s2", 60).await.unwrap(), "held by s1");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(store.try_lease(&name, "s2", 0).await.unwrap(), "lapsed: taken over");
    assert!(!store.try_lease(&name, "s1", 60).await.unwrap(), "s2 holds it now");
    // Eight servers racing for a fresh lease: exactly one gets it.
    let race = format!("{prefix}.race");
    let tries = (0..8).map(|i| {
        let (store, race) = (store.clone(), race.clone());
        tokio::spawn(async move { store.try_lease(&race, &format!("h{i}"), 60).await.unwrap() })
    });
    let won = futures::future::join_all(tries)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(won, 1);
}

async fn runs_contract(store: &dyn MetadataStore, project: &ProjectId, other: &ProjectId, prefix: &str) {
    let t0 = Utc.timestamp_opt(1_700_000_100, 0).unwrap();
    let mut runs = Vec::new();
    for i in 0..3 {
        let id = RunId::parse(format!("{prefix}-run-{i}")).unwrap();
        let mut run = Run::new(
            id,
            project.clone(),
            RunKind::Query,
            format!("SELECT {i}"),
            t0 + chrono::Duration::seconds(i),
        );
        run.actor = "cli".into();
        store.insert_run(&run).await.unwrap();
        runs.push(run);
    }
    // A full life: running, then succeeded with counts and columns; another fails with a position.
    let mut r0 = runs[0].clone();
    r0.start(t0 + chrono::Duration::milliseconds(1500)).unwrap();
    store.update_run(&r0).await.unwrap();
    r0.rows = 42;
    r0.bytes = 4096;
    r0.truncated = true;
    r0.detail = Some(r#"{"rejected_rows":1}"#.into());
    r0.columns = vec![Column {
        name: "a".into(),
        data_type: "DECIMAL(18,3)".into(),
    }];
    r0.succeed(t0 + chrono::Duration::milliseconds(2500)).unwrap();
    store.update_run(&r0).await.unwrap();
    let mut r1 = runs[1].clone();
    r1.start(t0).unwrap();
    r1.fail(
        RunFailure {
            message: "Binder Error: x".into(),
            position: Some(7),
        },
        t0,
    )
    .unwrap();
    store.update_run(&r1).await.unwrap();

    assert_eq!(store.get_run(project, &r0.id).await.unwrap(), Some(r0.clone()));
    assert_eq!(store.get_run(project, &r1.id).await.unwrap(), Some(r1.clone()));
    assert_eq!(
        store.get_run(other, &r0.id).await.unwrap(),
        None,
        "runs are scoped to their project"
    );

    let filter = |status, limit, offset| RunFilter {
        project: project.clone(),
        kind: Some(RunKind::Query),
        status,
        input: None,
        limit,
        offset,
    };
    let all = store.list_runs(&filter(None, 10, 0)).await.unwrap();
    let ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![runs[2].id.as_str(), runs[1].id.as_str(), runs[0].id.as_str()],
        "newest first"
    );
    let failed = store.list_runs(&filter(Some(RunStatus::Failed), 10, 0)).await.unwrap();
    assert_eq!(failed, vec![r1.clone()]);
    let page = store.list_runs(&filter(None, 1, 1)).await.unwrap();
    assert_eq!(page[0].id, r1.id);

    // Start-up recovery: what a crash left queued or running is failed.
    let recovered = store.fail_unfinished_runs("server restarted").await.unwrap();
    assert!(recovered >= 1);
    let r2 = store.get_run(project, &runs[2].id).await.unwrap().unwrap();
    assert_eq!(r2.status, RunStatus::Failed);
    assert_eq!(r2.failure.unwrap().message, "server restarted");
    assert!(r2.finished_at.is_some());
}

async fn sources_contract(store: &dyn MetadataStore, project: &ProjectId, other: &ProjectId) {
    let server = Source {
        name: Identifier::parse("sales").unwrap(),
        project: project.clone(),
        kind: SourceKind::Postgres,
        description: "orders".into(),
        connection: SourceConnection::Server {
            host: "db.example".into(),
            port: 5433,
            database: "shop".into(),
            user: "reader".into(),
            password_secret: Some("source.x.sales.password".into()),
        },
        read_only: true,
        created_at: Utc.timestamp_opt(1_700_000_200, 0).unwrap(),
    };
    let file = Source {
        name: Identifier::parse("local").unwrap(),
        kind: SourceKind::Sqlite,
        connection: SourceConnection::File {
            path: "/data/x.sqlite".into(),
        },
        read_only: false,
        ..server.clone()
    };
    store.insert_source(&server).await.unwrap();
    store.insert_source(&file).await.unwrap();
    let dup = store.insert_source(&server).await.unwrap_err();
    assert!(matches!(dup, RepoError::Conflict { .. }), "{dup:?}");
    // The same name in another project is another source.
    store
        .insert_source(&Source {
            project: other.clone(),
            ..server.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        store.get_source(project, &server.name).await.unwrap(),
        Some(server.clone())
    );
    assert_eq!(
        store.list_sources(Some(project.clone())).await.unwrap(),
        vec![file.clone(), server.clone()]
    );
    assert!(store.list_sources(None).await.unwrap().len() >= 3);
    assert!(store
        .update_source_description(project, &server.name, "new")
        .await
        .unwrap());
    assert_eq!(
        store
            .get_source(project, &server.name)
            .await
            .unwrap()
            .unwrap()
            .description,
        "new"
    );
    assert!(store.delete_source(project, &server.name).await.unwrap());
    assert!(!store.delete_source(project, &server.name).await.unwrap());
    assert!(store.get_source(other, &server.name).await.unwrap().is_some());
}

async fn ingest_and_analysis_contract(store: &dyn MetadataStore, project: &ProjectId, other: &ProjectId) {
    // A located source keeps every option, the S3 secret only by name.
    let s3 = Source {
        name: Identifier::parse("lake").unwrap(),
        project: project.clone(),
        kind: SourceKind::S3,
        description: String::new(),
        connection: SourceConnection::Located(FileLocation {
            lenient: false,
            uri: "s3://bucket/orders/*.csv".into(),
            format: Some(FileFormat::Csv),
            delimiter: Some(";".into()),
            header: Some(true),
            s3: Some(S3Settings {
                region: Some("eu-west-1".into()),
                endpoint: Some("127.0.0.1:9000".into()),
                path_style: true,
                use_ssl: false,
                key_id: Some("AKIA".into()),
                secret_key_secret: Some("source.x.lake.password".into()),
            }),
        }),
        read_only: true,
        created_at: Utc.timestamp_opt(1_700_000_300, 0).unwrap(),
    };
    store.insert_source(&s3).await.unwrap();
    assert_eq!(store.get_source(project, &s3.name).await.unwrap(), Some(s3.clone()));

    let target = TargetTable {
        schema: Identifier::parse("main").unwrap(),
        table: Identifier::parse("orders").unwrap(),
    };
    let mut entry = Ingestion {
        project: project.clone(),
        target: target.clone(),
        source_kind: SourceKind::Postgres,
        source: "postgres://u@h:5432/db".into(),
        named_source: false,
        input: "SELECT * FROM t WHERE x > 1".into(),
        mode: IngestMode::Merge,
        keys: vec!["id".into(), "day".into()],
        created_at: Utc.timestamp_opt(1_700_000_400, 0).unwrap(),
        updated_at: Utc.timestamp_opt(1_700_000_400, 0).unwrap(),
        last_run: Some(RunId::parse("01900000-0000-7000-8000-000000000001").unwrap()),
        last_status: Some(RunStatus::Queued),
        rows: 0,
    };
    store.put_ingestion(&entry).await.unwrap();
    entry.last_status = Some(RunStatus::Succeeded);
    entry.rows = 42;
    store.put_ingestion(&entry).await.unwrap();
    assert_eq!(
        store.get_ingestion(project, &target).await.unwrap(),
        Some(entry.clone())
    );
    assert_eq!(store.list_ingestions(project).await.unwrap(), vec![entry.clone()]);
    assert!(store.list_ingestions(other).await.unwrap().is_empty());
    assert!(store.delete_ingestion(project, &target).await.unwrap());
    assert!(!store.delete_ingestion(project, &target).await.unwrap());

    let mut state = AnalysisState {
        params_hash: Some("p1".into()),
        id: Identifier::parse("revenue").unwrap(),
        project: project.clone(),
        definition_hash: "abc".into(),
        last_run: None,
        last_status: RunStatus::Failed,
        finished_at: Some(Utc.timestamp_opt(1_700_000_500, 0).unwrap()),
        rows: 0,
        error: Some("boom".into()),
    };
    store.put_analysis_state(&state).await.unwrap();
    state.last_status = RunStatus::Succeeded;
    state.rows = 7;
    state.error = None;
    store.put_analysis_state(&state).await.unwrap();
    assert_eq!(store.list_analysis_states(project).await.unwrap(), vec![state]);
    assert!(store.list_analysis_states(other).await.unwrap().is_empty());
}

async fn boards_contract(store: &dyn MetadataStore, project: &ProjectId, other: &ProjectId) {
    let t = Utc.timestamp_opt(1_700_000_600, 0).unwrap();
    let board = |id: &str, position| Board {
        id: id.into(),
        project: project.clone(),
        name: format!("Board {id}"),
        description: String::new(),
        position,
        document: "{\"tabs\":[]}".into(),
        created_at: t,
        updated_at: t,
    };
    store.put_board(&board("b2", 1)).await.unwrap();
    store.put_board(&board("b1", 0)).await.unwrap();
    let ids: Vec<_> = store
        .list_boards(project)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(ids, ["b1", "b2"]);
    assert!(store.list_boards(other).await.unwrap().is_empty());
    let item = BoardItem {
        id: "i1".into(),
        board: "b1".into(),
        project: project.clone(),
        kind: ItemKind::Chart,
        title: "Sales".into(),
        x: 1,
        y: 2,
        w: 3,
        h: 4,
        config: "{\"type\":\"bar\"}".into(),
        source: Some(ItemSource::Analysis {
            id: Identifier::parse("revenue").unwrap(),
            params: "{\"since\":\"2024-01-01\"}".into(),
        }),
        refresh_secs: Some(60),
        snapshot: Some(Snapshot {
            ran_at: t,
            data: "{\"rows\":[]}".into(),
        }),
        last_error: Some("boom".into()),
        created_at: t,
        updated_at: t,
    };
    store.put_item(&item).await.unwrap();
    store
        .put_item(&BoardItem {
            id: "i2".into(),
            board: "b2".into(),
            source: Some(ItemSource::Sql("SELECT 1".into())),
            snapshot: None,
            ..item.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .list_items(Some(project.clone()), Some("b1".into()))
            .await
            .unwrap(),
        vec![item.clone()]
    );
    assert!(store.list_items(None, None).await.unwrap().len() >= 2);
    assert!(store.delete_board(project, "b1").await.unwrap());
    assert!(store
        .list_items(Some(project.clone()), Some("b1".into()))
        .await
        .unwrap()
        .is_empty());
    assert!(store.delete_item(project, "i2").await.unwrap());
    assert!(!store.delete_item(project, "i2").await.unwrap());
    assert!(!store.delete_board(project, "b1").await.unwrap());

    // A board's items by row, then column; an item moved to another board leaves the first.
    let at = |id: &str, x, y| BoardItem {
        id: id.into(),
        board: "b2".into(),
        x,
        y,
        ..item.clone()
    };
    for i in [at("i3", 5, 1), at("i4", 0, 1), at("i5", 9, 0)] {
        store.put_item(&i).await.unwrap();
    }
    let on = |board: &str| {
        let board = board.to_owned();
        async move {
            store
                .list_items(Some(project.clone()), Some(board))
                .await
                .unwrap()
                .into_iter()
                .map(|i| i.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(on("b2").await, ["i5", "i4", "i3"]);
    store.put_board(&board("b3", 2)).await.unwrap();
    store
        .put_item(&BoardItem {
            board: "b3".into(),
            ..at("i3", 5, 1)
        })
        .await
        .unwrap();
    assert_eq!(on("b2").await, ["i5", "i4"]);
    assert_eq!(on("b3").await, ["i3"]);
    assert_eq!(store.list_items(Some(project.clone()), None).await.unwrap().len(), 3);
    assert!(store.list_items(Some(other.clone()), None).await.unwrap().is_empty());
}

/// Filters, microsecond times and unfinished-run recovery, in a project of their own.
async fn run_filters_contract(store: &dyn MetadataStore, project: &ProjectId, prefix: &str) {
    let t0 = Utc.timestamp_opt(1_700_000_150, 250_001_000).unwrap();
    let mut ingest = Run::new(
        RunId::parse(format!("{prefix}-ingest-0")).unwrap(),
        project.clone(),
        RunKind::Ingest,
        "main.orders".into(),
        t0,
    );
    store.insert_run(&ingest).await.unwrap();
    ingest.start(t0 + chrono::Duration::microseconds(1)).unwrap();
    ingest.succeed(t0 + chrono::Duration::microseconds(2)).unwrap();
    store.update_run(&ingest).await.unwrap();
    let other_input = Run::new(
        RunId::parse(format!("{prefix}-ingest-1")).unwrap(),
        project.clone(),
        RunKind::Ingest,
        "main.customers".into(),
        t0 + chrono::Duration::seconds(1),
    );
    store.insert_run(&other_input).await.unwrap();
    let query = Run::new(
        RunId::parse(format!("{prefix}-query-0")).unwrap(),
        project.clone(),
        RunKind::Query,
        "main.orders".into(),
        t0 + chrono::Duration::seconds(2),
    );
    store.insert_run(&query).await.unwrap();

    assert_eq!(store.get_run(project, &ingest.id).await.unwrap(), Some(ingest.clone()));
    let list = |kind, status, input: Option<&str>| RunFilter {
        project: project.clone(),
        kind,
        status,
        input: input.map(str::to_owned),
        limit: 10,
        offset: 0,
    };
    let ids = |runs: Vec<Run>| runs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_runs(&list(None, None, None)).await.unwrap()),
        vec![query.id.clone(), other_input.id.clone(), ingest.id.clone()],
        "every kind, newest first"
    );
    assert_eq!(
        ids(store
            .list_runs(&list(Some(RunKind::Ingest), None, Some("main.orders")))
            .await
            .unwrap()),
        vec![ingest.id.clone()]
    );
    assert_eq!(
        ids(store
            .list_runs(&list(None, Some(RunStatus::Queued), Some("main.orders")))
            .await
            .unwrap()),
        vec![query.id.clone()]
    );
    assert!(store
        .list_runs(&list(Some(RunKind::Dbt), None, None))
        .await
        .unwrap()
        .is_empty());
}

async fn caches_contract(store: &dyn MetadataStore, project: &ProjectId, other: &ProjectId) {
    let t = Utc.timestamp_opt(1_700_000_700, 0).unwrap();
    let mut orders = CachedTable {
        name: Identifier::parse("orders_cache").unwrap(),
        project: project.clone(),
        source: Identifier::parse("sales").unwrap(),
        remote_schema: "public".into(),
        remote_table: "orders".into(),
        filter: Some("day > '2024-01-01'".into()),
        cursor_column: Some("id".into()),
        ttl_secs: Some(3600),
        rows: 10,
        refreshed_at: t,
        created_at: t,
    };
    let customers = CachedTable {
        name: Identifier::parse("customers_cache").unwrap(),
        remote_table: "customers".into(),
        filter: None,
        cursor_column: None,
        ttl_secs: None,
        ..orders.clone()
    };
    assert_eq!(store.get_cache(project, &orders.name).await.unwrap(), None);
    store.put_cache(&orders).await.unwrap();
    store.put_cache(&customers).await.unwrap();
    // A refresh replaces the record, keeping its creation time.
    orders.rows = 25;
    orders.refreshed_at = t + chrono::Duration::milliseconds(1500);
    store
        .put_cache(&CachedTable {
            created_at: t + chrono::Duration::seconds(99),
            ..orders.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        store.get_cache(project, &orders.name).await.unwrap(),
        Some(orders.clone())
    );
    assert_eq!(
        store.list_caches(project).await.unwrap(),
        vec![customers.clone(), orders.clone()],
        "ordered by name"
    );
    assert!(store.list_caches(other).await.unwrap().is_empty());
    assert!(store.delete_cache(project, &customers.name).await.unwrap());
    assert!(!store.delete_cache(project, &customers.name).await.unwrap());
    assert_eq!(store.list_caches(project).await.unwrap(), vec![orders]);
}

/// A reset keeps the project and drops what it owns; a delete drops the project too. Other projects and
/// global settings stay.
async fn conversations_contract(store: &dyn MetadataStore, project: &ProjectId, other: &ProjectId) {
    use pluto_duck_domain::{
        Conversation, ConversationId, ConversationMessage, MessageRole, RunEvent, RunEventKind, RunId,
    };
    let at = |s: i64| Utc.timestamp_opt(1_700_000_000 + s, 250_000_000).unwrap();
    let id = ConversationId::parse("0190f0d5-aaaa-7000-8000-000000000001").unwrap();
    let c = Conversation {
        id: id.clone(),
        project: project.clone(),
        title: "Orders by month".into(),
        privacy: true,
        created_at: at(1),
        updated_at: at(2),
    };
    store.put_conversation(&c).await.unwrap();
    let newer = Conversation {
        id: ConversationId::parse("0190f0d5-aaaa-7000-8000-000000000002").unwrap(),
        title: "Later".into(),
        privacy: false,
        updated_at: at(9),
        ..c.clone()
    };
    store.put_conversation(&newer).await.unwrap();
    assert_eq!(store.get_conversation(project, &id).await.unwrap(), Some(c.clone()));
    assert_eq!(
        store.get_conversation(other, &id).await.unwrap(),
        None,
        "another project's"
    );
    let listed = store.list_conversations(project).await.unwrap();
    assert_eq!(listed, vec![newer.clone(), c.clone()], "most recently updated first");
    assert!(store.list_conversations(other).await.unwrap().is_empty());

    let run = RunId::parse("0190f0d5-bbbb-7000-8000-000000000001").unwrap();
    let message = |n: i64, role, content: &str| ConversationMessage {
        id: format!("m{n}"),
        conversation: id.clone(),
        project: project.clone(),
        role,
        content: content.into(),
        run: Some(run.clone()),
        sql: (role == MessageRole::Assistant).then(|| "SELECT 1".to_owned()),
        data: Some("{\"chart\":null}".into()),
        created_at: at(n),
    };
    store
        .put_message(&message(3, MessageRole::User, "How many?"))
        .await
        .unwrap();
    store
        .put_message(&message(4, MessageRole::Assistant, "One."))
        .await
        .unwrap();
    let messages = store.list_messages(project, &id).await.unwrap();
    assert_eq!(
        messages,
        vec![
            message(3, MessageRole::User, "How many?"),
            message(4, MessageRole::Assistant, "One.")
        ]
    );
    assert!(store.list_messages(other, &id).await.unwrap().is_empty());

    let events = vec![
        RunEvent {
            seq: 1,
            at: at(5),
            kind: RunEventKind::Queued,
        },
        RunEvent {
            seq: 2,
            at: at(6),
            kind: RunEventKind::Custom {
                name: "tool_call".into(),
                data: "{\"action\":\"query.run\"}".into(),
            },
        },
        RunEvent {
            seq: 3,
            at: at(7),
            kind: RunEventKind::Failed { message: "no".into() },
        },
    ];
    store.put_run_events(&run, &events).await.unwrap();
    // Storing again keeps what is stored.
    store.put_run_events(&run, &events[..1]).await.unwrap();
    assert_eq!(store.list_run_events(&run).await.unwrap(), events);

    assert!(!store.delete_conversation(other, &id).await.unwrap());
    assert!(store.delete_conversation(project, &id).await.unwrap());
    assert_eq!(store.get_conversation(project, &id).await.unwrap(), None);
    assert!(
        store.list_messages(project, &id).await.unwrap().is_empty(),
        "its messages go with it"
    );
    assert_eq!(store.list_conversations(project).await.unwrap(), vec![newer]);
}

async fn jobs_contract(store: &dyn MetadataStore, project: &ProjectId, other: &ProjectId) {
    use pluto_duck_domain::{JobDefinition, JobIngest, JobSchedule, JobTask};
    let t0 = Utc.timestamp_opt(1_700_000_100, 250_000_000).unwrap();
    let nightly = JobDefinition {
        project: project.clone(),
        name: Identifier::parse("nightly").unwrap(),
        description: "loads orders".into(),
        task: JobTask::Ingest(JobIngest {
            source: Identifier::parse("shop").unwrap(),
            table: Some("public.orders".into()),
            query: None,
            target: Some("orders".into()),
            schema: Some("raw".into()),
            mode: IngestMode::Merge,
            keys: vec!["id".into()],
            lenient_csv: true,
        }),
        schedule: Some(JobSchedule {
            cron: "0 3 * * *".into(),
            timezone: "+02:00".into(),
        }),
        paused: false,
        created_at: t0,
        updated_at: t0,
        last_scheduled_at: None,
    };
    let adhoc = JobDefinition {
        name: Identifier::parse("adhoc").unwrap(),
        task: JobTask::Dbt {
            command: "build".into(),
            select: vec!["orders+".into()],
            exclude: vec![],
            vars: r#"{"day":"2026-01-01"}"#.into(),
        },
        schedule: None,
        ..nightly.clone()
    };
    let elsewhere = JobDefinition {
        project: other.clone(),
        task: JobTask::Sql { sql: "select 1".into() },
        ..nightly.clone()
    };
    for j in [&nightly, &adhoc, &elsewhere] {
        store.insert_job(j).await.unwrap();
    }
    let dup = store.insert_job(&nightly).await.unwrap_err();
    assert!(matches!(dup, RepoError::Conflict { .. }), "{dup:?}");
    assert_eq!(
        store.get_job(project, &nightly.name).await.unwrap(),
        Some(nightly.clone())
    );
    assert_eq!(
        store.get_job(other, &elsewhere.name).await.unwrap(),
        Some(elsewhere.clone())
    );
    assert_eq!(
        store.list_jobs(Some(project.clone())).await.unwrap(),
        vec![adhoc.clone(), nightly.clone()]
    );
    let all = store.list_jobs(None).await.unwrap();
    assert!(all.contains(&elsewhere) && all.contains(&nightly));

    let scheduled = JobDefinition {
        last_scheduled_at: Some(t0 + chrono::Duration::seconds(60)),
        paused: true,
        ..nightly.clone()
    };
    assert!(store.update_job(&scheduled).await.unwrap());
    assert_eq!(store.get_job(project, &nightly.name).await.unwrap(), Some(scheduled));
    let ghost = JobDefinition {
        name: Identifier::parse("ghost").unwrap(),
        ..nightly.clone()
    };
    assert!(!store.update_job(&ghost).await.unwrap());
    assert!(store.delete_job(project, &adhoc.name).await.unwrap());
    assert!(!store.delete_job(project, &adhoc.name).await.unwrap());
    assert_eq!(store.get_job(project, &adhoc.name).await.unwrap(), None);
}

async fn clear_contract(store: &dyn MetadataStore, a: &Project, b: &Project, c: &Project) {
    let settings = |p: &Project| format!("project.{}.settings", p.id);
    store.put_setting(&settings(a), "{}").await.unwrap();
    store.put_setting(&settings(b), "{}").await.unwrap();
    assert!(!store.list_sources(Some(b.id.clone())).await.unwrap().is_empty());

    store.clear_project(&b.id, true).await.unwrap();
    assert_eq!(store.get_project(&b.id).await.unwrap(), Some(b.clone()));
    assert!(store.list_sources(Some(b.id.clone())).await.unwrap().is_empty());
    assert_eq!(store.get_setting(&settings(b)).await.unwrap(), None);
    assert!(
        !store.list_sources(Some(a.id.clone())).await.unwrap().is_empty(),
        "a is untouched"
    );

    let everything = |p: &ProjectId| RunFilter {
        project: p.clone(),
        kind: None,
        status: None,
        input: None,
        limit: 100,
        offset: 0,
    };
    assert!(!store.list_runs(&everything(&a.id)).await.unwrap().is_empty());
    store.clear_project(&a.id, false).await.unwrap();
    assert_eq!(store.get_project(&a.id).await.unwrap(), None);
    assert!(store.list_runs(&everything(&a.id)).await.unwrap().is_empty());
    assert!(store.list_sources(Some(a.id.clone())).await.unwrap().is_empty());
    assert!(store.list_caches(&a.id).await.unwrap().is_empty());
    assert!(store.list_ingestions(&a.id).await.unwrap().is_empty());
    assert!(store.list_analysis_states(&a.id).await.unwrap().is_empty());
    assert!(store.list_boards(&a.id).await.unwrap().is_empty());
    assert!(store.list_items(Some(a.id.clone()), None).await.unwrap().is_empty());
    assert_eq!(store.get_setting(&settings(a)).await.unwrap(), None);
    assert_eq!(store.get_project(&c.id).await.unwrap(), Some(c.clone()));
    assert!(!store.list_runs(&everything(&c.id)).await.unwrap().is_empty());
}

#[tokio::test]
async fn sqlite_store_meets_the_contract_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta/metadata.db");
    contract(Arc::new(SqliteMetadataStore::open(&path).await.unwrap()), "sq").await;
    // Reopening applies no migration twice and keeps the data.
    let again = SqliteMetadataStore::open(&path).await.unwrap();
    assert_eq!(again.get_setting("sq.theme").await.unwrap().as_deref(), Some("light"));
}

#[tokio::test]
async fn postgres_store_meets_the_contract() {
    let url = required_env("TEST_PG_URL");
    let prefix = format!("pg{}", std::process::id());
    contract(Arc::new(PgMetadataStore::connect(&url).await.unwrap()), &prefix).await;
    // A second connect (another server process) finds the schema migrated already.
    PgMetadataStore::connect(&url).await.unwrap().ping().await.unwrap();
}

#[tokio::test]
async fn postgres_wrong_password_is_unavailable_and_does_not_leak_it() {
    let url = required_env("TEST_PG_URL");
    let bad = url.replacen("pd_secret_pw", "wrong_pw_xyz", 1);
    assert_ne!(bad, url, "TEST_PG_URL is expected to carry the password pd_secret_pw");
    let err = match PgMetadataStore::connect(&bad).await {
        Err(e) => e,
        Ok(_) => panic!("connected with a wrong password"),
    };
    assert!(matches!(err, RepoError::Unavailable(_)), "{err:?}");
    assert!(!err.to_string().contains("wrong_pw_xyz"), "{err}");
}
