//! Our chat request in ollama-rs's request types, plus what they lack (`stream`, `tool_name`).

use std::collections::HashMap;

use ollama_rs::generation::chat::request::ChatMessageRequest;
use ollama_rs::generation::chat::{ChatMessage as OllamaMessage, MessageRole};
use ollama_rs::generation::tools::{
    ToolCall as OllamaToolCall, ToolCallFunction, ToolFunctionInfo, ToolInfo, ToolType,
};
use ollama_rs::models::ModelOptions;
use pluto_duck_application::ports::{ChatRequest, FinishReason, LlmError, Role};
use serde_json::Value;

/// Ollama's tool calls carry their arguments as a JSON object, ours as JSON text.
fn arguments(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => value,
        // Invalid or non-object arguments the model wrote are passed back as they were.
        _ => Value::String(text.to_string()),
    }
}

pub(crate) fn request(model: &str, request: &ChatRequest, num_ctx: Option<u64>) -> Result<Value, LlmError> {
    // Ollama matches a tool's result to its call by the tool's name.
    let mut names: HashMap<&str, &str> = HashMap::new();
    let mut tool_names = Vec::new();
    let mut messages = Vec::new();
    for message in &request.messages {
        let role = match message.role {
            Role::System => MessageRole::System,
            Role::User => MessageRole::User,
            Role::Assistant => MessageRole::Assistant,
            Role::Tool => MessageRole::Tool,
        };
        let mut out = OllamaMessage::new(role, message.content.clone());
        for call in &message.tool_calls {
            names.insert(call.id.as_str(), call.name.as_str());
            out.tool_calls.push(OllamaToolCall {
                function: ToolCallFunction {
                    name: call.name.clone(),
                    arguments: arguments(&call.arguments),
                },
            });
        }
        let tool_name = match message.role {
            Role::Tool => {
                let id = message
                    .tool_call_id
                    .as_deref()
                    .ok_or_else(|| LlmError::Invalid("a tool message must name the call it answers".into()))?;
                Some(names.get(id).copied().ok_or_else(|| {
                    LlmError::Invalid(format!(
                        "tool message answers call {id:?}, which no earlier message made"
                    ))
                })?)
            }
            _ => None,
        };
        tool_names.push(tool_name);
        messages.push(out);
    }
    let mut chat = ChatMessageRequest::new(model.to_string(), messages);
    for tool in &request.tools {
        let parameters = schemars::Schema::try_from(tool.parameters.clone())
            .map_err(|_| LlmError::Invalid(format!("the parameters of tool {:?} are not a JSON schema", tool.name)))?;
        chat.tools.push(ToolInfo {
            tool_type: ToolType::Function,
            function: ToolFunctionInfo {
                name: tool.name.clone(),
                description: tool.description.clone(),
                parameters,
            },
        });
    }
    let mut options = ModelOptions::default();
    let mut any_option = false;
    if let Some(t) = request.temperature {
        options = options.temperature(t);
        any_option = true;
    }
    if let Some(n) = request.max_tokens {
        options = options.num_predict(i32::try_from(n).unwrap_or(i32::MAX));
        any_option = true;
    }
    if let Some(n) = num_ctx {
        options = options.num_ctx(n);
        any_option = true;
    }
    if any_option {
        chat = chat.options(options);
    }
    let mut body =
        serde_json::to_value(&chat).map_err(|e| LlmError::Invalid(format!("cannot encode the request: {e}")))?;
    // ollama-rs sets `stream` only inside its own client; `tool_name` it does not know.
    body["stream"] = Value::Bool(true);
    if let Some(Value::Array(messages)) = body.get_mut("messages") {
        for (message, name) in messages.iter_mut().zip(tool_names) {
            if let (Some(name), Value::Object(fields)) = (name, message) {
                fields.insert("tool_name".into(), Value::String(name.to_string()));
            }
        }
    }
    Ok(body)
}

pub(crate) fn finish_reason(reason: Option<&str>, called_tools: bool) -> FinishReason {
    match reason {
        // Ollama says `stop` after tool calls too.
        _ if called_tools => FinishReason::ToolCalls,
        None | Some("stop") | Some("") => FinishReason::Stop,
        Some("length") => FinishReason::Length,
        Some(other) => FinishReason::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pluto_duck_application::ports::{ChatMessage, ToolCall, ToolSpec};
    use serde_json::json;

    #[test]
    fn a_conversation_with_tools_in_ollama_terms() {
        let conversation = ChatRequest::new(vec![
            ChatMessage::system("be brief"),
            ChatMessage::user("count orders"),
            ChatMessage::assistant_with_tools(
                "",
                vec![ToolCall {
                    id: "call_0".into(),
                    name: "run_sql".into(),
                    arguments: r#"{"sql": "select count(*) from orders"}"#.into(),
                }],
            ),
            ChatMessage::tool("call_0", "[[42]]"),
        ])
        .with_tools(vec![ToolSpec {
            name: "run_sql".into(),
            description: "Runs SQL".into(),
            parameters: json!({"type": "object", "properties": {"sql": {"type": "string"}}}),
        }])
        .with_temperature(0.5)
        .with_max_tokens(100);
        let body = request("llama3.1", &conversation, Some(8192)).unwrap();
        assert_eq!(body["model"], "llama3.1");
        assert_eq!(body["stream"], true);
        assert_eq!(
            body["options"],
            json!({"temperature": 0.5, "num_predict": 100, "num_ctx": 8192})
        );
        assert_eq!(
            body["messages"][0],
            json!({"role": "system", "content": "be brief", "tool_calls": [], "thinking": null})
        );
        assert_eq!(
            body["messages"][2]["tool_calls"],
            json!([{"function": {"name": "run_sql", "arguments": {"sql": "select count(*) from orders"}}}])
        );
        assert_eq!(body["messages"][3]["role"], "tool");
        assert_eq!(body["messages"][3]["tool_name"], "run_sql");
        assert_eq!(
            body["tools"],
            json!([{"type": "function", "function": {"name": "run_sql", "description": "Runs SQL",
                "parameters": {"type": "object", "properties": {"sql": {"type": "string"}}}}}])
        );
    }

    #[test]
    fn a_tool_result_must_answer_an_earlier_call() {
        let err = request("m", &ChatRequest::new(vec![ChatMessage::tool("nope", "x")]), None).unwrap_err();
        assert!(matches!(err, LlmError::Invalid(_)));
    }

    #[test]
    fn arguments_that_are_not_an_object_pass_as_text() {
        assert_eq!(arguments(r#"{"a": 1}"#), json!({"a": 1}));
        assert_eq!(arguments("not json"), json!("not json"));
    }

    #[test]
    fn finish_reasons() {
        assert_eq!(finish_reason(Some("stop"), true), FinishReason::ToolCalls);
        assert_eq!(finish_reason(Some("length"), false), FinishReason::Length);
        assert_eq!(finish_reason(Some("load"), false), FinishReason::Other("load".into()));
        assert_eq!(finish_reason(None, false), FinishReason::Stop);
    }
}
