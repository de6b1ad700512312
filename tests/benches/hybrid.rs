//! The hybrid profile's cost: the same queries through a server on the hybrid profile (tables in a DuckLake:
//! catalog in PostgreSQL, files in S3-compatible storage) and through one on the local profile, in one run;
//! prints the ratios. Needs TEST_PG_URL and TEST_S3_ENDPOINT (scripts/bench.sh starts the services).
//! Sizes: BENCH_ROWS (default 1,000,000), BENCH_REQUESTS (default 200).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness: a failure should stop it loudly

mod common;

use std::time::{Duration, Instant};

use pluto_duck_bootstrap::config::{Config, ProfileName};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run through scripts/bench.sh"))
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

struct Measured {
    small: Duration,
    scan: Duration,
    write: Duration,
}

fn measure(config: &Config, rows: u64, requests: u64) -> Measured {
    let (rt, url) = common::serve(config);
    let client = reqwest::Client::new();
    rt.block_on(async {
        let run = |sql: String| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let t = Instant::now();
                let r = client
                    .post(format!("{url}/api/v1/query?wait=600"))
                    .json(&serde_json::json!({ "sql": sql }))
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "{}", r.text().await.unwrap_or_default());
                let _ = r.bytes().await.unwrap();
                t.elapsed()
            }
        };
        let write = run(format!(
            "CREATE OR REPLACE TABLE bench_t AS SELECT range AS id, range % 100 AS k FROM range({rows})"
        ))
        .await;
        let mut small = Vec::new();
        for _ in 0..requests {
            small.push(run("SELECT count(*) FROM bench_t WHERE id = 42".into()).await);
        }
        let mut scan = Vec::new();
        for _ in 0..5 {
            scan.push(run("SELECT k, sum(id) FROM bench_t GROUP BY k".into()).await);
        }
        Measured {
            small: median(small),
            scan: median(scan),
            write,
        }
    })
}

fn main() {
    let rows = env_u64("BENCH_ROWS", 1_000_000);
    let requests = env_u64("BENCH_REQUESTS", 200);
    required("TEST_PG_URL");
    let s3 = required("TEST_S3_ENDPOINT");
    let bucket = format!("bench-hybrid-{}", std::process::id());
    reqwest::blocking::Client::new()
        .put(format!("http://{s3}/{bucket}"))
        .send()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = |name: &str| {
        let mut c = Config {
            data_dir: dir.path().join(name),
            ..Config::default()
        };
        c.secrets.key_file = Some(dir.path().join("secret.key"));
        c.secrets.backend = pluto_duck_bootstrap::config::SecretsBackend::File;
        c.log.level = "warn".into();
        c
    };
    let local = base("local");
    let mut hybrid = base("hybrid");
    let key_file = dir.path().join("master.key");
    std::fs::write(&key_file, "00".repeat(32)).unwrap();
    hybrid.profile = ProfileName::Hybrid;
    hybrid.hybrid.database_url = Some("env:TEST_PG_URL".into());
    hybrid.hybrid.master_key = Some(format!("file:{}", key_file.display()));
    hybrid.hybrid.lake.data_path = Some(format!("s3://{bucket}/lake"));
    hybrid.hybrid.lake.schema_prefix = format!("bench{}_", std::process::id());
    hybrid.hybrid.lake.s3.endpoint = Some(format!("http://{s3}"));
    hybrid.hybrid.lake.s3.access_key_id = Some("test".into());
    // moto takes any secret key: any variable that is set will do.
    hybrid.hybrid.lake.s3.secret_access_key = Some("env:TEST_S3_ENDPOINT".into());

    println!("pluto-duck hybrid vs local ({rows} rows, {requests} small queries)\n");
    let l = measure(&local, rows, requests);
    let h = measure(&hybrid, rows, requests);
    let ratio = |h: Duration, l: Duration| h.as_secs_f64() / l.as_secs_f64().max(1e-9);
    println!("{:<34} {:>12} {:>12} {:>8}", "", "local", "hybrid", "ratio");
    for (what, l, h) in [
        ("small query (median)", l.small, h.small),
        ("group-by scan (median of 5)", l.scan, h.scan),
        ("CREATE TABLE AS (once)", l.write, h.write),
    ] {
        println!(
            "{what:<34} {:>10.2}ms {:>10.2}ms {:>7.2}x",
            l.as_secs_f64() * 1e3,
            h.as_secs_f64() * 1e3,
            ratio(h, l)
        );
    }
}
