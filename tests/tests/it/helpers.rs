use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, Response};
use http_body_util::BodyExt;
use pluto_duck_bootstrap::config::Config;
use tempfile::TempDir;
use tower::ServiceExt;

/// A variable the test command sets; a test that needs it fails loudly, naming it, when it is absent.
pub fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through scripts/test.sh, which starts the services and sets it")
    })
}

pub fn extension_dir() -> PathBuf {
    PathBuf::from(required_env("PLUTODUCK_TEST_EXTENSION_DIR"))
}

/// The debug `pluto-duck` binary (built by scripts/test.sh before the tests).
pub fn binary() -> PathBuf {
    let path = PathBuf::from(required_env("PLUTODUCK_TEST_BIN"));
    assert!(
        path.is_file(),
        "{} does not exist: cargo build -p pluto-duck",
        path.display()
    );
    path
}

/// An isolated home for one test: its own data dir, config dir and HOME, the shared extension directory.
pub struct Sandbox {
    pub dir: TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.path().join("data")
    }

    pub fn config(&self) -> Config {
        let mut c = Config {
            data_dir: self.data_dir(),
            ..Config::default()
        };
        c.duckdb.extension_directory = Some(extension_dir());
        c.secrets.key_file = Some(self.path().join("config/secret.key"));
        // Never the developer's OS keyring; secrets_keyring.rs tests the keyring on private sessions.
        c.secrets.backend = pluto_duck_bootstrap::config::SecretsBackend::File;
        c.sources.allowed_roots = Some(vec![self.path().to_path_buf()]);
        c
    }

    /// A `pluto-duck` command with HOME and XDG dirs inside the sandbox and no PLUTODUCK_* from outside.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(binary());
        for (k, _) in std::env::vars() {
            if k.starts_with("PLUTODUCK_") || k == "RUST_LOG" {
                cmd.env_remove(k);
            }
        }
        cmd.env("HOME", self.path())
            .env("XDG_CONFIG_HOME", self.path().join("config"))
            .env("XDG_DATA_HOME", self.path().join("share"))
            .env("PLUTODUCK_DATA_DIR", self.data_dir())
            .env("PLUTODUCK_DUCKDB__EXTENSION_DIRECTORY", extension_dir())
            .env("PLUTODUCK_DBT__EXECUTABLE", required_env("PLUTODUCK_TEST_DBT"))
            .env("PLUTODUCK_SECRETS__BACKEND", "file")
            .current_dir(self.path())
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Starts `serve` on a free port and waits until `/health` answers.
    pub fn spawn_server(&self, extra: &[&str]) -> Server {
        self.spawn(extra, &[])
    }

    pub fn spawn_server_with_env(&self, env: &[(&str, &str)]) -> Server {
        self.spawn(&[], env)
    }

    fn spawn(&self, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let child = self
            .cmd()
            .envs(env.iter().copied())
            .args(["serve", "--port", "0"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let server_file = self.data_dir().join("server.json");
        let mut server = Server {
            child,
            url: String::new(),
        };
        let url = poll(Duration::from_secs(60), || {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("server exited early with {status}: {}", server.stderr());
            }
            let text = std::fs::read_to_string(&server_file).ok()?;
            let v: serde_json::Value = serde_json::from_str(&text).ok()?;
            v["url"].as_str().map(str::to_owned)
        });
        server.url = url;
        server
    }
}

pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Server {
    pub fn stderr(&mut self) -> String {
        use std::io::Read;
        let mut s = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let child = &mut self.child;
        poll(Duration::from_secs(30), || child.try_wait().unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls until `f` yields, panicking at the deadline. No fixed sleeps.
pub fn poll<T>(deadline: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < deadline, "condition not met within {deadline:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Async polling with a deadline.
pub async fn poll_async<T, F, Fut>(deadline: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < deadline, "condition not met within {deadline:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends one request through the router in-process.
pub async fn call(router: &axum::Router, req: Request<Body>) -> (Response<()>, Vec<u8>) {
    let resp = router.clone().oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes().to_vec();
    (Response::from_parts(parts, ()), bytes)
}

pub fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

pub fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Fails naming the file when `needle` appears in any file under `root` (logs, databases, configs).
pub fn assert_not_in_tree(root: &Path, needle: &str) {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{needle:?} found in {}",
                    path.display()
                );
            }
        }
    }
}

/// A request with an optional project header and JSON body.
pub fn req(method: &str, uri: &str, project: Option<&str>, body: Option<&serde_json::Value>) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(p) = project {
        b = b.header("x-pluto-project", p);
    }
    match body {
        Some(v) => b
            .header(axum::http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    }
}

pub fn post(uri: &str, body: &serde_json::Value) -> Request<Body> {
    req("POST", uri, None, Some(body))
}

/// Sends through the in-process router: status, the body as JSON (`Null` when it is not JSON) and as text.
pub async fn send(
    api: &crate::query::TestApi,
    r: Request<Body>,
) -> (axum::http::StatusCode, serde_json::Value, String) {
    let (resp, body) = call(&api.router, r).await;
    let text = String::from_utf8_lossy(&body).into_owned();
    (
        resp.status(),
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        text,
    )
}
