//! Folding a streamed reply into one response.

use futures::StreamExt;

use crate::ports::{ChatDelta, ChatMessage, ChatStream, FinishReason, LlmError, TokenUsage, ToolCall};

/// A whole reply: what [`collect`] makes of a [`ChatStream`].
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    pub text: String,
    /// In the order of their indices.
    pub tool_calls: Vec<ToolCall>,
    pub usage: Option<TokenUsage>,
    pub finish_reason: FinishReason,
}

impl ChatResponse {
    /// The assistant's turn, to append to the conversation before the tools' results.
    pub fn to_message(&self) -> ChatMessage {
        ChatMessage::assistant_with_tools(self.text.clone(), self.tool_calls.clone())
    }
}

/// Assembles deltas as they come; [`collect`] drives it, a streaming consumer can feed it too.
#[derive(Debug, Default)]
pub struct ReplyAssembler {
    text: String,
    /// (index, call), in the order the calls started.
    calls: Vec<(u32, ToolCall)>,
    usage: Option<TokenUsage>,
    finish: Option<FinishReason>,
}

impl ReplyAssembler {
    pub fn push(&mut self, delta: ChatDelta) -> Result<(), LlmError> {
        if self.finish.is_some() {
            return Err(LlmError::Malformed("a delta came after the finish".into()));
        }
        match delta {
            ChatDelta::Text(text) => self.text.push_str(&text),
            ChatDelta::ToolCallStart { index, id, name } => {
                if self.calls.iter().any(|(i, _)| *i == index) {
                    return Err(LlmError::Malformed(format!("tool call {index} started twice")));
                }
                self.calls.push((
                    index,
                    ToolCall {
                        id,
                        name,
                        arguments: String::new(),
                    },
                ));
            }
            ChatDelta::ToolCallArgs { index, fragment } => {
                let Some((_, call)) = self.calls.iter_mut().find(|(i, _)| *i == index) else {
                    return Err(LlmError::Malformed(format!(
                        "arguments for tool call {index}, which never started"
                    )));
                };
                call.arguments.push_str(&fragment);
            }
            ChatDelta::Usage(usage) => self.usage = Some(usage),
            ChatDelta::Finish(reason) => self.finish = Some(reason),
        }
        Ok(())
    }

    pub fn is_finished(&self) -> bool {
        self.finish.is_some()
    }

    /// The response, if the reply was finished.
    pub fn finish(self) -> Result<ChatResponse, LlmError> {
        let Some(finish_reason) = self.finish else {
            return Err(LlmError::Upstream("the reply ended before it was finished".into()));
        };
        let mut calls = self.calls;
        calls.sort_by_key(|(index, _)| *index);
        Ok(ChatResponse {
            text: self.text,
            tool_calls: calls.into_iter().map(|(_, call)| call).collect(),
            usage: self.usage,
            finish_reason,
        })
    }
}

/// Reads the stream to its end. The first error ends it; a stream that stops before its `Finish` is an
/// `Upstream` error (the reply was cut short).
pub async fn collect(mut stream: ChatStream) -> Result<ChatResponse, LlmError> {
    let mut reply = ReplyAssembler::default();
    while let Some(delta) = stream.next().await {
        reply.push(delta?)?;
    }
    reply.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(items: Vec<Result<ChatDelta, LlmError>>) -> ChatStream {
        Box::pin(futures::stream::iter(items))
    }

    fn start(index: u32, id: &str, name: &str) -> Result<ChatDelta, LlmError> {
        Ok(ChatDelta::ToolCallStart {
            index,
            id: id.into(),
            name: name.into(),
        })
    }

    fn args(index: u32, fragment: &str) -> Result<ChatDelta, LlmError> {
        Ok(ChatDelta::ToolCallArgs {
            index,
            fragment: fragment.into(),
        })
    }

    #[tokio::test]
    async fn text_usage_and_finish() {
        let reply = collect(stream(vec![
            Ok(ChatDelta::Text("Hel".into())),
            Ok(ChatDelta::Text("lo".into())),
            Ok(ChatDelta::Usage(TokenUsage {
                prompt: 7,
                completion: 2,
            })),
            Ok(ChatDelta::Finish(FinishReason::Stop)),
        ]))
        .await
        .unwrap();
        assert_eq!(reply.text, "Hello");
        assert!(reply.tool_calls.is_empty());
        assert_eq!(
            reply.usage,
            Some(TokenUsage {
                prompt: 7,
                completion: 2
            })
        );
        assert_eq!(reply.finish_reason, FinishReason::Stop);
    }

    #[tokio::test]
    async fn parallel_tool_calls_assembled_from_interleaved_fragments() {
        let reply = collect(stream(vec![
            start(1, "call_b", "describe_table"),
            start(0, "call_a", "run_sql"),
            args(0, r#"{"sql": "sel"#),
            args(1, r#"{"table""#),
            args(0, r#"ect 1"}"#),
            args(1, r#": "orders"}"#),
            Ok(ChatDelta::Finish(FinishReason::ToolCalls)),
        ]))
        .await
        .unwrap();
        assert_eq!(
            reply.tool_calls,
            vec![
                ToolCall {
                    id: "call_a".into(),
                    name: "run_sql".into(),
                    arguments: r#"{"sql": "select 1"}"#.into()
                },
                ToolCall {
                    id: "call_b".into(),
                    name: "describe_table".into(),
                    arguments: r#"{"table": "orders"}"#.into()
                },
            ]
        );
        assert_eq!(reply.finish_reason, FinishReason::ToolCalls);
        let message = reply.to_message();
        assert_eq!(message.role, crate::ports::Role::Assistant);
        assert_eq!(message.tool_calls.len(), 2);
    }

    #[tokio::test]
    async fn arguments_of_an_unknown_call_are_malformed() {
        let err = collect(stream(vec![args(3, "{}")])).await.unwrap_err();
        assert!(matches!(err, LlmError::Malformed(_)), "{err:?}");
    }

    #[tokio::test]
    async fn a_call_started_twice_is_malformed() {
        let err = collect(stream(vec![start(0, "a", "x"), start(0, "b", "y")]))
            .await
            .unwrap_err();
        assert!(matches!(err, LlmError::Malformed(_)), "{err:?}");
    }

    #[tokio::test]
    async fn a_reply_without_finish_was_cut_short() {
        let err = collect(stream(vec![Ok(ChatDelta::Text("half".into()))]))
            .await
            .unwrap_err();
        assert!(matches!(err, LlmError::Upstream(_)), "{err:?}");
    }

    #[tokio::test]
    async fn the_first_error_ends_the_collection() {
        let err = collect(stream(vec![
            Ok(ChatDelta::Text("a".into())),
            Err(LlmError::Timeout("idle".into())),
            Ok(ChatDelta::Finish(FinishReason::Stop)),
        ]))
        .await
        .unwrap_err();
        assert_eq!(err, LlmError::Timeout("idle".into()));
    }

    #[tokio::test]
    async fn nothing_may_follow_the_finish() {
        let err = collect(stream(vec![
            Ok(ChatDelta::Finish(FinishReason::Stop)),
            Ok(ChatDelta::Text("late".into())),
        ]))
        .await
        .unwrap_err();
        assert!(matches!(err, LlmError::Malformed(_)), "{err:?}");
    }
}
