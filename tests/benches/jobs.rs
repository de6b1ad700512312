//! Job run overhead: a job run of `select 1` through `POST /jobs/{name}/runs?wait=` against the same query
//! through `POST /query?wait=`, in one run, with the ratio. Run with `scripts/bench.sh` (release build).
//! Size: BENCH_REQUESTS (default 200).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness: a failure should stop it loudly

mod common;

use std::time::{Duration, Instant};

use pluto_duck_bootstrap::config::Config;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn timed(client: &reqwest::Client, n: u64, request: impl Fn() -> reqwest::RequestBuilder) -> Vec<Duration> {
    let _ = client;
    let mut times = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let r = request().send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(body["status"] != "failed", "{body}");
        times.push(t.elapsed());
    }
    times.sort();
    times
}

fn main() {
    let requests = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200u64);
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    config.secrets.key_file = Some(dir.path().join("secret.key"));
    config.log.level = "warn".into();
    let (rt, url) = common::serve(&config);
    let client = reqwest::Client::new();
    println!("pluto-duck job run overhead ({requests} runs of `select 1` each way)\n");
    rt.block_on(async {
        let r = client
            .post(format!("{url}/api/v1/jobs"))
            .json(&serde_json::json!({"name": "one", "task": {"kind": "sql", "sql": "select 1"}}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    });
    let query = rt.block_on(timed(&client, requests, || {
        client
            .post(format!("{url}/api/v1/query?wait=10"))
            .json(&serde_json::json!({"sql": "select 1"}))
    }));
    let job = rt.block_on(timed(&client, requests, || {
        client.post(format!("{url}/api/v1/jobs/one/runs?wait=10"))
    }));
    let (q50, j50) = (percentile(&query, 0.5), percentile(&job, 0.5));
    println!(
        "POST /query            p50 {:>9.3} ms  p95 {:>9.3} ms",
        ms(q50),
        ms(percentile(&query, 0.95))
    );
    println!(
        "POST /jobs/one/runs    p50 {:>9.3} ms  p95 {:>9.3} ms",
        ms(j50),
        ms(percentile(&job, 0.95))
    );
    println!("ratio (job run / query, p50): {:.2}x", ms(j50) / ms(q50));
}
