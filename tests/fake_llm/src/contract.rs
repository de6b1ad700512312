//! The `LlmProvider` contract: one suite, run against every adapter through the fake server, with the
//! adapter wrapped in `ResilientLlm` as the product uses it. An adapter's test file runs it all with
//! `pluto_duck_fake_llm::llm_contract_tests!(target());`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use pluto_duck_application::llm::{collect, LlmPolicy, ResilientLlm};
use pluto_duck_application::ports::{
    ChatDelta, ChatMessage, ChatRequest, FinishReason, LlmError, LlmProvider, TokenUsage, ToolSpec,
};
use tokio_util::sync::CancellationToken;

use crate::{unused_port, Behavior, Cut, FakeLlmServer, FakeToolCall, Reply};

/// How the suite builds the adapter under test.
pub struct Target {
    /// The adapter at this base URL, with this API key (or none).
    pub build: fn(base_url: &str, api_key: Option<&str>) -> Arc<dyn LlmProvider>,
    /// The base URL of a server at `host:port` in the adapter's protocol.
    pub base_url: fn(host_port: &str) -> String,
    /// The path chat requests go to.
    pub chat_path: &'static str,
}

/// Quick retries, generous timeouts: tests that time out set their own.
pub fn test_policy() -> LlmPolicy {
    LlmPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(5),
        first_delta_timeout: Duration::from_secs(20),
        idle_timeout: Duration::from_secs(20),
        deadline: Duration::from_secs(60),
    }
}

/// Fails the test instead of hanging it.
async fn bounded<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .expect("the call neither finished nor failed within a minute")
}

fn question() -> ChatRequest {
    ChatRequest::new(vec![
        ChatMessage::system("You answer questions about the user's data."),
        ChatMessage::user("How many orders were placed last week?"),
    ])
    .with_tools(vec![ToolSpec {
        name: "run_sql".into(),
        description: "Runs a read-only SQL query.".into(),
        parameters: serde_json::json!({"type": "object", "properties": {"sql": {"type": "string"}}, "required": ["sql"]}),
    }])
}

async fn server() -> FakeLlmServer {
    FakeLlmServer::start().await.expect("the fake server starts")
}

fn resilient(target: &Target, server: &FakeLlmServer, policy: LlmPolicy) -> ResilientLlm {
    ResilientLlm::new(
        (target.build)(&(target.base_url)(&server.addr().to_string()), None),
        policy,
    )
}

/// Every item of a call: the deltas, then the error that ended it if one did.
async fn run(llm: &dyn LlmProvider, request: ChatRequest) -> (Vec<ChatDelta>, Option<LlmError>) {
    let mut stream = match llm.chat(request, CancellationToken::new()).await {
        Ok(stream) => stream,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut deltas = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(delta) => deltas.push(delta),
            Err(e) => return (deltas, Some(e)),
        }
    }
    (deltas, None)
}

fn texts(deltas: &[ChatDelta]) -> Vec<String> {
    deltas
        .iter()
        .filter_map(|d| match d {
            ChatDelta::Text(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

pub async fn streams_text_in_order(target: &Target) {
    let server = server().await;
    server.push(Behavior::Reply(
        Reply::text(&["There were ", "1,204 orders", " last week."]).with_usage(42, 9),
    ));
    let llm = resilient(target, &server, test_policy());
    let (deltas, error) = bounded(run(&llm, question())).await;
    assert_eq!(error, None);
    assert_eq!(texts(&deltas), ["There were ", "1,204 orders", " last week."]);
    let n = deltas.len();
    assert_eq!(
        deltas[n - 2..],
        [
            ChatDelta::Usage(TokenUsage {
                prompt: 42,
                completion: 9
            }),
            ChatDelta::Finish(FinishReason::Stop)
        ]
    );
    let sent = server.chat_requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, target.chat_path);
}

pub async fn assembles_parallel_tool_calls(target: &Target) {
    let server = server().await;
    server.push(Behavior::Reply(
        Reply::tools(vec![
            FakeToolCall::new(
                "call_a1",
                "run_sql",
                &["{\"sql\": \"select ", "count(*) from orders\"}"],
            ),
            FakeToolCall::new("call_b2", "describe_table", &["{\"tab", "le\": \"ord", "ers\"}"]),
        ])
        .with_usage(50, 20),
    ));
    let llm = resilient(target, &server, test_policy());
    let stream = bounded(llm.chat(question(), CancellationToken::new())).await.unwrap();
    let reply = bounded(collect(stream)).await.unwrap();
    assert_eq!(reply.text, "");
    assert_eq!(reply.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        reply.usage,
        Some(TokenUsage {
            prompt: 50,
            completion: 20
        })
    );
    let calls: Vec<_> = reply
        .tool_calls
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                serde_json::from_str::<serde_json::Value>(&c.arguments).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            ("run_sql", serde_json::json!({"sql": "select count(*) from orders"})),
            ("describe_table", serde_json::json!({"table": "orders"})),
        ]
    );
    let ids: Vec<_> = reply.tool_calls.iter().map(|c| c.id.as_str()).collect();
    assert!(ids.iter().all(|id| !id.is_empty()) && ids[0] != ids[1], "{ids:?}");
}

pub async fn retries_a_rate_limit_storm_honouring_retry_after(target: &Target) {
    let server = server().await;
    server.push(Behavior::rate_limited(Some("1"), None));
    server.push(Behavior::rate_limited(Some("1"), None));
    server.push(Behavior::text(&["finally"]));
    let llm = resilient(target, &server, test_policy());
    let started = std::time::Instant::now();
    let (deltas, error) = bounded(run(&llm, question())).await;
    assert_eq!(error, None);
    assert_eq!(texts(&deltas), ["finally"]);
    assert_eq!(server.chat_requests().len(), 3);
    // The two waits of `Retry-After: 1` were kept (a lower bound).
    assert!(started.elapsed() >= Duration::from_secs(2), "{:?}", started.elapsed());
}

pub async fn gives_up_on_endless_rate_limits(target: &Target) {
    let server = server().await;
    server.always(Behavior::rate_limited(Some("0"), None));
    let llm = resilient(target, &server, test_policy());
    let (_, error) = bounded(run(&llm, question())).await;
    match error {
        Some(LlmError::RateLimited { retry_after, .. }) => assert_eq!(retry_after, Some(Duration::ZERO)),
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(server.chat_requests().len(), 4, "one attempt and three retries");
}

pub async fn retries_server_errors(target: &Target) {
    let server = server().await;
    server.push(Behavior::fail(
        500,
        "The server had an error while processing your request.",
    ));
    server.push(Behavior::fail(503, "The engine is currently overloaded."));
    server.push(Behavior::text(&["recovered"]));
    let llm = resilient(target, &server, test_policy());
    let (deltas, error) = bounded(run(&llm, question())).await;
    assert_eq!(error, None);
    assert_eq!(texts(&deltas), ["recovered"]);
    assert_eq!(server.chat_requests().len(), 3);
}

pub async fn a_refused_key_is_not_retried_nor_leaked(target: &Target) {
    let server = server().await;
    server.always(Behavior::unauthorized());
    let key = "sk-test-7a8b9c0d1e2f";
    let llm = ResilientLlm::new(
        (target.build)(&(target.base_url)(&server.addr().to_string()), Some(key)),
        test_policy(),
    );
    let (_, error) = bounded(run(&llm, question())).await;
    let error = error.expect("an error");
    assert!(matches!(error, LlmError::Auth(_)), "{error:?}");
    assert!(!error.to_string().contains(key), "the key leaked: {error}");
    assert!(!format!("{error:?}").contains(key), "the key leaked: {error:?}");
    let sent = server.chat_requests();
    assert_eq!(sent.len(), 1, "an auth failure is not retried");
    assert_eq!(sent[0].header("authorization"), Some(format!("Bearer {key}").as_str()));
    assert!(!format!("{:?}", llm.describe()).contains(key));
}

pub async fn forbidden_is_an_auth_error(target: &Target) {
    let server = server().await;
    server.always(Behavior::fail(403, "Project does not have access to model"));
    let llm = resilient(target, &server, test_policy());
    let (_, error) = bounded(run(&llm, question())).await;
    assert!(matches!(error, Some(LlmError::Auth(_))), "{error:?}");
    assert_eq!(server.chat_requests().len(), 1);
}

pub async fn a_bad_request_is_invalid(target: &Target) {
    let server = server().await;
    server.always(Behavior::fail(
        400,
        "This model's maximum context length is 8192 tokens.",
    ));
    let llm = resilient(target, &server, test_policy());
    let (_, error) = bounded(run(&llm, question())).await;
    match error {
        Some(LlmError::Invalid(message)) => assert!(message.contains("maximum context length"), "{message}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_eq!(server.chat_requests().len(), 1);
}

pub async fn an_unreachable_provider_is_unreachable(target: &Target) {
    let port = unused_port().unwrap();
    let base_url = (target.base_url)(&format!("127.0.0.1:{port}"));
    let llm = ResilientLlm::new(
        (target.build)(&base_url, None),
        LlmPolicy {
            max_attempts: 2,
            ..test_policy()
        },
    );
    let (_, error) = bounded(run(&llm, question())).await;
    assert!(matches!(error, Some(LlmError::Unreachable(_))), "{error:?}");
}

pub async fn a_malformed_chunk_mid_reply_is_malformed(target: &Target) {
    let server = server().await;
    server.push(Behavior::cut(
        Reply::text(&["one ", "two ", "three"]),
        2,
        Cut::Malformed,
    ));
    let llm = resilient(target, &server, test_policy());
    let (deltas, error) = bounded(run(&llm, question())).await;
    assert!(
        !texts(&deltas).is_empty(),
        "the chunks before the bad one arrive: {deltas:?}"
    );
    assert!(matches!(error, Some(LlmError::Malformed(_))), "{error:?}");
    assert_eq!(server.chat_requests().len(), 1);
}

pub async fn a_malformed_first_chunk_is_not_retried(target: &Target) {
    let server = server().await;
    server.push(Behavior::cut(Reply::text(&["never"]), 0, Cut::Malformed));
    let llm = resilient(target, &server, test_policy());
    let (deltas, error) = bounded(run(&llm, question())).await;
    assert_eq!(deltas, []);
    assert!(matches!(error, Some(LlmError::Malformed(_))), "{error:?}");
    assert_eq!(server.chat_requests().len(), 1);
}

pub async fn a_stall_mid_reply_times_out(target: &Target) {
    let server = server().await;
    server.push(Behavior::cut(Reply::text(&["one ", "two ", "three"]), 2, Cut::Stall));
    let idle = Duration::from_millis(500);
    let llm = resilient(
        target,
        &server,
        LlmPolicy {
            idle_timeout: idle,
            ..test_policy()
        },
    );
    let (deltas, error) = bounded(run(&llm, question())).await;
    assert!(!texts(&deltas).is_empty());
    assert!(matches!(error, Some(LlmError::Timeout(_))), "{error:?}");
    assert_eq!(server.chat_requests().len(), 1, "not retried once the reply started");
}

pub async fn a_silent_provider_times_out_before_the_first_delta(target: &Target) {
    let server = server().await;
    server.push(Behavior::delayed(
        Duration::from_secs(600),
        Behavior::text(&["too late"]),
    ));
    let llm = resilient(
        target,
        &server,
        LlmPolicy {
            first_delta_timeout: Duration::from_millis(500),
            ..test_policy()
        },
    );
    let (deltas, error) = bounded(run(&llm, question())).await;
    assert_eq!(deltas, []);
    assert!(matches!(error, Some(LlmError::Timeout(_))), "{error:?}");
}

pub async fn cancel_mid_reply_ends_with_cancelled(target: &Target) {
    let server = server().await;
    server.push(Behavior::cut(Reply::text(&["one ", "two ", "three"]), 2, Cut::Stall));
    let llm = resilient(target, &server, test_policy());
    let cancel = CancellationToken::new();
    let mut stream = bounded(llm.chat(question(), cancel.clone())).await.unwrap();
    let first = bounded(stream.next()).await;
    assert!(matches!(first, Some(Ok(ChatDelta::Text(_)))), "{first:?}");
    cancel.cancel();
    // What was already buffered may still come; then the stream ends with Cancelled.
    let mut last = None;
    while let Some(item) = bounded(stream.next()).await {
        last = Some(item);
    }
    assert_eq!(last, Some(Err(LlmError::Cancelled)));
}

pub async fn the_adapter_alone_honours_cancel(target: &Target) {
    let server = server().await;
    server.push(Behavior::cut(Reply::text(&["one ", "two ", "three"]), 2, Cut::Stall));
    let llm = (target.build)(&(target.base_url)(&server.addr().to_string()), None);
    let cancel = CancellationToken::new();
    let mut stream = bounded(llm.chat(question(), cancel.clone())).await.unwrap();
    assert!(matches!(bounded(stream.next()).await, Some(Ok(_))));
    cancel.cancel();
    let mut last = None;
    while let Some(item) = bounded(stream.next()).await {
        last = Some(item);
    }
    assert_eq!(last, Some(Err(LlmError::Cancelled)));
}

pub async fn a_dropped_connection_mid_reply_is_upstream(target: &Target) {
    let server = server().await;
    server.push(Behavior::cut(Reply::text(&["one ", "two ", "three"]), 2, Cut::Drop));
    let llm = resilient(target, &server, test_policy());
    let (deltas, error) = bounded(run(&llm, question())).await;
    assert!(!texts(&deltas).is_empty());
    assert!(
        matches!(error, Some(LlmError::Upstream(_))),
        "{error:?} after {deltas:?}"
    );
    assert_eq!(server.chat_requests().len(), 1);
}

pub async fn an_error_event_mid_reply_is_upstream(target: &Target) {
    let server = server().await;
    server.push(Behavior::cut(
        Reply::text(&["one ", "two"]),
        2,
        Cut::ErrorEvent("model runner crashed".into()),
    ));
    let llm = resilient(target, &server, test_policy());
    let (_, error) = bounded(run(&llm, question())).await;
    match error {
        Some(LlmError::Upstream(message)) => assert!(message.contains("model runner crashed"), "{message}"),
        other => panic!("expected Upstream, got {other:?}"),
    }
}

pub async fn describes_itself_without_secrets(target: &Target) {
    let server = server().await;
    let base_url = (target.base_url)(&server.addr().to_string());
    let info = (target.build)(&base_url, Some("sk-hidden")).describe();
    assert_eq!(info.model, "fake-model");
    assert_eq!(info.base_url.as_deref(), Some(base_url.as_str()));
    assert!(info.supports_tools);
    assert!(!format!("{info:?}").contains("sk-hidden"));
}

/// Runs the whole contract against an adapter: `llm_contract_tests!(target())` in a test file, where
/// `target()` returns a [`Target`].
#[macro_export]
macro_rules! llm_contract_tests {
    ($target:expr) => {
        $crate::llm_contract_tests!(@each $target;
            streams_text_in_order,
            assembles_parallel_tool_calls,
            retries_a_rate_limit_storm_honouring_retry_after,
            gives_up_on_endless_rate_limits,
            retries_server_errors,
            a_refused_key_is_not_retried_nor_leaked,
            forbidden_is_an_auth_error,
            a_bad_request_is_invalid,
            an_unreachable_provider_is_unreachable,
            a_malformed_chunk_mid_reply_is_malformed,
            a_malformed_first_chunk_is_not_retried,
            a_stall_mid_reply_times_out,
            a_silent_provider_times_out_before_the_first_delta,
            cancel_mid_reply_ends_with_cancelled,
            the_adapter_alone_honours_cancel,
            a_dropped_connection_mid_reply_is_upstream,
            an_error_event_mid_reply_is_upstream,
            describes_itself_without_secrets
        );
    };
    (@each $target:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                $crate::contract::$name(&$target).await;
            }
        )*
    };
}
