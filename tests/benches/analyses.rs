//! Analyses benchmark: compile and execute a DAG of a few hundred small analyses through the HTTP API, against
//! running the same statements in a plain loop in-process. Prints the overhead per step and the ratio.
//! Run with `scripts/bench.sh`. Size: BENCH_ANALYSES (default 300).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness: a failure should stop it loudly

mod common;

use std::time::Instant;

use pluto_duck_bootstrap::config::Config;
use serde_json::{json, Value};

fn main() {
    let n: usize = std::env::var("BENCH_ANALYSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    config.secrets.key_file = Some(dir.path().join("secret.key"));
    config.secrets.backend = pluto_duck_bootstrap::config::SecretsBackend::File;
    config.log.level = "warn".into();
    let (rt, url) = common::serve(&config);
    let client = reqwest::Client::new();
    let post = |path: String, body: Value| {
        let client = client.clone();
        async move {
            let r = client.post(path).json(&body).send().await.unwrap();
            let status = r.status();
            let v: Value = r.json().await.unwrap();
            assert!(status.is_success(), "{v}");
            v
        }
    };

    // Node i reads i-1 and i/2: a DAG with long chains and fan-in.
    let sql_of = |i: usize, r: &dyn Fn(usize) -> String| match i {
        0 => "SELECT range AS id, range % 7 AS k FROM range(1000)".to_owned(),
        _ => format!(
            "SELECT a.id, a.k + b.k AS k FROM {} a JOIN {} b USING (id)",
            r(i - 1),
            r(i / 2)
        ),
    };
    let started = Instant::now();
    rt.block_on(async {
        for i in 0..n {
            let sql = sql_of(i, &|j| format!("{{{{ ref('n{j}') }}}}"));
            post(
                format!("{url}/api/v1/asset/analysis"),
                json!({"id": format!("n{i}"), "sql": sql, "materialization": "table"}),
            )
            .await;
        }
    });
    println!(
        "pluto-duck analyses benchmark: a DAG of {n} table analyses (saved in {:.1} s)\n",
        started.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let plan = rt.block_on(post(
        format!("{url}/api/v1/asset/analysis/n{}/compile", n - 1),
        json!({}),
    ));
    let compile = t.elapsed();
    assert_eq!(plan.as_array().unwrap().len(), n);
    let t = Instant::now();
    let run = rt.block_on(post(
        format!("{url}/api/v1/asset/analysis/n{}/execute?wait=3600", n - 1),
        json!({"force": true}),
    ));
    let ours = t.elapsed();
    assert_eq!(run["status"], "succeeded", "{run}");

    // The same statements, built aside and swapped, in a plain loop on one in-process connection.
    let conn = duckdb::Connection::open(dir.path().join("baseline.duckdb")).unwrap();
    conn.execute_batch("CREATE SCHEMA s").unwrap();
    let t = Instant::now();
    for i in 0..n {
        let sql = sql_of(i, &|j| format!("s.n{j}"));
        conn.execute_batch(&format!(
            "BEGIN; CREATE OR REPLACE TABLE s.b{i} AS {sql}; DROP TABLE IF EXISTS s.n{i}; ALTER TABLE s.b{i} RENAME TO n{i}; COMMIT;"
        ))
        .unwrap();
    }
    let duck = t.elapsed();
    println!("compile the plan ({n} steps)   {:>8.1} ms", compile.as_secs_f64() * 1e3);
    println!(
        "execute (force)                ours {:>8.2} s   plain loop {:>8.2} s   ratio {:.1}x   overhead {:.1} ms/step",
        ours.as_secs_f64(),
        duck.as_secs_f64(),
        ours.as_secs_f64() / duck.as_secs_f64(),
        (ours - duck.min(ours)).as_secs_f64() * 1e3 / n as f64
    );
}
