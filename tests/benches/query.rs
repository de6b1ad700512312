//! SQL execution benchmark: our HTTP path against DuckDB in-process, in one run, with ratios.
//! Run with `scripts/bench.sh` (release build). Sizes: BENCH_ROWS (default 5,000,000), BENCH_REQUESTS (300).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness: a failure should stop it loudly

mod common;

use std::time::{Duration, Instant};

use futures::StreamExt;
use pluto_duck_bootstrap::config::Config;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn duckdb_conn(ext_dir: &std::path::Path) -> duckdb::Connection {
    let cfg = duckdb::Config::default()
        .with("extension_directory", ext_dir.display().to_string())
        .unwrap();
    duckdb::Connection::open_in_memory_with_flags(cfg).unwrap()
}

fn in_process_small(conn: &duckdb::Connection, n: u64) -> Vec<Duration> {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let mut stmt = conn.prepare("SELECT 42 AS answer").unwrap();
            let batches: Vec<_> = stmt.query_arrow([]).unwrap().collect();
            assert_eq!(batches[0].num_rows(), 1);
            t.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn in_process_stream(conn: &duckdb::Connection, sql: &str) -> (u64, Duration) {
    let t = Instant::now();
    let mut stmt = conn.prepare(sql).unwrap();
    let rows: u64 = stmt.stream_arrow([]).unwrap().map(|b| b.num_rows() as u64).sum();
    (rows, t.elapsed())
}

fn main() {
    let rows = env_u64("BENCH_ROWS", 5_000_000);
    let requests = env_u64("BENCH_REQUESTS", 300);
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    config.secrets.key_file = Some(dir.path().join("secret.key"));
    config.log.level = "warn".into();
    let ext_dir = config.extension_directory();
    let stream_sql = format!("SELECT range AS id, range * 2 AS twice, 'row ' || range AS label FROM range({rows})");

    let (rt, url) = common::serve(&config);
    let client = reqwest::Client::new();
    println!("pluto-duck SQL benchmark ({rows} rows streamed, {requests} small queries)\n");

    // 1. Small-query latency.
    let conn = duckdb_conn(&ext_dir);
    let base = in_process_small(&conn, requests);
    let http = rt.block_on(async {
        let mut times = Vec::new();
        for _ in 0..requests {
            let t = Instant::now();
            let r = client
                .post(format!("{url}/api/v1/query?wait=10"))
                .json(&serde_json::json!({"sql": "SELECT 42 AS answer"}))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
            let _ = r.bytes().await.unwrap();
            times.push(t.elapsed());
        }
        times.sort();
        times
    });
    let (b50, h50) = (percentile(&base, 0.5), percentile(&http, 0.5));
    println!(
        "small query latency   in-process p50 {:>9.3} ms  p95 {:>9.3} ms",
        ms(b50),
        ms(percentile(&base, 0.95))
    );
    println!(
        "                      HTTP API   p50 {:>9.3} ms  p95 {:>9.3} ms",
        ms(h50),
        ms(percentile(&http, 0.95))
    );
    println!(
        "                      ratio (HTTP / in-process, p50): {:.1}x\n",
        ms(h50) / ms(b50)
    );

    // 2. Throughput of 8 concurrent clients.
    let clients = 8u64;
    let per = (requests / 2).max(10);
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..clients {
            let c = conn.try_clone().unwrap();
            s.spawn(move || in_process_small(&c, per));
        }
    });
    let base_qps = (clients * per) as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let (client, url) = (client.clone(), url.clone());
                tokio::spawn(async move {
                    for _ in 0..per {
                        let r = client
                            .post(format!("{url}/api/v1/query?wait=10"))
                            .json(&serde_json::json!({"sql": "SELECT 42 AS answer"}))
                            .send()
                            .await
                            .unwrap();
                        assert!(r.status().is_success());
                        let _ = r.bytes().await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    let http_qps = (clients * per) as f64 / t.elapsed().as_secs_f64();
    println!("8 clients throughput  in-process {base_qps:>10.0} q/s   HTTP API {http_qps:>8.0} q/s");
    println!(
        "                      ratio (in-process / HTTP): {:.1}x\n",
        base_qps / http_qps
    );

    // 3. Streaming several million rows.
    let (n, base_time) = in_process_stream(&conn, &stream_sql);
    assert_eq!(n, rows);
    let base_rps = rows as f64 / base_time.as_secs_f64();
    println!(
        "stream {rows} rows    DuckDB -> Arrow in-process  {:>7.2} s  {:>12.0} rows/s",
        base_time.as_secs_f64(),
        base_rps
    );
    for (label, accept) in [
        ("Arrow IPC", "application/vnd.apache.arrow.stream"),
        ("JSON", "application/json"),
    ] {
        let (bytes, elapsed) = rt.block_on(async {
            let t = Instant::now();
            let r = client
                .post(format!("{url}/api/v1/query?wait=600"))
                .header("accept", accept)
                .json(&serde_json::json!({"sql": stream_sql}))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}", r.status());
            assert_eq!(r.headers()["x-total-rows"], rows.to_string().as_str());
            let mut body = r.bytes_stream();
            let mut bytes = 0u64;
            while let Some(chunk) = body.next().await {
                bytes += chunk.unwrap().len() as u64;
            }
            (bytes, t.elapsed())
        });
        let rps = rows as f64 / elapsed.as_secs_f64();
        println!(
            "                      HTTP API as {label:<9} {:>7.2} s  {:>12.0} rows/s  {:>7.1} MB/s  ratio {:.1}x",
            elapsed.as_secs_f64(),
            rps,
            bytes as f64 / 1e6 / elapsed.as_secs_f64(),
            base_rps / rps
        );
    }
    println!();

    // 4. CSV end to end against DuckDB's own CSV writer.
    let csv_file = dir.path().join("copy.csv");
    let t = Instant::now();
    conn.execute_batch(&format!("COPY ({stream_sql}) TO '{}' (HEADER)", csv_file.display()))
        .unwrap();
    let copy_time = t.elapsed();
    let (http_csv, _) = rt.block_on(fetch_encoded(
        &client,
        &url,
        &stream_sql,
        "text/csv",
        "identity",
        "identity",
    ));
    println!(
        "CSV {rows} rows       DuckDB COPY TO file {:>7.2} s   HTTP API as CSV {:>7.2} s   ratio {:.2}x\n",
        copy_time.as_secs_f64(),
        http_csv.as_secs_f64(),
        http_csv.as_secs_f64() / copy_time.as_secs_f64()
    );

    // 5. What many small queries leave behind: held in memory, they write no files.
    let small = env_u64("BENCH_SMALL_FILES", 10_000);
    let results_dir = config.results_dir();
    let files = || std::fs::read_dir(&results_dir).map(|d| d.count()).unwrap_or(0);
    let before = files();
    let t = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let (client, url) = (client.clone(), url.clone());
                tokio::spawn(async move {
                    for _ in 0..small / clients {
                        let r = client
                            .post(format!("{url}/api/v1/query?wait=10"))
                            .json(&serde_json::json!({"sql": "SELECT 42 AS answer"}))
                            .send()
                            .await
                            .unwrap();
                        assert!(r.status().is_success());
                        let _ = r.bytes().await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    println!(
        "{small} small queries      {:>7.2} s; result files before {before}, after {} (the streamed results above \
         are files)\n",
        t.elapsed().as_secs_f64(),
        files()
    );

    // 6. Compression: never slower than plain on loopback.
    compression(&rt, &client, &url, env_u64("BENCH_COMPRESS_ROWS", 1_000_000));
}

/// One streamed result asked for with `accept-encoding`: its time to the last byte and its bytes on the wire (not
/// decompressed: what the compressor costs the server, on loopback where bandwidth is free). Checks the encoding
/// the server chose.
async fn fetch_encoded(
    client: &reqwest::Client,
    url: &str,
    sql: &str,
    accept: &str,
    asked: &str,
    sent: &str,
) -> (Duration, u64) {
    let t = Instant::now();
    let r = client
        .post(format!("{url}/api/v1/query?wait=600"))
        .header("accept", accept)
        .header("accept-encoding", asked)
        .json(&serde_json::json!({"sql": sql}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let encoding = r
        .headers()
        .get("content-encoding")
        .map_or("identity", |v| v.to_str().unwrap());
    assert_eq!(encoding, sent, "{accept} asked as {asked}");
    let mut body = r.bytes_stream();
    let mut bytes = 0u64;
    while let Some(chunk) = body.next().await {
        bytes += chunk.unwrap().len() as u64;
    }
    (t.elapsed(), bytes)
}

/// Compression against none, per format: time and wire size of the same result with each `accept-encoding`.
/// Arrow IPC is never compressed (the server answers it plain whatever the client accepts).
fn compression(rt: &tokio::runtime::Runtime, client: &reqwest::Client, url: &str, rows: u64) {
    let sql = format!("SELECT range AS id, range * 2 AS twice, 'row ' || range AS label FROM range({rows})");
    println!("compression on loopback ({rows} rows; time to last byte, bytes on the wire, time relative to plain)");
    for (label, accept) in [
        ("NDJSON", "application/x-ndjson"),
        ("JSON", "application/json"),
        ("CSV", "text/csv"),
        ("Arrow IPC", "application/vnd.apache.arrow.stream"),
    ] {
        let fetch = |asked: &str, sent: &str| rt.block_on(fetch_encoded(client, url, &sql, accept, asked, sent));
        let (plain, plain_bytes) = fetch("identity", "identity");
        print!(
            "    {label:<9} plain {:>6.0} ms {:>7.1} MB",
            ms(plain),
            plain_bytes as f64 / 1e6
        );
        for encoding in ["gzip", "zstd"] {
            let sent = if accept.contains("arrow") { "identity" } else { encoding };
            let (time, bytes) = fetch(encoding, sent);
            print!(
                "   {encoding} {:>6.0} ms {:>7.1} MB ({:.2}x)",
                ms(time),
                bytes as f64 / 1e6,
                time.as_secs_f64() / plain.as_secs_f64()
            );
        }
        println!();
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
