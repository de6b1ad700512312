//! The starter project's `dbt build --full-refresh` through the server (POST /api/v1/dbt/build, waiting for the
//! run) against the same `dbt build --full-refresh` run by hand on the same project with its own profiles.yml,
//! alternating, in one run; prints the medians and the ratio (target: at most 1.1x). Run with `scripts/bench.sh`
//! or `cargo bench -p pluto-duck-tests --bench dbt`; `BENCH_DBT_RUNS` sets the runs per side (default 3).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness: a failure should stop it loudly

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pluto_duck_bootstrap::config::Config;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "target" && entry.file_name() != "logs" {
                copy_dir(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// `dbt build --full-refresh` as a user runs it in the project folder, with the project's own profiles.yml.
fn by_hand(dbt: &Path, project: &Path, database: &Path, sources: &Path) -> Duration {
    let t = Instant::now();
    let out = std::process::Command::new(dbt)
        .args(["build", "--full-refresh", "--profiles-dir", "."])
        .current_dir(project)
        .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        .env("PLUTODUCK_DBT_DATABASE", database)
        .env("PLUTODUCK_DBT_SOURCES", sources)
        .output()
        .unwrap();
    let elapsed = t.elapsed();
    assert!(
        out.status.success(),
        "dbt build by hand: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

fn main() {
    let runs: usize = std::env::var("BENCH_DBT_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("core");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../dbt_projects/core"),
        &project,
    );
    let mut config = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    config.secrets.key_file = Some(dir.path().join("secret.key"));
    config.log.level = "warn".into();
    config.dbt.project_dir = Some(project.clone());
    if let Ok(dbt) = std::env::var("PLUTODUCK_TEST_DBT") {
        config.dbt.executable = Some(PathBuf::from(dbt));
    }
    let dbt = config.dbt_executable();
    let (rt, url) = common::serve(&config);
    let client = reqwest::Client::new();
    let through_server = || -> Duration {
        rt.block_on(async {
            let t = Instant::now();
            let r = client
                .post(format!("{url}/api/v1/dbt/build?wait=3600"))
                .json(&serde_json::json!({ "full_refresh": true }))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let run: serde_json::Value = r.json().await.unwrap();
            let elapsed = t.elapsed();
            assert!(status.is_success() && run["status"] == "succeeded", "{status} {run}");
            elapsed
        })
    };
    println!("pluto-duck dbt benchmark: the starter project's dbt build --full-refresh, {runs} runs each\n");
    // Warm both sides: the server's parse cache and source snapshot, dbt's own partial parse in target/.
    through_server();
    let sources = config
        .data_dir
        .join("projects")
        .join("default")
        .join("dbt")
        .join("snapshot")
        .join("sources.duckdb");
    let hand_db = dir.path().join("by_hand").join("dbt.duckdb");
    std::fs::create_dir_all(hand_db.parent().unwrap()).unwrap();
    by_hand(&dbt, &project, &hand_db, &sources);
    let (mut server, mut hand) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        server.push(through_server());
        hand.push(by_hand(&dbt, &project, &hand_db, &sources));
    }
    let (s, h) = (median(server.clone()), median(hand.clone()));
    let ms = |v: &[Duration]| {
        v.iter()
            .map(|d| format!("{:.0}", d.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
    };
    println!("{:<34} {:>10}  runs (ms)", "", "median ms");
    println!(
        "{:<34} {:>10.0}  {:?}",
        "through pluto-duck (POST /dbt/build)",
        s.as_secs_f64() * 1000.0,
        ms(&server)
    );
    println!(
        "{:<34} {:>10.0}  {:?}",
        "dbt build by hand",
        h.as_secs_f64() * 1000.0,
        ms(&hand)
    );
    println!(
        "\nratio pluto-duck / by hand: {:.2}x (target: at most 1.10x)",
        s.as_secs_f64() / h.as_secs_f64()
    );
}
