//! The agent's own overhead per turn: a scripted model with zero latency on a project of 500 tables, so all the
//! time is ours (the catalog, the schema explorer, the steps, the verifying query, the run and its events). The
//! limit is the verifying query alone through the same query service. Run with `scripts/bench.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness: a failure should stop it loudly

use std::time::{Duration, Instant};

use pluto_duck_application::agent::Ask;
use pluto_duck_application::QuerySubmission;
use pluto_duck_bootstrap::config::Config;
use pluto_duck_domain::{ProjectId, RunStatus};

const SQL: &str =
    "SELECT customer, sum(amount) AS total FROM main.orders GROUP BY customer ORDER BY total DESC LIMIT 5";

fn p50(mut times: Vec<Duration>) -> f64 {
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1000.0
}

fn main() {
    let tables: usize = std::env::var("BENCH_AGENT_TABLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let turns: usize = std::env::var("BENCH_AGENT_TURNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.yaml");
    std::fs::write(
        &script,
        format!(
            "model: bench\nentries:\n  - role: user\n    reply:\n      tool_calls:\n        - name: query_run\n          \
             arguments: {{sql: \"{SQL}\"}}\n  - role: tool\n    reply: {{text: \"The top customer is cust_3.\"}}\n"
        ),
    )
    .unwrap();
    let mut config = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    config.secrets.key_file = Some(dir.path().join("secret.key"));
    config.secrets.backend = pluto_duck_bootstrap::config::SecretsBackend::File;
    config.log.level = "warn".into();
    config.llm.provider = "scripted".into();
    config.llm.script = Some(script);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let app = pluto_duck_bootstrap::wiring::wire(&config).await.unwrap().app;
        let project = ProjectId::default_project();
        let exec = |sql: String| {
            let app = app.clone();
            let project = project.clone();
            async move {
                let run = app
                    .queries
                    .submit(
                        &project,
                        QuerySubmission {
                            sql,
                            timeout_ms: None,
                            max_rows: None,
                            read_only: false,
                            params: Vec::new(),
                            actor: None,
                        },
                    )
                    .await
                    .unwrap();
                let run = app.queries.wait(&project, run.id.as_str(), Duration::from_secs(600)).await.unwrap();
                assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.failure);
            }
        };
        exec(
            "CREATE TABLE main.orders AS SELECT i AS id, 'cust_' || (i % 50) AS customer, (i % 997) * 1.5 AS amount, \
             DATE '2024-01-01' + (i % 365)::INTEGER AS ordered_at FROM range(100000) t(i)"
                .into(),
        )
        .await;
        let mut ddl = String::new();
        for t in 0..tables.saturating_sub(1) {
            ddl.push_str(&format!(
                "CREATE TABLE main.t{t:03}_{} (id INTEGER PRIMARY KEY, name VARCHAR, kind VARCHAR, created_at TIMESTAMP, \
                 value DOUBLE, ref_id INTEGER);\n",
                ["sales", "stock", "staff", "events", "tickets"][t % 5]
            ));
        }
        exec(ddl).await;
        println!("pluto-duck agent benchmark ({tables} tables, {turns} turns, scripted model with zero latency)\n");

        let turn = || {
            let app = app.clone();
            let project = project.clone();
            async move {
                let t = Instant::now();
                let (run, _) = app
                    .agent
                    .ask(
                        &project,
                        Ask {
                            question: "Which customers spent the most?".into(),
                            auto_approve: true,
                            ..Ask::default()
                        },
                    )
                    .await
                    .unwrap();
                let run = app.agent.wait(&project, run.id.as_str(), Duration::from_secs(60)).await.unwrap();
                assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.failure);
                t.elapsed()
            }
        };
        let cold = turn().await;
        let mut times = Vec::new();
        for _ in 0..turns {
            times.push(turn().await);
        }
        let mut query = Vec::new();
        for _ in 0..turns {
            let t = Instant::now();
            let _ = app
                .queries
                .read(&project, SQL.into(), Some(200), "bench", Duration::from_secs(60))
                .await
                .unwrap();
            query.push(t.elapsed());
        }
        let (turn_ms, query_ms) = (p50(times), p50(query));
        println!("first turn (catalog of {tables} tables built and sampled): {:>8.2} ms", cold.as_secs_f64() * 1000.0);
        println!("turn p50 (two model calls, one verifying query):   {turn_ms:>8.2} ms");
        println!("the verifying query alone p50:                      {query_ms:>8.2} ms");
        println!(
            "agent overhead per turn: {:.2} ms (target <= 20 ms); turn / query = {:.2}x",
            turn_ms - query_ms,
            turn_ms / query_ms
        );
    });
}
