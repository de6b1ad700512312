//! Datasets through HTTP: buckets, streamed uploads with content type and user metadata, listings with prefixes,
//! delimiters and pages, ranged downloads, deletes, the size limit and the change events, against the local
//! folder store and an S3-compatible server (TEST_S3_ENDPOINT).

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, Response, StatusCode};
use http_body_util::BodyExt;
use pluto_duck_bootstrap::commands::build_router;
use pluto_duck_bootstrap::config::{Config, DatasetsBackend};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::helpers::{call, get, json, req, required_env, Sandbox};

const CSV: &str = "id,total\n1,10\n2,20\n3,30\n";

fn put(uri: &str, body: impl Into<Body>, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::put(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(body.into()).unwrap()
}

fn with_header(uri: &str, method: &str, name: &str, value: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(name, value)
        .body(Body::empty())
        .unwrap()
}

fn problem(resp: &Response<()>, body: &[u8], status: StatusCode) -> Value {
    assert_eq!(resp.status(), status, "{}", String::from_utf8_lossy(body));
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/problem+json");
    json(body)
}

/// Reads SSE frames from a live body until `n` events arrived (or the deadline passed): (id, event, data).
async fn sse_events(body: &mut Body, n: usize) -> Vec<(u64, String, Value)> {
    let mut text = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while out.len() < n {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .expect("events within the deadline")
            .expect("the stream goes on")
            .unwrap();
        let Ok(data) = frame.into_data() else { continue };
        text.push_str(&String::from_utf8_lossy(&data));
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}:")))
                    .map(|v| v.trim().to_owned())
            };
            if let (Some(id), Some(event), Some(data)) = (field("id"), field("event"), field("data")) {
                out.push((id.parse().unwrap(), event, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    out
}

/// The whole life of a bucket, through the router `config` builds.
async fn bucket_life(config: &Config, bucket: &str) {
    let r = build_router(config).await.unwrap();
    let events = r.clone().oneshot(get("/api/v1/datasets/events")).await.unwrap();
    assert_eq!(events.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut events = events.into_body();

    let (resp, body) = call(
        &r,
        req("POST", "/api/v1/datasets", None, Some(&json!({"name": bucket}))),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["name"], bucket);
    let (resp, body) = call(
        &r,
        req("POST", "/api/v1/datasets", None, Some(&json!({"name": bucket}))),
    )
    .await;
    problem(&resp, &body, StatusCode::CONFLICT);
    for bad in ["Bad_Name", "ab", "192.168.0.1", "a..b"] {
        let (resp, body) = call(&r, req("POST", "/api/v1/datasets", None, Some(&json!({"name": bad})))).await;
        let p = problem(&resp, &body, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(p["detail"].as_str().unwrap().contains("bucket"), "{p}");
    }
    let (resp, body) = call(&r, get("/api/v1/datasets")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(json(&body).as_array().unwrap().iter().any(|b| b["name"] == bucket));

    // Uploads keep the content type and both spellings of user metadata.
    let base = format!("/api/v1/datasets/{bucket}/objects");
    let (resp, body) = call(
        &r,
        put(
            &format!("{base}/raw/2024/orders.csv"),
            CSV,
            &[
                ("content-type", "text/csv"),
                ("x-amz-meta-source", "erp"),
                ("x-pd-meta-owner", "ana"),
            ],
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let stored = json(&body);
    assert_eq!(
        (&stored["key"], &stored["size"], &stored["content_type"]),
        (&json!("raw/2024/orders.csv"), &json!(CSV.len()), &json!("text/csv"))
    );
    assert_eq!(stored["metadata"], json!({"source": "erp", "owner": "ana"}));
    // A streamed body of several chunks, with no length given.
    let chunks = futures::stream::iter(["a,", "b\n", "1,2\n"].map(|c| Ok::<_, std::io::Error>(c.as_bytes().to_vec())));
    let (resp, _) = call(
        &r,
        put(&format!("{base}/raw/2024/jan.csv"), Body::from_stream(chunks), &[]),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    for key in ["raw/top.txt", "readme.md"] {
        let (resp, _) = call(
            &r,
            put(&format!("{base}/{key}"), "x", &[("content-type", "text/plain")]),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
    }

    // Listings: a folder level, then every key one page at a time.
    let (resp, body) = call(&r, get(&format!("{base}?prefix=raw/&delimiter=/"))).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let page = json(&body);
    assert_eq!(page["objects"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["objects"][0]["key"], "raw/top.txt");
    assert_eq!(page["common_prefixes"], json!(["raw/2024/"]));
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let uri = match &token {
            Some(t) => format!("{base}?limit=1&page_token={}", urlencode(t)),
            None => format!("{base}?limit=1"),
        };
        let (resp, body) = call(&r, get(&uri)).await;
        assert_eq!(resp.status(), StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let page = json(&body);
        keys.extend(
            page["objects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["key"].as_str().unwrap().to_owned()),
        );
        token = page["next_page_token"].as_str().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(
        keys,
        ["raw/2024/jan.csv", "raw/2024/orders.csv", "raw/top.txt", "readme.md"]
    );
    let (resp, body) = call(&r, get(&format!("{base}?limit=0"))).await;
    problem(&resp, &body, StatusCode::UNPROCESSABLE_ENTITY);

    // Downloads: whole, ranged, past the end; head and metadata.
    let object = format!("{base}/raw/2024/orders.csv");
    let (resp, body) = call(&r, get(&object)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(body, CSV.as_bytes());
    let h = resp.headers();
    assert_eq!(h[header::CONTENT_TYPE], "text/csv");
    assert_eq!(h[header::ACCEPT_RANGES], "bytes");
    assert_eq!(h["x-amz-meta-source"], "erp");
    assert_eq!(h["x-amz-meta-owner"], "ana");
    assert!(h.contains_key(header::ETAG) && h.contains_key(header::LAST_MODIFIED));
    let (resp, body) = call(&r, with_header(&object, "GET", "range", "bytes=3-7")).await;
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, &CSV.as_bytes()[3..8]);
    assert_eq!(
        resp.headers()[header::CONTENT_RANGE],
        format!("bytes 3-7/{}", CSV.len()).as_str()
    );
    let (resp, body) = call(&r, with_header(&object, "GET", "range", "bytes=-3")).await;
    assert_eq!(
        (resp.status(), body.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &CSV.as_bytes()[CSV.len() - 3..])
    );
    let (resp, body) = call(&r, with_header(&object, "GET", "range", "bytes=1000-")).await;
    problem(&resp, &body, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        resp.headers()[header::CONTENT_RANGE],
        format!("bytes */{}", CSV.len()).as_str()
    );
    let (resp, body) = call(&r, with_header(&object, "GET", "range", "bytes=5-2")).await;
    assert_eq!(
        (resp.status(), body.len()),
        (StatusCode::OK, CSV.len()),
        "a malformed range is ignored"
    );
    let (resp, body) = call(&r, with_header(&object, "HEAD", "x-any", "1")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(body.is_empty());
    assert_eq!(resp.headers()[header::CONTENT_LENGTH], CSV.len().to_string().as_str());
    assert_eq!(resp.headers()["x-amz-meta-source"], "erp");
    let (resp, body) = call(
        &r,
        get(&format!("/api/v1/datasets/{bucket}/metadata/raw/2024/orders.csv")),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(json(&body)["metadata"]["owner"], "ana");

    // Bad keys, missing objects and buckets.
    for bad in ["%2E%2E/etc/passwd", "a/%2E%2E/b", "a//b"] {
        let (resp, body) = call(&r, put(&format!("{base}/{bad}"), "x", &[])).await;
        problem(&resp, &body, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let (resp, body) = call(&r, get(&format!("{base}/missing.csv"))).await;
    problem(&resp, &body, StatusCode::NOT_FOUND);
    let (resp, body) = call(&r, get("/api/v1/datasets/no-such-bucket-pd/objects")).await;
    problem(&resp, &body, StatusCode::NOT_FOUND);
    let (resp, body) = call(&r, put(&format!("{base}/bad-type"), "x", &[("content-type", "csv")])).await;
    problem(&resp, &body, StatusCode::UNPROCESSABLE_ENTITY);

    // Past the size limit (1 MiB here): 413 whether the length is declared or not, and nothing stored.
    let big = vec![b'x'; 1024 * 1024 + 1];
    let declared = Request::put(format!("{base}/big.bin"))
        .header(header::CONTENT_LENGTH, big.len())
        .body(Body::from(big.clone()))
        .unwrap();
    let (resp, body) = call(&r, declared).await;
    problem(&resp, &body, StatusCode::PAYLOAD_TOO_LARGE);
    let streamed = futures::stream::iter(
        big.chunks(64 * 1024)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let (resp, body) = call(&r, put(&format!("{base}/big.bin"), Body::from_stream(streamed), &[])).await;
    problem(&resp, &body, StatusCode::PAYLOAD_TOO_LARGE);
    let (resp, _) = call(&r, with_header(&format!("{base}/big.bin"), "HEAD", "x-any", "1")).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Deletes: a bucket holding objects only with force.
    let (resp, body) = call(&r, req("DELETE", &format!("/api/v1/datasets/{bucket}"), None, None)).await;
    problem(&resp, &body, StatusCode::CONFLICT);
    let (resp, _) = call(&r, req("DELETE", &format!("{base}/readme.md"), None, None)).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (resp, _) = call(&r, get(&format!("{base}/readme.md"))).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let (resp, _) = call(
        &r,
        req("DELETE", &format!("/api/v1/datasets/{bucket}?force=true"), None, None),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (_, body) = call(&r, get("/api/v1/datasets")).await;
    assert!(!json(&body).as_array().unwrap().iter().any(|b| b["name"] == bucket));

    // Every change that happened, in order, numbered one by one.
    let seen = sse_events(&mut events, 7).await;
    let names: Vec<&str> = seen.iter().map(|(_, e, _)| e.as_str()).collect();
    assert_eq!(
        names,
        [
            "bucket.created",
            "object.written",
            "object.written",
            "object.written",
            "object.written",
            "object.deleted",
            "bucket.deleted",
        ]
    );
    assert!(seen.windows(2).all(|w| w[1].0 == w[0].0 + 1), "{seen:?}");
    assert_eq!(seen[1].2["key"], "raw/2024/orders.csv");
    assert_eq!(seen[1].2["size"], CSV.len());
    assert_eq!(
        seen[6].2,
        json!({"event": "bucket.deleted", "at": seen[6].2["at"], "bucket": bucket})
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn datasets_on_the_local_folder_store() {
    let sb = Sandbox::new();
    let mut config = sb.config();
    config.datasets.max_object_mb = 1;
    bucket_life(&config, "lake").await;
    assert!(
        sb.data_dir().join("datasets").is_dir(),
        "the default root is under the data dir"
    );
}

#[tokio::test]
async fn datasets_on_an_s3_compatible_server() {
    let endpoint = required_env("TEST_S3_ENDPOINT");
    let endpoint = if endpoint.contains("://") {
        endpoint
    } else {
        format!("http://{endpoint}")
    };
    let sb = Sandbox::new();
    let mut config = sb.config();
    let var = format!("PD_TEST_S3_SECRET_{}", std::process::id());
    let secret = std::env::var("TEST_S3_SECRET_ACCESS_KEY").unwrap_or_else(|_| "test".into());
    std::env::set_var(&var, &secret);
    config.datasets.backend = DatasetsBackend::S3;
    config.datasets.max_object_mb = 1;
    config.datasets.s3.endpoint = Some(endpoint);
    config.datasets.s3.access_key_id = Some(std::env::var("TEST_S3_ACCESS_KEY_ID").unwrap_or_else(|_| "test".into()));
    config.datasets.s3.secret_access_key = Some(format!("env:{var}"));
    let bucket = format!("pd-http-{}", uuid::Uuid::new_v4().simple());
    bucket_life(&config, &bucket).await;
    assert!(!sb.data_dir().join("datasets").exists(), "nothing on the local disk");
}
