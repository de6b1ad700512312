//! Run-state writes on SQLite, the metadata work on the path of every query: one `insert_run` and two
//! `update_run`s (running, then succeeded) per query. Prints run lives and writes per second, sequentially and
//! from concurrent tasks, next to the floor: the same three statements on a two-column table through one bare
//! sqlx connection with the same pragmas (SQLite takes one writer at a time, so that is the limit either way).
//!
//! `cargo run --release -p pluto-duck-sqlx-metadata --example run_writes` (BENCH_RUNS, default 5000;
//! BENCH_TASKS, default 8).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness: a failure should stop it loudly

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use pluto_duck_application::ports::MetadataStore;
use pluto_duck_domain::{Project, ProjectId, Run, RunId, RunKind};
use pluto_duck_sqlx_metadata::SqliteMetadataStore;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::ConnectOptions;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One query's run life as the query service writes it.
async fn run_life(store: &dyn MetadataStore, project: &ProjectId, id: String) {
    let now = Utc::now();
    let mut run = Run::new(
        RunId::parse(id).unwrap(),
        project.clone(),
        RunKind::Query,
        "SELECT 42".into(),
        now,
    );
    store.insert_run(&run).await.unwrap();
    run.start(now).unwrap();
    store.update_run(&run).await.unwrap();
    run.rows = 1;
    run.succeed(Utc::now()).unwrap();
    store.update_run(&run).await.unwrap();
}

async fn store_lives(
    store: Arc<dyn MetadataStore>,
    project: &ProjectId,
    runs: usize,
    tasks: usize,
    tag: &str,
) -> Duration {
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (store, project, tag) = (store.clone(), project.clone(), tag.to_owned());
        handles.push(tokio::spawn(async move {
            for i in (t..runs).step_by(tasks) {
                run_life(store.as_ref(), &project, format!("{tag}-{i}")).await;
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    started.elapsed()
}

async fn floor_lives(conn: &mut SqliteConnection, runs: usize, tag: &str) -> Duration {
    let started = Instant::now();
    for i in 0..runs {
        let id = format!("{tag}-{i}");
        sqlx::query("INSERT INTO t (id, status) VALUES (?, 'queued')")
            .bind(&id)
            .execute(&mut *conn)
            .await
            .unwrap();
        for status in ["running", "succeeded"] {
            sqlx::query("UPDATE t SET status = ? WHERE id = ?")
                .bind(status)
                .bind(&id)
                .execute(&mut *conn)
                .await
                .unwrap();
        }
    }
    started.elapsed()
}

fn report(what: &str, runs: usize, took: Duration, floor: Duration) {
    let lives = runs as f64 / took.as_secs_f64();
    println!(
        "{what:<28} {lives:>9.0} run lives/s {:>9.0} writes/s   floor {:>9.0} lives/s   time {:.2}x the floor's",
        lives * 3.0,
        runs as f64 / floor.as_secs_f64(),
        took.as_secs_f64() / floor.as_secs_f64(),
    );
}

#[tokio::main]
async fn main() {
    let runs = env_usize("BENCH_RUNS", 5000);
    let tasks = env_usize("BENCH_TASKS", 8);
    let dir = tempfile::tempdir().unwrap();

    let store: Arc<dyn MetadataStore> = Arc::new(
        SqliteMetadataStore::open(&dir.path().join("metadata.db"))
            .await
            .unwrap(),
    );
    let project = Project::default_project(Utc::now());
    store.ensure_project(&project).await.unwrap();

    let mut floor_conn = SqliteConnectOptions::new()
        .filename(dir.path().join("floor.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .connect()
        .await
        .unwrap();
    sqlx::query("CREATE TABLE t (id TEXT PRIMARY KEY NOT NULL, status TEXT NOT NULL)")
        .execute(&mut floor_conn)
        .await
        .unwrap();

    // Warm both up (connections opened, statements prepared), then measure.
    store_lives(store.clone(), &project.id, 200, tasks, "warm").await;
    floor_lives(&mut floor_conn, 200, "warm").await;

    println!("{runs} run lives (1 insert_run + 2 update_run each), SQLite WAL, synchronous=NORMAL");
    let floor = floor_lives(&mut floor_conn, runs, "seq").await;
    let took = store_lives(store.clone(), &project.id, runs, 1, "seq").await;
    report("sequential", runs, took, floor);
    let floor = floor_lives(&mut floor_conn, runs, "again").await;
    let took = store_lives(store.clone(), &project.id, runs, tasks, "conc").await;
    report(&format!("{tasks} concurrent tasks"), runs, took, floor);
}
