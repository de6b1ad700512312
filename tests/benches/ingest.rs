//! Ingest and cache benchmark: our HTTP ingest path against DuckDB's own CREATE TABLE AS in-process (TPC-H
//! lineitem as CSV and Parquet), and caching a PostgreSQL table against DuckDB's postgres scanner in-process.
//! Run with `scripts/bench.sh`. Sizes: BENCH_SF (default 0.5), BENCH_PG_ROWS (default 2,000,000); the PostgreSQL
//! part needs TEST_PG_URL (bench.sh starts a server).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness: a failure should stop it loudly

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use pluto_duck_bootstrap::config::Config;
use serde_json::{json, Value};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn duckdb_file(path: &Path, ext_dir: &Path) -> duckdb::Connection {
    let cfg = duckdb::Config::default()
        .with("extension_directory", ext_dir.display().to_string())
        .unwrap();
    duckdb::Connection::open_with_flags(path, cfg).unwrap()
}

fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn line(what: &str, rows: u64, ours: Duration, duck: Duration) {
    let rate = |d: Duration| rows as f64 / d.as_secs_f64() / 1e6;
    println!(
        "{what:<34} ours {:>7.2} s ({:>5.2} M rows/s)   duckdb {:>7.2} s ({:>5.2} M rows/s)   ratio {:.2}x",
        ours.as_secs_f64(),
        rate(ours),
        duck.as_secs_f64(),
        rate(duck),
        ours.as_secs_f64() / duck.as_secs_f64()
    );
}

async fn post(client: &reqwest::Client, url: &str, body: Value) -> Value {
    let resp = client.post(url).json(&body).send().await.unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert!(status.is_success(), "{url}: {v}");
    v
}

fn main() {
    let sf: f64 = env_or("BENCH_SF", 0.5);
    let pg_rows: u64 = env_or("BENCH_PG_ROWS", 2_000_000);
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    config.secrets.key_file = Some(dir.path().join("secret.key"));
    config.secrets.backend = pluto_duck_bootstrap::config::SecretsBackend::File;
    config.sources.allowed_roots = Some(vec![dir.path().to_path_buf()]);
    config.log.level = "warn".into();
    let ext_dir = config.extension_directory();

    // The input files, made once by DuckDB's TPC-H generator.
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let (csv, parquet) = (files.join("lineitem.csv"), files.join("lineitem.parquet"));
    let rows: u64 = {
        let gen = duckdb_file(&dir.path().join("gen.duckdb"), &ext_dir);
        gen.execute_batch(&format!(
            "LOAD tpch; CALL dbgen(sf = {sf}); COPY lineitem TO '{}' (HEADER); COPY lineitem TO '{}' (FORMAT parquet);",
            csv.display(),
            parquet.display()
        ))
        .unwrap();
        gen.query_row("SELECT count(*) FROM lineitem", [], |r| r.get::<_, i64>(0))
            .unwrap() as u64
    };
    println!(
        "pluto-duck ingest benchmark: TPC-H lineitem sf {sf} ({rows} rows; CSV {} MB, Parquet {} MB)\n",
        std::fs::metadata(&csv).unwrap().len() / 1_000_000,
        std::fs::metadata(&parquet).unwrap().len() / 1_000_000
    );

    let (rt, url) = common::serve(&config);
    let client = reqwest::Client::new();
    let ingest_url = format!("{url}/api/v1/ingest?wait=3600");

    // DuckDB alone writes into its own database file, as our warehouse does.
    let baseline = duckdb_file(&dir.path().join("baseline.duckdb"), &ext_dir);
    for (name, path, reader) in [("CSV", &csv, "read_csv"), ("Parquet", &parquet, "read_parquet")] {
        let duck = timed(|| {
            baseline
                .execute_batch(&format!(
                    "CREATE OR REPLACE TABLE t AS SELECT * FROM {reader}('{}')",
                    path.display()
                ))
                .unwrap()
        });
        let body = json!({"source": {"kind": "file", "location": path}, "target": format!("lineitem_{}", name.to_lowercase())});
        let mut written = 0;
        let ours = timed(|| {
            let run = rt.block_on(post(&client, &ingest_url, body.clone()));
            written = run["rows"].as_u64().unwrap();
        });
        assert_eq!(written, rows);
        line(&format!("ingest {name} (replace)"), rows, ours, duck);
    }

    // Caching a PostgreSQL table.
    let Ok(pg) = std::env::var("TEST_PG_URL") else {
        println!("\nTEST_PG_URL is not set: the PostgreSQL part needs a server (scripts/bench.sh starts one)");
        std::process::exit(1);
    };
    let table = "bench_orders";
    let status = std::process::Command::new("psql")
        .args([
            pg.as_str(),
            "-v",
            "ON_ERROR_STOP=1",
            "-qc",
            &format!(
                "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} AS SELECT i AS id, i * 1.5 AS amount, \
                 'note ' || i AS note, now() AS created_at FROM generate_series(1, {pg_rows}) i;"
            ),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let url_pg = url::Url::parse(&pg).unwrap();
    // Both sides attach first, untimed: the comparison is the copy.
    baseline
        .execute_batch(&format!(
            "ATTACH 'host={} port={} dbname={} user={} password={}' AS pg (TYPE postgres, READ_ONLY)",
            url_pg.host_str().unwrap(),
            url_pg.port().unwrap(),
            url_pg.path().trim_start_matches('/'),
            url_pg.username(),
            url_pg.password().unwrap()
        ))
        .unwrap();
    let duck = timed(|| {
        baseline
            .execute_batch(&format!(
                "CREATE OR REPLACE TABLE pg_copy AS SELECT * FROM pg.public.{table}"
            ))
            .unwrap()
    });
    rt.block_on(post(
        &client,
        &format!("{url}/api/v1/source"),
        json!({"name": "pg", "dsn": pg}),
    ));
    let mut cached = 0;
    let ours = timed(|| {
        let c = rt.block_on(post(
            &client,
            &format!("{url}/api/v1/source/pg/cache"),
            json!({"schema": "public", "table": table}),
        ));
        cached = c["rows"].as_u64().unwrap();
    });
    assert_eq!(cached, pg_rows);
    line("cache PostgreSQL table", pg_rows, ours, duck);
    let ours = timed(|| {
        let run = rt.block_on(post(
            &client,
            &ingest_url,
            json!({"source": "pg", "table": format!("public.{table}"), "target": "pg_ingest"}),
        ));
        assert_eq!(run["rows"].as_u64().unwrap(), pg_rows);
    });
    line("ingest PostgreSQL table", pg_rows, ours, duck);
}
