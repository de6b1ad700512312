//! The hybrid profile: two real server processes share one PostgreSQL control plane and one DuckLake (catalog
//! in PostgreSQL, data files in an S3-compatible store), the test command's loopback services (no Docker here).

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{poll, required_env, Sandbox, Server};

const MASTER_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// A fresh PostgreSQL database for one test, so its lake and metadata are its own.
fn fresh_database(name: &str) -> String {
    let url = required_env("TEST_PG_URL");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
    });
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

/// A bucket on the test command's S3-compatible server.
fn fresh_bucket(name: &str) -> String {
    let endpoint = required_env("TEST_S3_ENDPOINT");
    let resp = reqwest::blocking::Client::new()
        .put(format!("http://{endpoint}/{name}"))
        .send()
        .unwrap();
    assert!(resp.status().is_success(), "bucket {name}: {}", resp.status());
    endpoint
}

struct Fleet {
    pg_url: String,
    endpoint: String,
    bucket: String,
}

impl Fleet {
    fn new(tag: &str) -> Self {
        let name = format!("hy_{tag}_{}", std::process::id());
        let bucket = name.replace('_', "-");
        Self {
            pg_url: fresh_database(&name),
            endpoint: fresh_bucket(&bucket),
            bucket,
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PLUTODUCK_PROFILE", "hybrid".into()),
            ("PLUTODUCK_HYBRID__DATABASE_URL", "env:HYBRID_TEST_PG_URL".into()),
            ("HYBRID_TEST_PG_URL", self.pg_url.clone()),
            (
                "PLUTODUCK_HYBRID__LAKE__DATA_PATH",
                format!("s3://{}/lake", self.bucket),
            ),
            (
                "PLUTODUCK_HYBRID__LAKE__S3__ENDPOINT",
                format!("http://{}", self.endpoint),
            ),
            ("PLUTODUCK_HYBRID__LAKE__S3__ACCESS_KEY_ID", "test".into()),
            (
                "PLUTODUCK_HYBRID__LAKE__S3__SECRET_ACCESS_KEY",
                "env:HYBRID_TEST_S3_SECRET".into(),
            ),
            ("HYBRID_TEST_S3_SECRET", "s3_secret_value_xyz".into()),
            ("PLUTODUCK_HYBRID__MASTER_KEY", "env:HYBRID_TEST_MASTER_KEY".into()),
            ("HYBRID_TEST_MASTER_KEY", MASTER_KEY.into()),
        ]
    }

    fn spawn(&self, sb: &Sandbox) -> Server {
        self.spawn_with(sb, &[])
    }

    fn spawn_with(&self, sb: &Sandbox, extra: &[(&str, &str)]) -> Server {
        let env = self.env();
        let mut pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        pairs.extend_from_slice(extra);
        sb.spawn_server_with_env(&pairs)
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// Runs SQL through a server and waits for the result.
fn sql(server: &Server, text: &str) -> (u16, Value) {
    let resp = client()
        .post(format!("{}/api/v1/query?wait=60", server.url))
        .json(&json!({ "sql": text }))
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

fn scalar(server: &Server, text: &str) -> Value {
    let (status, body) = sql(server, text);
    assert_eq!(status, 200, "{text}: {body}");
    body["rows"][0][0].clone()
}

fn get(server: &Server, path: &str) -> (u16, Value) {
    let resp = client().get(format!("{}{path}", server.url)).send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

fn post(server: &Server, path: &str, body: &Value) -> (u16, Value) {
    let resp = client()
        .post(format!("{}{path}", server.url))
        .json(body)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

#[test]
fn two_servers_share_the_lake_and_the_control_plane() {
    let fleet = Fleet::new("share");
    let (sa, sb) = (Sandbox::new(), Sandbox::new());
    let a = fleet.spawn(&sa);
    let b = fleet.spawn(&sb);

    // SQL written through one server is read through the other; enough rows that DuckLake writes Parquet files
    // to the object store instead of inlining them in the catalog.
    let (status, body) = sql(
        &a,
        "CREATE TABLE orders AS SELECT range AS id, range % 7 AS shop FROM range(5000)",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(scalar(&b, "SELECT count(*) FROM orders"), json!(5000));
    let (status, body) = sql(&b, "INSERT INTO orders SELECT range + 5000, 1 FROM range(10)");
    assert_eq!(status, 200, "{body}");
    assert_eq!(scalar(&a, "SELECT count(*) FROM orders"), json!(5010));

    // The data files are on the object store, under the project's prefix.
    let listing = client()
        .get(format!(
            "http://{}/{}?list-type=2&prefix=lake/default/",
            fleet.endpoint, fleet.bucket
        ))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(listing.contains(".parquet"), "no data file on S3: {listing}");

    // An ingest through A is a table through B.
    let csv = sa.path().join("shops.csv");
    std::fs::write(&csv, "shop,name\n1,north\n2,south\n3,east\n").unwrap();
    let (status, body) = post(
        &a,
        "/api/v1/ingest?wait=120",
        &json!({"source": {"kind": "file", "location": csv.display().to_string()}, "target": "shops"}),
    );
    assert!(status == 200 || status == 201, "{status}: {body}");
    assert_eq!(scalar(&b, "SELECT count(*) FROM shops"), json!(3));
    assert_eq!(
        scalar(&b, "SELECT name FROM orders JOIN shops USING (shop) WHERE id = 5003"),
        json!("north")
    );

    // Time travel: the table's snapshots through B, and the table as of its first one.
    let (status, snaps) = get(&b, "/api/v1/lake/snapshots?table=orders");
    assert_eq!(status, 200, "{snaps}");
    let snaps = snaps.as_array().unwrap().clone();
    assert!(snaps.len() >= 2, "{snaps:?}");
    let first = snaps[0]["id"].as_u64().unwrap();
    assert!(
        snaps[0]["changes"]["tables_created"]
            .to_string()
            .contains("main.orders"),
        "{snaps:?}"
    );
    assert_eq!(
        scalar(&b, &format!("SELECT count(*) FROM orders AT (VERSION => {first})")),
        json!(5000)
    );
    let (status, _) = get(&b, "/api/v1/lake/snapshots?table=nowhere");
    assert_eq!(status, 404);
    let (status, all) = get(&a, "/api/v1/lake/snapshots");
    assert_eq!(status, 200);
    assert!(all.as_array().unwrap().len() > snaps.len());

    // The lake's catalog database is not the project's to read.
    let (status, body) = sql(&a, "SELECT * FROM __pd_lake_meta.lake_default.ducklake_snapshot");
    assert_eq!(status, 403, "{body}");

    // An analysis saved and executed through A: its definition and its table are B's too.
    let (status, body) = post(
        &a,
        "/api/v1/asset/analysis",
        &json!({"id": "by_shop", "sql": "SELECT shop, count(*) AS n FROM orders GROUP BY shop", "materialization": "table"}),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = post(&a, "/api/v1/asset/analysis/by_shop/execute?wait=60", &json!({}));
    assert_eq!(status, 200, "{body}");
    let (status, def) = get(&b, "/api/v1/asset/analysis/by_shop");
    assert_eq!(status, 200, "{def}");
    assert_eq!(def["materialization"], "table");
    assert_eq!(scalar(&b, "SELECT sum(n)::BIGINT FROM analysis.by_shop"), json!(5010));

    // A board created through A is listed through B (one control plane).
    let (status, board) = post(&a, "/api/v1/boards", &json!({"name": "Fleet board"}));
    assert_eq!(status, 201, "{board}");
    let (_, boards) = get(&b, "/api/v1/boards");
    assert!(boards.to_string().contains("Fleet board"), "{boards}");

    // A source's password stored through A is the fleet's: a server started later attaches the source with it.
    // In PostgreSQL it is ciphertext only.
    let pg = url::Url::parse(&fleet.pg_url).unwrap();
    let (status, body) = post(
        &a,
        "/api/v1/source",
        &json!({"name": "cp", "kind": "postgres", "host": pg.host_str().unwrap(), "port": pg.port().unwrap(),
                "database": pg.path().trim_start_matches('/'), "user": pg.username(),
                "password": pg.password().unwrap()}),
    );
    assert_eq!(status, 201, "{body}");
    let sc = Sandbox::new();
    let c = fleet.spawn(&sc);
    assert_eq!(
        scalar(&c, "SELECT count(*) > 0 FROM cp.public.encrypted_secrets"),
        json!(true)
    );
    let rows = sealed_rows(&fleet.pg_url);
    assert!(!rows.is_empty());
    let password = pg.password().unwrap();
    for (name, nonce, ciphertext) in &rows {
        assert!(!ciphertext.contains(password) && !name.contains(password));
        assert_eq!(nonce.len(), 24, "a 96-bit nonce in hex");
        let hex_password: String = password.bytes().map(|b| format!("{b:02x}")).collect();
        assert!(
            !ciphertext.contains(&hex_password),
            "the value is not merely hex-encoded"
        );
    }
}

/// The rows of the secrets table, read straight from PostgreSQL.
fn sealed_rows(pg_url: &str) -> Vec<(String, String, String)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(pg_url).await.unwrap();
        sqlx::query_as("SELECT name, nonce, ciphertext FROM encrypted_secrets")
            .fetch_all(&mut conn)
            .await
            .unwrap()
    })
}

#[test]
fn projects_have_lakes_of_their_own() {
    let fleet = Fleet::new("projects");
    let sa = Sandbox::new();
    let a = fleet.spawn(&sa);
    let (status, body) = post(&a, "/api/v1/projects", &json!({"id": "team"}));
    assert_eq!(status, 201, "{body}");
    let (status, _) = sql(&a, "CREATE TABLE secret_plans AS SELECT 42 AS x");
    assert_eq!(status, 200);
    let resp = client()
        .post(format!("{}/api/v1/query?wait=60", a.url))
        .header("x-pluto-project", "team")
        .json(&json!({"sql": "SELECT * FROM secret_plans"}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422, "another project's table is visible");
    assert!(resp.text().unwrap().contains("secret_plans does not exist"));
    // Its lake is a schema of its own in the control plane, its files a prefix of their own.
    let (status, snaps) = get(&a, "/api/v1/lake/snapshots");
    assert_eq!(status, 200);
    assert!(snaps.to_string().contains("main.secret_plans"));
    let team = client()
        .get(format!("{}/api/v1/lake/snapshots", a.url))
        .header("x-pluto-project", "team")
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(!team.contains("secret_plans"), "{team}");
}

#[test]
fn start_up_fails_fast_with_one_line_when_the_object_store_is_unreachable() {
    let fleet = Fleet::new("down");
    let sb = Sandbox::new();
    let mut env = fleet.env();
    for (k, v) in env.iter_mut() {
        if *k == "PLUTODUCK_HYBRID__LAKE__S3__ENDPOINT" {
            *v = "http://127.0.0.1:9".into();
        }
    }
    let started = std::time::Instant::now();
    let out = sb
        .cmd()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .args(["serve", "--port", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("object store"), "{stderr}");
    assert!(!stderr.contains("s3_secret_value_xyz"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(60));

    // doctor names the failing part.
    let out = sb
        .cmd()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let check = |name: &str| {
        report["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["check"] == name))
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(check("postgres")["ok"], json!(true), "{report}");
    assert_eq!(check("object store")["ok"], json!(false), "{report}");
}

#[tokio::test]
async fn the_control_planes_secret_store_seals_values_under_the_master_key() {
    use pluto_duck_application::ports::{SecretError, SecretStore};
    use pluto_duck_sqlx_metadata::{MasterKey, PgMetadataStore};
    use secrecy::{ExposeSecret, SecretString};
    let url = required_env("TEST_PG_URL");
    let store = PgMetadataStore::connect(&url).await.unwrap();
    let key = MasterKey::from_hex(MASTER_KEY).unwrap();
    let secrets = store.secret_store(&key).unwrap();
    let name = format!("hy_secret_{}", std::process::id());
    secrets.put(&name, SecretString::from("v1-plain")).await.unwrap();
    secrets.put(&name, SecretString::from("v2-plain")).await.unwrap();
    let got = secrets.get(&name).await.unwrap().unwrap();
    assert_eq!(got.expose_secret(), "v2-plain");
    assert!(secrets.list().await.unwrap().contains(&name));
    // Another server with the same key reads it; one with another key cannot, and says why without the value.
    let other = PgMetadataStore::connect(&url).await.unwrap();
    let same = other.secret_store(&key).unwrap();
    assert_eq!(same.get(&name).await.unwrap().unwrap().expose_secret(), "v2-plain");
    let wrong = other
        .secret_store(&MasterKey::from_hex(&"11".repeat(32)).unwrap())
        .unwrap();
    let err = wrong.get(&name).await.unwrap_err();
    assert!(matches!(err, SecretError::Unavailable(_)), "{err:?}");
    assert!(!err.to_string().contains("v2-plain"));
    assert!(secrets.get("hy_never_stored").await.unwrap().is_none());
    assert!(matches!(
        secrets.put("bad name!", SecretString::from("x")).await,
        Err(SecretError::InvalidName(_))
    ));
    assert!(secrets.delete(&name).await.unwrap());
    assert!(!secrets.delete(&name).await.unwrap());
    assert!(secrets.get(&name).await.unwrap().is_none());
}

#[test]
fn a_run_started_on_one_server_is_watched_and_cancelled_through_another() {
    use std::io::{BufRead, BufReader};
    let fleet = Fleet::new("cancel");
    let (sa, sb) = (Sandbox::new(), Sandbox::new());
    // One engine thread: the long query must leave the server's own tasks (the cancel poller) a core.
    let a = fleet.spawn_with(&sa, &[("PLUTODUCK_DUCKDB__THREADS", "1")]);
    let b = fleet.spawn(&sb);
    let (status, run) = post(
        &a,
        "/api/v1/query",
        &json!({"sql": "SELECT sum(range) FROM range(200000000000)", "timeout_ms": 600000}),
    );
    assert_eq!(status, 202, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    // B finds it running once A's state reached the control plane.
    poll(Duration::from_secs(30), || {
        let (status, q) = get(&b, &format!("/api/v1/query/{id}"));
        (status == 200 && q["status"] == "running").then_some(())
    });
    // B streams its events while it runs: the stream ends with the cancellation A reports.
    let events = client()
        .get(format!("{}/api/v1/query/{id}/events", b.url))
        .send()
        .unwrap();
    assert_eq!(events.status().as_u16(), 200);
    let reader = std::thread::spawn(move || {
        BufReader::new(events)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.starts_with("event:"))
            .collect::<Vec<_>>()
    });
    let started = std::time::Instant::now();
    let (status, cancelled) = post(&b, &format!("/api/v1/query/{id}/cancel"), &json!({}));
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    let (_, on_a) = get(&a, &format!("/api/v1/query/{id}"));
    assert_eq!(on_a["status"], "cancelled", "{on_a}");
    let kinds = reader.join().unwrap();
    assert!(kinds.iter().any(|k| k.contains("started")), "{kinds:?}");
    assert!(kinds.last().is_some_and(|k| k.contains("cancelled")), "{kinds:?}");
    // Cancelling a finished run is refused, through either server.
    let (status, _) = post(&a, &format!("/api/v1/query/{id}/cancel"), &json!({}));
    assert_eq!(status, 409);
}

/// The control plane's `AnalysisStore`: what the YAML files hold, on both dialects of the metadata store.
async fn analysis_definitions_contract(store: &pluto_duck_sqlx_metadata::SqlxMetadataStore, prefix: &str) {
    use chrono::TimeZone as _;
    use pluto_duck_application::ports::{AnalysisStore, MetadataStore};
    use pluto_duck_domain::{Analysis, Identifier, Materialization, ParamType, Parameter, Project, ProjectId};
    let project = Project {
        id: ProjectId::parse(format!("{prefix}_defs")).unwrap(),
        name: "defs".into(),
        created_at: chrono::Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
    };
    store.ensure_project(&project).await.unwrap();
    let at = chrono::Utc.timestamp_opt(1_700_000_100, 123_456_000).unwrap();
    let inc = Analysis {
        id: Identifier::parse("daily_sales").unwrap(),
        project: project.id.clone(),
        name: "Daily sales".into(),
        sql: "SELECT day, sum(amount) AS total FROM orders WHERE day >= $since GROUP BY day".into(),
        description: "per day".into(),
        tags: vec!["sales".into(), "daily".into()],
        materialization: Materialization::Incremental {
            unique_key: vec!["day".into()],
            cursor: Some("day".into()),
        },
        parameters: vec![Parameter {
            name: Identifier::parse("since").unwrap(),
            ty: ParamType::Date,
            default: Some("2024-01-01".into()),
            required: false,
        }],
        created_at: at,
        updated_at: at,
    };
    let view = Analysis {
        id: Identifier::parse("a_view").unwrap(),
        name: "a_view".into(),
        sql: "SELECT 1 AS x".into(),
        description: String::new(),
        tags: vec![],
        materialization: Materialization::View,
        parameters: vec![],
        ..inc.clone()
    };
    store.put(&inc).await.unwrap();
    store.put(&view).await.unwrap();
    assert_eq!(store.get(&project.id, &inc.id).await.unwrap(), Some(inc.clone()));
    let listed = store.list(&project.id).await.unwrap();
    assert_eq!(listed, vec![view.clone(), inc.clone()], "ordered by id");
    let changed = Analysis {
        sql: "SELECT 2 AS x".into(),
        updated_at: at + chrono::Duration::seconds(5),
        ..view.clone()
    };
    store.put(&changed).await.unwrap();
    assert_eq!(store.get(&project.id, &view.id).await.unwrap(), Some(changed));
    assert!(store.delete(&project.id, &view.id).await.unwrap());
    assert!(!store.delete(&project.id, &view.id).await.unwrap());
    assert_eq!(store.get(&project.id, &view.id).await.unwrap(), None);
}

#[tokio::test]
async fn analysis_definitions_live_in_the_control_plane_on_both_dialects() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = pluto_duck_sqlx_metadata::SqliteMetadataStore::open(&dir.path().join("m.db"))
        .await
        .unwrap();
    analysis_definitions_contract(&sqlite, "sq").await;
    let pg = pluto_duck_sqlx_metadata::PgMetadataStore::connect(&required_env("TEST_PG_URL"))
        .await
        .unwrap();
    analysis_definitions_contract(&pg, &format!("hy{}", std::process::id())).await;
}
