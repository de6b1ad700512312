//! The real binary, as a user runs it.

use std::net::TcpListener;

use crate::helpers::{extension_dir, json, stderr, stdout, Sandbox};

fn assert_one_line_error(o: &std::process::Output, needle: &str) {
    assert!(!o.status.success(), "expected failure, got success: {}", stdout(o));
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    assert!(lines[0].starts_with("error: ") && lines[0].contains(needle), "{err}");
}

#[test]
fn serve_answers_health_and_docs_then_stops_on_sigterm() {
    let sb = Sandbox::new();
    let mut server = sb.spawn_server(&[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let health: serde_json::Value = client
            .get(format!("{}/health", server.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(health["status"], "ok", "{health}");
        assert_eq!(health["duckdb_version"], "v1.5.5");
        let docs = client.get(format!("{}/docs/", server.url)).send().await.unwrap();
        assert_eq!(docs.status(), 200);
        assert!(docs.text().await.unwrap().contains("swagger"));
        let spec: serde_json::Value = client
            .get(format!("{}/openapi.json", server.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(spec["paths"]["/api/v1/projects"].is_object());
    });
    assert!(
        server.url.starts_with("http://127.0.0.1:"),
        "binds loopback by default: {}",
        server.url
    );
    let status = server.terminate();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    assert!(
        !sb.data_dir().join("server.json").exists(),
        "server file removed on shutdown"
    );

    // The server wrote its log where `logs` reads it.
    let o = sb.run(&["logs", "-n", "100"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("pluto-duck listening"), "{}", stdout(&o));
}

#[test]
fn doctor_reports_every_extension_present() {
    let sb = Sandbox::new();
    let o = sb.run(&["doctor", "--json"]);
    let report = json(&o.stdout);
    let checks = report["checks"].as_array().unwrap();
    for ext in [
        "postgres_scanner",
        "mysql_scanner",
        "sqlite_scanner",
        "httpfs",
        "ducklake",
    ] {
        let c = checks
            .iter()
            .find(|c| c["check"] == format!("extension {ext}"))
            .unwrap();
        assert_eq!(c["ok"], true, "{c}");
    }
    let duckdb = checks.iter().find(|c| c["check"] == "duckdb").unwrap();
    assert!(duckdb["detail"].as_str().unwrap().starts_with("v1.5.5"));
    let dbt = checks.iter().find(|c| c["check"] == "dbt").unwrap();
    assert_eq!(dbt["ok"], true, "dbt from the set-up virtualenv: {dbt}");
    assert!(dbt["detail"].as_str().unwrap().contains("dbt-core 1.11."), "{dbt}");
    assert!(checks.iter().any(|c| c["check"] == "disk space"));
    assert!(checks.iter().any(|c| c["check"] == "config sources"));
    assert!(o.status.success(), "{report}");
}

#[test]
fn doctor_names_a_missing_extension_and_its_fix() {
    let sb = Sandbox::new();
    // A copy of the extension directory without httpfs.
    let copy = sb.path().join("ext");
    let platform = copy.join("v1.5.5/linux_amd64");
    std::fs::create_dir_all(&platform).unwrap();
    for entry in std::fs::read_dir(extension_dir().join("v1.5.5/linux_amd64")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "httpfs.duckdb_extension" {
            std::os::unix::fs::symlink(entry.path(), platform.join(entry.file_name())).unwrap();
        }
    }
    let o = sb
        .cmd()
        .env("PLUTODUCK_DUCKDB__EXTENSION_DIRECTORY", &copy)
        .args(["doctor"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let out = stdout(&o);
    assert!(out.contains("FAIL extension httpfs"), "{out}");
    assert!(out.contains("fix: run scripts/setup.sh"), "{out}");
    assert!(out.contains("duckdb-extension-httpfs==1.5.5"), "{out}");
    assert!(out.contains("ok   extension ducklake"), "{out}");
}

#[test]
fn malformed_config_file_is_a_one_line_error() {
    let sb = Sandbox::new();
    let file = sb.path().join("bad.yaml");
    std::fs::write(&file, "server:\n  port: [unclosed\n").unwrap();
    let o = sb.run(&["--config", file.to_str().unwrap(), "doctor"]);
    assert_one_line_error(&o, "invalid configuration");
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn unknown_config_key_is_a_one_line_error_naming_it() {
    let sb = Sandbox::new();
    let dir = sb.path().join("config/pluto-duck");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.yaml"), "server:\n  prot: 8001\n").unwrap();
    let o = sb.run(&["doctor"]);
    assert_one_line_error(&o, "prot");
}

#[test]
fn a_missing_config_file_is_an_error() {
    let sb = Sandbox::new();
    let o = sb.run(&["--config", "/nonexistent/pd.yaml", "doctor"]);
    assert_one_line_error(&o, "does not exist");
}

#[test]
fn port_in_use_is_a_one_line_error() {
    let sb = Sandbox::new();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let o = sb.run(&["serve", "--port", &port]);
    assert_one_line_error(&o, "cannot listen on 127.0.0.1");
    assert!(stderr(&o).contains("in use"), "{}", stderr(&o));
}

#[test]
fn non_loopback_without_token_is_refused() {
    let sb = Sandbox::new();
    let o = sb.run(&["serve", "--host", "0.0.0.0", "--port", "0"]);
    assert_one_line_error(&o, "without an API token");
}

#[test]
fn a_literal_secret_in_config_is_refused_without_echoing_it() {
    let sb = Sandbox::new();
    let o = sb
        .cmd()
        .env("PLUTODUCK_SERVER__API_TOKEN", "hunter2-literal")
        .args(["doctor"])
        .output()
        .unwrap();
    assert_one_line_error(&o, "server.api_token");
    assert!(!stderr(&o).contains("hunter2"));
}

#[test]
fn api_token_from_the_secret_store_guards_the_real_server() {
    let sb = Sandbox::new();
    let mut set = sb
        .cmd()
        .args(["secret", "set", "api_token"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        set.stdin.take().unwrap().write_all(b"tok-from-store-123\n").unwrap();
    }
    assert!(set.wait().unwrap().success());
    let listed = sb.run(&["secret", "list"]);
    assert_eq!(stdout(&listed).trim(), "api_token");

    let mut server = sb.spawn_server_with_env(&[("PLUTODUCK_SERVER__API_TOKEN", "secret:api_token")]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = reqwest::Client::new();
        assert_eq!(
            c.get(format!("{}/health", server.url)).send().await.unwrap().status(),
            200
        );
        let denied = c.get(format!("{}/api/v1/projects", server.url)).send().await.unwrap();
        assert_eq!(denied.status(), 401);
        assert_eq!(denied.headers()["content-type"], "application/problem+json");
        let ok = c
            .get(format!("{}/api/v1/projects", server.url))
            .bearer_auth("tok-from-store-123")
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
    });
    assert!(server.terminate().success());
    let log = std::fs::read_to_string(sb.data_dir().join("logs/pluto-duck.log")).unwrap();
    assert!(!log.contains("tok-from-store-123"), "the token never reaches the log");
}

#[test]
fn init_creates_config_data_dir_and_dbt_project() {
    let sb = Sandbox::new();
    let o = sb.run(&["init"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(sb.path().join("config/pluto-duck/config.yaml").is_file());
    for d in ["data", "artifacts", "configs", "logs"] {
        assert!(sb.data_dir().join(d).is_dir(), "{d}");
    }
    assert!(sb.data_dir().join("dbt/core/dbt_project.yml").is_file());
    // The generated config is valid: doctor loads it.
    let o = sb.run(&["config"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o.stdout)["config"]["server"]["port"], 8000);
}

#[test]
fn every_command_has_help() {
    let sb = Sandbox::new();
    for cmd in [
        vec!["--help"],
        vec!["init", "--help"],
        vec!["serve", "--help"],
        vec!["run", "--help"],
        vec!["doctor", "--help"],
        vec!["openapi", "--help"],
        vec!["logs", "--help"],
        vec!["version", "--help"],
        vec!["secret", "--help"],
    ] {
        let o = sb.run(&cmd);
        assert!(
            o.status.success() && stdout(&o).contains("Usage"),
            "{cmd:?}: {}",
            stderr(&o)
        );
    }
    let v = sb.run(&["version"]);
    assert!(stdout(&v).contains("duckdb v1.5.5"));
    let spec = sb.run(&["openapi"]);
    assert!(json(&spec.stdout)["openapi"].as_str().unwrap().starts_with("3.1"));
}
