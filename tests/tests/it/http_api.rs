//! The local profile through the router, in process.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use pluto_duck_bootstrap::commands::build_router;

use crate::helpers::{call, get, json, Sandbox};

async fn router(sandbox: &Sandbox) -> axum::Router {
    build_router(&sandbox.config()).await.unwrap()
}

fn assert_problem(resp: &axum::http::Response<()>, body: &[u8], status: StatusCode) -> serde_json::Value {
    assert_eq!(resp.status(), status, "{}", String::from_utf8_lossy(body));
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/problem+json");
    let p = json(body);
    assert_eq!(p["status"], status.as_u16());
    assert!(p["type"].as_str().unwrap().starts_with("urn:pluto-duck:problem:"));
    assert!(p["title"].is_string());
    let rid = resp.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(p["request_id"], rid, "problem carries the request id");
    p
}

#[tokio::test]
async fn health_reports_versions_profile_and_extensions() {
    let sb = Sandbox::new();
    let r = router(&sb).await;
    let (resp, body) = call(&r, get("/health")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let h = json(&body);
    assert_eq!(h["status"], "ok", "{h}");
    assert_eq!(h["duckdb_version"], "v1.5.5");
    assert_eq!(h["profile"], "local");
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));
    let names: Vec<&str> = h["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    for ext in [
        "postgres_scanner",
        "mysql_scanner",
        "sqlite_scanner",
        "httpfs",
        "ducklake",
    ] {
        assert!(names.contains(&ext), "{ext} missing from {names:?}");
    }
    // The metadata store lives beside, never inside, the warehouse; a project's database opens on first use.
    assert!(sb.data_dir().join("data/metadata.db").is_file());
    let (resp, _) = call(&r, crate::query::post_query("SELECT 1", "?wait=10", None)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(sb.data_dir().join("projects/default/warehouse.duckdb").is_file());
}

#[tokio::test]
async fn docs_and_openapi_are_served() {
    let sb = Sandbox::new();
    let r = router(&sb).await;
    let (resp, body) = call(&r, get("/openapi.json")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(json(&body)["paths"]["/health"].is_object());
    let (resp, body) = call(&r, get("/docs/")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).contains("swagger"), "Swagger UI page");
}

#[tokio::test]
async fn default_project_exists() {
    let sb = Sandbox::new();
    let r = router(&sb).await;
    let (resp, body) = call(&r, get("/api/v1/projects")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(json(&body)[0]["id"], "default");
    let (resp, body) = call(&r, get("/api/v1/projects/default")).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test]
async fn errors_are_problem_json_with_the_request_id() {
    let sb = Sandbox::new();
    let r = router(&sb).await;

    let (resp, body) = call(&r, get("/api/v1/projects/nope")).await;
    let p = assert_problem(&resp, &body, StatusCode::NOT_FOUND);
    assert_eq!(p["detail"], "project \"nope\" not found");
    assert_eq!(p["instance"], "/api/v1/projects/nope");

    let (resp, body) = call(&r, get("/api/v1/projects/not%20an%20id")).await;
    assert_problem(&resp, &body, StatusCode::UNPROCESSABLE_ENTITY);

    let (resp, body) = call(&r, get("/api/v1/no-such-route")).await;
    assert_problem(&resp, &body, StatusCode::NOT_FOUND);

    let (resp, body) = call(&r, Request::delete("/health").body(Body::empty()).unwrap()).await;
    assert_problem(&resp, &body, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_client_request_id_is_propagated() {
    let sb = Sandbox::new();
    let r = router(&sb).await;
    let req = Request::get("/api/v1/projects/zzz")
        .header("x-request-id", "abc-123")
        .body(Body::empty())
        .unwrap();
    let (resp, body) = call(&r, req).await;
    assert_eq!(resp.headers()["x-request-id"], "abc-123");
    assert_eq!(json(&body)["request_id"], "abc-123");
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_with_a_problem() {
    let sb = Sandbox::new();
    let mut config = sb.config();
    config.server.body_limit_mb = 1;
    let r = build_router(&config).await.unwrap();
    let big = vec![b'x'; 2 * 1024 * 1024];
    let req = Request::post("/api/v1/projects")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, big.len())
        .body(Body::from(big))
        .unwrap();
    let (resp, body) = call(&r, req).await;
    assert_problem(&resp, &body, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn api_token_guards_everything_but_health() {
    let sb = Sandbox::new();
    let mut config = sb.config();
    let var = format!("PD_TEST_TOKEN_{}", std::process::id());
    std::env::set_var(&var, "s3cr3t-token-value");
    config.server.api_token = Some(format!("env:{var}"));
    let r = build_router(&config).await.unwrap();

    let (resp, _) = call(&r, get("/health")).await;
    assert_eq!(resp.status(), StatusCode::OK);

    for path in ["/api/v1/projects", "/openapi.json", "/docs/"] {
        let (resp, body) = call(&r, get(path)).await;
        let p = assert_problem(&resp, &body, StatusCode::UNAUTHORIZED);
        assert_eq!(resp.headers()[header::WWW_AUTHENTICATE], "Bearer");
        assert!(!p.to_string().contains("s3cr3t"), "{p}");
    }
    let wrong = Request::get("/api/v1/projects")
        .header(header::AUTHORIZATION, "Bearer s3cr3t-token-valuX")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&r, wrong).await.0.status(), StatusCode::UNAUTHORIZED);
    let right = Request::get("/api/v1/projects")
        .header(header::AUTHORIZATION, "Bearer s3cr3t-token-value")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&r, right).await.0.status(), StatusCode::OK);
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let sb = Sandbox::new();
    let mut config = sb.config();
    config.server.cors_origins = vec!["http://localhost:3000".into()];
    let r = build_router(&config).await.unwrap();
    let preflight = |origin: &str| {
        Request::builder()
            .method("OPTIONS")
            .uri("/api/v1/projects")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
            .body(Body::empty())
            .unwrap()
    };
    let (resp, _) = call(&r, preflight("http://localhost:3000")).await;
    assert_eq!(
        resp.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "http://localhost:3000"
    );
    let (resp, _) = call(&r, preflight("http://evil.example")).await;
    assert!(resp.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
}

pub fn post_json(uri: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn create_project_validates_input_and_conflicts() {
    let sb = Sandbox::new();
    let r = router(&sb).await;
    let (resp, body) = call(&r, post_json("/api/v1/projects", r#"{"id":"sales","name":"Sales"}"#)).await;
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["name"], "Sales");

    let (resp, body) = call(&r, post_json("/api/v1/projects", r#"{"id":"sales"}"#)).await;
    assert_problem(&resp, &body, StatusCode::CONFLICT);
    let (resp, body) = call(&r, post_json("/api/v1/projects", r#"{"id":"no way"}"#)).await;
    let p = assert_problem(&resp, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p["detail"].as_str().unwrap().contains("invalid identifier"), "{p}");
    let (resp, body) = call(&r, post_json("/api/v1/projects", r#"{"id": "x", "#)).await;
    assert_problem(&resp, &body, StatusCode::BAD_REQUEST);
    let (resp, body) = call(&r, post_json("/api/v1/projects", r#"{"id":"y","colour":"red"}"#)).await;
    let p = assert_problem(&resp, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p["detail"].as_str().unwrap().contains("colour"), "{p}");
    let no_type = Request::post("/api/v1/projects")
        .body(Body::from(r#"{"id":"z"}"#))
        .unwrap();
    let (resp, body) = call(&r, no_type).await;
    assert_problem(&resp, &body, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Nothing but the first create was stored.
    let (_, body) = call(&r, get("/api/v1/projects")).await;
    let ids: Vec<String> = json(&body)
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, vec!["default", "sales"]);
}

/// Compression never costs more than it saves on loopback: zstd where the client takes it (whatever order it names
/// them in), gzip otherwise, and never for Arrow or Parquet bodies.
#[tokio::test]
async fn results_are_compressed_with_zstd_or_gzip_but_arrow_and_parquet_never() {
    let sb = Sandbox::new();
    let r = router(&sb).await;
    let sql = "SELECT range AS id, 'row ' || range AS label FROM range(10000)";
    for (accept, encodings, expected) in [
        ("application/x-ndjson", "gzip, deflate, br, zstd", Some("zstd")),
        ("application/x-ndjson", "zstd, gzip", Some("zstd")),
        ("application/x-ndjson", "gzip", Some("gzip")),
        ("text/csv", "gzip, zstd", Some("zstd")),
        ("application/json", "identity", None),
        ("application/vnd.apache.arrow.stream", "gzip, zstd", None),
        ("application/vnd.apache.parquet", "gzip, zstd", None),
    ] {
        let mut req = crate::query::post_query(sql, "?wait=30", None);
        req.headers_mut().insert(header::ACCEPT, accept.parse().unwrap());
        req.headers_mut()
            .insert(header::ACCEPT_ENCODING, encodings.parse().unwrap());
        let (resp, body) = call(&r, req).await;
        assert_eq!(resp.status(), StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let sent = resp
            .headers()
            .get(header::CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap());
        assert_eq!(sent, expected, "{accept} with accept-encoding {encodings}");
    }
}
