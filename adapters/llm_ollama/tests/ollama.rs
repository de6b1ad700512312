//! What only Ollama's protocol has: the request as sent (tool names on results, options), whole tool calls.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pluto_duck_application::llm::collect;
use pluto_duck_application::ports::{
    ChatMessage, ChatRequest, FinishReason, LlmError, LlmProvider, TokenUsage, ToolCall, ToolSpec,
};
use pluto_duck_fake_llm::{Behavior, FakeLlmServer, FakeToolCall, Reply};
use pluto_duck_llm_ollama::{OllamaConfig, OllamaLlm};
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn llm(server: &FakeLlmServer) -> OllamaLlm {
    let mut config = OllamaConfig::new(server.ollama_base_url(), "llama3.1:8b");
    config.num_ctx = Some(16384);
    OllamaLlm::new(config).unwrap()
}

fn conversation() -> ChatRequest {
    ChatRequest::new(vec![
        ChatMessage::system("You are a data analyst."),
        ChatMessage::user("How many orders?"),
        ChatMessage::assistant_with_tools(
            "Counting.",
            vec![ToolCall {
                id: "call_0".into(),
                name: "run_sql".into(),
                arguments: r#"{"sql":"select count(*) from orders"}"#.into(),
            }],
        ),
        ChatMessage::tool("call_0", "[[1204]]"),
    ])
    .with_tools(vec![ToolSpec {
        name: "run_sql".into(),
        description: "Runs one read-only SQL query".into(),
        parameters: json!({"type": "object", "properties": {"sql": {"type": "string"}}, "required": ["sql"]}),
    }])
    .with_temperature(0.0)
    .with_max_tokens(300)
}

#[tokio::test]
async fn the_request_on_the_wire() {
    let server = FakeLlmServer::start().await.unwrap();
    let stream = llm(&server)
        .chat(conversation(), CancellationToken::new())
        .await
        .unwrap();
    collect(stream).await.unwrap();
    let sent = &server.chat_requests()[0];
    assert_eq!(sent.path, "/api/chat");
    assert_eq!(sent.header("authorization"), None);
    let body = &sent.body;
    assert_eq!(body["model"], "llama3.1:8b");
    assert_eq!(body["stream"], true);
    assert_eq!(
        body["options"],
        json!({"temperature": 0.0, "num_predict": 300, "num_ctx": 16384})
    );
    let assistant = &body["messages"][2];
    assert_eq!(assistant["content"], "Counting.");
    assert_eq!(
        assistant["tool_calls"],
        json!([{"function": {"name": "run_sql", "arguments": {"sql": "select count(*) from orders"}}}])
    );
    assert_eq!(body["messages"][3]["role"], "tool");
    assert_eq!(body["messages"][3]["tool_name"], "run_sql");
    assert_eq!(body["messages"][3]["content"], "[[1204]]");
    assert_eq!(body["tools"][0]["type"], "function");
    assert_eq!(body["tools"][0]["function"]["parameters"]["required"], json!(["sql"]));
}

#[tokio::test]
async fn text_then_tool_calls_in_one_reply() {
    let server = FakeLlmServer::start().await.unwrap();
    server.push(Behavior::Reply(Reply {
        text_chunks: vec!["Let me ".into(), "check.".into()],
        tool_calls: vec![
            FakeToolCall::new("", "list_tables", &["{}"]),
            FakeToolCall::new("", "describe_table", &["{\"table\": \"orders\"}"]),
        ],
        // A cached prompt: Ollama leaves `prompt_eval_count` out.
        usage: Some((0, 25)),
        finish: None,
    }));
    let stream = llm(&server)
        .chat(conversation(), CancellationToken::new())
        .await
        .unwrap();
    let reply = collect(stream).await.unwrap();
    assert_eq!(reply.text, "Let me check.");
    assert_eq!(reply.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        reply.usage,
        Some(TokenUsage {
            prompt: 0,
            completion: 25
        })
    );
    let calls: Vec<_> = reply
        .tool_calls
        .iter()
        .map(|c| (c.id.as_str(), c.name.as_str(), c.arguments.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            ("call_0", "list_tables", "{}"),
            ("call_1", "describe_table", "{\"table\":\"orders\"}")
        ]
    );
}

#[tokio::test]
async fn a_model_that_is_not_pulled_is_invalid_with_a_hint() {
    let server = FakeLlmServer::start().await.unwrap();
    server.always(Behavior::fail(
        404,
        "model \"llama3.1:8b\" not found, try pulling it first",
    ));
    let err = llm(&server)
        .chat(conversation(), CancellationToken::new())
        .await
        .err()
        .unwrap();
    match err {
        LlmError::Invalid(message) => assert!(message.contains("not found") && message.contains("ollama pull")),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn a_model_without_tool_support_is_invalid() {
    let server = FakeLlmServer::start().await.unwrap();
    server.always(Behavior::fail(
        400,
        "registry.ollama.ai/library/gemma:2b does not support tools",
    ));
    let err = llm(&server)
        .chat(conversation(), CancellationToken::new())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, LlmError::Invalid(ref m) if m.contains("does not support tools")),
        "{err:?}"
    );
}
