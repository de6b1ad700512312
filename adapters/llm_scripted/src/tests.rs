use futures::StreamExt;
use pluto_duck_application::llm::collect;
use pluto_duck_application::ports::ChatMessage;
use serde_json::json;

use super::*;

const SCRIPT: &str = r#"
model: demo
entries:
  - match: "(?i)how many orders"
    role: user
    reply:
      text: "Let me count them."
      tool_calls:
        - name: run_sql
          arguments: {sql: "select count(*) from orders"}
        - name: describe_table
          id: call_fixed
          arguments: '{"table": "orders"}'
      usage: {prompt: 120, completion: 18}
  - role: tool
    match: "^\\[\\[\\d+\\]\\]$"
    times: 1
    reply:
      text: "There were 1,204 orders last week, most of them on Friday."
  - match: "rate"
    reply:
      error: {kind: rate_limited, message: "slow down", retry_after_ms: 250}
  - match: "long"
    reply: {text: "cut", finish: length}
"#;

fn ask(text: &str) -> ChatRequest {
    ChatRequest::new(vec![ChatMessage::system("sys"), ChatMessage::user(text)])
}

async fn reply(llm: &ScriptedLlm, request: ChatRequest) -> Result<pluto_duck_application::llm::ChatResponse, LlmError> {
    let stream = llm.chat(request, CancellationToken::new()).await?;
    collect(stream).await
}

#[tokio::test]
async fn the_first_matching_entry_replies_with_text_tool_calls_and_usage() {
    let llm = ScriptedLlm::from_yaml(SCRIPT).unwrap();
    assert_eq!(llm.describe().model, "demo");
    let answer = reply(&llm, ask("How many orders last week?")).await.unwrap();
    assert_eq!(answer.text, "Let me count them.");
    assert_eq!(answer.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        answer.usage,
        Some(TokenUsage {
            prompt: 120,
            completion: 18
        })
    );
    let calls: Vec<_> = answer
        .tool_calls
        .iter()
        .map(|c| {
            (
                c.id.as_str(),
                c.name.as_str(),
                serde_json::from_str::<serde_json::Value>(&c.arguments).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            ("call_0", "run_sql", json!({"sql": "select count(*) from orders"})),
            ("call_fixed", "describe_table", json!({"table": "orders"})),
        ]
    );
}

#[tokio::test]
async fn entries_match_the_latest_tool_message_and_can_be_used_up() {
    let llm = ScriptedLlm::from_yaml(SCRIPT).unwrap();
    let mut conversation = ask("How many orders last week?");
    let first = reply(&llm, conversation.clone()).await.unwrap();
    conversation.messages.push(first.to_message());
    conversation.messages.push(ChatMessage::tool("call_0", "[[1204]]"));
    let second = reply(&llm, conversation.clone()).await.unwrap();
    assert_eq!(
        second.text,
        "There were 1,204 orders last week, most of them on Friday."
    );
    assert_eq!(second.finish_reason, FinishReason::Stop);
    // `times: 1`: the entry is spent.
    let err = reply(&llm, conversation).await.unwrap_err();
    match err {
        LlmError::Invalid(message) => {
            assert!(
                message.contains("none of the 4 entries") && message.contains("[[1204]]"),
                "{message}"
            )
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_eq!(llm.requests().len(), 3);
}

#[tokio::test]
async fn a_role_restricted_entry_ignores_the_other_role() {
    let llm = ScriptedLlm::from_yaml(SCRIPT).unwrap();
    let mut request = ask("sys");
    request.messages.push(ChatMessage::assistant_with_tools(
        "",
        vec![pluto_duck_application::ports::ToolCall {
            id: "c".into(),
            name: "run_sql".into(),
            arguments: "{}".into(),
        }],
    ));
    request.messages.push(ChatMessage::tool("c", "how many orders"));
    // The first entry wants a user message; the tool message falls through to no match.
    assert!(matches!(reply(&llm, request).await, Err(LlmError::Invalid(_))));
}

#[tokio::test]
async fn scripted_failures_and_finish_reasons() {
    let llm = ScriptedLlm::from_yaml(SCRIPT).unwrap();
    let err = llm.chat(ask("rate me"), CancellationToken::new()).await.err().unwrap();
    assert_eq!(
        err,
        LlmError::RateLimited {
            retry_after: Some(std::time::Duration::from_millis(250)),
            message: "slow down".into()
        }
    );
    assert_eq!(
        reply(&llm, ask("too long")).await.unwrap().finish_reason,
        FinishReason::Length
    );
}

#[tokio::test]
async fn text_streams_in_a_few_chunks() {
    let llm = ScriptedLlm::from_fn(|_| ScriptedReply::text("one two three four five six seven eight nine ten"));
    let stream = llm.chat(ask("x"), CancellationToken::new()).await.unwrap();
    let deltas: Vec<_> = stream.collect().await;
    let texts: Vec<String> = deltas
        .iter()
        .filter_map(|d| match d {
            Ok(ChatDelta::Text(t)) => Some(t.clone()),
            _ => None,
        })
        .collect();
    assert!(texts.len() > 1 && texts.len() <= 3, "{texts:?}");
    assert_eq!(texts.concat(), "one two three four five six seven eight nine ten");
    assert_eq!(deltas.last(), Some(&Ok(ChatDelta::Finish(FinishReason::Stop))));
}

#[tokio::test]
async fn a_closure_sees_the_request() {
    let llm = ScriptedLlm::from_fn(|request| {
        if request.tools.is_empty() {
            ScriptedReply::text("no tools")
        } else {
            ScriptedReply::tool_call(request.tools[0].name.clone(), json!({"q": "é"})).with_usage(1, 2)
        }
    });
    assert_eq!(reply(&llm, ask("a")).await.unwrap().text, "no tools");
    let with_tools = ask("b").with_tools(vec![pluto_duck_application::ports::ToolSpec {
        name: "search".into(),
        description: "d".into(),
        parameters: json!({"type": "object"}),
    }]);
    let answer = reply(&llm, with_tools).await.unwrap();
    assert_eq!(answer.tool_calls[0].name, "search");
    assert_eq!(answer.tool_calls[0].arguments, r#"{"q":"é"}"#);
    assert_eq!(answer.finish_reason, FinishReason::ToolCalls);
}

#[tokio::test]
async fn a_cancelled_call_is_cancelled() {
    let llm = ScriptedLlm::from_fn(|_| ScriptedReply::text("x"));
    let cancel = CancellationToken::new();
    cancel.cancel();
    assert_eq!(llm.chat(ask("a"), cancel).await.err(), Some(LlmError::Cancelled));
}

#[test]
fn bad_scripts_are_refused_with_the_reason() {
    let cases = [
        ("entries: []", "no entries"),
        ("entries: [{match: '(', reply: {text: x}}]", "entry 1: bad pattern"),
        ("entries: [{reply: {}}]", "no text, no tool call and no error"),
        ("entries: [{reply: {text: x, colour: red}}]", "unknown field"),
        ("entries: [{role: assistant, reply: {text: x}}]", "unknown variant"),
    ];
    for (yaml, expected) in cases {
        let err = ScriptedLlm::from_yaml(yaml).err().unwrap();
        assert!(matches!(err, LlmError::NotConfigured(_)));
        assert!(err.to_string().contains(expected), "{yaml}: {err}");
    }
}

#[test]
fn scripts_load_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.yaml");
    std::fs::write(&path, SCRIPT).unwrap();
    assert_eq!(ScriptedLlm::from_file(&path).unwrap().describe().model, "demo");
    let missing = ScriptedLlm::from_file(&dir.path().join("nope.yaml")).err().unwrap();
    assert!(missing.to_string().contains("nope.yaml"));
}

#[test]
fn text_pieces_keep_every_character() {
    for text in ["", "short", "ééééééééééé", "a b", "one two three four five"] {
        assert_eq!(pieces(text).concat(), text);
    }
}
