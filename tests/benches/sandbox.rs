//! What one sandbox per project costs: the memory of many open projects and of the same projects once idle
//! (closed), and a small query in the hundredth project against one in the first. Run with `scripts/bench.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness: a failure should stop it loudly

mod common;

use std::time::{Duration, Instant};

use pluto_duck_bootstrap::config::Config;

fn p50(mut times: Vec<Duration>) -> f64 {
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1000.0
}

fn main() {
    let projects: usize = std::env::var("BENCH_PROJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    config.secrets.key_file = Some(dir.path().join("secret.key"));
    config.log.level = "warn".into();
    config.sandbox.idle_close_secs = 1;
    let before = common::rss_mib();
    let (rt, url, warehouse) = common::serve_with_warehouse(&config);
    let client = reqwest::Client::new();
    println!("pluto-duck sandbox benchmark ({projects} projects)\n");
    let started = common::rss_mib();
    let latency = |project: &str, n: usize| -> Vec<Duration> {
        rt.block_on(async {
            let mut times = Vec::new();
            for _ in 0..n {
                let t = Instant::now();
                let r = client
                    .post(format!("{url}/api/v1/query?wait=10"))
                    .header("x-pluto-project", project)
                    .json(&serde_json::json!({"sql": "SELECT 42 AS answer"}))
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "{}", r.status());
                let _ = r.bytes().await.unwrap();
                times.push(t.elapsed());
            }
            times
        })
    };
    let first = latency("default", 200);
    rt.block_on(async {
        for i in 0..projects {
            let r = client
                .post(format!("{url}/api/v1/projects"))
                .json(&serde_json::json!({"id": format!("p{i}")}))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
        }
    });
    let t = Instant::now();
    for i in 0..projects {
        latency(&format!("p{i}"), 1);
    }
    let open_each = t.elapsed().as_secs_f64() * 1000.0 / projects as f64;
    let last = latency(&format!("p{}", projects - 1), 200);
    let open = common::rss_mib();
    assert!(warehouse.open_projects() >= projects);
    // The housekeeper closes what has been idle past `idle_close_secs`.
    let deadline = Instant::now() + Duration::from_secs(60);
    while warehouse.open_projects() > 0 {
        assert!(Instant::now() < deadline, "idle projects did not close");
        std::thread::sleep(Duration::from_millis(100));
    }
    let closed = common::rss_mib();
    println!("memory                process before the server {before:>8.1} MiB");
    println!("                      server started            {started:>8.1} MiB");
    println!(
        "                      {projects} projects open          {open:>8.1} MiB  ({:.1} MiB each)",
        (open - started) / projects as f64
    );
    println!(
        "                      {projects} projects idle (closed) {closed:>8.1} MiB  ({:.1} MiB each)",
        (closed - started).max(0.0) / projects as f64
    );
    println!("first query of a closed project (opens it): {open_each:.2} ms");
    let (a, b) = (p50(first), p50(last));
    println!(
        "small query p50       first project {a:.3} ms   project {projects} {b:.3} ms   ratio {:.2}x",
        b / a
    );
}
