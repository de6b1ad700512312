//! The fake server speaks the protocols as the real servers do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pluto_duck_fake_llm::{Behavior, Cut, FakeLlmServer, FakeToolCall, Reply};
use serde_json::{json, Value};

async fn post(url: String, body: Value) -> reqwest::Response {
    reqwest::Client::new().post(url).json(&body).send().await.unwrap()
}

fn sse_events(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").expect("a data event").to_string())
        .collect()
}

#[tokio::test]
async fn openai_streams_chunks_tool_call_pieces_usage_and_done() {
    let server = FakeLlmServer::start().await.unwrap();
    server.push(Behavior::Reply(
        Reply::tools(vec![
            FakeToolCall::new("call_1", "run_sql", &["{\"sql\":", " \"select 1\"}"]),
            FakeToolCall::new("call_2", "list_tables", &["{}"]),
        ])
        .with_usage(10, 5),
    ));
    let response = post(
        format!("{}/chat/completions", server.openai_base_url()),
        json!({"model": "fake-model", "messages": [{"role": "user", "content": "hi"}], "stream": true,
            "stream_options": {"include_usage": true}}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let events = sse_events(&response.text().await.unwrap());
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let deltas: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    // A head per call (id, type, name, empty arguments), then the argument pieces alone.
    assert_eq!(deltas.len(), 5);
    assert_eq!(deltas[0]["id"], "call_1");
    assert_eq!(deltas[0]["function"]["arguments"], "");
    assert_eq!(deltas[1], &json!({"index": 0, "function": {"arguments": "{\"sql\":"}}));
    assert_eq!(deltas[3]["index"], 1);
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["total_tokens"], 15);
    assert_eq!(server.chat_requests()[0].body["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn openai_answers_json_when_not_streaming() {
    let server = FakeLlmServer::start().await.unwrap();
    server.push(Behavior::Reply(Reply::text(&["Hello", " there"]).with_usage(3, 2)));
    let body: Value = post(
        format!("{}/chat/completions", server.openai_base_url()),
        json!({"model": "m", "messages": []}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], "Hello there");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], 3);
}

#[tokio::test]
async fn ollama_streams_ndjson_ending_with_done_and_counts() {
    let server = FakeLlmServer::start().await.unwrap();
    server.push(Behavior::Reply(Reply {
        text_chunks: vec!["Let me look.".into()],
        tool_calls: vec![FakeToolCall::new("ignored", "run_sql", &["{\"sql\": \"select 1\"}"])],
        usage: Some((30, 12)),
        finish: None,
    }));
    let response = post(
        format!("{}/api/chat", server.ollama_base_url()),
        json!({"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["message"]["content"], "Let me look.");
    assert_eq!(lines[0]["done"], false);
    assert_eq!(
        lines[1]["message"]["tool_calls"][0]["function"]["arguments"],
        json!({"sql": "select 1"})
    );
    let last = lines.last().unwrap();
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert_eq!(
        (last["prompt_eval_count"].as_u64(), last["eval_count"].as_u64()),
        (Some(30), Some(12))
    );
}

#[tokio::test]
async fn ollama_answers_one_object_when_not_streaming() {
    let server = FakeLlmServer::start().await.unwrap();
    server.push(Behavior::text(&["a", "b"]));
    let body: Value = post(
        format!("{}/api/chat", server.ollama_base_url()),
        json!({"model": "m", "messages": [], "stream": false}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["message"]["content"], "ab");
    assert_eq!(body["done"], true);
}

#[tokio::test]
async fn errors_carry_status_headers_and_the_protocols_error_body() {
    let server = FakeLlmServer::start().await.unwrap();
    server.push(Behavior::rate_limited(Some("2"), Some(1500)));
    server.push(Behavior::fail(503, "busy"));
    let response = post(
        format!("{}/chat/completions", server.openai_base_url()),
        json!({"model": "m"}),
    )
    .await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
    assert_eq!(response.headers()["retry-after-ms"], "1500");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    let response = post(format!("{}/api/chat", server.ollama_base_url()), json!({"model": "m"})).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"error": "busy"}));
}

#[tokio::test]
async fn a_dropped_connection_is_an_error_for_the_client() {
    let server = FakeLlmServer::start().await.unwrap();
    server.push(Behavior::cut(Reply::text(&["a", "b", "c"]), 1, Cut::Drop));
    let response = post(format!("{}/api/chat", server.ollama_base_url()), json!({"model": "m"})).await;
    assert!(response.text().await.is_err());
}

#[tokio::test]
async fn lists_models_and_records_every_request() {
    let server = FakeLlmServer::with_models(&["llama3.1:8b", "qwen2.5:7b"])
        .await
        .unwrap();
    let models: Value = reqwest::get(format!("{}/models", server.openai_base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][1]["id"], "qwen2.5:7b");
    let tags: Value = reqwest::get(format!("{}/api/tags", server.ollama_base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tags["models"][0]["name"], "llama3.1:8b");
    let requests = server.requests();
    assert_eq!(
        requests.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(),
        ["/v1/models", "/api/tags"]
    );
}
