//! The CLI talks to the API: over HTTP when a server holds the warehouse, otherwise to the same router
//! in-process. Either way it sees the same status codes and bodies.

use axum::body::Body;
use http_body_util::BodyExt;
use pluto_duck_application::ProblemType;
use secrecy::ExposeSecret;
use tower::ServiceExt;

use crate::config::Config;
use crate::error::{CliError, CliResult};
use crate::{commands, secrets};

pub enum ApiClient {
    Remote {
        url: String,
        client: reqwest::Client,
        token: Option<secrecy::SecretString>,
    },
    Local(axum::Router),
}

/// The URL of a live server holding this data dir, if any.
pub(crate) async fn running_server(config: &Config) -> Option<String> {
    let text = std::fs::read_to_string(config.server_file()).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let pid = v["pid"].as_u64()?;
    if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
        return None;
    }
    let url = v["url"].as_str()?.to_owned();
    let ok = reqwest::Client::new()
        .get(format!("{url}/health"))
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    ok.then_some(url)
}

/// The bearer token the configured server expects, if one is configured.
pub(crate) async fn server_token(config: &Config) -> CliResult<Option<secrecy::SecretString>> {
    match &config.server.api_token {
        Some(r) => Ok(Some(
            secrets::resolve(secrets::secret_store(config).as_ref(), "server.api_token", r).await?,
        )),
        None => Ok(None),
    }
}

/// A non-2xx answer as a one-line CLI error: the problem's detail, the kind from its problem type (the status
/// when the body is not a problem), through the application's one table.
pub(crate) fn problem_error(status: u16, body: &[u8]) -> CliError {
    let problem = serde_json::from_slice::<serde_json::Value>(body).ok();
    let detail = problem
        .as_ref()
        .and_then(|v| v["detail"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(300).collect());
    let kind = problem
        .as_ref()
        .and_then(|v| v["type"].as_str())
        .and_then(|t| t.rsplit(':').next())
        .and_then(ProblemType::by_slug)
        .map(|p| p.kind)
        .unwrap_or_else(|| ProblemType::by_status(status).kind);
    CliError::new(kind, detail)
}

impl ApiClient {
    pub async fn connect(config: &Config) -> CliResult<Self> {
        match running_server(config).await {
            Some(url) => {
                let token = server_token(config).await?;
                Ok(Self::Remote {
                    url,
                    client: reqwest::Client::new(),
                    token,
                })
            }
            None => Ok(Self::Local(commands::build_router(config).await?)),
        }
    }

    /// Sends a request; a non-2xx answer becomes a one-line error from its problem detail.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        project: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> CliResult<serde_json::Value> {
        let (status, bytes) = match self {
            ApiClient::Remote { url, client, token } => {
                let method =
                    reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| CliError::internal(e.to_string()))?;
                let mut req = client
                    .request(method, format!("{url}{path}"))
                    .header("x-pluto-actor", "cli");
                if let Some(p) = project {
                    req = req.header("x-pluto-project", p);
                }
                if let Some(t) = token {
                    req = req.bearer_auth(t.expose_secret());
                }
                if let Some(b) = body {
                    req = req.json(&b);
                }
                let resp = req
                    .send()
                    .await
                    .map_err(|e| CliError::unavailable(format!("server at {url}: {e}")))?;
                let status = resp.status().as_u16();
                (
                    status,
                    resp.bytes()
                        .await
                        .map_err(|e| CliError::unavailable(e.to_string()))?
                        .to_vec(),
                )
            }
            ApiClient::Local(router) => {
                let mut req = axum::http::Request::builder()
                    .method(method)
                    .uri(path)
                    .header("x-pluto-actor", "cli");
                if let Some(p) = project {
                    req = req.header("x-pluto-project", p);
                }
                let req = match body {
                    Some(b) => req
                        .header("content-type", "application/json")
                        .body(Body::from(b.to_string())),
                    None => req.body(Body::empty()),
                }
                .map_err(|e| CliError::internal(e.to_string()))?;
                let resp = router
                    .clone()
                    .oneshot(req)
                    .await
                    .map_err(|e| CliError::internal(e.to_string()))?;
                let status = resp.status().as_u16();
                let bytes = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| CliError::internal(e.to_string()))?
                    .to_bytes();
                (status, bytes.to_vec())
            }
        };
        if (200..300).contains(&status) {
            return Ok(serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null));
        }
        Err(problem_error(status, &bytes))
    }

    /// Follows a Server-Sent Events stream, calling `on_event(name, data)` per event until the stream ends.
    pub async fn follow_events(
        &self,
        path: &str,
        project: Option<&str>,
        mut on_event: impl FnMut(&str, &serde_json::Value),
    ) -> CliResult<()> {
        let mut parser = SseParser::default();
        match self {
            ApiClient::Remote { url, client, token } => {
                let mut req = client.get(format!("{url}{path}")).header("accept", "text/event-stream");
                if let Some(p) = project {
                    req = req.header("x-pluto-project", p);
                }
                if let Some(t) = token {
                    req = req.bearer_auth(t.expose_secret());
                }
                let resp = req
                    .send()
                    .await
                    .map_err(|e| CliError::unavailable(format!("server at {url}: {e}")))?;
                let status = resp.status().as_u16();
                if !(200..300).contains(&status) {
                    let body = resp.bytes().await.unwrap_or_default();
                    return Err(problem_error(status, &body));
                }
                let mut stream = resp.bytes_stream();
                while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
                    let chunk = chunk.map_err(|e| CliError::unavailable(e.to_string()))?;
                    parser.feed(&chunk, &mut on_event);
                }
            }
            ApiClient::Local(router) => {
                let mut req = axum::http::Request::builder().uri(path);
                if let Some(p) = project {
                    req = req.header("x-pluto-project", p);
                }
                let req = req.body(Body::empty()).map_err(|e| CliError::internal(e.to_string()))?;
                let resp = router
                    .clone()
                    .oneshot(req)
                    .await
                    .map_err(|e| CliError::internal(e.to_string()))?;
                let status = resp.status().as_u16();
                let mut body = resp.into_body();
                if !(200..300).contains(&status) {
                    let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    return Err(problem_error(status, &bytes));
                }
                while let Some(frame) = body.frame().await {
                    let frame = frame.map_err(|e| CliError::internal(e.to_string()))?;
                    if let Some(data) = frame.data_ref() {
                        parser.feed(data, &mut on_event);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Splits an SSE byte stream into (event, JSON data) pairs.
#[derive(Default)]
struct SseParser {
    buf: String,
}

impl SseParser {
    fn feed(&mut self, bytes: &[u8], on_event: &mut impl FnMut(&str, &serde_json::Value)) {
        self.buf.push_str(&String::from_utf8_lossy(bytes));
        while let Some(end) = self.buf.find("\n\n") {
            let block: String = self.buf.drain(..end + 2).collect();
            let (mut name, mut data) = ("message".to_owned(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if !data.is_empty() {
                let value = serde_json::from_str(&data).unwrap_or(serde_json::Value::Null);
                on_event(&name, &value);
            }
        }
    }
}
