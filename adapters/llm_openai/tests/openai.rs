//! What only OpenAI's protocol has: the request as sent, `retry-after-ms`, quota errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use pluto_duck_application::llm::{collect, LlmPolicy, ResilientLlm};
use pluto_duck_application::ports::{ChatMessage, ChatRequest, LlmError, LlmProvider, ToolCall, ToolSpec};
use pluto_duck_fake_llm::contract::test_policy;
use pluto_duck_fake_llm::{Behavior, FakeLlmServer, Reply};
use pluto_duck_llm_openai::{OpenAiConfig, OpenAiLlm};
use secrecy::SecretString;
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn llm(server: &FakeLlmServer, key: Option<&str>) -> Arc<dyn LlmProvider> {
    let mut config = OpenAiConfig::new(server.openai_base_url(), "gpt-4o-mini");
    config.api_key = key.map(|k| SecretString::from(k.to_string()));
    Arc::new(OpenAiLlm::new(config).unwrap())
}

fn conversation() -> ChatRequest {
    ChatRequest::new(vec![
        ChatMessage::system("You are a data analyst."),
        ChatMessage::user("How many orders?"),
        ChatMessage::assistant_with_tools(
            "",
            vec![ToolCall {
                id: "call_9".into(),
                name: "run_sql".into(),
                arguments: r#"{"sql":"select count(*) from orders"}"#.into(),
            }],
        ),
        ChatMessage::tool("call_9", r#"{"rows": [[1204]]}"#),
    ])
    .with_tools(vec![ToolSpec {
        name: "run_sql".into(),
        description: "Runs one read-only SQL query".into(),
        parameters: json!({"type": "object", "properties": {"sql": {"type": "string"}}, "required": ["sql"]}),
    }])
    .with_temperature(0.2)
    .with_max_tokens(512)
}

#[tokio::test]
async fn the_request_on_the_wire() {
    let server = FakeLlmServer::start().await.unwrap();
    server.push(Behavior::Reply(Reply::text(&["1,204 orders."])));
    let stream = llm(&server, Some("sk-abc"))
        .chat(conversation(), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(collect(stream).await.unwrap().text, "1,204 orders.");
    let sent = &server.chat_requests()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-abc"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    let body = &sent.body;
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(body["max_completion_tokens"], 512);
    assert_eq!(
        body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["system", "user", "assistant", "tool"]
    );
    assert_eq!(body["messages"][2]["tool_calls"][0]["id"], "call_9");
    assert_eq!(
        body["messages"][3],
        json!({"role": "tool", "content": "{\"rows\": [[1204]]}", "tool_call_id": "call_9"})
    );
    assert_eq!(body["tools"][0]["function"]["name"], "run_sql");
    assert_eq!(body["tools"][0]["function"]["parameters"]["required"], json!(["sql"]));
}

#[tokio::test]
async fn without_a_key_no_authorization_is_sent() {
    let server = FakeLlmServer::start().await.unwrap();
    let stream = llm(&server, None)
        .chat(conversation(), CancellationToken::new())
        .await
        .unwrap();
    collect(stream).await.unwrap();
    assert_eq!(server.chat_requests()[0].header("authorization"), None);
}

#[tokio::test]
async fn retry_after_ms_is_preferred_to_retry_after() {
    let server = FakeLlmServer::start().await.unwrap();
    // `Retry-After: 30` is beyond the policy's 5 s cap and would end the call; the 20 ms one is waited for.
    server.push(Behavior::rate_limited(Some("30"), Some(20)));
    server.push(Behavior::text(&["ok"]));
    let resilient = ResilientLlm::new(llm(&server, None), test_policy());
    let stream = resilient.chat(conversation(), CancellationToken::new()).await.unwrap();
    assert_eq!(collect(stream).await.unwrap().text, "ok");
    assert_eq!(server.chat_requests().len(), 2);
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_ends_the_call_with_it() {
    let server = FakeLlmServer::start().await.unwrap();
    server.always(Behavior::rate_limited(Some("120"), None));
    let resilient = ResilientLlm::new(llm(&server, None), test_policy());
    let err = resilient
        .chat(conversation(), CancellationToken::new())
        .await
        .err()
        .unwrap();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(server.chat_requests().len(), 1);
}

#[tokio::test]
async fn an_exhausted_quota_is_not_retried() {
    let server = FakeLlmServer::start().await.unwrap();
    server.always(Behavior::fail(
        429,
        "You exceeded your current quota, please check your plan and billing details.",
    ));
    let resilient = ResilientLlm::new(
        llm(&server, None),
        LlmPolicy {
            max_attempts: 3,
            ..test_policy()
        },
    );
    let err = resilient
        .chat(conversation(), CancellationToken::new())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, LlmError::QuotaExceeded(_)), "{err:?}");
    assert_eq!(server.chat_requests().len(), 1);
}

#[tokio::test]
async fn an_unknown_model_is_invalid_with_a_hint() {
    let server = FakeLlmServer::start().await.unwrap();
    server.always(Behavior::fail(
        404,
        "The model `gpt-4o-mini` does not exist or you do not have access to it.",
    ));
    let err = llm(&server, None)
        .chat(conversation(), CancellationToken::new())
        .await
        .err()
        .unwrap();
    match err {
        LlmError::Invalid(message) => assert!(message.contains("does not exist") && message.contains("model name")),
        other => panic!("expected Invalid, got {other:?}"),
    }
}
