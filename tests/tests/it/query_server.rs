//! Query execution through the real binary over a socket.

use std::io::Read;

use crate::helpers::{stderr, stdout, Sandbox};

/// Peak resident memory of a process (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

#[test]
fn tens_of_millions_of_rows_stream_with_flat_server_memory() {
    let sb = Sandbox::new();
    // Caps DuckDB's own buffers so what is measured is our pipeline.
    let mut server = sb.spawn_server_with_env(&[("PLUTODUCK_DUCKDB__MEMORY_LIMIT", "512MB")]);
    let pid = server.child.id();
    let rows: u64 = 20_000_000;
    let client = reqwest::blocking::Client::builder().timeout(None).build().unwrap();
    // Warm up so the baseline includes the runtime, DuckDB and the first allocations.
    let warm = client
        .post(format!("{}/api/v1/query?wait=60", server.url))
        .json(&serde_json::json!({"sql": "SELECT * FROM range(100000)"}))
        .send()
        .unwrap();
    assert!(warm.status().is_success());
    let _ = warm.bytes().unwrap();
    let before = peak_rss(pid);

    let mut resp = client
        .post(format!("{}/api/v1/query?wait=600", server.url))
        .header("accept", "application/vnd.apache.arrow.stream")
        .json(&serde_json::json!({"sql": format!("SELECT range AS id, range * 2 AS twice FROM range({rows})")}))
        .send()
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(resp.headers()["x-total-rows"], rows.to_string().as_str());
    // Count rows while reading, so the client does not hold the body either.
    let mut reader = arrow::ipc::reader::StreamReader::try_new(std::io::BufReader::new(&mut resp), None).unwrap();
    let mut seen = 0u64;
    let mut bytes = 0u64;
    for batch in &mut reader {
        let batch = batch.unwrap();
        seen += batch.num_rows() as u64;
        bytes += batch.get_array_memory_size() as u64;
    }
    assert_eq!(seen, rows);
    let growth = peak_rss(pid).saturating_sub(before);
    eprintln!("streamed {bytes} bytes; server peak grew {growth} bytes (baseline {before})");
    // 20 M rows x 16 bytes = 320 MB went through; the server's peak may grow by a small fraction of that.
    assert!(bytes > 300_000_000, "{bytes}");
    assert!(
        growth < bytes / 4,
        "server peak memory grew by {growth} bytes while streaming {bytes} bytes"
    );
    assert!(server.terminate().success());
}

#[test]
fn cli_sql_works_with_and_without_a_server() {
    let sb = Sandbox::new();
    // No server: the CLI opens the warehouse itself.
    let o = sb.run(&[
        "sql",
        "CREATE TABLE t AS SELECT range AS id, 'n' || range AS name FROM range(3); SELECT * FROM t",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    assert!(
        table.contains("| id | name |") && table.contains("| 2  | n2   |") && table.contains("(3 rows)"),
        "{table}"
    );

    let mut server = sb.spawn_server(&[]);
    // With a server holding the warehouse, the CLI goes through its API (opening the file would fail).
    let o = sb.run(&["sql", "SELECT id, name FROM t ORDER BY id", "--format", "csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "id,name\r\n0,n0\r\n1,n1\r\n2,n2\r\n");
    let out = sb.path().join("out.parquet");
    let o = sb.run(&[
        "sql",
        "SELECT * FROM t",
        "--format",
        "parquet",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut magic = [0u8; 4];
    std::fs::File::open(&out).unwrap().read_exact(&mut magic).unwrap();
    assert_eq!(&magic, b"PAR1");
    let o = sb.run(&["sql", "SELECT * FROM missing_table"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.trim().lines().count() == 1 && err.contains("missing_table"),
        "{err}"
    );
    let o = sb.run(&["sql", "DROP TABLE t", "--read-only"]);
    assert!(
        !o.status.success() && stderr(&o).contains("DROP TABLE"),
        "{}",
        stderr(&o)
    );
    // Queries from the CLI are in the server's history, marked as such.
    let history: serde_json::Value = reqwest::blocking::get(format!("{}/api/v1/query", server.url))
        .unwrap()
        .json()
        .unwrap();
    assert!(
        history["items"].as_array().unwrap().iter().any(|q| q["actor"] == "cli"),
        "{history}"
    );
    assert!(server.terminate().success());
}
