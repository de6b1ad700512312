//! A fake LLM provider for tests: an axum server on `127.0.0.1:0` speaking the real wire protocols,
//!
//! - OpenAI: `POST /v1/chat/completions` (a JSON reply, or Server-Sent Events `data: {chunk}` ending with
//!   `data: [DONE]`, tool-call deltas split across chunks as OpenAI splits them, a usage chunk when
//!   `stream_options.include_usage` is asked) and `GET /v1/models`;
//! - Ollama: `POST /api/chat` (NDJSON ending with a `done: true` object carrying the counts, or one JSON
//!   object when `stream` is false) and `GET /api/tags`.
//!
//! Each chat request takes the next [`Behavior`] of a queue (then the fallback one); every request is recorded
//! so tests can check what was sent. The [`contract`] module is the `LlmProvider` suite run against each adapter.

pub mod contract;
mod ollama;
mod openai;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::mpsc;

/// A tool call of a scripted reply; its arguments are sent in these pieces (OpenAI), or whole (Ollama).
#[derive(Debug, Clone, PartialEq)]
pub struct FakeToolCall {
    pub id: String,
    pub name: String,
    pub argument_pieces: Vec<String>,
}

impl FakeToolCall {
    pub fn new(id: &str, name: &str, argument_pieces: &[&str]) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            argument_pieces: argument_pieces.iter().map(|s| s.to_string()).collect(),
        }
    }

    pub fn arguments(&self) -> String {
        self.argument_pieces.concat()
    }
}

/// What a successful reply holds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reply {
    /// Sent as one chunk each.
    pub text_chunks: Vec<String>,
    pub tool_calls: Vec<FakeToolCall>,
    /// (prompt, completion) tokens.
    pub usage: Option<(u32, u32)>,
    /// The wire's finish reason; by default `tool_calls` when there are tool calls (OpenAI), else `stop`.
    pub finish: Option<String>,
}

impl Reply {
    pub fn text(chunks: &[&str]) -> Self {
        Self {
            text_chunks: chunks.iter().map(|s| s.to_string()).collect(),
            ..Self::default()
        }
    }

    pub fn tools(calls: Vec<FakeToolCall>) -> Self {
        Self {
            tool_calls: calls,
            ..Self::default()
        }
    }

    pub fn with_usage(mut self, prompt: u32, completion: u32) -> Self {
        self.usage = Some((prompt, completion));
        self
    }

    pub fn with_finish(mut self, finish: &str) -> Self {
        self.finish = Some(finish.into());
        self
    }
}

/// How a streamed body is cut short.
#[derive(Debug, Clone, PartialEq)]
pub enum Cut {
    /// Sends nothing more and keeps the connection open.
    Stall,
    /// Sends a chunk that is not JSON.
    Malformed,
    /// Aborts the connection (an unterminated chunked body).
    Drop,
    /// Sends the protocol's in-stream error object with this message, then ends.
    ErrorEvent(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Behavior {
    Reply(Reply),
    /// An HTTP error: the status, extra headers, and a message put in the protocol's error body. In the message,
    /// `{bearer}` is replaced by the request's bearer token (as OpenAI echoes part of a wrong key).
    Fail {
        status: u16,
        headers: Vec<(String, String)>,
        message: String,
    },
    /// Waits this long before the response head.
    Delay(Duration, Box<Behavior>),
    /// Streams the first `after` chunks of the reply (OpenAI: `data:` events; Ollama: lines), then cuts.
    Cut {
        reply: Reply,
        after: usize,
        cut: Cut,
    },
}

impl Behavior {
    pub fn text(chunks: &[&str]) -> Self {
        Behavior::Reply(Reply::text(chunks))
    }

    pub fn fail(status: u16, message: &str) -> Self {
        Behavior::Fail {
            status,
            headers: Vec::new(),
            message: message.into(),
        }
    }

    /// 429 with `Retry-After: <seconds>` and/or OpenAI's `retry-after-ms`.
    pub fn rate_limited(retry_after_secs: Option<&str>, retry_after_ms: Option<u64>) -> Self {
        let mut headers = Vec::new();
        if let Some(secs) = retry_after_secs {
            headers.push(("retry-after".to_string(), secs.to_string()));
        }
        if let Some(ms) = retry_after_ms {
            headers.push(("retry-after-ms".to_string(), ms.to_string()));
        }
        Behavior::Fail {
            status: 429,
            headers,
            message: "Rate limit reached for requests".into(),
        }
    }

    /// 401 whose message echoes the key it was sent, as a careless provider would.
    pub fn unauthorized() -> Self {
        Behavior::fail(401, "Incorrect API key provided: {bearer}")
    }

    pub fn delayed(delay: Duration, then: Behavior) -> Self {
        Behavior::Delay(delay, Box::new(then))
    }

    pub fn cut(reply: Reply, after: usize, cut: Cut) -> Self {
        Behavior::Cut { reply, after, cut }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: serde_json::Value,
    pub raw_body: String,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Shared {
    queue: Mutex<VecDeque<Behavior>>,
    fallback: Mutex<Behavior>,
    requests: Mutex<Vec<RecordedRequest>>,
    models: Vec<String>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn next_behavior(&self) -> Behavior {
        lock(&self.queue)
            .pop_front()
            .unwrap_or_else(|| lock(&self.fallback).clone())
    }
}

/// The server; stops when dropped.
pub struct FakeLlmServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeLlmServer {
    /// Starts on a free loopback port, serving the model `fake-model`.
    pub async fn start() -> std::io::Result<Self> {
        Self::with_models(&["fake-model"]).await
    }

    pub async fn with_models(models: &[&str]) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            fallback: Mutex::new(Behavior::text(&["fake ", "reply"])),
            requests: Mutex::new(Vec::new()),
            models: models.iter().map(|m| m.to_string()).collect(),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(openai_chat))
            .route("/v1/models", get(openai_models))
            .route("/api/chat", post(ollama_chat))
            .route("/api/tags", get(ollama_tags))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What an OpenAI client takes as its base URL (with `/v1`).
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn ollama_base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues the behaviour of the next chat request not yet scripted.
    pub fn push(&self, behavior: Behavior) -> &Self {
        lock(&self.shared.queue).push_back(behavior);
        self
    }

    /// The behaviour once the queue is empty (by default a short text reply).
    pub fn always(&self, behavior: Behavior) -> &Self {
        *lock(&self.shared.fallback) = behavior;
        self
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The chat requests received (the attempts of a call).
    pub fn chat_requests(&self) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/chat/completions") || r.path == "/api/chat")
            .collect()
    }
}

impl Drop for FakeLlmServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A loopback port nothing listens on (bound, then released).
pub fn unused_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn record(shared: &Shared, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> RecordedRequest {
    let raw_body = String::from_utf8_lossy(body).into_owned();
    let recorded = RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        headers: headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: serde_json::from_str(&raw_body).unwrap_or(serde_json::Value::Null),
        raw_body,
    };
    lock(&shared.requests).push(recorded.clone());
    recorded
}

/// One wire protocol: how replies, chunks and errors look.
pub(crate) trait Dialect: Send + Sync + 'static {
    /// The reply as one JSON document.
    fn whole(&self, request: &serde_json::Value, reply: &Reply) -> serde_json::Value;
    /// The reply as the body's frames, each sent as one chunk (the stream's end marker included).
    fn frames(&self, request: &serde_json::Value, reply: &Reply) -> Vec<String>;
    fn malformed_frame(&self) -> String;
    fn error_frame(&self, message: &str) -> String;
    fn error_body(&self, status: u16, message: &str) -> serde_json::Value;
    fn content_type(&self) -> &'static str;
    /// Whether the request asks for a stream.
    fn streams(&self, request: &serde_json::Value) -> bool;
}

async fn openai_chat(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    chat(
        &shared,
        &openai::OpenAi,
        record(&shared, &method, &uri, &headers, &body),
    )
    .await
}

async fn ollama_chat(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    chat(
        &shared,
        &ollama::Ollama,
        record(&shared, &method, &uri, &headers, &body),
    )
    .await
}

async fn openai_models(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    record(&shared, &method, &uri, &headers, &Bytes::new());
    axum::Json(openai::models(&shared.models)).into_response()
}

async fn ollama_tags(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    record(&shared, &method, &uri, &headers, &Bytes::new());
    axum::Json(ollama::tags(&shared.models)).into_response()
}

async fn chat(shared: &Shared, dialect: &'static impl Dialect, request: RecordedRequest) -> Response {
    if request.body.is_null() {
        let body = dialect.error_body(400, "the body is not JSON");
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    let mut behavior = shared.next_behavior();
    loop {
        match behavior {
            Behavior::Delay(delay, then) => {
                tokio::time::sleep(delay).await;
                behavior = *then;
            }
            Behavior::Fail {
                status,
                headers,
                message,
            } => {
                let bearer = request
                    .header("authorization")
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .unwrap_or("");
                let message = message.replace("{bearer}", bearer);
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let mut response = (status, axum::Json(dialect.error_body(status.as_u16(), &message))).into_response();
                for (name, value) in headers {
                    if let (Ok(name), Ok(value)) = (
                        axum::http::HeaderName::try_from(name),
                        axum::http::HeaderValue::try_from(value),
                    ) {
                        response.headers_mut().insert(name, value);
                    }
                }
                return response;
            }
            Behavior::Reply(reply) => {
                if !dialect.streams(&request.body) {
                    return axum::Json(dialect.whole(&request.body, &reply)).into_response();
                }
                return stream_frames(dialect, dialect.frames(&request.body, &reply), None);
            }
            Behavior::Cut { reply, after, cut } => {
                let frames = dialect.frames(&request.body, &reply);
                return stream_frames(dialect, frames, Some((after, cut)));
            }
        }
    }
}

/// Streams the frames one chunk each, cut after `after` of them when asked.
fn stream_frames(dialect: &'static impl Dialect, frames: Vec<String>, cut: Option<(usize, Cut)>) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let (keep, cut) = match cut {
            Some((after, cut)) => (after, Some(cut)),
            None => (frames.len(), None),
        };
        for frame in frames.into_iter().take(keep) {
            if tx.send(Ok(Bytes::from(frame))).await.is_err() {
                return;
            }
        }
        match cut {
            None => {}
            Some(Cut::Stall) => tx.closed().await,
            Some(Cut::Malformed) => {
                let _ = tx.send(Ok(Bytes::from(dialect.malformed_frame()))).await;
                // Keep the connection open: the client must notice by itself.
                tx.closed().await;
            }
            Some(Cut::Drop) => {
                // hyper flushes what it holds when the body has nothing ready; an error ends the connection
                // without flushing. Be idle a moment, so what was sent reaches the client before the drop.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _ = tx.send(Err(std::io::Error::other("dropped on purpose"))).await;
            }
            Some(Cut::ErrorEvent(message)) => {
                let _ = tx.send(Ok(Bytes::from(dialect.error_frame(&message)))).await;
            }
        }
    });
    let body = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    Response::builder()
        .header("content-type", dialect.content_type())
        .header("cache-control", "no-cache")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A stand-in clock for `created` fields: fixed, so recorded replies compare equal.
pub(crate) const CREATED: u64 = 1_735_689_600;
