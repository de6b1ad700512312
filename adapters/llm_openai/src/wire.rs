//! Our chat request in async-openai's request types, and OpenAI's streamed chunks read leniently.

use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls, ChatCompletionRequestAssistantMessage,
    ChatCompletionRequestAssistantMessageContent, ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestSystemMessageContent, ChatCompletionRequestToolMessage,
    ChatCompletionRequestToolMessageContent, ChatCompletionRequestUserMessage, ChatCompletionRequestUserMessageContent,
    ChatCompletionStreamOptions, ChatCompletionTool, ChatCompletionTools, CreateChatCompletionRequest, FunctionCall,
    FunctionObject,
};
use pluto_duck_application::ports::{ChatMessage, ChatRequest, FinishReason, LlmError, Role};
use serde::Deserialize;

/// What varies between OpenAI-compatible servers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dialect {
    /// Ask for the usage chunk (`stream_options.include_usage`); some older servers reject the field.
    pub stream_usage: bool,
    /// Send `max_tokens` (older servers) instead of `max_completion_tokens` (OpenAI today; required by its
    /// reasoning models).
    pub legacy_max_tokens: bool,
}

fn message(message: &ChatMessage) -> Result<ChatCompletionRequestMessage, LlmError> {
    let content = message.content.clone();
    Ok(match message.role {
        Role::System => ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage {
            content: ChatCompletionRequestSystemMessageContent::Text(content),
            name: None,
        }),
        Role::User => ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage {
            content: ChatCompletionRequestUserMessageContent::Text(content),
            name: None,
        }),
        Role::Assistant => {
            let tool_calls = (!message.tool_calls.is_empty()).then(|| {
                message
                    .tool_calls
                    .iter()
                    .map(|call| {
                        ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
                            id: call.id.clone(),
                            function: FunctionCall {
                                name: call.name.clone(),
                                arguments: call.arguments.clone(),
                            },
                        })
                    })
                    .collect()
            });
            // OpenAI wants no content (rather than "") beside tool calls.
            let content = (!(content.is_empty() && tool_calls.is_some()))
                .then_some(ChatCompletionRequestAssistantMessageContent::Text(content));
            ChatCompletionRequestMessage::Assistant(ChatCompletionRequestAssistantMessage {
                content,
                tool_calls,
                ..Default::default()
            })
        }
        Role::Tool => ChatCompletionRequestMessage::Tool(ChatCompletionRequestToolMessage {
            content: ChatCompletionRequestToolMessageContent::Text(content),
            tool_call_id: message
                .tool_call_id
                .clone()
                .ok_or_else(|| LlmError::Invalid("a tool message must name the call it answers".into()))?,
        }),
    })
}

/// The streamed request.
pub(crate) fn request(
    model: &str,
    request: &ChatRequest,
    dialect: Dialect,
) -> Result<CreateChatCompletionRequest, LlmError> {
    let messages = request.messages.iter().map(message).collect::<Result<Vec<_>, _>>()?;
    let tools = (!request.tools.is_empty()).then(|| {
        request
            .tools
            .iter()
            .map(|tool| {
                ChatCompletionTools::Function(ChatCompletionTool {
                    function: FunctionObject {
                        name: tool.name.clone(),
                        description: Some(tool.description.clone()),
                        parameters: Some(tool.parameters.clone()),
                        strict: None,
                    },
                })
            })
            .collect()
    });
    #[allow(deprecated)] // `max_tokens` is what older OpenAI-compatible servers know.
    let (max_tokens, max_completion_tokens) = match request.max_tokens {
        Some(n) if dialect.legacy_max_tokens => (Some(n), None),
        other => (None, other),
    };
    #[allow(deprecated)]
    Ok(CreateChatCompletionRequest {
        model: model.to_string(),
        messages,
        tools,
        temperature: request.temperature,
        max_tokens,
        max_completion_tokens,
        stream: Some(true),
        stream_options: dialect.stream_usage.then_some(ChatCompletionStreamOptions {
            include_usage: Some(true),
            include_obfuscation: None,
        }),
        ..Default::default()
    })
}

/// One `data:` event. Every field is optional and finish reasons are free text: OpenAI-compatible servers differ
/// (async-openai's own chunk type rejects, e.g., a finish reason outside OpenAI's five).
#[derive(Debug, Deserialize)]
pub(crate) struct Chunk {
    #[serde(default)]
    pub choices: Vec<ChoiceChunk>,
    #[serde(default)]
    pub usage: Option<UsageChunk>,
    /// An error sent mid-stream in place of a chunk.
    #[serde(default)]
    pub error: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChoiceChunk {
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub delta: Option<DeltaChunk>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct DeltaChunk {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCallChunk>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ToolCallChunk {
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub function: Option<FunctionChunk>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct FunctionChunk {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct UsageChunk {
    #[serde(default)]
    pub prompt_tokens: u32,
    #[serde(default)]
    pub completion_tokens: u32,
}

pub(crate) fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pluto_duck_application::ports::{ToolCall, ToolSpec};
    use serde_json::json;

    #[test]
    fn a_conversation_with_tools_in_openai_terms() {
        let conversation = ChatRequest::new(vec![
            ChatMessage::system("be brief"),
            ChatMessage::user("count orders"),
            ChatMessage::assistant_with_tools(
                "",
                vec![ToolCall {
                    id: "call_1".into(),
                    name: "run_sql".into(),
                    arguments: r#"{"sql":"select count(*) from orders"}"#.into(),
                }],
            ),
            ChatMessage::tool("call_1", "[[42]]"),
            ChatMessage::assistant("42 orders."),
        ])
        .with_tools(vec![ToolSpec {
            name: "run_sql".into(),
            description: "Runs SQL".into(),
            parameters: json!({"type": "object"}),
        }])
        .with_temperature(0.0)
        .with_max_tokens(256);
        let dialect = Dialect {
            stream_usage: true,
            legacy_max_tokens: false,
        };
        let body = serde_json::to_value(request("gpt-4o-mini", &conversation, dialect).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "count orders"},
                    {"role": "assistant", "tool_calls": [{"type": "function", "id": "call_1",
                        "function": {"name": "run_sql", "arguments": "{\"sql\":\"select count(*) from orders\"}"}}]},
                    {"role": "tool", "content": "[[42]]", "tool_call_id": "call_1"},
                    {"role": "assistant", "content": "42 orders."},
                ],
                "tools": [{"type": "function", "function": {"name": "run_sql", "description": "Runs SQL",
                    "parameters": {"type": "object"}}}],
                "temperature": 0.0,
                "max_completion_tokens": 256,
                "stream": true,
                "stream_options": {"include_usage": true},
            })
        );
        let legacy = Dialect {
            stream_usage: false,
            legacy_max_tokens: true,
        };
        let body = serde_json::to_value(request("m", &conversation, legacy).unwrap()).unwrap();
        assert_eq!(body["max_tokens"], 256);
        assert!(body.get("max_completion_tokens").is_none() && body.get("stream_options").is_none());
    }

    #[test]
    fn a_tool_message_must_name_its_call() {
        let mut orphan = ChatMessage::tool("x", "result");
        orphan.tool_call_id = None;
        let err = request(
            "m",
            &ChatRequest::new(vec![orphan]),
            Dialect {
                stream_usage: true,
                legacy_max_tokens: false,
            },
        )
        .unwrap_err();
        assert!(matches!(err, LlmError::Invalid(_)));
    }

    #[test]
    fn chunks_are_read_leniently() {
        let chunk: Chunk = serde_json::from_value(json!({
            "choices": [{"delta": {"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]},
                "finish_reason": "abort"}]
        }))
        .unwrap();
        assert_eq!(chunk.choices[0].finish_reason.as_deref(), Some("abort"));
        assert_eq!(finish_reason("abort"), FinishReason::Other("abort".into()));
        assert_eq!(finish_reason("tool_calls"), FinishReason::ToolCalls);
    }
}
